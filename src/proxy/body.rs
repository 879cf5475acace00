//! The request body through the route's stages: counted, held back whole when a stage
//! needs all of it first (`hold`), then handed to each stage's body hook.
//!
//! A stage that refuses the body answers after the head may have gone upstream.
//! Pingora offers no direct way to answer from `request_body_filter`: the filter fails
//! with [`BODY_REFUSED`], and `fail_to_proxy` writes the stage's reply (kept in the
//! request's body state) and closes the connection.

use bytes::Bytes;
use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};

use super::hold::HeldBytes;
use super::RequestCtx;
use crate::stage::{BodyChunk, Refusal};

/// The error that ends proxying when a body stage answered (`ctx.body.reply`).
pub const BODY_REFUSED: ErrorType = ErrorType::Custom("request body refused");

/// Runs one chunk of the body through the route's body stages.
pub fn filter(
    session: &Session,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
    ctx: &mut RequestCtx,
    held: &HeldBytes,
) -> Result<()> {
    // Pingora calls this once for a request without a body too (nothing to check:
    // no Arc is cloned), and for an upgraded connection (WebSocket), whose bytes are
    // no request body.
    let no_body = body.is_none() && ctx.body.received == 0;
    let stages = ctx.route.as_ref().map(|r| &r.stages);
    if no_body || session.was_upgraded() || !stages.is_some_and(|s| s.has_body_hooks()) {
        return Ok(());
    }
    let Some(route) = ctx.route.clone() else {
        return Ok(());
    };
    let state = &mut ctx.body;
    state.received += body.as_ref().map_or(0, |b| b.len() as u64);
    let budget = ctx.snap.validation_memory;
    let refused = match route.stages.whole_body() {
        true => state.held.hold(body, end_of_stream, held, budget).err(),
        false => None,
    };
    let chunk = BodyChunk {
        data: body.as_ref(),
        received: state.received,
        end_of_stream,
    };
    let (stage, reply) = match refused {
        Some(reply) => ("hold", reply),
        None => {
            let req = session.req_header();
            let slots = &mut ctx.route_slots;
            match route.stages.body(req, &mut ctx.facts, slots, &chunk) {
                Ok(()) => return Ok(()),
                Err(refused) => (refused.stage, refused.reply),
            }
        }
    };
    let status = reply.status.as_u16();
    ctx.refusal = Some(Refusal {
        stage,
        status,
        detail: reply.detail.clone(),
    });
    ctx.body.reply = Some(reply);
    Error::e_explain(BODY_REFUSED, format!("answered {status}"))
}
