//! Retries of requests that reached a target (`retry_on`): an idempotent request
//! (by method, or on a route marked `idempotent`) whose target reset the connection,
//! timed out or answered a listed status is sent again to another target, while the
//! upstream's `retries` and retry budget allow, and never once any byte of a response
//! went to the client. The failed target's outcome counts for passive health.
//!
//! A status is caught in `upstream_response_filter`, before the response is sent on:
//! the filter fails with [`RETRY_STATUS`] and Pingora's error path (`error_while_proxy`,
//! [`Gateway::retry_decision`]) marks the error for a retry.

use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};

use super::{Gateway, RequestCtx};
use crate::config::raw::RetryOn;
use crate::upstream::{now_ms, Outcome, Pool};

/// The error that ends an attempt whose response status is to be retried.
pub const RETRY_STATUS: ErrorType = ErrorType::Custom("upstream status to retry");

/// Whether the request may be sent twice: an idempotent method, or a route that
/// says its requests are.
fn idempotent(session: &Session, ctx: &RequestCtx) -> bool {
    session.req_header().method.is_idempotent() || ctx.route.as_ref().is_some_and(|r| r.idempotent)
}

/// The request's pool, when its requests may be retried after reaching a target
/// and one more attempt is within `retries`.
fn retry_pool<'a>(session: &Session, ctx: &'a RequestCtx) -> Option<&'a Pool> {
    let pool = ctx.pool()?;
    let eligible = !pool.retry.on.is_empty()
        && ctx.tried.len() <= pool.retries
        && idempotent(session, ctx)
        && session.response_written().is_none()
        && !session.as_ref().retry_buffer_truncated();
    eligible.then_some(pool.as_ref())
}

/// Keeps the request body for a resend when the request may be retried.
pub fn prepare(session: &mut Session, ctx: &RequestCtx) {
    if ctx.pool().is_some_and(|p| !p.retry.on.is_empty()) && idempotent(session, ctx) {
        session.as_mut().enable_retry_buffering();
    }
}

/// Counts a request for the retry budget (its first attempt).
pub fn first_attempt(ctx: &RequestCtx) {
    if let Some(pool) = ctx
        .pool()
        .filter(|p| !p.retry.on.is_empty() && ctx.tried.is_empty())
    {
        pool.retry.budget().request(now_ms());
    }
}

/// Fails the attempt when the target's `status` is to be retried (and may be).
pub fn check_status(session: &Session, ctx: &RequestCtx, status: u16) -> Result<()> {
    let Some(pool) = retry_pool(session, ctx) else {
        return Ok(());
    };
    if pool.retry.on_status(status) && pool.retry.budget().try_retry(now_ms()) {
        return Error::e_explain(RETRY_STATUS, format!("the target answered {status}"));
    }
    Ok(())
}

impl Gateway {
    /// Whether `e`, an error after the request reached its target, is retried: on
    /// what `retry_on` names, within `retries` and the budget; otherwise by Pingora's
    /// own rule (a reused connection the target had closed). Never for a request
    /// that may not be sent twice, or once a response began.
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
            ErrorType::ReadTimedout | ErrorType::WriteTimedout => Some(RetryOn::Timeout),
            _ => None,
        };
        let safe = idempotent(session, ctx)
            && session.response_written().is_none()
            && !session.as_ref().retry_buffer_truncated();
        let retry = if !safe {
            false
        } else if e.etype() == &RETRY_STATUS {
            // Checked, and charged to the budget, when the status was caught.
            true
        } else if let Some(pool) =
            retry_pool(session, ctx).filter(|p| kind.is_some_and(|k| p.retry.on(k)))
        {
            pool.retry.budget().try_retry(now_ms())
        } else {
            e.retry.decide_reuse(client_reused);
            e.retry()
        };
        e.set_retry(retry);
        if retry {
            self.record_outcome(ctx, Outcome::Failed);
        }
    }
}
