#!/usr/bin/env bash
# systemd/check-unit.sh: runs systemd/tollgate.service, as shipped, under a real systemd
# and checks what the unit promises:
#   start    the unit becomes active only once tollgate serves (Type=notify, READY=1),
#            after ExecStartPre's `tollgate check`;
#   reload   `systemctl reload tollgate` applies an edited config, same main PID;
#   upgrade  `systemctl kill -s USR2 --kill-whom=main tollgate` leaves the unit active
#            under a new main PID (MAINPID= from the new process), the old one gone,
#            and requests served all along;
#   stop     `systemctl stop tollgate` after the upgrade drains first (drain_delay:
#            /readyz 503 while still serving), then stops the new main process with
#            SIGTERM (result success), not SIGKILL.
#
# How: systemd runs as PID 1 of fresh PID and mount namespaces (`unshare`), booting only
# tollgate.service. In that mount namespace /etc is an overlay (the host's /etc is not
# written), /run and /usr/local are tmpfs, the binary is installed as
# /usr/local/bin/tollgate and the config as /etc/tollgate/tollgate.toml, as the unit's
# header says; /tmp and /var/tmp are tmpfs too (systemd-tmpfiles empties /tmp at
# boot). The network namespace is the host's: tollgate listens on free loopback
# ports and is checked from outside. Everything it starts ends with the namespace.
#
# Needs root, systemd, curl. Usage: bash systemd/check-unit.sh [BINARY]
# (default: target/release/tollgate, built if missing). Exit 0 when every check passed.

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$REPO/target/release/tollgate}
SYSTEMD=/lib/systemd/systemd

die() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "==> $*"; }

[[ $(id -u) == 0 ]] || die "needs root (to start systemd in its own namespaces)"
[[ -x $SYSTEMD ]] || die "no $SYSTEMD (apt-get install systemd)"
command -v curl >/dev/null || die "needs curl"
if [[ ! -x $BIN ]]; then
    (cd "$REPO" && cargo build --release --bin tollgate)
fi

WORK=$(mktemp -d /tmp/tollgate-systemd.XXXXXX)
NS_PID=
LOAD=
cleanup() {
    [[ -n $LOAD ]] && kill "$LOAD" 2>/dev/null || true
    # The namespace ends with its PID 1.
    local init
    init=$(pid1 2>/dev/null) && kill -9 "$init" 2>/dev/null
    [[ -n $NS_PID ]] && kill -9 "$NS_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
ADMIN=$(free_port)

config() { # $1: the body the route answers
    cat <<EOF
[server]
pid_file = "/run/tollgate/tollgate.pid"
upgrade_socket = "/run/tollgate/upgrade.sock"
grace_period = "2s"
shutdown_timeout = "2s"
drain_delay = "2s"
access_log = "off"

[admin]
listen = "127.0.0.1:$ADMIN"

[listeners.main]
addr = "127.0.0.1:$PORT"

[[routes]]
name = "hello"
respond = { status = 200, body = "$1" }
EOF
}
config one > "$WORK/tollgate.toml"
cp "$BIN" "$WORK/tollgate"
cp "$REPO/systemd/tollgate.service" "$WORK/"

step "starting systemd as PID 1 of new PID and mount namespaces"
unshare --pid --mount --fork --mount-proc sh -c "
    set -e
    mount -t tmpfs tmpfs /run
    mkdir -p /run/overlay/upper /run/overlay/work
    mount -t overlay overlay -o lowerdir=/etc,upperdir=/run/overlay/upper,workdir=/run/overlay/work /etc
    mkdir -p /etc/tollgate
    cp $WORK/tollgate.toml /etc/tollgate/tollgate.toml
    cp $WORK/tollgate.service /etc/systemd/system/tollgate.service
    mount -t tmpfs tmpfs /usr/local
    mkdir -p /usr/local/bin
    cp $WORK/tollgate /usr/local/bin/tollgate
    # systemd-tmpfiles empties /tmp at boot: give it its own.
    mount -t tmpfs tmpfs /tmp
    mount -t tmpfs tmpfs /var/tmp
    exec env container=tollgate-check $SYSTEMD --system --unit=tollgate.service --log-target=null
" &
NS_PID=$!

# PID 1 of the namespace, as the host sees it.
pid1() {
    local p
    for p in $(pgrep -f "^$SYSTEMD --system --unit=tollgate.service"); do
        grep -q "^NSpid:.*[[:space:]]1$" "/proc/$p/status" 2>/dev/null && { echo "$p"; return; }
    done
    return 1
}
inside() { nsenter -t "$(pid1)" -m -p "$@"; }
systemctl_() { inside systemctl --no-pager "$@"; }
until_true() { # $1: seconds, rest: command
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}
main_pid() { systemctl_ show -p MainPID --value tollgate; }
answer() { curl -s --max-time 2 "http://127.0.0.1:$PORT/"; }

until_true 20 pid1 || die "systemd did not start"
until_true 30 sh -c "[ \"\$(nsenter -t $(pid1) -m -p systemctl is-active tollgate)\" = active ]" \
    || { systemctl_ status tollgate || true; die "tollgate.service did not become active"; }
[[ $(answer) == one ]] || die "active, but not serving"
PID_A=$(main_pid)
step "start: active, main PID $PID_A, serving"
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN/readyz") == 200 ]] \
    || die "/readyz is not 200 once active"

config two > "$WORK/tollgate.toml"
inside sh -c "cat > /etc/tollgate/tollgate.toml" < "$WORK/tollgate.toml"
systemctl_ reload tollgate
until_true 10 sh -c "[ \"\$(curl -s --max-time 2 http://127.0.0.1:$PORT/)\" = two ]" \
    || die "systemctl reload did not apply the edited config"
[[ $(main_pid) == "$PID_A" ]] || die "the main PID changed on reload"
step "reload: the new config serves, main PID unchanged"

# Requests all along the upgrade: none may fail.
(
    failed=0
    while [[ ! -e $WORK/stop ]]; do
        [[ $(answer) == two ]] || failed=$((failed + 1))
    done
    echo "$failed" > "$WORK/failed"
) &
LOAD=$!
systemctl_ kill -s USR2 --kill-whom=main tollgate
until_true 30 sh -c "p=\$(nsenter -t $(pid1) -m -p systemctl show -p MainPID --value tollgate); [ \"\$p\" != $PID_A ] && [ \"\$p\" != 0 ]" \
    || die "the main PID never changed after SIGUSR2"
PID_B=$(main_pid)
until_true 30 sh -c "! nsenter -t $(pid1) -m -p kill -0 $PID_A" \
    || die "the old process $PID_A did not exit"
touch "$WORK/stop"
wait "$LOAD"
[[ $(systemctl_ is-active tollgate) == active ]] || die "the unit is not active after the upgrade"
[[ $(answer) == two ]] || die "not serving after the upgrade"
[[ $(cat "$WORK/failed") == 0 ]] || die "$(cat "$WORK/failed") requests failed during the upgrade"
step "upgrade: active, main PID $PID_A -> $PID_B, the old process gone, no request failed"

systemctl_ stop tollgate &
STOP=$!
until_true 5 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$ADMIN/readyz)\" = 503 ]" \
    || die "/readyz did not turn 503 as the stop began"
[[ $(answer) == two ]] || die "not serving during drain_delay"
wait "$STOP" || die "systemctl stop failed"
state=$(systemctl_ is-active tollgate || true)
[[ $state == inactive ]] || die "after stop: $state"
answer >/dev/null && die "still serving after stop"
result=$(systemctl_ show -p Result --value tollgate)
[[ $result == success ]] || die "stopped with result $result (killed rather than stopped?)"
step "stop: /readyz 503 and still serving during drain_delay, then inactive, result success"
echo "PASS: systemd/tollgate.service under systemd $($SYSTEMD --version | head -1 | cut -d' ' -f2)"
