#!/bin/bash
# End to end (issue 17, "Moves without downtime"): two real hosts - the
# embedded local host and a private libvirtd of this machine (lvdlocal.sh)
# started inside the test's network namespace, so both attach guests to
# shoald's bridge there - and the reference httpd on a published port.
#   - live move: a client polls /healthz through the published port every
#     20 ms while the local host is drained; the longest run of failed
#     polls is printed, and the test fails only when failures last longer
#     than the drain itself took, or the instance does not end up running
#     on sys exactly once (one QEMU, no stand-in left); move.started,
#     .ready, .switched and .done are in the events.
#   - a move whose new copy never becomes ready (a ready probe nothing
#     passes, --move-ready-timeout 3000), beside a cold one: the drain
#     answers its plan with that move failed (conflict, saying why) and the
#     cold one made, local not counted freed; the instance is still on
#     local, once, its stand-in gone, move.failed says why. Then a drain
#     stopped halfway (POST /v1/moves/stop) answers 409.
#   - consolidation: a third host (p3: lvd_start_private), three httpds
#     placed spread, one per host, each polled through its published
#     port; POST /v1/consolidate packs them onto the hosts its dry run
#     promised, every guest's longest failure within its own move.
#   - a target without room for a stand-in (SHOAL_TEST_FAIL_AT makes the
#     stand-in's create answer 507): the move is made cold instead
#     (move.cold says why), the drain succeeds.
# Real QEMU (TCG here). Network only inside the test's namespace.
# usage: daemon_moves.sh SHOALD IMAGES_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lvdlocal.sh"

for f in "$SHOALD" "$IMAGES/httpd.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
e2e_setup
POLLER=""
mv_cleanup() {
    set +e
    for p in $POLLER; do kill "$p" 2>/dev/null; done
    lvd_cleanup
}
trap mv_cleanup EXIT

json_post() { api POST "$1" -H 'Content-Type: application/json' -d "$2"; }
field() { # field NAME JQ
    api GET "/v1/instances/$1"
    jq -r "$2" <<<"$BODY"
}
runs_on() { [ "$(field "$1" .state)" = running ] && [ "$(field "$1" .host)" = "$2" ]; }
copies() { pgrep -f "qemu-system.*guest=shoal-$1" | wc -l; }
standins() {
    api GET "/v1/instances?limit=1000"
    jq '[.items[] | select(.labels["shoal.move-standin"] != null)] | length' <<<"$BODY"
}
# fetch_events: the retained events (a replay from 0, 2 s) into EVENTS
fetch_events() {
    EVENTS=$(ns_curl -sS -m 2 -H "Authorization: Bearer $E2E_TOKEN" -H 'Last-Event-ID: 0' \
        "http://127.0.0.1:$E2E_PORT/v1/events" 2>/dev/null | grep '^data: ' | cut -c7- || true)
}
events_of() { # events_of TYPE INSTANCE_ID: how many in EVENTS
    jq -s "map(select(.type == \"$1\" and .instance == \"$2\")) | length" <<<"$EVENTS"
}

lvd_init || exit 1
# the second host's guests join shoald's bridge: libvirtd in the same
# network namespace, with libvirt's state dirs of its own (so that another
# test's libvirtd of this machine running meanwhile does not stop it)
check "host sys (libvirtd in the test's namespace) starts" lvd_start_private sys "$E2E_NS"
SOCK=$LVD/sys/sock/libvirt-sock
e2e_start_daemon "$SHOALD" --host-uri-allow 'qemu?socket' --move-ready-timeout 3000 || exit 1
json_post /v1/hosts "{\"name\":\"sys\",\"uri\":\"qemu:///system?socket=$SOCK\",\"domain_type\":\"qemu\"}"
check "add host sys (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
e2e_push_images httpd

# --- a live move under a polling client
json_post /v1/instances '{"image":"httpd","name":"web","host":"local","args":["80","64"],"ports":[{"host":8080,"guest":80}]}'
check "create web (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "web runs on local" wait_for 60 runs_on web local
id=$(field web .id)
ok_once() { [ "$(ns_curl -s -m 2 http://127.0.0.1:8080/healthz)" = ok ]; }
check "web answers through port 8080" wait_for 20 ok_once

ip netns exec "$E2E_NS" python3 "$(dirname "$0")/poll_gap.py" 8080 "$E2E_STATE/poll.out" &
POLLER=$!
sleep 1
t0=$(date +%s%N)
api POST /v1/hosts/local/drain
t1=$(date +%s%N)
drain_ms=$(((t1 - t0) / 1000000))
check "drain of local (HTTP $HTTP_CODE, $drain_ms ms)" [ "$HTTP_CODE" = 200 ]
sleep 1
kill -TERM "$POLLER"
wait "$POLLER" || true
POLLER=""
read -r polls fails gap <"$E2E_STATE/poll.out"
echo "live move: $polls polls, $fails failed, longest failure ${gap} ms; the drain took ${drain_ms} ms"
check "polls ran ($polls)" [ "$polls" -gt 20 ]
check "no failure longer than the move (${gap} ms <= ${drain_ms} ms)" [ "$gap" -le "$drain_ms" ]
check "web runs on sys" wait_for 30 runs_on web sys
check "web runs once ($(copies "$id") QEMU)" [ "$(copies "$id")" = 1 ]
check "no stand-in left" wait_for 20 eval '[ "$(standins)" = 0 ]'
check "web answers through port 8080 after the move" wait_for 10 ok_once
fetch_events
for t in move.started move.ready move.switched move.done; do
    check "event $t for web" [ "$(events_of "$t" "$id")" -ge 1 ]
done

# --- shoald killed halfway (kill point move.switched: the ports on the
# stand-in, the instance not moved yet): after a restart the instance runs
# once, answers on its port again, and the stand-in is gone
e2e_stop_daemon
SHOAL_TEST_KILL_AT=move.switched:1 e2e_start_daemon "$SHOALD" --host-uri-allow 'qemu?socket' \
    --move-ready-timeout 3000 || exit 1
json_post /v1/hosts/local/cordon '{"cordoned":false}'
api POST /v1/hosts/sys/drain || true
for _ in $(seq 1 120); do kill -0 "$E2E_PID" 2>/dev/null || break; sleep 0.25; done
check "killed at move.switched" grep -q "killpoint: move.switched:1 reached" "$E2E_STATE/shoald.log"
kill -9 "$E2E_PID" 2>/dev/null || true
wait "$E2E_PID" 2>/dev/null || true
E2E_PID=""
e2e_start_daemon "$SHOALD" --host-uri-allow 'qemu?socket' --move-ready-timeout 3000 || exit 1
check "after the restart web runs once (on $(field web .host))" \
    wait_for 30 eval '[ "$(field web .state)" = running ] && [ "$(copies "$id")" = 1 ]'
check "after the restart no stand-in is left" wait_for 20 eval '[ "$(standins)" = 0 ]'
check "after the restart web answers through port 8080" wait_for 20 ok_once
json_post /v1/hosts/sys/cordon '{"cordoned":false}'
if [ "$(field web .host)" = local ]; then
    api POST /v1/hosts/local/drain
    check "web drained back to sys (HTTP $HTTP_CODE)" wait_for 30 runs_on web sys
fi

# --- a new copy that never becomes ready: the instance stays on the source
json_post /v1/hosts/local/cordon '{"cordoned":false}'
json_post /v1/hosts/sys/cordon '{"cordoned":true}'
json_post /v1/instances '{"image":"httpd","name":"stuck","host":"local","args":["80","64"],"ports":[{"host":8081,"guest":80}],"ready":"tcp:81"}'
check "create stuck (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
sid=$(field stuck .id)
stuck_up() { [ "$(copies "$sid")" = 1 ] && [ "$(field stuck .host)" = local ]; }
check "stuck's guest runs on local" wait_for 60 stuck_up
# beside it, cold1 (no published port: a cold move), moved whichever of
# the two the plan takes first: a failed move does not end the drain
json_post /v1/instances '{"image":"httpd","name":"cold1","host":"local","args":["80","64"]}'
check "create cold1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "cold1 runs on local" wait_for 60 runs_on cold1 local
json_post /v1/hosts/sys/cordon '{"cordoned":false}'
api POST /v1/hosts/local/drain
outcome() { # outcome ID: "ok error-code" of its move in the drain's answer
    jq -r --arg id "$1" '.moves[] | select(.instance == $id) | "\(.ok) \(.error.code)"' <<<"$BODY"
}
e2e_log "drain with stuck: HTTP $HTTP_CODE: $(cut -c1-600 <<<"$BODY")"
check "the drain answers its plan (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "stuck's move failed, conflict ($(outcome "$sid"))" [ "$(outcome "$sid")" = "false conflict" ]
check "saying why: $(jq -r --arg id "$sid" '.moves[] | select(.instance == $id) | .error.message' <<<"$BODY" | cut -c1-120)" \
    eval 'jq -r --arg id "$sid" ".moves[] | select(.instance == \$id) | .error.message" <<<"$BODY" | grep -q "move of .stuck. to .sys. failed"'
check "cold1's move was made ($(outcome "$(field cold1 .id)"))" [ "$(outcome "$(field cold1 .id)")" = "true null" ]
check "the plan counts them ($(jq -c '[.succeeded, .failed]' <<<"$BODY"))" \
    [ "$(jq -c '[.succeeded, .failed]' <<<"$BODY")" = "[1,1]" ]
check "local is not counted freed ($(jq -c .hosts_freed <<<"$BODY"))" \
    [ "$(jq -c '.hosts_freed | index("local")' <<<"$BODY")" = null ]
check "stuck stays on local, once" stuck_up
check "its stand-in is gone" wait_for 20 eval '[ "$(standins)" = 0 ]'
check "cold1 runs on sys" wait_for 60 runs_on cold1 sys
api DELETE "/v1/instances/cold1?force=true"
check "delete cold1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
# stopped halfway: POST /v1/moves/stop while the stand-in is not ready yet
(sleep 1 && api POST /v1/moves/stop && echo "$HTTP_CODE" >"$E2E_STATE/stop.code") &
stopper=$!
json_post /v1/hosts/local/cordon '{"cordoned":false}'
t0=$(date +%s%N)
api POST /v1/hosts/local/drain
stop_ms=$((($(date +%s%N) - t0) / 1000000))
wait "$stopper" || true
e2e_log "$(grep -E "move\.|moves:" "$E2E_STATE/shoald.log" | tail -n 3 | cut -c1-200 | tr '\n' '|')"
check "POST /v1/moves/stop: 204 ($(cat "$E2E_STATE/stop.code" 2>/dev/null))" [ "$(cat "$E2E_STATE/stop.code" 2>/dev/null)" = 204 ]
check "the stopped drain answers 409, stopped by request ($HTTP_CODE in $stop_ms ms)" \
    eval '[ "$HTTP_CODE" = 409 ] && grep -q "stopped by request" <<<"$BODY"'
check "stuck still on local, once" stuck_up
check "no stand-in left after the stop" wait_for 20 eval '[ "$(standins)" = 0 ]'
fetch_events
check "event move.failed for stuck" [ "$(events_of move.failed "$sid")" -ge 1 ]
check "web still runs once on sys" eval 'runs_on web sys && [ "$(copies "$id")" = 1 ]'

# --- consolidation of a fleet spread over three hosts (local, sys and a
# third libvirtd, p3, started like sys): three httpds
# placed `spread` land one per host; a client polls each one's published
# port every 20 ms while POST /v1/consolidate moves them live onto the
# fewest hosts its dry run promised. Each guest's longest failure must be
# no longer than its own move (move.done's latency_ms). Every start's
# record is 1.5 s late (SHOAL_TEST_DELAY_AT=start.created, after the domain
# is created): a guest is ready before its start job is done, the race
# that had a stand-in's own start close the ports just switched to it.
api DELETE "/v1/instances/stuck?force=true"
api DELETE "/v1/instances/web?force=true"
e2e_stop_daemon
SHOAL_TEST_DELAY_AT=start.created:1500 e2e_start_daemon "$SHOALD" --host-uri-allow 'qemu?socket' ||
    exit 1
for h in local sys; do json_post "/v1/hosts/$h/cordon" '{"cordoned":false}'; done
check "host p3 (a libvirtd in a mount namespace of its own) starts" lvd_start_private p3 "$E2E_NS"
json_post /v1/hosts "{\"name\":\"p3\",\"uri\":\"qemu:///system?socket=$LVD/p3/sock/libvirt-sock\",\"domain_type\":\"qemu\"}"
check "add host p3 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
GUESTS="c1 c2 c3"
port_of() { echo $((8090 + ${1#c})); }
for g in $GUESTS; do
    json_post /v1/instances "{\"image\":\"httpd\",\"name\":\"$g\",\"args\":[\"80\",\"64\"],\"ports\":[{\"host\":$(port_of "$g"),\"guest\":80}],\"placement\":{\"policy\":\"spread\"}}"
    check "create $g spread (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
done
all_up() {
    for g in $GUESTS; do
        [ "$(field "$g" .state)" = running ] &&
            [ "$(ns_curl -s -m 2 "http://127.0.0.1:$(port_of "$g")/healthz")" = ok ] || return 1
    done
}
hosts_in_use() { for g in $GUESTS; do field "$g" .host; done | sort -u | wc -l; }
check "c1..c3 run and answer on their ports" wait_for 60 all_up
check "spread over 3 hosts ($(for g in $GUESTS; do field "$g" .host; done | tr '\n' ' '))" \
    [ "$(hosts_in_use)" = 3 ]
api POST "/v1/consolidate?dry_run=true"
promised=$(jq -r .hosts_after <<<"$BODY")
check "dry run: $(jq -r .hosts_before <<<"$BODY") -> $promised hosts, $(jq '.moves | length' <<<"$BODY") moves" \
    eval '[ "$HTTP_CODE" = 200 ] && [ "$promised" -ge 1 ] && [ "$promised" -lt 3 ]'
declare -A CPOLL
for g in $GUESTS; do
    ip netns exec "$E2E_NS" python3 "$(dirname "$0")/poll_gap.py" "$(port_of "$g")" "$E2E_STATE/poll-$g.out" &
    CPOLL[$g]=$!
    POLLER="$POLLER ${CPOLL[$g]}"
done
sleep 1
t0=$(date +%s%N)
api POST /v1/consolidate
cons_ms=$((($(date +%s%N) - t0) / 1000000))
cons_body=$BODY
sleep 1
for g in $GUESTS; do kill -TERM "${CPOLL[$g]}"; done
for g in $GUESTS; do wait "${CPOLL[$g]}" || true; done
POLLER=""
check "consolidate (HTTP $HTTP_CODE, $cons_ms ms, executed $(jq -r .executed <<<"$cons_body"))" \
    eval '[ "$HTTP_CODE" = 200 ] && [ "$(jq -r .executed <<<"$cons_body")" = true ]'
check "the fleet is on $promised host(s), as promised (on $(hosts_in_use))" [ "$(hosts_in_use)" = "$promised" ]
check "c1..c3 ready again and answering" wait_for 30 all_up
fetch_events
worst=0
for g in $GUESTS; do
    gid=$(field "$g" .id)
    read -r polls fails gap <"$E2E_STATE/poll-$g.out"
    move_ms=$(jq -s "[.[] | select(.type == \"move.done\" and .instance == \"$gid\") | .latency_ms] | last // 0" <<<"$EVENTS")
    moved=$(jq -s "[.[] | select(.type == \"move.started\" and .instance == \"$gid\")] | length" <<<"$EVENTS")
    e2e_log "consolidation: $g moved $moved time(s), move ${move_ms} ms; $polls polls, $fails failed, longest failure ${gap} ms"
    [ "$gap" -gt "$worst" ] && worst=$gap
    check "$g: polls ran ($polls)" [ "$polls" -gt 20 ]
    check "$g runs once ($(copies "$gid") QEMU)" [ "$(copies "$gid")" = 1 ]
    if [ "$moved" -gt 0 ]; then
        check "$g: no failure longer than its move (${gap} ms <= ${move_ms} ms)" \
            eval '[ "$move_ms" -gt 0 ] && [ "$gap" -le "$move_ms" ]'
    else
        check "$g: not moved, no failure (${gap} ms)" [ "$gap" = 0 ]
    fi
done
e2e_log "consolidation: longest failure of any guest ${worst} ms"
check "the ports were the stand-ins' until switched back (no 'no published port' in the log)" \
    eval '! grep -q "move: no published port" "$E2E_STATE/shoald.log"'
check "no stand-in left after the consolidation" wait_for 20 eval '[ "$(standins)" = 0 ]'

# --- no room for a stand-in on the target (SHOAL_TEST_FAIL_AT=move.standin
# refuses every stand-in with the create's 507): the move falls back to
# cold, says so in move.cold, and the drain succeeds with c1 answering on
# the target
t_cold=$(date +%s)
api DELETE "/v1/instances/c2?force=true"
api DELETE "/v1/instances/c3?force=true"
e2e_stop_daemon
SHOAL_TEST_FAIL_AT=move.standin e2e_start_daemon "$SHOALD" --host-uri-allow 'qemu?socket' || exit 1
src=$(field c1 .host)
c1id=$(field c1 .id)
check "c1 runs on $src after the restart" wait_for 30 runs_on c1 "$src"
api POST "/v1/hosts/$src/drain"
check "drain of $src without room for a stand-in (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "c1 runs elsewhere ($(field c1 .host)), once" \
    wait_for 30 eval '[ "$(field c1 .state)" = running ] && [ "$(field c1 .host)" != "$src" ] && [ "$(copies "$c1id")" = 1 ]'
fetch_events
check "move.cold for c1 says why" \
    eval 'jq -s "map(select(.type == \"move.cold\" and .instance == \"$c1id\")) | .[0].error" <<<"$EVENTS" | grep -q "no room for a stand-in"'
check "then move.done, no move.failed" \
    eval '[ "$(events_of move.done "$c1id")" -ge 1 ] && [ "$(events_of move.failed "$c1id")" = 0 ]'
check "no stand-in was made" [ "$(standins)" = 0 ]
check "c1 answers on its port from there" \
    wait_for 20 eval '[ "$(ns_curl -s -m 2 "http://127.0.0.1:$(port_of c1)/healthz")" = ok ]'
e2e_log "cold fallback: $(($(date +%s) - t_cold)) s"

e2e_finish
