//! The request body through the route's stages: read and judged before an upstream is
//! chosen as far as the stages hold it ([`hold`]), then, past that, per chunk as it
//! streams to the upstream ([`filter`]).
//!
//! Holding: `request_filter` reads the first `holds_body` bytes (the route's request
//! buffer, or the whole body up to `max_body` where validation needs it) and runs the
//! body stages on them; a refusal is answered there, and the upstream sees nothing of
//! the request. Pingora keeps what was read (its retry buffer, sized for the hold) and
//! sends it first when it proxies; those bytes pass `request_body_filter` again and
//! are not judged twice. `Expect: 100-continue` is answered here, once the head has
//! passed and the body will be read, and not forwarded.
//!
//! A stage that refuses a streamed chunk answers after the head went upstream.
//! Pingora offers no direct way to answer from `request_body_filter`: the filter fails
//! with [`BODY_REFUSED`], and `fail_to_proxy` writes the stage's reply (kept in the
//! request's body state) and closes the connection.

use bytes::Bytes;
use http::{header, StatusCode};
use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};

use super::hold::HeldBytes;
use super::RequestCtx;
use crate::base::Reply;
use crate::connection;
use crate::stage::{BodyChunk, Refusal};

/// The error that ends proxying when a body stage answered (`ctx.body.reply`).
pub const BODY_REFUSED: ErrorType = ErrorType::Custom("request body refused");

/// The most one read of the body returns: Pingora's HTTP/1 reads take up to 64 KiB;
/// HTTP/2 DATA frames are at most the 16 KiB frame size Pingora advertises. The
/// buffer kept for the upstream has this much room past the hold, so the read that
/// crosses it is kept whole.
const READ_MAX: u64 = 64 * 1024;

/// Reads and judges the body as far as the route's stages hold it, before anything
/// goes upstream. `Ok(Some(reply))`: a stage (or the memory bound) refused it.
pub async fn hold(
    session: &mut Session,
    ctx: &mut RequestCtx,
    held: &HeldBytes,
) -> Result<Option<Reply>> {
    if session.is_body_empty() {
        return Ok(None);
    }
    if session.is_upgrade_req() {
        // A WebSocket handshake has no body. One with a body leaves where the body
        // ends and the upgraded bytes begin to each reader's guess, and would pass
        // around the hold.
        let reply = Reply::new(
            StatusCode::BAD_REQUEST,
            "a request that asks to upgrade the connection must not have a body",
        );
        return Ok(Some(reply.closing()));
    }
    let holds = ctx.route.as_ref().map_or(0, |r| r.stages.holds_body());
    if holds == 0 {
        return Ok(None);
    }
    if expects_continue(session) {
        session.req_header_mut().remove_header(&header::EXPECT);
        session
            .write_continue_response()
            .await
            .map_err(|e| e.into_down())?;
    }
    let room = usize::try_from(holds.saturating_add(READ_MAX)).unwrap_or(usize::MAX);
    session.enable_retry_buffering_up_to(room);
    ctx.body.holding = true;
    loop {
        let read = session.read_request_body().await;
        let mut body = read.map_err(|e| e.into_down())?;
        let end = body.is_none() || session.is_body_done();
        if let Err(reply) = judge(session, &mut body, end, ctx, held) {
            return Ok(Some(match end {
                true => reply,
                false => reply.closing(),
            }));
        }
        // `holding` turns off when held bodies use all `request_buffer_memory`.
        if end || ctx.body.received > holds || !ctx.body.holding {
            break;
        }
    }
    ctx.body.holding = false;
    if session.is_body_done() {
        connection::body_complete(session);
    }
    if session.retry_buffer_truncated() {
        // Not expected (the buffer has room for the read that crosses the hold), but
        // what was read could no longer reach the upstream whole.
        let reply = Reply::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the body could not be held",
        );
        return Ok(Some(reply.closing()));
    }
    Ok(None)
}

/// `Expect: 100-continue` (the only expectation there is, RFC 9110 §10.1.1).
fn expects_continue(session: &Session) -> bool {
    let expect = session.req_header().headers.get(header::EXPECT);
    expect.is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Runs one streamed chunk of the body through the route's body stages.
pub fn filter(
    session: &Session,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
    ctx: &mut RequestCtx,
    held: &HeldBytes,
) -> Result<()> {
    // Pingora calls this once for a request without a body too (nothing to check:
    // no Arc is cloned), for an upgraded connection (WebSocket), whose bytes are no
    // request body, and with the held bytes, judged already, before the rest (and
    // with the end of the body, judged already when the hold saw it).
    let no_body = body.is_none() && ctx.body.received == 0;
    let replayed = body.as_ref().is_some_and(|b| !b.is_empty());
    let held_again = replayed && session.body_bytes_read() as u64 <= ctx.body.received;
    let judged = held_again || ctx.body.ended;
    let stages = ctx.route.as_ref().map(|r| &r.stages);
    let looked_at = stages.is_some_and(|s| s.has_body_hooks());
    if no_body || judged || session.was_upgraded() || !looked_at {
        return Ok(());
    }
    match judge(session, body, end_of_stream, ctx, held) {
        Ok(()) => Ok(()),
        Err(reply) => {
            let status = reply.status.as_u16();
            ctx.body.reply = Some(reply);
            Error::e_explain(BODY_REFUSED, format!("answered {status}"))
        }
    }
}

/// Counts a chunk (and holds it while the stages hold the body), then runs the body
/// stages on it; a refusal is recorded in `ctx.refusal`.
fn judge(
    session: &Session,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
    ctx: &mut RequestCtx,
    held: &HeldBytes,
) -> Result<(), Reply> {
    let Some(route) = ctx.route.clone() else {
        return Ok(());
    };
    let stages = &route.stages;
    let state = &mut ctx.body;
    state.received += body.as_ref().map_or(0, |b| b.len() as u64);
    state.ended |= end_of_stream;
    let budget = ctx.snap.request_buffer_memory;
    let whole = stages.whole_body();
    let mut refused = match state.holding {
        true => state
            .held
            .hold(body, end_of_stream, whole, held, budget)
            .err(),
        false => None,
    };
    if refused.is_some() && !whole {
        // Over `request_buffer_memory`: a body only part of which is held streams
        // from here on rather than being refused (503 is for whole bodies).
        state.holding = false;
        refused = None;
    }
    let mut refused = refused.map(|reply| ("hold", reply));
    if refused.is_none() && stages.has_body_hooks() {
        let chunk = BodyChunk {
            data: body.as_ref(),
            received: ctx.body.received,
            end_of_stream,
        };
        let req = session.req_header();
        let ran = stages.body(req, &mut ctx.facts, &mut ctx.route_slots, &chunk);
        refused = ran.err().map(|r| (r.stage, r.reply));
    }
    let Some((stage, reply)) = refused else {
        return Ok(());
    };
    ctx.refusal = Some(Refusal {
        stage,
        status: reply.status.as_u16(),
        detail: reply.detail.clone(),
    });
    Err(reply)
}
