//! Active health checks as Pingora runs them: the TCP or HTTP check an upstream's
//! `health` asks for, and a wrapper that records each result (when, and why it
//! failed) before Pingora counts it toward the target's health, for the admin
//! listener's `GET /upstreams`.

use async_trait::async_trait;
use pingora::lb::health_check::{HealthCheck, HttpHealthCheck, TcpHealthCheck};
use pingora::lb::Backend;
use pingora::{Error, ErrorType};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::protocol::speak;
use crate::config::raw::{HealthKind, HealthSection, UpstreamProtocol};
use crate::tls::UpstreamTls;

/// The check for `h`; an `http` check speaks to the targets as requests do (TLS with
/// the upstream's settings, or h2c).
pub(super) fn health_check(
    h: &HealthSection,
    tls: Option<&UpstreamTls>,
    protocol: UpstreamProtocol,
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
            let mut hc = HttpHealthCheck::new(&h.host, tls.is_some());
            match tls {
                Some(tls) => tls.apply(&mut hc.peer_template),
                None => speak(&mut hc.peer_template, protocol == UpstreamProtocol::H2c),
            }
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
