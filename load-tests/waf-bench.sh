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
# Latency: wrk -t1 -c1 (one request at a time, no queueing) for DURATION, the median over
# rounds of each p99; "added" is the WAF route's p99 minus the plain route's.
#
# Knobs (env): DURATION=8s WARMUP=2s ROUNDS=3 CONNECTIONS=32 PROXY_CPU=0 LOAD_CPU=1
#              KEEP_WORK=0 BUILD_TIMEOUT=1800 SKIP_BUILD=0
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
install_tools wrk:wrk taskset:util-linux
init_work tollgate-waf-bench
build_release --bin tollgate
BIN="$REPO/target/release/tollgate"
# shellcheck disable=SC2046 # unit_env: VAR=value words
export $(unit_env)

PORT_ORIGIN=$(free_port)
start_origin "$PORT_ORIGIN"
taskset -a -p -c "$LOAD_CPU" "$(<"$WORK/origin.pid")" >/dev/null
for kid in $(children_of "$(<"$WORK/origin.pid")"); do taskset -p -c "$LOAD_CPU" "$kid" >/dev/null; done

PORT=$(free_port)
cat >"$WORK/tollgate.toml" <<EOT
$(tollgate_server tollgate)

[listeners.main]
addr = "127.0.0.1:$PORT"

[upstreams.origin]
targets = ["127.0.0.1:$PORT_ORIGIN"]

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

[[routes]]
name = "ready"
path_prefix = "/"
upstream = "origin"
EOT
start_tollgate tollgate "$BIN" "$WORK/tollgate.toml" "$PORT"
for p in "$STARTED_PID" $(children_of "$STARTED_PID"); do taskset -a -p -c "$PROXY_CPU" "$p" >/dev/null; done

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
    [get-plain]="http://127.0.0.1:$PORT/plain/$QUERY" [get-waf]="http://127.0.0.1:$PORT/waf/$QUERY"
    [json-plain]="http://127.0.0.1:$PORT/plain/orders" [json-waf]="http://127.0.0.1:$PORT/waf/orders"
)
# The WAF passes both requests (a refusal would be a false positive, and a failed run).
for name in get-waf json-waf; do
    code=$(wrk -t1 -c1 -d1s -s "$WORK/${name%%-*}.lua" "${URL[$name]}" | grep -c 'Non-2xx' || true)
    [[ $code == 0 ]] || die "the WAF refused the clean $name request"
done

taskset -p -c "$LOAD_CPU" $$ >/dev/null
declare -A RPS=() P99=()
measure() { # measure NAME ROUND|warmup
    local name=$1 out="$WORK/wrk-$1-$2.txt" lat="$WORK/lat-$1-$2.txt" d=$DURATION
    [[ $2 == warmup ]] && d=$WARMUP
    wrk_strict "$d" "$out" -s "$WORK/${name%%-*}.lua" "${URL[$name]}"
    CONNECTIONS=1 wrk_strict "$d" "$lat" --latency -s "$WORK/${name%%-*}.lua" "${URL[$name]}"
    [[ $2 == warmup ]] && return 0
    RPS[$name]+=" $(awk '/^Requests\/sec:/ { print $2 }' "$out")"
    P99[$name]+=" $(to_ms "$(awk '$1 == "99%" { print $2 }' "$lat")")"
    log "$name round $2: $(awk '/^Requests\/sec:/ { print $2 }' "$out") requests/s"
}
NAMES=(get-plain get-waf json-plain json-waf)
in_rounds measure "${NAMES[@]}"

echo
echo "tollgate 1 worker on CPU $PROXY_CPU; wrk and the nginx origin on CPU $LOAD_CPU; median of $ROUNDS rounds"
echo "throughput: wrk -t1 -c$CONNECTIONS -d$DURATION; latency: wrk -t1 -c1 -d$DURATION (p99)"
echo "json body: $(<"$WORK/json-bytes") bytes"
printf '%-12s %14s %14s %8s %14s %14s %12s\n' request "plain req/s" "waf req/s" ratio "plain p99 us" "waf p99 us" "added us"
for kind in get json; do
    awk -v k="$kind" -v rp="$(median <<<"${RPS[$kind-plain]}")" -v rw="$(median <<<"${RPS[$kind-waf]}")" \
        -v pp="$(median <<<"${P99[$kind-plain]}")" -v pw="$(median <<<"${P99[$kind-waf]}")" \
        'BEGIN { printf "%-12s %14.0f %14.0f %8.3f %14.0f %14.0f %12.0f\n", k, rp, rw, rw / rp, pp * 1000, pw * 1000, (pw - pp) * 1000 }'
done
echo
echo "requests/s per round:"
for name in "${NAMES[@]}"; do printf '  %-12s %s\n' "$name" "${RPS[$name]}"; done
echo "p99 ms per round:"
for name in "${NAMES[@]}"; do printf '  %-12s %s\n' "$name" "${P99[$name]}"; done
