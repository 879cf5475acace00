//! How tollgate speaks to targets without TLS: HTTP/1.1, or HTTP/2 with prior
//! knowledge (`protocol = "h2c"`, for gRPC servers), the same for requests and for
//! health checks.

use pingora::protocols::ALPN;
use pingora::upstreams::peer::HttpPeer;

/// Concurrent streams tollgate opens on one h2c connection to a target.
const H2C_STREAMS: usize = 100;

/// Makes a plaintext peer speak HTTP/2 with prior knowledge when `h2c`, many
/// streams on one connection (Pingora's default is one); HTTP/1.1 otherwise.
pub fn speak(peer: &mut HttpPeer, h2c: bool) {
    if h2c {
        peer.options.alpn = ALPN::H2;
        peer.options.max_h2_streams = H2C_STREAMS;
    }
}
