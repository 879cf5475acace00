//! The console: `GET /` on the admin listener, one page (HTML, CSS and JavaScript
//! embedded in the binary, nothing from elsewhere) that reads the admin API with the
//! token the operator types once (kept in the tab's `sessionStorage`, sent as a
//! bearer token, never in a URL) and shows the traffic, refusals, bans (with an
//! unban button), deprecated routes' callers, upstream health, anomalies and the
//! config in use, refreshed every 2 s. The page itself holds no data, so it is served
//! without the token; a Content-Security-Policy allows only its own script and style,
//! and the script sets every value as text.

use http::header::{HeaderName, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_FRAME_OPTIONS};

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

/// The page's assets by path: content type and body.
pub fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    match path {
        "/" => Some(("text/html; charset=utf-8", INDEX)),
        "/console.js" => Some(("text/javascript; charset=utf-8", SCRIPT)),
        "/console.css" => Some(("text/css; charset=utf-8", STYLE)),
        _ => None,
    }
}

/// The headers every asset goes with.
pub const HEADERS: [(HeaderName, &str); 3] = [
    (
        CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (X_FRAME_OPTIONS, "DENY"),
    (REFERRER_POLICY, "no-referrer"),
];
