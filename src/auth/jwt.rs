//! JWT verification: strict by default. The token's `alg` must be in the configured
//! list and match its key's type; `exp` is required; `nbf` is checked; `iss` and
//! `aud` are required when configured; an unknown `crit` header rejects; `jku`,
//! `x5u` and embedded `jwk` headers are never followed; the token size is capped.
//!
//! Verified tokens are cached (bounded, keyed by the token's SHA-256, valid until
//! `exp` + leeway and only while the key set they were verified with is current), so
//! a client reusing its token pays the signature check once.

use http::{HeaderName, HeaderValue};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Algorithm, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use super::jwks::RemoteJwks;
use super::keys::KeySet;
use super::{Principal, Reason, Verdict};

pub enum KeySource {
    Static(Arc<KeySet>),
    Remote(Arc<RemoteJwks>),
}

impl KeySource {
    fn current(&self) -> Arc<KeySet> {
        match self {
            KeySource::Static(keys) => keys.clone(),
            KeySource::Remote(jwks) => jwks.current(),
        }
    }
}

/// How claims become a principal and headers.
pub struct ClaimMapping {
    pub id_claim: String,
    pub scope_claim: Option<String>,
    pub roles_claim: String,
    pub id_header: HeaderName,
    pub claim_headers: Vec<(String, HeaderName)>,
}

pub struct JwtVerifier {
    pub name: Arc<str>,
    pub keys: KeySource,
    /// One validation per allowed algorithm (the allowed list itself).
    pub validations: HashMap<Algorithm, Validation>,
    pub max_token_bytes: usize,
    pub leeway: u64,
    pub claims: ClaimMapping,
    /// `None` when `token_cache = 0`.
    pub cache: Option<quick_cache::sync::Cache<[u8; 32], Arc<CachedToken>>>,
}

pub struct CachedToken {
    principal: Arc<Principal>,
    /// Unix seconds after which the entry is void (`exp` + leeway).
    valid_until: u64,
    keys: Arc<KeySet>,
}

impl JwtVerifier {
    pub async fn verify(&self, token: &str) -> Verdict {
        if token.len() > self.max_token_bytes {
            return Verdict::rejected(Reason::TokenTooLarge);
        }
        // The cache key; no hashing when there is no cache (`token_cache = 0`).
        let digest: Option<[u8; 32]> = self
            .cache
            .as_ref()
            .map(|_| Sha256::digest(token.as_bytes()).into());
        let keys = self.keys.current();
        if let Some(hit) = self.cache.as_ref().zip(digest).and_then(|(c, d)| c.get(&d)) {
            if now() <= hit.valid_until && Arc::ptr_eq(&hit.keys, &keys) {
                return Verdict::Accepted(hit.principal.clone());
            }
        }
        let header = match decode_header(token) {
            Ok(h) => h,
            Err(_) => return Verdict::rejected(Reason::Malformed),
        };
        let kid = header.kid.as_deref();
        let Some(validation) = self.validations.get(&header.alg) else {
            return Verdict::rejected_with(Reason::AlgorithmNotAllowed, None, kid);
        };
        if header.crit.is_some() {
            return Verdict::rejected_with(Reason::UnknownCritical, None, kid);
        }
        let unknown_kid = matches!(keys.select(kid, header.alg), Err(Reason::UnknownKid));
        let keys = match &self.keys {
            KeySource::Remote(jwks) if unknown_kid => {
                jwks.refresh_now().await;
                // The current set, whether or not this call waited for a fetch: one may
                // have published the key between the lookup above and refresh_now.
                jwks.current()
            }
            _ => keys,
        };
        let key = match keys.select(kid, header.alg) {
            Ok(key) => key,
            Err(reason) => return Verdict::rejected_with(reason, None, kid),
        };
        let claims = match decode::<Map<String, Value>>(token, &key.key, validation) {
            Ok(data) => data.claims,
            Err(e) => return Verdict::rejected_with(reason_for(e.kind()), None, kid),
        };
        let principal = Arc::new(self.principal(claims, kid));
        if let (Some(cache), Some(digest), Some(exp)) =
            (&self.cache, digest, principal_exp(&principal))
        {
            cache.insert(
                digest,
                Arc::new(CachedToken {
                    principal: principal.clone(),
                    valid_until: exp.saturating_add(self.leeway),
                    keys: keys.clone(),
                }),
            );
        }
        Verdict::Accepted(principal)
    }

    fn principal(&self, claims: Map<String, Value>, kid: Option<&str>) -> Principal {
        let m = &self.claims;
        let id = claims.get(&m.id_claim).map(claim_text).unwrap_or_default();
        let scopes = match &m.scope_claim {
            Some(name) => claims.get(name).map(string_list),
            None => claims
                .get("scope")
                .or_else(|| claims.get("scp"))
                .map(string_list),
        }
        .unwrap_or_default();
        let roles = claims
            .get(&m.roles_claim)
            .map(string_list)
            .unwrap_or_default();
        let mut headers = Vec::new();
        if let Ok(v) = HeaderValue::from_str(&id) {
            headers.push((m.id_header.clone(), v));
        }
        for (claim, header) in &m.claim_headers {
            let value = claims.get(claim).map(claim_text);
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                headers.push((header.clone(), v));
            }
        }
        Principal {
            authenticator: self.name.clone(),
            id,
            scopes,
            roles,
            key_id: kid.map(str::to_owned),
            headers,
            claims: Some(claims),
            key: OnceLock::new(),
        }
    }
}

fn principal_exp(p: &Principal) -> Option<u64> {
    let exp = p.claims.as_ref()?.get("exp")?;
    exp.as_u64().or_else(|| exp.as_f64().map(|f| f as u64))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn reason_for(kind: &ErrorKind) -> Reason {
    match kind {
        ErrorKind::InvalidSignature => Reason::BadSignature,
        ErrorKind::ExpiredSignature => Reason::Expired,
        ErrorKind::ImmatureSignature => Reason::NotYetValid,
        ErrorKind::InvalidIssuer => Reason::BadIssuer,
        ErrorKind::InvalidAudience => Reason::BadAudience,
        ErrorKind::MissingRequiredClaim(c) if c == "iss" => Reason::BadIssuer,
        ErrorKind::MissingRequiredClaim(c) if c == "aud" => Reason::BadAudience,
        ErrorKind::MissingRequiredClaim(c) if c == "exp" => Reason::MissingExp,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => Reason::AlgorithmNotAllowed,
        _ => Reason::Malformed,
    }
}

/// A claim as header text: strings as they are, anything else as compact JSON.
fn claim_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `"a b c"` or `["a", "b"]`.
fn string_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}
