#!/usr/bin/env bash
# Builds tollgate (release) and runs it in the foreground on conf/tollgate.toml,
# or on the config given as the first argument.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release
exec target/release/tollgate run -c "${1:-conf/tollgate.toml}"
