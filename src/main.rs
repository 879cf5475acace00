//! The `tollgate` binary: set up metrics and the process log, parse the command line,
//! run, exit with its code.

use clap::Parser;
use std::sync::Arc;

mod allocator;

fn main() {
    allocator::give_memory_back();
    let metrics = match tollgate::observability::Metrics::new() {
        Ok(m) => Arc::new(m),
        Err(e) => {
            eprintln!("tollgate: cannot set up metrics: {e}");
            std::process::exit(1);
        }
    };
    // Before anything logs: the process log counts failed TLS handshakes in `metrics`.
    let log_output = tollgate::observability::process_log::init(metrics.clone());
    // JWT signatures checked with keys parsed once (src/auth/parsed_keys.rs).
    if !tollgate::auth::parsed_keys::install() {
        log::warn!("a JWT crypto provider was installed already: keys are parsed per check");
    }
    let code = tollgate::cli::Cli::parse().execute(metrics, log_output);
    std::process::exit(code);
}
