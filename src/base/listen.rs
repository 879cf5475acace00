//! Which bound listener address a connection's local address belongs to: the same
//! address, or any address on its port when the listener is bound to a wildcard
//! (`0.0.0.0`, `[::]`). Pure; never fails.

use std::net::SocketAddr;

/// Whether a listener bound to `bound` serves a connection whose local address is
/// `local`.
pub fn serves(bound: &SocketAddr, local: &SocketAddr) -> bool {
    bound == local || (bound.port() == local.port() && bound.ip().is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn exact_or_wildcard_on_the_port() {
        assert!(serves(&addr("127.0.0.1:80"), &addr("127.0.0.1:80")));
        assert!(serves(&addr("0.0.0.0:80"), &addr("10.0.0.1:80")));
        assert!(serves(&addr("[::]:80"), &addr("[2001:db8::1]:80")));
        assert!(!serves(&addr("127.0.0.1:80"), &addr("127.0.0.2:80")));
        assert!(!serves(&addr("0.0.0.0:80"), &addr("10.0.0.1:81")));
    }
}
