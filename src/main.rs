//! The `tollgate` binary: parse the command line, run, exit with its code.

use clap::Parser;

/// mimalloc instead of glibc malloc: the proxy path allocates small buffers per
/// request, and glibc's malloc/free showed as ~19% of CPU under load (see
/// load-tests/README.md for the measured difference).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let code = tollgate::cli::Cli::parse().execute();
    std::process::exit(code);
}
