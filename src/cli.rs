//! The command line: `run`, `check`, `reload`, `reopen-logs`, `upgrade`, `stop`,
//! `hash-key`, `push`, `fleet` and `acme`. Each subcommand returns an exit code;
//! `main` only parses and exits.

use clap::{Parser, Subcommand};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::auth::hash_key as digest;
use crate::bootstrap::{self, RunFlags};
use crate::config::raw::{FleetSection, FleetTls, RawConfig, ServerSection};
use crate::config::{load_file, read_file};
use crate::fleet::commands::{self as fleet, Source, Target};
use crate::observability::process_log::LogOutput;
use crate::observability::Metrics;
use crate::state::{compile::compile, Retained};
use crate::upgrade::read_pid;

const DEFAULT_CONFIG: &str = "/etc/tollgate/tollgate.toml";

#[derive(Debug, Parser)]
#[command(
    name = "tollgate",
    version,
    about = "An edge proxy and API gateway on Pingora"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy in the foreground (or as a daemon with -d).
    Run {
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Detach and run in the background (Pingora's daemon mode).
        #[arg(short, long)]
        daemon: bool,
        /// Take the listening sockets over from a running tollgate (graceful upgrade).
        #[arg(short, long)]
        upgrade: bool,
    },
    /// Validate a config file without starting anything.
    Check {
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Ask the running tollgate (found through the config's pid file) to reload.
    Reload {
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Ask the running tollgate (found through the config's pid file) to reopen its
    /// log files, moved away for rotation (SIGWINCH).
    ReopenLogs {
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Upgrade the running tollgate to a new binary without dropping a connection:
    /// check FILE, start `BINARY run -u -c FILE`, hand the sockets over, wait for it.
    Upgrade {
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The new binary (default: this one).
        #[arg(long)]
        binary: Option<PathBuf>,
        /// How long the new process may take to start and take the sockets over.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Stop the running tollgate gracefully (SIGTERM to the pid in the config's pid
    /// file) and wait until it has exited.
    Stop {
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Stop this process instead of the one in the pid file (systemd: $MAINPID).
        #[arg(long)]
        pid: Option<i32>,
    },
    /// Print the SHA-256 digest of an API key read from standard input, for a
    /// consumer's `key_sha256` (the key itself never goes into the config).
    HashKey {
        /// Generate a new random key instead, and print it with its digest.
        #[arg(long)]
        generate: bool,
    },
    /// Check a config and store it, with every file it reads, as a cluster's config in
    /// etcd (one transaction), or store a revision stored before again (roll back).
    Push {
        /// The config to push.
        #[arg(short, long, required_unless_present = "revision")]
        config: Option<PathBuf>,
        #[command(flatten)]
        target: EtcdTarget,
        /// Push only if the cluster's config is still at this revision.
        #[arg(long)]
        expect_revision: Option<i64>,
        /// Push this stored revision again, through the same checks.
        #[arg(long, conflicts_with = "config")]
        revision: Option<i64>,
    },
    /// A cluster configured from etcd.
    Fleet {
        #[command(subcommand)]
        command: FleetCommand,
    },
    /// Automatic certificates.
    Acme {
        #[command(subcommand)]
        command: AcmeCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AcmeCommand {
    /// Each set of domains of the config: its stored certificate, expiry and next
    /// renewal (read from the storage).
    Status {
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Each running node, the revision it serves, and whether that is the latest (exit
    /// 1 when one is behind).
    Status {
        #[command(flatten)]
        target: EtcdTarget,
    },
    /// The revisions of the cluster's config, newest first: when, by whom, its SHA-256.
    History {
        #[command(flatten)]
        target: EtcdTarget,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

#[derive(Debug, clap::Args)]
pub struct EtcdTarget {
    /// etcd's client URLs, comma-separated (`http://10.0.0.1:2379,...`).
    #[arg(long, value_delimiter = ',', required = true)]
    etcd: Vec<String>,
    /// The cluster's name: its keys are under `/tollgate/NAME/`.
    #[arg(long)]
    cluster: String,
    /// The CA that etcd's certificate must chain to (`https://` URLs).
    #[arg(long)]
    etcd_ca: Option<PathBuf>,
    /// A client certificate for etcd, with `--etcd-key`.
    #[arg(long, requires = "etcd_key", requires = "etcd_ca")]
    etcd_cert: Option<PathBuf>,
    #[arg(long, requires = "etcd_cert")]
    etcd_key: Option<PathBuf>,
    /// Environment variables holding etcd's user name and password.
    #[arg(long, requires = "password_env")]
    username_env: Option<String>,
    #[arg(long, requires = "username_env")]
    password_env: Option<String>,
}

impl From<EtcdTarget> for Target {
    fn from(t: EtcdTarget) -> Self {
        let tls = t.etcd_ca.map(|ca| FleetTls {
            ca,
            cert: t.etcd_cert,
            key: t.etcd_key,
        });
        Target {
            fleet: FleetSection {
                etcd: t.etcd,
                cluster: t.cluster,
                cache: PathBuf::new(),
                username_env: t.username_env,
                password_env: t.password_env,
                tls,
            },
        }
    }
}

impl Cli {
    /// Runs the subcommand; `log_output` is where `run` sends the process log once
    /// the config says.
    pub fn execute(self, metrics: Arc<Metrics>, log_output: LogOutput) -> i32 {
        match self.command {
            Command::Run {
                config,
                daemon,
                upgrade,
            } => match bootstrap::run(&config, RunFlags { daemon, upgrade }, metrics, log_output) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("tollgate: {e:#}");
                    1
                }
            },
            Command::Check { config } => check(&config, metrics),
            Command::Reload { config } => reload(&config, metrics),
            Command::ReopenLogs { config } => reopen_logs(&config),
            Command::Upgrade {
                config,
                binary,
                timeout,
            } => upgrade(&config, binary, timeout, metrics),
            Command::Stop { config, pid } => stop(&config, pid),
            Command::HashKey { generate } => hash_key(generate),
            Command::Push {
                config,
                target,
                expect_revision,
                revision,
            } => {
                let source = match (config, revision) {
                    (_, Some(revision)) => Source::Revision(revision),
                    (Some(config), None) => Source::File(config),
                    (None, None) => {
                        eprintln!("tollgate: push needs -c FILE or --revision N");
                        return 2;
                    }
                };
                let check = |path: &Path| check_fully(path, metrics.clone()).is_some();
                fleet::push(&target.into(), &source, expect_revision, check)
            }
            Command::Fleet {
                command: FleetCommand::History { target, limit },
            } => fleet::history(&target.into(), limit),
            Command::Fleet {
                command: FleetCommand::Status { target },
            } => fleet::status(&target.into()),
            Command::Acme {
                command: AcmeCommand::Status { config },
            } => acme_status(&config, metrics),
        }
    }
}

/// Valid: a one-line summary (after any warnings), exit 0. Invalid: every error with
/// its place, exit 1.
fn check(path: &Path, metrics: Arc<Metrics>) -> i32 {
    let Some(raw) = check_fully(path, metrics) else {
        return 1;
    };
    println!(
        "{}: ok ({} listeners, {} upstreams, {} authenticators, {} routes)",
        path.display(),
        raw.listeners.len(),
        raw.upstreams.len(),
        raw.auth.len(),
        raw.routes.len()
    );
    0
}

/// Parses, validates and compiles the file as a reload would (reading certificates and
/// keys), printing every error with its place and every warning to stderr.
fn check_fully(path: &Path, metrics: Arc<Metrics>) -> Option<RawConfig> {
    let checked = read_file(path).and_then(|loaded| {
        let snapshot = compile(&loaded, &Retained::for_check(metrics))?;
        Ok((loaded, snapshot))
    });
    let (loaded, snapshot) = match checked {
        Ok(checked) => checked,
        Err(errors) => {
            eprint!("{errors}");
            return None;
        }
    };
    for warning in &snapshot.warnings {
        eprintln!("{}: warning: {warning}", path.display());
    }
    Some(loaded.raw)
}

/// The ACME report of a valid config; exit 1 when it cannot be read.
fn acme_status(path: &Path, metrics: Arc<Metrics>) -> i32 {
    let Some(raw) = check_fully(path, metrics) else {
        return 1;
    };
    match crate::acme::status::report(&raw) {
        Ok(report) => {
            print!("{report}");
            0
        }
        Err(e) => {
            eprintln!("tollgate: {e}");
            1
        }
    }
}

/// Checks the file first, like `check` (so a typo or a bad certificate is reported
/// here, not only in the log), then sends SIGHUP to the pid in the config's pid file.
fn reload(path: &Path, metrics: Arc<Metrics>) -> i32 {
    let Some(raw) = check_fully(path, metrics) else {
        eprintln!("not reloading: fix the errors above first");
        return 1;
    };
    signal(&raw.server, Signal::SIGHUP, "reload requested")
}

/// Sends SIGWINCH to the pid in the config's pid file: the log files reopen. Only
/// `server.pid_file` is read: a file with errors elsewhere (being edited when
/// logrotate runs) does not keep the logs from rotating.
fn reopen_logs(path: &Path) -> i32 {
    match read_file(path) {
        Ok(loaded) => signal(&loaded.raw.server, Signal::SIGWINCH, "log files reopen"),
        Err(errors) => {
            eprint!("{errors}");
            1
        }
    }
}

/// Sends `signal` to the pid in `server`'s pid file and says `what` it does.
fn signal(server: &ServerSection, signal: Signal, what: &str) -> i32 {
    let pid = match read_pid(&server.pid_file) {
        Ok(pid) => pid,
        Err(e) => {
            eprintln!("tollgate: {e}");
            return 1;
        }
    };
    match kill(Pid::from_raw(pid), signal) {
        Ok(()) => {
            println!("{what} (pid {pid}); the result is in tollgate's log");
            0
        }
        Err(e) => {
            eprintln!("tollgate: cannot signal pid {pid}: {e}");
            1
        }
    }
}

fn upgrade(
    path: &Path,
    binary: Option<PathBuf>,
    timeout: std::time::Duration,
    metrics: Arc<Metrics>,
) -> i32 {
    let Some(raw) = check_fully(path, metrics) else {
        eprintln!("not upgrading: fix the errors above first");
        return 1;
    };
    let binary = match binary.map_or_else(std::env::current_exe, Ok) {
        Ok(binary) => binary,
        Err(e) => {
            eprintln!("tollgate: cannot find this binary: {e}");
            return 1;
        }
    };
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    match crate::upgrade::upgrade(&path, &raw.server, &binary, timeout) {
        Ok(pid) => {
            println!("upgraded: pid {pid} serves now; the old process drains and exits");
            0
        }
        Err(e) => {
            eprintln!("tollgate: upgrade failed: {e}");
            1
        }
    }
}

/// Stops the process (see `upgrade::stop`). The file gives the pid file and the
/// timings; when it does not load and `pid` is given, the stop goes on with the
/// default timings (a file being edited must not keep systemd from stopping).
fn stop(path: &Path, pid: Option<i32>) -> i32 {
    let server = match load_file(path) {
        Ok(loaded) => loaded.raw.server,
        Err(errors) => {
            eprint!("{errors}");
            if pid.is_none() {
                return 1;
            }
            eprintln!("tollgate: stopping pid with the default timings");
            ServerSection::default()
        }
    };
    match crate::upgrade::stop(&server, pid) {
        Ok(pid) => {
            println!("stopped: pid {pid} has exited");
            0
        }
        Err(e) => {
            eprintln!("tollgate: stop failed: {e}");
            1
        }
    }
}

fn hash_key(generate: bool) -> i32 {
    if generate {
        let key = format!(
            "tg_{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        println!("key:        {key}\nkey_sha256: {}", digest(&key));
        return 0;
    }
    let mut key = String::new();
    if let Err(e) = std::io::stdin().read_line(&mut key) {
        eprintln!("tollgate: cannot read the key from standard input: {e}");
        return 1;
    }
    let key = key.trim_end_matches(['\r', '\n']);
    if key.is_empty() {
        eprintln!(
            "tollgate: no key on standard input (try: printf %s \"$KEY\" | tollgate hash-key)"
        );
        return 1;
    }
    println!("{}", digest(key));
    0
}
