//! Traffic as the console shows it: windowed aggregates of every request (the stats
//! stage, first of every listener's, records each one when it is done), kept in
//! bounded memory and read by `GET /stats?window=1m|5m|15m` on the admin listener, and
//! totals since start for Prometheus (`tollgate_requests_total{route,class}`,
//! `tollgate_request_duration_seconds{route}`, `tollgate_refusals_total{stage}`).
//!
//! Bound: 8 shards (a request takes one, picked by its start time, so workers rarely
//! wait on each other) × 60 buckets of 15 s, each with a route's counts per route of
//! the config (and `""` for requests no route took) and top lists of at most 32 keys
//! (clients, consumers) and 16 callers per deprecated route. A flood of distinct
//! clients or consumers costs nothing beyond that: about 2 MB for a config of 10
//! routes. Totals keep one entry per route name ever configured. Nothing here fails.

mod latency;
mod report;
mod stage;
mod top;
mod window;

pub use report::Report;
pub use stage::install;
pub use window::Sample;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use window::{route_entry, FastMap, Ring, RouteCounts};

const SHARDS: usize = 8;

#[derive(Default)]
pub struct Stats {
    shards: [Mutex<Shard>; SHARDS],
}

#[derive(Default)]
struct Shard {
    ring: Ring,
    /// Since start, per route.
    totals: FastMap<Arc<str>, RouteCounts>,
    /// Since start, per refusing stage.
    refusals: FastMap<&'static str, u64>,
}

impl Stats {
    /// Counts one request in shard `shard` (any number: it is taken modulo).
    pub fn record(&self, shard: usize, sample: &Sample<'_>) {
        let mut shard = lock(&self.shards[shard % SHARDS]);
        shard.ring.add(sample);
        route_entry(&mut shard.totals, sample.route).add(sample.status, sample.micros);
        if let Some(stage) = sample.refused_by {
            *shard.refusals.entry(stage).or_default() += 1;
        }
    }

    /// The last `seconds` at `now_secs`, all shards together.
    pub fn report(&self, now_secs: u64, seconds: u64) -> Report {
        let mut report = Report::new(now_secs, seconds, window::covered(now_secs, seconds));
        for shard in &self.shards {
            for bucket in lock(shard).ring.within(now_secs, seconds) {
                report.add(bucket);
            }
        }
        report
    }

    /// The totals in Prometheus's text format.
    pub fn prometheus(&self) -> String {
        let mut totals: HashMap<Arc<str>, RouteCounts> = HashMap::new();
        let mut refusals: BTreeMap<&'static str, u64> = BTreeMap::new();
        for shard in &self.shards {
            let shard = lock(shard);
            for (route, counts) in &shard.totals {
                route_entry(&mut totals, route).merge(counts);
            }
            for (stage, n) in &shard.refusals {
                *refusals.entry(stage).or_default() += n;
            }
        }
        report::prometheus(totals, refusals)
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|p| p.into_inner())
}
