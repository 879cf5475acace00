//! The process log: `env_logger` (filtered by `RUST_LOG`) on stderr until the config
//! is read, then where `[server] process_log` says, as `log_format` says
//! ([`LogOutput::configure`]; a file reopens when asked, see `log_files`). With one exception:
//! Pingora logs every failed downstream TLS handshake as an error line of its own, so
//! a scanner probing a TLS port would flood the log. Those lines are counted by cause
//! in `tollgate_tls_handshake_failures_total` and summarized instead: at most one
//! warning per [`SUMMARY_EVERY`], with the count and the latest cause. Each failure is
//! still logged at debug level (`RUST_LOG=tollgate::tls=debug`).
//!
//! Likewise, Pingora logs an error line for every client that closes its connection
//! in the middle of a request head, and so for every connection tollgate cuts off at
//! `header_timeout` (counted in `tollgate_client_timeouts_total`): those lines are
//! logged at debug level (`RUST_LOG=tollgate::connection=debug`).

use arc_swap::ArcSwap;
use env_logger::fmt::{Target, WriteStyle};
use log::{Level, Log, Metadata, Record};
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::log_files::{LogFile, Reopen};
use super::Metrics;
use crate::config::raw::{LogFormat, LogTarget};

pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);
/// Where Pingora logs a failed (or timed out) downstream handshake.
const HANDSHAKE_TARGET: &str = "pingora_core::services::listening";
const HANDSHAKE_PREFIX: &str = "Downstream handshake";
const TARGET: &str = "tollgate::tls";
/// Where Pingora logs a request it could not read.
const PROXY_TARGET: &str = "pingora_proxy";
const CONNECTION_TARGET: &str = "tollgate::connection";

/// The installed logger's output, which [`LogOutput::configure`] replaces (the `log`
/// crate keeps the logger itself).
#[derive(Clone)]
pub struct LogOutput(Arc<ArcSwap<env_logger::Logger>>);

/// Installs the process log, text on stderr, and returns what sets its output once
/// the config is read. Call once, before anything logs.
pub fn init(metrics: Arc<Metrics>) -> LogOutput {
    let inner = Arc::new(ArcSwap::from_pointee(builder(LogFormat::Text).build()));
    let max_level = inner.load().filter();
    let logger = ProcessLog {
        inner: inner.clone(),
        metrics,
        failures: Mutex::new(Failures::default()),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(max_level);
    }
    LogOutput(inner)
}

impl LogOutput {
    /// From now on the process log goes to `target` in `format` (stderr for a target
    /// validation refuses: off, syslog); a file is opened now (a bad path fails at
    /// start-up) and reopens when `reopen` asks.
    pub fn configure(
        &self,
        format: LogFormat,
        target: &LogTarget,
        reopen: &Reopen,
    ) -> io::Result<()> {
        let mut builder = builder(format);
        match target {
            LogTarget::Stdout => builder.target(Target::Stdout),
            LogTarget::Stderr | LogTarget::Off | LogTarget::Syslog(_) => {
                builder.target(Target::Stderr)
            }
            LogTarget::File(path) => {
                let file = LogFile::open(path, reopen).map_err(|e| {
                    io::Error::new(e.kind(), format!("process log {}: {e}", path.display()))
                })?;
                builder
                    .target(Target::Pipe(Box::new(file)))
                    .write_style(WriteStyle::Never)
            }
        };
        self.0.store(Arc::new(builder.build()));
        Ok(())
    }
}

/// `RUST_LOG`'s filter (default `info`) and the line format.
fn builder(format: LogFormat) -> env_logger::Builder {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == LogFormat::Json {
        builder.format(|buf, record| {
            let line = serde_json::json!({
                "time": buf.timestamp_millis().to_string(),
                "level": record.level().as_str(),
                "target": record.target(),
                "message": record.args().to_string(),
            });
            writeln!(buf, "{line}")
        });
    }
    builder
}

struct ProcessLog {
    inner: Arc<ArcSwap<env_logger::Logger>>,
    metrics: Arc<Metrics>,
    failures: Mutex<Failures>,
}

#[derive(Default)]
struct Failures {
    /// Since the last summary.
    count: u64,
    last_summary: Option<Instant>,
}

impl ProcessLog {
    fn handshake_failed(&self, message: &str) {
        let cause = handshake_failure_cause(message);
        self.metrics.tls_handshake_failure(cause);
        self.emit(
            Level::Debug,
            format_args!("TLS handshake failed ({cause}): {message}"),
        );
        let due = {
            let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            f.count += 1;
            let due = f.last_summary.is_none_or(|t| t.elapsed() >= SUMMARY_EVERY);
            if due {
                let count = std::mem::take(&mut f.count);
                f.last_summary = Some(Instant::now());
                Some(count)
            } else {
                None
            }
        };
        if let Some(count) = due {
            self.emit(
                Level::Warn,
                format_args!(
                    "{count} TLS handshake(s) failed in the last {}s (latest: {cause}: {message}); counted in tollgate_tls_handshake_failures_total",
                    SUMMARY_EVERY.as_secs()
                ),
            );
        }
    }

    fn emit(&self, level: Level, args: std::fmt::Arguments<'_>) {
        self.emit_to(TARGET, level, args);
    }

    fn emit_to(&self, target: &str, level: Level, args: std::fmt::Arguments<'_>) {
        let record = Record::builder()
            .level(level)
            .target(target)
            .args(args)
            .build();
        let inner = self.inner.load();
        if inner.enabled(record.metadata()) {
            inner.log(&record);
        }
    }
}

impl Log for ProcessLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.load().enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if record.target() == HANDSHAKE_TARGET {
            let message = record.args().to_string();
            if message.starts_with(HANDSHAKE_PREFIX) {
                self.handshake_failed(&message);
                return;
            }
        }
        if record.target() == PROXY_TARGET && record.level() == Level::Error {
            let message = record.args().to_string();
            if message.contains("ConnectionClosed") && message.contains("reading request headers") {
                self.emit_to(CONNECTION_TARGET, Level::Debug, format_args!("{message}"));
                return;
            }
        }
        self.inner.load().log(record);
    }

    fn flush(&self) {
        self.inner.load().flush();
    }
}

/// The metric label for a failed handshake, from OpenSSL's reason in the message.
fn handshake_failure_cause(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| m.contains(n));
    if has(&["timeout"]) {
        "timeout"
    } else if has(&["http request"]) {
        "plain_http"
    } else if has(&["unsupported protocol", "version too low"]) {
        "protocol_version"
    } else if has(&["no shared cipher"]) {
        "no_shared_cipher"
    } else if has(&["no suitable key share", "no shared group"]) {
        "no_shared_group"
    } else if has(&[
        "wrong version number",
        "unexpected message",
        "packet length too long",
        "record layer failure",
    ]) {
        "not_tls"
    } else if has(&["peer did not return a certificate"]) {
        "client_cert_missing"
    } else if has(&["certificate verify failed"]) {
        "client_cert_untrusted"
    } else if has(&["unexpected eof", "connection reset", "broken pipe"]) {
        "client_closed"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_come_from_openssl_reasons() {
        let msg = |reason: &str| {
            format!("Downstream handshake error from 127.0.0.1:5: TLSHandshakeFailure context: TLS accept() failed: error:0A000102:SSL routines:tls_early_post_process_client_hello:{reason}")
        };
        assert_eq!(
            handshake_failure_cause(&msg("unsupported protocol")),
            "protocol_version"
        );
        assert_eq!(
            handshake_failure_cause(&msg("peer did not return a certificate")),
            "client_cert_missing"
        );
        assert_eq!(
            handshake_failure_cause("Downstream handshake timeout"),
            "timeout"
        );
        assert_eq!(
            handshake_failure_cause(&msg("wrong version number")),
            "not_tls"
        );
        assert_eq!(
            handshake_failure_cause(&msg("no suitable key share")),
            "no_shared_group"
        );
        assert_eq!(handshake_failure_cause(&msg("something new")), "other");
    }
}
