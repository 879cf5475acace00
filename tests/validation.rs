//! Request validation: content types (415), malformed JSON (400), JSON Schema
//! failures (400 with `errors`), and a valid body reaching the upstream byte for
//! byte, whether it came with a length or chunked. Nothing invalid reaches the upstream.

use crate::support::{assert_problem, client, raw_request, send, Origin, Tollgate};

/// An order: a SKU and a quantity (also used by `request_buffering`).
pub const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["sku", "qty"],
  "properties": {
    "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"},
    "qty": {"type": "integer", "minimum": 1}
  }
}"#;

async fn start(origin: &Origin) -> Tollgate {
    let body = format!(
        r#"
[upstreams.app]
targets = [{}]

[[routes]]
name = "orders"
path_prefix = "/v1/orders"
upstream = "app"
max_body = "64KiB"
validate = {{ body_schema = "order.json", content_types = ["application/json"] }}
"#,
        origin.target()
    );
    // The old name of request_buffer_memory, still read.
    Tollgate::start_full(&body, "validation_memory = \"4KiB\"", &[], |dir| {
        std::fs::write(dir.join("order.json"), SCHEMA).expect("schema");
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_bodies_are_refused_and_valid_ones_arrive_unchanged() {
    let origin = Origin::start("o").await;
    let tg = start(&origin).await;
    let c = client();
    let post = |content_type: &str, body: &str| {
        send(
            c.post(tg.url("/v1/orders"))
                .header("content-type", content_type)
                .body(body.to_owned()),
        )
    };
    assert_problem(&post("text/plain", r#"{"sku":"ABC-1","qty":1}"#).await, 415);
    assert_problem(&post("application/json", r#"{"sku":"ABC-1","#).await, 400);
    let twice = post("application/json", r#"{"sku":"ABC-1","qty":1,"qty":-5}"#).await;
    assert_problem(&twice, 400);
    assert!(twice.body.contains("duplicate key"), "{}", twice.body);
    let two_types = send(
        c.post(tg.url("/v1/orders"))
            .header("content-type", "application/json")
            .header("content-type", "text/xml")
            .body(r#"{"sku":"ABC-1","qty":1}"#),
    )
    .await;
    assert_problem(&two_types, 400);
    assert!(
        two_types.body.contains("Content-Type"),
        "{}",
        two_types.body
    );
    let big = format!(r#"{{"sku":"ABC-1","qty":1,"pad":"{}"}}"#, "x".repeat(5000));
    let over_budget = post("application/json", &big).await;
    assert_problem(&over_budget, 503);
    assert_eq!(over_budget.header("retry-after"), "1");
    let invalid = post("application/json", r#"{"sku":"abc","qty":0}"#).await;
    assert_problem(&invalid, 400);
    let errors = invalid.json()["errors"].clone();
    let paths: Vec<(String, String)> = errors
        .as_array()
        .expect("errors array")
        .iter()
        .map(|e| {
            assert!(e["message"].is_string(), "{e}");
            (e["instance_path"].to_string(), e["schema_path"].to_string())
        })
        .collect();
    assert_eq!(
        paths,
        [
            ("\"/qty\"".into(), "\"/properties/qty/minimum\"".into()),
            ("\"/sku\"".into(), "\"/properties/sku/pattern\"".into()),
        ]
    );
    assert_eq!(origin.count(), 0, "nothing invalid reached the upstream");

    let exact = "{ \"qty\" : 2,\n  \"sku\":\"ABC-42\" }";
    let ok = post("application/json; charset=utf-8", exact).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let port = tg.port;
    let chunked = tokio::task::spawn_blocking(move || {
        raw_request(
            port,
            b"POST /v1/orders HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n8\r\n{\"qty\":3\r\nF\r\n,\"sku\":\"XYZ-7\"}\r\n0\r\n\r\n",
        )
    })
    .await
    .expect("raw");
    assert!(chunked.starts_with("HTTP/1.1 200"), "{chunked}");
    let bodies: Vec<String> = origin
        .seen()
        .iter()
        .map(|s| String::from_utf8_lossy(&s.body).into_owned())
        .collect();
    assert_eq!(bodies, [exact, "{\"qty\":3,\"sku\":\"XYZ-7\"}"]);
    let get = send(c.get(tg.url("/v1/orders/7"))).await;
    assert_eq!(get.status, 200, "a request without a body is not checked");
}
