#!/bin/bash
# bench_mem.sh BUILD_DIR [N [SETTLE_S [KSM_S]]]
#
# Host memory per idle guest (issue 13, "Memory per guest"): N idle `sleep`
# guests (default 20, 32 MiB, TCG) per domain XML variant, all started
# through libvirt's embedded QEMU driver with the XML shoald renders
# (daemon/domxml.c) plus the variant's edits, measured together after
# SETTLE_S seconds (default 10) from every QEMU's /proc/PID/smaps: average
# PSS per guest, the ratio to the first variant, and a breakdown (guest RAM,
# TCG translation buffer, heap and other anonymous memory, file-backed
# pages and their relocated private part). With KSM_S > 0 (default 60) KSM
# is then turned on for KSM_S seconds and everything is measured again,
# with ksmd's CPU time; KSM settings are put back afterwards.
#
# BENCH_MEM_VARIANTS=shoald,net,... picks variants, the first being the
# ratio's baseline (tests/bench/daemon/bench_mem.c lists them and the default
# set; "all" runs every one). Needs root (KSM, a network namespace) and free
# memory for N x variants x ~15 MiB. Not run in CI (label bench). Variants
# with a NIC sit on a bridge inside a network namespace of the driver's own;
# no traffic leaves it.
set -eu
BUILD=$(cd "${1:?usage: bench_mem.sh BUILD_DIR [N [SETTLE_S [KSM_S]]]}" && pwd)
N=${2:-20}
SETTLE=${3:-10}
KSM_S=${4:-60}
KERNEL=$BUILD/guest-kernel/images/sleep.elf
DRV=$BUILD/tests/bench/daemon/bench_mem
for f in "$KERNEL" "$DRV"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
echo "host: $(uname -r), THP $(cat /sys/kernel/mm/transparent_hugepage/enabled)," \
     "$(qemu-system-x86_64 --version | head -n 1), libvirt $(pkg-config --modversion libvirt 2>/dev/null || echo '?')"
echo "other QEMU processes on this host at start: $(pgrep -c -x qemu-system-x86 || true)"
# The driver destroys its guests on exit and on SIGINT/SIGTERM; guests of the
# embedded driver outlive a driver killed harder, so none is left behind
# here either (their QEMU command lines name the driver's temp root).
trap 'pkill -f "qemu-system-x86_64 .*shoal-benchmem-" 2>/dev/null || true' EXIT
"$DRV" "$KERNEL" "$N" "$SETTLE" "$KSM_S"
