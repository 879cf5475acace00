//! One compiled route: what it matches (path prefix on whole segments, methods), what
//! it does (proxy to a pool or answer statically), and its stages: policies,
//! authentication, limits.

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use std::sync::Arc;
use std::time::Duration;

use crate::auth::RouteAuth;
use crate::jail::Jail;
use crate::policy::Chain;
use crate::ratelimit::RouteLimits;
use crate::upstream::Pool;

pub struct Route {
    pub name: Arc<str>,
    /// Path prefix without trailing slash ("" for "/").
    prefix: String,
    /// Empty: any method.
    methods: Vec<Method>,
    pub action: RouteAction,
    /// Overrides the pool's read timeout.
    pub timeout: Option<Duration>,
    /// Every request may be retried, whatever its method (`idempotent`).
    pub idempotent: bool,
    pub policies: Chain,
    pub auth: RouteAuth,
    pub limits: RouteLimits,
    /// Jails counting strikes from this route's requests (besides the server's).
    pub jails: Vec<Arc<Jail>>,
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

impl Route {
    pub fn new(name: &str, prefix: &str, methods: Vec<Method>, action: RouteAction) -> Self {
        Self {
            name: name.into(),
            prefix: prefix.trim_end_matches('/').to_owned(),
            methods,
            action,
            timeout: None,
            idempotent: false,
            policies: Chain::default(),
            auth: RouteAuth::default(),
            limits: RouteLimits::default(),
            jails: Vec::new(),
        }
    }

    pub fn prefix_len(&self) -> usize {
        self.prefix.len()
    }

    /// The segments of the path prefix; none for `/`.
    pub fn prefix_segments(&self) -> impl Iterator<Item = &str> {
        self.prefix.split('/').skip(1)
    }

    pub fn allows(&self, method: &Method) -> bool {
        self.methods.is_empty() || self.methods.contains(method)
    }

    pub fn methods(&self) -> &[Method] {
        &self.methods
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
