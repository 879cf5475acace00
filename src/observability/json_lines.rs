//! A JSON-lines sink (access log, security log): the request path serializes a record
//! and hands the line to a bounded channel (`try_send`, never blocking); a dedicated
//! thread writes and flushes, in batches at most every 20 ms. When the writer falls more than `QUEUE_LINES` behind,
//! lines are dropped and counted rather than slowing requests down. A file is
//! reopened between batches when asked (`log_files`).

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde::Serialize;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::log_files::{LogFile, Reopen};
use crate::config::raw::LogTarget;

const QUEUE_LINES: usize = 64 * 1024;
/// After writing a batch, the writer waits this long before it takes the next: lines
/// arriving meanwhile queue without waking it. Woken for every line, it cost a thread
/// switch per request (a tenth of a pinned core's samples in the scheduler).
const BATCH_PAUSE: Duration = Duration::from_millis(20);

/// The request side: cheap to clone, never blocks. `Default` is a sink that is off.
#[derive(Clone, Default)]
pub struct JsonLines {
    tx: Option<SyncSender<String>>,
    dropped: Arc<AtomicU64>,
}

/// The writing side, run as a background service once the process has daemonized.
pub struct JsonLinesWriter {
    name: &'static str,
    rx: Mutex<Option<Receiver<String>>>,
    out: Mutex<Option<Sink>>,
    dropped: Arc<AtomicU64>,
}

/// Where the lines go.
enum Sink {
    Stdout,
    Stderr,
    File(LogFile),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Stdout => io::stdout().write(buf),
            Sink::Stderr => io::stderr().write(buf),
            Sink::File(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout => io::stdout().flush(),
            Sink::Stderr => io::stderr().flush(),
            Sink::File(f) => f.flush(),
        }
    }
}

impl JsonLines {
    /// Opens `target` now, so a bad path fails at start-up (before daemonizing); a
    /// file reopens when `reopen` asks.
    pub fn open(
        name: &'static str,
        target: &LogTarget,
        reopen: &Reopen,
    ) -> io::Result<(Self, Option<JsonLinesWriter>)> {
        let out = match target {
            LogTarget::Off => return Ok((Self::default(), None)),
            LogTarget::Stdout => Sink::Stdout,
            LogTarget::Stderr => Sink::Stderr,
            LogTarget::File(path) => Sink::File(LogFile::open(path, reopen).map_err(|e| {
                io::Error::new(e.kind(), format!("{name} {}: {e}", path.display()))
            })?),
        };
        let (tx, rx) = sync_channel(QUEUE_LINES);
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = JsonLinesWriter {
            name,
            rx: Mutex::new(Some(rx)),
            out: Mutex::new(Some(out)),
            dropped: dropped.clone(),
        };
        Ok((
            Self {
                tx: Some(tx),
                dropped,
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
        if let Err(TrySendError::Full(_)) = tx.try_send(line) {
            self.dropped.fetch_add(1, Relaxed);
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
/// and reopens a file between batches when asked.
fn write_lines(name: &str, rx: Receiver<String>, out: Sink, dropped: &AtomicU64) {
    let mut out = BufWriter::new(out);
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                let _ = writeln!(out, "{line}");
                while let Ok(line) = rx.try_recv() {
                    let _ = writeln!(out, "{line}");
                }
                if let Err(e) = out.flush() {
                    log::warn!("{name} write failed: {e}");
                }
                std::thread::sleep(BATCH_PAUSE);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // Whole lines only, as above: a file asked to reopen does so here when idle.
        let _ = out.flush();
        let n = dropped.swap(0, Relaxed);
        if n > 0 {
            log::warn!("{name} fell behind: {n} lines dropped");
        }
    }
}
