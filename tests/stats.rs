//! The console's numbers: `GET /stats?window=` adds up the traffic the test sent
//! (per route and status class, refusals by the stage that refused, the refused
//! clients, the consumers, who calls a deprecated route), and `/metrics` has the
//! totals per route and class and the duration histograms.

use serde_json::Value;

use crate::support::{client, metric, refused_route, Tollgate};

const KEY: &str = "tg_console_test_key";

fn body() -> String {
    format!(
        "{}\n[auth.partners]\nkind = \"api_key\"\n\
         consumers = [{{ id = \"acme\", key_sha256 = \"{}\" }}]\n\n\
         [[routes]]\nname = \"old\"\npath_prefix = \"/old\"\nauth = [\"partners\"]\n\
         deprecation = {{ since = \"2026-01-01T00:00:00Z\" }}\nrespond = {{ status = 200 }}\n\n\
         [[routes]]\nname = \"open\"\npath_prefix = \"/\"\nrespond = {{ status = 200 }}\n",
        refused_route("/private"),
        tollgate::auth::hash_key(KEY)
    )
}

async fn stats(tg: &Tollgate, window: &str) -> (u16, Value) {
    let reply = tg.admin_get(&format!("/stats?window={window}")).await;
    (reply.status, reply.json())
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_add_up_the_traffic_sent_and_metrics_have_the_totals() {
    let server = "trusted_proxies = [\"127.0.0.1/32\"]\n";
    let tg = Tollgate::start_with_server(&body(), server).await;
    let c = client();
    let send = |path: &str, from: &str, key: Option<&str>| {
        let mut req = c.get(tg.url(path)).header("x-forwarded-for", from);
        if let Some(key) = key {
            req = req.header("x-api-key", key);
        }
        req.send()
    };
    for _ in 0..5 {
        assert_eq!(
            send("/", "192.0.2.1", None).await.expect("open").status(),
            200
        );
    }
    for (i, client_ip) in ["198.51.100.7", "198.51.100.7", "203.0.113.9"]
        .iter()
        .enumerate()
    {
        let resp = send("/private", client_ip, None).await.expect("private");
        assert_eq!(resp.status(), 401, "request {i}");
    }
    for _ in 0..2 {
        let resp = send("/old", "192.0.2.1", Some(KEY)).await.expect("old");
        assert_eq!(resp.status(), 200);
    }
    let resp = send("/a%2Fb", "203.0.113.9", None)
        .await
        .expect("encoded slash");
    assert_eq!(resp.status(), 400);

    let (status, s) = stats(&tg, "1m").await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["window_seconds"], 60);
    assert_eq!(s["requests"], 11, "{s}");
    let route = |name: &str| -> Value {
        let routes = s["routes"].as_array().expect("routes");
        let found = routes.iter().find(|r| r["route"] == name);
        found
            .cloned()
            .unwrap_or_else(|| panic!("no route {name:?} in {s}"))
    };
    assert_eq!(route("open")["status"]["2xx"], 5);
    assert!(route("open")["p50_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    assert_eq!(route("private")["status"]["4xx"], 3);
    assert_eq!(route("old")["requests"], 2);
    assert_eq!(route("")["status"]["4xx"], 1, "the unrouted 400");
    assert_eq!(s["refusals"]["auth"], 3, "{s}");
    assert_eq!(s["refusals"]["normalization"], 1, "{s}");
    assert_eq!(s["refusals_total"], 4);
    assert_eq!(
        s["top_refused_clients"],
        serde_json::json!([
            { "key": "198.51.100.7", "count": 2 },
            { "key": "203.0.113.9", "count": 2 },
        ])
    );
    assert_eq!(
        s["top_consumers"],
        serde_json::json!([{ "key": "partners:acme", "count": 2 }]),
        "a consumer is named authenticator:id"
    );
    assert_eq!(
        s["deprecated"],
        serde_json::json!([{ "route": "old", "callers": [{ "key": "partners:acme", "count": 2 }] }])
    );
    assert_eq!(stats(&tg, "15m").await.1["requests"], 11);
    assert_eq!(stats(&tg, "2h").await.0, 400);

    let metrics = tg.metrics().await;
    let line = |l: &str| metric(&metrics, l);
    assert_eq!(
        line("tollgate_requests_total{route=\"open\",class=\"2xx\"}"),
        5
    );
    assert_eq!(
        line("tollgate_requests_total{route=\"private\",class=\"4xx\"}"),
        3
    );
    assert_eq!(line("tollgate_refusals_total{stage=\"auth\"}"), 3);
    assert_eq!(line("tollgate_refusals_total{stage=\"normalization\"}"), 1);
    assert_eq!(
        line("tollgate_request_duration_seconds_count{route=\"open\"}"),
        5
    );
    assert_eq!(
        line("tollgate_request_duration_seconds_bucket{route=\"open\",le=\"+Inf\"}"),
        5
    );
}
