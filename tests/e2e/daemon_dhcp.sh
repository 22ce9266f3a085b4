#!/bin/bash
# End to end, DHCP on the guest network (issue 14): shoald's dnsmasq answers
# each instance's MAC with exactly the address shoald shows for it.
#
# No guest here takes its address by DHCP, so a "fake guest" stands in: a
# veth pair, one end plugged into shoal0, the other in a namespace of its own
# with the MAC of an instance whose real guest (the sleep image) has been
# stopped, where busybox's udhcpc asks for an address (its script only
# records the offer). Checked: the instance's address, router and name; an
# unknown MAC gets nothing; a deleted instance's MAC gets nothing; the freed
# address goes to the next instance's MAC (dnsmasq restarted over its stale
# lease); dnsmasq killed -> started again by shoald; a shoald restart
# replaces dnsmasq and keeps serving; --dhcp off runs none. Everything
# runs in network namespaces this test creates and removes.
# usage: daemon_dhcp.sh SHOALD IMAGES_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

for f in "$SHOALD" "$IMAGES/sleep.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
PATH=$PATH:/usr/sbin:/sbin
command -v dnsmasq >/dev/null || { echo "FAIL: no dnsmasq (scripts/setup-debian.sh installs dnsmasq-base)"; exit 1; }
busybox udhcpc --help >/dev/null 2>&1 || { echo "FAIL: no busybox udhcpc (scripts/setup-debian.sh installs busybox-static)"; exit 1; }

GNS="$E2E_NS-g" # the fake guest's namespace
e2e_setup
# lib.sh's cleanup, then ours: the fake guest's namespace (dnsmasq goes with
# shoald; lib.sh kills a dnsmasq a killed shoald left).
trap 'e2e_cleanup; ip netns del "$GNS" 2>/dev/null' EXIT
ip netns add "$GNS"
HOOK=$E2E_STATE/udhcpc.sh
cat >"$HOOK" <<'EOF'
#!/bin/sh
echo "$1 ip=$ip mask=$mask router=$router dns=$dns hostname=$hostname lease=$lease" >>"$OUT"
EOF
chmod 755 "$HOOK"

e2e_start_daemon "$SHOALD" || exit 1
dnsmasq_pid() { cat "$E2E_STATE/dhcp/dnsmasq.pid" 2>/dev/null; }
alive() { [ -n "$1" ] && [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status"; }
PID1=$(dnsmasq_pid)
check "dnsmasq runs (pid '$PID1')" alive "$PID1"
check "it serves shoal0 only" grep -q -- '--interface=shoal0' <<<"$(tr '\0' ' ' <"/proc/$PID1/cmdline")"
e2e_push_images sleep

# The fake guest: veth dg0 in shoal0, dg1 (MAC $1) in $GNS.
plug_fake() {
    ip -n "$E2E_NS" link del dg0 2>/dev/null || true
    ip -n "$E2E_NS" link add dg0 type veth peer name dg1 address "$1"
    ip -n "$E2E_NS" link set dg1 netns "$GNS"
    ip -n "$E2E_NS" link set dg0 master shoal0 up
    ip -n "$GNS" link set dg1 up
}
# udhcpc in the fake guest: prints the "bound ..." line, or nothing.
ask() {
    rm -f "$E2E_STATE/offer"
    OUT=$E2E_STATE/offer ip netns exec "$GNS" busybox udhcpc -i dg1 -f -q -n -t "${1:-4}" -T 1 \
        -A 1 -s "$HOOK" >/dev/null 2>&1 || true
    grep '^bound ' "$E2E_STATE/offer" 2>/dev/null || true
}
gets() { # ADDR: the fake guest is given ADDR
    got=$(ask)
    e2e_log "offered: ${got:-nothing}"
    grep -q " ip=$1 " <<<"$got"
}
gets_nothing() { [ -z "$(ask 2)" ]; }

run_stopped() { # NAME: a networked sleep instance, stopped again
    api POST /v1/instances -H 'Content-Type: application/json' \
        -d "{\"image\":\"sleep\",\"name\":\"$1\",\"args\":[\"600\"]}"
    check "create $1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
    check "$1 runs" wait_for 60 inst_state_is "$1" running
    api POST "/v1/instances/$1/stop" -H 'Content-Type: application/json' -d '{"timeout_s":1}'
    check "stop $1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
    check "$1 stopped" wait_for 30 inst_state_is "$1" stopped
}

run_stopped one
IP1=$(inst_field one .network.address)
IP1=${IP1%/*}
MAC1=$(inst_field one .network.mac)
e2e_log "one: $IP1 $MAC1"
check "the lease list names one" grep -q "^$MAC1,$IP1,one$" "$E2E_STATE/dhcp/hosts"
plug_fake "$MAC1"
check "one's MAC is given one's address $IP1" gets "$IP1"
check "with the bridge as router and its name" \
    grep -q " router=10.88.0.1 .*hostname=one " "$E2E_STATE/offer"
plug_fake 5a:5c:de:ad:00:01
check "an unknown MAC gets nothing" gets_nothing

api DELETE "/v1/instances/one?force=true"
check "delete one (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
check "its lease leaves the list" wait_for 5 eval '! grep -q "$MAC1" "$E2E_STATE/dhcp/hosts"'
plug_fake "$MAC1"
check "the deleted instance's MAC gets nothing" gets_nothing

# The freed address goes to the next instance; dnsmasq's database still
# gives it to MAC1, so shoald restarts dnsmasq without that lease.
run_stopped two
IP2=$(inst_field two .network.address)
IP2=${IP2%/*}
MAC2=$(inst_field two .network.mac)
check "two reuses the freed address ($IP2)" [ "$IP2" = "$IP1" ]
plug_fake "$MAC2"
check "two's MAC is given $IP2" gets "$IP2"
check "dnsmasq was restarted once for the stale lease" \
    grep -q "restarting dnsmasq" "$E2E_STATE/shoald.log"

# dnsmasq dies: shoald starts it again.
PID2=$(dnsmasq_pid)
kill -9 "$PID2"
check "dnsmasq is started again" wait_for 10 eval 'p=$(dnsmasq_pid); [ -n "$p" ] && [ "$p" != "$PID2" ] && alive "$p"'
check "and serves two's address" gets "$IP2"

# A shoald restart replaces dnsmasq.
PID3=$(dnsmasq_pid)
e2e_stop_daemon
check "dnsmasq stops with shoald" wait_for 5 eval '! alive "$PID3"'
e2e_start_daemon "$SHOALD" || exit 1
PID4=$(dnsmasq_pid)
check "a new dnsmasq after the restart (pid '$PID4')" alive "$PID4"
check "it serves two's address" gets "$IP2"

api DELETE "/v1/instances/two?force=true"
check "delete two (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
check "no QEMU left running" wait_for 15 eval '[ "$(pgrep -f "qemu-system.*$E2E_STATE" | wc -l)" = 0 ]'

# --dhcp off: no dnsmasq.
e2e_stop_daemon
e2e_start_daemon "$SHOALD" --dhcp off || exit 1
check "--dhcp off runs no dnsmasq" [ -z "$(dnsmasq_pid)" ]
check "and says so" grep -q "dhcp: off" "$E2E_STATE/shoald.log"
e2e_finish
