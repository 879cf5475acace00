#!/usr/bin/env bash
# load-tests/compare.sh REV: tollgate as built from git revision REV against tollgate as
# built from the working tree, in one run: did a change cost throughput? Two runs of
# run.sh on a shared machine differ by 10-20 % all round, so a before/after comparison is
# only sound within one run.
#
# Two configs, each run by both binaries (four tollgates, 1 worker each):
#   plain  one route `/` to the origin, access_log off (lib.sh one_route_config);
#   full   the full pipeline, the same config as run.sh's tollgate-full (lib.sh
#          full_config): cached RS256 authentication (key pair and token made with the
#          openssl CLI, lib.sh make_jwt; wrk sends the token), a local rate limit that never
#          triggers, an IP allow list and a server-wide deny list, a jail, CORS, a
#          deprecation, the security headers, a body limit, the access log written to a file.
#
# Topology (127.0.0.1, free ports): wrk ──> tollgate REV  plain / full ──┐
#                                   wrk ──> tollgate tree plain / full ──┴──> nginx origin
# (one tollgate at a time)
# In each round both configs are measured, plain first: for each, the two sides are loaded
# one after the other, never together, and the side loaded first alternates from round to
# round (so neither always runs on a warmer machine). Each measurement gets a tollgate
# started for it, warmed up, and stopped after. Every run must get only 2xx answers.
#
# Steps: install missing tools; build REV in a temporary git worktree, sharing this
# repository's target dir (only tollgate itself is compiled again), and keep its binary;
# build the working tree; start the origin; in each round, for each config and side, start
# that tollgate (`tollgate check` first; a full one must refuse a request without a token
# and write its access log), warm it up, measure, stop it; print, for the plain route and for the full pipeline, requests/s per
# round, the medians and the ratio tree/REV (above 1: the tree is faster). Everything it
# starts (and the worktree) is removed on exit.
#
# Knobs (env): DURATION=8s CONNECTIONS=32 THREADS=1 ROUNDS=6 WARMUP=2s KEEP_WORK=0 BUILD_TIMEOUT=1800
# Usage: bash load-tests/compare.sh 3d587cb

set -euo pipefail

REV=${1:?usage: compare.sh REV (a git revision to compare the working tree with)}
DURATION=${DURATION:-8s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-6}
WARMUP=${WARMUP:-2s}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration_secs "$DURATION" >/dev/null && duration_secs "$WARMUP" >/dev/null
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a positive integer"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive integer"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
((THREADS <= CONNECTIONS)) || die "THREADS ($THREADS) must not exceed CONNECTIONS ($CONNECTIONS)"

install_tools wrk:wrk
init_work tollgate-compare
build_rev_and_tree "$REV"

pick_port PORT_ORIGIN
start_origin "$PORT_ORIGIN"
make_jwt "$WORK"   # JWT, AUTH_HEADER; the key for full_config

# PORT[SIDE CONFIG]: the listener of SIDE (rev, tree) running CONFIG (plain, full), as
# last started. Each measurement runs on a tollgate started for it: how one process's
# threads happen to share the two cores with wrk and the origin holds for its whole
# life, and moves its requests/s by a few percent either way (two processes of one
# binary, measured in turn for six rounds, differ by up to 2-5 %). Fresh processes
# spread that luck over the rounds instead of giving it all to one side.
declare -A PORT=()
# start_side SIDE CONFIG: starts it on a free port (the full one must refuse a request
# without a token and write its access log); STARTED_PID is its pid.
start_side() {
    local side=$1 config=$2 name=$1
    pick_port "PORT[$side $config]"
    case $config in
        plain) one_route_config "$name" "${PORT[$side $config]}" >"$WORK/$name.toml" ;;
        full)
            name=$side-full
            full_config "$name" "${PORT[$side $config]}" >"$WORK/$name.toml"
            ;;
    esac
    local -a auth=()
    [[ $config == full ]] && auth=(-H "$AUTH_HEADER")
    start_tollgate "$name" "$WORK/tollgate-$side" "$WORK/$name.toml" "${PORT[$side $config]}" "${auth[@]}"
    [[ $config == full ]] && check_full "$name" "${PORT[$side $config]}"
    return 0
}

# run_wrk SIDE CONFIG ROUND|warmup: one wrk run (only 2xx answers allowed); prints requests/s.
run_wrk() {
    local side=$1 config=$2 round=$3 d=$DURATION out
    local -a extra=()
    out="$WORK/wrk-$side-$config-$round.txt"
    [[ $round == warmup* ]] && d=$WARMUP
    [[ $config == full ]] && extra=(-H "$AUTH_HEADER")
    wrk_strict "$d" "$out" "${extra[@]}" "http://127.0.0.1:${PORT[$side $config]}/"
    awk '/^Requests\/sec:/ { print $2 }' "$out"
}

declare -A RPS=()
for ((round = 1; round <= ROUNDS; round++)); do
    order="rev tree"
    ((round % 2 == 0)) && order="tree rev"
    for config in plain full; do
        for side in $order; do
            start_side "$side" "$config"
            run_wrk "$side" "$config" "warmup-$round" >/dev/null
            rps=$(run_wrk "$side" "$config" "$round")
            stop_pid "$STARTED_PID" INT
            forget_pid "$STARTED_PID"
            [[ -n $rps ]] || die "wrk gave no result for $side $config (round $round)"
            RPS[$side $config]+="$rps "
            log "round $round: $side $config $rps requests/s"
        done
    done
done

echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION (each on a tollgate just started and warmed up for $WARMUP), $ROUNDS rounds, 1 worker each; origin: nginx"
for config in plain full; do
    echo
    case $config in
        plain) echo "plain route (one route \`/\`, access_log off):" ;;
        full) echo "full pipeline (run.sh's tollgate-full: cached RS256 JWT, local rate limit, allow and deny lists, jail, CORS, deprecation, security headers, body limit, access log to a file):" ;;
    esac
    rev_median=$(median <<<"${RPS[rev $config]}")
    tree_median=$(median <<<"${RPS[tree $config]}")
    printf '  %-22s %s\n' "$REV requests/s:" "${RPS[rev $config]% }" "tree requests/s:" "${RPS[tree $config]% }"
    printf '  %-22s %.0f\n' "$REV median:" "$rev_median" "tree median:" "$tree_median"
    awk -v t="$tree_median" -v r="$rev_median" -v rev="$REV" 'BEGIN { printf "  ratio tree/%s: %.3f\n", rev, t / r }'
done
