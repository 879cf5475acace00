//! Authenticators: one key source and fitting algorithms for JWT, consumers for API
//! keys and client certificates, credential sources and identity headers.

use std::collections::HashMap;

use super::{header_name, Problems, TomlPath};
use crate::config::raw::{
    ApiKeySection, AuthSection, CredentialSource, JwtAlgorithm, JwtSection, MtlsSection,
    UnderscoreHeaders,
};
use crate::config::units::parse_fingerprint;

pub(super) fn auth(a: &AuthSection, path: &TomlPath, out: &mut Problems) {
    match a {
        AuthSection::Jwt(j) => jwt(j, path, out),
        AuthSection::ApiKey(k) => api_key(k, path, out),
        AuthSection::Mtls(m) => mtls(m, path, out),
    }
}

/// A credential read from a header named with `_`, which `underscore_headers` drops
/// or refuses before authentication could read it.
pub(super) fn underscored_source(
    a: &AuthSection,
    underscores: UnderscoreHeaders,
    path: &TomlPath,
    out: &mut Problems,
) {
    let from = match a {
        AuthSection::Jwt(j) => &j.from,
        AuthSection::ApiKey(k) => &k.from,
        AuthSection::Mtls(_) => return,
    };
    if let CredentialSource::Header(h) = from {
        if h.contains('_') && underscores != UnderscoreHeaders::Pass {
            out.push((
                path.key("from").key("header"),
                format!(
                    "{h:?} has '_': [server] underscore_headers removes or refuses such \
                     headers before authentication (spell it with '-', or set \
                     underscore_headers = \"pass\")"
                ),
            ));
        }
    }
}

fn mtls(m: &MtlsSection, path: &TomlPath, out: &mut Problems) {
    header_name(&m.id_header, &path.key("id_header"), out);
    if m.consumers.is_empty() {
        out.push((path.key("consumers"), "needs at least one consumer".into()));
    }
    unique_consumer_ids(m.consumers.iter().map(|c| c.id.as_str()), path, out);
    for (i, c) in m.consumers.iter().enumerate() {
        let at = path.key("consumers").index(i);
        let given = [&c.san, &c.subject_cn, &c.sha256];
        if given.iter().filter(|m| m.is_some()).count() != 1 {
            out.push((
                at.clone(),
                "match the certificate by exactly one of san, subject_cn or sha256".into(),
            ));
        }
        if let Some(fp) = &c.sha256 {
            if parse_fingerprint(fp).is_none() {
                out.push((
                    at.key("sha256"),
                    "must be 64 hex digits (`:` separators allowed)".into(),
                ));
            }
        }
    }
}

fn jwt(j: &JwtSection, path: &TomlPath, out: &mut Problems) {
    let sources = [
        j.public_key_file.is_some(),
        j.secret_env.is_some(),
        j.jwks_file.is_some(),
        j.jwks_url.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        out.push((
            path.clone(),
            "needs exactly one key source: public_key_file, secret_env, jwks_file or jwks_url"
                .into(),
        ));
    }
    if j.algorithms.is_empty() {
        out.push((
            path.key("algorithms"),
            "list the accepted algorithms, e.g. [\"RS256\"]".into(),
        ));
    }
    let hmac = |a: &JwtAlgorithm| {
        matches!(
            a,
            JwtAlgorithm::HS256 | JwtAlgorithm::HS384 | JwtAlgorithm::HS512
        )
    };
    if j.secret_env.is_some() && !j.algorithms.iter().all(hmac) {
        out.push((
            path.key("algorithms"),
            "a secret_env key only verifies HS256, HS384 or HS512".into(),
        ));
    }
    if j.secret_env.is_none() && j.algorithms.iter().any(hmac) {
        out.push((
            path.key("algorithms"),
            "HS* algorithms need secret_env (a public key never verifies HMAC tokens)".into(),
        ));
    }
    let mixed_types = j
        .algorithms
        .windows(2)
        .any(|w| w[0].key_type() != w[1].key_type());
    if j.public_key_file.is_some() && mixed_types {
        out.push((
            path.key("algorithms"),
            "one public key has one type: list algorithms of one family (RS*/PS*, ES*, or EdDSA)"
                .into(),
        ));
    }
    if let Some(url) = &j.jwks_url {
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.parse::<http::Uri>().is_err()
        {
            out.push((path.key("jwks_url"), format!("not an http(s) URL: {url:?}")));
        }
    }
    if j.leeway > std::time::Duration::from_secs(300) {
        out.push((path.key("leeway"), "at most 5m".into()));
    }
    if j.max_token_bytes == 0 || j.jwks_refresh.is_zero() {
        out.push((
            path.clone(),
            "max_token_bytes and jwks_refresh must be greater than 0".into(),
        ));
    }
    credential_source(&j.from, &path.key("from"), out);
    header_name(&j.id_header, &path.key("id_header"), out);
    for (claim, header) in &j.claim_headers {
        header_name(header, &path.key("claim_headers").key(claim), out);
    }
}

fn api_key(k: &ApiKeySection, path: &TomlPath, out: &mut Problems) {
    credential_source(&k.from, &path.key("from"), out);
    header_name(&k.id_header, &path.key("id_header"), out);
    if k.consumers.is_empty() {
        out.push((path.key("consumers"), "needs at least one consumer".into()));
    }
    unique_consumer_ids(k.consumers.iter().map(|c| c.id.as_str()), path, out);
    let mut digests = HashMap::new();
    for (i, c) in k.consumers.iter().enumerate() {
        let at = path.key("consumers").index(i);
        let digest = c.key_sha256.to_ascii_lowercase();
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            out.push((
                at.key("key_sha256"),
                "must be 64 hex digits (see `tollgate hash-key`)".into(),
            ));
        } else if let Some(first) = digests.insert(digest, i) {
            out.push((
                at.key("key_sha256"),
                format!("the same key is already given to consumers[{first}]"),
            ));
        }
    }
}

/// A consumer id used twice in one authenticator's `consumers`.
fn unique_consumer_ids<'a>(
    ids: impl Iterator<Item = &'a str>,
    path: &TomlPath,
    out: &mut Problems,
) {
    let mut seen = HashMap::new();
    for (i, id) in ids.enumerate() {
        if let Some(first) = seen.insert(id, i) {
            out.push((
                path.key("consumers").index(i).key("id"),
                format!("consumer id {id:?} is already used by consumers[{first}]"),
            ));
        }
    }
}

fn credential_source(source: &CredentialSource, path: &TomlPath, out: &mut Problems) {
    match source {
        CredentialSource::Bearer => {}
        CredentialSource::Header(h) => header_name(h, &path.key("header"), out),
        CredentialSource::Cookie(n) | CredentialSource::Query(n) if n.is_empty() => {
            out.push((path.clone(), "needs a name".into()))
        }
        CredentialSource::Cookie(_) | CredentialSource::Query(_) => {}
    }
}
