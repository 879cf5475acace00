//! A real OTLP/HTTP trace receiver (Python's `opentelemetry-proto`,
//! `tests/support/otlp/collector.py`) on a free loopback port, for as long as the
//! value lives: every span it decodes is kept as JSON.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::eventually;

pub struct Collector {
    pub port: u16,
    spans: Arc<Mutex<Vec<serde_json::Value>>>,
    child: Child,
}

impl Collector {
    /// A collector that takes every export.
    pub fn start() -> Collector {
        Self::start_with(&[])
    }

    /// A collector run with `args` (`--status CODE`, `--hang`).
    pub fn start_with(args: &[&str]) -> Collector {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/otlp/collector.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with opentelemetry-proto (scripts/deps.sh installs it)");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let port = first
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the collector did not start: {first:?}"));
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = spans.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(span) = serde_json::from_str(&line) {
                    kept.lock().expect("spans").push(span);
                }
            }
        });
        Collector { port, spans, child }
    }

    /// The `endpoint` of a `[tracing]` section sending here.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/v1/traces", self.port)
    }

    /// The spans of trace `trace_id` (hex), once at least `n` have arrived (or all
    /// there are after 10 s).
    pub async fn trace(&self, trace_id: &str, n: usize) -> Vec<serde_json::Value> {
        let of_trace = || -> Vec<serde_json::Value> {
            let spans = self.spans.lock().expect("spans");
            spans
                .iter()
                .filter(|s| s["trace_id"] == trace_id)
                .cloned()
                .collect()
        };
        eventually(Duration::from_secs(10), || async { of_trace().len() >= n }).await;
        of_trace()
    }

    /// Every span received so far.
    pub fn all(&self) -> Vec<serde_json::Value> {
        self.spans.lock().expect("spans").clone()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
