//! JWT signature checks with public keys parsed once. jsonwebtoken's aws-lc provider
//! parses the key on every verification (the DER, and for RSA its Montgomery
//! context: 25k instructions of a 330k RS256 check); the provider installed here
//! keeps each RSA and ECDSA key parsed, keyed by its algorithm and its exact bytes,
//! and leaves everything else (HMAC, EdDSA, RSA keys given as JWK components, a key
//! of another family than the algorithm) to jsonwebtoken's own, which also gives the
//! errors. A key that does not parse fails the verification, as it does there.

use aws_lc_rs::signature::{
    ParsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED,
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA384, RSA_PKCS1_2048_8192_SHA512,
    RSA_PSS_2048_8192_SHA256, RSA_PSS_2048_8192_SHA384, RSA_PSS_2048_8192_SHA512,
};
use jsonwebtoken::crypto::{aws_lc, CryptoProvider, JwtVerifier};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::signature::{self, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

/// Keys kept per algorithm; past this the algorithm's keys are dropped and parsed again
/// as they are used (key sets rotate rarely: this bounds what rotations leave behind).
const KEYS_PER_ALGORITHM: usize = 64;

/// The algorithms verified here, in the order of [`PARSED`]'s maps.
const ALGORITHMS: [(Algorithm, &dyn VerificationAlgorithm); 8] = [
    (Algorithm::RS256, &RSA_PKCS1_2048_8192_SHA256),
    (Algorithm::RS384, &RSA_PKCS1_2048_8192_SHA384),
    (Algorithm::RS512, &RSA_PKCS1_2048_8192_SHA512),
    (Algorithm::PS256, &RSA_PSS_2048_8192_SHA256),
    (Algorithm::PS384, &RSA_PSS_2048_8192_SHA384),
    (Algorithm::PS512, &RSA_PSS_2048_8192_SHA512),
    (Algorithm::ES256, &ECDSA_P256_SHA256_FIXED),
    (Algorithm::ES384, &ECDSA_P384_SHA384_FIXED),
];

type KeyMap = RwLock<HashMap<Box<[u8]>, Arc<ParsedPublicKey>>>;
static PARSED: LazyLock<[KeyMap; 8]> = LazyLock::new(Default::default);

/// jsonwebtoken's aws-lc provider with this verifier factory.
static PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| CryptoProvider {
    verifier_factory: verifier,
    ..aws_lc::DEFAULT_PROVIDER.clone()
});

/// Makes this the process's provider; once, before any token is verified. False when
/// a provider was installed already (then that one verifies).
pub fn install() -> bool {
    provider().install_default().is_ok()
}

/// The provider (benches/hot_paths.rs sets it beside jsonwebtoken's own).
pub fn provider() -> &'static CryptoProvider {
    LazyLock::force(&PROVIDER)
}

fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    let slot = ALGORITHMS.iter().position(|(a, _)| a == alg);
    match (slot, key.kind()) {
        (Some(slot), DecodingKeyKind::SecretOrDer(bytes)) if key.family() == alg.family() => {
            Ok(Box::new(Parsed {
                alg: *alg,
                key: parsed(slot, bytes)?,
            }))
        }
        _ => (aws_lc::DEFAULT_PROVIDER.verifier_factory)(alg, key),
    }
}

/// The key `bytes` parsed for `ALGORITHMS[slot]`, from the map or parsed now.
fn parsed(slot: usize, bytes: &[u8]) -> Result<Arc<ParsedPublicKey>, Error> {
    let map = &PARSED[slot];
    if let Some(key) = map.read().ok().and_then(|m| m.get(bytes).cloned()) {
        return Ok(key);
    }
    let key = ParsedPublicKey::new(ALGORITHMS[slot].1, bytes)
        .map(Arc::new)
        .map_err(|_| Error::from(ErrorKind::InvalidKeyFormat))?;
    if let Ok(mut m) = map.write() {
        if m.len() >= KEYS_PER_ALGORITHM {
            m.clear();
        }
        m.insert(bytes.into(), key.clone());
    }
    Ok(key)
}

struct Parsed {
    alg: Algorithm,
    key: Arc<ParsedPublicKey>,
}

impl Verifier<Vec<u8>> for Parsed {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        self.key
            .verify_sig(msg, sig)
            .map_err(signature::Error::from_source)
    }
}

impl JwtVerifier for Parsed {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_parsed_once_and_a_bad_one_is_refused() {
        let pem = include_bytes!("../../conf/keys/legacy-rsa.pub.pem");
        let key = DecodingKey::from_rsa_pem(pem).expect("pem");
        let DecodingKeyKind::SecretOrDer(bytes) = key.kind() else {
            panic!("a PEM key is DER");
        };
        let first = parsed(0, bytes).expect("parsed");
        let again = parsed(0, bytes).expect("parsed");
        assert!(Arc::ptr_eq(&first, &again));
        assert!(parsed(0, b"not a key").is_err());
        // An RSA key for ES256 goes to jsonwebtoken's own verifier, which refuses it.
        assert!(verifier(&Algorithm::ES256, &key).is_err());
    }
}
