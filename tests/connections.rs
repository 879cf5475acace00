//! Client connections: an idle keep-alive connection is closed after
//! `keepalive_timeout` (Pingora alone keeps it open forever); a request head must
//! arrive within `header_timeout` and a body at `body_min_rate` (else 408 and close);
//! `max_connections_per_ip` closes connections over it at accept.

use std::io::{Read, Write};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{
    eventually, free_port, get, metric, raw_exchange, server_has_read, Origin, Tollgate,
};

#[tokio::test(flavor = "multi_thread")]
async fn http_1_0_and_connection_close_requests_end_their_connection() {
    let tg =
        Tollgate::start("[[routes]]\nname = \"ok\"\nrespond = { status = 200, body = \"ok\" }\n")
            .await;
    let port = tg.port;
    let (plain_1_0, close_1_1, keep_1_0) = tokio::task::spawn_blocking(move || {
        (
            raw_exchange(port, b"GET / HTTP/1.0\r\n\r\n"),
            raw_exchange(
                port,
                b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            ),
            raw_exchange(port, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
        )
    })
    .await
    .expect("client");
    // HTTP/1.0 keeps a connection only when asked to (RFC 9112 section 9.3): a client
    // that reads its answer until the connection closes must not wait for the
    // keep-alive timeout.
    for (what, (answer, closed)) in [("HTTP/1.0", plain_1_0), ("Connection: close", close_1_1)] {
        assert!(
            answer.contains(" 200 ") && answer.ends_with("ok"),
            "{what}: {answer}"
        );
        assert!(
            closed,
            "{what}: the connection stayed open after the answer"
        );
        assert!(
            !answer
                .to_ascii_lowercase()
                .contains("connection: keep-alive"),
            "{what}: {answer}"
        );
    }
    let (answer, closed) = keep_1_0;
    assert!(answer.contains(" 200 "), "{answer}");
    assert!(!closed, "HTTP/1.0 with keep-alive was closed: {answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_keep_alive_connection_is_closed_after_keepalive_timeout() {
    let tg = Tollgate::start_with_server(
        "[[routes]]\nname = \"ok\"\nrespond = { status = 200, body = \"ok\" }\n",
        "keepalive_timeout = \"1s\"",
    )
    .await;
    let port = tg.port;
    let (answer, idle) = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .expect("write");
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !answer.ends_with(b"ok") {
            let n = stream.read(&mut buf).expect("response");
            assert!(n > 0, "closed before the response");
            answer.extend_from_slice(&buf[..n]);
        }
        let answered = Instant::now();
        // The connection is idle now: the next read ends when tollgate closes it.
        let closed = stream.read(&mut buf).map(|n| n == 0);
        assert!(
            matches!(closed, Ok(true)),
            "still open after 5 s: {closed:?}"
        );
        (
            String::from_utf8_lossy(&answer).into_owned(),
            answered.elapsed(),
        )
    })
    .await
    .expect("client");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        !answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_secs(3),
        "closed after {idle:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keep_alive_connections_next_request_is_read_from_its_first_byte_on() {
    // Between requests tollgate waits for the next request's first byte itself, then
    // hands it to Pingora's parser with the rest: a byte lost would read "ET /", one
    // read twice "GGET /", and neither is a method of the route.
    let tg = Tollgate::start(
        "[[routes]]\nname = \"ok\"\nmethods = [\"GET\"]\n\
         respond = { status = 200, body = \"ok\" }\n",
    )
    .await;
    let mut stream = TcpStream::connect(("127.0.0.1", tg.port))
        .await
        .expect("connect");
    let request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    for split in [request.len(), 1, 1, 5] {
        let (first, rest) = request.split_at(split);
        stream.write_all(first).await.expect("first part");
        if !rest.is_empty() {
            // The rest goes only once tollgate has read the first part on its own.
            let read = eventually(Duration::from_secs(5), || async {
                server_has_read(&stream)
            })
            .await;
            assert!(read, "split at {split}: the first part was never read");
            stream.write_all(rest).await.expect("rest");
        }
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !answer.ends_with(b"ok") {
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
                .await
                .expect("an answer within 5 s")
                .expect("read");
            assert!(n > 0, "closed after {}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&buf[..n]);
        }
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "split at {split}: {answer}"
        );
    }
}

/// Reads until the peer closes (or `limit` passes); what arrived, and whether it closed.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&all).into_owned(), closed)
}

/// Sends `head` then one more header line every `every` until the connection is
/// closed; returns what came back and how long after the first byte it closed.
async fn slow_head(port: u16, head: &[u8], every: Duration) -> (String, Duration) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let start = Instant::now();
    stream.write_all(head).await.expect("head");
    let mut all = String::new();
    for _ in 0..200 {
        let (got, closed) = read_to_close(&mut stream, every).await;
        all.push_str(&got);
        if closed || stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
            let (rest, _) = read_to_close(&mut stream, every).await;
            return (all + &rest, start.elapsed());
        }
    }
    panic!("never closed: {all}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_head_gets_408_within_header_timeout_from_its_first_byte() {
    let tg = Tollgate::start_with_server(
        "[[routes]]\nname = \"ok\"\nrespond = { status = 200, body = \"ok\" }\n",
        "header_timeout = \"1s\"",
    )
    .await;
    // A first request that never completes: counted from accept.
    let (answer, after) =
        slow_head(tg.port, b"GET / HTTP/1.1\r\n", Duration::from_millis(200)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_millis(2500),
        "closed after {after:?}"
    );

    // A connection idle between requests for longer than header_timeout is not cut
    // (keepalive_timeout applies); its next request's clock starts at its first byte.
    let mut stream = TcpStream::connect(("127.0.0.1", tg.port))
        .await
        .expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("first");
    let (first, closed) = read_to_close(&mut stream, Duration::from_millis(1500)).await;
    assert!(
        first.starts_with("HTTP/1.1 200") && !closed,
        "idle cut: {first}"
    );
    let start = Instant::now();
    stream
        .write_all(b"GET / HTTP/1.1\r\n")
        .await
        .expect("second");
    let (second, closed) = read_to_close(&mut stream, Duration::from_secs(4)).await;
    let after = start.elapsed();
    assert!(closed && second.starts_with("HTTP/1.1 408"), "{second}");
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_millis(2500),
        "closed after {after:?}"
    );

    let metrics = get(&tg.admin_url("/metrics")).await.body;
    assert_eq!(
        metric(&metrics, "tollgate_client_timeouts_total{phase=\"header\"}"),
        2,
        "{metrics}"
    );
    // Counted, not logged as errors (an attacker would pick the log's size).
    assert!(!tg.log().contains("Fail to proxy"), "{}", tg.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn h2c_listeners_tell_http1_from_http2_without_waiting_for_24_bytes() {
    let h2_port = free_port();
    let tg = Tollgate::start_with_server(
        &format!(
            "[listeners.h2c]\naddr = \"127.0.0.1:{h2_port}\"\nh2c = true\n\n\
             [[routes]]\nname = \"ok\"\nrespond = {{ status = 200, body = \"ok\" }}\n"
        ),
        "header_timeout = \"2s\"",
    )
    .await;
    crate::tls::wait_listening(&tg, h2_port).await;
    // A whole request shorter than the HTTP/2 preface (18 bytes) is answered, not
    // left waiting for more (a 408 would mean it waited out header_timeout).
    let mut stream = TcpStream::connect(("127.0.0.1", h2_port))
        .await
        .expect("connect");
    stream
        .write_all(b"GET / HTTP/1.0\r\n\r\n")
        .await
        .expect("request");
    let (answer, _) = read_to_close(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // A slow head gets its 408 header_timeout after accept, not later.
    let (answer, after) =
        slow_head(h2_port, b"GET / HTTP/1.1\r\n", Duration::from_millis(200)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        after < Duration::from_millis(3500),
        "closed after {after:?}"
    );
    // HTTP/2 with prior knowledge still works there.
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .expect("h2c client");
    let reply = crate::support::send(h2.get(format!("http://127.0.0.1:{h2_port}/"))).await;
    assert_eq!(reply.status, 200);
    drop(tg);
}

/// Sends a POST head announcing `length` bytes, then `chunk` bytes every `every`;
/// returns what came back and how long after the head the connection closed.
async fn slow_body(port: u16, length: usize, chunk: usize, every: Duration) -> (String, Duration) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {length}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("head");
    let start = Instant::now();
    let mut all = String::new();
    for _ in 0..length / chunk {
        let (got, closed) = read_to_close(&mut stream, every).await;
        all.push_str(&got);
        if closed || stream.write_all(&vec![b'a'; chunk]).await.is_err() {
            let (rest, _) = read_to_close(&mut stream, every).await;
            return (all + &rest, start.elapsed());
        }
    }
    panic!("the whole body was sent: {all}");
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_heads_and_slow_bodies_are_cut_off_while_other_clients_are_served() {
    let origin = Origin::start("o").await;
    let tg = Tollgate::start_with_server(
        &format!(
            "[upstreams.app]\ntargets = [{}]\n\n[[routes]]\nname = \"app\"\nupstream = \"app\"\n",
            origin.target()
        ),
        "header_timeout = \"2s\"\nbody_min_rate = \"1KiB/s\"",
    )
    .await;
    let port = tg.port;
    let heads: Vec<_> = (0..200)
        .map(|i| {
            let head = format!("GET /h{i} HTTP/1.1\r\nHost: a\r\n");
            tokio::spawn(
                async move { slow_head(port, head.as_bytes(), Duration::from_secs(1)).await },
            )
        })
        .collect();
    let bodies: Vec<_> = (0..20)
        .map(|_| tokio::spawn(slow_body(port, 1 << 20, 100, Duration::from_millis(500))))
        .collect();
    // Meanwhile, a normal client is served all along.
    let url = tg.url("/ok");
    let normal = tokio::spawn(async move {
        let started = Instant::now();
        let mut served = 0;
        while started.elapsed() < Duration::from_secs(8) {
            assert_eq!(get(&url).await.status, 200, "a normal request failed");
            served += 1;
        }
        served
    });
    for head in heads {
        let (answer, after) = head.await.expect("slow head");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            after >= Duration::from_millis(1900) && after < Duration::from_secs(5),
            "slow head closed after {after:?}"
        );
    }
    for body in bodies {
        let (answer, after) = body.await.expect("slow body");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("body_min_rate"), "{answer}");
        // 5 s of grace, then one 5 s window at 200 B/s.
        assert!(
            after >= Duration::from_millis(9500) && after < Duration::from_secs(15),
            "slow body closed after {after:?}"
        );
    }
    assert!(normal.await.expect("normal client") > 20);
    let metrics = get(&tg.admin_url("/metrics")).await.body;
    assert_eq!(
        metric(&metrics, "tollgate_client_timeouts_total{phase=\"header\"}"),
        200
    );
    assert_eq!(
        metric(&metrics, "tollgate_client_timeouts_total{phase=\"body\"}"),
        20
    );
}

/// Whether tollgate serves a request on a new connection (not closed at accept).
async fn served(port: u16) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .ok()?;
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf[..n].starts_with(b"HTTP/1.1 200").then_some(stream)
}

/// A connection served once the slots of earlier probes (the start-up checks'
/// connections) have come back, which happens when tollgate has seen them close.
async fn served_once_free(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(stream) = served(port).await {
            return stream;
        }
        assert!(Instant::now() < deadline, "no connection served within 5 s");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_over_max_connections_per_ip_are_closed_at_accept() {
    let routes = "[[routes]]\nname = \"ok\"\nrespond = { status = 200, body = \"ok\" }\n";
    let tg = Tollgate::start_with_server(routes, "max_connections_per_ip = 2").await;
    let first = served_once_free(tg.port).await;
    let second = served_once_free(tg.port).await;
    assert!(
        served(tg.port).await.is_none(),
        "a third connection was served"
    );
    drop(first);
    let freed = crate::support::eventually(Duration::from_secs(5), || async {
        served(tg.port).await.is_some()
    })
    .await;
    assert!(freed, "a closed connection's slot never came back");
    let metrics = get(&tg.admin_url("/metrics")).await.body;
    let refused = "tollgate_connections_refused_total{reason=\"max_connections_per_ip\"}";
    assert!(metric(&metrics, refused) >= 1, "{metrics}");

    drop(second);
}

#[tokio::test(flavor = "multi_thread")]
async fn max_connections_per_ip_counts_across_plain_and_h2c_listeners() {
    let h2_port = free_port();
    let tg = Tollgate::start_with_server(
        &format!(
            "[listeners.h2c]\naddr = \"127.0.0.1:{h2_port}\"\nh2c = true\n\n\
             [[routes]]\nname = \"ok\"\nrespond = {{ status = 200, body = \"ok\" }}\n"
        ),
        "max_connections_per_ip = 1",
    )
    .await;
    crate::tls::wait_listening(&tg, h2_port).await;
    let _held = served_once_free(tg.port).await;
    assert!(
        served(h2_port).await.is_none(),
        "the h2c listener had its own count"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_proxies_are_not_limited_per_ip() {
    let tg = Tollgate::start_with_server(
        "[[routes]]\nname = \"ok\"\nrespond = { status = 200, body = \"ok\" }\n",
        "max_connections_per_ip = 1\ntrusted_proxies = [\"127.0.0.1/32\"]",
    )
    .await;
    let mut open = Vec::new();
    for i in 0..3 {
        open.push(
            served(tg.port)
                .await
                .unwrap_or_else(|| panic!("connection {i}")),
        );
    }
}
