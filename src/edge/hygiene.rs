//! Request hygiene, checked before anything reads the request: what Pingora alone
//! would forward.
//!
//! URI over `max_uri_bytes` → 414, header block over `max_header_bytes` → 431; a
//! missing, repeated or malformed `Host` (a port that is not a number included), two
//! `Authorization` or two `Content-Type` headers (which one counts is each reader's
//! guess: the gateway may check one credential or media type and the upstream act on
//! the other), both `Content-Length` and `Transfer-Encoding` (where the body ends is
//! then each reader's guess: request smuggling; RFC 9112 §6.3 lets a server refuse
//! it, as nginx does), or a request target that is not a path, an http(s) URL
//! or `*` on OPTIONS (see `target`) → 400. Pure checks, no I/O; the host they return
//! is what routing matches.
//!
//! Headers named with `_` ([`underscored`], `underscore_headers`): CGI-style
//! upstreams (PHP, WSGI, Rack, IIS) read `X_User` and `X-User` as one variable, so a
//! client could send a header the gateway does not see under the name it checks or
//! sets. Dropped by default, as nginx does; kept or refused with 400 if asked.

use http::header::{
    HeaderName, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING,
};
use http::{StatusCode, Version};
use pingora::http::RequestHeader;

use super::target::{self, Target, TargetError};
use crate::base::Reply;

/// Size limits and the header-name rule from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    pub max_uri_bytes: usize,
    pub max_header_bytes: usize,
    pub underscore_headers: Underscores,
}

/// What happens to request headers named with `_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Underscores {
    Pass,
    Drop,
    Reject,
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
    #[error("the request has more than one {0} header")]
    Repeated(&'static str),
    #[error("the request has both Content-Length and Transfer-Encoding")]
    LengthAndTransferEncoding,
    #[error("the request header name {0:?} has '_' (spell it with '-')")]
    Underscored(String),
    #[error(transparent)]
    Target(#[from] TargetError),
}

impl From<HygieneError> for Reply {
    /// A malformed request closes its connection: its framing cannot be trusted.
    fn from(e: HygieneError) -> Self {
        let status = match e {
            HygieneError::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            HygieneError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Reply::new(status, e.to_string()).closing()
    }
}

/// What a sane request names: its host for routing (lower case, without port or
/// trailing dot; "" for an HTTP/1.0 request without one) and its target.
#[derive(Debug, PartialEq, Eq)]
pub struct Checked<'a> {
    pub host: String,
    pub target: Target<'a>,
}

/// Headers a request may carry once at most (besides `Host`), as errors name them.
const SINGLE_HEADERS: [(HeaderName, &str); 2] = [
    (AUTHORIZATION, "Authorization"),
    (CONTENT_TYPE, "Content-Type"),
];

/// Checks `req` against `limits` and the rules above.
pub fn check<'a>(
    req: &'a RequestHeader,
    limits: &RequestLimits,
) -> Result<Checked<'a>, HygieneError> {
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
    if req.headers.contains_key(TRANSFER_ENCODING) && req.headers.contains_key(CONTENT_LENGTH) {
        return Err(HygieneError::LengthAndTransferEncoding);
    }
    for (name, shown) in SINGLE_HEADERS {
        if req.headers.get_all(name).iter().nth(1).is_some() {
            return Err(HygieneError::Repeated(shown));
        }
    }
    let target = target::parse(req)?;
    let host = request_host(req, target.authority)?;
    Ok(Checked { host, target })
}

/// Applies `mode` to the headers of `req` named with `_`: removes them (`Drop`) or
/// refuses the request (`Reject`).
pub fn underscored(req: &mut RequestHeader, mode: Underscores) -> Result<(), HygieneError> {
    if mode == Underscores::Pass {
        return Ok(());
    }
    let has_underscore = |name: &&HeaderName| name.as_str().contains('_');
    let Some(first) = req.headers.keys().find(has_underscore) else {
        return Ok(());
    };
    if mode == Underscores::Reject {
        return Err(HygieneError::Underscored(first.as_str().to_owned()));
    }
    let names: Vec<HeaderName> = req.headers.keys().filter(has_underscore).cloned().collect();
    for name in names {
        req.remove_header(&name);
    }
    Ok(())
}

/// The host from `Host` (required in HTTP/1.1, RFC 9112 §3.2, even with an
/// absolute-form target, whose authority Pingora has checked it against), else from
/// an HTTP/1.0 absolute-form target or HTTP/2's `:authority`.
fn request_host(
    req: &RequestHeader,
    target_authority: Option<&[u8]>,
) -> Result<String, HygieneError> {
    let mut hosts = req.headers.get_all(HOST).iter();
    let raw = match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => return Err(HygieneError::DuplicateHost),
        (Some(h), None) => h.as_bytes(),
        (None, _) if req.version == Version::HTTP_11 => return Err(HygieneError::MissingHost),
        (None, _) => {
            match target_authority.or(req.uri.authority().map(|a| a.as_str().as_bytes())) {
                Some(a) => a,
                None if req.version <= Version::HTTP_10 => return Ok(String::new()),
                None => return Err(HygieneError::MissingHost),
            }
        }
    };
    let authority = http::uri::Authority::try_from(raw).map_err(|_| HygieneError::InvalidHost)?;
    let host = authority.host().trim_end_matches('.');
    if host.is_empty() || authority.as_str().contains('@') || !valid_port(authority.as_str()) {
        return Err(HygieneError::InvalidHost);
    }
    Ok(host.to_ascii_lowercase())
}

/// No port, or 1 to 5 digits up to 65535 after the last `:` outside `[...]`.
fn valid_port(authority: &str) -> bool {
    let after_host = match authority.rfind(']') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    match after_host.rsplit_once(':') {
        None => true,
        Some((_, port)) => {
            (1..=5).contains(&port.len())
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u32>().is_ok_and(|p| p <= 65535)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RequestLimits = RequestLimits {
        max_uri_bytes: 32,
        max_header_bytes: 64,
        underscore_headers: Underscores::Drop,
    };

    #[test]
    fn headers_named_with_underscores_are_dropped_or_refused() {
        let sent = || {
            let mut r = req("/", Some("h"));
            r.append_header("X_User", "admin").expect("h");
            r.append_header("x_user", "root").expect("h");
            r.append_header("x-user", "alice").expect("h");
            r
        };
        let mut kept = sent();
        underscored(&mut kept, Underscores::Pass).expect("pass");
        assert_eq!(kept.headers.len(), 4);
        let mut dropped = sent();
        underscored(&mut dropped, Underscores::Drop).expect("drop");
        assert!(!dropped.headers.contains_key("x_user"));
        assert_eq!(dropped.headers["x-user"], "alice");
        let mut refused = sent();
        assert_eq!(
            underscored(&mut refused, Underscores::Reject),
            Err(HygieneError::Underscored("x_user".into()))
        );
    }

    fn req(path: &str, host: Option<&str>) -> RequestHeader {
        let mut r = RequestHeader::build("GET", path.as_bytes(), None).expect("request");
        if let Some(h) = host {
            r.insert_header("host", h).expect("header");
        }
        r
    }

    #[test]
    fn host_is_normalized() {
        let r = req("/", Some("API.Example.com.:8080"));
        assert_eq!(host(&r), Ok("api.example.com".into()));
        let r = req("/", Some("[::1]:80"));
        assert_eq!(host(&r), Ok("[::1]".into()));
    }

    fn host(r: &RequestHeader) -> Result<String, HygieneError> {
        check(r, &LIMITS).map(|c| c.host)
    }

    #[test]
    fn rejections() {
        assert_eq!(host(&req("/", None)), Err(HygieneError::MissingHost));
        for bad in [
            "a b", "u@h", "h:abc", "h:", "h:123456", "h:65536", "[::1]:x",
        ] {
            assert_eq!(
                host(&req("/", Some(bad))),
                Err(HygieneError::InvalidHost),
                "{bad}"
            );
        }
        assert_eq!(
            host(&req(&format!("/{}", "a".repeat(40)), Some("h"))),
            Err(HygieneError::UriTooLong { limit: 32 })
        );
        let mut two = req("/", Some("h"));
        two.append_header("authorization", "Bearer a")
            .expect("header");
        assert!(host(&two).is_ok());
        two.append_header("authorization", "Bearer b")
            .expect("header");
        assert_eq!(host(&two), Err(HygieneError::Repeated("Authorization")));
        let mut types = req("/", Some("a"));
        types
            .append_header("content-type", "application/json")
            .expect("h");
        types.append_header("content-type", "c/d").expect("h");
        assert_eq!(host(&types), Err(HygieneError::Repeated("Content-Type")));
        assert_eq!(
            host(&req("http://Abs.example/x", None)),
            Err(HygieneError::MissingHost),
            "HTTP/1.1 needs Host, absolute-form too"
        );
        let mut old = req("http://Abs.example/x", None);
        old.set_version(Version::HTTP_10);
        assert_eq!(
            host(&old),
            Ok("abs.example".into()),
            "the target names the host"
        );
        let mut big = req("/", Some("h"));
        big.insert_header("x-big", "v".repeat(64)).expect("header");
        assert_eq!(host(&big), Err(HygieneError::HeadersTooLarge { limit: 64 }));
        let mut two = req("/", Some("a"));
        two.append_header("host", "b").expect("header");
        assert_eq!(host(&two), Err(HygieneError::DuplicateHost));
    }

    #[test]
    fn http10_without_host_is_allowed() {
        let mut r = req("/", None);
        r.set_version(Version::HTTP_10);
        assert_eq!(host(&r), Ok(String::new()));
    }
}
