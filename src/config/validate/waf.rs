//! `[waf.NAME]` and routes' `waf`: levels, bounds, exclusion targets and the routes
//! they name. Rule ids are checked where the rules are, when the stage is built.

use super::Unparsed;
use crate::config::location::{Problems, TomlPath};
use crate::config::raw::{RawConfig, WafSection};

/// Body bytes a WAF may hold for inspection at most (per request).
const MAX_INSPECT_LIMIT: u64 = 8 * 1024 * 1024;

pub(super) fn waf(raw: &RawConfig, w: &WafSection, path: &TomlPath, out: &mut Problems) {
    if !(1..=4).contains(&w.paranoia) {
        out.push((path.key("paranoia"), "must be 1, 2, 3 or 4".into()));
    }
    if w.anomaly_threshold == 0 {
        out.push((path.key("anomaly_threshold"), "must be at least 1".into()));
    }
    if w.inspect.is_empty() {
        out.push((path.key("inspect"), "must name at least one place".into()));
    }
    if w.max_inspect == 0 || w.max_inspect > MAX_INSPECT_LIMIT {
        out.push((
            path.key("max_inspect"),
            "must be between 1 byte and 8MiB".into(),
        ));
    }
    for (i, e) in w.exclude.iter().enumerate() {
        let at = path.key("exclude").index(i);
        if let Some(target) = &e.target {
            if let Err(why) = check_target(target) {
                out.push((at.key("target"), why));
            }
        }
        if let Some(route) = &e.route {
            if !raw.routes.iter().any(|r| &r.name == route) {
                out.push((at.key("route"), format!("no route named {route:?}")));
            }
        }
        if e.consumer.as_deref() == Some("") {
            out.push((at.key("consumer"), "must not be empty".into()));
        }
    }
}

/// A target: `path`, `body`, or `query:`, `header:`, `cookie:`, `body:` and a name
/// (header names in lower case), a trailing `*` allowed.
fn check_target(target: &str) -> Result<(), String> {
    let expected = "expected path, body, query:NAME, header:NAME, cookie:NAME, body:NAME or body:/pointer (a trailing * matches any rest)";
    let (place, name) = target.split_once(':').unwrap_or((target, ""));
    match (place, name) {
        ("path" | "body", "") | ("path" | "body" | "query" | "header" | "cookie", "*") => Ok(()),
        ("header", n) if n.bytes().any(|b| b.is_ascii_uppercase()) => Err(format!(
            "header names are lower case: header:{}",
            n.to_ascii_lowercase()
        )),
        ("query" | "header" | "cookie" | "body", n) if !n.is_empty() => Ok(()),
        _ => Err(format!("unknown target {target:?}: {expected}")),
    }
}

/// A route's `waf`: a `[waf.NAME]` that exists.
pub(super) fn waf_name(
    raw: &RawConfig,
    unparsed: &Unparsed,
    name: &Option<String>,
    path: &TomlPath,
    out: &mut Problems,
) {
    if let Some(name) = name {
        if !raw.waf.contains_key(name) && !unparsed.waf.contains(name) {
            out.push((path.clone(), format!("no waf named {name:?}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        for ok in [
            "path",
            "body",
            "query:q",
            "header:x-data",
            "cookie:*",
            "body:/a/0",
            "body:comment",
            "query:*",
        ] {
            assert_eq!(check_target(ok), Ok(()), "{ok}");
        }
        for bad in ["args:q", "query:", "header:X-Data", "headers:x", ""] {
            assert!(check_target(bad).is_err(), "{bad}");
        }
    }
}
