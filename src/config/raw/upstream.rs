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
