#!/usr/bin/env bash
# load-tests/tls-scan.sh: scan a tollgate TLS listener with sslscan and testssl.sh.
#
# Starts, from a `mktemp -d` work dir on free loopback ports, the nginx origin and tollgate
# (release build, 1 worker) with one TLS listener in its default settings (TLS 1.2 and 1.3,
# ALPN h2 and http/1.1) and a self-signed EC P-256 certificate for localhost and 127.0.0.1,
# then runs
#   sslscan --no-colour --show-sigs 127.0.0.1:PORT
#   testssl --quiet --color 0 --warnings off --nodns none --full --add-ca tls.crt 127.0.0.1:PORT
# and prints both reports. Everything stays on loopback: testssl.sh makes no DNS queries
# (--nodns none) and does not fetch CRLs or OCSP (no --phone-out). About 1.5 minutes.
#
# Knobs (env): MIN_VERSION=1.2 (or 1.3: tollgate's tls.min_version) KEEP_WORK=0
#              SCAN_TIMEOUT=900 BUILD_TIMEOUT=1800
# Usage: bash load-tests/tls-scan.sh

set -euo pipefail

MIN_VERSION=${MIN_VERSION:-1.2}
SCAN_TIMEOUT=${SCAN_TIMEOUT:-900}      # seconds per scanner

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$REPO/target/release/tollgate"

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $MIN_VERSION == 1.2 || $MIN_VERSION == 1.3 ]] || die "MIN_VERSION must be 1.2 or 1.3"

install_tools sslscan:sslscan testssl:testssl.sh

build_release --bin tollgate
[[ -x $BIN ]] || die "$BIN not found after the build"

init_work tollgate-tls-scan
PORT_ORIGIN=$(free_port)
PORT_TLS=$(free_port)
while [[ $PORT_TLS == "$PORT_ORIGIN" ]]; do PORT_TLS=$(free_port); done
PORT_ADMIN=$(free_port)
while [[ $PORT_ADMIN == "$PORT_ORIGIN" || $PORT_ADMIN == "$PORT_TLS" ]]; do PORT_ADMIN=$(free_port); done
log "work dir $WORK; ports: origin $PORT_ORIGIN, tollgate https $PORT_TLS, admin $PORT_ADMIN"
make_cert "$WORK"
start_origin "$PORT_ORIGIN"

cat >"$WORK/tollgate.toml" <<TOML
[server]
workers = 1
pid_file = "$WORK/tollgate.pid"
upgrade_socket = "$WORK/upgrade.sock"
access_log = "off"

[admin]
listen = "127.0.0.1:$PORT_ADMIN"

[listeners.secure]
addr = "127.0.0.1:$PORT_TLS"
tls.certificates = [{ cert = "$WORK/tls.crt", key = "$WORK/tls.key" }]
tls.min_version = "$MIN_VERSION"

[upstreams.origin]
targets = ["127.0.0.1:$PORT_ORIGIN"]

[[routes]]
name = "all"
path_prefix = "/"
upstream = "origin"
TOML
"$BIN" check -c "$WORK/tollgate.toml" >&2 || die "tollgate check failed for $WORK/tollgate.toml"
"$BIN" run -c "$WORK/tollgate.toml" >"$WORK/tollgate.log" 2>&1 &
TG_PID=$!
PIDS+=("$TG_PID"); STOP_SIG[$TG_PID]=INT    # Pingora: INT = fast shutdown
wait_ready "tollgate https" "$TG_PID" "https://127.0.0.1:$PORT_TLS/" "$WORK/tollgate.log" \
    --cacert "$WORK/tls.crt"

log "sslscan 127.0.0.1:$PORT_TLS"
timeout "$SCAN_TIMEOUT" sslscan --no-colour --show-sigs "127.0.0.1:$PORT_TLS" >"$WORK/sslscan.txt" 2>&1 \
    || { cat "$WORK/sslscan.txt" >&2; die "sslscan failed or took over ${SCAN_TIMEOUT}s"; }
log "testssl 127.0.0.1:$PORT_TLS (about a minute)"
# Exit status: 0 clean, 1..n ambiguous results or per-test errors (reported in its output),
# 240 and up its own failure; 124 the timeout.
testssl_rc=0
timeout "$SCAN_TIMEOUT" testssl --quiet --color 0 --warnings off --nodns none --full \
    --add-ca "$WORK/tls.crt" --jsonfile "$WORK/testssl.json" "127.0.0.1:$PORT_TLS" \
    >"$WORK/testssl.txt" 2>&1 || testssl_rc=$?
if ((testssl_rc == 124 || testssl_rc >= 240)); then
    cat "$WORK/testssl.txt" >&2
    die "testssl failed (exit $testssl_rc) or took over ${SCAN_TIMEOUT}s"
fi
alive "$TG_PID" || die "tollgate exited during the scan (log: $WORK/tollgate.log)"

echo "=== tollgate TLS listener (tls.min_version = \"$MIN_VERSION\", default http2), 127.0.0.1:$PORT_TLS"
echo "=== sslscan $(sslscan --version 2>&1 | sed -n 's/\x1b\[[0-9;]*m//g; s/^[[:space:]]*\([0-9][0-9.]*\)$/\1/p' | head -n 1)"
cat "$WORK/sslscan.txt"
echo
echo "=== testssl.sh $(dpkg-query -W -f='${Version}' testssl.sh 2>/dev/null || true) (exit status $testssl_rc)"
cat "$WORK/testssl.txt"
echo
echo "=== tollgate's TLS metrics after the scans (http://127.0.0.1:$PORT_ADMIN/metrics)"
curl -fsS --max-time 5 "http://127.0.0.1:$PORT_ADMIN/metrics" | grep '^tollgate_tls_' \
    || echo "(none: admin /metrics not readable)"
