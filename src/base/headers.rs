//! Header edits on the hot path, cheaper than Pingora's by-name calls: removing a
//! header by name hashes and parses that name even when the request does not carry
//! it, which is nearly always.
//!
//! A header the gateway removes goes in every spelling an upstream may read as it:
//! CGI-style upstreams (PHP, IIS, WSGI and Rack servers, which expose headers as
//! `HTTP_*` variables) read `X_Original_URL` as `X-Original-URL`.

use http::HeaderName;
use pingora::http::RequestHeader;

/// Removes every header of `req` named as one of `names` (lowercase, with `-`), also
/// when spelled with `_` in place of a `-`. Allocates nothing when none is present
/// (`names` is walked again for each header, not collected).
pub fn remove_present<'a, I>(req: &mut RequestHeader, names: I)
where
    I: IntoIterator<Item = &'a str> + Clone,
{
    let present: Vec<HeaderName> = req
        .headers
        .keys()
        .filter(|k| names.clone().into_iter().any(|n| cgi_same(k.as_str(), n)))
        .cloned()
        .collect();
    for name in present {
        req.remove_header(&name);
    }
}

/// Whether a CGI-style server reads header `carried` as `name`: equal, but for `_`
/// where `name` has `-`.
fn cgi_same(carried: &str, name: &str) -> bool {
    carried.len() == name.len()
        && carried
            .bytes()
            .zip(name.bytes())
            .all(|(c, n)| c == n || (c == b'_' && n == b'-'))
}

/// Appends `ip` in its text form to `out` (IPv4 without the formatting machinery:
/// every forwarded request writes one).
pub fn push_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    let std::net::IpAddr::V4(v4) = ip else {
        out.extend_from_slice(ip.to_string().as_bytes());
        return;
    };
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        if octet >= 100 {
            out.push(b'0' + octet / 100);
        }
        if octet >= 10 {
            out.push(b'0' + octet / 10 % 10);
        }
        out.push(b'0' + octet % 10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_are_written_as_their_text_form() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.100.255",
            "9.99.199.250",
            "::1",
            "2001:db8::7",
        ] {
            let mut out = b"x, ".to_vec();
            push_ip(&mut out, ip.parse().expect("ip"));
            assert_eq!(out, format!("x, {ip}").into_bytes());
        }
    }

    #[test]
    fn only_the_named_headers_go_and_all_their_lines() {
        let mut req = RequestHeader::build("GET", b"/", None).expect("request");
        req.append_header("X-Original-Url", "/admin")
            .expect("header");
        req.append_header("x-original-url", "/other")
            .expect("header");
        req.append_header("X_Rewrite_URL", "/admin")
            .expect("header");
        req.append_header("x_original-url", "/admin")
            .expect("header");
        req.append_header("x-original_urlx", "/kept")
            .expect("header");
        req.append_header("accept", "*/*").expect("header");
        remove_present(&mut req, ["x-original-url", "x-rewrite-url"]);
        let mut left: Vec<&str> = req.headers.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "x-original_urlx"]);
    }
}
