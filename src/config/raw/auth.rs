//! `[auth.NAME]`: `jwt`, `api_key` and `mtls` authenticators.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::defaults;
use crate::config::units;

/// `[auth.NAME]`: one authenticator, chosen by `kind`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuthSection {
    Jwt(Box<JwtSection>),
    ApiKey(ApiKeySection),
    Mtls(MtlsSection),
}

/// `kind = "jwt"`: signed JSON Web Tokens.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSection {
    /// The algorithms a token may use; the key decides among them.
    pub algorithms: Vec<JwtAlgorithm>,
    /// Required `iss` (when set).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Accepted `aud` values; when set, a token must carry one of them.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(default = "defaults::leeway", with = "units::duration")]
    pub leeway: Duration,
    #[serde(default = "defaults::max_token_bytes", with = "units::size")]
    pub max_token_bytes: u64,
    /// Exactly one key source: a PEM public key, an HMAC secret from the environment,
    /// a JWKS file, or a JWKS URL.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    #[serde(default)]
    pub secret_env: Option<String>,
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// How often `jwks_url` is fetched again.
    #[serde(default = "defaults::jwks_refresh", with = "units::duration")]
    pub jwks_refresh: Duration,
    /// The least time between two fetches triggered by unknown `kid`s.
    #[serde(default = "defaults::jwks_min_refresh", with = "units::duration")]
    pub jwks_min_refresh: Duration,
    #[serde(default)]
    pub from: CredentialSource,
    /// The claim naming the principal.
    #[serde(default = "defaults::id_claim")]
    pub id_claim: String,
    /// Scopes claim; unset: `scope` (space separated), else `scp`.
    #[serde(default)]
    pub scope_claim: Option<String>,
    #[serde(default = "defaults::roles_claim")]
    pub roles_claim: String,
    /// Header carrying the principal's id upstream.
    #[serde(default = "defaults::id_header")]
    pub id_header: String,
    /// Claims forwarded upstream: claim name → header name.
    #[serde(default)]
    pub claim_headers: BTreeMap<String, String>,
    /// Verified tokens remembered so a reused token is checked once.
    #[serde(default = "defaults::token_cache")]
    pub token_cache: usize,
    /// Log accepted requests too, not only rejections.
    #[serde(default)]
    pub log_accepts: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum JwtAlgorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl JwtAlgorithm {
    /// The type of key that verifies it: one public key serves one type.
    pub fn key_type(self) -> &'static str {
        use JwtAlgorithm::*;
        match self {
            HS256 | HS384 | HS512 => "hmac",
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => "rsa",
            ES256 | ES384 => "ec",
            EdDSA => "okp",
        }
    }
}

/// Where a credential is read from: `"bearer"` (the `Authorization: Bearer` header),
/// `{ header = "x-api-key" }`, `{ cookie = "session" }` or `{ query = "api_key" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialSource {
    #[default]
    Bearer,
    Header(String),
    Cookie(String),
    Query(String),
}

/// `kind = "api_key"`: static keys, stored as SHA-256 digests.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySection {
    #[serde(default = "defaults::api_key_source")]
    pub from: CredentialSource,
    pub consumers: Vec<ConsumerSection>,
    #[serde(default = "defaults::id_header")]
    pub id_header: String,
    #[serde(default)]
    pub log_accepts: bool,
}

/// One API-key holder: `{ id = "acme", key_sha256 = "…", scopes = [...] }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSection {
    pub id: String,
    /// Hex SHA-256 of the key (`tollgate hash-key` prints it); never the key itself.
    pub key_sha256: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
}

/// `kind = "mtls"`: verified TLS client certificates (the listener's `client_auth`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtlsSection {
    pub consumers: Vec<CertConsumerSection>,
    #[serde(default = "defaults::id_header")]
    pub id_header: String,
    #[serde(default)]
    pub log_accepts: bool,
}

/// One certificate holder, matched by exactly one of `san`, `subject_cn`, `sha256`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertConsumerSection {
    pub id: String,
    /// A subject alternative name (DNS, URI, email or IP) of the certificate.
    #[serde(default)]
    pub san: Option<String>,
    /// The certificate subject's common name.
    #[serde(default)]
    pub subject_cn: Option<String>,
    /// The certificate's SHA-256 fingerprint (hex, `:` separators allowed).
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
}
