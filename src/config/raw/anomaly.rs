//! `[anomaly]`: anomaly detection on the traffic, detect-only unless a detector
//! names a jail.

use serde::Deserialize;
use std::time::Duration;

use crate::config::units;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalySection {
    /// How far (in standard deviations of its baseline) a bucket must be to be an
    /// anomaly.
    #[serde(default = "threshold")]
    pub threshold: f64,
    /// A subject's bucket with fewer requests than this is not judged by the
    /// baselines (the named detectors have their own minimums).
    #[serde(default = "min_requests")]
    pub min_requests: u64,
    /// The bucket the counts are made in, and the baselines learn from.
    #[serde(default = "interval", with = "units::duration")]
    pub interval: Duration,
    /// The baselines' memory: a bucket this many buckets old weighs half.
    #[serde(default = "half_life")]
    pub half_life: u32,
    /// Buckets a baseline learns from before it judges.
    #[serde(default = "warmup")]
    pub warmup: u32,
    /// Client addresses with baselines and counts at most (the least recent go
    /// first).
    #[serde(default = "max_clients")]
    pub max_clients: usize,
    #[serde(default)]
    pub credential_stuffing: CredentialStuffing,
    #[serde(default)]
    pub enumeration: Enumeration,
    #[serde(default)]
    pub volume_jump: VolumeJump,
}

/// Many distinct failing credentials from one client in one bucket.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialStuffing {
    #[serde(default = "min_credentials")]
    pub min_credentials: u64,
    /// A `client_ip` jail the client is banned in.
    #[serde(default)]
    pub jail: Option<String>,
}

/// One consumer (or, unauthenticated, one client) asking for many distinct paths
/// that do not exist (404) in one bucket.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enumeration {
    #[serde(default = "min_paths")]
    pub min_paths: u64,
    /// A jail of the kind of the subject it bans (`consumer` or `client_ip`).
    #[serde(default)]
    pub jail: Option<String>,
}

/// A consumer's requests in one bucket `factor` times its baseline, and past the
/// threshold.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeJump {
    #[serde(default = "factor")]
    pub factor: f64,
    /// A `consumer` jail the consumer is banned in.
    #[serde(default)]
    pub jail: Option<String>,
}

impl Default for CredentialStuffing {
    fn default() -> Self {
        Self {
            min_credentials: min_credentials(),
            jail: None,
        }
    }
}

impl Default for Enumeration {
    fn default() -> Self {
        Self {
            min_paths: min_paths(),
            jail: None,
        }
    }
}

impl Default for VolumeJump {
    fn default() -> Self {
        Self {
            factor: factor(),
            jail: None,
        }
    }
}

fn threshold() -> f64 {
    4.0
}
fn min_requests() -> u64 {
    30
}
fn interval() -> Duration {
    Duration::from_secs(60)
}
fn half_life() -> u32 {
    60
}
fn warmup() -> u32 {
    30
}
fn max_clients() -> usize {
    10_000
}
/// The most distinct paths (or failing credentials) one route, consumer or client is
/// counted for in a bucket: past it, the count says "at least this". A detector's
/// minimum above it could never be reached.
pub const MAX_DISTINCT: u64 = 4096;

fn min_credentials() -> u64 {
    10
}
fn min_paths() -> u64 {
    30
}
fn factor() -> f64 {
    5.0
}
