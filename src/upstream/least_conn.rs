//! `least_conn` selection: the target with the fewest requests in flight, ties broken
//! round-robin. Pingora has no such algorithm; this implements its `BackendSelection`
//! interface so health checks and retries work as for the built-in ones.
//!
//! Counts come from the [`InFlight`] counter each backend carries in its `ext`.

use pingora::lb::selection::{BackendIter, BackendSelection};
use pingora::lb::Backend;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use super::in_flight::InFlight;

pub struct LeastConn {
    backends: Box<[Backend]>,
    counters: Box<[InFlight]>,
    rotation: AtomicUsize,
}

impl BackendSelection for LeastConn {
    type Iter = LeastConnIter;
    type Config = ();

    fn build(backends: &BTreeSet<Backend>) -> Self {
        let backends: Box<[Backend]> = backends.iter().cloned().collect();
        let counters = backends
            .iter()
            .map(|b| b.ext.get::<InFlight>().cloned().unwrap_or_default())
            .collect();
        Self {
            backends,
            counters,
            rotation: AtomicUsize::new(0),
        }
    }

    fn iter(self: &Arc<Self>, _key: &[u8]) -> LeastConnIter {
        let n = self.backends.len();
        let start = self.rotation.fetch_add(1, Relaxed);
        let mut order: Vec<usize> = (0..n).map(|i| (start + i) % n.max(1)).collect();
        // Stable: among equal counts the rotation order is kept.
        order.sort_by_key(|&i| self.counters[i].current());
        LeastConnIter {
            selection: self.clone(),
            order,
            pos: 0,
        }
    }
}

pub struct LeastConnIter {
    selection: Arc<LeastConn>,
    order: Vec<usize>,
    pos: usize,
}

impl BackendIter for LeastConnIter {
    fn next(&mut self) -> Option<&Backend> {
        let i = *self.order.get(self.pos)?;
        self.pos += 1;
        self.selection.backends.get(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(addr: &str) -> (Backend, InFlight) {
        let mut b = Backend::new(addr).expect("addr");
        let counter = InFlight::default();
        b.ext.insert(counter.clone());
        (b, counter)
    }

    #[test]
    fn picks_the_least_busy_and_rotates_among_equals() {
        let (a, ca) = backend("127.0.0.1:1");
        let (b, _cb) = backend("127.0.0.1:2");
        let sel = Arc::new(LeastConn::build(
            &[a.clone(), b.clone()].into_iter().collect(),
        ));
        let first = |s: &Arc<LeastConn>| s.iter(b"").next().map(|x| x.addr.clone());
        let picks: BTreeSet<_> = (0..2).map(|_| first(&sel)).collect();
        assert_eq!(picks.len(), 2, "equal counts rotate");
        let _busy = ca.enter();
        assert!((0..4).all(|_| first(&sel) == Some(b.addr.clone())));
    }
}
