//! Request hygiene, checked before routing: what Pingora alone would forward.
//!
//! URI over `max_uri_bytes` → 414, header block over `max_header_bytes` → 431,
//! missing, repeated or malformed `Host` → 400, `.`/`..` path segments (also
//! percent-encoded) → 400, since routing on such a path would let `/public/../admin`
//! reach a route it does not name.

use http::{header::HOST, StatusCode, Version};
use pingora::http::RequestHeader;

/// Size limits from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    pub max_uri_bytes: usize,
    pub max_header_bytes: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HygieneError {
    #[error("the request target is longer than {limit} bytes")]
    UriTooLong { limit: usize },
    #[error("the request headers are larger than {limit} bytes")]
    HeadersTooLarge { limit: usize },
    #[error("an HTTP/1.1 request needs a Host header")]
    MissingHost,
    #[error("the request has more than one Host header")]
    DuplicateHost,
    #[error("the Host header is not a valid host[:port]")]
    InvalidHost,
    #[error("the path contains '.' or '..' segments")]
    DotSegments,
}

impl HygieneError {
    pub fn status(&self) -> StatusCode {
        match self {
            HygieneError::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            HygieneError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Checks `req` and returns its host for routing: lower case, without port or
/// trailing dot ("" for an HTTP/1.0 request without Host).
pub fn check(req: &RequestHeader, limits: &RequestLimits) -> Result<String, HygieneError> {
    if req.raw_path().len() > limits.max_uri_bytes {
        return Err(HygieneError::UriTooLong {
            limit: limits.max_uri_bytes,
        });
    }
    let header_bytes: usize = req
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > limits.max_header_bytes {
        return Err(HygieneError::HeadersTooLarge {
            limit: limits.max_header_bytes,
        });
    }
    let host = request_host(req)?;
    if has_dot_segments(req.uri.path()) {
        return Err(HygieneError::DotSegments);
    }
    Ok(host)
}

fn request_host(req: &RequestHeader) -> Result<String, HygieneError> {
    let mut hosts = req.headers.get_all(HOST).iter();
    let raw = match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => return Err(HygieneError::DuplicateHost),
        (Some(h), None) => h.as_bytes(),
        (None, _) => match req.uri.authority() {
            Some(a) => a.as_str().as_bytes(),
            None if req.version <= Version::HTTP_10 => return Ok(String::new()),
            None => return Err(HygieneError::MissingHost),
        },
    };
    let authority = http::uri::Authority::try_from(raw).map_err(|_| HygieneError::InvalidHost)?;
    let host = authority.host().trim_end_matches('.');
    if host.is_empty() || authority.as_str().contains('@') {
        return Err(HygieneError::InvalidHost);
    }
    Ok(host.to_ascii_lowercase())
}

fn has_dot_segments(path: &str) -> bool {
    path.split('/').any(|seg| {
        let decoded = seg.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RequestLimits = RequestLimits {
        max_uri_bytes: 32,
        max_header_bytes: 64,
    };

    fn req(path: &str, host: Option<&str>) -> RequestHeader {
        let mut r = RequestHeader::build("GET", path.as_bytes(), None).expect("request");
        if let Some(h) = host {
            r.insert_header("host", h).expect("header");
        }
        r
    }

    #[test]
    fn host_is_normalized() {
        assert_eq!(
            check(&req("/", Some("API.Example.com.:8080")), &LIMITS),
            Ok("api.example.com".into())
        );
    }

    #[test]
    fn rejections() {
        assert_eq!(
            check(&req("/", None), &LIMITS),
            Err(HygieneError::MissingHost)
        );
        assert_eq!(
            check(&req("/", Some("a b")), &LIMITS),
            Err(HygieneError::InvalidHost)
        );
        assert_eq!(
            check(&req("/", Some("u@h")), &LIMITS),
            Err(HygieneError::InvalidHost)
        );
        assert_eq!(
            check(&req(&format!("/{}", "a".repeat(40)), Some("h")), &LIMITS),
            Err(HygieneError::UriTooLong { limit: 32 })
        );
        let mut big = req("/", Some("h"));
        big.insert_header("x-big", "v".repeat(64)).expect("header");
        assert_eq!(
            check(&big, &LIMITS),
            Err(HygieneError::HeadersTooLarge { limit: 64 })
        );
        let mut two = req("/", Some("a"));
        two.append_header("host", "b").expect("header");
        assert_eq!(check(&two, &LIMITS), Err(HygieneError::DuplicateHost));
        for p in ["/a/../b", "/a/%2e%2E/b", "/./x", "/x/."] {
            assert_eq!(
                check(&req(p, Some("h")), &LIMITS),
                Err(HygieneError::DotSegments),
                "{p}"
            );
        }
        assert!(check(&req("/a..b/.x", Some("h")), &LIMITS).is_ok());
    }

    #[test]
    fn http10_without_host_is_allowed() {
        let mut r = req("/", None);
        r.set_version(Version::HTTP_10);
        assert_eq!(check(&r, &LIMITS), Ok(String::new()));
    }
}
