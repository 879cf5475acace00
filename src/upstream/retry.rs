//! Retries after a request reached a target (`retry_on`, `retry_budget`): what may be
//! retried, and a budget that keeps retries at a share of the upstream's requests, so
//! that retries cannot multiply an outage (every client retrying on every target).
//!
//! The budget counts over fixed 10 s windows: in a window, retries may reach
//! `retry_budget` × the window's requests, and at least [`MIN_RETRIES`]. Every
//! function takes the clock reading (ms).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::config::raw::RetryOn;

const WINDOW_MS: u64 = 10_000;
/// Retries a window allows however few requests it had.
const MIN_RETRIES: u64 = 3;

/// What an upstream retries on, and its budget.
pub struct RetryRules {
    pub on: Vec<RetryOn>,
    budget: RetryBudget,
}

impl RetryRules {
    pub fn new(on: Vec<RetryOn>, share: f64) -> Self {
        Self {
            on,
            budget: RetryBudget::new(share),
        }
    }

    pub fn on_status(&self, status: u16) -> bool {
        self.on.contains(&RetryOn::Status(status))
    }

    pub fn on(&self, kind: RetryOn) -> bool {
        self.on.contains(&kind)
    }

    pub fn budget(&self) -> &RetryBudget {
        &self.budget
    }
}

pub struct RetryBudget {
    share: f64,
    window: Mutex<Window>,
    /// Retries refused by the budget, since start.
    pub refused: AtomicU64,
}

#[derive(Default)]
struct Window {
    start_ms: u64,
    requests: u64,
    retries: u64,
}

impl RetryBudget {
    pub fn new(share: f64) -> Self {
        Self {
            share,
            window: Mutex::new(Window::default()),
            refused: AtomicU64::new(0),
        }
    }

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

    /// Whether one more retry fits; if so, it is counted.
    pub fn try_retry(&self, now_ms: u64) -> bool {
        let mut w = self.current(now_ms);
        let allowed = ((w.requests as f64 * self.share) as u64).max(MIN_RETRIES);
        if w.retries < allowed {
            w.retries += 1;
            true
        } else {
            self.refused.fetch_add(1, Relaxed);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_a_share_of_the_windows_requests_with_a_floor() {
        let budget = RetryBudget::new(0.2);
        for _ in 0..100 {
            budget.request(0);
        }
        let granted = (0..50).filter(|_| budget.try_retry(1_000)).count();
        assert_eq!(granted, 20, "20% of 100 requests");
        assert_eq!(budget.refused.load(Relaxed), 30);
        // A new window: few requests, the floor applies.
        budget.request(10_000);
        let granted = (0..10).filter(|_| budget.try_retry(10_500)).count();
        assert_eq!(granted, 3);
    }
}
