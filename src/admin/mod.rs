//! The admin listener (`[admin] listen`): `GET /metrics` (Prometheus text format),
//! `GET /healthz`, and the jails' bans (`GET /jails`, `DELETE /jails/NAME/KEY`, see
//! `jails`). It is not authenticated: bind it to loopback or a management network.
//! Runs as its own one-thread Pingora service, apart from proxy traffic.

mod jails;

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::jail::JailsRegistry;
use crate::observability::{Metrics, SecurityLog};

pub struct Admin {
    metrics: Arc<Metrics>,
    jails: Arc<JailsRegistry>,
    security_log: SecurityLog,
}

/// An answer: status, content type, body.
type Answer = (StatusCode, &'static str, Vec<u8>);

/// The admin service listening on `addr`.
pub fn service(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    jails: Arc<JailsRegistry>,
    security_log: SecurityLog,
) -> Service<Admin> {
    let admin = Admin {
        metrics,
        jails,
        security_log,
    };
    let mut service = Service::new("admin".to_owned(), admin);
    service.add_tcp(&addr.to_string());
    service.threads = Some(1);
    service
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let path = req.uri.path();
        let (status, content_type, body) = match (req.method.as_str(), path) {
            ("GET", "/metrics") => (
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.metrics.render().into_bytes(),
            ),
            ("GET", "/healthz") => (StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            ("GET", "/jails") => jails::list(&self.jails),
            ("DELETE", _) if path.starts_with("/jails/") => {
                jails::lift(&self.jails, &self.security_log, &path["/jails/".len()..]).await
            }
            _ => (StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
        };
        Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(body)
            .unwrap_or_default()
    }
}
