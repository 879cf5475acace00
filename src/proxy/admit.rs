//! `request_filter`'s steps, in the fixed order every request takes them. The first
//! step that refuses answers with its [`Reply`]; the rest do not run.
//!
//! 1. hygiene: headers named with `_` (dropped, or 400), sizes, Host, the request
//!    target → 414/431/400
//! 2. normalization of the path, once → 400
//! 3. the listener's stages (server-wide ones around its own: deny lists, HTTPS
//!    redirect, bans of client-IP jails, ...) → 403/308
//! 4. the route: listener, host, normalized path, method (a CORS preflight by the
//!    method it asks about) → 404/405/403
//! 5. the route's stages (see `policy::build` for their order: IP lists, CORS,
//!    authentication, limits, ...) → 401/403/429/...
//!
//! Static answers and the upstream follow in `request_filter` and `upstream_peer`.

use http::StatusCode;
use pingora::proxy::Session;

use super::{Gateway, RequestCtx};
use crate::base::Reply;
use crate::edge::{hygiene, path, target::Form};
use crate::stage::{Refusal, Refused};

impl Gateway {
    /// Runs the steps; a refusal is recorded in `ctx.refusal` and returned as the
    /// reply to write.
    pub(super) async fn admit(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<(), Reply> {
        self.admit_steps(session, ctx).await.map_err(|refused| {
            ctx.refusal = Some(Refusal {
                stage: refused.stage,
                status: refused.reply.status.as_u16(),
                detail: refused.reply.detail.clone(),
            });
            refused.reply
        })
    }

    async fn admit_steps(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<(), Box<Refused>> {
        let step = |stage: &'static str| move |reply: Reply| Box::new(Refused { stage, reply });
        let underscores = ctx.snap.request_limits.underscore_headers;
        let underscored = hygiene::underscored(session.req_header_mut(), underscores);
        let session: &Session = session;
        let req = session.req_header();
        // Who and where, and the listener's stages, before any refusal: their `done`
        // and `log` hooks (counts, traces, strikes) see every request.
        ctx.identify(session);
        let listener = self.parts.listeners.name_for(session.server_addr());
        let snap = &ctx.snap;
        let stages = snap.listener_stages.get(listener);
        ctx.listener = Some(stages.unwrap_or(&snap.server_stages).clone());
        underscored.map_err(|e| step("hygiene")(e.into()))?;
        let checked =
            hygiene::check(req, &ctx.snap.request_limits).map_err(|e| step("hygiene")(e.into()))?;
        ctx.facts.host = checked.host;
        ctx.facts.query_start = checked.target.query_start(req.raw_path());
        let asterisk = checked.target.form == Form::Asterisk;
        if !asterisk {
            ctx.facts.path = path::normalize(checked.target.path, &ctx.snap.path_rules)
                .map_err(|e| step("normalization")(e.into()))?;
        }
        if let Some(stages) = &ctx.listener {
            (stages
                .request(req, &mut ctx.facts, &mut ctx.listener_slots)
                .await)?;
        }
        if asterisk {
            // `OPTIONS *` asks about the server, not a resource: nothing to route.
            return Err(step("routing")(Reply::new(StatusCode::NO_CONTENT, "")));
        }
        let facts = &ctx.facts;
        let route = ctx
            .snap
            .router
            .route_for(req, listener, &facts.host, &facts.path)
            .map_err(|e| step("routing")(e.into()))?
            .clone();
        ctx.take_route(route.clone());
        route
            .stages
            .request(req, &mut ctx.facts, &mut ctx.route_slots)
            .await
    }
}
