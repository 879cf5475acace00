//! The background resolution of every upstream's DNS names (see `dns`): each name
//! again every `resolve_every`, or when its answer's TTL ends if that is sooner, never
//! more often than once a second, and 5 s after a failed lookup. A changed answer
//! joins or removes targets; a failed one keeps the last good addresses. Every
//! outcome is counted in `tollgate_dns_resolutions_total{upstream,outcome}`.

use futures::future::BoxFuture;
use futures::FutureExt;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::dns::{lookup, resolver};
use super::targets::Targets;
use super::TargetsRegistry;
use crate::base::registry::{every, PerItemTasks};
use crate::observability::Metrics;

/// Never resolve a name more often than this, whatever its TTL.
const FLOOR: Duration = Duration::from_secs(1);
/// After a failed lookup, try again this soon (or at `resolve_every` if sooner).
const RETRY: Duration = Duration::from_secs(5);

/// The background service resolving the names of every upstream that has some.
pub fn dns_refreshes(
    registry: Arc<TargetsRegistry>,
    metrics: Arc<Metrics>,
) -> PerItemTasks<Targets> {
    PerItemTasks::new(
        registry,
        |targets| targets.set().has_names(),
        move |targets, registry| refresh(targets, registry, metrics.clone()),
    )
}

/// Resolves one upstream's names round after round until it leaves the registry.
fn refresh(
    targets: Weak<Targets>,
    registry: Arc<TargetsRegistry>,
    metrics: Arc<Metrics>,
) -> BoxFuture<'static, ()> {
    async move {
        let Some(first) = targets.upgrade() else {
            return;
        };
        let upstream: Arc<str> = first.name().into();
        let resolver = match resolver(first.resolver_servers()) {
            Ok(resolver) => Arc::new(resolver),
            Err(e) => {
                log::error!("upstream {upstream}: {e}; its names are not resolved again");
                return;
            }
        };
        let first_wait = first
            .set()
            .first_due
            .saturating_duration_since(Instant::now());
        drop(first);
        let round = |current: Arc<Targets>| {
            let (resolver, metrics, upstream) =
                (resolver.clone(), metrics.clone(), upstream.clone());
            async move {
                let set = current.set().clone();
                let mut next = Instant::now() + current.resolve_every();
                let mut changed = false;
                for (i, name) in set.named.iter().enumerate() {
                    match lookup(&resolver, &name.host).await {
                        Ok(answer) => {
                            metrics.dns_resolution(&upstream, "ok");
                            next = next.min(answer.valid_until);
                            changed |= set.store(i, answer.addrs);
                        }
                        Err(e) => {
                            metrics.dns_resolution(&upstream, "error");
                            next = next.min(Instant::now() + RETRY);
                            log::warn!("upstream {upstream}: {e}; its last good addresses stay");
                        }
                    }
                }
                if changed {
                    if let Err(e) = current.rediscover().await {
                        log::error!("upstream {upstream}: cannot update the targets: {e}");
                    }
                    log::info!(
                        "upstream {upstream}: targets now {}",
                        current.addresses().join(", ")
                    );
                }
                Some(next.saturating_duration_since(Instant::now()).max(FLOOR))
            }
            .boxed()
        };
        every(targets, &registry, first_wait, round).await;
    }
    .boxed()
}
