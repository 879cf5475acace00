//! `[acme]`: where certificates are ordered (an RFC 8555 directory) and kept; each
//! TLS listener names its own domains in `tls.acme`.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::units;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeSection {
    /// The directory URL of any RFC 8555 CA.
    pub directory: String,
    /// `mailto:` addresses the CA may write to about the account.
    #[serde(default)]
    pub contact: Vec<String>,
    /// A directory for the account key, certificates and keys, or `"etcd"`: the
    /// fleet's etcd (`[fleet]`), shared by every node.
    #[serde(default = "default_storage")]
    pub storage: AcmeStorage,
    /// An extra root (PEM) trusted for the directory's own TLS: a private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Renew this long before expiry, unless the CA suggests a window (ARI).
    #[serde(default = "default_renew_before", with = "units::duration")]
    pub renew_before: Duration,
    /// External account binding, for CAs that require one.
    #[serde(default)]
    pub eab: Option<EabSection>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EabSection {
    pub kid: String,
    /// The environment variable holding the HMAC key (base64url, as CAs give it).
    pub hmac_env: String,
}

/// `tls.acme = { domains = [...], challenge = "http-01" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerAcme {
    pub domains: Vec<String>,
    #[serde(default)]
    pub challenge: ChallengeKind,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum ChallengeKind {
    /// Answered on every plain listener at `/.well-known/acme-challenge/TOKEN`.
    #[default]
    #[serde(rename = "http-01")]
    Http01,
    /// Answered in the TLS handshake of the listener itself (ALPN `acme-tls/1`).
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

impl ChallengeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::Http01 => "http-01",
            ChallengeKind::TlsAlpn01 => "tls-alpn-01",
        }
    }
}

/// Where the account and the certificates are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcmeStorage {
    Dir(PathBuf),
    /// `"etcd"`: the fleet's etcd.
    Etcd,
}

impl<'de> Deserialize<'de> for AcmeStorage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(match text.as_str() {
            "etcd" => AcmeStorage::Etcd,
            _ => AcmeStorage::Dir(PathBuf::from(text)),
        })
    }
}

fn default_storage() -> AcmeStorage {
    AcmeStorage::Dir(PathBuf::from("/var/lib/tollgate/acme"))
}

fn default_renew_before() -> Duration {
    Duration::from_secs(30 * 86_400)
}
