//! The answer tollgate gives instead of proxying: a status, extra headers and an RFC
//! 9457 problem detail. Every stage that refuses a request (hygiene, routing,
//! policies, authentication, limits) converts its own error into a `Reply`; the proxy
//! only renders replies. A stage that answers with content of its own (an ACME
//! challenge's key authorization) gives it instead of the problem document.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use std::borrow::Cow;

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    /// The problem document's `detail`: why, never a secret.
    pub detail: Cow<'static, str>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The client's framing cannot be trusted: close the connection after answering.
    pub close: bool,
    /// A security-log line for this refusal (boxed, like `content`: replies travel
    /// in `Result`s, and most have neither).
    pub event: Option<Box<PolicyEvent>>,
    /// Extension members of the problem document (RFC 9457 §3.2), e.g. `errors`.
    pub members: Vec<(&'static str, serde_json::Value)>,
    /// A body and its media type, sent instead of the problem document.
    pub content: Option<Box<(HeaderValue, Bytes)>>,
}

/// A refusal worth a security-log line: `event` names it, `fields` add what the
/// operator needs (the list that matched, ...). The request's id, client IP and route
/// are added by the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyEvent {
    pub event: &'static str,
    pub fields: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn new(status: StatusCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            detail: detail.into(),
            headers: Vec::new(),
            close: false,
            event: None,
            members: Vec::new(),
            content: None,
        }
    }

    /// An answer with its own body instead of a problem document.
    pub fn with_content(status: StatusCode, content_type: HeaderValue, body: Bytes) -> Self {
        Self {
            content: Some(Box::new((content_type, body))),
            ..Self::new(status, "")
        }
    }

    /// Adds an extension member to the problem document.
    pub fn with_member(mut self, name: &'static str, value: serde_json::Value) -> Self {
        self.members.push((name, value));
        self
    }

    /// Adds a header. The values given here are built by tollgate from validated
    /// parts; one that still is no valid header value is left out (and logged).
    pub fn with_header(mut self, name: HeaderName, value: impl AsRef<str>) -> Self {
        match HeaderValue::from_str(value.as_ref()) {
            Ok(v) => self.headers.push((name, v)),
            Err(_) => log::warn!("reply header {name} left out: not a valid value"),
        }
        self
    }

    /// Closes the connection after the answer.
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    pub fn logged(mut self, event: PolicyEvent) -> Self {
        self.event = Some(Box::new(event));
        self
    }
}

/// The members every RFC 9457 problem document of tollgate has: `type`, `title`,
/// `status` and `detail`. Callers add the request id and extension members.
pub fn problem_document(status: StatusCode, detail: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    })
}
