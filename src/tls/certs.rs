//! A listener's server certificates: read from their PEM files, checked (readable,
//! key matches, within validity), and indexed by name for SNI selection: an exact
//! name first, then a `*.parent` wildcard one label up, else the first certificate.

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509Ref, X509};
use std::collections::HashMap;

use super::read_pair;
use crate::config::location::{Problems, TomlPath};
use crate::config::raw::CertificateSection;

/// Certificates expiring sooner than this are warned about.
pub const EXPIRY_WARNING_DAYS: u32 = 14;

pub struct ServerCert {
    pub chain: Vec<X509>,
    pub key: PKey<Private>,
    /// The certificate file, naming it in metrics.
    pub path: String,
    /// Validity as seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
}

impl ServerCert {
    /// A chain and its key as PEM (what ACME gives), named `label` in metrics.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8], label: String) -> Result<Self, String> {
        let chain = X509::stack_from_pem(chain_pem).map_err(|e| format!("certificate: {e}"))?;
        let key = PKey::private_key_from_pem(key_pem).map_err(|_| "not a PEM private key")?;
        if !super::belong_together(&chain, &key) {
            return Err("the key does not match the certificate".into());
        }
        Ok(ServerCert {
            not_before: unix_time(chain[0].not_before()),
            not_after: unix_time(chain[0].not_after()),
            chain,
            key,
            path: label,
        })
    }

    /// The DNS names the leaf certifies.
    pub fn names(&self) -> Vec<String> {
        dns_names(&self.chain[0])
    }
}

pub struct CertStore {
    /// Never empty: `load` refuses an empty list.
    certs: Vec<ServerCert>,
    exact: HashMap<String, usize>,
    /// `*.example.com` is stored as `example.com`.
    wildcard: HashMap<String, usize>,
}

/// What loading found: errors (with their place) refuse the config, warnings
/// (`place: message`) are only reported.
#[derive(Debug, Default)]
pub struct Findings {
    pub errors: Problems,
    pub warnings: Vec<String>,
}

impl CertStore {
    /// Reads `sections` (reported under `at`, e.g. `listeners.web.tls`). Every
    /// certificate is read even after one failed, so all problems are reported.
    pub fn load(
        sections: &[CertificateSection],
        at: &TomlPath,
        found: &mut Findings,
    ) -> Option<Self> {
        let mut store = CertStore {
            certs: Vec::new(),
            exact: HashMap::new(),
            wildcard: HashMap::new(),
        };
        for (i, section) in sections.iter().enumerate() {
            let place = at.key("certificates").index(i);
            let (chain, key) = match read_pair(&section.cert, &section.key) {
                Ok(pair) => pair,
                Err(e) => {
                    found.errors.push((place, e));
                    continue;
                }
            };
            let leaf = &chain[0];
            match validity(leaf) {
                Validity::Expired(when) => {
                    found.errors.push((
                        place,
                        format!("{} expired on {when}", section.cert.display()),
                    ));
                    continue;
                }
                Validity::NotYet(when) => {
                    found.errors.push((
                        place,
                        format!("{} is not valid before {when}", section.cert.display()),
                    ));
                    continue;
                }
                Validity::ExpiresSoon(when) => found.warnings.push(format!(
                    "{place}: {} expires on {when}, within {EXPIRY_WARNING_DAYS} days",
                    section.cert.display()
                )),
                Validity::Good => {}
            }
            let names = if section.server_names.is_empty() {
                dns_names(leaf)
            } else {
                section.server_names.clone()
            };
            let index = store.certs.len();
            for name in names {
                let name = name.to_ascii_lowercase();
                // The first certificate listed for a name keeps it.
                match name.strip_prefix("*.") {
                    Some(parent) => store.wildcard.entry(parent.to_owned()),
                    None => store.exact.entry(name),
                }
                .or_insert(index);
            }
            store.certs.push(ServerCert {
                not_before: unix_time(leaf.not_before()),
                not_after: unix_time(leaf.not_after()),
                chain,
                key,
                path: section.cert.display().to_string(),
            });
        }
        (found.errors.is_empty() && !store.certs.is_empty()).then_some(store)
    }

    /// The certificate for a client's SNI, in lower case (`None`: no name sent).
    pub fn select(&self, sni: Option<&str>) -> &ServerCert {
        let index = sni
            .and_then(|name| {
                self.exact.get(name).or_else(|| {
                    let parent = name.split_once('.')?.1;
                    self.wildcard.get(parent)
                })
            })
            .copied()
            .unwrap_or(0);
        &self.certs[index]
    }

    pub fn iter(&self) -> impl Iterator<Item = &ServerCert> {
        self.certs.iter()
    }
}

fn unix_time(t: &Asn1TimeRef) -> i64 {
    Asn1Time::from_unix(0)
        .and_then(|epoch| epoch.diff(t))
        .map_or(0, |d| i64::from(d.days) * 86_400 + i64::from(d.secs))
}

enum Validity {
    Good,
    ExpiresSoon(String),
    Expired(String),
    NotYet(String),
}

fn validity(cert: &X509Ref) -> Validity {
    let (Ok(now), Ok(soon)) = (
        Asn1Time::days_from_now(0),
        Asn1Time::days_from_now(EXPIRY_WARNING_DAYS),
    ) else {
        return Validity::Good;
    };
    let (not_before, not_after) = (cert.not_before(), cert.not_after());
    if not_after < now {
        Validity::Expired(not_after.to_string())
    } else if not_before > now {
        Validity::NotYet(not_before.to_string())
    } else if not_after < soon {
        Validity::ExpiresSoon(not_after.to_string())
    } else {
        Validity::Good
    }
}

/// The DNS names of the certificate's subject alternative names, or its subject
/// common name when it has none.
fn dns_names(cert: &X509Ref) -> Vec<String> {
    let sans: Vec<String> = cert
        .subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.dnsname().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if !sans.is_empty() {
        return sans;
    }
    cert.subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .filter_map(|e| e.data().to_string().ok())
        .collect()
}
