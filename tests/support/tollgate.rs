//! Runs the real `tollgate` binary on a free loopback port with a config the test
//! writes, and gives access to its process log, access log and admin listener.

use std::cell::Cell;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use tempfile::TempDir;

use super::{eventually, metric, Reply};

pub const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

/// A port nobody listens on right now (bound to 127.0.0.1:0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// What the harness writes around a test's config body: `[server]` with
/// `server_extra`, `[admin]` on `admin_port` with `admin_extra` (and the digest of
/// `admin_token`), and `[listeners.main]` on `port`.
struct Frame {
    port: u16,
    admin_port: u16,
    server_extra: String,
    admin_extra: String,
    admin_token: Option<String>,
}

pub struct Tollgate {
    pub port: u16,
    /// The admin listener every process the harness starts has (`[admin] listen`).
    pub admin_port: u16,
    pub dir: TempDir,
    frame: Frame,
    child: Child,
}

impl Tollgate {
    /// Starts tollgate with `body` (listeners beyond `main`, upstreams, routes; no
    /// `[admin]`, the harness writes that) and waits until its `main` listener and
    /// its admin listener accept connections.
    pub async fn start(body: &str) -> Tollgate {
        Self::start_with_server(body, "").await
    }

    /// Like `start`, with extra `[server]` lines (e.g. `trusted_proxies = [...]`).
    pub async fn start_with_server(body: &str, server_extra: &str) -> Tollgate {
        Self::start_full(body, server_extra, &[], |_| ()).await
    }

    /// Like `start`, with extra `[admin]` lines and, with `token`, `token_sha256` set
    /// to its digest: the harness's own admin requests (`reload`, `sighup`,
    /// `admin_request`) then carry it as a bearer token.
    pub async fn start_with_admin(body: &str, admin_extra: &str, token: Option<&str>) -> Tollgate {
        Self::start_with_token(body, "", admin_extra, token).await
    }

    /// Like `start_with_admin`, with extra `[server]` lines too.
    pub async fn start_with_token(
        body: &str,
        server_extra: &str,
        admin_extra: &str,
        token: Option<&str>,
    ) -> Tollgate {
        let frame = Frame {
            port: free_port(),
            admin_port: free_port(),
            server_extra: server_extra.to_owned(),
            admin_extra: admin_extra.to_owned(),
            admin_token: token.map(str::to_owned),
        };
        Self::launch(frame, body, &[], |_| ()).await
    }

    /// The general form: extra `[server]` lines, environment variables for the
    /// process, and `prepare` to write files (keys, ...) into its directory first.
    pub async fn start_full(
        body: &str,
        server_extra: &str,
        env: &[(&str, &str)],
        prepare: impl FnOnce(&Path),
    ) -> Tollgate {
        let frame = Frame {
            port: free_port(),
            admin_port: free_port(),
            server_extra: server_extra.to_owned(),
            admin_extra: String::new(),
            admin_token: None,
        };
        Self::launch(frame, body, env, prepare).await
    }

    async fn launch(
        frame: Frame,
        body: &str,
        env: &[(&str, &str)],
        prepare: impl FnOnce(&Path),
    ) -> Tollgate {
        let dir = tempfile::tempdir().expect("tempdir");
        prepare(dir.path());
        write_config(dir.path(), &frame, body);
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
            port: frame.port,
            admin_port: frame.admin_port,
            frame,
            child,
            dir,
        };
        // Its own sockets: another process may have taken a port meanwhile (Pingora
        // then retries the bind), and would answer in its place.
        let pid = tg.child.id();
        for port in [tg.port, tg.admin_port] {
            let ready = eventually(Duration::from_secs(20), || async {
                super::listens_on(pid, port)
                    && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            })
            .await;
            assert!(ready, "tollgate did not listen on {port}:\n{}", tg.log());
        }
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

    /// The URL of `path` on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    /// A request to `path` on the admin listener, with the bearer token when one is
    /// configured.
    pub fn admin_request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = super::client().request(method, self.admin_url(path));
        match &self.frame.admin_token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends an admin request; a failure to get any answer fails the test with the log.
    async fn admin_send(&self, method: reqwest::Method, path: &str) -> Reply {
        let resp = self
            .admin_request(method, path)
            .send()
            .await
            .unwrap_or_else(|e| panic!("admin {path}: {e}\n{}", self.log()));
        Reply {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.text().await.expect("admin body"),
        }
    }

    /// `GET path` on the admin listener, with the token when one is configured.
    pub async fn admin_get(&self, path: &str) -> Reply {
        self.admin_send(reqwest::Method::GET, path).await
    }

    /// The admin listener's `GET /metrics` (Prometheus text).
    pub async fn metrics(&self) -> String {
        let reply = self.admin_get("/metrics").await;
        assert_eq!(reply.status, 200, "GET /metrics: {}", reply.body);
        reply.body
    }

    /// Writes the config file: `[server]`, `[admin]` and `[listeners.main]` from the
    /// harness, the rest from the test.
    pub fn write_config(&self, body: &str) {
        write_config(self.dir.path(), &self.frame, body);
    }

    /// Rewrites the config and has the process reload it (the admin listener's
    /// `POST /reload`, which answers once the reload is done). True when the new
    /// config was applied (200), false when it was refused (422, nothing changed).
    pub async fn reload(&self, body: &str) -> bool {
        self.write_config(body);
        let reply = self.admin_send(reqwest::Method::POST, "/reload").await;
        match reply.status {
            200 => {
                assert_eq!(reply.json()["status"], "reloaded", "{}", reply.body);
                true
            }
            422 => false,
            other => panic!("POST /reload answered {other}: {}", reply.body),
        }
    }

    /// Rewrites the config and runs `tollgate reload`, which checks the file and only
    /// then signals the process (SIGHUP). False when the command refused the file
    /// (the process was not asked); otherwise waits until the process has counted the
    /// reload (`tollgate_config_reloads_total`) and returns whether it was applied.
    pub async fn reload_by_cli(&self, body: &str) -> bool {
        let before = self.reload_counts().await;
        self.write_config(body);
        let out = cli(&["reload", "-c"], Some(&self.config_path()));
        if !out.status.success() {
            return false;
        }
        self.reload_outcome(before).await
    }

    /// Sends SIGHUP directly (no CLI, no check of the file first) and waits until the
    /// process has counted the reload in `tollgate_config_reloads_total`. True when
    /// it was applied.
    pub async fn sighup(&self) -> bool {
        use nix::sys::signal::Signal;
        let before = self.reload_counts().await;
        self.signal(Signal::SIGHUP);
        self.reload_outcome(before).await
    }

    /// The reloads counted so far: (applied, refused).
    async fn reload_counts(&self) -> (u64, u64) {
        let metrics = self.metrics().await;
        (
            metric(
                &metrics,
                "tollgate_config_reloads_total{result=\"success\"}",
            ),
            metric(
                &metrics,
                "tollgate_config_reloads_total{result=\"failure\"}",
            ),
        )
    }

    /// Waits until one reload more than `before` (from [`Self::reload_counts`]) was
    /// counted; true if it was applied.
    async fn reload_outcome(&self, before: (u64, u64)) -> bool {
        let total = |(applied, refused): (u64, u64)| applied + refused;
        let after = Cell::new(before);
        let counted = eventually(Duration::from_secs(10), || async {
            after.set(self.reload_counts().await);
            total(after.get()) > total(before)
        })
        .await;
        assert!(counted, "no reload counted:\n{}", self.log());
        let after = after.get();
        assert_eq!(
            total(after),
            total(before) + 1,
            "more than one reload counted ({before:?} -> {after:?}):\n{}",
            self.log()
        );
        after.0 > before.0
    }

    /// The process log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("tollgate.log")).unwrap_or_default()
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
fn write_config(dir: &Path, frame: &Frame, body: &str) {
    let d = dir.display();
    let body = body.replace("$DIR", &d.to_string());
    let Frame {
        port,
        admin_port,
        server_extra,
        admin_extra,
        admin_token,
    } = frame;
    let token = match admin_token {
        Some(token) => format!("token_sha256 = \"{}\"\n", tollgate::auth::hash_key(token)),
        None => String::new(),
    };
    // Two workers and the logs in files, unless the test's `[server]` lines say.
    let unless_named = |key: &str, line: String| match server_extra.contains(&format!("{key} =")) {
        true => String::new(),
        false => line,
    };
    let workers = unless_named("workers", "workers = 2\n".into());
    let security_log = unless_named(
        "security_log",
        format!("security_log = {{ file = \"{d}/security.log\" }}\n"),
    );
    let text = format!(
        "[server]\n{workers}pid_file = \"{d}/tollgate.pid\"\nupgrade_socket = \"{d}/upgrade.sock\"\n\
         access_log = {{ file = \"{d}/access.log\" }}\n{security_log}grace_period = \"1s\"\nshutdown_timeout = \"1s\"\n{server_extra}\n\n\
         [admin]\nlisten = \"127.0.0.1:{admin_port}\"\n{token}{admin_extra}\n\n\
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
