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

pub struct GuardedStream {
    inner: Stream,
    phase: Phase,
    clocks: Clocks,
    shared: Arc<Shared>,
    /// The phase the clocks below were set for.
    seen: u8,
    head_deadline: Option<Instant>,
    body: Option<BodyPace>,
    timer: Option<Pin<Box<Sleep>>>,
    cut: Option<Cut>,
    _slot: Option<IpSlot>,
}

enum Cut {
    /// Writing the canned 408 (this many bytes of it written).
    Answering(usize),
    /// Reads end: EOF after a head timeout, [`SlowBody`] after a body one.
    Closed { body: bool },
}

impl GuardedStream {
    pub fn new(
        inner: Stream,
        phase: Phase,
        clocks: Clocks,
        shared: Arc<Shared>,
        slot: Option<IpSlot>,
    ) -> Self {
        let mut stream = Self {
            inner,
            phase,
            clocks,
            shared,
            seen: BUSY,
            head_deadline: None,
            body: None,
            timer: None,
            cut: None,
            _slot: slot,
        };
        stream.enter(stream.phase.get(), Instant::now());
        stream
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// Sets the clocks for a phase the proxy (or a first byte) moved to.
    fn enter(&mut self, phase: u8, now: Instant) {
        self.seen = phase;
        self.head_deadline = match phase {
            FRESH | HEAD => Some(now + self.clocks.header_timeout),
            _ => None,
        };
        self.body = (phase == BODY && self.clocks.body_min_rate > 0)
            .then(|| BodyPace::new(self.clocks.body_min_rate));
    }

    fn on_bytes(&mut self, n: usize) -> Result<(), TooSlow> {
        if self.seen == IDLE && self.phase.head_started() {
            self.enter(HEAD, Instant::now());
        }
        match &mut self.body {
            Some(pace) => pace.received(n as u64, Instant::now()),
            None => Ok(()),
        }
    }

    /// Nothing to read: arms the timer for the phase's deadline. `Ready` when the
    /// deadline passed and the connection is cut.
    fn on_waiting(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let now = Instant::now();
            let deadline = match (&mut self.body, self.head_deadline) {
                (Some(pace), _) => pace.waiting(now),
                (None, Some(deadline)) => deadline,
                (None, None) => return Poll::Pending,
            };
            let deadline = tokio::time::Instant::from_std(deadline);
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            match self.body.as_mut().map(|pace| pace.expired(now)) {
                Some(Ok(())) => continue,
                Some(Err(TooSlow)) => self.cut_body(),
                None => {
                    self.shared.header_timeout();
                    self.cut = Some(Cut::Answering(0));
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
                Some(Cut::Answering(written)) => {
                    let answer = self.shared.head_timeout_answer.as_bytes();
                    if written == answer.len() {
                        let _ = std::task::ready!(Pin::new(&mut self.inner).poll_flush(cx));
                        self.cut = Some(Cut::Closed { body: false });
                        continue;
                    }
                    match std::task::ready!(
                        Pin::new(&mut self.inner).poll_write(cx, &answer[written..])
                    ) {
                        Ok(n) if n > 0 => self.cut = Some(Cut::Answering(written + n)),
                        // The client is gone: nothing more to tell it.
                        _ => self.cut = Some(Cut::Closed { body: false }),
                    }
                }
                Some(Cut::Closed { body: true }) => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, SlowBody)))
                }
                Some(Cut::Closed { body: false }) | None => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut.is_some() {
            return this.poll_cut(cx);
        }
        let phase = this.phase.get();
        if phase != this.seen {
            this.enter(phase, Instant::now());
        }
        if phase == BUSY {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len() - before;
                if n > 0 && this.on_bytes(n).is_err() {
                    // These bytes are passed on; the next read fails.
                    this.cut_body();
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

#[async_trait]
impl Peek for GuardedStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}
