#!/usr/bin/env bash
# load-tests/instructions.sh [REV]: instructions per request, counted by callgrind, of
# Pingora's plain proxy (examples/plain_proxy.rs, the reference), of tollgate's plain
# route and of its full pipeline (lib.sh full_config: RS256 with the token cache, a
# per-consumer limit, CORS, the security headers, the access log to a file, IP lists,
# a jail, the body limit, a deprecation, tracing at 1 %), of the same with
# `token_cache = 0` (every token's signature verified), and of the plain route with
# tracing on every request. Each is printed with its ratio to plain Pingora, and the
# plain route and the full pipeline with the 15 functions of tollgate's own code that
# cost the most instructions per request (inclusive: with what they call). With REV, the
# plain route and the full pipeline of tollgate built at that git revision too, and the
# ratios REV/tree.
# Requests/s on a shared 2-core VM vary by 10-20 % between runs; an instruction count is
# the same for the same binary, config and load whatever else the machine does, so it
# shows a change of a few percent that throughput cannot. Kernel time is not in it.
#
# Method, for each binary and config in turn: run the proxy (1 worker) under
#   valgrind --tool=callgrind --instr-atstart=no
# warm it up with wrk -c8 for WARMUP, switch counting on (callgrind_control -i on), load it
# with wrk -c8 for DURATION, switch counting off, stop it (the count is written at exit),
# and divide the instructions counted by the requests wrk completed meanwhile. Every
# answer must be 2xx. The tracing exporter's work (its own thread) counts too.
#
# Knobs (env): DURATION=8s WARMUP=3s CONNECTIONS=8 TOP=15 KEEP_WORK=0 BUILD_TIMEOUT=1800
# Usage: bash load-tests/instructions.sh            # the working tree
#        bash load-tests/instructions.sh 074c96b    # and a git revision beside it

set -euo pipefail

REV=${1:-}
TOP=${TOP:-15}
DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-3s}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=1
# Under valgrind a tollgate starts slowly.
READY_TIMEOUT=${READY_TIMEOUT:-120}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration_secs "$DURATION" >/dev/null && duration_secs "$WARMUP" >/dev/null
install_tools wrk:wrk valgrind:valgrind
init_work tollgate-instructions
if [[ -n $REV ]]; then
    build_rev_and_tree "$REV"
    build_release --example plain_proxy
else
    build_release --bin tollgate --example plain_proxy
    cp "$REPO/target/release/tollgate" "$WORK/tollgate-tree"
fi
cp "$REPO/target/release/examples/plain_proxy" "$WORK/plain_proxy"

PORT_ORIGIN=$(free_port)
start_origin "$PORT_ORIGIN"
make_jwt "$WORK"

tracing_config() { # tracing_config NAME PORT SAMPLE_RATIO: one_route_config plus [tracing]
    one_route_config "$1" "$2"
    printf '\n[tracing]\nendpoint = "http://127.0.0.1:%s/v1/traces"\nsample_ratio = %s\n' \
        "$PORT_ORIGIN" "$3"
}

declare -A IPR=()

# count SIDE KIND: instructions per request of tollgate-SIDE on a config of KIND (plain,
# full, full-uncached, tracing), or of plain Pingora (count pingora plain), into IPR[SIDE-KIND] and
# REQUESTS[SIDE-KIND] (no $(...): a subshell would lose the process's registration for
# cleanup).
count() {
    local side=$1 kind=$2 name="$1-$2" port pid total requests
    port=$(free_port)
    local run=("$WORK/tollgate-$side" run -c "$WORK/$name.toml")
    if [[ $side == pingora ]]; then
        run=("$WORK/plain_proxy" "127.0.0.1:$port" "127.0.0.1:$PORT_ORIGIN" 1)
    else
        case $kind in
            plain) one_route_config "$name" "$port" ;;
            full) full_config "$name" "$port" ;;
            full-uncached) full_config "$name" "$port" | sed '/^public_key_file/a token_cache = 0' ;;
            tracing) tracing_config "$name" "$port" 1.0 ;;
        esac >"$WORK/$name.toml"
        "$WORK/tollgate-$side" check -c "$WORK/$name.toml" >/dev/null
    fi
    local auth=()
    [[ $kind == full* ]] && auth=(-H "$AUTH_HEADER")
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/$name.cg" \
        "${run[@]}" >"$WORK/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid"); STOP_SIG[$pid]=INT
    wait_ready "$name" "$pid" "http://127.0.0.1:$port/" "$WORK/$name.log" "${auth[@]}"
    wrk_strict "$WARMUP" "$WORK/$name.warmup" "${auth[@]}" "http://127.0.0.1:$port/"
    callgrind_control -i on "$pid" >/dev/null
    wrk_strict "$DURATION" "$WORK/$name.wrk" "${auth[@]}" "http://127.0.0.1:$port/"
    callgrind_control -i off "$pid" >/dev/null
    stop_pid "$pid" INT
    forget_pid "$pid"
    requests=$(awk '/requests in/ { print $1 }' "$WORK/$name.wrk")
    total=$(awk '/^totals:/ { print $2; exit }' "$WORK/$name.cg")
    [[ -n $requests && -n $total && $requests -gt 0 && $total -gt 0 ]] || die "no count for $name (see $WORK/$name.log)"
    log "$name: $total instructions, $requests requests"
    IPR[$name]=$(awk -v t="$total" -v r="$requests" 'BEGIN { printf "%.0f", t / r }')
    REQUESTS[$name]=$requests
}

# top NAME: the TOP functions of tollgate's own code with the most instructions per
# request in NAME's count, inclusive (callgrind_annotate --inclusive=yes).
top() {
    # Lines read "COUNT (PERCENT)  FILE:FUNCTION [OBJECT]"; a function inlined into
    # several files is listed once per file: the first (largest) is kept.
    callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$WORK/$1.cg" 2>/dev/null \
        | awk -v r="${REQUESTS[$1]}" -v n="$TOP" '
            /^ *[0-9,]+ +\(/ {
                count = $1; gsub(",", "", count)
                fn = $0
                sub(/^ *[0-9,]+ +\([^)]*\) +/, "", fn)
                sub(/ \[[^]]*\]$/, "", fn)
                sub(/^[^ ]*\.(rs|c|h|S):/, "", fn)
                if (fn !~ /^<?tollgate::/ || seen[fn]++ || shown >= n) next
                printf "  %9.0f  %s\n", count / r, substr(fn, 1, 110)
                shown++
            }'
}

declare -A REQUESTS=()
count pingora plain
for kind in plain full; do
    [[ -n $REV ]] && count rev "$kind"
    count tree "$kind"
done
count tree full-uncached
count tree tracing

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
P=${IPR[pingora-plain]}
echo
echo "instructions per request (callgrind, wrk -c$CONNECTIONS -d$DURATION after $WARMUP, 1 worker; origin: nginx)"
printf '%-40s %10s %12s\n' "" "per request" "x Pingora"
row() { printf '%-40s %10s %12s\n' "$1" "$2" "$(ratio "$2" "$P")"; }
row "plain Pingora" "$P"
[[ -n $REV ]] && row "$REV plain route" "${IPR[rev-plain]}"
row "plain route" "${IPR[tree-plain]}"
[[ -n $REV ]] && row "$REV full pipeline" "${IPR[rev-full]}"
row "full pipeline" "${IPR[tree-full]}"
row "full pipeline, token_cache = 0" "${IPR[tree-full-uncached]}"
row "plain route + tracing every request" "${IPR[tree-tracing]}"
if [[ -n $REV ]]; then
    echo "ratio $REV/tree (above 1: the tree does less)"
    printf '  %-32s %s\n' "plain" "$(ratio "${IPR[rev-plain]}" "${IPR[tree-plain]}")" \
        "full pipeline" "$(ratio "${IPR[rev-full]}" "${IPR[tree-full]}")"
fi
for kind in plain full; do
    echo
    echo "$kind: tollgate's $TOP costliest functions, instructions per request, inclusive"
    top "tree-$kind"
done
