#!/bin/bash
# End to end: bulk operations (issue 13) with real QEMU guests through
# shoald. 20 sleep guests with a label: bulk stop by selector, bulk start,
# a list with one unknown id (that item fails, the others work), bulk
# delete with force through the CLI (`shoal rm -f -l`), every one gone.
# The bulk delete's elapsed time is printed, not asserted.
# usage: daemon_bulk.sh SHOALD IMAGES_DIR [SHOAL_CLI]
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
CLI=${3:-}
N=${BULK_N:-20}
. "$(dirname "$0")/lib.sh"

for f in "$SHOALD" "$IMAGES/sleep.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
e2e_setup
e2e_start_daemon "$SHOALD" || exit 1
e2e_push_images sleep

now_ms() { date +%s%3N; }
count_state() { # SELECTOR STATE -> how many instances are in STATE
    api GET "/v1/instances?selector=$1&limit=1000"
    printf '%s' "$BODY" | jq "[.items[] | select(.state == \"$2\")] | length"
}
all_in_state() { [ "$(count_state "$1" "$2")" = "$3" ]; }
json_post() { api POST "$1" -H 'Content-Type: application/json' -d "$2"; }
# is HTTP_CODE WANT JQ VALUE: the last answer had status WANT and JQ of
# its body gives VALUE.
is() { [ "$HTTP_CODE" = "$1" ] && [ "$(jq -c "$2" <<<"$BODY")" = "$3" ]; }

# --- N sleep guests labelled tier=bulk, and one bystander without it
json_post /v1/instances "{\"image\":\"sleep\",\"name\":\"bk\",\"count\":$N,\"args\":[\"600\"],\"labels\":{\"tier\":\"bulk\"}}"
check "create $N sleep guests (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
json_post /v1/instances '{"image":"sleep","name":"bystander","args":["600"],"labels":{"tier":"other"}}'
check "create the bystander (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "all $N running" wait_for 120 all_in_state tier=bulk running "$N"
check "bystander running" wait_for 60 inst_state_is bystander running

# --- refusals: no selection is never "everything"
json_post /v1/instances/stop '{}'
check "bulk stop without a selection is 400 (got $HTTP_CODE)" [ "$HTTP_CODE" = 400 ]
api DELETE "/v1/instances?force=true"
check "bulk delete without a selector is 400 (got $HTTP_CODE)" [ "$HTTP_CODE" = 400 ]
json_post /v1/instances/stop '{"selector":"tier=="}'
check "bad selector is 400 invalid_field (got $HTTP_CODE)" is 400 .error.field '"selector"'

# --- bulk stop by selector, in one request
t0=$(now_ms)
json_post /v1/instances/stop '{"selector":"tier=bulk","timeout_s":2}'
t1=$(now_ms)
check "bulk stop is 200 (got $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "bulk stop: $N succeeded, 0 failed" \
    [ "$(jq -c '[.succeeded, .failed, (.items | length)]' <<<"$BODY")" = "[$N,0,$N]" ]
e2e_log "bulk stop of $N: $((t1 - t0)) ms"
check "all $N stopped" all_in_state tier=bulk stopped "$N"
check "bystander still running" inst_state_is bystander running
check "no QEMU left for the stopped guests" [ "$(pgrep -f "qemu-system.*$E2E_STATE" | wc -l)" = 1 ]

# --- bulk start by selector
json_post /v1/instances/start '{"selector":"tier=bulk"}'
check "bulk start: $N succeeded (HTTP $HTTP_CODE)" is 200 .succeeded "$N"
check "all $N running again" wait_for 120 all_in_state tier=bulk running "$N"

# --- a list with one unknown id: that item fails, the others work
api GET "/v1/instances/bk-2"
id2=$(jq -r .id <<<"$BODY")
json_post /v1/instances/restart "{\"ids\":[\"bk-1\",\"${id2:0:8}\",\"no-such-guest\",\"bk-3\"],\"timeout_s\":1}"
check "restart by list is 200 (got $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "3 succeeded, 1 failed" [ "$(jq -c '[.succeeded, .failed]' <<<"$BODY")" = "[3,1]" ]
check "the unknown one failed with not_found" \
    [ "$(jq -r '.items[] | select(.key == "no-such-guest") | [.ok, .error.code, .id] | @tsv' <<<"$BODY")" = "$(printf 'false\tnot_found\t')" ]
check "the id prefix resolved to bk-2" \
    [ "$(jq -r ".items[] | select(.key == \"${id2:0:8}\") | .name" <<<"$BODY")" = bk-2 ]
check "restarted guests come back" wait_for 120 all_in_state tier=bulk running "$N"

# --- progress events while a bulk call runs
ns_curl -sS -N -m 90 -H "Authorization: Bearer $E2E_TOKEN" \
    "http://127.0.0.1:$E2E_PORT/v1/events" >"$E2E_STATE/events.txt" 2>/dev/null &
evpid=$!
sleep 0.5

# --- bulk delete with force by selector: the CLI's `rm -f -l` (one
# request), or the API when no CLI was given
t0=$(now_ms)
if [ -n "$CLI" ]; then
    out=$(ip netns exec "$E2E_NS" "$CLI" --url "http://127.0.0.1:$E2E_PORT" --token "$E2E_TOKEN" \
        rm -f -l tier=bulk 2>&1) && rc=0 || rc=$?
    t1=$(now_ms)
    check "shoal rm -f -l exits 0 (got $rc)" [ "$rc" = 0 ]
    check "shoal rm printed every instance" [ "$(grep -c '^bk-' <<<"$out")" = "$N" ]
else
    api DELETE "/v1/instances?selector=tier%3Dbulk&force=true"
    t1=$(now_ms)
    check "bulk delete: $N succeeded (HTTP $HTTP_CODE)" is 200 .succeeded "$N"
fi
ms=$((t1 - t0))
e2e_log "bulk delete of $N running guests: $ms ms ($(awk "BEGIN{printf \"%.1f\", $N * 1000 / ($ms > 0 ? $ms : 1)}") instances/s)"
api GET "/v1/instances?selector=tier=bulk"
check "every bulk instance is gone" [ "$(jq '.items | length' <<<"$BODY")" = 0 ]
check "no QEMU left but the bystander's" [ "$(pgrep -f "qemu-system.*$E2E_STATE" | wc -l)" = 1 ]
check "bystander untouched" inst_state_is bystander running
sleep 1
kill "$evpid" 2>/dev/null || true
wait "$evpid" 2>/dev/null || true
check "bulk.progress events reached /v1/events" grep -q '^event: bulk.progress' "$E2E_STATE/events.txt"
check "the last progress event says $N/$N done" \
    grep -q "\"action\":\"delete\",\"done\":$N,\"total\":$N,\"failed\":0" "$E2E_STATE/events.txt"

# --- a list naming only unknown instances: 200, every item failed
json_post /v1/instances/delete '{"ids":["bk-1","bk-2"],"force":true}'
check "deleting gone instances: 200 with 2 failures" is 200 '[.succeeded, .failed]' '[0,2]'

e2e_finish
