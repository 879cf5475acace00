//! `body_min_rate` for HTTP/2 request bodies. An HTTP/1.1 connection carries one
//! body at a time and is judged at its reads ([`super::stream`]); an HTTP/2
//! connection multiplexes streams, so each stream's body is judged by itself, at the
//! reads of that stream (Pingora's HTTP/2 session asks a [`ReadPace`], an addition of
//! tollgate's vendored `pingora-core`). The same [`BodyPace`] judges both: 5 s of
//! grace, then every 5 s of waiting must bring the rate. A body too slow fails its
//! read with [`SlowBody`], as on HTTP/1.1: the proxy answers 408 while it still can,
//! else the stream is reset; the connection and its other streams go on.

use pingora::protocols::http::v2::server::ReadPace;
use pingora::protocols::http::ServerSession;
use pingora::{Error, ErrorType};
use std::time::Instant;

use super::pace::{BodyPace, TooSlow};
use super::stream::SlowBody;
use crate::observability::Metrics;

/// One HTTP/2 stream's body pace, and where a body too slow is counted.
struct StreamPace {
    pace: BodyPace,
    too_slow: prometheus::IntCounter,
}

/// Judges the body of `session`, when it is an HTTP/2 stream with a body, by
/// `min_rate` (bytes per second; 0: not judged).
pub fn judge(session: &mut ServerSession, min_rate: u64, metrics: &Metrics) {
    if min_rate == 0 || session.is_body_empty() {
        return;
    }
    if let ServerSession::H2(h2) = session {
        h2.set_read_pace(Box::new(StreamPace {
            pace: BodyPace::new(min_rate),
            too_slow: metrics.client_timeouts("body"),
        }));
    }
}

impl StreamPace {
    fn verdict(&self, judged: Result<(), TooSlow>) -> pingora::Result<()> {
        judged.or_else(|TooSlow| {
            self.too_slow.inc();
            let cause = std::io::Error::new(std::io::ErrorKind::TimedOut, SlowBody);
            Error::e_because(ErrorType::ReadTimedout, "HTTP/2 request body", cause)
        })
    }
}

impl ReadPace for StreamPace {
    fn waiting(&mut self, now: Instant) -> Instant {
        self.pace.waiting(now)
    }

    fn received(&mut self, bytes: u64, now: Instant) -> pingora::Result<()> {
        let judged = self.pace.received(bytes, now);
        self.verdict(judged)
    }

    fn expired(&mut self, now: Instant) -> pingora::Result<()> {
        let judged = self.pace.expired(now);
        self.verdict(judged)
    }
}
