//! Automatic bans (`[jails.NAME]`): a jail counts strikes per key (the client IP, or
//! the authenticated consumer) from the final status of requests on the routes that
//! list it (`[server] jails`: every route). `max_strikes` within `window` ban the key
//! for `ban`: every request from it, on every route, is refused with 403 (client-IP
//! jails before routing, consumer jails after authentication) until the ban ends.
//! Trusted proxies are never a key.
//!
//! State lives in a [`Jail`] kept across reloads while the jail's section (and, for a
//! shared jail, `[redis]`) is unchanged. A local jail keeps strikes and bans in this
//! process (`local`); a shared one keeps them in Redis (`shared`), mirrored here once a
//! second by the keeper (`keeper`), so checking a ban never waits on I/O. While Redis
//! cannot answer, `on_store_error = "allow"` counts strikes locally meanwhile and
//! `"deny"` refuses the jail's requests with 503.
//!
//! Bans and unbans are security-log events; `tollgate_jail_bans_total{jail}` and the
//! gauge `tollgate_jail_active_bans{jail}` are exported; the admin listener lists and
//! lifts bans.

mod keeper;
mod local;
mod shared;

pub use keeper::keeper;

use http::{header, StatusCode};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::base::registry::{Registry, Reusable};
use crate::base::Reply;
use crate::config::raw::{JailKey, JailSection, OnStoreError, RedisSection};
use crate::observability::Metrics;
use crate::ratelimit::RedisStore;
use local::{LocalJail, Rules, Strike};
use shared::SharedJail;

/// The jails of the running config, by name.
pub type JailsRegistry = Registry<Jail>;

/// What a jail's state means: equal identities keep strikes and bans across reloads.
#[derive(Debug, Clone, PartialEq)]
pub struct JailIdentity {
    pub name: String,
    pub section: JailSection,
    /// `[redis]`, for a shared jail.
    pub redis: Option<RedisSection>,
}

impl JailIdentity {
    pub fn of(name: &str, section: &JailSection, redis: Option<&Arc<RedisStore>>) -> Self {
        Self {
            name: name.to_owned(),
            section: section.clone(),
            redis: redis.map(|r| r.definition().clone()),
        }
    }
}

pub struct Jail {
    identity: JailIdentity,
    rules: Rules,
    local: LocalJail,
    shared: Option<SharedJail>,
    /// Whether the shared store answered the last call.
    store_ok: AtomicBool,
}

impl Reusable for Jail {
    type Definition = JailIdentity;

    fn definition(&self) -> &JailIdentity {
        &self.identity
    }
}

/// Why a jail refuses a request.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    #[error("too many failed requests: banned by jail {jail:?} for {retry_after} more seconds")]
    Banned { jail: String, retry_after: u64 },
    #[error("jail {jail:?} cannot be checked now (its store is unavailable)")]
    StoreUnavailable { jail: String },
}

impl From<JailError> for Reply {
    fn from(e: JailError) -> Self {
        let detail = e.to_string();
        match e {
            JailError::Banned { retry_after, .. } => Reply::new(StatusCode::FORBIDDEN, detail)
                .with_header(header::RETRY_AFTER, retry_after.to_string()),
            JailError::StoreUnavailable { .. } => {
                Reply::new(StatusCode::SERVICE_UNAVAILABLE, detail)
            }
        }
    }
}

impl Jail {
    /// A jail with no strikes and no bans; `redis` for a shared one.
    pub fn new(identity: JailIdentity, redis: Option<Arc<RedisStore>>) -> Self {
        let s = &identity.section;
        let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let rules = Rules {
            max_strikes: s.max_strikes,
            window: millis(s.window),
            ban: millis(s.ban),
            max_keys: s.max_keys,
        };
        let shared = redis.map(|store| SharedJail::new(&identity.name, store));
        Self {
            identity,
            rules,
            local: LocalJail::default(),
            shared,
            store_ok: AtomicBool::new(true),
        }
    }

    pub fn name(&self) -> &str {
        &self.identity.name
    }

    pub fn key(&self) -> JailKey {
        self.identity.section.key
    }

    /// Whether a request that ended with `status` is a strike.
    pub fn counts(&self, status: u16) -> bool {
        self.identity.section.statuses.contains(&status)
    }

    /// Refuses `key` while it is banned (or while a fail-closed shared store is down).
    pub fn check(&self, key: &str, now: u64) -> Result<(), JailError> {
        let fail_closed = self.identity.section.on_store_error == OnStoreError::Deny;
        if self.shared.is_some() && fail_closed && !self.store_ok.load(Relaxed) {
            return Err(JailError::StoreUnavailable {
                jail: self.name().to_owned(),
            });
        }
        match self.local.banned_until(key, now) {
            Some(until) => Err(JailError::Banned {
                jail: self.name().to_owned(),
                retry_after: (until - now).div_ceil(1000),
            }),
            None => Ok(()),
        }
    }

    /// Counts a strike against `key`; the ban's length in ms when it banned the key.
    pub async fn strike(&self, key: &str, now: u64, metrics: &Metrics) -> Option<u64> {
        if let Some(shared) = &self.shared {
            match shared.strike(key, &self.rules).await {
                Ok(banned) => {
                    self.store_ok.store(true, Relaxed);
                    let left = banned?;
                    return self
                        .local
                        .ban(key, now + left, self.rules.max_keys, now)
                        .then_some(left);
                }
                Err(e) => {
                    self.store_failed(&e, metrics);
                    if self.identity.section.on_store_error == OnStoreError::Deny {
                        return None;
                    }
                }
            }
        }
        match self.local.strike(key, &self.rules, now) {
            Strike::Banned { until } => Some(until - now),
            Strike::Counted => None,
        }
    }

    /// Brings the bans up to date at `now` (a shared jail reads Redis's list); returns
    /// the keys whose ban ended.
    pub async fn refresh(&self, now: u64, metrics: &Metrics) -> Vec<String> {
        let mut ended = Vec::new();
        if let Some(shared) = &self.shared {
            match shared.bans(self.rules.max_keys).await {
                Ok(bans) => {
                    self.store_ok.store(true, Relaxed);
                    let bans = bans.into_iter().map(|(k, left)| (k, now + left)).collect();
                    ended = self.local.replace(bans);
                }
                Err(e) => self.store_failed(&e, metrics),
            }
        }
        ended.extend(self.local.expire(now));
        ended
    }

    /// Lifts `key`'s ban (in Redis too, for a shared jail); whether there was one.
    pub async fn lift(&self, key: &str) -> Result<bool, String> {
        let shared = match &self.shared {
            Some(shared) => shared.lift(key).await?,
            None => false,
        };
        Ok(self.local.lift(key) || shared)
    }

    /// The active bans at `now`: key and end (ms since the epoch).
    pub fn bans(&self, now: u64) -> Vec<(String, u64)> {
        self.local.bans(now)
    }

    fn store_failed(&self, e: &str, metrics: &Metrics) {
        if self.store_ok.swap(false, Relaxed) {
            log::warn!("jail {:?}: redis unavailable: {e}", self.name());
        }
        metrics.jail_store_error(self.name());
    }
}

/// The jails of one snapshot.
#[derive(Default)]
pub struct Jails {
    pub by_name: HashMap<String, Arc<Jail>>,
    /// Jails that count strikes on every route.
    pub everywhere: Vec<Arc<Jail>>,
}

impl Jails {
    /// Refuses a request whose `kind` of key is `key` while any jail bans it.
    pub fn check(&self, kind: JailKey, key: &str, now: u64) -> Result<(), JailError> {
        self.by_name
            .values()
            .filter(|j| j.key() == kind)
            .try_for_each(|j| j.check(key, now))
    }
}

/// Milliseconds since the Unix epoch: the clock jails are given.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
