//! An upstream's targets: a Pingora `LoadBalancer` with its selection algorithm, the
//! health checks and health state, the in-flight count of every target and of the
//! whole upstream, and the TLS settings that reach them.
//!
//! Kept across reloads by what they are made of ([`TargetsDefinition`]: the upstream's
//! name, targets, balancing, health checks, TLS with its files as read, and how its
//! DNS names are resolved; see `dns`), so a
//! reload that changes only `retries`, timeouts or `max_in_flight` keeps health and
//! counts. Changing the targets, the algorithm or the checks builds them anew (Pingora
//! builds the health checker and the selection into its balancer).

use futures::future::BoxFuture;
use futures::FutureExt;
use pingora::lb::selection::{self, BackendIter, BackendSelection};
use pingora::lb::{Backend, Backends, LoadBalancer};
use pingora::upstreams::peer::HttpPeer;
use pingora_limits::inflight::Inflight;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::checks::{health_check, LastChecks, Recorded};
use super::dns::{self, Discovery, NamedTarget, TargetSet};
use super::in_flight::InFlight;
use super::least_conn::LeastConn;
use super::outlier::Outlier;
use super::protocol::speak;
use super::retry::RetryBudget;
use crate::base::registry::Reusable;
use crate::config::raw::{
    Balance, HealthSection, TargetAddr, TargetSpec, UpstreamProtocol, UpstreamSection,
};
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
    protocol: UpstreamProtocol,
    resolve_every: Duration,
    allow_unresolved: bool,
    /// `[server] resolver`.
    resolver: Vec<SocketAddr>,
}

impl TargetsDefinition {
    /// Reads the TLS files of `upstream` (a changed file makes another definition).
    pub fn load(
        name: &str,
        upstream: &UpstreamSection,
        resolver: &[SocketAddr],
    ) -> Result<Self, String> {
        Ok(Self {
            name: name.to_owned(),
            targets: upstream.targets.clone(),
            balance: upstream.balance,
            health: upstream.health.clone(),
            tls: upstream.tls.as_ref().map(UpstreamTls::load).transpose()?,
            protocol: upstream.protocol,
            resolve_every: upstream.resolve_every,
            allow_unresolved: upstream.allow_unresolved,
            resolver: resolver.to_vec(),
        })
    }

    /// The target set: address targets as they are, names resolved now (an error for
    /// a name that does not resolve, unless `allow_unresolved`).
    fn target_set(&self) -> Result<TargetSet, String> {
        let mut fixed = Vec::new();
        let mut named = Vec::new();
        for t in &self.targets {
            match t.addr() {
                TargetAddr::Ip(addr) => fixed.push((*addr, t.weight())),
                TargetAddr::Name { host, port } => named.push(NamedTarget {
                    host: host.clone(),
                    port: *port,
                    weight: t.weight(),
                }),
            }
        }
        let hosts: Vec<String> = named.iter().map(|n| n.host.clone()).collect();
        let now = Instant::now();
        let mut due = now + self.resolve_every;
        let mut resolved = Vec::with_capacity(named.len());
        if !hosts.is_empty() {
            for answer in dns::lookup_blocking(&self.resolver, &hosts) {
                match answer {
                    Ok(answer) => {
                        due = due.min(answer.valid_until);
                        resolved.push(answer.addrs);
                    }
                    Err(e) if self.allow_unresolved => {
                        log::warn!("upstream {}: {e}; it joins once it resolves", self.name);
                        due = now;
                        resolved.push(Vec::new());
                    }
                    Err(e) => {
                        return Err(format!("{e} (allow_unresolved = true starts without it)"))
                    }
                }
            }
        }
        Ok(TargetSet::new(fixed, named, resolved, due))
    }
}

pub struct Targets {
    definition: TargetsDefinition,
    set: Arc<TargetSet>,
    balancer: Box<dyn Balancer>,
    /// Plaintext targets speak HTTP/2 with prior knowledge (`protocol = "h2c"`).
    h2c: bool,
    last_checks: LastChecks,
    /// Requests in flight to this upstream (its `max_in_flight` counts here).
    pub in_flight: Arc<Inflight>,
    /// Requests and retries of the current window (`retry_budget`).
    pub retry_budget: RetryBudget,
    /// Whether the last request found no healthy target (logged when it changes).
    unavailable: AtomicBool,
}

impl Reusable for Targets {
    type Definition = TargetsDefinition;

    fn definition(&self) -> &TargetsDefinition {
        &self.definition
    }
}

impl Targets {
    pub fn build(definition: &TargetsDefinition) -> Result<Self, String> {
        let set = Arc::new(definition.target_set()?);
        let mut backends = Backends::new(Box::new(Discovery(set.clone())));
        let last_checks = LastChecks::default();
        if let Some(h) = &definition.health {
            backends.set_health_check(Box::new(Recorded {
                inner: health_check(h, definition.tls.as_ref(), definition.protocol)?,
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
            set,
            balancer,
            h2c: definition.protocol == UpstreamProtocol::H2c,
            last_checks,
            in_flight: Arc::new(Inflight::new()),
            retry_budget: RetryBudget::default(),
            unavailable: AtomicBool::new(false),
        })
    }

    /// Records whether a request found a healthy target; the change is logged once
    /// at WARN (the 503s it answers are not: one line per request would flood the log
    /// while an upstream is down).
    pub fn found_healthy(&self, found: bool) {
        // The load keeps the usual case (nothing changed) free of a write.
        let unavailable = !found;
        if self.unavailable.load(Relaxed) == unavailable
            || self.unavailable.swap(unavailable, Relaxed) == unavailable
        {
            return;
        }
        let name = &self.definition.name;
        match found {
            false => log::warn!(
                "upstream {name:?}: no healthy target; its routes answer 503 until one is healthy again"
            ),
            true => log::warn!("upstream {name:?}: a healthy target again; its routes are served"),
        }
    }

    /// Its targets that are healthy, and all of them.
    pub fn health_counts(&self) -> (usize, usize) {
        let backends = self.backends();
        let all = backends.get_backend();
        let healthy = all.iter().filter(|b| backends.ready(b)).count();
        (healthy, all.len())
    }

    /// Every target with its weight, health, requests in flight and last check, as
    /// JSON for the admin listener (`now_ms`: the clock's monotonic reading).
    pub fn status(&self, now_ms: u64) -> serde_json::Value {
        let backends = self.backends();
        let now = now_ms;
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
                let ejected_ms = b
                    .ext
                    .get::<Outlier>()
                    .map_or(0, |o| o.ejected_until().saturating_sub(now));
                serde_json::json!({
                    "addr": b.addr.to_string(),
                    "weight": b.weight,
                    "healthy": backends.ready(b),
                    "ejected_for_ms": ejected_ms,
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

    pub(super) fn set(&self) -> &Arc<TargetSet> {
        &self.set
    }

    pub(super) fn resolve_every(&self) -> Duration {
        self.definition.resolve_every
    }

    pub(super) fn resolver_servers(&self) -> &[SocketAddr] {
        &self.definition.resolver
    }

    /// Has the balancer discover the target set again (after names resolved anew).
    pub(super) async fn rediscover(&self) -> pingora::Result<()> {
        self.balancer.update().await
    }

    /// Whether a healthy target not in `tried` is left.
    pub(super) fn has_untried(&self, tried: &[SocketAddr]) -> bool {
        let backends = self.backends();
        backends
            .get_backend()
            .iter()
            .any(|b| backends.ready(b) && b.addr.as_inet().is_some_and(|a| !tried.contains(a)))
    }

    /// Whether a target other than `addr` is healthy and not ejected at `now_ms`.
    pub(super) fn others_up(&self, addr: SocketAddr, now_ms: u64) -> bool {
        let backends = self.backends();
        backends.get_backend().iter().any(|b| {
            b.addr.as_inet() != Some(&addr)
                && backends.ready(b)
                && b.ext.get::<Outlier>().is_none_or(|o| !o.ejected(now_ms))
        })
    }

    /// The targets' addresses, for the log.
    pub(super) fn addresses(&self) -> Vec<String> {
        let backends = self.backends().get_backend();
        backends.iter().map(|b| b.addr.to_string()).collect()
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
            None => {
                let mut peer = HttpPeer::new(addr, false, String::new());
                speak(&mut peer, self.h2c);
                peer
            }
        }
    }
}

/// The part of `LoadBalancer<S>` targets need, object-safe so one `Targets` type
/// serves every algorithm.
trait Balancer: Send + Sync {
    fn select_with(&self, key: &[u8], accept: &dyn Fn(&Backend, bool) -> bool) -> Option<Backend>;
    fn backends(&self) -> &Backends;
    fn update(&self) -> BoxFuture<'_, pingora::Result<()>>;
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

    fn update(&self) -> BoxFuture<'_, pingora::Result<()>> {
        LoadBalancer::update(self).boxed()
    }
}

fn balancer<S>(backends: Backends) -> Result<Box<dyn Balancer>, String>
where
    S: BackendSelection + Send + Sync + 'static,
    S::Iter: BackendIter,
    S::Config: Send + Sync,
{
    let lb = LoadBalancer::<S>::from_backends(backends);
    // Discovering a target set completes without awaiting anything.
    match lb.update().now_or_never() {
        Some(Ok(())) => Ok(Box::new(lb)),
        Some(Err(e)) => Err(format!("cannot load targets: {e}")),
        None => Err("target discovery did not complete".to_owned()),
    }
}
