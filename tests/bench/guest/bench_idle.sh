#!/bin/bash
# bench_idle.sh - what an idle guest costs the host (issue 13; label "bench").
#
# Boots N guests of the tickless kernel and N of the baseline at the same
# time, all running `sleep 100000` (halted on the APIC timer), waits for
# every ready record plus SETTLE seconds, then measures every QEMU over the
# same SECS window:
#   CPU       run time of all its threads (/proc/PID/task/*/schedstat, ns;
#             utime+stime from /proc/PID/stat, in clock ticks, is printed
#             as a cross-check)
#   wake-ups  voluntary + nonvoluntary context switches of all its threads
#             (/proc/PID/task/*/status): each one is a thread that slept and
#             was woken, or was preempted while running
# and prints per-guest means for both kernels, the ratio, and the threads
# the wake-ups came from.
#
# Baseline: by default the same image with shoal.tickless=0, which makes
# the kernel behave as before issue 13 (PIT channel 0 left periodic, sleeps
# sliced at 1 s) - the same binary in the same run, differing only in what
# the issue changed. BASELINE_IMAGE=path measures another image (e.g. a
# sleep.elf built from the commit before) as the baseline instead, without
# the switch.
#
# The QEMU shape is libvirt's for shoal's domain XML (daemon/domxml.c, see
# `virsh domxml-to-native qemu-argv`) minus what does not run guest code
# (sandbox, secrets, -S): -nodefaults, pc machine with usb=off, qboot,
# -m 32, qemu64, a QMP socket, -rtc base=utc, two file serial ports, pvpanic.
#
# Environment:
#   SHOAL_IMAGES   image dir (sleep.elf)
#   N              guests per kernel (default 4)
#   SECS           measurement window in seconds (default 10)
#   SETTLE         seconds between the last ready record and the window (2)
#   ACCEL          tcg (default) or kvm
#   EXTRA          extra QEMU options for every guest, e.g. "-machine hpet=off"
#   BASELINE_IMAGE see above
#   KERNELS        "tickless baseline" (default), or just one of them
# Exit 0 after printing; 1 if a guest did not come up; 77 if QEMU or the
# image is missing.
set -eu
: "${SHOAL_IMAGES:?SHOAL_IMAGES must point at the guest image directory}"
N=${N:-4}
SECS=${SECS:-10}
SETTLE=${SETTLE:-2}
ACCEL=${ACCEL:-tcg}
EXTRA=${EXTRA:-}
KERNELS=${KERNELS:-tickless baseline}
QBOOT=${QBOOT:-/usr/share/qemu/qboot.rom}
IMAGE=$SHOAL_IMAGES/sleep.elf
BASELINE_IMAGE=${BASELINE_IMAGE:-}

command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: no qemu-system-x86_64"; exit 77; }
[ -f "$IMAGE" ] || { echo "SKIP: no $IMAGE (build guest_image_sleep)"; exit 77; }
[ -f "$QBOOT" ] || { echo "SKIP: no $QBOOT"; exit 77; }

WORK=$(mktemp -d /tmp/shoal-idle-bench.XXXXXX)
cleanup() {
    local f
    for f in "$WORK"/*/qemu.pid; do
        [ -s "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# boot_guest DIR IMAGE KERNEL_KEYS: start one guest in the background.
boot_guest() {
    local d=$1 image=$2 keys=$3
    mkdir -p "$d"
    # shellcheck disable=SC2086  # EXTRA is a list of options
    qemu-system-x86_64 -name "idle,debug-threads=on" \
        -machine pc,usb=off -accel "$ACCEL" -cpu qemu64 -bios "$QBOOT" -m 32 \
        -smp 1 -display none -no-user-config -nodefaults \
        -qmp "unix:$d/qmp.sock,server=on,wait=off" -rtc base=utc -no-reboot \
        -kernel "$image" -append "$keys -- 100000" \
        -serial "file:$d/console.log" -serial "file:$d/status.log" \
        -device pvpanic -pidfile "$d/qemu.pid" -daemonize $EXTRA \
        >"$d/qemu.out" 2>&1
}

# snap PID: "cpu_ns ticks wakeups" summed over the process's threads.
snap() {
    local pid=$1 ns=0 sw=0 t a b
    for t in /proc/"$pid"/task/*; do
        read -r a _ <"$t/schedstat"
        ns=$((ns + a))
        b=$(awk '/^(non)?voluntary_ctxt_switches/ {s += $2} END {print s + 0}' "$t/status")
        sw=$((sw + b))
    done
    # utime and stime are fields 14 and 15; the comm field has no spaces.
    set -- $(cut -d' ' -f14,15 "/proc/$pid/stat")
    echo "$ns $(($1 + $2)) $sw"
}

# thread_switches PID: "name=switches" for each thread (for the breakdown).
thread_switches() {
    local t
    for t in /proc/"$1"/task/*; do
        printf '%s=%s\n' "$(tr ' ' '_' <"$t/comm")" \
            "$(awk '/^(non)?voluntary_ctxt_switches/ {s += $2} END {print s + 0}' "$t/status")"
    done
}

echo "idle bench: $N guests per kernel, ${SECS} s window, accel $ACCEL, QEMU $(qemu-system-x86_64 --version | head -n 1 | awk '{print $4}')${EXTRA:+, extra: $EXTRA}"
guests=""
for k in $KERNELS; do
    for i in $(seq "$N"); do
        case "$k" in
        tickless) boot_guest "$WORK/$k-$i" "$IMAGE" "" ;;
        baseline)
            if [ -n "$BASELINE_IMAGE" ]; then
                boot_guest "$WORK/$k-$i" "$BASELINE_IMAGE" ""
            else
                boot_guest "$WORK/$k-$i" "$IMAGE" "shoal.tickless=0"
            fi ;;
        *) echo "unknown kernel '$k' (want tickless or baseline)"; exit 1 ;;
        esac
        guests+="$k-$i "
    done
done
case " $KERNELS " in
*" baseline "*)
    if [ -n "$BASELINE_IMAGE" ]; then
        echo "baseline: $BASELINE_IMAGE"
    else
        echo "baseline: $IMAGE with shoal.tickless=0 (PIT channel 0 left periodic, 1 s slices)"
    fi ;;
esac

# Wait until every guest is halted in its sleep: the ready record is
# written just before main, which goes straight to sleep.
for _ in $(seq 300); do
    all=1
    for g in $guests; do
        grep -q '^shoal-status ready' "$WORK/$g/status.log" 2>/dev/null || all=0
    done
    [ "$all" = 1 ] && break
    sleep 0.1
done
for g in $guests; do
    grep -q '^shoal-status ready' "$WORK/$g/status.log" 2>/dev/null || {
        echo "FAIL: guest $g did not come up"; cat "$WORK/$g/qemu.out" "$WORK/$g/console.log" 2>/dev/null
        exit 1
    }
done
sleep "$SETTLE"

declare -A before after tb ta
for g in $guests; do
    pid=$(cat "$WORK/$g/qemu.pid")
    before[$g]=$(snap "$pid")
    tb[$g]=$(thread_switches "$pid")
done
t0=$(date +%s%N)
sleep "$SECS"
t1=$(date +%s%N)
for g in $guests; do
    pid=$(cat "$WORK/$g/qemu.pid")
    after[$g]=$(snap "$pid")
    ta[$g]=$(thread_switches "$pid")
done
wall_ns=$((t1 - t0))
for g in $guests; do
    grep -qE '^shoal-status (exit|crash)' "$WORK/$g/status.log" &&
        { echo "FAIL: guest $g exited during the window"; exit 1; }
done

declare -A cpu_pct wake_s
for k in $KERNELS; do
    sum_ns=0 sum_ticks=0 sum_sw=0 list=""
    for i in $(seq "$N"); do
        g=$k-$i
        read -r bn bt bs <<<"${before[$g]}"
        read -r an at as <<<"${after[$g]}"
        sum_ns=$((sum_ns + an - bn)); sum_ticks=$((sum_ticks + at - bt)); sum_sw=$((sum_sw + as - bs))
        list+=$(awk -v n=$((an - bn)) -v s=$((as - bs)) -v w=$wall_ns \
            'BEGIN {printf " %.4f%%/%.1f", 100 * n / w, s / (w / 1e9)}')
    done
    # Which threads woke: per thread name, summed over the kernel's guests.
    threads=$(for i in $(seq "$N"); do
            g=$k-$i
            join -t= <(sort <<<"${tb[$g]}") <(sort <<<"${ta[$g]}")
        done | awk -F= -v w=$wall_ns -v n="$N" \
            '{d[$1] += $3 - $2} END {for (t in d) printf " %s %.1f/s", t, d[t] / n / (w / 1e9)}')
    hz=$(getconf CLK_TCK)
    line=$(awk -v ns=$sum_ns -v tk=$sum_ticks -v sw=$sum_sw -v w=$wall_ns -v n="$N" -v hz="$hz" \
        'BEGIN {c = 100 * ns / n / w; printf "%.4f %.2f %.4f", c, sw / n / (w / 1e9), 100 * tk / hz / n / (w / 1e9)}')
    read -r c s st <<<"$line"
    cpu_pct[$k]=$c wake_s[$k]=$s
    echo "idle[$k]: per guest ${c}% of a CPU (utime+stime: ${st}%), ${s} wake-ups/s"
    echo "idle[$k]:   per guest (cpu/wake-ups per s):$list"
    echo "idle[$k]:   wake-ups/s per guest by thread:$threads"
    awk -v c="$c" -v k="$k" 'BEGIN {
        if (c > 0) printf "idle[%s]: 1000 such guests: %.1f%% of a CPU; guests per 10%% of a CPU: %d (target: 1000 under 10%%, %s)\n", k, 1000 * c, 10 / c, c <= 0.01 ? "met" : "missed";
        else printf "idle[%s]: no CPU time measured in the window (target met)\n", k }'
done
if [ -n "${cpu_pct[tickless]:-}" ] && [ -n "${cpu_pct[baseline]:-}" ]; then
    # A measured 0 gives no ratio; one wake-up in all N windows is the
    # resolution, so the ratio is at least baseline / (1 / (N * SECS)).
    awk -v bc="${cpu_pct[baseline]}" -v tc="${cpu_pct[tickless]}" \
        -v bs="${wake_s[baseline]}" -v ts="${wake_s[tickless]}" -v n="$N" -v w="$SECS" 'BEGIN {
        r1 = tc > 0 ? sprintf("%.0fx", bc / tc) : "- (tickless used no CPU in the window)";
        r2 = ts > 0 ? sprintf("%.0fx", bs / ts) : sprintf("> %.0fx (no wake-up in %d guest-seconds)", bs * n * w, n * w);
        printf "idle: baseline/tickless: CPU %s, wake-ups %s\n", r1, r2 }'
fi
