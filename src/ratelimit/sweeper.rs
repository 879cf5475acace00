//! The background sweep of every policy's buckets: every `SWEEP_EVERY`, buckets that
//! have refilled are dropped (they equal new ones) and the key count is published.

use futures::future::BoxFuture;
use futures::FutureExt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{now_nanos, Policy, PolicyRegistry};
use crate::base::registry::PerItemTasks;
use crate::observability::Metrics;

const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The background service sweeping every current policy.
pub fn sweeper(registry: Arc<PolicyRegistry>, metrics: Arc<Metrics>) -> PerItemTasks<Policy> {
    PerItemTasks::new(
        registry,
        |_| true,
        move |policy, registry| sweep_loop(policy, registry, metrics.clone()),
    )
}

fn sweep_loop(
    policy: Weak<Policy>,
    registry: Arc<PolicyRegistry>,
    metrics: Arc<Metrics>,
) -> BoxFuture<'static, ()> {
    async move {
        loop {
            tokio::time::sleep(SWEEP_EVERY).await;
            let Some(policy) = policy.upgrade() else {
                return;
            };
            if !registry.is_current(&policy) {
                return;
            }
            let keys = policy.store.sweep(now_nanos());
            metrics.rate_limit_keys(&policy.name, keys, policy.store.untracked());
        }
    }
    .boxed()
}
