//! `max_body` of a route (or `[server] max_body`): request bodies over the limit are
//! refused with 413. A `Content-Length` over it is refused before anything goes
//! upstream; a chunked or HTTP/2 body that grows past it is cut off mid-stream, which
//! aborts the upstream request (it never completes) and answers 413 when no response
//! has started. Counted per route in `tollgate_body_too_large_total`.

use http::{header, StatusCode};
use std::sync::Arc;

use super::{BodyChunk, BodyPolicy, ChainBuilder, Reply, RequestPolicy, RequestView};
use crate::observability::Metrics;

struct BodyLimit {
    max: u64,
    route: Arc<str>,
    metrics: Arc<Metrics>,
}

/// Installs the limit; `max` 0 means no limit.
pub fn install(max: u64, route: &str, metrics: &Arc<Metrics>, chain: &mut ChainBuilder) {
    if max > 0 {
        let limit = Arc::new(BodyLimit {
            max,
            route: route.into(),
            metrics: metrics.clone(),
        });
        chain.request(limit.clone());
        chain.body(limit);
    }
}

impl BodyLimit {
    fn too_large(&self) -> Reply {
        self.metrics.body_too_large(&self.route);
        Reply::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {} bytes", self.max),
        )
        .closing()
    }
}

impl RequestPolicy for BodyLimit {
    fn on_request(&self, view: &RequestView<'_>) -> Result<(), Reply> {
        let declared = view
            .req
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
        match declared {
            Some(length) if length > self.max => Err(self.too_large()),
            _ => Ok(()),
        }
    }
}

impl BodyPolicy for BodyLimit {
    fn on_body(&self, _: &RequestView<'_>, chunk: &BodyChunk<'_>) -> Result<(), Reply> {
        match chunk.received > self.max {
            true => Err(self.too_large()),
            false => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::http::RequestHeader;

    #[test]
    fn declared_and_streamed_lengths_over_the_limit_are_refused() {
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let limit = BodyLimit {
            max: 10,
            route: "r".into(),
            metrics,
        };
        let mut req = RequestHeader::build("POST", b"/", None).expect("request");
        req.insert_header("content-length", "10").expect("h");
        assert!(limit.on_request(&RequestView::of(&req)).is_ok());
        req.insert_header("content-length", "11").expect("h");
        let refused = limit.on_request(&RequestView::of(&req)).expect_err("over");
        assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
        let chunk = |received| BodyChunk {
            data: None,
            received,
            end_of_stream: false,
        };
        assert!(limit.on_body(&RequestView::of(&req), &chunk(10)).is_ok());
        assert!(limit.on_body(&RequestView::of(&req), &chunk(11)).is_err());
        assert!(limit
            .metrics
            .render()
            .contains("tollgate_body_too_large_total{route=\"r\"} 2"));
    }
}
