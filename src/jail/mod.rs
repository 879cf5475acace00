//! Automatic bans (`[jails.NAME]`): a jail counts strikes per key (the client IP, or
//! the authenticated consumer) from the final status of requests on the routes that
//! list it (`[server] jails`: every route). `max_strikes` within `window` ban the key
//! for `ban`: every request from it, on every route, is refused with 403 (client-IP
//! jails before routing, consumer jails after authentication) until the ban ends.
//! Trusted proxies are never a key.
//!
//! State lives in a [`JailState`] kept across reloads while the jail's name, key kind
//! and store (for a shared jail, `[redis]`) are unchanged; a snapshot's [`Jail`] pairs
//! it with the current rules. A local jail keeps strikes and bans in this
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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use crate::base::registry::{Registry, Reusable};
use crate::base::Reply;
use crate::config::raw::{JailSection, OnStoreError, RedisSection};
use crate::edge::forwarded::{client_network, TrustedProxies};
use crate::observability::Metrics;
use crate::ratelimit::RedisStore;
use local::{LocalJail, Rules, Strike};
use shared::SharedJail;

/// The client a request counts for, as jails and anomaly detection see it: its
/// address (an IPv6 one as its /64), or `None` when it cannot be told apart (not
/// known, or a trusted proxy's own: everyone behind it would be one client).
pub fn client_of(ip: std::net::IpAddr, trusted: &TrustedProxies) -> Option<std::net::IpAddr> {
    let unknown = ip.is_unspecified() || trusted.contains(ip);
    (!unknown).then(|| client_network(ip))
}

/// A client's key in a `client_ip` jail: an IPv4 address as it is; an IPv6 address as
/// its /64.
pub fn ip_key(ip: std::net::IpAddr) -> String {
    match client_network(ip) {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(net) => format!("{net}/64"),
    }
}

/// The state of the running config's jails, by name.
pub type JailsRegistry = Registry<JailState>;

/// What a jail counts strikes and bans by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The client's address (its /64 for IPv6).
    ClientIp,
    /// The authenticated consumer.
    Consumer,
}

/// What a jail's state means: equal identities keep strikes and bans across reloads.
/// Its rules (`statuses`, `max_strikes`, `window`, `ban`, `max_keys`,
/// `on_store_error`) are not part of it: changing them keeps the bans.
#[derive(Debug, Clone, PartialEq)]
pub struct JailIdentity {
    pub name: String,
    pub key: KeyKind,
    /// `[redis]`, for a shared jail.
    pub redis: Option<RedisSection>,
}

/// A jail's strikes and bans, kept across reloads while its identity is unchanged.
pub struct JailState {
    identity: JailIdentity,
    local: LocalJail,
    shared: Option<SharedJail>,
    /// Whether the shared store answered the last call.
    store_ok: AtomicBool,
    /// Bans read from the shared store at most (the current config's `max_keys`).
    max_keys: AtomicUsize,
}

impl Reusable for JailState {
    type Definition = JailIdentity;

    fn definition(&self) -> &JailIdentity {
        &self.identity
    }
}

/// A jail of one snapshot: its state and the rules that fill it.
pub struct Jail {
    pub state: Arc<JailState>,
    rules: Rules,
    statuses: Vec<u16>,
    fail_closed: bool,
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

impl JailState {
    /// A state with no strikes and no bans; `redis` for a shared jail.
    pub fn new(identity: JailIdentity, redis: Option<Arc<RedisStore>>) -> Self {
        let shared = redis.map(|store| SharedJail::new(&identity.name, store));
        Self {
            identity,
            local: LocalJail::default(),
            shared,
            store_ok: AtomicBool::new(true),
            max_keys: AtomicUsize::new(1),
        }
    }

    pub fn name(&self) -> &str {
        &self.identity.name
    }

    /// Sets the cap on bans read from the shared store (the committed config's).
    pub fn set_max_keys(&self, max_keys: usize) {
        self.max_keys.store(max_keys, Relaxed);
    }

    /// Brings the bans up to date at `now` (a shared jail reads Redis's list); returns
    /// the keys whose ban ended.
    pub async fn refresh(&self, now: u64, metrics: &Metrics) -> Vec<String> {
        let mut ended = Vec::new();
        if let Some(shared) = &self.shared {
            match shared.bans(self.max_keys.load(Relaxed)).await {
                Ok(bans) => {
                    self.store_ok.store(true, Relaxed);
                    let bans = bans
                        .into_iter()
                        .map(|(k, left)| (k, now.saturating_add(left)))
                        .collect();
                    ended = self.local.replace_shared(bans, now);
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

    /// The active bans at `now`: key and end (ms since the epoch), soonest first.
    pub fn bans(&self, now: u64) -> Vec<(String, u64)> {
        self.local.bans(now)
    }

    /// How many bans are in force at `now`.
    pub fn ban_count(&self, now: u64) -> usize {
        self.local.count(now)
    }

    fn store_failed(&self, e: &str, metrics: &Metrics) {
        if self.store_ok.swap(false, Relaxed) {
            log::warn!("jail {:?}: redis unavailable: {e}", self.name());
        }
        metrics.jail_store_error(self.name());
    }
}

impl Jail {
    pub fn new(state: Arc<JailState>, section: &JailSection) -> Self {
        let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            state,
            rules: Rules {
                max_strikes: section.max_strikes,
                window: millis(section.window),
                ban: millis(section.ban),
                max_keys: section.max_keys,
            },
            statuses: section.statuses.clone(),
            fail_closed: section.on_store_error == OnStoreError::Deny,
        }
    }

    pub fn name(&self) -> &str {
        self.state.name()
    }

    pub fn key(&self) -> KeyKind {
        self.state.identity.key
    }

    pub fn max_keys(&self) -> usize {
        self.rules.max_keys
    }

    /// Whether counting a strike may wait on I/O (a jail kept in Redis).
    pub fn may_wait(&self) -> bool {
        self.state.shared.is_some()
    }

    /// Whether a request that ended with `status` is a strike.
    pub fn counts(&self, status: u16) -> bool {
        self.statuses.contains(&status)
    }

    /// Whether checking a key can refuse it at all (any ban, or a fail-closed shared
    /// store that is down): when not, the key need not even be computed.
    fn may_refuse(&self) -> bool {
        self.state.local.has_bans() || self.store_unavailable()
    }

    fn store_unavailable(&self) -> bool {
        let state = &self.state;
        self.fail_closed && state.shared.is_some() && !state.store_ok.load(Relaxed)
    }

    /// Refuses `key` while it is banned (or while a fail-closed shared store is down).
    pub fn check(&self, key: &str, now: u64) -> Result<(), JailError> {
        if self.store_unavailable() {
            return Err(JailError::StoreUnavailable {
                jail: self.name().to_owned(),
            });
        }
        match self.state.local.banned_until(key, now) {
            Some(until) => Err(JailError::Banned {
                jail: self.name().to_owned(),
                retry_after: (until - now).div_ceil(1000),
            }),
            None => Ok(()),
        }
    }

    /// Counts a strike against `key`; the ban's length in ms when it banned the key.
    pub async fn strike(&self, key: &str, now: u64, metrics: &Metrics) -> Option<u64> {
        self.strike_under(key, &self.rules, now, metrics).await
    }

    /// Bans `key` at once, for the jail's `ban` (a detector's verdict: one strike
    /// that is the last); the ban's length in ms, `None` when the store failed.
    pub async fn sentence(&self, key: &str, now: u64, metrics: &Metrics) -> Option<u64> {
        let rules = Rules {
            max_strikes: 1,
            ..self.rules
        };
        self.strike_under(key, &rules, now, metrics).await
    }

    async fn strike_under(
        &self,
        key: &str,
        rules: &Rules,
        now: u64,
        metrics: &Metrics,
    ) -> Option<u64> {
        let state = &self.state;
        if let Some(shared) = &state.shared {
            match shared.strike(key, rules).await {
                Ok(banned) => {
                    state.store_ok.store(true, Relaxed);
                    let ban = banned?;
                    let until = now.saturating_add(ban);
                    state.local.ban(key, until, true, rules.max_keys, now);
                    return Some(ban);
                }
                Err(e) => {
                    state.store_failed(&e, metrics);
                    if self.fail_closed {
                        return None;
                    }
                }
            }
        }
        match state.local.strike(key, rules, now) {
            Strike::Banned { until } => Some(until - now),
            Strike::Counted => None,
        }
    }
}

/// The jails of one snapshot.
#[derive(Default)]
pub struct Jails {
    pub by_name: HashMap<String, Arc<Jail>>,
}

impl Jails {
    /// The jails whose key is of `kind`.
    pub fn of_kind(&self, kind: KeyKind) -> Vec<Arc<Jail>> {
        let jails = self.by_name.values().filter(|j| j.key() == kind);
        jails.cloned().collect()
    }
}

/// Refuses a request while one of `jails` bans its key (`key` is computed only when
/// one of them could refuse; `None`: the request has no such key).
pub fn check_bans(
    jails: &[Arc<Jail>],
    key: impl FnOnce() -> Option<String>,
    now: u64,
) -> Result<(), JailError> {
    let mut refusing = jails.iter().filter(|j| j.may_refuse()).peekable();
    if refusing.peek().is_none() {
        return Ok(());
    }
    let Some(key) = key() else {
        return Ok(());
    };
    refusing.try_for_each(|j| j.check(&key, now))
}
