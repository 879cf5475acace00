#!/usr/bin/env bash
# load-tests/waf-bench.sh: what the WAF costs a request, against the same route without
# it, in one run on the same tollgate and origin.
#
# One tollgate (one worker, pinned on PROXY_CPU) with two routes to the nginx origin:
# `/plain/` without a WAF and `/waf/` with `[waf]` at paranoia 1 (its defaults: block,
# threshold 5, every place inspected, bodies up to 64KiB). Two requests on each:
#   get   GET with three query parameters and the headers a browser sends (8, a cookie);
#   json  POST of a clean 1 KB JSON body (an order with prose in it).
# Throughput: wrk -t1 -c$CONNECTIONS for DURATION, ROUNDS interleaved rounds after a
# warm-up, medians, every answer 2xx (a request the WAF refused would fail the run).
# Latency: wrk -t1 -c1 (one request at a time, no queueing) for DURATION against a second
# tollgate, the same but writing its access log (the first writes none, so that the log
# does not weigh on throughput), on the same CPU. Each request's `duration_ms` there is
# the time tollgate spent on it, origin included, without the client's and the kernel's
# share of the VM's noise; p50 and p99 over every round's requests, and "added": the WAF
# route's minus the plain route's. wrk's own p99 (client side) is shown beside.
# Instructions per request (COUNT=1): the four requests again on a third tollgate (no
# access log) under valgrind --tool=callgrind, each counted alone (wrk -c8 for
# COUNT_DURATION after WARMUP; counters zeroed before, dumped after), divided by the
# requests wrk completed: what a noisy VM cannot blur. User space only (the kernel's
# share of a request is the same on both routes).
#
# Knobs (env): DURATION=8s WARMUP=2s ROUNDS=3 CONNECTIONS=32 PROXY_CPU=0 LOAD_CPU=1
#              COUNT=1 COUNT_DURATION=5s KEEP_WORK=0 BUILD_TIMEOUT=1800 SKIP_BUILD=0
# Usage: bash load-tests/waf-bench.sh

set -euo pipefail

DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=1
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration_secs "$DURATION" >/dev/null && duration_secs "$WARMUP" >/dev/null
COUNT=${COUNT:-1}
COUNT_DURATION=${COUNT_DURATION:-5s}
install_tools wrk:wrk taskset:util-linux
[[ $COUNT == 1 ]] && install_tools valgrind:valgrind
init_work tollgate-waf-bench
build_release --bin tollgate
BIN="$REPO/target/release/tollgate"
# shellcheck disable=SC2046 # unit_env: VAR=value words
export $(unit_env)

PORT_ORIGIN=$(free_port)
start_origin "$PORT_ORIGIN"
taskset -a -p -c "$LOAD_CPU" "$(<"$WORK/origin.pid")" >/dev/null
for kid in $(children_of "$(<"$WORK/origin.pid")"); do taskset -p -c "$LOAD_CPU" "$kid" >/dev/null; done

# config NAME PORT [logged]: the two routes on PORT (lib.sh one_route_config's route for
# every path answers readiness; the longest prefix wins).
config() {
    one_route_config "$@"
    cat <<EOT

[waf.default]

[[routes]]
name = "plain"
path_prefix = "/plain"
upstream = "origin"
strip_prefix = true

[[routes]]
name = "waf"
path_prefix = "/waf"
upstream = "origin"
strip_prefix = true
waf = "default"
EOT
}
PORT=$(free_port) PORT_LOGGED=$(free_port)
ACCESS_LOG="$WORK/logged-access.log"
config tollgate "$PORT" >"$WORK/tollgate.toml"
config logged "$PORT_LOGGED" logged >"$WORK/logged.toml"
for name in tollgate logged; do
    port=$PORT
    [[ $name == logged ]] && port=$PORT_LOGGED
    start_tollgate "$name" "$BIN" "$WORK/$name.toml" "$port"
    for p in "$STARTED_PID" $(children_of "$STARTED_PID"); do taskset -a -p -c "$PROXY_CPU" "$p" >/dev/null; done
done

# The two requests, as wrk scripts.
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
items = [{"sku": f"SKU-{i:04}", "qty": i, "note": f"Leave it with the neighbour at no. {i}, it's fine"} for i in range(10)]
body = json.dumps({"customer": "O'Brien & Sons", "email": "orders@obrien.example", "items": items,
                   "comment": "Please select the union option and drop by on Monday; 1 or 2 boxes"})
headers = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Accept": "application/json, text/plain, */*",
    "Accept-Language": "en-GB,en;q=0.8",
    "Accept-Encoding": "gzip, deflate, br",
    "Authorization": "Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl",
    "Referer": "https://app.example.com/orders?page=2",
    "Cookie": "session=0b9f6c1e4d7a4c559a0e3f1d2b6c7a88; theme=dark",
}
lua_headers = "".join(f'wrk.headers["{k}"] = {json.dumps(v)}\n' for k, v in headers.items())
open(f"{work}/get.lua", "w").write(lua_headers)
open(f"{work}/json.lua", "w").write(
    lua_headers + 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
    + f"wrk.body = {json.dumps(body)}\n")
open(f"{work}/json-bytes", "w").write(str(len(body)))
PY
QUERY="orders/12345?page=2&sort=-created_at&q=O%27Brien%27s+caf%C3%A9"
declare -A URL=(
    [get-plain]="/plain/$QUERY" [get-waf]="/waf/$QUERY" [json-plain]="/plain/orders" [json-waf]="/waf/orders"
)
# The WAF passes both requests (a refusal would be a false positive, and a failed run).
for name in get-waf json-waf; do
    code=$(wrk -t1 -c1 -d1s -s "$WORK/${name%%-*}.lua" "http://127.0.0.1:$PORT${URL[$name]}" | grep -c 'Non-2xx' || true)
    [[ $code == 0 ]] || die "the WAF refused the clean $name request"
done

taskset -p -c "$LOAD_CPU" $$ >/dev/null
declare -A RPS=() P99=()
measure() { # measure NAME ROUND|warmup
    local name=$1 out="$WORK/wrk-$1-$2.txt" lat="$WORK/lat-$1-$2.txt" d=$DURATION
    [[ $2 == warmup ]] && d=$WARMUP
    wrk_strict "$d" "$out" -s "$WORK/${name%%-*}.lua" "http://127.0.0.1:$PORT${URL[$name]}"
    : >"$ACCESS_LOG"
    CONNECTIONS=1 wrk_strict "$d" "$lat" --latency -s "$WORK/${name%%-*}.lua" \
        "http://127.0.0.1:$PORT_LOGGED${URL[$name]}"
    [[ $2 == warmup ]] && return 0
    # The log is written as requests end: the last line is whole once wrk has returned.
    cat "$ACCESS_LOG" >>"$WORK/served-$name.jsonl"
    RPS[$name]+=" $(awk '/^Requests\/sec:/ { print $2 }' "$out")"
    P99[$name]+=" $(to_ms "$(awk '$1 == "99%" { print $2 }' "$lat")")"
    log "$name round $2: $(awk '/^Requests\/sec:/ { print $2 }' "$out") requests/s"
}
NAMES=(get-plain get-waf json-plain json-waf)
in_rounds measure "${NAMES[@]}"

echo
echo "tollgate 1 worker on CPU $PROXY_CPU; wrk and the nginx origin on CPU $LOAD_CPU; median of $ROUNDS rounds"
echo "throughput: wrk -t1 -c$CONNECTIONS -d$DURATION; latency: wrk -t1 -c1 -d$DURATION on a second tollgate, its access log's duration_ms"
echo "json body: $(<"$WORK/json-bytes") bytes"
printf '%-8s %12s %12s %7s   %s\n' request "plain req/s" "waf req/s" ratio \
    "in tollgate, us: plain p50 / p99, waf p50 / p99, added p50 / p99; wrk -c1 p99 plain / waf"
for kind in get json; do
    served=$(python3 - "$WORK/served-$kind-plain.jsonl" "$WORK/served-$kind-waf.jsonl" "$kind" <<'PY'
import json, sys
method = {"get": "GET", "json": "POST"}[sys.argv[3]]
def percentiles(path):
    # Only this request's lines: a line of the previous phase written late is left out.
    route = path.rsplit("-", 1)[1].split(".")[0]
    lines = (json.loads(line) for line in open(path) if line.strip())
    d = sorted(l["duration_ms"] * 1000 for l in lines if l["route"] == route and l["method"] == method)
    if not d:
        sys.exit(f"no access log lines in {path}")
    return d[len(d) // 2], d[min(len(d) - 1, int(len(d) * 0.99))]
(p50, p99), (w50, w99) = (percentiles(p) for p in sys.argv[1:3])
print(f"{p50:.0f} / {p99:.0f}, {w50:.0f} / {w99:.0f}, {w50 - p50:.0f} / {w99 - p99:.0f}")
PY
)
    awk -v k="$kind" -v rp="$(median <<<"${RPS[$kind-plain]}")" -v rw="$(median <<<"${RPS[$kind-waf]}")" \
        -v pp="$(median <<<"${P99[$kind-plain]}")" -v pw="$(median <<<"${P99[$kind-waf]}")" -v s="$served" \
        'BEGIN { printf "%-8s %12.0f %12.0f %7.3f   %s; %.0f / %.0f\n", k, rp, rw, rw / rp, s, pp * 1000, pw * 1000 }'
done
echo
echo "requests/s per round:"
for name in "${NAMES[@]}"; do printf '  %-12s %s\n' "$name" "${RPS[$name]}"; done
echo "p99 ms per round:"
for name in "${NAMES[@]}"; do printf '  %-12s %s\n' "$name" "${P99[$name]}"; done

[[ $COUNT == 1 ]] || exit 0
# Instructions per request, each request counted alone on a tollgate under callgrind.
PORT_COUNTED=$(free_port)
config counted "$PORT_COUNTED" >"$WORK/counted.toml"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/counted.cg" \
    "$BIN" run -c "$WORK/counted.toml" >"$WORK/counted.log" 2>&1 &
COUNTED_PID=$!
PIDS+=("$COUNTED_PID"); STOP_SIG[$COUNTED_PID]=INT
READY_TIMEOUT=120 wait_ready "tollgate under callgrind" "$COUNTED_PID" \
    "http://127.0.0.1:$PORT_COUNTED/" "$WORK/counted.log"
declare -A IPR=()
dumps=0
for name in "${NAMES[@]}"; do
    url="http://127.0.0.1:$PORT_COUNTED${URL[$name]}"
    CONNECTIONS=8 wrk_strict "$WARMUP" "$WORK/counted-$name.warmup" -s "$WORK/${name%%-*}.lua" "$url"
    callgrind_control -z "$COUNTED_PID" >/dev/null
    callgrind_control -i on "$COUNTED_PID" >/dev/null
    CONNECTIONS=8 wrk_strict "$COUNT_DURATION" "$WORK/counted-$name.wrk" -s "$WORK/${name%%-*}.lua" "$url"
    callgrind_control -i off "$COUNTED_PID" >/dev/null
    callgrind_control --dump="$name" "$COUNTED_PID" >/dev/null
    dumps=$((dumps + 1))
    dump="$WORK/counted.cg.$dumps"  # callgrind numbers its dumps from 1
    total=$(awk '/^totals:/ { print $2; exit }' "$dump")
    requests=$(awk '/requests in/ { print $1 }' "$WORK/counted-$name.wrk")
    [[ -n $total && -n $requests && $requests -gt 0 ]] || die "no count for $name (see $dump)"
    IPR[$name]=$(awk -v t="$total" -v r="$requests" 'BEGIN { printf "%.0f", t / r }')
    log "$name: $total instructions, $requests requests"
done
echo
echo "instructions per request (callgrind, 1 worker, wrk -c8 -d$COUNT_DURATION after $WARMUP)"
printf '%-8s %12s %12s %12s %14s\n' request plain waf "waf adds" "plain / waf"
for kind in get json; do
    awk -v k="$kind" -v p="${IPR[$kind-plain]}" -v w="${IPR[$kind-waf]}" \
        'BEGIN { printf "%-8s %12.0f %12.0f %12.0f %14.3f\n", k, p, w, w - p, p / w }'
done
