//! Semantic checks serde cannot make: references between sections, duplicates, value
//! ranges and header syntax. Returns every problem with its TOML path; never panics.

use http::{HeaderName, HeaderValue, Method};
use std::collections::{BTreeSet, HashMap};

use super::location::{Problems, TomlPath};
use super::raw::{
    ApiKeySection, AuthSection, Balance, ClientAuth, CredentialSource, HashKey, HeaderRulesSection,
    HealthKind, JwtAlgorithm, JwtSection, LimitSection, LimitStore, ListenerSection, MtlsSection,
    OnStoreError, RawConfig, RouteSection, UpstreamSection, UpstreamTlsSection,
};

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
}

/// Every semantic problem in `raw`, each with the path of the value at fault.
pub fn validate(raw: &RawConfig, unparsed: &Unparsed) -> Problems {
    let mut out = Problems::new();
    let root = TomlPath::root();
    server(raw, &root.key("server"), &mut out);
    listeners(raw, unparsed, &mut out);
    for (name, up) in &raw.upstreams {
        upstream(up, &root.key("upstreams").key(name), &mut out);
    }
    for (name, a) in &raw.auth {
        auth(a, &root.key("auth").key(name), &mut out);
    }
    for (name, l) in &raw.limits {
        limit(raw, l, &root.key("limits").key(name), &mut out);
    }
    if let Some(r) = &raw.redis {
        let path = root.key("redis");
        if !(r.url.starts_with("redis://") || r.url.starts_with("rediss://")) {
            out.push((
                path.key("url"),
                "expected redis://host:port or rediss://host:port".into(),
            ));
        }
        if r.timeout.is_zero() {
            out.push((path.key("timeout"), "must be greater than 0".into()));
        }
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
        route(raw, unparsed, r, &path, &mut out);
    }
    shadowed_routes(&raw.routes, &mut out);
    out
}

fn server(raw: &RawConfig, path: &TomlPath, out: &mut Problems) {
    let s = &raw.server;
    if s.workers == Some(0) {
        out.push((path.key("workers"), "must be at least 1".into()));
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

fn listeners(raw: &RawConfig, unparsed: &Unparsed, out: &mut Problems) {
    let path = TomlPath::root().key("listeners");
    if raw.listeners.is_empty() && unparsed.listeners.is_empty() {
        out.push((
            path.clone(),
            "at least one listener is needed, e.g. [listeners.public] addr = \"0.0.0.0:8080\""
                .into(),
        ));
    }
    let mut seen = HashMap::new();
    for (name, l) in &raw.listeners {
        if let Some(first) = seen.insert(l.addr, name) {
            out.push((
                path.key(name).key("addr"),
                format!("address {} is already used by listener {first:?}", l.addr),
            ));
        }
        listener_tls(l, &path.key(name), out);
    }
}

fn listener_tls(l: &ListenerSection, path: &TomlPath, out: &mut Problems) {
    let Some(tls) = &l.tls else {
        return;
    };
    let tp = path.key("tls");
    if l.h2c {
        out.push((
            path.key("h2c"),
            "h2c is for plain listeners; a TLS listener offers HTTP/2 through ALPN (tls.http2)"
                .into(),
        ));
    }
    if l.redirect_https {
        out.push((
            path.key("redirect_https"),
            "only applies to plain listeners".into(),
        ));
    }
    if tls.certificates.is_empty() {
        out.push((
            tp.key("certificates"),
            "needs at least one { cert = \"chain.pem\", key = \"key.pem\" }".into(),
        ));
    }
    for (i, c) in tls.certificates.iter().enumerate() {
        for (j, name) in c.server_names.iter().enumerate() {
            if let Err(why) = host_pattern(name) {
                out.push((
                    tp.key("certificates").index(i).key("server_names").index(j),
                    format!("invalid server name {name:?}: {why}"),
                ));
            }
        }
    }
    match (tls.client_auth, &tls.client_ca) {
        (ClientAuth::None, Some(_)) => out.push((
            tp.key("client_ca"),
            "has no effect without client_auth = \"optional\" or \"require\"".into(),
        )),
        (ClientAuth::Optional | ClientAuth::Require, None) => out.push((
            tp.key("client_auth"),
            "needs client_ca, the CA certificates client certificates must chain to".into(),
        )),
        _ => {}
    }
}

fn upstream_tls(tls: &UpstreamTlsSection, path: &TomlPath, out: &mut Problems) {
    match &tls.sni {
        Some(sni) if host_pattern(sni).is_err() || sni.starts_with("*.") => {
            out.push((path.key("sni"), format!("not a server name: {sni:?}")))
        }
        None if tls.verify => out.push((
            path.key("sni"),
            "verify = true checks the target's certificate against this name: set sni (or verify = false, which trusts any certificate)".into(),
        )),
        _ => {}
    }
    if tls.client_cert.is_some() != tls.client_key.is_some() {
        out.push((
            path.clone(),
            "client_cert and client_key go together".into(),
        ));
    }
    if !tls.verify && tls.ca.is_some() {
        out.push((path.key("ca"), "has no effect with verify = false".into()));
    }
}

fn upstream(up: &UpstreamSection, path: &TomlPath, out: &mut Problems) {
    if up.targets.is_empty() {
        out.push((path.key("targets"), "needs at least one target".into()));
    }
    if up.max_in_flight == Some(0) {
        out.push((path.key("max_in_flight"), "must be at least 1".into()));
    }
    let mut seen = BTreeSet::new();
    for (i, t) in up.targets.iter().enumerate() {
        let at = path.key("targets").index(i);
        if !seen.insert(t.addr()) {
            out.push((at.clone(), format!("target {} is listed twice", t.addr())));
        }
        if t.weight() == 0 {
            out.push((at.key("weight"), "must be at least 1".into()));
        } else if t.weight() != 1 && up.balance != Balance::Weighted {
            out.push((
                at.key("weight"),
                "weights only apply with balance = \"weighted\"".into(),
            ));
        }
    }
    match (&up.balance, &up.hash_key) {
        (Balance::ConsistentHash, None) => out.push((
            path.key("hash_key"),
            "balance = \"consistent_hash\" needs hash_key = \"client_ip\", \"path\" or { header = \"NAME\" }".into(),
        )),
        (Balance::ConsistentHash, Some(HashKey::Header(h))) => {
            header_name(h, &path.key("hash_key").key("header"), out)
        }
        (Balance::ConsistentHash, Some(_)) | (_, None) => {}
        (_, Some(_)) => out.push((
            path.key("hash_key"),
            "hash_key only applies with balance = \"consistent_hash\"".into(),
        )),
    }
    for (key, d) in [
        ("connect_timeout", up.connect_timeout),
        ("read_timeout", up.read_timeout),
        ("write_timeout", up.write_timeout),
    ] {
        if d.is_zero() {
            out.push((path.key(key), "must be greater than 0".into()));
        }
    }
    if let Some(tls) = &up.tls {
        upstream_tls(tls, &path.key("tls"), out);
    }
    if let Some(h) = &up.health {
        let hp = path.key("health");
        match (h.kind, &h.path) {
            (HealthKind::Tcp, Some(_)) => {
                out.push((hp.key("path"), "only applies to kind = \"http\"".into()))
            }
            (HealthKind::Http, Some(p)) if !p.starts_with('/') => {
                out.push((hp.key("path"), "must start with '/'".into()))
            }
            _ => {}
        }
        if !(100..=599).contains(&h.expect_status) {
            out.push((
                hp.key("expect_status"),
                "must be an HTTP status (100-599)".into(),
            ));
        }
        if h.interval.is_zero() || h.timeout.is_zero() {
            out.push((
                hp.clone(),
                "interval and timeout must be greater than 0".into(),
            ));
        }
        if h.healthy_threshold == 0 || h.unhealthy_threshold == 0 {
            out.push((hp, "thresholds must be at least 1".into()));
        }
    }
}

fn route(
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

fn limit(raw: &RawConfig, l: &LimitSection, path: &TomlPath, out: &mut Problems) {
    match l.store {
        LimitStore::Redis if raw.redis.is_none() => out.push((
            path.key("store"),
            "store = \"redis\" needs a [redis] section with its url".into(),
        )),
        LimitStore::Local if l.on_store_error != OnStoreError::default() => out.push((
            path.key("on_store_error"),
            "only applies with store = \"redis\"".into(),
        )),
        LimitStore::Redis | LimitStore::Local => {}
    }
    if l.key.is_empty() {
        out.push((
            path.key("key"),
            "name what a bucket belongs to, e.g. \"client_ip\"".into(),
        ));
    }
    for (i, k) in l.key.iter().enumerate() {
        if let Err(e) = super::limit_key::KeyPart::parse(k) {
            out.push((path.key("key").index(i), e));
        }
    }
    if l.rate == 0 || l.per.is_zero() {
        out.push((path.clone(), "rate and per must be greater than 0".into()));
    }
    let burst = l.burst.unwrap_or(l.rate);
    if burst == 0 || l.cost == 0 || l.cost > burst {
        out.push((
            path.clone(),
            format!("need 1 <= cost ({}) <= burst ({burst})", l.cost),
        ));
    }
    if l.max_keys == 0 {
        out.push((path.key("max_keys"), "must be at least 1".into()));
    }
}

fn auth(a: &AuthSection, path: &TomlPath, out: &mut Problems) {
    match a {
        AuthSection::Jwt(j) => jwt(j, path, out),
        AuthSection::ApiKey(k) => api_key(k, path, out),
        AuthSection::Mtls(m) => mtls(m, path, out),
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
            if super::units::parse_fingerprint(fp).is_none() {
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

fn header_name(name: &str, path: &TomlPath, out: &mut Problems) {
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
fn host_pattern(h: &str) -> Result<(), &'static str> {
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

/// A later route that can never match because an earlier one takes all its requests.
fn shadowed_routes(routes: &[RouteSection], out: &mut Problems) {
    for (j, later) in routes.iter().enumerate() {
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
pub fn normalized_prefix(prefix: &str) -> &str {
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

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    fn errors(text: &str) -> Vec<String> {
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
        let errs = errors(&text);
        for expected in [
            "listeners.b.addr: address 127.0.0.1:1 is already used",
            "upstreams.u.targets: needs at least one target",
            "upstreams.w.targets[0].weight: weights only apply",
            "routes[0].upstream: no upstream named \"nope\"",
            "routes[1].name: route name \"r\" is already used",
            "routes[1].hosts[0]: invalid host",
            "routes[1].methods[0]: invalid method",
            "routes[1].strip_prefix: only applies",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(expected)),
                "missing {expected:?} in {errs:#?}"
            );
        }
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
