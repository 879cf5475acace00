#!/usr/bin/env bash
# load-tests/flood.sh: tollgate's memory under a flood of distinct clients.
#
# A local rate limit keeps one bucket per key. A client that rotates its address (here:
# its X-Forwarded-For, believed because the peer 127.0.0.1 is a trusted proxy) makes a
# new key with every request. This script sends REQUESTS such requests, each from another
# client IP, and reads tollgate's resident memory (VmRSS in /proc/PID/status):
#   baseline  after a short warm-up: about WARMUP_REQUESTS requests (also from distinct
#             addresses) over the flood's CONNECTIONS, so that the baseline already holds
#             what that concurrency costs with or without limits (client connections,
#             the upstream keep-alive pool): what grows after it is the buckets;
#   peak      sampled every 0.5 s during the flood;
#   flood     right after the flood;
#   sweep     polled every second for at most SWEEP_WAIT seconds: tollgate's background
#             sweep (every 10 s) drops the buckets that have refilled (10 per second,
#             burst 10: a bucket that gave one token is full again 100 ms later) and
#             shrinks the tables. Polling stops early once at least one sweep period has
#             passed (12 s) and RSS is back within 10 % of the growth (or 1 MiB) of the
#             baseline; the minimum RSS seen while polling is reported too;
#   after     WARMUP_REQUESTS requests more, then 2 s: memory the allocator (mimalloc)
#             holds for an idle worker thread may only be given back once that thread
#             allocates and frees again.
# CONTROL=1 runs the same without the limit on the route: what the flood costs anyway.
# ANOMALY=1 adds `[anomaly]` (its defaults: counts and baselines for at most 10,000
# client addresses) to whichever of the two runs. The console's stats count every
# request in both (their top lists keep 32 keys a bucket).
#
# Topology (127.0.0.1, free ports): wrk (Lua: one X-Forwarded-For per request) ──>
# tollgate (1 worker, access_log off, route `/` limited per client_ip) ──> nginx origin
# (`return 200 "hello\n"`).
#
# The flood is one or more wrk runs ("chunks"): the first lasts FIRST_CHUNK, the next ones
# as long as the measured rate says the remaining requests need (+5 %), until REQUESTS
# requests have completed. Every (chunk, wrk thread) pair takes its own /8 of addresses
# (10.0.0.0/8, 11.0.0.0/8, ...), counting up from .0.0.0, so no address repeats; the
# warm-up's threads use 172.0.0.0/8, 173.0.0.0/8, ...
#
# Knobs (env): REQUESTS=1000000 CONNECTIONS=32 THREADS=1 FIRST_CHUNK=20 WARMUP_REQUESTS=300
#              SWEEP_WAIT=40 CONTROL=0 FLOOD_TIMEOUT=900 KEEP_WORK=0 BUILD_TIMEOUT=1800
# Usage: bash load-tests/flood.sh        (from anywhere; see load-tests/README.md)

set -euo pipefail

REQUESTS=${REQUESTS:-1000000}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
FIRST_CHUNK=${FIRST_CHUNK:-20}         # seconds
WARMUP_REQUESTS=${WARMUP_REQUESTS:-300}
SWEEP_WAIT=${SWEEP_WAIT:-40}           # seconds
CONTROL=${CONTROL:-0}                  # 1: no limit on the route
ANOMALY=${ANOMALY:-0}                  # 1: [anomaly] on
FLOOD_TIMEOUT=${FLOOD_TIMEOUT:-900}    # seconds, whole flood
SWEEP_PERIOD=10                        # tollgate's background sweep (src/ratelimit/sweeper.rs)
MAX_BLOCKS=100                         # first octets 10..109: never 127/8 (trusted)

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$REPO/target/release/tollgate"

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- argument checks ------------------------------------------------------------------------

for v in REQUESTS CONNECTIONS THREADS FIRST_CHUNK WARMUP_REQUESTS SWEEP_WAIT FLOOD_TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
((THREADS <= CONNECTIONS)) || die "THREADS ($THREADS) must not exceed CONNECTIONS ($CONNECTIONS)"
[[ $CONTROL == 0 || $CONTROL == 1 ]] || die "CONTROL must be 0 or 1"
[[ $ANOMALY == 0 || $ANOMALY == 1 ]] || die "ANOMALY must be 0 or 1"
ANOMALY_TOML=""
((ANOMALY == 0)) || ANOMALY_TOML=$'[anomaly]\nmax_clients = 10000\n'

((THREADS <= 32)) || die "THREADS must not exceed 32"
((WARMUP_REQUESTS <= 1000000)) || die "WARMUP_REQUESTS must not exceed 1000000"

# --- 1. dependencies ------------------------------------------------------------------------

install_tools wrk:wrk

# --- 2. build -------------------------------------------------------------------------------

build_release --bin tollgate
[[ -x $BIN ]] || die "$BIN not found after the build"

# --- process bookkeeping and cleanup (lib.sh) ------------------------------------------

init_work tollgate-flood

# --- 3. origin ------------------------------------------------------------------------------

PORT_ORIGIN=$(free_port)
PORT_TG=$(free_port)
while [[ $PORT_TG == "$PORT_ORIGIN" ]]; do PORT_TG=$(free_port); done
log "work dir $WORK; ports: origin $PORT_ORIGIN, tollgate $PORT_TG"

start_origin "$PORT_ORIGIN"

# --- 4. tollgate ----------------------------------------------------------------------------

cat >"$WORK/tollgate.toml" <<TOML
[server]
workers = 1
pid_file = "$WORK/tollgate.pid"
upgrade_socket = "$WORK/upgrade.sock"
access_log = "off"
trusted_proxies = ["127.0.0.0/8"]

[listeners.flood]
addr = "127.0.0.1:$PORT_TG"

[upstreams.origin]
targets = ["127.0.0.1:$PORT_ORIGIN"]

[limits.per-client]
key = "client_ip"
rate = 10
per = "1s"
burst = 10
max_keys = 2000000

$ANOMALY_TOML
[[routes]]
name = "flood"
path_prefix = "/"
upstream = "origin"
TOML
if ((CONTROL == 0)); then
    echo 'limits = ["per-client"]' >>"$WORK/tollgate.toml"
    SETUP="limit client_ip 10/1s burst 10, max_keys 2000000"
else
    SETUP="CONTROL: no limit on the route"
fi
((ANOMALY == 0)) || SETUP="$SETUP; [anomaly] max_clients 10000"
"$BIN" check -c "$WORK/tollgate.toml" >&2 || die "tollgate check failed for $WORK/tollgate.toml"
"$BIN" run -c "$WORK/tollgate.toml" >"$WORK/tollgate.log" 2>&1 &
TG_PID=$!
PIDS+=("$TG_PID"); STOP_SIG[$TG_PID]=INT    # Pingora: INT = fast shutdown
URL="http://127.0.0.1:$PORT_TG/"
wait_ready tollgate "$TG_PID" "$URL" "$WORK/tollgate.log" -H "X-Forwarded-For: 192.168.0.1"

# --- 5. wrk scripts -------------------------------------------------------------------------

# flood.lua, ARGS = FIRST_OCTET: thread t sends from (FIRST_OCTET+t).0.0.0 upwards, one
# address per request; done() prints the request() calls made (all threads, most by one).
cat >"$WORK/flood.lua" <<'LUA'
local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   octet = tonumber(args[1]) + id
   counter = 0
   quota = tonumber(args[2] or "0")
   responses = 0
end

function request()
   local n = counter
   counter = counter + 1
   wrk.headers["X-Forwarded-For"] = string.format("%d.%d.%d.%d", octet,
      math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
   return wrk.format()
end

function done(summary, latency, requests)
   local calls, most = 0, 0
   for _, t in ipairs(threads) do
      local c = t:get("counter")
      calls = calls + c
      if c > most then most = c end
   end
   io.write(string.format("flood-calls %d %d\n", calls, most))
end
LUA
# warmup.lua, ARGS = FIRST_OCTET QUOTA: the same, each thread stopping after QUOTA
# responses (a response() hook makes wrk parse every response: not for the flood itself).
{
    cat "$WORK/flood.lua"
    cat <<'LUA'

function response(status, headers, body)
   responses = responses + 1
   if responses >= quota then wrk.thread:stop() end
end
LUA
} >"$WORK/warmup.lua"

# --- 6. warm-up, baseline -------------------------------------------------------------------

# warm NAME FIRST_OCTET: about WARMUP_REQUESTS requests over the flood's connections, each
# from another address; all must be 2xx. Sets WARM_DONE (requests completed).
warm() {
    local name=$1 octet=$2 quota=$(((WARMUP_REQUESTS + THREADS - 1) / THREADS)) out bad
    out="$WORK/wrk-$name.txt"
    log "$name: wrk -t$THREADS -c$CONNECTIONS, $quota requests per thread, each from another client IP"
    timeout 60 wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$WORK/warmup.lua" "$URL" -- "$octet" "$quota" \
        >"$out" 2>&1 || { cat "$out" >&2; die "$name: wrk failed"; }
    WARM_DONE=$(awk '/ requests in / { print $1; exit }' "$out")
    bad=$(awk -F': *' '/Non-2xx or 3xx responses/ { print $2 }' "$out")
    [[ -n $WARM_DONE ]] || { cat "$out" >&2; die "$name: could not parse wrk output ($out)"; }
    ((${bad:-0} == 0)) || { cat "$out" >&2; die "$name: $bad responses were not 2xx/3xx"; }
}
warm warm-up 172
WARM_BASE=$WARM_DONE
RSS_BASE=$(rss_kib "$TG_PID")
log "warm-up: $WARM_BASE requests; baseline RSS $(mib "$RSS_BASE") MiB"

# --- 7. flood -------------------------------------------------------------------------------

RSS_PEAK=$RSS_BASE
sent=0 calls=0 secs=0 non2xx=0 chunk=0 block=0 d=$FIRST_CHUNK
sock_notes=""
flood_deadline=$((SECONDS + FLOOD_TIMEOUT))
while ((sent < REQUESTS)); do
    ((SECONDS < flood_deadline)) || die "flood not done after ${FLOOD_TIMEOUT}s ($sent requests)"
    ((block + THREADS <= MAX_BLOCKS)) || die "out of address blocks after $chunk chunks"
    chunk=$((chunk + 1))
    out="$WORK/wrk-flood-$chunk.txt"
    log "flood chunk $chunk: wrk -t$THREADS -c$CONNECTIONS -d${d}s -s flood.lua $URL -- $((10 + block)) ($sent of $REQUESTS done)"
    timeout $((d + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${d}s" -s "$WORK/flood.lua" "$URL" -- $((10 + block)) \
        >"$out" 2>&1 &
    wrk_pid=$!
    PIDS+=("$wrk_pid"); STOP_SIG[$wrk_pid]=INT
    while alive "$wrk_pid"; do
        r=$(rss_kib "$TG_PID")
        if ((r > RSS_PEAK)); then RSS_PEAK=$r; fi
        sleep 0.5
    done
    rc=0; wait "$wrk_pid" || rc=$?
    forget_pid "$wrk_pid"
    ((rc == 0)) || { cat "$out" >&2; die "wrk failed (exit $rc) or exceeded $((d + 30))s"; }
    alive "$TG_PID" || { tail -n 20 "$WORK/tollgate.log" >&2; die "tollgate exited during the flood"; }

    n=$(awk '/ requests in / { print $1; exit }' "$out")
    t=$(to_secs "$(awk '/ requests in / { sub(/,$/, "", $4); print $4; exit }' "$out")")
    c="" most=""
    read -r c most < <(awk '$1 == "flood-calls" { print $2, $3 }' "$out") || true
    [[ -n $n && $t != NaN && -n $c && -n $most ]] || { cat "$out" >&2; die "could not parse wrk output ($out)"; }
    ((most < 16777216)) || die "a wrk thread made $most requests in one chunk: addresses would repeat"
    bad=$(awk -F': *' '/Non-2xx or 3xx responses/ { print $2 }' "$out")
    non2xx=$((non2xx + ${bad:-0}))
    s=$(grep -E 'Socket errors' "$out" || true)
    [[ -z $s ]] || sock_notes+="  chunk $chunk: ${s#"${s%%[![:space:]]*}"}"$'\n'
    sent=$((sent + n)) calls=$((calls + c)) block=$((block + THREADS))
    secs=$(awk -v a="$secs" -v b="$t" 'BEGIN { printf "%.3f", a + b }')
    log "flood chunk $chunk: $n requests in ${t}s (${bad:-0} non-2xx/3xx)"
    # Next chunk: what the remaining requests need at this chunk's rate, +5 %, 2..60 s.
    d=$(awk -v left=$((REQUESTS - sent)) -v n="$n" -v t="$t" 'BEGIN {
        r = (t > 0 && n > 0) ? n / t : 1000; x = left / r * 1.05 + 1
        x = (x == int(x)) ? x : int(x) + 1; if (x < 2) x = 2; if (x > 60) x = 60; print x }')
done
RSS_FLOOD=$(rss_kib "$TG_PID")
if ((RSS_FLOOD > RSS_PEAK)); then RSS_PEAK=$RSS_FLOOD; fi
log "flood done: $sent requests in ${secs}s; RSS $(mib "$RSS_FLOOD") MiB"

# --- 8. sweep -------------------------------------------------------------------------------

growth=$((RSS_FLOOD - RSS_BASE))
target=$((RSS_BASE + (growth / 10 > 1024 ? growth / 10 : 1024)))
RSS_MIN=$RSS_FLOOD RSS_SWEEP=$RSS_FLOOD waited=0 series=""
log "waiting for the sweep (every ${SWEEP_PERIOD}s): polling RSS every second, at most ${SWEEP_WAIT}s"
while ((waited < SWEEP_WAIT)); do
    sleep 1
    waited=$((waited + 1))
    alive "$TG_PID" || die "tollgate exited after the flood"
    RSS_SWEEP=$(rss_kib "$TG_PID")
    if ((RSS_SWEEP < RSS_MIN)); then RSS_MIN=$RSS_SWEEP; fi
    series+=" $(mib "$RSS_SWEEP")"
    # At least one full sweep period after the flood, and back near the baseline.
    if ((waited > SWEEP_PERIOD + 1 && RSS_SWEEP <= target)); then break; fi
done
if ((RSS_SWEEP <= target)); then
    sweep_note="back within max(1 MiB, 10 % of the growth) of the baseline"
else
    sweep_note="NOT back near the baseline (target <= $(mib "$target") MiB) after ${SWEEP_WAIT}s"
fi

# Allocator activity on the worker thread again, then 2 s.
warm after 220
sleep 2
RSS_AFTER=$(rss_kib "$TG_PID")

# --- 9. report ------------------------------------------------------------------------------

delta() { awk -v a="$1" -v b="$RSS_BASE" 'BEGIN { printf "%+.1f", (a - b) / 1024 }'; }
echo
echo "flood: tollgate (1 worker, $SETUP), wrk -t$THREADS -c$CONNECTIONS in $chunk run(s)"
printf '%-40s %12s\n' "requests sent (completed, wrk)" "$sent"
printf '%-40s %12s\n' "distinct client IPs (request() calls)" "$calls"
printf '%-40s %12s\n' "non-2xx/3xx responses" "$non2xx"
printf '%-40s %12.0f\n' "flood requests/s" "$(awk -v n="$sent" -v t="$secs" 'BEGIN { print (t > 0) ? n / t : 0 }')"
printf '%-40s %12s\n' "flood duration s (wrk)" "$secs"
printf '%-40s %12s MiB\n' "RSS baseline ($WARM_BASE warm-up requests)" "$(mib "$RSS_BASE")"
printf '%-40s %12s MiB  (%s)\n' "RSS peak during the flood (0.5 s polls)" "$(mib "$RSS_PEAK")" "$(delta "$RSS_PEAK")"
printf '%-40s %12s MiB  (%s)\n' "RSS right after the flood" "$(mib "$RSS_FLOOD")" "$(delta "$RSS_FLOOD")"
printf '%-40s %12s MiB  (%s)\n' "RSS after the sweep (${waited} s later)" "$(mib "$RSS_SWEEP")" "$(delta "$RSS_SWEEP")"
printf '%-40s %12s MiB  (%s)\n' "RSS minimum while polling" "$(mib "$RSS_MIN")" "$(delta "$RSS_MIN")"
printf '%-40s %12s MiB  (%s)\n' "RSS after $WARM_DONE more requests, 2 s" "$(mib "$RSS_AFTER")" "$(delta "$RSS_AFTER")"
echo "after the sweep: $sweep_note"
echo "RSS MiB each second after the flood:$series"
if [[ -n $sock_notes ]]; then
    echo "wrk reported:"
    printf '%s' "$sock_notes"
fi
