//! [`GuardedStream`]: an accepted HTTP/1.1 connection's stream (TCP, or TLS after
//! the handshake) as Pingora reads it, with the slow-client clocks of `pace` on its
//! reads.
//!
//! - A head not complete by its deadline gets a canned 408 problem written here (no
//!   request exists yet for the proxy to answer) and then reads as closed.
//! - A body below `body_min_rate` makes the read fail with [`SlowBody`]; the proxy's
//!   error phase answers 408 (see [`super::slow_body`]).
//!
//! Every other trait Pingora needs of a stream is passed through. The per-IP slot of
//! the connection lives here, so it is released when Pingora drops the stream.

use async_trait::async_trait;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::pace::{BodyPace, Phase, TooSlow, BODY, BUSY, FRESH, HEAD, IDLE};
use super::per_ip::IpSlot;
use super::Shared;

/// The error a read returns once a request body is judged too slow.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived slower than body_min_rate")]
pub struct SlowBody;

/// What the clocks of one connection are set to (from the snapshot at accept).
#[derive(Debug, Clone, Copy)]
pub struct Clocks {
    pub header_timeout: Duration,
    /// Bytes per second; 0: not judged.
    pub body_min_rate: u64,
}

/// How long the canned 408 may take to write before the connection is closed
/// without it (a client that does not read).
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// What the guard read before Pingora saw the connection, on an h2c listener: the
/// first bytes, up to the first that differs from the HTTP/2 preface (or all of it).
#[derive(Debug, Default)]
pub struct Sniffed {
    pub bytes: Vec<u8>,
    /// Whether they are the HTTP/2 preface; `None`: nothing was sniffed.
    pub h2: Option<bool>,
}

/// An accepted connection, as the guard hands it to its stream.
pub struct Accepted {
    pub inner: Stream,
    pub phase: Phase,
    pub clocks: Clocks,
    pub accepted_at: Instant,
    pub sniffed: Sniffed,
    pub slot: Option<IpSlot>,
}

pub struct GuardedStream {
    inner: Stream,
    phase: Phase,
    clocks: Clocks,
    shared: Arc<Shared>,
    /// Sniffed bytes not read by Pingora yet, and what they were.
    replay: Vec<u8>,
    h2: Option<bool>,
    /// The phase the clocks below were set for.
    seen: u8,
    head_deadline: Option<Instant>,
    body: Option<BodyPace>,
    timer: Option<Pin<Box<Sleep>>>,
    cut: Option<Cut>,
    _slot: Option<IpSlot>,
}

enum Cut {
    /// The last bytes read put the body below the rate: cut at the next read, unless
    /// they completed the body.
    BodyTooSlow,
    /// Writing the canned 408: this many bytes of it written, giving up at `until`.
    Answering { written: usize, until: Instant },
    /// Reads end: EOF after a head timeout, [`SlowBody`] after a body one.
    Closed { body: bool },
}

impl GuardedStream {
    pub fn new(accepted: Accepted, shared: Arc<Shared>) -> Self {
        let Accepted {
            inner,
            phase,
            clocks,
            accepted_at,
            sniffed,
            slot,
        } = accepted;
        let mut stream = Self {
            inner,
            phase,
            clocks,
            shared,
            replay: sniffed.bytes,
            h2: sniffed.h2,
            seen: BUSY,
            head_deadline: None,
            body: None,
            timer: None,
            cut: None,
            _slot: slot,
        };
        stream.enter(stream.phase.get(), accepted_at);
        stream
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// Waits for the first byte of the connection's next request (its head clock
    /// starts with it) and keeps it for the next read. `false`: the client closed,
    /// or the read failed.
    pub async fn await_next_request(&mut self) -> bool {
        let mut first = [0u8; 1];
        match tokio::io::AsyncReadExt::read(self, &mut first).await {
            Ok(1) => {
                self.replay.push(first[0]);
                true
            }
            _ => false,
        }
    }

    /// Sets the clocks for a phase the proxy (or a first byte) moved to at `since`.
    fn enter(&mut self, phase: u8, since: Instant) {
        self.seen = phase;
        self.head_deadline = match phase {
            FRESH | HEAD => Some(since + self.clocks.header_timeout),
            _ => None,
        };
        self.body = (phase == BODY && self.clocks.body_min_rate > 0)
            .then(|| BodyPace::new(self.clocks.body_min_rate));
    }

    fn on_bytes(&mut self, n: usize) {
        if self.seen == IDLE && self.phase.head_started() {
            self.enter(HEAD, Instant::now());
        }
        if let Some(pace) = &mut self.body {
            if pace.received(n as u64, Instant::now()).is_err() {
                self.cut = Some(Cut::BodyTooSlow);
            }
        }
    }

    /// Polls the timer set to `deadline`: ready once it passed.
    fn expired(&mut self, deadline: Instant, cx: &mut Context<'_>) -> bool {
        let deadline = tokio::time::Instant::from_std(deadline);
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().poll(cx).is_ready()
    }

    /// Nothing to read: arms the timer for the phase's deadline. `Ready` when the
    /// deadline passed and the connection is cut.
    fn on_waiting(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let deadline = match (&mut self.body, self.head_deadline) {
                (Some(pace), _) => pace.waiting(Instant::now()),
                (None, Some(deadline)) => deadline,
                (None, None) => return Poll::Pending,
            };
            if !self.expired(deadline, cx) {
                return Poll::Pending;
            }
            match self.body.as_mut().map(|pace| pace.expired(Instant::now())) {
                Some(Ok(())) => continue,
                Some(Err(TooSlow)) => self.cut_body(),
                None => {
                    self.shared.header_timeout();
                    self.cut = Some(Cut::Answering {
                        written: 0,
                        until: Instant::now() + ANSWER_WITHIN,
                    });
                }
            }
            return Poll::Ready(());
        }
    }

    fn cut_body(&mut self) {
        self.shared.body_too_slow();
        self.cut = Some(Cut::Closed { body: true });
    }

    /// Goes on with a cut: writes what is left of the 408, then ends reads.
    fn poll_cut(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match self.cut {
                Some(Cut::BodyTooSlow) => self.cut_body(),
                Some(Cut::Answering { written, until }) => {
                    let answer = self.shared.head_timeout_answer.as_bytes();
                    let step = if written == answer.len() {
                        Pin::new(&mut self.inner).poll_flush(cx).map_ok(|()| 0)
                    } else {
                        Pin::new(&mut self.inner).poll_write(cx, &answer[written..])
                    };
                    self.cut = match step {
                        Poll::Ready(Ok(n)) if n > 0 => Some(Cut::Answering {
                            written: written + n,
                            until,
                        }),
                        Poll::Pending if !self.expired(until, cx) => return Poll::Pending,
                        // Flushed, failed, or the client does not read: done.
                        _ => Some(Cut::Closed { body: false }),
                    };
                }
                Some(Cut::Closed { body: true }) => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, SlowBody)))
                }
                Some(Cut::Closed { body: false }) | None => return Poll::Ready(Ok(())),
            }
        }
    }

    /// Serves sniffed bytes first.
    fn poll_replay(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        if self.replay.is_empty() {
            return false;
        }
        let n = self.replay.len().min(buf.remaining());
        buf.put_slice(&self.replay[..n]);
        self.replay.drain(..n);
        true
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let phase = this.phase.get();
        if phase != this.seen {
            this.enter(phase, Instant::now());
        }
        if matches!(this.cut, Some(Cut::BodyTooSlow)) && phase != BODY {
            // The bytes that were too slow completed the body: nothing left to cut.
            this.cut = None;
        }
        if this.cut.is_some() {
            return this.poll_cut(cx);
        }
        if this.poll_replay(buf) {
            return Poll::Ready(Ok(()));
        }
        if phase == BUSY {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len() - before;
                if n > 0 {
                    // These bytes are passed on; a cut waits for the next read.
                    this.on_bytes(n);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.on_waiting(cx) {
                Poll::Ready(()) => this.poll_cut(cx),
                Poll::Pending => Poll::Pending,
            },
            err => err,
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl std::fmt::Debug for GuardedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedStream")
            .field("inner", &self.inner)
            .field("phase", &self.phase.get())
            .finish()
    }
}

#[async_trait]
impl Shutdown for GuardedStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for GuardedStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl pingora::protocols::Ssl for GuardedStream {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for GuardedStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for GuardedStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for GuardedStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

/// Pingora peeks for the HTTP/2 preface itself on an h2c listener, with a read that
/// waits for 24 bytes (so a shorter request would wait forever). The guard has
/// sniffed the connection already: it answers with the preface or, for HTTP/1.1,
/// zeros (anything but the preface).
#[async_trait]
impl Peek for GuardedStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        match self.h2 {
            Some(true) => {
                let n = buf.len().min(self.replay.len());
                buf[..n].copy_from_slice(&self.replay[..n]);
                Ok(n == buf.len())
            }
            Some(false) => {
                buf.fill(0);
                Ok(true)
            }
            None => self.inner.try_peek(buf).await,
        }
    }
}
