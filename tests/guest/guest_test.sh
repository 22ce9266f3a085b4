#!/bin/bash
# guest_test.sh CASE - one self-judging boot of a reference guest image.
# Cases: hello exitcode crash args badcmdline sleep libc. See guest_lib.sh for
# the environment (SHOAL_IMAGES, ACCEL).
set -eu
. "$(dirname "$0")/guest_lib.sh"

case_hello() {
    boot "$SHOAL_IMAGES/hello.elf" 'GREETING=hi -- world'
    [ "$RC" -eq 0 ] || fail "QEMU exited with $RC"
    expect_console "hello from hello"
    expect_console "argc=2"
    expect_console "argv[0]=<hello>"
    expect_console "argv[1]=<world>"
    expect_console "env[0]=<GREETING=hi>"
    expect_ready
    expect_exit 0
}

case_exitcode() {
    for code in 7 0 255; do
        boot "$SHOAL_IMAGES/exitcode.elf" "-- $code"
        [ "$RC" -eq 0 ] || fail "QEMU exited with $RC for code $code"
        expect_console "exitcode: exiting with $code"
        expect_exit "$code"
    done
}

case_crash() {
    # pvpanic makes QEMU exit (status 1) instead of idling in the halted guest.
    boot "$SHOAL_IMAGES/crash.elf" "" -device pvpanic -action panic=exit-failure
    [ "$RC" -ne 0 ] || fail "QEMU exited 0 after a crash: pvpanic not signalled"
    expect_console "shoal: CPU exception 14 (#PF page fault) error=0x2 [write, not present, kernel]"
    expect_console "cr2=0x00000dead0000000"
    expect_console "stack trace"
    grep -qE '^    #0 0x[0-9a-f]{16} crash_now\+0x[0-9a-f]+$' "$WORK/console.log" || fail "no frame #0 in crash_now"
    grep -qE '^    #1 0x[0-9a-f]{16} crash_level2\+0x[0-9a-f]+$' "$WORK/console.log" || fail "no frame #1"
    grep -qE '^    #[0-9]+ 0x[0-9a-f]{16} main\+0x[0-9a-f]+$' "$WORK/console.log" || fail "trace does not reach main"
    local rec
    rec=$(outcome)
    [[ "$rec" =~ ^shoal-status\ crash\ vector=14\ error=0x2\ rip=0x[0-9a-f]+\ cr2=0xdead0000000$ ]] ||
        fail "bad crash record '$rec'"
    # The trace's frames resolve to the app's functions in the debug image.
    if command -v addr2line >/dev/null; then
        local frames
        frames=$(grep -oE '^    #[0-9]+ 0x[0-9a-f]+' "$WORK/console.log" | awk '{print $2}')
        # shellcheck disable=SC2086
        addr2line -f -e "$SHOAL_IMAGES/debug/crash.elf" $frames > "$WORK/trace.txt"
        grep -q '^crash_now$' "$WORK/trace.txt" || fail "frame #0 is not crash_now: $(cat "$WORK/trace.txt")"
        grep -q '^main$' "$WORK/trace.txt" || fail "trace does not reach main"
    else
        fail "addr2line (binutils) is needed to resolve the trace"
    fi

    # A stack overflow hits the guard page and is still reported (IST stack).
    boot "$SHOAL_IMAGES/crash.elf" "-- stack" -device pvpanic -action panic=exit-failure
    [ "$RC" -ne 0 ] || fail "QEMU exited 0 after a stack overflow"
    expect_console "[stack overflow: 64 KiB stack exhausted]"
    [[ "$(outcome)" =~ ^shoal-status\ crash\ vector=14\  ]] || fail "bad crash record '$(outcome)'"

    # Other vectors: invalid opcode.
    boot "$SHOAL_IMAGES/crash.elf" "-- ud" -device pvpanic -action panic=exit-failure
    expect_console "shoal: CPU exception 6 (#UD invalid opcode)"
    [[ "$(outcome)" =~ ^shoal-status\ crash\ vector=6\ error=0x0\ rip=0x[0-9a-f]+\ cr2=0x ]] ||
        fail "bad crash record '$(outcome)'"
}

case_args() {
    local long
    long=$(printf 'x%.0s' $(seq 1 2048))
    local cmdline="A=1 \"B=two words\" C= D=\"quote\\\"inside\" E=back\\\\slash shoal.ip=10.1.2.3/24 "
    cmdline+="-- \"\" x\\ y \"say \\\"hi\\\"\" -- $long end"
    boot "$SHOAL_IMAGES/hello.elf" "$cmdline"
    [ "$RC" -eq 0 ] || fail "QEMU exited with $RC"
    expect_exit 0
    expect_console "argc=7"
    expect_console "env[0]=<A=1>"
    expect_console "env[1]=<B=two words>"
    expect_console "env[2]=<C=>"
    expect_console "env[3]=<D=quote\"inside>"
    expect_console "env[4]=<E=back\\slash>"
    ! grep -q 'env\[5\]' "$WORK/console.log" || fail "extra environment entry (shoal.* leaked?)"
    ! grep -q 'shoal.ip' "$WORK/console.log" || fail "shoal.ip reached the app"
    expect_console "argv[1]=<>"
    expect_console "argv[2]=<x y>"
    expect_console "argv[3]=<say \"hi\">"
    expect_console "argv[4]=<-->"
    expect_console "argv[5]=<$long>"
    expect_console "argv[6]=<end>"
}

case_badcmdline() {
    boot "$SHOAL_IMAGES/hello.elf" 'A=1 -- "unterminated'
    [ "$RC" -eq 0 ] || fail "QEMU exited with $RC"
    expect_console "shoal: bad command line: unterminated quote in '\"unterminated'"
    expect_exit 2
    ! grep -q '^shoal-status ready' "$WORK/status.log" || fail "ready record despite bad command line"

    boot "$SHOAL_IMAGES/hello.elf" 'A=1 oops -- x'
    [ "$RC" -eq 0 ] || fail "QEMU exited with $RC"
    expect_console "shoal: bad command line: not KEY=VALUE (program arguments go after --): 'oops'"
    expect_exit 2

    boot "$SHOAL_IMAGES/hello.elf" '1A=x'
    expect_console "not KEY=VALUE"
    expect_exit 2

    local huge
    huge=$(printf 'y%.0s' $(seq 1 9000))
    boot "$SHOAL_IMAGES/hello.elf" "-- $huge"
    expect_console "shoal: bad command line: longer than 8192 bytes"
    expect_exit 2
}

case_sleep() {
    boot "$SHOAL_IMAGES/sleep.elf" "-- 1"
    [ "$RC" -eq 0 ] || fail "QEMU exited with $RC"
    expect_exit 0
    expect_console "sleep: slept 1 s"
    [ "$WALL_MS" -ge 1000 ] || fail "sleep 1 took only ${WALL_MS} ms of wall time"
    local ms
    ms=$(sed -n 's/.*(\([0-9]*\) ms by the monotonic clock).*/\1/p' "$WORK/console.log")
    [ -n "$ms" ] && [ "$ms" -ge 1000 ] && [ "$ms" -lt 3000 ] || fail "monotonic clock says '$ms' ms"
    echo "wall ${WALL_MS} ms, guest ${ms} ms"
}

case_libc() {
    # The guest judges itself (guest-kernel/tests/libc_test.c).
    boot "$SHOAL_IMAGES/libctest.elf" 'LIBC_TEST="yes please" shoal.ip=10.0.0.2/24 -- "arg one"'
    [ "$RC" -eq 0 ] || fail "QEMU exited with $RC"
    expect_console "failed: PASS"
    expect_console "libc_test: atexit handler ran"
    expect_exit 0
}

[ $# -eq 1 ] || { echo "usage: $0 CASE" >&2; exit 2; }
declare -F "case_$1" >/dev/null || { echo "unknown case '$1'" >&2; exit 2; }
pick_accel
"case_$1"
echo "PASS: $1 ($ACCEL_USED)"
