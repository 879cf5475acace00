//! A real HTTP JWKS endpoint on loopback whose document (or failure) the test sets,
//! counting the fetches it serves.

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Response;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

#[derive(Clone)]
struct State {
    /// `None`: answer 500.
    document: Arc<Mutex<Option<String>>>,
    fetches: Arc<AtomicUsize>,
}

pub struct JwksServer {
    pub addr: SocketAddr,
    state: State,
    server: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    pub async fn start(document: String) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind jwks");
        let addr = listener.local_addr().expect("addr");
        let state = State {
            document: Arc::new(Mutex::new(Some(document))),
            fetches: Arc::default(),
        };
        let shared = state.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_req| {
                        let state = state.clone();
                        async move {
                            state.fetches.fetch_add(1, Ordering::SeqCst);
                            let doc = state.document.lock().expect("doc").clone();
                            let (status, body) = match doc {
                                Some(d) => (200, d),
                                None => (500, "broken".to_owned()),
                            };
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body)))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        JwksServer {
            addr,
            state,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    /// Serves `document` from now on (`None`: every fetch fails with 500).
    pub fn set(&self, document: Option<String>) {
        *self.state.document.lock().expect("doc") = document;
    }

    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}
