//! The drain of open connections when the process stops (SIGTERM) or hands its
//! sockets over (SIGQUIT): a request already on its way is still answered, with
//! `Connection: close`, and HTTP/2 connections get GOAWAY at once.

use nix::sys::signal::Signal;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{eventually, free_port, server_has_read, Tollgate};

const ROUTE: &str = "[[routes]]\nname = \"ok\"\nrespond = { status = 200, body = \"ok\" }\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_request_on_its_way_when_the_process_stops_is_answered() {
    let tg = Tollgate::start(ROUTE).await;
    let mut stream = TcpStream::connect(("127.0.0.1", tg.port))
        .await
        .expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\n")
        .await
        .expect("first part");
    // Once tollgate read these bytes it has accepted the connection and is reading
    // its request head: the stop must wait for it.
    let read = eventually(Duration::from_secs(5), || async {
        server_has_read(&stream)
    })
    .await;
    assert!(read, "tollgate never read the first part:\n{}", tg.log());
    tg.signal(Signal::SIGTERM);
    let closed = eventually(Duration::from_secs(5), || async {
        TcpStream::connect(("127.0.0.1", tg.port)).await.is_err()
    })
    .await;
    assert!(closed, "the listener never closed:\n{}", tg.log());
    // Pingora drops connections waiting for a request once its listeners closed;
    // this one had begun its request, so it is answered.
    stream
        .write_all(b"Host: a\r\n\r\n")
        .await
        .expect("the rest");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(read.is_ok(), "no end of the answer: {answer}");
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{answer:?}\n{}",
        tg.log()
    );
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_connections_get_goaway_as_the_drain_begins() {
    let h2_port = free_port();
    let tg = Tollgate::start(&format!(
        "[listeners.h2c]\naddr = \"127.0.0.1:{h2_port}\"\nh2c = true\n\n{ROUTE}"
    ))
    .await;
    crate::tls::wait_listening(&tg, h2_port).await;
    let tcp = TcpStream::connect(("127.0.0.1", h2_port))
        .await
        .expect("connect");
    let (mut client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let connection = tokio::spawn(connection);
    let request = http::Request::get(format!("http://127.0.0.1:{h2_port}/"))
        .body(())
        .expect("request");
    let (response, _) = client.send_request(request, true).expect("send");
    assert_eq!(response.await.expect("response").status(), 200);
    // SIGQUIT with no new process to take the sockets: Pingora keeps its listeners
    // (and its own shutdown signal) for 5 s more; the drain begins at once.
    tg.signal(Signal::SIGQUIT);
    let closed = tokio::time::timeout(Duration::from_secs(3), connection).await;
    assert!(
        matches!(closed, Ok(Ok(Ok(())))),
        "the HTTP/2 connection was not closed gracefully within 3 s: {closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_with_a_drain_delay_drains_before_the_listeners_close() {
    let tg = Tollgate::start_with_server(ROUTE, "drain_delay = \"2s\"").await;
    let readyz = tg.admin_url("/readyz");
    // The admin listener may answer before the proxy says it is ready.
    let ready = eventually(Duration::from_secs(5), || async {
        crate::support::get(&readyz).await.status == 200
    })
    .await;
    assert!(ready, "/readyz never said 200:\n{}", tg.log());
    let config = tg.config_path();
    let started = std::time::Instant::now();
    let stop =
        std::thread::spawn(move || crate::support::tollgate::cli(&["stop", "-c"], Some(&config)));
    let draining = eventually(Duration::from_secs(2), || async {
        crate::support::get(&readyz).await.status == 503
    })
    .await;
    assert!(draining, "/readyz never said 503:\n{}", tg.log());
    // Still accepting, and telling clients to go elsewhere next time.
    let reply = crate::support::get(&tg.url("/")).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "too late to tell"
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), "close");
    let out = tokio::task::block_in_place(|| stop.join()).expect("stop command");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "stopped before the delay"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", tg.port)).await.is_err(),
        "still listening"
    );
}
