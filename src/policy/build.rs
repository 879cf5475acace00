//! Builds the chains of a snapshot from config sections: the only code that knows
//! every policy. Each builder destructures its section exhaustively, so a config
//! field that nothing installs does not compile. Problems (an unknown list name, a
//! header that does not parse, ...) are reported with their TOML path, like
//! validation errors.
//!
//! Within a phase, policies run in the order they are installed here; a listener's
//! chain starts with the server-wide policies.

use std::sync::Arc;

use super::ip_list::{self, IpLists};
use super::{
    body_limit, cors, deprecation, header_rules, https_redirect, request_validation,
    security_headers, strip_prefix, Chain, ChainBuilder,
};
use crate::config::location::{Problems, TomlPath};
use crate::config::raw::{ListenerSection, RawConfig, RouteSection, ServerSection};
use crate::observability::Metrics;

/// What the chains of one config share: its lists, server-wide defaults, and the
/// server-wide policies.
pub struct Builder<'a> {
    ip_lists: IpLists,
    metrics: &'a Arc<Metrics>,
    max_body: u64,
    server: Chain,
}

impl<'a> Builder<'a> {
    /// Loads what policies share (`[ip_lists]`) and builds the server-wide policies.
    pub fn new(raw: &RawConfig, metrics: &'a Arc<Metrics>, problems: &mut Problems) -> Self {
        let mut builder = Self {
            ip_lists: ip_list::load_all(&raw.ip_lists, problems),
            metrics,
            max_body: raw.server.max_body,
            server: Chain::default(),
        };
        builder.server = builder.build_server_chain(&raw.server, problems);
        builder
    }

    fn build_server_chain(&self, server: &ServerSection, problems: &mut Problems) -> Chain {
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
            escaped_slashes: _,
            merge_slashes: _,
            double_encoding: _,
            upstream_keepalive_pool: _,
            access_log: _,
            security_log: _,
            // Policies; `max_body` is the routes' default (`route_chain`).
            deny_from,
            max_body: _,
            // A typed stage: `state` compiles the jails.
            jails: _,
            // The proxy's bound on held bodies and client idle timeout (`state`).
            validation_memory: _,
            keepalive_timeout: _,
            // Client connection limits (`connection`).
            header_timeout: _,
            // Resolving upstream names (`upstream`).
            resolver: _,
            body_min_rate: _,
            max_connections_per_ip: _,
        } = server;
        let at = TomlPath::root().key("server");
        let mut chain = ChainBuilder::default();
        ip_list::install(
            deny_from,
            &[],
            &self.lists_at(&at, ""),
            problems,
            &mut chain,
        );
        chain.finish()
    }

    /// The server-wide policies alone: for a listener the config no longer names (a
    /// reload removed or renamed it; its socket keeps listening until a restart).
    pub fn server_chain(&self) -> Chain {
        let mut chain = ChainBuilder::default();
        chain.include(&self.server);
        chain.finish()
    }

    /// The response policies of replies to requests no route took (404, 400, ...).
    pub fn unrouted_chain(&self) -> Chain {
        let mut chain = ChainBuilder::default();
        security_headers::unrouted(&mut chain);
        chain.finish()
    }

    /// The policies of a listener: the server-wide ones, then its own; they run for
    /// every request it accepts, before routing.
    pub fn listener_chain(&self, listener: &ListenerSection) -> Chain {
        let ListenerSection {
            // The socket and its TLS acceptor: built once at start (`bootstrap`, `tls`).
            addr: _,
            h2c: _,
            tls: _,
            // Policies.
            redirect_https,
            https_port,
        } = listener;
        let mut chain = ChainBuilder::default();
        chain.include(&self.server);
        https_redirect::install(*redirect_https, *https_port, &mut chain);
        chain.finish()
    }

    /// The policies of a route: they run for the requests routed to it.
    pub fn route_chain(
        &self,
        route: &RouteSection,
        at: &TomlPath,
        problems: &mut Problems,
    ) -> Chain {
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
            // Typed stages: they produce the principal and the RateLimit state.
            auth: _,
            require_scopes: _,
            require_roles: _,
            keep_credentials: _,
            limits: _,
            max_in_flight: _,
            jails: _,
            // Policies.
            allow_from,
            deny_from,
            strip_prefix,
            request_headers,
            response_headers,
            hsts,
            security_headers,
            max_body,
            cors,
            deprecation,
            validate,
        } = route;
        let mut chain = ChainBuilder::default();
        let lists = self.lists_at(at, name);
        let max_body = max_body.unwrap_or(self.max_body);
        ip_list::install(deny_from, allow_from, &lists, problems, &mut chain);
        cors::install(cors.as_ref(), at, problems, &mut chain);
        body_limit::install(max_body, name, self.metrics, &mut chain);
        deprecation::install(
            deprecation.as_ref(),
            name,
            self.metrics,
            at,
            problems,
            &mut chain,
        );
        let validate = validate.as_ref();
        request_validation::install(validate, max_body, at, problems, &mut chain);
        strip_prefix::install(*strip_prefix, path_prefix, &mut chain);
        let hsts = hsts.as_ref();
        security_headers::install(*security_headers, hsts, at, problems, &mut chain);
        header_rules::install(request_headers, response_headers, at, problems, &mut chain);
        chain.finish()
    }

    fn lists_at<'b>(&'b self, at: &'b TomlPath, route: &'b str) -> ip_list::Install<'b> {
        ip_list::Install {
            lists: &self.ip_lists,
            metrics: self.metrics,
            at,
            route,
        }
    }
}
