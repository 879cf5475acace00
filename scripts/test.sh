#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and the integration tests
# (which start the real tollgate binary against real origins on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test
