//! Lingering close (RFC 9112 §9.6): after tollgate refused a request whose body is
//! still arriving and is about to close the connection, it reads and discards the
//! rest for a while before closing. Closing at once would leave the client's next
//! bytes unread, and the kernel answers unread bytes at close with a reset, which
//! destroys the refusal on its way to a client that writes its whole body before
//! reading (most do). Bounded by `lingering_time` and `lingering_bytes`; HTTP/1 only
//! (an HTTP/2 stream ends with `RST_STREAM`, the connection stays). A read that fails
//! or times out ends the lingering, never the process.

use pingora::protocols::http::ServerSession;
use std::time::Duration;
use tokio::time::Instant;

/// How long and how much a refused request's body is read after the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lingering {
    pub time: Duration,
    pub bytes: u64,
}

/// Reads and discards what is left of `session`'s request body, within `limits`.
pub async fn linger(session: &mut ServerSession, limits: Lingering) {
    if session.is_http2() || limits.time.is_zero() || limits.bytes == 0 {
        return;
    }
    let deadline = Instant::now() + limits.time;
    let mut discarded = 0u64;
    while discarded < limits.bytes && !session.is_body_done() {
        match tokio::time::timeout_at(deadline, session.read_request_body()).await {
            Ok(Ok(Some(chunk))) => discarded += chunk.len() as u64,
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => break,
        }
    }
}
