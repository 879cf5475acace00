//! Request bodies held before proxying: a body the route refuses (too large, or
//! invalid in any spelling) reaches no upstream, not even its head, over HTTP/1.1
//! (with a length, chunked, with `Expect: 100-continue`) and HTTP/2; bodies larger
//! than the buffer still arrive whole; `request_buffer = "0"` streams.

use futures::stream;
use std::io::{Read, Write};
use std::time::Duration;

use crate::support::{
    assert_problem, chunked_request as chunked, client, free_port, raw_request, send, Origin,
    Tollgate,
};
use crate::validation::SCHEMA;

async fn start(origin: &Origin, listeners: &str) -> Tollgate {
    let body = format!(
        r#"{listeners}
[upstreams.app]
targets = [{}]

[[routes]]
name = "orders"
path_prefix = "/orders"
upstream = "app"
max_body = "1KiB"
validate = {{ body_schema = "order.json", content_types = ["application/json"] }}

[[routes]]
name = "big-orders"
path_prefix = "/big-orders"
upstream = "app"
max_body = "256KiB"
validate = {{ body_schema = "order.json", content_types = ["application/json"] }}

[[routes]]
name = "small"
path_prefix = "/small"
upstream = "app"
max_body = "1KiB"

[[routes]]
name = "streamed"
path_prefix = "/streamed"
upstream = "app"
max_body = "1KiB"
request_buffer = "0"

[[routes]]
name = "typed-streamed"
path_prefix = "/typed-streamed"
upstream = "app"
request_buffer = "0"
validate = {{ content_types = ["application/json"] }}

[[routes]]
name = "any"
path_prefix = "/"
upstream = "app"
max_body = "1MiB"
"#,
        origin.target()
    );
    Tollgate::start_full(&body, "", &[], |dir| {
        std::fs::write(dir.join("order.json"), SCHEMA).expect("schema");
    })
    .await
}

/// A POST of `body` to `path` with the extra head lines `head`, over a connection
/// that closes after it.
fn post(path: &str, head: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: a\r\n{head}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

async fn raw(port: u16, request: Vec<u8>) -> String {
    tokio::task::spawn_blocking(move || raw_request(port, &request))
        .await
        .expect("raw")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_body_reaches_no_upstream_in_any_spelling() {
    let origin = Origin::start("o").await;
    let tg = start(&origin, "").await;
    // The origin answers `/early` without reading the body: had the head reached it,
    // its 200 would come back.
    let at = "/orders/early";
    let json = "Content-Type: application/json\r\n";
    let invalid = br#"{"sku":"abc","qty":0}"#;
    let utf16: Vec<u8> =
        r#"{"sku":"ABC-1","qty":1}"#.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let over = format!(r#"{{"sku":"ABC-1","qty":1,"pad":"{}"}}"#, "x".repeat(3000));
    let spellings: Vec<(&str, Vec<u8>, u16)> = vec![
        ("over max_body", post(at, json, over.as_bytes()), 413),
        (
            "over max_body, chunked",
            chunked(
                at,
                json,
                &[&over.as_bytes()[..1000], &over.as_bytes()[1000..]],
            ),
            413,
        ),
        (
            "a charset parameter",
            post(
                at,
                "Content-Type: application/json; charset=utf-8\r\n",
                invalid,
            ),
            400,
        ),
        (
            "an upper-case type",
            post(at, "Content-Type: APPLICATION/JSON\r\n", invalid),
            400,
        ),
        (
            "chunked",
            chunked(at, json, &[&invalid[..8], &invalid[8..]]),
            400,
        ),
        (
            "gzip",
            post(
                at,
                "Content-Type: application/json\r\nContent-Encoding: gzip\r\n",
                b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab\xae\x05\x00",
            ),
            400,
        ),
        (
            "a byte-order mark",
            post(at, json, &[b"\xef\xbb\xbf".as_slice(), invalid].concat()),
            400,
        ),
        (
            "UTF-16",
            post(
                at,
                "Content-Type: application/json; charset=utf-16le\r\n",
                &utf16,
            ),
            400,
        ),
        (
            "two content types",
            post(
                at,
                "Content-Type: application/json\r\nContent-Type: text/plain\r\n",
                invalid,
            ),
            400,
        ),
        (
            "a method override",
            post(
                at,
                "Content-Type: application/json\r\nX-HTTP-Method-Override: PUT\r\n",
                invalid,
            ),
            400,
        ),
        (
            "a huge number",
            post(at, json, br#"{"sku":"ABC-1","qty":1e400}"#),
            400,
        ),
        (
            "two documents",
            post(
                at,
                json,
                br#"{"sku":"ABC-1","qty":1}{"sku":"ABC-1","qty":1}"#,
            ),
            400,
        ),
        (
            "a text body",
            post(at, "Content-Type: text/plain\r\n", invalid),
            415,
        ),
        (
            "an upgrade with a body",
            post(
                at,
                "Content-Type: application/json\r\nUpgrade: websocket\r\n",
                invalid,
            ),
            400,
        ),
    ];
    for (spelling, request, status) in spellings {
        let answer = raw(tg.port, request).await;
        let expected = format!("HTTP/1.1 {status} ");
        assert!(answer.starts_with(&expected), "{spelling}: {answer}");
        assert_eq!(origin.heads(), 0, "{spelling}: the upstream saw a head");
    }
    let valid = raw(tg.port, post(at, json, br#"{"sku":"ABC-1","qty":1}"#)).await;
    assert!(valid.starts_with("HTTP/1.1 200 "), "{valid}");
    assert_eq!(origin.heads(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_max_body_is_refused_before_the_upstream_however_it_is_sent() {
    let origin = Origin::start("o").await;
    let h2_port = free_port();
    let h2c = format!("[listeners.h2c]\naddr = \"127.0.0.1:{h2_port}\"\nh2c = true\n");
    let tg = start(&origin, &h2c).await;
    let parts: [&[u8]; 3] = [&[b'y'; 1024], &[b'y'; 1024], &[b'y'; 1024]];
    let cut = raw(tg.port, chunked("/small/early", "", &parts)).await;
    assert!(cut.starts_with("HTTP/1.1 413 "), "{cut}");
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .expect("h2c client");
    let parts = (0..3).map(|_| Ok::<_, std::io::Error>(vec![b'z'; 1024]));
    let body = reqwest::Body::wrap_stream(stream::iter(parts));
    let url = format!("http://127.0.0.1:{h2_port}/small/early");
    assert_problem(&send(h2.post(&url).body(body)).await, 413);
    let port = tg.port;
    let expecting = tokio::task::spawn_blocking(move || {
        let head = "POST /small/early HTTP/1.1\r\nHost: a\r\nContent-Length: 3072\r\nExpect: 100-continue\r\n\r\n";
        let mut stream = connect(port);
        stream.write_all(head.as_bytes()).expect("head");
        read_head(&mut stream)
    })
    .await
    .expect("expect");
    assert!(
        expecting.starts_with("HTTP/1.1 413 "),
        "no body sent: {expecting}"
    );
    assert_eq!(origin.heads(), 0, "no refused body reached the upstream");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_end_of_a_streamed_http2_body_is_judged_too() {
    // HTTP/2 without a length: the media type is checked when the body ends, which
    // is past the hold on a route without a request buffer.
    let origin = Origin::start("o").await;
    let h2_port = free_port();
    let h2c = format!("[listeners.h2c]\naddr = \"127.0.0.1:{h2_port}\"\nh2c = true\n");
    let _tg = start(&origin, &h2c).await;
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .expect("h2c client");
    let parts = (0..3).map(|_| Ok::<_, std::io::Error>(b"text".to_vec()));
    let typed = send(
        h2.post(format!("http://127.0.0.1:{h2_port}/typed-streamed"))
            .header("content-type", "text/plain")
            .body(reqwest::Body::wrap_stream(stream::iter(parts))),
    )
    .await;
    assert_problem(&typed, 415);
    assert_eq!(origin.count(), 0, "no body completed upstream");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_the_memory_bound_streams_instead_of_failing() {
    let origin = Origin::start("o").await;
    let body = format!(
        "[upstreams.app]\ntargets = [{}]\n\n[[routes]]\nname = \"any\"\nupstream = \"app\"\n",
        origin.target()
    );
    let tg = Tollgate::start_with_server(&body, "request_buffer_memory = \"1KiB\"").await;
    let sent = vec![b'z'; 4096];
    let answer = send(client().post(tg.url("/x")).body(sent.clone())).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(origin.seen()[0].body == sent, "the body arrived changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_still_sending_reads_the_refusal() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let origin = Origin::start("o").await;
    let tg = start(&origin, "").await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", tg.port))
        .await
        .expect("connect");
    let part = format!("400\r\n{}\r\n", "y".repeat(1024));
    let head = "POST /small HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    stream
        .write_all(format!("{head}{part}{part}").as_bytes())
        .await
        .expect("two parts");
    // The 413 is on its way once the second part passed max_body; the client, not
    // reading yet, sends its third part after it.
    let bounded = std::time::Duration::from_secs(10);
    tokio::time::timeout(bounded, stream.readable())
        .await
        .expect("an answer within 10 s")
        .expect("readable");
    stream
        .write_all(format!("{part}0\r\n\r\n").as_bytes())
        .await
        .expect("the third part");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(bounded, stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        matches!(read, Ok(Ok(_))),
        "{read:?}: the refusal was lost ({answer:?})"
    );
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert_eq!(origin.heads(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn expect_100_continue_is_answered_once_the_body_will_be_read() {
    let origin = Origin::start("o").await;
    let tg = start(&origin, "").await;
    let port = tg.port;
    let (interim, answer) = tokio::task::spawn_blocking(move || {
        let head = "POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n";
        let mut stream = connect(port);
        stream.write_all(head.as_bytes()).expect("head");
        let interim = read_head(&mut stream);
        stream.write_all(b"hello").expect("body");
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        (interim, String::from_utf8_lossy(&rest).into_owned())
    })
    .await
    .expect("exchange");
    assert!(interim.starts_with("HTTP/1.1 100 "), "{interim}");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    let seen = origin.seen();
    assert_eq!(&seen[0].body[..], b"hello");
    assert!(
        !seen[0].headers.contains_key("expect"),
        "the upstream gets the body at once, without Expect"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_larger_than_the_buffer_arrive_whole() {
    let origin = Origin::start("o").await;
    let tg = start(&origin, "").await;
    let c = client();
    let pattern: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let sized = send(c.post(tg.url("/any")).body(pattern.clone())).await;
    assert_eq!(sized.status, 200, "{}", sized.body);
    let pieces = pattern
        .chunks(7000)
        .map(|p| Ok::<_, std::io::Error>(p.to_vec()))
        .collect::<Vec<_>>();
    let body = reqwest::Body::wrap_stream(stream::iter(pieces));
    let streamed = send(c.post(tg.url("/any")).body(body)).await;
    assert_eq!(streamed.status, 200, "{}", streamed.body);
    let order = format!(
        r#"{{"sku":"ABC-1","qty":1,"pad":"{}"}}"#,
        "p".repeat(200_000)
    );
    let validated = send(
        c.post(tg.url("/big-orders"))
            .header("content-type", "application/json")
            .body(order.clone()),
    )
    .await;
    assert_eq!(validated.status, 200, "{}", validated.body);
    let bodies: Vec<Vec<u8>> = origin.seen().iter().map(|s| s.body.to_vec()).collect();
    assert_eq!(bodies.len(), 3);
    assert!(bodies[0] == pattern, "a body with a length arrived changed");
    assert!(bodies[1] == pattern, "a chunked body arrived changed");
    assert!(
        bodies[2] == order.as_bytes(),
        "a validated body arrived changed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_without_a_request_buffer_streams_the_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let origin = Origin::start("o").await;
    let tg = start(&origin, "").await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", tg.port))
        .await
        .expect("connect");
    let head = "POST /streamed HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let part = format!("1f4\r\n{}\r\n", "y".repeat(500));
    stream
        .write_all(format!("{head}{part}").as_bytes())
        .await
        .expect("head and a part");
    let streamed =
        crate::support::eventually(Duration::from_secs(5), || async { origin.heads() == 1 }).await;
    assert!(
        streamed,
        "the head did not go upstream while the body was open"
    );
    stream.write_all(b"0\r\n\r\n").await.expect("the end");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer));
    read.await.expect("an answer within 5 s").expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert_eq!(origin.seen()[0].body.len(), 500);
}

fn connect(port: u16) -> std::net::TcpStream {
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream
}

/// Reads one response head (up to its blank line).
fn read_head(stream: &mut std::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}
