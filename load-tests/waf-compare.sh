#!/usr/bin/env bash
# load-tests/waf-compare.sh: tollgate's WAF beside nginx + ModSecurity v3 + the OWASP Core
# Rule Set, on the same corpora of attacks and ordinary requests.
#
# Starts, from a `mktemp -d` work dir on free loopback ports, an nginx origin answering
# 200 to everything (conditional requests too) and, once per paranoia level in PARANOIA,
# two proxies in front of it:
#   ModSecurity  nginx with Debian's libnginx-mod-http-modsecurity (libmodsecurity 3) and
#                modsecurity-crs (CRS 3.3): Debian's recommended modsecurity.conf with
#                SecRuleEngine On (blocking), request bodies inspected (JSON ones with the
#                JSON body processor), the packaged crs-setup.conf, then
#                tx.paranoia_level = N and inbound anomaly threshold 5; audit and error
#                logs in the work dir;
#   tollgate     the release binary with one route for every path (max_body 1MiB) under
#                a [waf] with paranoia = N and the defaults otherwise (mode "block",
#                anomaly threshold 5, max_inspect 64KiB).
# Each record of each corpus (JSON lines, the format of load-tests/waf_corpus.py) is sent
# as-is on its own connection to each proxy (HTTP/1.1, Connection: close; only Host,
# Content-Type and Content-Length added when missing), TIMEOUT seconds at most, and the
# status kept (0: no answer). An attack is detected on a 403 (both WAFs' refusal); the
# "any 4xx" column also counts the other refusals before the origin (400s from request
# hygiene and the HTTP parsers, e.g. to smuggling shapes or a raw `"` in the target). An
# ordinary request is a false positive on a 403; its other 4xx and 5xx are shown apart.
# Per corpus and level it prints (markdown) the totals, detection by class and by place,
# every record the two treat differently, and the attacks both let through. The numbers
# are reported, never judged: the script fails only when a proxy does not start or stops
# answering. Some 10 seconds for two corpora of about 500 and 300 records.
#
# Corpora: --corpus FILE (repeatable); by default $WAF_CORPUS (default: shared/waf-corpus/
# corpus.jsonl beside the repository) and the project's tests/data/waf-corpus.jsonl, each
# when it exists.
#
# Knobs (env): PARANOIA="1 2" TIMEOUT=5 JOBS=8 HOST_HEADER=localhost WAF_CORPUS=...
#              KEEP_WORK=0 BUILD_TIMEOUT=1800 SKIP_BUILD=0
# Usage: bash load-tests/waf-compare.sh [--corpus FILE]...

set -euo pipefail

PARANOIA=${PARANOIA:-"1 2"}
TIMEOUT=${TIMEOUT:-5}                   # seconds per record and proxy
JOBS=${JOBS:-8}                         # records in flight at a time
HOST_HEADER=${HOST_HEADER:-localhost}   # Host for records without one (a name: CRS scores
                                        # a numeric Host, 920350)
READY_TIMEOUT=${READY_TIMEOUT:-30}      # nginx loads the CRS at start

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$REPO/target/release/tollgate"
HERE="$REPO/load-tests"
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CORPORA=()
while (($#)); do
    case $1 in
        --corpus) (($# >= 2)) || die "--corpus needs a file"; CORPORA+=("$2"); shift 2 ;;
        --corpus=*) CORPORA+=("${1#--corpus=}"); shift ;;
        -h | --help) sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
if ((${#CORPORA[@]} == 0)); then
    for f in "${WAF_CORPUS:-$REPO/../shared/waf-corpus/corpus.jsonl}" "$REPO/tests/data/waf-corpus.jsonl"; do
        if [[ -f $f ]]; then CORPORA+=("$(realpath "$f")"); else log "no corpus at $f: skipped"; fi
    done
fi
((${#CORPORA[@]})) || die "no corpus (give --corpus FILE, or set WAF_CORPUS)"
for f in "${CORPORA[@]}"; do [[ -r $f ]] || die "cannot read corpus $f"; done
for pl in $PARANOIA; do [[ $pl =~ ^[1-4]$ ]] || die "PARANOIA: levels 1 to 4, not '$pl'"; done
[[ $TIMEOUT =~ ^[0-9]+(\.[0-9]+)?$ && $JOBS =~ ^[1-9][0-9]*$ ]] || die "bad TIMEOUT or JOBS"

# --- installs: nginx, ModSecurity's nginx module and the CRS ---------------------------
install_tools
pkgs=()
for p in libnginx-mod-http-modsecurity modsecurity-crs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || pkgs+=("$p")
done
install_missing "${pkgs[@]}"

first_file() { # the first of the given paths that is a file (none: empty)
    local f
    for f in "$@"; do [[ -f $f ]] && { echo "$f"; return 0; }; done
    return 0
}
MODSEC_SO=$(first_file /usr/lib/nginx/modules/ngx_http_modsecurity_module.so \
    "$(sed -n 's/^load_module \(.*\);/\1/p' /usr/share/nginx/modules-available/mod-http-modsecurity.conf 2>/dev/null)")
MODSEC_CONF=$(first_file /usr/share/nginx/docs/modsecurity/modsecurity.conf \
    /etc/nginx/modsecurity.conf /etc/modsecurity/modsecurity.conf-recommended)
UNICODE_MAP=$(first_file /usr/share/nginx/docs/modsecurity/unicode.mapping \
    /etc/nginx/unicode.mapping /etc/modsecurity/unicode.mapping)
CRS_SETUP=$(first_file /etc/modsecurity/crs/crs-setup.conf /usr/share/modsecurity-crs/crs-setup.conf.example)
CRS_RULES=/usr/share/modsecurity-crs/rules
[[ -n $MODSEC_SO ]] || die "ModSecurity's nginx module not found (libnginx-mod-http-modsecurity)"
[[ -n $MODSEC_CONF && -n $UNICODE_MAP ]] || die "Debian's modsecurity.conf or unicode.mapping not found"
[[ -n $CRS_SETUP && -f $CRS_RULES/REQUEST-949-BLOCKING-EVALUATION.conf ]] \
    || die "the OWASP CRS (modsecurity-crs) not found"
version_of() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null | sed 's/-[^-]*$//; s/^[0-9]*://'; }
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's|.*nginx/||')
MODSEC_LABEL="nginx $NGINX_VERSION + ModSecurity $(version_of libmodsecurity3) + CRS $(version_of modsecurity-crs)"
log "ModSecurity side: $MODSEC_LABEL"
log "  module $MODSEC_SO; base config $MODSEC_CONF; CRS $CRS_SETUP and $CRS_RULES/"

build_release --bin tollgate
[[ -x $BIN ]] || die "no release binary at $BIN (run without SKIP_BUILD=1)"
init_work tollgate-waf

# --- the origin: 200 to everything, bodies read and dropped -----------------------------
# nginx answers a conditional request (If-Match, If-Unmodified-Since) to its own `return`
# with 412, but never to a response it proxies: the listening server forwards to an inner
# one that answers, with the conditional headers removed.
pick_port PORT_ORIGIN
pick_port PORT_INNER
start_nginx origin "    client_max_body_size 0;
$(nginx_upstream_origin "$PORT_INNER" | sed 's/upstream origin/upstream inner/')
    server {
        listen 127.0.0.1:$PORT_INNER;
        location / { return 200 \"hello\\n\"; }
    }
    server {
        listen 127.0.0.1:$PORT_ORIGIN;
        location / {
            proxy_pass http://inner;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header If-Match \"\";
            proxy_set_header If-None-Match \"\";
            proxy_set_header If-Modified-Since \"\";
            proxy_set_header If-Unmodified-Since \"\";
            proxy_set_header If-Range \"\";
        }
    }" >"$WORK/origin.pid"
wait_ready origin "$(<"$WORK/origin.pid")" "http://127.0.0.1:$PORT_ORIGIN/" "$WORK/origin/logs/error.log"

# A browser's User-Agent for the readiness probes (CRS at paranoia 2 scores curl's).
UA=(-A "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0")

# modsec_rules PREFIX PL: the ModSecurity rules file of one nginx: Debian's recommended
# base in blocking mode with its files in PREFIX, the CRS set up for paranoia level PL.
modsec_rules() {
    local prefix=$1 pl=$2
    sed -e 's/^SecRuleEngine .*/SecRuleEngine On/' \
        -e "s|^SecTmpDir .*|SecTmpDir $prefix/temp/|" \
        -e "s|^SecDataDir .*|SecDataDir $prefix/temp/|" \
        -e "s|^SecAuditLog .*|SecAuditLog $prefix/logs/modsec_audit.log|" \
        -e "s|^SecUnicodeMapFile [^ ]*|SecUnicodeMapFile $UNICODE_MAP|" \
        -e 's/^SecStatusEngine .*/SecStatusEngine Off/' \
        "$MODSEC_CONF" >"$prefix/modsecurity.conf"
    grep -q '^SecRuleEngine On' "$prefix/modsecurity.conf" || die "SecRuleEngine not set in $prefix/modsecurity.conf"
    grep -q 'ctl:requestBodyProcessor=JSON' "$prefix/modsecurity.conf" \
        || die "$MODSEC_CONF has no JSON body processor rule"
    cat >"$prefix/main.conf" <<RULES
Include $prefix/modsecurity.conf
Include $CRS_SETUP
# crs-setup.conf leaves these commented out: paranoia level, anomaly thresholds.
SecAction "id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level=$pl"
SecAction "id:900110,phase:1,nolog,pass,t:none,setvar:tx.inbound_anomaly_score_threshold=5,setvar:tx.outbound_anomaly_score_threshold=4"
RULES
    if [[ -f /etc/modsecurity/crs/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf ]]; then
        echo "Include /etc/modsecurity/crs/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf" >>"$prefix/main.conf"
    fi
    echo "Include $CRS_RULES/*.conf" >>"$prefix/main.conf"
    if [[ -f /etc/modsecurity/crs/RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf ]]; then
        echo "Include /etc/modsecurity/crs/RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf" >>"$prefix/main.conf"
    fi
}

# start_modsec NAME PORT PL: nginx + ModSecurity + CRS at paranoia PL on PORT, in front of
# the origin (lib.sh's start_nginx cannot load a module: load_module must come first).
start_modsec() {
    local name=$1 port=$2 pl=$3 prefix="$WORK/$1" pid
    mkdir -p "$prefix/temp" "$prefix/logs"
    modsec_rules "$prefix" "$pl"
    cat >"$prefix/nginx.conf" <<NGX
load_module $MODSEC_SO;
daemon off;
master_process on;
worker_processes 1;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log $prefix/logs/access.log;
    client_max_body_size 16m;
$(nginx_temp_paths)
    modsecurity on;
    modsecurity_rules_file $prefix/main.conf;
$(nginx_upstream_origin "$PORT_ORIGIN")
    server {
        listen 127.0.0.1:$port;
        $NGINX_PROXY_LOCATION
    }
}
NGX
    "$NGINX" -t -q -p "$prefix/" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf" \
        || { tail -n 20 "$prefix/logs/error.log" >&2; die "nginx + ModSecurity config for $name is invalid ($prefix/nginx.conf)"; }
    "$NGINX" -p "$prefix/" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf" \
        >"$prefix/logs/stdout.log" 2>&1 &
    pid=$!
    PIDS+=("$pid"); STOP_SIG[$pid]=TERM
    wait_ready "$name" "$pid" "http://127.0.0.1:$port/" "$prefix/logs/error.log" "${UA[@]}"
}

# tollgate_waf_config NAME PORT PL: one route for every path, under a WAF at level PL.
tollgate_waf_config() {
    cat <<TOML
$(tollgate_server "$1" logged)
security_log = { file = "$WORK/$1-security.log" }

[listeners.main]
addr = "127.0.0.1:$2"

[upstreams.origin]
targets = ["127.0.0.1:$PORT_ORIGIN"]

[waf.edge]
paranoia = $3

[[routes]]
name = "all"
path_prefix = "/"
upstream = "origin"
waf = "edge"
max_body = "1MiB"
TOML
}

declare -A PORT=()
for pl in $PARANOIA; do
    pick_port "PORT[modsec-pl$pl]"
    start_modsec "modsec-pl$pl" "${PORT[modsec-pl$pl]}" "$pl"
    pick_port "PORT[tollgate-pl$pl]"
    tollgate_waf_config "tollgate-pl$pl" "${PORT[tollgate-pl$pl]}" "$pl" >"$WORK/tollgate-pl$pl.toml"
    start_tollgate "tollgate-pl$pl" "$BIN" "$WORK/tollgate-pl$pl.toml" "${PORT[tollgate-pl$pl]}" "${UA[@]}"
done

# --- send and score ---------------------------------------------------------------------
SUMMARY="$WORK/summary.md"
{
    echo "ModSecurity: $MODSEC_LABEL, Debian's packages (Debian's recommended"
    echo "modsecurity.conf with SecRuleEngine On, JSON bodies through the JSON body processor;"
    echo "crs-setup.conf as packaged, \`tx.paranoia_level\` set, inbound anomaly threshold 5)."
    echo "tollgate: $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?'), \`[waf]\` with \`paranoia\` set and the defaults otherwise"
    echo "(block, threshold 5, max_inspect 64KiB), route max_body 1MiB, request hygiene as by"
    echo "default. Each record on its own connection (Host \`$HOST_HEADER\` when it has none),"
    echo "${TIMEOUT} s at most. Detected: 403. Refused, any 4xx: a 403 or any other 4xx (for"
    echo "tollgate also 400s from request hygiene and from Pingora's HTTP parser). Ordinary"
    echo "refused otherwise: ordinary requests answered with a 4xx other than 403, or a 5xx."
    echo
} >"$SUMMARY"
n=0
for corpus in "${CORPORA[@]}"; do
    n=$((n + 1))
    for pl in $PARANOIA; do
        for side in modsec tollgate; do
            log "$(basename "$corpus"), paranoia $pl: $side"
            out="$WORK/results-$n-$side-pl$pl.jsonl"
            python3 "$HERE/waf_corpus.py" send --port "${PORT[$side-pl$pl]}" --host "$HOST_HEADER" \
                --timeout "$TIMEOUT" --jobs "$JOBS" "$corpus" "$out" \
                || die "sending $corpus to $side-pl$pl failed"
        done
        python3 "$HERE/waf_corpus.py" report --corpus "$corpus" --paranoia "$pl" \
            --proxy "ModSecurity=$WORK/results-$n-modsec-pl$pl.jsonl" \
            --proxy "tollgate=$WORK/results-$n-tollgate-pl$pl.jsonl" >>"$SUMMARY" \
            || die "scoring $corpus failed"
    done
done

# Statuses tollgate passed on from the origin (not its own refusals), if any.
for pl in $PARANOIA; do
    python3 - "$WORK/tollgate-pl$pl-access.log" "$pl" >>"$SUMMARY" <<'PY'
import collections, json, sys
c = collections.Counter()
for line in open(sys.argv[1], encoding="utf-8"):
    x = json.loads(line)
    if x.get("upstream") and x.get("status", 0) >= 400:
        c[x["status"]] += 1
if c:
    print(f"tollgate at paranoia {sys.argv[2]}: the origin's own answers among the 4xx/5xx: "
          + ", ".join(f"{s}×{n}" for s, n in sorted(c.items())) + "\n")
PY
done

# Both proxies must still be up: a crash mid-corpus would read as "no answer".
for pl in $PARANOIA; do
    for side in modsec tollgate; do
        curl -fsS --max-time 2 "${UA[@]}" -o /dev/null "http://127.0.0.1:${PORT[$side-pl$pl]}/" \
            || die "$side-pl$pl no longer answers after the corpora (logs in $WORK)"
    done
done
cat "$SUMMARY"
