//! Active health checks: the per-upstream loop that runs them (built in `checks`) at
//! the upstream's interval until its targets leave the registry (one background
//! service serves every upstream, across reloads: Pingora cannot add services once
//! the server runs).
//!
//! A check never touches the request path: it only flips the health flags that
//! selection reads.

use futures::future::BoxFuture;
use futures::FutureExt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::targets::Targets;
use super::TargetsRegistry;
use crate::base::registry::{every, PerItemTasks};

/// The background service checking every upstream that has `health` configured.
pub fn health_checks(registry: Arc<TargetsRegistry>) -> PerItemTasks<Targets> {
    PerItemTasks::new(
        registry,
        |targets| targets.health_interval().is_some(),
        check_targets,
    )
}

/// Checks one upstream's targets at its interval until they leave the registry.
fn check_targets(targets: Weak<Targets>, registry: Arc<TargetsRegistry>) -> BoxFuture<'static, ()> {
    async move {
        let round = |targets: Arc<Targets>| {
            async move {
                targets.backends().run_health_check(true).await;
                targets.health_interval()
            }
            .boxed()
        };
        every(targets, &registry, Duration::ZERO, round).await;
    }
    .boxed()
}
