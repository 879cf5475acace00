//! The proxy's side of the jails: refusing banned keys (client IPs before routing,
//! consumers after authentication) and counting strikes from a request's final
//! status when it is logged. A trusted proxy is never a key, and a request a jail
//! refused is no strike.

use pingora::proxy::Session;

use super::{Gateway, RequestCtx};
use crate::base::Reply;
use crate::config::raw::JailKey;
use crate::jail::now_millis;
use crate::observability::EventFacts;

impl Gateway {
    /// Refuses the request while a jail bans its key of `kind` (when it has one).
    pub(super) fn check_bans(&self, ctx: &mut RequestCtx, kind: JailKey) -> Result<(), Reply> {
        let jails = &ctx.snap.jails;
        if jails.by_name.is_empty() {
            return Ok(());
        }
        let Some(key) = jail_key(ctx, kind) else {
            return Ok(());
        };
        let refused = jails.check(kind, &key, now_millis());
        ctx.jailed = refused.is_err();
        refused.map_err(Reply::from)
    }

    /// Counts the request's final status as a strike in every jail of its route and
    /// of the server that counts that status.
    pub(super) async fn count_strikes(&self, session: &Session, ctx: &RequestCtx) {
        let Some(status) = session.response_written().map(|r| r.status.as_u16()) else {
            return;
        };
        let route_jails = ctx.route.as_deref().map_or(&[][..], |r| &r.jails[..]);
        let jails = ctx.snap.jails.everywhere.iter().chain(route_jails);
        for jail in jails.filter(|j| j.counts(status)) {
            let Some(key) = jail_key(ctx, jail.key()) else {
                continue;
            };
            let Some(ban_ms) = jail.strike(&key, now_millis(), &self.metrics).await else {
                continue;
            };
            self.metrics.jail_ban(jail.name());
            let facts = EventFacts {
                request_id: &ctx.request_id,
                client_ip: ctx.client_ip,
                route: ctx.route.as_deref().map(|r| &*r.name),
            };
            let fields = [
                ("jail", jail.name().to_owned()),
                ("key", key),
                ("ban_seconds", ban_ms.div_ceil(1000).to_string()),
            ];
            self.security_log.policy("jail_ban", &facts, &fields);
        }
    }
}

/// The request's key of `kind`: its client IP unless that is a trusted proxy, or its
/// authenticated consumer.
fn jail_key(ctx: &RequestCtx, kind: JailKey) -> Option<String> {
    match kind {
        JailKey::ClientIp => {
            let trusted = ctx.snap.trusted_proxies.contains(ctx.client_ip);
            (!trusted).then(|| ctx.client_ip.to_string())
        }
        JailKey::Consumer => ctx.principal.as_deref().map(|p| p.id.clone()),
    }
}
