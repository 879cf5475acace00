//! The Pingora `ProxyHttp` implementation: one short delegating step per phase, in
//! phase order. Each phase's contract:
//!
//! - `new_ctx`: load the current snapshot once; the request keeps it to the end.
//! - `request_filter`: request id, client IP, hygiene (400/414/431), the HTTPS
//!   redirect of a `redirect_https` listener (308), routing (404/405),
//!   authentication and authorization (401/403), rate and concurrency limits
//!   (429/503), static `respond` answers. A rejection writes its problem+json
//!   response and returns `Ok(true)`; `Err` is for real failures only.
//! - `upstream_peer`: a healthy target of the route's pool not tried yet (503 when
//!   none is healthy; re-entered on a retry).
//! - `fail_to_connect`: marks connect failures retryable while `retries` allow.
//! - `upstream_request_filter`: forwarded headers, request id, path rewrite, client
//!   certificate and identity headers, credential stripping, header rules.
//! - `response_filter`: request id, RateLimit headers, HSTS, the route's header rules.
//! - `fail_to_proxy`: problem+json with 502/503/504 (see `respond::error_status`).
//! - `logging`: one access-log line.

mod ctx;
mod listeners;
mod respond;

pub use ctx::RequestCtx;
pub use listeners::ListenerMap;

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorSource, ErrorType, Result};
use std::sync::Arc;

use crate::auth::Attempt;
use crate::edge::{forwarded::Forwarded, forwarded::X_FORWARDED_FOR, hygiene, request_id};
use crate::observability::{AccessLog, Metrics, SecurityLog};
use crate::ratelimit::{KeyInput, RateLimitError};
use crate::routing::{Route, RouteAction};
use crate::state::SharedSnapshot;
use crate::tls::forward_client_cert;
use respond::Rejection;

/// The gateway's request handling, shared by every listener service.
#[derive(Clone)]
pub struct Gateway {
    shared: SharedSnapshot,
    listeners: Arc<ListenerMap>,
    access_log: AccessLog,
    security_log: SecurityLog,
    metrics: Arc<Metrics>,
}

impl Gateway {
    pub fn new(
        shared: SharedSnapshot,
        listeners: Arc<ListenerMap>,
        access_log: AccessLog,
        security_log: SecurityLog,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            shared,
            listeners,
            access_log,
            security_log,
            metrics,
        }
    }

    /// Steps 1-5 of `request_filter`: who is asking, is the request sane, which
    /// route, is the caller authenticated and allowed.
    async fn admit(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
    ) -> std::result::Result<(), Rejection> {
        let req = session.req_header();
        ctx.request_id = request_id::from_request(req);
        ctx.tls = session.digest().and_then(|d| d.ssl_digest.clone());
        if let Some(peer) = session.client_addr().and_then(|a| a.as_inet()) {
            ctx.peer_ip = peer.ip();
            ctx.peer_trusted = ctx.snap.trusted_proxies.contains(ctx.peer_ip);
            let xff = req
                .headers
                .get(X_FORWARDED_FOR)
                .and_then(|v| v.to_str().ok());
            ctx.client_ip = ctx.snap.trusted_proxies.client_ip(ctx.peer_ip, xff);
        }
        ctx.host = hygiene::check(req, &ctx.snap.limits)?;
        let listener = self.listeners.name_for(session.server_addr());
        if let Some(port) = ctx.snap.https_redirects.get(listener) {
            return Err(Rejection::HttpsRedirect(respond::https_location(
                &ctx.host, *port, &req.uri,
            )));
        }
        let route = ctx
            .snap
            .router
            .find(listener, &ctx.host, req.uri.path(), &req.method)?;
        let route = route.clone();
        let attempt = Attempt {
            request_id: &ctx.request_id,
            client_ip: ctx.client_ip,
            route: &route.name,
        };
        let principal = route
            .auth
            .check(req, ctx.client_cert(), &attempt, &self.security_log)
            .await?;
        ctx.principal = principal;
        ctx.route = Some(route.clone());
        self.limit(req, &route, ctx).await
    }

    /// Step 6 of `request_filter`: concurrency limits of the route and its upstream,
    /// then every rate limit of the route.
    async fn limit(
        &self,
        req: &RequestHeader,
        route: &Route,
        ctx: &mut RequestCtx,
    ) -> std::result::Result<(), Rejection> {
        let pool_limit = match &route.action {
            RouteAction::Proxy(pool) => pool.in_flight.as_ref(),
            RouteAction::Respond(_) => None,
        };
        for (limit, what) in [
            (route.limits.in_flight.as_ref(), "route"),
            (pool_limit, "upstream"),
        ] {
            if let Some(limit) = limit {
                let guard = limit.enter().ok_or(RateLimitError::Busy { what })?;
                ctx.concurrency.push(guard);
            }
        }
        let input = KeyInput {
            client_ip: ctx.client_ip,
            principal: ctx.principal.as_deref(),
            route: &route.name,
            req,
        };
        match route.limits.check(&input, &self.metrics).await {
            Ok(headers) => {
                ctx.rate_limit = headers;
                Ok(())
            }
            Err(e) => {
                if let RateLimitError::Limited { headers, .. } = &e {
                    ctx.rate_limit = Some(headers.clone());
                }
                Err(e.into())
            }
        }
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.shared.load_full())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        if let Err(rejection) = self.admit(session, ctx).await {
            respond::reject(session, &rejection, ctx).await?;
            return Ok(true);
        }
        match ctx
            .route
            .as_deref()
            .map(|r| (&r.action, &r.response_headers))
        {
            Some((RouteAction::Respond(answer), rules)) => {
                respond::static_response(session, answer, rules, ctx).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
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
            .select(session.req_header(), ctx.client_ip, &ctx.tried)
            .or_else(|e| {
                let why = match &ctx.connect_failure {
                    Some(last) => format!("{e} (last: {last})"),
                    None => e.to_string(),
                };
                Error::e_explain(ErrorType::HTTPStatus(e.status()), why)
            })?;
        ctx.tried.push(selected.addr);
        ctx.in_flight = Some(selected.guard);
        Ok(pool.peer(selected.addr, timeout))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        ctx.in_flight = None;
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
        let forwarded = Forwarded {
            peer: ctx.peer_ip,
            peer_trusted: ctx.peer_trusted,
            proto: if ctx.tls.is_some() { "https" } else { "http" },
        };
        forwarded.apply(upstream)?;
        upstream.insert_header(request_id::HEADER, &ctx.request_id)?;
        forward_client_cert(ctx.client_cert(), upstream)?;
        if let Some(route) = ctx.route.as_deref() {
            let original = session
                .req_header()
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str());
            if let Some(path) = route.rewrite_path(original) {
                let uri = path
                    .parse()
                    .map_err(|e| Error::because(ErrorType::InternalError, "rewritten path", e))?;
                upstream.set_uri(uri);
            }
            let identity = &ctx.snap.auth.identity_headers;
            route
                .auth
                .prepare_upstream(identity, ctx.principal.as_deref(), upstream)?;
            route.request_headers.apply_to_request(upstream)?;
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        respond::add_common_headers(resp, ctx)?;
        if let Some(route) = ctx.route.as_deref() {
            route.response_headers.apply_to_response(resp)?;
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = match respond::error_status(e) {
            Some((status, detail)) => {
                if let Err(write_err) = respond::problem(session, status, detail, ctx, None).await {
                    log::debug!("could not send the error response: {write_err}");
                }
                status.as_u16()
            }
            None => 0,
        };
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, e: &Error) -> bool {
        // Clients that disconnect or send garbage must not flood the error log.
        e.esource() == &ErrorSource::Downstream
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        ctx.in_flight = None;
        self.access_log.record(session, ctx);
    }
}
