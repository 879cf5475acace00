//! What one stretch of [`BUCKET_SECS`] seconds of traffic adds up to, and the ring of
//! the last [`BUCKETS`] of them (15 minutes): per route, requests by status class and
//! durations; refusals by the stage that refused; the most refused clients and
//! consumers, the consumers with the most requests, and who calls deprecated routes,
//! each kept to a few keys ([`Top`]). Pure: the caller gives the time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::latency::{self, BINS};
use super::top::Top;
use crate::base::str_map;

pub const BUCKET_SECS: u64 = 15;
pub const BUCKETS: usize = 60;
/// Keys kept per bucket for each top list.
const TOP_KEYS: usize = 32;
/// Callers kept per bucket for each deprecated route.
const CALLERS: usize = 16;

/// The maps a request touches: a fast hash, randomly seeded per map (keys come from
/// clients: an address, a consumer).
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Requests per route and refusals per stage: a bucket's, or what retired buckets
/// added up to.
#[derive(Default)]
pub struct Counts {
    pub routes: FastMap<Arc<str>, RouteCounts>,
    pub refusals: FastMap<&'static str, u64>,
}

impl Counts {
    fn add(&mut self, s: &Sample<'_>) {
        str_map::entry(&mut self.routes, s.route).add(s.status, s.micros);
        if let Some(stage) = s.refused_by {
            *self.refusals.entry(stage).or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: &Counts) {
        for (route, counts) in &other.routes {
            str_map::entry(&mut self.routes, route).merge(counts);
        }
        for (stage, n) in &other.refusals {
            *self.refusals.entry(stage).or_default() += n;
        }
    }
}

/// One request, as the counts see it.
pub struct Sample<'a> {
    pub now_secs: u64,
    /// `""` for a request no route took.
    pub route: &'a str,
    /// The status sent; 0 when none was (the client went away first).
    pub status: u16,
    pub micros: u64,
    /// The stage (or proxy step) that refused it.
    pub refused_by: Option<&'static str>,
    pub client_ip: IpAddr,
    /// `authenticator:id` ([`crate::auth::Principal::key`]).
    pub consumer: Option<&'a str>,
    pub deprecated: bool,
}

/// One route's requests.
#[derive(Debug, Clone)]
pub struct RouteCounts {
    /// 1xx..5xx; a request without a status (client gone) counts as 4xx (499).
    pub classes: [u64; 5],
    pub latency: [u64; BINS],
    /// All their durations together.
    pub micros: u64,
}

impl Default for RouteCounts {
    fn default() -> Self {
        Self {
            classes: [0; 5],
            latency: [0; BINS],
            micros: 0,
        }
    }
}

impl RouteCounts {
    pub fn add(&mut self, status: u16, micros: u64) {
        let class = match status {
            0 => 3,
            s => usize::from((s / 100).clamp(1, 5)) - 1,
        };
        self.classes[class] += 1;
        self.latency[latency::bin(micros)] += 1;
        self.micros = self.micros.saturating_add(micros);
    }

    pub fn merge(&mut self, other: &RouteCounts) {
        for (a, b) in self.classes.iter_mut().zip(other.classes) {
            *a += b;
        }
        for (a, b) in self.latency.iter_mut().zip(other.latency) {
            *a += b;
        }
        self.micros = self.micros.saturating_add(other.micros);
    }

    pub fn requests(&self) -> u64 {
        self.classes.iter().sum()
    }
}

pub struct Bucket {
    /// `now_secs / BUCKET_SECS` of the stretch it counts.
    pub index: u64,
    pub counts: Counts,
    pub refused_clients: Top<IpAddr>,
    pub refused_consumers: Top<Arc<str>>,
    pub consumers: Top<Arc<str>>,
    /// Per deprecated route, its callers (consumer, or `-` without one).
    pub deprecated: FastMap<Arc<str>, Top<Arc<str>>>,
}

impl Bucket {
    fn new(index: u64) -> Self {
        Self {
            index,
            counts: Counts::default(),
            refused_clients: Top::new(TOP_KEYS),
            refused_consumers: Top::new(TOP_KEYS),
            consumers: Top::new(TOP_KEYS),
            deprecated: FastMap::default(),
        }
    }

    fn add(&mut self, s: &Sample<'_>) {
        self.counts.add(s);
        if let Some(consumer) = s.consumer {
            self.consumers.add(consumer, 1);
        }
        if s.refused_by.is_some() {
            self.refused_clients.add(&s.client_ip, 1);
            if let Some(consumer) = s.consumer {
                self.refused_consumers.add(consumer, 1);
            }
        }
        if s.deprecated {
            let callers = match self.deprecated.get_mut(s.route) {
                Some(callers) => callers,
                None => self
                    .deprecated
                    .entry(s.route.into())
                    .or_insert_with(|| Top::new(CALLERS)),
            };
            callers.add(s.consumer.unwrap_or("-"), 1);
        }
    }
}

/// How many seconds the buckets of a `seconds` window cover at `now_secs`: the
/// window's whole buckets and the current bucket's part.
pub fn covered(now_secs: u64, seconds: u64) -> u64 {
    let before = (seconds / BUCKET_SECS).min(BUCKETS as u64 - 1);
    before * BUCKET_SECS + now_secs % BUCKET_SECS + 1
}

/// The last [`BUCKETS`] buckets; a bucket's slot is reused once its stretch is over.
pub struct Ring {
    buckets: Vec<Option<Bucket>>,
}

impl Default for Ring {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| None).collect(),
        }
    }
}

impl Ring {
    /// Counts `s` in its bucket; when that takes the slot of an older bucket, returns
    /// the older one.
    pub fn add(&mut self, s: &Sample<'_>) -> Option<Bucket> {
        let index = s.now_secs / BUCKET_SECS;
        let slot = &mut self.buckets[(index % BUCKETS as u64) as usize];
        if let Some(bucket) = slot.as_mut().filter(|b| b.index == index) {
            bucket.add(s);
            return None;
        }
        let retired = slot.take();
        slot.insert(Bucket::new(index)).add(s);
        retired
    }

    /// Every bucket held, whatever its time.
    pub fn all(&self) -> impl Iterator<Item = &Bucket> {
        self.buckets.iter().flatten()
    }

    /// The buckets of the last `seconds` at `now_secs`: the current one and the
    /// `seconds / BUCKET_SECS` before it, which together cover [`covered`] seconds.
    pub fn within(&self, now_secs: u64, seconds: u64) -> impl Iterator<Item = &Bucket> {
        let now = now_secs / BUCKET_SECS;
        let before = (seconds / BUCKET_SECS).min(BUCKETS as u64 - 1);
        let oldest = now.saturating_sub(before);
        self.all()
            .filter(move |b| (oldest..=now).contains(&b.index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(now_secs: u64, route: &str, client: u32) -> Sample<'_> {
        Sample {
            now_secs,
            route,
            status: 401,
            micros: 1_000,
            refused_by: Some("auth"),
            client_ip: IpAddr::from(client.to_be_bytes()),
            consumer: None,
            deprecated: false,
        }
    }

    #[test]
    fn a_window_holds_the_buckets_of_its_last_seconds_only() {
        let mut ring = Ring::default();
        for t in [0, 14, 15, 60, 899, 900] {
            ring.add(&sample(t, "a", 1));
        }
        let count = |now, secs| -> u64 {
            ring.within(now, secs)
                .map(|b| b.counts.routes["a"].requests())
                .sum()
        };
        // At 900 s: the bucket of 900 (the 0-14 one's slot, reused), of 899 (885-899) ...
        assert_eq!(count(900, 0), 1);
        assert_eq!(count(900, 15), 2);
        assert_eq!(count(900, 30), 2);
        assert_eq!(count(900, 900), 4);
        // At 75 s, a minute: 15-74 and the second of 75.
        assert_eq!(count(75, 60), 2);
        assert_eq!(covered(75, 60), 61);
        assert_eq!(covered(89, 60), 75);
    }

    #[test]
    fn a_flood_of_distinct_clients_keeps_each_bucket_small() {
        let mut ring = Ring::default();
        for client in 0..1_000_000u32 {
            ring.add(&sample(u64::from(client) / 2_000, "a", client));
        }
        let buckets: Vec<&Bucket> = ring.within(499, 900).collect();
        assert_eq!(buckets.len(), 34); // 500 s
        assert!(buckets.iter().all(|b| b.refused_clients.len() <= TOP_KEYS));
        assert!(buckets.iter().all(|b| b.counts.routes.len() == 1));
    }
}
