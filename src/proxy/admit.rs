//! `request_filter`'s stages, in the fixed order every request takes them. The first
//! stage that refuses answers with its [`Reply`]; the rest do not run.
//!
//! 1. hygiene: sizes, Host, the request target → 414/431/400
//! 2. normalization of the path, once → 400
//! 3. server-wide and listener policies (deny lists, HTTPS redirect), then bans of
//!    client-IP jails → 403/308
//! 4. the route: listener, host, normalized path, method → 404/405
//! 5. the route's request policies
//! 6. authentication, 7. authorization, then bans of consumer jails → 401/403
//! 8. rate and concurrency limits → 429/503
//!
//! Static answers (9) and the upstream (10) follow in `request_filter` and
//! `upstream_peer`.

use http::{Method, StatusCode};
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use std::sync::Arc;

use super::{Gateway, RequestCtx};
use crate::auth::{Attempt, AuthError};
use crate::base::Reply;
use crate::config::raw::JailKey;
use crate::edge::{hygiene, path, target::Form};
use crate::policy::cors;
use crate::ratelimit::{KeyInput, RateLimitError};
use crate::routing::{Route, RouteAction, RouteError};

impl Gateway {
    pub(super) async fn admit(&self, session: &Session, ctx: &mut RequestCtx) -> Result<(), Reply> {
        let req = session.req_header();
        ctx.identify(session);
        let checked = hygiene::check(req, &ctx.snap.request_limits)?;
        ctx.host = checked.host;
        ctx.query_start = checked.target.query_start(req.raw_path());
        let asterisk = checked.target.form == Form::Asterisk;
        if !asterisk {
            ctx.path = path::normalize(checked.target.path, &ctx.snap.path_rules)?;
        }
        let listener = self.listeners.name_for(session.server_addr());
        let snap = &ctx.snap;
        let policies = snap.listener_policies.get(listener);
        let policies = policies.unwrap_or(&snap.server_policies).clone();
        policies.on_request(&ctx.view(req))?;
        ctx.listener_policies = Some(policies);
        self.check_bans(ctx, JailKey::ClientIp)?;
        if asterisk {
            // `OPTIONS *` asks about the server, not a resource: nothing to route.
            return Err(Reply::new(StatusCode::NO_CONTENT, ""));
        }
        let route = self.find_route(req, listener, ctx)?;
        ctx.route = Some(route.clone());
        route.policies.on_request(&ctx.view(req))?;
        let attempt = Attempt {
            request_id: &ctx.request_id,
            client_ip: ctx.client_ip,
            route: &route.name,
        };
        let checked = route
            .auth
            .check(req, ctx.client_cert(), &attempt, &self.security_log)
            .await;
        ctx.principal = match checked {
            Ok(principal) => principal,
            Err(e) => {
                // A refused consumer is still who the request was (jails, the log).
                if let AuthError::Forbidden { principal, .. } = &e {
                    ctx.principal = Some(principal.clone());
                }
                return Err(e.into());
            }
        };
        self.check_bans(ctx, JailKey::Consumer)?;
        self.limit(req, &route, ctx).await
    }

    /// The route for the request. A CORS preflight belongs to the route its actual
    /// request would take (by the method it asks about) when that route answers
    /// preflights, or, when no route there takes that method, to the route of the
    /// path's longest prefix that answers preflights (whose policy refuses the
    /// method). Otherwise it is an ordinary `OPTIONS` request, which another route's
    /// CORS policy must not answer: that would approve requests to a route that
    /// never opted into CORS.
    fn find_route(
        &self,
        req: &RequestHeader,
        listener: &str,
        ctx: &RequestCtx,
    ) -> Result<Arc<Route>, Reply> {
        let router = &ctx.snap.router;
        let find = |method: &Method| router.find(listener, &ctx.host, &ctx.path, method);
        let asked = cors::preflight_method(req).and_then(|m| Method::from_bytes(m.as_bytes()).ok());
        let Some(asked) = asked else {
            return Ok(find(&req.method)?.clone());
        };
        match find(&asked) {
            Ok(route) if route.policies.answers_preflights() => return Ok(route.clone()),
            Err(RouteError::MethodNotAllowed { .. }) => {
                if let Some(route) = router.find_preflight(listener, &ctx.host, &ctx.path) {
                    return Ok(route.clone());
                }
            }
            Ok(_) | Err(RouteError::NotFound) => {}
        }
        let route = find(&req.method)?;
        if route.policies.answers_preflights() {
            return Err(Reply::new(
                StatusCode::FORBIDDEN,
                "cross-origin requests to this path are not allowed",
            ));
        }
        Ok(route.clone())
    }

    /// Concurrency limits of the route and its upstream, then every rate limit of
    /// the route.
    async fn limit(
        &self,
        req: &RequestHeader,
        route: &Route,
        ctx: &mut RequestCtx,
    ) -> Result<(), Reply> {
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
