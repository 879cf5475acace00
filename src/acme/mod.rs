//! Automatic certificates (`[acme]`, a TLS listener's `tls.acme`): ordered from any
//! RFC 8555 CA, kept in storage, served by SNI, renewed before they expire.
//!
//! - `challenge`: HTTP-01 tokens and the stage answering them on plain listeners;
//! - `order`: the account and one order (TLS-ALPN-01 answered by `tls`' handshakes);
//! - `proof`: keys, certificate requests, TLS-ALPN-01 certificates;
//! - `storage`: where the account and certificates are kept (`etcd`: on a fleet,
//!   with the lock that lets one node order a set at a time);
//! - `schedule`: when to renew, how long to wait after a failure;
//! - `managed`: one background chore per set of domains, which serves the stored
//!   certificate at once, orders when there is none or renewal is due, and backs off
//!   after failures;
//! - `status`: `tollgate acme status`.
//!
//! Nothing here holds a request: ordering runs in the background, and a name without
//! a certificate has its handshakes refused (said in the log and at `/readyz`) while
//! every other name is served.

mod challenge;
mod etcd;
mod managed;
mod order;
mod proof;
mod schedule;
pub mod status;
mod storage;

pub use challenge::{install as install_http01, HttpTokens, CHALLENGE_PATH};
pub use managed::{Managed, SetStatus};
pub use storage::Storage;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::base::background::Making;
use crate::base::clock::Clock;
use crate::config::location::{Problems, TomlPath};
use crate::config::raw::{AcmeStorage, ChallengeKind, RawConfig};
use crate::observability::Metrics;
use crate::tls::AcmeCerts;
use etcd::EtcdStorage;
use storage::DirStorage;

/// What outlives configs: the certificates served, the challenges in flight, the
/// account in use.
#[derive(Default)]
pub struct AcmeState {
    pub certs: Arc<AcmeCerts>,
    pub tokens: Arc<HttpTokens>,
    /// The account, by the directory URL it belongs to.
    account: tokio::sync::Mutex<Option<(String, instant_acme::Account)>>,
}

/// Domains ordered together in one certificate, and the listeners serving it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSet {
    /// Its name in storage, metrics and logs: the first domain listed.
    pub id: String,
    pub domains: Vec<String>,
    pub challenge: ChallengeKind,
    pub listeners: Vec<String>,
}

/// The sets of `raw`'s listeners (listeners naming the same domains share one).
pub fn cert_sets(raw: &RawConfig) -> Vec<CertSet> {
    let mut sets: BTreeMap<Vec<String>, CertSet> = BTreeMap::new();
    for (listener, section) in &raw.listeners {
        let Some(acme) = section.tls.as_ref().and_then(|t| t.acme.as_ref()) else {
            continue;
        };
        let Some(first) = acme.domains.first() else {
            continue;
        };
        let mut key = acme.domains.clone();
        key.sort_unstable();
        sets.entry(key)
            .or_insert_with(|| CertSet {
                id: first.clone(),
                domains: acme.domains.clone(),
                challenge: acme.challenge,
                listeners: Vec::new(),
            })
            .listeners
            .push(listener.clone());
    }
    sets.into_values().collect()
}

/// The storage `[acme]` names (`None` without `[acme]`, or with a problem, reported).
/// `"etcd"` is reached through the node's `[fleet]`: a cluster's document has none
/// (each node adds its own), so without one this file orders nothing, and says so.
pub fn storage(
    raw: &RawConfig,
    problems: &mut Problems,
    warnings: &mut Vec<String>,
) -> Option<Arc<Storage>> {
    let settings = raw.acme.as_ref()?;
    match (&settings.storage, &raw.fleet) {
        (AcmeStorage::Dir(dir), _) => Some(Arc::new(Storage::Dir(DirStorage::new(dir.clone())))),
        (AcmeStorage::Etcd, Some(fleet)) => match EtcdStorage::new(fleet) {
            Ok(etcd) => Some(Arc::new(Storage::Etcd(Box::new(etcd)))),
            Err(e) => {
                problems.push((TomlPath::root().key("acme").key("storage"), e));
                None
            }
        },
        (AcmeStorage::Etcd, None) => {
            warnings.push(
                "acme.storage: \"etcd\" is the fleet's: without [fleet] (a cluster's document), \
                 only the nodes that run it order certificates"
                    .into(),
            );
            None
        }
    }
}

/// The chores of `raw`'s sets (kept across reloads while the set and `[acme]` are
/// unchanged).
pub fn plan(
    raw: &RawConfig,
    storage: Option<&Arc<Storage>>,
    state: &Arc<AcmeState>,
    metrics: &Arc<Metrics>,
    clock: &Clock,
    making: &Making<'_>,
    problems: &mut Problems,
) -> Vec<Arc<Managed>> {
    let (Some(settings), Some(storage)) = (&raw.acme, storage) else {
        return Vec::new();
    };
    let settings = Arc::new(settings.clone());
    let mut managed = Vec::new();
    for set in cert_sets(raw) {
        let definition = format!("{settings:?} {set:?}");
        let built = making.get_or_build(&format!("acme {}", set.id), definition, || {
            Ok(Managed::new(
                set.clone(),
                settings.clone(),
                storage.clone(),
                state.clone(),
                metrics.clone(),
                clock.clone(),
            ))
        });
        match built {
            Ok(m) => managed.push(m),
            Err(e) => problems.push((TomlPath::root().key("acme"), e)),
        }
    }
    managed
}
