//! The certificates ACME gave, by name, and the TLS-ALPN-01 challenge certificates
//! being validated: what [`Handshakes`](super::Handshakes) serves for a listener's
//! `tls.acme` domains. Written by the ordering (`acme`), read per handshake; an
//! issued or renewed certificate is swapped in whole, so new handshakes see it at
//! once and open connections keep theirs. Nothing here fails: a name without a
//! certificate simply has none.

use arc_swap::ArcSwap;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::certs::ServerCert;

/// The protocol a TLS-ALPN-01 validation offers, alone (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

#[derive(Default)]
pub struct AcmeCerts {
    issued: ArcSwap<HashMap<String, Arc<ServerCert>>>,
    challenges: Mutex<HashMap<String, Arc<ChallengeCert>>>,
}

/// A self-signed certificate that proves control of a name to a TLS-ALPN-01
/// validation (it carries the key authorization's digest).
pub struct ChallengeCert {
    pub cert: X509,
    pub key: PKey<Private>,
}

impl AcmeCerts {
    /// The certificate issued for `name` (lower case), if one was.
    pub fn issued(&self, name: &str) -> Option<Arc<ServerCert>> {
        self.issued.load().get(name).cloned()
    }

    /// Serves `cert` for each of `names` from the next handshake on.
    pub fn install(&self, names: &[String], cert: Arc<ServerCert>) {
        self.issued.rcu(|current| {
            let mut next = HashMap::clone(current);
            for name in names {
                next.insert(name.clone(), cert.clone());
            }
            next
        });
    }

    pub fn challenge(&self, name: &str) -> Option<Arc<ChallengeCert>> {
        self.lock().get(name).cloned()
    }

    /// Answers TLS-ALPN-01 validations of `name` with `cert`, or no longer (`None`).
    pub fn set_challenge(&self, name: &str, cert: Option<ChallengeCert>) {
        match cert {
            Some(cert) => self.lock().insert(name.to_owned(), Arc::new(cert)),
            None => self.lock().remove(name),
        };
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ChallengeCert>>> {
        self.challenges.lock().unwrap_or_else(|p| p.into_inner())
    }
}
