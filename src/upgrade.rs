//! `tollgate upgrade -c FILE`: a binary upgrade in one command. It checks FILE (as
//! `check` does), starts the new binary with `run -u` on it, and once that process is
//! waiting for the sockets, tells the serving one (from the pid file) to hand them
//! over (SIGQUIT). It returns once the pid file names the new process, which writes it
//! after it received the sockets and compiled its config.
//!
//! The new process writes where the serving one writes (the unit's journal, a file),
//! not to this command's output: holding the command's pipes open, it would keep a
//! caller that reads them to their end (`out=$(tollgate upgrade ...)`, a
//! configuration-management tool) waiting forever. See [`serving_output`].
//!
//! When the new process cannot start (a config it refuses, a binary that fails, no
//! hand-over within the timeout), it says why and fails; while the new process has
//! not started waiting for the sockets, the serving one is never signalled and keeps
//! serving untouched.
//!
//! [`UpgradeOnSignal`] runs the same upgrade from inside the serving process on
//! SIGUSR2, so the new process starts in the same cgroup: under systemd
//! (`Type=notify`, `NotifyAccess=all`), `systemctl kill -s USR2 --kill-whom=main
//! tollgate` upgrades, and the new process, once ready, tells systemd it is the main
//! process (`MAINPID=`, see `base::sd_notify`).

use async_trait::async_trait;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::signal::unix::SignalKind;

use crate::base::signals::each_signal;
use crate::config::raw::ServerSection;

const POLL: Duration = Duration::from_millis(50);
/// How long an upgrade triggered by SIGUSR2 may take.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(30);

/// The pid in `pid_file`.
pub fn read_pid(pid_file: &Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(pid_file).map_err(|e| {
        format!(
            "cannot read pid file {}: {e} (is tollgate running?)",
            pid_file.display()
        )
    })?;
    text.trim()
        .parse()
        .map_err(|_| format!("{} does not hold a pid", pid_file.display()))
}

/// Upgrades the process serving `config` (whose `[server]` section is `server`) to
/// `binary`.
pub fn upgrade(
    config: &Path,
    server: &ServerSection,
    binary: &Path,
    timeout: Duration,
) -> Result<u32, String> {
    let pid_file = &server.pid_file;
    let socket = &server.upgrade_socket;
    let old = read_pid(pid_file)?;
    kill(Pid::from_raw(old), None).map_err(|e| format!("pid {old} is not running: {e}"))?;
    // The new process makes the socket: a stale one must not look like it.
    let _ = std::fs::remove_file(socket);
    let (stdout, stderr) = serving_output(old);
    let mut new = Command::new(binary)
        .args(["run", "-u", "-c"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let deadline = Instant::now() + timeout;
    wait_for(&mut new, deadline, "wait for the sockets", || {
        socket.exists()
    })?;
    kill(Pid::from_raw(old), Signal::SIGQUIT)
        .map_err(|e| format!("cannot signal the serving process {old}: {e}"))?;
    let new_pid = new.id();
    wait_for(&mut new, deadline, "take the sockets over", || {
        read_pid(pid_file).is_ok_and(|p| u32::try_from(p) == Ok(new_pid))
    })?;
    Ok(new_pid)
}

/// The serving process's stdout and stderr, for the new process. From inside it
/// (SIGUSR2) they are inherited. Otherwise each is taken with `pidfd_getfd` (Linux
/// 5.6+; needs the right to ptrace the process: root, or its owner where ptrace is
/// not restricted), else reopened through `/proc/PID/fd` (a file, a pipe, a terminal;
/// not a socket such as the journal's); else the new process writes nowhere, and
/// this says so.
pub fn serving_output(pid: i32) -> (Stdio, Stdio) {
    if u32::try_from(pid) == Ok(std::process::id()) {
        return (Stdio::inherit(), Stdio::inherit());
    }
    let take = |fd: i32, name: &str| match output_of(pid, fd) {
        Ok(out) => Stdio::from(out),
        Err(e) => {
            eprintln!("the new process's {name} goes nowhere: {e}");
            Stdio::null()
        }
    };
    (take(1, "stdout"), take(2, "stderr"))
}

/// Descriptor `fd` of process `pid`, duplicated into this one.
fn output_of(pid: i32, fd: i32) -> Result<OwnedFd, String> {
    use rustix::process::{pidfd_getfd, pidfd_open, PidfdFlags, PidfdGetfdFlags};
    let taken = rustix::process::Pid::from_raw(pid)
        .ok_or(rustix::io::Errno::INVAL)
        .and_then(|p| pidfd_open(p, PidfdFlags::empty()))
        .and_then(|pidfd| pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty()));
    let taken_err = match taken {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let path = format!("/proc/{pid}/fd/{fd}");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .map(OwnedFd::from)
        .map_err(|e| format!("pidfd_getfd: {taken_err}; {path}: {e}"))
}

/// Stops process `pid` (default: the one in `server.pid_file`) gracefully and waits
/// until it has exited, at most `grace_period` + `shutdown_timeout` + 5 s after
/// SIGTERM. With a `drain_delay`, the process drains first (SIGUSR1) and keeps
/// accepting for that long. Returns its pid.
pub fn stop(server: &ServerSection, pid: Option<i32>) -> Result<i32, String> {
    let pid = match pid {
        Some(pid) => pid,
        None => read_pid(&server.pid_file)?,
    };
    if !running(pid) {
        return Err(format!("pid {pid} is not running"));
    }
    // Pingora sleeps the grace period, then gives its runtimes shutdown_timeout.
    let timeout = server.grace_period + server.shutdown_timeout + Duration::from_secs(5);
    let drain_delay = server.drain_delay;
    if !drain_delay.is_zero() {
        kill(Pid::from_raw(pid), Signal::SIGUSR1)
            .map_err(|e| format!("cannot signal pid {pid}: {e}"))?;
        println!("draining pid {pid} for {drain_delay:?}");
        std::thread::sleep(drain_delay);
    }
    kill(Pid::from_raw(pid), Signal::SIGTERM)
        .map_err(|e| format!("cannot signal pid {pid}: {e}"))?;
    let deadline = Instant::now() + timeout;
    while running(pid) {
        if Instant::now() >= deadline {
            return Err(format!("pid {pid} did not exit within {timeout:?}"));
        }
        std::thread::sleep(POLL);
    }
    Ok(pid)
}

/// Whether `pid` runs: it exists (signalling it may still be refused) and is not a
/// zombie (exited, not reaped by its parent yet).
fn running(pid: i32) -> bool {
    let exists = matches!(
        kill(Pid::from_raw(pid), None),
        Ok(()) | Err(nix::errno::Errno::EPERM)
    );
    exists
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.starts_with(" Z"))
        })
}

/// Waits until `ready`, failing if `child` exits first or `deadline` passes.
fn wait_for(
    child: &mut Child,
    deadline: Instant,
    what: &str,
    ready: impl Fn() -> bool,
) -> Result<(), String> {
    loop {
        if ready() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the new process exited ({status}) before it could {what}"
            ));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            return Err(format!(
                "the new process did not {what} in time; stopped it"
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// The background service upgrading this process in place on SIGUSR2.
pub struct UpgradeOnSignal {
    pub config: PathBuf,
    /// The `[server]` section the process started with.
    pub server: ServerSection,
}

#[async_trait]
impl BackgroundService for UpgradeOnSignal {
    async fn start(&self, shutdown: ShutdownWatch) {
        let lost = "in-place upgrades are unavailable";
        each_signal(
            SignalKind::user_defined2(),
            "SIGUSR2",
            lost,
            shutdown,
            || async {
                let (config, server) = (self.config.clone(), self.server.clone());
                let upgraded = tokio::task::spawn_blocking(move || {
                    let binary = std::env::current_exe().map_err(|e| e.to_string())?;
                    upgrade(&config, &server, &binary, UPGRADE_TIMEOUT)
                })
                .await;
                match upgraded {
                    Ok(Ok(pid)) => log::info!("upgraded on SIGUSR2: pid {pid} serves now"),
                    Ok(Err(e)) => log::error!("upgrade on SIGUSR2 failed, still serving: {e}"),
                    Err(e) => log::error!("upgrade on SIGUSR2 failed: {e}"),
                }
            },
        )
        .await
    }
}
