//! What outlives snapshots: the registries of reusable state (upstream pools, remote
//! key sets, rate-limit buckets, jails), the TLS listeners' certificate slots, ACME's
//! certificates and challenges, the metrics, the traffic stats, anomaly detection and
//! the security log. Owned by the process, shared with the reloader, the background
//! services and the proxy.

use std::sync::Arc;

use super::Snapshot;
use crate::acme::AcmeState;
use crate::anomaly::Detection;
use crate::auth::jwks::JwksRegistry;
use crate::base::background::BackgroundRegistry;
use crate::base::clock::Clock;
use crate::jail::JailsRegistry;
use crate::observability::{JsonLines, Metrics, SecurityLog};
use crate::ratelimit::{BucketsRegistry, RedisRegistry};
use crate::stats::Stats;
use crate::tls::TlsSlots;
use crate::upstream::TargetsRegistry;

pub struct Retained {
    pub targets: Arc<TargetsRegistry>,
    pub jwks: Arc<JwksRegistry>,
    pub buckets: Arc<BucketsRegistry>,
    pub redis: Arc<RedisRegistry>,
    pub jails: Arc<JailsRegistry>,
    /// The chores stages asked for (`base::background`).
    pub background: Arc<BackgroundRegistry>,
    pub tls: TlsSlots,
    /// ACME's certificates, challenges in flight and account.
    pub acme: Arc<AcmeState>,
    pub metrics: Arc<Metrics>,
    /// Where stages write their security events (its file is fixed at start).
    pub security_log: SecurityLog,
    /// What every time-based rule reads.
    pub clock: Clock,
    /// The console's traffic counts (`GET /stats`) and the request totals.
    pub stats: Arc<Stats>,
    /// Anomaly detection's counts, baselines and recent findings.
    pub anomaly: Arc<Detection>,
}

impl Retained {
    pub fn new(metrics: Arc<Metrics>, security_log: SecurityLog, clock: Clock) -> Self {
        Self {
            targets: Arc::default(),
            jwks: Arc::default(),
            buckets: Arc::default(),
            redis: Arc::default(),
            jails: Arc::default(),
            background: Arc::default(),
            tls: TlsSlots::default(),
            acme: Arc::default(),
            metrics,
            security_log,
            clock,
            stats: Arc::default(),
            anomaly: Arc::default(),
        }
    }

    /// What compiling a config needs when it is only checked: the system clock, and
    /// a security log that writes nothing.
    pub fn for_check(metrics: Arc<Metrics>) -> Self {
        let security_log = SecurityLog::new(JsonLines::default(), metrics.clone());
        Self::new(metrics, security_log, Clock::system())
    }

    /// Makes the snapshot's pools and key sets current (after it was swapped in).
    pub fn commit(&self, snapshot: &Snapshot) {
        self.targets.commit(
            snapshot
                .pools
                .iter()
                .map(|(name, pool)| (name.clone(), pool.targets().clone()))
                .collect(),
        );
        self.jwks.commit(snapshot.auth.jwks.clone());
        self.buckets.commit(
            snapshot
                .rate_limits
                .iter()
                .map(|(name, policy)| (name.clone(), policy.buckets().clone()))
                .collect(),
        );
        self.redis.commit(snapshot.redis.clone());
        self.jails.commit(
            snapshot
                .jails
                .by_name
                .iter()
                .map(|(name, jail)| {
                    jail.state.set_max_keys(jail.max_keys());
                    (name.clone(), jail.state.clone())
                })
                .collect(),
        );
        self.background.commit(snapshot.background.clone());
        self.tls.commit(&snapshot.tls);
        self.metrics
            .tls_certificates(snapshot.tls.iter().flat_map(|(listener, tls)| {
                tls.certificates()
                    .map(move |c| (listener.as_str(), c.path.as_str(), c.not_after))
            }));
    }
}
