//! Verification keys: a set built from a PEM file, an HMAC secret or a JWKS document,
//! and the choice of key for a token. A token's `kid` only ever looks up a key that
//! is already loaded; the key's type (and its JWK `alg`, when given) must match the
//! token's algorithm, which stops algorithm-confusion attacks (RS256 → HS256).

use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::Reason;

pub struct VerifyKey {
    pub kid: Option<String>,
    pub key: DecodingKey,
    /// The JWK's pinned algorithm, if it names one.
    pub alg: Option<Algorithm>,
}

#[derive(Default)]
pub struct KeySet {
    keys: Vec<VerifyKey>,
}

impl KeySet {
    /// A PEM public key, parsed for the key type of `algorithms` (one family).
    pub fn from_pem(pem: &[u8], algorithms: &[Algorithm]) -> Result<Self, String> {
        use jsonwebtoken::AlgorithmFamily as F;
        let family = algorithms
            .first()
            .map(|a| a.family())
            .ok_or("no algorithms")?;
        let key = match family {
            F::Rsa => DecodingKey::from_rsa_pem(pem),
            F::Ec => DecodingKey::from_ec_pem(pem),
            F::Ed => DecodingKey::from_ed_pem(pem),
            F::Hmac => return Err("an HMAC secret is not a PEM key: use secret_env".into()),
        }
        .map_err(|e| format!("not a {family:?} public key in PEM: {e}"))?;
        Ok(Self {
            keys: vec![VerifyKey {
                kid: None,
                key,
                alg: None,
            }],
        })
    }

    pub fn from_secret(secret: &[u8]) -> Self {
        let key = DecodingKey::from_secret(secret);
        Self {
            keys: vec![VerifyKey {
                kid: None,
                key,
                alg: None,
            }],
        }
    }

    /// Every signing key of a JWKS document; keys it cannot use are skipped with a warning.
    pub fn from_jwks(json: &[u8]) -> Result<Self, String> {
        let set: JwkSet =
            serde_json::from_slice(json).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
                continue;
            }
            let kid = jwk.common.key_id.clone();
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    let alg = jwk
                        .common
                        .key_algorithm
                        .and_then(|a| a.to_string().parse().ok());
                    keys.push(VerifyKey { kid, key, alg });
                }
                Err(e) => log::warn!("JWKS key {kid:?} skipped: {e}"),
            }
        }
        Ok(Self { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key for a token with `kid` and `alg`. A `kid` must name a loaded key,
    /// except for keys configured without one (a PEM key, a secret), where it does
    /// not bind; without a `kid` the one key of the algorithm's type is used.
    pub fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<&VerifyKey, Reason> {
        let by_kid = kid.and_then(|kid| self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)));
        let key = match by_kid {
            Some(key) => key,
            None => {
                let kid_free = kid.is_some();
                let mut fitting = self
                    .keys
                    .iter()
                    .filter(|k| k.key.family() == alg.family() && !(kid_free && k.kid.is_some()));
                match (fitting.next(), fitting.next()) {
                    (Some(k), None) => k,
                    (None, _) if kid.is_some() => return Err(Reason::UnknownKid),
                    (None, _) => return Err(Reason::AlgorithmNotAllowed),
                    (Some(_), Some(_)) => return Err(Reason::MissingKid),
                }
            }
        };
        if key.key.family() != alg.family() || key.alg.is_some_and(|a| a != alg) {
            return Err(Reason::AlgorithmNotAllowed);
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwks_key(kid: &str) -> VerifyKey {
        VerifyKey {
            kid: Some(kid.to_owned()),
            key: DecodingKey::from_ed_components("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
                .expect("ed key"),
            alg: Some(Algorithm::EdDSA),
        }
    }

    #[test]
    fn a_kid_binds_where_keys_have_kids() {
        let set = KeySet {
            keys: vec![jwks_key("a"), jwks_key("b")],
        };
        assert!(set.select(Some("b"), Algorithm::EdDSA).is_ok());
        assert_eq!(
            set.select(Some("c"), Algorithm::EdDSA).err(),
            Some(Reason::UnknownKid)
        );
        assert_eq!(
            set.select(None, Algorithm::EdDSA).err(),
            Some(Reason::MissingKid)
        );
    }

    #[test]
    fn the_key_type_decides_the_algorithm() {
        let set = KeySet {
            keys: vec![jwks_key("a")],
        };
        // An HMAC token naming an EdDSA key: the key's type and pinned alg refuse it.
        assert_eq!(
            set.select(Some("a"), Algorithm::HS256).err(),
            Some(Reason::AlgorithmNotAllowed)
        );
        let secret = KeySet::from_secret(b"0123456789abcdef0123456789abcdef");
        assert!(
            secret.select(Some("any"), Algorithm::HS256).is_ok(),
            "a secret has no kid to bind"
        );
        assert_eq!(
            secret.select(None, Algorithm::RS256).err(),
            Some(Reason::AlgorithmNotAllowed)
        );
    }
}
