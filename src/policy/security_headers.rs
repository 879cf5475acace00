//! `security_headers` of a route (on by default) and its `hsts`: the response headers
//! that keep browsers from sniffing, framing and leaking, on every response of the
//! route: `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`,
//! `X-Frame-Options: DENY`, `Cache-Control: no-store` on tollgate's own error replies,
//! and `Strict-Transport-Security` on responses sent over TLS (never over plain HTTP,
//! RFC 6797 §7.2). A header the upstream set is kept. Requests no route took get the
//! same headers without HSTS.

use crate::config::location::{Problems, TomlPath};
use crate::config::raw::HstsSection;
use crate::stage::{Cx, Declared, Hooks, RequestView, Stage, StagesBuilder};
use http::{header, HeaderValue};
use pingora::http::{KnownHeaderName, ResponseHeader};

static ALWAYS: [(KnownHeaderName, &str); 3] = [
    (
        KnownHeaderName::from_static("x-content-type-options"),
        "nosniff",
    ),
    (
        KnownHeaderName::from_static("referrer-policy"),
        "no-referrer",
    ),
    (KnownHeaderName::from_static("x-frame-options"), "DENY"),
];
static HSTS: KnownHeaderName = KnownHeaderName::from_static("strict-transport-security");

struct SecurityHeaders {
    hsts: Option<HeaderValue>,
}

/// Installs the headers when `enabled`; `hsts` without them is a problem.
pub fn install(
    enabled: bool,
    hsts: Option<&HstsSection>,
    at: &TomlPath,
    problems: &mut Problems,
    stages: &mut StagesBuilder,
) {
    match (enabled, hsts) {
        (true, hsts) => stages.add(SecurityHeaders {
            hsts: hsts.map(hsts_value),
        }),
        (false, Some(_)) => problems.push((
            at.key("hsts"),
            "is one of the security headers, which security_headers = false turns off".into(),
        )),
        (false, None) => {}
    }
}

/// The defaults, for replies to requests no route took (404, 400, ...).
pub fn unrouted(stages: &mut StagesBuilder) {
    stages.add(SecurityHeaders { hsts: None });
}

fn hsts_value(h: &HstsSection) -> HeaderValue {
    let mut value = format!("max-age={}", h.max_age.as_secs());
    if h.include_subdomains {
        value.push_str("; includeSubDomains");
    }
    if h.preload {
        value.push_str("; preload");
    }
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("max-age=0"))
}

impl Stage for SecurityHeaders {
    fn name(&self) -> &'static str {
        "security_headers"
    }

    fn declares(&self) -> Declared {
        Declared {
            response_headers: ALWAYS.len() + usize::from(self.hsts.is_some()),
            ..Declared::hooks(Hooks::RESPONSE)
        }
    }

    fn on_response(&self, cx: &mut Cx<'_>, resp: &mut ResponseHeader) -> pingora::Result<()> {
        self.set(&cx.view(), resp)
    }
}

impl SecurityHeaders {
    /// The headers of one response, the upstream's own values kept.
    fn set(&self, view: &RequestView<'_>, resp: &mut ResponseHeader) -> pingora::Result<()> {
        for (name, value) in &ALWAYS {
            keep_or_set(resp, name, HeaderValue::from_static(value))?;
        }
        if view.own_reply
            && resp.status.as_u16() >= 400
            && !resp.headers.contains_key(header::CACHE_CONTROL)
        {
            resp.insert_header(header::CACHE_CONTROL, "no-store")?;
        }
        if let Some(hsts) = self.hsts.as_ref().filter(|_| view.secure) {
            keep_or_set(resp, &HSTS, hsts.clone())?;
        }
        Ok(())
    }
}

fn keep_or_set(
    resp: &mut ResponseHeader,
    name: &KnownHeaderName,
    value: HeaderValue,
) -> pingora::Result<()> {
    match resp.headers.contains_key(name.name()) {
        true => Ok(()),
        false => resp.insert_known_header(name, value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::http::RequestHeader;
    use std::time::Duration;

    #[test]
    fn hsts_lists_the_directives_asked_for() {
        let h = HstsSection {
            max_age: Duration::from_secs(60),
            include_subdomains: true,
            preload: true,
        };
        assert_eq!(hsts_value(&h), "max-age=60; includeSubDomains; preload");
    }

    fn respond(policy: &SecurityHeaders, view: &RequestView<'_>, resp: &mut ResponseHeader) {
        policy.set(view, resp).expect("headers");
    }

    #[test]
    fn upstream_values_are_kept_and_no_store_is_for_own_error_replies() {
        let policy = SecurityHeaders {
            hsts: Some(HeaderValue::from_static("max-age=60")),
        };
        let req = RequestHeader::build("GET", b"/", None).expect("request");
        let mut resp = ResponseHeader::build(500, None).expect("response");
        resp.insert_header("x-frame-options", "SAMEORIGIN")
            .expect("h");
        respond(&policy, &RequestView::of(&req), &mut resp);
        fn get<'a>(r: &'a ResponseHeader, n: &str) -> Option<Option<&'a str>> {
            r.headers.get(n).map(|v| v.to_str().ok())
        }
        assert_eq!(get(&resp, "x-frame-options"), Some(Some("SAMEORIGIN")));
        assert_eq!(get(&resp, "x-content-type-options"), Some(Some("nosniff")));
        assert_eq!(get(&resp, "cache-control"), None, "not an own reply");
        assert_eq!(get(&resp, "strict-transport-security"), None, "plain HTTP");
        let own = RequestView {
            own_reply: true,
            secure: true,
            ..RequestView::of(&req)
        };
        let mut reply = ResponseHeader::build(401, None).expect("response");
        respond(&policy, &own, &mut reply);
        assert_eq!(get(&reply, "cache-control"), Some(Some("no-store")));
        assert_eq!(
            get(&reply, "strict-transport-security"),
            Some(Some("max-age=60"))
        );
        let mut ok = ResponseHeader::build(204, None).expect("response");
        respond(&policy, &own, &mut ok);
        assert_eq!(get(&ok, "cache-control"), None, "only on errors");
    }
}
