//! Client connections between accept and the proxy: the slow-client limits of
//! `[server]` (`header_timeout`, `body_min_rate`, `max_connections_per_ip`), the
//! lingering close of a refused request ([`linger`]) and the drain of open
//! connections when the process stops or hands its sockets over.
//!
//! [`AcceptFilter`] runs as each connection is accepted, before a TLS handshake: one
//! accept per turn, and the per-IP limit, whose slot it reserves.
//! [`ConnectionGuard`] wraps a listener service's Pingora app. Per connection it
//! claims that slot (or takes one: none left, the connection is closed at once and
//! counted), and
//! wraps the stream in a [`stream::GuardedStream`], which holds the slot. On an
//! HTTP/1.1 connection its reads carry the clocks; the proxy tells it where its
//! request is with [`head_complete`], [`body_complete`] and [`request_complete`].
//! HTTP/2 connections are judged by stream: each stream's body by its own pace
//! (`h2_pace`); a connection whose preface and first stream do not arrive within
//! `header_timeout` of its HTTP/2 handshake's start is closed, with GOAWAY once the
//! handshake is done (Pingora's server option `h2_first_stream_timeout`, set at
//! start); one without a request in flight for `keepalive_timeout` is closed. On an
//! h2c listener the guard reads the first bytes itself to tell the two apart (within
//! `header_timeout`; a client that closes first is dropped), and hands them on.
//!
//! Before each request of an HTTP/1.x connection, its first too, the guard itself
//! waits for the request's first byte (the first at most `header_timeout` from
//! accept, a later one at most `keepalive_timeout`), and only then hands the stream
//! to Pingora for the request. Pingora's per-request state (its session, 4 KiB head
//! buffer and the proxy's request future, about 18 KB) is allocated from the first
//! byte on, not held by every silent or idle connection. This is Pingora's
//! own HTTP/1.x loop (`ServerApp` for an `HttpServerApp`) with that wait added; HTTP/2
//! connections go to Pingora's.
//!
//! The drain: the app sees a shutdown watch that turns at the start of the drain
//! (HTTP/2 connections get GOAWAY then), not 5 s later when Pingora's does; and
//! Pingora's cleanup, which drops every connection waiting for a request, is held
//! back until no connection that was accepted or began a request is still sending
//! its head (at most `header_timeout`), so a client whose request is on its way gets
//! an answer, with `Connection: close`.

mod accept;
mod h2_pace;
mod linger;
mod pace;
mod per_ip;
mod proxy_protocol;
mod stream;

use async_trait::async_trait;
use http::StatusCode;
use pingora::apps::{HttpServerApp, ReusedHttpStream, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, ALPN, IO};
use pingora::server::ShutdownWatch;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::base::lifecycle::Lifecycle;
use crate::base::problem_document;
use crate::edge::forwarded::TrustedProxies;
use crate::observability::Metrics;
pub use accept::AcceptFilter;
pub use linger::{linger, Lingering};
use pace::{HeadsAwaited, Phase, BODY, BUSY, IDLE};
use per_ip::IpSlot;
pub use per_ip::PerIp;
pub use proxy_protocol::ProxyListeners;
use stream::{Accepted, Clocks, GuardedStream, SlowBody, Sniffed};

/// The `[server]` limits on client connections, as the current snapshot has them.
#[derive(Debug, Clone)]
pub struct ClientLimits {
    pub header_timeout: Duration,
    /// Bytes per second; 0: not judged.
    pub body_min_rate: u64,
    pub max_connections_per_ip: Option<u32>,
    /// How long a connection may wait for its next request.
    pub keepalive_timeout: Duration,
    /// Trusted proxies carry many clients' connections: never limited per IP.
    pub exempt: TrustedProxies,
    /// What is read of a refused request's body before its connection closes.
    pub lingering: Lingering,
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
    /// Where the drain is marked when this service stops listening.
    lifecycle: Arc<Lifecycle>,
    /// Turns at the start of the drain; the app's shutdown watch.
    drain: ShutdownWatch,
    /// The service speaks HTTP/2 without TLS to clients that open with its preface
    /// (Pingora's `h2c` server option, which the guard cannot read from the app).
    h2c: bool,
    heads: Arc<HeadsAwaited>,
    per_ip: Arc<PerIp>,
    /// The plain listeners that expect a PROXY header (TLS ones read it before
    /// their handshake).
    proxied: Arc<ProxyListeners>,
    shared: Arc<Shared>,
    refused_per_ip: prometheus::IntCounter,
    /// The longest `header_timeout` a connection was accepted with (ms): how long the
    /// drain may wait for heads.
    longest_head_ms: AtomicU64,
    /// Turns when the app's cleanup begins: connections waiting for their next
    /// request close then, as Pingora's own waiting ones do.
    closing: watch::Sender<bool>,
}

impl<A> ConnectionGuard<A> {
    /// `per_ip` is shared by every service of the process: the limit is per process.
    pub fn new(
        app: A,
        limits: CurrentLimits,
        lifecycle: Arc<Lifecycle>,
        h2c: bool,
        per_ip: Arc<PerIp>,
        proxied: Arc<ProxyListeners>,
        metrics: &Metrics,
    ) -> Self {
        Self {
            app: Arc::new(app),
            limits,
            drain: lifecycle.drain_watch(),
            lifecycle,
            h2c,
            heads: Arc::default(),
            per_ip,
            proxied,
            shared: Arc::new(Shared::new(metrics)),
            refused_per_ip: metrics.connections_refused("max_connections_per_ip"),
            longest_head_ms: AtomicU64::new(0),
            closing: watch::Sender::new(false),
        }
    }

    /// The connection's per-IP slot: the one reserved at accept, else a new one;
    /// `Err` when its address holds all of them.
    fn slot(
        &self,
        reserved: Option<IpSlot>,
        stream: &Stream,
        limits: &ClientLimits,
    ) -> Result<Option<IpSlot>, ()> {
        if reserved.is_some() {
            return Ok(reserved);
        }
        let Some(max) = limits.max_connections_per_ip else {
            return Ok(None);
        };
        let Some(peer) = peer_addr(stream) else {
            return Ok(None);
        };
        if limits.exempt.contains(peer.ip()) {
            return Ok(None);
        }
        self.per_ip.take(peer.ip(), max).map(Some).ok_or(())
    }
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads a plaintext connection's first bytes until they differ from the HTTP/2
/// preface (HTTP/1.1: usually the first or second byte) or complete it, or `until`
/// passes (then it is HTTP/1.1, and the head deadline has passed). `None`: the
/// client closed first.
async fn sniff(stream: &mut Stream, until: Instant) -> Option<Sniffed> {
    let mut bytes = Vec::with_capacity(H2_PREFACE.len());
    let mut buf = [0u8; H2_PREFACE.len()];
    while bytes.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(&bytes) {
        let want = H2_PREFACE.len() - bytes.len();
        let until = tokio::time::Instant::from_std(until);
        match tokio::time::timeout_at(until, stream.read(&mut buf[..want])).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    let h2 = bytes == H2_PREFACE;
    Some(Sniffed {
        bytes,
        h2: Some(h2),
    })
}

impl<A: HttpServerApp + Send + Sync + 'static> ConnectionGuard<A> {
    /// Pingora's HTTP/1.x keep-alive loop, waiting for each request's first byte
    /// first, the connection's first request too.
    async fn serve_http1(self: &Arc<Self>, stream: GuardedStream) -> Option<Stream> {
        let first = self.first_request(stream).await?;
        let mut session = ServerSession::new_http1(first);
        // As Pingora's loop: no keep-alive once the drain began; the proxy sets
        // `keepalive_timeout` per request.
        session.set_keepalive((!*self.drain.borrow()).then_some(60));
        session.set_keepalive_reuses_remaining(
            self.app
                .server_options()
                .and_then(|o| o.keepalive_request_limit),
        );
        let mut result = self.app.process_new_http(session, &self.drain).await;
        while let Some((stream, settings)) = result.map(ReusedHttpStream::consume) {
            let mut session = ServerSession::new_http1(self.next_request(stream).await?);
            if let Some(settings) = settings {
                settings.apply_to_session(&mut session);
            }
            result = self.app.process_new_http(session, &self.drain).await;
        }
        None
    }

    /// The stream once its first request's first byte arrived; `None`: the client
    /// closed, `header_timeout` passed (the stream answers 408 then: the head's
    /// deadline runs from accept), or the app's cleanup began.
    async fn first_request(&self, mut stream: GuardedStream) -> Option<Stream> {
        let mut closing = self.closing.subscribe();
        let arrived = tokio::select! {
            biased;
            arrived = stream.await_next_request() => arrived,
            _ = closing.wait_for(|closing| *closing) => false,
        };
        arrived.then(|| Box::new(stream) as Stream)
    }

    /// The stream once its next request's first byte arrived; `None`: the client
    /// closed, `keepalive_timeout` passed, or the app's cleanup began.
    async fn next_request(&self, stream: Stream) -> Option<Stream> {
        // Every stream this guard hands to the app is a GuardedStream.
        let mut guarded = stream.into_any().downcast::<GuardedStream>().ok()?;
        let keepalive = (self.limits)().keepalive_timeout;
        let mut closing = self.closing.subscribe();
        let arrived = tokio::select! {
            biased;
            arrived = tokio::time::timeout(keepalive, guarded.await_next_request()) => {
                arrived.unwrap_or(false)
            }
            _ = closing.wait_for(|closing| *closing) => false,
        };
        arrived.then_some(guarded as Stream)
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> ServerApp for ConnectionGuard<A> {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        _shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let accepted_at = Instant::now();
        // The slot the accept filter reserved, claimed first: every return below
        // gives it back by dropping it.
        let reserved = peer_addr(&stream).and_then(|peer| self.per_ip.claim(peer));
        if self.proxied.expect(&mut *stream).await.is_err() {
            return None;
        }
        let limits = (self.limits)();
        let Ok(slot) = self.slot(reserved, &stream, &limits) else {
            self.refused_per_ip.inc();
            return None;
        };
        let head_ms = u64::try_from(limits.header_timeout.as_millis()).unwrap_or(u64::MAX);
        self.longest_head_ms.fetch_max(head_ms, Relaxed);
        let tls = stream.get_ssl_digest().is_some();
        let sniffed = match self.h2c && !tls {
            true => sniff(&mut stream, accepted_at + limits.header_timeout).await?,
            false => Sniffed::default(),
        };
        let alpn = stream.selected_alpn_proto();
        let h2 = sniffed.h2 == Some(true) || alpn == Some(ALPN::H2);
        let phase = Phase::fresh(self.heads.clone());
        if h2 {
            phase.set(BUSY);
        }
        let accepted = Accepted {
            inner: stream,
            phase,
            clocks: Clocks {
                header_timeout: limits.header_timeout,
                body_min_rate: limits.body_min_rate,
            },
            accepted_at,
            sniffed,
            slot,
        };
        let guarded = GuardedStream::new(accepted, self.shared.clone());
        match h2 || !matches!(alpn, None | Some(ALPN::H1)) {
            true => self.app.process_new(Box::new(guarded), &self.drain).await,
            false => self.serve_http1(guarded).await,
        }
    }

    async fn cleanup(&self) {
        // The listeners just closed: from now on every response says so, whether or
        // not the signal that closed them reached the lifecycle's watcher yet.
        self.lifecycle.draining();
        let longest = Duration::from_millis(self.longest_head_ms.load(Relaxed));
        if self.heads.count() > 0 {
            log::info!(
                "draining: waiting up to {longest:?} for {} connection(s) sending a request head",
                self.heads.count()
            );
        }
        let _ = tokio::time::timeout(longest, self.heads.none_left()).await;
        self.closing.send_replace(true);
        self.app.cleanup().await;
    }
}

fn peer_addr(stream: &Stream) -> Option<std::net::SocketAddr> {
    let digest = stream.get_socket_digest()?;
    digest.peer_addr()?.as_inet().copied()
}

fn phase_of(session: &ServerSession) -> Option<&Phase> {
    let io: &dyn IO = session.stream()?.as_ref();
    io.as_any()
        .downcast_ref::<GuardedStream>()
        .map(GuardedStream::phase)
}

/// The request's head is parsed: from now on its body (if it has one) is judged by
/// its pace, no longer by the head deadline (an HTTP/2 stream's body by its own pace,
/// see `h2_pace`).
pub fn head_complete(session: &mut ServerSession, limits: &ClientLimits, metrics: &Metrics) {
    if session.is_http2() {
        return h2_pace::judge(session, limits.body_min_rate, metrics);
    }
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
