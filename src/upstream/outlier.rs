//! Passive health (outlier ejection, `[upstreams.X] passive`): every target counts its
//! consecutive failed requests (a connect failure, a reset or timeout while talking to
//! it, or a response whose status is in `statuses`). At `consecutive_failures` it is
//! ejected: selection skips it for `eject_for`, twice as long for each ejection in a
//! row (up to `max_eject_for`), until a request to it succeeds. The last target that
//! is healthy and not ejected is never ejected, and if every target is ejected
//! selection takes ejected ones rather than none.
//!
//! The state lives in the target's `Backend` (like its in-flight count), so it is
//! kept across reloads with the targets. Every function takes the clock reading.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// The rules of passive health (`passive`).
#[derive(Debug, Clone)]
pub struct PassiveRules {
    pub consecutive_failures: u32,
    pub eject_for: Duration,
    pub max_eject_for: Duration,
    /// Response statuses that count as a failure of the target.
    pub statuses: Vec<u16>,
}

/// One target's failures and ejection.
#[derive(Clone, Default)]
pub struct Outlier(Arc<State>);

#[derive(Default)]
struct State {
    failures: AtomicU32,
    /// Ejected until this monotonic reading in ms (`Clock::monotonic_ms`; 0: never).
    until_ms: AtomicU64,
    /// Ejections in a row (no success in between).
    ejections: AtomicU32,
}

impl Outlier {
    pub fn ejected(&self, now_ms: u64) -> bool {
        now_ms < self.0.until_ms.load(Relaxed)
    }

    /// Until when (a monotonic reading in ms) the target is ejected; 0 when never.
    pub fn ejected_until(&self) -> u64 {
        self.0.until_ms.load(Relaxed)
    }

    /// A request to the target succeeded.
    pub fn succeeded(&self) {
        self.0.failures.store(0, Relaxed);
        self.0.ejections.store(0, Relaxed);
    }

    /// A request to the target failed at `now_ms`: how long to eject it for, when this
    /// failure reaches the threshold (the caller decides whether it may).
    pub fn failed(&self, rules: &PassiveRules, now_ms: u64) -> Option<Duration> {
        let failures = self.0.failures.fetch_add(1, Relaxed) + 1;
        if failures < rules.consecutive_failures || self.ejected(now_ms) {
            return None;
        }
        let doublings = self.0.ejections.load(Relaxed).min(16);
        let length = rules.eject_for.checked_mul(2u32.pow(doublings));
        Some(length.map_or(rules.max_eject_for, |l| l.min(rules.max_eject_for)))
    }

    pub fn eject(&self, length: Duration, now_ms: u64) {
        let ms = u64::try_from(length.as_millis()).unwrap_or(u64::MAX);
        self.0.until_ms.store(now_ms.saturating_add(ms), Relaxed);
        self.0.ejections.fetch_add(1, Relaxed);
        self.0.failures.store(0, Relaxed);
    }

    /// The threshold was reached but the target may not go (it is the last one left):
    /// it starts counting again.
    pub fn spared(&self) {
        self.0.failures.store(0, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> PassiveRules {
        PassiveRules {
            consecutive_failures: 3,
            eject_for: Duration::from_secs(10),
            max_eject_for: Duration::from_secs(25),
            statuses: vec![503],
        }
    }

    #[test]
    fn ejections_follow_consecutive_failures_and_double_up_to_the_cap() {
        let (o, rules) = (Outlier::default(), rules());
        assert_eq!(o.failed(&rules, 0), None);
        o.succeeded();
        assert_eq!(o.failed(&rules, 0), None);
        assert_eq!(o.failed(&rules, 0), None);
        let first = o.failed(&rules, 0).expect("third failure in a row");
        assert_eq!(first, Duration::from_secs(10));
        o.eject(first, 1_000);
        assert!(o.ejected(10_999) && !o.ejected(11_000));
        // Back, and failing again at once: twice as long, then capped.
        for _ in 0..2 {
            assert_eq!(o.failed(&rules, 11_000), None);
        }
        let second = o.failed(&rules, 11_000).expect("failing again");
        assert_eq!(second, Duration::from_secs(20));
        o.eject(second, 11_000);
        for _ in 0..2 {
            o.failed(&rules, 40_000);
        }
        assert_eq!(o.failed(&rules, 40_000), Some(Duration::from_secs(25)));
        // A success ends the streak.
        o.succeeded();
        for _ in 0..2 {
            o.failed(&rules, 50_000);
        }
        assert_eq!(o.failed(&rules, 50_000), Some(Duration::from_secs(10)));
    }
}
