//! One compiled route: what it matches (path prefix on whole segments, methods), what
//! it does (proxy to an upstream or answer statically), and its stages.

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use std::sync::Arc;
use std::time::Duration;

use crate::stage::{RouteLabel, Stages};
use crate::upstream::Pool;

pub struct Route {
    /// Its name and `path_prefix`, as logs and traces show them.
    pub label: Arc<RouteLabel>,
    /// Path prefix without trailing slash ("" for "/").
    prefix: String,
    /// Empty: any method.
    methods: Vec<Method>,
    pub action: RouteAction,
    pub stages: Arc<Stages>,
}

pub enum RouteAction {
    Proxy(ProxyTo),
    Respond(StaticResponse),
}

/// Where a proxying route sends requests, and how.
pub struct ProxyTo {
    pub pool: Arc<Pool>,
    /// Overrides the pool's read timeout.
    pub timeout: Option<Duration>,
    /// Every request may be retried, whatever its method (`idempotent`).
    pub idempotent: bool,
}

/// A fixed answer: health endpoints, maintenance pages, mocks.
pub struct StaticResponse {
    pub status: StatusCode,
    pub body: Bytes,
    pub content_type: HeaderValue,
}

impl Route {
    pub fn new(
        name: &str,
        prefix: &str,
        methods: Vec<Method>,
        action: RouteAction,
        stages: Stages,
    ) -> Self {
        Self {
            label: Arc::new(RouteLabel {
                name: name.into(),
                path_prefix: prefix.to_owned(),
            }),
            prefix: prefix.trim_end_matches('/').to_owned(),
            methods,
            action,
            stages: Arc::new(stages),
        }
    }

    pub fn name(&self) -> &str {
        &self.label.name
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
        let action = RouteAction::Respond(respond);
        Self::new(name, prefix, methods, action, Stages::default())
    }
}
