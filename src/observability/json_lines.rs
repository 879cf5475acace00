//! A JSON-lines sink (access log, security log): the request path serializes a record
//! and hands the line to a bounded channel (`try_send`, never blocking); a dedicated
//! thread writes and flushes, in batches at most every 20 ms, to a stream, a file
//! (reopened between batches when asked, `log_files`) or a syslog receiver
//! (`syslog`). When the writer falls more than `QUEUE_LINES` behind, or a receiver
//! cannot take a line, the line is dropped and counted
//! (`tollgate_log_lines_dropped_total{log}`) rather than slowing requests down.

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use prometheus::IntCounter;
use serde::Serialize;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::log_files::{LogFile, Reopen};
use super::syslog::SyslogSink;
use super::Metrics;
use crate::config::raw::LogTarget;

const QUEUE_LINES: usize = 64 * 1024;
/// After writing a batch, the writer waits this long before it takes the next: lines
/// arriving meanwhile queue without waking it. Woken for every line, it cost a thread
/// switch per request (a tenth of a pinned core's samples in the scheduler).
const BATCH_PAUSE: Duration = Duration::from_millis(20);
/// Lines dropped are logged at most this often (a receiver down drops every batch).
const DROPS_LOGGED_EVERY: Duration = Duration::from_secs(10);

/// Which log: its name, metric label, syslog MSGID and severity.
#[derive(Clone, Copy)]
pub enum LogKind {
    Access,
    Security,
}

impl LogKind {
    fn name(self) -> &'static str {
        match self {
            LogKind::Access => "access log",
            LogKind::Security => "security log",
        }
    }

    fn label(self) -> &'static str {
        match self {
            LogKind::Access => "access",
            LogKind::Security => "security",
        }
    }

    /// RFC 5424: informational for requests, notice for security events.
    fn severity(self) -> u8 {
        match self {
            LogKind::Access => 6,
            LogKind::Security => 5,
        }
    }
}

/// The request side: cheap to clone, never blocks. `Default` is a sink that is off.
#[derive(Clone, Default)]
pub struct JsonLines {
    tx: Option<SyncSender<String>>,
    dropped: Option<Arc<Dropped>>,
}

/// The writing side, run as a background service once the process has daemonized.
pub struct JsonLinesWriter {
    name: &'static str,
    rx: Mutex<Option<Receiver<String>>>,
    out: Mutex<Option<Sink>>,
    dropped: Arc<Dropped>,
}

/// Lines dropped: counted in the metric, and since the writer last logged them.
struct Dropped {
    total: IntCounter,
    unlogged: AtomicU64,
}

impl Dropped {
    fn add(&self, n: u64) {
        if n == 0 {
            return;
        }
        self.total.inc_by(n);
        self.unlogged.fetch_add(n, Relaxed);
    }
}

/// Where the lines go.
enum Sink {
    Lines(BufWriter<Stream>),
    Syslog(Box<SyslogSink>),
}

enum Stream {
    Stdout,
    Stderr,
    File(LogFile),
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Stdout => io::stdout().write(buf),
            Stream::Stderr => io::stderr().write(buf),
            Stream::File(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Stdout => io::stdout().flush(),
            Stream::Stderr => io::stderr().flush(),
            Stream::File(f) => f.flush(),
        }
    }
}

impl JsonLines {
    /// Opens `target` now, so a bad path or syslog setting fails at start-up (before
    /// daemonizing); a file reopens when `reopen` asks.
    pub fn open(
        kind: LogKind,
        target: &LogTarget,
        reopen: &Reopen,
        metrics: &Metrics,
    ) -> io::Result<(Self, Option<JsonLinesWriter>)> {
        let name = kind.name();
        let failed = |e: String| io::Error::other(format!("{name}: {e}"));
        let stream = |s| Sink::Lines(BufWriter::new(s));
        let out = match target {
            LogTarget::Off => return Ok((Self::default(), None)),
            LogTarget::Stdout => stream(Stream::Stdout),
            LogTarget::Stderr => stream(Stream::Stderr),
            LogTarget::File(path) => stream(Stream::File(
                LogFile::open(path, reopen)
                    .map_err(|e| failed(format!("{}: {e}", path.display())))?,
            )),
            LogTarget::Syslog(syslog) => Sink::Syslog(Box::new(
                SyslogSink::new(syslog, kind.label(), kind.severity()).map_err(failed)?,
            )),
        };
        let total = metrics
            .counter_vec(
                "log_lines_dropped_total",
                "Log lines dropped: the writer fell behind, or the syslog receiver could not take them",
                &["log"],
            )
            .map_err(|e| failed(e.to_string()))?
            .with_label_values(&[kind.label()]);
        let dropped = Arc::new(Dropped {
            total,
            unlogged: AtomicU64::new(0),
        });
        let (tx, rx) = sync_channel(QUEUE_LINES);
        let writer = JsonLinesWriter {
            name,
            rx: Mutex::new(Some(rx)),
            out: Mutex::new(Some(out)),
            dropped: dropped.clone(),
        };
        Ok((
            Self {
                tx: Some(tx),
                dropped: Some(dropped),
            },
            Some(writer),
        ))
    }

    pub fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    pub fn send(&self, record: &impl Serialize) {
        let Some(tx) = &self.tx else { return };
        let Ok(line) = serde_json::to_string(record) else {
            return;
        };
        if let (Err(TrySendError::Full(_)), Some(dropped)) = (tx.try_send(line), &self.dropped) {
            dropped.add(1);
        }
    }
}

#[async_trait]
impl BackgroundService for JsonLinesWriter {
    async fn start(&self, _shutdown: ShutdownWatch) {
        let rx = self.rx.lock().ok().and_then(|mut r| r.take());
        let out = self.out.lock().ok().and_then(|mut o| o.take());
        let (Some(rx), Some(out)) = (rx, out) else {
            return;
        };
        let (name, dropped) = (self.name, self.dropped.clone());
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || write_lines(name, rx, out, &dropped));
        if let Err(e) = spawned {
            log::error!("cannot start the {name} writer: {e}");
        }
    }
}

/// Writes lines in batches (at most one every `BATCH_PAUSE`), flushing after each,
/// and reopens a file between batches when asked. Dropped lines are logged at most
/// every [`DROPS_LOGGED_EVERY`].
fn write_lines(name: &str, rx: Receiver<String>, mut out: Sink, dropped: &Dropped) {
    let mut drops_logged: Option<Instant> = None;
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                out.line(&line, dropped);
                while let Ok(line) = rx.try_recv() {
                    out.line(&line, dropped);
                }
                if let Err(e) = out.flush(dropped) {
                    log::warn!("{name} write failed: {e}");
                }
                std::thread::sleep(BATCH_PAUSE);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // Whole lines only, as above: a file asked to reopen does so here when idle.
        let _ = out.flush(dropped);
        if drops_logged.is_none_or(|at| at.elapsed() >= DROPS_LOGGED_EVERY) {
            let n = dropped.unlogged.swap(0, Relaxed);
            if n > 0 {
                log::warn!("{name}: {n} lines dropped (tollgate_log_lines_dropped_total)");
                drops_logged = Some(Instant::now());
            }
        }
    }
}

impl Sink {
    fn line(&mut self, line: &str, dropped: &Dropped) {
        match self {
            Sink::Lines(out) => {
                let _ = writeln!(out, "{line}");
            }
            Sink::Syslog(syslog) => dropped.add(syslog.send(line)),
        }
    }

    /// Ends a batch: flushed (a file reopens here when asked), or sent (syslog).
    fn flush(&mut self, dropped: &Dropped) -> io::Result<()> {
        match self {
            Sink::Lines(out) => out.flush(),
            Sink::Syslog(syslog) => {
                dropped.add(syslog.flush());
                Ok(())
            }
        }
    }
}
