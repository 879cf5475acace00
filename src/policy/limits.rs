//! Rate and concurrency limits of a route as a stage (the buckets and counters are
//! `ratelimit`'s): `max_in_flight` of the route and of its upstream, then every rate
//! limit the route lists (all must admit).
//!
//! Request: 503 when a concurrency limit is reached, 429 with `Retry-After` when a rate
//! limit refuses, 503 when a limit's store cannot answer and it fails closed. The
//! request holds its concurrency guards to its end (its slot). Response: every
//! response of the route, tollgate's own replies too, carries `RateLimit-Policy` and
//! `RateLimit`. Limits kept only in this process decide without a boxed future; a
//! route with a limit kept in Redis waits on it.

use pingora::http::ResponseHeader;
use pingora_limits::inflight::Guard;
use std::sync::Arc;

use crate::base::clock::Clock;
use crate::observability::Metrics;
use crate::ratelimit::{InFlightLimit, KeyInput, RateLimitError, RateLimitHeaders, RouteLimits};
use crate::stage::{Cx, Declared, Flow, Hooks, Stage, StagesBuilder, Step};

struct Limits {
    rules: RouteLimits,
    /// The upstream's `max_in_flight`, shared by every route to it.
    upstream_in_flight: Option<InFlightLimit>,
    metrics: Arc<Metrics>,
    clock: Clock,
    route: Arc<str>,
    may_wait: bool,
}

/// A request's concurrency guards and the RateLimit headers of its responses.
#[derive(Default)]
struct Held {
    guards: Vec<Guard>,
    headers: Option<RateLimitHeaders>,
}

/// What the stage of every route shares.
pub struct Shared<'a> {
    pub metrics: &'a Arc<Metrics>,
    pub clock: &'a Clock,
}

/// Installs the route's limits, when it has any.
pub fn install(
    rules: RouteLimits,
    upstream_in_flight: Option<InFlightLimit>,
    route: &str,
    shared: &Shared<'_>,
    stages: &mut StagesBuilder,
) {
    if rules.policies.is_empty() && rules.in_flight.is_none() && upstream_in_flight.is_none() {
        return;
    }
    stages.add(Limits {
        may_wait: rules.policies.iter().any(|p| p.may_wait()),
        rules,
        upstream_in_flight,
        metrics: shared.metrics.clone(),
        clock: shared.clock.clone(),
        route: route.into(),
    });
}

impl Limits {
    async fn limit(&self, cx: &mut Cx<'_>) -> Flow {
        let concurrency = [
            (self.rules.in_flight.as_ref(), "route"),
            (self.upstream_in_flight.as_ref(), "upstream"),
        ];
        for (limit, what) in concurrency {
            if let Some(limit) = limit {
                let guard = limit.enter().ok_or(RateLimitError::Busy { what })?;
                cx.state_mut::<Held>().guards.push(guard);
            }
        }
        let checked = {
            let facts = cx.facts();
            let input = KeyInput {
                client_ip: facts.client_ip,
                principal: facts.principal.as_deref(),
                route: &self.route,
                req: cx.req,
            };
            self.rules
                .check(&input, self.clock.unix_nanos(), &self.metrics)
                .await
        };
        let held = cx.state_mut::<Held>();
        match checked {
            Ok(headers) => {
                held.headers = headers;
                Ok(())
            }
            Err(e) => {
                if let RateLimitError::Limited { headers, .. } = &e {
                    held.headers = Some(headers.clone());
                }
                Err(e.into())
            }
        }
    }
}

impl Stage for Limits {
    fn name(&self) -> &'static str {
        "limit"
    }

    fn declares(&self) -> Declared {
        Declared {
            // RateLimit-Policy and RateLimit.
            response_headers: 2,
            ..Declared::hooks(Hooks::REQUEST.and(Hooks::RESPONSE))
        }
    }

    fn on_request<'a>(&'a self, cx: &'a mut Cx<'_>) -> Step<'a> {
        match self.may_wait {
            true => Step::Wait(Box::pin(self.limit(cx))),
            false => Step::now(self.limit(cx)),
        }
    }

    fn on_response(&self, cx: &mut Cx<'_>, resp: &mut ResponseHeader) -> pingora::Result<()> {
        match cx.state::<Held>().and_then(|h| h.headers.as_ref()) {
            Some(headers) => headers.apply(resp),
            None => Ok(()),
        }
    }
}
