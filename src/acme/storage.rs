//! Where the ACME account and the certificates are kept, so that a restart serves
//! what it has and orders nothing: the fleet's etcd (`etcd`), or a directory (the
//! unit's `StateDirectory`):
//! `accounts/DIGEST.json` (one account per directory URL), `certificates/NAME/`
//! with `fullchain.pem` and `key.pem`; secrets are written 0600 in 0700 directories,
//! each file whole (a temporary file renamed over the old). Every failure is a
//! message naming the path.

use sha2::{Digest, Sha256};

use super::etcd::{EtcdStorage, OrderLock};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A certificate chain and its key, as PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCert {
    pub chain_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

/// The storage `[acme] storage` names.
pub enum Storage {
    Dir(DirStorage),
    /// Boxed: etcd's client is large.
    Etcd(Box<EtcdStorage>),
}

/// Whether this node may order a set now.
pub enum Turn {
    /// Yes (on a fleet, while it holds the lock).
    Mine(Option<Box<OrderLock>>),
    /// Another node is ordering it.
    Taken,
}

impl Storage {
    pub async fn account(&self, directory_url: &str) -> Result<Option<String>, String> {
        let digest = account_digest(directory_url);
        match self {
            Storage::Dir(dir) => dir.account(&digest),
            Storage::Etcd(etcd) => etcd.account(&digest).await,
        }
    }

    pub async fn save_account(&self, directory_url: &str, credentials: &str) -> Result<(), String> {
        let digest = account_digest(directory_url);
        match self {
            Storage::Dir(dir) => dir.save_account(&digest, credentials),
            Storage::Etcd(etcd) => etcd.save_account(&digest, credentials).await,
        }
    }

    pub async fn certificate(&self, name: &str) -> Result<Option<StoredCert>, String> {
        match self {
            Storage::Dir(dir) => dir.certificate(name),
            Storage::Etcd(etcd) => etcd.certificate(name).await,
        }
    }

    pub async fn save_certificate(&self, name: &str, cert: &StoredCert) -> Result<(), String> {
        match self {
            Storage::Dir(dir) => dir.save_certificate(name, cert),
            Storage::Etcd(etcd) => etcd.save_certificate(name, cert).await,
        }
    }

    /// Makes an HTTP-01 answer known to every node (a fleet's); a single host's
    /// tokens are in memory only.
    pub async fn publish_token(&self, token: &str, key_authorization: &str) -> Result<(), String> {
        match self {
            Storage::Dir(_) => Ok(()),
            Storage::Etcd(etcd) => etcd.publish_token(token, key_authorization).await,
        }
    }

    /// Whether this node orders `name` now: always on a single host.
    pub async fn turn(&self, name: &str) -> Result<Turn, String> {
        match self {
            Storage::Dir(_) => Ok(Turn::Mine(None)),
            Storage::Etcd(etcd) => Ok(match etcd.lock(name).await? {
                Some(lock) => Turn::Mine(Some(Box::new(lock))),
                None => Turn::Taken,
            }),
        }
    }
}

/// One account per CA: its credentials are stored under the digest of its URL.
fn account_digest(directory_url: &str) -> String {
    hex::encode(&Sha256::digest(directory_url.as_bytes())[..8])
}

#[derive(Debug, Clone)]
pub struct DirStorage {
    root: PathBuf,
}

impl DirStorage {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn account_path(&self, digest: &str) -> PathBuf {
        self.root.join("accounts").join(format!("{digest}.json"))
    }

    fn certificate_dir(&self, name: &str) -> PathBuf {
        self.root.join("certificates").join(name)
    }

    /// The account's credentials (JSON) for the CA whose URL has `digest`.
    fn account(&self, digest: &str) -> Result<Option<String>, String> {
        read(&self.account_path(digest))
            .map(|found| found.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    fn save_account(&self, digest: &str, credentials: &str) -> Result<(), String> {
        write_secret(&self.account_path(digest), credentials.as_bytes())
    }

    /// The certificate stored under `name` (the first domain of its set), if any.
    pub fn certificate(&self, name: &str) -> Result<Option<StoredCert>, String> {
        let dir = self.certificate_dir(name);
        let (Some(chain_pem), Some(key_pem)) = (
            read(&dir.join("fullchain.pem"))?,
            read(&dir.join("key.pem"))?,
        ) else {
            return Ok(None);
        };
        Ok(Some(StoredCert { chain_pem, key_pem }))
    }

    /// Stores the key first: a chain beside an older key would not load, and is
    /// ordered again rather than served wrong.
    pub fn save_certificate(&self, name: &str, cert: &StoredCert) -> Result<(), String> {
        let dir = self.certificate_dir(name);
        write_secret(&dir.join("key.pem"), &cert.key_pem)?;
        write_secret(&dir.join("fullchain.pem"), &cert.chain_pem)
    }
}

fn read(path: &Path) -> Result<Option<Vec<u8>>, String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes `bytes` to `path` whole, readable by the owner only.
fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("{}: {e}", path.display());
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_stored_certificate_reads_back_and_its_key_is_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = DirStorage::new(dir.path().join("acme"));
        assert_eq!(storage.certificate("a.example"), Ok(None));
        let cert = StoredCert {
            chain_pem: b"chain".to_vec(),
            key_pem: b"key".to_vec(),
        };
        storage.save_certificate("a.example", &cert).expect("saved");
        assert_eq!(storage.certificate("a.example"), Ok(Some(cert)));
        let key = dir.path().join("acme/certificates/a.example/key.pem");
        let mode = std::fs::metadata(key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (ca, other) = (
            account_digest("https://ca.example/dir"),
            account_digest("https://other.example/dir"),
        );
        assert_eq!(storage.account(&ca), Ok(None));
        storage.save_account(&ca, "{}").expect("saved");
        assert_eq!(storage.account(&ca), Ok(Some("{}".to_owned())));
        assert_eq!(storage.account(&other), Ok(None));
    }
}
