//! Real keys (generated with OpenSSL at test time) and real signed JWTs, plus the
//! hand-made bad tokens a strict verifier must refuse.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

pub struct KeyPair {
    pub kid: String,
    pub alg: Algorithm,
    private_pem: Vec<u8>,
    pub public_pem: Vec<u8>,
    /// The public key as a JWK (with `kid`, `alg` and `use`).
    pub jwk: Value,
}

impl KeyPair {
    pub fn rsa(kid: &str, alg: Algorithm) -> KeyPair {
        let rsa = Rsa::generate(2048).expect("rsa");
        let jwk = json!({
            "kty": "RSA", "n": b64(&rsa.n().to_vec()), "e": b64(&rsa.e().to_vec()),
        });
        Self::from_pkey(kid, alg, PKey::from_rsa(rsa).expect("pkey"), jwk)
    }

    pub fn ec(kid: &str, alg: Algorithm) -> KeyPair {
        let (nid, crv, size) = match alg {
            Algorithm::ES384 => (Nid::SECP384R1, "P-384", 48),
            _ => (Nid::X9_62_PRIME256V1, "P-256", 32),
        };
        let group = EcGroup::from_curve_name(nid).expect("group");
        let ec = EcKey::generate(&group).expect("ec");
        let (mut x, mut y) = (BigNum::new().expect("bn"), BigNum::new().expect("bn"));
        let mut ctx = BigNumContext::new().expect("ctx");
        ec.public_key()
            .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
            .expect("coordinates");
        let jwk = json!({
            "kty": "EC", "crv": crv,
            "x": b64(&x.to_vec_padded(size).expect("x")), "y": b64(&y.to_vec_padded(size).expect("y")),
        });
        Self::from_pkey(kid, alg, PKey::from_ec_key(ec).expect("pkey"), jwk)
    }

    pub fn ed25519(kid: &str) -> KeyPair {
        let pkey = PKey::generate_ed25519().expect("ed25519");
        let jwk = json!({
            "kty": "OKP", "crv": "Ed25519", "x": b64(&pkey.raw_public_key().expect("raw")),
        });
        Self::from_pkey(kid, Algorithm::EdDSA, pkey, jwk)
    }

    fn from_pkey(kid: &str, alg: Algorithm, pkey: PKey<Private>, mut jwk: Value) -> KeyPair {
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(format!("{alg:?}"));
        jwk["use"] = json!("sig");
        KeyPair {
            kid: kid.to_owned(),
            alg,
            private_pem: pkey.private_key_to_pem_pkcs8().expect("pkcs8"),
            public_pem: pkey.public_key_to_pem().expect("public pem"),
            jwk,
        }
    }

    fn encoding_key(&self) -> EncodingKey {
        match self.alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&self.private_pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&self.private_pem),
            _ => EncodingKey::from_rsa_pem(&self.private_pem),
        }
        .expect("encoding key")
    }

    /// A token signed by this key, naming its `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        encode(&header, claims, &self.encoding_key()).expect("sign")
    }

    /// A token signed by this key with a custom header.
    pub fn sign_with(&self, header: Header, claims: &Value) -> String {
        encode(&header, claims, &self.encoding_key()).expect("sign")
    }
}

/// `{"keys": [...]}` of the given keys' public JWKs.
pub fn jwks(keys: &[&KeyPair]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

/// An HMAC-signed token.
pub fn sign_hs(alg: Algorithm, secret: &[u8], claims: &Value) -> String {
    encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).expect("sign")
}

/// An unsigned `alg: none` token.
pub fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    )
}

/// `token` with its signature's first character changed.
pub fn tampered(token: &str) -> String {
    let (head, sig) = token.rsplit_once('.').expect("jwt");
    let mut sig: Vec<char> = sig.chars().collect();
    sig[0] = if sig[0] == 'A' { 'B' } else { 'A' };
    format!("{head}.{}", sig.into_iter().collect::<String>())
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Claims valid for an hour from now, with `iss`, `aud` and `sub`.
pub fn claims(sub: &str) -> Value {
    json!({ "sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 3600, "iat": now() })
}

pub const ISSUER: &str = "https://idp.test/";
pub const AUDIENCE: &str = "orders-api";

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}
