#!/bin/bash
# guest_idle.sh CASE - an idle guest costs the host nothing (issue 13).
#   wakeups      boots `sleep 100000` twice at once: the kernel as built
#                and with shoal.tickless=0 (PIT channel 0 left periodic,
#                1 s slices: the kernel before issue 13), waits until both
#                are halted, and counts QEMU's context switches (all
#                threads, voluntary + nonvoluntary) over WINDOW seconds.
#                The tickless guest must stay under MAX_TICKLESS per second
#                (measured: 0; one 60 s safety slice costs ~6 switches), the
#                other over MIN_LEGACY (measured: ~39; proves the count sees
#                a periodic timer, or the first check would prove nothing).
#                Wake-ups are counted, not CPU time: a slow or loaded host
#                delays wake-ups but does not add any. A third guest, httpd
#                listening on a virtio-net NIC with no peer (no frames
#                arrive), must stay under the same bound: the net stack
#                arms nothing periodic while idle either.
#   pool         a pool guest waiting for its configuration record (issue 15,
#                docs/guest-protocol.md "Warm pool hand-over") must cost no
#                more wake-ups than an idle running guest: a waiting
#                `sleep` pool guest, the same with shoal.tickless=0 (must
#                be > MIN_LEGACY: the count sees a pool guest that ticks)
#                and a running `sleep 100000`, counted in the same window;
#                then the power button stops the waiting guest (exit 143).
#   powerbutton  `sleep 100000` halted with nothing armed but the 60 s
#                safety slice; QMP system_powerdown (what libvirt's shutdown
#                does) must stop it through the SCI: exit code 143, the
#                console line, well within the slice (STOP_MAX_MS).
# Runs under TCG whatever ACCEL says: KVM's in-kernel PIT would tick in the
# host kernel, where QEMU's counters cannot see it.
# The QEMU shape is libvirt's for shoal's domains (see bench_idle.sh).
set -eu
. "$(dirname "$0")/guest_lib.sh"

WINDOW=${WINDOW:-4}
MAX_TICKLESS=${MAX_TICKLESS:-5}
MIN_LEGACY=${MIN_LEGACY:-15}
STOP_MAX_MS=${STOP_MAX_MS:-10000}
PIDS=""
stop_all() {    # SIGTERM to each QEMU (its `timeout` wrapper then exits too)
    local f
    for f in "$WORK"/*/qemu.pid; do
        [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    cleanup
}
trap stop_all EXIT

# start NAME KEYS [APP ARGS [QEMU OPTIONS...]]: boot APP.elf (default
# `sleep 100000`) in the background into $WORK/NAME. KEYS with shoal.pool=1:
# a pool guest (no arguments; its COM1 is the socket $WORK/NAME/cfg.sock).
start() {
    local d=$WORK/$1 keys=$2 app=${3:-sleep} args=${4:-100000}
    shift 2; shift $(( $# < 2 ? $# : 2 ))
    mkdir -p "$d"
    [ -f "$SHOAL_IMAGES/$app.elf" ] || fail "image $app.elf not built"
    local append="$keys -- $args" com1="file:$d/console.log"
    case " $keys " in
    *" shoal.pool=1 "*)
        append=$keys
        com1="chardev:cfg"
        set -- "$@" -chardev "socket,id=cfg,path=$d/cfg.sock,server=on,wait=off,logfile=$d/console.log,logappend=on" ;;
    esac
    timeout -s KILL 60 "$QEMU" -machine pc,usb=off -accel tcg -cpu qemu64 \
        -bios "$QBOOT" -m 32 -display none -no-user-config -nodefaults \
        -qmp "unix:$d/qmp.sock,server=on,wait=off" -rtc base=utc -no-reboot \
        -kernel "$SHOAL_IMAGES/$app.elf" -append "$append" \
        -serial "$com1" -serial "file:$d/status.log" \
        -device pvpanic -pidfile "$d/qemu.pid" "$@" >"$d/qemu.out" 2>&1 &
    PIDS+="$! "
}

# wait_ready NAME [RECORD]: until the ready record (main sleeps right
# after it), or another record (pool guests: pool-wait).
wait_ready() {
    local d=$WORK/$1 rec=${2:-ready}
    for _ in $(seq 200); do
        grep -q "^shoal-status $rec" "$d/status.log" 2>/dev/null && [ -s "$d/qemu.pid" ] && return 0
        sleep 0.1
    done
    cat "$d/qemu.out" "$d/console.log" >&2 2>/dev/null || true
    fail "guest $1 did not come up"
}

# switches NAME: context switches of all of QEMU's threads so far.
switches() {
    local pid
    pid=$(cat "$WORK/$1/qemu.pid")
    cat /proc/"$pid"/task/*/status | awk '/^(non)?voluntary_ctxt_switches/ {s += $2} END {print s + 0}'
}

# rates NAME...: QEMU wake-ups per second of each guest over the same
# WINDOW seconds, one line per guest in the order given.
rates() {
    local n i=0 a=() b=()
    for n in "$@"; do a+=("$(switches "$n")"); done
    sleep "$WINDOW"
    for n in "$@"; do b+=("$(switches "$n")"); done
    for n in "$@"; do
        echo $(( (b[i] - a[i]) / WINDOW ))
        i=$((i + 1))
    done
}

# powerdown NAME: press the power button of guest NAME and wait up to
# STOP_MAX_MS (+1 s) for its QEMU to exit; its logs are then in $WORK.
powerdown() {
    local d=$WORK/$1 pid
    pid=$(cat "$d/qemu.pid")
    qmp_powerdown "$d/qmp.sock" || fail "QMP system_powerdown failed"
    for _ in $(seq $(( STOP_MAX_MS / 10 + 100 ))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
    done
    kill -0 "$pid" 2>/dev/null && fail "guest $1 did not stop within $(( STOP_MAX_MS / 1000 + 1 )) s of the power button"
    cp "$d/console.log" "$d/status.log" "$WORK/"
}

case_wakeups() {
    start tickless ""
    start legacy "shoal.tickless=0"
    start httpd "shoal.ip=10.0.2.15/24" httpd "80 100" -device virtio-net-pci
    wait_ready tickless
    wait_ready legacy
    wait_ready httpd
    for _ in $(seq 100); do
        grep -q "listening" "$WORK/httpd/console.log" && break
        sleep 0.1
    done
    grep -q "listening" "$WORK/httpd/console.log" || fail "httpd did not start listening"
    sleep 1
    local t l h
    { read -r t; read -r l; read -r h; } < <(rates tickless legacy httpd)
    echo "QEMU wake-ups/s of an idle guest: sleep $t, httpd $h (bound < $MAX_TICKLESS), sleep with shoal.tickless=0 $l (must be > $MIN_LEGACY)"
    [ "$l" -gt "$MIN_LEGACY" ] ||
        fail "the count does not see the periodic PIT of shoal.tickless=0 ($l/s): this test cannot detect a regression any more"
    [ "$t" -lt "$MAX_TICKLESS" ] ||
        fail "an idle guest wakes QEMU $t times a second: something periodic runs again (PIT channel 0? see docs/guest-kernel.md)"
    [ "$h" -lt "$MAX_TICKLESS" ] ||
        fail "an idle httpd guest wakes QEMU $h times a second: the net stack (or the kernel) wakes periodically"
    echo "PASS idle wake-ups"
}

qmp_powerdown() {   # qmp_powerdown SOCKET
    python3 - "$1" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()                                  # greeting
for cmd in ("qmp_capabilities", "system_powerdown"):
    f.write(json.dumps({"execute": cmd}) + "\n"); f.flush()
    while True:                               # skip events up to the reply
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            break
    if "error" in r:
        sys.exit("QMP %s: %s" % (cmd, r["error"]))
EOF
}

case_pool() {
    start pool "shoal.pool=1"
    start poollegacy "shoal.pool=1 shoal.tickless=0"
    start running ""
    wait_ready pool pool-wait
    wait_ready poollegacy pool-wait
    wait_ready running
    sleep 1
    local p l r
    { read -r p; read -r l; read -r r; } < <(rates pool poollegacy running)
    echo "QEMU wake-ups/s: pool guest waiting $p, idle running guest $r (bound: < $MAX_TICKLESS and <= running + 1), waiting with shoal.tickless=0 $l (must be > $MIN_LEGACY)"
    [ "$l" -gt "$MIN_LEGACY" ] ||
        fail "the count does not see the periodic PIT of a pool guest with shoal.tickless=0 ($l/s): this test cannot detect a regression any more"
    [ "$p" -lt "$MAX_TICKLESS" ] && [ "$p" -le $(( r + 1 )) ] ||
        fail "a waiting pool guest wakes QEMU $p times a second (an idle running one: $r): the wait polls or ticks"
    powerdown pool
    expect_exit 143
    echo "PASS a waiting pool guest costs no more wake-ups than a running one; the power button stops it"
}

case_powerbutton() {
    start idle ""
    wait_ready idle
    sleep 1                                   # halted, nothing but the slice armed
    local t0 t1
    t0=$(date +%s%N)
    powerdown idle
    t1=$(date +%s%N)
    local ms=$(( (t1 - t0) / 1000000 ))
    expect_console "shoal: ACPI power button: stopping"
    expect_exit 143
    echo "power button to QEMU exit: $ms ms (bound $STOP_MAX_MS ms; the safety slice is 60 s)"
    [ "$ms" -lt "$STOP_MAX_MS" ] || fail "stop took $ms ms: the SCI did not wake the guest"
    echo "PASS power button stops an idle guest"
}

case "${1:-}" in
wakeups|powerbutton|pool) "case_$1" ;;
*) echo "usage: $0 wakeups|powerbutton|pool" >&2; exit 2 ;;
esac
