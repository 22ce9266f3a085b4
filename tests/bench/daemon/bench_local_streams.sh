#!/bin/bash
# What reading local guests' serial ports through libvirt streams would cost
# (issue 17, "one path for every host"): N idle guests on the embedded local
# host with their files written by QEMU (the default) against the same N
# with both ports as ptys read through streams (SHOAL_SERIAL_STREAMS=all),
# in the same run, one after the other on one state dir.
#
# Per mode: shoald started, N sleep guests created in one request and
# waited for until running, SETTLE s of quiet, then over WINDOW s: shoald's
# CPU (utime+stime) and every QEMU's, shoald's RSS and open descriptors at
# the end, and the ptys in use on the machine (/proc/sys/kernel/pty/nr).
# Prints one row per mode, per guest where it says so, and the ratios.
# BENCH_ORDER="streams files" runs them the other way round (RSS depends
# on what the process did before).
# usage: bench_local_streams.sh SHOALD IMAGES_DIR [N [WINDOW [SETTLE]]]
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
N=${3:-100}
WINDOW=${4:-10}
SETTLE=${5:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../e2e/lib.sh"
e2e_setup

HZ=$(getconf CLK_TCK)
ticks() { # utime+stime of the pids given
    for p in "$@"; do awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null; done |
        awk '{ s += $1 } END { print s + 0 }'
}
qemus() { pgrep -f "qemu-system.*$E2E_STATE" || true; }
running() {
    api GET "/v1/instances?limit=1000&selector=bench%3Dstreams"
    [ "$(printf '%s' "$BODY" | jq '[.items[] | select(.state == "running")] | length')" = "$N" ]
}

first=1
for mode in ${BENCH_ORDER:-files streams}; do
    if [ "$mode" = streams ]; then export SHOAL_SERIAL_STREAMS=all; else unset SHOAL_SERIAL_STREAMS; fi
    e2e_start_daemon "$SHOALD" --no-network --domain-type qemu --cpu-overcommit 1000 || exit 1
    if [ "$first" = 1 ]; then
        first=0
        e2e_push_images sleep
    fi
    pty0=$(cat /proc/sys/kernel/pty/nr)
    api POST /v1/instances -H 'Content-Type: application/json' \
        -d "{\"image\":\"sleep\",\"count\":$N,\"memory_mib\":32,\"args\":[\"3600\"],\"labels\":{\"bench\":\"streams\"}}"
    [ "$HTTP_CODE" = 201 ] || { echo "create: HTTP $HTTP_CODE $BODY"; exit 1; }
    wait_for 900 running || { echo "$mode: not all $N running"; exit 1; }
    sleep "$SETTLE"
    # shellcheck disable=SC2046
    q0=$(ticks $(qemus))
    s0=$(ticks "$E2E_PID")
    sleep "$WINDOW"
    # shellcheck disable=SC2046
    q1=$(ticks $(qemus))
    s1=$(ticks "$E2E_PID")
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$E2E_PID/status")
    fds=$(find "/proc/$E2E_PID/fd" -mindepth 1 | wc -l)
    ptys=$(($(cat /proc/sys/kernel/pty/nr) - pty0))
    awk -v m="$mode" -v n="$N" -v hz="$HZ" -v w="$WINDOW" -v s="$((s1 - s0))" -v q="$((q1 - q0))" \
        -v rss="$rss" -v fds="$fds" -v ptys="$ptys" 'BEGIN {
        printf "%-8s N=%d shoald cpu %.3f%% (%.4f%%/guest), qemu cpu %.3f%%/guest, shoald rss %d KiB (%.1f KiB/guest), fds %d, ptys +%d\n",
            m, n, 100 * s / hz / w, 100 * s / hz / w / n, 100 * q / hz / w / n, rss, rss / n, fds, ptys }' |
        tee -a "$E2E_STATE/rows"
    printf '%s %s %s %s %s\n' "$mode" "$((s1 - s0))" "$((q1 - q0))" "$rss" "$fds" >>"$E2E_STATE/raw"
    api DELETE "/v1/instances?selector=bench%3Dstreams&force=true"
    wait_for 300 out_is "" qemus || true
    e2e_stop_daemon
done
unset SHOAL_SERIAL_STREAMS
awk -v n="$N" -v hz="$HZ" -v w="$WINDOW" '{ s[$1] = $2; q[$1] = $3; r[$1] = $4; f[$1] = $5 } END {
    printf "streams - files, per guest: shoald rss %+.1f KiB, fds %+.2f, shoald cpu %+.4f%%, qemu cpu %+.4f%%\n",
        (r["streams"] - r["files"]) / n, (f["streams"] - f["files"]) / n,
        100 * (s["streams"] - s["files"]) / hz / w / n, 100 * (q["streams"] - q["files"]) / hz / w / n
    printf "ratio streams/files: shoald rss %.2fx, fds %.2fx\n", r["streams"] / r["files"], f["streams"] / f["files"]
}' "$E2E_STATE/raw"
e2e_finish
