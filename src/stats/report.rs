//! What `GET /stats` answers, merged from the buckets of its window: per route,
//! requests, rate, status classes and p50/p99; refusals by reason; the top refused
//! clients and consumers, the top consumers, and the callers of deprecated routes.
//! Top lists are Space-Saving's, merged: approximate (see `top`), exact while a
//! bucket saw fewer keys than it keeps. And the Prometheus text of the totals.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::net::IpAddr;
use std::sync::Arc;

use super::latency;
use super::top::largest;
use super::window::{Bucket, Counts};
use crate::observability::metrics::label_value as escape;

/// Entries of each top list in a report.
const LISTED: usize = 10;
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The merging side: what the buckets add up to.
pub struct Report {
    now_secs: u64,
    seconds: u64,
    /// What the window's buckets cover: rates are per second of it.
    covered: u64,
    counts: Counts,
    refused_clients: HashMap<IpAddr, u64>,
    refused_consumers: HashMap<Arc<str>, u64>,
    consumers: HashMap<Arc<str>, u64>,
    deprecated: HashMap<Arc<str>, HashMap<Arc<str>, u64>>,
}

/// The JSON document.
#[derive(Serialize)]
struct Document {
    window_seconds: u64,
    covered_seconds: u64,
    now: u64,
    requests: u64,
    rate: f64,
    routes: Vec<RouteLine>,
    refusals: BTreeMap<&'static str, u64>,
    refusals_total: u64,
    top_refused_clients: Vec<Counted>,
    top_refused_consumers: Vec<Counted>,
    top_consumers: Vec<Counted>,
    deprecated: Vec<Deprecated>,
}

#[derive(Serialize)]
struct RouteLine {
    route: String,
    requests: u64,
    rate: f64,
    status: BTreeMap<&'static str, u64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

#[derive(Serialize)]
struct Counted {
    key: String,
    count: u64,
}

#[derive(Serialize)]
struct Deprecated {
    route: String,
    callers: Vec<Counted>,
}

impl Report {
    pub fn new(now_secs: u64, seconds: u64, covered: u64) -> Self {
        Self {
            now_secs,
            seconds,
            covered,
            counts: Counts::default(),
            refused_clients: HashMap::new(),
            refused_consumers: HashMap::new(),
            consumers: HashMap::new(),
            deprecated: HashMap::new(),
        }
    }

    pub fn add(&mut self, bucket: &Bucket) {
        self.counts.merge(&bucket.counts);
        bucket.refused_clients.merge_into(&mut self.refused_clients);
        bucket
            .refused_consumers
            .merge_into(&mut self.refused_consumers);
        bucket.consumers.merge_into(&mut self.consumers);
        for (route, callers) in &bucket.deprecated {
            callers.merge_into(self.deprecated.entry(route.clone()).or_default());
        }
    }

    /// The report as JSON.
    pub fn to_json(self) -> serde_json::Value {
        let seconds = self.covered.max(1) as f64;
        let ms = |s: Option<f64>| s.map(|s| (s * 1e6).round() / 1e3);
        let mut routes: Vec<RouteLine> = (self.counts.routes.into_iter())
            .map(|(route, c)| RouteLine {
                requests: c.requests(),
                rate: c.requests() as f64 / seconds,
                status: CLASSES.into_iter().zip(c.classes).collect(),
                p50_ms: ms(latency::quantile(&c.latency, 0.5)),
                p99_ms: ms(latency::quantile(&c.latency, 0.99)),
                route: route.to_string(),
            })
            .collect();
        routes.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.route.cmp(&b.route)));
        let requests = routes.iter().map(|r| r.requests).sum();
        let listed = |counts| -> Vec<Counted> {
            (largest(counts, LISTED).into_iter())
                .map(|(key, count): (String, u64)| Counted { key, count })
                .collect()
        };
        let named = |m: HashMap<Arc<str>, u64>| -> HashMap<String, u64> {
            m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
        };
        let mut deprecated: Vec<Deprecated> = (self.deprecated.into_iter())
            .map(|(route, callers)| Deprecated {
                route: route.to_string(),
                callers: listed(named(callers)),
            })
            .collect();
        deprecated.sort_by(|a, b| a.route.cmp(&b.route));
        let document = Document {
            window_seconds: self.seconds,
            covered_seconds: self.covered,
            now: self.now_secs,
            requests,
            rate: requests as f64 / seconds,
            routes,
            refusals_total: self.counts.refusals.values().sum(),
            refusals: self.counts.refusals.into_iter().collect(),
            top_refused_clients: listed(
                (self.refused_clients.into_iter())
                    .map(|(ip, n)| (ip.to_string(), n))
                    .collect(),
            ),
            top_refused_consumers: listed(named(self.refused_consumers)),
            top_consumers: listed(named(self.consumers)),
            deprecated,
        };
        serde_json::to_value(document).unwrap_or_default()
    }
}

/// `tollgate_requests_total{route,class}`, `tollgate_refusals_total{stage}` and
/// `tollgate_request_duration_seconds` (a histogram per route, every other latency
/// bin's bound) in Prometheus's text format; `route` is empty for requests no route
/// took.
pub fn prometheus(totals: Counts) -> String {
    let mut routes: Vec<_> = totals.routes.into_iter().collect();
    routes.sort_by(|a, b| a.0.cmp(&b.0));
    let refusals: BTreeMap<_, _> = totals.refusals.into_iter().collect();
    let mut out = String::new();
    out.push_str("# HELP tollgate_requests_total Requests by route and status class (4xx includes 499: the client went away)\n");
    out.push_str("# TYPE tollgate_requests_total counter\n");
    for (route, counts) in &routes {
        let route = escape(route);
        for (class, n) in CLASSES.iter().zip(counts.classes) {
            let _ = writeln!(
                out,
                "tollgate_requests_total{{route=\"{route}\",class=\"{class}\"}} {n}"
            );
        }
    }
    out.push_str("# HELP tollgate_refusals_total Requests refused, by the stage (or proxy step) that refused\n");
    out.push_str("# TYPE tollgate_refusals_total counter\n");
    for (stage, n) in refusals {
        let _ = writeln!(out, "tollgate_refusals_total{{stage=\"{stage}\"}} {n}");
    }
    out.push_str("# HELP tollgate_request_duration_seconds How long requests took, by route\n");
    out.push_str("# TYPE tollgate_request_duration_seconds histogram\n");
    for (route, counts) in &routes {
        let route = escape(route);
        let mut cumulative = 0;
        for (i, n) in counts.latency.iter().enumerate() {
            cumulative += n;
            let bound = latency::upper_bound(i);
            let exposed = match bound {
                Some(b) if i % 2 == 0 => format!("{b}"),
                Some(_) => continue,
                None => "+Inf".into(),
            };
            let _ = writeln!(
                out,
                "tollgate_request_duration_seconds_bucket{{route=\"{route}\",le=\"{exposed}\"}} {cumulative}"
            );
        }
        let sum = counts.micros as f64 / 1e6;
        let _ = writeln!(
            out,
            "tollgate_request_duration_seconds_sum{{route=\"{route}\"}} {sum}"
        );
        let _ = writeln!(
            out,
            "tollgate_request_duration_seconds_count{{route=\"{route}\"}} {cumulative}"
        );
    }
    out
}
