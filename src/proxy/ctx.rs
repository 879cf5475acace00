//! Per-request state carried through the phases, and what is derived from it: the
//! view policies read and the access-log record.

use pingora::http::RequestHeader;
use pingora::protocols::tls::SslDigest;
use pingora::proxy::Session;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::hold::HeldBody;
use crate::auth::Principal;
use crate::edge::{forwarded::X_FORWARDED_FOR, request_id};
use crate::observability::AccessRecord;
use crate::policy::{Chain, Reply, RequestView};
use crate::ratelimit::RateLimitHeaders;
use crate::routing::{Route, RouteAction};
use crate::state::Snapshot;
use crate::tls::ClientCert;
use crate::upstream::{InFlightGuard, Outlier, Pool};

pub struct RequestCtx {
    /// The config this request runs on, from start to end.
    pub snap: Arc<Snapshot>,
    pub started: Instant,
    pub request_id: String,
    /// The TCP peer and whether it is a trusted proxy.
    pub peer_ip: IpAddr,
    pub peer_trusted: bool,
    /// The client as far as we can tell (see `edge::forwarded`).
    pub client_ip: IpAddr,
    /// The connection's TLS session (protocol, cipher, client certificate), if TLS.
    pub tls: Option<Arc<SslDigest>>,
    /// Normalized host used for routing.
    pub host: String,
    /// The normalized path (see `edge::path`); empty until it is computed.
    pub path: String,
    /// Where the query starts in the raw target, found once by hygiene.
    pub query_start: Option<usize>,
    /// The policies of the listener the request came in on.
    pub listener_policies: Option<Arc<Chain>>,
    pub route: Option<Arc<Route>>,
    /// Who the request is, when its route authenticates.
    pub principal: Option<Arc<Principal>>,
    /// Targets tried so far, the last one being the current.
    pub tried: Vec<SocketAddr>,
    /// Why the last connection attempt failed (a refused connection, a certificate
    /// that did not verify), for the log line when no target is left.
    pub connect_failure: Option<String>,
    /// Counts this request against its target while it is in flight.
    pub in_flight: Option<InFlightGuard>,
    /// The passive health of the current target, until the request's outcome there
    /// is recorded.
    pub outlier: Option<Outlier>,
    /// The upstream timeouts were shortened to the gRPC call's own deadline: a
    /// timeout is the client's choice, not the target's failure.
    pub client_deadline: bool,
    /// The status of the attempt being retried, caught before it went out.
    pub retried_status: Option<u16>,
    /// The status tollgate's own reply stands for when it was written as a gRPC
    /// error (HTTP 200).
    pub own_status: Option<u16>,
    /// `max_in_flight` guards of the route and its upstream, held to the end.
    pub concurrency: Vec<pingora_limits::inflight::Guard>,
    /// The RateLimit headers of a rate-limited route.
    pub rate_limit: Option<RateLimitHeaders>,
    /// Request body bytes seen so far (counted only for routes with body policies).
    pub body_received: u64,
    /// A body policy's answer, written by `fail_to_proxy`.
    pub body_reply: Option<Reply>,
    /// The body so far, for a route whose policies need all of it first.
    pub held: HeldBody,
    /// A jail refused the request (it is no strike then).
    pub jailed: bool,
}

impl RequestCtx {
    pub fn new(snap: Arc<Snapshot>) -> Self {
        Self {
            snap,
            started: Instant::now(),
            request_id: String::new(),
            peer_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            peer_trusted: false,
            client_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            tls: None,
            host: String::new(),
            path: String::new(),
            query_start: None,
            listener_policies: None,
            route: None,
            principal: None,
            tried: Vec::new(),
            connect_failure: None,
            in_flight: None,
            outlier: None,
            client_deadline: false,
            retried_status: None,
            own_status: None,
            concurrency: Vec::new(),
            rate_limit: None,
            body_received: 0,
            body_reply: None,
            held: HeldBody::default(),
            jailed: false,
        }
    }

    /// The request id, the TLS session, and who the client is.
    pub fn identify(&mut self, session: &Session) {
        let req = session.req_header();
        self.request_id = request_id::from_request(req);
        self.tls = session.digest().and_then(|d| d.ssl_digest.clone());
        if let Some(peer) = session.client_addr().and_then(|a| a.as_inet()) {
            let proxies = &self.snap.trusted_proxies;
            self.peer_ip = peer.ip();
            self.peer_trusted = proxies.contains(self.peer_ip);
            let xff = req.headers.get_all(X_FORWARDED_FOR).into_iter();
            self.client_ip = proxies.client_ip(self.peer_ip, xff.map(|v| v.as_bytes()));
        }
    }

    /// What policies see of the request `req` (the session's).
    pub fn view<'a>(&'a self, req: &'a RequestHeader) -> RequestView<'a> {
        RequestView {
            req,
            path: &self.path,
            query: self.query_start.and_then(|i| req.raw_path().get(i..)),
            host: &self.host,
            client_ip: self.client_ip,
            secure: self.tls.is_some(),
            consumer: self.principal.as_deref().map(|p| p.id.as_str()),
            own_reply: false,
        }
    }

    /// The request's final status: the one tollgate's own reply stands for, or the
    /// one written.
    pub fn status(&self, session: &Session) -> Option<u16> {
        self.own_status
            .or_else(|| session.response_written().map(|r| r.status.as_u16()))
    }

    /// The pool of the matched route, when it proxies.
    pub fn pool(&self) -> Option<&Arc<Pool>> {
        match &self.route.as_deref()?.action {
            RouteAction::Proxy(pool) => Some(pool),
            RouteAction::Respond(_) => None,
        }
    }

    /// The verified client certificate of the connection, if it presented one.
    pub fn client_cert(&self) -> Option<&ClientCert> {
        self.tls.as_ref()?.extension.get::<ClientCert>()
    }

    /// The request's access-log line.
    pub fn access_record<'a>(&'a self, session: &'a Session) -> AccessRecord<'a> {
        let req = session.req_header();
        let client_cert = self.client_cert();
        AccessRecord {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            request_id: &self.request_id,
            client_ip: self.client_ip,
            method: req.method.as_str(),
            host: &self.host,
            path: match self.path.as_str() {
                "" => req.uri.path(),
                normalized => normalized,
            },
            status: self.status(session).unwrap_or(0),
            route: self.route.as_deref().map(|r| &*r.name),
            deprecated: self
                .route
                .as_deref()
                .is_some_and(|r| r.policies.is_deprecated()),
            consumer: self.principal.as_deref().map(|p| p.id.as_str()),
            tls: self.tls.as_deref().map(|t| &*t.version),
            client_cert_subject: client_cert.map(|c| c.subject.as_str()),
            client_cert_sha256: client_cert.map(|c| c.sha256_hex()),
            upstream: self.tried.last().copied(),
            bytes: session.body_bytes_sent(),
            duration_ms: (self.started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        }
    }
}
