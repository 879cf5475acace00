//! One compiled route: what it matches (prefix, methods), what it does (proxy to a
//! pool or answer statically) and how it rewrites requests and responses.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use pingora::http::{RequestHeader, ResponseHeader};
use std::sync::Arc;
use std::time::Duration;

use crate::auth::RouteAuth;
use crate::ratelimit::RouteLimits;
use crate::upstream::Pool;

pub struct Route {
    pub name: Arc<str>,
    /// Path prefix without trailing slash ("" for "/").
    prefix: String,
    /// Empty: any method.
    methods: Vec<Method>,
    pub action: RouteAction,
    pub strip_prefix: bool,
    /// Overrides the pool's read timeout.
    pub timeout: Option<Duration>,
    pub request_headers: HeaderRules,
    pub response_headers: HeaderRules,
    pub auth: RouteAuth,
    pub limits: RouteLimits,
    /// `Strict-Transport-Security` value, sent on responses over TLS only.
    pub hsts: Option<HeaderValue>,
}

pub enum RouteAction {
    Proxy(Arc<Pool>),
    Respond(StaticResponse),
}

/// A fixed answer: health endpoints, maintenance pages, mocks.
pub struct StaticResponse {
    pub status: StatusCode,
    pub body: Bytes,
    pub content_type: HeaderValue,
}

/// Headers to set (replacing any present) and to remove.
#[derive(Default)]
pub struct HeaderRules {
    pub set: Vec<(HeaderName, HeaderValue)>,
    pub remove: Vec<HeaderName>,
}

impl Route {
    pub fn new(name: &str, prefix: &str, methods: Vec<Method>, action: RouteAction) -> Self {
        Self {
            name: name.into(),
            prefix: prefix.trim_end_matches('/').to_owned(),
            methods,
            action,
            strip_prefix: false,
            timeout: None,
            request_headers: HeaderRules::default(),
            response_headers: HeaderRules::default(),
            auth: RouteAuth::default(),
            limits: RouteLimits::default(),
            hsts: None,
        }
    }

    pub fn prefix_len(&self) -> usize {
        self.prefix.len()
    }

    /// Segment-aware prefix match: `/api` matches `/api` and `/api/...`, not `/apix`.
    pub fn matches_path(&self, path: &str) -> bool {
        match path.strip_prefix(self.prefix.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }

    pub fn allows(&self, method: &Method) -> bool {
        self.methods.is_empty() || self.methods.contains(method)
    }

    pub fn methods(&self) -> &[Method] {
        &self.methods
    }

    /// The path and query to send upstream for `path_and_query`, when it changes.
    pub fn rewrite_path(&self, path_and_query: &str) -> Option<String> {
        if !self.strip_prefix || self.prefix.is_empty() {
            return None;
        }
        let rest = path_and_query.get(self.prefix.len()..)?;
        Some(if rest.starts_with('/') {
            rest.to_owned()
        } else {
            format!("/{rest}")
        })
    }

    #[cfg(test)]
    pub fn for_test(name: &str, prefix: &str, methods: &[&str]) -> Self {
        let methods = methods
            .iter()
            .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
            .collect();
        let respond = StaticResponse {
            status: StatusCode::OK,
            body: Bytes::new(),
            content_type: HeaderValue::from_static("text/plain"),
        };
        Self::new(name, prefix, methods, RouteAction::Respond(respond))
    }
}

impl HeaderRules {
    pub fn apply_to_request(&self, req: &mut RequestHeader) -> pingora::Result<()> {
        for name in &self.remove {
            req.remove_header(name);
        }
        for (name, value) in &self.set {
            req.insert_header(name.clone(), value.clone())?;
        }
        Ok(())
    }

    pub fn apply_to_response(&self, resp: &mut ResponseHeader) -> pingora::Result<()> {
        for name in &self.remove {
            resp.remove_header(name);
        }
        for (name, value) in &self.set {
            resp.insert_header(name.clone(), value.clone())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_prefix_keeps_a_leading_slash_and_the_query() {
        let mut r = Route::for_test("r", "/api/", &[]);
        assert_eq!(r.rewrite_path("/api/v1?x=1"), None, "strip_prefix is off");
        r.strip_prefix = true;
        assert_eq!(r.rewrite_path("/api/v1?x=1").as_deref(), Some("/v1?x=1"));
        assert_eq!(r.rewrite_path("/api").as_deref(), Some("/"));
        assert_eq!(r.rewrite_path("/api?x").as_deref(), Some("/?x"));
    }
}
