#!/usr/bin/env bash
# load-tests/idle.sh: memory per idle client connection, and after a flood of them
# closes, for tollgate, Pingora's plain proxy and nginx (1 worker each, nginx origin).
#
# For each proxy: RSS at rest; N keep-alive connections opened (one request answered
# on each, then idle; several loopback source addresses, so ephemeral ports do not
# run short); RSS with them open; RSS 3 s after they all closed. Prints KiB per
# connection and how far RSS came back.
#
# Knobs (env): N=20000 TG_ENV="" (e.g. "MIMALLOC_PURGE_DELAY=0", for tollgate only)
#              KEEP_WORK=0 BUILD_TIMEOUT=1800
# Usage: bash load-tests/idle.sh

set -euo pipefail

N=${N:-20000}
TG_ENV=${TG_ENV:-}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN="$REPO/target/release/tollgate"
PLAIN="$REPO/target/release/examples/plain_proxy"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

# Every proxy and the opener hold N descriptors: fewer connections where the hard
# limit is lower (and raising it is not allowed).
if ! ulimit -n $((N + 1024)) 2>/dev/null; then
    hard=$(ulimit -Hn)
    ulimit -n "$hard"
    N=$((hard - 1024))
    log "the open files limit is $hard here: $N connections"
fi
install_tools
build_release --bin tollgate --example plain_proxy
init_work tollgate-idle

PORT_ORIGIN=$(free_port)
start_origin "$PORT_ORIGIN"

PORT_TG=$(free_port)
one_route_config tollgate "$PORT_TG" >"$WORK/tollgate.toml"
# shellcheck disable=SC2086 # TG_ENV: VAR=value words for tollgate's environment
env $TG_ENV "$BIN" run -c "$WORK/tollgate.toml" >"$WORK/tollgate.log" 2>&1 &
TG_PID=$!
PIDS+=("$TG_PID"); STOP_SIG[$TG_PID]=INT
wait_ready tollgate "$TG_PID" "http://127.0.0.1:$PORT_TG/" "$WORK/tollgate.log"

PORT_PLAIN=$(free_port)
"$PLAIN" "127.0.0.1:$PORT_PLAIN" "127.0.0.1:$PORT_ORIGIN" 1 >"$WORK/plain.log" 2>&1 &
PLAIN_PID=$!
PIDS+=("$PLAIN_PID"); STOP_SIG[$PLAIN_PID]=INT
wait_ready pingora "$PLAIN_PID" "http://127.0.0.1:$PORT_PLAIN/" "$WORK/plain.log"

PORT_NGX=$(free_port)
NGINX_WORKER_CONNECTIONS=$((N + 1024)) start_nginx proxy "$(nginx_upstream_origin "$PORT_ORIGIN")
    server {
        listen 127.0.0.1:$PORT_NGX;
        $NGINX_PROXY_LOCATION
    }" >"$WORK/nginx.pid"
NGX_PID=$(<"$WORK/nginx.pid")
wait_ready nginx "$NGX_PID" "http://127.0.0.1:$PORT_NGX/" "$WORK/proxy/logs/error.log"

rss_of() { # KiB of the given pids together
    local total=0 pid
    for pid in "$@"; do total=$((total + $(rss_kib "$pid"))); done
    echo "$total"
}

# measure NAME PORT FIRST_SRC_OCTET PIDS...: one flood of N idle connections.
declare -A REST OPEN AFTER
measure() {
    local name=$1 port=$2 src=$3 fifo="$WORK/$1.in" out="$WORK/$1.out"
    shift 3
    REST[$name]=$(rss_of "$@")
    mkfifo "$fifo"
    python3 "$HERE/idle_conns.py" "$N" "$port" "$src" <"$fifo" >"$out" 2>"$WORK/$name.err" &
    local opener=$!
    exec 9>"$fifo"
    local deadline=$((SECONDS + 120))
    until grep -q '^open' "$out" 2>/dev/null; do
        alive "$opener" || die "$name: the opener failed: $(tail -3 "$WORK/$name.err")"
        ((SECONDS < deadline)) || die "$name: $N connections not open after 120 s"
        sleep 0.5
    done
    sleep 1
    OPEN[$name]=$(rss_of "$@")
    echo >&9
    exec 9>&-
    wait "$opener" || true
    sleep 3
    AFTER[$name]=$(rss_of "$@")
    log "$name: rest $(mib "${REST[$name]}") MiB, $N open $(mib "${OPEN[$name]}") MiB, after $(mib "${AFTER[$name]}") MiB"
}

# Each proxy gets its own source addresses: closed connections wait out TIME_WAIT.
measure tollgate "$PORT_TG" 10 "$TG_PID"
measure pingora "$PORT_PLAIN" 20 "$PLAIN_PID"
measure nginx "$PORT_NGX" 30 "$NGX_PID" $(children_of "$NGX_PID")

echo
printf '%s idle keep-alive connections (one request each), 1 worker each\n' "$N"
printf '%-10s %10s %10s %12s %12s %10s\n' proxy "rest MiB" "open MiB" "KiB/conn" "after MiB" "after/rest"
for name in tollgate pingora nginx; do
    awk -v n="$name" -v r="${REST[$name]}" -v o="${OPEN[$name]}" -v a="${AFTER[$name]}" -v c="$N" \
        'BEGIN { printf "%-10s %10.1f %10.1f %12.1f %12.1f %10.2f\n", n, r / 1024, o / 1024, (o - r) / c, a / 1024, a / r }'
done
