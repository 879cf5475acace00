//! The reference for `load-tests/run.sh`: Pingora's plain proxy, the smallest
//! `ProxyHttp` that forwards every request to one upstream, with nothing of
//! tollgate in it, built with tollgate's release profile and allocator (and, like
//! tollgate, without transparent huge pages; load-tests/peers.sh gives it tollgate's
//! purge delay too). Comparing with it separates Pingora's cost from tollgate's.
//! With a TLS address, certificate and key, it also listens for HTTPS there
//! (Pingora's `add_tls`: OpenSSL's Mozilla intermediate settings, HTTP/1.1).
//!
//! Usage: plain_proxy LISTEN_ADDR UPSTREAM_ADDR WORKERS [TLS_ADDR CERT_FILE KEY_FILE]

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;
use std::net::SocketAddr;

/// The allocator tollgate uses, so the two differ only in what tollgate does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Plain(SocketAddr);

#[async_trait]
impl ProxyHttp for Plain {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.0, false, String::new())))
    }
}

fn main() {
    // As tollgate (src/allocator.rs): no transparent huge pages, so that memory compares.
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("plain_proxy: cannot opt out of transparent huge pages: {e}");
    }
    let args: Vec<String> = std::env::args().collect();
    let (Some(listen), Some(upstream), Some(workers)) = (args.get(1), args.get(2), args.get(3))
    else {
        eprintln!("usage: plain_proxy LISTEN_ADDR UPSTREAM_ADDR WORKERS [TLS_ADDR CERT KEY]");
        std::process::exit(2);
    };
    let (Ok(upstream), Ok(workers)) = (upstream.parse(), workers.parse()) else {
        eprintln!("plain_proxy: bad upstream address or worker count");
        std::process::exit(2);
    };
    let conf = ServerConf {
        threads: workers,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = http_proxy_service(&server.configuration, Plain(upstream));
    service.add_tcp(listen);
    if let (Some(tls), Some(cert), Some(key)) = (args.get(4), args.get(5), args.get(6)) {
        if let Err(e) = service.add_tls(tls, cert, key) {
            eprintln!("plain_proxy: cannot listen for TLS on {tls}: {e}");
            std::process::exit(2);
        }
    }
    server.add_service(service);
    server.run_forever()
}
