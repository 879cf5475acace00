//! Authentication and authorization of a route as a stage (the rules themselves are
//! `auth`'s): the route's authenticators, its `require_scopes` and `require_roles`,
//! and what the upstream is told.
//!
//! Request: the first authenticator that accepts the credential gives the principal
//! (refusals: 401 with the challenges, 403 for a missing scope or role; a refused
//! principal is still recorded, for jails and the log). Upstream, on every route,
//! public ones too: every identity header any authenticator of the config may set is
//! removed (so none can be forged), the principal's are set, and the credential is
//! stripped unless `keep_credentials`.
//!
//! A route whose authenticators never wait (API keys, client certificates, JWTs with
//! keys from files) authenticates without a boxed future; one with a fetched key set
//! may wait for a refresh, and its check is boxed.

use http::HeaderName;
use pingora::http::RequestHeader;
use std::sync::Arc;

use crate::auth::{AuthError, Caller, RouteAuth};
use crate::observability::SecurityLog;
use crate::stage::{Cx, Declared, Flow, Hooks, Stage, StagesBuilder, Step};

struct Authenticate {
    rules: RouteAuth,
    /// Every header an authenticator of the config may set.
    identity_headers: Arc<[HeaderName]>,
    security_log: SecurityLog,
    route: Arc<str>,
    may_wait: bool,
}

/// What the stage of every route shares.
pub struct Shared<'a> {
    pub identity_headers: &'a Arc<[HeaderName]>,
    pub security_log: &'a SecurityLog,
}

pub fn install(rules: RouteAuth, route: &str, shared: &Shared<'_>, stages: &mut StagesBuilder) {
    stages.add(Authenticate {
        may_wait: rules.authenticators.iter().any(|a| a.may_wait()),
        rules,
        identity_headers: shared.identity_headers.clone(),
        security_log: shared.security_log.clone(),
        route: route.into(),
    });
}

impl Authenticate {
    async fn authenticate(&self, cx: &mut Cx<'_>) -> Flow {
        let facts = cx.facts();
        let caller = Caller {
            request_id: &facts.request_id,
            client_ip: facts.client_ip,
            route: &self.route,
        };
        let checked = self
            .rules
            .check(cx.req, facts.client_cert(), &caller, &self.security_log)
            .await;
        match checked {
            Ok(Some(principal)) => cx.set_principal(principal),
            Ok(None) => {}
            Err(e) => {
                // A refused consumer is still who the request was (jails, the log).
                if let AuthError::Forbidden { principal, .. } = &e {
                    cx.set_principal(principal.clone());
                }
                return Err(e.into());
            }
        }
        Ok(())
    }
}

impl Stage for Authenticate {
    fn name(&self) -> &'static str {
        "auth"
    }

    fn declares(&self) -> Declared {
        match self.rules.authenticators.is_empty() {
            true => Declared::hooks(Hooks::UPSTREAM),
            false => Declared {
                // The principal's id header (claims named in `claim_headers` are rarer).
                upstream_headers: 1,
                ..Declared::hooks(Hooks::REQUEST.and(Hooks::UPSTREAM))
            },
        }
    }

    fn on_request<'a>(&'a self, cx: &'a mut Cx<'_>) -> Step<'a> {
        match self.may_wait {
            true => Step::Wait(Box::pin(self.authenticate(cx))),
            false => Step::now(self.authenticate(cx)),
        }
    }

    fn on_upstream(&self, cx: &mut Cx<'_>, upstream: &mut RequestHeader) -> pingora::Result<()> {
        let principal = cx.facts().principal.as_deref();
        self.rules
            .prepare_upstream(&self.identity_headers, principal, upstream)
    }
}
