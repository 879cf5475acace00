//! The running config as the admin listener shows it (`GET /config`): the file as
//! JSON, with whatever could be a secret redacted, the SHA-256 of the file's text and
//! when it was loaded.
//!
//! Redacted (each value becomes `"<redacted>"`): digests of secrets (`key_sha256`,
//! `token_sha256`), any `password` or `secret`, a URL's password and query (`url`,
//! `jwks_url`: `redis://:<redacted>@host`), and the values of credential headers a
//! route sets upstream (`authorization`, `proxy-authorization`, `cookie`, and names
//! with `key`, `token` or `secret` in them).

use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::SystemTime;

use super::LoadedConfig;

const REDACTED: &str = "<redacted>";
const SECRET_KEYS: [&str; 4] = ["key_sha256", "token_sha256", "password", "secret"];
const URL_KEYS: [&str; 2] = ["url", "jwks_url"];

pub struct ConfigSource {
    /// The file as JSON, redacted, kept as text: as a tree of values it held about
    /// 0.7 KiB a route for as long as the config ran (10,000 routes: 6.8 MiB).
    pub json: Box<RawValue>,
    pub sha256: String,
    pub loaded_at: SystemTime,
    pub origin: Origin,
}

/// Where a config came from, as `/config` names it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Origin {
    /// A file (`-c`).
    File,
    /// A fleet cluster's document in etcd, at a revision.
    Etcd { cluster: String, revision: i64 },
}

impl ConfigSource {
    pub fn of(loaded: &LoadedConfig) -> Self {
        let text = loaded.text();
        let mut json = toml::from_str::<toml::Value>(text)
            .ok()
            .and_then(|v| serde_json::to_value(v).ok())
            .unwrap_or(Value::Null);
        redact(&mut json, false);
        Self {
            json: serde_json::value::to_raw_value(&json)
                .unwrap_or_else(|_| RawValue::NULL.to_owned()),
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            loaded_at: SystemTime::now(),
            origin: loaded.origin.clone(),
        }
    }
}

/// Redacts in place; `headers_set`: `v` is a `set` table of header rules.
fn redact(v: &mut Value, headers_set: bool) {
    match v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                let lower = key.to_ascii_lowercase();
                if SECRET_KEYS.contains(&lower.as_str()) || (headers_set && credential(&lower)) {
                    *value = Value::from(REDACTED);
                } else if URL_KEYS.contains(&lower.as_str()) {
                    if let Some(url) = value.as_str() {
                        *value = Value::from(redact_url(url));
                    }
                } else {
                    redact(value, lower == "set");
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| redact(i, false)),
        _ => {}
    }
}

/// Whether a header carries credentials.
fn credential(name: &str) -> bool {
    matches!(name, "authorization" | "proxy-authorization" | "cookie")
        || ["key", "token", "secret"].iter().any(|w| name.contains(w))
}

/// `scheme://user:<redacted>@host/path?<redacted>`: the password and query hidden.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{user}:{REDACTED}@{host}")
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, _)) => format!("{path}?{REDACTED}"),
        None => tail.to_owned(),
    };
    match scheme {
        "" => format!("{authority}{tail}"),
        s => format!("{s}://{authority}{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_the_rest_is_kept() {
        let mut v = serde_json::json!({
            "redis": {"url": "redis://app:hunter2@10.0.0.5:6379/0"},
            "auth": {"idp": {"jwks_url": "https://idp.example/keys?token=abc", "secret_env": "HMAC"},
                     "keys": {"consumers": [{"id": "acme", "key_sha256": "aa"}]}},
            "admin": {"token_sha256": "bb", "listen": "127.0.0.1:9900"},
            "routes": [{"request_headers": {"set": {"Authorization": "Bearer x", "x-env": "prod", "x-upstream-key": "k"}}}]
        });
        redact(&mut v, false);
        assert_eq!(v["redis"]["url"], "redis://app:<redacted>@10.0.0.5:6379/0");
        assert_eq!(
            v["auth"]["idp"]["jwks_url"],
            "https://idp.example/keys?<redacted>"
        );
        assert_eq!(
            v["auth"]["idp"]["secret_env"], "HMAC",
            "the variable's name is no secret"
        );
        assert_eq!(v["auth"]["keys"]["consumers"][0]["key_sha256"], REDACTED);
        assert_eq!(v["auth"]["keys"]["consumers"][0]["id"], "acme");
        assert_eq!(v["admin"]["token_sha256"], REDACTED);
        let set = &v["routes"][0]["request_headers"]["set"];
        assert_eq!(
            (&set["Authorization"], &set["x-env"], &set["x-upstream-key"]),
            (&REDACTED.into(), &"prod".into(), &REDACTED.into())
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
