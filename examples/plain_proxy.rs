//! The reference for `load-tests/run.sh`: Pingora's plain proxy, the smallest
//! `ProxyHttp` that forwards every request to one upstream, with nothing of
//! tollgate in it. Comparing with it separates Pingora's cost from tollgate's.
//!
//! Usage: plain_proxy LISTEN_ADDR UPSTREAM_ADDR WORKERS

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;
use std::net::SocketAddr;

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
    let args: Vec<String> = std::env::args().collect();
    let (Some(listen), Some(upstream), Some(workers)) = (args.get(1), args.get(2), args.get(3))
    else {
        eprintln!("usage: plain_proxy LISTEN_ADDR UPSTREAM_ADDR WORKERS");
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
    server.add_service(service);
    server.run_forever()
}
