//! How a request ended, as its stages' `on_done` hooks see it.

use std::borrow::Cow;
use std::time::Instant;

use crate::upstream::Try;

/// A request's end: its status, the tries at the upstream, the error that ended it,
/// and the stage that refused it, if one did.
pub struct Outcome<'a> {
    /// The status the client got (for a gRPC call answered by tollgate, the status its
    /// gRPC error stands for); `None` when no response was written.
    pub status: Option<u16>,
    pub error: Option<&'a pingora::Error>,
    pub refusal: Option<&'a Refusal>,
    /// Every try at the upstream, in order (a retry is a second try).
    pub tries: &'a [Try],
    pub ended: Instant,
}

/// Which stage (or which step of the proxy: `hygiene`, `routing`) answered a request
/// instead of letting it go on, and why.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub stage: &'static str,
    pub status: u16,
    pub detail: Cow<'static, str>,
}
