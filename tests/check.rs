//! `tollgate check`: every error with its place, exit 1; a summary and exit 0 for a
//! valid file; and every shipped example under `conf/` is valid.

use crate::support::tollgate::cli;

/// Runs `tollgate check` on `text` written to `dir`: the file's path as errors show
/// it, and stderr. Asserts exit 1.
fn check_refuses(dir: &std::path::Path, text: &str) -> (String, String) {
    let path = dir.join("refused.toml");
    std::fs::write(&path, text).expect("write");
    let out = cli(&["check", "-c"], Some(&path));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    (path.display().to_string(), stderr)
}

#[test]
fn broken_file_lists_every_error_with_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, stderr) = check_refuses(
        dir.path(),
        r#"[server]
workers = 0

[listeners.a]
addr = "127.0.0.1:7000"

[listeners.b]
addr = "127.0.0.1:7000"
colour = "blue"

[listeners.c]
addr = "127.0.0.1:7000"

[upstreams.empty]
targets = []

[upstreams.slow]
targets = ["127.0.0.1:9000"]
read_timeout = "forever"

[[routes]]
name = "orders"
upstream = "ordres"
"#,
    );
    for expected in [
        format!("{file}:2:11: server.workers: must be at least 1"),
        format!("{file}:9:1: listeners.b.colour: unknown field `colour`"),
        format!("{file}:12:8: listeners.c.addr: address 127.0.0.1:7000 is already used by listener \"a\""),
        format!("{file}:15:11: upstreams.empty.targets: needs at least one target"),
        format!("{file}:19:16: upstreams.slow.read_timeout: invalid duration \"forever\""),
        format!("{file}:23:12: routes[0].upstream: no upstream named \"ordres\""),
    ] {
        assert!(stderr.contains(&expected), "missing {expected:?} in:\n{stderr}");
    }
    assert!(stderr.contains("6 errors"), "{stderr}");
}

#[test]
fn every_shipped_config_is_valid() {
    let conf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let mut checked = 0;
    // From another working directory: relative paths in a config (key files) are
    // relative to the file, not to where tollgate runs.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(&conf).expect("conf/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = std::process::Command::new(crate::support::tollgate::BIN)
                .args(["check", "-c"])
                .arg(&path)
                .current_dir(elsewhere.path())
                .output()
                .expect("check");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{}:\n{}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(stdout.contains(": ok ("), "{stdout}");
            // A shipped certificate close to expiry is a warning: fail here first.
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("warning"), "{}: {stderr}", path.display());
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "expected conf/tollgate.toml and conf/auth.toml"
    );
}

#[test]
fn tls_settings_are_checked_with_their_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, stderr) = check_refuses(
        dir.path(),
        r#"[listeners.a]
addr = "127.0.0.1:7000"
h2c = true
tls = { certificates = [], client_auth = "require" }

[listeners.b]
addr = "127.0.0.1:7001"
tls = { certificates = [{ cert = "c.pem", key = "c.key", server_names = ["bad name"] }], client_ca = "ca.pem" }

[upstreams.u]
targets = ["127.0.0.1:9000"]
tls = { client_cert = "c.pem" }

[auth.m]
kind = "mtls"
consumers = [{ id = "x", san = "x.test", subject_cn = "x" }, { id = "y", sha256 = "12" }]
"#,
    );
    for (place, message) in [
        (
            "listeners.a.h2c",
            "a TLS listener offers HTTP/2 through ALPN",
        ),
        ("listeners.a.tls.certificates", "needs at least one"),
        ("listeners.a.tls.client_auth", "needs client_ca"),
        (
            "listeners.b.tls.certificates[0].server_names[0]",
            "invalid server name",
        ),
        (
            "listeners.b.tls.client_ca",
            "has no effect without client_auth",
        ),
        ("upstreams.u.tls.sni", "set sni"),
        ("upstreams.u.tls", "client_cert and client_key go together"),
        (
            "auth.m.consumers[0]",
            "exactly one of san, subject_cn or sha256",
        ),
        ("auth.m.consumers[1].sha256", "64 hex digits"),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&format!(": {place}: ")) && l.contains(message)),
            "{place}: {message}\n{stderr}"
        );
    }
}

#[test]
fn problems_found_while_compiling_are_all_listed_with_their_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("garbage.pem"), "not a key").expect("write");
    let (file, stderr) = check_refuses(
        dir.path(),
        r#"[listeners.a]
addr = "127.0.0.1:7000"

[upstreams.u]
targets = ["127.0.0.1:9000"]
tls = { sni = "u.test", ca = "missing-ca.pem" }

[auth.pem]
kind = "jwt"
algorithms = ["RS256"]
public_key_file = "garbage.pem"

[auth.set]
kind = "jwt"
algorithms = ["RS256"]
jwks_file = "missing.json"

[[routes]]
name = "r"
path_prefix = "/%61dmin"
respond = { status = 200 }
"#,
    );
    for expected in [
        format!("{file}:6:7: upstreams.u.tls: "),
        format!("{file}:11:19: auth.pem.public_key_file: "),
        format!("{file}:16:13: auth.set.jwks_file: "),
        format!("{file}:20:15: routes[0].path_prefix: write it as it is matched, normalized: \"/admin\""),
    ] {
        assert!(stderr.contains(&expected), "missing {expected:?} in:\n{stderr}");
    }
    assert!(stderr.contains("4 errors"), "{stderr}");
}

#[test]
fn validation_errors_and_compile_problems_come_out_of_one_check() {
    // A validation error (an unknown upstream, a bad header rule) and a key file that
    // does not parse (found only by compiling) are reported together, each once.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("garbage.pem"), "not a key").expect("write");
    let (file, stderr) = check_refuses(
        dir.path(),
        r#"[listeners.a]
addr = "127.0.0.1:7000"

[auth.pem]
kind = "jwt"
algorithms = ["RS256"]
public_key_file = "garbage.pem"

[[routes]]
name = "r"
path_prefix = "/r"
upstream = "nowhere"
auth = ["pem"]
request_headers = { set = { "bad name" = "v" } }
"#,
    );
    for expected in [
        format!("{file}:7:19: auth.pem.public_key_file: "),
        format!("{file}:12:12: routes[0].upstream: no upstream named \"nowhere\""),
        format!("{file}:14:42: routes[0].request_headers.set.bad name: invalid header name"),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("3 errors"), "{stderr}");
}

#[test]
fn ip_list_problems_are_listed_with_their_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("bad.txt"),
        "10.0.0.1\n# fine\n10.0.0.0/40\n",
    )
    .expect("write");
    let (file, stderr) = check_refuses(
        dir.path(),
        r#"[server]
deny_from = ["nope"]

[listeners.a]
addr = "127.0.0.1:7000"

[ip_lists.inline]
cidrs = ["10.0.0.0/8", "10.0.0.0/99"]

[ip_lists.gone]
file = "missing.txt"

[ip_lists.bad]
file = "bad.txt"

[ip_lists.empty]

[[routes]]
name = "r"
allow_from = ["inline", "ofice"]
respond = { status = 200 }
"#,
    );
    for expected in [
        format!("{file}:2:14: server.deny_from[0]: no ip list named \"nope\""),
        format!(
            "{file}:8:24: ip_lists.inline.cidrs[1]: \"10.0.0.0/99\": not an IP address or CIDR"
        ),
        format!("{file}:11:8: ip_lists.gone.file: "),
        format!("{file}:14:8: ip_lists.bad.file: "),
        "line 3: \"10.0.0.0/40\" (not an IP address or CIDR)".to_owned(),
        format!("{file}:16:1: ip_lists.empty: needs cidrs"),
        format!("{file}:20:25: routes[0].allow_from[1]: no ip list named \"ofice\""),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("6 errors"), "{stderr}");
}

#[test]
fn edge_protection_mistakes_are_reported_at_their_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("bad.json"), r#"{"type": 12}"#).expect("write");
    let (file, stderr) = check_refuses(
        dir.path(),
        r#"[listeners.a]
addr = "127.0.0.1:7000"

[[routes]]
name = "r"
path_prefix = "/r"
respond = { status = 200 }
cors = { origins = ["*", "~(open"], credentials = true }
deprecation = { since = "June 2026", after_sunset = "block" }
validate = { body_schema = "bad.json" }

[[routes]]
name = "s"
path_prefix = "/s"
respond = { status = 200 }
security_headers = false
hsts = { max_age = "1d" }
max_body = "0"
validate = { body_schema = "missing.json" }
"#,
    );
    for expected in [
        format!("{file}:8:21: routes[0].cors.origins[0]: \"*\" cannot be used with credentials"),
        format!("{file}:8:26: routes[0].cors.origins[1]: invalid regex"),
        format!("{file}:9:25: routes[0].deprecation.since: \"June 2026\" is not an RFC 3339 time"),
        format!("{file}:9:53: routes[0].deprecation.after_sunset: \"block\" needs a `sunset`"),
        format!("{file}:10:28: routes[0].validate.body_schema: "),
        "not a valid JSON Schema".to_owned(),
        format!("{file}:17:8: routes[1].hsts: is one of the security headers"),
        format!("{file}:19:28: routes[1].validate.body_schema: "),
        "missing.json".to_owned(),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn jail_mistakes_are_reported_at_their_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, stderr) = check_refuses(
        dir.path(),
        r#"[server]
jails = ["nope"]

[listeners.a]
addr = "127.0.0.1:7000"

[jails.j]
key = "client_ip"
statuses = [401, 999]
max_strikes = 0
window = "1m"
ban = "1m"
store = "redis"

[jails.k]
key = "ip"
max_strikes = 1
window = "1m"
ban = "1m"

[[routes]]
name = "r"
respond = { status = 200 }
jails = ["j", "jj"]
"#,
    );
    for expected in [
        format!("{file}:2:10: server.jails[0]: no jail named \"nope\""),
        format!("{file}:9:18: jails.j.statuses[1]: 999 is not an HTTP status"),
        format!("{file}:10:15: jails.j.max_strikes: must be at least 1"),
        format!("{file}:13:9: jails.j.store: store = \"redis\" needs a [redis] section"),
        format!("{file}:16:7: jails.k.key: unknown variant `ip`"),
        format!("{file}:24:15: routes[0].jails[1]: no jail named \"jj\""),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn an_exposed_admin_listener_needs_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, stderr) = check_refuses(
        dir.path(),
        "[admin]\nlisten = \"0.0.0.0:9900\"\n\n[listeners.a]\naddr = \"127.0.0.1:7000\"\n",
    );
    assert!(
        stderr.contains(&format!("{file}:2:10: admin.listen: an admin listener on an address other than loopback needs token_sha256")),
        "{stderr}"
    );
    let (file, stderr) = check_refuses(
        dir.path(),
        "[admin]\nlisten = \"0.0.0.0:9900\"\ntoken_sha256 = \"abc\"\n\n[listeners.a]\naddr = \"127.0.0.1:7000\"\n",
    );
    assert!(
        stderr.contains(&format!(
            "{file}:3:16: admin.token_sha256: expected 64 hex digits"
        )),
        "{stderr}"
    );
}

#[test]
fn slow_client_limit_mistakes_are_reported_at_their_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = "[listeners.a]\naddr = \"127.0.0.1:7000\"\n";
    let (file, stderr) = check_refuses(
        dir.path(),
        &format!("[server]\nheader_timeout = \"0s\"\nmax_connections_per_ip = 0\n\n{listener}"),
    );
    for expected in [
        format!("{file}:2:18: server.header_timeout: must be greater than 0"),
        format!("{file}:3:26: server.max_connections_per_ip: must be at least 1"),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    let (file, stderr) = check_refuses(
        dir.path(),
        &format!("[server]\nbody_min_rate = \"1KiB\"\n\n{listener}"),
    );
    let expected = format!("{file}:2:17: server.body_min_rate: invalid rate \"1KiB\"");
    assert!(
        stderr.contains(&expected),
        "missing {expected:?} in:\n{stderr}"
    );
}

#[test]
fn upstream_protocol_and_name_mistakes_are_reported_at_their_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, stderr) = check_refuses(
        dir.path(),
        "[listeners.a]\naddr = \"127.0.0.1:7000\"\n\n[upstreams.u]\ntargets = [\"127.0.0.1:9\"]\n\
         protocol = \"h2c\"\nresolve_every = \"0s\"\ntls = { sni = \"u.test\" }\nretry_budget = 2.0\n\n\
         [upstreams.v]\ntargets = [\"127.0.0.1:9\"]\nretry_on = [\"404\"]\n",
    );
    for expected in [
        format!("{file}:6:12: upstreams.u.protocol: h2c is HTTP/2 without TLS"),
        format!("{file}:7:17: upstreams.u.resolve_every: must be at least 1s"),
        format!("{file}:9:16: upstreams.u.retry_budget: must be between 0 and 1"),
        format!("{file}:13:12: upstreams.v.retry_on: retry_on: \"404\" is not \"reset\", \"timeout\" or a 5xx status"),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    let (file, stderr) = check_refuses(
        dir.path(),
        "[listeners.a]\naddr = \"127.0.0.1:7000\"\n\n[upstreams.u]\ntargets = [\"orders.internal\"]\n",
    );
    assert!(stderr.contains(&format!("{file}:5:")), "{stderr}");
    assert!(stderr.contains("\"name:port\""), "{stderr}");
}

#[test]
fn spellings_an_option_makes_ambiguous_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, stderr) = check_refuses(
        dir.path(),
        r#"[server]
path_case = "insensitive"

[listeners.main]
addr = "127.0.0.1:7000"

[upstreams.app]
targets = ["127.0.0.1:9000"]

[auth.keys]
kind = "api_key"
from = { header = "x_api_key" }
consumers = [{ id = "a", key_sha256 = "0000000000000000000000000000000000000000000000000000000000000000" }]

[[routes]]
name = "admin"
path_prefix = "/admin"
upstream = "app"

[[routes]]
name = "Admin"
path_prefix = "/Admin/"
upstream = "app"
"#,
    );
    for expected in [
        format!("{file}:12:19: auth.keys.from.header: \"x_api_key\" has '_'"),
        format!("{file}:22:15: routes[1].path_prefix: route \"Admin\" differs from route \"admin\" (routes[0]) only in case"),
    ] {
        assert!(stderr.contains(&expected), "missing {expected:?} in:\n{stderr}");
    }
}
