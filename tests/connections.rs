//! Client connections: an idle keep-alive connection is closed after
//! `keepalive_timeout` (Pingora alone keeps it open forever).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::support::Tollgate;

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
