//! A TLS listener. Its acceptor (protocol versions, Mozilla "intermediate" ciphers,
//! ALPN, session resumption) is built once at start; per handshake, [`Handshakes`]
//! picks the certificate for the client's SNI and applies client-certificate
//! verification from the current [`ListenerTls`], which a reload swaps atomically:
//! new handshakes use the new certificates, open connections keep theirs.

use arc_swap::ArcSwap;
use async_trait::async_trait;
use openssl::ssl::{NameType, SslOptions, SslVerifyMode, SslVersion};
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::{X509Name, X509NameRef, X509VerifyResult, X509};
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{TlsAccept, ALPN};
use pingora::protocols::tls::TlsRef;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::certs::{CertStore, Findings};
use super::client_cert::ClientCert;
use super::read_certs;
use crate::config::location::TomlPath;
use crate::config::raw::{ClientAuth, ListenerTlsSection, TlsVersion};
use crate::observability::Metrics;

/// What a listener's handshakes use, rebuilt (files re-read) on every reload.
pub struct ListenerTls {
    certs: CertStore,
    client: Option<ClientVerification>,
}

struct ClientVerification {
    mode: SslVerifyMode,
    store: X509Store,
    /// Subjects of the CAs, sent to clients to help them pick a certificate.
    ca_names: Vec<X509Name>,
}

impl ListenerTls {
    pub fn certificates(&self) -> impl Iterator<Item = &super::certs::ServerCert> {
        self.certs.iter()
    }

    /// Reads the certificates and client CA of `section` (reported under `at`).
    pub fn load(section: &ListenerTlsSection, at: &TomlPath, found: &mut Findings) -> Option<Self> {
        let certs = CertStore::load(&section.certificates, at, found);
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
        match certs {
            Some(certs) if found.errors.is_empty() => Some(ListenerTls { certs, client }),
            _ => None,
        }
    }
}

fn client_verification(
    path: &std::path::Path,
    auth: ClientAuth,
) -> Result<ClientVerification, String> {
    let cas: Vec<X509> = read_certs(path)?;
    let mut store = X509StoreBuilder::new().map_err(|e| e.to_string())?;
    for ca in &cas {
        store
            .add_cert(ca.clone())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let mode = match auth {
        ClientAuth::Require => SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        ClientAuth::Optional | ClientAuth::None => SslVerifyMode::PEER,
    };
    Ok(ClientVerification {
        mode,
        store: store.build(),
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
    pub metrics: Arc<Metrics>,
}

#[async_trait]
impl TlsAccept for Handshakes {
    async fn certificate_callback(&self, ssl: &mut TlsRef) {
        let tls = self.current.load();
        let cert = tls.certs.select(ssl.servername(NameType::HOST_NAME));
        let mut result = pingora::tls::ext::ssl_use_certificate(ssl, &cert.chain[0])
            .and_then(|()| pingora::tls::ext::ssl_use_private_key(ssl, &cert.key));
        for intermediate in &cert.chain[1..] {
            result = result.and_then(|()| pingora::tls::ext::ssl_add_chain_cert(ssl, intermediate));
        }
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
    settings.set_alpn(if section.http2 { ALPN::H2H1 } else { ALPN::H1 });
    Ok(settings)
}
