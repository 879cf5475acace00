//! `cors` of a route: cross-origin requests from browsers (the Fetch standard's CORS
//! protocol).
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is
//! answered here, before authentication: 204 with the allowed origin, methods, headers
//! and max age, or 403 without any CORS header when the origin, the method or a header
//! is not allowed. On every other response of the route (proxied or tollgate's own),
//! the upstream's `Access-Control-*` headers are replaced by the policy's: a matching
//! `Origin` gets `Access-Control-Allow-Origin` (the origin itself, or `*` when any
//! origin is allowed without credentials), `-Allow-Credentials` and `-Expose-Headers`;
//! `Vary: Origin` is appended whenever the answer depends on the origin.
//!
//! Origins are exact strings, `"*"`, or `~regex` matched against the whole origin.
//! A regex that does not compile, or `"*"` with `credentials`, is a config problem.

use http::{header, HeaderName, HeaderValue, Method, StatusCode};
use pingora::http::{KnownHeaderName, RequestHeader, ResponseHeader};
use regex::Regex;

use crate::config::location::{Problems, TomlPath};
use crate::config::raw::CorsSection;
use crate::edge::preflight::preflight_method;
use crate::stage::{Cx, Declared, Flow, Hooks, Reply, RequestView, Stage, StagesBuilder, Step};

enum OriginRule {
    Any,
    Exact(String),
    Pattern(Regex),
}

struct Cors {
    origins: Vec<OriginRule>,
    methods: Vec<Method>,
    /// Lower-case request header names a preflight may ask for; `None`: any.
    headers: Option<Vec<String>>,
    allow_methods: Option<HeaderValue>,
    allow_headers: Option<HeaderValue>,
    expose: Option<HeaderValue>,
    credentials: bool,
    max_age: Option<HeaderValue>,
}

/// How a request's origin is answered.
enum Allowed<'a> {
    /// `Access-Control-Allow-Origin: *`: the same for every origin.
    Everyone,
    Origin(&'a str),
}

pub fn install(
    section: Option<&CorsSection>,
    at: &TomlPath,
    problems: &mut Problems,
    stages: &mut StagesBuilder,
) {
    let Some(section) = section else { return };
    if let Some(cors) = build(section, &at.key("cors"), problems) {
        stages.add(cors);
    }
}

fn build(s: &CorsSection, at: &TomlPath, problems: &mut Problems) -> Option<Cors> {
    let before = problems.len();
    let mut origins = Vec::new();
    for (i, origin) in s.origins.iter().enumerate() {
        let place = at.key("origins").index(i);
        match (origin.as_str(), origin.strip_prefix('~')) {
            ("*", _) if s.credentials => problems.push((
                place,
                "\"*\" cannot be used with credentials = true (browsers refuse it); list the origins".into(),
            )),
            ("*", _) => origins.push(OriginRule::Any),
            (_, Some(pattern)) => match Regex::new(&format!("^(?:{pattern})$")) {
                Ok(re) => origins.push(OriginRule::Pattern(re)),
                Err(e) => {
                    // The parser's message draws the pattern over lines: keep its last.
                    let e = e.to_string();
                    let why = e.lines().last().unwrap_or("");
                    problems.push((place, format!("invalid regex: {why}")));
                }
            },
            (exact, None) => origins.push(OriginRule::Exact(exact.to_owned())),
        }
    }
    if s.origins.is_empty() {
        problems.push((at.key("origins"), "must list at least one origin".into()));
    }
    let mut methods = Vec::new();
    for (i, m) in s.methods.iter().enumerate() {
        match Method::from_bytes(m.as_bytes()) {
            _ if m == "*" => problems.push((
                at.key("methods").index(i),
                "list the methods (\"*\" is not supported)".into(),
            )),
            Ok(method) if m.to_ascii_uppercase() == *m => methods.push(method),
            _ => problems.push((
                at.key("methods").index(i),
                format!("invalid method {m:?} (methods are upper case)"),
            )),
        }
    }
    let any_header = s.headers.iter().any(|h| h == "*");
    for (key, names) in [("headers", &s.headers), ("expose", &s.expose)] {
        if s.credentials && names.iter().any(|h| h == "*") {
            problems.push((
                at.key(key),
                "\"*\" cannot be used with credentials = true (browsers take it literally); list the headers".into(),
            ));
        }
    }
    for (key, names) in [("headers", &s.headers), ("expose", &s.expose)] {
        for (i, name) in names.iter().enumerate() {
            if name != "*" && HeaderName::from_bytes(name.as_bytes()).is_err() {
                problems.push((
                    at.key(key).index(i),
                    format!("invalid header name {name:?}"),
                ));
            }
        }
    }
    if problems.len() > before {
        return None;
    }
    let list = |items: &[String]| -> Option<HeaderValue> {
        (!items.is_empty()).then(|| HeaderValue::from_str(&items.join(", ")).ok())?
    };
    Some(Cors {
        origins,
        headers: (!any_header).then(|| s.headers.iter().map(|h| h.to_ascii_lowercase()).collect()),
        allow_methods: list(&s.methods),
        allow_headers: list(&s.headers).filter(|_| !any_header),
        methods,
        expose: list(&s.expose),
        credentials: s.credentials,
        max_age: s.max_age.map(|d| HeaderValue::from(d.as_secs())),
    })
}

impl Cors {
    /// How `req`'s origin is answered; `None` when it has none or it is not allowed.
    /// With `"*"` among the origins, every origin gets `*` (the same answer for all,
    /// so caches need no `Vary: Origin`).
    fn allowed<'a>(&self, req: &'a RequestHeader) -> Option<Allowed<'a>> {
        let mut values = req.headers.get_all(header::ORIGIN).iter();
        let origin = values.next()?.to_str().ok()?;
        if values.next().is_some() {
            return None;
        }
        if !self.varies() {
            return Some(Allowed::Everyone);
        }
        self.origins.iter().find_map(|rule| match rule {
            OriginRule::Any => Some(Allowed::Everyone),
            OriginRule::Exact(o) => (o == origin).then_some(Allowed::Origin(origin)),
            OriginRule::Pattern(re) => re.is_match(origin).then_some(Allowed::Origin(origin)),
        })
    }

    /// Whether the answer can differ by origin (then caches must key on it).
    fn varies(&self) -> bool {
        !self.origins.iter().any(|o| matches!(o, OriginRule::Any))
    }

    fn preflight(&self, req: &RequestHeader, method: &HeaderValue) -> Reply {
        let refuse = |why: String| Reply::new(StatusCode::FORBIDDEN, why);
        let Some(allowed) = self.allowed(req) else {
            return refuse("this origin may not make cross-origin requests here".into());
        };
        let method_allowed = Method::from_bytes(method.as_bytes())
            .ok()
            .is_some_and(|m| self.methods.contains(&m));
        if !method_allowed {
            return refuse(format!(
                "cross-origin requests may not use the method {:?}",
                String::from_utf8_lossy(method.as_bytes())
            ));
        }
        let requested = req
            .headers
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .map(|v| v.to_str().unwrap_or("\u{0}"))
            .unwrap_or("");
        let names = requested
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty());
        if let Some(allowed_headers) = &self.headers {
            if let Some(bad) = names
                .clone()
                .find(|n| !allowed_headers.iter().any(|a| a.eq_ignore_ascii_case(n)))
            {
                return refuse(format!(
                    "cross-origin requests may not send the header {bad:?}"
                ));
            }
        }
        let mut reply = Reply::new(StatusCode::NO_CONTENT, "").with_header(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.origin_value(&allowed),
        );
        let echo_headers = (self.headers.is_none() && !requested.is_empty())
            .then(|| HeaderValue::from_str(requested).ok())
            .flatten();
        for (name, value) in [
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                self.allow_methods.clone(),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                self.allow_headers.clone().or(echo_headers),
            ),
            (header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone()),
            (
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                self.credentials_value(),
            ),
        ] {
            if let Some(value) = value {
                reply.headers.push((name, value));
            }
        }
        let vary = match self.varies() {
            true => "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            false => "Access-Control-Request-Method, Access-Control-Request-Headers",
        };
        reply.with_header(header::VARY, vary)
    }

    fn origin_value(&self, allowed: &Allowed<'_>) -> String {
        match allowed {
            Allowed::Everyone => "*".to_owned(),
            Allowed::Origin(o) => (*o).to_owned(),
        }
    }

    fn credentials_value(&self) -> Option<HeaderValue> {
        self.credentials.then(|| HeaderValue::from_static("true"))
    }
}

impl Stage for Cors {
    fn name(&self) -> &'static str {
        "cors"
    }

    fn declares(&self) -> Declared {
        Declared {
            answers_preflights: true,
            // Allow-Origin, Allow-Credentials, Expose-Headers, Vary.
            response_headers: 4,
            ..Declared::hooks(Hooks::REQUEST.and(Hooks::RESPONSE))
        }
    }

    fn on_request<'a>(&'a self, cx: &'a mut Cx<'_>) -> Step<'a> {
        self.answer_preflight(cx.req).into()
    }

    fn on_response(&self, cx: &mut Cx<'_>, resp: &mut ResponseHeader) -> pingora::Result<()> {
        self.set_headers(&cx.view(), resp)
    }
}

impl Cors {
    /// A preflight's answer (or refusal); other requests go on.
    fn answer_preflight(&self, req: &RequestHeader) -> Flow {
        match preflight_method(req) {
            Some(method) => Err(self.preflight(req, method)),
            None => Ok(()),
        }
    }

    /// The response's CORS headers: the policy's, never the upstream's.
    fn set_headers(
        &self,
        view: &RequestView<'_>,
        resp: &mut ResponseHeader,
    ) -> pingora::Result<()> {
        if preflight_method(view.req).is_some() {
            // A preflight's answer (or refusal) carries exactly what `preflight` chose.
            return Ok(());
        }
        let upstreams: Vec<HeaderName> = resp
            .headers
            .keys()
            .filter(|n| n.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in upstreams {
            resp.remove_header(&name);
        }
        if let Some(allowed) = self.allowed(view.req) {
            static ALLOW_ORIGIN: KnownHeaderName =
                KnownHeaderName::from_static("access-control-allow-origin");
            static ALLOW_CREDENTIALS: KnownHeaderName =
                KnownHeaderName::from_static("access-control-allow-credentials");
            static EXPOSE: KnownHeaderName =
                KnownHeaderName::from_static("access-control-expose-headers");
            resp.insert_known_header(&ALLOW_ORIGIN, self.origin_value(&allowed))?;
            if let Some(v) = self.credentials_value() {
                resp.insert_known_header(&ALLOW_CREDENTIALS, v)?;
            }
            if let Some(v) = &self.expose {
                resp.insert_known_header(&EXPOSE, v.clone())?;
            }
        }
        if self.varies() {
            static VARY: KnownHeaderName = KnownHeaderName::from_static("vary");
            resp.append_known_header(&VARY, HeaderValue::from_static("Origin"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn section(origins: &[&str], credentials: bool) -> CorsSection {
        CorsSection {
            origins: origins.iter().map(|o| o.to_string()).collect(),
            methods: vec!["GET".into(), "POST".into()],
            headers: vec!["authorization".into(), "content-type".into()],
            expose: vec!["x-request-id".into()],
            credentials,
            max_age: Some(Duration::from_secs(600)),
        }
    }

    fn cors(origins: &[&str], credentials: bool) -> Cors {
        let mut problems = Problems::new();
        let built = build(
            &section(origins, credentials),
            &TomlPath::root(),
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        built.expect("cors")
    }

    fn preflight(origin: &str, method: &str, headers: &str) -> RequestHeader {
        let mut req = RequestHeader::build("OPTIONS", b"/", None).expect("request");
        req.insert_header("origin", origin).expect("h");
        req.insert_header("access-control-request-method", method)
            .expect("h");
        if !headers.is_empty() {
            req.insert_header("access-control-request-headers", headers)
                .expect("h");
        }
        req
    }

    fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
        reply
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.to_str().ok())
    }

    #[test]
    fn regex_origins_are_anchored() {
        let c = cors(
            &["https://app.example.com", "~https://[a-z]+\\.example\\.com"],
            true,
        );
        let allowed = |o: &str| {
            let mut req = RequestHeader::build("GET", b"/", None).expect("request");
            req.insert_header("origin", o).expect("h");
            c.allowed(&req).is_some()
        };
        assert!(allowed("https://app.example.com"));
        assert!(allowed("https://shop.example.com"));
        assert!(!allowed("https://shop.example.com.evil.net"));
        assert!(!allowed("https://evil.net/https://shop.example.com"));
        assert!(!allowed("http://app.example.com"));
    }

    #[test]
    fn preflights_are_answered_or_refused_without_cors_headers() {
        let c = cors(&["https://app.example.com"], true);
        let ok = c.preflight(
            &preflight(
                "https://app.example.com",
                "POST",
                "Content-Type, authorization",
            ),
            &HeaderValue::from_static("POST"),
        );
        assert_eq!(ok.status, StatusCode::NO_CONTENT);
        assert_eq!(
            header(&ok, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(
            header(&ok, "access-control-allow-methods"),
            Some("GET, POST")
        );
        assert_eq!(header(&ok, "access-control-max-age"), Some("600"));
        assert_eq!(
            header(&ok, "access-control-allow-credentials"),
            Some("true")
        );
        for (origin, method, headers) in [
            ("https://evil.example", "POST", ""),
            ("https://app.example.com", "DELETE", ""),
            ("https://app.example.com", "POST", "x-admin"),
        ] {
            let refused = c.preflight(
                &preflight(origin, method, headers),
                &HeaderValue::from_str(method).expect("v"),
            );
            assert_eq!(
                refused.status,
                StatusCode::FORBIDDEN,
                "{origin} {method} {headers}"
            );
            assert!(refused.headers.is_empty(), "{:?}", refused.headers);
        }
    }

    #[test]
    fn star_with_credentials_and_bad_regexes_are_problems() {
        let mut problems = Problems::new();
        assert!(build(
            &section(&["*", "~(unclosed"], true),
            &TomlPath::root().key("cors"),
            &mut problems
        )
        .is_none());
        let places: Vec<String> = problems.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(places, ["cors.origins[0]", "cors.origins[1]"]);
    }

    #[test]
    fn upstream_cors_headers_are_replaced_and_vary_is_appended() {
        let c = cors(&["https://app.example.com"], false);
        let mut req = RequestHeader::build("GET", b"/", None).expect("request");
        req.insert_header("origin", "https://other.example")
            .expect("h");
        let mut resp = ResponseHeader::build(200, None).expect("response");
        resp.insert_header("access-control-allow-origin", "*")
            .expect("h");
        resp.insert_header("vary", "Accept-Encoding").expect("h");
        c.set_headers(&RequestView::of(&req), &mut resp)
            .expect("response");
        assert!(resp.headers.get("access-control-allow-origin").is_none());
        let vary: Vec<_> = resp
            .headers
            .get_all("vary")
            .iter()
            .map(|v| v.to_str().expect("v"))
            .collect();
        assert_eq!(vary, ["Accept-Encoding", "Origin"]);
        let any = cors(&["*"], false);
        let mut resp = ResponseHeader::build(200, None).expect("response");
        any.set_headers(&RequestView::of(&req), &mut resp)
            .expect("response");
        assert_eq!(
            resp.headers
                .get("access-control-allow-origin")
                .map(|v| v.as_bytes()),
            Some(&b"*"[..])
        );
        assert!(resp.headers.get("vary").is_none());
    }
}
