//! Per-request state carried through the phases.

use pingora::protocols::tls::SslDigest;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use crate::auth::Principal;
use crate::ratelimit::RateLimitHeaders;
use crate::routing::{Route, RouteAction};
use crate::state::Snapshot;
use crate::tls::ClientCert;
use crate::upstream::{InFlightGuard, Pool};

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
    /// `max_in_flight` guards of the route and its upstream, held to the end.
    pub concurrency: Vec<pingora_limits::inflight::Guard>,
    /// The RateLimit headers of a rate-limited route.
    pub rate_limit: Option<RateLimitHeaders>,
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
            route: None,
            principal: None,
            tried: Vec::new(),
            connect_failure: None,
            in_flight: None,
            concurrency: Vec::new(),
            rate_limit: None,
        }
    }

    /// The pool of the matched route, when it proxies.
    pub fn pool(&self) -> Option<&Arc<Pool>> {
        match &self.route.as_deref()?.action {
            RouteAction::Proxy(pool) => Some(pool),
            RouteAction::Respond(_) => None,
        }
    }

    pub fn target(&self) -> Option<SocketAddr> {
        self.tried.last().copied()
    }

    /// The verified client certificate of the connection, if it presented one.
    pub fn client_cert(&self) -> Option<&ClientCert> {
        self.tls.as_ref()?.extension.get::<ClientCert>()
    }
}
