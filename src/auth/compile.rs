//! Builds authenticators from `[auth.NAME]` sections: reads key files and secrets
//! (the only I/O, at load and reload time), prepares one JWT validation per allowed
//! algorithm, and takes remote key sets from the registry so they survive reloads.
//! A key that cannot be used is a config problem at its place, never a panic.

use http::HeaderName;
use jsonwebtoken::{Algorithm, Validation};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::api_key::{consumer_principal, parse_digest, ApiKeys, Consumer};
use super::credential::Source;
use super::jwks::{JwksDefinition, JwksRegistry, RemoteJwks};
use super::jwt::{ClaimMapping, JwtVerifier, KeySource};
use super::keys::KeySet;
use super::mtls::{CertConsumer, CertConsumers, CertMatch};
use super::{Authenticator, Kind};
use crate::base::registry::Reusable;
use crate::config::location::{Problems, TomlPath};
use crate::config::raw::{
    ApiKeySection, AuthSection, CredentialSource, JwtAlgorithm, JwtSection, MtlsSection,
};
use crate::observability::Metrics;

/// HMAC secrets shorter than this are refused (RFC 7518 §3.2: at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;

/// The authenticators of a config, the remote key sets they use (by URL), and every
/// identity header they may set (removed from all requests so none can be spoofed).
#[derive(Default)]
pub struct CompiledAuth {
    pub authenticators: HashMap<String, Arc<Authenticator>>,
    pub jwks: HashMap<String, Arc<RemoteJwks>>,
    pub identity_headers: Vec<HeaderName>,
}

/// Every authenticator of `sections`; a key file, secret or key set that cannot be
/// used is a problem at its place (all of them are reported).
pub fn compile_auth(
    sections: &std::collections::BTreeMap<String, AuthSection>,
    jwks: &JwksRegistry,
    metrics: &Arc<Metrics>,
    problems: &mut Problems,
) -> CompiledAuth {
    let mut out = CompiledAuth::default();
    let mut identity: HashSet<HeaderName> = HashSet::new();
    for (name, section) in sections {
        let at = TomlPath::root().key("auth").key(name);
        let label: Arc<str> = name.as_str().into();
        let built =
            match section {
                AuthSection::Jwt(j) => jwt(&label, j, jwks, metrics).map(|(verifier, remote)| {
                    if let Some(remote) = remote {
                        out.jwks.insert(remote.definition().url.clone(), remote);
                    }
                    identity.insert(verifier.claims.id_header.clone());
                    identity.extend(verifier.claims.claim_headers.iter().map(|(_, h)| h.clone()));
                    Authenticator {
                        name: label,
                        source: source(&j.from),
                        log_accepts: j.log_accepts,
                        kind: Kind::Jwt(Box::new(verifier)),
                    }
                }),
                AuthSection::ApiKey(k) => header(&k.id_header)
                    .map_err(|e| ("id_header", e))
                    .and_then(|id_header| {
                        let keys = api_keys(&label, k, &id_header).map_err(|e| ("consumers", e))?;
                        identity.insert(id_header);
                        Ok(Authenticator {
                            name: label.clone(),
                            source: source(&k.from),
                            log_accepts: k.log_accepts,
                            kind: Kind::ApiKey(keys),
                        })
                    }),
                AuthSection::Mtls(m) => header(&m.id_header)
                    .map_err(|e| ("id_header", e))
                    .and_then(|id_header| {
                        let consumers =
                            cert_consumers(&label, m, &id_header).map_err(|e| ("consumers", e))?;
                        identity.insert(id_header);
                        Ok(Authenticator {
                            name: label.clone(),
                            source: None,
                            log_accepts: m.log_accepts,
                            kind: Kind::Mtls(consumers),
                        })
                    }),
            };
        match built {
            Ok(authenticator) => {
                out.authenticators
                    .insert(name.clone(), Arc::new(authenticator));
            }
            Err((key, message)) => problems.push((at.key(key), message)),
        }
    }
    out.identity_headers = identity.into_iter().collect();
    out
}

/// A problem building an authenticator: the key at fault and what is wrong.
type Fault = (&'static str, String);

fn jwt(
    name: &Arc<str>,
    j: &JwtSection,
    registry: &JwksRegistry,
    metrics: &Arc<Metrics>,
) -> Result<(JwtVerifier, Option<Arc<RemoteJwks>>), Fault> {
    let algorithms: Vec<Algorithm> = j.algorithms.iter().map(|a| algorithm(*a)).collect();
    let mut remote = None;
    let keys = match (&j.public_key_file, &j.secret_env, &j.jwks_file, &j.jwks_url) {
        (Some(path), None, None, None) => {
            let fault = |e: String| ("public_key_file", format!("{}: {e}", path.display()));
            let pem = std::fs::read(path).map_err(|e| fault(e.to_string()))?;
            KeySource::Static(Arc::new(
                KeySet::from_pem(&pem, &algorithms).map_err(fault)?,
            ))
        }
        (None, Some(var), None, None) => {
            let fault = |e: String| ("secret_env", e);
            let secret = std::env::var(var)
                .map_err(|_| fault(format!("environment variable {var} is not set")))?;
            if secret.len() < MIN_SECRET_BYTES {
                return Err(fault(format!(
                    "the secret in {var} has {} bytes; at least {MIN_SECRET_BYTES} are required",
                    secret.len()
                )));
            }
            KeySource::Static(Arc::new(KeySet::from_secret(secret.as_bytes())))
        }
        (None, None, Some(path), None) => {
            let fault = |e: String| ("jwks_file", format!("{}: {e}", path.display()));
            let json = std::fs::read(path).map_err(|e| fault(e.to_string()))?;
            let set = KeySet::from_jwks(&json).map_err(fault)?;
            if set.is_empty() {
                return Err(fault("no usable signing key".into()));
            }
            KeySource::Static(Arc::new(set))
        }
        (None, None, None, Some(url)) => {
            let def = JwksDefinition {
                url: url.clone(),
                refresh: j.jwks_refresh,
                min_refresh: j.jwks_min_refresh,
            };
            let source = registry
                .get_or_build(url, &def, || RemoteJwks::new(def.clone(), metrics.clone()))
                .map_err(|e| ("jwks_url", e))?;
            remote = Some(source.clone());
            KeySource::Remote(source)
        }
        _ => {
            return Err((
                "algorithms",
                "exactly one of public_key_file, secret_env, jwks_file, jwks_url is needed".into(),
            ))
        }
    };
    let validations = algorithms
        .iter()
        .map(|alg| (*alg, validation(*alg, j)))
        .collect();
    let claim_headers = j
        .claim_headers
        .iter()
        .map(|(claim, h)| Ok((claim.clone(), header(h)?)))
        .collect::<Result<_, String>>()
        .map_err(|e| ("claim_headers", e))?;
    let verifier = JwtVerifier {
        name: name.clone(),
        keys,
        validations,
        max_token_bytes: usize::try_from(j.max_token_bytes).unwrap_or(usize::MAX),
        leeway: j.leeway.as_secs(),
        claims: ClaimMapping {
            id_claim: j.id_claim.clone(),
            scope_claim: j.scope_claim.clone(),
            roles_claim: j.roles_claim.clone(),
            id_header: header(&j.id_header).map_err(|e| ("id_header", e))?,
            claim_headers,
        },
        cache: (j.token_cache > 0).then(|| quick_cache::sync::Cache::new(j.token_cache)),
    };
    Ok((verifier, remote))
}

fn validation(alg: Algorithm, j: &JwtSection) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = j.leeway.as_secs();
    v.validate_nbf = true;
    let mut required = vec!["exp"];
    if let Some(iss) = &j.issuer {
        v.set_issuer(&[iss]);
        required.push("iss");
    }
    if j.audiences.is_empty() {
        v.validate_aud = false;
    } else {
        v.set_audience(&j.audiences);
        required.push("aud");
    }
    v.set_required_spec_claims(&required);
    v
}

fn api_keys(name: &Arc<str>, k: &ApiKeySection, id_header: &HeaderName) -> Result<ApiKeys, String> {
    let consumers = k
        .consumers
        .iter()
        .map(|c| {
            Ok(Consumer {
                id: c.id.clone(),
                digest: parse_digest(&c.key_sha256)
                    .map_err(|e| format!("consumer {:?}: key_sha256 {e}", c.id))?,
                disabled: c.disabled,
                principal: Arc::new(consumer_principal(
                    name, &c.id, &c.scopes, &c.roles, id_header,
                )),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(ApiKeys { consumers })
}

fn cert_consumers(
    name: &Arc<str>,
    m: &MtlsSection,
    id_header: &HeaderName,
) -> Result<CertConsumers, String> {
    let consumers = m
        .consumers
        .iter()
        .map(|c| {
            let matcher = match (&c.san, &c.subject_cn, &c.sha256) {
                (Some(san), None, None) => CertMatch::San(san.clone()),
                (None, Some(cn), None) => CertMatch::SubjectCn(cn.clone()),
                (None, None, Some(fp)) => {
                    CertMatch::Sha256(crate::config::units::parse_fingerprint(fp).ok_or_else(
                        || format!("consumer {:?}: sha256 is not 64 hex digits", c.id),
                    )?)
                }
                _ => {
                    return Err(format!(
                        "consumer {:?}: needs exactly one of san, subject_cn, sha256",
                        c.id
                    ))
                }
            };
            Ok(CertConsumer {
                matcher,
                disabled: c.disabled,
                principal: Arc::new(consumer_principal(
                    name, &c.id, &c.scopes, &c.roles, id_header,
                )),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(CertConsumers { consumers })
}

/// Where `from` reads the credential; `None` for a header name that does not parse
/// (validation refuses it first).
fn source(from: &CredentialSource) -> Option<Source> {
    Some(match from {
        CredentialSource::Bearer => Source::Bearer,
        CredentialSource::Header(name) => Source::Header(name.parse().ok()?),
        CredentialSource::Cookie(name) => Source::Cookie(name.clone()),
        CredentialSource::Query(name) => Source::Query(name.clone()),
    })
}

fn header(name: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid header name {name:?}"))
}

/// The config's algorithm names are jsonwebtoken's.
pub fn algorithm(a: JwtAlgorithm) -> Algorithm {
    match a {
        JwtAlgorithm::HS256 => Algorithm::HS256,
        JwtAlgorithm::HS384 => Algorithm::HS384,
        JwtAlgorithm::HS512 => Algorithm::HS512,
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::RS384 => Algorithm::RS384,
        JwtAlgorithm::RS512 => Algorithm::RS512,
        JwtAlgorithm::PS256 => Algorithm::PS256,
        JwtAlgorithm::PS384 => Algorithm::PS384,
        JwtAlgorithm::PS512 => Algorithm::PS512,
        JwtAlgorithm::ES256 => Algorithm::ES256,
        JwtAlgorithm::ES384 => Algorithm::ES384,
        JwtAlgorithm::EdDSA => Algorithm::EdDSA,
    }
}
