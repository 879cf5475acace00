#!/usr/bin/env bash
# load-tests/compare.sh REV: tollgate as built from git revision REV against tollgate as
# built from the working tree, on the plain proxy route, in one run: did a change cost
# throughput? Two runs of run.sh on a shared machine differ by 10-20 % all round, so a
# before/after comparison is only sound within one run.
#
# Topology (127.0.0.1, free ports): wrk ──> tollgate REV  (1 worker) ──┐
#                                   wrk ──> tollgate tree (1 worker) ──┴──> nginx origin
# Same config for both (one route `/` to the origin, access_log off). The two are loaded
# one after the other, never together, ROUNDS times, and the one loaded first alternates
# from round to round (so neither always runs on a warmer machine).
#
# Steps: install missing tools; build REV in a temporary git worktree, sharing this
# repository's target dir (only tollgate itself is compiled again), and keep its binary;
# build the working tree; start the origin and both tollgates; warm both up; measure;
# print requests/s per round, the medians and the ratio tree/REV (above 1: the tree is
# faster). Everything it starts (and the worktree) is removed on exit.
#
# Knobs (env): DURATION=8s CONNECTIONS=32 THREADS=1 ROUNDS=6 KEEP_WORK=0 BUILD_TIMEOUT=1800
# Usage: bash load-tests/compare.sh 3d587cb

set -euo pipefail

REV=${1:?usage: compare.sh REV (a git revision to compare the working tree with)}
DURATION=${DURATION:-8s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-6}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install_tools wrk:wrk
init_work tollgate-compare
git -C "$REPO" rev-parse --verify --quiet "$REV^{commit}" >/dev/null || die "no such revision: $REV"

log "building $REV in a worktree"
git -C "$REPO" worktree add --detach --quiet "$WORK/rev" "$REV"
# The worktree goes first; cleanup then sees the script's own exit status.
trap 'rc=$?; git -C "$REPO" worktree remove --force "$WORK/rev" 2>/dev/null || true; (exit $rc); cleanup' EXIT
(cd "$WORK/rev" && CARGO_TARGET_DIR="$REPO/target" timeout "$BUILD_TIMEOUT" \
    cargo build --release --bin tollgate) || die "building $REV failed"
cp "$REPO/target/release/tollgate" "$WORK/tollgate-rev"
build_release --bin tollgate
cp "$REPO/target/release/tollgate" "$WORK/tollgate-tree"

PORT_ORIGIN=$(free_port)
start_origin "$PORT_ORIGIN"
declare -A PORT
for side in rev tree; do
    PORT[$side]=$(free_port)
    one_route_config "$side" "${PORT[$side]}" >"$WORK/$side.toml"
    "$WORK/tollgate-$side" check -c "$WORK/$side.toml" >/dev/null
    "$WORK/tollgate-$side" run -c "$WORK/$side.toml" >"$WORK/$side.log" 2>&1 &
    PIDS+=("$!")
    STOP_SIG[$!]=INT
    wait_ready "tollgate $side" "$!" "http://127.0.0.1:${PORT[$side]}/" "$WORK/$side.log"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "http://127.0.0.1:${PORT[$side]}/" >/dev/null
done

declare -A RPS=([rev]="" [tree]="")
for ((round = 1; round <= ROUNDS; round++)); do
    order="rev tree"
    ((round % 2 == 0)) && order="tree rev"
    for side in $order; do
        rps=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "http://127.0.0.1:${PORT[$side]}/" \
            | awk '/^Requests\/sec/ { print $2 }')
        [[ -n $rps ]] || die "wrk gave no result for $side"
        RPS[$side]+="$rps "
        log "round $round: $side $rps requests/s"
    done
done

rev_median=$(median <<<"${RPS[rev]}")
tree_median=$(median <<<"${RPS[tree]}")
echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, 1 worker each; origin: nginx"
printf '%-22s %s\n' "$REV requests/s:" "${RPS[rev]}" "tree requests/s:" "${RPS[tree]}"
printf '%-22s %.0f\n' "$REV median:" "$rev_median" "tree median:" "$tree_median"
awk -v t="$tree_median" -v r="$rev_median" 'BEGIN { printf "ratio tree/%s: %.3f\n", "'"$REV"'", t / r }'
