//! Where a cluster lives in etcd, under `/tollgate/CLUSTER/`: `config` (the TOML
//! document, exactly as a file), `files/PATH` (each file it reads, by its path relative
//! to the document), `pushed` (when and from where the document was pushed, JSON),
//! `nodes/ID` (running nodes, under a lease) and `acme/...` (the ACME account,
//! certificates, HTTP-01 tokens and order locks of `[acme] storage = "etcd"`).

use crate::config::raw::valid_cluster_name;

/// A cluster's keys. Its name is checked: letters, digits, `.`, `_` and `-`.
#[derive(Debug, Clone)]
pub struct Layout {
    root: String,
}

impl Layout {
    pub fn new(cluster: &str) -> Result<Self, String> {
        if !valid_cluster_name(cluster) {
            return Err(format!(
                "cluster name {cluster:?}: 1 to 64 letters, digits, '.', '_' or '-'"
            ));
        }
        Ok(Self {
            root: format!("/tollgate/{cluster}/"),
        })
    }

    /// Every key of the cluster is under this prefix.
    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn config(&self) -> String {
        format!("{}config", self.root)
    }

    pub fn pushed(&self) -> String {
        format!("{}pushed", self.root)
    }

    pub fn files_prefix(&self) -> String {
        format!("{}files/", self.root)
    }

    pub fn file(&self, path: &str) -> String {
        format!("{}{path}", self.files_prefix())
    }

    pub fn nodes_prefix(&self) -> String {
        format!("{}nodes/", self.root)
    }

    pub fn node(&self, id: &str) -> String {
        format!("{}{id}", self.nodes_prefix())
    }

    /// A key of ACME's storage, e.g. `acme/certificates/NAME/key`.
    pub fn acme(&self, key: &str) -> String {
        format!("{}acme/{key}", self.root)
    }

    /// The file path a `files/` key names; `None` for a key outside the prefix.
    pub fn file_path<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.files_prefix().as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_names() {
        let l = Layout::new("edge-eu").expect("valid");
        assert_eq!(l.config(), "/tollgate/edge-eu/config");
        assert_eq!(
            l.file("keys/jwks.json"),
            "/tollgate/edge-eu/files/keys/jwks.json"
        );
        assert_eq!(l.file_path("/tollgate/edge-eu/files/a/b"), Some("a/b"));
        assert_eq!(l.file_path("/tollgate/edge-eu/config"), None);
        for bad in ["", "a/b", "x y", &"a".repeat(65)] {
            assert!(Layout::new(bad).is_err(), "{bad:?}");
        }
    }
}
