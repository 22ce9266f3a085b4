#!/bin/bash
# End to end (issue 15): scale to zero behind published ports, with real
# libvirt/QEMU (TCG where KVM cannot run the guest) and the reference httpd,
# docs/shoald.md "Scale to zero". Everything runs inside a network
# namespace this test creates.
#   - refusals: scale_to_zero without a published tcp port (400);
#   - after idle_s without a connection the instance is idle: no QEMU, its
#     address, MAC and ports kept, instance.sleep in the events;
#   - 8 parallel first connections to the published port wake it once and
#     are all answered (held, never refused), instance.wake with latency_ms;
#   - stop of an idle instance -> stopped, its port refuses; start runs it
#     again; start of an idle instance wakes it; delete of an idle one;
#   - a shoald restart keeps an idle instance idle, its port listening, and
#     a connection then wakes it;
#   - a wake that fails (the guest never accepts on the published port:
#     httpd listening on another one) closes the held connection cleanly
#     after --publish-wake-timeout (an empty reply, not a reset) and says why
#     (instance.wake with an error, last_error).
# usage: daemon_scale0.sh SHOALD IMAGES_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
. "$(dirname "$0")/lib.sh"

for f in "$SHOALD" "$IMAGES/httpd.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
e2e_setup
e2e_start_daemon "$SHOALD" --publish-wake-timeout 2000 || exit 1
e2e_push_images httpd

create() { api POST /v1/instances -H 'Content-Type: application/json' -d "$1"; }
events() {
    ns_curl -sS -m 1 -H "Authorization: Bearer $E2E_TOKEN" \
        "http://127.0.0.1:$E2E_PORT/v1/events?since=0" 2>/dev/null || true
}
# Event data lines of type $1 about instance name $2.
events_of() { events | grep '^data: ' | sed 's/^data: //' | jq -c "select(.type==\"$1\" and .name==\"$2\")"; }
nqemu() { pgrep -f "qemu-system.*$E2E_STATE.*shoal-$1" | wc -l; }
get() { ns_curl -sS -m 30 -w '\n' "http://127.0.0.1:$1/healthz"; }

create '{"image":"httpd","scale_to_zero":{"idle_s":2}}'
check "scale_to_zero without a port: 400 naming it ($HTTP_CODE)" \
    eval '[ "$HTTP_CODE" = 400 ] && grep -q "\"field\":\"scale_to_zero\"" <<<"$BODY"'
create '{"image":"httpd","ports":[{"host":5353,"guest":53,"protocol":"udp"}],"scale_to_zero":{"idle_s":2}}'
check "scale_to_zero with only a udp port: 400 ($HTTP_CODE)" [ "$HTTP_CODE" = 400 ]

create '{"image":"httpd","name":"web","args":["80","64"],"ports":[{"host":8080,"guest":80}],"scale_to_zero":{"idle_s":2}}'
check "create web, scale to zero after 2 s (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
create '{"image":"httpd","name":"web2","args":["80","64"],"ports":[{"host":8081,"guest":80}],"scale_to_zero":{"idle_s":1}}'
check "create web2 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
ID=$(inst_field web .id)
check "web runs" wait_for 60 inst_state_is web running
check "inspect shows scale_to_zero" [ "$(inst_field web .scale_to_zero.idle_s)" = 2 ]
ADDR=$(inst_field web .network.address)
MAC=$(inst_field web .network.mac)
check "served through the published port" [ "$(get 8080)" = ok ]

check "idle 2 s later" wait_for 20 inst_state_is web idle
check "no QEMU while idle" wait_for 10 eval '[ "$(nqemu "$ID")" = 0 ]'
check "address and MAC kept" \
    [ "$(inst_field web .network.address) $(inst_field web .network.mac)" = "$ADDR $MAC" ]
check "ps lists the idle instance" eval 'api GET /v1/instances; jq -e ".items[] | select(.name==\"web\" and .state==\"idle\")" <<<"$BODY" >/dev/null'
check "instance.sleep event" eval '[ -n "$(events_of instance.sleep web)" ]'

# Eight first connections at once: one wake, all answered.
pids=""
for i in 1 2 3 4 5 6 7 8; do
    (get 8080 >"$E2E_STATE/par$i" 2>&1 || echo "curl-failed-$?" >>"$E2E_STATE/par$i") &
    pids="$pids $!"
done
wait $pids # not shoald, a job of this shell too
outs=$(cat "$E2E_STATE"/par?)
n=$(grep -c '^ok$' <<<"$outs" || true)
check "8 parallel first connections all answered ($n/8: $(tr '\n' ' ' <<<"$outs"))" [ "$n" = 8 ]
check "running after the wake" inst_state_is web running
wakes=$(events_of instance.wake web)
check "one instance.wake, with a reason and latency_ms ($wakes)" \
    eval '[ "$(grep -c latency_ms <<<"$wakes")" = 1 ] && jq -e ".latency_ms >= 0 and (.reason | test(\"8080\"))" <<<"$wakes" >/dev/null'
check "one QEMU" [ "$(nqemu "$ID")" = 1 ]

# Stop of an idle instance: stopped, no more wake on connect; start runs it.
check "idle again" wait_for 20 inst_state_is web idle
api POST "/v1/instances/web/stop"
check "stop an idle instance (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "stopped" inst_state_is web stopped
check "its port refuses now" eval '! ns_curl -sS -m 3 http://127.0.0.1:8080/healthz >/dev/null 2>&1'
check "and it stays stopped" eval 'sleep 0.5; inst_state_is web stopped'
api POST "/v1/instances/web/start"
check "start it (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "running" wait_for 60 inst_state_is web running
check "served again" [ "$(get 8080)" = ok ]
check "idle again after the start" wait_for 20 inst_state_is web idle
api POST "/v1/instances/web/start"
check "start of an idle instance wakes it (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "running" wait_for 60 inst_state_is web running
check "wake event says start request" eval 'events_of instance.wake web | grep -q "start request"'

# Delete of an idle instance.
check "web2 idle" wait_for 20 inst_state_is web2 idle
api DELETE /v1/instances/web2
check "delete an idle instance without force (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
check "its port is closed" eval '! ns_curl -sS -m 3 http://127.0.0.1:8081/healthz >/dev/null 2>&1'

# A restart of shoald keeps it idle and its port listening.
check "idle before the restart" wait_for 20 inst_state_is web idle
e2e_stop_daemon
e2e_start_daemon "$SHOALD" --publish-wake-timeout 2000 || exit 1
check "idle after the restart" inst_state_is web idle
check "no QEMU after the restart" [ "$(nqemu "$ID")" = 0 ]
check "a connection after the restart wakes it" [ "$(get 8080)" = ok ]
check "running" inst_state_is web running

# A wake that fails: web3's httpd listens on 81, its published port goes
# to 80. Ready by its status channel, it never accepts there: the held
# connection is closed cleanly after --publish-wake-timeout (2 s): curl
# sees an empty reply (52), not a reset (56) or a refusal (7).
create '{"image":"httpd","name":"web3","args":["81","64"],"ports":[{"host":8082,"guest":80}],"scale_to_zero":{"idle_s":1}}'
check "create web3 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "web3 idle" wait_for 60 inst_state_is web3 idle
rc=0
t0=$(date +%s%N)
ns_curl -sS -m 30 -o /dev/null "http://127.0.0.1:8082/healthz" 2>/dev/null || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "the held connection was closed cleanly after ~2 s (curl exit $rc, 52 = empty reply; $ms ms)" \
    eval '[ "$rc" = 52 ] && [ "$ms" -ge 1500 ]'
check "instance.wake with the error" \
    wait_for 5 eval 'events_of instance.wake web3 | jq -e "select(.error != null)" >/dev/null'
check "last_error says why ($(inst_field web3 .last_error))" \
    eval 'inst_field web3 .last_error | grep -q "did not accept"'
api DELETE "/v1/instances/web?force=true"
check "delete web (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
api DELETE "/v1/instances/web3?force=true"
check "delete web3 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
check "no QEMU left running" wait_for 15 eval '[ "$(pgrep -f "qemu-system.*$E2E_STATE" | wc -l)" = 0 ]'
e2e_finish
