//! `proxy_protocol = true` behind a real HAProxy in TCP mode (`send-proxy-v2`), and
//! with raw v1 lines: the client the balancer names is the one IP lists, the per-IP
//! limit and jails act on; a header from a peer outside `trusted_proxies`, or a
//! malformed one, closes the connection.
//!
//! Clients connect from other loopback addresses (127.0.0.2, ...) than HAProxy's
//! own (127.0.0.1, the trusted proxy), so the two are told apart.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{eventually, free_port, Tollgate};

/// HAProxy in TCP mode on a free port, sending a PROXY v2 header to `backend`.
struct Haproxy {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    async fn start(backend: u16) -> Haproxy {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = format!(
            "global\n  maxconn 200\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
             frontend front\n  bind 127.0.0.1:{port}\n  default_backend tollgate\n\
             backend tollgate\n  server t 127.0.0.1:{backend} send-proxy-v2\n"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).expect("haproxy.cfg");
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy (scripts/deps.sh installs it)");
        let up = eventually(Duration::from_secs(10), || async move {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        assert!(up, "haproxy did not listen on {port}");
        Haproxy {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A connection to `port` from the loopback address `from`.
async fn connect_from(from: &str, port: u16) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{from}:0").parse().expect("addr"))
        .expect("bind");
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    socket.connect(remote).await.expect("connect")
}

/// Sends `request` on `stream` and reads until the server closes (at most 5 s).
async fn exchange(mut stream: tokio::net::TcpStream, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A connection from `from` that has been served one request and stays open.
async fn served_and_kept(from: &str, port: u16) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = connect_from(from, port).await;
    stream
        .write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("request");
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"ok") {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
        let n = read.expect("an answer within 5 s").expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    stream
}

const GET: &[u8] = b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

fn config(proxied: u16) -> String {
    format!(
        r#"
[listeners.balanced]
addr = "127.0.0.1:{proxied}"
proxy_protocol = true

[ip_lists.blocked]
cidrs = ["127.0.0.3"]

[jails.probers]
key = "client_ip"
statuses = [404]
max_strikes = 2
window = "1m"
ban = "1h"

[[routes]]
name = "ok"
path_prefix = "/x"
deny_from = ["blocked"]
respond = {{ status = 200, body = "ok" }}
"#
    )
}

async fn start(proxied: u16) -> Tollgate {
    let server = "trusted_proxies = [\"127.0.0.1/32\"]\njails = [\"probers\"]\nmax_connections_per_ip = 2\nheader_timeout = \"30s\"";
    let tg = Tollgate::start_with_server(&config(proxied), server).await;
    let up = eventually(Duration::from_secs(10), || async move {
        TcpStream::connect(("127.0.0.1", proxied)).is_ok()
    })
    .await;
    assert!(up, "listener {proxied} not up");
    tg
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_haproxy_policies_see_the_real_client() {
    let proxied = free_port();
    let _tg = start(proxied).await;
    let haproxy = Haproxy::start(proxied).await;
    let port = haproxy.port;
    let allowed = exchange(connect_from("127.0.0.2", port).await, GET).await;
    assert!(allowed.starts_with("HTTP/1.1 200 "), "{allowed}");
    let blocked = exchange(connect_from("127.0.0.3", port).await, GET).await;
    assert!(
        blocked.starts_with("HTTP/1.1 403 "),
        "the deny list sees 127.0.0.3: {blocked}"
    );

    // The per-IP limit: two open connections from 127.0.0.4, a third is closed; another
    // client behind the same balancer is served.
    let held = [
        served_and_kept("127.0.0.4", port).await,
        served_and_kept("127.0.0.4", port).await,
    ];
    let third = exchange(connect_from("127.0.0.4", port).await, GET).await;
    assert_eq!(third, "", "a third connection from 127.0.0.4 was served");
    let other = exchange(connect_from("127.0.0.5", port).await, GET).await;
    assert!(other.starts_with("HTTP/1.1 200 "), "{other}");
    drop(held);

    // The jail: two 404s ban 127.0.0.6, not its neighbour.
    let probe = b"GET /nothing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    for _ in 0..2 {
        let answer = exchange(connect_from("127.0.0.6", port).await, probe).await;
        assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    }
    let banned = exchange(connect_from("127.0.0.6", port).await, GET).await;
    assert!(banned.starts_with("HTTP/1.1 403 "), "{banned}");
    let neighbour = exchange(connect_from("127.0.0.7", port).await, GET).await;
    assert!(neighbour.starts_with("HTTP/1.1 200 "), "{neighbour}");
}

#[tokio::test(flavor = "multi_thread")]
async fn v1_headers_are_read_and_untrusted_or_malformed_ones_close() {
    let proxied = free_port();
    let tg = start(proxied).await;
    let v1 = |header: &str| [header.as_bytes(), GET].concat();
    let trusted = |request: Vec<u8>| async move {
        exchange(connect_from("127.0.0.1", proxied).await, &request).await
    };
    let named = trusted(v1("PROXY TCP4 127.0.0.3 127.0.0.1 5000 80\r\n")).await;
    assert!(
        named.starts_with("HTTP/1.1 403 "),
        "the header's client: {named}"
    );
    let elsewhere = trusted(v1("PROXY TCP4 198.51.100.7 127.0.0.1 5000 80\r\n")).await;
    assert!(elsewhere.starts_with("HTTP/1.1 200 "), "{elsewhere}");
    let malformed = trusted(v1("PROXY TCP4 127.0.0.3 127.0.0.1 5000\r\n")).await;
    assert_eq!(malformed, "", "a malformed header closes");
    assert_eq!(trusted(GET.to_vec()).await, "", "a missing header closes");
    let forged = exchange(
        connect_from("127.0.0.2", proxied).await,
        &v1("PROXY TCP4 198.51.100.7 127.0.0.1 5000 80\r\n"),
    )
    .await;
    assert_eq!(forged, "", "a header from an untrusted peer closes");
    // The per-IP slots those refused connections took at accept came back: the
    // address is still served on the main listener (max_connections_per_ip = 2).
    for _ in 0..3 {
        let refused = exchange(connect_from("127.0.0.2", proxied).await, GET).await;
        assert_eq!(refused, "");
    }
    let main = exchange(connect_from("127.0.0.2", tg.port).await, GET).await;
    assert!(main.starts_with("HTTP/1.1 200 "), "slots leaked: {main}");
}

/// A GET over TLS on a connection to `port` that first sends `header`.
fn tls_exchange(port: u16, header: &str) -> String {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    use std::io::{Read, Write};
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    tcp.write_all(header.as_bytes()).expect("header");
    let mut builder = SslConnector::builder(SslMethod::tls()).expect("connector");
    builder.set_verify(SslVerifyMode::NONE);
    let Ok(mut tls) = builder.build().connect("s.test", tcp) else {
        return String::new();
    };
    let _ = tls.write_all(GET);
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_listener_reads_the_header_before_its_handshake() {
    let ca = crate::support::certs::Ca::new("test ca");
    let port = free_port();
    let plain =
        format!("[listeners.balanced]\naddr = \"127.0.0.1:{port}\"\nproxy_protocol = true\n");
    let secure = format!(
        "[listeners.balanced]\naddr = \"127.0.0.1:{port}\"\nproxy_protocol = true\n\
         [listeners.balanced.tls]\ncertificates = [{{ cert = \"$DIR/s.pem\", key = \"$DIR/s.key\" }}]\n"
    );
    let body = config(port).replace(&plain, &secure);
    assert_ne!(body, config(port), "the listener is TLS");
    let server = "trusted_proxies = [\"127.0.0.1/32\"]";
    let _tg = Tollgate::start_full(&body, server, &[], |dir| {
        ca.server(&["s.test"]).write(dir, "s");
    })
    .await;
    let up = eventually(Duration::from_secs(10), || async move {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    assert!(up, "listener {port} not up");
    let (blocked, allowed, missing) = tokio::task::spawn_blocking(move || {
        (
            tls_exchange(port, "PROXY TCP4 127.0.0.3 127.0.0.1 5000 443\r\n"),
            tls_exchange(port, "PROXY TCP4 198.51.100.7 127.0.0.1 5000 443\r\n"),
            tls_exchange(port, ""),
        )
    })
    .await
    .expect("clients");
    assert!(
        blocked.starts_with("HTTP/1.1 403 "),
        "the header's client: {blocked}"
    );
    assert!(allowed.starts_with("HTTP/1.1 200 "), "{allowed}");
    assert_eq!(
        missing, "",
        "a TLS handshake without the header first is refused"
    );
}
