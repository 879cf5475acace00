#!/usr/bin/env bash
# load-tests/upgrade.sh: errors that clients see while a proxy is upgraded or reloaded
# under keep-alive load, tollgate beside nginx.
#
# For each proxy, two phases, each under `wrk -c$CONNECTIONS` for the whole phase:
#   upgrades  N binary upgrades, INTERVAL seconds apart:
#             tollgate: `tollgate upgrade -c FILE` (run -u, then SIGQUIT to the old one);
#             nginx: USR2 to the master, then QUIT to the old master once the new one
#             has written its pid file;
#   reloads   N config reloads, INTERVAL seconds apart: SIGHUP to each (tollgate's
#             config alternates between two files that differ in one route).
# Both proxies run one worker, in front of the same nginx origin (`return 200`), on
# loopback. The table gives wrk's requests, socket errors and non-2xx answers per phase,
# and errors per event.
#
# Knobs (env): N=5 INTERVAL=3 CONNECTIONS=32 KEEP_WORK=0 BUILD_TIMEOUT=1800
# Usage: bash load-tests/upgrade.sh

set -euo pipefail

N=${N:-5}
INTERVAL=${INTERVAL:-3}
CONNECTIONS=${CONNECTIONS:-32}
STOP_TIMEOUT=8

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$REPO/target/release/tollgate"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

[[ $N =~ ^[1-9][0-9]*$ && $INTERVAL =~ ^[1-9][0-9]*$ ]] || die "N and INTERVAL must be positive integers"

install_tools wrk:wrk
build_release --bin tollgate
[[ -x $BIN ]] || die "$BIN not found after the build"
init_work tollgate-upgrade

PORT_ORIGIN=$(free_port); PORT_TG=$(free_port); PORT_NGX=$(free_port)
while [[ $PORT_TG == "$PORT_ORIGIN" ]]; do PORT_TG=$(free_port); done
while [[ $PORT_NGX == "$PORT_ORIGIN" || $PORT_NGX == "$PORT_TG" ]]; do PORT_NGX=$(free_port); done
log "work dir $WORK; ports: origin $PORT_ORIGIN, tollgate $PORT_TG, nginx $PORT_NGX"
start_origin "$PORT_ORIGIN"

# --- tollgate -------------------------------------------------------------------------------

tollgate_config() { # tollgate_config FILE VARIANT: the same config, one route's body differing
    cat >"$1" <<TOML
[server]
workers = 1
pid_file = "$WORK/tollgate.pid"
upgrade_socket = "$WORK/upgrade.sock"
access_log = "off"
grace_period = "$((INTERVAL + 2))s"
shutdown_timeout = "5s"

[listeners.bench]
addr = "127.0.0.1:$PORT_TG"

[upstreams.origin]
targets = ["127.0.0.1:$PORT_ORIGIN"]

[[routes]]
name = "variant"
path_prefix = "/variant"
respond = { status = 200, body = "$2" }

[[routes]]
name = "bench"
path_prefix = "/"
upstream = "origin"
TOML
}
TG_CONFIG="$WORK/tollgate.toml"
tollgate_config "$TG_CONFIG" a
"$BIN" check -c "$TG_CONFIG" >&2 || die "tollgate check failed"
"$BIN" run -c "$TG_CONFIG" >>"$WORK/tollgate.log" 2>&1 &
PIDS+=("$!"); STOP_SIG[$!]=INT
wait_ready tollgate "$!" "http://127.0.0.1:$PORT_TG/" "$WORK/tollgate.log"

tollgate_pid() { cat "$WORK/tollgate.pid"; }
tollgate_upgrade() {
    "$BIN" upgrade -c "$TG_CONFIG" >>"$WORK/tollgate.log" 2>&1 || die "tollgate upgrade failed (log: $WORK/tollgate.log)"
    local pid
    pid=$(tollgate_pid)
    PIDS+=("$pid"); STOP_SIG[$pid]=INT
}
VARIANT=a
tollgate_reload() {
    if [[ $VARIANT == a ]]; then VARIANT=b; else VARIANT=a; fi
    tollgate_config "$TG_CONFIG" "$VARIANT"
    kill -HUP "$(tollgate_pid)"
}

# --- nginx ----------------------------------------------------------------------------------

# Daemonized, as nginx runs in production: a master whose parent is still the shell
# that started it ignores USR2 (nginx's guard against a new binary acting on it).
mkdir -p "$WORK/proxy/logs" "$WORK/proxy/temp"
cat >"$WORK/proxy/nginx.conf" <<NGX
daemon on;
master_process on;
worker_processes 1;
pid $WORK/proxy/nginx.pid;
error_log $WORK/proxy/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
$(nginx_temp_paths)
$(nginx_upstream_origin "$PORT_ORIGIN")
    server {
        listen 127.0.0.1:$PORT_NGX;
        $NGINX_PROXY_LOCATION
    }
}
NGX
NGX_PIDFILE="$WORK/proxy/nginx.pid"
"$NGINX" -p "$WORK/proxy/" -e "$WORK/proxy/logs/error.log" -c "$WORK/proxy/nginx.conf" \
    || die "nginx (proxy) did not start"
deadline=$((SECONDS + READY_TIMEOUT))
until [[ -s $NGX_PIDFILE ]]; do
    ((SECONDS < deadline)) || die "nginx (proxy) wrote no pid file"
    sleep 0.05
done
NGX_PID=$(<"$NGX_PIDFILE")
PIDS+=("$NGX_PID"); STOP_SIG[$NGX_PID]=TERM
wait_ready nginx "$NGX_PID" "http://127.0.0.1:$PORT_NGX/" "$WORK/proxy/logs/error.log"
NGX_MASTER=$NGX_PID
nginx_reload() { kill -HUP "$NGX_MASTER"; }
nginx_upgrade() {
    local old=$NGX_MASTER new="" deadline=$((SECONDS + READY_TIMEOUT))
    kill -USR2 "$old"
    # The new master renames the old pid file to .oldbin and writes its own.
    until [[ -s $NGX_PIDFILE.oldbin && -n $new && $new != "$old" ]]; do
        ((SECONDS < deadline)) || die "nginx's new master did not write its pid file"
        sleep 0.05
        new=$(cat "$NGX_PIDFILE" 2>/dev/null || true)
    done
    PIDS+=("$new"); STOP_SIG[$new]=TERM
    kill -QUIT "$old"
    NGX_MASTER=$new
}

# --- phases ---------------------------------------------------------------------------------

declare -A REQUESTS ERRORS NON2XX
phase() { # phase PROXY ACTION URL: wrk over N events of ACTION, INTERVAL s apart
    local proxy=$1 action=$2 url=$3 out="$WORK/wrk-$1-$2.txt" dur i wrk_pid line
    dur=$((N * INTERVAL + 2))
    log "$proxy $action: wrk -t1 -c$CONNECTIONS -d${dur}s $url, $N ${action} ${INTERVAL}s apart"
    timeout $((dur + 30)) wrk -t1 -c"$CONNECTIONS" -d"${dur}s" "$url" >"$out" 2>&1 &
    wrk_pid=$!
    sleep 1
    for ((i = 1; i <= N; i++)); do
        "${proxy}_${action%s}"
        sleep "$INTERVAL"
    done
    wait "$wrk_pid" || { cat "$out" >&2; die "wrk failed against $url"; }
    REQUESTS[$proxy-$action]=$(awk '/ requests in / { print $1; exit }' "$out")
    line=$(grep 'Socket errors' "$out" || true)
    ERRORS[$proxy-$action]=$(awk -F'[ ,]+' '{ for (i = 1; i < NF; i++) if ($i ~ /^(connect|read|write|timeout)$/) n += $(i + 1) } END { print n + 0 }' <<<"$line")
    NON2XX[$proxy-$action]=$(awk '/Non-2xx or 3xx responses/ { print $NF }' "$out")
    NON2XX[$proxy-$action]=${NON2XX[$proxy-$action]:-0}
    [[ -z $line ]] || log "  $line"
}

phase tollgate upgrades "http://127.0.0.1:$PORT_TG/"
phase tollgate reloads "http://127.0.0.1:$PORT_TG/"
phase nginx upgrades "http://127.0.0.1:$PORT_NGX/"
phase nginx reloads "http://127.0.0.1:$PORT_NGX/"

echo
echo "wrk -t1 -c$CONNECTIONS over each phase; $N events ${INTERVAL}s apart; 1 worker each; origin: nginx"
printf '%-10s %-9s %12s %14s %10s %18s\n' proxy phase requests "socket errors" non-2xx "errors per event"
for proxy in tollgate nginx; do
    for action in upgrades reloads; do
        k=$proxy-$action
        printf '%-10s %-9s %12s %14s %10s %18s\n' "$proxy" "$action" "${REQUESTS[$k]}" "${ERRORS[$k]}" "${NON2XX[$k]}" \
            "$(awk -v e="${ERRORS[$k]}" -v x="${NON2XX[$k]}" -v n="$N" 'BEGIN { printf "%.1f", (e + x) / n }')"
    done
done
