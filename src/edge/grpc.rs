//! gRPC calls (`content-type: application/grpc...` over HTTP/2): tollgate's own
//! replies to them are gRPC errors, which gRPC clients understand, not problem+json
//! documents, which they would report as a protocol error. A reply is
//! "Trailers-Only": HTTP 200 with `grpc-status` and `grpc-message` in its only header
//! block. Also reads a call's `grpc-timeout`, its deadline (with a floor, so that a
//! client cannot make tollgate give up on a target at once: see `deadline`).

use http::StatusCode;
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use std::time::Duration;

/// A call's deadline shorter than this counts as this: a shorter one would make the
/// target look like it timed out (and the request is not counted against it anyway).
const DEADLINE_FLOOR: Duration = Duration::from_millis(100);

/// Whether the request is a gRPC call: the gRPC content type, over HTTP/2.
pub fn is_call(session: &Session) -> bool {
    session.is_http2() && is_grpc(session.req_header())
}

/// A gRPC call's deadline from its `grpc-timeout`, at least [`DEADLINE_FLOOR`].
pub fn deadline(session: &Session) -> Option<Duration> {
    is_call(session)
        .then(|| timeout(session.req_header()))
        .flatten()
        .map(|d| d.max(DEADLINE_FLOOR))
}

/// Whether `req` carries the gRPC content type (gRPC-Web's is another).
fn is_grpc(req: &RequestHeader) -> bool {
    req.headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            const GRPC: &str = "application/grpc";
            let starts = ct
                .get(..GRPC.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(GRPC));
            starts && matches!(ct.as_bytes().get(GRPC.len()), None | Some(b'+' | b';'))
        })
}

/// The gRPC status code for tollgate's HTTP status.
pub fn code(status: StatusCode) -> u32 {
    match status.as_u16() {
        400 => 3,        // INVALID_ARGUMENT
        401 => 16,       // UNAUTHENTICATED
        403 => 7,        // PERMISSION_DENIED
        404 | 405 => 12, // UNIMPLEMENTED
        408 | 504 => 4,  // DEADLINE_EXCEEDED
        410 => 5,        // NOT_FOUND
        413 | 429 => 8,  // RESOURCE_EXHAUSTED
        502 | 503 => 14, // UNAVAILABLE
        _ => 2,          // UNKNOWN
    }
}

/// `detail` as a `grpc-message`: percent-encoded outside printable ASCII, and `%`.
pub fn message(detail: &str) -> String {
    let mut out = String::with_capacity(detail.len());
    for b in detail.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The call's `grpc-timeout` (`"500m"`: at most 8 digits and a unit
/// among H, M, S, m, u, n); `None` when absent or malformed.
fn timeout(req: &RequestHeader) -> Option<Duration> {
    let value = req.headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build("POST", b"/pkg.Svc/Call", None).expect("request");
        for (name, value) in headers {
            req.insert_header(name.to_string(), *value).expect("header");
        }
        req
    }

    #[test]
    fn grpc_calls_are_told_by_their_content_type() {
        for ct in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC",
        ] {
            assert!(is_grpc(&request(&[("content-type", ct)])), "{ct}");
        }
        for ct in [
            "application/grpc-web",
            "application/json",
            "application/grpcx",
        ] {
            assert!(!is_grpc(&request(&[("content-type", ct)])), "{ct}");
        }
        assert!(!is_grpc(&request(&[])));
    }

    #[test]
    fn grpc_timeouts_are_read_by_their_unit() {
        let t = |v: &str| timeout(&request(&[("grpc-timeout", v)]));
        assert_eq!(t("500m"), Some(Duration::from_millis(500)));
        assert_eq!(t("2S"), Some(Duration::from_secs(2)));
        assert_eq!(t("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(t("100u"), Some(Duration::from_micros(100)));
        for bad in ["", "m", "123456789m", "5x", "-5S", "5 S"] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn statuses_map_to_grpc_codes_and_messages_are_encoded() {
        assert_eq!(code(StatusCode::UNAUTHORIZED), 16);
        assert_eq!(code(StatusCode::TOO_MANY_REQUESTS), 8);
        assert_eq!(code(StatusCode::SERVICE_UNAVAILABLE), 14);
        assert_eq!(code(StatusCode::GATEWAY_TIMEOUT), 4);
        assert_eq!(code(StatusCode::IM_A_TEAPOT), 2);
        assert_eq!(message("50% done\nnext: é"), "50%25 done%0Anext: %C3%A9");
    }
}
