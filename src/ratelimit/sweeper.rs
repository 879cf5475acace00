//! The background sweep of every policy's local buckets: every `SWEEP_EVERY`, buckets
//! that have refilled are dropped (they equal new ones) and the key count is
//! published.

use futures::future::BoxFuture;
use futures::FutureExt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Buckets, BucketsRegistry};
use crate::base::clock::Clock;
use crate::base::registry::{every, PerItemTasks};
use crate::observability::Metrics;

const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The background service sweeping every current policy's buckets.
pub fn sweeper(
    registry: Arc<BucketsRegistry>,
    metrics: Arc<Metrics>,
    clock: Clock,
) -> PerItemTasks<Buckets> {
    PerItemTasks::new(
        registry,
        |_| true,
        move |policy, registry| sweep_loop(policy, registry, metrics.clone(), clock.clone()),
    )
}

fn sweep_loop(
    buckets: Weak<Buckets>,
    registry: Arc<BucketsRegistry>,
    metrics: Arc<Metrics>,
    clock: Clock,
) -> BoxFuture<'static, ()> {
    async move {
        let round = |buckets: Arc<Buckets>| {
            let (metrics, clock) = (metrics.clone(), clock.clone());
            async move {
                let keys = buckets.store.sweep(clock.unix_nanos());
                metrics.rate_limit_keys(buckets.name(), keys, buckets.store.untracked());
                Some(SWEEP_EVERY)
            }
            .boxed()
        };
        every(buckets, &registry, SWEEP_EVERY, round).await;
    }
    .boxed()
}
