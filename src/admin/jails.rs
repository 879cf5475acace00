//! The jails on the admin listener: `GET /jails` lists every active ban
//! (`{"JAIL": [{"key": "...", "ends_at": "RFC 3339", "seconds_left": N}]}`), and
//! `DELETE /jails/NAME/KEY` (the key percent-encoded, as an IPv6 address or a
//! consumer id may need) lifts one: 200 `{"jail", "key", "lifted": true}` when a ban
//! was lifted (a `jail_unban` security-log event); problem+json 404 when there was
//! none, 502 when a shared jail's Redis cannot be reached.

use http::StatusCode;
use serde_json::json;
use std::time::{Duration, UNIX_EPOCH};

use super::{ok_json, problem, Answer};
use crate::jail::JailsRegistry;
use crate::observability::SecurityLog;

/// Every active ban at `now` (ms since the Unix epoch).
pub fn list(registry: &JailsRegistry, now: u64) -> Answer {
    let mut out = serde_json::Map::new();
    for jail in registry.items() {
        let bans: Vec<_> = jail
            .bans(now)
            .into_iter()
            .map(|(key, until)| {
                let ends_at = UNIX_EPOCH + Duration::from_millis(until);
                json!({
                    "key": key,
                    "ends_at": humantime::format_rfc3339_seconds(ends_at).to_string(),
                    "seconds_left": (until - now).div_ceil(1000),
                })
            })
            .collect();
        out.insert(jail.name().to_owned(), bans.into());
    }
    ok_json(json!(out))
}

pub async fn lift(registry: &JailsRegistry, security_log: &SecurityLog, rest: &str) -> Answer {
    let Some((name, key)) = rest.split_once('/') else {
        return problem(StatusCode::NOT_FOUND, "use DELETE /jails/NAME/KEY");
    };
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    let key = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
    let Some(jail) = registry.items().into_iter().find(|j| j.name() == name) else {
        return problem(StatusCode::NOT_FOUND, &format!("no jail named {name:?}"));
    };
    match jail.lift(&key).await {
        Ok(true) => {
            let fields = [
                ("jail", name.to_string()),
                ("key", key.to_string()),
                ("reason", "admin".to_owned()),
            ];
            security_log.notice("jail_unban", &fields);
            ok_json(json!({ "jail": name, "key": key, "lifted": true }))
        }
        Ok(false) => problem(
            StatusCode::NOT_FOUND,
            &format!("{key:?} is not banned in {name:?}"),
        ),
        Err(e) => problem(
            StatusCode::BAD_GATEWAY,
            &format!("the jail's store failed: {e}"),
        ),
    }
}
