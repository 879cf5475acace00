//! `[jails.NAME]`: automatic bans.

use serde::Deserialize;
use std::time::Duration;

use super::{defaults, LimitStore, OnStoreError};
use crate::config::units;

/// `[jails.NAME]`: strikes counted per key from final statuses; enough of them within
/// `window` ban the key for `ban`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JailSection {
    pub key: JailKey,
    /// Final statuses that count as a strike.
    #[serde(default = "defaults::jail_statuses")]
    pub statuses: Vec<u16>,
    pub max_strikes: u32,
    #[serde(with = "units::duration")]
    pub window: Duration,
    #[serde(with = "units::duration")]
    pub ban: Duration,
    #[serde(default)]
    pub store: LimitStore,
    /// With `store = "redis"`: what happens while Redis cannot answer.
    #[serde(default)]
    pub on_store_error: OnStoreError,
    /// Keys with strikes tracked at most, and bans at most (memory bound).
    #[serde(default = "defaults::jail_max_keys")]
    pub max_keys: usize,
}

/// Who a jail bans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JailKey {
    /// The client IP (never a trusted proxy); its bans are checked before routing.
    ClientIp,
    /// The authenticated consumer; its bans are checked after authentication.
    Consumer,
}
