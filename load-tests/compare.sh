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
# In each round both configs are measured, plain first: for each, the two sides are loaded
# one after the other, never together, and the side loaded first alternates from round to
# round (so neither always runs on a warmer machine). Every run must get only 2xx answers.
#
# Steps: install missing tools; build REV in a temporary git worktree, sharing this
# repository's target dir (only tollgate itself is compiled again), and keep its binary;
# build the working tree; start the origin and the four tollgates (`tollgate check` first;
# the full ones must refuse a request without a token and write their access log); warm
# each up; measure; print, for the plain route and for the full pipeline, requests/s per
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

# PORT[SIDE CONFIG]: the listener of SIDE (rev, tree) running CONFIG (plain, full).
declare -A PORT=()
for side in rev tree; do
    pick_port "PORT[$side plain]"
    one_route_config "$side" "${PORT[$side plain]}" >"$WORK/$side.toml"
    start_tollgate "$side" "$WORK/tollgate-$side" "$WORK/$side.toml" "${PORT[$side plain]}"
    pick_port "PORT[$side full]"
    full_config "$side-full" "${PORT[$side full]}" >"$WORK/$side-full.toml"
    start_tollgate "$side-full" "$WORK/tollgate-$side" "$WORK/$side-full.toml" "${PORT[$side full]}" -H "$AUTH_HEADER"
    check_full "$side-full" "${PORT[$side full]}"
done

# run_wrk SIDE CONFIG ROUND|warmup: one wrk run (only 2xx answers allowed); prints requests/s.
run_wrk() {
    local side=$1 config=$2 round=$3 d=$DURATION out
    local -a extra=()
    out="$WORK/wrk-$side-$config-$round.txt"
    [[ $round == warmup ]] && d=$WARMUP
    [[ $config == full ]] && extra=(-H "$AUTH_HEADER")
    wrk_strict "$d" "$out" "${extra[@]}" "http://127.0.0.1:${PORT[$side $config]}/"
    awk '/^Requests\/sec:/ { print $2 }' "$out"
}

for config in plain full; do
    for side in rev tree; do
        log "warm-up $WARMUP: $side $config"
        run_wrk "$side" "$config" warmup >/dev/null
    done
done

declare -A RPS=()
for ((round = 1; round <= ROUNDS; round++)); do
    order="rev tree"
    ((round % 2 == 0)) && order="tree rev"
    for config in plain full; do
        for side in $order; do
            rps=$(run_wrk "$side" "$config" "$round")
            [[ -n $rps ]] || die "wrk gave no result for $side $config (round $round)"
            RPS[$side $config]+="$rps "
            log "round $round: $side $config $rps requests/s"
        done
    done
done

echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION (warm-up $WARMUP), $ROUNDS rounds, 1 worker each; origin: nginx"
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
