//! Where an HTTP/1.1 connection is in its request cycle, and the two clocks that judge
//! a slow client by it: the head deadline (`header_timeout`, counted from the first
//! byte of a request, or from accept for the first one) and the body pace
//! (`body_min_rate`, over the time spent waiting for the client).
//!
//! The phase is shared: the stream moves it when a request's first byte arrives, the
//! proxy when the head is parsed, the body complete and the request logged
//! ([`super::head_complete`] and the functions beside it). Connections whose head is awaited are counted (see
//! [`HeadsAwaited`]) so a drain can wait for them. Pure logic: every clock reading
//! is a parameter.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Accepted, the first request's head not complete yet (deadline from accept).
pub const FRESH: u8 = 0;
/// A later request's first bytes arrived, its head not complete yet.
pub const HEAD: u8 = 1;
/// Between requests: nothing arrived since the last one ended.
pub const IDLE: u8 = 2;
/// The head is complete and a body is being read.
pub const BODY: u8 = 3;
/// Nothing to judge: a request without body, a body read in full, an upgraded
/// connection.
pub const BUSY: u8 = 4;

fn awaits_head(phase: u8) -> bool {
    phase == FRESH || phase == HEAD
}

/// How many connections of a service are in [`FRESH`] or [`HEAD`]: a drain waits for
/// them to send their head before it drops connections waiting for one.
#[derive(Default)]
pub struct HeadsAwaited {
    count: AtomicUsize,
    none_left: Notify,
}

impl HeadsAwaited {
    pub fn count(&self) -> usize {
        self.count.load(Relaxed)
    }

    /// Resolves once no connection awaits its head (checked again on each change).
    pub async fn none_left(&self) {
        loop {
            let notified = self.none_left.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }

    fn add(&self) {
        self.count.fetch_add(1, Relaxed);
    }

    fn remove(&self) {
        if self.count.fetch_sub(1, Relaxed) == 1 {
            self.none_left.notify_waiters();
        }
    }
}

/// One connection's phase, moved by the stream and by the proxy.
pub struct Phase {
    phase: AtomicU8,
    heads: Arc<HeadsAwaited>,
}

impl Phase {
    /// A connection just accepted: [`FRESH`], counted.
    pub fn fresh(heads: Arc<HeadsAwaited>) -> Self {
        heads.add();
        Self {
            phase: AtomicU8::new(FRESH),
            heads,
        }
    }

    pub fn get(&self) -> u8 {
        self.phase.load(Relaxed)
    }

    /// Moves to `to`, keeping the count of connections awaiting a head.
    pub fn set(&self, to: u8) {
        let from = self.phase.swap(to, Relaxed);
        self.recount(from, to);
    }

    /// [`IDLE`] → [`HEAD`]: the first byte of a request arrived.
    pub fn head_started(&self) -> bool {
        let started = self
            .phase
            .compare_exchange(IDLE, HEAD, Relaxed, Relaxed)
            .is_ok();
        if started {
            self.heads.add();
        }
        started
    }

    fn recount(&self, from: u8, to: u8) {
        match (awaits_head(from), awaits_head(to)) {
            (true, false) => self.heads.remove(),
            (false, true) => self.heads.add(),
            _ => {}
        }
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        if awaits_head(self.get()) {
            self.heads.remove();
        }
    }
}

/// Nothing is judged in the first window of waiting of a body.
const GRACE: Duration = Duration::from_secs(5);
/// Then every window of waiting must have brought `min_rate` bytes per second.
const WINDOW: Duration = Duration::from_secs(5);

/// The body is arriving slower than `body_min_rate`.
#[derive(Debug, PartialEq, Eq)]
pub struct TooSlow;

/// Judges a request body's pace over the time tollgate spent waiting for it: time
/// in which tollgate did not read (because the upstream was not taking the body yet)
/// is not the client's fault and does not count.
#[derive(Debug)]
pub struct BodyPace {
    /// Bytes per second, at least.
    min_rate: u64,
    grace: bool,
    /// Time spent waiting in the current window, not counting a wait still going on.
    waited: Duration,
    bytes: u64,
    waiting_since: Option<Instant>,
}

impl BodyPace {
    pub fn new(min_rate: u64) -> Self {
        Self {
            min_rate,
            grace: true,
            waited: Duration::ZERO,
            bytes: 0,
            waiting_since: None,
        }
    }

    /// A read found nothing at `now`: tollgate waits for the client. Returns when the
    /// window ends if nothing arrives meanwhile (then call [`Self::expired`]).
    pub fn waiting(&mut self, now: Instant) -> Instant {
        let since = *self.waiting_since.get_or_insert(now);
        since + self.window().saturating_sub(self.waited)
    }

    /// `bytes` arrived at `now`.
    pub fn received(&mut self, bytes: u64, now: Instant) -> Result<(), TooSlow> {
        self.count_wait(now);
        self.bytes += bytes;
        self.judge()
    }

    /// The deadline [`Self::waiting`] gave passed at `now`, nothing arrived.
    pub fn expired(&mut self, now: Instant) -> Result<(), TooSlow> {
        self.count_wait(now);
        self.waiting_since = Some(now);
        self.judge()
    }

    fn window(&self) -> Duration {
        if self.grace {
            GRACE
        } else {
            WINDOW
        }
    }

    fn count_wait(&mut self, now: Instant) {
        if let Some(since) = self.waiting_since.take() {
            self.waited += now.saturating_duration_since(since);
        }
    }

    /// At the end of a window: too slow if it brought less than `min_rate` per second
    /// waited; else a new window begins.
    fn judge(&mut self) -> Result<(), TooSlow> {
        if self.waited < self.window() {
            return Ok(());
        }
        let needed = self.min_rate as u128 * self.waited.as_millis() / 1000;
        if !self.grace && u128::from(self.bytes) < needed {
            return Err(TooSlow);
        }
        self.grace = false;
        self.waited = Duration::ZERO;
        self.bytes = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_trickle_is_cut_after_the_grace_and_one_window() {
        let start = Instant::now();
        let mut pace = BodyPace::new(KIB);
        // One byte a second: each read waits a second.
        let mut cut_at = None;
        for s in 1..=30 {
            pace.waiting(start + secs(s as f64 - 1.0));
            if pace.received(1, start + secs(s as f64)).is_err() {
                cut_at = Some(s);
                break;
            }
        }
        assert_eq!(cut_at, Some(10), "5 s of grace, then a 5 s window");
    }

    #[test]
    fn a_stalled_body_is_cut_when_its_window_expires() {
        let start = Instant::now();
        let mut pace = BodyPace::new(KIB);
        let grace_end = pace.waiting(start);
        assert_eq!(grace_end, start + GRACE);
        assert_eq!(pace.expired(grace_end), Ok(()), "the grace judges nothing");
        let window_end = pace.waiting(grace_end);
        assert_eq!(window_end, grace_end + WINDOW);
        assert_eq!(pace.expired(window_end), Err(TooSlow));
    }

    #[test]
    fn a_body_at_the_rate_passes_window_after_window() {
        let start = Instant::now();
        let mut pace = BodyPace::new(KIB);
        for s in 1..=60u64 {
            pace.waiting(start + secs(s as f64 - 1.0));
            assert_eq!(pace.received(KIB, start + secs(s as f64)), Ok(()), "{s}");
        }
    }

    #[test]
    fn time_not_spent_waiting_does_not_count() {
        // The client sent everything it could; tollgate read it only after the
        // upstream took the head (20 s later).
        let start = Instant::now();
        let mut pace = BodyPace::new(KIB);
        pace.waiting(start);
        assert_eq!(pace.received(64 * KIB, start + secs(0.1)), Ok(()));
        assert_eq!(pace.received(64 * KIB, start + secs(20.0)), Ok(()));
        let end = pace.waiting(start + secs(20.0));
        assert_eq!(end, start + secs(20.0) + GRACE - secs(0.1));
    }

    #[test]
    fn the_head_count_follows_the_phases() {
        let heads = Arc::new(HeadsAwaited::default());
        let phase = Phase::fresh(heads.clone());
        assert_eq!(heads.count(), 1, "fresh");
        phase.set(BODY);
        assert_eq!(heads.count(), 0);
        assert!(!phase.head_started(), "only from idle");
        phase.set(IDLE);
        assert!(phase.head_started());
        assert_eq!(heads.count(), 1);
        phase.set(HEAD);
        assert_eq!(heads.count(), 1, "no double count");
        drop(phase);
        assert_eq!(heads.count(), 0, "a dropped connection awaits nothing");
    }
}
