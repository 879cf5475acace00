//! A limit policy (`[limits.NAME]`): its quota, what a request's key is made of, and
//! its buckets (local, or in Redis with a local fallback).
//!
//! Buckets outlive reloads by what they mean: a [`BucketIdentity`] (the policy's
//! name, rate, period, burst and key kinds). The local buckets live in a registry
//! under that identity, and a Redis bucket's key is a documented function of it (see
//! [`BucketIdentity::redis_key`]), so changing `cost`, `max_keys`, `on_store_error`
//! or `[redis]` keeps every bucket, changing the identity starts fresh ones, and two
//! tollgate versions sharing one Redis during a rolling upgrade share buckets.

use pingora::http::RequestHeader;
use sha2::{Digest, Sha256};
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use super::gcra::{Quota, Take};
use super::local::LocalStore;
use super::redis::RedisStore;
use crate::auth::Principal;
use crate::base::registry::Reusable;
use crate::config::limit_key::KeyPart;
use crate::config::raw::{LimitSection, OnStoreError};
use crate::observability::Metrics;

/// What a request offers for its key.
pub struct KeyInput<'a> {
    pub client_ip: IpAddr,
    pub principal: Option<&'a Principal>,
    pub route: &'a str,
    pub req: &'a RequestHeader,
}

/// What a policy's buckets mean. Equal identities share buckets across reloads (and,
/// in Redis, across instances and versions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketIdentity {
    pub name: String,
    pub rate: u64,
    pub per: Duration,
    pub burst: u64,
    pub key: Vec<KeyPart>,
}

impl BucketIdentity {
    pub fn of(name: &str, l: &LimitSection) -> Result<Self, String> {
        Ok(Self {
            name: name.to_owned(),
            rate: l.rate,
            per: l.per,
            burst: l.burst.unwrap_or(l.rate),
            key: l
                .key
                .iter()
                .map(|k| KeyPart::parse(k))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The Redis key of a bucket: `tollgate:rl:NAME:RATE/PERms/BURST:KEY:BUCKET`, where
    /// `PER` is the period in milliseconds, `KEY` the key kinds joined by `+`
    /// (`client_ip`, `header:x-tenant+route`) and `BUCKET` the hex of the first 16
    /// bytes of the SHA-256, over each key part in order, of a tag byte (1: the
    /// request's value, 0: the client IP in its place), the value's length as 8
    /// big-endian bytes, and the value. Example:
    /// `tollgate:rl:per-ip:100/1000ms/200:client_ip:3f1c…`.
    pub fn redis_key(&self, input: &KeyInput<'_>) -> String {
        let kinds: Vec<String> = self.key.iter().map(KeyPart::kind).collect();
        let mut h = Sha256::new();
        key_parts(&self.key, input, |tag, value| {
            h.update([tag]);
            h.update((value.len() as u64).to_be_bytes());
            h.update(value);
        });
        format!(
            "tollgate:rl:{}:{}/{}ms/{}:{}:{}",
            self.name,
            self.rate,
            self.per.as_millis(),
            self.burst,
            kinds.join("+"),
            hex::encode(&h.finalize()[..16])
        )
    }
}

/// A policy's local buckets: kept across reloads while its identity is unchanged. For
/// a Redis policy, the fallback that keeps limiting while Redis is unavailable.
pub struct Buckets {
    identity: BucketIdentity,
    pub store: LocalStore,
    hasher: RandomState,
}

impl Reusable for Buckets {
    type Definition = BucketIdentity;

    fn definition(&self) -> &BucketIdentity {
        &self.identity
    }
}

impl Buckets {
    pub fn new(identity: BucketIdentity) -> Self {
        Self {
            identity,
            store: LocalStore::new(),
            hasher: RandomState::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.identity.name
    }

    /// The local bucket: a keyed hash of the key parts (fast, private to this process).
    /// Public for `cargo bench`.
    pub fn local_key(&self, input: &KeyInput<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        key_parts(&self.identity.key, input, |tag, value| {
            (tag, value).hash(&mut h)
        });
        h.finish()
    }
}

/// The shared store of a `store = "redis"` policy.
struct Shared {
    store: Arc<RedisStore>,
    /// While Redis cannot answer, requests are refused (`on_store_error = "deny"`)
    /// rather than limited by the local buckets.
    fail_closed: bool,
    /// Redis is failing for this policy (logged once per outage).
    down: AtomicBool,
}

/// A policy as one snapshot has it: its buckets (kept across reloads) and its
/// settings.
pub struct Policy {
    pub name: Arc<str>,
    pub quota: Quota,
    pub cost: u64,
    /// Buckets tracked at most, locally.
    max_keys: usize,
    buckets: Arc<Buckets>,
    shared: Option<Shared>,
}

/// Where a request's tokens were taken, to give them back.
pub enum Taken {
    Local(u64),
    Redis(String),
}

impl Policy {
    pub fn new(l: &LimitSection, buckets: Arc<Buckets>, redis: Option<Arc<RedisStore>>) -> Self {
        let id = &buckets.identity;
        Self {
            name: id.name.as_str().into(),
            quota: Quota::new(id.rate, id.per, id.burst),
            cost: l.cost,
            max_keys: l.max_keys,
            shared: redis.map(|store| Shared {
                store,
                fail_closed: l.on_store_error == OnStoreError::Deny,
                down: AtomicBool::new(false),
            }),
            buckets,
        }
    }

    /// Whether taking tokens may wait on I/O (a policy kept in Redis).
    pub fn may_wait(&self) -> bool {
        self.shared.is_some()
    }

    pub fn buckets(&self) -> &Arc<Buckets> {
        &self.buckets
    }

    /// Takes the request's tokens: in Redis for a shared policy (and, when Redis
    /// fails, as `on_store_error` says: from the local bucket, or not at all), else
    /// from the local bucket. `None`: the store failed and the policy denies.
    pub async fn take(
        &self,
        input: &KeyInput<'_>,
        now: u64,
        metrics: &Metrics,
    ) -> Option<(Take, Taken)> {
        if let Some(shared) = &self.shared {
            let key = self.buckets.identity.redis_key(input);
            match shared.store.take(&key, &self.quota, self.cost).await {
                Ok(taken) => {
                    if shared.down.swap(false, Relaxed) {
                        log::info!("rate limit {:?}: Redis answers again", self.name);
                    }
                    return Some((taken, Taken::Redis(key)));
                }
                Err(e) => {
                    metrics.rate_limit_store_error(&self.name);
                    if !shared.down.swap(true, Relaxed) {
                        log::warn!(
                            "rate limit {:?}: Redis unavailable ({e}); {} until it answers again",
                            self.name,
                            match shared.fail_closed {
                                true => "refusing its requests",
                                false => "limiting with this process's buckets",
                            }
                        );
                    }
                    if shared.fail_closed {
                        return None;
                    }
                }
            }
        }
        let key = self.buckets.local_key(input);
        let store = &self.buckets.store;
        let taken = store.take(key, &self.quota, now, self.cost, self.max_keys);
        Some((taken, Taken::Local(key)))
    }

    pub async fn refund(&self, taken: &Taken) {
        match (taken, &self.shared) {
            (Taken::Local(key), _) => self.buckets.store.refund(*key, &self.quota, self.cost),
            (Taken::Redis(key), Some(shared)) => {
                if let Err(e) = shared.store.refund(key, &self.quota, self.cost).await {
                    log::debug!("rate limit {:?}: refund failed: {e}", self.name);
                }
            }
            (Taken::Redis(_), None) => {}
        }
    }

    /// `RateLimit-Policy` item: quota `q` tokens, refilled in `w` seconds.
    pub fn policy_item(&self) -> String {
        let refill = self.quota.tolerance.div_ceil(1_000_000_000).max(1);
        format!("\"{}\";q={};w={}", self.name, self.quota.burst, refill)
    }
}

/// Visits the key parts. A part the request has no value for (no principal, no such
/// header or claim) is its client IP.
fn key_parts(parts: &[KeyPart], input: &KeyInput<'_>, mut visit: impl FnMut(u8, &[u8])) {
    // The client's address in its text form, written once if a part needs it.
    let mut ip: Vec<u8> = Vec::new();
    for part in parts {
        let value: Option<&str> = match part {
            KeyPart::ClientIp => None,
            KeyPart::Consumer => input
                .principal
                .map(|p| p.id.as_str())
                .filter(|id| !id.is_empty()),
            KeyPart::Route => Some(input.route),
            KeyPart::Header(name) => input.req.headers.get(name).and_then(|v| v.to_str().ok()),
            KeyPart::Claim(name) => input
                .principal
                .and_then(|p| p.claims.as_ref())
                .and_then(|c| c.get(name))
                .and_then(|v| v.as_str()),
        };
        match value {
            Some(v) => visit(1, v.as_bytes()),
            None => {
                if ip.is_empty() {
                    crate::base::headers::push_ip(&mut ip, input.client_ip);
                }
                visit(0, &ip)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn policy(key: &str) -> Buckets {
        let text = format!("[listeners.a]\naddr = \"127.0.0.1:1\"\n[limits.p]\nkey = {key}\nrate = 1\nper = \"1s\"\n");
        let limit = load_str(&text, "t").expect("valid").raw.limits["p"].clone();
        Buckets::new(BucketIdentity::of("p", &limit).expect("identity"))
    }

    fn request(tenant: Option<&str>) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).expect("request");
        if let Some(t) = tenant {
            r.insert_header("x-tenant", t).expect("header");
        }
        r
    }

    fn principal(org: Option<&str>) -> Principal {
        let mut claims = serde_json::Map::new();
        if let Some(o) = org {
            claims.insert("org".into(), serde_json::json!(o));
        }
        Principal {
            authenticator: "a".into(),
            id: "alice".into(),
            scopes: vec![],
            roles: vec![],
            key_id: None,
            headers: vec![],
            claims: Some(claims),
            key: Default::default(),
        }
    }

    #[test]
    fn header_and_route_parts_combine_and_missing_values_fall_back_to_the_client_ip() {
        let p = policy(r#"["header:x-tenant", "route"]"#);
        let (ip1, ip2) = (
            "192.0.2.1".parse().expect("ip"),
            "192.0.2.2".parse().expect("ip"),
        );
        let (a, b, none) = (request(Some("a")), request(Some("b")), request(None));
        let key = |req: &RequestHeader, ip, route| {
            p.local_key(&KeyInput {
                client_ip: ip,
                principal: None,
                route,
                req,
            })
        };
        assert_eq!(
            key(&a, ip1, "r"),
            key(&a, ip2, "r"),
            "the header decides, not the IP"
        );
        assert_ne!(key(&a, ip1, "r"), key(&b, ip1, "r"));
        assert_ne!(
            key(&a, ip1, "r"),
            key(&a, ip1, "other"),
            "the route is part of the key"
        );
        assert_ne!(
            key(&none, ip1, "r"),
            key(&none, ip2, "r"),
            "no header: the client IP"
        );
        assert_eq!(key(&none, ip1, "r"), key(&none, ip1, "r"));
    }

    fn input<'a>(principal: Option<&'a Principal>, req: &'a RequestHeader) -> KeyInput<'a> {
        let client_ip = "192.0.2.1".parse().expect("ip");
        KeyInput {
            client_ip,
            principal,
            route: "r",
            req,
        }
    }

    #[test]
    fn claim_keys_read_the_principal_and_redis_keys_agree_across_instances() {
        let (p, q) = (policy("\"claim:org\""), policy("\"claim:org\""));
        let req = request(None);
        let (acme, globex, none) = (
            principal(Some("acme")),
            principal(Some("globex")),
            principal(None),
        );
        assert_ne!(
            p.local_key(&input(Some(&acme), &req)),
            p.local_key(&input(Some(&globex), &req))
        );
        assert_eq!(
            p.local_key(&input(Some(&none), &req)),
            p.local_key(&input(None, &req)),
            "no claim: the client IP"
        );
        // Two processes (two RandomStates) must agree on Redis keys, not on local ones.
        let redis_key = |b: &Buckets, who| b.identity.redis_key(&input(Some(who), &req));
        assert_eq!(redis_key(&p, &acme), redis_key(&q, &acme));
        assert_ne!(redis_key(&p, &acme), redis_key(&p, &globex));
    }

    #[test]
    fn the_redis_key_is_a_documented_function_of_the_identity_and_the_request() {
        let p = policy("[\"header:X-Tenant\", \"route\"]");
        let req = request(Some("acme"));
        let key = p.identity.redis_key(&input(None, &req));
        // SHA-256 of [1, len 4, "acme", 1, len 1, "r"], first 16 bytes.
        let mut h = Sha256::new();
        for value in [&b"acme"[..], b"r"] {
            h.update([1u8]);
            h.update((value.len() as u64).to_be_bytes());
            h.update(value);
        }
        let bucket = hex::encode(&h.finalize()[..16]);
        assert_eq!(
            key,
            format!("tollgate:rl:p:1/1000ms/1:header:x-tenant+route:{bucket}")
        );
    }
}
