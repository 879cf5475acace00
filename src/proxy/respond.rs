//! What tollgate writes itself: replies ([`Reply`], as RFC 9457
//! `application/problem+json` with the request id), the static answers of `respond`
//! routes, and the response phase every response of a request goes through, whoever
//! wrote it (to a gRPC call, a reply is a gRPC error: see `edge::grpc`). Also maps
//! Pingora errors to statuses (timeouts 504, connection failures 502).

use bytes::Bytes;
use http::{header, Method, StatusCode};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::ServerSession;
use pingora::proxy::Session;
use pingora::{ErrorSource, ErrorType};

use super::RequestCtx;
use crate::base::{problem_document, Reply};
use crate::connection;
use crate::edge::{grpc, request_id};
use crate::routing::StaticResponse;

/// Writes `reply`: its status and headers, its content or a problem document as body
/// (none for a status that has no body), and closes the connection when the reply says so.
pub async fn reply(
    session: &mut Session,
    mut reply: Reply,
    ctx: &mut RequestCtx,
) -> pingora::Result<()> {
    if reply.close {
        session.set_keepalive(None);
    }
    if grpc::is_call(session) {
        // Logs, jails and metrics count the status the gRPC error stands for.
        ctx.own_status = Some(reply.status.as_u16());
        return grpc_reply(session, reply, ctx).await;
    }
    let mut resp = ResponseHeader::build(reply.status, Some(reply.headers.len() + 4))?;
    for (name, value) in std::mem::take(&mut reply.headers) {
        resp.insert_header(name, value)?;
    }
    let body = match (has_body(reply.status), reply.content.take().map(|c| *c)) {
        (true, Some((content_type, body))) => {
            resp.insert_header(header::CONTENT_TYPE, content_type)?;
            body
        }
        (true, None) => {
            resp.insert_header(header::CONTENT_TYPE, "application/problem+json")?;
            problem(&reply, &ctx.facts.request_id)
        }
        (false, _) => Bytes::new(),
    };
    write(session, resp, body, ctx).await
}

/// `reply` to a gRPC call: HTTP 200 with `grpc-status` and `grpc-message` in its only
/// header block, which ends the stream ("Trailers-Only"; the reply's own headers, such
/// as `Retry-After`, kept).
async fn grpc_reply(
    session: &mut Session,
    reply: Reply,
    ctx: &mut RequestCtx,
) -> pingora::Result<()> {
    let mut resp = ResponseHeader::build(StatusCode::OK, Some(reply.headers.len() + 4))?;
    for (name, value) in reply.headers {
        resp.insert_header(name, value)?;
    }
    resp.insert_header(header::CONTENT_TYPE, "application/grpc")?;
    resp.insert_header("grpc-status", grpc::code(reply.status).to_string())?;
    resp.insert_header("grpc-message", grpc::message(&reply.detail))?;
    response_phase(&mut resp, session.req_header(), ctx, true)?;
    match session.downstream_session.as_mut() {
        // Pingora's session API never ends an HTTP/2 stream with its headers.
        ServerSession::H2(h2) => h2.write_response_header(Box::new(resp), true),
        _ => Err(pingora::Error::explain(
            ErrorType::InternalError,
            "a gRPC reply outside HTTP/2",
        )),
    }
}

/// An RFC 9457 problem document, with the reply's extension members.
fn problem(reply: &Reply, request_id: &str) -> Bytes {
    let mut body = problem_document(reply.status, &reply.detail);
    body["request_id"] = request_id.into();
    for (name, value) in &reply.members {
        body[*name] = value.clone();
    }
    Bytes::from(body.to_string())
}

fn has_body(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// Writes a `respond` route's fixed answer.
pub async fn static_answer(
    session: &mut Session,
    answer: &StaticResponse,
    ctx: &mut RequestCtx,
) -> pingora::Result<()> {
    let mut resp = ResponseHeader::build(answer.status, Some(4))?;
    resp.insert_header(header::CONTENT_TYPE, answer.content_type.clone())?;
    write(session, resp, answer.body.clone(), ctx).await
}

/// What every response of a request carries, whoever wrote it (`own_reply`: tollgate):
/// the request id, then what the stages of its listener and route set.
pub fn response_phase(
    resp: &mut ResponseHeader,
    req: &RequestHeader,
    ctx: &mut RequestCtx,
    own_reply: bool,
) -> pingora::Result<()> {
    // One growth of the header maps at most, for the request id and the stages'.
    resp.reserve_headers(1 + ctx.response_headers_added())?;
    if !ctx.facts.request_id.is_empty() {
        resp.insert_known_header(&request_id::HEADER_NAME, &ctx.facts.request_id)?;
    }
    ctx.response_stages(req, resp, own_reply)
}

async fn write(
    session: &mut Session,
    mut resp: ResponseHeader,
    body: Bytes,
    ctx: &mut RequestCtx,
) -> pingora::Result<()> {
    // RFC 9110 §8.6: no Content-Length on a 204 (or 1xx).
    if has_body(resp.status) || resp.status == StatusCode::NOT_MODIFIED {
        resp.insert_header(header::CONTENT_LENGTH, body.len())?;
    }
    response_phase(&mut resp, session.req_header(), ctx, true)?;
    let head_only = session.req_header().method == Method::HEAD || body.is_empty();
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// The status and client-facing explanation for a failed proxy attempt; `None` when
/// the client is gone and nothing can be written.
pub fn error_status(e: &pingora::Error) -> Option<(StatusCode, &'static str)> {
    use ErrorType::*;
    if connection::slow_body(e) {
        return Some((
            StatusCode::REQUEST_TIMEOUT,
            "the request body arrived slower than body_min_rate",
        ));
    }
    if let HTTPStatus(code) = e.etype() {
        let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_GATEWAY);
        let detail = match status {
            StatusCode::SERVICE_UNAVAILABLE => "no healthy target is available for this route",
            StatusCode::BAD_GATEWAY => "no target of this route could be reached",
            _ => "the request could not be served",
        };
        return Some((status, detail));
    }
    match e.esource() {
        ErrorSource::Upstream => Some(match e.etype() {
            ConnectTimedout | ReadTimedout | WriteTimedout => (
                StatusCode::GATEWAY_TIMEOUT,
                "the upstream did not answer in time",
            ),
            _ => (StatusCode::BAD_GATEWAY, "the upstream connection failed"),
        }),
        ErrorSource::Downstream => match e.etype() {
            ReadError | WriteError | ConnectionClosed => None,
            ReadTimedout | WriteTimedout => None,
            _ => Some((StatusCode::BAD_REQUEST, "the request could not be read")),
        },
        ErrorSource::Internal | ErrorSource::Unset => {
            Some((StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
        }
    }
}
