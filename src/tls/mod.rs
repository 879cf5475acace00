//! TLS: listener certificates chosen per handshake by SNI and swapped on reload
//! (`certs`, `listener`), the identity a verified client certificate carries
//! (`client_cert`), and TLS towards upstream targets (`upstream`).
//!
//! OpenSSL (Pingora's `openssl` flavour) because only its certificate callback lets a
//! running listener change certificates; protocol versions, ciphers and ALPN are fixed
//! per listener at start, certificates and client-certificate settings follow reloads.

mod acme_certs;
mod certs;
mod client_cert;
mod listener;
mod upstream;

pub use acme_certs::{AcmeCerts, ChallengeCert, ACME_TLS_ALPN};
pub use certs::{Findings, ServerCert};
pub use client_cert::{forward_client_cert, ClientCert};
pub use listener::{acceptor_settings, Handshakes, ListenerTls, TlsSlots};
pub use upstream::UpstreamTls;

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use std::path::Path;

use crate::base::pem::read_certs;

fn read_key(path: &Path) -> Result<PKey<Private>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    PKey::private_key_from_pem(&pem)
        .map_err(|_| format!("{}: not a PEM private key", path.display()))
}

/// A certificate chain and the key of its leaf, checked to belong together.
fn read_pair(cert: &Path, key: &Path) -> Result<(Vec<X509>, PKey<Private>), String> {
    let chain = read_certs(cert)?;
    let key_pem = read_key(key)?;
    if !belong_together(&chain, &key_pem) {
        return Err(format!(
            "{} does not match the certificate in {}",
            key.display(),
            cert.display()
        ));
    }
    Ok((chain, key_pem))
}

/// Whether `key` is the private key of the chain's leaf.
fn belong_together(chain: &[X509], key: &PKey<Private>) -> bool {
    chain
        .first()
        .and_then(|leaf| leaf.public_key().ok())
        .is_some_and(|public| public.public_eq(key))
}
