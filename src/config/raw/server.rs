//! `[server]` (process settings, request limits, path normalization, server-wide
//! policies and jails), `[admin]`, and `[ip_lists.NAME]`.

use ipnet::IpNet;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::units;

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
    /// How long `tollgate stop` lets the process drain (`/readyz` 503, `Connection:
    /// close`, HTTP/2 GOAWAY) while it still accepts, before it stops it: time for a
    /// load balancer polling `/readyz` to stop sending.
    #[serde(with = "units::duration")]
    pub drain_delay: Duration,
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
    /// Where a trusted proxy names the client: `x-forwarded-for`, `forwarded`,
    /// `x-real-ip` or `cf-connecting-ip`.
    pub client_ip_header: ClientIpHeader,
    /// What `%25` followed by two hex digits in a path does.
    pub double_encoding: DoubleEncoding,
    /// Whether route path prefixes match the path's case exactly, or ignoring ASCII
    /// case (for upstreams that ignore it).
    pub path_case: PathCase,
    /// Request headers whose name has a `_`: kept, removed before anything reads
    /// them, or refused with 400.
    pub underscore_headers: UnderscoreHeaders,
    /// Idle upstream connections kept for reuse, across all upstreams.
    pub upstream_keepalive_pool: usize,
    pub access_log: LogTarget,
    /// The process log (what `RUST_LOG` lets through): `"stderr"`, `"stdout"` or a file.
    pub process_log: LogTarget,
    /// The process log's lines: `text` (env_logger's) or `json` (one object a line).
    pub log_format: LogFormat,
    /// Authentication decisions (rejections, and accepts where asked for).
    pub security_log: LogTarget,
    /// `[ip_lists]` names: requests from their addresses are refused before routing.
    pub deny_from: Vec<String>,
    /// Request bodies larger than this are refused (413) unless a route says
    /// otherwise; 0: no limit.
    #[serde(with = "units::size")]
    pub max_body: u64,
    /// `[jails]` names that count strikes on every route.
    pub jails: Vec<String>,
    /// The first bytes of a request body read and checked before an upstream is
    /// chosen (the whole body on a route that validates it); 0: bodies stream.
    #[serde(with = "units::size")]
    pub request_buffer: u64,
    /// Request bodies held in memory before proxying, all requests together, at most
    /// (called `validation_memory` before request buffering held every route's).
    #[serde(with = "units::size", alias = "validation_memory")]
    pub request_buffer_memory: u64,
    /// DNS servers for upstream targets named by DNS name; empty: the system's
    /// (`/etc/resolv.conf`, and `/etc/hosts` first).
    pub resolver: Vec<SocketAddr>,
    /// How long an idle client connection is kept open for its next request.
    #[serde(with = "units::duration")]
    pub keepalive_timeout: Duration,
    /// A request head (HTTP/1.1) must arrive within this, counted from its first
    /// byte (from accept for a connection's first request); else 408 and close.
    #[serde(with = "units::duration")]
    pub header_timeout: Duration,
    /// A request body arriving slower than this (bytes per second, judged over 5 s
    /// windows of waiting after 5 s of grace) is cut off with 408; 0: not judged.
    #[serde(with = "units::rate")]
    pub body_min_rate: u64,
    /// After refusing a request whose body is still arriving, read and discard it
    /// for up to this long, or this many bytes, before closing (so the client, still
    /// sending, reads the refusal); 0: close at once.
    #[serde(with = "units::duration")]
    pub lingering_time: Duration,
    #[serde(with = "units::size")]
    pub lingering_bytes: u64,
    /// Open connections per client address (IPv6: per /64) at most; more are
    /// closed at accept. Trusted proxies are not limited.
    pub max_connections_per_ip: Option<u32>,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            workers: None,
            pid_file: PathBuf::from("/tmp/tollgate.pid"),
            upgrade_socket: PathBuf::from("/tmp/tollgate-upgrade.sock"),
            grace_period: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            drain_delay: Duration::ZERO,
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 32 * 1024,
            trusted_proxies: Vec::new(),
            escaped_slashes: EscapedSlashes::Reject,
            merge_slashes: true,
            double_encoding: DoubleEncoding::Reject,
            path_case: PathCase::Sensitive,
            client_ip_header: ClientIpHeader::XForwardedFor,
            underscore_headers: UnderscoreHeaders::Drop,
            upstream_keepalive_pool: 128,
            access_log: LogTarget::Stdout,
            process_log: LogTarget::Stderr,
            log_format: LogFormat::Text,
            security_log: LogTarget::Stderr,
            deny_from: Vec::new(),
            max_body: 10 * 1024 * 1024,
            jails: Vec::new(),
            request_buffer: 64 * 1024,
            request_buffer_memory: 256 * 1024 * 1024,
            keepalive_timeout: Duration::from_secs(60),
            resolver: Vec::new(),
            header_timeout: Duration::from_secs(10),
            body_min_rate: 1024,
            lingering_time: Duration::from_secs(5),
            lingering_bytes: 1024 * 1024,
            max_connections_per_ip: None,
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

/// `path_case`: `sensitive` matches route prefixes as written; `insensitive` ignores
/// ASCII case, as Express, ASP.NET, IIS and some Spring set-ups do upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathCase {
    Sensitive,
    Insensitive,
}

/// `client_ip_header`, as nginx's `real_ip_header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientIpHeader {
    XForwardedFor,
    Forwarded,
    XRealIp,
    CfConnectingIp,
}

/// `underscore_headers`: `pass` forwards a header named with `_` (`X_User`), `drop`
/// removes it before any stage or upstream sees it (nginx's `underscores_in_headers
/// off`), `reject` refuses the request with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnderscoreHeaders {
    Pass,
    Drop,
    Reject,
}

/// `log_format`: how the process log writes a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// `[2026-01-01T00:00:00Z WARN  target] message`
    Text,
    /// `{"time":"…","level":"WARN","target":"…","message":"…"}`
    Json,
}

/// Where JSON log lines go: `"stdout"`, `"stderr"`, `"off"`,
/// `{ file = "/var/log/tollgate/access.log" }` or `{ syslog = "udp://host:514" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LogTarget {
    Stdout,
    Stderr,
    Off,
    File(PathBuf),
    Syslog(super::SyslogTarget),
}

/// `[admin]`: the operator's HTTP endpoint (`/metrics`, `/healthz`, `/reload`, ...).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    pub listen: SocketAddr,
    /// SHA-256 (hex) of the bearer token every admin request must carry; required on
    /// an address other than loopback.
    #[serde(default)]
    pub token_sha256: Option<String>,
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
