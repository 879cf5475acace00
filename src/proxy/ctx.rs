//! Per-request state carried through the phases: the snapshot, the [`Facts`] stages
//! read, the two lists of stages the request runs through (its listener's, its
//! route's) with their state, the upstream [`Attempt`], the body held back, and what
//! answered the request. Also what is derived from it: running a phase over both
//! lists, and the access-log record.

use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use std::sync::Arc;
use std::time::SystemTime;

use super::hold::HeldBody;
use crate::edge::request_id;
use crate::observability::AccessRecord;
use crate::routing::{Route, RouteAction};
use crate::stage::{Facts, LogFields, Outcome, Refusal, Reply, Slots, Stages};
use crate::state::Snapshot;
use crate::upstream::Attempt;

/// The access log's status for a request whose client went away before any response
/// was written: nginx's "499 Client Closed Request".
const CLIENT_CLOSED_REQUEST: u16 = 499;

pub struct RequestCtx {
    /// The config this request runs on, from start to end.
    pub snap: Arc<Snapshot>,
    pub facts: Facts,
    /// The stages of the listener the request came in on, and their state.
    pub listener: Option<Arc<Stages>>,
    pub listener_slots: Slots,
    /// The route, its stages' state, and its tries at the upstream when it proxies.
    pub route: Option<Arc<Route>>,
    pub route_slots: Slots,
    pub attempt: Option<Attempt>,
    /// The request body as the route's stages see it.
    pub body: BodyState,
    /// What answered the request instead of the upstream, if anything did.
    pub refusal: Option<Refusal>,
    /// The status tollgate's own reply stands for when it was written as a gRPC
    /// error (HTTP 200).
    pub own_status: Option<u16>,
}

/// The request body so far, for a route whose stages look at it.
#[derive(Default)]
pub struct BodyState {
    /// Body bytes received so far.
    pub received: u64,
    /// The body is being read before proxying (`body::hold`): its chunks count
    /// against `request_buffer_memory`.
    pub holding: bool,
    /// The end of the body was judged.
    pub ended: bool,
    /// The body, while the route's stages need all of it first.
    pub held: HeldBody,
    /// A body stage's answer, written by `fail_to_proxy`.
    pub reply: Option<Reply>,
}

impl RequestCtx {
    /// A request that starts at `started_at` on the snapshot `snap`.
    pub fn new(snap: Arc<Snapshot>, started_at: SystemTime) -> Self {
        Self {
            snap,
            facts: Facts::new(started_at),
            listener: None,
            listener_slots: Slots::default(),
            route: None,
            route_slots: Slots::default(),
            attempt: None,
            body: BodyState::default(),
            refusal: None,
            own_status: None,
        }
    }

    /// The request id, the TLS session, and who the client is.
    pub fn identify(&mut self, session: &Session) {
        let req = session.req_header();
        let facts = &mut self.facts;
        facts.request_id = request_id::from_request(req);
        facts.tls = session.digest().and_then(|d| d.ssl_digest.clone());
        if let Some(peer) = session.client_addr().and_then(|a| a.as_inet()) {
            let proxies = &self.snap.trusted_proxies;
            facts.peer_ip = peer.ip();
            facts.peer_trusted = proxies.contains(facts.peer_ip);
            facts.client_ip = proxies.client_ip(facts.peer_ip, &req.headers);
        }
    }

    /// Takes `route` for the request: its stages, and its upstream when it proxies.
    pub fn take_route(&mut self, route: Arc<Route>) {
        self.facts.route = Some(route.label.clone());
        if let RouteAction::Proxy(to) = &route.action {
            self.attempt = Some(Attempt::new(to.pool.clone(), to.timeout, to.idempotent));
        }
        self.route = Some(route);
    }

    /// The request's final status: the one tollgate's own reply stands for, or the
    /// one written.
    pub fn status(&self, session: &Session) -> Option<u16> {
        self.own_status
            .or_else(|| session.response_written().map(|r| r.status.as_u16()))
    }

    /// The upstream request's stages: the listener's, then the route's.
    pub fn upstream_stages(
        &mut self,
        req: &RequestHeader,
        upstream: &mut RequestHeader,
    ) -> pingora::Result<()> {
        let route_stages = self.route.as_ref().map(|r| &r.stages);
        let adding = self.listener.iter().chain(route_stages);
        upstream.reserve_headers(adding.map(|s| s.upstream_headers()).sum())?;
        let facts = &mut self.facts;
        facts.try_number = self.attempt.as_ref().map_or(0, |a| a.tries().len());
        if let Some(stages) = &self.listener {
            stages.upstream(req, facts, &mut self.listener_slots, upstream)?;
        }
        match &self.route {
            Some(route) => route
                .stages
                .upstream(req, facts, &mut self.route_slots, upstream),
            None => Ok(()),
        }
    }

    /// The response stages every response of the request goes through, whoever wrote
    /// it (`own_reply`: tollgate): the listener's, then the route's (or, for a request
    /// no route took, the snapshot's defaults for such replies).
    pub fn response_stages(
        &mut self,
        req: &RequestHeader,
        resp: &mut ResponseHeader,
        own_reply: bool,
    ) -> pingora::Result<()> {
        let facts = &mut self.facts;
        facts.own_reply = own_reply;
        if let Some(stages) = &self.listener {
            stages.response(req, facts, &mut self.listener_slots, resp)?;
        }
        match &self.route {
            Some(route) => route
                .stages
                .response(req, facts, &mut self.route_slots, resp),
            None => {
                let unrouted = &self.snap.unrouted_stages;
                unrouted.response(req, facts, &mut Slots::default(), resp)
            }
        }
    }

    /// A piece of the response body, through the stages of both lists that look at it.
    pub fn response_body_stages(
        &mut self,
        req: &RequestHeader,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
    ) -> pingora::Result<()> {
        let facts = &mut self.facts;
        if let Some(stages) = self
            .listener
            .as_ref()
            .filter(|s| s.has_response_body_hooks())
        {
            stages.response_body(req, facts, &mut self.listener_slots, body, end_of_stream)?;
        }
        match self
            .route
            .as_ref()
            .filter(|r| r.stages.has_response_body_hooks())
        {
            Some(route) => {
                let slots = &mut self.route_slots;
                route
                    .stages
                    .response_body(req, facts, slots, body, end_of_stream)
            }
            None => Ok(()),
        }
    }

    /// Headers the response stages usually add, all together.
    pub fn response_headers_added(&self) -> usize {
        let route = match &self.route {
            Some(route) => route.stages.response_headers(),
            None => self.snap.unrouted_stages.response_headers(),
        };
        self.listener.as_ref().map_or(0, |s| s.response_headers()) + route
    }

    /// The end of the request, for every stage of both lists.
    pub async fn done_stages(&mut self, session: &Session, error: Option<&pingora::Error>) {
        let outcome = Outcome {
            status: self.status(session),
            error,
            refusal: self.refusal.as_ref(),
            tries: self.attempt.as_ref().map_or(&[], |a| a.tries()),
            ended: std::time::Instant::now(),
        };
        let req = session.req_header();
        let facts = &mut self.facts;
        if let Some(stages) = &self.listener {
            stages
                .done(req, facts, &mut self.listener_slots, &outcome)
                .await;
        }
        if let Some(route) = &self.route {
            let slots = &mut self.route_slots;
            route.stages.done(req, facts, slots, &outcome).await;
        }
    }

    /// The request's access-log line, with what its stages add.
    pub fn access_record<'a>(
        &'a mut self,
        session: &'a Session,
        extra: &'a mut LogFields,
    ) -> AccessRecord<'a> {
        let req = session.req_header();
        if let Some(stages) = &self.listener {
            stages.log_fields(req, &mut self.facts, &mut self.listener_slots, extra);
        }
        if let Some(route) = &self.route {
            let slots = &mut self.route_slots;
            route.stages.log_fields(req, &mut self.facts, slots, extra);
        }
        let facts = &self.facts;
        let client_cert = facts.client_cert();
        AccessRecord {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            request_id: &facts.request_id,
            client_ip: facts.client_ip,
            method: req.method.as_str(),
            host: &facts.host,
            path: match facts.path.as_str() {
                "" => req.uri.path(),
                normalized => normalized,
            },
            // No response written: the client went away first (nginx's 499).
            status: self.status(session).unwrap_or(CLIENT_CLOSED_REQUEST),
            route: facts.route.as_deref().map(|r| &*r.name),
            consumer: facts.consumer(),
            tls: facts.tls.as_deref().map(|t| &*t.version),
            client_cert_subject: client_cert.map(|c| c.subject.as_str()),
            client_cert_sha256: client_cert.map(|c| c.sha256_hex()),
            upstream: self.attempt.as_ref().and_then(Attempt::target),
            bytes: session.body_bytes_sent(),
            duration_ms: (facts.started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
            extra,
        }
    }
}
