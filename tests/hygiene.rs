//! Request hygiene before routing: missing/invalid Host → 400, both Content-Length
//! and Transfer-Encoding (request smuggling) → 400, long URI → 414, large headers →
//! 431. None of them reaches the origin.

use crate::support::{raw_request, Origin, Tollgate};

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_are_rejected_before_the_upstream() {
    let origin = Origin::start("o").await;
    let tg = Tollgate::start_with_server(
        &format!(
            "[upstreams.app]\ntargets = [{}]\n\n[[routes]]\nname = \"app\"\npath_prefix = \"/\"\nupstream = \"app\"\n",
            origin.target()
        ),
        "max_uri_bytes = 256\nmax_header_bytes = \"1KiB\"",
    )
    .await;
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "x".repeat(300));
    let big_headers = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "y".repeat(1100)
    );
    let cases: [(&str, &[u8], &str); 7] = [
        (
            "length and chunked",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED",
            "400 Bad Request",
        ),
        (
            "chunked and length",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n",
            "400 Bad Request",
        ),
        ("no host", b"GET / HTTP/1.1\r\n\r\n", "400 Bad Request"),
        (
            "bad host",
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            "400 Bad Request",
        ),
        (
            "dot segments",
            b"GET /a/../b HTTP/1.1\r\nHost: a\r\n\r\n",
            "400 Bad Request",
        ),
        ("long uri", long_uri.as_bytes(), "414 URI Too Long"),
        (
            "big headers",
            big_headers.as_bytes(),
            "431 Request Header Fields Too Large",
        ),
    ];
    for (what, request, status) in cases {
        let reply = raw_request(tg.port, request);
        assert!(
            reply.starts_with(&format!("HTTP/1.1 {status}")),
            "{what}: {reply}"
        );
        assert!(
            reply.contains("application/problem+json"),
            "{what}: {reply}"
        );
        assert!(
            reply.to_ascii_lowercase().contains("connection: close"),
            "{what}: {reply}"
        );
    }
    // Pingora's HTTP/1 parser refuses an ambiguous authority itself, with its own
    // bare 400, before any tollgate hook runs (see README, "Known limits").
    let two_hosts = raw_request(tg.port, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    assert!(
        two_hosts.starts_with("HTTP/1.1 400 Bad Request"),
        "{two_hosts}"
    );
    assert_eq!(origin.count(), 0, "a rejected request reached the origin");
    let ok = raw_request(
        tg.port,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let http10 = raw_request(tg.port, b"GET / HTTP/1.0\r\n\r\n");
    assert!(
        http10.starts_with("HTTP/1.1 200") || http10.starts_with("HTTP/1.0 200"),
        "{http10}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_on_the_wire_never_takes_the_process_down() {
    let tg = Tollgate::start("[[routes]]\nname = \"h\"\npath_prefix = \"/\"\nrespond = { status = 200, body = \"up\" }\n").await;
    let inputs: [&[u8]; 8] = [
        b"\x00\x01\x02\xff\xfe\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcde",
        b"POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET http://[::1 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: \xc3\x28\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ];
    for input in inputs {
        let reply = raw_request(tg.port, input);
        // A static route may answer before reading a broken body: never a 5xx.
        let status = reply.get(9..10).unwrap_or("");
        assert!(
            reply.is_empty() || status == "2" || status == "4",
            "{input:?} got {reply}"
        );
    }
    let ok = raw_request(
        tg.port,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(ok.ends_with("up"), "the process stopped serving: {ok}");
    assert!(!tg.log().contains("panicked"), "{}", tg.log());
}
