//! Log files that can be rotated: after `mv access.log access.log.1`, a reload,
//! SIGWINCH or `tollgate reopen-logs` asks every writer of a file (access, security
//! and process log) to open its path again. Each does so between two records, so a
//! line is written whole to the old file or to the new one, never lost or split. A
//! path that cannot be opened again leaves the old file in use, said on stderr (the
//! process log may be the file that failed).

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tokio::signal::unix::SignalKind;

use crate::base::signals::each_signal;

/// Asks the log files to reopen; cheap to clone, shared by every writer.
#[derive(Clone, Default)]
pub struct Reopen {
    asked: Arc<AtomicU64>,
}

impl Reopen {
    pub fn ask(&self) {
        self.asked.fetch_add(1, Relaxed);
    }
}

/// A log file opened for appending, reopened at its path when asked: at the next
/// `flush`, or at the start of the next record (the first write after a flush). Its
/// writers flush after each record (the process log) or each batch of whole lines
/// (the access and security logs, also every second when idle).
pub struct LogFile {
    path: PathBuf,
    file: File,
    asked: Arc<AtomicU64>,
    seen: u64,
    /// The last call was a flush: a write begins a record.
    at_record_start: bool,
}

impl LogFile {
    pub fn open(path: &Path, reopen: &Reopen) -> io::Result<Self> {
        Ok(Self {
            path: path.to_owned(),
            file: append(path)?,
            asked: reopen.asked.clone(),
            seen: reopen.asked.load(Relaxed),
            at_record_start: true,
        })
    }

    /// Opens the path again when asked since the last look.
    fn reopen_if_asked(&mut self) {
        let asked = self.asked.load(Relaxed);
        if asked == self.seen {
            return;
        }
        self.seen = asked;
        match append(&self.path) {
            Ok(file) => self.file = file,
            Err(e) => eprintln!(
                "tollgate: cannot reopen {} ({e}); still writing to the file open before",
                self.path.display()
            ),
        }
    }
}

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if std::mem::replace(&mut self.at_record_start, false) {
            self.reopen_if_asked();
        }
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.at_record_start = true;
        self.reopen_if_asked();
        Ok(())
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// SIGWINCH reopens the log files. Its default action is to do nothing, so one that
/// arrives before this listens is harmless (SIGUSR1 drains, SIGUSR2 upgrades).
pub struct ReopenOnSignal(pub Reopen);

#[async_trait]
impl BackgroundService for ReopenOnSignal {
    async fn start(&self, shutdown: ShutdownWatch) {
        let lost = "log files reopen on reload only";
        each_signal(
            SignalKind::window_change(),
            "SIGWINCH",
            lost,
            shutdown,
            || async {
                self.0.ask();
                log::info!("log files reopened (SIGWINCH)");
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_file_keeps_what_was_written_and_the_path_gets_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        let reopen = Reopen::default();
        let mut file = LogFile::open(&path, &reopen).expect("open");
        writeln!(file, "one").expect("write");
        std::fs::rename(&path, dir.path().join("a.log.1")).expect("mv");
        file.flush().expect("flush");
        writeln!(file, "two").expect("write");
        reopen.ask();
        writeln!(file, "three").expect("write");
        file.flush().expect("flush");
        writeln!(file, "four").expect("write");
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).expect("read");
        assert_eq!(read("a.log.1"), "one\ntwo\nthree\n");
        assert_eq!(read("a.log"), "four\n");
    }
}
