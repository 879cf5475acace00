//! Routing by listener, host, path prefix and method; static answers; 404/405;
//! path and header rewriting; h2c listeners.

use crate::support::{assert_problem, client, free_port, get, send, Origin, Tollgate};

#[tokio::test(flavor = "multi_thread")]
async fn routes_by_host_path_and_method_with_404_and_405() {
    let tg = Tollgate::start(
        r#"
[[routes]]
name = "exact"
hosts = ["api.example.com"]
path_prefix = "/v1"
methods = ["GET", "PUT"]
respond = { status = 200, body = "exact" }

[[routes]]
name = "wild"
hosts = ["*.example.com"]
path_prefix = "/v1"
respond = { status = 201, body = "wild", content_type = "text/x-test" }

[[routes]]
name = "deeper"
path_prefix = "/v1/orders"
respond = { status = 200, body = "deeper" }

[[routes]]
name = "any"
path_prefix = "/v1"
respond = { status = 200, body = "any" }
"#,
    )
    .await;
    let c = client();
    let at = |host: &'static str, path: &str| c.get(tg.url(path)).header("host", host);

    let r = send(at("api.example.com", "/v1/x")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "exact"));
    let r = send(at("API.Example.COM:8080", "/v1")).await;
    assert_eq!(r.body, "exact", "host matching ignores case and port");
    let r = send(at("shop.example.com", "/v1/x")).await;
    assert_eq!(
        (r.status, r.body.as_str(), r.header("content-type")),
        (201, "wild", "text/x-test")
    );
    let r = send(at("other.test", "/v1/orders/7")).await;
    assert_eq!(r.body, "deeper", "longest prefix wins");
    let r = send(at("other.test", "/v1/ordersX")).await;
    assert_eq!(r.body, "any", "prefixes match whole segments");

    let r = send(at("other.test", "/v2")).await;
    assert_problem(&r, 404);
    let r = send(c.post(tg.url("/v1")).header("host", "api.example.com")).await;
    assert_problem(&r, 405);
    assert_eq!(r.header("allow"), "GET, PUT");
}

#[tokio::test(flavor = "multi_thread")]
async fn proxies_with_prefix_stripping_and_header_rules() {
    let origin = Origin::start("o").await;
    let tg = Tollgate::start(&format!(
        r#"
[upstreams.app]
targets = [{}]

[[routes]]
name = "app"
path_prefix = "/app/"
strip_prefix = true
upstream = "app"
request_headers = {{ set = {{ "x-env" = "test" }}, remove = ["x-debug"] }}
response_headers = {{ set = {{ "x-frame-options" = "DENY" }}, remove = ["x-upstream-secret"] }}
"#,
        origin.target()
    ))
    .await;
    let r = send(
        client()
            .get(tg.url("/app/items/1?q=2"))
            .header("x-debug", "1"),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (200, "o"));
    assert_eq!(r.header("x-frame-options"), "DENY");
    assert_eq!(
        r.header("x-upstream-secret"),
        "",
        "removed from the response"
    );
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path_and_query, "/items/1?q=2");
    assert_eq!(seen[0].headers["x-env"], "test");
    assert!(seen[0].headers.get("x-debug").is_none());

    get(&tg.url("/app")).await;
    assert_eq!(
        origin.seen()[1].path_and_query,
        "/",
        "the bare prefix becomes /"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_can_be_limited_to_a_listener_which_can_speak_h2c() {
    let h2c_port = free_port();
    let tg = Tollgate::start(&format!(
        r#"
[listeners.internal]
addr = "127.0.0.1:{h2c_port}"
h2c = true

[[routes]]
name = "internal-only"
listeners = ["internal"]
path_prefix = "/admin"
respond = {{ status = 200, body = "admin" }}
"#
    ))
    .await;
    assert_problem(&get(&tg.url("/admin")).await, 404);
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .expect("h2 client");
    let resp = h2
        .get(format!("http://127.0.0.1:{h2c_port}/admin"))
        .send()
        .await
        .expect("h2c request");
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.text().await.expect("body"), "admin");
}
