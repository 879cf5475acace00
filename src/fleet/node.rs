//! A node's config from its cluster. The local file (`-c`) holds `[fleet]` and the
//! keys that belong to the host: `[server]` `pid_file`, `upgrade_socket` and
//! `workers`, each listener's `addr`, and `[admin]`; they win over the cluster's
//! document. At start the document and its files are read at one revision and written
//! to the cache (`fleet.cache`/CLUSTER/rev-N: the document as pushed, its files, and
//! `node.toml`, the document with the host's keys, which is what the process loads);
//! `current` points at the last one that checked. With etcd unreachable, or its
//! document refused by the checks, the cached revision is served (with a warning);
//! with no cache either, the start fails saying why. The cache is the service user's only (mode 0700).

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::bundle::{document_sha256, Bundle, DOCUMENT};
use super::layout::Layout;
use super::store::{Access, Fleet, NodeRecord, Stored};
use crate::config::raw::FleetSection;
use crate::config::source::Origin;
use crate::config::{read_file, ConfigErrors, LoadedConfig};
use crate::observability::Metrics;
use crate::state::{compile::compile, Retained};

/// The file a node loads, in a revision's directory.
const NODE_DOCUMENT: &str = "node.toml";
/// How long a start waits for etcd before it falls back to the cache.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Revisions kept in the cache (the current one and the one before).
const KEPT: usize = 2;

/// What a start loads, and for a fleet node what following its cluster needs.
pub struct Prepared {
    pub path: PathBuf,
    pub origin: Origin,
    pub follow: Option<Follow>,
}

/// A node's cluster, its host keys and cache, and what it serves now.
pub struct Follow {
    pub fleet: FleetSection,
    host: HostKeys,
    dir: PathBuf,
    /// The bundle last tried, served or refused (`None` when the node started from
    /// its cache).
    pub applied: Option<Bundle>,
    /// The store's revision `applied` was read at (0 from the cache).
    pub read_at: i64,
    /// What the node serves, as its record says it.
    served: NodeRecord,
}

impl Follow {
    /// Writes `revision` to the cache beside the current one; the node document's path.
    pub fn stage(&self, revision: i64, bundle: &Bundle) -> anyhow::Result<PathBuf> {
        write_revision(&self.dir, revision, bundle, &self.host)
    }

    /// How to reach etcd, as `[fleet]` says.
    pub fn access(&self) -> Result<Access, String> {
        Access::of(&self.fleet)
    }

    /// Where `revision` of the cluster's document comes from, as `/config` says.
    pub fn origin(&self, revision: i64) -> Origin {
        Origin::Etcd {
            cluster: self.fleet.cluster.clone(),
            revision,
        }
    }

    /// Makes the staged `revision` of `bundle` the current one (it was applied).
    pub fn commit(&mut self, revision: i64, bundle: &Bundle) -> anyhow::Result<()> {
        self.served = served(revision, &bundle.document);
        make_current(&self.dir, revision)
    }

    /// The node's record: what it serves.
    pub fn record(&self) -> NodeRecord {
        self.served.clone()
    }
}

/// The config the process loads for the local file at `local` (read as `loaded`):
/// itself without `[fleet]`, else the cluster's document with this host's keys, from
/// etcd or the cache. A document from etcd is checked (parsed, validated, compiled)
/// before it becomes the cache's current revision; one that fails is refused and the
/// cache served, as with etcd away.
pub fn prepare(
    local: &Path,
    loaded: &LoadedConfig,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Prepared> {
    let Some(fleet) = loaded.raw.fleet.clone() else {
        return Ok(Prepared {
            path: local.to_path_buf(),
            origin: Origin::File,
            follow: None,
        });
    };
    let host = HostKeys::of(loaded.text(), &loaded.raw)?;
    let dir = fleet.cache.join(&fleet.cluster);
    let fetched = super::runtime()
        .map_err(anyhow::Error::msg)?
        .block_on(fetch(&fleet));
    let mut follow = Follow {
        fleet,
        host,
        dir,
        applied: None,
        read_at: 0,
        served: served(0, ""),
    };
    let revision = match fetched {
        Ok(Some(stored)) => {
            follow.read_at = stored.read_at;
            let checked = follow
                .stage(stored.revision, &stored.bundle)
                .map_err(|e| format!("{e:#}"))
                .and_then(|staged| check(&staged, metrics).map_err(|e| e.to_string()));
            let refused = match checked {
                Ok(()) => {
                    follow.commit(stored.revision, &stored.bundle)?;
                    None
                }
                Err(errors) => Some(format!(
                    "revision {} of cluster {} refused:\n{errors}",
                    stored.revision, follow.fleet.cluster
                )),
            };
            // The follower skips what was tried here, served or refused.
            follow.applied = Some(stored.bundle);
            match refused {
                None => stored.revision,
                Some(why) => from_cache(&mut follow, &why)?,
            }
        }
        Ok(None) => bail!(
            "cluster {} has no config in etcd yet: push one first (tollgate push)",
            follow.fleet.cluster
        ),
        Err(e) => from_cache(&mut follow, &format!("etcd unreachable ({e})"))?,
    };
    Ok(Prepared {
        path: follow.dir.join("current").join(NODE_DOCUMENT),
        origin: follow.origin(revision),
        follow: Some(follow),
    })
}

/// Reads, validates and compiles the node document at `path`, as a reload would.
fn check(path: &Path, metrics: &Arc<Metrics>) -> Result<(), ConfigErrors> {
    compile(&read_file(path)?, &Retained::for_check(metrics.clone())).map(drop)
}

/// Makes the cache's current revision what `follow` serves, because of `why` (etcd
/// away, or its document refused); its revision. No cache is an error.
fn from_cache(follow: &mut Follow, why: &str) -> anyhow::Result<i64> {
    let current = follow.dir.join("current");
    let pushed = current.join(DOCUMENT);
    if !pushed.is_file() {
        bail!(
            "{why}\nand no cached config in {}: cannot start",
            follow.dir.display()
        );
    }
    let cached = std::fs::canonicalize(&current).unwrap_or(current.clone());
    log::warn!("{why}\nserving the cached config {}", cached.display());
    let revision = cached
        .file_name()
        .and_then(|n| n.to_str()?.strip_prefix("rev-")?.parse().ok())
        .unwrap_or(0);
    let document = std::fs::read_to_string(&pushed)
        .with_context(|| format!("cannot read {}", pushed.display()))?;
    follow.served = served(revision, &document);
    let node = follow.host.apply(&document)?;
    write_atomically(&current.join(NODE_DOCUMENT), node.as_bytes())?;
    Ok(revision)
}

async fn fetch(f: &FleetSection) -> Result<Option<Stored>, String> {
    let access = Access::of(f)?;
    let read = async {
        let mut fleet = Fleet::connect(&access, Layout::new(&f.cluster)?).await?;
        fleet.read(None).await
    };
    match tokio::time::timeout(START_TIMEOUT, read).await {
        Ok(read) => read,
        Err(_) => Err(format!("no answer within {START_TIMEOUT:?}")),
    }
}

/// The record of a node serving `revision` of `document`, loaded now.
fn served(revision: i64, document: &str) -> NodeRecord {
    NodeRecord {
        revision,
        sha256: document_sha256(document.as_bytes()),
        loaded_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    }
}

/// Writes revision `revision` to the cache (its files once, its node document each
/// time: the host's keys may have changed); returns the node document's path.
fn write_revision(
    dir: &Path,
    revision: i64,
    bundle: &Bundle,
    host: &HostKeys,
) -> anyhow::Result<PathBuf> {
    super::private_dir(dir)?;
    let name = format!("rev-{revision}");
    let target = dir.join(&name);
    let node = host.apply(&bundle.document)?;
    if !target.is_dir() {
        let scratch = dir.join(format!(".{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        super::private_dir(&scratch)?;
        bundle.write_to(&scratch).map_err(anyhow::Error::msg)?;
        std::fs::rename(&scratch, &target)
            .with_context(|| format!("cannot move {} into place", scratch.display()))?;
    }
    write_atomically(&target.join(NODE_DOCUMENT), node.as_bytes())?;
    Ok(target.join(NODE_DOCUMENT))
}

/// Points `current` at the cached `revision`, atomically, and forgets older ones.
fn make_current(dir: &Path, revision: i64) -> anyhow::Result<()> {
    let name = format!("rev-{revision}");
    let link = dir.join(format!(".current-{}", std::process::id()));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&name, &link).context("cannot link the current revision")?;
    std::fs::rename(&link, dir.join("current")).context("cannot switch the current revision")?;
    forget_old_revisions(dir, revision);
    Ok(())
}

/// Removes cached revisions older than the last [`KEPT`].
fn forget_old_revisions(dir: &Path, newest: i64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut revisions: Vec<i64> = entries
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("rev-")?
                .parse()
                .ok()
        })
        .filter(|&r| r <= newest)
        .collect();
    revisions.sort_unstable_by(|a, b| b.cmp(a));
    for old in revisions.into_iter().skip(KEPT) {
        let _ = std::fs::remove_dir_all(dir.join(format!("rev-{old}")));
    }
}

fn write_atomically(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    let scratch = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&scratch, content)
        .with_context(|| format!("cannot write {}", scratch.display()))?;
    std::fs::rename(&scratch, path).with_context(|| format!("cannot write {}", path.display()))
}

/// The host's own keys, from the local file.
struct HostKeys {
    server: toml::Table,
    listener_addrs: Vec<(String, toml::Value)>,
    admin: Option<toml::Value>,
    /// The local `[fleet]`, paths resolved: what the node's other uses of etcd (ACME
    /// storage) reach it with.
    fleet: Option<toml::Table>,
}

impl HostKeys {
    fn of(text: &str, raw: &crate::config::raw::RawConfig) -> anyhow::Result<Self> {
        let table: toml::Table = text.parse().context("the local file")?;
        let local_server = table.get("server").and_then(toml::Value::as_table);
        let mut server = toml::Table::new();
        // Paths as the local file resolved them (relative to it, not to the cache).
        let paths = [
            ("pid_file", &raw.server.pid_file),
            ("upgrade_socket", &raw.server.upgrade_socket),
        ];
        for (key, resolved) in paths {
            if local_server.is_some_and(|s| s.contains_key(key)) {
                server.insert(key.into(), resolved.display().to_string().into());
            }
        }
        if let Some(workers) = local_server.and_then(|s| s.get("workers")) {
            server.insert("workers".into(), workers.clone());
        }
        let listener_addrs = table
            .get("listeners")
            .and_then(toml::Value::as_table)
            .into_iter()
            .flatten()
            .filter_map(|(name, l)| Some((name.clone(), l.get("addr")?.clone())))
            .collect();
        Ok(Self {
            server,
            listener_addrs,
            admin: table.get("admin").cloned(),
            // The paths as `config::load` made them absolute.
            fleet: raw.fleet.as_ref().map(toml::Table::try_from).transpose()?,
        })
    }

    /// `document` with these keys in place of its own, `[fleet]` included.
    fn apply(&self, document: &str) -> anyhow::Result<String> {
        let mut doc: toml::Table = document.parse().context("the cluster's document")?;
        doc.remove("fleet");
        if let Some(fleet) = &self.fleet {
            doc.insert("fleet".into(), fleet.clone().into());
        }
        let server = doc
            .entry("server")
            .or_insert_with(|| toml::Table::new().into());
        if let Some(server) = server.as_table_mut() {
            server.extend(self.server.clone());
        }
        for (name, addr) in &self.listener_addrs {
            let listener = doc
                .get_mut("listeners")
                .and_then(|l| l.get_mut(name))
                .and_then(toml::Value::as_table_mut);
            match listener {
                Some(listener) => {
                    listener.insert("addr".into(), addr.clone());
                }
                None => bail!(
                    "the local file sets listeners.{name}.addr, but the cluster's document has no listener {name:?}"
                ),
            }
        }
        if let Some(admin) = &self.admin {
            doc.insert("admin".into(), admin.clone());
        }
        Ok(toml::to_string(&doc)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn host(local: &str) -> HostKeys {
        let raw = load_str(local, "local").expect("valid local file").raw;
        HostKeys::of(local, &raw).expect("host keys")
    }

    #[test]
    fn the_hosts_keys_win_and_the_rest_is_the_documents() {
        let local = "[server]\npid_file = \"/run/t.pid\"\nworkers = 3\n\
                     [listeners.main]\naddr = \"127.0.0.1:8443\"\n\
                     [admin]\nlisten = \"127.0.0.1:9900\"\n\
                     [fleet]\netcd = [\"http://127.0.0.1:2379\"]\ncluster = \"c\"\n";
        let document = "[server]\nworkers = 8\ngrace_period = \"7s\"\n\
                        [listeners.main]\naddr = \"0.0.0.0:1\"\nh2c = true\n\
                        [admin]\nlisten = \"127.0.0.1:1\"\n\
                        [fleet]\netcd = [\"http://elsewhere:2379\"]\ncluster = \"x\"\n";
        let node: toml::Table = host(local)
            .apply(document)
            .expect("merged")
            .parse()
            .expect("toml");
        let server = &node["server"];
        assert_eq!(server["pid_file"].as_str(), Some("/run/t.pid"));
        assert_eq!(server["workers"].as_integer(), Some(3));
        assert_eq!(server["grace_period"].as_str(), Some("7s"));
        assert!(
            server.get("upgrade_socket").is_none(),
            "not set locally: the document's"
        );
        assert_eq!(
            node["listeners"]["main"]["addr"].as_str(),
            Some("127.0.0.1:8443")
        );
        assert_eq!(node["listeners"]["main"]["h2c"].as_bool(), Some(true));
        assert_eq!(node["admin"]["listen"].as_str(), Some("127.0.0.1:9900"));
        assert_eq!(node["fleet"]["cluster"].as_str(), Some("c"));
        assert_eq!(
            node["fleet"]["etcd"][0].as_str(),
            Some("http://127.0.0.1:2379")
        );
    }

    #[test]
    fn a_local_listener_the_document_lacks_is_an_error() {
        let local = "[listeners.other]\naddr = \"127.0.0.1:8443\"\n";
        let err = host(local)
            .apply("[listeners.main]\naddr = \"0.0.0.0:1\"\n")
            .expect_err("refused");
        assert!(err.to_string().contains("no listener \"other\""), "{err}");
    }

    #[test]
    fn old_revisions_are_forgotten() {
        let dir = std::env::temp_dir().join(format!("tollgate-node-{}", std::process::id()));
        for r in [3, 5, 9, 12] {
            crate::fleet::private_dir(&dir.join(format!("rev-{r}"))).expect("dir");
        }
        forget_old_revisions(&dir, 12);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["rev-12", "rev-9"]);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
