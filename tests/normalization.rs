//! The normalized path, tried as an attacker would: a public route and an API-key
//! route on `/admin`, both to one echo origin. However `/admin` is spelled, the
//! request is refused (400) or routed to `/admin` (401 without its key); the origin
//! never sees an admin path from a request without the key, and sees the normalized
//! path (with the client's query byte for byte) from every request it gets.
//! Request-line and header hygiene: each rule refused before the origin.

use crate::support::{client, raw_request, send, Origin, Tollgate};

const KEY: &str = "normalization-test-key";

fn config(origin: &Origin, server: &str) -> (String, String) {
    let body = format!(
        r#"
[upstreams.app]
targets = [{target}]

[auth.keys]
kind = "api_key"
consumers = [{{ id = "ops", key_sha256 = "{digest}" }}]

[[routes]]
name = "public"
path_prefix = "/"
upstream = "app"

[[routes]]
name = "admin"
path_prefix = "/admin"
upstream = "app"
auth = ["keys"]
"#,
        target = origin.target(),
        digest = tollgate::auth::hash_key(KEY),
    );
    (body, server.to_owned())
}

async fn start(origin: &Origin, server: &str) -> Tollgate {
    let (body, server) = config(origin, server);
    Tollgate::start_with_server(&body, &server).await
}

/// The status of a raw HTTP/1.1 exchange (0 when the server sent nothing).
fn status(reply: &str) -> u16 {
    reply.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// `GET target` over a raw connection, with `extra` header lines.
fn get(tg: &Tollgate, target: &str, extra: &str) -> String {
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n");
    raw_request(tg.port, request.as_bytes())
}

fn key_header() -> String {
    format!("x-api-key: {KEY}\r\n")
}

/// Spellings of `/admin/x` that must never reach the origin without the key.
const ADMIN_SPELLINGS: [&str; 17] = [
    "//admin/x",
    "/%61dmin/x",
    "/%61%64%6D%69%6E/x",
    "/pub/..%2fadmin/x",
    "/admin%2fx",
    "/admin%2Fx",
    "/admin;x=1/x",
    "/admin%3Bx=1/x",
    "/pub\\..\\admin/x",
    "/admin\\x",
    "/%2561dmin/x",
    "/pub/%2e%2e/admin/x",
    "/pub/%252e%252e/admin/x",
    "/pub/..;/admin/x",
    "/pub/..%20/admin/x",
    "/;x/admin/x",
    "/admin/x%00",
];

#[tokio::test(flavor = "multi_thread")]
async fn no_spelling_of_admin_reaches_the_origin_without_the_key() {
    let origin = Origin::start("o").await;
    let tg = start(&origin, "").await;
    for target in ADMIN_SPELLINGS {
        let reply = get(&tg, target, "");
        assert!(
            matches!(status(&reply), 400 | 401),
            "{target}: refused or routed to /admin expected, got {reply}"
        );
        assert!(
            reply.contains("application/problem+json"),
            "{target}: {reply}"
        );
    }
    assert_eq!(origin.count(), 0, "reached the origin: {:?}", origin.seen());
    let expected: [(&str, u16); 6] = [
        ("//admin/x", 401),
        ("/%61dmin/x", 401),
        ("/admin;x=1/x", 401),
        ("/admin%3Bx=1/x", 401),
        ("/admin%2fx", 400),
        ("/pub/..;/admin/x", 400),
    ];
    for (target, code) in expected {
        assert_eq!(status(&get(&tg, target, "")), code, "{target}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_origin_sees_the_normalized_path_and_the_query_as_sent() {
    let origin = Origin::start("o").await;
    let tg = start(&origin, "").await;
    let key = key_header();
    let cases: [(&str, &str, &str); 6] = [
        ("//admin//x", key.as_str(), "/admin/x"),
        ("/%61dmin/%7Euser/a%2a", key.as_str(), "/admin/~user/a%2A"),
        (
            "/admin;jsessionid=1/x",
            key.as_str(),
            "/admin;jsessionid=1/x",
        ),
        (
            "/pub/caf%c3%a9?q=%2f..%252e&x=%41#frag",
            "",
            "/pub/caf%C3%A9?q=%2f..%252e&x=%41",
        ),
        ("/pub/a%20b?", "", "/pub/a%20b?"),
        (
            "http://localhost/%61dmin/abs?y=1",
            key.as_str(),
            "/admin/abs?y=1",
        ),
    ];
    for (target, extra, seen) in cases {
        let reply = get(&tg, target, extra);
        assert_eq!(status(&reply), 200, "{target}: {reply}");
        let last = origin.seen().pop().expect("the origin saw it");
        assert_eq!(last.path_and_query, seen, "{target}");
    }
    let logged = tg.access_log(cases.len()).await;
    assert_eq!(
        logged[0]["path"], "/admin/x",
        "the access log shows the normalized path"
    );
    assert_eq!(logged[0]["route"], "admin");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_settings_decode_or_keep_escapes_and_keep_repeated_slashes() {
    let origin = Origin::start("o").await;
    let decode = start(&origin, "escaped_slashes = \"decode\"").await;
    assert_eq!(status(&get(&decode, "/admin%2fx", "")), 401);
    assert_eq!(status(&get(&decode, "/pub/..%2fadmin/x", "")), 400);
    assert_eq!(status(&get(&decode, "/pub\\..\\admin/x", "")), 400);
    assert_eq!(status(&get(&decode, "/admin%5Cx", &key_header())), 200);
    assert_eq!(
        origin.seen().pop().expect("seen").path_and_query,
        "/admin/x"
    );

    let keep = start(
        &origin,
        "escaped_slashes = \"keep\"\nmerge_slashes = false\ndouble_encoding = \"keep\"",
    )
    .await;
    let forwarded: [(&str, &str); 4] = [
        ("/files/a%2fb", "/files/a%2Fb"),
        ("/files/a\\b", "/files/a%5Cb"),
        ("//files//x", "//files//x"),
        ("/files/100%2541", "/files/100%2541"),
    ];
    for (target, seen) in forwarded {
        assert_eq!(status(&get(&keep, target, "")), 200, "{target}");
        assert_eq!(origin.seen().pop().expect("seen").path_and_query, seen);
    }
    for refused in ["/pub/..%2Fadmin", "/pub/%252e%252e/admin", "/a/%00"] {
        assert_eq!(status(&get(&keep, refused, "")), 400, "{refused}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_request_lines_and_headers_are_refused_before_routing() {
    let origin = Origin::start("o").await;
    let tg = start(&origin, "").await;
    let cases: [(&str, &[u8], u16); 14] = [
        ("two spaces before the target", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("two spaces after the target", b"GET /x  HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("not a path", b"GET ! HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("authority-form on GET", b"GET localhost:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("asterisk-form on GET", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("ftp URL", b"GET ftp://a/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("ws URL", b"GET ws://a/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("absolute-form without Host", b"GET http://a/x HTTP/1.1\r\n\r\n", 400),
        ("port not a number", b"GET / HTTP/1.1\r\nHost: localhost:abc\r\n\r\n", 400),
        ("empty port", b"GET / HTTP/1.1\r\nHost: localhost:\r\n\r\n", 400),
        (
            "two Authorization headers",
            b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n",
            400,
        ),
        ("NUL in the path", b"GET /a%00 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("tab in the path", b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("CONNECT", b"CONNECT localhost:80 HTTP/1.1\r\nHost: localhost:80\r\n\r\n", 405),
    ];
    for (what, request, code) in cases {
        let reply = raw_request(tg.port, request);
        assert_eq!(status(&reply), code, "{what}: {reply}");
        if code == 400 {
            assert!(
                reply.contains("application/problem+json"),
                "{what}: {reply}"
            );
            assert!(
                reply.to_ascii_lowercase().contains("connection: close"),
                "{what}"
            );
        }
    }
    assert_eq!(origin.count(), 0, "reached the origin: {:?}", origin.seen());
    // A credential given twice counts as none, even when one of them is right.
    let twice = format!("x-api-key: wrong\r\n{}", key_header());
    assert_eq!(status(&get(&tg, "/admin/x", &twice)), 401);
    assert_eq!(origin.count(), 0);
    let options = raw_request(
        tg.port,
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status(&options), 204, "{options}");
    assert!(
        !options.to_ascii_lowercase().contains("content-length"),
        "RFC 9110 §8.6: no Content-Length on a 204: {options}"
    );
    assert_eq!(origin.count(), 0, "OPTIONS * is answered by tollgate");
}

#[tokio::test(flavor = "multi_thread")]
async fn url_override_headers_never_reach_the_origin() {
    let origin = Origin::start("o").await;
    let tg = start(&origin, "").await;
    let r = send(
        client()
            .get(tg.url("/pub"))
            .header("x-original-url", "/admin/x")
            .header("x-rewrite-url", "/admin/x"),
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = origin.seen().pop().expect("seen");
    assert!(!seen.headers.contains_key("x-original-url"));
    assert!(!seen.headers.contains_key("x-rewrite-url"));
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_requests_are_normalized_the_same_way() {
    let origin = Origin::start("o").await;
    let port = crate::support::free_port();
    let (body, _) = config(&origin, "");
    let tg = Tollgate::start(&format!(
        "[listeners.h2c]\naddr = \"127.0.0.1:{port}\"\nh2c = true\n{body}"
    ))
    .await;
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .expect("h2c client");
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let r = send(h2.get(url("/%61dmin/x"))).await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = send(h2.get(url("/admin%2fx"))).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = send(h2.get(url("/%61dmin/x%20?k=%41")).header("x-api-key", KEY)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = origin.seen().pop().expect("seen");
    assert_eq!(
        seen.path_and_query, "/admin/x%20?k=%41",
        "HTTP/2 has no request line to re-encode: a trailing %20 is the client's"
    );
    let authority = format!("127.0.0.1:{port}");
    assert_eq!(
        seen.headers["host"],
        authority.as_str(),
        ":authority becomes Host"
    );
    assert_eq!(seen.headers["x-forwarded-host"], authority.as_str());
    drop(tg);
}
