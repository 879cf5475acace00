//! Stages: the one extension point for a request's whole life. Everything a listener
//! or a route does to a request (IP lists, CORS, authentication, limits, jails,
//! deprecation, body checks, header edits, tracing, ...) is a [`Stage`]; `policy::build`
//! installs them, in one documented order, into a [`Stages`] list once per snapshot,
//! and the proxy runs that list at each phase.
//!
//! A stage implements the hooks it needs, each with a default that does nothing:
//!
//! - `on_request`, in `request_filter`: continue, reply, or wait on a future (the only
//!   hook that may await; see [`Step`]);
//! - `on_body`, per chunk of the request body, or once with the whole body when some
//!   stage of the list declares `whole_body`; the first `holds_body` bytes (the most
//!   any stage of the list declares) are read and judged before an upstream is chosen;
//! - `on_upstream`, on every try's request to the upstream (a retry runs it again);
//! - `on_response` and `on_response_body`, on every response of the request, the
//!   upstream's and tollgate's own replies alike;
//! - `on_done`, once the request is over, with its [`Outcome`] (status, timings, the
//!   tries at the upstream, the error, which stage refused); it may await;
//! - `log_fields`, what it adds to the request's access-log line.
//!
//! [`Declared`] says which hooks a stage has (only those are called) and what it can
//! do that the stages and the proxy around it must know: answer CORS preflights, need
//! the whole body, how much of the body must be judged before anything goes upstream,
//! refuse a request from its body once the head may be upstream.
//!
//! Per-request state: each stage of a list has its own typed slot ([`Cx::state_mut`]),
//! boxed on first use only; stages without state allocate nothing. What every stage may
//! read about the request is in [`Facts`] (the normalized path, the client, who it is).
//!
//! A stage never fails a request with an error: it continues or answers with a
//! [`Reply`]. Only header writes, which Pingora can refuse, return `pingora::Result`.

mod chain;
mod cx;
mod outcome;

pub use chain::{Refused, Stages, StagesBuilder};
pub use cx::{Cx, Facts, RequestView, RouteLabel, Slots};
pub use outcome::{Outcome, Refusal};

use bytes::Bytes;
use futures::future::BoxFuture;
use pingora::http::{RequestHeader, ResponseHeader};

pub use crate::base::{PolicyEvent, Reply};
pub use crate::observability::{LogFields, LogValue};

/// What a stage's request or body hook decided: let the request go on, or answer it.
pub type Flow = Result<(), Reply>;

/// What `on_request` returns. A stage that can decide at once returns `Continue` or
/// `Reply`: nothing is allocated. A stage that must await (a Redis call, a key
/// refresh) returns `Wait` with its future, boxed only then.
pub enum Step<'a> {
    Continue,
    Reply(Reply),
    Wait(BoxFuture<'a, Flow>),
}

impl From<Flow> for Step<'_> {
    fn from(flow: Flow) -> Self {
        match flow {
            Ok(()) => Step::Continue,
            Err(reply) => Step::Reply(reply),
        }
    }
}

/// A piece of the request body. When the list needs the whole body (`whole_body`),
/// `data` is empty until the end, then all of it.
pub struct BodyChunk<'a> {
    pub data: Option<&'a Bytes>,
    /// Body bytes received so far, this chunk included.
    pub received: u64,
    pub end_of_stream: bool,
}

/// The hooks a stage implements, as a set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hooks(u8);

impl Hooks {
    pub const REQUEST: Hooks = Hooks(1);
    pub const BODY: Hooks = Hooks(1 << 1);
    pub const UPSTREAM: Hooks = Hooks(1 << 2);
    pub const RESPONSE: Hooks = Hooks(1 << 3);
    pub const RESPONSE_BODY: Hooks = Hooks(1 << 4);
    pub const DONE: Hooks = Hooks(1 << 5);
    pub const LOG: Hooks = Hooks(1 << 6);

    pub const fn and(self, other: Hooks) -> Hooks {
        Hooks(self.0 | other.0)
    }

    pub const fn has(self, hook: Hooks) -> bool {
        self.0 & hook.0 == hook.0
    }
}

/// What a stage declares, read once when its list is built.
#[derive(Debug, Clone, Copy, Default)]
pub struct Declared {
    pub hooks: Hooks,
    /// It answers CORS preflights: routing sends a preflight to its route (by the
    /// method the preflight asks about).
    pub answers_preflights: bool,
    /// Its body hook needs the whole body in one piece: the list holds the body until
    /// its end and hands it on whole (declare `holds_body` as large as it may be).
    pub whole_body: bool,
    /// Body bytes to read and judge before an upstream is chosen or connected: a body
    /// that fits is refused, if at all, before the upstream sees anything of the
    /// request; the rest of a larger one streams. 0: none.
    pub holds_body: u64,
    /// Its body hook may refuse the request after its head went upstream (the proxy
    /// then ends the upstream request and answers with the stage's reply).
    pub refuses_after_head: bool,
    /// Headers its upstream hook usually adds, and its response hook: the proxy makes
    /// room for all the stages' at once (a header map that grows is copied whole).
    pub upstream_headers: usize,
    pub response_headers: usize,
}

impl Declared {
    pub const fn hooks(hooks: Hooks) -> Self {
        Self {
            hooks,
            answers_preflights: false,
            whole_body: false,
            holds_body: 0,
            refuses_after_head: false,
            upstream_headers: 0,
            response_headers: 0,
        }
    }
}

/// One stage of a listener's or a route's list. See the module docs for the hooks.
pub trait Stage: Send + Sync {
    /// Names the stage where it refused a request (security log, traces).
    fn name(&self) -> &'static str;

    fn declares(&self) -> Declared;

    fn on_request<'a>(&'a self, _cx: &'a mut Cx<'_>) -> Step<'a> {
        Step::Continue
    }

    fn on_body(&self, _cx: &mut Cx<'_>, _chunk: &BodyChunk<'_>) -> Flow {
        Ok(())
    }

    fn on_upstream(&self, _cx: &mut Cx<'_>, _upstream: &mut RequestHeader) -> pingora::Result<()> {
        Ok(())
    }

    fn on_response(&self, _cx: &mut Cx<'_>, _resp: &mut ResponseHeader) -> pingora::Result<()> {
        Ok(())
    }

    fn on_response_body(
        &self,
        _cx: &mut Cx<'_>,
        _body: &mut Option<Bytes>,
        _end_of_stream: bool,
    ) -> pingora::Result<()> {
        Ok(())
    }

    /// Runs once the request is over; `Some` when it must await (a shared store).
    fn on_done<'a>(
        &'a self,
        _cx: &'a mut Cx<'_>,
        _outcome: &'a Outcome<'_>,
    ) -> Option<BoxFuture<'a, ()>> {
        None
    }

    fn log_fields(&self, _cx: &Cx<'_>, _fields: &mut LogFields) {}
}

/// Drives `future` to its end at once, without a box, for a stage whose future cannot
/// wait (no shared store, no remote keys): every await in it completes immediately.
/// `None` (logged) for a future that does wait, which is a bug.
pub fn now<F: std::future::Future>(future: F) -> Option<F::Output> {
    use futures::FutureExt;
    let done = future.now_or_never();
    if done.is_none() {
        log::error!("a stage declared as never waiting waited; its work was dropped");
    }
    done
}

impl Step<'_> {
    /// The step of a request hook's future that cannot wait (see [`now`]); one that
    /// waited anyway refuses the request with 500 rather than hang or panic.
    pub fn now(future: impl std::future::Future<Output = Flow>) -> Self {
        now(future)
            .unwrap_or_else(|| {
                Err(Reply::new(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error",
                ))
            })
            .into()
    }
}
