//! Who the client is and what the upstream is told about it.
//!
//! The client IP is the TCP peer, unless the peer is a trusted proxy: then what the
//! header `client_ip_header` names says. For `X-Forwarded-For` (the default) and
//! `Forwarded` (RFC 7239, its `for=` parameters), the right-most entry that is not
//! itself trusted: several lines are one list, in order (some proxies add a line of
//! their own rather than extend the client's), and an entry that is not an address
//! (an obfuscated or `unknown` node) stops the walk. `X-Real-IP` and
//! `CF-Connecting-IP` name one address, taken as it is (a missing, repeated or
//! malformed one leaves the peer). When the client comes from another header than
//! `X-Forwarded-For`, the upstream's `X-Forwarded-For` is that client and the peer,
//! never the list the client itself may have sent. Headers sent by an untrusted peer are replaced, never extended (and
//! removed in their `_` spellings too), so a client cannot forge its origin. The
//! routing hints frameworks build links, redirects and sometimes routes from
//! ([`ROUTING_HINTS`]) and the other headers that name a client ([`CLIENT_HEADERS`])
//! are removed from an untrusted peer's request the same way.
//! IPv4-mapped IPv6 addresses count as IPv4.

use http::HeaderMap;
use ipnet::IpNet;
use pingora::http::{KnownHeaderName, RequestHeader};
use std::net::IpAddr;

pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
pub const X_FORWARDED_HOST: &str = "x-forwarded-host";
static FOR: KnownHeaderName = KnownHeaderName::from_static(X_FORWARDED_FOR);
static PROTO: KnownHeaderName = KnownHeaderName::from_static(X_FORWARDED_PROTO);
static HOST: KnownHeaderName = KnownHeaderName::from_static(X_FORWARDED_HOST);
/// Headers a proxy in front sets to tell the upstream what the client asked for
/// before a rewrite (nginx's `$request_uri` passed on, Traefik's and Spring's
/// prefixes): believed from trusted proxies only.
pub const ROUTING_HINTS: [&str; 4] = [
    "x-original-uri",
    "x-forwarded-uri",
    "x-forwarded-prefix",
    "x-forwarded-path",
];
/// Headers that name the client to an upstream (RFC 7239, nginx's, Cloudflare's,
/// Akamai's): believed from trusted proxies only, removed from anyone else's request.
pub const CLIENT_HEADERS: [&str; 4] = [
    "forwarded",
    "x-real-ip",
    "cf-connecting-ip",
    "true-client-ip",
];
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

/// `server.client_ip_header`: where a trusted proxy names the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientIpHeader {
    #[default]
    XForwardedFor,
    Forwarded,
    XRealIp,
    CfConnectingIp,
}

/// `server.trusted_proxies`, and the header they name the client in.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ClientIpHeader,
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>, header: ClientIpHeader) -> Self {
        Self { nets, header }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// Whether the client is named elsewhere than in `X-Forwarded-For`.
    pub fn reads_other_header(&self) -> bool {
        self.header != ClientIpHeader::XForwardedFor
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let lines = |name| headers.get_all(name).into_iter().map(|v| v.as_bytes());
        match self.header {
            ClientIpHeader::XForwardedFor => {
                let hops = lines(X_FORWARDED_FOR).rev().flat_map(list_rev);
                self.walk(peer, hops.map(|hop| parse_ip(hop.trim_ascii())))
            }
            ClientIpHeader::Forwarded => {
                let hops = lines("forwarded").rev().flat_map(list_rev);
                self.walk(peer, hops.map(forwarded_for))
            }
            ClientIpHeader::XRealIp => one_address(lines("x-real-ip")).unwrap_or(peer),
            ClientIpHeader::CfConnectingIp => {
                one_address(lines("cf-connecting-ip")).unwrap_or(peer)
            }
        }
    }

    /// From `client`, a trusted proxy, back through `hops` (right to left) to the
    /// first address not trusted; an entry that is not an address stops there.
    fn walk(&self, mut client: IpAddr, hops: impl Iterator<Item = Option<IpAddr>>) -> IpAddr {
        for hop in hops {
            let Some(ip) = hop else { break };
            client = ip.to_canonical();
            if !self.contains(client) {
                break;
            }
        }
        client
    }
}

/// The entries of one comma-separated header line, right to left.
fn list_rev(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.rsplit(|&b| b == b',')
}

fn parse_ip(text: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// The address of one `Forwarded` element's `for=` (RFC 7239 §6: `1.2.3.4`,
/// `"1.2.3.4:80"`, `"[2001:db8::1]:80"`); `None` for an obfuscated or `unknown` node
/// or an element without `for`.
fn forwarded_for(element: &[u8]) -> Option<IpAddr> {
    let value = element.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let (name, value) = pair.split_at(pair.iter().position(|&b| b == b'=')?);
        name.eq_ignore_ascii_case(b"for").then_some(&value[1..])
    })?;
    let value = value.trim_ascii();
    let value = value
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(value);
    match value.strip_prefix(b"[") {
        Some(v6) => parse_ip(&v6[..v6.iter().position(|&b| b == b']')?]),
        None => match value.iter().filter(|&&b| b == b':').count() {
            1 => parse_ip(value.split(|&b| b == b':').next()?),
            _ => parse_ip(value),
        },
    }
}

/// The address of a header that names one (`X-Real-IP`): exactly one line, one address.
fn one_address<'a>(mut lines: impl Iterator<Item = &'a [u8]>) -> Option<IpAddr> {
    match (lines.next(), lines.next()) {
        (Some(line), None) => parse_ip(line.trim_ascii()).map(|ip| ip.to_canonical()),
        _ => None,
    }
}

/// The connection facts the forwarded headers are made of.
pub struct Forwarded {
    pub peer: IpAddr,
    pub peer_trusted: bool,
    /// The client, when a trusted peer named it in another header than
    /// `X-Forwarded-For` (that header then says this client and the peer).
    pub named_client: Option<IpAddr>,
    /// `http` or `https`.
    pub proto: &'static str,
}

impl Forwarded {
    /// Sets `X-Forwarded-For`, `-Proto` and `-Host` on the upstream request, and
    /// removes an untrusted peer's routing hints.
    pub fn apply(&self, req: &mut RequestHeader) -> pingora::Result<()> {
        let mut xff: Vec<u8> = Vec::with_capacity(16);
        if let (true, Some(client)) = (self.peer_trusted, self.named_client) {
            crate::base::headers::push_ip(&mut xff, client);
            xff.extend_from_slice(b", ");
        } else if self.peer_trusted {
            for line in req.headers.get_all(X_FORWARDED_FOR) {
                xff.extend_from_slice(line.as_bytes());
                xff.extend_from_slice(b", ");
            }
        } else {
            // Nothing of an untrusted client's is kept, in any spelling.
            let forwarded = [X_FORWARDED_FOR, X_FORWARDED_PROTO, X_FORWARDED_HOST];
            let names = forwarded
                .into_iter()
                .chain(ROUTING_HINTS)
                .chain(CLIENT_HEADERS);
            crate::base::headers::remove_present(req, names);
        }
        crate::base::headers::push_ip(&mut xff, self.peer);
        req.insert_known_header(&FOR, xff)?;
        if !(self.peer_trusted && req.headers.contains_key(X_FORWARDED_PROTO)) {
            req.insert_known_header(&PROTO, http::HeaderValue::from_static(self.proto))?;
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

    fn headers(name: &'static str, lines: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            let value = http::HeaderValue::from_bytes(line).expect("value");
            headers.append(name, value);
        }
        headers
    }

    fn client(t: &TrustedProxies, peer: &str, lines: &[&[u8]]) -> IpAddr {
        t.client_ip(ip(peer), &headers(X_FORWARDED_FOR, lines))
    }

    fn trusting(header: ClientIpHeader) -> TrustedProxies {
        TrustedProxies::new(vec!["10.0.0.0/8".parse().expect("net")], header)
    }

    #[test]
    fn other_headers_name_the_client_when_asked() {
        let t = trusting(ClientIpHeader::Forwarded);
        let from = |lines: &[&[u8]]| t.client_ip(ip("10.0.0.1"), &headers("forwarded", lines));
        assert_eq!(from(&[b"for=203.0.113.9"]), ip("203.0.113.9"));
        assert_eq!(
            from(&[b"for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.2"]),
            ip("2001:db8::7")
        );
        assert_eq!(
            from(&[b"for=198.51.100.1, For=\"203.0.113.9:80\""]),
            ip("203.0.113.9")
        );
        assert_eq!(
            from(&[b"for=_hidden, for=10.0.0.2"]),
            ip("10.0.0.2"),
            "obfuscated stops"
        );
        assert_eq!(from(&[]), ip("10.0.0.1"));
        let spoofed = headers(X_FORWARDED_FOR, &[b"1.1.1.1"]);
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), &spoofed),
            ip("10.0.0.1"),
            "XFF is not read"
        );
        let t = trusting(ClientIpHeader::XRealIp);
        let real = |lines: &[&[u8]], peer| t.client_ip(ip(peer), &headers("x-real-ip", lines));
        assert_eq!(real(&[b" 203.0.113.9 "], "10.0.0.1"), ip("203.0.113.9"));
        assert_eq!(
            real(&[b"203.0.113.9"], "192.0.2.1"),
            ip("192.0.2.1"),
            "untrusted peer"
        );
        assert_eq!(real(&[b"a", b"b"], "10.0.0.1"), ip("10.0.0.1"));
        assert_eq!(real(&[b"1.2.3.4, 5.6.7.8"], "10.0.0.1"), ip("10.0.0.1"));
        let t = trusting(ClientIpHeader::CfConnectingIp);
        let cf = headers("cf-connecting-ip", &[b"2001:db8::1"]);
        assert_eq!(t.client_ip(ip("10.0.0.1"), &cf), ip("2001:db8::1"));
    }

    #[test]
    fn client_ip_only_believes_trusted_peers() {
        let t = trusting(ClientIpHeader::XForwardedFor);
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
        let t = trusting(ClientIpHeader::XForwardedFor);
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
            named_client: None,
            proto: "http",
        };
        fwd.apply(&mut req).expect("apply");
        assert_eq!(req.headers[X_FORWARDED_FOR], "1.2.3.4");
        assert_eq!(req.headers[X_FORWARDED_PROTO], "http");
        assert_eq!(req.headers[X_FORWARDED_HOST], "api.example.com");
        let trusted = Forwarded {
            peer: ip("10.0.0.1"),
            peer_trusted: true,
            named_client: None,
            proto: "http",
        };
        let mut req2 = RequestHeader::build("GET", b"/", None).expect("request");
        req2.insert_header(X_FORWARDED_FOR, "9.9.9.9").expect("h");
        req2.append_header(X_FORWARDED_FOR, "8.8.8.8").expect("h");
        trusted.apply(&mut req2).expect("apply");
        assert_eq!(req2.headers[X_FORWARDED_FOR], "9.9.9.9, 8.8.8.8, 10.0.0.1");
        assert_eq!(req2.headers.get_all(X_FORWARDED_FOR).iter().count(), 1);
        let named = Forwarded {
            named_client: Some(ip("203.0.113.9")),
            ..trusted
        };
        let mut req3 = RequestHeader::build("GET", b"/", None).expect("request");
        req3.insert_header(X_FORWARDED_FOR, "6.6.6.6").expect("h");
        named.apply(&mut req3).expect("apply");
        assert_eq!(req3.headers[X_FORWARDED_FOR], "203.0.113.9, 10.0.0.1");
    }

    #[test]
    fn routing_hints_and_client_headers_are_believed_from_trusted_proxies_only() {
        let hinted = || {
            let mut req = RequestHeader::build("GET", b"/", None).expect("request");
            for name in [
                "X-Original-URI",
                "x-forwarded-uri",
                "X_Forwarded_Prefix",
                "x_forwarded_path",
                "Forwarded",
                "X-Real-IP",
                "cf_connecting_ip",
            ] {
                req.append_header(name.to_owned(), "/admin").expect("h");
            }
            req
        };
        let mut untrusted = hinted();
        let fwd = |peer_trusted| Forwarded {
            peer: ip("10.0.0.1"),
            peer_trusted,
            named_client: None,
            proto: "http",
        };
        fwd(false).apply(&mut untrusted).expect("apply");
        for name in [
            "x-original-uri",
            "x-forwarded-uri",
            "x_forwarded_prefix",
            "x_forwarded_path",
            "forwarded",
            "x-real-ip",
            "cf_connecting_ip",
        ] {
            assert!(!untrusted.headers.contains_key(name), "{name} kept");
        }
        let mut trusted = hinted();
        fwd(true).apply(&mut trusted).expect("apply");
        assert_eq!(trusted.headers["x-forwarded-uri"], "/admin");
    }
}
