//! Retries of requests that reached a target (`retry_on`): an idempotent request
//! (by method, or on a route marked `idempotent`) whose target reset the connection,
//! timed out or answered a listed status is sent again to another target, while the
//! upstream's `retries`, a healthy untried target and the retry budget allow, and
//! never once any byte of a response went to the client. A timeout that is the gRPC
//! call's own deadline is not retried. The failed attempt counts for passive health
//! when it is a failure there too.
//!
//! A status is caught in `upstream_response_filter`, before the response is sent on:
//! the filter fails with [`RETRY_STATUS`] and Pingora's error path (`error_while_proxy`,
//! [`Gateway::retry_decision`]) marks the error for a retry. (Pingora keeps the
//! request body for a resend by itself, up to 64 KiB.)

use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};

use super::{Gateway, RequestCtx};
use crate::config::raw::RetryOn;
use crate::upstream::{Outcome, Pool};

/// The error that ends an attempt whose response status is to be retried.
pub const RETRY_STATUS: ErrorType = ErrorType::Custom("upstream status to retry");

/// Whether the request may be sent twice: an idempotent method, or a route that
/// says its requests are.
fn idempotent(session: &Session, ctx: &RequestCtx) -> bool {
    session.req_header().method.is_idempotent() || ctx.route.as_ref().is_some_and(|r| r.idempotent)
}

/// Whether sending the request again is safe at all: it may be sent twice, no byte
/// of a response went out, and its body is still whole.
fn resendable(session: &Session, ctx: &RequestCtx) -> bool {
    idempotent(session, ctx)
        && session.response_written().is_none()
        && !session.as_ref().retry_buffer_truncated()
}

/// The request's pool, when it has `retry_on`, the request is resendable, and
/// another attempt is within `retries` with an untried healthy target left.
fn retry_pool<'a>(session: &Session, ctx: &'a RequestCtx) -> Option<&'a Pool> {
    let pool = ctx.pool()?;
    let eligible = !pool.retry.on.is_empty()
        && resendable(session, ctx)
        && ctx.tried.len() <= pool.retries
        && pool.has_untried(&ctx.tried);
    eligible.then_some(pool.as_ref())
}

/// Counts a request for the retry budget (its first attempt).
pub fn first_attempt(ctx: &RequestCtx) {
    if let Some(pool) = ctx
        .pool()
        .filter(|p| !p.retry.on.is_empty() && ctx.tried.is_empty())
    {
        pool.count_request();
    }
}

impl Gateway {
    /// Fails the attempt when the target's `status` is to be retried (and may be).
    pub(super) fn check_status(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
        status: u16,
    ) -> Result<()> {
        let Some(pool) = retry_pool(session, ctx).filter(|p| p.retry.on_status(status)) else {
            return Ok(());
        };
        if !self.charge_retry(pool) {
            return Ok(());
        }
        ctx.retried_status = Some(status);
        Error::e_explain(RETRY_STATUS, format!("the target answered {status}"))
    }

    /// Whether `e`, an error after the request reached its target, is retried: on
    /// what `retry_on` names, within `retries` and the budget; otherwise by Pingora's
    /// own rule (a reused connection the target had closed before the request).
    pub(super) fn retry_decision(
        &self,
        session: &mut Session,
        e: &mut Error,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) {
        let kind = match e.etype() {
            ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError => {
                Some(RetryOn::Reset)
            }
            // The gRPC call's own deadline: the client's choice, not the target's.
            ErrorType::ReadTimedout | ErrorType::WriteTimedout if !ctx.client_deadline => {
                Some(RetryOn::Timeout)
            }
            _ => None,
        };
        let (retry, failed) = if !resendable(session, ctx) {
            (false, false)
        } else if e.etype() == &RETRY_STATUS {
            // Checked, and charged to the budget, when the status was caught.
            let failed = ctx
                .retried_status
                .take()
                .is_some_and(|s| ctx.pool().is_some_and(|p| p.failure_status(s)));
            (true, failed)
        } else if let Some(pool) =
            retry_pool(session, ctx).filter(|p| kind.is_some_and(|k| p.retry.on(k)))
        {
            (self.charge_retry(pool), true)
        } else {
            // Not the target's failure: a pooled connection it had closed meanwhile.
            e.retry.decide_reuse(client_reused);
            (e.retry(), false)
        };
        e.set_retry(retry);
        if retry && failed {
            self.record_outcome(ctx, Outcome::Failed);
        }
    }

    /// Takes a retry from `pool`'s budget, counting the outcome.
    fn charge_retry(&self, pool: &Pool) -> bool {
        let granted = pool.try_retry();
        let outcome = if granted { "retried" } else { "over_budget" };
        self.metrics.upstream_retry(pool.targets().name(), outcome);
        granted
    }
}
