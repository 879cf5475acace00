//! Test support: real origins, the real tollgate binary, an HTTP client and a raw
//! TCP client for requests a well-behaved client would never send.

pub mod ari;
pub mod browser;
pub mod certs;
pub mod dns;
pub mod etcd;
pub mod grpc;
pub mod jwks_server;
pub mod origin;
pub mod otlp;
pub mod pebble;
pub mod redis;
pub mod tls_origin;
pub mod tokens;
pub mod tollgate;

pub use origin::Origin;
pub use tollgate::{free_port, Tollgate};

use std::future::Future;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// An `api_key` authenticator whose only key nobody has and a route `private` under
/// `prefix` that requires it: it refuses every request (401), one security event each.
pub fn refused_route(prefix: &str) -> String {
    format!(
        "[auth.keys]\nkind = \"api_key\"\nconsumers = [{{ id = \"a\", key_sha256 = \"{}\" }}]\n\n\
         [[routes]]\nname = \"private\"\npath_prefix = \"{prefix}\"\nauth = [\"keys\"]\n\
         respond = {{ status = 200, body = \"secret\" }}\n",
        "0".repeat(64)
    )
}

/// A process the test started, killed and reaped when dropped.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Stops the process `pid` when dropped (one the test did not start itself).
pub struct Stops(pub i32);

impl Drop for Stops {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Polls `check` every 25 ms until it holds or `timeout` passes; a readiness probe.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// An HTTP client that never uses a proxy from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// An HTTPS client trusting `ca_pem` that resolves `host` to 127.0.0.1:`port` (so SNI
/// and Host are `host`), returning peer certificate info (`tls_info`).
pub fn tls_client(
    ca_pem: &str,
    host: &str,
    port: u16,
    identity: Option<reqwest::Identity>,
) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("ca pem");
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        .resolve(host, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .tls_info(true);
    if let Some(identity) = identity {
        builder = builder.identity(identity);
    }
    builder.use_native_tls().build().expect("tls client")
}

/// The subject CN of the certificate the server presented (empty when none).
pub fn peer_cert_cn(resp: &reqwest::Response) -> String {
    let Some(der) = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
    else {
        return String::new();
    };
    let cert = openssl::x509::X509::from_der(der).expect("peer certificate der");
    let cn = cert
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok());
    cn.unwrap_or_default()
}

/// A plain response: status, headers and body as text.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> Reply {
    let resp = req.send().await.expect("request");
    Reply {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.text().await.expect("body"),
    }
}

pub async fn get(url: &str) -> Reply {
    send(client().get(url)).await
}

/// An HTTP/1.1 POST of `chunks` to `path`, chunked, with the extra head lines `head`,
/// on a connection that closes after it.
pub fn chunked_request(path: &str, head: &str, chunks: &[&[u8]]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: a\r\n{head}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in chunks {
        req.extend(format!("{:x}\r\n", chunk.len()).bytes());
        req.extend_from_slice(chunk);
        req.extend(b"\r\n");
    }
    req.extend(b"0\r\n\r\n");
    req
}

/// Writes `request` verbatim to `port` and returns everything read until the server
/// closes (bounded by a 5 s read timeout).
pub fn raw_request(port: u16, request: &[u8]) -> String {
    raw_exchange(port, request).0
}

/// [`raw_request`], and whether the server closed the connection within the 5 s.
pub fn raw_exchange(port: u16, request: &[u8]) -> (String, bool) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream.write_all(request).expect("write");
    let mut out = Vec::new();
    let closed = stream.read_to_end(&mut out).is_ok();
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// Whether the server end of `stream`, a TCP connection within this host, has read
/// every byte sent on it so far, as the kernel shows both ends in /proc/net/tcp (or
/// tcp6): the client's socket has nothing unacknowledged (`tx_queue` 0, so the bytes
/// reached the server's socket) and the server's socket nothing unread (`rx_queue`
/// 0, so the server process took them with a read; a peek would leave them there).
/// Outside the process, this is the sign that it has seen the bytes. Linux only.
pub fn server_has_read(stream: &tokio::net::TcpStream) -> bool {
    let (Ok(client), Ok(server)) = (stream.local_addr(), stream.peer_addr()) else {
        return false;
    };
    let sent = tcp_queues(client, server).is_some_and(|(tx, _)| tx == 0);
    let read = tcp_queues(server, client).is_some_and(|(_, rx)| rx == 0);
    sent && read
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port` (from
/// /proc/net/tcp and the process's descriptors). A port handed out by `free_port`
/// can be taken by another test's process in between; answering on it is not
/// enough to know the process under test listens there. Linux only.
pub fn listens_on(pid: u32, port: u16) -> bool {
    let local = proc_net_addr(SocketAddr::from(([127, 0, 0, 1], port)));
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    // sl local_address rem_address st ... uid timeout inode
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let listening = fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A");
            listening.then(|| fields.get(9).map(|i| format!("socket:[{i}]")))?
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .any(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
}

/// `tx_queue` and `rx_queue` of the socket from `local` to `remote`.
fn tcp_queues(local: SocketAddr, remote: SocketAddr) -> Option<(u64, u64)> {
    let (local, remote) = (proc_net_addr(local), proc_net_addr(remote));
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            let table = std::fs::read_to_string(table).ok()?;
            // sl local_address rem_address st tx_queue:rx_queue ...
            table.lines().skip(1).find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.get(1) != Some(&local.as_str()) || fields.get(2) != Some(&remote.as_str())
                {
                    return None;
                }
                let (tx, rx) = fields.get(4)?.split_once(':')?;
                let hex = |n: &str| u64::from_str_radix(n, 16).ok();
                Some((hex(tx)?, hex(rx)?))
            })
        })
}

/// `addr` as /proc/net/tcp spells it: each 32-bit word of the address in hex as the
/// kernel holds it (network byte order read as a native integer), then the port.
fn proc_net_addr(addr: SocketAddr) -> String {
    let octets = match addr.ip() {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    let words: String = octets
        .chunks(4)
        .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
        .collect();
    format!("{words}:{:04X}", addr.port())
}

/// Asserts a problem+json body with `status` and the response's request id.
pub fn assert_problem(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.header("content-type"), "application/problem+json");
    let body = reply.json();
    assert_eq!(body["status"], status);
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    assert_eq!(body["request_id"], reply.header("x-request-id"));
    assert!(!reply.header("x-request-id").is_empty());
}

/// The value of the Prometheus sample `line` (name and labels) in `metrics`; 0 when
/// absent.
pub fn metric(metrics: &str, line: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Counts of `x-origin` over `n` GETs of `url`.
pub async fn spread(url: &str, n: usize) -> std::collections::BTreeMap<String, usize> {
    let c = client();
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..n {
        let r = send(c.get(url)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        *counts.entry(r.header("x-origin").to_owned()).or_default() += 1;
    }
    counts
}
