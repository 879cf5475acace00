//! CORS preflights (the Fetch standard): an `OPTIONS` request with `Origin` and
//! `Access-Control-Request-Method`, asking whether the actual request may be made.
//! Routing sends one to the route of the request it asks about; the route's CORS stage
//! answers it.

use http::{header, HeaderValue, Method};
use pingora::http::RequestHeader;

/// The requested method of a CORS preflight, when `req` is one.
pub fn preflight_method(req: &RequestHeader) -> Option<&HeaderValue> {
    if req.method != Method::OPTIONS || !req.headers.contains_key(header::ORIGIN) {
        return None;
    }
    req.headers.get(header::ACCESS_CONTROL_REQUEST_METHOD)
}
