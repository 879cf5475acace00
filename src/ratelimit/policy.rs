//! A limit policy (`[limits.NAME]`): its quota, what a request's key is made of, and
//! its buckets (local, or in Redis with a local fallback). Policies live in a
//! registry keyed by name, so a reload keeps the buckets of a policy whose
//! parameters did not change.

use http::HeaderName;
use pingora::http::RequestHeader;
use sha2::{Digest, Sha256};
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use super::gcra::{Quota, Take};
use super::local::LocalStore;
use super::redis::RedisStore;
use crate::auth::Principal;
use crate::base::registry::Reusable;
use crate::config::raw::{LimitSection, OnStoreError, RedisSection};
use crate::observability::Metrics;

/// One part of a bucket key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    ClientIp,
    Consumer,
    Route,
    Header(HeaderName),
    Claim(String),
}

impl KeyPart {
    /// `client_ip`, `consumer`, `route`, `header:NAME` or `claim:NAME`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            None => match text {
                "client_ip" => Ok(KeyPart::ClientIp),
                "consumer" => Ok(KeyPart::Consumer),
                "route" => Ok(KeyPart::Route),
                _ => Err(format!("unknown key {text:?}: expected client_ip, consumer, route, header:NAME or claim:NAME")),
            },
            Some(("header", name)) => HeaderName::from_bytes(name.as_bytes())
                .map(KeyPart::Header)
                .map_err(|_| format!("invalid header name {name:?}")),
            Some(("claim", name)) if !name.is_empty() => Ok(KeyPart::Claim(name.to_owned())),
            Some(_) => Err(format!("unknown key {text:?}: expected header:NAME or claim:NAME")),
        }
    }
}

/// What a request offers for its key.
pub struct KeyInput<'a> {
    pub client_ip: IpAddr,
    pub principal: Option<&'a Principal>,
    pub route: &'a str,
    pub req: &'a RequestHeader,
}

/// A policy's parameters and, for `store = "redis"`, the Redis it uses: changing
/// either starts fresh buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDefinition {
    pub limit: LimitSection,
    pub redis: Option<RedisSection>,
}

/// The shared store of a `store = "redis"` policy.
struct Shared {
    store: Arc<RedisStore>,
    on_error: OnStoreError,
    /// `tollgate:rl:NAME:PARAMS:`: a new namespace when the parameters change.
    prefix: String,
    /// Redis is failing for this policy (logged once per outage).
    down: AtomicBool,
}

pub struct Policy {
    pub name: Arc<str>,
    definition: PolicyDefinition,
    pub quota: Quota,
    pub cost: u64,
    key: Vec<KeyPart>,
    /// The buckets of a local policy; for a Redis policy, the fallback that keeps
    /// limiting while Redis is unavailable.
    pub store: LocalStore,
    shared: Option<Shared>,
    hasher: RandomState,
}

/// Where a request's tokens were taken, to give them back.
pub enum Taken {
    Local(u64),
    Redis(String),
}

impl Reusable for Policy {
    type Definition = PolicyDefinition;

    fn definition(&self) -> &PolicyDefinition {
        &self.definition
    }
}

impl Policy {
    pub fn build(
        name: &str,
        def: &PolicyDefinition,
        redis: Option<Arc<RedisStore>>,
    ) -> Result<Self, String> {
        let l = &def.limit;
        let key = l
            .key
            .iter()
            .map(|k| KeyPart::parse(k))
            .collect::<Result<_, _>>()?;
        let params: [u8; 32] = Sha256::digest(format!("{l:?}").as_bytes()).into();
        let shared = redis.map(|store| Shared {
            store,
            on_error: l.on_store_error,
            prefix: format!("tollgate:rl:{name}:{}:", hex::encode(&params[..6])),
            down: AtomicBool::new(false),
        });
        Ok(Self {
            name: name.into(),
            definition: def.clone(),
            quota: Quota::new(l.rate, l.per, l.burst.unwrap_or(l.rate)),
            cost: l.cost,
            key,
            store: LocalStore::new(l.max_keys),
            shared,
            hasher: RandomState::new(),
        })
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
            let key = format!("{}{}", shared.prefix, self.shared_key(input));
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
                            "rate limit {:?}: Redis unavailable ({e}); on_store_error = {:?} until it answers again",
                            self.name,
                            shared.on_error
                        );
                    }
                    if shared.on_error == OnStoreError::Deny {
                        return None;
                    }
                }
            }
        }
        let key = self.local_key(input);
        let taken = self.store.take(key, &self.quota, now, self.cost);
        Some((taken, Taken::Local(key)))
    }

    pub async fn refund(&self, taken: &Taken) {
        match (taken, &self.shared) {
            (Taken::Local(key), _) => self.store.refund(*key, &self.quota, self.cost),
            (Taken::Redis(key), Some(shared)) => {
                if let Err(e) = shared.store.refund(key, &self.quota, self.cost).await {
                    log::debug!("rate limit {:?}: refund failed: {e}", self.name);
                }
            }
            (Taken::Redis(_), None) => {}
        }
    }

    /// The local bucket: a keyed hash of the key parts (fast, private to this process).
    fn local_key(&self, input: &KeyInput<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        self.key_parts(input, |tag, value| (tag, value).hash(&mut h));
        h.finish()
    }

    /// The Redis bucket: the same parts, hashed the same way by every instance.
    fn shared_key(&self, input: &KeyInput<'_>) -> String {
        let mut h = Sha256::new();
        self.key_parts(input, |tag, value| {
            h.update([tag]);
            h.update((value.len() as u64).to_be_bytes());
            h.update(value);
        });
        hex::encode(&h.finalize()[..16])
    }

    /// Visits the key parts. A part the request has no value for (no principal, no
    /// such header or claim) is its client IP.
    fn key_parts(&self, input: &KeyInput<'_>, mut visit: impl FnMut(u8, &[u8])) {
        let ip = input.client_ip.to_string();
        for part in &self.key {
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
                None => visit(0, ip.as_bytes()),
            }
        }
    }

    /// `RateLimit-Policy` item: quota `q` tokens, refilled in `w` seconds.
    pub fn policy_item(&self) -> String {
        let refill = self.quota.tolerance.div_ceil(1_000_000_000).max(1);
        format!("\"{}\";q={};w={}", self.name, self.quota.burst, refill)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn policy(key: &str) -> Policy {
        let text = format!("[listeners.a]\naddr = \"127.0.0.1:1\"\n[limits.p]\nkey = {key}\nrate = 1\nper = \"1s\"\n");
        let limit = load_str(&text, "t").expect("valid").raw.limits["p"].clone();
        Policy::build("p", &PolicyDefinition { limit, redis: None }, None).expect("policy")
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
        assert_eq!(
            p.shared_key(&input(Some(&acme), &req)),
            q.shared_key(&input(Some(&acme), &req))
        );
    }
}
