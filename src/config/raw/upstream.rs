//! `[upstreams.NAME]`: targets, balancing, health checks, TLS to the targets.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::defaults;
use crate::config::units;

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
    /// Further attempts, each on another target, when connecting fails (and, for
    /// idempotent requests, on what `retry_on` names).
    #[serde(default = "defaults::retries")]
    pub retries: usize,
    /// After the request reached a target: `"reset"` (the connection failed before a
    /// response), `"timeout"`, or a status such as `"503"`; idempotent requests only.
    #[serde(default)]
    pub retry_on: Vec<RetryOn>,
    /// Retries at most this share of the upstream's requests (over 10 s windows, at
    /// least 3 a window), so retries cannot multiply an outage.
    #[serde(default = "defaults::retry_budget")]
    pub retry_budget: f64,
    /// Requests in flight to this upstream at most; more get 503.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    /// Connect to the targets over TLS.
    #[serde(default)]
    pub tls: Option<UpstreamTlsSection>,
    /// Passive health: targets that keep failing requests are taken out for a while.
    #[serde(default)]
    pub passive: Option<PassiveSection>,
    /// How to speak to the targets without TLS: HTTP/1.1, or HTTP/2 with prior
    /// knowledge (`h2c`, for gRPC servers). With `tls`, `tls.http2` offers HTTP/2.
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    /// How often DNS names among the targets are resolved again (sooner when a
    /// record's TTL is shorter, never more often than once a second).
    #[serde(default = "defaults::resolve_every", with = "units::duration")]
    pub resolve_every: Duration,
    /// Start (and reload) even when a target's name does not resolve yet; it joins
    /// the pool once it does.
    #[serde(default)]
    pub allow_unresolved: bool,
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

/// A target: `"127.0.0.1:9001"`, `"orders.internal:8080"` or
/// `{ addr = "...", weight = 3 }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    untagged,
    expecting = "a target: \"ip:port\", \"name:port\" or { addr = \"ip:port\", weight = N }"
)]
pub enum TargetSpec {
    Addr(TargetAddr),
    Weighted(WeightedTarget),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedTarget {
    pub addr: TargetAddr,
    #[serde(default = "defaults::weight")]
    pub weight: usize,
}

/// Where a target is: an address, or a DNS name and a port (every address the name
/// resolves to is a target).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetAddr {
    Ip(SocketAddr),
    Name { host: String, port: u16 },
}

impl std::fmt::Display for TargetAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetAddr::Ip(addr) => addr.fmt(f),
            TargetAddr::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl std::str::FromStr for TargetAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(TargetAddr::Ip(addr));
        }
        let invalid = || format!("{text:?} is not \"ip:port\" or \"name:port\"");
        let (host, port) = text.rsplit_once(':').ok_or_else(invalid)?;
        let port = port.parse::<u16>().map_err(|_| invalid())?;
        if !is_dns_name(host) {
            return Err(invalid());
        }
        Ok(TargetAddr::Name {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl<'de> Deserialize<'de> for TargetAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Letters, digits and hyphens in labels of 1 to 63 bytes, 253 bytes at most, not
/// all digits (that would be a malformed address).
fn is_dns_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

impl TargetSpec {
    pub fn addr(&self) -> &TargetAddr {
        match self {
            TargetSpec::Addr(addr) => addr,
            TargetSpec::Weighted(t) => &t.addr,
        }
    }

    pub fn weight(&self) -> usize {
        match self {
            TargetSpec::Addr(_) => 1,
            TargetSpec::Weighted(t) => t.weight,
        }
    }
}

/// `passive = { consecutive_failures = 5, eject_for = "30s" }`: outlier ejection.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassiveSection {
    /// Consecutive failed requests (connect failure, reset, timeout or a status of
    /// `statuses`) that take a target out.
    #[serde(default = "defaults::consecutive_failures")]
    pub consecutive_failures: u32,
    /// How long the first ejection lasts; each next one in a row lasts twice as long.
    #[serde(default = "defaults::eject_for", with = "units::duration")]
    pub eject_for: Duration,
    /// The longest an ejection lasts.
    #[serde(default = "defaults::max_eject_for", with = "units::duration")]
    pub max_eject_for: Duration,
    /// Response statuses that count as failures (default: 502, 503, 504, the gateway
    /// failures; 500 or 501 can be answers to what the client sent).
    #[serde(default = "defaults::failure_statuses")]
    pub statuses: Vec<u16>,
}

/// What a request that reached a target is retried on (`retry_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOn {
    Reset,
    Timeout,
    Status(u16),
}

impl<'de> Deserialize<'de> for RetryOn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "reset" => Ok(RetryOn::Reset),
            "timeout" => Ok(RetryOn::Timeout),
            status => match status.parse::<u16>() {
                Ok(code) if (500..600).contains(&code) => Ok(RetryOn::Status(code)),
                _ => Err(serde::de::Error::custom(format!(
                    "retry_on: {text:?} is not \"reset\", \"timeout\" or a 5xx status"
                ))),
            },
        }
    }
}

/// `protocol = "http1" | "h2c"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamProtocol {
    #[default]
    Http1,
    H2c,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_addresses_or_dns_names_with_a_port() {
        let parse = |s: &str| s.parse::<TargetAddr>();
        assert_eq!(
            parse("10.0.0.7:9001"),
            Ok(TargetAddr::Ip("10.0.0.7:9001".parse().expect("addr")))
        );
        assert!(matches!(parse("[::1]:80"), Ok(TargetAddr::Ip(_))));
        assert_eq!(
            parse("Orders.Internal:8080"),
            Ok(TargetAddr::Name {
                host: "orders.internal".into(),
                port: 8080
            })
        );
        for bad in [
            "orders.internal",
            "orders:99999",
            "10.0.0.300:80",
            "a b:80",
            ":80",
            "-a.b:80",
            "::1:80",
            "a..b:80",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
