//! Targets named by DNS name: every address a name resolves to is a target.
//!
//! A [`TargetSet`] is what Pingora's balancer discovers: the address targets, and the
//! last good addresses of every name. Names are resolved when the targets are built
//! (at start, and at a reload that changes them: a name that does not resolve then
//! is a config error unless `allow_unresolved`), then again in the background
//! (`refresh::dns_refreshes`) every `resolve_every`, or when the answer's TTL ends if that
//! is sooner (at most once a second; 5 s after a failure: `refresh`). A change joins
//! or removes targets without a reload; the targets that stay keep their health and
//! in-flight counts (Pingora keeps health by the backend's hash, and the set reuses
//! the same `Backend`).
//!
//! Resolution never blocks a request: requests use the set as it is. A name that
//! stops resolving keeps its last good addresses; every background outcome is
//! counted in `tollgate_dns_resolutions_total{upstream,outcome}` and a failure is
//! logged. A name's first 64 usable addresses become targets (unspecified, multicast
//! and broadcast addresses are nobody's).
//! Resolver: hickory's, with the system's configuration (`/etc/hosts` first, then
//! `/etc/resolv.conf`), or `[server] resolver` when set.

use arc_swap::ArcSwap;
use async_trait::async_trait;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;
use pingora::lb::discovery::ServiceDiscovery;
use pingora::lb::Backend;
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::in_flight::InFlight;
use super::outlier::Outlier;

/// Addresses of one name that become targets, at most (the lowest, in order).
const MAX_ADDRESSES: usize = 64;
/// Resolving the names of a config being loaded takes this long at most.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// A target named by DNS: every address of `host` on `port`, with `weight`.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTarget {
    pub host: String,
    pub port: u16,
    pub weight: usize,
}

/// One lookup's answer: the addresses, and until when the answer is valid.
pub struct Answer {
    pub addrs: Vec<IpAddr>,
    pub valid_until: Instant,
}

/// A resolver with `servers`, or the system's configuration when there are none.
pub fn resolver(servers: &[SocketAddr]) -> Result<TokioResolver, String> {
    let provider = TokioConnectionProvider::default();
    let mut builder = match servers {
        [] => TokioResolver::builder(provider)
            .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?,
        _ => {
            let mut group = NameServerConfigGroup::new();
            for server in servers {
                group.merge(NameServerConfigGroup::from_ips_clear(
                    &[server.ip()],
                    server.port(),
                    true,
                ));
            }
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], group),
                provider,
            )
        }
    };
    // Every round asks again; the answer's TTL schedules the next round.
    builder.options_mut().cache_size = 0;
    Ok(builder.build())
}

pub async fn lookup(resolver: &TokioResolver, host: &str) -> Result<Answer, String> {
    // A trailing dot: the name is absolute, never completed by search domains.
    let absolute = format!("{}.", host.trim_end_matches('.'));
    let found = resolver
        .lookup_ip(absolute)
        .await
        .map_err(|e| format!("cannot resolve {host:?}: {e}"))?;
    // No target at an address that is nobody's (unspecified, multicast, broadcast).
    let mut addrs: Vec<IpAddr> = found.iter().filter(usable).collect();
    addrs.sort();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(format!("{host:?} has no usable address"));
    }
    if addrs.len() > MAX_ADDRESSES {
        log::warn!(
            "{host:?} has {} addresses: the first {MAX_ADDRESSES} become targets",
            addrs.len()
        );
        addrs.truncate(MAX_ADDRESSES);
    }
    Ok(Answer {
        addrs,
        valid_until: found.valid_until(),
    })
}

/// Resolves `hosts` from synchronous code (building targets at load time), together,
/// within [`LOAD_TIMEOUT`], on a thread of its own: the caller may be inside
/// Pingora's runtime (a reload), which waits that long at most.
pub fn lookup_blocking(servers: &[SocketAddr], hosts: &[String]) -> Vec<Result<Answer, String>> {
    let count = hosts.len();
    let (servers, hosts) = (servers.to_vec(), hosts.to_vec());
    let resolve = move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a resolver runtime: {e}"))?;
        let resolver = resolver(&servers)?;
        let all = futures::future::join_all(hosts.iter().map(|h| lookup(&resolver, h)));
        runtime
            .block_on(async { tokio::time::timeout(LOAD_TIMEOUT, all).await })
            .map_err(|_| format!("resolving took over {LOAD_TIMEOUT:?}"))
    };
    let failed = |e: String| (0..count).map(|_| Err(e.clone())).collect();
    match std::thread::spawn(resolve).join() {
        Ok(Ok(answers)) => answers,
        Ok(Err(e)) => failed(e),
        Err(_) => failed("the resolver thread failed".to_owned()),
    }
}

fn usable(ip: &IpAddr) -> bool {
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    !(ip.is_unspecified() || ip.is_multicast() || broadcast)
}

/// A target of the set: the backend Pingora balances over.
pub fn backend(addr: SocketAddr, weight: usize) -> Backend {
    let mut b = Backend {
        addr: PeerAddr::Inet(addr),
        weight,
        ext: Default::default(),
    };
    b.ext.insert(InFlight::default());
    b.ext.insert(Outlier::default());
    b
}

/// An upstream's targets as the balancer discovers them: its address targets and
/// the last good addresses of each of its names.
pub struct TargetSet {
    fixed: Vec<(SocketAddr, usize)>,
    pub named: Vec<NamedTarget>,
    /// The last good addresses of each name of `named`, in its order.
    resolved: std::sync::Mutex<Vec<Vec<IpAddr>>>,
    backends: ArcSwap<BTreeSet<Backend>>,
    /// When the names are due again (the first background round).
    pub first_due: Instant,
}

impl TargetSet {
    pub fn new(
        fixed: Vec<(SocketAddr, usize)>,
        named: Vec<NamedTarget>,
        resolved: Vec<Vec<IpAddr>>,
        first_due: Instant,
    ) -> Self {
        let set = Self {
            fixed,
            named,
            resolved: std::sync::Mutex::new(resolved),
            backends: ArcSwap::from_pointee(BTreeSet::new()),
            first_due,
        };
        set.rebuild();
        set
    }

    pub fn has_names(&self) -> bool {
        !self.named.is_empty()
    }

    /// Records name `i`'s new addresses and rebuilds the set; whether it changed.
    pub fn store(&self, i: usize, addrs: Vec<IpAddr>) -> bool {
        {
            let mut resolved = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
            if resolved.get(i) == Some(&addrs) {
                return false;
            }
            if let Some(slot) = resolved.get_mut(i) {
                *slot = addrs;
            }
        }
        self.rebuild();
        true
    }

    /// The backends of the address targets and of every name's addresses. A target
    /// already in the set keeps its `Backend` (and so its in-flight count).
    fn rebuild(&self) {
        let old = self.backends.load();
        let keep = |addr: SocketAddr, weight: usize| {
            old.iter()
                .find(|b| b.addr.as_inet() == Some(&addr) && b.weight == weight)
                .cloned()
                .unwrap_or_else(|| backend(addr, weight))
        };
        let mut wanted: BTreeMap<SocketAddr, usize> = self.fixed.iter().copied().collect();
        let resolved = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
        for (name, addrs) in self.named.iter().zip(resolved.iter()) {
            for ip in addrs {
                wanted
                    .entry(SocketAddr::new(*ip, name.port))
                    .or_insert(name.weight);
            }
        }
        let set = wanted.into_iter().map(|(a, w)| keep(a, w)).collect();
        self.backends.store(Arc::new(set));
    }
}

/// The balancer's view of a [`TargetSet`].
pub struct Discovery(pub Arc<TargetSet>);

#[async_trait]
impl ServiceDiscovery for Discovery {
    async fn discover(&self) -> pingora::Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        Ok((self.0.backends.load().as_ref().clone(), HashMap::new()))
    }
}
