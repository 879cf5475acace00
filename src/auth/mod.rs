//! Authentication and authorization, run in `request_filter` after routing.
//!
//! A route lists authenticators (`[auth.NAME]`: `jwt`, `api_key` or `mtls`); the first
//! that accepts the request's credential wins, none listed means a public route. Then the
//! route's `require_scopes` / `require_roles` are checked against the principal.
//! Failures answer 401 with `WWW-Authenticate` (RFC 6750) or 403, and every decision
//! that rejects is written to the security log and counted; tokens and keys never
//! appear in either.

mod api_key;
pub mod compile;
pub mod credential;
pub mod jwks;
mod jwt;
mod keys;
mod mtls;
pub mod parsed_keys;

pub use api_key::hash_key;

use http::{header, HeaderName, HeaderValue, StatusCode};
use pingora::http::RequestHeader;
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use crate::base::Reply;
use crate::observability::{SecurityEvent, SecurityLog};
use crate::tls::ClientCert;

/// Who a request is, once an authenticator accepted it.
#[derive(Debug)]
pub struct Principal {
    pub authenticator: Arc<str>,
    /// Consumer id or the token's `sub` (the configured id claim).
    pub id: String,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
    pub key_id: Option<String>,
    /// Identity headers for the upstream.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The token's claims (JWT only), e.g. for claim-keyed rate limits.
    pub claims: Option<Map<String, Value>>,
    /// [`Principal::key`], made the first time it is asked for (a cached token's
    /// principal makes it once).
    pub(crate) key: OnceLock<String>,
}

impl Principal {
    /// The consumer as jails and anomaly detection name it: `authenticator:id` (two
    /// authenticators may know different consumers by one id).
    pub fn key(&self) -> &str {
        self.key
            .get_or_init(|| format!("{}:{}", self.authenticator, self.id))
    }
}

/// Why a credential was refused; the security log's and metrics' `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    MissingCredentials,
    Repeated,
    Malformed,
    TokenTooLarge,
    AlgorithmNotAllowed,
    UnknownCritical,
    UnknownKid,
    MissingKid,
    BadSignature,
    Expired,
    NotYetValid,
    BadIssuer,
    BadAudience,
    MissingExp,
    UnknownKey,
    UnknownCertificate,
    DisabledConsumer,
    MissingScope,
    MissingRole,
    Accepted,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MissingCredentials => "missing_credentials",
            Reason::Repeated => "repeated_credentials",
            Reason::Malformed => "malformed",
            Reason::TokenTooLarge => "token_too_large",
            Reason::AlgorithmNotAllowed => "algorithm_not_allowed",
            Reason::UnknownCritical => "unknown_crit",
            Reason::UnknownKid => "unknown_kid",
            Reason::MissingKid => "missing_kid",
            Reason::BadSignature => "bad_signature",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::BadIssuer => "bad_issuer",
            Reason::BadAudience => "bad_audience",
            Reason::MissingExp => "missing_exp",
            Reason::UnknownKey => "unknown_key",
            Reason::UnknownCertificate => "unknown_certificate",
            Reason::DisabledConsumer => "disabled_consumer",
            Reason::MissingScope => "missing_scope",
            Reason::MissingRole => "missing_role",
            Reason::Accepted => "ok",
        }
    }

    /// What the client is told: why, never the credential.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::MissingCredentials => "no credentials were presented",
            Reason::Repeated => "the credential is given more than once",
            Reason::Malformed => "the token is malformed",
            Reason::TokenTooLarge => "the token is too large",
            Reason::AlgorithmNotAllowed => "the token's algorithm is not accepted for its key",
            Reason::UnknownCritical => {
                "the token has critical header parameters that are not understood"
            }
            Reason::UnknownKid => "the token's key id is unknown",
            Reason::MissingKid => "the token names no key id",
            Reason::BadSignature => "the token's signature is invalid",
            Reason::Expired => "the token has expired",
            Reason::NotYetValid => "the token is not valid yet",
            Reason::BadIssuer => "the token's issuer is not accepted",
            Reason::BadAudience => "the token's audience is not accepted",
            Reason::MissingExp => "the token has no expiry",
            Reason::UnknownKey => "the API key is not valid",
            Reason::UnknownCertificate => "the client certificate is not accepted here",
            Reason::DisabledConsumer => "the credential's consumer is disabled",
            Reason::MissingScope => "a required scope is missing",
            Reason::MissingRole => "a required role is missing",
            Reason::Accepted => "accepted",
        }
    }
}

/// One authenticator's answer.
pub enum Verdict {
    Accepted(Arc<Principal>),
    /// No credential of this authenticator's kind in the request.
    Absent,
    Rejected {
        reason: Reason,
        principal: Option<String>,
        key_id: Option<String>,
    },
}

impl Verdict {
    fn rejected(reason: Reason) -> Self {
        Self::rejected_with(reason, None, None)
    }

    fn rejected_with(reason: Reason, principal: Option<&str>, key_id: Option<&str>) -> Self {
        Verdict::Rejected {
            reason,
            principal: principal.map(str::to_owned),
            key_id: key_id.map(str::to_owned),
        }
    }
}

pub enum Kind {
    Jwt(Box<jwt::JwtVerifier>),
    ApiKey(api_key::ApiKeys),
    Mtls(mtls::CertConsumers),
}

/// `[auth.NAME]`, compiled.
pub struct Authenticator {
    pub name: Arc<str>,
    /// Where the credential is in the request; `None` for `mtls`, whose credential is
    /// the connection's client certificate.
    pub source: Option<credential::Source>,
    pub log_accepts: bool,
    pub kind: Kind,
}

impl Authenticator {
    async fn check(&self, req: &RequestHeader, client_cert: Option<&ClientCert>) -> Verdict {
        let credential = match self.source.as_ref().map(|s| credential::extract(s, req)) {
            Some(Err(credential::Repeated)) => return Verdict::rejected(Reason::Repeated),
            Some(Ok(found)) => found,
            None => None,
        };
        match (&self.kind, credential, client_cert) {
            (Kind::Jwt(jwt), Some(token), _) => jwt.verify(&token).await,
            (Kind::ApiKey(keys), Some(key), _) => keys.verify(&key),
            (Kind::Mtls(consumers), _, Some(cert)) => consumers.verify(cert),
            _ => Verdict::Absent,
        }
    }

    /// Whether checking a credential may wait on I/O: a JWT whose key set is fetched
    /// (an unknown key id asks for a refresh first).
    pub fn may_wait(&self) -> bool {
        matches!(&self.kind, Kind::Jwt(jwt) if matches!(jwt.keys, jwt::KeySource::Remote(_)))
    }

    /// This authenticator's `WWW-Authenticate` challenge.
    fn challenge(&self, rejected: Option<Reason>) -> String {
        match (&self.kind, rejected) {
            (Kind::Jwt(_), None) => "Bearer realm=\"tollgate\"".to_owned(),
            (Kind::Jwt(_), Some(r)) => format!(
                "Bearer realm=\"tollgate\", error=\"invalid_token\", error_description=\"{}\"",
                r.describe()
            ),
            (Kind::ApiKey(_), _) => "ApiKey realm=\"tollgate\"".to_owned(),
            // No HTTP scheme exists for TLS client certificates; this names what is needed.
            (Kind::Mtls(_), _) => "ClientCertificate realm=\"tollgate\"".to_owned(),
        }
    }
}

/// Why a request was refused; knows its status and challenge.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{}", .reason.describe())]
    Unauthenticated { reason: Reason, challenge: String },
    #[error("{detail}")]
    Forbidden {
        detail: String,
        challenge: Option<String>,
        /// Who was refused: authenticated, but not allowed here.
        principal: Arc<Principal>,
    },
}

impl From<AuthError> for Reply {
    fn from(e: AuthError) -> Self {
        let detail = e.to_string();
        match e {
            AuthError::Unauthenticated { challenge, .. } => {
                Reply::new(StatusCode::UNAUTHORIZED, detail)
                    .with_header(header::WWW_AUTHENTICATE, challenge)
            }
            AuthError::Forbidden { challenge, .. } => {
                let reply = Reply::new(StatusCode::FORBIDDEN, detail);
                match challenge {
                    Some(c) => reply.with_header(header::WWW_AUTHENTICATE, c),
                    None => reply,
                }
            }
        }
    }
}

/// Who is asking, as the security log names the request.
pub struct Caller<'a> {
    pub request_id: &'a str,
    pub client_ip: IpAddr,
    pub route: &'a str,
}

/// A route's authentication and authorization rules.
#[derive(Default)]
pub struct RouteAuth {
    pub authenticators: Vec<Arc<Authenticator>>,
    pub require_scopes: Vec<String>,
    pub require_roles: Vec<String>,
    pub keep_credentials: bool,
}

impl RouteAuth {
    /// The principal (`None` on a public route), or why the request is refused.
    pub async fn check(
        &self,
        req: &RequestHeader,
        client_cert: Option<&ClientCert>,
        caller: &Caller<'_>,
        log: &SecurityLog,
    ) -> Result<Option<Arc<Principal>>, AuthError> {
        if self.authenticators.is_empty() {
            return Ok(None);
        }
        let mut first_rejection = None;
        for authenticator in &self.authenticators {
            match authenticator.check(req, client_cert).await {
                Verdict::Accepted(principal) => {
                    return self
                        .authorize(authenticator, principal, caller, log)
                        .map(Some);
                }
                Verdict::Absent => {}
                Verdict::Rejected {
                    reason,
                    principal,
                    key_id,
                } => {
                    log.record(&event(
                        caller,
                        &authenticator.name,
                        "reject",
                        reason,
                        principal.as_deref(),
                        key_id.as_deref(),
                    ));
                    first_rejection.get_or_insert((authenticator, reason));
                }
            }
        }
        let reason = match first_rejection {
            Some((_, reason)) => reason,
            None => {
                log.record(&event(
                    caller,
                    "",
                    "reject",
                    Reason::MissingCredentials,
                    None,
                    None,
                ));
                Reason::MissingCredentials
            }
        };
        let challenge = self
            .authenticators
            .iter()
            .map(|a| {
                let rejected = first_rejection
                    .filter(|(r, _)| Arc::ptr_eq(r, a))
                    .map(|(_, why)| why);
                a.challenge(rejected)
            })
            .collect::<Vec<_>>()
            .join(", ");
        Err(AuthError::Unauthenticated { reason, challenge })
    }

    fn authorize(
        &self,
        authenticator: &Authenticator,
        principal: Arc<Principal>,
        caller: &Caller<'_>,
        log: &SecurityLog,
    ) -> Result<Arc<Principal>, AuthError> {
        let missing_scopes: Vec<&str> = missing(&self.require_scopes, &principal.scopes);
        let missing_roles: Vec<&str> = missing(&self.require_roles, &principal.roles);
        let forbidden = match (missing_scopes.is_empty(), missing_roles.is_empty()) {
            (false, _) => Some((
                Reason::MissingScope,
                format!("missing scope: {}", missing_scopes.join(" ")),
            )),
            (true, false) => Some((
                Reason::MissingRole,
                format!("missing role: {}", missing_roles.join(" ")),
            )),
            (true, true) => None,
        };
        let id = Some(principal.id.as_str());
        let key_id = principal.key_id.as_deref();
        if let Some((reason, detail)) = forbidden {
            log.record(&event(
                caller,
                &authenticator.name,
                "forbid",
                reason,
                id,
                key_id,
            ));
            let challenge = match (&authenticator.kind, reason) {
                (Kind::Jwt(_), Reason::MissingScope) => Some(format!(
                    "Bearer realm=\"tollgate\", error=\"insufficient_scope\", scope=\"{}\"",
                    self.require_scopes.join(" ")
                )),
                _ => None,
            };
            return Err(AuthError::Forbidden {
                detail,
                challenge,
                principal,
            });
        }
        let accepted = event(
            caller,
            &authenticator.name,
            "accept",
            Reason::Accepted,
            id,
            key_id,
        );
        if authenticator.log_accepts {
            log.record(&accepted);
        } else {
            log.count(&accepted);
        }
        Ok(principal)
    }
}

impl RouteAuth {
    /// What the upstream sees: every identity header a client may have forged is
    /// removed (on every route, public ones too), the principal's are set, and the
    /// credential is stripped unless the route keeps it.
    pub fn prepare_upstream(
        &self,
        identity_headers: &[HeaderName],
        principal: Option<&Principal>,
        req: &mut RequestHeader,
    ) -> pingora::Result<()> {
        crate::base::headers::remove_present(req, identity_headers.iter().map(HeaderName::as_str));
        if !self.keep_credentials {
            for source in self.authenticators.iter().filter_map(|a| a.source.as_ref()) {
                credential::strip(source, req)?;
            }
        }
        for (name, value) in principal.map_or(&[][..], |p| &p.headers[..]) {
            req.insert_header(name.clone(), value.clone())?;
        }
        Ok(())
    }
}

fn missing<'a>(required: &'a [String], held: &[String]) -> Vec<&'a str> {
    required
        .iter()
        .filter(|r| !held.contains(r))
        .map(String::as_str)
        .collect()
}

fn event<'a>(
    caller: &Caller<'a>,
    authenticator: &'a str,
    outcome: &'static str,
    reason: Reason,
    principal: Option<&'a str>,
    key_id: Option<&'a str>,
) -> SecurityEvent<'a> {
    SecurityEvent {
        request_id: caller.request_id,
        client_ip: caller.client_ip,
        route: caller.route,
        authenticator,
        outcome,
        reason: reason.as_str(),
        principal,
        key_id,
    }
}
