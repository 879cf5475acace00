//! Default values of the config, in one place (`#[serde(default = "...")]`).

use std::time::Duration;

pub(super) fn connect_timeout() -> Duration {
    Duration::from_secs(2)
}
pub(super) fn io_timeout() -> Duration {
    Duration::from_secs(30)
}
pub(super) fn idle_timeout() -> Duration {
    Duration::from_secs(60)
}
pub(super) fn resolve_every() -> Duration {
    Duration::from_secs(30)
}
pub(super) fn consecutive_failures() -> u32 {
    5
}
pub(super) fn eject_for() -> Duration {
    Duration::from_secs(30)
}
pub(super) fn max_eject_for() -> Duration {
    Duration::from_secs(300)
}
pub(super) fn failure_statuses() -> Vec<u16> {
    vec![502, 503, 504]
}
pub(super) fn retry_budget() -> f64 {
    0.2
}
pub(super) fn retries() -> usize {
    1
}
pub(super) fn weight() -> usize {
    1
}
pub(super) fn expect_status() -> u16 {
    200
}
pub(super) fn health_host() -> String {
    "localhost".to_owned()
}
pub(super) fn health_interval() -> Duration {
    Duration::from_secs(5)
}
pub(super) fn health_timeout() -> Duration {
    Duration::from_secs(1)
}
pub(super) fn healthy_threshold() -> usize {
    1
}
pub(super) fn unhealthy_threshold() -> usize {
    2
}
pub(super) fn path_prefix() -> String {
    "/".to_owned()
}
pub(super) fn content_type() -> String {
    "text/plain; charset=utf-8".to_owned()
}
pub(super) fn leeway() -> Duration {
    Duration::from_secs(30)
}
pub(super) fn max_token_bytes() -> u64 {
    8 * 1024
}
pub(super) fn jwks_refresh() -> Duration {
    Duration::from_secs(300)
}
pub(super) fn jwks_min_refresh() -> Duration {
    Duration::from_secs(30)
}
pub(super) fn id_claim() -> String {
    "sub".to_owned()
}
pub(super) fn roles_claim() -> String {
    "roles".to_owned()
}
pub(super) fn id_header() -> String {
    "x-consumer-id".to_owned()
}
pub(super) fn token_cache() -> usize {
    10_000
}
pub(super) fn redis_timeout() -> Duration {
    Duration::from_millis(50)
}
pub(super) fn cost() -> u64 {
    1
}
pub(super) fn max_keys() -> usize {
    1_000_000
}
pub(super) fn yes() -> bool {
    true
}
pub(super) fn https_port() -> u16 {
    443
}
pub(super) fn hsts_max_age() -> Duration {
    Duration::from_secs(365 * 24 * 3600)
}
pub(super) fn api_key_source() -> super::CredentialSource {
    super::CredentialSource::Header("x-api-key".to_owned())
}
pub(super) fn jail_statuses() -> Vec<u16> {
    vec![401, 403]
}
pub(super) fn jail_max_keys() -> usize {
    100_000
}
