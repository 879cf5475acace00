//! Turns a validated [`RawConfig`] into a [`Snapshot`]: the router with its compiled
//! routes, and the upstream pools (reused from the registry when unchanged).
//!
//! Validation has already rejected bad values, so errors here are unexpected; they
//! are still reported, never panicked on.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use std::collections::HashMap;
use std::sync::Arc;

use super::{Retained, Snapshot};
use crate::auth::compile::{compile_auth, CompiledAuth};
use crate::auth::RouteAuth;
use crate::config::raw::{HeaderRulesSection, HstsSection, LimitStore, RawConfig, RouteSection};
use crate::edge::forwarded::TrustedProxies;
use crate::edge::hygiene::RequestLimits;
use crate::ratelimit::{InFlightLimit, Policy, PolicyDefinition, RedisStore, RouteLimits};
use crate::routing::{HeaderRules, Route, RouteAction, Router, StaticResponse};
use crate::tls::{Findings, ListenerTls};
use crate::upstream::{Pool, PoolDefinition};

pub fn compile(raw: &RawConfig, retained: &Retained) -> Result<Snapshot, String> {
    let mut found = Findings::default();
    let mut tls = HashMap::new();
    for (name, listener) in &raw.listeners {
        if let Some(section) = &listener.tls {
            let at = format!("listeners.{name}.tls");
            if let Some(loaded) = ListenerTls::load(section, &at, &mut found) {
                tls.insert(name.clone(), Arc::new(loaded));
            }
        }
    }
    if !found.errors.is_empty() {
        return Err(found.errors.join("\n"));
    }
    let https_redirects = raw
        .listeners
        .iter()
        .filter(|(_, l)| l.redirect_https)
        .map(|(name, l)| (name.clone(), l.https_port))
        .collect();
    let mut pools = HashMap::new();
    for (name, section) in &raw.upstreams {
        let def = PoolDefinition::load(section).map_err(|e| format!("upstreams.{name}.{e}"))?;
        let pool = retained
            .pools
            .get_or_build(name, &def, || Pool::build(name, &def))?;
        pools.insert(name.clone(), pool);
    }
    let auth = compile_auth(&raw.auth, &retained.jwks, &retained.metrics)?;
    let mut redis = HashMap::new();
    if let Some(def) = &raw.redis {
        let store = retained
            .redis
            .get_or_build("redis", def, || RedisStore::new(def))?;
        redis.insert("redis".to_owned(), store);
    }
    let mut rate_limits = HashMap::new();
    for (name, limit) in &raw.limits {
        let shared = match limit.store {
            LimitStore::Redis => redis.get("redis").cloned(),
            LimitStore::Local => None,
        };
        let def = PolicyDefinition {
            limit: limit.clone(),
            redis: shared.as_ref().and(raw.redis.clone()),
        };
        let policy = retained
            .policies
            .get_or_build(name, &def, || Policy::build(name, &def, shared))
            .map_err(|e| format!("limits.{name}: {e}"))?;
        rate_limits.insert(name.clone(), policy);
    }
    let all_listeners: Vec<String> = raw.listeners.keys().cloned().collect();
    let mut router = Router::default();
    for r in &raw.routes {
        let route = compile_route(r, &pools, &auth, &rate_limits)?;
        let listeners = r.listeners.as_ref().unwrap_or(&all_listeners);
        router.add(listeners, &r.hosts, Arc::new(route));
    }
    router.finish();
    Ok(Snapshot {
        router,
        limits: RequestLimits {
            max_uri_bytes: usize::try_from(raw.server.max_uri_bytes).unwrap_or(usize::MAX),
            max_header_bytes: usize::try_from(raw.server.max_header_bytes).unwrap_or(usize::MAX),
        },
        trusted_proxies: TrustedProxies::new(raw.server.trusted_proxies.clone()),
        pools,
        auth,
        rate_limits,
        redis,
        tls,
        https_redirects,
        warnings: found.warnings,
    })
}

fn compile_route(
    r: &RouteSection,
    pools: &HashMap<String, Arc<Pool>>,
    auth: &CompiledAuth,
    rate_limits: &HashMap<String, Arc<Policy>>,
) -> Result<Route, String> {
    let err = |what: &str| format!("route {:?}: {what}", r.name);
    let action = match (&r.upstream, &r.respond) {
        (Some(name), _) => RouteAction::Proxy(
            pools
                .get(name)
                .cloned()
                .ok_or_else(|| err("unknown upstream"))?,
        ),
        (None, Some(resp)) => RouteAction::Respond(StaticResponse {
            status: StatusCode::from_u16(resp.status).map_err(|_| err("bad status"))?,
            body: Bytes::from(resp.body.clone()),
            content_type: HeaderValue::from_str(&resp.content_type)
                .map_err(|_| err("bad content_type"))?,
        }),
        (None, None) => return Err(err("no upstream or respond")),
    };
    let methods = r
        .methods
        .iter()
        .map(|m| Method::from_bytes(m.as_bytes()).map_err(|_| err("bad method")))
        .collect::<Result<_, _>>()?;
    let mut route = Route::new(&r.name, &r.path_prefix, methods, action);
    route.strip_prefix = r.strip_prefix;
    route.timeout = r.timeout;
    route.request_headers = header_rules(&r.request_headers).map_err(|e| err(&e))?;
    route.response_headers = header_rules(&r.response_headers).map_err(|e| err(&e))?;
    route.auth = RouteAuth {
        authenticators: r
            .auth
            .iter()
            .map(|name| {
                auth.authenticators
                    .get(name)
                    .cloned()
                    .ok_or_else(|| err("unknown authenticator"))
            })
            .collect::<Result<_, _>>()?,
        require_scopes: r.require_scopes.clone(),
        require_roles: r.require_roles.clone(),
        keep_credentials: r.keep_credentials,
    };
    let policies = r
        .limits
        .iter()
        .map(|name| {
            rate_limits
                .get(name)
                .cloned()
                .ok_or_else(|| err("unknown limit"))
        })
        .collect::<Result<_, _>>()?;
    route.limits = RouteLimits::new(policies, r.max_in_flight.map(InFlightLimit::new));
    route.hsts = r.hsts.as_ref().map(hsts);
    Ok(route)
}

fn hsts(h: &HstsSection) -> HeaderValue {
    let mut value = format!("max-age={}", h.max_age.as_secs());
    if h.include_subdomains {
        value.push_str("; includeSubDomains");
    }
    if h.preload {
        value.push_str("; preload");
    }
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("max-age=0"))
}

fn header_rules(raw: &HeaderRulesSection) -> Result<HeaderRules, String> {
    let name = |n: &str| {
        HeaderName::from_bytes(n.as_bytes()).map_err(|_| format!("bad header name {n:?}"))
    };
    let set = raw
        .set
        .iter()
        .map(|(n, v)| {
            let value =
                HeaderValue::from_str(v).map_err(|_| format!("bad header value for {n:?}"))?;
            Ok((name(n)?, value))
        })
        .collect::<Result<_, String>>()?;
    let remove = raw
        .remove
        .iter()
        .map(|n| name(n))
        .collect::<Result<_, _>>()?;
    Ok(HeaderRules { set, remove })
}
