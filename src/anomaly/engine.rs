//! The counts of the current bucket per subject (each route, each consumer, each
//! client address: an IPv6 client as its /64), and at each bucket's end the
//! judgement: against each subject's baselines (requests, errors, distinct paths; see
//! `baseline`) once they have learnt `warmup` buckets, and by the named detectors
//! (credential stuffing, enumeration, a consumer's volume jump); then the baselines
//! learn the bucket. A route learns a bucket without requests as zero (a route going
//! quiet is news); a consumer or a client learns only the buckets it was active in (a
//! batch job's night off must not make its morning an anomaly). Pure: every call
//! takes the time. A change of `interval` starts afresh (the buckets no longer
//! compare).
//!
//! Bounded: at most `max_clients` client addresses are counted in a bucket (more are
//! not) and keep baselines (the least recently seen go first); a route's or a
//! consumer's distinct paths are counted up to [`DISTINCT`], a client's up to
//! [`CLIENT_DISTINCT`], as its distinct failing credentials and missing paths (or the
//! detectors' minimums, when larger): about 4 KB a client.

use serde::{Serialize, Serializer};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use super::baseline::{alpha, Baseline};
use crate::base::str_map;
use crate::config::raw::{AnomalySection, MAX_DISTINCT};
use crate::jail::ip_key;

/// Fingerprints a route's or a consumer's distinct paths hold at most: past it, the
/// count says "at least this".
pub const DISTINCT: usize = MAX_DISTINCT as usize;
/// The same for a client's distinct paths.
pub const CLIENT_DISTINCT: usize = 64;
/// Anomalies kept for the console.
const RECENT: usize = 100;
/// Buckets without any request learnt as zeros at most (a longer silence teaches
/// nothing more).
const SILENCE: u64 = 1_000;

/// Who a count is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Route(Arc<str>),
    Consumer(Arc<str>),
    Client(IpAddr),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Route(r) => write!(f, "route {r}"),
            Subject::Consumer(c) => write!(f, "consumer {c}"),
            Subject::Client(ip) => write!(f, "client {}", ip_key(*ip)),
        }
    }
}

/// What found an anomaly: a deviation from a baseline (`rate`, `errors`, `paths`) or a
/// named detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detector {
    Rate,
    Errors,
    Paths,
    CredentialStuffing,
    Enumeration,
    VolumeJump,
}

impl Detector {
    /// As events, metrics, `GET /anomalies` and the config name it.
    pub fn name(self) -> &'static str {
        match self {
            Detector::Rate => "rate",
            Detector::Errors => "errors",
            Detector::Paths => "paths",
            Detector::CredentialStuffing => "credential_stuffing",
            Detector::Enumeration => "enumeration",
            Detector::VolumeJump => "volume_jump",
        }
    }
}

impl Serialize for Detector {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One request, as the detectors see it.
pub struct Observation<'a> {
    pub route: &'a str,
    pub consumer: Option<&'a str>,
    /// `None` for a client that cannot be told apart (a trusted proxy, an address not
    /// known).
    pub client: Option<IpAddr>,
    /// A fingerprint of its normalized path.
    pub path: u64,
    pub status: u16,
    /// A fingerprint of the credential it presented, when authentication refused it.
    pub failed_credential: Option<u64>,
}

/// An anomaly found at a bucket's end.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Anomaly {
    /// The bucket's end (Unix seconds).
    pub at: u64,
    pub detector: Detector,
    #[serde(serialize_with = "as_text")]
    pub subject: Subject,
    /// The bucket's count and the baseline's mean (the named detectors' minimum).
    pub observed: f64,
    pub baseline: f64,
    pub window_seconds: u64,
}

fn as_text<S: Serializer>(subject: &Subject, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(subject)
}

#[derive(Default)]
struct Distinct(HashSet<u64>);

impl Distinct {
    /// Counts `fingerprint`, up to `cap` distinct ones.
    fn add(&mut self, fingerprint: u64, cap: usize) {
        if self.0.len() < cap {
            self.0.insert(fingerprint);
        }
    }

    fn count(&self) -> u64 {
        self.0.len() as u64
    }
}

#[derive(Default)]
struct Tally {
    requests: u64,
    errors: u64,
    paths: Distinct,
    missing_paths: Distinct,
    failed_credentials: Distinct,
}

/// Something per subject, in one map per kind (looked up without a copy of the
/// name).
struct ByKind<T> {
    routes: HashMap<Arc<str>, T>,
    consumers: HashMap<Arc<str>, T>,
    clients: HashMap<IpAddr, T>,
}

impl<T> Default for ByKind<T> {
    fn default() -> Self {
        Self {
            routes: HashMap::new(),
            consumers: HashMap::new(),
            clients: HashMap::new(),
        }
    }
}

impl<T: Default> ByKind<T> {
    fn get(&self, subject: &Subject) -> Option<&T> {
        match subject {
            Subject::Route(r) => self.routes.get(r),
            Subject::Consumer(c) => self.consumers.get(c),
            Subject::Client(ip) => self.clients.get(ip),
        }
    }

    fn entry(&mut self, subject: &Subject) -> &mut T {
        match subject {
            Subject::Route(r) => str_map::entry(&mut self.routes, r),
            Subject::Consumer(c) => str_map::entry(&mut self.consumers, c),
            Subject::Client(ip) => self.clients.entry(*ip).or_default(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (Subject, &T)> {
        let routes = (self.routes.iter()).map(|(k, v)| (Subject::Route(k.clone()), v));
        let consumers = (self.consumers.iter()).map(|(k, v)| (Subject::Consumer(k.clone()), v));
        let clients = (self.clients.iter()).map(|(k, v)| (Subject::Client(*k), v));
        routes.chain(consumers).chain(clients)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = (Subject, &mut T)> {
        let routes = (self.routes.iter_mut()).map(|(k, v)| (Subject::Route(k.clone()), v));
        let consumers = (self.consumers.iter_mut()).map(|(k, v)| (Subject::Consumer(k.clone()), v));
        let clients = (self.clients.iter_mut()).map(|(k, v)| (Subject::Client(*k), v));
        routes.chain(consumers).chain(clients)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.routes.len() + self.consumers.len() + self.clients.len()
    }
}

#[derive(Default, Clone, Copy)]
struct Baselines {
    requests: Baseline,
    errors: Baseline,
    paths: Baseline,
    last_seen: u64,
}

impl Baselines {
    fn learn(&mut self, (requests, errors, paths): (u64, u64, u64), alpha: f64) {
        self.requests.learn(requests as f64, alpha);
        self.errors.learn(errors as f64, alpha);
        self.paths.learn(paths as f64, alpha);
    }
}

#[derive(Default)]
pub struct Engine {
    /// The current bucket's index (time / interval); none before the first request.
    bucket: Option<u64>,
    /// The interval the buckets and baselines were made with.
    interval: std::time::Duration,
    tallies: ByKind<Tally>,
    baselines: ByKind<Baselines>,
    recent: VecDeque<Anomaly>,
}

impl Engine {
    /// Counts `o`, seen at `now_ms`; first ends the buckets that are over, and returns
    /// what they found.
    pub fn observe(
        &mut self,
        now_ms: u64,
        settings: &AnomalySection,
        o: &Observation<'_>,
    ) -> Vec<Anomaly> {
        let found = self.tick(now_ms, settings);
        let error = o.status >= 400;
        let count = |tally: &mut Tally, paths: usize| {
            tally.requests += 1;
            tally.errors += u64::from(error);
            tally.paths.add(o.path, paths);
        };
        count(str_map::entry(&mut self.tallies.routes, o.route), DISTINCT);
        let missing = o.status == 404;
        // A client's counts need to reach the detectors' minimums, and say a little
        // more: past that, what they add is memory.
        let at_least =
            |minimum: u64| usize::try_from(minimum).map_or(usize::MAX, |m| m.max(CLIENT_DISTINCT));
        let min_paths = at_least(settings.enumeration.min_paths);
        if let Some(consumer) = o.consumer {
            let tally = str_map::entry(&mut self.tallies.consumers, consumer);
            count(tally, DISTINCT);
            if missing {
                tally.missing_paths.add(o.path, DISTINCT);
            }
        }
        let Some(client) = o.client else {
            return found;
        };
        let clients = &mut self.tallies.clients;
        if clients.contains_key(&client) || clients.len() < settings.max_clients {
            let tally = clients.entry(client).or_default();
            count(tally, CLIENT_DISTINCT);
            if missing && o.consumer.is_none() {
                tally.missing_paths.add(o.path, min_paths);
            }
            if let Some(credential) = o.failed_credential {
                let cap = at_least(settings.credential_stuffing.min_credentials);
                tally.failed_credentials.add(credential, cap);
            }
        }
        found
    }

    /// Ends the buckets that are over at `now_ms`; what they found.
    pub fn tick(&mut self, now_ms: u64, settings: &AnomalySection) -> Vec<Anomaly> {
        if self.interval != settings.interval {
            *self = Engine {
                interval: settings.interval,
                recent: std::mem::take(&mut self.recent),
                ..Engine::default()
            };
        }
        let interval = settings.interval.as_millis().max(1) as u64;
        let now = now_ms / interval;
        let bucket = *self.bucket.get_or_insert(now);
        if now <= bucket {
            return Vec::new();
        }
        let ended_at = (bucket + 1) * interval / 1000;
        let found = self.close(ended_at, settings);
        // Buckets with no request at all: routes learn zeros (consumers and clients
        // learn only the buckets they were active in).
        let a = alpha(settings.half_life);
        for _ in 1..(now - bucket).min(SILENCE) {
            for base in self.baselines.routes.values_mut() {
                base.learn((0, 0, 0), a);
            }
        }
        self.bucket = Some(now);
        for anomaly in &found {
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(anomaly.clone());
        }
        found
    }

    /// The anomalies found last, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = &Anomaly> {
        self.recent.iter()
    }

    fn close(&mut self, at: u64, settings: &AnomalySection) -> Vec<Anomaly> {
        let tallies = std::mem::take(&mut self.tallies);
        let window_seconds = settings.interval.as_secs();
        let mut found = Vec::new();
        let mut report = |detector, subject: &Subject, observed: u64, baseline: f64| {
            found.push(Anomaly {
                at,
                detector,
                subject: subject.clone(),
                observed: observed as f64,
                baseline,
                window_seconds,
            });
        };
        for (subject, tally) in tallies.iter() {
            let subject = &subject;
            named_detectors(subject, tally, settings, &mut report);
            let Some(base) = self.baselines.get(subject) else {
                continue;
            };
            if base.requests.buckets < settings.warmup || tally.requests < settings.min_requests {
                continue;
            }
            let beyond = |b: &Baseline, x: u64| b.deviation(x as f64) > settings.threshold;
            let rate = beyond(&base.requests, tally.requests);
            match subject {
                Subject::Consumer(_) => {
                    let jump =
                        tally.requests as f64 >= settings.volume_jump.factor * base.requests.mean;
                    if rate && jump {
                        report(
                            Detector::VolumeJump,
                            subject,
                            tally.requests,
                            base.requests.mean,
                        );
                    }
                }
                _ if rate => report(Detector::Rate, subject, tally.requests, base.requests.mean),
                _ => {}
            }
            if beyond(&base.errors, tally.errors) {
                report(Detector::Errors, subject, tally.errors, base.errors.mean);
            }
            if beyond(&base.paths, tally.paths.count()) {
                report(
                    Detector::Paths,
                    subject,
                    tally.paths.count(),
                    base.paths.mean,
                );
            }
        }
        self.learn(&tallies, at, settings);
        found
    }

    /// Every baseline learns the bucket (zero for a subject without requests in it).
    fn learn(&mut self, tallies: &ByKind<Tally>, at: u64, settings: &AnomalySection) {
        let a = alpha(settings.half_life);
        for (subject, _) in tallies.iter() {
            self.baselines.entry(&subject).last_seen = at;
        }
        for (subject, base) in self.baselines.values_mut() {
            let tally = tallies.get(&subject);
            if tally.is_none() && !matches!(subject, Subject::Route(_)) {
                continue;
            }
            base.learn(
                tally.map_or((0, 0, 0), |t| (t.requests, t.errors, t.paths.count())),
                a,
            );
        }
        let clients = &mut self.baselines.clients;
        if clients.len() > settings.max_clients {
            let mut seen: Vec<(u64, IpAddr)> =
                clients.iter().map(|(ip, b)| (b.last_seen, *ip)).collect();
            seen.sort();
            let excess = clients.len() - settings.max_clients;
            for (_, ip) in seen.into_iter().take(excess) {
                clients.remove(&ip);
            }
        }
    }

    /// Subjects with a baseline (for the memory bound's test).
    #[cfg(test)]
    pub fn subjects(&self) -> usize {
        self.baselines.len()
    }

    /// Clients counted in the current bucket (for the memory bound's test).
    #[cfg(test)]
    pub fn clients_counted(&self) -> usize {
        self.tallies.clients.len()
    }
}

/// The detectors that need no baseline: distinct failing credentials from a client,
/// distinct missing paths asked by a consumer (or an anonymous client).
fn named_detectors(
    subject: &Subject,
    tally: &Tally,
    settings: &AnomalySection,
    report: &mut impl FnMut(Detector, &Subject, u64, f64),
) {
    let credentials = tally.failed_credentials.count();
    let minimum = settings.credential_stuffing.min_credentials;
    if matches!(subject, Subject::Client(_)) && credentials >= minimum {
        report(
            Detector::CredentialStuffing,
            subject,
            credentials,
            minimum as f64,
        );
    }
    let missing = tally.missing_paths.count();
    let minimum = settings.enumeration.min_paths;
    if !matches!(subject, Subject::Route(_)) && missing >= minimum {
        report(Detector::Enumeration, subject, missing, minimum as f64);
    }
}
