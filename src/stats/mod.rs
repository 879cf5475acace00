//! Traffic as the console shows it: windowed aggregates of every request (the stats
//! stage, first of every listener's, records each one when it is done), kept in
//! bounded memory and read by `GET /stats?window=1m|5m|15m` on the admin listener, and
//! totals since start for Prometheus (`tollgate_requests_total{route,class}`,
//! `tollgate_request_duration_seconds{route}`, `tollgate_refusals_total{stage}`).
//!
//! Bound: 8 shards (a thread records into its own) × 60 buckets of 15 s, each with a
//! route's counts per route of the config (and `""` for requests no route took) and
//! top lists of at most 32 keys (clients, consumers) and 16 callers per deprecated
//! route. A flood of distinct clients or consumers costs nothing beyond that: about
//! 2 MB for a config of 10 routes. A request is counted once, in its bucket; the
//! totals since start are the ring's buckets and what the buckets before them added
//! up to (one entry per route name ever configured). Nothing here fails.

mod latency;
mod report;
mod stage;
mod top;
mod window;

pub use report::Report;
pub use stage::install;
pub use window::Sample;

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use window::{Counts, Ring};

const SHARDS: usize = 8;

#[derive(Default)]
pub struct Stats {
    shards: [Mutex<Shard>; SHARDS],
}

#[derive(Default)]
struct Shard {
    ring: Ring,
    /// What the ring's buckets added up to before their slots were reused: with the
    /// ring's, the totals since start.
    retired: Counts,
}

/// Threads number themselves in the order they first record.
static THREADS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The shard this thread records into: threads take shards in turn, so each
    /// worker keeps to its own, warm in its core's cache, and rarely waits on another.
    static SHARD: usize = THREADS.fetch_add(1, Relaxed) % SHARDS;
}

impl Stats {
    /// Counts one request in the calling thread's shard.
    pub fn record(&self, sample: &Sample<'_>) {
        let mut shard = lock(&self.shards[SHARD.with(|shard| *shard)]);
        if let Some(retired) = shard.ring.add(sample) {
            shard.retired.merge(&retired.counts);
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

    /// The totals since start in Prometheus's text format.
    pub fn prometheus(&self) -> String {
        let mut totals = Counts::default();
        for shard in &self.shards {
            let shard = lock(shard);
            totals.merge(&shard.retired);
            for bucket in shard.ring.all() {
                totals.merge(&bucket.counts);
            }
        }
        report::prometheus(totals)
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn sample(now_secs: u64, route: &str) -> Sample<'_> {
        Sample {
            now_secs,
            route,
            status: 200,
            micros: 1_000,
            refused_by: (route == "refused").then_some("auth"),
            client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            consumer: None,
            deprecated: false,
        }
    }

    fn total(text: &str, series: &str) -> u64 {
        let line = text.lines().find(|l| l.starts_with(series));
        line.and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("{series} in {text}"))
    }

    #[test]
    fn totals_since_start_keep_what_buckets_older_than_the_ring_counted() {
        let stats = Stats::default();
        // An hour: the ring holds 15 minutes, every slot is reused thrice.
        for second in 0..3_600 {
            stats.record(&sample(second, "a"));
            if second % 100 == 0 {
                stats.record(&sample(second, "refused"));
            }
        }
        let text = stats.prometheus();
        assert_eq!(
            total(&text, r#"tollgate_requests_total{route="a",class="2xx"}"#),
            3_600
        );
        assert_eq!(total(&text, r#"tollgate_refusals_total{stage="auth"}"#), 36);
        assert_eq!(
            total(
                &text,
                r#"tollgate_request_duration_seconds_count{route="a"}"#
            ),
            3_600
        );
        // A minute's window still holds only its buckets: 3,525 s to 3,599 s.
        let report = stats.report(3_599, 60).to_json();
        assert_eq!(report["requests"], 75);
    }
}
