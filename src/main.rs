//! The `tollgate` binary: parse the command line, run, exit with its code.

use clap::Parser;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let code = tollgate::cli::Cli::parse().execute();
    std::process::exit(code);
}
