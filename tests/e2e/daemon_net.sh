#!/bin/bash
# End to end, networking: shoald's bridge, addresses and published TCP and
# UDP ports with the reference httpd and echo guests (virtio-net + the guest TCP/IP
# stack). Everything runs inside a network namespace this test creates:
# the bridge, the taps, the guests, every packet.
# usage: daemon_net.sh SHOALD IMAGES_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

for f in "$SHOALD" "$IMAGES/httpd.elf" "$IMAGES/echo.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
e2e_setup
e2e_start_daemon "$SHOALD" || exit 1
check "the bridge exists inside the namespace" ip -n "$E2E_NS" link show shoal0
check "the bridge has the gateway address" \
    grep -q '10.88.0.1/16' <<<"$(ip -n "$E2E_NS" -o addr show shoal0)"

e2e_push_images httpd echo

# No echo from udp 127.0.0.1:PORT (a datagram tried 6 times).
udp_silent() {
    ! ip netns exec "$E2E_NS" timeout 20 python3 "$HERE/udp_echo_check.py" 127.0.0.1 "$1" 1 1 64
}
# Nothing accepts tcp 127.0.0.1:PORT.
tcp_refused() {
    ! ip netns exec "$E2E_NS" timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"httpd","name":"web","args":["80","1024"],"ports":[{"host":8080,"guest":80}]}'
check "create httpd with a published port (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "httpd runs" wait_for 60 inst_state_is web running
ADDR=$(inst_field web .network.address)
IP=${ADDR%/*}
MAC=$(inst_field web .network.mac)
e2e_log "httpd at $ADDR ($MAC)"
check "address handed out from the subnet" grep -q '^10\.88\.' <<<"$IP"

check "ping the guest" ip netns exec "$E2E_NS" ping -c 3 -W 2 -q "$IP"
body=$(ns_curl -sS -m 10 "http://$IP/healthz" || true)
check "curl /healthz at the guest's address (got '$body')" [ "$body" = ok ]
size=$(ns_curl -sS -m 10 "http://$IP/anything" | wc -c)
check "configured body size served (1024, got $size)" [ "$size" = 1024 ]
body=$(ns_curl -sS -m 10 "http://127.0.0.1:8080/healthz" || true)
check "curl through the published port 127.0.0.1:8080 (got '$body')" [ "$body" = ok ]
codes=$(ns_curl -sS -m 20 -o /dev/null -o /dev/null -o /dev/null \
    -w '%{http_code}:%{num_connects} ' "http://$IP/a" "http://$IP/b" "http://$IP/c")
check "keep-alive: three requests on one connection ($codes)" [ "$codes" = "200:1 200:0 200:0 " ]
par=$(cd "$E2E_STATE" && ip netns exec "$E2E_NS" curl -sS -m 60 --parallel --parallel-max 200 \
    -o /dev/null -w '%{http_code}\n' $(for i in $(seq 200); do printf 'http://%s/p%d ' "$IP" "$i"; done) |
    grep -c '^200$' || true)
check "200 parallel requests all answered ($par)" [ "$par" = 200 ]

# The echo guest serves TCP and UDP port 7; host port 7007 is published for
# both protocols (two ports of one number).
api POST /v1/instances -H 'Content-Type: application/json' -d '{"image":"echo","name":"echo",
    "ports":[{"host":7007,"guest":7,"protocol":"udp"},{"host":7007,"guest":7}]}'
check "create echo publishing udp and tcp 7007 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "echo runs" wait_for 60 inst_state_is echo running
EIP=$(inst_field echo .network.address)
EIP=${EIP%/*}
check "TCP echo of 4 MiB with checksum and 200 parallel connections" \
    ip netns exec "$E2E_NS" timeout 120 python3 "$HERE/tcp_echo_check.py" "$EIP" 7 4194304 200
protos=$(inst_field echo '[.network.ports[] | "\(.host):\(.guest)/\(.protocol)"] | join(" ")')
check "GET /v1/instances/echo reports udp and tcp 7007 ($protos)" \
    [ "$protos" = "7007:7/udp 7007:7/tcp" ]
# 1472 bytes: the largest datagram the guest takes (MTU 1500, no fragments).
check "UDP echo through the published port 127.0.0.1:7007: 8 clients, own replies, whole" \
    ip netns exec "$E2E_NS" timeout 60 python3 "$HERE/udp_echo_check.py" 127.0.0.1 7007 8 20 1472
check "TCP echo through the published port 127.0.0.1:7007" \
    ip netns exec "$E2E_NS" timeout 60 python3 "$HERE/tcp_echo_check.py" 127.0.0.1 7007 65536 10
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"echo","name":"echo-clash","ports":[{"host":7007,"guest":7,"protocol":"udp"}]}'
check "udp 7007 is held: a second instance is refused (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 409 ]

# A flood of malformed frames, then the guest must still answer correctly.
EMAC=$(inst_field echo .network.mac)
check "send 5000 malformed frames at the guests" \
    ip netns exec "$E2E_NS" python3 "$HERE/net_flood.py" shoal0 "$MAC" "$IP" 5000 7
check "flood the echo guest too" \
    ip netns exec "$E2E_NS" python3 "$HERE/net_flood.py" shoal0 "$EMAC" "$EIP" 5000 8
body=$(ns_curl -sS -m 10 "http://$IP/healthz" || true)
check "httpd still answers after the flood (got '$body')" [ "$body" = ok ]
check "echo still echoes after the flood" \
    ip netns exec "$E2E_NS" timeout 60 python3 "$HERE/tcp_echo_check.py" "$EIP" 7 65536 10
check "both guests still running" inst_state_is web running
check "echo still running" inst_state_is echo running

# Addresses are freed with their instance and never held twice.
api DELETE "/v1/instances/web?force=true"
check "delete httpd (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
body=$(ns_curl -sS -m 3 "http://127.0.0.1:8080/healthz" 2>/dev/null || true)
check "published port closed with its instance" [ -z "$body" ]
api POST /v1/instances -H 'Content-Type: application/json' -d '{"image":"httpd","name":"web2"}'
check "web2 runs" wait_for 60 inst_state_is web2 running
check "the freed address is handed out again" [ "$(inst_field web2 .network.address)" = "$ADDR" ]
check "no two instances share an address" \
    [ "$(inst_field web2 .network.address)" != "$(inst_field echo .network.address)" ]
api DELETE "/v1/instances/web2?force=true"
api DELETE "/v1/instances/echo?force=true"
check "published UDP port closed with its instance" udp_silent 7007
# Now free: udp 7007 alone, on another instance.
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"echo","name":"echo-udp","ports":[{"host":7007,"guest":7,"protocol":"udp"}]}'
check "udp 7007 published again by a new instance (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "echo-udp runs" wait_for 60 inst_state_is echo-udp running
check "UDP echo through 127.0.0.1:7007 again" \
    ip netns exec "$E2E_NS" timeout 60 python3 "$HERE/udp_echo_check.py" 127.0.0.1 7007 2 5 1472
check "tcp 7007 stays unpublished" tcp_refused 7007
api DELETE "/v1/instances/echo-udp?force=true"
check "no QEMU left running" wait_for 15 eval '[ "$(pgrep -f "qemu-system.*$E2E_STATE" | wc -l)" = 0 ]'
e2e_finish
