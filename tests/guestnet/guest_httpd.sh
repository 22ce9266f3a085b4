#!/bin/bash
# guest_httpd.sh IMAGE [ACCEL] [VARIANT] - boot the httpd guest image under
# raw QEMU with a virtio-net NIC on QEMU's user-mode network (restrict=on:
# the guest can reach nothing outside QEMU) and a host forward bound to
# 127.0.0.1 only, then check /healthz, keep-alive and the body size from
# the host. Traffic stays on loopback (tests send network traffic only to
# loopback or to hosts inside a network namespace the test itself created).
# VARIANT picks the device and the driver's interface, and the console must
# name the interface the driver ended up on, and how an idle guest learns of
# a frame (MSI-X receive interrupt "irq", or "polled" without MSI-X):
#   transitional  default device (legacy + modern), driver default -> modern, irq
#   legacy        transitional device, shoal.virtio=legacy        -> legacy, irq
#   modern-only   disable-legacy=on (device 1AF4:1041)            -> modern, irq
#   legacy-only   disable-modern=on (no capabilities), default    -> legacy, irq
#   no-msix       vectors=0 (no MSI-X capability)                 -> modern, polled
# Exit 0 pass, 1 fail. Without a usable /dev/kvm the kvm variant runs under
# TCG instead (a missing accelerator is never a reason to skip).
set -u
IMAGE=${1:-${SHOAL_IMAGES:-}/httpd.elf}
ACCEL=${2:-${ACCEL:-tcg}}
VARIANT=${3:-transitional}
BODY=${BODY:-1000}
devopt= ; kopt= ; want=
case "$VARIANT" in
    transitional) want="modern rx irq" ;;
    legacy)       want="legacy rx irq"; kopt="shoal.virtio=legacy" ;;
    modern-only)  want="modern rx irq"; devopt=",disable-legacy=on,disable-modern=off" ;;
    legacy-only)  want="legacy rx irq"; devopt=",disable-legacy=off,disable-modern=on" ;;
    no-msix)      want="modern rx polled"; devopt=",vectors=0" ;;
    *) echo "FAIL: unknown variant '$VARIANT'"; exit 1 ;;
esac
[ -f "$IMAGE" ] || { echo "FAIL: no image '$IMAGE' (build guest_image_httpd)"; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "FAIL: no qemu-system-x86_64"; exit 1; }
command -v curl >/dev/null || { echo "FAIL: no curl"; exit 1; }
if [ "$ACCEL" = kvm ] && [ ! -w /dev/kvm ]; then
    echo "note: /dev/kvm not usable here, running the kvm case under TCG"
    ACCEL=tcg
fi

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
qemu-system-x86_64 -M pc -bios /usr/share/qemu/qboot.rom -kernel "$IMAGE" \
    -append "shoal.ip=10.0.2.15/24 shoal.gw=10.0.2.2 $kopt -- 80 $BODY" \
    -serial file:"$dir/console.log" -serial file:"$dir/status.log" \
    -display none -no-reboot -m 32 -accel "$ACCEL" \
    -netdev user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:80 \
    -device virtio-net-pci,netdev=n0$devopt >"$dir/qemu.log" 2>&1 &
qpid=$!
cleanup() { kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- console"; cat "$dir/console.log"; echo "--- qemu"; cat "$dir/qemu.log"; exit 1; }

for _ in $(seq 1 150); do
    grep -q "listening" "$dir/console.log" 2>/dev/null && break
    kill -0 "$qpid" 2>/dev/null || fail "QEMU exited"
    sleep 0.2
done
grep -q "listening" "$dir/console.log" || fail "httpd did not start"
grep -q "^net: .* virtio $want\$" "$dir/console.log" || fail "driver not on 'virtio $want'"

out=$(curl -s -m 10 "http://127.0.0.1:$port/healthz") || fail "no answer on /healthz"
[ "$out" = ok ] || fail "/healthz said '$out'"
r=$(curl -s -m 10 -o /dev/null -o /dev/null -w '%{http_code} %{size_download} %{num_connects}|' \
    "http://127.0.0.1:$port/a" "http://127.0.0.1:$port/b") || fail "no answer on /a /b"
[ "$r" = "200 $BODY 1|200 $BODY 0|" ] || fail "keep-alive/body: got '$r', want '200 $BODY 1|200 $BODY 0|'"
h=$(curl -s -m 10 -D - -o /dev/null -H 'Connection: close' "http://127.0.0.1:$port/c") || fail "no answer with Connection: close"
echo "$h" | grep -qi '^Connection: close' || fail "Connection: close not honoured"
# After a quiet second the guest halts (on the modern interface until the
# receive interrupt): a request must still be answered.
sleep 1
out=$(curl -s -m 10 "http://127.0.0.1:$port/healthz") || fail "no answer after an idle second"
[ "$out" = ok ] || fail "/healthz after idle said '$out'"
echo "PASS httpd guest ($ACCEL, $VARIANT device, virtio $want): /healthz, keep-alive, $BODY-byte body, Connection: close, answer after idle"
