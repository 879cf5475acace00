//! The config file as serde sees it: one struct per table, `deny_unknown_fields`
//! everywhere, enums for every choice, defaults spelled out in one place.
//!
//! These types are plain data. They are never used on the request path: `state::compile`
//! turns a validated [`RawConfig`] into the runtime `Snapshot`.

use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::units;

/// The whole file. Sections are deserialized one by one (see `config::load`) so that an
/// error in one listener does not hide an error in a route.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawConfig {
    pub server: ServerSection,
    pub admin: Option<AdminSection>,
    pub listeners: BTreeMap<String, ListenerSection>,
    pub upstreams: BTreeMap<String, UpstreamSection>,
    pub auth: BTreeMap<String, AuthSection>,
    pub limits: BTreeMap<String, LimitSection>,
    pub redis: Option<RedisSection>,
    pub ip_lists: BTreeMap<String, IpListSection>,
    pub routes: Vec<RouteSection>,
}

/// `[server]`: process-wide settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Proxy worker threads; `None` means one per CPU.
    pub workers: Option<usize>,
    pub pid_file: PathBuf,
    pub upgrade_socket: PathBuf,
    /// How long the old process keeps serving after handing its sockets over.
    #[serde(with = "units::duration")]
    pub grace_period: Duration,
    /// How long a stopping process waits for in-flight requests.
    #[serde(with = "units::duration")]
    pub shutdown_timeout: Duration,
    #[serde(with = "units::size")]
    pub max_uri_bytes: u64,
    #[serde(with = "units::size")]
    pub max_header_bytes: u64,
    /// Peers whose `X-Forwarded-For` / `-Proto` / `-Host` are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// What `%2F`, `%5C` and `\` in a path do (see `edge::path`).
    pub escaped_slashes: EscapedSlashes,
    /// Merge repeated slashes in paths.
    pub merge_slashes: bool,
    /// What `%25` followed by two hex digits in a path does.
    pub double_encoding: DoubleEncoding,
    /// Idle upstream connections kept for reuse, across all upstreams.
    pub upstream_keepalive_pool: usize,
    pub access_log: LogTarget,
    /// Authentication decisions (rejections, and accepts where asked for).
    pub security_log: LogTarget,
    /// `[ip_lists]` names: requests from their addresses are refused before routing.
    pub deny_from: Vec<String>,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            workers: None,
            pid_file: PathBuf::from("/tmp/tollgate.pid"),
            upgrade_socket: PathBuf::from("/tmp/tollgate-upgrade.sock"),
            grace_period: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 32 * 1024,
            trusted_proxies: Vec::new(),
            escaped_slashes: EscapedSlashes::Reject,
            merge_slashes: true,
            double_encoding: DoubleEncoding::Reject,
            upstream_keepalive_pool: 128,
            access_log: LogTarget::Stdout,
            security_log: LogTarget::Stderr,
            deny_from: Vec::new(),
        }
    }
}

/// `escaped_slashes`: an encoded slash `%2F`, a backslash `\` or an encoded backslash
/// `%5C` in a path is refused (400), decoded to `/`, or kept (forwarded as `%2F` /
/// `%5C`, never a segment boundary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscapedSlashes {
    Reject,
    Decode,
    Keep,
}

/// `double_encoding`: `%25` followed by two hex digits in a path is refused (400) or
/// kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoubleEncoding {
    Reject,
    Keep,
}

/// Where JSON log lines go: `"stdout"`, `"stderr"`, `"off"` or
/// `{ file = "/var/log/tollgate/access.log" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LogTarget {
    Stdout,
    Stderr,
    Off,
    File(PathBuf),
}

/// `[admin]`: the operator's HTTP endpoint (`/metrics`, `/healthz`). Keep it on loopback
/// or a management network: it is not authenticated.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    pub listen: SocketAddr,
}

/// `[listeners.NAME]`: one address the proxy accepts connections on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSection {
    pub addr: SocketAddr,
    /// Accept HTTP/2 with prior knowledge (cleartext) besides HTTP/1.x.
    #[serde(default)]
    pub h2c: bool,
    /// Terminate TLS on this listener.
    #[serde(default)]
    pub tls: Option<ListenerTlsSection>,
    /// Answer every request with a 308 to the same URL over HTTPS (plain listeners).
    #[serde(default)]
    pub redirect_https: bool,
    /// The port `redirect_https` points at (443 is left out of the URL).
    #[serde(default = "defaults::https_port")]
    pub https_port: u16,
}

/// `[listeners.NAME.tls]`: certificates and TLS settings of a listener.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTlsSection {
    /// Chosen per handshake by SNI; the first is the default.
    pub certificates: Vec<CertificateSection>,
    #[serde(default)]
    pub min_version: TlsVersion,
    /// Offer HTTP/2 through ALPN (besides HTTP/1.1).
    #[serde(default = "defaults::yes")]
    pub http2: bool,
    /// CA certificates (PEM) that client certificates must chain to.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    #[serde(default)]
    pub client_auth: ClientAuth,
}

/// `{ cert = "api.pem", key = "api.key", server_names = [...] }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateSection {
    /// The certificate chain (PEM): leaf first, then intermediates.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// Names this certificate answers for; default: its DNS subject alternative names.
    #[serde(default)]
    pub server_names: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum TlsVersion {
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

/// Whether a listener asks for client certificates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    None,
    /// Asked for; verified when presented.
    Optional,
    /// A handshake without a trusted certificate fails.
    Require,
}

/// `[upstreams.NAME]`: a pool of targets and how to reach them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    pub targets: Vec<TargetSpec>,
    #[serde(default)]
    pub balance: Balance,
    /// What `consistent_hash` hashes; required with it, refused without it.
    #[serde(default)]
    pub hash_key: Option<HashKey>,
    #[serde(default)]
    pub health: Option<HealthSection>,
    #[serde(default = "defaults::connect_timeout", with = "units::duration")]
    pub connect_timeout: Duration,
    #[serde(default = "defaults::io_timeout", with = "units::duration")]
    pub read_timeout: Duration,
    #[serde(default = "defaults::io_timeout", with = "units::duration")]
    pub write_timeout: Duration,
    /// How long an idle upstream connection is kept for reuse.
    #[serde(default = "defaults::idle_timeout", with = "units::duration")]
    pub idle_timeout: Duration,
    /// Further attempts, each on another target, when connecting fails.
    #[serde(default = "defaults::retries")]
    pub retries: usize,
    /// Requests in flight to this upstream at most; more get 503.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    /// Connect to the targets over TLS.
    #[serde(default)]
    pub tls: Option<UpstreamTlsSection>,
}

/// `tls = { sni = "api.internal", verify = true, ca = "ca.pem", ... }` of an upstream.
#[derive(Debug, Clone, PartialEq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsSection {
    /// Server name sent (SNI) and verified against the target's certificate.
    #[serde(default)]
    pub sni: Option<String>,
    /// Verify the target's certificate chain and name.
    #[serde(default = "defaults::yes")]
    pub verify: bool,
    /// CA certificates (PEM) to verify against instead of the system roots.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// A client certificate chain (PEM) presented to the targets, with its key.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Offer HTTP/2 to the targets through ALPN.
    #[serde(default)]
    pub http2: bool,
}

/// A target: `"127.0.0.1:9001"` or `{ addr = "127.0.0.1:9001", weight = 3 }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    untagged,
    expecting = "a target: \"ip:port\" or { addr = \"ip:port\", weight = N }"
)]
pub enum TargetSpec {
    Addr(SocketAddr),
    Weighted(WeightedTarget),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedTarget {
    pub addr: SocketAddr,
    #[serde(default = "defaults::weight")]
    pub weight: usize,
}

impl TargetSpec {
    pub fn addr(&self) -> SocketAddr {
        match self {
            TargetSpec::Addr(addr) => *addr,
            TargetSpec::Weighted(t) => t.addr,
        }
    }

    pub fn weight(&self) -> usize {
        match self {
            TargetSpec::Addr(_) => 1,
            TargetSpec::Weighted(t) => t.weight,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    #[default]
    RoundRobin,
    Weighted,
    Random,
    LeastConn,
    ConsistentHash,
}

/// `hash_key = "client_ip"`, `"path"` or `{ header = "x-tenant" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HashKey {
    ClientIp,
    Path,
    Header(String),
}

/// `health = { kind = "http", path = "/healthz", interval = "2s" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    pub kind: HealthKind,
    /// Request path for `kind = "http"`.
    #[serde(default)]
    pub path: Option<String>,
    /// Status an `http` check expects.
    #[serde(default = "defaults::expect_status")]
    pub expect_status: u16,
    /// `Host` header an `http` check sends.
    #[serde(default = "defaults::health_host")]
    pub host: String,
    #[serde(default = "defaults::health_interval", with = "units::duration")]
    pub interval: Duration,
    #[serde(default = "defaults::health_timeout", with = "units::duration")]
    pub timeout: Duration,
    /// Consecutive successes that bring an unhealthy target back.
    #[serde(default = "defaults::healthy_threshold")]
    pub healthy_threshold: usize,
    /// Consecutive failures that take a healthy target out.
    #[serde(default = "defaults::unhealthy_threshold")]
    pub unhealthy_threshold: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthKind {
    Tcp,
    Http,
}

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

/// `[ip_lists.NAME]`: client addresses and networks, inline and/or in a file (one
/// address or CIDR a line, `#` comments; read at start and on every reload).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpListSection {
    #[serde(default)]
    pub cidrs: Vec<String>,
    #[serde(default)]
    pub file: Option<PathBuf>,
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

/// `[limits.NAME]`: a token bucket per key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSection {
    /// What a bucket belongs to: `client_ip`, `consumer`, `route`, `header:NAME`,
    /// `claim:NAME`, or a list of them.
    #[serde(with = "units::one_or_many")]
    pub key: Vec<String>,
    /// Tokens earned per `per`.
    pub rate: u64,
    #[serde(with = "units::duration")]
    pub per: Duration,
    /// Bucket size; default `rate`.
    #[serde(default)]
    pub burst: Option<u64>,
    /// Tokens a request takes.
    #[serde(default = "defaults::cost")]
    pub cost: u64,
    #[serde(default)]
    pub store: LimitStore,
    /// With `store = "redis"`: what happens while Redis cannot answer.
    #[serde(default)]
    pub on_store_error: OnStoreError,
    /// Buckets tracked at most (memory bound; for Redis policies, of the fallback).
    #[serde(default = "defaults::max_keys")]
    pub max_keys: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitStore {
    /// In this process, shared by its workers.
    #[default]
    Local,
    /// In `[redis]`, shared by every tollgate using it.
    Redis,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnStoreError {
    /// Admit, limited by a local bucket meanwhile (fail-open).
    #[default]
    Allow,
    /// Refuse with 503 (fail-closed).
    Deny,
}

/// `[redis]`: the store of `store = "redis"` limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSection {
    /// `redis://host:port/db` (or `rediss://` for TLS).
    pub url: String,
    /// Bound on connecting and on each call; past it, `on_store_error` decides.
    #[serde(default = "defaults::redis_timeout", with = "units::duration")]
    pub timeout: Duration,
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

/// `[auth.NAME]`: one authenticator, chosen by `kind`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuthSection {
    Jwt(Box<JwtSection>),
    ApiKey(ApiKeySection),
    Mtls(MtlsSection),
}

/// `kind = "jwt"`: signed JSON Web Tokens.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSection {
    /// The algorithms a token may use; the key decides among them.
    pub algorithms: Vec<JwtAlgorithm>,
    /// Required `iss` (when set).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Accepted `aud` values; when set, a token must carry one of them.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(default = "defaults::leeway", with = "units::duration")]
    pub leeway: Duration,
    #[serde(default = "defaults::max_token_bytes", with = "units::size")]
    pub max_token_bytes: u64,
    /// Exactly one key source: a PEM public key, an HMAC secret from the environment,
    /// a JWKS file, or a JWKS URL.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    #[serde(default)]
    pub secret_env: Option<String>,
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// How often `jwks_url` is fetched again.
    #[serde(default = "defaults::jwks_refresh", with = "units::duration")]
    pub jwks_refresh: Duration,
    /// The least time between two fetches triggered by unknown `kid`s.
    #[serde(default = "defaults::jwks_min_refresh", with = "units::duration")]
    pub jwks_min_refresh: Duration,
    #[serde(default)]
    pub from: CredentialSource,
    /// The claim naming the principal.
    #[serde(default = "defaults::id_claim")]
    pub id_claim: String,
    /// Scopes claim; unset: `scope` (space separated), else `scp`.
    #[serde(default)]
    pub scope_claim: Option<String>,
    #[serde(default = "defaults::roles_claim")]
    pub roles_claim: String,
    /// Header carrying the principal's id upstream.
    #[serde(default = "defaults::id_header")]
    pub id_header: String,
    /// Claims forwarded upstream: claim name → header name.
    #[serde(default)]
    pub claim_headers: BTreeMap<String, String>,
    /// Verified tokens remembered so a reused token is checked once.
    #[serde(default = "defaults::token_cache")]
    pub token_cache: usize,
    /// Log accepted requests too, not only rejections.
    #[serde(default)]
    pub log_accepts: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum JwtAlgorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl JwtAlgorithm {
    /// The type of key that verifies it: one public key serves one type.
    pub fn key_type(self) -> &'static str {
        use JwtAlgorithm::*;
        match self {
            HS256 | HS384 | HS512 => "hmac",
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => "rsa",
            ES256 | ES384 => "ec",
            EdDSA => "okp",
        }
    }
}

/// Where a credential is read from: `"bearer"` (the `Authorization: Bearer` header),
/// `{ header = "x-api-key" }`, `{ cookie = "session" }` or `{ query = "api_key" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialSource {
    #[default]
    Bearer,
    Header(String),
    Cookie(String),
    Query(String),
}

/// `kind = "api_key"`: static keys, stored as SHA-256 digests.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySection {
    #[serde(default = "defaults::api_key_source")]
    pub from: CredentialSource,
    pub consumers: Vec<ConsumerSection>,
    #[serde(default = "defaults::id_header")]
    pub id_header: String,
    #[serde(default)]
    pub log_accepts: bool,
}

/// One API-key holder: `{ id = "acme", key_sha256 = "…", scopes = [...] }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSection {
    pub id: String,
    /// Hex SHA-256 of the key (`tollgate hash-key` prints it); never the key itself.
    pub key_sha256: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
}

/// `kind = "mtls"`: verified TLS client certificates (the listener's `client_auth`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtlsSection {
    pub consumers: Vec<CertConsumerSection>,
    #[serde(default = "defaults::id_header")]
    pub id_header: String,
    #[serde(default)]
    pub log_accepts: bool,
}

/// One certificate holder, matched by exactly one of `san`, `subject_cn`, `sha256`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertConsumerSection {
    pub id: String,
    /// A subject alternative name (DNS, URI, email or IP) of the certificate.
    #[serde(default)]
    pub san: Option<String>,
    /// The certificate subject's common name.
    #[serde(default)]
    pub subject_cn: Option<String>,
    /// The certificate's SHA-256 fingerprint (hex, `:` separators allowed).
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
}

mod defaults {
    use std::time::Duration;

    pub fn connect_timeout() -> Duration {
        Duration::from_secs(2)
    }
    pub fn io_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub fn idle_timeout() -> Duration {
        Duration::from_secs(60)
    }
    pub fn retries() -> usize {
        1
    }
    pub fn weight() -> usize {
        1
    }
    pub fn expect_status() -> u16 {
        200
    }
    pub fn health_host() -> String {
        "localhost".to_owned()
    }
    pub fn health_interval() -> Duration {
        Duration::from_secs(5)
    }
    pub fn health_timeout() -> Duration {
        Duration::from_secs(1)
    }
    pub fn healthy_threshold() -> usize {
        1
    }
    pub fn unhealthy_threshold() -> usize {
        2
    }
    pub fn path_prefix() -> String {
        "/".to_owned()
    }
    pub fn content_type() -> String {
        "text/plain; charset=utf-8".to_owned()
    }
    pub fn leeway() -> Duration {
        Duration::from_secs(30)
    }
    pub fn max_token_bytes() -> u64 {
        8 * 1024
    }
    pub fn jwks_refresh() -> Duration {
        Duration::from_secs(300)
    }
    pub fn jwks_min_refresh() -> Duration {
        Duration::from_secs(30)
    }
    pub fn id_claim() -> String {
        "sub".to_owned()
    }
    pub fn roles_claim() -> String {
        "roles".to_owned()
    }
    pub fn id_header() -> String {
        "x-consumer-id".to_owned()
    }
    pub fn token_cache() -> usize {
        10_000
    }
    pub fn redis_timeout() -> Duration {
        Duration::from_millis(50)
    }
    pub fn cost() -> u64 {
        1
    }
    pub fn max_keys() -> usize {
        1_000_000
    }
    pub fn yes() -> bool {
        true
    }
    pub fn https_port() -> u16 {
        443
    }
    pub fn hsts_max_age() -> Duration {
        Duration::from_secs(365 * 24 * 3600)
    }
    pub fn api_key_source() -> super::CredentialSource {
        super::CredentialSource::Header("x-api-key".to_owned())
    }
}
