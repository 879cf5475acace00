//! TLS towards an upstream's targets: SNI, certificate verification against the
//! system roots or a configured CA (on by default), an optional client certificate,
//! and HTTP/2 through ALPN when asked for.

use openssl::x509::X509;
use pingora::listeners::ALPN;
use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::CertKey;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::read_pair;
use crate::base::pem::read_certs;
use crate::config::raw::UpstreamTlsSection;

/// An upstream's TLS settings with its files read. Two compare equal when the
/// settings and the files' contents are the same, so a pool is rebuilt on reload
/// exactly when a CA or client certificate changed.
#[derive(Clone)]
pub struct UpstreamTls {
    /// The section as written, for the comparison only.
    section: UpstreamTlsSection,
    /// What every peer gets: the server name sent and verified, whether the target's
    /// certificate is verified, the ALPN offered.
    sni: Option<String>,
    verify: bool,
    alpn: ALPN,
    /// The bytes of every file read, for the comparison.
    contents: Vec<Vec<u8>>,
    ca: Option<Arc<Box<[X509]>>>,
    client: Option<Arc<CertKey>>,
    /// Pingora's connection-reuse key covers address, SNI, client certificate and
    /// the verify flags, but not the CA or ALPN: without this, a connection verified
    /// against one CA (or speaking HTTP/1.1) could be reused where another CA (or
    /// HTTP/2) is configured, e.g. after a reload changed the CA file.
    group_key: u64,
}

impl UpstreamTls {
    pub fn load(section: &UpstreamTlsSection) -> Result<Self, String> {
        let mut contents = Vec::new();
        for path in [&section.ca, &section.client_cert, &section.client_key]
            .into_iter()
            .flatten()
        {
            contents.push(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?);
        }
        let ca = match &section.ca {
            Some(path) => Some(Arc::new(read_certs(path)?.into_boxed_slice())),
            None => None,
        };
        let client = match (&section.client_cert, &section.client_key) {
            (Some(cert), Some(key)) => {
                let (chain, key) = read_pair(cert, key)?;
                Some(Arc::new(CertKey::new(chain, key)))
            }
            _ => None,
        };
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (section, &contents).hash(&mut hasher);
        Ok(UpstreamTls {
            section: section.clone(),
            sni: section.sni.clone(),
            verify: section.verify,
            alpn: match section.http2 {
                true => ALPN::H2H1,
                false => ALPN::H1,
            },
            contents,
            ca,
            client,
            group_key: hasher.finish(),
        })
    }

    /// A peer for `addr` that speaks TLS with these settings.
    pub fn peer(&self, addr: std::net::SocketAddr) -> HttpPeer {
        let mut peer = HttpPeer::new(addr, true, String::new());
        self.apply(&mut peer);
        peer
    }

    /// Applies these settings to a peer (a health check's template, say).
    pub fn apply(&self, peer: &mut HttpPeer) {
        if let Some(sni) = &self.sni {
            peer.sni.clone_from(sni);
        }
        peer.options.verify_cert = self.verify;
        peer.options.verify_hostname = self.verify;
        peer.options.ca.clone_from(&self.ca);
        peer.options.alpn = self.alpn.clone();
        peer.client_cert_key.clone_from(&self.client);
        peer.group_key = self.group_key;
    }
}

impl PartialEq for UpstreamTls {
    fn eq(&self, other: &Self) -> bool {
        self.section == other.section && self.contents == other.contents
    }
}
