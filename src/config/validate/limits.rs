//! Rate limits and `[redis]`: stores, key parts, quotas.

use super::{Problems, TomlPath};
use crate::config::limit_key::KeyPart;
use crate::config::raw::{LimitSection, LimitStore, OnStoreError, RawConfig, RedisSection};

pub(super) fn limit(raw: &RawConfig, l: &LimitSection, path: &TomlPath, out: &mut Problems) {
    match l.store {
        LimitStore::Redis if raw.redis.is_none() => out.push((
            path.key("store"),
            "store = \"redis\" needs a [redis] section with its url".into(),
        )),
        LimitStore::Local if l.on_store_error != OnStoreError::default() => out.push((
            path.key("on_store_error"),
            "only applies with store = \"redis\"".into(),
        )),
        LimitStore::Redis | LimitStore::Local => {}
    }
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
