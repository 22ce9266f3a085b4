#!/bin/bash
# End to end, guest isolation (issue 16; daemon/guard.h, docs/node.md "Guest
# isolation"): shoald writes `table bridge shoal`, names each guest's tap
# sh<instance id> and allows exactly that tap, MAC and address while the
# guest runs; the elements survive a shoald restart (and the guest keeps
# answering), leave when the guest stops or is deleted, and come back by
# themselves after `nft flush ruleset`. A stand-in "guest" (a veth named like
# a shoal tap, its peer in a namespace of its own) that claims the real
# guest's address with gratuitous ARP changes nothing: the host keeps the
# guest's MAC and the published port answers from the guest. Everything runs
# inside network namespaces this test creates. ~60 s (TCG).
# usage: daemon_guard.sh SHOALD IMAGES_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

for f in "$SHOALD" "$IMAGES/httpd.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
command -v nft >/dev/null || [ -x /usr/sbin/nft ] || { echo "nft missing (scripts/setup-debian.sh)"; exit 1; }
IMP_NS="$E2E_NS-imp"
guard_cleanup() {
    ip netns del "$IMP_NS" 2>/dev/null
    e2e_cleanup
}
e2e_setup
trap guard_cleanup EXIT

nft_ns() { ip netns exec "$E2E_NS" nft "$@"; }
set_has() { nft_ns list set bridge shoal "$1" 2>/dev/null | grep -qF -- "$2"; }
set_lacks() { ! set_has "$@"; }
fails() { ! "$@" >/dev/null 2>&1; }
quiet() { "$@" >/dev/null 2>&1; }

e2e_start_daemon "$SHOALD" || exit 1
check "shoald wrote table bridge shoal" quiet nft_ns list table bridge shoal
check "no guest allowed yet" set_lacks ports '"sh'
e2e_push_images httpd

api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"httpd","name":"web","ports":[{"host":8080,"guest":80}]}'
check "create web (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "web runs" wait_for 60 inst_state_is web running
ID=$(inst_field web .id)
MAC=$(inst_field web .network.mac)
IP=$(inst_field web .network.address)
IP=${IP%/*}
TAP="sh$ID"
e2e_log "web: $ID, tap $TAP, $MAC, $IP"
check "the tap is named $TAP and is a port of shoal0" \
    grep -q ' master shoal0 ' <<<"$(ip -n "$E2E_NS" -o link show dev "$TAP")"
check "ports holds $TAP . $MAC" set_has ports "\"$TAP\" . $MAC"
check "addrs holds $TAP . $MAC . $IP" set_has addrs "\"$TAP\" . $MAC . $IP"

answers() {
    body=$(ns_curl -sS -m 10 "http://$IP/healthz" || true)
    check "web answers /healthz at $IP ($1; got '$body')" [ "$body" = ok ]
    body=$(ns_curl -sS -m 10 "http://127.0.0.1:8080/healthz" || true)
    check "web answers through its published port ($1; got '$body')" [ "$body" = ok ]
}
answers "through the filter"
host_has_web() { [ "$(ip -n "$E2E_NS" neigh show "$IP" | sed -n 's/.*lladdr \([^ ]*\).*/\1/p')" = "$MAC" ]; }
check "the host has web's address at web's MAC" host_has_web

# A stand-in with a shoal tap's name but no element: it can send nothing,
# not even gratuitous ARP for web's address.
IMP_TAP=sh0000deadbeef
IMP_MAC=5a:5c:de:ad:be:ef
ip netns add "$IMP_NS"
ip -n "$E2E_NS" link add "$IMP_TAP" type veth peer name imp0 address "$IMP_MAC"
ip -n "$E2E_NS" link set "$IMP_TAP" master shoal0 up
ip -n "$E2E_NS" link set imp0 netns "$IMP_NS"
ip -n "$IMP_NS" addr add 10.88.200.200/16 dev imp0
ip -n "$IMP_NS" link set imp0 up
check "a port named like a shoal tap without an element cannot reach the gateway" \
    fails ip netns exec "$IMP_NS" ping -c 2 -W 1 -q 10.88.0.1
garp() { # claim $IP from imp0, as the attack of issue 16 did
    ip netns exec "$IMP_NS" python3 - "$IMP_MAC" "$IP" <<'EOF'
import socket, sys
mac = bytes.fromhex(sys.argv[1].replace(":", ""))
ip = socket.inet_aton(sys.argv[2])
arp = b"\x00\x01\x08\x00\x06\x04\x00\x01" + mac + ip + b"\x00" * 6 + ip
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("imp0", 0))
for _ in range(3):
    s.send(b"\xff" * 6 + mac + b"\x08\x06" + arp)
EOF
}
garp
sleep 0.3
check "gratuitous ARP for web's address from the stand-in: the host still has web's MAC" host_has_web
answers "after the stand-in's ARP"
# every drop rule's packets, summed (the chain has more than one counter)
drops=$(nft_ns list chain bridge shoal guest |
    sed -n 's/.*counter packets \([0-9]*\).*drop/\1/p' | awk '{ s += $1 } END { print s + 0 }')
check "the table counted the stand-in's frames as dropped ($drops)" [ "${drops:-0}" -gt 0 ]

# shoald stops: the table stays (the guest keeps running, filtered); a new
# shoald writes it again from the instances that run.
e2e_stop_daemon
check "with shoald stopped the element is still there" set_has addrs "\"$TAP\" . $MAC . $IP"
e2e_start_daemon "$SHOALD" || exit 1
check "after the restart addrs holds web" set_has addrs "\"$TAP\" . $MAC . $IP"
check "and nothing else" [ "$(nft_ns list set bridge shoal ports | grep -c '"sh')" = 1 ]
answers "after a shoald restart"

# Someone flushes the ruleset: shoald puts the table back (every 10 s).
nft_ns flush ruleset
check "the table comes back after nft flush ruleset" \
    wait_for 25 set_has addrs "\"$TAP\" . $MAC . $IP"
check "shoald logged it" grep -q 'table bridge shoal was gone' "$E2E_STATE/shoald.log"
answers "after the table came back"

# Stop: the element leaves with the run; start: it is back, same tap.
api POST /v1/instances/web/stop -H 'Content-Type: application/json' -d '{"timeout_s":5}'
check "stop web (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "web stopped" wait_for 30 inst_state_is web stopped
check "stopped: ports no longer holds $TAP" wait_for 10 set_lacks ports "\"$TAP\""
check "stopped: addrs no longer holds $TAP" set_lacks addrs "\"$TAP\""
api POST /v1/instances/web/start
check "start web again (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "web runs again" wait_for 60 inst_state_is web running
check "its tap is $TAP again" quiet ip -n "$E2E_NS" link show dev "$TAP"
check "addrs holds web again" set_has addrs "\"$TAP\" . $MAC . $IP"
answers "after a stop and start"

api DELETE "/v1/instances/web?force=true"
check "delete web (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
check "deleted: no guest left in ports" wait_for 10 set_lacks ports '"sh'
check "deleted: no guest left in addrs" set_lacks addrs '"sh'
check "no QEMU left running" wait_for 15 eval '[ "$(pgrep -f "qemu-system.*$E2E_STATE" | wc -l)" = 0 ]'
e2e_finish
