//! The request's side of passive health: how the request went at its target (a
//! connect failure, an error talking to it, or its response's status), recorded in
//! the target's [`crate::upstream::Outlier`] through its pool, and the log line and
//! count when that ejects the target.

use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType};

use super::{Gateway, RequestCtx};
use crate::upstream::Outcome;

/// How the request went at its last target, once it is over; `None` when it never
/// reached one, or failed on the client's side (not the target's fault).
pub fn outcome(session: &Session, e: Option<&Error>, ctx: &RequestCtx) -> Option<Outcome> {
    ctx.outlier.as_ref()?;
    let pool = ctx.pool()?;
    match e {
        // A timeout at the gRPC call's own deadline is the client's choice.
        Some(e) if timed_out(e) && ctx.client_deadline => None,
        Some(e) if e.esource() == &ErrorSource::Upstream => Some(Outcome::Failed),
        Some(_) => None,
        None => {
            let status = session.response_written()?.status.as_u16();
            Some(match pool.failure_status(status) {
                true => Outcome::Failed,
                false => Outcome::Succeeded,
            })
        }
    }
}

fn timed_out(e: &Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::ReadTimedout | ErrorType::WriteTimedout
    )
}

impl Gateway {
    /// Records `outcome` for the current target (once: the handle is taken).
    pub(super) fn record_outcome(&self, ctx: &mut RequestCtx, outcome: Outcome) {
        let (Some(outlier), Some(pool), Some(addr)) =
            (ctx.outlier.take(), ctx.pool(), ctx.tried.last().copied())
        else {
            return;
        };
        if let Some(length) = pool.record(&outlier, addr, outcome) {
            let upstream = pool.targets().name();
            self.metrics.upstream_ejection(upstream);
            log::warn!(
                "upstream {upstream}: target {addr} ejected for {length:?} after consecutive failures"
            );
        }
    }
}
