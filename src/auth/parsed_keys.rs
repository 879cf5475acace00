//! JWT signature checks with public keys parsed once. jsonwebtoken's aws-lc provider
//! parses the key on every verification (the DER, and for RSA its Montgomery
//! context: 25k instructions of a 330k RS256 check); the provider installed here
//! keeps each RSA and ECDSA key parsed, keyed by its algorithm and its exact bytes (an
//! RSA key given as JWK components, as a JWKS gives it, by its PKCS#1 DER), and leaves
//! everything else (HMAC, EdDSA, a key of another family than the algorithm) to
//! jsonwebtoken's own, which also gives the errors. A key that does not parse fails the
//! verification, as it does there.

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
        (Some(slot), DecodingKeyKind::RsaModulusExponent { n, e }) if slot < RSA_SLOTS => {
            Ok(Box::new(Parsed {
                alg: *alg,
                key: parsed(slot, &rsa_public_key_der(n, e))?,
            }))
        }
        _ => (aws_lc::DEFAULT_PROVIDER.verifier_factory)(alg, key),
    }
}

/// The first slots of [`ALGORITHMS`] are RSA's.
const RSA_SLOTS: usize = 6;

/// PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` in
/// DER, from the big-endian unsigned `n` and `e` of a JWK.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let (n, e) = (der_integer(n), der_integer(e));
    let mut der = Vec::with_capacity(n.len() + e.len() + 4);
    der.push(0x30);
    push_der_len(&mut der, n.len() + e.len());
    der.extend_from_slice(&n);
    der.extend_from_slice(&e);
    der
}

/// An unsigned big-endian number as a DER INTEGER: no leading zeros, but one when the
/// first byte has its high bit set (it would read as negative).
fn der_integer(unsigned: &[u8]) -> Vec<u8> {
    let first = unsigned
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(unsigned.len());
    let digits = &unsigned[first..];
    let pad = digits.first().is_none_or(|&b| b & 0x80 != 0);
    let mut out = vec![0x02];
    push_der_len(&mut out, digits.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(digits);
    out
}

fn push_der_len(out: &mut Vec<u8>, len: usize) {
    let bytes = len.to_be_bytes();
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    match len {
        0..=0x7f => out.push(len as u8),
        _ => {
            out.push(0x80 | (bytes.len() - first) as u8);
            out.extend_from_slice(&bytes[first..]);
        }
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

    #[test]
    fn a_jwk_rsa_key_is_parsed_once_and_verifies() {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
        use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};

        let pair = KeyPair::generate(KeySize::Rsa2048).expect("key pair");
        let message = b"header.claims";
        let mut signature = vec![0u8; pair.public_modulus_len()];
        let rng = SystemRandom::new();
        pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
            .expect("sign");
        let parts = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let key = DecodingKey::from_rsa_raw_components(&parts.n, &parts.e);
        let verify = |sig: &Vec<u8>| {
            verifier(&Algorithm::RS256, &key)
                .expect("verifier")
                .verify(message, sig)
                .is_ok()
        };
        assert!(verify(&signature));
        let der = rsa_public_key_der(&parts.n, &parts.e);
        // The verification above parsed it into the map.
        let kept = PARSED[0].read().expect("map").contains_key(der.as_slice());
        assert!(kept, "the JWK's key was not kept parsed");
        assert!(Arc::ptr_eq(
            &parsed(0, &der).expect("parsed"),
            &parsed(0, &der).expect("parsed")
        ));
        let mut forged = signature.clone();
        forged[10] ^= 1;
        assert!(!verify(&forged));
        // The same DER as a JWK with a leading zero byte in `n` (some issuers send one).
        let padded: Vec<u8> = std::iter::once(0).chain(parts.n.iter().copied()).collect();
        assert_eq!(rsa_public_key_der(&padded, &parts.e), der);
    }

    #[test]
    fn der_lengths_and_integers() {
        assert_eq!(
            der_integer(&[0x01, 0x00, 0x01]),
            [0x02, 0x03, 0x01, 0x00, 0x01]
        );
        assert_eq!(der_integer(&[0x00, 0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(der_integer(&[]), [0x02, 0x01, 0x00]);
        let mut out = Vec::new();
        push_der_len(&mut out, 0x7f);
        push_der_len(&mut out, 0x80);
        push_der_len(&mut out, 0x101);
        assert_eq!(out, [0x7f, 0x81, 0x80, 0x82, 0x01, 0x01]);
    }
}
