//! The request target (RFC 9112 §3.2): which form it has, what path, query and
//! authority it names, and what the upstream receives in its place.
//!
//! Accepted: origin-form (`/path?query`), absolute-form with an `http` or `https`
//! scheme (its authority names the host), and asterisk-form (`*`) on OPTIONS.
//! Anything else is refused: authority-form is for CONNECT, which Pingora answers 405
//! before tollgate sees it. The upstream always gets origin-form: the normalized path
//! and the client's query byte for byte, never `X-Original-URL` or `X-Rewrite-URL`
//! (some frameworks route on them, behind the gateway's back).

use http::{Method, Version};
use pingora::http::RequestHeader;
use pingora::protocols::http::authority::{raw_target_authority, RawTargetAuthority};
use std::net::SocketAddr;

/// Headers that make some frameworks (IIS URL Rewrite, Symfony, Zend) serve another
/// URL than the request line names: never forwarded.
pub const URL_OVERRIDE_HEADERS: [&str; 2] = ["x-original-url", "x-rewrite-url"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Origin,
    Absolute,
    Asterisk,
}

/// The parts of an accepted target, borrowed from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    pub form: Form,
    /// Starts with `/` (absolute-form without a path gets `/`); `*` for asterisk-form.
    pub path: &'a [u8],
    pub query: Option<&'a [u8]>,
    /// The authority of an absolute-form target.
    pub authority: Option<&'a [u8]>,
}

/// Why a target is refused.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    /// Pingora's parser percent-encodes the spaces of an HTTP/1 request line with
    /// extra spaces (`GET /x  HTTP/1.1` arrives as `/x%20`), so a target that begins
    /// with `%20`, or whose path ends with it, is such a line.
    #[error("the request line has more than one space between its parts")]
    ExtraSpace,
    #[error("the request target must be a path (origin-form) or an http(s) URL")]
    NotOriginForm,
    #[error("the asterisk-form target '*' is only for OPTIONS")]
    AsteriskNotOptions,
}

/// Classifies `req`'s raw target.
pub fn parse(req: &RequestHeader) -> Result<Target<'_>, TargetError> {
    let raw = req.raw_path();
    let http1 = req.version < Version::HTTP_2;
    if http1 && raw.starts_with(b"%20") {
        return Err(TargetError::ExtraSpace);
    }
    if raw.first() == Some(&b'/') {
        let (path, query) = split_query(raw);
        if http1 && path.ends_with(b"%20") {
            return Err(TargetError::ExtraSpace);
        }
        return Ok(Target {
            form: Form::Origin,
            path,
            query,
            authority: None,
        });
    }
    if raw == b"*" {
        return match req.method == Method::OPTIONS {
            true => Ok(Target {
                form: Form::Asterisk,
                path: raw,
                query: None,
                authority: None,
            }),
            false => Err(TargetError::AsteriskNotOptions),
        };
    }
    match raw_target_authority(raw) {
        RawTargetAuthority::Absolute {
            scheme,
            authority,
            path_and_query,
        } if scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https") => {
            let (path, query) = split_query(path_and_query);
            Ok(Target {
                form: Form::Absolute,
                path: if path.is_empty() { b"/" } else { path },
                query,
                authority: Some(authority),
            })
        }
        _ => Err(TargetError::NotOriginForm),
    }
}

impl Target<'_> {
    /// Where the query starts in `raw` (the target it was parsed from): a query always
    /// runs to the target's end, so this offset finds it again without a new parse.
    pub fn query_start(&self, raw: &[u8]) -> Option<usize> {
        self.query.map(|q| raw.len() - q.len())
    }
}

fn split_query(path_and_query: &[u8]) -> (&[u8], Option<&[u8]>) {
    match path_and_query.iter().position(|&b| b == b'?') {
        Some(i) => (&path_and_query[..i], Some(&path_and_query[i + 1..])),
        None => (path_and_query, None),
    }
}

/// Points `upstream` at the normalized `path` with the client's `query`, in
/// origin-form, and drops the URL-override headers. A request that named its host
/// only in its target (HTTP/1.0 absolute-form, HTTP/2's `:authority`) gets it as
/// `Host`.
pub fn forward(
    upstream: &mut RequestHeader,
    original: &RequestHeader,
    path: &str,
    query: Option<&[u8]>,
) -> pingora::Result<()> {
    crate::base::headers::remove_present(upstream, URL_OVERRIDE_HEADERS);
    set_target(upstream, path, query)?;
    if !upstream.headers.contains_key(http::header::HOST) {
        let authority = parse(original)
            .ok()
            .and_then(|t| t.authority)
            .or_else(|| original.uri.authority().map(|a| a.as_str().as_bytes()));
        if let Some(authority) = authority {
            upstream.insert_header(http::header::HOST, authority)?;
        }
    }
    Ok(())
}

/// Gives `upstream` the target's address as `Host` when the client named no host (an
/// HTTP/1.0 request may not): the upstream request is HTTP/1.1, which must have one
/// (RFC 9112 section 3.2). Called after the forwarded headers, so that
/// `X-Forwarded-Host` does not claim a host the client never named.
pub fn host_or_target(upstream: &mut RequestHeader, target: SocketAddr) -> pingora::Result<()> {
    if upstream.headers.contains_key(http::header::HOST) {
        return Ok(());
    }
    upstream.insert_header(http::header::HOST, target.to_string())
}

/// Sets `upstream`'s target to `path?query`, unless it already is exactly that.
pub fn set_target(
    upstream: &mut RequestHeader,
    path: &str,
    query: Option<&[u8]>,
) -> pingora::Result<()> {
    let mut target = Vec::with_capacity(path.len() + query.map_or(0, |q| q.len() + 1));
    target.extend_from_slice(path.as_bytes());
    if let Some(q) = query {
        target.push(b'?');
        target.extend_from_slice(q);
    }
    if upstream.raw_path() != target.as_slice() {
        upstream.set_raw_path(&target)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(method: &str, raw: &str) -> Result<(Form, String, Option<String>), TargetError> {
        let req = RequestHeader::build(method, raw.as_bytes(), None).expect("request");
        let t = parse(&req)?;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Ok((
            t.form,
            text(t.path),
            t.authority.map(text).or(t.query.map(text)),
        ))
    }

    #[test]
    fn forms() {
        assert_eq!(
            target("GET", "/a/b?x=1&y"),
            Ok((Form::Origin, "/a/b".into(), Some("x=1&y".into())))
        );
        assert_eq!(
            target("GET", "http://Example.com:8080/admin"),
            Ok((
                Form::Absolute,
                "/admin".into(),
                Some("Example.com:8080".into())
            ))
        );
        assert_eq!(
            target("GET", "HTTPS://h"),
            Ok((Form::Absolute, "/".into(), Some("h".into())))
        );
        assert_eq!(
            target("OPTIONS", "*"),
            Ok((Form::Asterisk, "*".into(), None))
        );
        assert_eq!(target("GET", "*"), Err(TargetError::AsteriskNotOptions));
        for bad in [
            "!",
            "localhost:80",
            "ftp://h/x",
            "ws://h/x",
            "wss://h/x",
            "%20/",
            "/x%20",
        ] {
            assert!(target("GET", bad).is_err(), "{bad}");
        }
        assert_eq!(target("GET", "/x%20"), Err(TargetError::ExtraSpace));
        assert!(
            target("GET", "/x?q=a%20").is_ok(),
            "a query may end in a space"
        );
    }

    #[test]
    fn forward_keeps_the_query_and_drops_url_overrides() {
        let original = RequestHeader::build("GET", b"http://h/a%2fb?q=%41+1", None).expect("req");
        let mut up = original.clone();
        up.insert_header("x-original-url", "/admin").expect("h");
        up.insert_header("X-Rewrite-URL", "/admin").expect("h");
        let query = parse(&original).expect("target").query;
        forward(&mut up, &original, "/a/b", query).expect("forward");
        assert_eq!(up.raw_path(), b"/a/b?q=%41+1");
        assert!(!up.headers.contains_key("x-original-url"));
        assert!(!up.headers.contains_key("x-rewrite-url"));
        assert_eq!(up.headers["host"], "h");
    }
}
