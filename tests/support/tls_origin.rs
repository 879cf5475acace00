//! A real HTTPS origin (OpenSSL, HTTP/1.1 and HTTP/2 by ALPN) on a loopback port, for
//! upstream-TLS tests; optionally requires a client certificate issued by a given CA.
//! It answers with the test's own handler ([`TlsOrigin::serve`]), or (`start`) with:
//!
//! every response 200 with body NAME and headers `x-origin: NAME`, `x-sni` (the
//! SNI the client sent, or empty), `x-version` (e.g. `HTTP/1.1`, `HTTP/2.0`) and
//! `x-client-cert-cn` (the client certificate's CN, or empty).

use super::certs::{Ca, Leaf};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use openssl::nid::Nid;
use openssl::ssl::{
    select_next_proto, AlpnError, NameType, Ssl, SslAcceptor, SslMethod, SslVerifyMode,
};
use openssl::x509::X509;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_openssl::SslStream;

pub struct TlsOrigin {
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

/// What the TLS handshake established for one connection.
pub struct Peer {
    pub sni: String,
    pub client_cn: String,
}

/// What answers each request.
pub type Handler =
    Arc<dyn Fn(&Request<hyper::body::Incoming>, &Peer) -> Response<Full<Bytes>> + Send + Sync>;

impl TlsOrigin {
    /// Serves HTTPS with `leaf` (and its CA as chain); with `client_ca`, requires a
    /// client certificate that verifies against it.
    pub async fn start(name: &str, leaf: &Leaf, client_ca: Option<&Ca>) -> TlsOrigin {
        let name = name.to_owned();
        Self::serve(
            leaf,
            client_ca,
            Arc::new(move |req, peer| echo(req, &name, peer)),
        )
        .await
    }

    /// Serves HTTPS with `leaf`, answering each request with `handler`.
    pub async fn serve(leaf: &Leaf, client_ca: Option<&Ca>, handler: Handler) -> TlsOrigin {
        let acceptor = Arc::new(acceptor(leaf, client_ca));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind tls origin");
        let addr = listener.local_addr().expect("tls origin addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let server = {
            let requests = requests.clone();
            tokio::spawn(async move {
                // Connections live in this set: aborting the server task drops (closes) them all.
                let mut connections = JoinSet::new();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let (acceptor, handler, requests) =
                        (acceptor.clone(), handler.clone(), requests.clone());
                    connections.spawn(async move {
                        let Ok(ssl) = Ssl::new(acceptor.context()) else {
                            return;
                        };
                        let Ok(mut tls) = SslStream::new(ssl, stream) else {
                            return;
                        };
                        if Pin::new(&mut tls).accept().await.is_err() {
                            return;
                        }
                        let peer = Arc::new(Peer {
                            sni: tls
                                .ssl()
                                .servername(NameType::HOST_NAME)
                                .unwrap_or("")
                                .to_owned(),
                            client_cn: tls
                                .ssl()
                                .peer_certificate()
                                .map(|c| common_name(&c))
                                .unwrap_or_default(),
                        });
                        let service = service_fn(move |req| {
                            requests.fetch_add(1, Ordering::Relaxed);
                            let response = handler(&req, &peer);
                            async move { Ok::<_, Infallible>(response) }
                        });
                        let _ = auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    });
                }
            })
        };
        TlsOrigin {
            addr,
            requests,
            server,
        }
    }

    /// Requests served so far.
    pub fn count(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// `"127.0.0.1:PORT"` as a TOML string.
    pub fn target(&self) -> String {
        format!("\"{}\"", self.addr)
    }
}

impl Drop for TlsOrigin {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn acceptor(leaf: &Leaf, client_ca: Option<&Ca>) -> SslAcceptor {
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("ssl acceptor");
    builder.set_certificate(&leaf.cert).expect("certificate");
    builder.set_private_key(&leaf.key).expect("private key");
    builder
        .check_private_key()
        .expect("key matches certificate");
    let issuer = X509::from_pem(leaf.ca_pem.as_bytes()).expect("issuer pem");
    builder.add_extra_chain_cert(issuer).expect("chain");
    builder.set_alpn_select_callback(|_, offered| {
        select_next_proto(b"\x02h2\x08http/1.1", offered).ok_or(AlpnError::NOACK)
    });
    if let Some(ca) = client_ca {
        builder
            .cert_store_mut()
            .add_cert(ca.cert.clone())
            .expect("client ca store");
        builder.add_client_ca(&ca.cert).expect("client ca list");
        builder.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    }
    builder.build()
}

fn common_name(cert: &X509) -> String {
    cert.subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
        .unwrap_or_default()
}

fn echo(req: &Request<hyper::body::Incoming>, name: &str, peer: &Peer) -> Response<Full<Bytes>> {
    Response::builder()
        .header("x-origin", name)
        .header("x-sni", &peer.sni)
        .header("x-version", format!("{:?}", req.version()))
        .header("x-client-cert-cn", &peer.client_cn)
        .body(Full::new(Bytes::from(name.to_owned())))
        .expect("response")
}
