//! The last active health check of every target, as the admin listener's
//! `GET /upstreams` shows it: a wrapper around Pingora's check that records each
//! result (when, and why it failed) before Pingora counts it toward the target's health.

use async_trait::async_trait;
use pingora::lb::health_check::HealthCheck;
use pingora::lb::Backend;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One check's outcome.
#[derive(Debug, Clone)]
pub struct LastCheck {
    pub at: SystemTime,
    /// Why it failed; `None`: it passed.
    pub error: Option<String>,
}

/// The last check of each target, shared by the wrapper and whoever reports.
#[derive(Clone, Default)]
pub struct LastChecks(Arc<Mutex<HashMap<SocketAddr, LastCheck>>>);

impl LastChecks {
    pub fn get(&self, addr: &SocketAddr) -> Option<LastCheck> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(addr)
            .cloned()
    }

    fn record(&self, addr: SocketAddr, error: Option<String>) {
        let check = LastCheck {
            at: SystemTime::now(),
            error,
        };
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(addr, check);
    }
}

/// `inner`, recording every result in `last`.
pub struct Recorded {
    pub inner: Box<dyn HealthCheck + Send + Sync>,
    pub last: LastChecks,
}

#[async_trait]
impl HealthCheck for Recorded {
    async fn check(&self, target: &Backend) -> pingora::Result<()> {
        let result = self.inner.check(target).await;
        if let Some(addr) = target.addr.as_inet() {
            self.last
                .record(*addr, result.as_ref().err().map(|e| e.to_string()));
        }
        result
    }

    async fn health_status_change(&self, target: &Backend, healthy: bool) {
        self.inner.health_status_change(target, healthy).await
    }

    fn backend_summary(&self, target: &Backend) -> String {
        self.inner.backend_summary(target)
    }

    fn health_threshold(&self, success: bool) -> usize {
        self.inner.health_threshold(success)
    }
}
