//! `[[routes]]` and the tables inside a route (`respond`, header rules, `hsts`).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

use super::defaults;
use crate::config::units;

/// `[[routes]]`: which requests go where.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    pub name: String,
    /// Listener names; absent means every listener.
    #[serde(default)]
    pub listeners: Option<Vec<String>>,
    /// Exact names and `*.example.com` wildcards; empty means any host.
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default = "defaults::path_prefix")]
    pub path_prefix: String,
    /// Empty means any method.
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub respond: Option<RespondSection>,
    /// Remove `path_prefix` from the path sent upstream.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Overrides the upstream's `read_timeout` for this route.
    #[serde(default, with = "units::opt_duration")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub request_headers: HeaderRulesSection,
    #[serde(default)]
    pub response_headers: HeaderRulesSection,
    /// Authenticator names; any one accepting is enough. Empty: a public route.
    #[serde(default)]
    pub auth: Vec<String>,
    /// Every one of these scopes is required (needs `auth`).
    #[serde(default)]
    pub require_scopes: Vec<String>,
    /// Every one of these roles is required (needs `auth`).
    #[serde(default)]
    pub require_roles: Vec<String>,
    /// Forward the credential upstream instead of stripping it.
    #[serde(default)]
    pub keep_credentials: bool,
    /// Rate-limit policy names; every one must admit.
    #[serde(default)]
    pub limits: Vec<String>,
    /// Requests in flight on this route at most; more get 503.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    /// `Strict-Transport-Security` on responses sent over TLS.
    #[serde(default)]
    pub hsts: Option<HstsSection>,
    /// `[ip_lists]` names: only their addresses may use the route.
    #[serde(default)]
    pub allow_from: Vec<String>,
    /// `[ip_lists]` names: their addresses are refused, even when allowed.
    #[serde(default)]
    pub deny_from: Vec<String>,
}

/// `hsts = { max_age = "365d", include_subdomains = true, preload = false }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HstsSection {
    #[serde(default = "defaults::hsts_max_age", with = "units::duration")]
    pub max_age: Duration,
    #[serde(default)]
    pub include_subdomains: bool,
    #[serde(default)]
    pub preload: bool,
}

/// `respond = { status = 200, body = "ok", content_type = "text/plain" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondSection {
    pub status: u16,
    #[serde(default)]
    pub body: String,
    #[serde(default = "defaults::content_type")]
    pub content_type: String,
}

/// `request_headers = { set = { "x-env" = "prod" }, remove = ["cookie"] }`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderRulesSection {
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub remove: Vec<String>,
}
