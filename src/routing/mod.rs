//! Routing: picks the route for a request by listener, host, path prefix and method.
//!
//! The [`Router`] is built once per snapshot and only read afterwards. Host matching
//! prefers an exact name, then the longest `*.suffix` wildcard, then routes without
//! hosts; within that host group the longest path prefix that also allows the method
//! wins. A path that matches only routes of other methods gives 405 with `Allow`.
//! Hosts match ignoring ASCII case; path prefixes too under `path_case =
//! "insensitive"` (for upstreams that ignore case, so that a route guarding `/admin`
//! also takes `/ADMIN`).
//!
//! A CORS preflight belongs to the route its actual request would take (by the
//! method it asks about) when that route has a stage that answers preflights, or, when
//! no route there takes that method, to the route of the path's longest prefix that
//! answers preflights (whose stage refuses the method). Otherwise it is an ordinary
//! `OPTIONS` request, which another route's CORS stage must not answer: that would
//! approve requests to a route that never opted into CORS (403 when its own route
//! answers preflights for other methods only).

mod list;
mod route;

pub use route::{ProxyTo, Route, RouteAction, StaticResponse};

use http::{header, Method, StatusCode};
use pingora::http::RequestHeader;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use crate::base::Reply;
use crate::edge::preflight::preflight_method;
use list::RouteList;

/// Why no route was found; knows its HTTP answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    #[error("no route matches this host and path")]
    NotFound,
    #[error("this path does not accept the method; allowed: {allow}")]
    MethodNotAllowed { allow: String },
    #[error("cross-origin requests to this path are not allowed")]
    CrossOriginRefused,
}

impl From<RouteError> for Reply {
    fn from(e: RouteError) -> Self {
        let detail = e.to_string();
        match e {
            RouteError::NotFound => Reply::new(StatusCode::NOT_FOUND, detail),
            RouteError::MethodNotAllowed { allow } => {
                Reply::new(StatusCode::METHOD_NOT_ALLOWED, detail).with_header(header::ALLOW, allow)
            }
            RouteError::CrossOriginRefused => Reply::new(StatusCode::FORBIDDEN, detail),
        }
    }
}

/// Routes of every listener, ready for lookup.
#[derive(Default)]
pub struct Router {
    listeners: HashMap<String, HostTable>,
    /// Path prefixes match ignoring ASCII case.
    fold_case: bool,
}

/// The routes one listener can reach, grouped by host pattern.
#[derive(Default)]
struct HostTable {
    exact: HashMap<String, RouteList>,
    /// `(".example.com", routes)`, longest suffix first.
    wildcards: Vec<(String, RouteList)>,
    any_host: RouteList,
}

impl Router {
    /// A router whose path prefixes match ignoring ASCII case when `fold_case`.
    pub fn new(fold_case: bool) -> Self {
        Self {
            fold_case,
            ..Self::default()
        }
    }

    /// Adds `route` to each listener it serves, for each of its host patterns.
    pub fn add(&mut self, listeners: &[String], hosts: &[String], route: Arc<Route>) {
        for listener in listeners {
            let table = self.listeners.entry(listener.clone()).or_default();
            if hosts.is_empty() {
                table.any_host.push(route.clone(), self.fold_case);
            }
            for host in hosts {
                let host = host.to_ascii_lowercase();
                let list = match host.strip_prefix('*') {
                    Some(suffix) => match table.wildcards.iter().position(|(s, _)| s == suffix) {
                        Some(i) => &mut table.wildcards[i].1,
                        None => {
                            table
                                .wildcards
                                .push((suffix.to_owned(), RouteList::default()));
                            let last = table.wildcards.len() - 1;
                            &mut table.wildcards[last].1
                        }
                    },
                    None => table.exact.entry(host).or_default(),
                };
                list.push(route.clone(), self.fold_case);
            }
        }
    }

    /// Orders the wildcards, longest suffix first; call once after the last `add`.
    pub fn finish(&mut self) {
        for table in self.listeners.values_mut() {
            table
                .wildcards
                .sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
        }
    }

    /// The route for a request. `host` is lower case without port, `path` normalized.
    pub fn find(
        &self,
        listener: &str,
        host: &str,
        path: &str,
        method: &Method,
    ) -> Result<&Arc<Route>, RouteError> {
        let path = &*self.lookup_path(path);
        for group in self.host_groups(listener, host) {
            let mut allowed: Vec<&str> = Vec::new();
            for route in group.matching(path) {
                if route.allows(method) {
                    return Ok(route);
                }
                allowed.extend(route.methods().iter().map(Method::as_str));
            }
            if !allowed.is_empty() {
                allowed.sort_unstable();
                allowed.dedup();
                return Err(RouteError::MethodNotAllowed {
                    allow: allowed.join(", "),
                });
            }
        }
        Err(RouteError::NotFound)
    }

    /// The route for `req` (its normalized host and path given), a CORS preflight
    /// routed by the method it asks about (see the module docs).
    pub fn route_for(
        &self,
        req: &RequestHeader,
        listener: &str,
        host: &str,
        path: &str,
    ) -> Result<&Arc<Route>, RouteError> {
        let find = |method: &Method| self.find(listener, host, path, method);
        let asked = preflight_method(req).and_then(|m| Method::from_bytes(m.as_bytes()).ok());
        let Some(asked) = asked else {
            return find(&req.method);
        };
        match find(&asked) {
            Ok(route) if route.stages.answers_preflights() => return Ok(route),
            Err(RouteError::MethodNotAllowed { .. }) => {
                if let Some(route) = self.find_preflight(listener, host, path) {
                    return Ok(route);
                }
            }
            Ok(_) | Err(_) => {}
        }
        let route = find(&req.method)?;
        match route.stages.answers_preflights() {
            true => Err(RouteError::CrossOriginRefused),
            false => Ok(route),
        }
    }

    /// The route that answers a CORS preflight for `path` whatever method it asks
    /// about (its policy judges the method): among the routes with the longest
    /// prefix matching `path` in the first host group that has one, the first that
    /// answers preflights.
    fn find_preflight(&self, listener: &str, host: &str, path: &str) -> Option<&Arc<Route>> {
        let path = &*self.lookup_path(path);
        let mut matching = self
            .host_groups(listener, host)
            .map(|group| group.matching(path))
            .find_map(|mut routes| routes.next().map(|first| (first, routes)))
            .map(|(first, rest)| std::iter::once(first).chain(rest))?;
        let mut longest = matching.next()?;
        let prefix_len = longest.prefix_len();
        loop {
            if longest.stages.answers_preflights() {
                return Some(longest);
            }
            longest = matching.next().filter(|r| r.prefix_len() == prefix_len)?;
        }
    }

    /// `path` as the route lists match it.
    fn lookup_path<'p>(&self, path: &'p str) -> Cow<'p, str> {
        match self.fold_case {
            true => Cow::Owned(path.to_ascii_lowercase()),
            false => Cow::Borrowed(path),
        }
    }

    /// The route lists `host` can use on `listener`, most specific host first.
    fn host_groups<'a, 'h>(
        &'a self,
        listener: &str,
        host: &'h str,
    ) -> impl Iterator<Item = &'a RouteList> + use<'a, 'h> {
        let table = self.listeners.get(listener);
        let wildcards = table.into_iter().flat_map(move |t| {
            t.wildcards
                .iter()
                .filter(move |(suffix, _)| {
                    host.len() > suffix.len() && host.ends_with(suffix.as_str())
                })
                .map(|(_, l)| l)
        });
        table
            .and_then(|t| t.exact.get(host))
            .into_iter()
            .chain(wildcards)
            .chain(table.map(|t| &t.any_host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, prefix: &str, methods: &[&str]) -> Arc<Route> {
        Arc::new(Route::for_test(name, prefix, methods))
    }

    fn router(routes: &[(&[&str], Arc<Route>)]) -> Router {
        let mut r = Router::default();
        for (hosts, route) in routes {
            let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
            r.add(&["l".to_owned()], &hosts, route.clone());
        }
        r.finish();
        r
    }

    #[test]
    fn prefixes_match_ignoring_case_when_asked() {
        let routes = [route("admin", "/Admin", &[]), route("all", "/", &[])];
        let mut sensitive = Router::default();
        let mut insensitive = Router::new(true);
        for r in [&mut sensitive, &mut insensitive] {
            for route in &routes {
                r.add(&["l".to_owned()], &[], route.clone());
            }
            r.finish();
        }
        for path in ["/ADMIN/x", "/admin", "/aDmIn/"] {
            assert_eq!(
                name(&insensitive, "h", path, Method::GET),
                Ok("admin".into())
            );
            assert_eq!(name(&sensitive, "h", path, Method::GET), Ok("all".into()));
        }
        assert_eq!(
            name(&sensitive, "h", "/Admin/x", Method::GET),
            Ok("admin".into())
        );
        assert_eq!(
            name(&insensitive, "h", "/Adminx", Method::GET),
            Ok("all".into())
        );
    }

    fn name(r: &Router, host: &str, path: &str, method: Method) -> Result<String, RouteError> {
        r.find("l", host, path, &method)
            .map(|r| r.name().to_string())
    }

    #[test]
    fn the_tree_finds_what_a_segment_prefix_match_of_every_route_finds() {
        let prefixes = [
            "/",
            "/api",
            "/api/orders",
            "/api/orders/v2",
            "/api/users",
            "/a//b",
            "/api/",
            "/x/y/z",
        ];
        let mut list = RouteList::default();
        for (i, prefix) in prefixes.iter().enumerate() {
            list.push(route(&format!("{i}:{prefix}"), prefix, &[]), false);
        }
        let paths = [
            "/",
            "/api",
            "/api/",
            "/api;v=1/orders",
            "/api%3Bx/orders/v2/9",
            "/apix",
            "/api/orders/v2",
            "/api/ordersx",
            "/a//b/c",
            "/a/b",
            "//",
            "/api//orders",
            "/x/y",
            "/x/y/z;p",
            "/api/users/1/orders",
        ];
        for path in paths {
            let found: Vec<String> = list.matching(path).map(|r| r.name().to_string()).collect();
            // Every route whose prefix the path starts with, longest first, file order
            // among equals.
            let mut expected: Vec<(usize, usize)> = prefixes
                .iter()
                .map(|p| p.trim_end_matches('/'))
                .enumerate()
                .filter(|(_, p)| crate::edge::path::has_prefix(path, p))
                .map(|(i, p)| (p.len(), i))
                .collect();
            expected.sort_by_key(|&(len, i)| (std::cmp::Reverse(len), i));
            let expected: Vec<String> = expected
                .into_iter()
                .map(|(_, i)| format!("{i}:{}", prefixes[i]))
                .collect();
            assert_eq!(found, expected, "{path}");
        }
    }

    #[test]
    fn longest_prefix_on_segment_boundaries() {
        let r = router(&[
            (&[], route("root", "/", &[])),
            (&[], route("api", "/api", &[])),
        ]);
        assert_eq!(name(&r, "h", "/api", Method::GET).as_deref(), Ok("api"));
        assert_eq!(name(&r, "h", "/api/x", Method::GET).as_deref(), Ok("api"));
        assert_eq!(name(&r, "h", "/apix", Method::GET).as_deref(), Ok("root"));
        assert_eq!(
            name(&r, "h", "/api;jsessionid=1/x", Method::GET).as_deref(),
            Ok("api"),
            "parameters do not hide a segment"
        );
    }

    #[test]
    fn the_prefix_tree_keeps_longest_prefix_and_405_semantics() {
        let mut routes: Vec<(&[&str], Arc<Route>)> = vec![
            (&[], route("root", "/", &["GET"])),
            (&[], route("api", "/api", &["GET"])),
            (&[], route("api-orders", "/api/orders", &["POST"])),
            (&[], route("api-orders-v2", "/api/orders/v2", &[])),
        ];
        let many: Vec<Arc<Route>> = (0..500)
            .map(|i| route(&format!("svc{i}"), &format!("/svc{i}/x"), &[]))
            .collect();
        routes.extend(many.iter().map(|r| (&[] as &[&str], r.clone())));
        let r = router(&routes);
        let found = |path: &str, m: Method| name(&r, "h", path, m);
        assert_eq!(
            found("/api/orders/v2/1", Method::GET).as_deref(),
            Ok("api-orders-v2")
        );
        assert_eq!(
            found("/api/orders/1", Method::POST).as_deref(),
            Ok("api-orders")
        );
        assert_eq!(found("/api/orders/1", Method::GET).as_deref(), Ok("api"));
        assert_eq!(
            found("/api%3Bx=1/orders/1", Method::POST).as_deref(),
            Ok("api-orders")
        );
        assert_eq!(found("/svc321/x/y", Method::GET).as_deref(), Ok("svc321"));
        assert_eq!(found("/svc321/y", Method::GET).as_deref(), Ok("root"));
        assert!(matches!(
            found("/svc321/y", Method::DELETE),
            Err(RouteError::MethodNotAllowed { allow }) if allow == "GET"
        ));
        assert_eq!(found("/", Method::GET).as_deref(), Ok("root"));
    }

    #[test]
    fn exact_host_beats_wildcard_beats_any() {
        let r = router(&[
            (&[], route("any", "/", &[])),
            (&["*.example.com"], route("wild", "/", &[])),
            (&["api.example.com"], route("exact", "/", &[])),
        ]);
        assert_eq!(
            name(&r, "api.example.com", "/", Method::GET).as_deref(),
            Ok("exact")
        );
        assert_eq!(
            name(&r, "a.b.example.com", "/", Method::GET).as_deref(),
            Ok("wild")
        );
        assert_eq!(
            name(&r, "example.com", "/", Method::GET).as_deref(),
            Ok("any")
        );
    }

    #[test]
    fn method_mismatch_is_405_with_allow_and_other_paths_404() {
        let r = router(&[
            (&["a"], route("get", "/x", &["GET"])),
            (&["a"], route("put", "/x", &["PUT", "GET"])),
        ]);
        assert_eq!(
            name(&r, "a", "/x/1", Method::POST),
            Err(RouteError::MethodNotAllowed {
                allow: "GET, PUT".into()
            })
        );
        assert_eq!(name(&r, "a", "/y", Method::GET), Err(RouteError::NotFound));
        assert_eq!(name(&r, "b", "/x", Method::GET), Err(RouteError::NotFound));
        assert_eq!(
            r.find("other", "a", "/x", &Method::GET).err(),
            Some(RouteError::NotFound)
        );
    }

    #[test]
    fn method_falls_through_to_a_shorter_prefix_that_allows_it() {
        let r = router(&[
            (&[], route("ro", "/v1", &["GET"])),
            (&[], route("all", "/", &[])),
        ]);
        assert_eq!(name(&r, "h", "/v1/x", Method::POST).as_deref(), Ok("all"));
    }
}
