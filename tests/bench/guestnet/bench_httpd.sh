#!/bin/bash
# bench_httpd.sh IMAGES_DIR HTTPD_SRC
#
# The reference httpd (guest-kernel/apps/httpd.c) in a shoal guest against
# the same source built for Linux and run as the only process of a minimal
# Linux guest (Debian's cloud kernel + a busybox initramfs that loads the
# virtio-net modules). Same QEMU shape (pc + qboot + virtio-net on a tap),
# same accelerator, same bridge, same wrk, in one run. Everything happens in
# a network namespace created and removed here. The shoal guest runs twice,
# on the driver's default (modern virtio interface) and with
# shoal.virtio=legacy, to show what the interface costs, and once more, idle
# only, on a NIC without MSI-X (polled). Before the load,
# each guest sits idle for IDLE_S seconds and the host CPU its QEMU process
# used meanwhile is reported: what an idle guest costs a dense host.
#   env: ACCEL (default tcg: the daemon's choice on kvm-pvm hosts),
#        WRK_ARGS (default "-t2 -c32 -d10s"), BODY (default 64 bytes)
set -eu
IMAGES=$(cd "${1:?usage: bench_httpd.sh IMAGES_DIR HTTPD_SRC}" && pwd)
SRC=${2:?usage: bench_httpd.sh IMAGES_DIR HTTPD_SRC}
ACCEL=${ACCEL:-tcg}
WRK=${WRK_ARGS:-"-t2 -c32 -d10s"}
BODY=${BODY:-64}
IDLE_S=${IDLE_S:-10}
KVER=$(ls /lib/modules | grep cloud-amd64 | sort -V | tail -1)
KERNEL=/boot/vmlinuz-$KVER
[ -r "$KERNEL" ] || { echo "no Debian cloud kernel ($KERNEL)"; exit 1; }

NS=shoal-bench-$$
TMP=$(mktemp -d /tmp/shoal-bench-httpd.XXXXXX)
QPID=""
cleanup() {
    set +e
    [ -n "$QPID" ] && kill "$QPID" 2>/dev/null && wait "$QPID" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add br0 type bridge
ip -n "$NS" addr add 10.77.0.1/24 dev br0
ip -n "$NS" link set br0 up
ip -n "$NS" tuntap add tap0 mode tap
ip -n "$NS" link set tap0 master br0
ip -n "$NS" link set tap0 up

# The Linux guest: static httpd + busybox + virtio-net modules.
R=$TMP/initramfs
mkdir -p "$R/bin" "$R/proc" "$R/sys" "$R/dev" "$R/lib/modules"
gcc -O2 -static -o "$R/bin/httpd" "$SRC"
cp /bin/busybox "$R/bin/busybox"
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci \
         failover net_failover virtio_net; do
    f=$(find "/lib/modules/$KVER" -name "$m.ko*" | head -1)
    case "$f" in
    *.xz) xz -dc "$f" >"$R/lib/modules/$m.ko" ;;
    *.zst) zstd -qdc "$f" >"$R/lib/modules/$m.ko" ;;
    *) cp "$f" "$R/lib/modules/$m.ko" ;;
    esac
done
cat >"$R/init" <<INIT
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net; do
    /bin/busybox insmod /lib/modules/\$m.ko
done
/bin/busybox ip addr add 10.77.0.2/24 dev eth0
/bin/busybox ip link set eth0 up
echo "linux guest ready"
exec /bin/httpd 80 $BODY
INIT
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$TMP/initrd.gz")

boot() { # kernel initrd append [device options]
    local kernel=$1 initrd=$2 append=$3 devopt=${4:-}
    rm -f "$TMP/console.log"
    set -- -M pc -bios /usr/share/qemu/qboot.rom -accel "$ACCEL" -m 256 -smp 1 \
        -kernel "$kernel" -append "$append" \
        -netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
        -device "virtio-net-pci,netdev=n0,mac=5a:5c:00:00:00:02,romfile=$devopt" \
        -serial "file:$TMP/console.log" -serial null -display none -no-reboot
    [ -n "$initrd" ] && set -- "$@" -initrd "$initrd"
    ip netns exec "$NS" qemu-system-x86_64 "$@" &
    QPID=$!
    for _ in $(seq 1 "${BOOT_TRIES:-300}"); do
        ip netns exec "$NS" curl -sf -m 1 -o /dev/null http://10.77.0.2/healthz && return 0
        kill -0 "$QPID" 2>/dev/null || break
        sleep 0.2
    done
    echo "guest did not answer; console:"; cat "$TMP/console.log"; exit 1
}

stop() {
    kill "$QPID" 2>/dev/null; wait "$QPID" 2>/dev/null || true; QPID=""
    ip -n "$NS" neigh flush dev br0 2>/dev/null || true
}

idle_cpu() { # -> percent of one host CPU used by the idle guest's QEMU
    sleep 2                                   # let the boot settle
    local t0 t1
    t0=$(awk '{print $14 + $15}' "/proc/$QPID/stat")
    sleep "$IDLE_S"
    t1=$(awk '{print $14 + $15}' "/proc/$QPID/stat")
    echo "scale=2; ($t1 - $t0) * 100 / $(getconf CLK_TCK) / $IDLE_S" | bc
}

measure() { # -> "req/s p99"
    ip netns exec "$NS" wrk $WRK --latency http://10.77.0.2/ >"$TMP/wrk.txt"
    rps=$(sed -n 's/^Requests\/sec: *//p' "$TMP/wrk.txt")
    p99=$(awk '$1=="99%"{print $2}' "$TMP/wrk.txt")
    echo "$rps $p99"
}

boot "$IMAGES/httpd.elf" "" "shoal.ip=10.77.0.2/24 shoal.gw=10.77.0.1 shoal.quiet=1 -- 80 $BODY"
s_idle=$(idle_cpu)
read -r s_rps s_p99 <<<"$(measure)"
stop
boot "$IMAGES/httpd.elf" "" "shoal.ip=10.77.0.2/24 shoal.gw=10.77.0.1 shoal.quiet=1 shoal.virtio=legacy -- 80 $BODY"
g_idle=$(idle_cpu)
read -r g_rps g_p99 <<<"$(measure)"
stop
# The same guest on a NIC without MSI-X (vectors=0): polled, idle cost only.
boot "$IMAGES/httpd.elf" "" "shoal.ip=10.77.0.2/24 shoal.gw=10.77.0.1 shoal.quiet=1 -- 80 $BODY" ",vectors=0"
p_idle=$(idle_cpu)
stop
boot "$KERNEL" "$TMP/initrd.gz" "console=ttyS0 quiet panic=-1"
l_idle=$(idle_cpu)
read -r l_rps l_p99 <<<"$(measure)"
stop

echo "httpd, GET / ($BODY-byte body), wrk $WRK, accel $ACCEL, pc + qboot + virtio-net on a tap"
printf '  shoal guest : %10.1f req/s   p99 %s   (modern virtio interface)\n' "$s_rps" "$s_p99"
printf '  shoal guest : %10.1f req/s   p99 %s   (legacy interface, shoal.virtio=legacy)\n' "$g_rps" "$g_p99"
printf '  Linux guest : %10.1f req/s   p99 %s   (Debian %s + busybox)\n' "$l_rps" "$l_p99" "$KVER"
printf '  ratio       : %.2fx requests/s vs Linux (target >= 1.5x)\n' "$(echo "$s_rps / $l_rps" | bc -l)"
printf '  modern/legacy: %.2fx requests/s\n' "$(echo "$s_rps / $g_rps" | bc -l)"
echo "idle host CPU per guest (QEMU utime+stime over ${IDLE_S} s, no traffic)"
printf '  shoal guest : %6.2f %%   (modern, receive interrupt)\n' "$s_idle"
printf '  shoal guest : %6.2f %%   (legacy, receive interrupt)\n' "$g_idle"
printf '  shoal guest : %6.2f %%   (no MSI-X on the NIC: polled every 500 us)\n' "$p_idle"
printf '  Linux guest : %6.2f %%\n' "$l_idle"
