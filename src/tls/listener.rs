//! A TLS listener. Its acceptor (protocol versions, Mozilla "intermediate" ciphers,
//! ALPN, session resumption) is built once at start; per handshake, [`Handshakes`]
//! picks the certificate for the client's SNI and applies client-certificate
//! verification from the current [`ListenerTls`], which a reload swaps atomically:
//! new handshakes use the new certificates, open connections keep theirs.
//!
//! A name of the listener's `tls.acme` is served the certificate ACME gave it
//! ([`AcmeCerts`]); while it has none, its handshakes fail (no certificate is set),
//! and a TLS-ALPN-01 validation (ALPN `acme-tls/1`, offered alone) gets the
//! challenge certificate, or a fatal alert when none is pending for its name.

use arc_swap::ArcSwap;
use async_trait::async_trait;
use openssl::ssl::{select_next_proto, AlpnError, NameType, SslOptions, SslVerifyMode, SslVersion};
use openssl::stack::Stack;
use openssl::x509::store::X509Store;
use openssl::x509::{X509Name, X509NameRef, X509VerifyResult, X509};
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::TlsRef;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::acme_certs::{AcmeCerts, ChallengeCert, ACME_TLS_ALPN};
use super::certs::{CertStore, Findings, ServerCert};
use super::client_cert::ClientCert;
use crate::base::pem::{read_certs, trust_store};
use crate::config::location::TomlPath;
use crate::config::raw::{ChallengeKind, ClientAuth, ListenerTlsSection, TlsVersion};
use crate::observability::Metrics;

/// What a listener's handshakes use, rebuilt (files re-read) on every reload.
pub struct ListenerTls {
    /// From files; `None` when the listener has ACME certificates only.
    certs: Option<CertStore>,
    /// Names served from [`AcmeCerts`] (lower case, as configured).
    acme_names: Vec<String>,
    client: Option<ClientVerification>,
}

struct ClientVerification {
    mode: SslVerifyMode,
    store: X509Store,
    /// Subjects of the CAs, sent to clients to help them pick a certificate.
    ca_names: Vec<X509Name>,
}

impl ListenerTls {
    /// The certificates read from files.
    pub fn certificates(&self) -> impl Iterator<Item = &ServerCert> {
        self.certs.iter().flat_map(CertStore::iter)
    }

    /// Reads the certificates and client CA of `section` (reported under `at`).
    pub fn load(section: &ListenerTlsSection, at: &TomlPath, found: &mut Findings) -> Option<Self> {
        let certs = match section.certificates.is_empty() {
            true => None,
            false => Some(CertStore::load(&section.certificates, at, found)?),
        };
        let acme_names = (section.acme.iter())
            .flat_map(|a| a.domains.iter().map(|d| d.to_ascii_lowercase()))
            .collect();
        let client = match (&section.client_ca, section.client_auth) {
            (Some(path), ClientAuth::Optional | ClientAuth::Require) => {
                match client_verification(path, section.client_auth) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        found.errors.push((at.key("client_ca"), e));
                        None
                    }
                }
            }
            _ => None,
        };
        found.errors.is_empty().then_some(ListenerTls {
            certs,
            acme_names,
            client,
        })
    }
}

fn client_verification(
    path: &std::path::Path,
    auth: ClientAuth,
) -> Result<ClientVerification, String> {
    let cas: Vec<X509> = read_certs(path)?;
    let store = trust_store(&cas, path)?;
    let mode = match auth {
        ClientAuth::Require => SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        ClientAuth::Optional | ClientAuth::None => SslVerifyMode::PEER,
    };
    Ok(ClientVerification {
        mode,
        store,
        ca_names: cas
            .iter()
            .filter_map(|c| c.subject_name().to_owned().ok())
            .collect(),
    })
}

/// The current [`ListenerTls`] of every TLS listener the process started with. A
/// reload stores a listener's new settings; a listener missing from the new config
/// keeps its last ones (it keeps listening until a restart anyway).
#[derive(Default)]
pub struct TlsSlots(Mutex<HashMap<String, Arc<ArcSwap<ListenerTls>>>>);

impl TlsSlots {
    /// The slot a listener's [`Handshakes`] read, holding `initial`.
    pub fn slot(&self, listener: &str, initial: Arc<ListenerTls>) -> Arc<ArcSwap<ListenerTls>> {
        self.lock()
            .entry(listener.to_owned())
            .or_insert_with(|| Arc::new(ArcSwap::new(initial)))
            .clone()
    }

    pub fn commit(&self, tls: &HashMap<String, Arc<ListenerTls>>) {
        for (name, slot) in self.lock().iter() {
            if let Some(new) = tls.get(name) {
                slot.store(new.clone());
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ArcSwap<ListenerTls>>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Pingora's per-handshake hooks for one listener.
pub struct Handshakes {
    pub listener: String,
    pub current: Arc<ArcSwap<ListenerTls>>,
    pub acme: Arc<AcmeCerts>,
    pub metrics: Arc<Metrics>,
}

/// The certificate a handshake is given.
enum Chosen<'a> {
    File(&'a ServerCert),
    Acme(Arc<ServerCert>),
    Challenge(Arc<ChallengeCert>),
}

impl Handshakes {
    /// `None`: no certificate for this handshake, which then fails. `validation`: the
    /// handshake selected ALPN `acme-tls/1`.
    fn choose<'a>(
        &self,
        tls: &'a ListenerTls,
        sni: Option<&str>,
        validation: bool,
    ) -> Option<Chosen<'a>> {
        if validation {
            // TLS 1.3 selects ALPN before this callback.
            return sni
                .and_then(|name| self.acme.challenge(name))
                .map(Chosen::Challenge);
        }
        match sni {
            Some(name) if tls.acme_names.iter().any(|n| n == name) => self
                .acme
                .issued(name)
                .map(Chosen::Acme)
                // TLS 1.2 selects ALPN after this callback: a name waiting for its
                // first certificate can only be a validation's.
                .or_else(|| self.acme.challenge(name).map(Chosen::Challenge)),
            _ => match &tls.certs {
                Some(store) => Some(Chosen::File(store.select(sni))),
                None => (tls.acme_names.iter())
                    .find_map(|name| self.acme.issued(name))
                    .map(Chosen::Acme),
            },
        }
    }
}

/// Sets a leaf, its key and the intermediates on the handshake.
fn use_chain(
    ssl: &mut TlsRef,
    chain: &[X509],
    key: &openssl::pkey::PKeyRef<openssl::pkey::Private>,
) -> Result<(), openssl::error::ErrorStack> {
    pingora::tls::ext::ssl_use_certificate(ssl, &chain[0])?;
    pingora::tls::ext::ssl_use_private_key(ssl, key)?;
    for intermediate in &chain[1..] {
        pingora::tls::ext::ssl_add_chain_cert(ssl, intermediate)?;
    }
    Ok(())
}

#[async_trait]
impl TlsAccept for Handshakes {
    async fn certificate_callback(&self, ssl: &mut TlsRef) {
        let tls = self.current.load();
        let sni = ssl
            .servername(NameType::HOST_NAME)
            .map(str::to_ascii_lowercase);
        let validation = ssl.selected_alpn_protocol() == Some(ACME_TLS_ALPN);
        let mut result = match self.choose(&tls, sni.as_deref(), validation) {
            Some(Chosen::File(cert)) => use_chain(ssl, &cert.chain, &cert.key),
            Some(Chosen::Acme(cert)) => use_chain(ssl, &cert.chain, &cert.key),
            Some(Chosen::Challenge(c)) => {
                if let Err(e) = use_chain(ssl, std::slice::from_ref(&c.cert), &c.key) {
                    log::error!(
                        "listener {}: cannot use a challenge certificate: {e}",
                        self.listener
                    );
                }
                return;
            }
            None => {
                log::debug!(
                    "listener {}: no certificate for {:?} yet: handshake refused",
                    self.listener,
                    sni.as_deref().unwrap_or("(no SNI)")
                );
                return;
            }
        };
        if let Some(client) = &tls.client {
            ssl.set_verify(client.mode);
            result = result
                .and_then(|()| pingora::tls::ext::ssl_set_verify_cert_store(ssl, &client.store))
                .and_then(|()| {
                    let mut names = Stack::new()?;
                    for name in &client.ca_names {
                        names.push(X509NameRef::to_owned(name)?)?;
                    }
                    ssl.set_client_ca_list(names);
                    Ok(())
                });
        }
        if let Err(e) = result {
            // The handshake then fails for want of a certificate; this says why.
            log::error!(
                "listener {}: cannot use its certificate: {e}",
                self.listener
            );
        }
    }

    async fn handshake_complete_callback(
        &self,
        ssl: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        self.metrics
            .tls_handshake(&self.listener, ssl.version_str());
        let cert = ssl.peer_certificate()?;
        if ssl.verify_result() != X509VerifyResult::OK {
            return None;
        }
        Some(Arc::new(ClientCert::from_x509(&cert)))
    }
}

/// The fixed part of a TLS listener: versions, ciphers, options and ALPN.
pub fn acceptor_settings(
    section: &ListenerTlsSection,
    handshakes: Handshakes,
) -> Result<TlsSettings, String> {
    let acme = handshakes.acme.clone();
    let mut settings = TlsSettings::with_callbacks(Box::new(handshakes))
        .map_err(|e| format!("TLS acceptor: {e}"))?;
    // mozilla_intermediate_v5 already refuses TLS 1.0/1.1 and uses the intermediate
    // cipher list; compression and client-initiated renegotiation are refused too.
    settings.set_options(SslOptions::NO_COMPRESSION | SslOptions::NO_RENEGOTIATION);
    // Mozilla intermediate's key exchange groups; OpenSSL would also offer X448,
    // P-521 and the finite-field groups.
    settings
        .set_groups_list("X25519:P-256:P-384")
        .map_err(|e| format!("key exchange groups: {e}"))?;
    if section.min_version == TlsVersion::Tls13 {
        settings
            .set_min_proto_version(Some(SslVersion::TLS1_3))
            .map_err(|e| format!("min_version: {e}"))?;
    }
    // Needed for session resumption once client certificates are verified.
    settings
        .set_session_id_context(b"tollgate")
        .map_err(|e| format!("session id context: {e}"))?;
    let ours: &'static [u8] = match section.http2 {
        true => b"\x02h2\x08http/1.1",
        false => b"\x08http/1.1",
    };
    let challenges = (section.acme.as_ref())
        .filter(|a| a.challenge == ChallengeKind::TlsAlpn01)
        .map(|_| acme);
    settings.set_alpn_select_callback(move |ssl, offered| {
        if let Some(acme) = challenges.as_ref().filter(|_| offers_only_acme(offered)) {
            let name = ssl
                .servername(NameType::HOST_NAME)
                .map(str::to_ascii_lowercase);
            let Some(challenge) = name.and_then(|n| acme.challenge(&n)) else {
                return Err(AlpnError::ALERT_FATAL);
            };
            // TLS 1.2 selects ALPN after the certificate callback: the challenge's
            // certificate replaces the one chosen there (of the same key type).
            return match use_chain(ssl, std::slice::from_ref(&challenge.cert), &challenge.key) {
                Ok(()) => Ok(ACME_TLS_ALPN),
                Err(_) => Err(AlpnError::ALERT_FATAL),
            };
        }
        // Like Pingora's own: no protocol in common is no ALPN (HTTP/1.1).
        select_next_proto(ours, offered).ok_or(AlpnError::NOACK)
    });
    Ok(settings)
}

/// Whether an ALPN list (wire format) is `acme-tls/1` alone, as a validation offers
/// it (RFC 8737 §3): a client offering it among others is served as any client.
fn offers_only_acme(list: &[u8]) -> bool {
    list.split_first() == Some((&(ACME_TLS_ALPN.len() as u8), ACME_TLS_ALPN))
}

#[cfg(test)]
mod tests {
    use super::offers_only_acme;

    #[test]
    fn only_acme_tls_offered_alone_is_a_validation() {
        assert!(offers_only_acme(b"\x0aacme-tls/1"));
        assert!(!offers_only_acme(b"\x02h2\x0aacme-tls/1"));
        assert!(!offers_only_acme(b"\x0aacme-tls/1\x08http/1.1"));
        assert!(!offers_only_acme(b"\x08http/1.1"));
        assert!(!offers_only_acme(b""));
    }
}
