//! Client connections between accept and the proxy: the slow-client limits of
//! `[server]` (`header_timeout`, `body_min_rate`, `max_connections_per_ip`) and the
//! drain of open connections when the process stops or hands its sockets over.
//!
//! [`ConnectionGuard`] wraps a listener service's Pingora app. Per connection it
//! takes a per-IP slot (none left: the connection is closed at once and counted), and
//! wraps an HTTP/1.1 stream in a [`stream::GuardedStream`] whose reads carry the
//! clocks; the proxy tells the stream where its request is with [`head_complete`],
//! [`body_complete`] and [`request_complete`]. HTTP/2 connections are not judged
//! here: Pingora's h2 idle timeout closes one without a request (`keepalive_timeout`).
//!
//! The drain: the app sees a shutdown watch that turns at the start of the drain
//! (HTTP/2 connections get GOAWAY then), not 5 s later when Pingora's does; and
//! Pingora's cleanup, which drops every connection waiting for a request, is held
//! back until no connection that was accepted or began a request is still sending
//! its head (at most `header_timeout`), so a client whose request is on its way gets
//! an answer, with `Connection: close`.

mod pace;
mod per_ip;
mod stream;

use async_trait::async_trait;
use http::StatusCode;
use pingora::apps::ServerApp;
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, IO};
use pingora::server::ShutdownWatch;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::base::problem_document;
use crate::edge::forwarded::TrustedProxies;
use crate::observability::Metrics;
use pace::{HeadsAwaited, Phase, BODY, BUSY, IDLE};
use per_ip::{IpSlot, PerIp};
use stream::{Clocks, GuardedStream, SlowBody};

/// The `[server]` limits on client connections, as the current snapshot has them.
#[derive(Debug, Clone)]
pub struct ClientLimits {
    pub header_timeout: Duration,
    /// Bytes per second; 0: not judged.
    pub body_min_rate: u64,
    pub max_connections_per_ip: Option<u32>,
    /// Trusted proxies carry many clients' connections: never limited per IP.
    pub exempt: TrustedProxies,
}

/// Where the guard reads the current limits (the running snapshot's).
pub type CurrentLimits = Box<dyn Fn() -> Arc<ClientLimits> + Send + Sync>;

/// What every guarded stream of a service shares: its counters and the canned answer
/// to a head that came too late.
pub struct Shared {
    header_timeouts: prometheus::IntCounter,
    bodies_too_slow: prometheus::IntCounter,
    head_timeout_answer: String,
}

impl Shared {
    fn new(metrics: &Metrics) -> Self {
        let body = problem_document(
            StatusCode::REQUEST_TIMEOUT,
            "the request head did not arrive within header_timeout",
        )
        .to_string();
        Self {
            header_timeouts: metrics.client_timeouts("header"),
            bodies_too_slow: metrics.client_timeouts("body"),
            head_timeout_answer: format!(
                "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/problem+json\r\n\
                 content-length: {}\r\nconnection: close\r\ncache-control: no-store\r\n\
                 x-content-type-options: nosniff\r\n\r\n{body}",
                body.len()
            ),
        }
    }

    fn header_timeout(&self) {
        self.header_timeouts.inc();
    }

    fn body_too_slow(&self) {
        self.bodies_too_slow.inc();
    }
}

/// A listener service's app with the connection limits and the drain in front.
pub struct ConnectionGuard<A> {
    app: Arc<A>,
    limits: CurrentLimits,
    /// Turns at the start of the drain; the app's shutdown watch.
    drain: ShutdownWatch,
    /// The service speaks HTTP/2 without TLS to clients that open with its preface.
    h2c: bool,
    heads: Arc<HeadsAwaited>,
    per_ip: Arc<PerIp>,
    shared: Arc<Shared>,
    refused_per_ip: prometheus::IntCounter,
}

impl<A> ConnectionGuard<A> {
    pub fn new(
        app: A,
        limits: CurrentLimits,
        drain: ShutdownWatch,
        h2c: bool,
        metrics: &Metrics,
    ) -> Self {
        Self {
            app: Arc::new(app),
            limits,
            drain,
            h2c,
            heads: Arc::default(),
            per_ip: Arc::default(),
            shared: Arc::new(Shared::new(metrics)),
            refused_per_ip: metrics.connections_refused("max_connections_per_ip"),
        }
    }

    /// The connection's per-IP slot; `Err` when its address holds all of them.
    fn slot(&self, stream: &Stream, limits: &ClientLimits) -> Result<Option<IpSlot>, ()> {
        let Some(max) = limits.max_connections_per_ip else {
            return Ok(None);
        };
        let Some(ip) = peer_ip(stream) else {
            return Ok(None);
        };
        if limits.exempt.contains(ip) {
            return Ok(None);
        }
        self.per_ip.take(ip, max).map(Some).ok_or(())
    }

    /// Whether a plaintext connection opens with the HTTP/2 preface (on an h2c
    /// service); `None` when it sent nothing within `wait`.
    async fn opens_h2(&self, stream: &mut Stream, wait: Duration) -> Option<bool> {
        const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        if !self.h2c || stream.get_ssl_digest().is_some() {
            return Some(false);
        }
        let mut buf = [0u8; PREFACE.len()];
        match tokio::time::timeout(wait, stream.try_peek(&mut buf)).await {
            Ok(Ok(true)) => Some(buf == PREFACE),
            Ok(Ok(false)) => Some(false),
            Ok(Err(_)) | Err(_) => None,
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for ConnectionGuard<A> {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        _shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let limits = (self.limits)();
        let Ok(slot) = self.slot(&stream, &limits) else {
            self.refused_per_ip.inc();
            return None;
        };
        let h2 = match stream.selected_alpn_proto() {
            Some(pingora::protocols::ALPN::H2) => true,
            _ => match self.opens_h2(&mut stream, limits.header_timeout).await {
                Some(h2) => h2,
                None => {
                    self.shared.header_timeout();
                    return None;
                }
            },
        };
        let phase = Phase::fresh(self.heads.clone());
        if h2 {
            phase.set(BUSY);
        }
        let clocks = Clocks {
            header_timeout: limits.header_timeout,
            body_min_rate: limits.body_min_rate,
        };
        let guarded = GuardedStream::new(stream, phase, clocks, self.shared.clone(), slot);
        self.app.process_new(Box::new(guarded), &self.drain).await
    }

    async fn cleanup(&self) {
        let longest = (self.limits)().header_timeout;
        if self.heads.count() > 0 {
            log::info!(
                "draining: waiting up to {longest:?} for {} connection(s) sending a request head",
                self.heads.count()
            );
        }
        let _ = tokio::time::timeout(longest, self.heads.none_left()).await;
        self.app.cleanup().await;
    }
}

fn peer_ip(stream: &Stream) -> Option<IpAddr> {
    let digest = stream.get_socket_digest()?;
    digest.peer_addr()?.as_inet().map(|addr| addr.ip())
}

fn phase_of(session: &ServerSession) -> Option<&Phase> {
    let io: &dyn IO = session.stream()?.as_ref();
    io.as_any()
        .downcast_ref::<GuardedStream>()
        .map(GuardedStream::phase)
}

/// The request's head is parsed: from now on its body (if it has one) is judged by
/// its pace, no longer by the head deadline.
pub fn head_complete(session: &ServerSession) {
    if let Some(phase) = phase_of(session) {
        let headers = &session.req_header().headers;
        let has_body = headers.contains_key(http::header::TRANSFER_ENCODING)
            || headers
                .get(http::header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0");
        phase.set(if has_body { BODY } else { BUSY });
    }
}

/// The request's body was read in full.
pub fn body_complete(session: &ServerSession) {
    if let Some(phase) = phase_of(session) {
        if phase.get() == BODY {
            phase.set(BUSY);
        }
    }
}

/// The request is answered and logged: the connection waits for its next request.
pub fn request_complete(session: &ServerSession) {
    if let Some(phase) = phase_of(session) {
        phase.set(IDLE);
    }
}

/// Whether proxying failed because the client's body came slower than
/// `body_min_rate` (the proxy answers 408).
pub fn slow_body(e: &pingora::Error) -> bool {
    e.root_cause()
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .is_some_and(|inner| inner.is::<SlowBody>())
}
