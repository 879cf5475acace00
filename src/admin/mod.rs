//! The admin listener (`[admin] listen`): `GET /metrics` (Prometheus text format),
//! `GET /healthz` (alive), `GET /readyz` (200 while serving; 503 while starting, once
//! a drain began (`base::lifecycle`) and while an ACME name waits for its
//! certificate), `GET /acme` (each ACME set's expiry, renewal, failures), `GET /config` (the running file, redacted: `config::source`),
//! `POST /reload` (the same reload as SIGHUP), `GET /upstreams` (each
//! upstream's targets: health, requests in flight, the last check), and the jails' bans
//! (`GET /jails`, `DELETE /jails/NAME/KEY`, see `jails`), `GET /stats` (the traffic of
//! the last minutes, `stats`), `GET /anomalies` (the last found), and the console that
//! shows them (`GET /`, see `console`). With `token_sha256`, every request but the console's page needs
//! `Authorization: Bearer <token>`, its digest compared in constant time (401
//! otherwise); without one, bind it to loopback (validation insists). Runs as
//! its own one-thread Pingora service, apart from proxy traffic.

mod console;
mod jails;

use async_trait::async_trait;
use http::{header, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::http::RequestHeader;
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use subtle::ConstantTimeEq;

use crate::anomaly::Detection;
use crate::base::clock::Clock;
use crate::base::lifecycle::Lifecycle;
use crate::base::problem_document;
use crate::config::raw::AdminSection;
use crate::config::units::parse_fingerprint;
use crate::jail::JailsRegistry;
use crate::observability::metrics::label_value;
use crate::observability::{Metrics, SecurityLog};
use crate::state::reload::Reloader;
use crate::state::SharedSnapshot;
use crate::stats::Stats;
use crate::upstream::TargetsRegistry;

pub struct Admin {
    token_sha256: Option<[u8; 32]>,
    /// The listener's address: without a token, requests must name it (or loopback).
    listen: SocketAddr,
    lifecycle: Arc<Lifecycle>,
    shared: SharedSnapshot,
    metrics: Arc<Metrics>,
    targets: Arc<TargetsRegistry>,
    jails: Arc<JailsRegistry>,
    security_log: SecurityLog,
    reloader: Arc<Reloader>,
    clock: Clock,
    stats: Arc<Stats>,
    detection: Arc<Detection>,
}

/// What the admin service works with.
pub struct AdminParts {
    pub lifecycle: Arc<Lifecycle>,
    pub shared: SharedSnapshot,
    pub metrics: Arc<Metrics>,
    pub targets: Arc<TargetsRegistry>,
    pub jails: Arc<JailsRegistry>,
    pub security_log: SecurityLog,
    pub reloader: Arc<Reloader>,
    pub clock: Clock,
    pub stats: Arc<Stats>,
    pub detection: Arc<Detection>,
}

/// An answer: status, content type, body.
type Answer = (StatusCode, &'static str, Vec<u8>);

/// The admin service of `section`.
pub fn service(section: &AdminSection, parts: AdminParts) -> Service<Admin> {
    let admin = Admin {
        token_sha256: section.token_sha256.as_deref().and_then(parse_fingerprint),
        listen: section.listen,
        lifecycle: parts.lifecycle,
        shared: parts.shared,
        metrics: parts.metrics,
        targets: parts.targets,
        jails: parts.jails,
        security_log: parts.security_log,
        reloader: parts.reloader,
        clock: parts.clock,
        stats: parts.stats,
        detection: parts.detection,
    };
    let mut service = Service::new("admin".to_owned(), admin);
    service.add_tcp(&section.listen.to_string());
    service.threads = Some(1);
    service
}

/// A problem document (RFC 9457) with extension `members` (an object, or null).
fn problem_with(status: StatusCode, detail: &str, members: serde_json::Value) -> Answer {
    let mut body = problem_document(status, detail);
    if let (Some(body), serde_json::Value::Object(members)) = (body.as_object_mut(), members) {
        body.extend(members);
    }
    (
        status,
        "application/problem+json",
        body.to_string().into_bytes(),
    )
}

fn problem(status: StatusCode, detail: &str) -> Answer {
    problem_with(status, detail, serde_json::Value::Null)
}

/// A JSON document with status 200.
fn ok_json(body: serde_json::Value) -> Answer {
    (
        StatusCode::OK,
        "application/json",
        body.to_string().into_bytes(),
    )
}

impl Admin {
    /// Whether `req` names this listener: no `Host`, `localhost`, a loopback address
    /// or the listen address. A listener without a token refuses other names: a web
    /// page whose name an attacker re-points at 127.0.0.1 (DNS rebinding) would
    /// otherwise read and drive it from an operator's browser.
    fn own_host(&self, req: &RequestHeader) -> bool {
        let Some(host) = req.headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return true;
        };
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        };
        let name = name.trim_start_matches('[').trim_end_matches(']');
        name.eq_ignore_ascii_case("localhost")
            || (name.parse::<IpAddr>()).is_ok_and(|ip| ip.is_loopback() || ip == self.listen.ip())
    }

    /// Whether `req` carries the token (always, without one configured).
    fn authorized(&self, req: &RequestHeader) -> bool {
        let Some(digest) = &self.token_sha256 else {
            return true;
        };
        let presented = req
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        presented.is_some_and(|token| Sha256::digest(token).ct_eq(digest).into())
    }

    /// `GET /stats?window=1m|5m|15m` (default 1m): the traffic of the last window.
    fn traffic(&self, query: Option<&str>) -> Answer {
        let window = (query.unwrap_or("").split('&'))
            .find_map(|pair| pair.strip_prefix("window="))
            .unwrap_or("1m");
        let seconds = match window {
            "1m" => 60,
            "5m" => 300,
            "15m" => 900,
            _ => return problem(StatusCode::BAD_REQUEST, "window is one of 1m, 5m, 15m"),
        };
        ok_json(
            self.stats
                .report(self.clock.unix_millis() / 1000, seconds)
                .to_json(),
        )
    }

    /// `tollgate_upstream_targets{upstream}` and `tollgate_upstream_healthy_targets`,
    /// read at scrape time.
    fn target_health(&self) -> String {
        let mut all = String::from(
            "# HELP tollgate_upstream_targets Targets of each upstream\n\
             # TYPE tollgate_upstream_targets gauge\n",
        );
        let mut healthy = String::from(
            "# HELP tollgate_upstream_healthy_targets Targets of each upstream now healthy\n\
             # TYPE tollgate_upstream_healthy_targets gauge\n",
        );
        for targets in self.targets.items() {
            let (up, total) = targets.health_counts();
            let name = label_value(targets.name());
            let _ = writeln!(
                all,
                "tollgate_upstream_targets{{upstream=\"{name}\"}} {total}"
            );
            let _ = writeln!(
                healthy,
                "tollgate_upstream_healthy_targets{{upstream=\"{name}\"}} {up}"
            );
        }
        all + &healthy
    }

    /// `GET /anomalies`: the last anomalies found, newest first; 404 without
    /// `[anomaly]`.
    fn anomalies(&self) -> Answer {
        match self.shared.load().anomaly {
            true => ok_json(self.detection.recent_json()),
            false => problem(
                StatusCode::NOT_FOUND,
                "anomaly detection is off: see [anomaly]",
            ),
        }
    }

    /// The running config (secrets redacted), its SHA-256 and when it was loaded.
    fn config(&self) -> Answer {
        let source = self.shared.load().source.clone();
        ok_json(json!({
            "sha256": source.sha256,
            "loaded_at": humantime::format_rfc3339_seconds(source.loaded_at).to_string(),
            "source": source.origin,
            "config": source.json,
        }))
    }

    /// Every current upstream's targets: health, requests in flight, last check.
    fn upstreams(&self) -> Answer {
        let mut out = serde_json::Map::new();
        for targets in self.targets.items() {
            out.insert(
                targets.name().to_owned(),
                targets.status(self.clock.monotonic_ms()),
            );
        }
        ok_json(serde_json::Value::Object(out))
    }

    /// Ready while serving and while every ACME name has a certificate; each name
    /// still waiting is said, with why.
    fn readiness(&self) -> Answer {
        let mut body = String::new();
        for managed in &self.shared.load().acme {
            let status = managed.status();
            if status.not_after.is_none() {
                let why = status.last_error.as_deref().unwrap_or("ordering");
                body.push_str(&format!(
                    "waiting for a certificate for {} (handshakes refused): {why}\n",
                    managed.set.domains.join(", ")
                ));
            }
        }
        let ready = self.lifecycle.is_ready() && body.is_empty();
        let (status, first) = match ready {
            true => (StatusCode::OK, "ready\n"),
            false => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        };
        (status, "text/plain", format!("{first}{body}").into_bytes())
    }

    /// Each ACME set of domains: its listeners, certificate expiry, renewal, failures.
    fn acme(&self) -> Answer {
        let sets: Vec<_> = (self.shared.load().acme.iter())
            .map(|m| {
                json!({
                    "name": m.set.id,
                    "domains": m.set.domains,
                    "listeners": m.set.listeners,
                    "challenge": m.set.challenge.as_str(),
                    "status": m.status(),
                })
            })
            .collect();
        ok_json(json!(sets))
    }

    async fn reload(&self) -> Answer {
        match self.reloader.clone().reload_off_runtime().await {
            Ok(reloaded) => ok_json(json!({
                "status": "reloaded",
                "needs_restart": reloaded.needs_restart,
            })),
            Err(e) => {
                let errors: Vec<_> = e
                    .errors
                    .iter()
                    .map(|e| json!({"line": e.line, "column": e.column, "path": e.path, "message": e.message}))
                    .collect();
                let detail = format!("{}: {} error(s); nothing changed", e.source, errors.len());
                let status = StatusCode::UNPROCESSABLE_ENTITY;
                problem_with(status, &detail, json!({ "errors": errors }))
            }
        }
    }
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let path = req.uri.path();
        let own_host = self.token_sha256.is_some() || self.own_host(req);
        if let (true, Some((content_type, body))) =
            (own_host && req.method == "GET", console::asset(path))
        {
            let mut response = Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, content_type)
                .header(header::CONTENT_LENGTH, body.len());
            for (name, value) in console::HEADERS {
                response = response.header(name, value);
            }
            return response.body(body.as_bytes().to_vec()).unwrap_or_default();
        }
        let (status, content_type, body) = if !own_host {
            problem(
                StatusCode::MISDIRECTED_REQUEST,
                "without a token, this admin listener answers requests for its own address or localhost only",
            )
        } else if !self.authorized(req) {
            problem(
                StatusCode::UNAUTHORIZED,
                "this admin listener needs a bearer token",
            )
        } else {
            match (req.method.as_str(), path) {
                ("GET", "/metrics") => (
                    StatusCode::OK,
                    "text/plain; version=0.0.4",
                    (self.metrics.render() + &self.stats.prometheus() + &self.target_health())
                        .into_bytes(),
                ),
                ("GET", "/stats") => self.traffic(req.uri.query()),
                ("GET", "/anomalies") => self.anomalies(),
                ("GET", "/healthz") => (StatusCode::OK, "text/plain", b"ok\n".to_vec()),
                ("GET", "/readyz") => self.readiness(),
                ("GET", "/acme") => self.acme(),
                ("POST", "/reload") => self.reload().await,
                ("GET", "/upstreams") => self.upstreams(),
                ("GET", "/config") => self.config(),
                ("GET", "/jails") => jails::list(&self.jails, self.clock.unix_millis()),
                ("DELETE", _) if path.starts_with("/jails/") => {
                    jails::lift(&self.jails, &self.security_log, &path["/jails/".len()..]).await
                }
                _ => problem(StatusCode::NOT_FOUND, "no such admin endpoint"),
            }
        };
        let mut response = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_LENGTH, body.len());
        if status == StatusCode::UNAUTHORIZED {
            response = response.header(header::WWW_AUTHENTICATE, "Bearer realm=\"tollgate-admin\"");
        }
        response.body(body).unwrap_or_default()
    }
}
