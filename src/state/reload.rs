//! Hot reload: on SIGHUP (`ReloadOnHangup`) or the admin listener's `POST /reload`,
//! read the file again, validate, compile, then one atomic swap. An invalid file
//! changes nothing and is logged with all its errors. Settings the running process
//! cannot change in place (listeners, workers, ...) are named in a warning as needing
//! a restart or upgrade; everything else applies at once. Every outcome is counted in
//! `tollgate_config_reloads_total{result}`, and the last success's time (the start
//! counts as one) in `tollgate_config_last_reload_success_timestamp_seconds`.
//!
//! Reloads run one at a time (a lock around each), so compile and commit never race.

use async_trait::async_trait;
use log::{error, info, warn};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::signal::unix::SignalKind;

use super::compile::compile;
use super::{Retained, SharedSnapshot};
use crate::base::signals::each_signal;
use crate::config::raw::{AdminSection, ListenerSection, RawConfig, ServerSection};
use crate::config::source::Origin;
use crate::config::{read_file, ConfigError, ConfigErrors};
use crate::observability::Reopen;

pub struct Reloader {
    path: PathBuf,
    /// Where the config in use came from (a fleet revision, or the file).
    origin: Mutex<Origin>,
    boot: Boot,
    shared: SharedSnapshot,
    retained: Arc<Retained>,
    /// Held for a whole reload: one at a time.
    running: Mutex<()>,
    /// Asked to reopen by every reload of the file (for log rotation).
    log_files: Reopen,
}

/// What a successful reload applied and what it could not.
#[derive(Debug)]
pub struct Reloaded {
    pub needs_restart: Vec<String>,
}

impl Reloader {
    pub fn new(
        path: PathBuf,
        origin: Origin,
        boot: &RawConfig,
        shared: SharedSnapshot,
        retained: Arc<Retained>,
        log_files: Reopen,
    ) -> Self {
        retained.metrics.config_loaded();
        Self {
            path,
            origin: Mutex::new(origin),
            boot: Boot::of(boot),
            shared,
            retained,
            running: Mutex::new(()),
            log_files,
        }
    }

    /// [`Reloader::reload`] for a caller on a runtime (SIGHUP, `POST /reload`): on a
    /// blocking thread, since a compile, or a target name slow to resolve, must not
    /// hold the runtime's thread and what else runs on it.
    pub async fn reload_off_runtime(self: Arc<Self>) -> Result<Reloaded, ConfigErrors> {
        let path = self.path.display().to_string();
        tokio::task::spawn_blocking(move || self.reload())
            .await
            .unwrap_or_else(|e| {
                Err(ConfigErrors {
                    source: path,
                    errors: vec![ConfigError {
                        path: String::new(),
                        line: 0,
                        column: 0,
                        message: format!("the reload stopped: {e}"),
                    }],
                })
            })
    }

    /// Parse, validate, compile, swap, and log the outcome. On error nothing has
    /// changed but the log files, reopened either way (rotation's `postrotate` may
    /// reload).
    pub fn reload(&self) -> Result<Reloaded, ConfigErrors> {
        self.log_files.ask();
        let origin = self
            .origin
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.reload_from(&self.path, origin)
    }

    /// [`Reloader::reload`] from another file than the one the process started with
    /// (a fleet node's next revision, before it becomes the current one), which came
    /// from `origin`.
    pub fn reload_from(&self, path: &Path, origin: Origin) -> Result<Reloaded, ConfigErrors> {
        let _one_at_a_time = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = self.apply(path, origin.clone());
        if outcome.is_ok() {
            *self.origin.lock().unwrap_or_else(|p| p.into_inner()) = origin;
        }
        self.retained.metrics.config_reload(outcome.is_ok());
        match &outcome {
            Ok(r) if r.needs_restart.is_empty() => {
                info!("config reloaded from {}", path.display())
            }
            Ok(r) => warn!(
                "config reloaded from {}, but these changes need a restart or upgrade to apply: {}",
                path.display(),
                r.needs_restart.join("; ")
            ),
            Err(e) => error!("config reload rejected, still serving the previous config:\n{e}"),
        }
        outcome
    }

    /// A config refused before it could be read (a fleet document that is no TOML):
    /// logged and counted as a failed reload.
    pub fn refused(&self, what: &str, why: &str) {
        self.retained.metrics.config_reload(false);
        error!("config reload rejected, still serving the previous config: {what}: {why}");
    }

    fn apply(&self, path: &Path, origin: Origin) -> Result<Reloaded, ConfigErrors> {
        let mut loaded = read_file(path)?;
        loaded.origin = origin;
        let snapshot = Arc::new(compile(&loaded, &self.retained)?);
        for warning in &snapshot.warnings {
            warn!("{warning}");
        }
        self.shared.store(snapshot.clone());
        self.retained.commit(&snapshot);
        Ok(Reloaded {
            needs_restart: needs_restart(&self.boot, &loaded.raw),
        })
    }
}

/// The background service reloading on SIGHUP.
pub struct ReloadOnHangup(pub Arc<Reloader>);

#[async_trait]
impl BackgroundService for ReloadOnHangup {
    async fn start(&self, shutdown: ShutdownWatch) {
        let lost = "reload is unavailable";
        each_signal(SignalKind::hangup(), "SIGHUP", lost, shutdown, || async {
            // Logged and counted by `reload`.
            let _ = self.0.clone().reload_off_runtime().await;
        })
        .await
    }
}

/// The sections of the config the process started with that fixed settings were
/// built from. Only these are kept, not its routes (see `bootstrap::build`).
pub struct Boot {
    server: ServerSection,
    admin: Option<AdminSection>,
    listeners: BTreeMap<String, ListenerSection>,
}

impl Boot {
    pub fn of(config: &RawConfig) -> Self {
        Self {
            server: config.server.clone(),
            admin: config.admin.clone(),
            listeners: config.listeners.clone(),
        }
    }
}

/// Fixed settings that differ between the config the process started with and `new`.
pub fn needs_restart(boot: &Boot, new: &RawConfig) -> Vec<String> {
    let (a, b) = (&boot.server, &new.server);
    let fixed = [
        ("server.workers", a.workers != b.workers),
        ("server.pid_file", a.pid_file != b.pid_file),
        (
            "server.upgrade_socket",
            a.upgrade_socket != b.upgrade_socket,
        ),
        ("server.grace_period", a.grace_period != b.grace_period),
        (
            "server.shutdown_timeout",
            a.shutdown_timeout != b.shutdown_timeout,
        ),
        (
            "server.upstream_keepalive_pool",
            a.upstream_keepalive_pool != b.upstream_keepalive_pool,
        ),
        ("server.access_log", a.access_log != b.access_log),
        ("server.security_log", a.security_log != b.security_log),
        ("server.process_log", a.process_log != b.process_log),
        ("server.log_format", a.log_format != b.log_format),
        ("admin", boot.admin != new.admin),
    ];
    let mut out: Vec<String> = fixed
        .iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| format!("{name} changed"))
        .collect();
    for (name, l) in &new.listeners {
        match boot.listeners.get(name) {
            None => out.push(format!("listeners.{name} is new")),
            Some(old) if fixed_part(old) != fixed_part(l) => {
                out.push(format!("listeners.{name} changed"))
            }
            Some(_) => {}
        }
    }
    for name in boot
        .listeners
        .keys()
        .filter(|n| !new.listeners.contains_key(*n))
    {
        out.push(format!("listeners.{name} was removed (it keeps listening)"));
    }
    out
}

/// What a listener's socket and TLS acceptor are built from. Certificates, client
/// certificate settings and HTTPS redirects are not in it: they apply on reload.
fn fixed_part(l: &ListenerSection) -> impl PartialEq + '_ {
    (
        l.addr,
        l.h2c,
        l.tls.as_ref().map(|t| (t.min_version, t.http2)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    #[test]
    fn names_fixed_settings_that_changed() {
        let boot = Boot::of(
            &load_str("[listeners.a]\naddr = \"127.0.0.1:1\"\n", "a")
                .expect("valid")
                .raw,
        );
        let new = load_str(
            "[server]\nworkers = 3\nmax_uri_bytes = \"1KiB\"\n[listeners.a]\naddr = \"127.0.0.1:2\"\n[listeners.b]\naddr = \"127.0.0.1:3\"\n",
            "b",
        )
        .expect("valid")
        .raw;
        assert_eq!(
            needs_restart(&boot, &new),
            vec![
                "server.workers changed",
                "listeners.a changed",
                "listeners.b is new"
            ]
        );
    }

    #[test]
    fn certificates_apply_on_reload_but_tls_versions_need_a_restart() {
        let config = |cert: &str, min: &str| {
            let text = format!(
                "[listeners.a]\naddr = \"127.0.0.1:1\"\ntls = {{ certificates = [{{ cert = \"{cert}\", key = \"k\" }}], min_version = \"{min}\" }}\n"
            );
            load_str(&text, "t").expect("valid").raw
        };
        let boot = Boot::of(&config("a.pem", "1.2"));
        assert!(needs_restart(&boot, &config("b.pem", "1.2")).is_empty());
        assert_eq!(
            needs_restart(&boot, &config("a.pem", "1.3")),
            vec!["listeners.a changed"]
        );
    }
}
