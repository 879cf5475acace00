#!/usr/bin/env bash
# load-tests/scaling.sh: what a second worker on a second core gives, for tollgate
# (`workers = 1` and `workers = 2`) and for nginx as a proxy (`worker_processes` 1 and 2).
#
# Topology (127.0.0.1, free ports), all four started at once, loaded one at a time:
#   wrk -t2 ──> tollgate, workers = 1           ──┐
#   wrk -t2 ──> tollgate, workers = 2           ──┼──> nginx origin (1 worker,
#   wrk -t2 ──> nginx proxy, worker_processes 1 ──┤    `return 200 "hello\n"`)
#   wrk -t2 ──> nginx proxy, worker_processes 2 ──┘
# tollgate: one route `/` to the origin, access log off. The nginx proxies have run.sh's
# config (upstream block with keepalive 64, proxy_http_version 1.1, Connection "").
#
# Caveat: on a 2-core machine wrk (THREADS threads) and the origin share the two cores
# with the proxy's workers, so the factor 2 workers / 1 worker is bounded by them, well
# below 2: it is a comparison of tollgate's factor with nginx's on the same machine, not
# a measure of how far either scales on cores of its own.
#
# The four are loaded in ROUNDS interleaved rounds (each round starts with the next one),
# after a warm-up each; medians are printed: requests/s, the factor 2 workers / 1 worker
# for tollgate and for nginx, and tollgate/nginx at each worker count.
#
# Knobs (env): DURATION=8s WARMUP=2s ROUNDS=3 CONNECTIONS=64 THREADS=2
#              SKIP_BUILD=0 KEEP_WORK=0
#              BUILD_TIMEOUT=1800
# Usage: bash load-tests/scaling.sh

set -euo pipefail

DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$REPO/target/release/tollgate"
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration_secs "$DURATION" >/dev/null && duration_secs "$WARMUP" >/dev/null
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ $THREADS =~ ^[1-9][0-9]*$ && $CONNECTIONS =~ ^[1-9][0-9]*$ ]] \
    || die "THREADS and CONNECTIONS must be positive integers"
((THREADS <= CONNECTIONS)) || die "THREADS ($THREADS) must not exceed CONNECTIONS ($CONNECTIONS)"

install_tools wrk:wrk
build_release --bin tollgate
init_work tollgate-scaling

pick_port PORT_ORIGIN
NGINX_WORKERS=1 start_origin "$PORT_ORIGIN"

SIDES=(tollgate-1 tollgate-2 nginx-1 nginx-2)
declare -A PORT URL RPS THREADS_OF
for side in "${SIDES[@]}"; do
    pick_port "PORT[$side]"
    URL[$side]="http://127.0.0.1:${PORT[$side]}/"
done

for n in 1 2; do
    side=tollgate-$n
    one_route_config "$side" "${PORT[$side]}" | sed "s/^workers = 1\$/workers = $n/" >"$WORK/$side.toml"
    grep -q "^workers = $n\$" "$WORK/$side.toml" || die "no 'workers = $n' in $WORK/$side.toml"
    "$BIN" run -c "$WORK/$side.toml" >"$WORK/$side.log" 2>&1 &
    PIDS+=("$!"); STOP_SIG[$!]=INT
    wait_ready "$side" "$!" "${URL[$side]}" "$WORK/$side.log"
    THREADS_OF[$side]=$(find "/proc/$!/task" -mindepth 1 -maxdepth 1 | wc -l)

    side=nginx-$n
    NGINX_WORKERS=$n start_nginx "$side" "$(nginx_upstream_origin "$PORT_ORIGIN")
    server {
        listen 127.0.0.1:${PORT[$side]};
        $NGINX_PROXY_LOCATION
    }" >"$WORK/$side.pid"
    pid=$(<"$WORK/$side.pid")
    wait_ready "$side" "$pid" "${URL[$side]}" "$WORK/$side/logs/error.log"
    kids=$(children_of "$pid" | wc -l)
    ((kids == n)) || die "$side: $kids worker processes, not $n"
done

# A second worker is a second proxy thread (Pingora runs each worker on its own thread).
log "threads: tollgate-1 ${THREADS_OF[tollgate-1]}, tollgate-2 ${THREADS_OF[tollgate-2]}"
((THREADS_OF[tollgate-2] > THREADS_OF[tollgate-1])) \
    || log "warning: tollgate-2 has no more threads than tollgate-1: is workers = 2 in effect?"

measure() { # SIDE ROUND|warmup
    local side=$1 out="$WORK/wrk-$1-$2.txt" rps
    if [[ $2 == warmup ]]; then
        wrk_strict "$WARMUP" "$out" "${URL[$side]}"
        return 0
    fi
    wrk_strict "$DURATION" "$out" "${URL[$side]}"
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    [[ -n $rps ]] || { cat "$out" >&2; die "could not parse $out"; }
    RPS[$side]+="$rps "
    log "round $(($2 + 1))/$ROUNDS: $side $rps requests/s"
}
in_rounds measure "${SIDES[@]}"

declare -A MED
for side in "${SIDES[@]}"; do MED[$side]=$(median <<<"${RPS[$side]}"); done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION (warm-up $WARMUP), median of $ROUNDS interleaved rounds;" \
    "origin: nginx, 1 worker; $(nproc) cores shared by wrk, the origin and the proxy"
printf '%-12s %8s %11s  %s\n' proxy workers requests/s "per round"
for side in "${SIDES[@]}"; do
    printf '%-12s %8s %11.0f  %s\n' "${side%-*}" "${side##*-}" "${MED[$side]}" "${RPS[$side]% }"
done
echo
printf 'scaling 2 workers / 1 worker:  tollgate %s   nginx %s\n' \
    "$(ratio "${MED[tollgate-2]}" "${MED[tollgate-1]}")" "$(ratio "${MED[nginx-2]}" "${MED[nginx-1]}")"
printf 'tollgate / nginx:              1 worker %s   2 workers %s\n' \
    "$(ratio "${MED[tollgate-1]}" "${MED[nginx-1]}")" "$(ratio "${MED[tollgate-2]}" "${MED[nginx-2]}")"
