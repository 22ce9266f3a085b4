#!/bin/bash
# bench_guest.sh WHAT - guest kernel benchmarks (label "bench"). Each prints
# its figure, a baseline measured in the same run, and the ratio.
#   boot_us   guest time PVH entry -> app main (ready record), TCG and KVM;
#             baseline: the 1 ms target
#   wall      whole-VM wall time (QEMU start to exit) of hello vs the bare
#             "minimal" PVH kernel, alternating runs, same QEMU shape, TCG
#             and KVM; target <= 1.2x
#   linux     QEMU start to ready-and-poweroff, hello vs Debian's cloud kernel
#             with a busybox initramfs whose /init prints a ready line, TCG;
#             target >= 20x faster
#   size      hello.elf bytes vs the 256 KiB target (and the minimal image)
# Environment: SHOAL_IMAGES (image dir), RUNS (repetitions, default 10).
# KVM figures are added when /dev/kvm boots the canary (minimal.elf).
set -eu
: "${SHOAL_IMAGES:?SHOAL_IMAGES must point at the guest image directory}"
RUNS=${RUNS:-10}
BENCH_CMDLINE='GREETING=hi -- world'   # a typical small command line
QBOOT=/usr/share/qemu/qboot.rom
WORK=$(mktemp -d /tmp/shoal-guest-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

qemu_cmd() {   # qemu_cmd ACCEL IMAGE CMDLINE MEM [extra...]
    local accel=$1 image=$2 cmdline=$3 mem=$4
    shift 4
    echo "qemu-system-x86_64 -M pc -bios $QBOOT -kernel $image -append '$cmdline'" \
         "-serial file:$WORK/console.log -serial file:$WORK/status.log" \
         "-display none -no-reboot -m $mem -accel $accel $*"
}

kvm_works() {
    [ -w /dev/kvm ] || return 1
    rm -f "$WORK/console.log"
    timeout 10 bash -c "$(qemu_cmd kvm "$SHOAL_IMAGES/minimal.elf" "" 32)" >/dev/null 2>&1 &&
        grep -q "minimal: hello" "$WORK/console.log"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

bench_boot_us() {
    local accels="tcg"
    kvm_works && accels="tcg kvm"
    for accel in $accels; do
        local vals=""
        for _ in $(seq "$RUNS"); do
            rm -f "$WORK/status.log"
            timeout 20 bash -c "$(qemu_cmd "$accel" "$SHOAL_IMAGES/hello.elf" "$BENCH_CMDLINE" 32)" >/dev/null 2>&1
            vals+="$(sed -n 's/^shoal-status ready boot_us=\([0-9]*\)$/\1/p' "$WORK/status.log") "
        done
        local med min
        med=$(echo $vals | tr ' ' '\n' | grep . | median)
        min=$(echo $vals | tr ' ' '\n' | grep . | sort -n | head -n 1)
        echo "boot_us[$accel]: median ${med} us, min ${min} us over $RUNS boots (all: $vals)"
        awk -v m="$med" -v a="$accel" 'BEGIN {printf "boot_us[%s]: %.2fx the 1000 us target (%s)\n", a, m/1000, m < 1000 ? "met" : "missed"}'
    done
}

# Wall time of one QEMU run in microseconds (start to exit).
wall_us() {
    local t0 t1
    t0=$(date +%s%N)
    timeout 30 bash -c "$1" >/dev/null 2>&1 || true
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000 ))
}

# Runs alternate (minimal, hello, minimal, ...) so that load changes on a
# shared host hit both alike; medians are compared. hyperfine runs one
# command's repetitions back to back, which a noisy host skews.
bench_wall() {
    local accels="tcg"
    kvm_works && accels="tcg kvm"
    for accel in $accels; do
        local cm ch m="" h=""
        cm=$(qemu_cmd "$accel" "$SHOAL_IMAGES/minimal.elf" "" 32)
        ch=$(qemu_cmd "$accel" "$SHOAL_IMAGES/hello.elf" "$BENCH_CMDLINE" 32)
        wall_us "$cm" >/dev/null; wall_us "$ch" >/dev/null        # warm the page cache
        for _ in $(seq "$RUNS"); do
            m+="$(wall_us "$cm") "
            h+="$(wall_us "$ch") "
        done
        grep -q "hello from hello" "$WORK/console.log" || { echo "hello did not run"; exit 1; }
        local mm hm
        mm=$(echo $m | tr ' ' '\n' | median)
        hm=$(echo $h | tr ' ' '\n' | median)
        echo "wall[$accel]: hello median $((hm / 1000)) ms, minimal median $((mm / 1000)) ms ($RUNS alternating runs each)"
        awk -v h="$hm" -v m="$mm" -v a="$accel" 'BEGIN {printf "wall[%s]: hello/minimal = %.3fx (target <= 1.2x: %s)\n", a, h/m, h/m <= 1.2 ? "met" : "missed"}'
    done
}

bench_linux() {
    local vmlinuz
    vmlinuz=$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1)
    [ -n "$vmlinuz" ] || { echo "SKIP: no /boot/vmlinuz-*-cloud-amd64"; exit 77; }
    # initramfs: busybox-static, /init prints the kernel's uptime and powers off.
    mkdir -p "$WORK/ir/bin" "$WORK/ir/proc"
    cp /bin/busybox "$WORK/ir/bin/"
    cat > "$WORK/ir/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
read up idle < /proc/uptime
echo "linux-ready uptime=$up"
/bin/busybox poweroff -f
INIT
    chmod +x "$WORK/ir/init"
    (cd "$WORK/ir" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$WORK/initrd.gz"
    local linux_cmd shoal_cmd n=${LINUX_RUNS:-3}
    linux_cmd="qemu-system-x86_64 -M pc -bios $QBOOT -kernel $vmlinuz -initrd $WORK/initrd.gz"
    linux_cmd+=" -append 'console=ttyS0 quiet panic=-1' -serial file:$WORK/linux.log -serial null"
    linux_cmd+=" -display none -no-reboot -m 128 -accel tcg"
    shoal_cmd=$(qemu_cmd tcg "$SHOAL_IMAGES/hello.elf" "$BENCH_CMDLINE" 128)
    hyperfine -N --runs "$n" --export-json "$WORK/h.json" \
        -n linux "$linux_cmd" -n shoal "$shoal_cmd" >"$WORK/h.txt"
    grep -q '^linux-ready' "$WORK/linux.log" || { echo "linux guest never got ready"; exit 1; }
    local up boot_us
    up=$(sed -n 's/^linux-ready uptime=\([0-9.]*\).*/\1/p' "$WORK/linux.log" | tail -n 1)
    boot_us=$(sed -n 's/^shoal-status ready boot_us=\([0-9]*\)$/\1/p' "$WORK/status.log")
    python3 - "$WORK/h.json" "$up" "$boot_us" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
l, s = r["linux"]["mean"], r["shoal"]["mean"]
up, bus = float(sys.argv[2]), int(sys.argv[3])
print(f"linux[tcg]: QEMU start to ready+poweroff: shoal hello {s*1000:.0f} ms, Linux+busybox {l*1000:.0f} ms")
print(f"linux[tcg]: shoal is {l/s:.1f}x faster (target >= 20x: {'met' if l/s >= 20 else 'missed'})")
print(f"linux[tcg]: guest time to ready: shoal {bus} us, Linux {up*1000:.0f} ms (kernel uptime at /init) = {up*1e6/bus:.0f}x")
PY
}

bench_size() {
    local h m
    h=$(stat -c %s "$SHOAL_IMAGES/hello.elf")
    m=$(stat -c %s "$SHOAL_IMAGES/minimal.elf")
    echo "size: hello.elf $h bytes ($((h / 1024)) KiB), minimal.elf $m bytes"
    awk -v h="$h" 'BEGIN {printf "size: hello.elf is %.3fx the 256 KiB target (%s)\n", h/262144, h < 262144 ? "met" : "missed"}'
}

case "${1:-}" in
boot_us|wall|linux|size) "bench_$1" ;;
*) echo "usage: $0 boot_us|wall|linux|size" >&2; exit 2 ;;
esac
