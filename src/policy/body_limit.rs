//! The size of a route's request bodies: `max_body` (or `[server] max_body`), over
//! which a body is refused with 413, and `request_buffer` (or `[server]
//! request_buffer`), how much of a body is read and judged before an upstream is
//! chosen (declared as `holds_body`; the proxy does the reading).
//!
//! A `Content-Length` over the limit is refused at the head. A chunked or HTTP/2 body
//! that grows past it is refused while it is held, before the upstream sees anything,
//! when the limit is within the request buffer; past the buffer it is cut off
//! mid-stream, which aborts the upstream request (it never completes) and answers 413
//! when no response has started. Counted per route in `tollgate_body_too_large_total`.

use http::{header, StatusCode};
use std::sync::Arc;

use crate::observability::Metrics;
use crate::stage::{
    BodyChunk, Cx, Declared, Flow, Hooks, Reply, RequestView, Stage, StagesBuilder, Step,
};

struct BodyLimit {
    /// 0: no limit.
    max: u64,
    buffer: u64,
    route: Arc<str>,
    metrics: Arc<Metrics>,
}

/// Installs the limit (`max` 0: none) and the request buffer (`buffer` 0: bodies
/// stream).
pub fn install(
    max: u64,
    buffer: u64,
    route: &str,
    metrics: &Arc<Metrics>,
    stages: &mut StagesBuilder,
) {
    if max > 0 || buffer > 0 {
        stages.add(BodyLimit {
            max,
            buffer,
            route: route.into(),
            metrics: metrics.clone(),
        });
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

    /// A declared `Content-Length` over the limit.
    fn check_declared(&self, view: &RequestView<'_>) -> Flow {
        let declared = view
            .req
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
        match declared {
            Some(length) if self.max > 0 && length > self.max => Err(self.too_large()),
            _ => Ok(()),
        }
    }

    /// A body that grew past the limit.
    fn check_received(&self, chunk: &BodyChunk<'_>) -> Flow {
        match self.max > 0 && chunk.received > self.max {
            true => Err(self.too_large()),
            false => Ok(()),
        }
    }
}

impl Stage for BodyLimit {
    fn name(&self) -> &'static str {
        "body_limit"
    }

    fn declares(&self) -> Declared {
        let hooks = match self.max {
            0 => Hooks::default(),
            _ => Hooks::REQUEST.and(Hooks::BODY),
        };
        Declared {
            holds_body: self.buffer,
            refuses_after_head: self.max > self.buffer,
            ..Declared::hooks(hooks)
        }
    }

    fn on_request<'a>(&'a self, cx: &'a mut Cx<'_>) -> Step<'a> {
        self.check_declared(&cx.view()).into()
    }

    fn on_body(&self, _: &mut Cx<'_>, chunk: &BodyChunk<'_>) -> Flow {
        self.check_received(chunk)
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
            buffer: 0,
            route: "r".into(),
            metrics,
        };
        let mut req = RequestHeader::build("POST", b"/", None).expect("request");
        req.insert_header("content-length", "10").expect("h");
        assert!(limit.check_declared(&RequestView::of(&req)).is_ok());
        req.insert_header("content-length", "11").expect("h");
        let refused = limit
            .check_declared(&RequestView::of(&req))
            .expect_err("over");
        assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
        let chunk = |received| BodyChunk {
            data: None,
            received,
            end_of_stream: false,
        };
        assert!(limit.check_received(&chunk(10)).is_ok());
        assert!(limit.check_received(&chunk(11)).is_err());
        assert!(limit
            .metrics
            .render()
            .contains("tollgate_body_too_large_total{route=\"r\"} 2"));
    }
}
