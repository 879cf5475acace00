//! API keys: the presented key's SHA-256 is compared, in constant time, with every
//! consumer's configured digest (the keys themselves are never stored). A match on a
//! disabled consumer is rejected as such.

use http::{HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use std::sync::{Arc, OnceLock};
use subtle::ConstantTimeEq;

use super::{Principal, Reason, Verdict};

pub struct Consumer {
    pub id: String,
    pub digest: [u8; 32],
    pub disabled: bool,
    /// Built once: the principal a valid key of this consumer yields.
    pub principal: Arc<Principal>,
}

pub struct ApiKeys {
    pub consumers: Vec<Consumer>,
}

impl ApiKeys {
    pub fn verify(&self, key: &str) -> Verdict {
        let digest = Sha256::digest(key.as_bytes());
        // No early exit: every digest is compared, whatever matches.
        let mut found: Option<&Consumer> = None;
        for consumer in &self.consumers {
            if bool::from(consumer.digest.ct_eq(digest.as_slice())) {
                found = Some(consumer);
            }
        }
        match found {
            Some(c) if c.disabled => {
                Verdict::rejected_with(Reason::DisabledConsumer, Some(&c.id), None)
            }
            Some(c) => Verdict::Accepted(c.principal.clone()),
            None => Verdict::rejected(Reason::UnknownKey),
        }
    }
}

/// Parses a configured `key_sha256` (64 hex digits).
pub fn parse_digest(hex_digest: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(hex_digest).map_err(|e| format!("not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| "a SHA-256 digest is 64 hex digits".to_owned())
}

/// The principal for a consumer: its id in `id_header`.
pub fn consumer_principal(
    authenticator: &Arc<str>,
    id: &str,
    scopes: &[String],
    roles: &[String],
    id_header: &HeaderName,
) -> Principal {
    Principal {
        authenticator: authenticator.clone(),
        id: id.to_owned(),
        scopes: scopes.to_vec(),
        roles: roles.to_vec(),
        key_id: None,
        headers: HeaderValue::from_str(id)
            .map(|v| vec![(id_header.clone(), v)])
            .unwrap_or_default(),
        claims: None,
        key: OnceLock::new(),
    }
}

/// `tollgate hash-key`: the digest to put in `key_sha256` for `key`.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}
