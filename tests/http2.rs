//! HTTP/2 clients judged like HTTP/1.1: a connection that opens no stream within
//! `header_timeout` gets GOAWAY and is closed, a stream's body below `body_min_rate`
//! is cut with 408, and rapid-reset and CONTINUATION floods are cut while an ordinary
//! client is served. The floods are written frame by frame over raw TCP (h2c).

use futures::stream;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{assert_problem, free_port, send, Origin, Tollgate};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
/// `GET / http`, `:authority: a`, HPACK-encoded (static table indexes, one literal).
const GET_BLOCK: &[u8] = &[0x82, 0x84, 0x86, 0x41, 0x01, b'a'];

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A connection that has sent the preface and an empty SETTINGS frame.
async fn h2_connection(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(SETTINGS, 0, 0, &[]));
    stream.write_all(&hello).await.expect("preface");
    stream
}

/// Reads until the server closes (or resets) the connection, at most `within`:
/// whether it closed, and whether a GOAWAY frame came first.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> (bool, bool) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (closed, frames(&seen).contains(&GOAWAY))
}

/// The frame types in `bytes` as a server sent them.
fn frames(bytes: &[u8]) -> Vec<u8> {
    let mut kinds = Vec::new();
    let mut at = 0;
    while at + 9 <= bytes.len() {
        let len =
            (bytes[at] as usize) << 16 | (bytes[at + 1] as usize) << 8 | bytes[at + 2] as usize;
        kinds.push(bytes[at + 3]);
        at += 9 + len;
    }
    kinds
}

async fn start(origin: &Origin, h2_port: u16, server: &str) -> Tollgate {
    let body = format!(
        "[listeners.h2c]\naddr = \"127.0.0.1:{h2_port}\"\nh2c = true\n\n[upstreams.app]\ntargets = [{}]\n\n[[routes]]\nname = \"app\"\nupstream = \"app\"\n",
        origin.target()
    );
    Tollgate::start_with_server(&body, server).await
}

fn h2_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("h2c client")
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_http2_connections_are_closed_at_header_timeout() {
    let origin = Origin::start("o").await;
    let h2_port = free_port();
    let _tg = start(&origin, h2_port, "header_timeout = \"2s\"").await;
    let started = Instant::now();
    let mut silent = Vec::new();
    for i in 0..300 {
        silent.push(match i % 2 {
            // The preface and SETTINGS, then no stream.
            0 => h2_connection(h2_port).await,
            // Nothing at all.
            _ => TcpStream::connect(("127.0.0.1", h2_port))
                .await
                .expect("connect"),
        });
    }
    let within = Duration::from_secs(4) - started.elapsed().min(Duration::from_secs(4));
    let mut outcomes = Vec::new();
    for stream in &mut silent {
        outcomes.push(closed_within(stream, within.max(Duration::from_millis(100))).await);
    }
    let open = outcomes.iter().filter(|(closed, _)| !closed).count();
    assert_eq!(
        open,
        0,
        "connections still open {:?} after the first",
        started.elapsed()
    );
    let goaways = outcomes
        .iter()
        .step_by(2)
        .filter(|(_, goaway)| *goaway)
        .count();
    assert_eq!(goaways, 150, "every HTTP/2 connection got GOAWAY");
    let served = send(h2_client().get(format!("http://127.0.0.1:{h2_port}/x"))).await;
    assert_eq!(served.status, 200, "an ordinary client is served");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_http2_body_is_cut_with_408() {
    let origin = Origin::start("o").await;
    let h2_port = free_port();
    let tg = start(&origin, h2_port, "request_buffer = \"0\"").await;
    // 10 bytes a second, for up to 40 s: far below the default 1 KiB/s.
    let trickle = stream::unfold(0, |sent| async move {
        if sent == 40 {
            return None;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        Some((Ok::<_, std::io::Error>(vec![b'x'; 10]), sent + 1))
    });
    let started = Instant::now();
    let cut = send(
        h2_client()
            .post(format!("http://127.0.0.1:{h2_port}/upload"))
            .body(reqwest::Body::wrap_stream(trickle)),
    )
    .await;
    assert_problem(&cut, 408);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(16),
        "cut after {took:?}: 5 s of grace and a 5 s window"
    );
    let metrics = crate::support::get(&tg.admin_url("/metrics")).await.body;
    assert!(
        metrics.contains("tollgate_client_timeouts_total{phase=\"body\"} 1"),
        "{metrics}"
    );
}

/// Sends GETs one after another over HTTP/2 until `stop`; their latencies.
async fn ordinary_client(url: String, stop: Instant) -> Vec<Duration> {
    let client = h2_client();
    let mut latencies = Vec::new();
    while Instant::now() < stop {
        let sent = Instant::now();
        let reply = send(client.get(&url)).await;
        assert_eq!(reply.status, 200);
        latencies.push(sent.elapsed());
    }
    latencies
}

#[tokio::test(flavor = "multi_thread")]
async fn rapid_reset_and_continuation_floods_are_cut() {
    let origin = Origin::start("o").await;
    let h2_port = free_port();
    let _tg = start(&origin, h2_port, "").await;
    let url = format!("http://127.0.0.1:{h2_port}/x");
    let ordinary = tokio::spawn(ordinary_client(
        url,
        Instant::now() + Duration::from_secs(4),
    ));

    // Rapid reset (CVE-2023-44487): open a stream and cancel it at once, again and again.
    let mut reset = h2_connection(h2_port).await;
    let mut flood = Vec::new();
    for i in 0..2000u32 {
        let id = 2 * i + 1;
        flood.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, GET_BLOCK));
        flood.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
    }
    let _ = reset.write_all(&flood).await;
    let (closed, goaway) = closed_within(&mut reset, Duration::from_secs(5)).await;
    assert!(
        closed && goaway,
        "rapid reset: closed {closed}, GOAWAY {goaway}"
    );

    // CONTINUATION flood (CVE-2024-27316): a header block that never ends.
    let mut endless = h2_connection(h2_port).await;
    let _ = endless.write_all(&frame(HEADERS, 0, 1, GET_BLOCK)).await;
    let filler = vec![0u8; 16_000];
    let writes = tokio::time::timeout(Duration::from_secs(10), async {
        for _ in 0..2000 {
            if endless
                .write_all(&frame(CONTINUATION, 0, 1, &filler))
                .await
                .is_err()
            {
                return true;
            }
        }
        false
    })
    .await;
    let cut = writes == Ok(true);
    let (closed, _) = closed_within(&mut endless, Duration::from_secs(5)).await;
    assert!(cut || closed, "the CONTINUATION flood was not cut");

    let mut latencies = ordinary.await.expect("ordinary client");
    latencies.sort();
    assert!(latencies.len() >= 20, "{} requests", latencies.len());
    let p99 = latencies[latencies.len() * 99 / 100];
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_http2_connection_over_tls_is_closed_at_header_timeout() {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    use std::io::Read;
    let ca = crate::support::certs::Ca::new("test ca");
    let port = free_port();
    let body = format!(
        "[listeners.secure]\naddr = \"127.0.0.1:{port}\"\n[listeners.secure.tls]\n\
         certificates = [{{ cert = \"$DIR/s.pem\", key = \"$DIR/s.key\" }}]\n\n\
         [[routes]]\nname = \"ok\"\nrespond = {{ status = 200, body = \"ok\" }}\n"
    );
    let tg = Tollgate::start_full(&body, "header_timeout = \"2s\"", &[], |dir| {
        ca.server(&["s.test"]).write(dir, "s");
    })
    .await;
    crate::tls::wait_listening(&tg, port).await;
    let (alpn, closed_after) = tokio::task::spawn_blocking(move || {
        let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut builder = SslConnector::builder(SslMethod::tls()).expect("connector");
        builder.set_verify(SslVerifyMode::NONE);
        builder.set_alpn_protos(b"\x02h2").expect("alpn");
        let mut tls = builder.build().connect("s.test", tcp).expect("handshake");
        let alpn = tls.ssl().selected_alpn_protocol().map(<[u8]>::to_vec);
        // No preface, nothing: read until the server closes.
        let started = Instant::now();
        let mut buf = [0u8; 64];
        while matches!(tls.read(&mut buf), Ok(n) if n > 0) {}
        (alpn, started.elapsed())
    })
    .await
    .expect("client");
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    assert!(
        closed_after < Duration::from_secs(4),
        "closed after {closed_after:?}, header_timeout 2 s"
    );
}
