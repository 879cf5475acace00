#!/usr/bin/env bash
# load-tests/run.sh: compare tollgate with two reference proxies under the same wrk load:
# nginx, and Pingora's plain proxy (examples/plain_proxy.rs: Pingora with nothing of
# tollgate in it, so tollgate/pingora is the cost of tollgate's own work).
#
# Topology (everything on 127.0.0.1, free ports picked at start-up):
#   wrk ──> tollgate (1 worker)        ──┐
#   wrk ──> pingora plain (1 worker)   ──┼──> nginx origin: `return 200 "hello\n"`
#   wrk ──> nginx proxy (1 worker)     ──┘
#
# Over HTTPS too: the same tollgate and the same nginx proxy each get a TLS listener with
# the same certificate (EC P-256, self-signed, made with the openssl CLI at start-up), TLS
# 1.2 and 1.3, HTTP/1.1 only (no h2 in ALPN: wrk speaks HTTP/1.1), loaded twice:
#   +https      keep-alive connections: one handshake per connection, then requests;
#   +https-new  `Connection: close` on every request: a new TCP connection and TLS
#               handshake per request. wrk keeps each connection's TLS session (SSL_clear
#               on the same SSL object) and the servers send TLS 1.3 tickets, so these are
#               resumed handshakes (PSK with X25519 key exchange, no certificate
#               signature), except the first one of each connection; checked at the end.
#   full handshakes  `openssl s_time -new`: one connection at a time, each a full TLS
#               handshake (no session reuse, an ECDSA signature each) and one GET /;
#               connections per second, tollgate vs nginx, STIME seconds per round.
# The script checks that handshakes match requests (tollgate: tollgate_tls_handshakes_total
# on its admin listener; nginx: connections accepted, stub_status on a separate port), and
# watches the ServerHellos on `lo` during a short extra run (server_hellos.py, root only)
# to report full vs resumed handshakes and the negotiated version, cipher and group.
#
# tollgate is also measured on two RS256-authenticated routes (same origin, same
# tollgate): with its verified-token cache (a client reusing its token, the common
# case) and with `token_cache = 0` (every request pays the signature check).
#
# And on two rate-limited routes (same tollgate), with a per-client-IP limit that never
# triggers (10^9 per second): kept in tollgate's memory (`store = "local"`), and kept in
# Redis (`store = "redis"`: one Lua script call per request to a redis-server this script
# starts on loopback, on the same cores). After each Redis run the script checks that the
# buckets really are in Redis (`redis-cli --scan --pattern 'tollgate:rl:*'`) and, at the
# end, that Redis ran one script call per request.
#
# And on the edge protections (same tollgate): a route with CORS (an exact and a regex
# origin; wrk sends an allowed Origin), the security headers and a deprecation, against
# the plain route (which has `security_headers = false`, like Pingora's plain proxy adds
# no headers), and against a route that sets the very same response headers statically
# (`response_headers`: what the headers' bytes cost, apart from the policies' work);
# and a route validating a 1 KiB JSON body against a JSON Schema, against
# the same route without `validate`, both loaded with the same POST (wrk -s post.lua).
#
# The full pipeline runs in a second tollgate (`tollgate-full`: the access log is written to
# a file, a server-wide setting): a route with cached RS256 authentication, a local rate
# limit that never triggers, an IP allow list and a server-wide deny list, a jail, CORS, a
# deprecation, the security headers and a body limit; measured against plain Pingora.
# The RS256 key pair and token (make_jwt), the sections both tollgates share (shared_toml)
# and tollgate-full's config (full_config) come from lib.sh, which compare.sh uses too.
#
# Tracing (OpenTelemetry, OTLP over HTTP) runs in two more tollgates, each the plain route
# of the `tollgate` row (one route `/`, `security_headers = false`) plus a `[tracing]` section
# exporting to the origin nginx (its `return 200` takes the exporter's POST /v1/traces and
# discards the body):
#   tollgate+tracing      sample_ratio = 1.0: every request's spans recorded, queued, exported;
#   tollgate+tracing-1%   sample_ratio = 0.01: the usual production setting.
# Both are measured against the plain `tollgate` row; the goal is a ratio of at least 0.90
# at 1.0 and 0.97 at 1 %. Each has an [admin] listener; after all runs the script checks on
# /metrics that exports succeeded (tollgate_tracing_exports_total{result="success"} > 0, else
# it fails) and prints tollgate_tracing_spans_dropped_total: spans dropped because the
# exporter's queue (4096 requests) was full, reported as they are.
# Pingora's plain proxy also gets an HTTPS listener (same certificate): `pingora+https`, the
# reference of tollgate's HTTPS keep-alive. RSS is read at rest (before any load) and after.
#
# Then, unless MAIN_ONLY=1, it runs the other figures' scripts with the binaries just built:
# idle.sh (memory per idle connection), routes.sh (routing at scale) and scaling.sh (1 and 2
# workers), each printing its own table.
#
# Steps: install missing tools (apt-get), `cargo build --release`, make the certificate, start
# the origin, Redis, tollgate and the reference nginx proxy from a `mktemp -d` work dir, warm
# each proxy up, then load them one after the other (never together), read each proxy's RSS,
# print one table.
# Every process it starts is stopped on exit, also on failure or Ctrl-C.
#
# The proxies are loaded in ROUNDS interleaved rounds (tollgate, pingora, nginx, then again);
# each figure is the median over the rounds, so a noisy neighbour on a shared VM skews one
# round, not the result.
#
# Knobs (env): DURATION=10s CONNECTIONS=32 THREADS=1 WARMUP=2s ROUNDS=3 STIME=5 KEEP_WORK=0 BUILD_TIMEOUT=1800
#              MAIN_ONLY=0 (1: not the other scripts)
# Usage: bash load-tests/run.sh        (from anywhere; see load-tests/README.md)

set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-3}
STIME=${STIME:-5}
MAIN_ONLY=${MAIN_ONLY:-0}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$REPO/target/release/tollgate"
PLAIN="$REPO/target/release/examples/plain_proxy"

# shellcheck source=lib.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"

# --- argument checks ------------------------------------------------------------------------

duration_secs "$DURATION" >/dev/null && duration_secs "$WARMUP" >/dev/null
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a positive integer"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive integer"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
((THREADS <= CONNECTIONS)) || die "THREADS ($THREADS) must not exceed CONNECTIONS ($CONNECTIONS)"

# --- 1. dependencies ------------------------------------------------------------------------

install_tools wrk:wrk redis-server:redis-server
REDIS_CLI=$(command -v redis-cli || true)   # optional: only for the Redis key check

# --- 2. build -------------------------------------------------------------------------------

build_release --bin tollgate --example plain_proxy
[[ -x $BIN && -x $PLAIN ]] || die "$BIN or $PLAIN not found after the build"

# --- process bookkeeping and cleanup (lib.sh) ------------------------------------------

init_work tollgate-load

# --- 3. origin ------------------------------------------------------------------------------

pick_port PORT_ORIGIN
pick_port PORT_TG
pick_port PORT_NGX
pick_port PORT_PLAIN
pick_port PORT_PLAIN_TLS
pick_port PORT_FULL
pick_port PORT_REDIS
pick_port PORT_TG_TLS
pick_port PORT_TG_ADMIN
pick_port PORT_NGX_TLS
pick_port PORT_NGX_STATUS
log "work dir $WORK; ports: origin $PORT_ORIGIN, tollgate $PORT_TG (https $PORT_TG_TLS, admin $PORT_TG_ADMIN)," \
    "pingora $PORT_PLAIN, nginx $PORT_NGX (https $PORT_NGX_TLS, status $PORT_NGX_STATUS), redis $PORT_REDIS"
make_cert "$WORK"   # $WORK/tls.crt, $WORK/tls.key: both HTTPS listeners
CACERT=(--cacert "$WORK/tls.crt")

start_origin "$PORT_ORIGIN"

# --- 3b. redis (store of the `tollgate+limit-redis` route's buckets) ------------------------

redis_ping() { # answers +PONG within a second (python3: works without redis-cli)
    python3 - "$PORT_REDIS" <<'PY' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"PING\r\n")
sys.exit(0 if s.recv(64).startswith(b"+PONG") else 1)
PY
}
mkdir -p "$WORK/redis"
redis-server --bind 127.0.0.1 --port "$PORT_REDIS" --save "" --appendonly no --daemonize no \
    --dir "$WORK/redis" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID"); STOP_SIG[$REDIS_PID]=TERM   # redis: TERM = shutdown (nothing to save)
deadline=$((SECONDS + READY_TIMEOUT))
until redis_ping; do
    alive "$REDIS_PID" || { tail -n 20 "$WORK/redis.log" >&2 || true; die "redis-server exited during start-up (log: $WORK/redis.log)"; }
    ((SECONDS < deadline)) || { tail -n 20 "$WORK/redis.log" >&2 || true; die "redis-server not answering PING after ${READY_TIMEOUT}s"; }
    sleep 0.1
done
log "redis ready at 127.0.0.1:$PORT_REDIS (pid $REDIS_PID)"

# --- 4. tollgate ----------------------------------------------------------------------------

# An RS256 key pair and a token valid for an hour (JWT, AUTH_HEADER), made with the
# openssl CLI; both tollgates below use it (shared_toml, full_config in lib.sh).
make_jwt "$WORK"

cat >"$WORK/tollgate.toml" <<TOML
[server]
workers = 1
pid_file = "$WORK/tollgate.pid"
upgrade_socket = "$WORK/upgrade.sock"
access_log = "off"

[admin]
listen = "127.0.0.1:$PORT_TG_ADMIN"

[listeners.bench]
addr = "127.0.0.1:$PORT_TG"

[listeners.secure]
addr = "127.0.0.1:$PORT_TG_TLS"
tls.certificates = [{ cert = "$WORK/tls.crt", key = "$WORK/tls.key" }]
tls.min_version = "1.2"
tls.http2 = false

$(shared_toml)

[auth.rs256-nocache]
kind = "jwt"
algorithms = ["RS256"]
public_key_file = "$WORK/jwt.pub.pem"
token_cache = 0

[[routes]]
name = "bench"
path_prefix = "/"
upstream = "origin"
security_headers = false

[[routes]]
name = "bench-jwt"
path_prefix = "/jwt"
upstream = "origin"
auth = ["rs256"]

[[routes]]
name = "bench-jwt-nocache"
path_prefix = "/jwt-nocache"
upstream = "origin"
auth = ["rs256-nocache"]
TOML
# The same never-triggering limit kept in Redis (limited-local uses the shared one).
cat >>"$WORK/tollgate.toml" <<TOML

[redis]
url = "redis://127.0.0.1:$PORT_REDIS"
timeout = "200ms"

[limits.never-redis]
key = "client_ip"
rate = 1000000000
per = "1s"
store = "redis"

[[routes]]
name = "limited-local"
path_prefix = "/limited-local"
upstream = "origin"
limits = ["never-local"]

[[routes]]
name = "limited-redis"
path_prefix = "/limited-redis"
upstream = "origin"
limits = ["never-redis"]
TOML
# Edge protections: CORS + security headers + deprecation; and JSON Schema validation of a
# 1 KiB body, beside the same route without it.
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["customer", "items"],
    "properties": {
        "customer": {"type": "string", "minLength": 1},
        "items": {"type": "array", "maxItems": 100, "items": {
            "type": "object", "required": ["sku", "qty"],
            "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"},
                           "qty": {"type": "integer", "minimum": 1},
                           "note": {"type": "string", "maxLength": 200}}}}},
}
body = {"customer": "bench", "items": []}
while len(json.dumps(body)) < 1000:
    body["items"].append({"sku": f"ABC-{len(body['items'])}", "qty": 1, "note": "x" * 40})
text = json.dumps(body)
json.dump(schema, open(f"{work}/order.schema.json", "w"))
open(f"{work}/post.lua", "w").write(
    'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
    f"wrk.body = {json.dumps(text)}\n")
print(len(text), file=open(f"{work}/body.len", "w"))
PY
BODY_BYTES=$(<"$WORK/body.len")
cat >>"$WORK/tollgate.toml" <<TOML

[[routes]]
name = "protected"
path_prefix = "/protected"
upstream = "origin"
cors = { origins = ["https://app.example.com", "~https://[a-z0-9-]+\\\\.example\\\\.net"], methods = ["GET", "POST"], headers = ["authorization", "content-type"], expose = ["x-request-id"], credentials = true, max_age = "10m" }
deprecation = { since = "2026-06-01T00:00:00Z", sunset = "2099-01-01T00:00:00Z", link = "https://developer.example.com/migrate" }

[[routes]]
name = "static-headers"
path_prefix = "/static-headers"
upstream = "origin"
security_headers = false
response_headers = { set = { "access-control-allow-origin" = "https://app.example.com", "access-control-allow-credentials" = "true", "access-control-expose-headers" = "x-request-id", "vary" = "Origin", "deprecation" = "@1780272000", "sunset" = "Thu, 01 Jan 2099 00:00:00 GMT", "link" = "<https://developer.example.com/migrate>; rel=\\"deprecation\\"", "x-content-type-options" = "nosniff", "referrer-policy" = "no-referrer", "x-frame-options" = "DENY" } }

[[routes]]
name = "validated"
path_prefix = "/validated"
upstream = "origin"
max_body = "64KiB"
validate = { body_schema = "$WORK/order.schema.json", content_types = ["application/json"] }

[[routes]]
name = "unvalidated"
path_prefix = "/unvalidated"
upstream = "origin"
max_body = "64KiB"

# The plain route and the unvalidated one, without a request buffer: bodies stream.
[[routes]]
name = "streamed"
path_prefix = "/streamed"
upstream = "origin"
security_headers = false
request_buffer = "0"

[[routes]]
name = "unvalidated-streamed"
path_prefix = "/unvalidated-streamed"
upstream = "origin"
max_body = "64KiB"
request_buffer = "0"
TOML
"$BIN" check -c "$WORK/tollgate.toml" >&2 || die "tollgate check failed for $WORK/tollgate.toml"
"$BIN" run -c "$WORK/tollgate.toml" >"$WORK/tollgate.log" 2>&1 &
TG_PID=$!
PIDS+=("$TG_PID"); STOP_SIG[$TG_PID]=INT    # Pingora: INT = fast shutdown
wait_ready tollgate "$TG_PID" "http://127.0.0.1:$PORT_TG/" "$WORK/tollgate.log"
for path in jwt jwt-nocache; do
    wait_ready "tollgate /$path" "$TG_PID" "http://127.0.0.1:$PORT_TG/$path" "$WORK/tollgate.log" -H "$AUTH_HEADER"
done
for path in limited-local limited-redis; do
    wait_ready "tollgate /$path" "$TG_PID" "http://127.0.0.1:$PORT_TG/$path" "$WORK/tollgate.log"
done
wait_ready "tollgate /protected" "$TG_PID" "http://127.0.0.1:$PORT_TG/protected" "$WORK/tollgate.log" -H "Origin: https://app.example.com"
wait_ready "tollgate /streamed" "$TG_PID" "http://127.0.0.1:$PORT_TG/streamed" "$WORK/tollgate.log"
for path in validated unvalidated unvalidated-streamed; do
    wait_ready "tollgate /$path" "$TG_PID" "http://127.0.0.1:$PORT_TG/$path" "$WORK/tollgate.log" \
        -X POST -H "Content-Type: application/json" --data-binary '{"customer":"c","items":[]}'
done
# The protections answer as they should before they are measured: CORS and deprecation
# headers on the protected route, and a body the schema refuses is refused.
headers=$(curl -fsS -o /dev/null -D - -H "Origin: https://app.example.com" "http://127.0.0.1:$PORT_TG/protected")
for h in access-control-allow-origin deprecation x-frame-options; do
    grep -qi "^$h:" <<<"$headers" || die "/protected answered without $h"
done
# ... and the static control sends the same header bytes.
static=$(curl -fsS -o /dev/null -D - "http://127.0.0.1:$PORT_TG/static-headers")
[[ $(wc -c <<<"$static") -eq $(wc -c <<<"$headers") ]] \
    || die "/static-headers and /protected answer with headers of different sizes"
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H "Content-Type: application/json" \
    --data-binary '{"customer":"","items":[]}' "http://127.0.0.1:$PORT_TG/validated")
[[ $code == 400 ]] || die "/validated answered $code to a body its schema refuses"
wait_ready "tollgate https" "$TG_PID" "https://127.0.0.1:$PORT_TG_TLS/" "$WORK/tollgate.log" "${CACERT[@]}"

# --- 4b. tollgate-full: the whole pipeline, the access log written to a file ------------------

full_config full "$PORT_FULL" >"$WORK/full.toml"
start_tollgate full "$BIN" "$WORK/full.toml" "$PORT_FULL" -H "$AUTH_HEADER"
FULL_PID=$STARTED_PID
check_full full "$PORT_FULL"

# --- 4c. tollgate+tracing: the plain route plus [tracing], all requests or 1 % sampled ------

# The collector is the origin: its `return 200` answers the exporter's POST /v1/traces and
# discards the body (the exporter only looks at the status).
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H "Content-Type: application/x-protobuf" \
    --data-binary x "http://127.0.0.1:$PORT_ORIGIN/v1/traces")
[[ $code == 200 ]] || die "the origin answered $code to POST /v1/traces"
tracing_config() { # tracing_config NAME PORT ADMIN_PORT SAMPLE_RATIO
    cat <<TOML
$(tollgate_server "$1")

[listeners.main]
addr = "127.0.0.1:$2"

[upstreams.origin]
targets = ["127.0.0.1:$PORT_ORIGIN"]

[[routes]]
name = "bench"
path_prefix = "/"
upstream = "origin"
security_headers = false

[admin]
listen = "127.0.0.1:$3"

[tracing]
endpoint = "http://127.0.0.1:$PORT_ORIGIN/v1/traces"
service_name = "tollgate"
sample_ratio = $4
TOML
}
declare -A TRACE_PORT=() TRACE_ADMIN=() TRACE_PID=() TRACE_RATIO=([tollgate+tracing]=1.0 [tollgate+tracing-1%]=0.01)
for n in tollgate+tracing tollgate+tracing-1%; do
    stem=tracing; [[ $n == *-1% ]] && stem=tracing-1pct
    pick_port "TRACE_PORT[$n]"
    pick_port "TRACE_ADMIN[$n]"
    tracing_config "$stem" "${TRACE_PORT[$n]}" "${TRACE_ADMIN[$n]}" "${TRACE_RATIO[$n]}" >"$WORK/$stem.toml"
    start_tollgate "$stem" "$BIN" "$WORK/$stem.toml" "${TRACE_PORT[$n]}"
    TRACE_PID[$n]=$STARTED_PID
    log "$n: port ${TRACE_PORT[$n]}, admin ${TRACE_ADMIN[$n]}, sample_ratio ${TRACE_RATIO[$n]}, spans to the origin"
done

# --- 5a. reference: Pingora's plain proxy ----------------------------------------------------

"$PLAIN" "127.0.0.1:$PORT_PLAIN" "127.0.0.1:$PORT_ORIGIN" 1 \
    "127.0.0.1:$PORT_PLAIN_TLS" "$WORK/tls.crt" "$WORK/tls.key" >"$WORK/plain.log" 2>&1 &
PLAIN_PID=$!
PIDS+=("$PLAIN_PID"); STOP_SIG[$PLAIN_PID]=INT
wait_ready pingora "$PLAIN_PID" "http://127.0.0.1:$PORT_PLAIN/" "$WORK/plain.log"
wait_ready "pingora https" "$PLAIN_PID" "https://127.0.0.1:$PORT_PLAIN_TLS/" "$WORK/plain.log" "${CACERT[@]}"

# --- 5b. reference nginx proxy ---------------------------------------------------------------

start_nginx proxy "$(nginx_upstream_origin "$PORT_ORIGIN")
    server {
        listen 127.0.0.1:$PORT_NGX;
        $NGINX_PROXY_LOCATION
    }
    server {
        listen 127.0.0.1:$PORT_NGX_TLS ssl;
        ssl_certificate $WORK/tls.crt;
        ssl_certificate_key $WORK/tls.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers $MOZ_INTERMEDIATE_CIPHERS;
        $NGINX_PROXY_LOCATION
    }
    server {
        listen 127.0.0.1:$PORT_NGX_STATUS;
        location / { stub_status; }
    }" >"$WORK/proxy.pid"
NGX_PID=$(<"$WORK/proxy.pid")
wait_ready nginx "$NGX_PID" "http://127.0.0.1:$PORT_NGX/" "$WORK/proxy/logs/error.log"
wait_ready "nginx https" "$NGX_PID" "https://127.0.0.1:$PORT_NGX_TLS/" "$WORK/proxy/logs/error.log" "${CACERT[@]}"

# --- 7./8. load, then RSS -------------------------------------------------------------------

rss_kib() { # VmRSS of the given pids, summed, in KiB
    local pid sum=0 v
    for pid in "$@"; do
        v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

run_wrk() { # run_wrk DURATION URL OUTFILE [WRK ARGS...]
    local bound=$(( $(duration_secs "$1") + 30 )) d=$1 url=$2 out=$3
    shift 3
    timeout "$bound" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$d" --latency "$@" "$url" >"$out" 2>&1 \
        || { cat "$out" >&2; die "wrk failed or exceeded ${bound}s against $url"; }
}

declare -A RPS P50 P99 RSS NOTES WRK_ARGS=() WRK_SCRIPT=()
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

bench() { # bench NAME ROUND URL PIDS...: one measured run, figures appended to the lists
    local name=$1 round=$2 url=$3; shift 3
    local out="$WORK/wrk-$name-$round.txt" line p50 p99 rps hs0 hs1 tls=${TLS_SIDE[$name]:-}
    local -a extra=()
    [[ -n ${WRK_ARGS[$name]:-} ]] && extra=(-H "${WRK_ARGS[$name]}")
    [[ -n ${WRK_SCRIPT[$name]:-} ]] && extra+=(-s "${WRK_SCRIPT[$name]}")
    if ((round == 1)); then
        log "$name: warm-up $WARMUP"
        run_wrk "$WARMUP" "$url" "$WORK/wrk-$name-warmup.txt" "${extra[@]}"
    fi
    log "$name (round $round/$ROUNDS): wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $url"
    if [[ -n $tls ]]; then hs0=$(handshakes_so_far "$tls") || die "cannot read $tls's handshake count"; fi
    run_wrk "$DURATION" "$url" "$out" "${extra[@]}"
    if [[ -n $tls ]]; then
        hs1=$(handshakes_so_far "$tls") || die "cannot read $tls's handshake count"
        [[ $tls != nginx ]] || hs1=$((hs1 - 1))   # the status request's own connection
        HANDSHAKES[$name]=$((${HANDSHAKES[$name]:-0} + hs1 - hs0))
        TLS_REQUESTS[$name]=$((${TLS_REQUESTS[$name]:-0} + $(awk '/ requests in / { print $1; exit }' "$out")))
    fi
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    if [[ -z $rps || $p50 == NaN || $p99 == NaN ]]; then
        cat "$out" >&2; die "could not parse wrk output for $name ($out)"
    fi
    RPS[$name]+=" $rps"; P50[$name]+=" $p50"; P99[$name]+=" $p99"
    RSS[$name]=$(awk -v k="$(rss_kib "$@")" 'BEGIN { printf "%.1f", k / 1024 }')
    while IFS= read -r line; do
        NOTES[$name]+="  $name round $round: ${line#"${line%%[![:space:]]*}"}"$'\n'
    done < <(grep -E 'Non-2xx or 3xx responses|Socket errors' "$out" || true)
}

# The Redis limit must really go through Redis (with the default `on_store_error = "allow"`
# a Redis that cannot be reached would go unnoticed: a local bucket takes over). Its keys
# expire about 1 s after their last request, so they are listed right after each run.
REDIS_KEYS=()    # keys listed after each tollgate+limit-redis run
redis_keys_after_run() {
    local n
    [[ -n $REDIS_CLI ]] || return 0
    n=$(timeout 10 "$REDIS_CLI" -p "$PORT_REDIS" --scan --pattern 'tollgate:rl:*' | wc -l) \
        || die "redis-cli --scan failed on port $PORT_REDIS"
    REDIS_KEYS+=("$n")
    log "redis: $n key(s) matching tollgate:rl:* right after the run"
}
redis_script_calls() { # EVAL + EVALSHA calls since the last CONFIG RESETSTAT
    timeout 10 "$REDIS_CLI" -p "$PORT_REDIS" info commandstats \
        | awk -F'[:=,]' '$1 == "cmdstat_evalsha" || $1 == "cmdstat_eval" { n += $3 } END { print n + 0 }'
}
# Count script calls from here on: the benchmark's only, not the readiness checks'.
if [[ -n $REDIS_CLI ]]; then
    timeout 10 "$REDIS_CLI" -p "$PORT_REDIS" config resetstat >/dev/null || die "redis-cli config resetstat failed"
fi

# Handshakes made so far on a proxy's TLS listener: tollgate counts them itself; for nginx,
# the connections it accepted (stub_status), each one a handshake during an HTTPS run since
# runs never overlap (bench takes off the status request's own connection after the run).
declare -A TLS_SIDE=() HANDSHAKES=() TLS_REQUESTS=() HELLOS=()
handshakes_so_far() { # handshakes_so_far tollgate|nginx
    local page
    case $1 in
        tollgate)
            page=$(curl -fsS --max-time 5 "http://127.0.0.1:$PORT_TG_ADMIN/metrics") || return 1
            awk '/^tollgate_tls_handshakes_total\{/ && /listener="secure"/ { n += $NF } END { print n + 0 }' <<<"$page" ;;
        nginx)
            page=$(curl -fsS --max-time 5 "http://127.0.0.1:$PORT_NGX_STATUS/") || return 1
            awk 'NR == 3 { print $1 }' <<<"$page" ;;
    esac
}

# tls_hellos NAME PORT: the ServerHellos PORT sends on lo (server_hellos.py) during a short
# extra `Connection: close` run, not a measured one: full vs resumed handshakes, version,
# cipher, key exchange group. Needs root (a packet socket); skipped otherwise.
tls_hellos() {
    local name=$1 port=$2 pid
    if [[ $(id -u) -ne 0 ]]; then HELLOS[$name]="skipped (needs root)"; return 0; fi
    python3 "$HERE/server_hellos.py" "$port" 4 >"$WORK/hellos-$name.txt" 2>&1 &
    pid=$!
    PIDS+=("$pid"); STOP_SIG[$pid]=TERM
    sleep 0.5
    run_wrk 2s "https://127.0.0.1:$port/" "$WORK/wrk-$name-hellos.txt" -H "Connection: close"
    wait "$pid" || { cat "$WORK/hellos-$name.txt" >&2; die "server_hellos.py failed"; }
    forget_pid "$pid"
    HELLOS[$name]="$(<"$WORK/hellos-$name.txt") ($(awk '/ requests in / { print $1; exit }' "$WORK/wrk-$name-hellos.txt") requests)"
}

# RSS at rest: every proxy started and answered its readiness checks, no load yet.
declare -A RSS_IDLE=()
RSS_IDLE[tollgate]=$(rss_kib "$TG_PID")
RSS_IDLE[tollgate-full]=$(rss_kib "$FULL_PID")
for n in tollgate+tracing tollgate+tracing-1%; do RSS_IDLE[$n]=$(rss_kib "${TRACE_PID[$n]}"); done
RSS_IDLE[pingora]=$(rss_kib "$PLAIN_PID")
# shellcheck disable=SC2046 # one pid per word
RSS_IDLE[nginx]=$(rss_kib "$NGX_PID" $(children_of "$NGX_PID"))

WRK_ARGS[tollgate+jwt]=$AUTH_HEADER
WRK_ARGS[tollgate-full]=$AUTH_HEADER
WRK_ARGS[tollgate+jwt-nocache]=$AUTH_HEADER
WRK_ARGS[tollgate+protected]="Origin: https://app.example.com"
WRK_ARGS[tollgate+static-headers]="Origin: https://app.example.com"
WRK_SCRIPT[tollgate+validated]="$WORK/post.lua"
WRK_SCRIPT[tollgate+unvalidated]="$WORK/post.lua"
WRK_SCRIPT[tollgate+unvalidated-streamed]="$WORK/post.lua"
WRK_ARGS[tollgate+https-new]="Connection: close"
WRK_ARGS[nginx+https-new]="Connection: close"
TLS_SIDE=([tollgate+https]=tollgate [tollgate+https-new]=tollgate [nginx+https]=nginx [nginx+https-new]=nginx)
SCENARIOS=(tollgate tollgate+streamed tollgate-full tollgate+tracing tollgate+tracing-1% tollgate+jwt
    tollgate+jwt-nocache tollgate+limit-local tollgate+limit-redis tollgate+protected
    tollgate+static-headers tollgate+validated tollgate+unvalidated tollgate+unvalidated-streamed
    pingora nginx tollgate+https pingora+https nginx+https tollgate+https-new nginx+https-new)
for ((round = 1; round <= ROUNDS; round++)); do
    bench tollgate "$round" "http://127.0.0.1:$PORT_TG/" "$TG_PID"
    bench tollgate+streamed "$round" "http://127.0.0.1:$PORT_TG/streamed" "$TG_PID"
    bench tollgate-full "$round" "http://127.0.0.1:$PORT_FULL/" "$FULL_PID"
    for n in tollgate+tracing tollgate+tracing-1%; do
        bench "$n" "$round" "http://127.0.0.1:${TRACE_PORT[$n]}/" "${TRACE_PID[$n]}"
    done
    bench tollgate+jwt "$round" "http://127.0.0.1:$PORT_TG/jwt" "$TG_PID"
    bench tollgate+jwt-nocache "$round" "http://127.0.0.1:$PORT_TG/jwt-nocache" "$TG_PID"
    bench tollgate+limit-local "$round" "http://127.0.0.1:$PORT_TG/limited-local" "$TG_PID"
    bench tollgate+limit-redis "$round" "http://127.0.0.1:$PORT_TG/limited-redis" "$TG_PID"
    redis_keys_after_run
    bench tollgate+protected "$round" "http://127.0.0.1:$PORT_TG/protected" "$TG_PID"
    bench tollgate+static-headers "$round" "http://127.0.0.1:$PORT_TG/static-headers" "$TG_PID"
    bench tollgate+validated "$round" "http://127.0.0.1:$PORT_TG/validated" "$TG_PID"
    bench tollgate+unvalidated "$round" "http://127.0.0.1:$PORT_TG/unvalidated" "$TG_PID"
    bench tollgate+unvalidated-streamed "$round" "http://127.0.0.1:$PORT_TG/unvalidated-streamed" "$TG_PID"
    bench pingora "$round" "http://127.0.0.1:$PORT_PLAIN/" "$PLAIN_PID"
    # nginx: master plus its worker(s)
    bench nginx "$round" "http://127.0.0.1:$PORT_NGX/" "$NGX_PID" $(children_of "$NGX_PID")
    bench tollgate+https "$round" "https://127.0.0.1:$PORT_TG_TLS/" "$TG_PID"
    bench pingora+https "$round" "https://127.0.0.1:$PORT_PLAIN_TLS/" "$PLAIN_PID"
    bench nginx+https "$round" "https://127.0.0.1:$PORT_NGX_TLS/" "$NGX_PID" $(children_of "$NGX_PID")
    bench tollgate+https-new "$round" "https://127.0.0.1:$PORT_TG_TLS/" "$TG_PID"
    bench nginx+https-new "$round" "https://127.0.0.1:$PORT_NGX_TLS/" "$NGX_PID" $(children_of "$NGX_PID")
done
log "TLS handshakes on the wire: 2 s Connection: close runs (not measured)"
tls_hellos tollgate+https-new "$PORT_TG_TLS"
tls_hellos nginx+https-new "$PORT_NGX_TLS"

# full_handshakes NAME PORT: one `openssl s_time -new` run of STIME seconds; appends its
# connections per second (wall clock) to FULL[NAME].
declare -A FULL=()
full_handshakes() {
    local name=$1 port=$2 out="$WORK/stime-$1-$round.txt" t0 t1
    t0=$(date +%s.%N)
    local rc=0
    # Line-buffered: a run cut off by the time bound still shows how far it got.
    timeout $((STIME + 20)) stdbuf -oL openssl s_time -connect "127.0.0.1:$port" -new -www / \
        -time "$STIME" >"$out" 2>&1 || rc=$?
    ((rc == 0)) || { cat "$out" >&2; die "openssl s_time against $name failed (exit $rc; 124: over $((STIME + 20)) s)"; }
    t1=$(date +%s.%N)
    FULL[$name]+=" $(awk -v t0="$t0" -v t1="$t1" '/connections in [0-9.]+ real seconds/ { printf "%.1f", $1 / (t1 - t0) }' "$out")"
}
log "full TLS handshakes: openssl s_time -new, ${STIME}s each, $ROUNDS interleaved rounds"
for ((round = 1; round <= ROUNDS; round++)); do
    full_handshakes tollgate "$PORT_TG_TLS"
    full_handshakes nginx "$PORT_NGX_TLS"
done
for n in "${SCENARIOS[@]}"; do
    log "$n requests/s per round:${RPS[$n]}"
    RPS[$n]=$(median <<<"${RPS[$n]}"); P50[$n]=$(median <<<"${P50[$n]}"); P99[$n]=$(median <<<"${P99[$n]}")
done

# --- 9. table -------------------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (warm-up $WARMUP), median of $ROUNDS interleaved rounds; 1 worker per proxy; origin: nginx"
echo "tollgate+validated, +unvalidated and +unvalidated-streamed: POST of a $BODY_BYTES-byte JSON body"
echo "tollgate+streamed and +unvalidated-streamed: the same routes with request_buffer = \"0\""
printf '%-42s %12s %12s %12s %10s\n' "" "requests/s" "p50 ms" "p99 ms" "RSS MiB"
for n in "${SCENARIOS[@]}"; do
    printf '%-42s %12.0f %12.3f %12.3f %10.1f\n' "$n" "${RPS[$n]}" "${P50[$n]}" "${P99[$n]}" "${RSS[$n]}"
done
for pair in tollgate/nginx tollgate/pingora tollgate-full/pingora tollgate-full/nginx \
    tollgate/tollgate+streamed tollgate+unvalidated/tollgate+unvalidated-streamed \
    tollgate+tracing/tollgate tollgate+tracing-1%/tollgate \
    tollgate+jwt/tollgate tollgate+jwt-nocache/tollgate \
    tollgate+limit-local/tollgate tollgate+limit-redis/tollgate \
    tollgate+protected/tollgate tollgate+static-headers/tollgate tollgate+protected/tollgate+static-headers \
    tollgate+validated/tollgate+unvalidated \
    tollgate+https/pingora+https tollgate+https/nginx+https tollgate+https-new/nginx+https-new \
    tollgate+https/tollgate pingora+https/pingora nginx+https/nginx; do
    a=${pair%/*} b=${pair#*/}
    printf '%-42s %12s %12s %12s\n' "ratio $pair" \
        "$(ratio "${RPS[$a]}" "${RPS[$b]}")" \
        "$(ratio "${P50[$a]}" "${P50[$b]}")" \
        "$(ratio "${P99[$a]}" "${P99[$b]}")"
done
echo
echo "RSS MiB at rest (started, no load yet) and after the load (the last scenario each ran):"
for n in tollgate tollgate-full tollgate+tracing tollgate+tracing-1% pingora nginx; do
    printf '  %-20s %8s at rest %8s after load\n' "$n" "$(mib "${RSS_IDLE[$n]}")" "${RSS[$n]}"
done
printf '  ratio tollgate/pingora %s at rest, %s after load; tollgate-full/pingora %s, %s\n' \
    "$(ratio "${RSS_IDLE[tollgate]}" "${RSS_IDLE[pingora]}")" "$(ratio "${RSS[tollgate]}" "${RSS[pingora]}")" \
    "$(ratio "${RSS_IDLE[tollgate-full]}" "${RSS_IDLE[pingora]}")" "$(ratio "${RSS[tollgate-full]}" "${RSS[pingora]}")"
notes=""
for n in "${SCENARIOS[@]}"; do notes+=${NOTES[$n]:-}; done
if [[ -n $notes ]]; then
    echo
    echo "wrk reported:"
    printf '%s' "$notes"
fi

# --- 9a. tracing: spans were exported; how many the full queue dropped --------------------

# Read on each tracing tollgate's admin listener after all its runs. The exporter queues a
# finished request's spans (at most 4096 requests wait) and sends them once a second in
# batches of 512 requests (batch after batch while they come full); a request whose spans
# find the queue full has them dropped and counted. Dropped spans are reported as they
# are, not hidden: at 1.0 under this load the queue does fill between exports.
echo
echo "tracing check: exports to the collector (the origin) and spans dropped (export queue full), after all runs:"
tracing_ok=1
for n in tollgate+tracing tollgate+tracing-1%; do
    page=$(curl -fsS --max-time 5 "http://127.0.0.1:${TRACE_ADMIN[$n]}/metrics") \
        || die "cannot read $n's /metrics on 127.0.0.1:${TRACE_ADMIN[$n]}"
    ok=$(awk '/^tollgate_tracing_exports_total\{/ && /result="success"/ { n += $NF } END { print n + 0 }' <<<"$page")
    failed=$(awk '/^tollgate_tracing_exports_total\{/ && /result="failure"/ { n += $NF } END { print n + 0 }' <<<"$page")
    dropped=$(awk '$1 == "tollgate_tracing_spans_dropped_total" { print $2; f = 1 } END { if (!f) print "absent" }' <<<"$page")
    requests=0   # requests wrk completed on it, warm-up included
    for f in "$WORK/wrk-$n-"*.txt; do
        requests=$((requests + $(awk '/ requests in / { print $1; exit }' "$f")))
    done
    printf '  %-20s sample_ratio %-4s exports: %s succeeded, %s failed; spans dropped: %s; requests completed (warm-up included): %s\n' \
        "$n" "${TRACE_RATIO[$n]}" "$ok" "$failed" "$dropped" "$requests"
    ((ok > 0)) || tracing_ok=0
done
((tracing_ok)) || die "a tracing tollgate exported nothing (logs: $WORK/tracing.log, $WORK/tracing-1pct.log)"
echo "tracing check: ok (spans exported from both)"

# --- 9b. TLS: handshakes per request --------------------------------------------------------

# With `Connection: close` every request must have made its own handshake (a proxy keeping
# the connection open would measure keep-alive); with keep-alive, one per connection.
echo
echo "tls check: handshakes (nginx: connections accepted) over the measured runs, per request completed:"
tls_ok=1
for n in tollgate+https nginx+https tollgate+https-new nginx+https-new; do
    per=$(awk -v h="${HANDSHAKES[$n]}" -v r="${TLS_REQUESTS[$n]}" 'BEGIN { printf "%.4f", (r > 0) ? h / r : 0 }')
    printf '  %-20s %9d handshakes for %9d requests: %s per request\n' "$n" "${HANDSHAKES[$n]}" "${TLS_REQUESTS[$n]}" "$per"
    # At least one each (requests in flight when wrk stops add a handshake, not a request).
    [[ $n != *-new ]] || awk -v p="$per" 'BEGIN { exit !(p >= 0.99) }' || tls_ok=0
done
echo "tls check: ServerHellos seen on lo during a 2 s Connection: close run (ciphers, groups: IANA codes):"
for n in tollgate+https-new nginx+https-new; do printf '  %-20s %s\n' "$n" "${HELLOS[$n]}"; done
((tls_ok)) || die "Connection: close did not give one handshake per request on both proxies"
echo "tls check: ok"
echo
echo "full TLS handshakes (openssl s_time -new -www /, one connection at a time), connections/s per round:"
for n in tollgate nginx; do printf '  %-10s%s  median %s\n' "$n" "${FULL[$n]}" "$(median <<<"${FULL[$n]}")"; done
printf '  ratio tollgate/nginx %s\n' "$(ratio "$(median <<<"${FULL[tollgate]}")" "$(median <<<"${FULL[nginx]}")")"

# --- 10. the Redis limit went through Redis --------------------------------------------------

echo
redis_check() {
    if [[ -z $REDIS_CLI ]]; then
        echo "redis check: skipped (no redis-cli; it comes with the redis-tools package)"
        return 0
    fi
    local redis_ok=1 n f calls limited_requests
    for n in "${REDIS_KEYS[@]}"; do ((n >= 1)) || redis_ok=0; done
    limited_requests=0   # requests wrk completed on /limited-redis, warm-up included
    for f in "$WORK"/wrk-tollgate+limit-redis-*.txt; do
        limited_requests=$((limited_requests + $(awk '/ requests in / { print $1; exit }' "$f")))
    done
    calls=$(redis_script_calls)
    # Every completed request made one script call; a run's last requests may have reached
    # Redis without being counted by wrk (in flight when it stopped).
    ((calls >= limited_requests)) || redis_ok=0
    echo "redis check: keys matching tollgate:rl:* after each tollgate+limit-redis run: ${REDIS_KEYS[*]};" \
        "script calls (EVAL/EVALSHA) $calls for $limited_requests requests completed on /limited-redis"
    if ! ((redis_ok)); then
        grep -i redis "$WORK/tollgate.log" | tail -n 5 >&2 || true
        die "the tollgate+limit-redis runs did not all go through Redis (log: $WORK/tollgate.log)"
    fi
    echo "redis check: ok"
}
redis_check

# --- 11. the other figures: idle connections, routing at scale, 1 and 2 workers -------------

if [[ $MAIN_ONLY != 1 ]]; then
    # This run's processes are stopped first: each script starts its own, on idle cores.
    for pid in "${PIDS[@]}"; do stop_pid "$pid" "${STOP_SIG[$pid]}"; done
    PIDS=()
    for script in idle.sh routes.sh scaling.sh; do
        echo
        echo "=== $script"
        SKIP_BUILD=1 bash "$HERE/$script" || die "$script failed"
    done
fi
