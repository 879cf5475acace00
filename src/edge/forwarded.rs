//! Who the client is and what the upstream is told about it.
//!
//! The client IP is the TCP peer, unless the peer is a trusted proxy: then the
//! right-most `X-Forwarded-For` entry that is not itself trusted. Headers sent by an
//! untrusted peer are replaced, never extended, so a client cannot forge its origin.

use ipnet::IpNet;
use pingora::http::RequestHeader;
use std::net::IpAddr;

pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
pub const X_FORWARDED_HOST: &str = "x-forwarded-host";

/// `server.trusted_proxies`.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` carrying `xff`.
    pub fn client_ip(&self, peer: IpAddr, xff: Option<&str>) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in xff.unwrap_or("").rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.contains(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }
}

/// The connection facts the forwarded headers are made of.
pub struct Forwarded<'a> {
    pub peer: IpAddr,
    pub peer_trusted: bool,
    pub proto: &'a str,
}

impl Forwarded<'_> {
    /// Sets `X-Forwarded-For`, `-Proto` and `-Host` on the upstream request.
    pub fn apply(&self, req: &mut RequestHeader) -> pingora::Result<()> {
        let peer = self.peer.to_string();
        let xff = match req
            .headers
            .get(X_FORWARDED_FOR)
            .and_then(|v| v.to_str().ok())
        {
            Some(chain) if self.peer_trusted => format!("{chain}, {peer}"),
            _ => peer,
        };
        req.insert_header(X_FORWARDED_FOR, xff)?;
        if !(self.peer_trusted && req.headers.contains_key(X_FORWARDED_PROTO)) {
            req.insert_header(X_FORWARDED_PROTO, self.proto)?;
        }
        if !(self.peer_trusted && req.headers.contains_key(X_FORWARDED_HOST)) {
            match req.headers.get(http::header::HOST).cloned() {
                Some(host) => req.insert_header(X_FORWARDED_HOST, host)?,
                None => {
                    req.remove_header(X_FORWARDED_HOST);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn client_ip_only_believes_trusted_peers() {
        let t = TrustedProxies::new(vec!["10.0.0.0/8".parse().expect("net")]);
        assert_eq!(t.client_ip(ip("1.2.3.4"), Some("9.9.9.9")), ip("1.2.3.4"));
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), Some("9.9.9.9, 10.0.0.2")),
            ip("9.9.9.9")
        );
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), Some("8.8.8.8, 9.9.9.9")),
            ip("9.9.9.9")
        );
        assert_eq!(t.client_ip(ip("10.0.0.1"), Some("junk")), ip("10.0.0.1"));
        assert_eq!(t.client_ip(ip("10.0.0.1"), None), ip("10.0.0.1"));
    }

    #[test]
    fn untrusted_peer_headers_are_replaced() {
        let mut req = RequestHeader::build("GET", b"/", None).expect("request");
        req.insert_header("host", "api.example.com").expect("h");
        req.insert_header(X_FORWARDED_FOR, "6.6.6.6").expect("h");
        req.insert_header(X_FORWARDED_PROTO, "https").expect("h");
        let fwd = Forwarded {
            peer: ip("1.2.3.4"),
            peer_trusted: false,
            proto: "http",
        };
        fwd.apply(&mut req).expect("apply");
        assert_eq!(req.headers[X_FORWARDED_FOR], "1.2.3.4");
        assert_eq!(req.headers[X_FORWARDED_PROTO], "http");
        assert_eq!(req.headers[X_FORWARDED_HOST], "api.example.com");
        let trusted = Forwarded {
            peer: ip("10.0.0.1"),
            peer_trusted: true,
            proto: "http",
        };
        let mut req2 = RequestHeader::build("GET", b"/", None).expect("request");
        req2.insert_header(X_FORWARDED_FOR, "9.9.9.9").expect("h");
        trusted.apply(&mut req2).expect("apply");
        assert_eq!(req2.headers[X_FORWARDED_FOR], "9.9.9.9, 10.0.0.1");
    }
}
