#!/bin/bash
# End to end, beyond one bridge (issue 13): the main bridge shoal0 is filled
# up to its last guest port with veth pairs (stand-ins for 959 guests, made
# with one `ip -batch`), then real httpd guests are started through shoald.
# The first takes the last port of shoal0; the next lands on the overflow
# bridge shoal0.1, which shoald creates and links to shoal0 with a veth
# pair, and answers on its address and on its published port exactly like a
# guest on shoal0. After a shoald restart (the bridges exist) a third guest
# joins shoal0.1 too. Everything runs inside a network namespace this test
# creates: bridges, taps, guests, every packet.
# usage: daemon_overflow.sh SHOALD IMAGES_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

for f in "$SHOALD" "$IMAGES/httpd.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
# netbr.h: NETBR_PORTS_MAX 1023, NETBR_OVERFLOW_MAX 63 -> 960 guests on shoal0.
GUESTS_MAIN=960

e2e_setup
e2e_start_daemon "$SHOALD" || exit 1
e2e_push_images httpd
gw_mac() { ip -n "$E2E_NS" -o link show shoal0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }
GW_MAC=$(gw_mac)

batch=$E2E_STATE/fill.batch
for i in $(seq 1 $((GUESTS_MAIN - 1))); do
    printf 'link add p%d type veth peer name q%d\nlink set p%d master shoal0 up\n' "$i" "$i" "$i"
done >"$batch"
t0=$(date +%s.%N)
check "$((GUESTS_MAIN - 1)) stand-in ports on shoal0" ip -n "$E2E_NS" -batch "$batch"
e2e_log "filled in $(echo "$(date +%s.%N) - $t0" | bc) s"

# The bridge the tap of instance $1 is in (libvirt's tap has the guest's
# MAC with the first octet fe).
bridge_of() {
    mac=$(inst_field "$1" .network.mac)
    ip -n "$E2E_NS" -o link show | grep -F "link/ether fe:${mac#*:} " |
        sed -n 's/.* master \([^ ]*\) .*/\1/p'
}

absent() { ! ip -n "$E2E_NS" link show "$1" >/dev/null 2>&1; }

run_web() { # name host_port
    api POST /v1/instances -H 'Content-Type: application/json' \
        -d "{\"image\":\"httpd\",\"name\":\"$1\",\"ports\":[{\"host\":$2,\"guest\":80}]}"
    check "create $1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
    check "$1 runs" wait_for 60 inst_state_is "$1" running
}

answers() { # name host_port
    ip=$(inst_field "$1" .network.address)
    ip=${ip%/*}
    body=$(ns_curl -sS -m 10 "http://$ip/healthz" || true)
    check "$1 answers /healthz at $ip (got '$body')" [ "$body" = ok ]
    body=$(ns_curl -sS -m 10 "http://127.0.0.1:$2/healthz" || true)
    check "$1 answers through published port $2 (got '$body')" [ "$body" = ok ]
}

run_web web1 8081
check "web1 takes the last guest port of shoal0 (in '$(bridge_of web1)')" \
    [ "$(bridge_of web1)" = shoal0 ]
check "no overflow bridge yet" absent shoal0.1
run_web web2 8082
check "web2 lands on the overflow bridge (in '$(bridge_of web2)')" [ "$(bridge_of web2)" = shoal0.1 ]
check "shoal0.1 is a bridge" grep -q bridge <<<"$(ip -n "$E2E_NS" -d -o link show shoal0.1)"
check "its link shoal0.1-m is a port of shoal0" \
    grep -q ' master shoal0 ' <<<"$(ip -n "$E2E_NS" -o link show shoal0.1-m)"
check "its link shoal0.1-o is a port of shoal0.1" \
    grep -q ' master shoal0.1 ' <<<"$(ip -n "$E2E_NS" -o link show shoal0.1-o)"
check "shoal0.1 has no address" [ -z "$(ip -n "$E2E_NS" -o -4 addr show dev shoal0.1)" ]
check "the gateway's MAC did not change ($GW_MAC)" [ "$(gw_mac)" = "$GW_MAC" ]
answers web1 8081
answers web2 8082
ip2=$(inst_field web2 .network.address)
check "the host pings web2 on shoal0.1" ip netns exec "$E2E_NS" ping -c 2 -W 3 -q "${ip2%/*}"

# A restart finds the bridges in place; the next guest joins shoal0.1.
e2e_stop_daemon
e2e_start_daemon "$SHOALD" || exit 1
answers web2 8082
run_web web3 8083
check "web3 joins shoal0.1 after the restart (in '$(bridge_of web3)')" \
    [ "$(bridge_of web3)" = shoal0.1 ]
check "still one overflow bridge" absent shoal0.2
answers web3 8083
check "the gateway's MAC is still $GW_MAC" [ "$(gw_mac)" = "$GW_MAC" ]

for n in web1 web2 web3; do
    api DELETE "/v1/instances/$n?force=true"
    check "delete $n (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
done
check "no QEMU left running" wait_for 15 eval '[ "$(pgrep -f "qemu-system.*$E2E_STATE" | wc -l)" = 0 ]'
e2e_finish
