//! Responses tollgate writes itself: RFC 9457 `application/problem+json` rejections
//! and errors, and the static answers of `respond` routes. Every one carries the
//! request id and, on a rate-limited route, the `RateLimit-Policy` / `RateLimit`
//! headers. Also maps Pingora errors to statuses (timeouts 504, connection failures 502).

use bytes::Bytes;
use http::{header, HeaderName, Method, StatusCode, Uri};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::{ErrorSource, ErrorType};

use super::RequestCtx;
use crate::auth::AuthError;
use crate::edge::hygiene::HygieneError;
use crate::edge::request_id;
use crate::ratelimit::{RateLimitError, RateLimitHeaders};
use crate::routing::{RouteError, StaticResponse};

pub const RATELIMIT_POLICY: &str = "ratelimit-policy";
pub const RATELIMIT: &str = "ratelimit";

/// A request refused before it reached an upstream.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error(transparent)]
    Hygiene(#[from] HygieneError),
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    RateLimit(#[from] RateLimitError),
    /// Not a refusal: a plain listener sending every request to HTTPS.
    #[error("this resource is served over HTTPS")]
    HttpsRedirect(String),
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Hygiene(e) => e.status(),
            Rejection::Route(e) => e.status(),
            Rejection::Auth(e) => e.status(),
            Rejection::RateLimit(e) => e.status(),
            Rejection::HttpsRedirect(_) => StatusCode::PERMANENT_REDIRECT,
        }
    }

    fn extra_header(&self) -> Option<(HeaderName, String)> {
        match self {
            Rejection::Route(RouteError::MethodNotAllowed { allow }) => {
                Some((header::ALLOW, allow.clone()))
            }
            Rejection::Route(RouteError::NotFound) | Rejection::Hygiene(_) => None,
            Rejection::Auth(e) => e
                .www_authenticate()
                .map(|challenge| (header::WWW_AUTHENTICATE, challenge.to_owned())),
            Rejection::RateLimit(RateLimitError::Limited { retry_after, .. }) => {
                Some((header::RETRY_AFTER, retry_after.to_string()))
            }
            Rejection::RateLimit(
                RateLimitError::Busy { .. } | RateLimitError::StoreUnavailable { .. },
            ) => None,
            Rejection::HttpsRedirect(location) => Some((header::LOCATION, location.clone())),
        }
    }
}

/// Writes `rejection` as problem+json; the connection is closed after a 400-class
/// hygiene error since the client's framing cannot be trusted.
pub async fn reject(
    session: &mut Session,
    rejection: &Rejection,
    ctx: &RequestCtx,
) -> pingora::Result<()> {
    if matches!(rejection, Rejection::Hygiene(_)) {
        session.set_keepalive(None);
    }
    let extra = rejection.extra_header();
    problem(
        session,
        rejection.status(),
        &rejection.to_string(),
        ctx,
        extra,
    )
    .await
}

/// `https://host[:port]/path?query`: where a `redirect_https` listener sends `uri`.
pub fn https_location(host: &str, port: u16, uri: &Uri) -> String {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    match port {
        443 => format!("https://{host}{path}"),
        _ => format!("https://{host}:{port}{path}"),
    }
}

/// Writes an RFC 9457 problem document.
pub async fn problem(
    session: &mut Session,
    status: StatusCode,
    detail: &str,
    ctx: &RequestCtx,
    extra: Option<(HeaderName, String)>,
) -> pingora::Result<()> {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "request_id": ctx.request_id,
    });
    let mut resp = ResponseHeader::build(status, Some(6))?;
    resp.insert_header(header::CONTENT_TYPE, "application/problem+json")?;
    if let Some((name, value)) = extra {
        resp.insert_header(name, value)?;
    }
    write(session, resp, Bytes::from(body.to_string()), ctx).await
}

/// Writes a `respond` route's fixed answer.
pub async fn static_response(
    session: &mut Session,
    r: &StaticResponse,
    rules: &crate::routing::HeaderRules,
    ctx: &RequestCtx,
) -> pingora::Result<()> {
    let mut resp = ResponseHeader::build(r.status, Some(4))?;
    resp.insert_header(header::CONTENT_TYPE, r.content_type.clone())?;
    rules.apply_to_response(&mut resp)?;
    write(session, resp, r.body.clone(), ctx).await
}

/// Headers every response of a request carries, whoever wrote it.
pub fn add_common_headers(resp: &mut ResponseHeader, ctx: &RequestCtx) -> pingora::Result<()> {
    if !ctx.request_id.is_empty() {
        resp.insert_header(request_id::HEADER, &ctx.request_id)?;
    }
    if let Some(RateLimitHeaders { policy, state }) = &ctx.rate_limit {
        resp.insert_header(RATELIMIT_POLICY, policy)?;
        resp.insert_header(RATELIMIT, state)?;
    }
    // RFC 6797 §7.2: HSTS only over a secure transport.
    if let (Some(hsts), Some(_)) = (ctx.route.as_ref().and_then(|r| r.hsts.as_ref()), &ctx.tls) {
        resp.insert_header(header::STRICT_TRANSPORT_SECURITY, hsts.clone())?;
    }
    Ok(())
}

async fn write(
    session: &mut Session,
    mut resp: ResponseHeader,
    body: Bytes,
    ctx: &RequestCtx,
) -> pingora::Result<()> {
    resp.insert_header(header::CONTENT_LENGTH, body.len())?;
    add_common_headers(&mut resp, ctx)?;
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
