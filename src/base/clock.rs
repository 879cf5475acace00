//! [`Clock`]: the one clock the time-based logic reads (rate-limit buckets, jail
//! strikes and bans, passive health and the retry budget, request timestamps). It is
//! handed down from where the process starts, never read from a global, so a test can
//! run the same logic on a clock it moves by hand.
//!
//! Two readings: wall-clock time since the Unix epoch (shared state such as Redis
//! buckets and bans, timestamps), and a monotonic reading since the clock was made
//! (ejections, budget windows), which a change of the system time does not move.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug)]
pub struct Clock(Source);

#[derive(Clone, Debug)]
enum Source {
    System {
        started: Instant,
    },
    /// Nanoseconds since the epoch, moved by hand; monotonic readings count from 0.
    Manual {
        now: Arc<AtomicU64>,
        start: u64,
    },
}

impl Clock {
    /// The system's clocks.
    pub fn system() -> Self {
        Self(Source::System {
            started: Instant::now(),
        })
    }

    /// A clock standing at `unix_nanos` until [`Clock::advance`] moves it.
    pub fn manual(unix_nanos: u64) -> Self {
        Self(Source::Manual {
            now: Arc::new(AtomicU64::new(unix_nanos)),
            start: unix_nanos,
        })
    }

    /// Moves a manual clock forward (a system clock moves by itself).
    pub fn advance(&self, by: Duration) {
        if let Source::Manual { now, .. } = &self.0 {
            now.fetch_add(to_u64(by.as_nanos()), Relaxed);
        }
    }

    /// Nanoseconds since the Unix epoch.
    pub fn unix_nanos(&self) -> u64 {
        match &self.0 {
            Source::System { .. } => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| to_u64(d.as_nanos())),
            Source::Manual { now, .. } => now.load(Relaxed),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(&self) -> u64 {
        self.unix_nanos() / 1_000_000
    }

    /// The wall-clock time.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.unix_nanos())
    }

    /// Milliseconds since the clock was made, never going back.
    pub fn monotonic_ms(&self) -> u64 {
        match &self.0 {
            Source::System { started } => to_u64(started.elapsed().as_millis()),
            Source::Manual { now, start } => now.load(Relaxed).saturating_sub(*start) / 1_000_000,
        }
    }
}

fn to_u64(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = Clock::manual(1_700_000_000_000_000_000);
        assert_eq!(clock.unix_millis(), 1_700_000_000_000);
        assert_eq!(clock.monotonic_ms(), 0);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.unix_millis(), 1_700_000_001_500);
        assert_eq!(clock.monotonic_ms(), 1500);
        let system = Clock::system();
        assert!(system.unix_millis() > 1_700_000_000_000);
        assert!(system.monotonic_ms() < 60_000);
    }
}
