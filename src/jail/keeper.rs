//! The background loop of every current jail: once a second, a shared jail reads the
//! bans from Redis, every jail drops the bans that ended (each a `jail_unban`
//! security-log event), and the active-bans gauge is published.

use futures::future::BoxFuture;
use futures::FutureExt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{JailState, JailsRegistry};
use crate::base::clock::Clock;
use crate::base::registry::{every, PerItemTasks};
use crate::observability::{Metrics, SecurityLog};

const REFRESH_EVERY: Duration = Duration::from_secs(1);

pub fn keeper(
    registry: Arc<JailsRegistry>,
    metrics: Arc<Metrics>,
    security_log: SecurityLog,
    clock: Clock,
) -> PerItemTasks<JailState> {
    let keeper = Keeper {
        metrics,
        security_log,
        clock,
    };
    PerItemTasks::new(
        registry,
        |_| true,
        move |jail, registry| keeper.clone().keep(jail, registry),
    )
}

/// What every jail's loop reports to and reads.
#[derive(Clone)]
struct Keeper {
    metrics: Arc<Metrics>,
    security_log: SecurityLog,
    clock: Clock,
}

impl Keeper {
    fn keep(self, jail: Weak<JailState>, registry: Arc<JailsRegistry>) -> BoxFuture<'static, ()> {
        async move {
            let round = |jail: Arc<JailState>| self.clone().round(jail).boxed();
            if let Some(gone) = every(jail, &registry, REFRESH_EVERY, round).await {
                self.metrics.jail_active_bans(gone.name(), 0);
            }
        }
        .boxed()
    }

    async fn round(self, jail: Arc<JailState>) -> Option<Duration> {
        let now = self.clock.unix_millis();
        for key in jail.refresh(now, &self.metrics).await {
            let fields = [
                ("jail", jail.name().to_owned()),
                ("key", key),
                ("reason", "expired".to_owned()),
            ];
            self.security_log.notice("jail_unban", &fields);
        }
        self.metrics
            .jail_active_bans(jail.name(), jail.ban_count(now));
        Some(REFRESH_EVERY)
    }
}
