//! Active health checks: builds Pingora's TCP/HTTP checks from the config and runs
//! them for every registered pool at its own interval, in one background service
//! that survives reloads (Pingora cannot add services once the server runs).
//!
//! A check never touches the request path: it only flips the health flags that
//! selection reads. Checks of a pool stop once the pool leaves the registry.

use async_trait::async_trait;
use pingora::lb::health_check::{HealthCheck, HttpHealthCheck, TcpHealthCheck};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::{Error, ErrorType};
use std::collections::HashSet;
use std::sync::{Arc, Weak};

use super::{Pool, PoolRegistry};
use crate::config::raw::{HealthKind, HealthSection};

pub(super) fn health_check(
    h: &HealthSection,
) -> Result<Box<dyn HealthCheck + Send + Sync>, String> {
    match h.kind {
        HealthKind::Tcp => {
            let mut hc = TcpHealthCheck::new();
            hc.consecutive_success = h.healthy_threshold;
            hc.consecutive_failure = h.unhealthy_threshold;
            hc.peer_template.options.connection_timeout = Some(h.timeout);
            Ok(hc)
        }
        HealthKind::Http => {
            let mut hc = HttpHealthCheck::new(&h.host, false);
            let path = h.path.as_deref().unwrap_or("/");
            let uri = path
                .parse::<http::Uri>()
                .map_err(|e| format!("health check path {path:?}: {e}"))?;
            hc.req.set_uri(uri);
            hc.consecutive_success = h.healthy_threshold;
            hc.consecutive_failure = h.unhealthy_threshold;
            hc.peer_template.options.connection_timeout = Some(h.timeout);
            hc.peer_template.options.read_timeout = Some(h.timeout);
            let expect = h.expect_status;
            hc.validator = Some(Box::new(move |resp| {
                if resp.status.as_u16() == expect {
                    Ok(())
                } else {
                    Error::e_explain(
                        ErrorType::CustomCode(
                            "unexpected health check status",
                            resp.status.as_u16(),
                        ),
                        format!("expected {expect}"),
                    )
                }
            }));
            Ok(Box::new(hc))
        }
    }
}

/// Background service running the health checks of every pool in the registry.
pub struct HealthChecks {
    registry: Arc<PoolRegistry>,
}

impl HealthChecks {
    pub fn new(registry: Arc<PoolRegistry>) -> Self {
        Self { registry }
    }
}

#[async_trait]
impl BackgroundService for HealthChecks {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut started = HashSet::new();
        loop {
            let changed = self.registry.changed();
            let pools = self.registry.pools();
            // Pools gone from the registry stop their own loops; forget their ids.
            started.retain(|id| pools.iter().any(|p| p.id == *id));
            for pool in pools {
                if pool.health_interval().is_some() && started.insert(pool.id) {
                    tokio::spawn(check_pool(Arc::downgrade(&pool), self.registry.clone()));
                }
            }
            tokio::select! {
                _ = changed => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Checks one pool at its interval until it leaves the registry.
async fn check_pool(pool: Weak<Pool>, registry: Arc<PoolRegistry>) {
    loop {
        let Some(pool) = pool.upgrade() else { return };
        let Some(interval) = pool.health_interval() else {
            return;
        };
        if !registry.contains(pool.id) {
            return;
        }
        pool.backends().run_health_check(true).await;
        drop(pool);
        tokio::time::sleep(interval).await;
    }
}
