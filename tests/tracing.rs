//! OpenTelemetry tracing against a real OTLP/HTTP receiver on loopback: W3C Trace
//! Context in and out, a SERVER span per request and a CLIENT span per try (a retry is
//! two), unsampled parents that export nothing but still propagate, malformed parents
//! that start a new trace, `trace_id` and `span_id` in the access log, refusals as
//! span events, and collectors that fail or hang without costing a request anything.

use crate::support::otlp::Collector;
use crate::support::{client, metric, send, Origin, Tollgate};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

fn traceparent(trace: &str, flags: &str) -> String {
    format!("00-{trace}-{PARENT}-{flags}")
}

fn config(collector_endpoint: &str, origins: &[&Origin], extra: &str) -> String {
    let targets: Vec<String> = origins.iter().map(|o| o.target()).collect();
    format!(
        r#"[tracing]
endpoint = "{collector_endpoint}"
service_name = "edge-test"
headers = {{ "x-api-key" = {{ env = "OTLP_TEST_KEY" }} }}
{extra}
[upstreams.app]
targets = [{targets}]
retry_on = ["503"]
retry_budget = 1.0

[auth.keys]
kind = "api_key"
consumers = [{{ id = "acme", key_sha256 = "{digest}" }}]

[[routes]]
name = "private"
path_prefix = "/private"
upstream = "app"
auth = ["keys"]

[[routes]]
name = "app"
path_prefix = "/v1/orders"
upstream = "app"
"#,
        targets = targets.join(", "),
        digest = tollgate::auth::hash_key("right-key"),
    )
}

async fn start(body: &str) -> Tollgate {
    Tollgate::start_full(body, "", &[("OTLP_TEST_KEY", "otlp-secret")], |_| ()).await
}

/// The `traceparent` the origin got with its `n`th request.
fn sent_traceparent(origin: &Origin, n: usize) -> String {
    let seen = origin.seen();
    let headers = &seen[n].headers;
    assert_eq!(headers.get_all("traceparent").iter().count(), 1);
    headers["traceparent"].to_str().expect("text").to_owned()
}

fn spans_of_kind(spans: &[serde_json::Value], kind: i64) -> Vec<&serde_json::Value> {
    spans.iter().filter(|s| s["kind"] == kind).collect()
}

const SERVER: i64 = 2;
const CLIENT: i64 = 3;

#[tokio::test(flavor = "multi_thread")]
async fn a_request_is_a_server_span_and_its_upstream_call_a_client_span_in_the_callers_trace() {
    let collector = Collector::start();
    let origin = Origin::start("o").await;
    let tg = start(&config(&collector.endpoint(), &[&origin], "")).await;
    let reply = send(
        client()
            .get(tg.url("/v1/orders/../orders/7?x=1"))
            .header("traceparent", traceparent(TRACE, "01"))
            .header("tracestate", "vendor=abc")
            .header("user-agent", "trace-test/1"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let spans = collector.trace(TRACE, 2).await;
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let server = spans_of_kind(&spans, SERVER)[0];
    let client_span = spans_of_kind(&spans, CLIENT)[0];
    assert_eq!(server["parent_span_id"], PARENT);
    assert_eq!(server["name"], "GET /v1/orders");
    assert_eq!(server["service"], "edge-test");
    assert_eq!(server["trace_state"], "vendor=abc");
    let attributes = &server["attributes"];
    assert_eq!(attributes["http.request.method"], "GET");
    assert_eq!(attributes["url.path"], "/v1/orders/7", "normalized");
    assert_eq!(attributes["http.route"], "/v1/orders");
    assert_eq!(attributes["http.response.status_code"], 200);
    assert_eq!(attributes["client.address"], "127.0.0.1");
    assert_eq!(attributes["network.protocol.version"], "1.1");
    assert_eq!(attributes["user_agent.original"], "trace-test/1");
    assert_eq!(attributes["tollgate.route"], "app");
    assert_eq!(server["status"], 0);
    assert!(server["start"].as_u64() <= client_span["start"].as_u64());
    assert!(client_span["end"].as_u64() <= server["end"].as_u64());
    assert_eq!(client_span["parent_span_id"], server["span_id"]);
    assert_eq!(
        client_span["attributes"]["server.port"],
        i64::from(origin.addr.port())
    );
    assert_eq!(client_span["attributes"]["http.response.status_code"], 200);
    // The upstream continues the trace as a child of the CLIENT span.
    let span_id = client_span["span_id"].as_str().expect("hex");
    assert_eq!(
        sent_traceparent(&origin, 0),
        format!("00-{TRACE}-{span_id}-01")
    );
    assert_eq!(origin.seen()[0].headers["tracestate"], "vendor=abc");
    // The exporter sends protobuf with the configured header; the log joins the trace.
    assert_eq!(server["content_type"], "application/x-protobuf");
    assert_eq!(server["api_key"], "otlp-secret");
    let log = tg.access_log(1).await;
    assert_eq!(log[0]["trace_id"], TRACE);
    assert_eq!(log[0]["span_id"], server["span_id"]);
    assert!(
        !tg.log().contains("otlp-secret") && !tg.log().contains("right-key"),
        "no secret in the process log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_shows_as_two_client_spans() {
    let collector = Collector::start();
    let (failing, healthy) = (Origin::start("bad").await, Origin::start("good").await);
    failing.fail(true);
    let tg = start(&config(&collector.endpoint(), &[&failing, &healthy], "")).await;
    // Round robin: some of these go to the failing target first.
    let mut traces = Vec::new();
    for i in 0..6 {
        let trace = format!("{:032x}", 0xabc0 + i);
        let reply = send(
            client()
                .get(tg.url("/v1/orders"))
                .header("traceparent", traceparent(&trace, "01")),
        )
        .await;
        assert_eq!(reply.status, 200, "retried on the healthy target");
        traces.push(trace);
    }
    let mut retried = 0;
    for trace in &traces {
        let spans = collector.trace(trace, 2).await;
        let clients = spans_of_kind(&spans, CLIENT);
        let server = spans_of_kind(&spans, SERVER)[0];
        if clients.len() < 2 {
            continue;
        }
        retried += 1;
        assert_eq!(clients.len(), 2, "{spans:#?}");
        let (first, second) = if clients[0]["start"].as_u64() <= clients[1]["start"].as_u64() {
            (clients[0], clients[1])
        } else {
            (clients[1], clients[0])
        };
        assert_eq!(first["attributes"]["http.response.status_code"], 503);
        assert_eq!(first["status"], 2, "a failed try is an error");
        assert_eq!(second["attributes"]["http.response.status_code"], 200);
        assert_eq!(second["status"], 0);
        for c in [first, second] {
            assert_eq!(c["parent_span_id"], server["span_id"]);
        }
        assert_ne!(first["span_id"], second["span_id"]);
        assert_ne!(
            first["attributes"]["server.port"],
            second["attributes"]["server.port"]
        );
    }
    assert!(retried >= 1, "no request was retried");
    // Each try carried its own CLIENT span as the parent.
    let parents: Vec<String> = (0..failing.count())
        .map(|i| sent_traceparent(&failing, i))
        .collect();
    assert!(parents.iter().all(|p| p.ends_with("-01")), "{parents:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsampled_parent_exports_nothing_but_still_propagates() {
    let collector = Collector::start();
    let origin = Origin::start("o").await;
    let tg = start(&config(&collector.endpoint(), &[&origin], "")).await;
    let unsampled = "11111111111111111111111111111111";
    let reply = send(
        client()
            .get(tg.url("/v1/orders"))
            .header("traceparent", traceparent(unsampled, "00")),
    )
    .await;
    assert_eq!(reply.status, 200);
    let sent = sent_traceparent(&origin, 0);
    assert!(
        sent.starts_with(&format!("00-{unsampled}-")) && sent.ends_with("-00"),
        "{sent}"
    );
    assert!(!sent.contains(PARENT), "a new CLIENT span id: {sent}");
    // A sampled request after it is exported; the unsampled one never is.
    let sampled = "22222222222222222222222222222222";
    send(
        client()
            .get(tg.url("/v1/orders"))
            .header("traceparent", traceparent(sampled, "01")),
    )
    .await;
    assert_eq!(collector.trace(sampled, 2).await.len(), 2);
    assert!(collector.all().iter().all(|s| s["trace_id"] != unsampled));
    assert_eq!(tg.access_log(1).await[0]["trace_id"], unsampled);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_traceparent_starts_a_new_trace_and_is_not_forwarded() {
    let collector = Collector::start();
    let origin = Origin::start("o").await;
    let tg = start(&config(&collector.endpoint(), &[&origin], "")).await;
    let bad = format!("00-{}-{PARENT}-01", TRACE.to_uppercase());
    let reply = send(
        client()
            .get(tg.url("/v1/orders"))
            .header("traceparent", &bad)
            .header("tracestate", "vendor=abc"),
    )
    .await;
    assert_eq!(reply.status, 200, "never refused");
    let sent = sent_traceparent(&origin, 0);
    assert_ne!(sent, bad);
    assert!(!sent.to_lowercase().contains(TRACE), "a new trace: {sent}");
    assert!(
        origin.seen()[0].headers.get("tracestate").is_none(),
        "another trace's state does not go with the new one"
    );
    let trace = sent[3..35].to_owned();
    let spans = collector.trace(&trace, 2).await;
    let server = spans_of_kind(&spans, SERVER)[0];
    assert_eq!(server["parent_span_id"], "", "a root span");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_is_an_event_of_the_server_span() {
    let collector = Collector::start();
    let origin = Origin::start("o").await;
    let tg = start(&config(&collector.endpoint(), &[&origin], "")).await;
    let refused = send(
        client()
            .get(tg.url("/private/x"))
            .header("traceparent", traceparent(TRACE, "01")),
    )
    .await;
    assert_eq!(refused.status, 401);
    let spans = collector.trace(TRACE, 1).await;
    assert_eq!(spans.len(), 1, "no upstream, no CLIENT span: {spans:#?}");
    let events = spans[0]["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{spans:#?}");
    assert_eq!(events[0]["name"], "tollgate.refused");
    assert_eq!(events[0]["attributes"]["tollgate.stage"], "auth");
    assert!(events[0]["attributes"]["tollgate.reason"]
        .as_str()
        .is_some_and(|r| r.contains("no credentials")));
    assert_eq!(spans[0]["attributes"]["http.response.status_code"], 401);
    let allowed = send(
        client()
            .get(tg.url("/private/x"))
            .header("x-api-key", "right-key")
            .header("traceparent", traceparent(&TRACE.replace('4', "5"), "01")),
    )
    .await;
    assert_eq!(allowed.status, 200);
    let spans = collector.trace(&TRACE.replace('4', "5"), 2).await;
    let server = spans_of_kind(&spans, SERVER)[0];
    assert_eq!(server["attributes"]["tollgate.consumer"], "acme");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_that_fails_or_hangs_costs_requests_nothing() {
    for args in [&["--status", "503"][..], &["--hang"][..]] {
        let collector = Collector::start_with(args);
        let origin = Origin::start("o").await;
        let tg = start(&config(
            &collector.endpoint(),
            &[&origin],
            "sample_ratio = 1.0\n",
        ))
        .await;
        for _ in 0..50 {
            let reply = send(client().get(tg.url("/v1/orders"))).await;
            assert_eq!(reply.status, 200, "{args:?}");
        }
        let failed = crate::support::eventually(std::time::Duration::from_secs(15), || async {
            let metrics = tg.metrics().await;
            metric(
                &metrics,
                "tollgate_tracing_exports_total{result=\"failure\"}",
            ) >= 1
        })
        .await;
        assert!(
            failed,
            "{args:?}: no failed export counted\n{}",
            tg.metrics().await
        );
        let metrics = tg.metrics().await;
        assert!(
            metrics.contains("tollgate_tracing_spans_dropped_total 0"),
            "{args:?}: 100 spans fit the queue\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_tracing_section_is_refused_with_its_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.toml");
    std::fs::write(
        &path,
        "[listeners.a]\naddr = \"127.0.0.1:7000\"\n\n[tracing]\nendpoint = \"https://user:pw@otlp.example.com/v1/traces\"\nsample_ratio = 2.0\nheaders = { \"x-api-key\" = { env = \"TOLLGATE_TEST_UNSET_VARIABLE\" } }\n",
    )
    .expect("write");
    let out = crate::support::tollgate::cli(&["check", "-c"], Some(&path));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for expected in [
        "tracing.endpoint: put credentials in `headers`",
        "tracing.sample_ratio: must be from 0 to 1",
        "tracing.headers.x-api-key: the environment variable TOLLGATE_TEST_UNSET_VARIABLE is not set",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
}
