//! `[listeners.NAME]` and their `tls` tables.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::defaults;

/// `[listeners.NAME]`: one address the proxy accepts connections on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSection {
    pub addr: SocketAddr,
    /// Accept HTTP/2 with prior knowledge (cleartext) besides HTTP/1.x.
    #[serde(default)]
    pub h2c: bool,
    /// Terminate TLS on this listener.
    #[serde(default)]
    pub tls: Option<ListenerTlsSection>,
    /// Answer every request with a 308 to the same URL over HTTPS (plain listeners).
    #[serde(default)]
    pub redirect_https: bool,
    /// The port `redirect_https` points at (443 is left out of the URL).
    #[serde(default = "defaults::https_port")]
    pub https_port: u16,
    /// Connections begin with a PROXY protocol header (v1 or v2) naming the client:
    /// accepted from `[server] trusted_proxies` only, and required from them.
    #[serde(default)]
    pub proxy_protocol: bool,
}

/// `[listeners.NAME.tls]`: certificates and TLS settings of a listener.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTlsSection {
    /// Chosen per handshake by SNI; the first is the default.
    #[serde(default)]
    pub certificates: Vec<CertificateSection>,
    /// Certificates ordered from `[acme]` for these domains, served by SNI before
    /// the files' (which serve every other name).
    #[serde(default)]
    pub acme: Option<super::ListenerAcme>,
    #[serde(default)]
    pub min_version: TlsVersion,
    /// Offer HTTP/2 through ALPN (besides HTTP/1.1).
    #[serde(default = "defaults::yes")]
    pub http2: bool,
    /// CA certificates (PEM) that client certificates must chain to.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    #[serde(default)]
    pub client_auth: ClientAuth,
}

/// `{ cert = "api.pem", key = "api.key", server_names = [...] }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateSection {
    /// The certificate chain (PEM): leaf first, then intermediates.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// Names this certificate answers for; default: its DNS subject alternative names.
    #[serde(default)]
    pub server_names: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum TlsVersion {
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

/// Whether a listener asks for client certificates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    None,
    /// Asked for; verified when presented.
    Optional,
    /// A handshake without a trusted certificate fails.
    Require,
}
