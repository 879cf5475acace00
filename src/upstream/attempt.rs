//! [`Attempt`]: a request's way to its upstream, one [`Try`] at a time. It owns what
//! the tries need: the target of each (never one tried already), the in-flight count
//! and the passive health of the current target, retries (`retry_on`, `retries`, the
//! retry budget), and a gRPC call's deadline. The proxy's hooks each call it once.
//!
//! Retries of requests that reached a target: an idempotent request (by method, or on
//! a route marked `idempotent`) whose target reset the connection, timed out or
//! answered a status `retry_on` lists is sent again to another target, while
//! `retries`, a healthy untried target and the retry budget allow, and never once any
//! byte of a response went to the client or its body outgrew Pingora's retry buffer
//! (64 KiB). A connect failure is retried while `retries` allow. A timeout at a gRPC
//! call's own deadline is the client's choice: not retried, not the target's failure.
//!
//! Passive health: how the request went at each target (a connect failure, an error
//! talking to it, or a status `passive` counts as failure) is recorded in the target's
//! [`Outlier`], through the pool; an ejection is logged and counted.

use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType, Result};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::pool::{Outcome, Pool};
use super::retry::RetryKind;
use super::{InFlightGuard, Outlier};
use crate::edge::grpc;
use crate::observability::Metrics;

/// The error that ends a try whose response status is to be retried. Pingora offers
/// no direct way to retry on a status: `upstream_response_filter` fails with this, and
/// Pingora's error path (`error_while_proxy`, [`Attempt::failed`]) marks it for a retry.
pub const RETRY_STATUS: ErrorType = ErrorType::Custom("upstream status to retry");

/// One try at one target.
#[derive(Debug, Clone)]
pub struct Try {
    pub target: SocketAddr,
    pub started: Instant,
    /// When it failed, or when the request ended (the last try).
    pub ended: Option<Instant>,
    /// The target's response status, when it answered.
    pub status: Option<u16>,
    /// Why the try failed (a refused connection, a reset, a status retried).
    pub error: Option<TryError>,
}

/// A failed try's error: its kind (`ConnectRefused`, `ReadTimedout`, ...) and what
/// Pingora said of it.
#[derive(Debug, Clone)]
pub struct TryError {
    pub kind: &'static str,
    pub message: String,
}

impl TryError {
    fn of(e: &Error) -> Self {
        Self {
            kind: e.etype().as_str(),
            message: e.to_string(),
        }
    }
}

/// A request's tries at its upstream (see the module docs).
pub struct Attempt {
    pool: Arc<Pool>,
    /// The route's `timeout`, overriding the pool's read timeout.
    timeout: Option<Duration>,
    /// The route says every request may be sent twice.
    idempotent: bool,
    tries: Vec<Try>,
    /// The current target's in-flight count and passive health, until its outcome is
    /// recorded.
    current: Option<(InFlightGuard, Outlier)>,
    /// The upstream timeouts were shortened to the gRPC call's own deadline.
    client_deadline: bool,
    /// The status of the try being retried, caught before it went out.
    retried_status: Option<u16>,
}

impl Attempt {
    pub fn new(pool: Arc<Pool>, timeout: Option<Duration>, idempotent: bool) -> Self {
        Self {
            pool,
            timeout,
            idempotent,
            tries: Vec::new(),
            current: None,
            client_deadline: false,
            retried_status: None,
        }
    }

    /// Every try so far, the last being the current.
    pub fn tries(&self) -> &[Try] {
        &self.tries
    }

    /// The current (or last) try's target.
    pub fn target(&self) -> Option<SocketAddr> {
        self.tries.last().map(|t| t.target)
    }

    /// `upstream_peer`: the next try's target (healthy, not ejected, not tried yet;
    /// 503 when none is healthy, 502 when every one failed) and how to reach it, its
    /// timeouts shortened to a gRPC call's deadline.
    pub fn next_peer(
        &mut self,
        session: &Session,
        path: &str,
        client_ip: IpAddr,
    ) -> Result<Box<HttpPeer>> {
        let req: &RequestHeader = session.req_header();
        let selected = self
            .pool
            .select(req, path, client_ip, &self.tried())
            .or_else(|e| {
                let last = self.tries.last().and_then(|t| t.error.as_ref());
                let why = match last {
                    Some(last) => format!("{e} (last: {})", last.message),
                    None => e.to_string(),
                };
                Error::e_explain(ErrorType::HTTPStatus(e.status()), why)
            })?;
        if self.tries.is_empty() && self.pool.retry.any() {
            // The retry budget counts requests by their first try.
            self.pool.count_request();
        }
        self.tries.push(Try {
            target: selected.addr,
            started: Instant::now(),
            ended: None,
            status: None,
            error: None,
        });
        self.current = Some((selected.guard, selected.outlier));
        let deadline = grpc::deadline(session);
        self.client_deadline = deadline.is_some();
        Ok(self.pool.peer(selected.addr, self.timeout, deadline))
    }

    /// `fail_to_connect`: a failure of the target; retried while `retries` allow.
    pub fn connect_failed(&mut self, e: &mut Error, metrics: &Metrics) {
        self.end_try(TryError::of(e));
        self.record(Outcome::Failed, metrics);
        self.current = None;
        if self.tries.len() <= self.pool.retries {
            e.set_retry(true);
        }
    }

    /// `upstream_response_filter`: fails the try when the target's `status` is to be
    /// retried (and may be).
    pub fn response(&mut self, session: &Session, status: u16, metrics: &Metrics) -> Result<()> {
        if let Some(current) = self.tries.last_mut() {
            current.status = Some(status);
        }
        if !self.may_retry(session) || !self.pool.retry.on_status(status) {
            return Ok(());
        }
        if !self.charge_retry(metrics) {
            return Ok(());
        }
        self.retried_status = Some(status);
        Error::e_explain(RETRY_STATUS, format!("the target answered {status}"))
    }

    /// `error_while_proxy`: whether `e`, a failure after the request reached its
    /// target, is retried: on what `retry_on` names, within `retries` and the budget;
    /// otherwise by Pingora's own rule (a reused connection the target had closed
    /// before the request).
    pub fn failed(&mut self, session: &Session, e: &mut Error, reused: bool, metrics: &Metrics) {
        self.end_try(TryError::of(e));
        let kind = match e.etype() {
            ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError => {
                Some(RetryKind::Reset)
            }
            ErrorType::ReadTimedout | ErrorType::WriteTimedout if !self.client_deadline => {
                Some(RetryKind::Timeout)
            }
            _ => None,
        };
        let (retry, failed) = if !self.resendable(session) {
            (false, false)
        } else if e.etype() == &RETRY_STATUS {
            // Checked, and charged to the budget, when the status was caught.
            let status = self.retried_status.take();
            (true, status.is_some_and(|s| self.pool.failure_status(s)))
        } else if self.may_retry(session) && kind.is_some_and(|k| self.pool.retry.on(k)) {
            (self.charge_retry(metrics), true)
        } else {
            // Not the target's failure: a pooled connection it had closed meanwhile.
            e.retry.decide_reuse(reused);
            (e.retry(), false)
        };
        e.set_retry(retry);
        if retry && failed {
            self.record(Outcome::Failed, metrics);
        }
    }

    /// `logging`: how the request went at its last target, for passive health; `None`
    /// when it never reached one or failed on the client's side.
    pub fn finish(&mut self, session: &Session, e: Option<&Error>, metrics: &Metrics) {
        if let Some(last) = self.tries.last_mut().filter(|t| t.ended.is_none()) {
            last.ended = Some(Instant::now());
            if let Some(e) = e.filter(|e| e.esource() == &ErrorSource::Upstream) {
                last.error = Some(TryError::of(e));
            }
        }
        let outcome = match e {
            // A timeout at the gRPC call's own deadline is the client's choice.
            Some(e) if timed_out(e) && self.client_deadline => None,
            Some(e) if e.esource() == &ErrorSource::Upstream => Some(Outcome::Failed),
            Some(_) => None,
            None => session.response_written().map(|resp| {
                match self.pool.failure_status(resp.status.as_u16()) {
                    true => Outcome::Failed,
                    false => Outcome::Succeeded,
                }
            }),
        };
        if let Some(outcome) = outcome {
            self.record(outcome, metrics);
        }
        self.current = None;
    }

    fn end_try(&mut self, error: TryError) {
        if let Some(current) = self.tries.last_mut() {
            current.ended = Some(Instant::now());
            current.error = Some(error);
        }
    }

    /// Records `outcome` for the current target (once: its handle is taken).
    fn record(&mut self, outcome: Outcome, metrics: &Metrics) {
        let (Some((_, outlier)), Some(addr)) = (self.current.as_ref(), self.target()) else {
            return;
        };
        let ejected = self.pool.record(outlier, addr, outcome);
        self.current = None;
        if let Some(length) = ejected {
            let upstream = self.pool.targets().name();
            metrics.upstream_ejection(upstream);
            log::warn!(
                "upstream {upstream}: target {addr} ejected for {length:?} after consecutive failures"
            );
        }
    }

    /// Whether sending the request again is safe at all: it may be sent twice, no byte
    /// of a response went out, and its body is still whole.
    fn resendable(&self, session: &Session) -> bool {
        (session.req_header().method.is_idempotent() || self.idempotent)
            && session.response_written().is_none()
            && !session.as_ref().retry_buffer_truncated()
    }

    /// Whether the pool retries at all, the request is resendable, and another try is
    /// within `retries` with an untried healthy target left.
    fn may_retry(&self, session: &Session) -> bool {
        self.pool.retry.any()
            && self.resendable(session)
            && self.tries.len() <= self.pool.retries
            && self.pool.has_untried(&self.tried())
    }

    /// The targets tried so far (nothing is allocated before the first try).
    fn tried(&self) -> Vec<SocketAddr> {
        self.tries.iter().map(|t| t.target).collect()
    }

    /// Takes a retry from the pool's budget, counting the outcome.
    fn charge_retry(&self, metrics: &Metrics) -> bool {
        let granted = self.pool.try_retry();
        let outcome = if granted { "retried" } else { "over_budget" };
        metrics.upstream_retry(self.pool.targets().name(), outcome);
        granted
    }
}

fn timed_out(e: &Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::ReadTimedout | ErrorType::WriteTimedout
    )
}
