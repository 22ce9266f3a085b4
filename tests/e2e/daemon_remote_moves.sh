#!/bin/bash
# End to end (issue 17, "Moves without downtime" across machines): live
# moves to, from and between hosts that share nothing with shoald. Two
# separate libvirtds (tests/e2e/lvhost.sh: r1, r2, reached as qemu+tcp://
# over a veth) plus the embedded local host; routes to r1's and r2's guest
# /24s added in shoald's namespace (the operator's part, docs/node.md
# "Routing"); httpd guests with a published port, each polled through it
# every 20 ms (poll_gap.py):
#   - drain r1 (r2 and local stay): a moves r1 -> r2 and b r1 -> local
#     (host labels and rules make the targets certain), both live
#     (move.switched), each stand-in on r2 given its DHCP entry there and
#     losing it with the stand-in;
#   - drain local with r1 the only other host: b and c move local -> r1;
#   - each guest: ready on its target, answers through its published port
#     at its new address (GET shows the target's subnet), the longest run of
#     failed polls no longer than its move (move.done's latency_ms), one
#     QEMU, no stand-in left, r1's and r2's DHCP entries those of the guests
#     running there;
#   - a third host r3 whose /24 is not routed from shoald's namespace: a
#     drain of r2 sends a there; its stand-in cannot be reached, so the move
#     is cold (move.cold names the reason) and a ends running on r3, once;
#     with the route added then, it answers through its published port;
#   - then e, whose ready probe is tcp:80 (shoald's own connection, so its
#     stand-in can never be ready on r3), drained r2 -> r3: move.cold within
#     half of --move-ready-timeout, not move.failed after it; the route
#     added then, e's move ends move.done and e answers on r3.
# Real QEMU (TCG). Network only inside namespaces the test made. ~150 s
# on a quiet machine (the section of e ~20 s), ~290-340 s
# on a loaded machine (each move 17-58 s there).
# usage: daemon_remote_moves.sh SHOALD IMAGES_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lvhost.sh"

for f in "$SHOALD" "$IMAGES/httpd.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
command -v libvirtd >/dev/null || { echo "SKIP: no libvirtd"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }

POLLERS=""
SAMPLER=""
rm_cleanup() {
    set +e
    for p in $POLLERS $SAMPLER; do kill "$p" 2>/dev/null; done
    e2e_cleanup
    lvh_cleanup
}
e2e_setup
trap rm_cleanup EXIT
lvh_init || exit 1
for h in r1:1 r2:2 r3:3; do
    check "remote host ${h%:*} starts" lvh_start "${h%:*}" "${h#*:}" "$E2E_NS"
done
[ "$E2E_FAILS" = 0 ] || exit 1
# --move-ready-timeout 60000: a loaded machine boots a TCG guest in 20 s
e2e_start_daemon "$SHOALD" --domain-type qemu --host-uri-allow 'qemu+tcp,qemu' \
    --move-ready-timeout 60000 || exit 1

json_post() { api POST "$1" -H 'Content-Type: application/json' -d "$2"; }
host_up() { api GET "/v1/hosts/$1"; [ "$(jq -r .state <<<"$BODY")" = up ]; }
# every remote host may take a (pool x); r2 alone is zone r2
for h in r1 r2 r3; do
    json_post /v1/hosts "{\"name\":\"$h\",\"uri\":\"$(lvh_uri $h)\",\"domain_type\":\"qemu\",\"labels\":{\"pool\":\"x\",\"zone\":\"$h\"}}"
    check "add host $h (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
    check "host $h comes up" wait_for 60 host_up "$h"
done
e2e_push_images httpd

# why_not: a failed call's message (from BODY), for the check's line
why_not() { [ "$HTTP_CODE" = 200 ] || printf ' %s' "$(jq -r '.error.message? // .message? // empty' <<<"$BODY" 2>/dev/null)"; }
cordon() { json_post "/v1/hosts/$1/cordon" "{\"cordoned\":$2}"; }
field() { inst_field "$1" "$2"; }
runs_on() { [ "$(field "$1" '.state + " " + .host')" = "running $2" ]; }
copies() { pgrep -f "qemu-system.*guest=shoal-$1" | wc -l; }
standins() {
    api GET "/v1/instances?limit=1000"
    jq '[.items[] | select(.labels["shoal.move-standin"] != null)] | length' <<<"$BODY"
}
# standins_named: each stand-in left as NAME/STATE/HOST, for a failed check's line
standins_named() {
    api GET "/v1/instances?limit=1000"
    jq -r '[.items[] | select(.labels["shoal.move-standin"] != null) | .name + "/" + .state + "/" + .host] | join(" ")' <<<"$BODY"
}
port_of() { case $1 in a) echo 8081 ;; b) echo 8082 ;; c) echo 8083 ;; d) echo 8084 ;; e) echo 8085 ;; esac; }
answers() { [ "$(ns_curl -s -m 2 "http://127.0.0.1:$(port_of "$1")/healthz")" = ok ]; }
subnet_of() { api GET "/v1/hosts/$1"; jq -r .guest_subnet <<<"$BODY"; }
# in_subnet NAME HOST: the instance's address (GET) is in HOST's guest /24
in_subnet() {
    local a net
    a=$(field "$1" .network.address)
    net=$(subnet_of "$2")
    [ "${a%.*}" = "${net%.*}" ]
}
fetch_events() {
    EVENTS=$(ns_curl -sS -m 6 -H "Authorization: Bearer $E2E_TOKEN" -H 'Last-Event-ID: 0' \
        "http://127.0.0.1:$E2E_PORT/v1/events" 2>/dev/null | grep '^data: ' | cut -c7- || true)
}
events_of() { jq -s "map(select(.type == \"$1\" and .instance == \"$2\")) | length" <<<"$EVENTS"; }
# dhcp_macs HOST: the MACs of the DHCP entries of HOST's network, sorted
dhcp_macs() {
    lvh_exec "$1" virsh -q -c qemu:///system net-dumpxml shoal 2>/dev/null |
        grep -o "<host mac='[^']*'" | cut -d"'" -f2 | sort | tr '\n' ' '
}
# macs_on HOST: the MACs of the instances running on HOST, sorted
macs_on() {
    api GET "/v1/instances?limit=1000"
    jq -r ".items[] | select(.host == \"$1\" and .state == \"running\") | .network.mac" <<<"$BODY" |
        sort | tr '\n' ' '
}

# a may go to r1/r2/r3 only (pool x); b anywhere but r2; c, d anywhere.
# d on r2 gives r2 its guest subnet (and the image) before the moves.
spec() { # spec NAME HOST RULES [MORE_FIELDS]
    printf '{"image":"httpd","name":"%s","host":"%s","args":["80","64"],"ports":[{"host":%s,"guest":80}],"placement":{"rules":[%s]}%s}' \
        "$1" "$2" "$(port_of "$1")" "$3" "${4:-}"
}
json_post /v1/instances "$(spec a r1 '{"kind":"host-affinity","key":"pool","value":"x"}')"
check "create a on r1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
json_post /v1/instances "$(spec b r1 '{"kind":"host-anti-affinity","key":"zone","value":"r2"},{"kind":"host-anti-affinity","key":"zone","value":"r3"}')"
check "create b on r1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
json_post /v1/instances "$(spec c local '{"kind":"host-anti-affinity","key":"zone","value":"r3"}')"
check "create c on local (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
json_post /v1/instances "$(spec d r2 '')"
check "create d on r2 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
for g in a:r1 b:r1 c:local d:r2; do
    check "${g%:*} runs on ${g#*:}" wait_for 60 runs_on "${g%:*}" "${g#*:}"
done
# the operator's part: routes to r1's and r2's guest networks via each
for h in r1 r2; do
    net=$(subnet_of $h)
    check "$h has a guest subnet ($net)" [ "${net#*/}" = 24 ]
    ip -n "$E2E_NS" route replace "$net" via "$(lvh_addr $h)"
done
for g in a b c d; do check "$g answers through its published port" wait_for 20 answers "$g"; done
declare -A ID
for g in a b c d; do ID[$g]=$(field "$g" .id); done

# r2's DHCP entries and filter bindings, sampled while the moves run: a's
# stand-in (name a-move) must have its entry there
(
    end=$(($(date +%s) + 90))
    while [ "$(date +%s)" -lt "$end" ]; do
        lvh_exec r2 virsh -q -c qemu:///system net-dumpxml shoal 2>/dev/null | grep "<host " || true
        lvh_exec r2 virsh -q -c qemu:///system nwfilter-binding-list 2>/dev/null || true
        sleep 0.2
    done
) >"$E2E_STATE/r2.sample" 2>&1 &
SAMPLER=$!
declare -A POLL
for g in a b c; do
    ip netns exec "$E2E_NS" python3 "$(dirname "$0")/poll_gap.py" "$(port_of "$g")" "$E2E_STATE/poll-$g.out" &
    POLL[$g]=$!
    POLLERS="$POLLERS ${POLL[$g]}"
done
sleep 1

# --- drain r1 with r2 and local up: a -> r2, b -> local, both live
t0=$(date +%s%N)
api POST /v1/hosts/r1/drain -m 240 # moves under load: ~30 s each
check "drain r1 (HTTP $HTTP_CODE$(why_not), $((($(date +%s%N) - t0) / 1000000)) ms): $(jq -c '[.moves[]? | .from + "->" + .to]' <<<"$BODY" 2>/dev/null)" \
    [ "$HTTP_CODE" = 200 ]
check "a runs on r2" wait_for 30 runs_on a r2
check "b runs on local" wait_for 30 runs_on b local
# --- drain local with r1 the only other host: b and c -> r1, both live
cordon r1 false
cordon r2 true
t0=$(date +%s%N)
api POST /v1/hosts/local/drain -m 240
check "drain local (HTTP $HTTP_CODE$(why_not), $((($(date +%s%N) - t0) / 1000000)) ms): $(jq -c '[.moves[]? | .from + "->" + .to]' <<<"$BODY" 2>/dev/null)" \
    [ "$HTTP_CODE" = 200 ]
check "b runs on r1" wait_for 30 runs_on b r1
check "c runs on r1" wait_for 30 runs_on c r1
sleep 1
for g in a b c; do kill -TERM "${POLL[$g]}"; done
for g in a b c; do wait "${POLL[$g]}" || true; done
POLLERS=""
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
SAMPLER=""

fetch_events
for g in a:r2 b:r1 c:r1; do
    n=${g%:*} h=${g#*:} id=${ID[${g%:*}]}
    read -r polls fails gap <"$E2E_STATE/poll-$n.out"
    move_ms=$(jq -s "[.[] | select(.type == \"move.done\" and .instance == \"$id\") | .latency_ms] | max // 0" <<<"$EVENTS")
    e2e_log "$n: moved $(events_of move.started "$id") time(s), longest move ${move_ms} ms; $polls polls, $fails failed, longest failure ${gap} ms"
    check "$n: polls ran ($polls)" [ "$polls" -gt 20 ]
    check "$n: no failure longer than its move (${gap} ms <= ${move_ms} ms)" \
        eval '[ "$move_ms" -gt 0 ] && [ "$gap" -le "$move_ms" ]'
    check "$n: every move live (move.switched $(events_of move.switched "$id") = move.done $(events_of move.done "$id"))" \
        eval '[ "$(events_of move.switched "$id")" -ge 1 ] && [ "$(events_of move.switched "$id")" = "$(events_of move.done "$id")" ]'
    check "$n: no move.cold, no move.failed" \
        eval '[ "$(events_of move.cold "$id")" = 0 ] && [ "$(events_of move.failed "$id")" = 0 ]'
    check "$n runs once on $h ($(copies "$id") QEMU)" eval 'runs_on "$n" "$h" && [ "$(copies "$id")" = 1 ]'
    check "$n's address ($(field "$n" .network.address)) is in $h's subnet" in_subnet "$n" "$h"
    check "$n answers through its published port" wait_for 10 answers "$n"
done
check "no stand-in left" wait_for 20 eval '[ "$(standins)" = 0 ]'
[ "$(standins)" = 0 ] || e2e_log "stand-ins left: $(standins_named)"
check "a's stand-in had its DHCP entry on r2 while it ran" grep -q "name='a-move'" "$E2E_STATE/r2.sample"
# the stand-in's id, from the message ("r1 -> r2, stand-in ID, ...")
sid=$(jq -rs '[.[] | select(.type == "move.ready" and .instance == "'"${ID[a]}"'") | .message | capture("stand-in (?<s>[0-9a-f]+)").s] | first // ""' <<<"$EVENTS")
check "and its filter binding (tap sh$sid)" eval '[ -n "$sid" ] && grep -q "sh$sid" "$E2E_STATE/r2.sample"'
for h in r1 r2; do
    check "$h's DHCP entries are those of its running guests ($(dhcp_macs $h))" \
        wait_for 10 eval '[ "$(dhcp_macs $h)" = "$(macs_on $h)" ]'
done
check "no filter binding of a's stand-in left on r2" \
    eval '[ -n "$sid" ] && ! lvh_exec r2 virsh -q -c qemu:///system nwfilter-binding-list | grep -q "sh$sid"'
check "the ports were the stand-ins' until switched back (no 'no published port' in the log)" \
    eval '! grep -q "move: no published port" "$E2E_STATE/shoald.log"'

# --- r3's /24 is not routed from shoald's namespace: a's move there is
# cold (its stand-in cannot be reached), and a ends running on r3, once
api DELETE "/v1/instances/d?force=true"
cordon r3 false
cordon r1 true
t0=$(date +%s%N)
api POST /v1/hosts/r2/drain -m 240
check "drain r2 to r3 (HTTP $HTTP_CODE$(why_not), $((($(date +%s%N) - t0) / 1000000)) ms)" [ "$HTTP_CODE" = 200 ]
check "a runs on r3, once" wait_for 30 eval 'runs_on a r3 && [ "$(copies "${ID[a]}")" = 1 ]'
fetch_events
why=$(jq -rs "[.[] | select(.type == \"move.cold\" and .instance == \"${ID[a]}\") | .error] | last // \"\"" <<<"$EVENTS")
e2e_log "move.cold: $why"
R3NET=$(subnet_of r3)
check "move.cold names the reason (not reachable, r3's subnet $R3NET)" \
    eval 'grep -q "not reachable from shoald" <<<"$why" && grep -qF "$R3NET" <<<"$why"'
check "then move.done, no move.failed" \
    eval '[ "$(jq -s "map(select(.type == \"move.done\" and .instance == \"${ID[a]}\")) | length" <<<"$EVENTS")" -ge 2 ] && [ "$(events_of move.failed "${ID[a]}")" = 0 ]'
check "no stand-in left" wait_for 20 eval '[ "$(standins)" = 0 ]'
[ "$(standins)" = 0 ] || e2e_log "stand-ins left: $(standins_named)"
check "r3's DHCP entries are a's alone" wait_for 10 eval '[ "$(dhcp_macs r3)" = "$(macs_on r3)" ]'
check "a's address is in r3's subnet" in_subnet a r3

# --- e's ready probe is tcp:80, shoald's own connection: its stand-in on
# r3 can never be ready there, so its move must go cold as soon as the
# stand-in runs, not fail after --move-ready-timeout (60 s). The drain
# runs in the background; once move.cold is seen the test adds the route
# (the operator's fix), so e's own probe passes on r3 and the move ends
cordon r2 false # drained above
json_post /v1/instances "$(spec e r2 '{"kind":"host-affinity","key":"pool","value":"x"}' ',"ready":"tcp:80"')"
check "create e on r2, ready probe tcp:80 (HTTP $HTTP_CODE$(why_not))" [ "$HTTP_CODE" = 201 ]
check "e runs on r2" wait_for 60 runs_on e r2
check "e answers through its published port" wait_for 20 answers e
ID[e]=$(field e .id)
(
    t0=$(date +%s%N)
    api POST /v1/hosts/r2/drain -m 240
    echo "$HTTP_CODE $((($(date +%s%N) - t0) / 1000000)) $(why_not)"
) >"$E2E_STATE/drain-e.out" 2>&1 &
DRAIN=$!
POLLERS="$POLLERS $DRAIN"
e_cold() { fetch_events; [ "$(events_of move.cold "${ID[e]}")" -ge 1 ]; }
check "e: move.cold within half of --move-ready-timeout" wait_for 30 e_cold
why=$(jq -rs "[.[] | select(.type == \"move.cold\" and .instance == \"${ID[e]}\") | .error] | last // \"\"" <<<"$EVENTS")
cold_ms=$(jq -s "[.[] | select(.type == \"move.cold\" and .instance == \"${ID[e]}\") | .latency_ms] | last // -1" <<<"$EVENTS")
e2e_log "e: move.cold after $cold_ms ms: $why"
check "e: move.cold names the reason (not reachable, r3's subnet $R3NET)" \
    eval 'grep -q "not reachable from shoald" <<<"$why" && grep -qF "$R3NET" <<<"$why"'
ip -n "$E2E_NS" route replace "$R3NET" via "$(lvh_addr r3)"
wait "$DRAIN" || true
POLLERS=""
read -r code ms rest <"$E2E_STATE/drain-e.out" || true
check "drain r2 to r3 with e (HTTP $code, $ms ms${rest:+: $rest})" [ "$code" = 200 ]
fetch_events
check "e runs on r3, once" wait_for 30 eval 'runs_on e r3 && [ "$(copies "${ID[e]}")" = 1 ]'
check "e: then move.done, no move.switched, no move.failed" \
    eval '[ "$(events_of move.done "${ID[e]}")" = 1 ] && [ "$(events_of move.switched "${ID[e]}")" = 0 ] && [ "$(events_of move.failed "${ID[e]}")" = 0 ]'
check "e's address is in r3's subnet" in_subnet e r3
check "no stand-in left" wait_for 20 eval '[ "$(standins)" = 0 ]'
[ "$(standins)" = 0 ] || e2e_log "stand-ins left: $(standins_named)"
check "r3's DHCP entries are those of a and e" wait_for 10 eval '[ "$(dhcp_macs r3)" = "$(macs_on r3)" ]'
for n in a e; do
    check "with the route added, $n answers through its published port on r3" wait_for 20 answers "$n"
done
e2e_finish
