//! Where credentials are read from (bearer header, named header, cookie, query
//! parameter) and how they are stripped before a request goes upstream.

use http::header::{AUTHORIZATION, COOKIE};
use http::HeaderName;
use pingora::http::RequestHeader;
use std::borrow::Cow;

/// Where an authenticator reads its credential (`from`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `Authorization: Bearer <token>`.
    Bearer,
    Header(HeaderName),
    Cookie(String),
    Query(String),
}

/// A credential given more than once (two `x-api-key` headers, a cookie or query
/// parameter repeated): which one counts would depend on who reads it, so none does.
#[derive(Debug, PartialEq, Eq)]
pub struct Repeated;

/// The credential `source` names in `req`, if present and non-empty.
pub fn extract<'a>(
    source: &Source,
    req: &'a RequestHeader,
) -> Result<Option<Cow<'a, str>>, Repeated> {
    let found = match source {
        Source::Bearer => single(req.headers.get_all(AUTHORIZATION).iter())?
            .and_then(|v| v.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| Cow::Borrowed(token.trim())),
        Source::Header(name) => single(req.headers.get_all(name).iter())?
            .and_then(|v| v.to_str().ok())
            .map(|v| Cow::Borrowed(v.trim())),
        Source::Cookie(name) => single(
            req.headers
                .get_all(COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .filter(|(k, _)| k == name)
                .map(|(_, v)| Cow::Borrowed(v)),
        )?,
        Source::Query(name) => match req.uri.query() {
            Some(query) => single(
                form_urlencoded::parse(query.as_bytes())
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| Cow::Owned(v.into_owned())),
            )?,
            None => None,
        },
    };
    Ok(found.filter(|c| !c.is_empty()))
}

/// The only item of `items`, `None` for none, `Repeated` for more.
fn single<T>(mut items: impl Iterator<Item = T>) -> Result<Option<T>, Repeated> {
    match (items.next(), items.next()) {
        (first, None) => Ok(first),
        (Some(_), Some(_)) | (None, Some(_)) => Err(Repeated),
    }
}

/// Removes what `source` reads from the request sent upstream.
pub fn strip(source: &Source, req: &mut RequestHeader) -> pingora::Result<()> {
    match source {
        Source::Bearer => {
            req.remove_header(&AUTHORIZATION);
        }
        Source::Header(name) => {
            req.remove_header(name);
        }
        Source::Cookie(name) => {
            let kept: Vec<String> = req
                .headers
                .get_all(COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .map(str::trim)
                .filter(|pair| pair.split_once('=').is_none_or(|(k, _)| k != name))
                .map(str::to_owned)
                .collect();
            req.remove_header(&COOKIE);
            if !kept.is_empty() {
                req.insert_header(COOKIE, kept.join("; "))?;
            }
        }
        Source::Query(name) => {
            // On the target's bytes: the Uri holds a lossy copy of a query that is no
            // UTF-8, and other parameters pass byte for byte.
            let raw = req.raw_path();
            let Some(at) = raw.iter().position(|&b| b == b'?') else {
                return Ok(());
            };
            let (path, query) = (&raw[..at], &raw[at + 1..]);
            let is_credential = |pair: &&[u8]| {
                form_urlencoded::parse(pair)
                    .next()
                    .is_some_and(|(k, _)| k == name.as_str())
            };
            if !query.split(|&b| b == b'&').any(|pair| is_credential(&pair)) {
                return Ok(());
            }
            let kept: Vec<&[u8]> = query
                .split(|&b| b == b'&')
                .filter(|p| !is_credential(p))
                .collect();
            let mut target = path.to_vec();
            if !kept.is_empty() {
                target.push(b'?');
                target.extend_from_slice(&kept.join(&b'&'));
            }
            req.set_raw_path(&target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", uri.as_bytes(), None).expect("request");
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).expect("header");
        }
        r
    }

    #[test]
    fn extracts_from_each_source() {
        let r = req(
            "/x?a=1&api_key=k%2B1",
            &[
                ("authorization", "Bearer  tok "),
                ("x-key", "h"),
                ("cookie", "a=1; session=s"),
            ],
        );
        let get = |s: Source| extract(&s, &r).expect("given once").map(|c| c.into_owned());
        assert_eq!(get(Source::Bearer).as_deref(), Some("tok"));
        assert_eq!(
            get(Source::Header(HeaderName::from_static("x-key"))).as_deref(),
            Some("h")
        );
        assert_eq!(get(Source::Cookie("session".into())).as_deref(), Some("s"));
        assert_eq!(get(Source::Query("api_key".into())).as_deref(), Some("k+1"));
        assert_eq!(get(Source::Cookie("nope".into())), None);
        let basic = req("/", &[("authorization", "Basic abc")]);
        assert_eq!(extract(&Source::Bearer, &basic), Ok(None));
    }

    #[test]
    fn a_credential_given_twice_is_refused() {
        let r = req(
            "/x?api_key=a&b=1&api%5Fkey=b",
            &[
                ("x-key", "a"),
                ("x-key", "b"),
                ("cookie", "session=a; x=1"),
                ("cookie", "session=b"),
            ],
        );
        for source in [
            Source::Header(HeaderName::from_static("x-key")),
            Source::Cookie("session".into()),
            Source::Query("api_key".into()),
        ] {
            assert_eq!(extract(&source, &r), Err(Repeated), "{source:?}");
        }
    }

    #[test]
    fn strips_only_the_credential() {
        let mut r = req(
            "/x?a=%20+&api%5Fkey=k&b=2",
            &[("cookie", "a=1; session=s; b=2")],
        );
        strip(&Source::Query("api_key".into()), &mut r).expect("strip");
        strip(&Source::Cookie("session".into()), &mut r).expect("strip");
        assert_eq!(
            r.uri.to_string(),
            "/x?a=%20+&b=2",
            "other parameters are kept verbatim"
        );
        assert_eq!(r.headers["cookie"], "a=1; b=2");
    }
}
