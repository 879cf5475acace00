//! Active health checks: builds Pingora's TCP/HTTP checks from the config, and the
//! per-pool loop that runs them at the pool's interval until the pool leaves the
//! registry (one background service serves every pool, across reloads: Pingora
//! cannot add services once the server runs).
//!
//! A check never touches the request path: it only flips the health flags that
//! selection reads.

use futures::future::BoxFuture;
use futures::FutureExt;
use pingora::lb::health_check::{HealthCheck, HttpHealthCheck, TcpHealthCheck};
use pingora::{Error, ErrorType};
use std::sync::{Arc, Weak};

use super::{Targets, TargetsRegistry};
use crate::base::registry::PerItemTasks;
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
                None => super::targets::speak(&mut hc.peer_template, protocol),
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
        loop {
            let Some(current) = targets.upgrade() else {
                return;
            };
            let Some(interval) = current.health_interval() else {
                return;
            };
            if !registry.is_current(&current) {
                return;
            }
            current.backends().run_health_check(true).await;
            drop(current);
            tokio::time::sleep(interval).await;
        }
    }
    .boxed()
}
