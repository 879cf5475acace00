//! The tracing stage, first of every listener's stages.
//!
//! - Request: the trace the request belongs to: its valid `traceparent`'s (whose
//!   sampled flag decides), or a new one sampled at `sample_ratio`; and the id of its
//!   SERVER span.
//! - Upstream, on every try: a new CLIENT span id, sent as the `traceparent` the
//!   upstream gets (flags `00` when unsampled: it still propagates); the client's
//!   `tracestate` goes with a parent it belongs to, and never with a new trace.
//! - Done: a sampled request's spans go to the exporter's queue.
//! - Log: `trace_id` and `span_id` (the SERVER span's) on the access-log line.

use futures::future::BoxFuture;
use http::Version;
use pingora::http::{KnownHeaderName, RequestHeader};
use std::sync::Arc;
use std::time::{Instant, UNIX_EPOCH};

use super::context::{
    self, hex_text, new_ids, new_span_id, sampled_at, SpanId, TraceId, TRACEPARENT, TRACESTATE_NAME,
};
use super::export::Exporter;
use super::span::{Finished, TrySpan};
use crate::stage::{Cx, Declared, Facts, Hooks, LogFields, LogValue, Outcome, Stage, Step};

pub struct Tracing {
    pub exporter: Arc<Exporter>,
    pub sample_ratio: f64,
}

/// A request's place in its trace.
#[derive(Default)]
struct Trace {
    trace_id: TraceId,
    server_span: SpanId,
    parent: Option<SpanId>,
    sampled: bool,
    tracestate: Option<String>,
    /// The CLIENT span id of the first try, when it reached its upstream.
    first_try: Option<SpanId>,
    /// The CLIENT span ids of the tries after it that reached theirs, by try number.
    retries: Vec<(usize, SpanId)>,
}

impl Trace {
    /// The CLIENT span id of try `number` (from 1), when it reached its upstream.
    fn try_span(&self, number: usize) -> Option<SpanId> {
        match number {
            1 => self.first_try,
            _ => self
                .retries
                .iter()
                .find(|(n, _)| *n == number)
                .map(|(_, s)| *s),
        }
    }
}

static TRACEPARENT_HEADER: KnownHeaderName = KnownHeaderName::from_static(TRACEPARENT);

impl Tracing {
    /// The request's trace, begun on first use (a request refused before the stages
    /// ran begins it when it ends).
    fn trace<'c>(&self, cx: &'c mut Cx<'_>) -> &'c mut Trace {
        cx.state_or_insert_with(|req| self.begin(req))
    }

    fn begin(&self, req: &RequestHeader) -> Trace {
        let (new_trace, server_span) = new_ids();
        match context::parent(req) {
            Some(parent) => Trace {
                trace_id: parent.trace_id,
                server_span,
                parent: Some(parent.span_id),
                sampled: parent.sampled,
                tracestate: tracestate(req),
                first_try: None,
                retries: Vec::new(),
            },
            None => {
                let trace_id = new_trace;
                Trace {
                    trace_id,
                    server_span,
                    parent: None,
                    sampled: sampled_at(self.sample_ratio, &trace_id),
                    tracestate: None,
                    first_try: None,
                    retries: Vec::new(),
                }
            }
        }
    }
}

impl Stage for Tracing {
    fn name(&self) -> &'static str {
        "tracing"
    }

    fn declares(&self) -> Declared {
        let hooks = Hooks::REQUEST.and(Hooks::UPSTREAM);
        Declared {
            upstream_headers: 1,
            ..Declared::hooks(hooks.and(Hooks::DONE).and(Hooks::LOG))
        }
    }

    fn on_request<'a>(&'a self, cx: &'a mut Cx<'_>) -> Step<'a> {
        self.trace(cx);
        Step::Continue
    }

    fn on_upstream(&self, cx: &mut Cx<'_>, upstream: &mut RequestHeader) -> pingora::Result<()> {
        let try_number = cx.facts().try_number;
        let trace = self.trace(cx);
        let span = new_span_id();
        match try_number {
            1 => trace.first_try = Some(span),
            n => trace.retries.push((n, span)),
        }
        let parent = context::traceparent(&trace.trace_id, &span, trace.sampled);
        upstream.insert_known_header(&TRACEPARENT_HEADER, parent)?;
        if trace.tracestate.is_none() && upstream.headers.contains_key(&TRACESTATE_NAME) {
            upstream.remove_header(&TRACESTATE_NAME);
        }
        Ok(())
    }

    fn on_done<'a>(
        &'a self,
        cx: &'a mut Cx<'_>,
        outcome: &'a Outcome<'_>,
    ) -> Option<BoxFuture<'a, ()>> {
        self.trace(cx);
        if let Some(trace) = cx.state::<Trace>().filter(|t| t.sampled) {
            self.exporter
                .send(finished(cx.req, cx.facts(), outcome, trace));
        }
        None
    }

    fn log_fields(&self, cx: &Cx<'_>, fields: &mut LogFields) {
        if let Some(trace) = cx.state::<Trace>() {
            fields.add("trace_id", LogValue::Text(hex_text(&trace.trace_id)));
            fields.add("span_id", LogValue::Text(hex_text(&trace.server_span)));
        }
    }
}

/// The client's `tracestate`, its lines joined, when it is text.
fn tracestate(req: &RequestHeader) -> Option<String> {
    let values: Vec<&str> = req
        .headers
        .get_all(&TRACESTATE_NAME)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// The request's spans.
fn finished(req: &RequestHeader, facts: &Facts, outcome: &Outcome<'_>, trace: &Trace) -> Finished {
    let start_ns = unix_ns(facts);
    let at = |instant: Instant| {
        let since = instant.saturating_duration_since(facts.started);
        start_ns.saturating_add(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
    };
    let tries = outcome
        .tries
        .iter()
        .enumerate()
        .map(|(i, t)| TrySpan {
            span_id: trace.try_span(i + 1).unwrap_or_else(new_span_id),
            target: t.target,
            status: t.status,
            error: t.error.as_ref().map(|e| (e.kind, e.message.clone())),
            start_ns: at(t.started),
            end_ns: at(t.ended.unwrap_or(outcome.ended)),
        })
        .collect();
    Finished {
        trace_id: trace.trace_id,
        server_span: trace.server_span,
        parent: trace.parent,
        tracestate: trace.tracestate.clone(),
        method: req.method.as_str().to_owned(),
        path: match facts.path.as_str() {
            "" => req.uri.path().to_owned(),
            normalized => normalized.to_owned(),
        },
        route: facts
            .route
            .as_ref()
            .map(|r| (r.path_prefix.clone(), r.name.clone())),
        status: outcome.status,
        client_ip: facts.client_ip,
        protocol_version: match req.version {
            Version::HTTP_10 => "1.0",
            Version::HTTP_2 => "2",
            _ => "1.1",
        },
        user_agent: req
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        consumer: facts.consumer().map(str::to_owned),
        refused: outcome
            .refusal
            .map(|r| (r.stage, r.detail.clone().into_owned())),
        start_ns,
        end_ns: at(outcome.ended),
        tries,
    }
}

fn unix_ns(facts: &Facts) -> u64 {
    let since = facts
        .started_at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}
