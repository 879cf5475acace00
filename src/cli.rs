//! The command line: `run`, `check` and `reload`. Each subcommand returns an exit
//! code; `main` only parses and exits.

use clap::{Parser, Subcommand};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};

use crate::bootstrap::{self, RunFlags};
use crate::config::{load_file, LoadedConfig};
use crate::state::compile::compile;
use crate::upstream::PoolRegistry;

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
}

impl Cli {
    pub fn execute(self) -> i32 {
        match self.command {
            Command::Run {
                config,
                daemon,
                upgrade,
            } => match bootstrap::run(&config, RunFlags { daemon, upgrade }) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("tollgate: {e:#}");
                    1
                }
            },
            Command::Check { config } => check(&config),
            Command::Reload { config } => reload(&config),
        }
    }
}

/// Valid: a one-line summary, exit 0. Invalid: every error with its place, exit 1.
fn check(path: &Path) -> i32 {
    let LoadedConfig { raw } = match load_file(path) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprint!("{errors}");
            return 1;
        }
    };
    if let Err(e) = compile(&raw, &PoolRegistry::default()) {
        eprintln!("{}: {e}", path.display());
        return 1;
    }
    println!(
        "{}: ok ({} listeners, {} upstreams, {} routes)",
        path.display(),
        raw.listeners.len(),
        raw.upstreams.len(),
        raw.routes.len()
    );
    0
}

/// Validates the file first (so a typo is reported here, not only in the log), then
/// sends SIGHUP to the pid in the config's pid file.
fn reload(path: &Path) -> i32 {
    let raw = match load_file(path) {
        Ok(loaded) => loaded.raw,
        Err(errors) => {
            eprint!("{errors}\nnot reloading: fix the errors above first\n");
            return 1;
        }
    };
    let pid_file = &raw.server.pid_file;
    let pid = match std::fs::read_to_string(pid_file).map(|s| s.trim().parse::<i32>()) {
        Ok(Ok(pid)) => pid,
        Ok(Err(_)) => {
            eprintln!("tollgate: {} does not hold a pid", pid_file.display());
            return 1;
        }
        Err(e) => {
            eprintln!(
                "tollgate: cannot read pid file {}: {e} (is tollgate running?)",
                pid_file.display()
            );
            return 1;
        }
    };
    match kill(Pid::from_raw(pid), Signal::SIGHUP) {
        Ok(()) => {
            println!("reload requested (pid {pid}); the result is in tollgate's log");
            0
        }
        Err(e) => {
            eprintln!("tollgate: cannot signal pid {pid}: {e}");
            1
        }
    }
}
