//! Proxy headers (X-Forwarded-For/-Proto/-Host, X-Request-Id) and the route response
//! policies on every response, tollgate's own replies included.

use crate::support::{client, raw_request, send, Origin, Tollgate};

fn config(origin: &Origin) -> String {
    format!(
        "[upstreams.app]\ntargets = [{}]\n\n[[routes]]\nname = \"app\"\npath_prefix = \"/\"\nupstream = \"app\"\n",
        origin.target()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn untrusted_peers_cannot_spoof_forwarded_headers() {
    let origin = Origin::start("o").await;
    let tg = Tollgate::start(&config(&origin)).await;
    let r = send(
        client()
            .get(tg.url("/x"))
            .header("host", "api.example.com:8443")
            .header("x-forwarded-for", "6.6.6.6")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "evil.test"),
    )
    .await;
    assert_eq!(r.status, 200);
    let h = &origin.seen()[0].headers;
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "api.example.com:8443");
    assert_eq!(h["host"], "api.example.com:8443", "Host is passed through");
    assert_eq!(tg.access_log(1).await[0]["client_ip"], "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_tollgate_removes_are_removed_in_their_underscore_spelling_too() {
    // CGI-style upstreams (PHP, IIS, WSGI, Rack) read `X_Original_URL` as
    // `X-Original-URL`: a spelling with `_` must not carry what the other may not.
    // With headers named with `_` passed (`underscore_headers = "drop"`, the
    // default, removes them all).
    let origin = Origin::start("o").await;
    let tg = Tollgate::start_with_server(&config(&origin), "underscore_headers = \"pass\"").await;
    let r = send(
        client()
            .get(tg.url("/x"))
            .header("x_forwarded_for", "6.6.6.6")
            .header("X_Forwarded-Host", "evil.test")
            .header("x_original_url", "/admin")
            .header("X_Rewrite_Url", "/admin")
            .header("x_client_cert_subject", "CN=admin")
            .header("x_other", "kept"),
    )
    .await;
    assert_eq!(r.status, 200);
    let h = &origin.seen()[0].headers;
    let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
    for gone in [
        "x_forwarded_for",
        "x_forwarded-host",
        "x_original_url",
        "x_rewrite_url",
        "x_client_cert_subject",
    ] {
        assert!(
            !h.contains_key(gone),
            "{gone} reached the upstream: {names:?}"
        );
    }
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x_other"], "kept", "other underscore headers pass");
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_proxies_extend_the_chain_and_name_the_client() {
    let origin = Origin::start("o").await;
    let tg =
        Tollgate::start_with_server(&config(&origin), "trusted_proxies = [\"127.0.0.0/8\"]").await;
    send(
        client()
            .get(tg.url("/x"))
            .header("x-forwarded-for", "203.0.113.9")
            .header("x-forwarded-proto", "https"),
    )
    .await;
    let h = &origin.seen()[0].headers;
    assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(tg.access_log(1).await[0]["client_ip"], "203.0.113.9");
}

#[tokio::test(flavor = "multi_thread")]
async fn request_id_is_kept_when_valid_and_generated_otherwise() {
    let origin = Origin::start("o").await;
    let tg = Tollgate::start(&config(&origin)).await;
    let c = client();
    let kept = send(c.get(tg.url("/")).header("x-request-id", "trace-42")).await;
    assert_eq!(kept.header("x-request-id"), "trace-42");
    let replaced = send(c.get(tg.url("/")).header("x-request-id", "has spaces")).await;
    let fresh = send(c.get(tg.url("/"))).await;
    for r in [&replaced, &fresh] {
        assert!(
            uuid_like(r.header("x-request-id")),
            "{:?}",
            r.header("x-request-id")
        );
    }
    assert_ne!(
        replaced.header("x-request-id"),
        fresh.header("x-request-id")
    );
    let seen = origin.seen();
    assert_eq!(seen[0].headers["x-request-id"], "trace-42");
    assert_eq!(
        seen[2].headers["x-request-id"],
        fresh.header("x-request-id")
    );
    let logged: Vec<_> = tg
        .access_log(3)
        .await
        .iter()
        .map(|l| l["request_id"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(logged[0], "trace-42");
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|&c| c == '-').count() == 4
}

/// Response policies run on tollgate's own replies too, and the stages keep their
/// order: a route's IP lists answer before its authentication.
#[tokio::test(flavor = "multi_thread")]
async fn own_replies_carry_the_route_response_policies() {
    let origin = Origin::start("o").await;
    let body = format!(
        r#"
[ip_lists.nobody]
cidrs = ["192.0.2.0/24"]

[upstreams.app]
targets = [{target}]

[auth.keys]
kind = "api_key"
consumers = [{{ id = "a", key_sha256 = "{digest}" }}]

[[routes]]
name = "guarded"
path_prefix = "/guarded"
upstream = "app"
auth = ["keys"]
deny_from = ["nobody"]
response_headers = {{ set = {{ "x-frame-options" = "DENY" }}, remove = ["x-upstream-secret"] }}
"#,
        target = origin.target(),
        digest = tollgate::auth::hash_key("some-key"),
    );
    let tg = Tollgate::start_with_server(&body, "trusted_proxies = [\"127.0.0.0/8\"]").await;
    let c = client();
    let unauthenticated = send(c.get(tg.url("/guarded"))).await;
    assert_eq!(unauthenticated.status, 401);
    assert_eq!(unauthenticated.header("x-frame-options"), "DENY");
    let denied = send(
        c.get(tg.url("/guarded"))
            .header("x-forwarded-for", "192.0.2.1"),
    )
    .await;
    assert_eq!(denied.status, 403, "IP lists answer before authentication");
    assert_eq!(denied.header("x-frame-options"), "DENY");
    let proxied = send(c.get(tg.url("/guarded")).header("x-api-key", "some-key")).await;
    assert_eq!(proxied.status, 200);
    assert_eq!(proxied.header("x-frame-options"), "DENY");
    assert_eq!(
        proxied.header("x-upstream-secret"),
        "",
        "removed from the upstream's response"
    );
    let unrouted = send(c.get(tg.url("/elsewhere"))).await;
    assert_eq!(unrouted.status, 404);
    assert_eq!(
        unrouted.header("x-upstream-secret"),
        "",
        "no route, no route policies"
    );
    assert_eq!(
        unrouted.header("x-frame-options"),
        "DENY",
        "the default security headers"
    );
    assert_eq!(origin.count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn security_headers_are_on_by_default_and_keep_the_upstreams_values() {
    let origin = Origin::start("o").await;
    let body = format!(
        "{}\n[[routes]]\nname = \"bare\"\npath_prefix = \"/bare\"\nupstream = \"app\"\nsecurity_headers = false\n",
        config(&origin)
    );
    let tg = Tollgate::start(&body).await;
    let c = client();
    let defaults = [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
    ];
    let proxied = send(c.get(tg.url("/x"))).await;
    for (name, value) in defaults {
        assert_eq!(proxied.header(name), value, "{name}");
    }
    assert_eq!(
        proxied.header("cache-control"),
        "",
        "the upstream's caching is its own"
    );
    let kept = send(c.get(tg.url("/with-headers"))).await;
    assert_eq!(
        kept.header("x-frame-options"),
        "SAMEORIGIN",
        "the upstream's value is kept"
    );
    let own = send(c.get(tg.url("/a%00b"))).await;
    assert_eq!(own.status, 400, "refused before routing");
    assert_eq!(own.header("cache-control"), "no-store");
    assert_eq!(own.header("x-frame-options"), "DENY");
    let bare = send(c.get(tg.url("/bare"))).await;
    for (name, _) in defaults {
        assert_eq!(bare.header(name), "", "security_headers = false: no {name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_1_0_request_without_host_names_the_target_upstream() {
    let origin = Origin::start("o").await;
    let tg = Tollgate::start(&config(&origin)).await;
    let port = tg.port;
    let answer = tokio::task::spawn_blocking(move || raw_request(port, b"GET /a HTTP/1.0\r\n\r\n"))
        .await
        .expect("client");
    // The upstream request is HTTP/1.1, which needs a Host: the target's address, as
    // nginx's proxy_pass sends by default.
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["host"], origin.target().trim_matches('"'));
    assert!(seen[0].headers.get("x-forwarded-host").is_none());
}
