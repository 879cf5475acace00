#!/usr/bin/env bash
# load-tests/fleet.sh: errors that clients see while a fleet's config changes under load.
#
# One etcd (single member, loopback), two tollgate nodes ([fleet], one worker each,
# their own listener and cache) in front of one nginx origin. wrk drives each node
# (`wrk -c$CONNECTIONS` for the whole run) while N new revisions of the cluster's
# document are pushed INTERVAL seconds apart (each differs from the one before; every
# node reloads for each). At the end both must serve the last revision (`tollgate fleet
# status`), and the table gives each node's requests, requests/s, socket errors and
# non-2xx answers.
#
# Knobs (env): N=5 INTERVAL=3 CONNECTIONS=32 KEEP_WORK=0 BUILD_TIMEOUT=1800 SKIP_BUILD=0
# Usage: bash load-tests/fleet.sh

set -euo pipefail

N=${N:-5}
INTERVAL=${INTERVAL:-3}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=1

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$REPO/target/release/tollgate"
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $N =~ ^[1-9][0-9]*$ && $INTERVAL =~ ^[1-9][0-9]*$ ]] || die "N and INTERVAL must be positive integers"
install_tools wrk:wrk etcd:etcd-server
build_release --bin tollgate
init_work tollgate-fleet

PORT_ORIGIN=$(free_port)
start_origin "$PORT_ORIGIN"

# One etcd member, its data in the work dir.
ETCD_CLIENT=$(free_port); ETCD_PEER=$(free_port)
ETCD_URL="http://127.0.0.1:$ETCD_CLIENT"
etcd --name load --data-dir "$WORK/etcd" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "load=http://127.0.0.1:$ETCD_PEER" >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!
PIDS+=("$ETCD_PID"); STOP_SIG[$ETCD_PID]=TERM
for ((i = 0; i < 100; i++)); do
    curl -fsS --max-time 1 "$ETCD_URL/health" 2>/dev/null | grep -q '"health":"true"' && break
    alive "$ETCD_PID" || die "etcd exited during start-up (log: $WORK/etcd.log)"
    sleep 0.1
done
((i < 100)) || die "etcd not ready at $ETCD_URL after 10 s (log: $WORK/etcd.log)"

# document I: the cluster's config, revision I of this run (a comment tells them apart).
document() {
    cat <<TOML
# push $1
[server]
workers = 1
access_log = "off"

[listeners.main]
addr = "127.0.0.1:1"

[upstreams.origin]
targets = ["127.0.0.1:$PORT_ORIGIN"]

[[routes]]
name = "all"
upstream = "origin"
TOML
}

push() { # push I
    document "$1" >"$WORK/document.toml"
    "$BIN" push -c "$WORK/document.toml" --etcd "$ETCD_URL" --cluster load >>"$WORK/push.log" 2>&1 \
        || { cat "$WORK/push.log" >&2; die "push $1 failed"; }
}
push 0

declare -A PORT=() PID=()
for node in a b; do
    PORT[$node]=$(free_port)
    cat >"$WORK/$node.toml" <<TOML
[server]
pid_file = "$WORK/$node.pid"
upgrade_socket = "$WORK/$node.sock"

[listeners.main]
addr = "127.0.0.1:${PORT[$node]}"

[fleet]
etcd = ["$ETCD_URL"]
cluster = "load"
cache = "$WORK/cache-$node"
TOML
    start_tollgate "$node" "$BIN" "$WORK/$node.toml" "${PORT[$node]}"
    PID[$node]=$STARTED_PID
done

RUN=$((N * INTERVAL + INTERVAL))
for node in a b; do
    timeout $((RUN + 30)) wrk -t1 -c"$CONNECTIONS" -d"${RUN}s" "http://127.0.0.1:${PORT[$node]}/" \
        >"$WORK/wrk-$node.txt" 2>&1 &
    PID[wrk-$node]=$!
done
for ((i = 1; i <= N; i++)); do
    sleep "$INTERVAL"
    push "$i"
    log "pushed revision $i of $N"
done
for node in a b; do
    wait "${PID[wrk-$node]}" || { cat "$WORK/wrk-$node.txt" >&2; die "wrk against node $node failed"; }
done

"$BIN" fleet status --etcd "$ETCD_URL" --cluster load >"$WORK/status.txt" 2>&1 \
    || { cat "$WORK/status.txt" >&2; die "a node is not at the last revision"; }
for node in a b; do
    grep -q "push $N" "$WORK/cache-$node/load/current/tollgate.toml" \
        || die "node $node's current config is not the last push"
done

echo
echo "fleet: $N pushes $INTERVAL s apart to 2 nodes, each under wrk -t1 -c$CONNECTIONS -d${RUN}s"
printf '%-6s %10s %12s %15s %10s\n' node requests requests/s "socket errors" non-2xx
for node in a b; do
    out="$WORK/wrk-$node.txt"
    printf '%-6s %10s %12s %15s %10s\n' "$node" \
        "$(awk '/requests in/ { print $1 }' "$out")" \
        "$(awk '/^Requests\/sec:/ { print $2 }' "$out")" \
        "$(awk '/Socket errors/ { print $4 $5 $6 $7 $8 $9 $10 $11 }' "$out" | grep . || echo 0)" \
        "$(awk '/Non-2xx/ { print $NF }' "$out" | grep . || echo 0)"
done
echo
cat "$WORK/status.txt"
if grep -qE 'Socket errors|Non-2xx' "$WORK/wrk-a.txt" "$WORK/wrk-b.txt"; then
    die "clients saw errors while the config changed"
fi
