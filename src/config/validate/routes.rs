//! Routes: their references (listeners, upstreams, authenticators, limits), hosts,
//! methods, `respond`, header rules, and routes that an earlier one shadows.

use http::{HeaderValue, Method};

use super::{header_name, host_pattern, Problems, TomlPath, Unparsed};
use crate::config::raw::{HeaderRulesSection, RawConfig, RouteSection};

pub(super) fn route(
    raw: &RawConfig,
    unparsed: &Unparsed,
    r: &RouteSection,
    path: &TomlPath,
    out: &mut Problems,
) {
    if r.name.trim().is_empty() {
        out.push((path.key("name"), "must not be empty".into()));
    }
    if let Some(ls) = &r.listeners {
        if ls.is_empty() {
            out.push((
                path.key("listeners"),
                "must name at least one listener (or be left out for all)".into(),
            ));
        }
        for (i, l) in ls.iter().enumerate() {
            if !raw.listeners.contains_key(l) && !unparsed.listeners.contains(l) {
                out.push((
                    path.key("listeners").index(i),
                    format!("no listener named {l:?}"),
                ));
            }
        }
    }
    for (i, h) in r.hosts.iter().enumerate() {
        if let Err(why) = host_pattern(h) {
            out.push((
                path.key("hosts").index(i),
                format!("invalid host {h:?}: {why}"),
            ));
        }
    }
    if !r.path_prefix.starts_with('/') {
        out.push((path.key("path_prefix"), "must start with '/'".into()));
    }
    for (i, m) in r.methods.iter().enumerate() {
        if Method::from_bytes(m.as_bytes()).is_err() || m.to_ascii_uppercase() != *m {
            out.push((
                path.key("methods").index(i),
                format!("invalid method {m:?} (methods are upper case, e.g. \"GET\")"),
            ));
        }
    }
    match (&r.upstream, &r.respond) {
        (Some(_), Some(_)) => out.push((
            path.key("respond"),
            "a route has either `upstream` or `respond`, not both".into(),
        )),
        (None, None) => out.push((
            path.clone(),
            "a route needs `upstream = \"NAME\"` or `respond = { status = ... }`".into(),
        )),
        (Some(u), None) if !raw.upstreams.contains_key(u) && !unparsed.upstreams.contains(u) => {
            out.push((path.key("upstream"), format!("no upstream named {u:?}")))
        }
        (None, Some(resp)) => {
            if !(200..=599).contains(&resp.status) {
                out.push((
                    path.key("respond").key("status"),
                    "must be a final HTTP status (200-599)".into(),
                ));
            }
            if HeaderValue::from_str(&resp.content_type).is_err() {
                out.push((
                    path.key("respond").key("content_type"),
                    "not a valid header value".into(),
                ));
            }
            for (key, set) in [
                ("strip_prefix", r.strip_prefix),
                ("timeout", r.timeout.is_some()),
                (
                    "request_headers",
                    r.request_headers != HeaderRulesSection::default(),
                ),
            ] {
                if set {
                    out.push((
                        path.key(key),
                        "only applies to routes with an upstream".into(),
                    ));
                }
            }
        }
        (Some(_), None) => {}
    }
    for (i, name) in r.auth.iter().enumerate() {
        if !raw.auth.contains_key(name) && !unparsed.auth.contains(name) {
            out.push((
                path.key("auth").index(i),
                format!("no authenticator named {name:?}"),
            ));
        }
    }
    for (i, name) in r.limits.iter().enumerate() {
        if !raw.limits.contains_key(name) && !unparsed.limits.contains(name) {
            out.push((
                path.key("limits").index(i),
                format!("no limit named {name:?}"),
            ));
        }
    }
    super::limits::jail_names(raw, unparsed, &r.jails, &path.key("jails"), out);
    if r.max_in_flight == Some(0) {
        out.push((path.key("max_in_flight"), "must be at least 1".into()));
    }
    if r.auth.is_empty() {
        for (key, set) in [
            ("require_scopes", !r.require_scopes.is_empty()),
            ("require_roles", !r.require_roles.is_empty()),
            ("keep_credentials", r.keep_credentials),
        ] {
            if set {
                out.push((path.key(key), "only applies to routes with `auth`".into()));
            }
        }
    }
    if r.timeout.is_some_and(|t| t.is_zero()) {
        out.push((path.key("timeout"), "must be greater than 0".into()));
    }
    header_rules(&r.request_headers, &path.key("request_headers"), out);
    header_rules(&r.response_headers, &path.key("response_headers"), out);
}

fn header_rules(rules: &HeaderRulesSection, path: &TomlPath, out: &mut Problems) {
    for (name, value) in &rules.set {
        let at = path.key("set").key(name);
        header_name(name, &at, out);
        if HeaderValue::from_str(value).is_err() {
            out.push((at, format!("invalid header value {value:?}")));
        }
    }
    for (i, name) in rules.remove.iter().enumerate() {
        header_name(name, &path.key("remove").index(i), out);
    }
}

/// A later route that can never match because an earlier one takes all its requests.
pub(super) fn shadowed_routes(routes: &[RouteSection], fold_case: bool, out: &mut Problems) {
    for (j, later) in routes.iter().enumerate() {
        let later_prefix = normalized_prefix(&later.path_prefix);
        let in_other_case = routes[..j].iter().position(|earlier| {
            let earlier_prefix = normalized_prefix(&earlier.path_prefix);
            earlier_prefix != later_prefix && earlier_prefix.eq_ignore_ascii_case(later_prefix)
        });
        if let (true, Some(i)) = (fold_case, in_other_case) {
            out.push((
                TomlPath::root().key("routes").index(j).key("path_prefix"),
                format!(
                    "route {:?} differs from route {:?} (routes[{i}]) only in case, which \
                     path_case = \"insensitive\" ignores: spell the prefixes alike",
                    later.name, routes[i].name
                ),
            ));
            continue;
        }
        let shadow = routes[..j].iter().position(|earlier| {
            normalized_prefix(&earlier.path_prefix) == normalized_prefix(&later.path_prefix)
                && overlaps(&earlier.listeners, &later.listeners)
                && same_hosts(&earlier.hosts, &later.hosts)
                && overlaps_or_any(&earlier.methods, &later.methods)
        });
        if let Some(i) = shadow {
            out.push((
                TomlPath::root().key("routes").index(j).key("path_prefix"),
                format!(
                    "route {:?} overlaps route {:?} (routes[{i}]): same listeners, hosts, path_prefix and methods",
                    later.name, routes[i].name
                ),
            ));
        }
    }
}

/// The prefix as the router compares it: without a trailing slash.
fn normalized_prefix(prefix: &str) -> &str {
    prefix.trim_end_matches('/')
}

fn overlaps(a: &Option<Vec<String>>, b: &Option<Vec<String>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.iter().any(|x| b.contains(x)),
        _ => true,
    }
}

fn same_hosts(a: &[String], b: &[String]) -> bool {
    (a.is_empty() && b.is_empty())
        || a.iter()
            .any(|x| b.iter().any(|y| x.eq_ignore_ascii_case(y)))
}

fn overlaps_or_any(a: &[String], b: &[String]) -> bool {
    a.is_empty() || b.is_empty() || a.iter().any(|x| b.contains(x))
}
