//! Header edits on the hot path, cheaper than Pingora's by-name calls: removing a
//! header by name hashes and parses that name even when the request does not carry
//! it, which is nearly always.

use pingora::http::RequestHeader;

/// Removes every header in `names` (lowercase) that `req` carries, looking at the
/// request's own header names first.
pub fn remove_present(req: &mut RequestHeader, names: &[&'static str]) {
    let carried = |name: &&str| req.headers.keys().any(|k| k.as_str() == *name);
    let present: Vec<&'static str> = names.iter().copied().filter(carried).collect();
    for name in present {
        req.remove_header(name);
    }
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
        req.append_header("accept", "*/*").expect("header");
        remove_present(&mut req, &["x-original-url", "x-rewrite-url"]);
        assert!(!req.headers.contains_key("x-original-url"));
        assert_eq!(req.headers.len(), 1);
    }
}
