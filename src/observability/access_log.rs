//! The access log: one JSON line per request (see `json_lines` for how it is written).

use pingora::proxy::Session;
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

use super::json_lines::JsonLines;
use crate::proxy::RequestCtx;

#[derive(Serialize)]
struct AccessRecord<'a> {
    time: String,
    request_id: &'a str,
    client_ip: IpAddr,
    method: &'a str,
    host: &'a str,
    path: &'a str,
    status: u16,
    route: Option<&'a str>,
    /// The authenticated principal's id, when the route authenticates.
    consumer: Option<&'a str>,
    /// The TLS version, on TLS listeners.
    tls: Option<&'a str>,
    /// A verified client certificate's subject and SHA-256 fingerprint.
    client_cert_subject: Option<&'a str>,
    client_cert_sha256: Option<String>,
    upstream: Option<SocketAddr>,
    bytes: usize,
    duration_ms: f64,
}

#[derive(Clone, Default)]
pub struct AccessLog(JsonLines);

impl AccessLog {
    pub fn new(lines: JsonLines) -> Self {
        Self(lines)
    }

    pub fn record(&self, session: &Session, ctx: &RequestCtx) {
        if !self.0.is_on() {
            return;
        }
        let req = session.req_header();
        let client_cert = ctx.client_cert();
        self.0.send(&AccessRecord {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            request_id: &ctx.request_id,
            client_ip: ctx.client_ip,
            method: req.method.as_str(),
            host: &ctx.host,
            path: req.uri.path(),
            status: session.response_written().map_or(0, |r| r.status.as_u16()),
            route: ctx.route.as_deref().map(|r| &*r.name),
            consumer: ctx.principal.as_deref().map(|p| p.id.as_str()),
            tls: ctx.tls.as_deref().map(|t| &*t.version),
            client_cert_subject: client_cert.map(|c| c.subject.as_str()),
            client_cert_sha256: client_cert.map(|c| c.sha256_hex()),
            upstream: ctx.target(),
            bytes: session.body_bytes_sent(),
            duration_ms: (ctx.started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        });
    }
}
