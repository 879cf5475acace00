//! The stages tollgate installs: one module per capability of a listener or a route
//! (IP lists, CORS, authentication, limits, jails, deprecation, body limits, request
//! validation, header rules, security headers, path rewrites, HTTPS redirects, the
//! forwarded headers), each building its [`crate::stage::Stage`] from its config
//! section, and `build`, the only code that knows every stage and installs them in
//! their one order, once per snapshot.
//!
//! A stage never does blocking I/O on the request path and never fails the request
//! with an error: it lets the request continue or answers it with a
//! [`crate::base::Reply`].
//!
//! Adding a capability: its module here (build from its config section, runtime,
//! unit tests), its field in the raw config section, and one install line in `build`.

mod authenticate;
mod body_limit;
pub mod build;
mod cors;
mod deprecation;
mod forwarded;
mod header_rules;
mod https_redirect;
pub mod ip_list;
mod jails;
mod limits;
mod request_validation;
mod security_headers;
mod strip_prefix;
mod waf;
