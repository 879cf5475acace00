//! The exporter: a bounded queue of finished requests' spans, sent to the collector
//! in batches (OTLP/HTTP, `application/x-protobuf`) once a second by a background
//! chore (every 50 ms while requests come faster than that drains them). It never holds a request: a request only tries to queue its spans; when the
//! queue is full they are dropped and counted (`tollgate_tracing_spans_dropped_total`),
//! and a slow or absent collector only fills the queue. Every export is counted by
//! its result (`tollgate_tracing_exports_total{result="success"|"failure"}`); a
//! failure is logged once until an export succeeds again.
//!
//! Why not `opentelemetry-otlp` and its SDK: their batch processor runs on a thread
//! of its own and drops spans without telling the caller, so the drops could not be
//! counted in tollgate's metrics, and its span API expects a live span object per
//! request where tollgate records a request once it is over. The messages come from
//! `opentelemetry-proto`; they are sent with the HTTP client tollgate already has
//! (reqwest, as for JWKS), on the chores' runtime.

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::encoding::{self, message, WireType};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::span::{text, Finished};
use crate::base::background::Chore;
use crate::observability::Metrics;

/// Requests whose spans wait for an export, at most.
const QUEUED: usize = 4096;
/// Requests whose spans go in one export, at most.
const BATCH: usize = 512;
const EXPORT_EVERY: Duration = Duration::from_secs(1);
/// While requests come faster than an export a second takes (a round sent more than
/// `BUSY` of them), the next round comes this soon: at 40,000 requests a second, 2,000
/// wait between rounds, half the queue.
const BUSY_EVERY: Duration = Duration::from_millis(50);
const BUSY: usize = BATCH / 8;
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how spans are sent.
pub struct Destination {
    pub endpoint: String,
    pub service_name: String,
    /// Header names and values (from the environment) sent with every export.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Destination {
    /// What is compared across reloads (a change builds a new exporter): everything,
    /// the header values as digests.
    pub fn definition(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(name, value)| {
                format!("{name}={}", hex::encode(Sha256::digest(value.as_bytes())))
            })
            .collect();
        format!(
            "{} {} {}",
            self.endpoint,
            self.service_name,
            headers.join(",")
        )
    }
}

pub struct Exporter {
    queue: SyncSender<Finished>,
    /// The resource (`service.name`) and the instrumentation scope of every export.
    resource: Resource,
    scope: InstrumentationScope,
    waiting: Mutex<Receiver<Finished>>,
    destination: Destination,
    client: reqwest::Client,
    dropped: prometheus::IntCounter,
    exports: prometheus::IntCounterVec,
    /// The last export failed (logged once per outage).
    failing: AtomicBool,
}

impl Exporter {
    pub fn new(destination: Destination, metrics: &Metrics) -> Result<Self, String> {
        let counters = |e: prometheus::Error| format!("cannot register the tracing counters: {e}");
        let dropped = metrics
            .counter_vec(
                "tracing_spans_dropped_total",
                "Spans dropped because the export queue was full",
                &[],
            )
            .map_err(counters)?
            .with_label_values(&[] as &[&str]);
        let exports = metrics
            .counter_vec(
                "tracing_exports_total",
                "Exports of spans to the collector, by result",
                &["result"],
            )
            .map_err(counters)?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot make the exporter's HTTP client: {e}"))?;
        let (queue, waiting) = sync_channel(QUEUED);
        Ok(Self {
            queue,
            resource: Resource {
                attributes: vec![text("service.name", &destination.service_name)],
                ..Resource::default()
            },
            scope: InstrumentationScope {
                name: "tollgate".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ..InstrumentationScope::default()
            },
            waiting: Mutex::new(waiting),
            destination,
            client,
            dropped,
            exports,
            failing: AtomicBool::new(false),
        })
    }

    /// Queues a request's spans, or drops and counts them when the queue is full.
    pub fn send(&self, finished: Finished) {
        match self.queue.try_send(finished) {
            Ok(()) => {}
            Err(TrySendError::Full(f) | TrySendError::Disconnected(f)) => {
                self.dropped.inc_by(f.span_count());
            }
        }
    }

    /// Up to `BATCH` queued requests' spans, as one export's body (an
    /// `ExportTraceServiceRequest` with one `ResourceSpans` and one `ScopeSpans`);
    /// `None` when nothing waits.
    ///
    /// Each span is encoded once, as it is made, and the messages around them are
    /// framed by hand: encoding the whole request as one message would measure every
    /// span's length again at each level it is nested in.
    fn next_batch(&self) -> Option<(Bytes, usize)> {
        let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let finished: Vec<Finished> = waiting.try_iter().take(BATCH).collect();
        drop(waiting);
        if finished.is_empty() {
            return None;
        }
        let count = finished.len();
        // ScopeSpans: its scope (field 1), then every span (field 2).
        let mut scope_spans = Vec::with_capacity(count * 1024);
        message::encode(1, &self.scope, &mut scope_spans);
        for span in finished.into_iter().flat_map(Finished::into_spans) {
            message::encode(2, &span, &mut scope_spans);
        }
        // ResourceSpans: its resource (field 1), then the ScopeSpans (field 2).
        let mut resource_spans = Vec::with_capacity(scope_spans.len() + 64);
        message::encode(1, &self.resource, &mut resource_spans);
        length_delimited(2, &scope_spans, &mut resource_spans);
        // ExportTraceServiceRequest: the ResourceSpans (field 1).
        let mut request = Vec::with_capacity(resource_spans.len() + 8);
        length_delimited(1, &resource_spans, &mut request);
        Some((Bytes::from(request), count))
    }

    /// Sends one batch; whether the collector took it.
    async fn export(&self, body: Bytes) -> Result<(), String> {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.destination.headers {
            headers.insert(name.clone(), value.clone());
        }
        let sent = self
            .client
            .post(&self.destination.endpoint)
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match sent.status() {
            status if status.is_success() => Ok(()),
            status => Err(format!("the collector answered {status}")),
        }
    }

    fn count(&self, result: Result<(), String>) {
        let label = if result.is_ok() { "success" } else { "failure" };
        self.exports.with_label_values(&[label]).inc();
        let endpoint = &self.destination.endpoint;
        match result {
            Ok(()) => {
                if self.failing.swap(false, Relaxed) {
                    log::info!("tracing: {endpoint} takes spans again");
                }
            }
            Err(e) => {
                if !self.failing.swap(true, Relaxed) {
                    log::warn!("tracing: cannot export to {endpoint}: {e}; spans queue meanwhile");
                }
            }
        }
    }
}

/// Field `tag` of a message: `bytes`, an encoded message, framed with their length.
fn length_delimited(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encoding::encode_key(tag, WireType::LengthDelimited, out);
    encoding::encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

impl Chore for Exporter {
    fn first_round(&self) -> Duration {
        EXPORT_EVERY
    }

    /// Sends what waits, batch after batch; the next round comes sooner while busy.
    fn round(self: Arc<Self>) -> BoxFuture<'static, Option<Duration>> {
        Box::pin(async move {
            let mut sent = 0;
            while let Some((body, count)) = self.next_batch() {
                let result = self.export(body).await;
                self.count(result);
                sent += count;
                if count < BATCH {
                    break;
                }
            }
            Some(match sent > BUSY {
                true => BUSY_EVERY,
                false => EXPORT_EVERY,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracing::span::TrySpan;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    fn request(tries: usize) -> Finished {
        let try_span = |_| TrySpan {
            span_id: [2; 8],
            target: "127.0.0.1:1".parse().expect("addr"),
            status: Some(200),
            error: None,
            start_ns: 0,
            end_ns: 1,
        };
        Finished {
            trace_id: [1; 16],
            server_span: [1; 8],
            parent: None,
            tracestate: None,
            method: "GET".into(),
            path: "/".into(),
            route: None,
            status: Some(200),
            client_ip: "192.0.2.1".parse().expect("ip"),
            protocol_version: "1.1",
            user_agent: None,
            consumer: None,
            refused: None,
            start_ns: 0,
            end_ns: 1,
            tries: (0..tries).map(try_span).collect(),
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_batches_are_bounded() {
        let metrics = Metrics::new().expect("metrics");
        let destination = Destination {
            endpoint: "http://127.0.0.1:1/v1/traces".into(),
            service_name: "t".into(),
            headers: Vec::new(),
        };
        let exporter = Exporter::new(destination, &metrics).expect("exporter");
        for _ in 0..QUEUED {
            exporter.send(request(1));
        }
        exporter.send(request(2));
        assert!(metrics
            .render()
            .contains("tollgate_tracing_spans_dropped_total 3"));
        let (_, first) = exporter.next_batch().expect("a batch");
        assert_eq!(first, BATCH);
        let mut left = QUEUED - BATCH;
        while let Some((body, count)) = exporter.next_batch() {
            let decoded = ExportTraceServiceRequest::decode(body).expect("protobuf");
            assert_eq!(decoded.resource_spans.len(), 1);
            let spans = &decoded.resource_spans[0].scope_spans[0].spans;
            assert_eq!(spans.len(), 2 * count, "each request: SERVER + CLIENT");
            left -= count;
        }
        assert_eq!(left, 0);
    }
}
