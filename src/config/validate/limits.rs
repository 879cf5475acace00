//! Rate limits, jails and `[redis]`: stores, key parts, quotas, references.

use super::{Problems, TomlPath, Unparsed};
use crate::config::limit_key::KeyPart;
use crate::config::raw::{
    JailSection, LimitSection, LimitStore, OnStoreError, RawConfig, RedisSection,
};

pub(super) fn limit(raw: &RawConfig, l: &LimitSection, path: &TomlPath, out: &mut Problems) {
    store(raw, l.store, l.on_store_error, path, out);
    if l.key.is_empty() {
        out.push((
            path.key("key"),
            "name what a bucket belongs to, e.g. \"client_ip\"".into(),
        ));
    }
    for (i, k) in l.key.iter().enumerate() {
        if let Err(e) = KeyPart::parse(k) {
            out.push((path.key("key").index(i), e));
        }
    }
    if l.rate == 0 || l.per.is_zero() {
        out.push((path.clone(), "rate and per must be greater than 0".into()));
    }
    let burst = l.burst.unwrap_or(l.rate);
    if burst == 0 || l.cost == 0 || l.cost > burst {
        out.push((
            path.clone(),
            format!("need 1 <= cost ({}) <= burst ({burst})", l.cost),
        ));
    }
    if l.max_keys == 0 {
        out.push((path.key("max_keys"), "must be at least 1".into()));
    }
}

/// `[redis]`: a usable URL and timeout.
pub(super) fn redis(r: &RedisSection, path: &TomlPath, out: &mut Problems) {
    if !(r.url.starts_with("redis://") || r.url.starts_with("rediss://")) {
        out.push((
            path.key("url"),
            "expected redis://host:port or rediss://host:port".into(),
        ));
    }
    if r.timeout.is_zero() {
        out.push((path.key("timeout"), "must be greater than 0".into()));
    }
}

/// A store that exists, and `on_store_error` only where it means something.
fn store(
    raw: &RawConfig,
    store: LimitStore,
    on_error: OnStoreError,
    path: &TomlPath,
    out: &mut Problems,
) {
    match store {
        LimitStore::Redis if raw.redis.is_none() => out.push((
            path.key("store"),
            "store = \"redis\" needs a [redis] section with its url".into(),
        )),
        LimitStore::Local if on_error != OnStoreError::default() => out.push((
            path.key("on_store_error"),
            "only applies with store = \"redis\"".into(),
        )),
        LimitStore::Redis | LimitStore::Local => {}
    }
}

/// `[jails.NAME]`: a store, a quota of strikes, a ban, statuses that are statuses.
pub(super) fn jail(raw: &RawConfig, j: &JailSection, path: &TomlPath, out: &mut Problems) {
    store(raw, j.store, j.on_store_error, path, out);
    if j.max_strikes == 0 {
        out.push((path.key("max_strikes"), "must be at least 1".into()));
    }
    for (key, d) in [("window", j.window), ("ban", j.ban)] {
        if d.as_millis() == 0 {
            out.push((path.key(key), "must be at least 1ms".into()));
        }
    }
    if j.statuses.is_empty() {
        out.push((path.key("statuses"), "name at least one status".into()));
    }
    for (i, s) in j.statuses.iter().enumerate() {
        if !(100..=599).contains(s) {
            out.push((
                path.key("statuses").index(i),
                format!("{s} is not an HTTP status"),
            ));
        }
    }
    if j.max_keys == 0 {
        out.push((path.key("max_keys"), "must be at least 1".into()));
    }
}

/// References to `[jails]` (from `[server] jails` or a route's `jails`).
pub(super) fn jail_names(
    raw: &RawConfig,
    unparsed: &Unparsed,
    names: &[String],
    path: &TomlPath,
    out: &mut Problems,
) {
    for (i, name) in names.iter().enumerate() {
        if !raw.jails.contains_key(name) && !unparsed.jails.contains(name) {
            out.push((path.index(i), format!("no jail named {name:?}")));
        }
    }
}
