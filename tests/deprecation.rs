//! Deprecated routes: `Deprecation`, `Sunset` and `Link` on every response, 410 after
//! the sunset when asked, and who still calls them in metrics and the access log.

use crate::support::{assert_problem, client, get, send, Origin, Tollgate};

const KEY: &str = "deprecation-test-key";

fn config(origin: &Origin) -> String {
    format!(
        r#"[upstreams.app]
targets = [{target}]

[auth.keys]
kind = "api_key"
consumers = [{{ id = "acme", key_sha256 = "{digest}" }}]

[[routes]]
name = "v1"
path_prefix = "/v1"
upstream = "app"
auth = ["keys"]
deprecation = {{ since = "2026-06-01T00:00:00Z", sunset = "2026-09-01T00:00:00Z", link = "https://developer.example.com/migrate", after_sunset = "warn" }}

[[routes]]
name = "v0"
path_prefix = "/v0"
upstream = "app"
deprecation = {{ since = "2025-01-01T00:00:00Z", sunset = "2026-01-01T00:00:00Z", after_sunset = "block" }}

[[routes]]
name = "v2"
path_prefix = "/v2"
upstream = "app"
deprecation = {{ since = "2026-06-01T00:00:00Z", sunset = "2099-01-01T00:00:00Z", after_sunset = "block" }}

[[routes]]
name = "current"
path_prefix = "/"
upstream = "app"
"#,
        target = origin.target(),
        digest = tollgate::auth::hash_key(KEY),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn deprecated_routes_say_so_and_count_who_calls_them() {
    let origin = Origin::start("o").await;
    let tg = Tollgate::start(&config(&origin)).await;
    let c = client();
    let warned = send(c.get(tg.url("/v1/orders")).header("x-api-key", KEY)).await;
    assert_eq!(
        warned.status, 200,
        "after the sunset, \"warn\" keeps serving"
    );
    assert_eq!(warned.header("deprecation"), "@1780272000");
    assert_eq!(warned.header("sunset"), "Tue, 01 Sep 2026 00:00:00 GMT");
    assert_eq!(
        warned.header("link"),
        "<https://developer.example.com/migrate>; rel=\"deprecation\""
    );
    let anonymous = send(c.get(tg.url("/v1/orders"))).await;
    assert_problem(&anonymous, 401);
    assert_eq!(
        anonymous.header("deprecation"),
        "@1780272000",
        "own replies too"
    );

    let gone = send(c.get(tg.url("/v0/x"))).await;
    assert_problem(&gone, 410);
    assert_eq!(gone.header("sunset"), "Thu, 01 Jan 2026 00:00:00 GMT");
    let before_sunset = send(c.get(tg.url("/v2/x"))).await;
    assert_eq!(before_sunset.status, 200);
    assert!(!before_sunset.header("deprecation").is_empty());
    let current = send(c.get(tg.url("/x"))).await;
    assert!(current.header("deprecation").is_empty());
    assert_eq!(
        origin.count(),
        3,
        "v1, v2 and the current route were proxied; v0 and the 401 were not"
    );

    let log = tg.access_log(5).await;
    let marked: Vec<bool> = log.iter().map(|l| l["deprecated"] == true).collect();
    assert_eq!(marked, [true, true, true, true, false]);
    assert_eq!(log[0]["consumer"], "acme");
    let metrics = get(&tg.admin_url("/metrics")).await.body;
    for line in [
        "tollgate_deprecated_requests_total{consumer=\"acme\",route=\"v1\"} 1",
        "tollgate_deprecated_requests_total{consumer=\"\",route=\"v1\"} 1",
        "tollgate_deprecated_requests_total{consumer=\"\",route=\"v0\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
}
