#!/usr/bin/env bash
# Builds tollgate (release) and runs it in the foreground on conf/tollgate.toml, or on
# the config given as the last argument.
#
# On the default config it first starts a small demo origin (scripts/demo-origin.py)
# on 127.0.0.1:9001, the target of its `app` upstream, so that the first request
# through /app reaches something real; --no-demo leaves it out. It stops with tollgate.
set -euo pipefail
cd "$(dirname "$0")/.."
demo=1
if [ "${1:-}" = "--no-demo" ]; then
  demo=0
  shift
fi
config=${1:-conf/tollgate.toml}
[ "$config" = conf/tollgate.toml ] || demo=0
scripts/deps.sh
cargo build --release
if [ "$demo" = 1 ]; then
  python3 scripts/demo-origin.py 127.0.0.1:9001 &
  origin=$!
  trap 'kill "$origin" 2>/dev/null || true' EXIT
  echo "try: curl http://127.0.0.1:8080/app/hello" >&2
fi
target/release/tollgate run -c "$config"
