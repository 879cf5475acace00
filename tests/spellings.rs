//! Spellings a gateway and its upstream may read differently, against the real
//! binary: path case (`path_case`), headers named with `_` (`underscore_headers`),
//! routing hints from untrusted clients, and the header a trusted balancer names the
//! client in (`client_ip_header`).

use crate::support::{client, raw_request, send, Origin, Tollgate};

fn guarded(origin: &Origin) -> String {
    format!(
        r#"
[ip_lists.blocked]
cidrs = ["192.0.2.0/24"]

[upstreams.app]
targets = [{target}]

[auth.keys]
kind = "api_key"
consumers = [{{ id = "a", key_sha256 = "{digest}" }}]

[[routes]]
name = "admin"
path_prefix = "/admin"
upstream = "app"
auth = ["keys"]
deny_from = ["blocked"]

[[routes]]
name = "public"
path_prefix = "/"
upstream = "app"
"#,
        target = origin.target(),
        digest = tollgate::auth::hash_key("some-key"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn path_case_insensitive_keeps_other_spellings_under_their_route() {
    let origin = Origin::start("o").await;
    let sensitive = Tollgate::start(&guarded(&origin)).await;
    let insensitive =
        Tollgate::start_with_server(&guarded(&origin), "path_case = \"insensitive\"").await;
    let c = client();
    for path in ["/ADMIN/x", "/Admin", "/aDmIn/users"] {
        let guarded = send(c.get(insensitive.url(path))).await;
        assert_eq!(guarded.status, 401, "{path} under path_case = insensitive");
        let public = send(c.get(sensitive.url(path))).await;
        assert_eq!(public.status, 200, "{path} is another path by default");
    }
    let authorized = send(
        c.get(insensitive.url("/ADMIN/x"))
            .header("x-api-key", "some-key"),
    )
    .await;
    assert_eq!(authorized.status, 200);
    let paths: Vec<String> = origin
        .seen()
        .iter()
        .map(|s| s.path_and_query.clone())
        .collect();
    assert_eq!(
        paths.last().map(String::as_str),
        Some("/ADMIN/x"),
        "forwarded as spelled"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_named_with_underscores_are_dropped_or_refused() {
    let origin = Origin::start("o").await;
    let dropping = Tollgate::start(&guarded(&origin)).await;
    let rejecting =
        Tollgate::start_with_server(&guarded(&origin), "underscore_headers = \"reject\"").await;
    let passing =
        Tollgate::start_with_server(&guarded(&origin), "underscore_headers = \"pass\"").await;
    let c = client();
    let with_underscores = |tg: &Tollgate| {
        c.get(tg.url("/x"))
            .header("x_user", "admin")
            .header("X_Forwarded_Proto", "https")
            .header("x-user", "alice")
    };
    assert_eq!(send(with_underscores(&dropping)).await.status, 200);
    let seen = origin.seen().pop().expect("a request");
    assert!(!seen.headers.contains_key("x_user"), "{:?}", seen.headers);
    assert!(!seen.headers.contains_key("x_forwarded_proto"));
    assert_eq!(seen.headers["x-user"], "alice");
    let refused = send(with_underscores(&rejecting)).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("has '_'"), "{}", refused.body);
    assert_eq!(send(with_underscores(&passing)).await.status, 200);
    let seen = origin.seen().pop().expect("a request");
    assert_eq!(seen.headers["x_user"], "admin");
    assert!(
        !seen.headers.contains_key("x_forwarded_proto"),
        "a header tollgate sets goes in its _ spelling even when others pass"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn routing_hints_of_untrusted_clients_never_reach_the_upstream() {
    let origin = Origin::start("o").await;
    let tg = Tollgate::start_with_server(&guarded(&origin), "underscore_headers = \"pass\"").await;
    let port = tg.port;
    let answer = tokio::task::spawn_blocking(move || {
        raw_request(
            port,
            b"GET /x HTTP/1.1\r\nHost: a\r\nX-Original-URI: /admin\r\nX-Forwarded-Uri: /admin\r\nx-forwarded-prefix: /admin\r\nX-Forwarded-Path: /admin\r\nX_Forwarded_Prefix: /admin\r\nX-Original-URL: /admin\r\nConnection: close\r\n\r\n",
        )
    })
    .await
    .expect("raw");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    let seen = origin.seen().pop().expect("a request");
    for name in [
        "x-original-uri",
        "x-forwarded-uri",
        "x-forwarded-prefix",
        "x-forwarded-path",
        "x_forwarded_prefix",
        "x-original-url",
    ] {
        assert!(
            !seen.headers.contains_key(name),
            "{name} reached the upstream"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trusted_balancer_names_the_client_in_the_header_configured() {
    let origin = Origin::start("o").await;
    let server = "trusted_proxies = [\"127.0.0.0/8\"]\nclient_ip_header = \"forwarded\"";
    let tg = Tollgate::start_with_server(&guarded(&origin), server).await;
    let c = client();
    let blocked = send(
        c.get(tg.url("/admin"))
            .header("forwarded", "for=192.0.2.7;proto=https")
            .header("x-forwarded-for", "203.0.113.1")
            .header("x-api-key", "some-key"),
    )
    .await;
    assert_eq!(
        blocked.status, 403,
        "the deny list sees the Forwarded client"
    );
    let let_in = send(
        c.get(tg.url("/admin"))
            .header("forwarded", "for=\"203.0.113.1:4711\"")
            .header("x-forwarded-for", "192.0.2.7")
            .header("x-api-key", "some-key"),
    )
    .await;
    assert_eq!(
        let_in.status, 200,
        "a client's own X-Forwarded-For is not the truth"
    );
    let seen = origin.seen().pop().expect("a request");
    assert_eq!(seen.headers["x-forwarded-for"], "203.0.113.1, 127.0.0.1");
}
