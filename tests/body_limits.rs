//! `max_body`: a declared length over the limit is refused before anything goes
//! upstream; a chunked or HTTP/2 body that grows past it is cut off, so the upstream
//! never sees a complete request, and the client gets 413.

use futures::stream;

use crate::support::{
    assert_problem, chunked_request, client, free_port, get, raw_request, send, Origin, Tollgate,
};

fn config(origin: &Origin, extra_listener: &str) -> String {
    format!(
        r#"{extra_listener}
[upstreams.app]
targets = [{}]

[[routes]]
name = "small"
path_prefix = "/small"
upstream = "app"
max_body = "1KiB"

[[routes]]
name = "unlimited"
path_prefix = "/unlimited"
upstream = "app"
max_body = "0"

[[routes]]
name = "default"
path_prefix = "/"
upstream = "app"
"#,
        origin.target()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declared_length_over_the_limit_never_reaches_the_upstream() {
    let origin = Origin::start("o").await;
    let tg = Tollgate::start_with_server(&config(&origin, ""), "max_body = \"4KiB\"").await;
    let c = client();
    let post = |path: &str, n: usize| send(c.post(tg.url(path)).body(vec![b'x'; n]));
    assert_problem(&post("/small", 1025).await, 413);
    assert_problem(&post("/other", 4097).await, 413);
    assert_eq!(origin.count(), 0, "refused before the upstream");
    assert_eq!(post("/small", 1024).await.status, 200);
    assert_eq!(post("/other", 4096).await.status, 200);
    assert_eq!(post("/unlimited", 100_000).await.status, 200);
    let sizes: Vec<usize> = origin.seen().iter().map(|s| s.body.len()).collect();
    assert_eq!(sizes, [1024, 4096, 100_000]);
    let metrics = get(&tg.admin_url("/metrics")).await.body;
    for line in [
        "tollgate_body_too_large_total{route=\"small\"} 1",
        "tollgate_body_too_large_total{route=\"default\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
}

fn chunked(path: &str, sizes: &[usize]) -> Vec<u8> {
    let chunks: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![b'y'; n]).collect();
    let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    chunked_request(path, "", &chunks)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunked_body_growing_past_the_limit_is_cut_off() {
    let origin = Origin::start("o").await;
    let tg = Tollgate::start(&config(&origin, "")).await;
    let port = tg.port;
    let cut =
        tokio::task::spawn_blocking(move || raw_request(port, &chunked("/small", &[600, 600])))
            .await
            .expect("raw");
    assert!(cut.starts_with("HTTP/1.1 413"), "{cut}");
    assert!(cut.contains("application/problem+json"), "{cut}");
    let fits =
        tokio::task::spawn_blocking(move || raw_request(port, &chunked("/small", &[500, 500])))
            .await
            .expect("raw");
    assert!(fits.starts_with("HTTP/1.1 200"), "{fits}");
    let sizes: Vec<usize> = origin.seen().iter().map(|s| s.body.len()).collect();
    assert_eq!(
        sizes,
        [1000],
        "only the body within the limit completed upstream"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http2_body_without_a_length_is_cut_off_too() {
    let origin = Origin::start("o").await;
    let h2_port = free_port();
    let listener = format!("[listeners.h2c]\naddr = \"127.0.0.1:{h2_port}\"\nh2c = true\n");
    let _tg = Tollgate::start(&config(&origin, &listener)).await;
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .expect("h2c client");
    let streamed = |chunks: usize| {
        let parts = (0..chunks).map(|_| Ok::<_, std::io::Error>(vec![b'z'; 400]));
        reqwest::Body::wrap_stream(stream::iter(parts))
    };
    let url = format!("http://127.0.0.1:{h2_port}/small");
    let over = send(h2.post(&url).body(streamed(3))).await;
    assert_problem(&over, 413);
    let within = send(h2.post(&url).body(streamed(2))).await;
    assert_eq!(within.status, 200, "{}", within.body);
    let sizes: Vec<usize> = origin.seen().iter().map(|s| s.body.len()).collect();
    assert_eq!(sizes, [800]);
}

/// A raw origin that answers an upgrade with 101, sends `hello`, then echoes every
/// byte back.
async fn upgrade_echo_origin() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello";
                if stream.write_all(answer).await.is_err() {
                    return;
                }
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgraded_connection_is_no_body_to_limit() {
    let origin = upgrade_echo_origin().await;
    let tg = Tollgate::start(&format!(
        "[upstreams.ws]\ntargets = [\"{origin}\"]\n\n[[routes]]\nname = \"ws\"\npath_prefix = \"/\"\nupstream = \"ws\"\nmax_body = \"1KiB\"\n"
    ))
    .await;
    // Pingora 0.9 sometimes closes an upgraded connection early (seen about once in 20
    // runs on a loaded machine, with or without tollgate's policies; see the README's
    // known limits). That is not what this test is about, and a body limit applied to
    // the upgraded bytes would cut every attempt: one attempt in three must carry all
    // 16 KiB through a route with max_body = 1KiB.
    let mut failures = Vec::new();
    for _ in 0..3 {
        match echo_16k(tg.port).await {
            Ok(()) => return,
            Err(e) => failures.push(e),
        }
    }
    panic!("no attempt carried 16 KiB: {failures:?}\n{}", tg.log());
}

/// Sends 16 KiB over a connection upgraded through tollgate and reads them back.
async fn echo_16k(port: u16) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = upgraded(port).await.ok_or("closed right after the 101")?;
    let sent = vec![b'w'; 16 * 1024];
    let echoed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        stream.write_all(&sent).await?;
        let mut back = vec![0u8; sent.len()];
        stream.read_exact(&mut back).await.map(|_| back)
    })
    .await
    .map_err(|_| "no echo within 10 s".to_owned())?
    .map_err(|e| format!("echo: {e}"))?;
    match echoed == sent {
        true => Ok(()),
        false => Err("the echo differs from what was sent".into()),
    }
}

/// A connection upgraded through tollgate on `port` once the server's first message
/// came through; `None` when tollgate closed it before that.
async fn upgraded(port: u16) -> Option<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream
        .write_all(b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        .await
        .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.expect("response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut hello = [0u8; 5];
    stream.read_exact(&mut hello).await.ok()?;
    assert_eq!(&hello, b"hello");
    Some(stream)
}
