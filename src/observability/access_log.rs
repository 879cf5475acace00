//! The access log: one JSON line per request, to stdout or a file.
//!
//! The request path only formats the line and hands it to a bounded channel
//! (`try_send`, never blocking); a dedicated thread writes and flushes. When the
//! writer falls behind by more than `QUEUE_LINES`, lines are dropped and counted
//! rather than slowing requests down; the count is logged once per second of drops.

use async_trait::async_trait;
use pingora::proxy::Session;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::config::raw::AccessLogTarget;
use crate::proxy::RequestCtx;

const QUEUE_LINES: usize = 64 * 1024;

#[derive(Serialize)]
struct AccessRecord<'a> {
    time: String,
    request_id: &'a str,
    client_ip: IpAddr,
    method: &'a str,
    host: &'a str,
    path: &'a str,
    status: u16,
    route: Option<&'a str>,
    upstream: Option<SocketAddr>,
    bytes: usize,
    duration_ms: f64,
}

/// The request side: cheap to clone, never blocks.
#[derive(Clone, Default)]
pub struct AccessLog {
    tx: Option<SyncSender<String>>,
    dropped: Arc<AtomicU64>,
}

/// The writing side, run as a background service once the process has daemonized.
pub struct AccessLogWriter {
    rx: Mutex<Option<Receiver<String>>>,
    out: Mutex<Option<Box<dyn Write + Send>>>,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// Opens the target now (so a bad path fails at start-up, before daemonizing).
    pub fn open(target: &AccessLogTarget) -> io::Result<(AccessLog, Option<AccessLogWriter>)> {
        let out: Box<dyn Write + Send> = match target {
            AccessLogTarget::Off => return Ok((AccessLog::default(), None)),
            AccessLogTarget::Stdout => Box::new(io::stdout()),
            AccessLogTarget::File(path) => Box::new(open_append(path)?),
        };
        let (tx, rx) = sync_channel(QUEUE_LINES);
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = AccessLogWriter {
            rx: Mutex::new(Some(rx)),
            out: Mutex::new(Some(out)),
            dropped: dropped.clone(),
        };
        Ok((
            AccessLog {
                tx: Some(tx),
                dropped,
            },
            Some(writer),
        ))
    }

    pub fn record(&self, session: &Session, ctx: &RequestCtx) {
        let Some(tx) = &self.tx else { return };
        let req = session.req_header();
        let record = AccessRecord {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            request_id: &ctx.request_id,
            client_ip: ctx.client_ip,
            method: req.method.as_str(),
            host: &ctx.host,
            path: req.uri.path(),
            status: session.response_written().map_or(0, |r| r.status.as_u16()),
            route: ctx.route.as_deref().map(|r| &*r.name),
            upstream: ctx.target(),
            bytes: session.body_bytes_sent(),
            duration_ms: (ctx.started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        };
        let Ok(line) = serde_json::to_string(&record) else {
            return;
        };
        if let Err(TrySendError::Full(_)) = tx.try_send(line) {
            self.dropped.fetch_add(1, Relaxed);
        }
    }
}

fn open_append(path: &std::path::Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("access log {}: {e}", path.display())))
}

#[async_trait]
impl BackgroundService for AccessLogWriter {
    async fn start(&self, _shutdown: ShutdownWatch) {
        let rx = self.rx.lock().ok().and_then(|mut r| r.take());
        let out = self.out.lock().ok().and_then(|mut o| o.take());
        let (Some(rx), Some(out)) = (rx, out) else {
            return;
        };
        let dropped = self.dropped.clone();
        let spawned = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(rx, out, &dropped));
        if let Err(e) = spawned {
            log::error!("cannot start the access log writer: {e}");
        }
    }
}

/// Writes lines as they come, flushing whenever the queue is empty.
fn write_lines(rx: Receiver<String>, out: Box<dyn Write + Send>, dropped: &AtomicU64) {
    let mut out = BufWriter::new(out);
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                let _ = writeln!(out, "{line}");
                while let Ok(line) = rx.try_recv() {
                    let _ = writeln!(out, "{line}");
                }
                if let Err(e) = out.flush() {
                    log::warn!("access log write failed: {e}");
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let n = dropped.swap(0, Relaxed);
        if n > 0 {
            log::warn!("access log fell behind: {n} lines dropped");
        }
    }
}
