//! The proxy's side of the jails: refusing banned keys (client IPs before routing,
//! consumers after authentication) and counting strikes from a request's final
//! status when it is logged. A request a jail refused is no strike.
//!
//! A request's key: for a client-IP jail, the client's IPv4 address, or the /64 an
//! IPv6 client's address is in (one host is usually given a whole /64, so banning a
//! single address would be no ban); none for a trusted proxy or an unknown address.
//! For a consumer jail, `AUTHENTICATOR:ID` (an API-key consumer and a JWT `sub` with
//! the same id are not the same consumer); none without a principal.

use pingora::proxy::Session;
use std::net::IpAddr;

use super::{Gateway, RequestCtx};
use crate::base::Reply;
use crate::config::raw::JailKey;
use crate::edge::forwarded::client_network;
use crate::jail::now_millis;
use crate::observability::EventFacts;

impl Gateway {
    /// Refuses the request while a jail bans its key of `kind`.
    pub(super) fn check_bans(&self, ctx: &mut RequestCtx, kind: JailKey) -> Result<(), Reply> {
        if ctx.snap.jails.by_name.is_empty() {
            // Most configs have no jail: not even the clock is read.
            return Ok(());
        }
        let refused = ctx
            .snap
            .jails
            .check(kind, || jail_key(ctx, kind), now_millis());
        ctx.jailed = refused.is_err();
        refused.map_err(Reply::from)
    }

    /// Counts the request's final status as a strike in every jail of its route and
    /// of the server that counts that status.
    pub(super) async fn count_strikes(&self, session: &Session, ctx: &RequestCtx) {
        let Some(status) = ctx.status(session) else {
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

/// The request's key of `kind` (see the module docs).
fn jail_key(ctx: &RequestCtx, kind: JailKey) -> Option<String> {
    match kind {
        JailKey::ClientIp => {
            let ip = ctx.client_ip;
            let unknown = ip.is_unspecified() || ctx.snap.trusted_proxies.contains(ip);
            (!unknown).then(|| ip_key(ip))
        }
        JailKey::Consumer => {
            let p = ctx.principal.as_deref()?;
            Some(format!("{}:{}", p.authenticator, p.id))
        }
    }
}

/// An IPv4 address as it is; an IPv6 address as its /64.
fn ip_key(ip: IpAddr) -> String {
    match client_network(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(net) => format!("{net}/64"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let key = |s: &str| ip_key(s.parse().expect("ip"));
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff::9"), key("2001:db8:1:2::1"));
    }
}
