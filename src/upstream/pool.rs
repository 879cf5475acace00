//! One upstream as a snapshot has it: its [`Targets`] (kept across reloads, with their
//! health) and the settings a reload may change in place: retries, `retry_on` and
//! the retry budget, timeouts, passive health, `max_in_flight` and what
//! `consistent_hash` hashes.

use pingora::http::RequestHeader;
use pingora::lb::Backend;
use pingora::upstreams::peer::HttpPeer;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::in_flight::{InFlight, InFlightGuard};
use super::outlier::{Outlier, PassiveRules};
use super::retry::RetryRules;
use super::targets::Targets;
use crate::base::clock::Clock;
use crate::config::raw::{HashKey, PassiveSection, RetryOn, UpstreamSection};
use crate::ratelimit::InFlightLimit;

pub struct Pool {
    targets: Arc<Targets>,
    pub retries: usize,
    /// `max_in_flight`: requests to this upstream at once.
    pub in_flight: Option<InFlightLimit>,
    hash_key: Option<HashBy>,
    /// Passive health rules, if any.
    passive: Option<PassiveRules>,
    /// What requests that reached a target are retried on, and the retry budget.
    pub retry: RetryRules,
    /// The monotonic readings of passive health and the retry budget.
    clock: Clock,
    connect_timeout: Duration,
    read_timeout: Duration,
    write_timeout: Duration,
    idle_timeout: Duration,
}

/// Why no target could be chosen; knows its HTTP answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UpstreamError {
    #[error("upstream {0:?}: no healthy target")]
    NoHealthyTarget(String),
    #[error("upstream {0:?}: no untried target left after connect failures")]
    Exhausted(String),
}

impl UpstreamError {
    pub fn status(&self) -> u16 {
        match self {
            UpstreamError::NoHealthyTarget(_) => 503,
            UpstreamError::Exhausted(_) => 502,
        }
    }
}

/// A chosen target; the in-flight count drops when the guard does.
pub struct Selected {
    pub addr: SocketAddr,
    pub guard: InFlightGuard,
    /// Its passive health, where the request's outcome is recorded.
    pub outlier: Outlier,
}

/// What `consistent_hash` hashes (`hash_key`).
enum HashBy {
    ClientIp,
    Path,
    Header(http::HeaderName),
}

/// How a request to a target went, for passive health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
}

impl Pool {
    /// The pool of `section` around `targets` (validation has checked the header
    /// name of a `hash_key`).
    pub fn new(section: &UpstreamSection, targets: Arc<Targets>, clock: Clock) -> Self {
        Self {
            clock,
            retries: section.retries,
            in_flight: section
                .max_in_flight
                .map(|max| InFlightLimit::sharing(max, &targets.in_flight)),
            hash_key: section.hash_key.as_ref().and_then(|key| match key {
                HashKey::ClientIp => Some(HashBy::ClientIp),
                HashKey::Path => Some(HashBy::Path),
                HashKey::Header(name) => name.parse().ok().map(HashBy::Header),
            }),
            passive: section.passive.as_ref().map(passive_rules),
            retry: retry_rules(&section.retry_on, section.retry_budget),
            connect_timeout: section.connect_timeout,
            read_timeout: section.read_timeout,
            write_timeout: section.write_timeout,
            idle_timeout: section.idle_timeout,
            targets,
        }
    }

    pub fn targets(&self) -> &Arc<Targets> {
        &self.targets
    }

    /// A healthy target for `req` (whose normalized path is `path`) not in `tried`,
    /// chosen by the pool's algorithm (hashing `hash_key` for `consistent_hash`).
    pub fn select(
        &self,
        req: &RequestHeader,
        path: &str,
        client_ip: IpAddr,
        tried: &[SocketAddr],
    ) -> Result<Selected, UpstreamError> {
        let ip = match client_ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        let hash_input: &[u8] = match &self.hash_key {
            None => b"",
            Some(HashBy::ClientIp) => &ip,
            Some(HashBy::Path) => path.as_bytes(),
            Some(HashBy::Header(name)) => req.headers.get(name).map_or(b"", |v| v.as_bytes()),
        };
        let now = self.clock.monotonic_ms();
        let untried = |b: &Backend| b.addr.as_inet().is_some_and(|a| !tried.contains(a));
        let not_ejected = |b: &Backend| b.ext.get::<Outlier>().is_none_or(|o| !o.ejected(now));
        let accept = |b: &Backend, healthy: bool| healthy && untried(b) && not_ejected(b);
        // Ejected targets rather than none (they were ejected while others were up).
        let or_ejected = |b: &Backend, healthy: bool| healthy && untried(b);
        let selected = self
            .targets
            .select(hash_input, &accept)
            .or_else(|| {
                self.passive
                    .as_ref()
                    .and_then(|_| self.targets.select(hash_input, &or_ejected))
            })
            .and_then(|backend| {
                let addr = *backend.addr.as_inet()?;
                let guard = backend.ext.get::<InFlight>()?.enter();
                let outlier = backend.ext.get::<Outlier>()?.clone();
                Some(Selected {
                    addr,
                    guard,
                    outlier,
                })
            });
        let name = || self.targets.name().to_owned();
        if tried.is_empty() {
            self.targets.found_healthy(selected.is_some());
        }
        selected.ok_or_else(|| match tried {
            [] => UpstreamError::NoHealthyTarget(name()),
            _ => UpstreamError::Exhausted(name()),
        })
    }

    /// Counts a request for the retry budget (its first attempt).
    pub fn count_request(&self) {
        self.targets.retry_budget.request(self.clock.monotonic_ms());
    }

    /// Whether one more retry fits in the budget; if so, it is counted.
    pub fn try_retry(&self) -> bool {
        self.targets
            .retry_budget
            .try_retry(self.retry.share, self.clock.monotonic_ms())
    }

    /// Whether a healthy target not in `tried` is left for a retry.
    pub fn has_untried(&self, tried: &[SocketAddr]) -> bool {
        self.targets.has_untried(tried)
    }

    /// Whether a response with `status` counts as a failure of its target.
    pub fn failure_status(&self, status: u16) -> bool {
        self.passive
            .as_ref()
            .is_some_and(|p| p.statuses.contains(&status))
    }

    /// Records how a request to `addr` went. Returns how long the target is ejected
    /// for when this failure ejects it (never the last target that is up).
    pub fn record(
        &self,
        outlier: &Outlier,
        addr: SocketAddr,
        outcome: Outcome,
    ) -> Option<Duration> {
        let rules = self.passive.as_ref()?;
        if outcome == Outcome::Succeeded {
            outlier.succeeded();
            return None;
        }
        let now = self.clock.monotonic_ms();
        let length = outlier.failed(rules, now)?;
        if !self.targets.others_up(addr, now) {
            outlier.spared();
            return None;
        }
        outlier.eject(length, now);
        Some(length)
    }

    /// How to reach `addr`; `read_timeout` overrides the pool's (a route's `timeout`),
    /// and `deadline` (a gRPC call's) shortens both when it is shorter.
    pub fn peer(
        &self,
        addr: SocketAddr,
        read_timeout: Option<Duration>,
        deadline: Option<Duration>,
    ) -> Box<HttpPeer> {
        let mut peer = self.targets.peer(addr);
        let shortened = |t: Duration| deadline.map_or(t, |d| t.min(d));
        peer.options.connection_timeout = Some(self.connect_timeout);
        peer.options.read_timeout = Some(shortened(read_timeout.unwrap_or(self.read_timeout)));
        peer.options.write_timeout = Some(shortened(self.write_timeout));
        peer.options.idle_timeout = Some(self.idle_timeout);
        Box::new(peer)
    }
}

fn passive_rules(section: &PassiveSection) -> PassiveRules {
    let PassiveSection {
        consecutive_failures,
        eject_for,
        max_eject_for,
        statuses,
    } = section;
    PassiveRules {
        consecutive_failures: *consecutive_failures,
        eject_for: *eject_for,
        max_eject_for: *max_eject_for,
        statuses: statuses.clone(),
    }
}

fn retry_rules(on: &[RetryOn], share: f64) -> RetryRules {
    let statuses = on
        .iter()
        .filter_map(|o| match o {
            RetryOn::Status(status) => Some(*status),
            RetryOn::Reset | RetryOn::Timeout => None,
        })
        .collect();
    let reset = on.contains(&RetryOn::Reset);
    let timeout = on.contains(&RetryOn::Timeout);
    RetryRules::new(reset, timeout, statuses, share)
}

#[cfg(test)]
mod tests {
    use super::super::targets::TargetsDefinition;
    use super::super::TargetsRegistry;
    use super::*;
    use crate::config::load_str;
    use std::collections::HashMap;

    fn upstream(extra: &str) -> UpstreamSection {
        let text = format!("[listeners.a]\naddr = \"127.0.0.1:1\"\n[upstreams.u]\ntargets = [\"127.0.0.1:2\"]\n{extra}\n");
        load_str(&text, "t").expect("valid").raw.upstreams["u"].clone()
    }

    #[test]
    fn targets_are_kept_while_what_they_are_made_of_is_unchanged() {
        let registry = TargetsRegistry::default();
        let get = |section: &UpstreamSection| {
            let def = TargetsDefinition::load("u", section, &[]).expect("definition");
            registry
                .get_or_build("u", &def, || Targets::build(&def))
                .expect("targets")
        };
        let first = get(&upstream("retries = 1"));
        assert!(
            !Arc::ptr_eq(&first, &get(&upstream("retries = 1"))),
            "nothing committed yet"
        );
        registry.commit(HashMap::from([("u".to_owned(), first.clone())]));
        for same in ["retries = 3", "read_timeout = \"5s\"", "max_in_flight = 9"] {
            assert!(Arc::ptr_eq(&first, &get(&upstream(same))), "{same}");
        }
        let changed = get(&upstream("balance = \"random\""));
        assert!(!Arc::ptr_eq(&first, &changed));
        assert!(registry.is_current(&first) && !registry.is_current(&changed));
    }

    #[test]
    fn an_upstream_limit_counts_on_the_kept_targets() {
        let def = TargetsDefinition::load("u", &upstream(""), &[]).expect("definition");
        let targets = Arc::new(Targets::build(&def).expect("targets"));
        let old = Pool::new(
            &upstream("max_in_flight = 1"),
            targets.clone(),
            Clock::system(),
        );
        let _held = old
            .in_flight
            .as_ref()
            .and_then(|l| l.enter())
            .expect("first");
        let new = Pool::new(&upstream("max_in_flight = 2"), targets, Clock::system());
        let limit = new.in_flight.as_ref().expect("limit");
        let _second = limit
            .enter()
            .expect("one of two is held by the old snapshot");
        assert!(
            limit.enter().is_none(),
            "both are taken, across the two snapshots"
        );
    }
}
