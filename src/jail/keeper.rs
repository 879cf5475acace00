//! The background loop of every current jail: once a second, a shared jail reads the
//! bans from Redis, every jail drops the bans that ended (each a `jail_unban`
//! security-log event), and the active-bans gauge is published.

use futures::future::BoxFuture;
use futures::FutureExt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{now_millis, JailState, JailsRegistry};
use crate::base::registry::PerItemTasks;
use crate::observability::{Metrics, SecurityLog};

const REFRESH_EVERY: Duration = Duration::from_secs(1);

pub fn keeper(
    registry: Arc<JailsRegistry>,
    metrics: Arc<Metrics>,
    security_log: SecurityLog,
) -> PerItemTasks<JailState> {
    PerItemTasks::new(
        registry,
        |_| true,
        move |jail, registry| keep(jail, registry, metrics.clone(), security_log.clone()),
    )
}

fn keep(
    jail: Weak<JailState>,
    registry: Arc<JailsRegistry>,
    metrics: Arc<Metrics>,
    security_log: SecurityLog,
) -> BoxFuture<'static, ()> {
    async move {
        loop {
            tokio::time::sleep(REFRESH_EVERY).await;
            let Some(jail) = jail.upgrade() else {
                return;
            };
            if !registry.is_current(&jail) {
                metrics.jail_active_bans(jail.name(), 0);
                return;
            }
            let now = now_millis();
            for key in jail.refresh(now, &metrics).await {
                let fields = [
                    ("jail", jail.name().to_owned()),
                    ("key", key),
                    ("reason", "expired".to_owned()),
                ];
                security_log.notice("jail_unban", &fields);
            }
            metrics.jail_active_bans(jail.name(), jail.ban_count(now));
        }
    }
    .boxed()
}
