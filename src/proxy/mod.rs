//! The Pingora `ProxyHttp` implementation: Pingora glue only, one short delegating
//! step per phase, in phase order. What a request goes through is in its stages (see
//! `stage` and `policy::build`); what reaching the upstream takes is in its
//! [`crate::upstream::Attempt`]. Each phase's contract:
//!
//! - `new_ctx`: load the current snapshot once; the request keeps it to the end.
//! - `request_filter`: the client's idle timeout (`keepalive_timeout`, on connections
//!   kept alive), then `admit` (hygiene, normalization, the listener's stages, the
//!   route, the route's stages), then a static `respond` answer, or the body held and
//!   judged before proxying (`body::hold`). A refusal writes its reply and returns
//!   `Ok(true)`; `Err` is for real failures only.
//! - `request_body_filter`: the route's body stages, per chunk past the hold (`body`).
//! - `upstream_peer`: the attempt's next target (re-entered on a retry).
//! - `fail_to_connect`: the attempt's connect failure (retried while `retries` allow).
//! - `upstream_request_filter`: the normalized target, the stages' upstream hooks
//!   (forwarded headers, identity headers, rewrites, ...), then the target's address as
//!   `Host` when the client named none.
//! - `upstream_response_filter`: a status `retry_on` names is caught by the attempt
//!   before it goes out, while another target may answer.
//! - `error_while_proxy`: the attempt decides whether a failure after the request
//!   reached its target is retried.
//! - `response_filter` and `response_body_filter`: the stages' response hooks, as on
//!   tollgate's own replies; `Connection: close` once the process drains.
//! - `fail_to_proxy`: a body stage's reply, or problem+json 502/503/504.
//! - `logging`: the attempt's outcome at its last target (passive health), the
//!   stages' `done` hooks, then one access-log line.

mod admit;
mod body;
mod ctx;
mod hold;
mod listeners;
mod respond;

pub use ctx::RequestCtx;
use hold::HeldBytes;
pub use listeners::ListenerMap;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorSource, ErrorType, Result};
use std::sync::Arc;
use std::time::Duration;

use crate::base::clock::Clock;
use crate::base::lifecycle::Lifecycle;
use crate::base::Reply;
use crate::connection;
use crate::edge::target;
use crate::observability::{AccessLog, EventFacts, Metrics, SecurityLog};
use crate::routing::RouteAction;
use crate::stage::LogFields;
use crate::state::SharedSnapshot;

/// The gateway's request handling, shared by every listener service.
#[derive(Clone)]
pub struct Gateway {
    shared: SharedSnapshot,
    parts: GatewayParts,
    held: HeldBytes,
}

/// What the gateway works with besides the snapshot.
#[derive(Clone)]
pub struct GatewayParts {
    pub lifecycle: Arc<Lifecycle>,
    pub listeners: Arc<ListenerMap>,
    pub access_log: AccessLog,
    pub security_log: SecurityLog,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
}

impl Gateway {
    pub fn new(shared: SharedSnapshot, parts: GatewayParts) -> Self {
        Self {
            shared,
            parts,
            held: HeldBytes::default(),
        }
    }

    /// Once the process drains (it is stopping, or handing its sockets to a new one),
    /// every HTTP/1.1 response says `Connection: close`, so each client's connection
    /// ends after the response it is waiting for and its next request goes to a new
    /// connection (and a new process) instead of into a connection about to close.
    fn close_if_draining(&self, session: &mut Session) {
        if self.parts.lifecycle.is_draining() {
            session.set_keepalive(None);
        }
    }

    /// Answers with `reply` instead of proxying, logging its security event if any;
    /// a reply that closes the connection lingers first (`connection::linger`).
    async fn answer(
        &self,
        session: &mut Session,
        reply: Reply,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.close_if_draining(session);
        if let Some(event) = &reply.event {
            let facts = &ctx.facts;
            let event_facts = EventFacts {
                request_id: &facts.request_id,
                client_ip: facts.client_ip,
                route: facts.route.as_deref().map(|r| &*r.name),
            };
            self.parts
                .security_log
                .policy(event.event, &event_facts, &event.fields);
        }
        let close = reply.close;
        respond::reply(session, reply, ctx).await?;
        if close {
            connection::linger(session, ctx.snap.client_limits.lingering).await;
        }
        Ok(())
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.shared.load_full(), self.parts.clock.now())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        // Pingora keeps an idle HTTP/1.1 connection open forever unless told otherwise.
        // Only a connection Pingora keeps gets the timeout: setting one would also keep
        // an HTTP/1.0 request's connection, which closes unless it asks for keep-alive
        // (Pingora re-checks only `Connection: close`).
        if session.get_keepalive().is_some() {
            session.set_keepalive(Some(ctx.snap.keepalive_timeout_secs));
        }
        let (limits, metrics) = (&ctx.snap.client_limits, &self.parts.metrics);
        connection::head_complete(session, limits, metrics);
        if let Err(reply) = self.admit(session, ctx).await {
            self.answer(session, reply, ctx).await?;
            return Ok(true);
        }
        let Some(route) = ctx.route.clone() else {
            return Ok(false);
        };
        match &route.action {
            RouteAction::Respond(answer) => {
                self.close_if_draining(session);
                respond::static_answer(session, answer, ctx).await?;
                Ok(true)
            }
            RouteAction::Proxy(_) => match body::hold(session, ctx, &self.held).await? {
                Some(reply) => {
                    self.answer(session, reply, ctx).await?;
                    Ok(true)
                }
                None => Ok(false),
            },
        }
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if end_of_stream {
            connection::body_complete(session);
        }
        body::filter(session, body, end_of_stream, ctx, &self.held)
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let facts = &ctx.facts;
        match ctx.attempt.as_mut() {
            Some(attempt) => attempt.next_peer(session, &facts.path, facts.client_ip),
            None => Error::e_explain(ErrorType::InternalError, "no upstream for this route"),
        }
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let Some(attempt) = ctx.attempt.as_mut() {
            attempt.connect_failed(&mut e, &self.parts.metrics);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let req = session.req_header();
        // The target first: it gives a request that named its host only in its
        // target a `Host`, which `X-Forwarded-Host` repeats.
        let query = ctx.facts.query_start.and_then(|i| req.raw_path().get(i..));
        target::forward(upstream, req, &ctx.facts.path, query)?;
        ctx.upstream_stages(req, upstream)?;
        match ctx.attempt.as_ref().and_then(|a| a.target()) {
            Some(addr) => target::host_or_target(upstream, addr),
            None => Ok(()),
        }
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let status = upstream_response.status.as_u16();
        match ctx.attempt.as_mut() {
            Some(attempt) => attempt.response(session, status, &self.parts.metrics),
            None => Ok(()),
        }
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        if let Some(attempt) = ctx.attempt.as_mut() {
            attempt.failed(session, &mut e, client_reused, &self.parts.metrics);
        }
        e
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.close_if_draining(session);
        respond::response_phase(resp, session.req_header(), ctx, false)
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        ctx.response_body_stages(session.req_header(), body, end_of_stream)?;
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        // Pingora does not reuse the connection (`can_reuse_downstream: false`; the
        // request's body may be half read): the reply says so, or the client would
        // send its next request into a closed connection.
        let reply = ctx
            .body
            .reply
            .take()
            .or_else(|| respond::error_status(e).map(|(status, detail)| Reply::new(status, detail)))
            .map(Reply::closing);
        let code = match reply {
            Some(reply) => {
                let status = reply.status.as_u16();
                if let Err(write_err) = self.answer(session, reply, ctx).await {
                    log::debug!("could not send the error response: {write_err}");
                }
                status
            }
            None => 0,
        };
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, e: &Error) -> bool {
        // Clients that disconnect or send garbage, or whose body was refused (too
        // large, invalid, over the validation memory), must not flood the error log;
        // nor the 503s of an upstream with no healthy target (logged once per change).
        e.esource() == &ErrorSource::Downstream
            || e.etype() == &body::BODY_REFUSED
            || e.etype() == &ErrorType::HTTPStatus(503)
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        if let Some(attempt) = ctx.attempt.as_mut() {
            attempt.finish(session, e, &self.parts.metrics);
        }
        connection::request_complete(session);
        ctx.done_stages(session, e).await;
        if self.parts.access_log.is_on() {
            let mut extra = LogFields::default();
            self.parts
                .access_log
                .record(&ctx.access_record(session, &mut extra));
        }
    }
}
