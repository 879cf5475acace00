#!/usr/bin/env bash
# load-tests/routes.sh: routing at scale. Does a big route table cost throughput, latency
# or memory, and how long do `tollgate check` and a reload of it take?
#
# Topology (127.0.0.1, free ports), four tollgates (1 worker each), one nginx origin:
#   wrk ──> tollgate small   10 routes:     1 host  x 10 path prefixes               ──┐
#   wrk ──> tollgate hosts   10,000 routes: 1,000 hosts x 10 path prefixes           ──┤
#   wrk ──> tollgate paths   10,000 routes: 1 host  x 10,000 path prefixes           ──┼──> nginx origin
#   wrk ──> tollgate nested  10,000 routes: 1 host  x 10,000 prefixes, all under /api ──┘
# The route tables are generated with python3: hosts api.example.com (hosts: h0000 ...
# h0999.example.com), prefixes /svc-00000, /svc-00001, ... (nested: /api/svc-00000, ...),
# all to the same upstream; no catch-all route (a path outside the table must get 404:
# checked). Each tollgate is loaded on the route in the middle of its table: Host
# api.example.com (hosts: h0500.example.com), path [/api]/svc-MIDDLE/items, which only
# that prefix matches (prefixes match whole segments). curl checks first that each
# answers 200 "hello" from the origin. `nested` is there because prefixes sharing their
# first segments are where an index by first segment falls back to a scan.
#
# The four are loaded one after the other (never together) in ROUNDS interleaved rounds,
# each round starting with the next one; medians are printed: requests/s, p50, the ratio
# to the 10-route instance (goal: >= 0.95, at most 5 % slower), RSS after the load and
# its excess over the 10-route instance. Then, for each 10,000-route file: the wall time
# of `tollgate check -c FILE` and of POST /reload on the instance's admin listener (curl's
# time until the 200 answer; goal under 1 s), medians of 3. The tollgates run with the
# systemd unit's environment (`unit_env`: its allocator settings), as deployed: without
# them mimalloc keeps the memory a big file's loading used, and RSS says little about
# what the routes hold.
#
# Knobs (env): DURATION=8s WARMUP=2s ROUNDS=3 CONNECTIONS=32 THREADS=1
#              SKIP_BUILD=0 KEEP_WORK=0
#              BUILD_TIMEOUT=1800
# Usage: bash load-tests/routes.sh

set -euo pipefail

DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
READY_TIMEOUT=30   # seconds per server: a 10,000-route table is compiled at start
CALL_TIMEOUT=60    # seconds for one `tollgate check` or POST /reload

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$REPO/target/release/tollgate"
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration_secs "$DURATION" >/dev/null && duration_secs "$WARMUP" >/dev/null
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"

install_tools wrk:wrk
build_release --bin tollgate
init_work tollgate-routes

pick_port PORT_ORIGIN
start_origin "$PORT_ORIGIN"

# gen_routes FILE HOSTS PREFIXES [ROOT]: appends HOSTS x PREFIXES [[routes]] (prefixes
# under ROOT) to FILE; prints the middle route's host and a request path only its prefix
# matches.
gen_routes() {
    python3 - "$1" "$2" "$3" "${4:-}" <<'PY'
import sys
path, nh, np_, root = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
hosts = ["api.example.com"] if nh == 1 else [f"h{i:04d}.example.com" for i in range(nh)]
with open(path, "a") as f:
    for h, host in enumerate(hosts):
        for p in range(np_):
            f.write(f'\n[[routes]]\nname = "r{h}-{p}"\nhosts = ["{host}"]\n'
                    f'path_prefix = "{root}/svc-{p:05d}"\nupstream = "origin"\n')
print(hosts[nh // 2], f"{root}/svc-{np_ // 2:05d}/items")
PY
}

NAMES=(small hosts paths nested)
declare -A LABEL=([small]="10 routes: 1 host x 10" [hosts]="10,000: 1,000 hosts x 10"
    [paths]="10,000: 1 host x 10,000" [nested]="10,000: same, under /api")
declare -A SHAPE=([small]="1 10" [hosts]="1000 10" [paths]="1 10000" [nested]="1 10000 /api")
declare -A ROOT=([nested]=/api)
declare -A PORT ADMIN PID HOST URL RPS P50 RSS CHECK RELOAD
for name in "${NAMES[@]}"; do
    pick_port "PORT[$name]"
    pick_port "ADMIN[$name]"
    cat >"$WORK/$name.toml" <<EOF
$(tollgate_server "$name")

[listeners.main]
addr = "127.0.0.1:${PORT[$name]}"

[admin]
listen = "127.0.0.1:${ADMIN[$name]}"

[upstreams.origin]
targets = ["127.0.0.1:$PORT_ORIGIN"]
EOF
    # shellcheck disable=SC2086 # SHAPE: two numbers
    mid=$(gen_routes "$WORK/$name.toml" ${SHAPE[$name]})
    HOST[$name]=${mid% *}
    URL[$name]="http://127.0.0.1:${PORT[$name]}${mid#* }"
    log "$name: $(grep -c '^\[\[routes\]\]' "$WORK/$name.toml") routes, $(du -k "$WORK/$name.toml" | cut -f1) KiB; loaded on Host ${HOST[$name]} ${URL[$name]}"
    # shellcheck disable=SC2046 # unit_env: VAR=value words
    env $(unit_env) "$BIN" run -c "$WORK/$name.toml" >"$WORK/$name.log" 2>&1 &
    PID[$name]=$!
    PIDS+=("$!"); STOP_SIG[$!]=INT
done
for name in "${NAMES[@]}"; do
    wait_ready "tollgate $name" "${PID[$name]}" "${URL[$name]}" "$WORK/$name.log" -H "Host: ${HOST[$name]}"
done

expect() { # NAME CODE URL: curl (with NAME's Host) must get CODE (200: and body "hello")
    local res
    res=$(curl -sS -o "$WORK/body" -w '%{http_code}' --max-time 5 -H "Host: ${HOST[$1]}" "$3") \
        || die "$1: curl $3 failed"
    [[ $res == "$2" ]] || die "$1: $3 (Host ${HOST[$1]}) answered $res, not $2"
    [[ $2 != 200 || $(<"$WORK/body") == hello ]] || die "$1: $3 answered $(head -c 200 "$WORK/body"), not hello"
}
for name in "${NAMES[@]}"; do
    expect "$name" 200 "${URL[$name]}"
    expect "$name" 404 "http://127.0.0.1:${PORT[$name]}${ROOT[$name]:-}/svc-99999/items"
done
log "each answers 200 hello on its route, 404 outside its table"

measure() { # NAME ROUND|warmup
    local name=$1 out="$WORK/wrk-$1-$2.txt" rps p50
    if [[ $2 == warmup ]]; then
        wrk_strict "$WARMUP" "$out" --latency -H "Host: ${HOST[$name]}" "${URL[$name]}"
        return 0
    fi
    wrk_strict "$DURATION" "$out" --latency -H "Host: ${HOST[$name]}" "${URL[$name]}"
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    [[ -n $rps && $p50 != NaN ]] || { cat "$out" >&2; die "could not parse $out"; }
    RPS[$name]+="$rps "
    P50[$name]+="$p50 "
    log "round $(($2 + 1))/$ROUNDS: $name $rps requests/s, p50 $p50 ms"
}
in_rounds measure "${NAMES[@]}"
for name in "${NAMES[@]}"; do RSS[$name]=$(rss_kib "${PID[$name]}"); done

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
for name in hosts paths nested; do
    for i in 1 2 3; do
        t0=$EPOCHREALTIME
        timeout "$CALL_TIMEOUT" "$BIN" check -c "$WORK/$name.toml" >"$WORK/check-$name.log" 2>&1 \
            || { cat "$WORK/check-$name.log" >&2; die "tollgate check -c $name.toml failed"; }
        CHECK[$name]+="$(elapsed "$t0" "$EPOCHREALTIME") "
    done
    for i in 1 2 3; do
        res=$(curl -sS -o "$WORK/reload-$name.json" -w '%{http_code} %{time_total}' \
            --max-time "$CALL_TIMEOUT" -X POST "http://127.0.0.1:${ADMIN[$name]}/reload") \
            || die "$name: POST /reload failed or took over ${CALL_TIMEOUT}s"
        [[ ${res% *} == 200 ]] || { cat "$WORK/reload-$name.json" >&2; die "$name: POST /reload answered ${res% *}"; }
        RELOAD[$name]+="${res#* } "
    done
    log "$name: check ${CHECK[$name]}s; reload ${RELOAD[$name]}s ($(<"$WORK/reload-$name.json"));" \
        "RSS $(mib "${RSS[$name]}") MiB after the load, $(mib "$(rss_kib "${PID[$name]}")") MiB after the reloads"
    expect "$name" 200 "${URL[$name]}"
done

med() { median <<<"$1"; }
echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (warm-up $WARMUP), median of $ROUNDS interleaved rounds;" \
    "1 worker each; origin: nginx"
printf '%-26s %11s %8s %7s %5s %8s %9s  %s\n' tollgate requests/s "p50 ms" ratio goal "RSS MiB" "+RSS MiB" "requests/s per round"
base_rps=$(med "${RPS[small]}")
for name in "${NAMES[@]}"; do
    awk -v l="${LABEL[$name]}" -v r="$(med "${RPS[$name]}")" -v p="$(med "${P50[$name]}")" -v b="$base_rps" \
        -v m="${RSS[$name]}" -v m0="${RSS[small]}" -v all="${RPS[$name]% }" 'BEGIN {
        printf "%-26s %11.0f %8.3f %7.3f %5s %8.1f %9.1f  %s\n", l, r, p, r / b,
            (r / b >= 0.95) ? "ok" : "MISS", m / 1024, (m - m0) / 1024, all }'
done
echo
printf '%-26s %16s %22s  %s\n' "10,000-route file" "check -c (s)" "POST /reload (s)" "reload per call (s)"
for name in hosts paths nested; do
    r=$(med "${RELOAD[$name]}")
    awk -v l="${LABEL[$name]}" -v c="$(med "${CHECK[$name]}")" -v r="$r" -v all="${RELOAD[$name]% }" 'BEGIN {
        printf "%-26s %16.3f %15.3f %6s  %s\n", l, c, r, (r < 1) ? "ok" : "MISS", all }'
done
