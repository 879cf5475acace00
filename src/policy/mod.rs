//! Edge policies: the small, synchronous phase traits a policy implements, the
//! [`Chain`] that runs a listener's or a route's policies in order, and (in `build`)
//! the only code that knows every policy and turns config sections into chains, once
//! per snapshot. A policy answers with the one [`Reply`] type (from `base`, so that
//! every stage below the policies can convert its errors into it too).
//!
//! A policy never does I/O on the request path and never fails the request with an
//! error: it lets the request continue or answers it with a [`Reply`]. Only header
//! writes (which Pingora can refuse) return `pingora::Result`.
//!
//! Adding a policy: its module here (build from its config section, runtime, unit
//! tests), its field in the raw config section, and one install line in `build`.

mod body_limit;
pub mod build;
mod chain;
pub mod cors;
mod deprecation;
mod header_rules;
mod https_redirect;
pub mod ip_list;
mod request_validation;
mod security_headers;
mod strict_json;
mod strip_prefix;

pub use chain::{Chain, ChainBuilder};

use bytes::Bytes;

pub use crate::base::{PolicyEvent, Reply};
use pingora::http::{RequestHeader, ResponseHeader};
use std::net::IpAddr;

/// What a policy may read of a request: the request as the client sent it and what
/// tollgate established about it before the policy runs.
pub struct RequestView<'a> {
    pub req: &'a RequestHeader,
    /// The normalized path: what routing matched and what the upstream receives.
    pub path: &'a str,
    /// The query as the client sent it (forwarded byte for byte).
    pub query: Option<&'a [u8]>,
    /// The host the request names, lower case, without port.
    pub host: &'a str,
    pub client_ip: IpAddr,
    /// Whether the request came over TLS.
    pub secure: bool,
    /// The authenticated consumer, once authentication has run.
    pub consumer: Option<&'a str>,
    /// In the response phase: the response is tollgate's own reply, not the upstream's.
    pub own_reply: bool,
}

#[cfg(test)]
impl<'a> RequestView<'a> {
    /// A view of `req` as a plain-HTTP request from 192.0.2.1 to `h.example`, its
    /// path taken as normalized.
    pub fn of(req: &'a RequestHeader) -> Self {
        Self {
            req,
            path: req.uri.path(),
            query: req.uri.query().map(str::as_bytes),
            host: "h.example",
            client_ip: std::net::Ipv4Addr::new(192, 0, 2, 1).into(),
            secure: false,
            consumer: None,
            own_reply: false,
        }
    }
}

/// Runs in `request_filter`, before authentication.
pub trait RequestPolicy: Send + Sync {
    fn on_request(&self, view: &RequestView<'_>) -> Result<(), Reply>;
}

/// A piece of the request body, as it streams to the upstream.
pub struct BodyChunk<'a> {
    pub data: Option<&'a Bytes>,
    /// Body bytes received so far, this chunk included.
    pub received: u64,
    pub end_of_stream: bool,
}

/// Runs in `request_body_filter`, once per chunk.
pub trait BodyPolicy: Send + Sync {
    fn on_body(&self, view: &RequestView<'_>, chunk: &BodyChunk<'_>) -> Result<(), Reply>;
}

/// Runs in `upstream_request_filter` on the request about to be sent upstream.
pub trait UpstreamPolicy: Send + Sync {
    fn on_upstream(
        &self,
        view: &RequestView<'_>,
        upstream: &mut RequestHeader,
    ) -> pingora::Result<()>;
}

/// Runs on every response of a request: the upstream's, and tollgate's own replies.
pub trait ResponsePolicy: Send + Sync {
    fn on_response(&self, view: &RequestView<'_>, resp: &mut ResponseHeader)
        -> pingora::Result<()>;
}
