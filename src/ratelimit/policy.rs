//! A limit policy (`[limits.NAME]`): its quota, what a request's key is made of, and
//! its buckets. Policies live in a registry keyed by name, so a reload keeps the
//! buckets of a policy whose parameters did not change.

use http::HeaderName;
use pingora::http::RequestHeader;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::Arc;

use super::gcra::Quota;
use super::local::LocalStore;
use crate::auth::Principal;
use crate::config::raw::LimitSection;
use crate::state::registry::Reusable;

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

pub struct Policy {
    pub name: Arc<str>,
    definition: LimitSection,
    pub quota: Quota,
    pub cost: u64,
    key: Vec<KeyPart>,
    pub store: LocalStore,
    hasher: RandomState,
}

impl Reusable for Policy {
    type Definition = LimitSection;

    fn definition(&self) -> &LimitSection {
        &self.definition
    }
}

impl Policy {
    pub fn build(name: &str, def: &LimitSection) -> Result<Self, String> {
        let key = def
            .key
            .iter()
            .map(|k| KeyPart::parse(k))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            name: name.into(),
            definition: def.clone(),
            quota: Quota::new(def.rate, def.per, def.burst.unwrap_or(def.rate)),
            cost: def.cost,
            key,
            store: LocalStore::new(def.max_keys),
            hasher: RandomState::new(),
        })
    }

    /// The request's bucket: a keyed hash of its key parts. A part the request has
    /// no value for (no principal, no such header or claim) is its client IP.
    pub fn key(&self, input: &KeyInput<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
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
                Some(v) => (1u8, v).hash(&mut h),
                None => (0u8, input.client_ip).hash(&mut h),
            }
        }
        h.finish()
    }

    /// `RateLimit-Policy` item: quota `q` tokens, refilled in `w` seconds.
    pub fn policy_item(&self) -> String {
        let refill = self.quota.tolerance.div_ceil(1_000_000_000).max(1);
        format!("\"{}\";q={};w={}", self.name, self.quota.burst, refill)
    }
}
