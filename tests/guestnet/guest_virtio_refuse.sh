#!/bin/bash
# guest_virtio_refuse.sh IMAGE [ACCEL] - the virtio-net driver refuses what
# it cannot do with a clear console message and the boot-error exit code
# (2 on the status channel), instead of hanging or crashing:
#   shoal.virtio=legacy on a modern-only device (1AF4:1041)
#   shoal.virtio=modern on a transitional device with disable-modern=on
#   shoal.virtio=bogus (bad value)
# The NIC is on QEMU's user-mode network with restrict=on and no forward:
# nothing leaves QEMU. Exit 0 pass, 1 fail. No usable /dev/kvm: TCG.
set -u
IMAGE=${1:-${SHOAL_IMAGES:-}/httpd.elf}
ACCEL=${2:-tcg}
[ -f "$IMAGE" ] || { echo "FAIL: no image '$IMAGE'"; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "FAIL: no qemu-system-x86_64"; exit 1; }
if [ "$ACCEL" = kvm ] && [ ! -w /dev/kvm ]; then
    echo "note: /dev/kvm not usable here, running under TCG"
    ACCEL=tcg
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
rc=0

# case KERNEL-OPTION DEVICE-OPTIONS EXPECTED-CONSOLE-LINE
check() {
    : >"$dir/console.log"; : >"$dir/status.log"
    timeout -s KILL 30 qemu-system-x86_64 -M pc -bios /usr/share/qemu/qboot.rom -kernel "$IMAGE" \
        -append "shoal.ip=10.0.2.15/24 $1 -- 80" \
        -serial file:"$dir/console.log" -serial file:"$dir/status.log" \
        -display none -no-reboot -m 32 -accel "$ACCEL" \
        -netdev user,id=n0,restrict=on -device "virtio-net-pci,netdev=n0$2" >"$dir/qemu.log" 2>&1
    if ! grep -qF "$3" "$dir/console.log" || ! grep -q '^shoal-status exit code=2' "$dir/status.log"; then
        echo "FAIL: '$1' with device options '$2': want '$3' and exit code 2"
        echo "--- console"; cat "$dir/console.log"; echo "--- status"; cat "$dir/status.log"
        echo "--- qemu"; cat "$dir/qemu.log"
        rc=1
        return
    fi
    echo "ok: '$1' refused: $3"
}

check "shoal.virtio=legacy" ",disable-legacy=on,disable-modern=off" \
    "virtio-net: modern-only device has no legacy interface (device 1af4:1041"
check "shoal.virtio=modern" ",disable-legacy=off,disable-modern=on" \
    "virtio-net: no usable modern virtio capabilities (device 1af4:1000"
check "shoal.virtio=bogus" "" "net: bad shoal.virtio 'bogus' (want auto, modern or legacy)"
[ $rc = 0 ] && echo "PASS virtio-net refusals ($ACCEL)"
exit $rc
