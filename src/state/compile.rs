//! Turns a validated [`RawConfig`] into a [`Snapshot`]: TLS certificates, upstream
//! pools (around targets reused from their registry when unchanged), authenticators,
//! rate-limit policies (around buckets reused likewise), jails (likewise), the stages
//! of every listener and route (`policy::build`), and the router with its routes.
//!
//! The one gate of config errors: what only compiling can find (a key file that does
//! not parse, a certificate that expired, a schema that does not compile) is reported
//! with the errors of reading and validating the file, every problem at once, each
//! with its TOML path. Nothing here panics on bad input.

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{Retained, Snapshot};
use crate::acme;
use crate::auth::compile::compile_auth;
use crate::base::background::Making;
use crate::base::registry::Reusable;
use crate::config::location::{Problems, TomlPath};
use crate::config::raw::{self, LimitStore, RawConfig, RouteSection, ServerSection};
use crate::config::source::ConfigSource;
use crate::config::{ConfigErrors, LoadedConfig};
use crate::connection::{ClientLimits, Lingering};
use crate::edge::forwarded::{ClientIpHeader, TrustedProxies};
use crate::edge::hygiene::{RequestLimits, Underscores};
use crate::edge::path::{self, DoubleEncoding, EscapedSlashes, PathRules};
use crate::jail::{Jail, JailIdentity, JailState, Jails, KeyKind};
use crate::policy::build::{Builder, Parts};
use crate::ratelimit::{BucketIdentity, Buckets, Policy, RedisStore};
use crate::routing::{ProxyTo, Route, RouteAction, Router, StaticResponse};
use crate::tls::{Findings, ListenerTls};
use crate::upstream::{Pool, Targets, TargetsDefinition};

/// The snapshot of `loaded`, or every error of the file: those found reading and
/// validating it and those only compiling finds (a key file, a certificate, a
/// schema), all at once. Parts with errors of the first kind are not compiled (their
/// errors would only repeat), the rest is.
pub fn compile(loaded: &LoadedConfig, retained: &Retained) -> Result<Snapshot, ConfigErrors> {
    let raw = usable_parts(loaded);
    match compile_raw(loaded, &raw, retained) {
        Ok(snapshot) if loaded.is_valid() => Ok(snapshot),
        Ok(_) => Err(loaded.errors(Problems::new())),
        Err(problems) => Err(loaded.errors(problems)),
    }
}

/// `loaded`'s config without the named sections that have errors.
fn usable_parts(loaded: &LoadedConfig) -> Cow<'_, RawConfig> {
    if loaded.is_valid() {
        return Cow::Borrowed(&loaded.raw);
    }
    let mut raw = loaded.raw.clone();
    let root = TomlPath::root();
    let fine = |section: &str, name: &String| !loaded.has_errors_at(&root.key(section).key(name));
    raw.listeners.retain(|name, _| fine("listeners", name));
    raw.upstreams.retain(|name, _| fine("upstreams", name));
    raw.auth.retain(|name, _| fine("auth", name));
    raw.limits.retain(|name, _| fine("limits", name));
    raw.jails.retain(|name, _| fine("jails", name));
    raw.ip_lists.retain(|name, _| fine("ip_lists", name));
    if loaded.has_errors_at(&root.key("redis")) {
        raw.redis = None;
    }
    Cow::Owned(raw)
}

fn compile_raw(
    loaded: &LoadedConfig,
    raw: &RawConfig,
    retained: &Retained,
) -> Result<Snapshot, Problems> {
    let root = TomlPath::root();
    let mut found = Findings::default();
    let mut tls = HashMap::new();
    for (name, listener) in &raw.listeners {
        let at = root.key("listeners").key(name);
        if let Some(section) = &listener.tls {
            if let Some(loaded) = ListenerTls::load(section, &at.key("tls"), &mut found) {
                tls.insert(name.clone(), Arc::new(loaded));
            }
        }
    }
    let mut problems = found.errors;
    let mut pools = HashMap::new();
    for (name, section) in &raw.upstreams {
        let at = root.key("upstreams").key(name);
        let built = TargetsDefinition::load(name, section, &raw.server.resolver)
            .map_err(|e| (at.key("tls"), e))
            .and_then(|def| {
                retained
                    .targets
                    .get_or_build(name, &def, || Targets::build(&def))
                    .map_err(|e| (at.clone(), e))
            });
        match built {
            Ok(targets) => {
                pools.insert(
                    name.clone(),
                    Arc::new(Pool::new(section, targets, retained.clock.clone())),
                );
            }
            Err(problem) => problems.push(problem),
        }
    }
    let auth = compile_auth(&raw.auth, &retained.jwks, &retained.metrics, &mut problems);
    let mut redis = HashMap::new();
    if let Some(def) = &raw.redis {
        match retained
            .redis
            .get_or_build("redis", def, || RedisStore::new(def))
        {
            Ok(store) => {
                redis.insert("redis".to_owned(), store);
            }
            Err(e) => problems.push((root.key("redis").key("url"), e)),
        }
    }
    let mut rate_limits = HashMap::new();
    for (name, limit) in &raw.limits {
        let shared = match limit.store {
            LimitStore::Redis => redis.get("redis").cloned(),
            LimitStore::Local => None,
        };
        let buckets = BucketIdentity::of(name, limit).and_then(|identity| {
            retained
                .buckets
                .get_or_build(name, &identity, || Ok(Buckets::new(identity.clone())))
        });
        match buckets {
            Ok(buckets) => {
                let policy = Policy::new(limit, buckets, shared);
                rate_limits.insert(name.clone(), Arc::new(policy));
            }
            Err(e) => problems.push((root.key("limits").key(name).key("key"), e)),
        }
    }
    let jails = compile_jails(raw, retained, redis.get("redis"), &mut problems);
    let s = &raw.server;
    let client_ip_header = match s.client_ip_header {
        raw::ClientIpHeader::XForwardedFor => ClientIpHeader::XForwardedFor,
        raw::ClientIpHeader::Forwarded => ClientIpHeader::Forwarded,
        raw::ClientIpHeader::XRealIp => ClientIpHeader::XRealIp,
        raw::ClientIpHeader::CfConnectingIp => ClientIpHeader::CfConnectingIp,
    };
    let trusted_proxies = TrustedProxies::new(s.trusted_proxies.clone(), client_ip_header);
    let making = Making::new(&retained.background);
    let acme_storage = acme::storage(raw, &mut problems, &mut found.warnings);
    let parts = Parts {
        metrics: &retained.metrics,
        security_log: &retained.security_log,
        trusted_proxies: &trusted_proxies,
        auth: &auth,
        rate_limits: &rate_limits,
        jails: &jails,
        clock: &retained.clock,
        background: &making,
        acme_tokens: &retained.acme.tokens,
        acme_storage: acme_storage.as_ref(),
        stats: &retained.stats,
        detection: &retained.anomaly,
    };
    let stages = Builder::new(raw, &parts, &mut problems);
    let listener_stages = raw
        .listeners
        .iter()
        .map(|(name, listener)| (name.clone(), Arc::new(stages.listener_stages(listener))))
        .collect();
    let all_listeners: Vec<String> = raw.listeners.keys().cloned().collect();
    let mut router = Router::new(s.path_case == raw::PathCase::Insensitive);
    for (i, r) in raw.routes.iter().enumerate() {
        let at = root.key("routes").index(i);
        if loaded.has_errors_at(&at) {
            continue;
        }
        let pool = r.upstream.as_ref().and_then(|name| pools.get(name));
        let Some(route_stages) = stages.route_stages(r, pool, &at, &mut problems) else {
            continue;
        };
        let Some(route) = compile_route(r, &at, pool, route_stages, &mut problems) else {
            continue;
        };
        let listeners = r.listeners.as_ref().unwrap_or(&all_listeners);
        router.add(listeners, &r.hosts, Arc::new(route));
    }
    router.finish();
    let acme = acme::plan(
        raw,
        acme_storage.as_ref(),
        &retained.acme,
        &retained.metrics,
        &retained.clock,
        &making,
        &mut problems,
    );
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Snapshot {
        router,
        request_limits: RequestLimits {
            max_uri_bytes: usize::try_from(s.max_uri_bytes).unwrap_or(usize::MAX),
            max_header_bytes: usize::try_from(s.max_header_bytes).unwrap_or(usize::MAX),
            underscore_headers: match s.underscore_headers {
                raw::UnderscoreHeaders::Pass => Underscores::Pass,
                raw::UnderscoreHeaders::Drop => Underscores::Drop,
                raw::UnderscoreHeaders::Reject => Underscores::Reject,
            },
        },
        path_rules: path_rules(&raw.server),
        listener_stages,
        server_stages: Arc::new(stages.server_stages()),
        unrouted_stages: stages.unrouted_stages(),
        client_limits: Arc::new(ClientLimits {
            header_timeout: s.header_timeout,
            body_min_rate: s.body_min_rate,
            max_connections_per_ip: s.max_connections_per_ip,
            keepalive_timeout: Duration::from_secs(s.keepalive_timeout.as_secs().max(1)),
            exempt: trusted_proxies.clone(),
            lingering: Lingering {
                time: s.lingering_time,
                bytes: s.lingering_bytes,
            },
        }),
        trusted_proxies,
        request_buffer_memory: s.request_buffer_memory,
        keepalive_timeout_secs: s.keepalive_timeout.as_secs().max(1),
        source: Arc::new(ConfigSource::of(loaded)),
        jails,
        pools,
        auth,
        rate_limits,
        redis,
        background: making.finish(),
        tls,
        acme,
        anomaly: raw.anomaly.is_some(),
        warnings: found.warnings,
    })
}

/// The jails, around state reused from the registry while a jail is unchanged.
fn compile_jails(
    raw: &RawConfig,
    retained: &Retained,
    redis: Option<&Arc<RedisStore>>,
    problems: &mut Problems,
) -> Jails {
    let mut jails = Jails::default();
    for (name, section) in &raw.jails {
        let shared = redis.filter(|_| section.store == LimitStore::Redis);
        let identity = JailIdentity {
            name: name.clone(),
            key: match section.key {
                raw::JailKey::ClientIp => KeyKind::ClientIp,
                raw::JailKey::Consumer => KeyKind::Consumer,
            },
            redis: shared.map(|r| r.definition().clone()),
        };
        let built = retained.jails.get_or_build(name, &identity, || {
            Ok(JailState::new(identity.clone(), shared.cloned()))
        });
        match built {
            Ok(state) => {
                jails
                    .by_name
                    .insert(name.clone(), Arc::new(Jail::new(state, section)));
            }
            Err(e) => problems.push((TomlPath::root().key("jails").key(name), e)),
        }
    }
    jails
}

/// The route of `r` with its `stages` (`pool`: its upstream's), or `None` with its
/// problems recorded.
fn compile_route(
    r: &RouteSection,
    at: &TomlPath,
    pool: Option<&Arc<Pool>>,
    stages: crate::stage::Stages,
    problems: &mut Problems,
) -> Option<Route> {
    let before = problems.len();
    if let Err(why) = normalized_prefix(&r.path_prefix) {
        problems.push((at.key("path_prefix"), why));
    }
    let action = match (pool, &r.respond) {
        (Some(pool), _) => Some(RouteAction::Proxy(ProxyTo {
            pool: pool.clone(),
            timeout: r.timeout,
            idempotent: r.idempotent,
        })),
        (None, Some(resp)) => StatusCode::from_u16(resp.status)
            .ok()
            .zip(HeaderValue::from_str(&resp.content_type).ok())
            .map(|(status, content_type)| {
                RouteAction::Respond(StaticResponse {
                    status,
                    body: Bytes::from(resp.body.clone()),
                    content_type,
                })
            }),
        (None, None) => None,
    };
    let methods: Vec<Method> = r
        .methods
        .iter()
        .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
        .collect();
    // Validation has refused unknown names and methods; a part that failed to
    // compile has its own problem already, so a route that lost one is only left out.
    let complete = methods.len() == r.methods.len() && problems.len() == before;
    let action = action.filter(|_| complete)?;
    Some(Route::new(&r.name, &r.path_prefix, methods, action, stages))
}

/// How paths are normalized, as `[server]` says.
fn path_rules(server: &ServerSection) -> PathRules {
    PathRules {
        escaped_slashes: match server.escaped_slashes {
            raw::EscapedSlashes::Reject => EscapedSlashes::Reject,
            raw::EscapedSlashes::Decode => EscapedSlashes::Decode,
            raw::EscapedSlashes::Keep => EscapedSlashes::Keep,
        },
        merge_slashes: server.merge_slashes,
        double_encoding: match server.double_encoding {
            raw::DoubleEncoding::Reject => DoubleEncoding::Reject,
            raw::DoubleEncoding::Keep => DoubleEncoding::Keep,
        },
    }
}

/// A route prefix is matched against normalized paths, so it must be written as one
/// (`/admin`, not `/%61dmin` or `//admin`), without `;parameters`.
fn normalized_prefix(prefix: &str) -> Result<(), String> {
    let normal = path::normalize(prefix.as_bytes(), &PathRules::default())
        .map_err(|e| format!("{e}; a prefix is matched against normalized paths"))?;
    if prefix.contains(';') {
        return Err("a prefix cannot hold ';' parameters (they are ignored when matching)".into());
    }
    if normal != prefix {
        return Err(format!("write it as it is matched, normalized: {normal:?}"));
    }
    Ok(())
}
