//! The background sweep of every policy's local buckets: every `SWEEP_EVERY`, buckets
//! that have refilled are dropped (they equal new ones) and the key count is
//! published.

use futures::future::BoxFuture;
use futures::FutureExt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{now_nanos, Buckets, BucketsRegistry};
use crate::base::registry::PerItemTasks;
use crate::observability::Metrics;

const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The background service sweeping every current policy's buckets.
pub fn sweeper(registry: Arc<BucketsRegistry>, metrics: Arc<Metrics>) -> PerItemTasks<Buckets> {
    PerItemTasks::new(
        registry,
        |_| true,
        move |policy, registry| sweep_loop(policy, registry, metrics.clone()),
    )
}

fn sweep_loop(
    buckets: Weak<Buckets>,
    registry: Arc<BucketsRegistry>,
    metrics: Arc<Metrics>,
) -> BoxFuture<'static, ()> {
    async move {
        loop {
            tokio::time::sleep(SWEEP_EVERY).await;
            let Some(buckets) = buckets.upgrade() else {
                return;
            };
            if !registry.is_current(&buckets) {
                return;
            }
            let keys = buckets.store.sweep(now_nanos());
            metrics.rate_limit_keys(buckets.name(), keys, buckets.store.untracked());
        }
    }
    .boxed()
}
