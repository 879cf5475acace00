#!/usr/bin/env bash
# load-tests/peers.sh: tollgate beside the proxies its users would run instead, per core,
# in one run on the same origin.
#
#   plain proxies  nginx, HAProxy (Debian's haproxy), Pingora's plain proxy
#                  (examples/plain_proxy.rs) and tollgate's plain route: forward `/` to
#                  the origin over kept-alive connections, nothing else.
#   gateway job    HAProxy and tollgate doing the same API-gateway work on every request:
#                  an RS256 bearer token verified (signature, `exp`), a rate limit per
#                  token `sub` that never triggers (10^9 per second), CORS for an allowed
#                  Origin (wrk sends one), a JSON log line per request written to a file.
#                  HAProxy: `jwt_verify` on every request, a stick table tracking `sub`,
#                  `http-response set-header`, `log-format` to stdout. tollgate: `[auth]`
#                  jwt with its verified-token cache, and again with `token_cache = 0`
#                  (every signature checked, as HAProxy does), a `consumer` limit,
#                  route `cors`, the access log; its security headers are always on.
#
# Pinned: each proxy runs one worker (thread or process) on CPU 0 (taskset); wrk and the
# nginx origin run on CPU 1. So requests/s here is per core of proxy. wrk -t1 -c64 for
# DURATION, ROUNDS interleaved rounds after a warm-up, medians; every answer must be 2xx.
# RSS: VmRSS of the proxy's processes right after each measured round, median.
# Instructions per request for tollgate and Pingora: load-tests/instructions.sh.
#
# Knobs (env): DURATION=8s WARMUP=2s ROUNDS=3 CONNECTIONS=64 PROXY_CPU=0 LOAD_CPU=1
#              KEEP_WORK=0 BUILD_TIMEOUT=1800 SKIP_BUILD=0
# Usage: bash load-tests/peers.sh

set -euo pipefail

DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=1
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
READY_TIMEOUT=${READY_TIMEOUT:-30}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration_secs "$DURATION" >/dev/null && duration_secs "$WARMUP" >/dev/null
install_tools wrk:wrk haproxy:haproxy openssl:openssl taskset:util-linux
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
init_work tollgate-peers
build_release --bin tollgate --example plain_proxy
BIN="$REPO/target/release/tollgate"
PLAIN="$REPO/target/release/examples/plain_proxy"

# Every proxy runs with the allocator environment of tollgate's systemd unit; Pingora's
# plain proxy also with tollgate's purge delay (src/allocator.rs; like tollgate, it opts
# out of transparent huge pages itself), so the RSS column compares what each does.
# shellcheck disable=SC2046 # unit_env: VAR=value words
export $(unit_env)

# The origin and wrk share the load CPU; every proxy started below gets the proxy CPU.
PORT_ORIGIN=$(free_port)
start_origin "$PORT_ORIGIN"
taskset -a -p -c "$LOAD_CPU" "$(<"$WORK/origin.pid")" >/dev/null
for kid in $(children_of "$(<"$WORK/origin.pid")"); do taskset -p -c "$LOAD_CPU" "$kid" >/dev/null; done
make_jwt "$WORK"
ORIGIN_HEADER="Origin: https://app.example.com"

declare -A PORT=() PID=() HEADERS=()

# pin NAME: the proxy NAME's processes and threads on the proxy CPU.
pin() {
    local p
    for p in "${PID[$1]}" $(children_of "${PID[$1]}"); do
        taskset -a -p -c "$PROXY_CPU" "$p" >/dev/null
    done
}

# --- the plain proxies ------------------------------------------------------------------
PORT[nginx]=$(free_port)
start_nginx proxy "$(nginx_upstream_origin "$PORT_ORIGIN")
    server {
        listen 127.0.0.1:${PORT[nginx]};
        $NGINX_PROXY_LOCATION
    }" >"$WORK/nginx.pid"
PID[nginx]=$(<"$WORK/nginx.pid")
wait_ready nginx "${PID[nginx]}" "http://127.0.0.1:${PORT[nginx]}/" "$WORK/proxy/logs/error.log"

# haproxy_config PORT FRONTEND_LINES: one thread, kept-alive connections to the origin.
haproxy_config() {
    cat <<CFG
global
    nbthread 1
    maxconn 4096
    log stdout format raw local0
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    http-reuse always
frontend main
    bind 127.0.0.1:$1
$2
    default_backend origin
backend origin
    server origin 127.0.0.1:$PORT_ORIGIN
CFG
}

# start_haproxy NAME CONFIG_FILE: checked, then run in the foreground (stdout: its log).
start_haproxy() {
    "$HAPROXY" -c -q -f "$2" || die "haproxy config $2 is invalid"
    "$HAPROXY" -db -f "$2" >"$WORK/$1.out" 2>"$WORK/$1.log" &
    PID[$1]=$!
    PIDS+=("${PID[$1]}"); STOP_SIG[${PID[$1]}]=TERM
}

PORT[haproxy]=$(free_port)
haproxy_config "${PORT[haproxy]}" "" >"$WORK/haproxy.cfg"
start_haproxy haproxy "$WORK/haproxy.cfg"
wait_ready haproxy "${PID[haproxy]}" "http://127.0.0.1:${PORT[haproxy]}/" "$WORK/haproxy.log"

PORT[pingora]=$(free_port)
MIMALLOC_PURGE_DELAY=250 "$PLAIN" "127.0.0.1:${PORT[pingora]}" "127.0.0.1:$PORT_ORIGIN" 1 >"$WORK/pingora.log" 2>&1 &
PID[pingora]=$!
PIDS+=("${PID[pingora]}"); STOP_SIG[${PID[pingora]}]=INT
wait_ready pingora "${PID[pingora]}" "http://127.0.0.1:${PORT[pingora]}/" "$WORK/pingora.log"

PORT[tollgate]=$(free_port)
one_route_config tollgate "${PORT[tollgate]}" >"$WORK/tollgate.toml"
start_tollgate tollgate "$BIN" "$WORK/tollgate.toml" "${PORT[tollgate]}"
PID[tollgate]=$STARTED_PID

# --- the gateway job --------------------------------------------------------------------
PORT[haproxy-gateway]=$(free_port)
haproxy_config "${PORT[haproxy-gateway]}" "    log global
    log-format '{\"time\":\"%tr\",\"client\":\"%ci\",\"method\":\"%HM\",\"path\":\"%HPO\",\"status\":%ST,\"bytes\":%B,\"duration_ms\":%Ta,\"sub\":\"%[var(txn.sub)]\"}'
    http-request set-var(txn.bearer) http_auth_bearer
    http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
    http-request deny deny_status 401 unless { var(txn.alg) -m str RS256 }
    http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,\"$WORK/jwt.pub.pem\") -m int 1 }
    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
    http-request set-var(txn.now) date()
    http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }
    http-request set-var(txn.sub) var(txn.bearer),jwt_payload_query('\$.sub')
    http-request track-sc0 var(txn.sub) table per_sub
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 1000000000 }
    http-request set-var(txn.origin) req.hdr(origin)
    http-response set-header Access-Control-Allow-Origin %[var(txn.origin)] if { var(txn.origin) -m str https://app.example.com }
    http-response add-header Vary Origin" >"$WORK/haproxy-gateway.cfg"
cat >>"$WORK/haproxy-gateway.cfg" <<CFG
backend per_sub
    stick-table type string len 64 size 100k expire 1m store http_req_rate(1s)
CFG
start_haproxy haproxy-gateway "$WORK/haproxy-gateway.cfg"
wait_ready haproxy-gateway "${PID[haproxy-gateway]}" "http://127.0.0.1:${PORT[haproxy-gateway]}/" \
    "$WORK/haproxy-gateway.log" -H "$AUTH_HEADER"

# gateway_config NAME PORT TOKEN_CACHE: tollgate doing the same work (lib.sh shared_toml:
# the origin upstream and the RS256 key).
gateway_config() {
    cat <<TOML
$(tollgate_server "$1" logged)

[listeners.main]
addr = "127.0.0.1:$2"

$(shared_toml | sed "/^public_key_file/a token_cache = $3")

[limits.per-sub]
key = "consumer"
rate = 1000000000
per = "1s"

[[routes]]
name = "gateway"
upstream = "origin"
auth = ["rs256"]
limits = ["per-sub"]
cors = { origins = ["https://app.example.com"], methods = ["GET"], headers = ["authorization"] }
TOML
}
for side in tollgate-gateway:10000 tollgate-gateway-uncached:0; do
    name=${side%%:*}
    PORT[$name]=$(free_port)
    gateway_config "$name" "${PORT[$name]}" "${side##*:}" >"$WORK/$name.toml"
    start_tollgate "$name" "$BIN" "$WORK/$name.toml" "${PORT[$name]}" -H "$AUTH_HEADER"
    PID[$name]=$STARTED_PID
done

# Every gateway refuses a request without a token and a token with a bad signature,
# and allows the Origin.
for name in haproxy-gateway tollgate-gateway tollgate-gateway-uncached; do
    url="http://127.0.0.1:${PORT[$name]}/"
    code=$(curl -sS -o /dev/null -w '%{http_code}' "$url")
    [[ $code == 401 ]] || die "$name answered $code to a request without a token"
    code=$(curl -sS -o /dev/null -w '%{http_code}' -H "${AUTH_HEADER}x" "$url")
    [[ $code == 401 ]] || die "$name answered $code to a token with a bad signature"
    curl -sS -D - -o /dev/null -H "$AUTH_HEADER" -H "$ORIGIN_HEADER" "$url" \
        | grep -qi '^access-control-allow-origin: https://app.example.com' \
        || die "$name did not allow the Origin"
    HEADERS[$name]=1
done

NAMES=(nginx haproxy pingora tollgate haproxy-gateway tollgate-gateway tollgate-gateway-uncached)
for name in "${NAMES[@]}"; do pin "$name"; done

declare -A RPS=() P99=() RSS=()
measure() { # measure NAME ROUND|warmup
    local name=$1 out="$WORK/wrk-$1-$2.txt" d=$DURATION args=()
    [[ $2 == warmup ]] && d=$WARMUP
    [[ -n ${HEADERS[$name]:-} ]] && args=(-H "$AUTH_HEADER" -H "$ORIGIN_HEADER")
    wrk_strict "$d" "$out" --latency "${args[@]}" "http://127.0.0.1:${PORT[$name]}/"
    [[ $2 == warmup ]] && return 0
    RPS[$name]+=" $(awk '/^Requests\/sec:/ { print $2 }' "$out")"
    P99[$name]+=" $(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")"
    local kib=0 p
    for p in "${PID[$name]}" $(children_of "${PID[$name]}"); do kib=$((kib + $(rss_kib "$p"))); done
    RSS[$name]+=" $kib"
    log "$name round $2: $(awk '/^Requests\/sec:/ { print $2 }' "$out") requests/s, RSS $(mib "$kib") MiB"
}
# This shell, and so wrk, on the load CPU.
taskset -p -c "$LOAD_CPU" $$ >/dev/null
in_rounds measure "${NAMES[@]}"

[[ -s $WORK/haproxy-gateway.out ]] || die "haproxy-gateway wrote no log line"
[[ -s $WORK/tollgate-gateway-access.log ]] || die "tollgate-gateway wrote no access log line"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "per core: each proxy 1 worker on CPU $PROXY_CPU; wrk -t1 -c$CONNECTIONS -d$DURATION and the nginx origin on CPU $LOAD_CPU; median of $ROUNDS rounds"
printf '%-30s %12s %10s %12s %9s\n' "" "requests/s" "p99 ms" "x HAProxy" "RSS MiB"
row() { # row NAME REFERENCE
    local rps p99
    rps=$(median <<<"${RPS[$1]}")
    p99=$(median <<<"${P99[$1]}")
    printf '%-30s %12.0f %10.3f %12s %9s\n' "$1" "$rps" "$p99" "$(ratio "$rps" "$(median <<<"${RPS[$2]}")")" \
        "$(mib "$(median <<<"${RSS[$1]}")")"
}
echo "plain proxies"
for name in nginx haproxy pingora tollgate; do row "$name" haproxy; done
echo "gateway job (RS256, limit per sub, CORS, JSON log line)"
for name in haproxy-gateway tollgate-gateway tollgate-gateway-uncached; do row "$name" haproxy-gateway; done
echo
echo "requests/s per round:"
for name in "${NAMES[@]}"; do printf '  %-28s %s\n' "$name" "${RPS[$name]}"; done
