//! `[fleet]`: this host's config comes from a cluster's document in etcd (see
//! `fleet::node`); the local file keeps this section and the host's own keys.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSection {
    /// etcd's client URLs (`http://` or `https://`).
    pub etcd: Vec<String>,
    pub cluster: String,
    /// Where the last good document and its files are kept, for a start with etcd away.
    #[serde(default = "default_cache")]
    pub cache: PathBuf,
    /// Environment variables holding etcd's user name and password (both or neither).
    #[serde(default)]
    pub username_env: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    /// TLS to etcd (`https://` URLs): the CA to trust, and a client certificate.
    #[serde(default)]
    pub tls: Option<FleetTls>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FleetTls {
    pub ca: PathBuf,
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
}

fn default_cache() -> PathBuf {
    PathBuf::from("/var/lib/tollgate/fleet")
}

/// A cluster name: 1 to 64 letters, digits, `.`, `_` or `-` (it is part of etcd keys
/// and of a directory name).
pub fn valid_cluster_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
