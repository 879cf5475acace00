#!/usr/bin/env bash
# load-tests/upstreams.sh: what upstreams as operators have them cost, in one run.
#
#   dns   one tollgate, two routes to the same nginx origin: /addr to an upstream named
#         by address (127.0.0.1:PORT), /name to one named by DNS name (localhost:PORT,
#         from /etc/hosts through tollgate's resolver). wrk -t1 -cCONNECTIONS on each.
#   grpc  a plaintext gRPC server (Python grpcio, tests/support/grpc/server.py), called
#         directly and through tollgate (h2c listener, protocol = "h2c" upstream) with
#         h2load: unary calls, CLIENTS connections, STREAMS concurrent streams each.
#
# The sides of each pair are measured one after the other, ROUNDS times, the first one
# alternating; medians and ratios are printed. Both tollgate and the gRPC server get
# the same machine (2 cores here): the gRPC figures say how much of the server's
# throughput is left through tollgate, not tollgate's own ceiling.
#
# Knobs (env): DURATION=8s CONNECTIONS=32 ROUNDS=3 CALLS=20000 CLIENTS=8 STREAMS=8
#              KEEP_WORK=0 BUILD_TIMEOUT=1800
# Usage: bash load-tests/upstreams.sh

set -euo pipefail

DURATION=${DURATION:-8s}
CONNECTIONS=${CONNECTIONS:-32}
ROUNDS=${ROUNDS:-3}
CALLS=${CALLS:-20000}
CLIENTS=${CLIENTS:-8}
STREAMS=${STREAMS:-8}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$REPO/target/release/tollgate"
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install_tools wrk:wrk h2load:nghttp2-client
python3 -c 'import grpc' 2>/dev/null || bash "$REPO/scripts/deps.sh"
build_release --bin tollgate
init_work tollgate-upstreams


PORT_ORIGIN=$(free_port)
start_origin "$PORT_ORIGIN"

# The gRPC server prints its port once it serves.
python3 "$REPO/tests/support/grpc/server.py" >"$WORK/grpc.port" 2>"$WORK/grpc.log" &
PIDS+=("$!")
STOP_SIG[$!]=TERM
deadline=$((SECONDS + READY_TIMEOUT))
until [[ -s $WORK/grpc.port ]]; do
    ((SECONDS < deadline)) || die "the gRPC server did not start (log: $WORK/grpc.log)"
    sleep 0.1
done
PORT_GRPC=$(head -1 "$WORK/grpc.port")

PORT_TG=$(free_port)
PORT_H2C=$(free_port)
cat >"$WORK/tollgate.toml" <<EOF
$(tollgate_server tollgate)

[listeners.main]
addr = "127.0.0.1:$PORT_TG"

[listeners.h2c]
addr = "127.0.0.1:$PORT_H2C"
h2c = true

[upstreams.by_addr]
targets = ["127.0.0.1:$PORT_ORIGIN"]

[upstreams.by_name]
targets = ["localhost:$PORT_ORIGIN"]

[upstreams.grpc]
targets = ["127.0.0.1:$PORT_GRPC"]
protocol = "h2c"

[[routes]]
name = "addr"
path_prefix = "/addr"
upstream = "by_addr"

[[routes]]
name = "name"
path_prefix = "/name"
upstream = "by_name"

[[routes]]
name = "grpc"
path_prefix = "/test.Echo/"
upstream = "grpc"
EOF
"$BIN" check -c "$WORK/tollgate.toml" >/dev/null
"$BIN" run -c "$WORK/tollgate.toml" >"$WORK/tollgate.log" 2>&1 &
PIDS+=("$!")
STOP_SIG[$!]=INT
wait_ready tollgate "$!" "http://127.0.0.1:$PORT_TG/addr" "$WORK/tollgate.log"

# One unary call's request body: a gRPC frame (uncompressed, 5 bytes, "hello").
printf '\x00\x00\x00\x00\x05hello' >"$WORK/call.bin"
h2load_rps() { # URL: calls per second of one h2load run (every call must succeed)
    local out
    out=$(h2load -n "$CALLS" -c "$CLIENTS" -m "$STREAMS" -d "$WORK/call.bin" \
        -H 'content-type: application/grpc' -H 'te: trailers' "$1")
    grep -q "$CALLS succeeded" <<<"$out" || die "h2load: not every call succeeded: $(grep -E '^requests:' <<<"$out")"
    awk '/^finished in/ { gsub(",", "", $4); print $4 }' <<<"$out"
}
wrk_rps() { # URL
    wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "$1" | awk '/^Requests\/sec/ { print $2 }'
}

declare -A URL=(
    [addr]="http://127.0.0.1:$PORT_TG/addr"
    [name]="http://127.0.0.1:$PORT_TG/name"
    [direct]="http://127.0.0.1:$PORT_GRPC/test.Echo/Unary"
    [tollgate]="http://127.0.0.1:$PORT_H2C/test.Echo/Unary"
)
declare -A RPS=()
wrk -t1 -c"$CONNECTIONS" -d2s "${URL[name]}" >/dev/null
h2load_rps "${URL[tollgate]}" >/dev/null
for ((round = 1; round <= ROUNDS; round++)); do
    dns="addr name"
    grpc="direct tollgate"
    if ((round % 2 == 0)); then
        dns="name addr"
        grpc="tollgate direct"
    fi
    for side in $dns; do
        RPS[$side]+="$(wrk_rps "${URL[$side]}") "
        log "round $round: $side ${RPS[$side]}"
    done
    for side in $grpc; do
        RPS[$side]+="$(h2load_rps "${URL[$side]}") "
        log "round $round: grpc $side ${RPS[$side]}"
    done
done

echo
printf 'wrk -t1 -c%s -d%s (dns); h2load -n%s -c%s -m%s (grpc unary); %s rounds; 1 worker\n' \
    "$CONNECTIONS" "$DURATION" "$CALLS" "$CLIENTS" "$STREAMS" "$ROUNDS"
for side in addr name direct tollgate; do
    printf '%-22s %-30s median %.0f\n' "$side" "${RPS[$side]}" "$(median <<<"${RPS[$side]}")"
done
awk -v n="$(median <<<"${RPS[name]}")" -v a="$(median <<<"${RPS[addr]}")" \
    'BEGIN { printf "ratio name/addr:        %.3f\n", n / a }'
awk -v t="$(median <<<"${RPS[tollgate]}")" -v d="$(median <<<"${RPS[direct]}")" \
    'BEGIN { printf "ratio grpc tollgate/direct: %.3f\n", t / d }'
