//! `[limits.NAME]` and `[redis]`.

use serde::Deserialize;
use std::time::Duration;

use super::defaults;
use crate::config::units;

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
