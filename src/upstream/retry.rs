//! Retries after a request reached a target (`retry_on`, `retry_budget`): what may be
//! retried, and a budget that keeps retries at a share of the upstream's requests, so
//! that retries cannot multiply an outage (every client retrying on every target).
//!
//! The budget counts over fixed 10 s windows: in a window, retries may reach
//! `retry_budget` × the window's requests, and at least [`MIN_RETRIES`]. Its counts
//! live with the upstream's targets (kept across reloads), its share in the pool.
//! Every function takes the clock reading (ms).

use std::sync::Mutex;

const WINDOW_MS: u64 = 10_000;
/// Retries a window allows however few requests it had.
const MIN_RETRIES: u64 = 3;

/// A failure after the request reached its target that `retry_on` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryKind {
    Reset,
    Timeout,
}

/// What an upstream retries on, and the share of its requests retries may be.
#[derive(Debug, Default)]
pub struct RetryRules {
    reset: bool,
    timeout: bool,
    statuses: Vec<u16>,
    pub share: f64,
}

impl RetryRules {
    pub fn new(reset: bool, timeout: bool, statuses: Vec<u16>, share: f64) -> Self {
        Self {
            reset,
            timeout,
            statuses,
            share,
        }
    }

    /// Whether anything is retried at all.
    pub fn any(&self) -> bool {
        self.reset || self.timeout || !self.statuses.is_empty()
    }

    pub fn on_status(&self, status: u16) -> bool {
        self.statuses.contains(&status)
    }

    pub fn on(&self, kind: RetryKind) -> bool {
        match kind {
            RetryKind::Reset => self.reset,
            RetryKind::Timeout => self.timeout,
        }
    }
}

/// An upstream's requests and retries in the current window.
#[derive(Default)]
pub struct RetryBudget {
    window: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    start_ms: u64,
    requests: u64,
    retries: u64,
}

impl RetryBudget {
    fn current(&self, now_ms: u64) -> std::sync::MutexGuard<'_, Window> {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if now_ms.saturating_sub(w.start_ms) >= WINDOW_MS {
            *w = Window {
                start_ms: now_ms,
                ..Window::default()
            };
        }
        w
    }

    /// A request to the upstream (its first attempt).
    pub fn request(&self, now_ms: u64) {
        self.current(now_ms).requests += 1;
    }

    /// Whether one more retry fits within `share` of the window's requests; if so, it
    /// is counted.
    pub fn try_retry(&self, share: f64, now_ms: u64) -> bool {
        let mut w = self.current(now_ms);
        let allowed = ((w.requests as f64 * share) as u64).max(MIN_RETRIES);
        let fits = w.retries < allowed;
        if fits {
            w.retries += 1;
        }
        fits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_a_share_of_the_windows_requests_with_a_floor() {
        let budget = RetryBudget::default();
        for _ in 0..100 {
            budget.request(0);
        }
        let granted = (0..50).filter(|_| budget.try_retry(0.2, 1_000)).count();
        assert_eq!(granted, 20, "20% of 100 requests");
        // A new window: few requests, the floor applies.
        budget.request(10_000);
        let granted = (0..10).filter(|_| budget.try_retry(0.2, 10_500)).count();
        assert_eq!(granted, 3);
    }
}
