//! Requests in flight to one target: a counter shared by every clone of its `Backend`
//! (in the backend's `ext`), read by `least_conn` selection. A guard counts one
//! request until it is dropped, so a request that fails or is cancelled is never
//! left counted.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    pub fn enter(&self) -> InFlightGuard {
        self.0.fetch_add(1, Relaxed);
        InFlightGuard(self.0.clone())
    }

    pub fn current(&self) -> usize {
        self.0.load(Relaxed)
    }
}

pub struct InFlightGuard(Arc<AtomicUsize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}
