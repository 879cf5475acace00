//! The jails as a stage (strikes and bans are `jail`'s): refusing banned keys, and
//! counting strikes from a request's final status once it is over.
//!
//! Two places install it. The server-wide stages of every listener check the bans of
//! client-IP jails (before routing) and count the strikes of the jails in `[server]
//! jails`, for every request, routed or not. A route checks the bans of consumer jails
//! after authentication (when it authenticates and such jails exist) and counts the
//! strikes of the jails it lists. A request a jail refused is no strike.
//!
//! A request's key: for a client-IP jail, the client's IPv4 address, or the /64 an
//! IPv6 client's address is in (one host is usually given a whole /64, so banning a
//! single address would be no ban); none for a trusted proxy or an unknown address.
//! For a consumer jail, `AUTHENTICATOR:ID` (an API-key consumer and a JWT `sub` with
//! the same id are not the same consumer); none without a principal.

use futures::future::BoxFuture;
use std::sync::Arc;

use crate::auth::Principal;
use crate::base::clock::Clock;
use crate::edge::forwarded::TrustedProxies;
use crate::jail::{check_bans, client_of, ip_key, Jail, KeyKind};
use crate::observability::{EventFacts, Metrics, SecurityLog};
use crate::stage::{self, Cx, Declared, Facts, Hooks, Outcome, Reply, Stage, StagesBuilder, Step};

const NAME: &str = "jail";

struct Jails {
    /// Jails whose bans are checked here, all of `kind`.
    banning: Vec<Arc<Jail>>,
    kind: KeyKind,
    /// Jails counting strikes from the requests that pass here.
    striking: Vec<Arc<Jail>>,
    trusted_proxies: TrustedProxies,
    metrics: Arc<Metrics>,
    security_log: SecurityLog,
    clock: Clock,
    may_wait: bool,
}

/// What every place's stage shares.
pub struct Shared<'a> {
    pub trusted_proxies: &'a TrustedProxies,
    pub metrics: &'a Arc<Metrics>,
    pub security_log: &'a SecurityLog,
    pub clock: &'a Clock,
}

/// Installs the check of `banning`'s bans (all keyed by `kind`) and the strikes of
/// `striking`, when there is either.
pub fn install(
    banning: Vec<Arc<Jail>>,
    kind: KeyKind,
    striking: Vec<Arc<Jail>>,
    shared: &Shared<'_>,
    stages: &mut StagesBuilder,
) {
    if banning.is_empty() && striking.is_empty() {
        return;
    }
    stages.add(Jails {
        may_wait: striking.iter().any(|j| j.may_wait()),
        banning,
        kind,
        striking,
        trusted_proxies: shared.trusted_proxies.clone(),
        metrics: shared.metrics.clone(),
        security_log: shared.security_log.clone(),
        clock: shared.clock.clone(),
    });
}

impl Jails {
    /// Counts the request's final status as a strike in every jail here that counts it.
    async fn count_strikes(&self, facts: &Facts, outcome: &Outcome<'_>) {
        if outcome.refusal.is_some_and(|r| r.stage == NAME) {
            return;
        }
        let Some(status) = outcome.status else {
            return;
        };
        for jail in self.striking.iter().filter(|j| j.counts(status)) {
            let Some(key) = self.key(facts, jail.key()) else {
                continue;
            };
            let Some(ban_ms) = jail
                .strike(&key, self.clock.unix_millis(), &self.metrics)
                .await
            else {
                continue;
            };
            self.metrics.jail_ban(jail.name());
            let event = EventFacts {
                request_id: &facts.request_id,
                client_ip: facts.client_ip,
                route: facts.route.as_deref().map(|r| &*r.name),
            };
            let fields = [
                ("jail", jail.name().to_owned()),
                ("key", key),
                ("ban_seconds", ban_ms.div_ceil(1000).to_string()),
            ];
            self.security_log.policy("jail_ban", &event, &fields);
        }
    }

    /// The request's key of `kind` (see the module docs).
    fn key(&self, facts: &Facts, kind: KeyKind) -> Option<String> {
        match kind {
            KeyKind::ClientIp => client_of(facts.client_ip, &self.trusted_proxies).map(ip_key),
            KeyKind::Consumer => facts
                .principal
                .as_deref()
                .map(Principal::key)
                .map(str::to_owned),
        }
    }
}

impl Stage for Jails {
    fn name(&self) -> &'static str {
        NAME
    }

    fn declares(&self) -> Declared {
        match (self.banning.is_empty(), self.striking.is_empty()) {
            (false, false) => Declared::hooks(Hooks::REQUEST.and(Hooks::DONE)),
            (false, true) => Declared::hooks(Hooks::REQUEST),
            (true, _) => Declared::hooks(Hooks::DONE),
        }
    }

    fn on_request<'a>(&'a self, cx: &'a mut Cx<'_>) -> Step<'a> {
        let facts = cx.facts();
        let checked = check_bans(
            &self.banning,
            || self.key(facts, self.kind),
            self.clock.unix_millis(),
        );
        checked.map_err(Reply::from).into()
    }

    fn on_done<'a>(
        &'a self,
        cx: &'a mut Cx<'_>,
        outcome: &'a Outcome<'_>,
    ) -> Option<BoxFuture<'a, ()>> {
        let counting = self.count_strikes(cx.facts(), outcome);
        match self.may_wait {
            true => Some(Box::pin(counting)),
            false => {
                stage::now(counting);
                None
            }
        }
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
