//! The admin listener (`[admin] listen`): `GET /metrics` (Prometheus text format)
//! and `GET /healthz`. It is not authenticated: bind it to loopback or a management
//! network. Runs as its own one-thread Pingora service, apart from proxy traffic.

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::observability::Metrics;

pub struct Admin {
    metrics: Arc<Metrics>,
}

/// The admin service listening on `addr`.
pub fn service(addr: SocketAddr, metrics: Arc<Metrics>) -> Service<Admin> {
    let mut service = Service::new("admin".to_owned(), Admin { metrics });
    service.add_tcp(&addr.to_string());
    service.threads = Some(1);
    service
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let (status, content_type, body) = match (req.method.as_str(), req.uri.path()) {
            ("GET", "/metrics") => (
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.metrics.render().into_bytes(),
            ),
            ("GET", "/healthz") => (StatusCode::OK, "text/plain", b"ok\n".to_vec()),
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
