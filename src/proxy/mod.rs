//! The Pingora `ProxyHttp` implementation: one short delegating step per phase, in
//! phase order. Each phase's contract:
//!
//! - `new_ctx`: load the current snapshot once; the request keeps it to the end.
//! - `request_filter`: the client's idle timeout (`keepalive_timeout`, on connections
//!   kept alive), the stages of `admit` (hygiene, normalization, listener
//!   policies, routing, route policies, authentication and authorization, limits),
//!   then a static `respond` answer. A stage that refuses writes its reply and returns
//!   `Ok(true)`; `Err` is for real failures only.
//! - `request_body_filter`: the route's body policies, per chunk, the body held back
//!   first (`hold`) when they need all of it; nothing for an upgraded connection.
//!   Holding is the one thing a body policy needs from the proxy: the design keeps
//!   `proxy/` free of policy knowledge, and a policy only marks its chain as holding.
//! - `upstream_peer`: a healthy, not ejected target of the route's pool not tried yet
//!   (503 when none is healthy; re-entered on a retry), its timeouts shortened to a
//!   gRPC call's `grpc-timeout` (`grpc`).
//! - `fail_to_connect`: marks connect failures retryable while `retries` allow, and
//!   counts one failure of the target for passive health (`passive`).
//! - `upstream_request_filter`: the normalized target, forwarded headers, request id,
//!   the target's address as `Host` when the client named none, client certificate,
//!   identity headers and credential stripping, then the route's upstream policies.
//! - `upstream_response_filter`: a status `retry_on` names, caught before it goes
//!   out, while another target may answer (`retry`).
//! - `error_while_proxy`: whether a failure after the request reached its target is
//!   retried (`retry`).
//! - `response_filter`: the response phase (`respond::response_phase`), as on
//!   tollgate's own replies; `Connection: close` once the process drains.
//! - `fail_to_proxy`: a body policy's reply, or problem+json 502/503/504.
//! - `logging`: the outcome at the last target for passive health, jail strikes from
//!   the final status, then one access-log line.

mod admit;
mod ctx;
mod grpc;
mod hold;
mod jails;
mod listeners;
mod passive;
mod respond;
mod retry;

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

use crate::base::lifecycle::Lifecycle;
use crate::connection;
use crate::edge::{
    forwarded::{self, Forwarded},
    request_id, target,
};
use crate::observability::{AccessLog, EventFacts, Metrics, SecurityLog};
use crate::policy::{BodyChunk, Reply};
use crate::routing::RouteAction;
use crate::state::SharedSnapshot;
use crate::tls::forward_client_cert;
use crate::upstream::Outcome;

/// The error that ends proxying when the body policies answered (`ctx.body_reply`).
const BODY_REFUSED: ErrorType = ErrorType::Custom("request body refused");

/// The gateway's request handling, shared by every listener service.
#[derive(Clone)]
pub struct Gateway {
    shared: SharedSnapshot,
    lifecycle: Arc<Lifecycle>,
    listeners: Arc<ListenerMap>,
    access_log: AccessLog,
    security_log: SecurityLog,
    metrics: Arc<Metrics>,
    held: HeldBytes,
}

impl Gateway {
    pub fn new(
        shared: SharedSnapshot,
        lifecycle: Arc<Lifecycle>,
        listeners: Arc<ListenerMap>,
        access_log: AccessLog,
        security_log: SecurityLog,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            shared,
            lifecycle,
            listeners,
            access_log,
            security_log,
            metrics,
            held: HeldBytes::default(),
        }
    }

    /// Once the process drains (it is stopping, or handing its sockets to a new one),
    /// every HTTP/1.1 response says `Connection: close`, so each client's connection
    /// ends after the response it is waiting for and its next request goes to a new
    /// connection (and a new process) instead of into a connection about to close.
    fn close_if_draining(&self, session: &mut Session) {
        if self.lifecycle.is_draining() {
            session.set_keepalive(None);
        }
    }

    /// Answers with `reply` instead of proxying, logging its security event if any.
    async fn answer(
        &self,
        session: &mut Session,
        reply: Reply,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.close_if_draining(session);
        if let Some(event) = &reply.event {
            let facts = EventFacts {
                request_id: &ctx.request_id,
                client_ip: ctx.client_ip,
                route: ctx.route.as_deref().map(|r| &*r.name),
            };
            self.security_log.policy(event.event, &facts, &event.fields);
        }
        respond::reply(session, reply, ctx).await
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.shared.load_full())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        // Pingora keeps an idle HTTP/1.1 connection open forever unless told otherwise.
        // Only a connection Pingora keeps gets the timeout: setting one would also keep
        // an HTTP/1.0 request's connection, which closes unless it asks for keep-alive
        // (Pingora re-checks only `Connection: close`).
        if session.get_keepalive().is_some() {
            session.set_keepalive(Some(ctx.snap.keepalive_timeout_secs));
        }
        connection::head_complete(session);
        if let Err(reply) = self.admit(session, ctx).await {
            self.answer(session, reply, ctx).await?;
            return Ok(true);
        }
        match ctx.route.as_deref().map(|r| &r.action) {
            Some(RouteAction::Respond(answer)) => {
                self.close_if_draining(session);
                respond::static_answer(session, answer, ctx).await?;
                Ok(true)
            }
            _ => Ok(false),
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
        // Pingora calls this once for a request without a body too (nothing to check:
        // no Arc is cloned), and for an upgraded connection (WebSocket), whose bytes are
        // no request body.
        let no_body = body.is_none() && ctx.body_received == 0;
        if no_body
            || session.was_upgraded()
            || !ctx
                .route
                .as_deref()
                .is_some_and(|r| r.policies.has_body_policies())
        {
            return Ok(());
        }
        let Some(route) = ctx.route.clone() else {
            return Ok(());
        };
        ctx.body_received += body.as_ref().map_or(0, |b| b.len() as u64);
        let budget = ctx.snap.validation_memory;
        let held = match route.policies.holds_body() {
            true => ctx.held.hold(body, end_of_stream, &self.held, budget),
            false => Ok(()),
        };
        let chunk = BodyChunk {
            data: body.as_ref(),
            received: ctx.body_received,
            end_of_stream,
        };
        let checked = held.and_then(|()| {
            route
                .policies
                .on_body(&ctx.view(session.req_header()), &chunk)
        });
        if let Err(reply) = checked {
            let status = reply.status.as_u16();
            ctx.body_reply = Some(reply);
            return Error::e_explain(BODY_REFUSED, format!("answered {status}"));
        }
        Ok(())
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let (Some(pool), Some(timeout)) =
            (ctx.pool().cloned(), ctx.route.as_ref().map(|r| r.timeout))
        else {
            return Error::e_explain(
                ErrorType::InternalError,
                "upstream_peer without a proxy route",
            );
        };
        let selected = pool
            .select(session.req_header(), &ctx.path, ctx.client_ip, &ctx.tried)
            .or_else(|e| {
                let why = match &ctx.connect_failure {
                    Some(last) => format!("{e} (last: {last})"),
                    None => e.to_string(),
                };
                Error::e_explain(ErrorType::HTTPStatus(e.status()), why)
            })?;
        retry::first_attempt(ctx);
        ctx.tried.push(selected.addr);
        ctx.in_flight = Some(selected.guard);
        ctx.outlier = Some(selected.outlier);
        let deadline = grpc::deadline(session);
        ctx.client_deadline = deadline.is_some();
        Ok(pool.peer(selected.addr, timeout, deadline))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        ctx.in_flight = None;
        self.record_outcome(ctx, Outcome::Failed);
        ctx.connect_failure = Some(e.to_string());
        if ctx
            .pool()
            .is_some_and(|pool| ctx.tried.len() <= pool.retries)
        {
            e.set_retry(true);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // Pingora's copy of the client's head has no room to spare: one growth of its
        // maps for the forwarded headers and `X-Request-Id`, not one per header.
        upstream.reserve_headers(forwarded::ADDED + 1)?;
        let req = session.req_header();
        let view = ctx.view(req);
        // The target first: it gives a request that named its host only in its
        // target a `Host`, which `X-Forwarded-Host` repeats.
        target::forward(upstream, req, view.path, view.query)?;
        let forwarded = Forwarded {
            peer: ctx.peer_ip,
            peer_trusted: ctx.peer_trusted,
            proto: if ctx.tls.is_some() { "https" } else { "http" },
        };
        forwarded.apply(upstream)?;
        if let Some(addr) = ctx.tried.last() {
            target::host_or_target(upstream, *addr)?;
        }
        upstream.insert_known_header(&request_id::HEADER_NAME, &ctx.request_id)?;
        forward_client_cert(ctx.client_cert(), upstream)?;
        if let Some(route) = ctx.route.as_deref() {
            let identity = &ctx.snap.auth.identity_headers;
            route
                .auth
                .prepare_upstream(identity, ctx.principal.as_deref(), upstream)?;
            route.policies.on_upstream(&view, upstream)?;
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.check_status(session, ctx, upstream_response.status.as_u16())
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
        self.retry_decision(session, &mut e, ctx, client_reused);
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
            .body_reply
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
        // large, invalid, over the validation memory), must not flood the error log.
        e.esource() == &ErrorSource::Downstream || e.etype() == &BODY_REFUSED
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        ctx.in_flight = None;
        if let Some(outcome) = passive::outcome(session, e, ctx) {
            self.record_outcome(ctx, outcome);
        }
        connection::request_complete(session);
        if !ctx.jailed {
            self.count_strikes(session, ctx).await;
        }
        if self.access_log.is_on() {
            self.access_log.record(&ctx.access_record(session));
        }
    }
}
