#!/usr/bin/env bash
# load-tests/lib.sh: helpers shared by run.sh, compare.sh, flood.sh, tls-scan.sh and the
# other scripts here (sourced, not run).
#
# Processes started here are registered in PIDS with their stop signal in STOP_SIG and
# stopped by `cleanup` on exit, also on failure or Ctrl-C. NGINX must be set (by
# install_tools) before start_nginx is called.

# Knobs every script has (env), unless the script set its own value before this file:
KEEP_WORK=${KEEP_WORK:-0}             # 1: keep the work dir (it is kept on failure anyway)
BUILD_TIMEOUT=${BUILD_TIMEOUT:-1800}  # seconds allowed for cargo build --release
READY_TIMEOUT=${READY_TIMEOUT:-10}    # seconds per server to answer
STOP_TIMEOUT=${STOP_TIMEOUT:-5}       # seconds per process before SIGKILL

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# install_missing PKG...: apt-get install the given Debian packages (none: nothing to do).
install_missing() {
    (($#)) || return 0
    local missing=("$@") SUDO="" policy_rc rc
    if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
    log "installing: ${missing[*]}"
    # Keep apt from starting the packaged nginx and redis services (Debian's policy-rc.d
    # mechanism): only this script's own instances are used. Removed again right after.
    policy_rc=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        policy_rc=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy_rc" >/dev/null
        $SUDO chmod +x "$policy_rc"
    fi
    rc=0
    timeout 600 $SUDO apt-get update || rc=$?
    if ((rc == 0)); then
        DEBIAN_FRONTEND=noninteractive timeout 900 \
            $SUDO apt-get install -y --no-install-recommends "${missing[@]}" || rc=$?
    fi
    if [[ -n $policy_rc ]]; then $SUDO rm -f "$policy_rc"; fi
    ((rc == 0)) || die "apt-get failed (exit $rc)"
}

# install_tools [COMMAND:PACKAGE ...]: installs, when missing, what every script here needs
# (nginx, cmake, pkg-config, curl, the OpenSSL headers) and the packages of the COMMANDs
# given; sets NGINX.
install_tools() {
    local missing=() pair
    for pair in nginx:nginx-light cmake:cmake pkg-config:pkg-config curl:curl "$@"; do
        command -v "${pair%%:*}" >/dev/null || [[ -x /usr/sbin/${pair%%:*} ]] \
            || missing+=("${pair#*:}")
    done
    dpkg-query -W -f='${Status}' libssl-dev 2>/dev/null | grep -q 'install ok installed' \
        || missing+=(libssl-dev)
    command -v python3 >/dev/null || die "python3 is required"
    install_missing "${missing[@]}"
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
}

# build_release CARGO_ARGS...: `cargo build --release CARGO_ARGS` in $REPO, at most
# $BUILD_TIMEOUT seconds; nothing with SKIP_BUILD=1 (run.sh's own build serves the
# scripts it runs after it).
build_release() {
    if [[ ${SKIP_BUILD:-0} == 1 ]]; then
        log "SKIP_BUILD=1: using the release binaries as they are"
        return 0
    fi
    log "cargo build --release $* (in $REPO)"
    (cd "$REPO" && timeout "$BUILD_TIMEOUT" cargo build --release "$@") \
        || die "cargo build --release failed or took over ${BUILD_TIMEOUT}s"
}

# build_rev_and_tree REV: tollgate built at git revision REV (in a temporary worktree,
# sharing this repository's target dir, so only tollgate itself is compiled again) as
# $WORK/tollgate-rev, and built from the working tree as $WORK/tollgate-tree. The
# worktree is removed on exit, before the cleanup (which then sees the script's status).
build_rev_and_tree() {
    git -C "$REPO" rev-parse --verify --quiet "$1^{commit}" >/dev/null || die "no such revision: $1"
    log "building $1 in a worktree"
    git -C "$REPO" worktree add --detach --quiet "$WORK/rev" "$1"
    trap 'rc=$?; git -C "$REPO" worktree remove --force "$WORK/rev" 2>/dev/null || true; (exit $rc); cleanup' EXIT
    (cd "$WORK/rev" && CARGO_TARGET_DIR="$REPO/target" timeout "$BUILD_TIMEOUT" \
        cargo build --release --bin tollgate) || die "building $1 failed"
    cp "$REPO/target/release/tollgate" "$WORK/tollgate-rev"
    # Cargo fingerprints a path package (tollgate itself, and vendor/) by its files'
    # times, and the worktree's build of the same package just took the fingerprint
    # over: files it compiled look fresh here, however they differ, and the binary
    # would stay the worktree's. Touch every file that differs, so that the tree is
    # compiled again.
    git -C "$REPO" diff --name-only "$1" | (cd "$REPO" && xargs -r touch -c)
    build_release --bin tollgate
    cp "$REPO/target/release/tollgate" "$WORK/tollgate-tree"
}

# init_work NAME: a fresh work dir in $WORK, and the cleanup traps.
init_work() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    PIDS=()
    declare -gA STOP_SIG=()
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

children_of() { # direct children of $1, from /proc
    local f ppid
    for f in /proc/[0-9]*/stat; do
        ppid=$(awk '{ sub(/^.*\) /, ""); print $2 }' "$f" 2>/dev/null) || continue
        [[ $ppid == "$1" ]] && { f=${f#/proc/}; echo "${f%/stat}"; }
    done
    return 0
}

alive() { # running and not a zombie
    local state
    state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

stop_pid() {
    local pid=$1 sig=$2 kids i
    alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
    kids=$(children_of "$pid")
    kill -s "$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        log "pid $pid did not stop on SIG$sig within ${STOP_TIMEOUT}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    for i in $kids; do alive "$i" && kill -KILL "$i" 2>/dev/null; done
    wait "$pid" 2>/dev/null || true
}

forget_pid() { # a process reaped by `wait`: its pid may be reused, never signal it again
    local keep=() p
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do stop_pid "$pid" "${STOP_SIG[$pid]}"; done
    if [[ $KEEP_WORK == 1 || $rc -ne 0 ]]; then
        log "work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

PORTS_TAKEN=" "
pick_port() { # pick_port VAR: sets VAR (an array element too) to a free port no other
    local p   # server of this script was given (not in a subshell: it keeps the list)
    p=$(free_port)
    while [[ $PORTS_TAKEN == *" $p "* ]]; do p=$(free_port); done
    PORTS_TAKEN+="$p "
    printf -v "$1" '%s' "$p"
}

# wait_ready NAME PID URL LOGFILE [CURL ARGS...]: poll until URL answers 200 with body
# "hello", at most READY_TIMEOUT seconds; fail early if the process exits.
wait_ready() {
    local name=$1 pid=$2 url=$3 logf=$4 deadline body
    shift 4
    deadline=$((SECONDS + READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        alive "$pid" || { tail -n 20 "$logf" >&2 || true; die "$name exited during start-up (log: $logf)"; }
        if body=$(curl -fsS --max-time 1 "$@" "$url" 2>/dev/null) && [[ $body == hello ]]; then
            log "$name ready at $url (pid $pid)"
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$logf" >&2 || true
    die "$name not ready at $url after ${READY_TIMEOUT}s (log: $logf)"
}

# nginx temp dirs under the instance's prefix (compiled-in defaults live in /var/lib/nginx);
# only for modules this nginx has, since the directive is unknown otherwise.
nginx_temp_paths() {
    local m nginx_v
    nginx_v=$("$NGINX" -V 2>&1)
    echo "    client_body_temp_path temp/body;"
    for m in proxy fastcgi uwsgi scgi; do
        [[ $nginx_v == *"--without-http_${m}_module"* ]] || echo "    ${m}_temp_path temp/$m;"
    done
}

# nginx_upstream_origin PORT: the upstream block every nginx proxy here uses (kept-alive
# connections to the origin, as tollgate and Pingora keep theirs).
nginx_upstream_origin() {
    cat <<NGX
    upstream origin {
        server 127.0.0.1:$1;
        keepalive 64;
        keepalive_requests 1000000;
    }
NGX
}

# The location block of every nginx proxy here.
NGINX_PROXY_LOCATION='location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }'

# start_nginx NAME HTTP_BLOCK: an nginx with its own prefix dir, in the foreground;
# NGINX_WORKERS worker processes (default 1).
start_nginx() {
    local name=$1 http_block=$2 prefix="$WORK/$1"
    mkdir -p "$prefix/temp" "$prefix/logs"
    cat >"$prefix/nginx.conf" <<NGX
daemon off;
master_process on;
worker_processes ${NGINX_WORKERS:-1};
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
events { worker_connections ${NGINX_WORKER_CONNECTIONS:-4096}; }
http {
    access_log off;
    keepalive_requests 1000000;
$(nginx_temp_paths)
$http_block
}
NGX
    "$NGINX" -t -q -p "$prefix/" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf" \
        || die "nginx config for $name is invalid ($prefix/nginx.conf)"
    "$NGINX" -p "$prefix/" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf" \
        >"$prefix/logs/stdout.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid"); STOP_SIG[$pid]=TERM     # nginx: TERM = fast shutdown
    echo "$pid"
}

# median: the median of the numbers on stdin (the mean of the middle two for an even count).
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# unit_env: the environment the systemd unit gives tollgate (its Environment= lines,
# VAR=value words): the allocator settings it runs with in production.
unit_env() { sed -n 's/^Environment=//p' "$REPO/systemd/tollgate.service"; }

# one_route_config NAME PORT [logged]: a benchmark tollgate's whole config:
# tollgate_server NAME [logged], one listener on PORT, the origin ($PORT_ORIGIN) as
# upstream, one route for every path.
one_route_config() {
    cat <<EOT
$(tollgate_server "$1" "${3:-}")

[listeners.main]
addr = "127.0.0.1:$2"

[upstreams.origin]
targets = ["127.0.0.1:$PORT_ORIGIN"]

[[routes]]
name = "all"
upstream = "origin"
EOT
}

# b64url: base64url without padding (JWT segments) of stdin.
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

# make_jwt DIR: an RS256 key pair, DIR/jwt.key and DIR/jwt.pub.pem, and a token signed with
# it, valid for an hour, all made with the openssl CLI. Sets JWT (the token) and
# AUTH_HEADER ("Authorization: Bearer $JWT", for curl -H and wrk -H).
make_jwt() {
    local dir=$1 signed
    openssl genrsa -out "$dir/jwt.key" 2048 2>/dev/null || die "openssl genrsa failed"
    openssl rsa -in "$dir/jwt.key" -pubout -out "$dir/jwt.pub.pem" 2>/dev/null || die "openssl rsa failed"
    signed="$(printf '{"alg":"RS256","typ":"JWT"}' | b64url).$(printf '{"sub":"bench","exp":%d}' $(($(date +%s) + 3600)) | b64url)"
    JWT="$signed.$(printf %s "$signed" | openssl dgst -sha256 -sign "$dir/jwt.key" -binary | b64url)"
    AUTH_HEADER="Authorization: Bearer $JWT"
}

# shared_toml: the sections every benchmark tollgate with policies uses: the origin
# ($PORT_ORIGIN), RS256 with the verified-token cache (make_jwt's key in $WORK), and a
# rate limit that never triggers (10^9 per second per client IP): the cost of keeping
# the buckets.
shared_toml() {
    cat <<TOML
[upstreams.origin]
targets = ["127.0.0.1:$PORT_ORIGIN"]

[auth.rs256]
kind = "jwt"
algorithms = ["RS256"]
public_key_file = "$WORK/jwt.pub.pem"

[limits.never-local]
key = "client_ip"
rate = 1000000000
per = "1s"
TOML
}

# full_config NAME PORT: the whole pipeline in one tollgate (run.sh's tollgate-full,
# compare.sh's full-pipeline side): the access log written to $WORK/NAME-access.log, a
# server-wide deny list and a jail, one listener on PORT, and one route for every path
# with cached RS256 authentication (make_jwt first; requests need $AUTH_HEADER), a
# never-triggering local rate limit per consumer (the token's `sub`), an IP allow list
# (loopback), CORS, a deprecation, the security headers (on by default), a body limit,
# and tracing at 1 % (spans exported to the origin, $PORT_ORIGIN).
full_config() {
    cat <<TOML
$(tollgate_server "$1" logged)
deny_from = ["blocked"]
jails = ["abuse"]

[listeners.full]
addr = "127.0.0.1:$2"

$(shared_toml)

[ip_lists.blocked]
cidrs = ["192.0.2.0/24", "2001:db8::/32"]

[ip_lists.loopback]
cidrs = ["127.0.0.0/8"]

[jails.abuse]
key = "client_ip"
max_strikes = 1000000
window = "1m"
ban = "1m"

[limits.per-consumer]
key = "consumer"
rate = 1000000000
per = "1s"

[tracing]
endpoint = "http://127.0.0.1:$PORT_ORIGIN/v1/traces"
sample_ratio = 0.01

[[routes]]
name = "full"
path_prefix = "/"
upstream = "origin"
auth = ["rs256"]
limits = ["per-consumer"]
allow_from = ["loopback"]
max_body = "64KiB"
cors = { origins = ["https://app.example.com"], methods = ["GET", "POST"], headers = ["authorization"], max_age = "10m" }
deprecation = { since = "2026-06-01T00:00:00Z", sunset = "2099-01-01T00:00:00Z", link = "https://developer.example.com/migrate" }
TOML
}

# start_tollgate NAME BIN CONFIG PORT [CURL ARGS...]: `BIN check` of CONFIG, then `BIN run`
# of it in the background (log $WORK/NAME.log), registered for cleanup (INT: Pingora's fast
# shutdown); waits until http://127.0.0.1:PORT/ answers "hello" (CURL ARGS: e.g.
# -H "$AUTH_HEADER"). Sets STARTED_PID (no output: a $(...) subshell would lose the
# registration).
start_tollgate() {
    local name=$1 bin=$2 config=$3 port=$4
    shift 4
    "$bin" check -c "$config" >"$WORK/$name.check.log" 2>&1 \
        || { cat "$WORK/$name.check.log" >&2; die "tollgate check failed for $config"; }
    "$bin" run -c "$config" >"$WORK/$name.log" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID"); STOP_SIG[$STARTED_PID]=INT
    wait_ready "tollgate $name" "$STARTED_PID" "http://127.0.0.1:$port/" "$WORK/$name.log" "$@"
}

# check_full NAME PORT: the full pipeline started from full_config NAME PORT refuses a
# request without a token (401) and has written access log lines to its file.
check_full() {
    local code
    code=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/")
    [[ $code == 401 ]] || die "tollgate $1 answered $code to a request without a token"
    [[ -s $WORK/$1-access.log ]] || die "tollgate $1 wrote no access log line to $WORK/$1-access.log"
}

# tollgate_server NAME [logged]: the [server] section of a benchmark's tollgate (1
# worker, pid file and upgrade socket in $WORK, no access log; with `logged`, the access
# log written to $WORK/NAME-access.log).
tollgate_server() {
    local access='"off"'
    [[ ${2:-} == logged ]] && access="{ file = \"$WORK/$1-access.log\" }"
    cat <<EOT
[server]
workers = 1
pid_file = "$WORK/$1.pid"
upgrade_socket = "$WORK/$1.sock"
access_log = $access
EOT
}

# duration_secs D: wrk durations ("10", "10s", "2m", "1h") in seconds (for time bounds).
duration_secs() {
    local d=$1
    [[ $d =~ ^([0-9]+)([smh]?)$ ]] || die "bad duration '$d' (use e.g. 10s, 2m)"
    case ${BASH_REMATCH[2]} in
        h) echo $((BASH_REMATCH[1] * 3600)) ;;
        m) echo $((BASH_REMATCH[1] * 60)) ;;
        *) echo "${BASH_REMATCH[1]}" ;;
    esac
}

# to_ms VALUE_WITH_UNIT: wrk prints e.g. 512.00us, 1.20ms, 2.00s, 1.50m
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (match(v, /^[0-9.]+/)) { n = substr(v, 1, RLENGTH); u = substr(v, RLENGTH + 1) }
        else { print "NaN"; exit }
        f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : (u == "h") ? 3600000 : -1
        if (f < 0) print "NaN"; else printf "%.3f\n", n * f
    }'
}

# wrk_strict DURATION OUTFILE WRK_ARGS...: one wrk run (THREADS, CONNECTIONS) bounded in
# time; fails on a wrk error or on any answer other than 2xx, logs socket errors.
wrk_strict() {
    local d=$1 out=$2
    shift 2
    timeout $(($(duration_secs "$d") + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$d" "$@" >"$out" 2>&1 \
        || { cat "$out" >&2; die "wrk failed or overran: wrk $*"; }
    if grep -q 'Non-2xx' "$out"; then cat "$out" >&2; die "wrk got answers other than 2xx: wrk $*"; fi
    if grep -q 'Socket errors' "$out"; then log "wrk $*: $(grep 'Socket errors' "$out")"; fi
    return 0
}

# in_rounds MEASURE NAME...: warms each NAME up (MEASURE NAME warmup), then ROUNDS
# interleaved rounds, each starting with the next NAME (MEASURE NAME ROUND, from 0).
in_rounds() {
    local measure=$1 round i
    shift
    local names=("$@")
    for i in "${names[@]}"; do
        log "$i: warm-up $WARMUP"
        "$measure" "$i" warmup
    done
    for ((round = 0; round < ROUNDS; round++)); do
        for ((i = 0; i < ${#names[@]}; i++)); do
            "$measure" "${names[(round + i) % ${#names[@]}]}" "$round"
        done
    done
}

rss_kib() { # VmRSS of one pid in KiB (0 if gone)
    local v
    v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)
    echo "${v:-0}"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# to_secs VALUE_WITH_UNIT: wrk prints its run time as e.g. 20.00s, 1.00m
to_secs() {
    awk -v ms="$(to_ms "$1")" 'BEGIN { if (ms == "NaN") print "NaN"; else printf "%.3f\n", ms / 1000 }'
}

# make_cert DIR: a self-signed EC P-256 certificate for localhost and 127.0.0.1 (a year),
# DIR/tls.crt and DIR/tls.key, made with the openssl CLI.
make_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$1/tls.key" -out "$1/tls.crt" 2>"$1/openssl-req.log" \
        || { cat "$1/openssl-req.log" >&2; die "openssl req (certificate) failed"; }
}

# The TLS 1.2 cipher list tollgate's acceptor uses (rust-openssl's mozilla_intermediate_v5,
# through Pingora), for an nginx with the same settings. TLS 1.3 suites: OpenSSL's
# default (the same three) on both.
MOZ_INTERMEDIATE_CIPHERS="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"

# start_origin PORT: the nginx origin every proxy forwards to (`return 200 "hello"`).
# start_nginx writes its pid to a file, not through $(...): a
# subshell would lose the PIDS registration.
start_origin() {
    start_nginx origin "    server {
        listen 127.0.0.1:$1;
        location / { return 200 \"hello\\n\"; }
    }" >"$WORK/origin.pid"
    local pid
    pid=$(<"$WORK/origin.pid")
    wait_ready origin "$pid" "http://127.0.0.1:$1/" "$WORK/origin/logs/error.log"
}
