//! `[[routes]]` and the tables inside a route (`respond`, header rules, `hsts`,
//! `cors`, `deprecation`, `validate`).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
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
    /// Every request of this route may be retried (`retry_on`), whatever its method:
    /// the operator vouches that the upstream handles repeats.
    #[serde(default)]
    pub idempotent: bool,
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
    /// `Strict-Transport-Security` on responses sent over TLS (part of the
    /// security headers).
    #[serde(default)]
    pub hsts: Option<HstsSection>,
    /// `X-Content-Type-Options`, `Referrer-Policy`, `X-Frame-Options` and (on
    /// tollgate's own error replies) `Cache-Control: no-store`.
    #[serde(default = "defaults::yes")]
    pub security_headers: bool,
    /// Request bodies larger than this are refused (413); `None`: `[server] max_body`.
    #[serde(default, with = "units::opt_size")]
    pub max_body: Option<u64>,
    /// Body bytes read and checked before proxying; `None`: `[server] request_buffer`.
    #[serde(default, with = "units::opt_size")]
    pub request_buffer: Option<u64>,
    /// The `[waf.NAME]` that inspects this route's requests.
    #[serde(default)]
    pub waf: Option<String>,
    /// Cross-origin requests from browsers.
    #[serde(default)]
    pub cors: Option<CorsSection>,
    /// `Deprecation`, `Sunset` and `Link` headers; 410 after the sunset if asked.
    #[serde(default)]
    pub deprecation: Option<DeprecationSection>,
    /// The request body's content type and JSON Schema.
    #[serde(default)]
    pub validate: Option<ValidateSection>,
    /// `[jails]` names that count strikes from this route's requests.
    #[serde(default)]
    pub jails: Vec<String>,
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

/// `cors = { origins = [...], methods = [...], headers = [...], expose = [...],
/// credentials = true, max_age = "10m" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSection {
    /// Exact origins (`"https://app.example.com"`), `"~regex"` (anchored) or `"*"`.
    pub origins: Vec<String>,
    /// Methods a preflight may ask for.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Request headers a preflight may ask for (`"*"`: any, without credentials).
    #[serde(default)]
    pub headers: Vec<String>,
    /// Response headers a page may read (`Access-Control-Expose-Headers`).
    #[serde(default)]
    pub expose: Vec<String>,
    /// `Access-Control-Allow-Credentials: true` (cookies, `Authorization`).
    #[serde(default)]
    pub credentials: bool,
    /// How long a browser may cache a preflight answer.
    #[serde(default, with = "units::opt_duration")]
    pub max_age: Option<Duration>,
}

/// `deprecation = { since = "2026-06-01T00:00:00Z", sunset = "...", link = "...",
/// after_sunset = "warn" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeprecationSection {
    /// RFC 3339 time the route was deprecated.
    pub since: String,
    /// RFC 3339 time the route stops (or is planned to stop) being served.
    #[serde(default)]
    pub sunset: Option<String>,
    /// Where the migration is explained (`Link: <...>; rel="deprecation"`).
    #[serde(default)]
    pub link: Option<String>,
    #[serde(default)]
    pub after_sunset: AfterSunset,
}

/// What a deprecated route does once its sunset has passed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterSunset {
    /// Keep serving, with the headers.
    #[default]
    Warn,
    /// Answer 410 Gone.
    Block,
}

/// `validate = { body_schema = "schemas/order.json", content_types = ["application/json"] }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateSection {
    /// A JSON Schema (draft 2020-12 or draft-07) the body must satisfy.
    #[serde(default)]
    pub body_schema: Option<PathBuf>,
    /// Media types a request body may have (415 otherwise); empty: any.
    #[serde(default)]
    pub content_types: Vec<String>,
}
