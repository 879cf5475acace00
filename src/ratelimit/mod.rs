//! Rate limiting, checked in `request_filter` after authentication: token buckets per
//! client, consumer, header, claim or route (`[limits.NAME]`, every limit of a route
//! must admit), and concurrency limits (`max_in_flight` per route and per upstream).
//!
//! Buckets are GCRA (`gcra`) in an in-process store (`local`), shared by all workers,
//! memory-bounded, swept in the background, or in Redis (`redis`), shared by every
//! instance; either way kept across reloads while a policy is unchanged. A refused request gets 429 with `Retry-After` and takes no tokens from
//! the route's other limits; every response of a limited route carries the
//! `RateLimit-Policy` and `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers).

pub mod gcra;
mod local;
mod policy;
mod redis;
mod sweeper;

pub use policy::{BucketIdentity, Buckets, KeyInput, Policy};
pub use redis::RedisStore;
pub use sweeper::sweeper;

use http::{header, HeaderValue, StatusCode};
use pingora::http::{KnownHeaderName, ResponseHeader};
use pingora_limits::inflight::{Guard, Inflight};
use std::sync::Arc;

use crate::base::Reply;
use crate::observability::Metrics;
use gcra::Take;
use policy::Taken;

/// The local buckets of every policy, by policy name, kept across reloads while the
/// policy's [`BucketIdentity`] is unchanged.
pub type BucketsRegistry = crate::base::registry::Registry<Buckets>;
/// The `[redis]` store, kept across reloads while its section is unchanged.
pub type RedisRegistry = crate::base::registry::Registry<RedisStore>;

/// A route's limits.
pub struct RouteLimits {
    pub policies: Vec<Arc<Policy>>,
    pub in_flight: Option<InFlightLimit>,
    /// `RateLimit-Policy` value: fixed for the route, so built once (and shared by
    /// every response: a clone counts a reference).
    policy_header: HeaderValue,
}

/// At most `max` requests at once (`max_in_flight`).
#[derive(Clone)]
pub struct InFlightLimit {
    pub max: usize,
    counter: Arc<Inflight>,
}

impl InFlightLimit {
    /// A limit with a counter of its own.
    pub fn new(max: usize) -> Self {
        Self::sharing(max, &Arc::new(Inflight::new()))
    }

    /// A limit on `counter`, which outlives this limit (an upstream's, kept across
    /// reloads that change only the limit).
    pub fn sharing(max: usize, counter: &Arc<Inflight>) -> Self {
        Self {
            max,
            counter: counter.clone(),
        }
    }

    /// A guard counting this request until dropped, or `None` when the limit is reached.
    pub fn enter(&self) -> Option<Guard> {
        let (guard, now) = self.counter.incr(0u8, 1);
        (usize::try_from(now).unwrap_or(0) <= self.max).then_some(guard)
    }
}

/// The two headers every response of a limited route carries.
#[derive(Debug, Clone)]
pub struct RateLimitHeaders {
    pub policy: HeaderValue,
    pub state: String,
}

impl RateLimitHeaders {
    /// Adds `RateLimit-Policy` and `RateLimit` to a response of the request.
    pub fn apply(&self, resp: &mut ResponseHeader) -> pingora::Result<()> {
        static POLICY: KnownHeaderName = KnownHeaderName::from_static("ratelimit-policy");
        static STATE: KnownHeaderName = KnownHeaderName::from_static("ratelimit");
        resp.insert_known_header(&POLICY, self.policy.clone())?;
        resp.insert_known_header(&STATE, &self.state)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("rate limit {policy:?} exceeded; retry in {retry_after} s")]
    Limited {
        policy: Arc<str>,
        retry_after: u64,
        headers: RateLimitHeaders,
    },
    #[error("too many requests in flight to this {what}")]
    Busy { what: &'static str },
    #[error("rate limit {policy:?} cannot be checked now (its store is unavailable)")]
    StoreUnavailable { policy: Arc<str> },
}

impl From<RateLimitError> for Reply {
    fn from(e: RateLimitError) -> Self {
        let detail = e.to_string();
        match e {
            RateLimitError::Limited { retry_after, .. } => {
                Reply::new(StatusCode::TOO_MANY_REQUESTS, detail)
                    .with_header(header::RETRY_AFTER, retry_after.to_string())
            }
            RateLimitError::Busy { .. } | RateLimitError::StoreUnavailable { .. } => {
                Reply::new(StatusCode::SERVICE_UNAVAILABLE, detail)
            }
        }
    }
}

impl Default for RouteLimits {
    fn default() -> Self {
        Self::new(Vec::new(), None)
    }
}

impl RouteLimits {
    pub fn new(policies: Vec<Arc<Policy>>, in_flight: Option<InFlightLimit>) -> Self {
        let policy_header = policies
            .iter()
            .map(|p| p.policy_item())
            .collect::<Vec<_>>()
            .join(", ");
        // Policy names are config keys; an unsendable one leaves the header empty.
        let policy_header =
            HeaderValue::from_str(&policy_header).unwrap_or(HeaderValue::from_static(""));
        Self {
            policies,
            in_flight,
            policy_header,
        }
    }

    /// Takes tokens from every policy at `now` (ns since the Unix epoch); on a
    /// refusal, gives back what was taken.
    pub async fn check(
        &self,
        input: &KeyInput<'_>,
        now: u64,
        metrics: &Metrics,
    ) -> Result<Option<RateLimitHeaders>, RateLimitError> {
        if self.policies.is_empty() {
            return Ok(None);
        }
        let mut admitted: Vec<(&Policy, Taken, u64, u64)> = Vec::with_capacity(self.policies.len());
        for policy in &self.policies {
            let refusal = match policy.take(input, now, metrics).await {
                Some((
                    Take::Admit {
                        remaining, full_in, ..
                    },
                    taken,
                )) => {
                    admitted.push((policy, taken, remaining, full_in));
                    continue;
                }
                Some((Take::Deny { retry_after }, _)) => {
                    metrics.rate_limit(&policy.name, "limited");
                    let retry_after = retry_after.div_ceil(1_000_000_000).max(1);
                    RateLimitError::Limited {
                        policy: policy.name.clone(),
                        retry_after,
                        headers: RateLimitHeaders {
                            policy: self.policy_header.clone(),
                            state: format!("\"{}\";r=0;t={retry_after}", policy.name),
                        },
                    }
                }
                None => RateLimitError::StoreUnavailable {
                    policy: policy.name.clone(),
                },
            };
            for (p, taken, _, _) in &admitted {
                p.refund(taken).await;
            }
            return Err(refusal);
        }
        let state = admitted
            .iter()
            .map(|(p, _, remaining, full_in)| {
                metrics.rate_limit(&p.name, "admitted");
                let reset = full_in.div_ceil(1_000_000_000);
                format!("\"{}\";r={remaining};t={reset}", p.name)
            })
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Some(RateLimitHeaders {
            policy: self.policy_header.clone(),
            state,
        }))
    }
}
