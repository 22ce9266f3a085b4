#!/bin/bash
# bench_arp.sh SHOALD IMAGES_DIR [N]
#
# What one ARP request on the guest bridge costs the running guests (issue
# 13, docs/benchmarks.md "ARP fan-out"): N (default 300) idle `httpd`
# guests, network on, shoald's defaults; then the guests' QEMU CPU time
# (/proc) over 5 s idle (the baseline), and over 50 ARP requests for an
# address no guest has, sent from the host on the bridge 0.1 s apart. With
# the guard's `dests` rule no guest is woken; before it, every guest was.
# Own state, network namespace and cleanup (tests/e2e/lib.sh). Not in CI.
set -eu
SHOALD=${1:?usage: bench_arp.sh SHOALD IMAGES_DIR [N]}
IMAGES=$(cd "${2:?}" && pwd)
N=${3:-300}
. "$(dirname "$0")/../../e2e/lib.sh"
e2e_setup
trap 'e2e_cleanup' EXIT
e2e_start_daemon "$SHOALD" || exit 1
e2e_push_images httpd >/dev/null
api POST /v1/instances -H 'Content-Type: application/json' \
    -d "{\"image\":\"httpd\",\"name\":\"arp\",\"count\":$N,\"memory_mib\":32,\"labels\":{\"bench\":\"arp\"}}"
[ "$HTTP_CODE" = 201 ] || { echo "create: HTTP $HTTP_CODE $BODY"; exit 1; }
for _ in $(seq 1 900); do
    api GET /metrics
    r=$(sed -n 's/^shoal_instances{state="running"} //p' <<<"$BODY")
    [ "${r:-0}" = "$N" ] && break
    sleep 1
done
[ "${r:-0}" = "$N" ] || { echo "only ${r:-0} of $N running"; exit 1; }
sleep 10
qcpu() { # ticks of every QEMU of this state dir
    local s=0 p
    for p in $(pgrep -f "qemu-system.*$E2E_STATE"); do
        s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo $s
}
BR=$(ip netns exec "$E2E_NS" ip -o link show type bridge | awk -F': ' '{print $2}' | head -n 1)
HZ=$(getconf CLK_TCK)
c0=$(qcpu); sleep 5; c1=$(qcpu)
idle=$((c1 - c0))
c0=$(qcpu)
ip netns exec "$E2E_NS" python3 - "$BR" <<'PY'
import socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
mac = bytes.fromhex("021122334455")
for i in range(50):
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, socket.inet_aton("10.250.0.1"),
                      b"\0" * 6, socket.inet_aton("10.250.0.%d" % (i + 2)))
    s.send(b"\xff" * 6 + mac + b"\x08\x06" + arp)
    time.sleep(0.1)
PY
sleep 2
c1=$(qcpu)
arp=$((c1 - c0))
echo "guests: $N on bridge $BR"
echo "baseline: QEMU CPU over 5 s idle: $(awk -v t="$idle" -v h="$HZ" 'BEGIN{printf "%.2f", t / h}') s"
echo "50 ARP requests (7 s): QEMU CPU $(awk -v t="$arp" -v h="$HZ" 'BEGIN{printf "%.2f", t / h}') s," \
    "$(awk -v t="$arp" -v h="$HZ" -v n="$N" 'BEGIN{printf "%.3f", 1000 * t / h / 50 / n}') ms per request and guest"
