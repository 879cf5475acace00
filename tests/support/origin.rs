//! A real HTTP/1.1 origin on a loopback port: answers with its name, records every
//! request it sees, and can be stopped (connections refused) and restarted on the
//! same port.
//!
//! Told to fail, it answers every request with 503. Paths: `/healthz` → 200; `/slow?ms=N` → 200 after N ms;
//! `.../early` → 200 at once, without reading the body; `.../with-headers` → 200
//! with headers an upstream may set on its own (`Vary`, `Access-Control-Allow-Origin`,
//! `X-Frame-Options`); anything else → 200 with the origin's name as body. Every
//! response carries `x-origin: NAME`. A request is recorded once its whole body has
//! arrived (one whose body is cut off is not); every request head is counted when it
//! arrives ([`Origin::heads`]).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// What the origin saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path_and_query: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

pub struct Origin {
    pub name: String,
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    heads: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Origin {
    pub async fn start(name: &str) -> Origin {
        Self::start_at(name, "127.0.0.1:0").await
    }

    /// An origin listening on `addr` (`"127.0.0.2:0"`: another loopback address).
    pub async fn start_at(name: &str, addr: &str) -> Origin {
        let listener = TcpListener::bind(addr).await.expect("bind origin");
        let addr = listener.local_addr().expect("origin addr");
        let mut origin = Origin {
            name: name.to_owned(),
            addr,
            seen: Arc::default(),
            heads: Arc::default(),
            connections: Arc::default(),
            failing: Arc::default(),
            server: None,
        };
        origin.serve(listener);
        origin
    }

    /// Several origins named `prefix0`, `prefix1`, ...
    pub async fn start_many(prefix: &str, n: usize) -> Vec<Origin> {
        let mut out = Vec::new();
        for i in 0..n {
            out.push(Origin::start(&format!("{prefix}{i}")).await);
        }
        out
    }

    fn serve(&mut self, listener: TcpListener) {
        let name = self.name.clone();
        let seen = self.seen.clone();
        let heads = self.heads.clone();
        let failing = self.failing.clone();
        let connections_accepted = self.connections.clone();
        self.server = Some(tokio::spawn(async move {
            // Connections live in this set: aborting the server task drops (closes) them all.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                connections_accepted.fetch_add(1, Ordering::Relaxed);
                let (name, seen, failing) = (name.clone(), seen.clone(), failing.clone());
                let heads = heads.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        if req.uri().path() != "/healthz" {
                            heads.fetch_add(1, Ordering::Relaxed);
                        }
                        handle(
                            req,
                            name.clone(),
                            seen.clone(),
                            failing.load(Ordering::Relaxed),
                        )
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }));
    }

    /// Stops listening and closes every open connection: new connections are refused.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    /// Listens again on the same address.
    pub async fn restart(&mut self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind origin");
        self.serve(listener);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }

    /// Answer every request with 503 (or stop doing so).
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Request heads that arrived (health checks aside), whether or not their body
    /// did.
    pub fn heads(&self) -> usize {
        self.heads.load(Ordering::Relaxed)
    }

    pub fn count(&self) -> usize {
        self.seen.lock().expect("seen").len()
    }

    /// `"127.0.0.1:PORT"` as a TOML string.
    pub fn target(&self) -> String {
        format!("\"{}\"", self.addr)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    name: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    failing: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or("/".into(), |p| p.to_string());
    let headers = req.headers().clone();
    if path.ends_with("/early") {
        return Ok(Response::new(Full::new(Bytes::from(name))));
    }
    let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
        return Ok(Response::builder()
            .status(400)
            .body(Full::new(Bytes::new()))
            .expect("response"));
    };
    if path != "/healthz" {
        seen.lock().expect("seen").push(Seen {
            path_and_query: path_and_query.clone(),
            headers,
            body,
        });
    }
    if path == "/slow" {
        let ms = path_and_query
            .split_once("?ms=")
            .map(|(_, ms)| ms)
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut response = Response::builder().status(if failing { 503 } else { 200 });
    if path.ends_with("/with-headers") {
        response = response
            .header("vary", "Accept-Encoding")
            .header("access-control-allow-origin", "*")
            .header("access-control-allow-credentials", "true")
            .header("x-frame-options", "SAMEORIGIN");
    }
    Ok(response
        .header("x-origin", &name)
        .header("x-upstream-secret", "origin-only")
        .body(Full::new(Bytes::from(name)))
        .expect("response"))
}
