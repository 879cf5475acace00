//! The `tollgate` binary: set up metrics and the process log, parse the command line,
//! run, exit with its code.

use clap::Parser;
use std::sync::Arc;

/// mimalloc instead of glibc malloc: the proxy path allocates small buffers per
/// request, and glibc's malloc/free showed as ~19% of CPU under load (see
/// load-tests/README.md for the measured difference).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let metrics = match tollgate::observability::Metrics::new() {
        Ok(m) => Arc::new(m),
        Err(e) => {
            eprintln!("tollgate: cannot set up metrics: {e}");
            std::process::exit(1);
        }
    };
    // Before anything logs: the process log counts failed TLS handshakes in `metrics`.
    tollgate::observability::process_log::init(metrics.clone());
    let code = tollgate::cli::Cli::parse().execute(metrics);
    std::process::exit(code);
}
