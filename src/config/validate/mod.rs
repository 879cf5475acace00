//! Semantic checks serde cannot make: references between sections, duplicates, value
//! ranges and header syntax. Returns every problem with its TOML path; never panics.
//! One file per kind of section; the checks shared by several (header names, host
//! patterns) are here.

mod acme;
mod anomaly;
mod auth;
mod limits;
mod listeners;
mod routes;
mod upstreams;
mod waf;

use http::HeaderName;
use std::collections::{BTreeSet, HashMap};

use super::location::{Problems, TomlPath};
use super::raw::{valid_cluster_name, AdminSection, FleetSection, LogTarget, RawConfig};
use super::units::parse_fingerprint;

/// Headers a route may not set or remove: framing and connection management belong
/// to the proxy.
const RESERVED_HEADERS: [&str; 6] = [
    "connection",
    "content-length",
    "host",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
];

/// Entries that failed to deserialize (their error is already reported): references
/// to them are not reported a second time.
#[derive(Debug, Default)]
pub struct Unparsed {
    pub listeners: BTreeSet<String>,
    pub upstreams: BTreeSet<String>,
    pub auth: BTreeSet<String>,
    pub limits: BTreeSet<String>,
    pub jails: BTreeSet<String>,
    pub waf: BTreeSet<String>,
}

/// Every semantic problem in `raw`, each with the path of the value at fault.
pub fn validate(raw: &RawConfig, unparsed: &Unparsed) -> Problems {
    let mut out = Problems::new();
    let root = TomlPath::root();
    server(raw, &root.key("server"), &mut out);
    listeners::listeners(raw, unparsed, &mut out);
    acme::acme(raw, &mut out);
    anomaly::anomaly(raw, unparsed, &mut out);
    for (name, up) in &raw.upstreams {
        upstreams::upstream(up, &root.key("upstreams").key(name), &mut out);
    }
    for (name, a) in &raw.auth {
        let at = root.key("auth").key(name);
        auth::auth(a, &at, &mut out);
        auth::underscored_source(a, raw.server.underscore_headers, &at, &mut out);
    }
    for (name, l) in &raw.limits {
        limits::limit(raw, l, &root.key("limits").key(name), &mut out);
    }
    if let Some(r) = &raw.redis {
        limits::redis(r, &root.key("redis"), &mut out);
    }
    if let Some(a) = &raw.admin {
        admin(a, &root.key("admin"), &mut out);
    }
    if let Some(f) = &raw.fleet {
        fleet(f, &root.key("fleet"), &mut out);
    }
    for (name, j) in &raw.jails {
        limits::jail(raw, j, &root.key("jails").key(name), &mut out);
    }
    limits::jail_names(
        raw,
        unparsed,
        &raw.server.jails,
        &root.key("server").key("jails"),
        &mut out,
    );
    for (name, w) in &raw.waf {
        waf::waf(raw, w, &root.key("waf").key(name), &mut out);
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, r) in raw.routes.iter().enumerate() {
        let path = root.key("routes").index(i);
        if let Some(first) = names.insert(r.name.as_str(), i) {
            out.push((
                path.key("name"),
                format!("route name {:?} is already used by routes[{first}]", r.name),
            ));
        }
        routes::route(raw, unparsed, r, &path, &mut out);
        waf::waf_name(raw, unparsed, &r.waf, &path.key("waf"), &mut out);
    }
    let fold_case = raw.server.path_case == crate::config::raw::PathCase::Insensitive;
    routes::shadowed_routes(&raw.routes, fold_case, &mut out);
    out
}

fn server(raw: &RawConfig, path: &TomlPath, out: &mut Problems) {
    let s = &raw.server;
    if s.workers == Some(0) {
        out.push((path.key("workers"), "must be at least 1".into()));
    }
    if s.keepalive_timeout.as_secs() == 0 {
        out.push((
            path.key("keepalive_timeout"),
            "must be at least 1s (it counts in whole seconds)".into(),
        ));
    }
    if s.header_timeout.is_zero() {
        out.push((path.key("header_timeout"), "must be greater than 0".into()));
    }
    if s.max_connections_per_ip == Some(0) {
        out.push((
            path.key("max_connections_per_ip"),
            "must be at least 1 (leave it out for no limit)".into(),
        ));
    }
    if s.request_buffer_memory == 0 {
        out.push((
            path.key("request_buffer_memory"),
            "must be greater than 0".into(),
        ));
    }
    if matches!(s.process_log, LogTarget::Off | LogTarget::Syslog(_)) {
        out.push((
            path.key("process_log"),
            "cannot be off or syslog: choose \"stderr\", \"stdout\" or a file (RUST_LOG=off \
             silences it)"
                .into(),
        ));
    }
    for (key, target) in [
        ("access_log", &s.access_log),
        ("security_log", &s.security_log),
    ] {
        if let LogTarget::Syslog(syslog) = target {
            if let Err(e) = syslog.endpoint() {
                out.push((path.key(key).key("syslog"), e));
            }
        }
    }
    if s.max_uri_bytes == 0 {
        out.push((path.key("max_uri_bytes"), "must be greater than 0".into()));
    }
    if s.max_header_bytes == 0 {
        out.push((
            path.key("max_header_bytes"),
            "must be greater than 0".into(),
        ));
    }
}

/// `[admin]`: a token digest that is one, and a token wherever anyone else can connect.
fn admin(a: &AdminSection, path: &TomlPath, out: &mut Problems) {
    match &a.token_sha256 {
        Some(digest) if parse_fingerprint(digest).is_none() => out.push((
            path.key("token_sha256"),
            "expected 64 hex digits (printf %s \"$TOKEN\" | tollgate hash-key)".into(),
        )),
        Some(_) => {}
        None if !a.listen.ip().is_loopback() => out.push((
            path.key("listen"),
            "an admin listener on an address other than loopback needs token_sha256".into(),
        )),
        None => {}
    }
}

fn fleet(f: &FleetSection, path: &TomlPath, out: &mut Problems) {
    if f.etcd.is_empty() {
        out.push((path.key("etcd"), "name at least one etcd client URL".into()));
    }
    for (i, url) in f.etcd.iter().enumerate() {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            out.push((
                path.key("etcd").index(i),
                format!("{url:?}: expected an http:// or https:// URL"),
            ));
        }
    }
    if !valid_cluster_name(&f.cluster) {
        out.push((
            path.key("cluster"),
            "1 to 64 letters, digits, '.', '_' or '-'".into(),
        ));
    }
    if let Some(tls) = &f.tls {
        if tls.cert.is_some() != tls.key.is_some() {
            out.push((path.key("tls"), "cert and key go together".into()));
        }
    }
    if f.username_env.is_some() != f.password_env.is_some() {
        out.push((
            path.clone(),
            "username_env and password_env go together".into(),
        ));
    }
}

pub(super) fn header_name(name: &str, path: &TomlPath, out: &mut Problems) {
    if HeaderName::from_bytes(name.as_bytes()).is_err() {
        out.push((path.clone(), format!("invalid header name {name:?}")));
    } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        out.push((
            path.clone(),
            format!("header {name:?} is managed by the proxy"),
        ));
    }
}

/// `api.example.com` or `*.example.com`: DNS labels (or an IP literal), no port.
pub(super) fn host_pattern(h: &str) -> Result<(), &'static str> {
    let name = h.strip_prefix("*.").unwrap_or(h);
    if name.is_empty() {
        return Err("empty name");
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if name.contains('*') {
        return Err("a wildcard is only allowed as a leading \"*.\"");
    }
    if name.contains(':') {
        return Err("hosts are matched without a port");
    }
    let ok = name
        .split('.')
        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if ok {
        Ok(())
    } else {
        Err("expected DNS labels such as api.example.com")
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    pub(super) fn errors(text: &str) -> Vec<String> {
        match load_str(text, "t.toml") {
            Ok(_) => Vec::new(),
            Err(e) => e
                .errors
                .iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect(),
        }
    }

    const BASE: &str = "[listeners.a]\naddr = \"127.0.0.1:1\"\n";

    #[test]
    fn valid_minimal_config_has_no_errors() {
        let text = format!("{BASE}[[routes]]\nname = \"h\"\nrespond = {{ status = 200 }}\n");
        assert_eq!(errors(&text), Vec::<String>::new());
    }

    #[test]
    fn reports_all_semantic_errors_at_once() {
        let text = format!(
            "{BASE}[listeners.b]\naddr = \"127.0.0.1:1\"\n\
             [upstreams.u]\ntargets = []\n\
             [upstreams.w]\ntargets = [{{ addr = \"127.0.0.1:2\", weight = 3 }}]\n\
             [[routes]]\nname = \"r\"\nupstream = \"nope\"\n\
             [[routes]]\nname = \"r\"\nhosts = [\"a:80\"]\nmethods = [\"get\"]\nrespond = {{ status = 200 }}\nstrip_prefix = true\n"
        );
        assert_reported(
            &text,
            &[
                "listeners.b.addr: address 127.0.0.1:1 is already used",
                "upstreams.u.targets: needs at least one target",
                "upstreams.w.targets[0].weight: weights only apply",
                "routes[0].upstream: no upstream named \"nope\"",
                "routes[1].name: route name \"r\" is already used",
                "routes[1].hosts[0]: invalid host",
                "routes[1].methods[0]: invalid method",
                "routes[1].strip_prefix: only applies",
            ],
        );
    }

    /// Asserts that every one of `expected` begins an error of `text`.
    pub(super) fn assert_reported(text: &str, expected: &[&str]) {
        let errs = errors(text);
        for expected in expected {
            assert!(
                errs.iter().any(|e| e.starts_with(expected)),
                "missing {expected:?} in {errs:#?}"
            );
        }
    }

    #[test]
    fn the_process_log_cannot_be_off_and_its_format_is_text_or_json() {
        let route = "[[routes]]\nname = \"h\"\nrespond = { status = 200 }\n";
        let off = format!("[server]\nprocess_log = \"off\"\n{BASE}{route}");
        assert_reported(&off, &["server.process_log: cannot be off"]);
        let json = format!("[server]\nlog_format = \"json\"\n{BASE}{route}");
        assert_eq!(errors(&json), Vec::<String>::new());
        let xml = format!("[server]\nlog_format = \"xml\"\n{BASE}{route}");
        assert_reported(&xml, &["server.log_format: unknown variant `xml`"]);
    }

    #[test]
    fn anomaly_numbers_are_reported_at_their_own_keys() {
        let route = "[[routes]]\nname = \"h\"\nrespond = { status = 200 }\n";
        let with = |section: &str| format!("{BASE}{route}[anomaly]\n{section}\n");
        assert_eq!(errors(&with("threshold = 4.0")), Vec::<String>::new());
        let bad = with(
            "threshold = 0.0\n\
             credential_stuffing = { min_credentials = 0 }\n\
             enumeration = { min_paths = 5000 }\n\
             volume_jump = { factor = 0.5, jail = \"nowhere\" }",
        );
        assert_reported(
            &bad,
            &[
                "anomaly.threshold: must be greater than 0",
                "anomaly.credential_stuffing.min_credentials: must be from 1 to 4096",
                "anomaly.enumeration.min_paths: must be from 1 to 4096",
                "anomaly.volume_jump.factor: must be at least 1",
                "anomaly.volume_jump.jail: ",
            ],
        );
        assert_eq!(errors(&bad).len(), 5, "{:#?}", errors(&bad));
    }

    #[test]
    fn a_syslog_target_is_a_udp_tcp_or_tls_url_with_a_port() {
        let route = "[[routes]]\nname = \"h\"\nrespond = { status = 200 }\n";
        let with = |server: &str| format!("[server]\n{server}\n{BASE}{route}");
        let good = with("security_log = { syslog = \"udp://siem.example:514\" }");
        assert_eq!(errors(&good), Vec::<String>::new());
        let tls = "access_log = { syslog = { url = \"tls://[::1]:6514\", ca_file = \"/ca.pem\", facility = \"auth\" } }";
        assert_eq!(errors(&with(tls)), Vec::<String>::new());
        let bad = with(
            "security_log = { syslog = \"http://siem:514\" }\n\
             access_log = { syslog = { url = \"tcp://siem\", ca_file = \"/ca.pem\" } }\n\
             process_log = { syslog = \"udp://siem:514\" }",
        );
        assert_reported(
            &bad,
            &[
                "server.security_log.syslog: unknown scheme \"http\"",
                "server.access_log.syslog: the receiver's port is missing",
                "server.process_log: cannot be off or syslog",
            ],
        );
    }

    #[test]
    fn shadowed_route_is_an_error_but_distinct_methods_are_not() {
        let dup = format!("{BASE}[[routes]]\nname = \"a\"\npath_prefix = \"/x\"\nrespond = {{ status = 200 }}\n[[routes]]\nname = \"b\"\npath_prefix = \"/x/\"\nrespond = {{ status = 200 }}\n");
        assert!(errors(&dup)
            .iter()
            .any(|e| e.contains("overlaps route \"a\"")));
        let split = format!("{BASE}[[routes]]\nname = \"a\"\nmethods = [\"GET\"]\nrespond = {{ status = 200 }}\n[[routes]]\nname = \"b\"\nmethods = [\"POST\"]\nrespond = {{ status = 200 }}\n");
        assert_eq!(errors(&split), Vec::<String>::new());
    }

    #[test]
    fn consistent_hash_needs_a_key() {
        let text = format!(
            "{BASE}[upstreams.u]\ntargets = [\"127.0.0.1:2\"]\nbalance = \"consistent_hash\"\n"
        );
        assert!(errors(&text)
            .iter()
            .any(|e| e.starts_with("upstreams.u.hash_key")));
    }
}
