//! One upstream pool: its targets behind a Pingora `LoadBalancer`, the selection
//! algorithm, the in-flight count of every target, and the peer settings (timeouts,
//! TLS) used to reach them.

use futures::FutureExt;
use pingora::http::RequestHeader;
use pingora::lb::discovery::Static;
use pingora::lb::selection::{self, BackendIter, BackendSelection};
use pingora::lb::{Backend, Backends, LoadBalancer};
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora::upstreams::peer::HttpPeer;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::health::health_check;
use super::in_flight::{InFlight, InFlightGuard};
use super::least_conn::LeastConn;
use crate::base::registry::Reusable;
use crate::config::raw::{Balance, HashKey, UpstreamSection};
use crate::ratelimit::InFlightLimit;
use crate::tls::UpstreamTls;

/// Bound on the targets a selection looks at before giving up (ketama walks a ring).
const MAX_SELECTION_STEPS: usize = 256;

pub struct Pool {
    pub name: String,
    definition: PoolDefinition,
    balancer: Box<dyn Balancer>,
    pub retries: usize,
    /// `max_in_flight`: requests to this upstream at once.
    pub in_flight: Option<InFlightLimit>,
}

/// What a pool is built from: its section, and its TLS files as read (so changed
/// certificate files rebuild the pool on reload).
#[derive(Clone, PartialEq)]
pub struct PoolDefinition {
    pub upstream: UpstreamSection,
    pub tls: Option<UpstreamTls>,
}

impl PoolDefinition {
    pub fn load(upstream: &UpstreamSection) -> Result<Self, String> {
        let tls = upstream
            .tls
            .as_ref()
            .map(UpstreamTls::load)
            .transpose()
            .map_err(|e| format!("tls: {e}"))?;
        Ok(Self {
            upstream: upstream.clone(),
            tls,
        })
    }
}

/// Why no target could be chosen; knows its HTTP answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UpstreamError {
    #[error("upstream {0:?}: no healthy target")]
    NoHealthyTarget(String),
    #[error("upstream {0:?}: no untried target left after connect failures")]
    Exhausted(String),
}

impl UpstreamError {
    pub fn status(&self) -> u16 {
        match self {
            UpstreamError::NoHealthyTarget(_) => 503,
            UpstreamError::Exhausted(_) => 502,
        }
    }
}

/// A chosen target; the in-flight count drops when the guard does.
pub struct Selected {
    pub addr: SocketAddr,
    pub guard: InFlightGuard,
}

impl Pool {
    pub fn build(name: &str, definition: &PoolDefinition) -> Result<Self, String> {
        let def = &definition.upstream;
        let targets: BTreeSet<Backend> = def
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
        let mut backends = Backends::new(Static::new(targets));
        if let Some(h) = &def.health {
            backends.set_health_check(health_check(h, definition.tls.as_ref())?);
        }
        let balancer = match def.balance {
            // Weights are refused by validation for round_robin, so both are one algorithm.
            Balance::RoundRobin | Balance::Weighted => balancer::<selection::RoundRobin>(backends),
            Balance::Random => balancer::<selection::Random>(backends),
            Balance::ConsistentHash => balancer::<selection::Consistent>(backends),
            Balance::LeastConn => balancer::<LeastConn>(backends),
        }
        .map_err(|e| format!("upstream {name:?}: {e}"))?;
        Ok(Self {
            name: name.to_owned(),
            definition: definition.clone(),
            balancer,
            retries: def.retries,
            in_flight: def.max_in_flight.map(InFlightLimit::new),
        })
    }

    pub(super) fn health_interval(&self) -> Option<Duration> {
        self.definition.upstream.health.as_ref().map(|h| h.interval)
    }

    pub(super) fn backends(&self) -> &Backends {
        self.balancer.backends()
    }

    /// A healthy target for `req` (whose normalized path is `path`) not in `tried`,
    /// chosen by the pool's algorithm (hashing `hash_key` for `consistent_hash`).
    pub fn select(
        &self,
        req: &RequestHeader,
        path: &str,
        client_ip: IpAddr,
        tried: &[SocketAddr],
    ) -> Result<Selected, UpstreamError> {
        let ip = match client_ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        let hash_input: &[u8] = match &self.definition.upstream.hash_key {
            None => b"",
            Some(HashKey::ClientIp) => &ip,
            Some(HashKey::Path) => path.as_bytes(),
            Some(HashKey::Header(name)) => req.headers.get(name).map_or(b"", |v| v.as_bytes()),
        };
        let accept = |b: &Backend, healthy: bool| {
            healthy && b.addr.as_inet().is_some_and(|a| !tried.contains(a))
        };
        let selected = self
            .balancer
            .select_with(hash_input, &accept)
            .and_then(|backend| {
                let addr = *backend.addr.as_inet()?;
                let guard = backend.ext.get::<InFlight>()?.enter();
                Some(Selected { addr, guard })
            });
        selected.ok_or_else(|| match tried {
            [] => UpstreamError::NoHealthyTarget(self.name.clone()),
            _ => UpstreamError::Exhausted(self.name.clone()),
        })
    }

    /// How to reach `addr`; `read_timeout` overrides the pool's (a route's `timeout`).
    pub fn peer(&self, addr: SocketAddr, read_timeout: Option<Duration>) -> Box<HttpPeer> {
        let d = &self.definition.upstream;
        let mut peer = match &self.definition.tls {
            Some(tls) => tls.peer(addr),
            None => HttpPeer::new(addr, false, String::new()),
        };
        peer.options.connection_timeout = Some(d.connect_timeout);
        peer.options.read_timeout = Some(read_timeout.unwrap_or(d.read_timeout));
        peer.options.write_timeout = Some(d.write_timeout);
        peer.options.idle_timeout = Some(d.idle_timeout);
        Box::new(peer)
    }
}

impl Reusable for Pool {
    type Definition = PoolDefinition;

    fn definition(&self) -> &PoolDefinition {
        &self.definition
    }
}

/// The part of `LoadBalancer<S>` the pool needs, object-safe so one `Pool` type serves
/// every algorithm.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use std::collections::HashMap;
    use std::sync::Arc;

    fn upstream(retries: usize) -> PoolDefinition {
        let text = format!("[listeners.a]\naddr = \"127.0.0.1:1\"\n[upstreams.u]\ntargets = [\"127.0.0.1:2\"]\nretries = {retries}\n");
        PoolDefinition::load(&load_str(&text, "t").expect("valid").raw.upstreams["u"])
            .expect("pool")
    }

    #[test]
    fn registry_reuses_a_committed_pool_only_while_its_definition_is_unchanged() {
        let registry = super::super::PoolRegistry::default();
        let get = |def: &PoolDefinition| {
            registry
                .get_or_build("u", def, || Pool::build("u", def))
                .expect("pool")
        };
        let first = get(&upstream(1));
        assert!(
            !Arc::ptr_eq(&first, &get(&upstream(1))),
            "nothing committed yet"
        );
        registry.commit(HashMap::from([("u".to_owned(), first.clone())]));
        assert!(Arc::ptr_eq(&first, &get(&upstream(1))));
        let changed = get(&upstream(2));
        assert!(!Arc::ptr_eq(&first, &changed));
        assert!(registry.is_current(&first) && !registry.is_current(&changed));
    }
}
