//! Runs the real `tollgate` binary on a free loopback port with a config the test
//! writes, and gives access to its process log and access log.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use tempfile::TempDir;

use super::eventually;

pub const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

/// A port nobody listens on right now (bound to 127.0.0.1:0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

pub struct Tollgate {
    pub port: u16,
    pub dir: TempDir,
    server_extra: String,
    child: Child,
}

impl Tollgate {
    /// Starts tollgate with `body` (listeners beyond `main`, upstreams, routes) and
    /// waits until its `main` listener accepts connections.
    pub async fn start(body: &str) -> Tollgate {
        Self::start_with_server(body, "").await
    }

    /// Like `start`, with extra `[server]` lines (e.g. `trusted_proxies = [...]`).
    pub async fn start_with_server(body: &str, server_extra: &str) -> Tollgate {
        Self::start_full(body, server_extra, &[], |_| ()).await
    }

    /// The general form: extra `[server]` lines, environment variables for the
    /// process, and `prepare` to write files (keys, ...) into its directory first.
    pub async fn start_full(
        body: &str,
        server_extra: &str,
        env: &[(&str, &str)],
        prepare: impl FnOnce(&Path),
    ) -> Tollgate {
        let dir = tempfile::tempdir().expect("tempdir");
        prepare(dir.path());
        let port = free_port();
        write_config(dir.path(), port, server_extra, body);
        let log = std::fs::File::create(dir.path().join("tollgate.log")).expect("log file");
        let child = Command::new(BIN)
            .args(["run", "-c"])
            .arg(dir.path().join("tollgate.toml"))
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn tollgate");
        let tg = Tollgate {
            port,
            server_extra: server_extra.to_owned(),
            child,
            dir,
        };
        let ready = eventually(Duration::from_secs(20), || async {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        assert!(ready, "tollgate did not listen on {port}:\n{}", tg.log());
        tg
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("tollgate.toml")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Writes the config file: `[server]` and `[listeners.main]` from the harness,
    /// the rest from the test.
    pub fn write_config(&self, body: &str) {
        write_config(self.dir.path(), self.port, &self.server_extra, body);
    }

    /// Rewrites the config and runs `tollgate reload`; waits until the process has
    /// logged the outcome. Returns true when the new config was applied.
    pub async fn reload(&self, body: &str) -> bool {
        let before = self.log_count("config reload");
        self.write_config(body);
        let out = cli(&["reload", "-c"], Some(&self.config_path()));
        if !out.status.success() {
            return false;
        }
        self.reload_outcome(before).await
    }

    /// Sends SIGHUP directly, bypassing the CLI's own validation.
    pub async fn sighup(&self) -> bool {
        use nix::sys::signal::{kill, Signal};
        let before = self.log_count("config reload");
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        kill(pid, Signal::SIGHUP).expect("sighup");
        self.reload_outcome(before).await
    }

    /// Waits for a reload outcome logged after `before` earlier ones; true if applied.
    async fn reload_outcome(&self, before: usize) -> bool {
        let logged = eventually(Duration::from_secs(10), || async {
            self.log_count("config reload") > before
        })
        .await;
        assert!(logged, "reload outcome never logged:\n{}", self.log());
        let log = self.log();
        let last = log
            .lines()
            .rfind(|l| l.contains("config reload"))
            .unwrap_or("");
        last.contains("config reloaded")
    }

    /// The process log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("tollgate.log")).unwrap_or_default()
    }

    fn log_count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    /// Access-log lines parsed as JSON, once at least `n` have been written.
    pub async fn access_log(&self, n: usize) -> Vec<serde_json::Value> {
        self.json_lines("access.log", n).await
    }

    /// Security-log lines parsed as JSON, once at least `n` have been written.
    pub async fn security_log(&self, n: usize) -> Vec<serde_json::Value> {
        self.json_lines("security.log", n).await
    }

    /// The raw security log, for checks that nothing secret is in it.
    pub fn security_log_text(&self) -> String {
        std::fs::read_to_string(self.path("security.log")).unwrap_or_default()
    }

    /// JSON lines of `file`, once at least `n` are there (log files are written by a
    /// background thread).
    async fn json_lines(&self, file: &str, n: usize) -> Vec<serde_json::Value> {
        let read = || -> Vec<serde_json::Value> {
            std::fs::read_to_string(self.path(file))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        };
        let written = eventually(Duration::from_secs(5), || async { read().len() >= n }).await;
        assert!(written, "fewer than {n} lines in {file}: {:?}", read());
        read()
    }
}

impl Tollgate {
    /// A binary upgrade in place: starts a new process with `run -u` on the same
    /// config, tells the running one to hand its sockets over (SIGQUIT), and waits
    /// until the old one has exited. Returns the old process's exit status.
    pub async fn upgrade(&mut self) -> std::process::ExitStatus {
        use nix::sys::signal::{kill, Signal};
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.path("tollgate.log"))
            .expect("log file");
        let new = Command::new(BIN)
            .args(["run", "-u", "-c"])
            .arg(self.config_path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn the new tollgate");
        let mut old = std::mem::replace(&mut self.child, new);
        // The old process retries the hand-over for a few seconds until the new one
        // listens on the upgrade socket.
        let pid = nix::unistd::Pid::from_raw(old.id() as i32);
        kill(pid, Signal::SIGQUIT).expect("sigquit");
        let mut status = None;
        let exited = eventually(Duration::from_secs(20), || {
            status = old.try_wait().ok().flatten();
            let done = status.is_some();
            async move { done }
        })
        .await;
        assert!(exited, "the old process did not exit:\n{}", self.log());
        status.expect("exit status")
    }

    /// Sends `signal` to the running process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal");
    }

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Tollgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `$DIR` in `body` stands for the process's directory (key files and the like).
fn write_config(dir: &Path, port: u16, server_extra: &str, body: &str) {
    let d = dir.display();
    let body = body.replace("$DIR", &d.to_string());
    let text = format!(
        "[server]\nworkers = 2\npid_file = \"{d}/tollgate.pid\"\nupgrade_socket = \"{d}/upgrade.sock\"\n\
         access_log = {{ file = \"{d}/access.log\" }}\nsecurity_log = {{ file = \"{d}/security.log\" }}\ngrace_period = \"1s\"\nshutdown_timeout = \"1s\"\n{server_extra}\n\n\
         [listeners.main]\naddr = \"127.0.0.1:{port}\"\n\n{body}\n"
    );
    std::fs::write(dir.join("tollgate.toml"), text).expect("write config");
}

/// Runs the tollgate CLI with `args` (and `file` appended).
pub fn cli(args: &[&str], file: Option<&Path>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    if let Some(f) = file {
        cmd.arg(f);
    }
    cmd.output().expect("run tollgate cli")
}
