#!/usr/bin/env bash
# load-tests/instructions.sh REV: instructions per request, counted by callgrind, of
# tollgate built at git revision REV and of the working tree, on the plain route and on
# the full pipeline (the same configs as compare.sh), and of the working tree with
# tracing on the plain route (sample_ratio 1.0 and 0.01, spans exported to the origin).
# Requests/s on a shared 2-core VM vary by 10-20 % between runs; an instruction count is
# the same for the same binary, config and load whatever else the machine does, so it
# shows a change of a few percent that throughput cannot. Kernel time is not in it.
#
# Method, for each binary and config in turn: run tollgate (1 worker) under
#   valgrind --tool=callgrind --instr-atstart=no
# warm it up with wrk -c8 for WARMUP, switch counting on (callgrind_control -i on), load it
# with wrk -c8 for DURATION, switch counting off, stop it (the count is written at exit),
# and divide the instructions counted by the requests wrk completed meanwhile. Every
# answer must be 2xx. The exporter's work (its own thread) counts too.
#
# Knobs (env): DURATION=8s WARMUP=3s CONNECTIONS=8 KEEP_WORK=0 BUILD_TIMEOUT=1800
# Usage: bash load-tests/instructions.sh 074c96b

set -euo pipefail

REV=${1:?usage: instructions.sh REV (a git revision to compare the working tree with)}
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
build_rev_and_tree "$REV"

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
# full, tracing, tracing-1pct), into IPR[SIDE-KIND] (no $(...): a subshell would lose the
# process's registration for cleanup).
count() {
    local side=$1 kind=$2 name="$1-$2" port pid out total requests
    port=$(free_port)
    case $kind in
        plain) one_route_config "$name" "$port" ;;
        full) full_config "$name" "$port" ;;
        tracing) tracing_config "$name" "$port" 1.0 ;;
        tracing-1pct) tracing_config "$name" "$port" 0.01 ;;
    esac >"$WORK/$name.toml"
    local auth=()
    [[ $kind == full ]] && auth=(-H "$AUTH_HEADER")
    "$WORK/tollgate-$side" check -c "$WORK/$name.toml" >/dev/null
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/$name.cg" \
        "$WORK/tollgate-$side" run -c "$WORK/$name.toml" >"$WORK/$name.log" 2>&1 &
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
}

for kind in plain full; do
    for side in rev tree; do
        count "$side" "$kind"
    done
done
count tree tracing
count tree tracing-1pct

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo
echo "instructions per request (callgrind, wrk -c$CONNECTIONS -d$DURATION after $WARMUP, 1 worker; origin: nginx)"
printf '%-34s %12s\n' "$REV plain" "${IPR[rev-plain]}" "tree plain" "${IPR[tree-plain]}" \
    "$REV full pipeline" "${IPR[rev-full]}" "tree full pipeline" "${IPR[tree-full]}" \
    "tree plain + tracing 1.0" "${IPR[tree-tracing]}" "tree plain + tracing 0.01" "${IPR[tree-tracing-1pct]}"
echo "ratio $REV/tree (above 1: the tree does less)"
printf '  %-32s %s\n' "plain" "$(ratio "${IPR[rev-plain]}" "${IPR[tree-plain]}")" \
    "full pipeline" "$(ratio "${IPR[rev-full]}" "${IPR[tree-full]}")"
echo "ratio plain/plain+tracing (the tree)"
printf '  %-32s %s\n' "sample_ratio 1.0" "$(ratio "${IPR[tree-plain]}" "${IPR[tree-tracing]}")" \
    "sample_ratio 0.01" "$(ratio "${IPR[tree-plain]}" "${IPR[tree-tracing-1pct]}")"
