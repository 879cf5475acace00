//! Who the client is and what the upstream is told about it.
//!
//! The client IP is the TCP peer, unless the peer is a trusted proxy: then the
//! right-most `X-Forwarded-For` entry that is not itself trusted. Several
//! `X-Forwarded-For` lines are one list, in order (some proxies add a line of their
//! own rather than extend the client's), and an entry that is not an address stops
//! the walk. Headers sent by an untrusted peer are replaced, never extended (and
//! removed in their `_` spellings too), so a client cannot forge its origin. IPv4-mapped IPv6 addresses count as IPv4.

use ipnet::IpNet;
use pingora::http::{KnownHeaderName, RequestHeader};
use std::net::IpAddr;

pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
pub const X_FORWARDED_HOST: &str = "x-forwarded-host";
static FOR: KnownHeaderName = KnownHeaderName::from_static(X_FORWARDED_FOR);
static PROTO: KnownHeaderName = KnownHeaderName::from_static(X_FORWARDED_PROTO);
static HOST: KnownHeaderName = KnownHeaderName::from_static(X_FORWARDED_HOST);
/// How many headers [`Forwarded::apply`] may add (for `reserve_headers`).
pub const ADDED: usize = 3;

/// The network one client holds: an IPv4 address itself, an IPv6 address's /64 (one
/// host usually gets a whole /64, so a limit or ban per /128 is none). IPv4-mapped
/// IPv6 addresses count as IPv4.
pub fn client_network(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// `server.trusted_proxies`.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` whose `X-Forwarded-For` lines
    /// are `xff`, in the order they came.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        xff: impl DoubleEndedIterator<Item = &'a [u8]>,
    ) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        let hops = xff.rev().flat_map(|line| line.rsplit(|&b| b == b','));
        for hop in hops {
            let ip = std::str::from_utf8(hop)
                .ok()
                .and_then(|h| h.trim().parse::<IpAddr>().ok());
            match ip {
                Some(ip) => {
                    client = ip.to_canonical();
                    if !self.contains(client) {
                        break;
                    }
                }
                None => break,
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
        let mut xff: Vec<u8> = Vec::with_capacity(16);
        if self.peer_trusted {
            for line in req.headers.get_all(X_FORWARDED_FOR) {
                xff.extend_from_slice(line.as_bytes());
                xff.extend_from_slice(b", ");
            }
        } else {
            // Nothing of an untrusted client's is kept, in any spelling.
            crate::base::headers::remove_present(
                req,
                [X_FORWARDED_FOR, X_FORWARDED_PROTO, X_FORWARDED_HOST],
            );
        }
        crate::base::headers::push_ip(&mut xff, self.peer);
        req.insert_known_header(&FOR, xff)?;
        if !(self.peer_trusted && req.headers.contains_key(X_FORWARDED_PROTO)) {
            req.insert_known_header(&PROTO, self.proto)?;
        }
        if !(self.peer_trusted && req.headers.contains_key(X_FORWARDED_HOST)) {
            match req.headers.get(http::header::HOST).cloned() {
                Some(host) => req.insert_known_header(&HOST, host)?,
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

    fn client(t: &TrustedProxies, peer: &str, lines: &[&[u8]]) -> IpAddr {
        t.client_ip(ip(peer), lines.iter().copied())
    }

    #[test]
    fn client_ip_only_believes_trusted_peers() {
        let t = TrustedProxies::new(vec!["10.0.0.0/8".parse().expect("net")]);
        assert_eq!(client(&t, "1.2.3.4", &[b"9.9.9.9"]), ip("1.2.3.4"));
        assert_eq!(
            client(&t, "10.0.0.1", &[b"9.9.9.9, 10.0.0.2"]),
            ip("9.9.9.9")
        );
        assert_eq!(
            client(&t, "10.0.0.1", &[b"8.8.8.8, 9.9.9.9"]),
            ip("9.9.9.9")
        );
        assert_eq!(client(&t, "10.0.0.1", &[b"junk"]), ip("10.0.0.1"));
        assert_eq!(client(&t, "10.0.0.1", &[]), ip("10.0.0.1"));
        assert_eq!(
            client(&t, "::ffff:10.0.0.1", &[b"::ffff:9.9.9.9"]),
            ip("9.9.9.9"),
            "IPv4-mapped addresses are IPv4"
        );
    }

    #[test]
    fn several_lines_are_one_list_and_garbage_on_the_left_does_not_matter() {
        let t = TrustedProxies::new(vec!["10.0.0.0/8".parse().expect("net")]);
        // A proxy that adds its own line after the client's.
        assert_eq!(
            client(&t, "10.0.0.1", &[b"10.1.2.3", b"203.0.113.9"]),
            ip("203.0.113.9")
        );
        // A client's bytes that are no text stop nothing to their right.
        assert_eq!(
            client(&t, "10.0.0.1", &[b"\xff\xfe, 203.0.113.9"]),
            ip("203.0.113.9")
        );
        assert_eq!(
            client(&t, "10.0.0.1", &[b"\xff", b"203.0.113.9, 10.0.0.2"]),
            ip("203.0.113.9")
        );
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
        req2.append_header(X_FORWARDED_FOR, "8.8.8.8").expect("h");
        trusted.apply(&mut req2).expect("apply");
        assert_eq!(req2.headers[X_FORWARDED_FOR], "9.9.9.9, 8.8.8.8, 10.0.0.1");
        assert_eq!(req2.headers.get_all(X_FORWARDED_FOR).iter().count(), 1);
    }
}
