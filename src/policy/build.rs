//! Builds the stages of a snapshot from config sections: the only code that knows
//! every stage. Each builder destructures its section exhaustively, so a config field
//! that nothing installs does not compile. Problems (an unknown list name, a header
//! that does not parse, ...) are reported with their TOML path, like validation
//! errors.
//!
//! The order, fixed here, is the order every hook runs in:
//!
//! - every listener: on plain listeners with `[acme]`, the HTTP-01 answer first (a
//!   CA's validation passes no deny list, redirect or route); the server-wide head
//!   (the stats count, anomaly detection, tracing, the forwarded headers;
//!   `[server] deny_from`), the listener's own
//!   stages (`redirect_https`), then the server-wide tail (bans of client-IP jails;
//!   strikes of `[server] jails`);
//! - every route, after its listener's: IP lists (`allow_from`, `deny_from`), CORS
//!   (preflights answered before authentication), the body limit on a declared length,
//!   deprecation (410 past the sunset), request validation (media type; the body once
//!   whole), authentication and authorization, jails (bans of consumer jails; the
//!   route's strikes), the WAF (after authentication: its exclusions may name
//!   consumers), concurrency and rate limits, `strip_prefix`, security headers,
//!   then the header rules, last, so that an operator's `response_headers` win.
//!
//! So the cheap refusals that need no credential come first, a banned consumer takes
//! no tokens, and a refused request costs no upstream.

use http::HeaderName;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::ip_list::{self, IpLists};
use super::{
    authenticate, body_limit, cors, deprecation, forwarded, header_rules, https_redirect, jails,
    limits, request_validation, security_headers, strip_prefix, waf,
};
use crate::acme::{self, HttpTokens};
use crate::anomaly::{self, Detection, Detector};
use crate::auth::compile::CompiledAuth;
use crate::auth::RouteAuth;
use crate::base::background::Making;
use crate::base::clock::Clock;
use crate::config::location::{Problems, TomlPath};
use crate::config::raw::{
    AnomalySection, ListenerSection, RawConfig, RouteSection, ServerSection, WafSection,
};
use crate::edge::forwarded::TrustedProxies;
use crate::jail::{Jail, Jails, KeyKind};
use crate::observability::{Metrics, SecurityLog};
use crate::ratelimit::{InFlightLimit, Policy, RouteLimits};
use crate::stage::{Stages, StagesBuilder};
use crate::stats::{self, Stats};
use crate::tracing;
use crate::upstream::Pool;

/// What stages are built from besides their sections: the snapshot's compiled
/// authenticators, rate-limit policies and jails, and the process's logs and metrics.
pub struct Parts<'a> {
    pub metrics: &'a Arc<Metrics>,
    pub security_log: &'a SecurityLog,
    pub trusted_proxies: &'a TrustedProxies,
    pub auth: &'a CompiledAuth,
    pub rate_limits: &'a HashMap<String, Arc<Policy>>,
    pub jails: &'a Jails,
    pub clock: &'a Clock,
    /// Where stages ask for background chores.
    pub background: &'a Making<'a>,
    /// The HTTP-01 challenges in flight, and the storage of `[acme]` (when this
    /// config orders certificates; on a fleet, other nodes publish theirs there).
    pub acme_tokens: &'a Arc<HttpTokens>,
    pub acme_storage: Option<&'a Arc<acme::Storage>>,
    /// Where the stats stage counts every request.
    pub stats: &'a Arc<Stats>,
    /// Where the anomaly stage observes every request (with `[anomaly]`).
    pub detection: &'a Arc<Detection>,
}

/// What the stages of one config share: its lists, server-wide defaults, and the
/// server-wide stages.
pub struct Builder<'a> {
    parts: &'a Parts<'a>,
    ip_lists: IpLists,
    identity_headers: Arc<[HeaderName]>,
    max_body: u64,
    request_buffer: u64,
    /// Jails banning by consumer: checked on every route that authenticates.
    consumer_jails: Vec<Arc<Jail>>,
    server_head: Stages,
    server_tail: Stages,
    /// `[waf.NAME]` sections, installed on the routes that name them.
    waf: BTreeMap<String, WafSection>,
}

impl<'a> Builder<'a> {
    /// Loads what stages share (`[ip_lists]`) and builds the server-wide stages.
    pub fn new(raw: &RawConfig, parts: &'a Parts<'a>, problems: &mut Problems) -> Self {
        let mut builder = Self {
            parts,
            ip_lists: ip_list::load_all(&raw.ip_lists, problems),
            identity_headers: parts.auth.identity_headers.iter().cloned().collect(),
            max_body: raw.server.max_body,
            request_buffer: raw.server.request_buffer,
            consumer_jails: parts.jails.of_kind(KeyKind::Consumer),
            server_head: Stages::default(),
            server_tail: Stages::default(),
            waf: raw.waf.clone(),
        };
        builder.build_server_stages(raw, problems);
        waf::check_rules(&raw.waf, problems);
        builder
    }

    fn build_server_stages(&mut self, raw: &RawConfig, problems: &mut Problems) {
        let server = &raw.server;
        let ServerSection {
            // Process settings (`bootstrap`), request limits and path rules (`state`).
            workers: _,
            pid_file: _,
            upgrade_socket: _,
            grace_period: _,
            drain_delay: _,
            shutdown_timeout: _,
            max_uri_bytes: _,
            max_header_bytes: _,
            trusted_proxies: _,
            client_ip_header: _,
            escaped_slashes: _,
            merge_slashes: _,
            double_encoding: _,
            underscore_headers: _,
            path_case: _,
            upstream_keepalive_pool: _,
            access_log: _,
            security_log: _,
            process_log: _,
            log_format: _,
            // Stages; `max_body` and `request_buffer` are the routes' defaults
            // (`route_stages`).
            deny_from,
            max_body: _,
            request_buffer: _,
            jails: striking,
            // The proxy's bound on held bodies and client idle timeout (`state`).
            request_buffer_memory: _,
            keepalive_timeout: _,
            // Client connection limits (`connection`).
            header_timeout: _,
            // Resolving upstream names (`upstream`).
            resolver: _,
            body_min_rate: _,
            lingering_time: _,
            lingering_bytes: _,
            max_connections_per_ip: _,
        } = server;
        let at = TomlPath::root().key("server");
        let mut head = StagesBuilder::default();
        let (metrics, background) = (self.parts.metrics, self.parts.background);
        let deprecated = (raw.routes.iter())
            .filter(|r| r.deprecation.is_some())
            .map(|r| Arc::from(r.name.as_str()))
            .collect();
        stats::install(self.parts.stats, deprecated, self.parts.clock, &mut head);
        if let Some(section) = &raw.anomaly {
            anomaly::install(section, self.anomaly_parts(section), &mut head);
        }
        tracing::install(
            raw.tracing.as_ref(),
            metrics,
            background,
            problems,
            &mut head,
        );
        let named_elsewhere = self.parts.trusted_proxies.reads_other_header();
        forwarded::install(named_elsewhere, &mut head);
        ip_list::install(deny_from, &[], &self.lists_at(&at, ""), problems, &mut head);
        self.server_head = head.finish();
        let mut tail = StagesBuilder::default();
        let banning = self.parts.jails.of_kind(KeyKind::ClientIp);
        let striking = pick(self.parts.jails, striking);
        jails::install(
            banning,
            KeyKind::ClientIp,
            striking,
            &self.jails(),
            &mut tail,
        );
        self.server_tail = tail.finish();
    }

    /// What the anomaly stage is built from: the credential sources of every
    /// authenticator, and the jails its detectors name (validation checked them).
    fn anomaly_parts(&self, section: &AnomalySection) -> anomaly::Parts<'a> {
        let mut sources = Vec::new();
        for authenticator in self.parts.auth.authenticators.values() {
            if let Some(source) = &authenticator.source {
                if !sources.contains(source) {
                    sources.push(source.clone());
                }
            }
        }
        let named = [
            (
                Detector::CredentialStuffing,
                &section.credential_stuffing.jail,
            ),
            (Detector::Enumeration, &section.enumeration.jail),
            (Detector::VolumeJump, &section.volume_jump.jail),
        ];
        let jails = (named.into_iter())
            .filter_map(|(detector, name)| {
                let jail = self.parts.jails.by_name.get(name.as_deref()?)?;
                Some((detector, jail.clone()))
            })
            .collect();
        anomaly::Parts {
            detection: self.parts.detection,
            sources,
            jails,
            security_log: self.parts.security_log,
            metrics: self.parts.metrics,
            clock: self.parts.clock,
            trusted_proxies: self.parts.trusted_proxies,
        }
    }

    /// The server-wide stages alone: for a listener the config no longer names (a
    /// reload removed or renamed it; its socket keeps listening until a restart).
    pub fn server_stages(&self) -> Stages {
        self.listener_stages_with(false, |_| {})
    }

    /// The response stages of replies to requests no route took (404, 400, ...).
    pub fn unrouted_stages(&self) -> Stages {
        let mut stages = StagesBuilder::default();
        security_headers::unrouted(&mut stages);
        stages.finish()
    }

    /// The stages of a listener: the server-wide ones around its own; they run for
    /// every request it accepts, before routing.
    pub fn listener_stages(&self, listener: &ListenerSection) -> Stages {
        let ListenerSection {
            // The socket, its TLS acceptor and its PROXY headers: set up once at start
            // (`bootstrap`, `tls`, `connection`).
            addr: _,
            h2c: _,
            proxy_protocol: _,
            // Stages: a plain one answers HTTP-01 challenges.
            tls,
            redirect_https,
            https_port,
        } = listener;
        self.listener_stages_with(tls.is_none(), |stages| {
            https_redirect::install(*redirect_https, *https_port, stages);
        })
    }

    fn listener_stages_with(&self, plain: bool, own: impl FnOnce(&mut StagesBuilder)) -> Stages {
        let mut stages = StagesBuilder::default();
        if let Some(storage) = self.parts.acme_storage.filter(|_| plain) {
            acme::install_http01(self.parts.acme_tokens, storage, &mut stages);
        }
        stages.include(&self.server_head);
        own(&mut stages);
        stages.include(&self.server_tail);
        stages.finish()
    }

    /// The stages of a route (`pool`: its upstream's, when it proxies); `None` when a
    /// part it names failed to compile (that part's problem is reported already).
    pub fn route_stages(
        &self,
        route: &RouteSection,
        pool: Option<&Arc<Pool>>,
        at: &TomlPath,
        problems: &mut Problems,
    ) -> Option<Stages> {
        let RouteSection {
            // What the route matches and where it sends requests: the router's.
            name,
            listeners: _,
            hosts: _,
            path_prefix,
            methods: _,
            upstream: _,
            respond: _,
            timeout: _,
            idempotent: _,
            // Stages.
            auth,
            require_scopes,
            require_roles,
            keep_credentials,
            limits,
            max_in_flight,
            jails: striking,
            allow_from,
            deny_from,
            strip_prefix,
            request_headers,
            response_headers,
            hsts,
            security_headers,
            max_body,
            request_buffer,
            cors,
            deprecation,
            validate,
            waf,
        } = route;
        // Validation has refused unknown names; a part that failed to compile has its
        // own problem already, so a route that lost one is only left out.
        let authenticators = resolve(auth, &self.parts.auth.authenticators)?;
        let rate_limits = resolve(limits, self.parts.rate_limits)?;
        let metrics = self.parts.metrics;
        let mut stages = StagesBuilder::default();
        let lists = self.lists_at(at, name);
        let max_body = max_body.unwrap_or(self.max_body);
        ip_list::install(deny_from, allow_from, &lists, problems, &mut stages);
        cors::install(cors.as_ref(), at, problems, &mut stages);
        let buffer = request_buffer.unwrap_or(self.request_buffer);
        body_limit::install(max_body, buffer, name, metrics, &mut stages);
        let deprecation = deprecation.as_ref();
        deprecation::install(deprecation, name, metrics, at, problems, &mut stages);
        let validate = validate.as_ref();
        request_validation::install(validate, max_body, at, problems, &mut stages);
        let banning = match authenticators.is_empty() {
            true => Vec::new(),
            false => self.consumer_jails.clone(),
        };
        let rules = RouteAuth {
            authenticators,
            require_scopes: require_scopes.clone(),
            require_roles: require_roles.clone(),
            keep_credentials: *keep_credentials,
        };
        authenticate::install(rules, name, &self.authentication(), &mut stages);
        let striking = pick(self.parts.jails, striking);
        jails::install(
            banning,
            KeyKind::Consumer,
            striking,
            &self.jails(),
            &mut stages,
        );
        let named_waf = waf
            .as_ref()
            .and_then(|n| Some((n.as_str(), self.waf.get(n)?)));
        let shared = waf::Shared {
            metrics,
            security_log: self.parts.security_log,
        };
        waf::install(
            named_waf,
            name,
            &at.key("waf"),
            &shared,
            problems,
            &mut stages,
        );
        let rules = RouteLimits::new(rate_limits, max_in_flight.map(InFlightLimit::new));
        let upstream_limit = pool.and_then(|p| p.in_flight.clone());
        let shared = limits::Shared {
            metrics,
            clock: self.parts.clock,
        };
        limits::install(rules, upstream_limit, name, &shared, &mut stages);
        strip_prefix::install(*strip_prefix, path_prefix, &mut stages);
        let hsts = hsts.as_ref();
        security_headers::install(*security_headers, hsts, at, problems, &mut stages);
        header_rules::install(request_headers, response_headers, &mut stages);
        Some(stages.finish())
    }

    fn lists_at<'b>(&'b self, at: &'b TomlPath, route: &'b str) -> ip_list::Install<'b> {
        ip_list::Install {
            lists: &self.ip_lists,
            metrics: self.parts.metrics,
            at,
            route,
        }
    }

    fn jails(&self) -> jails::Shared<'_> {
        jails::Shared {
            trusted_proxies: self.parts.trusted_proxies,
            metrics: self.parts.metrics,
            security_log: self.parts.security_log,
            clock: self.parts.clock,
        }
    }

    fn authentication(&self) -> authenticate::Shared<'_> {
        authenticate::Shared {
            identity_headers: &self.identity_headers,
            security_log: self.parts.security_log,
        }
    }
}

/// The compiled parts `names` refer to; `None` when one is missing.
fn resolve<T>(names: &[String], parts: &HashMap<String, Arc<T>>) -> Option<Vec<Arc<T>>> {
    names.iter().map(|n| parts.get(n).cloned()).collect()
}

/// The jails named in `names` (validation has refused unknown names).
fn pick(jails: &Jails, names: &[String]) -> Vec<Arc<Jail>> {
    names
        .iter()
        .filter_map(|n| jails.by_name.get(n).cloned())
        .collect()
}
