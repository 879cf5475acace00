//! What a push carries: the document's text and every file it reads (certificates,
//! keys, IP lists, schemas, JWKS files), by their path relative to the document. A
//! fleet document names its files relative to itself and inside its directory, so that
//! the same bundle means the same on every node; an absolute path or one through `..`
//! is refused, as is such a path coming back from etcd.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::config::read_str;

/// The name the document gets where a bundle is written out.
pub const DOCUMENT: &str = "tollgate.toml";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub document: String,
    /// Relative path (with `/`) to content.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Bundle {
    /// The document at `path` and the files it reads, from beside it.
    pub fn read(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let document = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
        let mut raw = read_str(&document, &shown.to_string())
            .map_err(|e| e.to_string())?
            .raw;
        if raw.fleet.is_some() {
            return Err(format!(
                "{shown}: [fleet] belongs in each node's own file, not in the cluster's document"
            ));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut files = BTreeMap::new();
        for file in raw.input_files_mut() {
            let relative =
                relative_path(file).map_err(|e| format!("{shown}: {}: {e}", file.display()))?;
            let content = std::fs::read(base.join(&*file))
                .map_err(|e| format!("{}: {e}", base.join(&*file).display()))?;
            files.insert(relative, content);
        }
        Ok(Self { document, files })
    }

    /// The SHA-256 of the document's text, in hex (as `/config` shows it).
    pub fn sha256(&self) -> String {
        document_sha256(self.document.as_bytes())
    }

    /// Writes the document as `dir/tollgate.toml` and each file beside it; returns the
    /// document's path. A file path that would leave `dir` is refused.
    pub fn write_to(&self, dir: &Path) -> Result<PathBuf, String> {
        let write = |path: &Path, content: &[u8]| -> Result<(), String> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            std::fs::write(path, content).map_err(|e| format!("{}: {e}", path.display()))
        };
        for (relative, content) in &self.files {
            let checked = relative_path(Path::new(relative))?;
            write(&dir.join(checked), content)?;
        }
        let document = dir.join(DOCUMENT);
        write(&document, self.document.as_bytes())?;
        Ok(document)
    }
}

/// The SHA-256 of a document's text, in hex.
pub fn document_sha256(text: &[u8]) -> String {
    hex::encode(Sha256::digest(text))
}

/// `path` as a bundle names it: relative, inside its base, with `/` between parts.
fn relative_path(path: &Path) -> Result<String, String> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(
                part.to_str()
                    .ok_or_else(|| "a fleet document's file names must be UTF-8".to_owned())?,
            ),
            Component::CurDir => {}
            _ => {
                return Err(
                    "a fleet document names its files relative to itself and inside its directory"
                        .to_owned(),
                )
            }
        }
    }
    match parts.is_empty() {
        true => Err("an empty file name".to_owned()),
        false => Ok(parts.join("/")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_example_and_its_files_round_trip() {
        let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
        let bundle = Bundle::read(&conf.join("auth.toml")).expect("bundle");
        let names: Vec<&str> = bundle.files.keys().map(String::as_str).collect();
        assert_eq!(names, ["keys/jwks.json", "keys/legacy-rsa.pub.pem"]);
        let dir = std::env::temp_dir().join(format!("tollgate-bundle-{}", std::process::id()));
        let document = bundle.write_to(&dir).expect("written");
        assert_eq!(Bundle::read(&document).expect("read back"), bundle);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_nodes_own_file_is_no_document() {
        let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
        let err = Bundle::read(&conf.join("fleet-node.toml")).expect_err("refused");
        assert!(
            err.contains("[fleet] belongs in each node's own file"),
            "{err}"
        );
    }

    #[test]
    fn paths_outside_the_document_are_refused() {
        assert_eq!(
            relative_path(Path::new("./keys/a.pem")).as_deref(),
            Ok("keys/a.pem")
        );
        for bad in ["/etc/tollgate/a.pem", "../a.pem", "keys/../../a.pem", "."] {
            assert!(relative_path(Path::new(bad)).is_err(), "{bad}");
        }
        let hostile = Bundle {
            document: String::new(),
            files: BTreeMap::from([("../escape".to_owned(), vec![])]),
        };
        assert!(hostile.write_to(Path::new("/nonexistent")).is_err());
    }
}
