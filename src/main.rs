//! The `tollgate` binary: set up metrics and the process log, parse the command line,
//! run, exit with its code.

use clap::Parser;
use std::sync::Arc;

/// mimalloc instead of glibc malloc: the proxy path allocates small buffers per
/// request, and glibc's malloc/free showed as ~19% of CPU under load (see
/// load-tests/README.md for the measured difference).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's purge delay (`mi_option_purge_delay` in mimalloc.h's `mi_option_e`,
/// whose values are its order), set to 0: memory freed is given back to the system at
/// once rather than after 10 s (100 s for arena memory). `MIMALLOC_PURGE_DELAY` in the
/// environment still overrides it. Measured (README, Known limits): with one worker,
/// RSS came back from 80 to 41 MiB within half a second of 5,000 connections closing,
/// where it stayed at 80 without.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[allow(unsafe_code)]
fn give_memory_back_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` stores a value in mimalloc's option table, read at
        // each purge. It is not thread safe: this runs first in `main`, before any
        // other thread exists. The mimalloc crate offers no safe way to set it.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
    }
}

fn main() {
    give_memory_back_at_once();
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
