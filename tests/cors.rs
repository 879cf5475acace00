//! CORS as browsers speak it: preflights answered by tollgate before authentication
//! (or refused without CORS headers), actual requests answered with the policy's
//! headers on proxied responses and on tollgate's own replies, upstream CORS headers
//! replaced, `Vary` appended to, exact and regex origins, and `*`.

use crate::support::{assert_problem, client, send, Origin, Reply, Tollgate};

const KEY: &str = "cors-test-key";
const APP: &str = "https://app.example.com";

fn config(origin: &Origin) -> String {
    format!(
        r#"
[upstreams.app]
targets = [{target}]

[auth.keys]
kind = "api_key"
consumers = [{{ id = "web", key_sha256 = "{digest}" }}]

[[routes]]
name = "orders"
path_prefix = "/v1/orders"
methods = ["GET", "POST"]
upstream = "app"
auth = ["keys"]
cors = {{ origins = ["{APP}", "~https://[a-z0-9-]+\\.example\\.com"], methods = ["GET", "POST"], headers = ["x-api-key", "content-type"], expose = ["x-request-id"], credentials = true, max_age = "10m" }}

[[routes]]
name = "internal"
path_prefix = "/v1/orders/internal"
methods = ["GET"]
upstream = "app"

[[routes]]
name = "plain"
path_prefix = "/plain"
methods = ["GET"]
upstream = "app"

[[routes]]
name = "open"
path_prefix = "/"
upstream = "app"
cors = {{ origins = ["https://listed.example", "*"], methods = ["GET"] }}
"#,
        target = origin.target(),
        digest = tollgate::auth::hash_key(KEY),
    )
}

fn cors_headers(r: &Reply) -> Vec<String> {
    r.headers
        .keys()
        .filter(|n| n.as_str().starts_with("access-control-"))
        .map(|n| n.to_string())
        .collect()
}

fn vary(r: &Reply) -> Vec<&str> {
    r.headers
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap_or("?"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn preflights_are_answered_before_authentication_or_refused_bare() {
    let origin = Origin::start("o").await;
    let tg = Tollgate::start(&config(&origin)).await;
    let c = client();
    let preflight = |origin: &str, method: &str, headers: &str| {
        let mut req = c
            .request(reqwest::Method::OPTIONS, tg.url("/v1/orders/7"))
            .header("origin", origin)
            .header("access-control-request-method", method);
        if !headers.is_empty() {
            req = req.header("access-control-request-headers", headers);
        }
        send(req)
    };
    let ok = preflight(APP, "POST", "content-type,X-Api-Key").await;
    assert_eq!(ok.status, 204, "{}", ok.body);
    assert_eq!(ok.header("access-control-allow-origin"), APP);
    assert_eq!(ok.header("access-control-allow-methods"), "GET, POST");
    assert_eq!(
        ok.header("access-control-allow-headers"),
        "x-api-key, content-type"
    );
    assert_eq!(ok.header("access-control-max-age"), "600");
    assert_eq!(ok.header("access-control-allow-credentials"), "true");
    assert!(vary(&ok).concat().contains("Origin"), "{:?}", vary(&ok));
    let regex = preflight("https://shop-2.example.com", "GET", "").await;
    assert_eq!(regex.status, 204);
    assert_eq!(
        regex.header("access-control-allow-origin"),
        "https://shop-2.example.com"
    );
    for (who, method, headers) in [
        ("https://evil.example.net", "POST", ""),
        ("https://app.example.com.evil.net", "GET", ""),
        (APP, "DELETE", ""),
        (APP, "POST", "x-admin"),
    ] {
        let refused = preflight(who, method, headers).await;
        assert_problem(&refused, 403);
        assert!(
            cors_headers(&refused).is_empty(),
            "{who} {method} {headers}: {:?}",
            cors_headers(&refused)
        );
    }
    assert_eq!(origin.count(), 0, "preflights never reach the upstream");

    // A preflight for a route without cors is not answered by another route's policy
    // (here the catch-all's), which would approve requests the route never opted into.
    for path in ["/plain", "/v1/orders/internal/x"] {
        let other = send(
            c.request(reqwest::Method::OPTIONS, tg.url(path))
                .header("origin", APP)
                .header("access-control-request-method", "GET"),
        )
        .await;
        assert_problem(&other, 403);
        assert!(
            cors_headers(&other).is_empty(),
            "{path}: {:?}",
            cors_headers(&other)
        );
    }
    assert_eq!(origin.count(), 0);

    // An OPTIONS that is not a preflight is an ordinary request: /v1/orders takes only
    // GET and POST, so it goes to the catch-all, and on to the upstream.
    let plain = send(
        c.request(reqwest::Method::OPTIONS, tg.url("/v1/orders"))
            .header("origin", APP),
    )
    .await;
    assert_eq!(plain.status, 200, "{}", plain.body);
    assert_eq!(origin.count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn actual_requests_get_the_policy_headers_on_every_response() {
    let origin = Origin::start("o").await;
    let tg = Tollgate::start(&config(&origin)).await;
    let c = client();
    let proxied = send(
        c.get(tg.url("/v1/orders/with-headers"))
            .header("origin", APP)
            .header("x-api-key", KEY),
    )
    .await;
    assert_eq!(proxied.status, 200, "{}", proxied.body);
    assert_eq!(
        proxied.header("access-control-allow-origin"),
        APP,
        "the upstream's * is replaced"
    );
    assert_eq!(proxied.header("access-control-allow-credentials"), "true");
    assert_eq!(
        proxied.header("access-control-expose-headers"),
        "x-request-id"
    );
    assert_eq!(
        vary(&proxied),
        ["Accept-Encoding", "Origin"],
        "appended, not replaced"
    );

    let refused = send(c.get(tg.url("/v1/orders")).header("origin", APP)).await;
    assert_problem(&refused, 401);
    assert_eq!(
        refused.header("access-control-allow-origin"),
        APP,
        "a page can read the 401"
    );

    let stranger = send(
        c.get(tg.url("/v1/orders/with-headers"))
            .header("origin", "https://evil.example.net")
            .header("x-api-key", KEY),
    )
    .await;
    assert_eq!(stranger.status, 200);
    assert!(
        cors_headers(&stranger).is_empty(),
        "{:?}",
        cors_headers(&stranger)
    );
    assert_eq!(vary(&stranger), ["Accept-Encoding", "Origin"]);

    for who in ["https://anyone.example", "https://listed.example"] {
        let open = send(c.get(tg.url("/open")).header("origin", who)).await;
        assert_eq!(open.header("access-control-allow-origin"), "*", "{who}");
        assert!(open.header("access-control-allow-credentials").is_empty());
        assert!(
            vary(&open).is_empty(),
            "the same answer for every origin: no Vary"
        );
    }
}
