//! An upstream's targets: a Pingora `LoadBalancer` with its selection algorithm, the
//! health checks and health state, the in-flight count of every target and of the
//! whole upstream, and the TLS settings that reach them.
//!
//! Kept across reloads by what they are made of ([`TargetsDefinition`]: the upstream's
//! name, targets, balancing, health checks and TLS with its files as read), so a
//! reload that changes only `retries`, timeouts or `max_in_flight` keeps health and
//! counts. Changing the targets, the algorithm or the checks builds them anew (Pingora
//! builds the health checker and the selection into its balancer).

use futures::FutureExt;
use pingora::lb::discovery::Static;
use pingora::lb::selection::{self, BackendIter, BackendSelection};
use pingora::lb::{Backend, Backends, LoadBalancer};
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora::upstreams::peer::HttpPeer;
use pingora_limits::inflight::Inflight;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::checks::{LastChecks, Recorded};
use super::health::health_check;
use super::in_flight::InFlight;
use super::least_conn::LeastConn;
use crate::base::registry::Reusable;
use crate::config::raw::{Balance, HealthSection, TargetSpec, UpstreamSection};
use crate::tls::UpstreamTls;

/// Bound on the targets a selection looks at before giving up (ketama walks a ring).
const MAX_SELECTION_STEPS: usize = 256;

/// What targets are built from; equal definitions share targets across reloads.
#[derive(Clone, PartialEq)]
pub struct TargetsDefinition {
    name: String,
    targets: Vec<TargetSpec>,
    balance: Balance,
    health: Option<HealthSection>,
    tls: Option<UpstreamTls>,
}

impl TargetsDefinition {
    /// Reads the TLS files of `upstream` (a changed file makes another definition).
    pub fn load(name: &str, upstream: &UpstreamSection) -> Result<Self, String> {
        Ok(Self {
            name: name.to_owned(),
            targets: upstream.targets.clone(),
            balance: upstream.balance,
            health: upstream.health.clone(),
            tls: upstream.tls.as_ref().map(UpstreamTls::load).transpose()?,
        })
    }
}

pub struct Targets {
    definition: TargetsDefinition,
    balancer: Box<dyn Balancer>,
    last_checks: LastChecks,
    /// Requests in flight to this upstream (its `max_in_flight` counts here).
    pub in_flight: Arc<Inflight>,
}

impl Reusable for Targets {
    type Definition = TargetsDefinition;

    fn definition(&self) -> &TargetsDefinition {
        &self.definition
    }
}

impl Targets {
    pub fn build(definition: &TargetsDefinition) -> Result<Self, String> {
        let backends: BTreeSet<Backend> = definition
            .targets
            .iter()
            .map(|t| {
                let mut b = Backend {
                    addr: PeerAddr::Inet(t.addr()),
                    weight: t.weight(),
                    ext: Default::default(),
                };
                b.ext.insert(InFlight::default());
                b
            })
            .collect();
        let mut backends = Backends::new(Static::new(backends));
        let last_checks = LastChecks::default();
        if let Some(h) = &definition.health {
            backends.set_health_check(Box::new(Recorded {
                inner: health_check(h, definition.tls.as_ref())?,
                last: last_checks.clone(),
            }));
        }
        let balancer = match definition.balance {
            // Weights are refused by validation for round_robin, so both are one algorithm.
            Balance::RoundRobin | Balance::Weighted => balancer::<selection::RoundRobin>(backends),
            Balance::Random => balancer::<selection::Random>(backends),
            Balance::ConsistentHash => balancer::<selection::Consistent>(backends),
            Balance::LeastConn => balancer::<LeastConn>(backends),
        }?;
        Ok(Self {
            definition: definition.clone(),
            balancer,
            last_checks,
            in_flight: Arc::new(Inflight::new()),
        })
    }

    /// Every target with its weight, health, requests in flight and last check, as
    /// JSON for the admin listener.
    pub fn status(&self) -> serde_json::Value {
        let backends = self.backends();
        let targets: Vec<serde_json::Value> = backends
            .get_backend()
            .iter()
            .map(|b| {
                let addr = b.addr.as_inet().copied();
                let last = addr.and_then(|a| self.last_checks.get(&a)).map(|c| {
                    serde_json::json!({
                        "at": humantime::format_rfc3339_seconds(c.at).to_string(),
                        "ok": c.error.is_none(),
                        "error": c.error,
                    })
                });
                serde_json::json!({
                    "addr": b.addr.to_string(),
                    "weight": b.weight,
                    "healthy": backends.ready(b),
                    "in_flight": b.ext.get::<InFlight>().map_or(0, InFlight::current),
                    "last_check": last,
                })
            })
            .collect();
        serde_json::json!({
            "balance": self.definition.balance,
            "health_checks": self.definition.health.is_some(),
            "targets": targets,
        })
    }

    pub fn name(&self) -> &str {
        &self.definition.name
    }

    pub(super) fn health_interval(&self) -> Option<Duration> {
        self.definition.health.as_ref().map(|h| h.interval)
    }

    pub(super) fn backends(&self) -> &Backends {
        self.balancer.backends()
    }

    /// A healthy backend that `accept`s, chosen by the algorithm (hashing `key`).
    pub(super) fn select(
        &self,
        key: &[u8],
        accept: &dyn Fn(&Backend, bool) -> bool,
    ) -> Option<Backend> {
        self.balancer.select_with(key, accept)
    }

    /// A peer for `addr`, over TLS when the upstream has it.
    pub(super) fn peer(&self, addr: SocketAddr) -> HttpPeer {
        match &self.definition.tls {
            Some(tls) => tls.peer(addr),
            None => HttpPeer::new(addr, false, String::new()),
        }
    }
}

/// The part of `LoadBalancer<S>` targets need, object-safe so one `Targets` type
/// serves every algorithm.
trait Balancer: Send + Sync {
    fn select_with(&self, key: &[u8], accept: &dyn Fn(&Backend, bool) -> bool) -> Option<Backend>;
    fn backends(&self) -> &Backends;
}

impl<S> Balancer for LoadBalancer<S>
where
    S: BackendSelection + Send + Sync + 'static,
    S::Iter: BackendIter,
    S::Config: Send + Sync,
{
    fn select_with(&self, key: &[u8], accept: &dyn Fn(&Backend, bool) -> bool) -> Option<Backend> {
        LoadBalancer::select_with(self, key, MAX_SELECTION_STEPS, accept)
    }

    fn backends(&self) -> &Backends {
        LoadBalancer::backends(self)
    }
}

fn balancer<S>(backends: Backends) -> Result<Box<dyn Balancer>, String>
where
    S: BackendSelection + Send + Sync + 'static,
    S::Iter: BackendIter,
    S::Config: Send + Sync,
{
    let lb = LoadBalancer::<S>::from_backends(backends);
    // Static discovery completes without awaiting anything.
    match lb.update().now_or_never() {
        Some(Ok(())) => Ok(Box::new(lb)),
        Some(Err(e)) => Err(format!("cannot load targets: {e}")),
        None => Err("target discovery did not complete".to_owned()),
    }
}
