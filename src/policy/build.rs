//! Builds the chains of a snapshot from config sections: the only code that knows
//! every policy. Each builder destructures its section exhaustively, so a config
//! field that nothing installs does not compile. Problems (a header that does not
//! parse, ...) are reported with their TOML path, like validation errors.
//!
//! Within a phase, policies run in the order they are installed here.

use super::{header_rules, hsts, https_redirect, strip_prefix, Chain, ChainBuilder};
use crate::config::location::{Problems, TomlPath};
use crate::config::raw::{ListenerSection, RouteSection};

/// The policies of a listener: they run for every request it accepts, before routing.
pub fn listener_chain(
    listener: &ListenerSection,
    _at: &TomlPath,
    _problems: &mut Problems,
) -> Chain {
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
    https_redirect::install(*redirect_https, *https_port, &mut chain);
    chain.finish()
}

/// The policies of a route: they run for the requests routed to it.
pub fn route_chain(route: &RouteSection, at: &TomlPath, problems: &mut Problems) -> Chain {
    let RouteSection {
        // What the route matches and where it sends requests: the router's.
        name: _,
        listeners: _,
        hosts: _,
        path_prefix,
        methods: _,
        upstream: _,
        respond: _,
        timeout: _,
        // Typed stages: they produce the principal and the RateLimit state.
        auth: _,
        require_scopes: _,
        require_roles: _,
        keep_credentials: _,
        limits: _,
        max_in_flight: _,
        // Policies.
        strip_prefix,
        request_headers,
        response_headers,
        hsts,
    } = route;
    let mut chain = ChainBuilder::default();
    strip_prefix::install(*strip_prefix, path_prefix, &mut chain);
    hsts::install(hsts.as_ref(), &mut chain);
    header_rules::install(request_headers, response_headers, at, problems, &mut chain);
    chain.finish()
}
