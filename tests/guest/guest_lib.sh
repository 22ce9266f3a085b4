# guest_lib.sh - shared helpers for the guest end-to-end tests (sourced).
#
# Every test boots an image from $SHOAL_IMAGES under raw QEMU in the VM
# shape of docs/guest-protocol.md, with a hard time bound, and judges the
# console and status-channel files. The work dir and any QEMU process are
# removed on exit, whatever the outcome.
#
#   ACCEL      kvm | tcg | auto (auto: kvm if a canary boot works, else tcg)
#   SHOAL_IMAGES  directory holding <app>.elf
#   exit 77    = skipped (CTest SKIP_RETURN_CODE), e.g. ACCEL=kvm but KVM
#                cannot run the canary

set -eu

: "${SHOAL_IMAGES:?SHOAL_IMAGES must point at the guest image directory}"
ACCEL=${ACCEL:-auto}
QEMU=${QEMU:-qemu-system-x86_64}
QBOOT=${QBOOT:-/usr/share/qemu/qboot.rom}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-20}

WORK=$(mktemp -d /tmp/shoal-guest-test.XXXXXX)
QEMU_PID=""    # the `timeout` wrapper; QEMU's own pid is in $WORK/qemu.pid
cleanup() {
    if [ -n "$QEMU_PID" ]; then
        kill -9 "$QEMU_PID" 2>/dev/null || true
    fi
    # Killing the wrapper does not stop its child: kill QEMU by its pid file.
    if [ -s "$WORK/qemu.pid" ]; then
        kill -9 "$(cat "$WORK/qemu.pid")" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "FAIL: $*" >&2
    if [ -f "$WORK/console.log" ]; then
        echo "---- console ----" >&2; head -c 4000 "$WORK/console.log" >&2 || true
    fi
    if [ -f "$WORK/status.log" ]; then
        echo "---- status ----" >&2; cat "$WORK/status.log" >&2 || true
    fi
    exit 1
}

# boot IMAGE CMDLINE [extra qemu args...]
# Runs QEMU in the background under `timeout`, waits for it, and leaves
# $WORK/console.log, $WORK/status.log, $RC (QEMU's exit status, 124 on
# timeout) and $WALL_MS.
boot() {
    local image=$1 cmdline=$2
    shift 2
    [ -f "$image" ] || fail "image $image not built"
    rm -f "$WORK/console.log" "$WORK/status.log" "$WORK/qemu.pid"
    local t0 t1
    t0=$(date +%s%N)
    timeout -s KILL "$BOOT_TIMEOUT" "$QEMU" -M pc -bios "$QBOOT" -kernel "$image" \
        -append "$cmdline" \
        -serial "file:$WORK/console.log" -serial "file:$WORK/status.log" \
        -display none -no-reboot -m 32 -accel "$ACCEL_USED" -pidfile "$WORK/qemu.pid" "$@" \
        >"$WORK/qemu.out" 2>&1 &
    QEMU_PID=$!
    set +e
    wait "$QEMU_PID"
    RC=$?
    set -e
    QEMU_PID=""
    t1=$(date +%s%N)
    WALL_MS=$(( (t1 - t0) / 1000000 ))
    [ "$RC" -ne 137 ] || fail "QEMU did not finish within ${BOOT_TIMEOUT}s"
    touch "$WORK/console.log" "$WORK/status.log"
}

# pick_accel: sets ACCEL_USED from ACCEL, running a canary for kvm/auto.
pick_accel() {
    case "$ACCEL" in
    tcg) ACCEL_USED=tcg ;;
    kvm|auto)
        ACCEL_USED=kvm
        local ok=0
        if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
            BOOT_TIMEOUT=10 boot "$SHOAL_IMAGES/minimal.elf" "" 2>/dev/null || true
            if [ "${RC:-1}" -eq 0 ] && grep -q "minimal: hello" "$WORK/console.log"; then
                ok=1
            fi
        fi
        if [ "$ok" -ne 1 ]; then
            if [ "$ACCEL" = kvm ]; then
                echo "SKIP: KVM cannot boot the canary guest"
                exit 77
            fi
            ACCEL_USED=tcg
        fi
        ;;
    *) fail "ACCEL must be kvm, tcg or auto, not '$ACCEL'" ;;
    esac
    echo "accelerator: $ACCEL_USED"
}

# expect_console TEXT: the console log contains TEXT as a fixed string.
expect_console() {
    grep -qF -- "$1" "$WORK/console.log" || fail "console lacks '$1'"
}

# outcome: prints the last exit/crash record of the status channel.
outcome() {
    grep -E '^shoal-status (exit|crash) ' "$WORK/status.log" | tail -n 1
}

# expect_exit N: last outcome record is "exit code=N".
expect_exit() {
    local got
    got=$(outcome)
    [ "$got" = "shoal-status exit code=$1" ] || fail "expected 'exit code=$1', status says '$got'"
}

# expect_ready: a ready record with a plausible boot_us came before the outcome.
expect_ready() {
    grep -qE '^shoal-status ready boot_us=[0-9]+$' "$WORK/status.log" || fail "no ready record"
}
