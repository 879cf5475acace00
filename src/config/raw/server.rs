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
    /// What `%25` followed by two hex digits in a path does.
    pub double_encoding: DoubleEncoding,
    /// Idle upstream connections kept for reuse, across all upstreams.
    pub upstream_keepalive_pool: usize,
    pub access_log: LogTarget,
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
    /// Request bodies held in memory for validation, all requests together, at most.
    #[serde(with = "units::size")]
    pub validation_memory: u64,
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
            upstream_keepalive_pool: 128,
            access_log: LogTarget::Stdout,
            security_log: LogTarget::Stderr,
            deny_from: Vec::new(),
            max_body: 10 * 1024 * 1024,
            jails: Vec::new(),
            validation_memory: 256 * 1024 * 1024,
            keepalive_timeout: Duration::from_secs(60),
            resolver: Vec::new(),
            header_timeout: Duration::from_secs(10),
            body_min_rate: 1024,
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
