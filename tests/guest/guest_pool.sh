#!/bin/bash
# guest_pool.sh CASE - the warm pool hand-over (issue 15;
# docs/guest-protocol.md "Warm pool hand-over"): a guest booted with
# shoal.pool=1 and its COM1 on a unix socket (QEMU logging what the guest
# writes to the console file, as shoald's domains do) waits (pool-wait
# record), takes its configuration record from COM1, and runs the app as
# a cold start with the same line would.
#   hello   noise the guest must ignore, two headers it must refuse (error
#           replies, then it keeps waiting), then a record with quoted env
#           and args, written in pieces of 1 to 31 bytes with pauses (every
#           way the UART's FIFO can be caught): `ok`, hello prints exactly
#           them, ready has claim_us, exit 0; and the same record through a
#           cold start's fw_cfg gives the app the same output (the pool
#           side's lines as they went over the socket: pool_app).
#   large   a record of 8 KiB (the most the line takes): the same diff
#           against a cold start, the pool side from the console file (the
#           claim sends the go-ahead and hangs up, as shoald does: the
#           guest's 8 KiB line must be there once).
#   late    large, with the claim hanging up 2 s after the go-ahead
#           without reading: its reading side shut first, as shoald does,
#           the console file still holds the line once.
#   early   the record is written as soon as QEMU listens, long before the
#           guest is up: it is taken once the guest waits, `ok`, the app
#           runs with it, pool-wait comes before ready; the claim sends no
#           go-ahead (a host that predates it), and the app runs 20 ms
#           after the record all the same (claim_us).
#   bad     a record the command line parser refuses: the error reply, the
#           console message, exit 2, no ready record.
#   httpd   httpd gets its address from the record and answers on it
#           (QEMU user networking on a subnet of the test's choosing, port
#           forwarded from 127.0.0.1: it reaches the guest only at that
#           address).
# See guest_lib.sh for the environment (SHOAL_IMAGES, ACCEL).
set -eu
. "$(dirname "$0")/guest_lib.sh"

CLAIM="python3 $(dirname "$0")/pool_claim.py"
POOL_PID=""
stop_pool() {
    [ -z "$POOL_PID" ] || kill -9 "$POOL_PID" 2>/dev/null || true
    cleanup
}
trap stop_pool EXIT

# start_pool IMAGE [QEMU OPTIONS...]: boot IMAGE with shoal.pool=1, its
# COM1 on the socket $WORK/cfg.sock and logged to console.log, in the
# background.
start_pool() {
    local image=$1
    shift
    rm -f "$WORK/console.log" "$WORK/status.log" "$WORK/qemu.pid" "$WORK/cfg.sock"
    timeout -s KILL "$BOOT_TIMEOUT" "$QEMU" -M pc -bios "$QBOOT" -kernel "$image" \
        -append "shoal.pool=1" \
        -chardev "socket,id=cfg,path=$WORK/cfg.sock,server=on,wait=off,logfile=$WORK/console.log,logappend=on" \
        -serial chardev:cfg -serial "file:$WORK/status.log" \
        -display none -no-reboot -m 32 -accel "$ACCEL_USED" -pidfile "$WORK/qemu.pid" \
        "$@" >"$WORK/qemu.out" 2>&1 &
    POOL_PID=$!
}

# wait_pool: until QEMU exits; $RC is its status.
wait_pool() {
    set +e
    wait "$POOL_PID"
    RC=$?
    set -e
    POOL_PID=""
    [ "$RC" -ne 137 ] || fail "QEMU did not finish within ${BOOT_TIMEOUT}s"
}

REC="$WORK/record"

# pool_app: the app's lines as the guest wrote them after its reply, from
# the claim's copy of the socket (--hold): exact, where the console file
# QEMU logs while a client is connected may hold a byte twice (a byte whose
# send found the socket full is logged, then logged again when the UART
# sends it; docs/guest-protocol.md "Robustness")
pool_app() {
    grep -aE '^(argc|argv|env)' "$WORK/sock.out" >"$WORK/pool.app" || true
}

case_hello() {
    printf '%s' 'DB_PASSWORD="s3cr3t value" EMPTY= -- "two words" "say \"hi\" \\"' >"$REC"
    start_pool "$SHOAL_IMAGES/hello.elf"
    $CLAIM "$WORK/cfg.sock" "$WORK/status.log" "$REC" --noise --chunks --hold "$WORK/sock.out" >"$WORK/claim.out" ||
        { cat "$WORK/claim.out" >&2; fail "the claim failed"; }
    cat "$WORK/claim.out"
    grep -qx "reply: shoal-config ok" "$WORK/claim.out" || fail "no ok reply"
    wait_pool
    [ "$RC" -eq 0 ] || fail "QEMU exited with $RC"
    head -n 1 "$WORK/status.log" | grep -qE '^shoal-status pool-wait boot_us=[0-9]+$' ||
        fail "the first status record is not pool-wait"
    grep -qE '^shoal-status ready boot_us=[0-9]+ claim_us=[0-9]+$' "$WORK/status.log" ||
        fail "no ready record with claim_us"
    expect_exit 0
    pool_app
    cat "$WORK/pool.app"
    # The same configuration as a cold start gets it (shoald's shape:
    # kernel keys on the line, the rest in the fw_cfg record).
    boot "$SHOAL_IMAGES/hello.elf" "" -fw_cfg "name=opt/org.shoal/cmdline,file=$REC"
    expect_exit 0
    grep -E '^(argc|argv|env)' "$WORK/console.log" >"$WORK/cold.app"
    diff -u "$WORK/cold.app" "$WORK/pool.app" || fail "the app saw another configuration than a cold start's"
    grep -qxF 'argv[2]=<say "hi" \>' "$WORK/pool.app" || fail "quoting lost"
    echo "PASS pool hand-over: noise ignored, bad headers refused, the app sees a cold start's configuration"
}

# large_claim [CLAIM OPTIONS...]: the large case with those options to the
# claim; the console file must hold the app's lines once.
large_claim() {
    # 8179 bytes: with "shoal.pool=1" and a space, the 8192 of the line.
    python3 -c 'import sys; sys.stdout.write("BIG=" + "x" * 8150 + " -- tail " + "y" * 16)' >"$REC"
    start_pool "$SHOAL_IMAGES/hello.elf"
    $CLAIM "$WORK/cfg.sock" "$WORK/status.log" "$REC" "$@" >"$WORK/claim.out" ||
        { cat "$WORK/claim.out" >&2; fail "the claim failed"; }
    cat "$WORK/claim.out"
    grep -qx "reply: shoal-config ok" "$WORK/claim.out" || fail "no ok reply"
    wait_pool
    [ "$RC" -eq 0 ] || fail "QEMU exited with $RC"
    expect_exit 0
    # the console file, as shoald reads it: the claim sent the go-ahead
    # and hung up, and the guest printed only after it
    grep -E '^(argc|argv|env)' "$WORK/console.log" >"$WORK/pool.app"
    boot "$SHOAL_IMAGES/hello.elf" "" -fw_cfg "name=opt/org.shoal/cmdline,file=$REC"
    expect_exit 0
    grep -E '^(argc|argv|env)' "$WORK/console.log" >"$WORK/cold.app"
    if ! diff -q "$WORK/cold.app" "$WORK/pool.app" >/dev/null; then
        # which lines differ, each cut to its length and first 80 bytes
        # (fail prints only the last console's first 4000 bytes)
        for f in cold pool; do
            echo "---- $f.app ----" >&2
            awk '{ print length($0) ": " substr($0, 1, 80) }' "$WORK/$f.app" >&2
        done
        fail "the app saw another configuration than a cold start's"
    fi
    [ "$(grep -c "^env\[0\]=<BIG=x\{8150\}>\$" "$WORK/pool.app")" = 1 ] || fail "the 8 KiB variable did not arrive whole"
}

case_large() {
    large_claim
    echo "PASS an 8 KiB record: the app sees a cold start's configuration"
}

# late: the claim hangs up 2 s after the go-ahead, not reading (a host
# that lost its CPU between the two): it shut its reading side before the
# go-ahead, so QEMU's sends fail at once and the console file still holds
# the 8 KiB line once (with --no-shut, a byte of it twice).
case_late() {
    large_claim --late 2
    echo "PASS a hang-up 2 s after the go-ahead: the console file holds the app's output once"
}

case_early() {
    printf '%s' 'EARLY=1 -- before boot' >"$REC"
    start_pool "$SHOAL_IMAGES/hello.elf"
    $CLAIM "$WORK/cfg.sock" "$WORK/status.log" "$REC" --early --no-go >"$WORK/claim.out" ||
        { cat "$WORK/claim.out" >&2; fail "the claim failed"; }
    cat "$WORK/claim.out"
    grep -qx "reply: shoal-config ok" "$WORK/claim.out" || fail "no ok reply"
    wait_pool
    [ "$RC" -eq 0 ] || fail "QEMU exited with $RC"
    head -n 1 "$WORK/status.log" | grep -q '^shoal-status pool-wait' || fail "no pool-wait first"
    expect_console "argv[2]=<boot>"
    expect_console "env[0]=<EARLY=1>"
    expect_exit 0
    # no go-ahead from this host: the guest went on after its 20 ms
    claim_us=$(grep -o 'claim_us=[0-9]*' "$WORK/status.log" | cut -d= -f2)
    [ "${claim_us:-0}" -ge 20000 ] || fail "without a go-ahead the app ran after ${claim_us:-?} us, not 20 ms"
    echo "PASS a record written before the guest is up is taken when it waits; without a go-ahead the app runs after 20 ms (claim_us=$claim_us)"
}

case_bad() {
    printf '%s' 'GOOD=1 not-a-pair -- x' >"$REC"
    start_pool "$SHOAL_IMAGES/hello.elf"
    $CLAIM "$WORK/cfg.sock" "$WORK/status.log" "$REC" --no-ready >"$WORK/claim.out" ||
        { cat "$WORK/claim.out" >&2; fail "the claim failed"; }
    cat "$WORK/claim.out"
    grep -qxF "reply: shoal-config error bad command line: not KEY=VALUE (program arguments go after --): 'not-a-pair'" \
        "$WORK/claim.out" || fail "no error reply for a bad record"
    wait_pool
    expect_console "shoal: bad command line: not KEY=VALUE"
    expect_exit 2
    grep -q ready "$WORK/status.log" && fail "a ready record after a bad record"
    echo "PASS a bad record: error reply, exit 2"
}

case_httpd() {
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    printf '%s' 'shoal.ip=10.77.3.9/24 shoal.gw=10.77.3.2 -- 8080' >"$REC"
    start_pool "$SHOAL_IMAGES/httpd.elf" -device virtio-net-pci,netdev=n0 \
        -netdev "user,id=n0,net=10.77.3.0/24,hostfwd=tcp:127.0.0.1:$port-10.77.3.9:8080"
    $CLAIM "$WORK/cfg.sock" "$WORK/status.log" "$REC" >"$WORK/claim.out" ||
        { cat "$WORK/claim.out" >&2; fail "the claim failed"; }
    cat "$WORK/claim.out"
    for _ in $(seq 100); do
        grep -q "listening" "$WORK/console.log" && break
        sleep 0.1
    done
    expect_console "net: 10.77.3.9/24 mac 52:54:00:12:34:56 gw 10.77.3.2"
    local body
    body=$(curl -sS --max-time 10 "http://127.0.0.1:$port/healthz") || fail "httpd does not answer"
    [ "$body" = ok ] || fail "httpd answered '$body'"
    echo "PASS httpd answers on the address of its record"
}

pick_accel
case "${1:-}" in
hello|large|late|early|bad|httpd) "case_$1" ;;
*) echo "usage: $0 hello|large|late|early|bad|httpd" >&2; exit 2 ;;
esac
