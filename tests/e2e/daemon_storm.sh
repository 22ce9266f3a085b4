#!/bin/bash
# End to end: a small boot storm (issue 13) with real QEMU guests through
# shoald. `shoal run --count N` (default 30) of the sleep image in ONE
# request: every instance reaches running, /v1/events carries the batch's
# batch.progress events (named by the first instance's id, counts that
# never go down, the last one final with ready == total), and the CLI,
# which follows the same events, prints the ids and then the final count.
# Then all or nothing: a batch that does not fit is refused whole (507)
# and leaves no instance behind.
# usage: daemon_storm.sh SHOALD IMAGES_DIR SHOAL_CLI
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
CLI=$3
N=${STORM_N:-30}
. "$(dirname "$0")/lib.sh"

for f in "$SHOALD" "$CLI" "$IMAGES/sleep.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
e2e_setup
# no bridge: the storm is about starts; --cpu-overcommit so that N idle
# 1-vCPU guests fit a 2-CPU machine
e2e_start_daemon "$SHOALD" --no-network --cpu-overcommit 100 --max-instances $((N + 20)) || exit 1
e2e_push_images sleep
now_ms() { date +%s%3N; }
jqt() { jq -e "$@" >/dev/null; } # jqt FILTER FILE: FILTER is true

# --- the events, from before the request on
ns_curl -sSN -H "Authorization: Bearer $E2E_TOKEN" "http://127.0.0.1:$E2E_PORT/v1/events" \
    >"$E2E_STATE/events.sse" 2>/dev/null &
EV_PID=$!
sleep 0.5

# --- one request through the CLI, which waits for the batch (not a TTY:
# plain progress lines on stderr, ids on stdout)
t0=$(now_ms)
rc=0
ip netns exec "$E2E_NS" "$CLI" --url "http://127.0.0.1:$E2E_PORT" --token "$E2E_TOKEN" \
    run --count "$N" --name st -l tier=storm sleep -- 2000000000 \
    >"$E2E_STATE/run.out" 2>"$E2E_STATE/run.err" || rc=$?
t1=$(now_ms)
e2e_log "shoal run --count $N returned $rc after $((t1 - t0)) ms"
check "shoal run --count $N exits 0" [ "$rc" = 0 ]
check "it printed $N ids" [ "$(grep -c -E '^[0-9a-f]{12}$' "$E2E_STATE/run.out")" = "$N" ]
last=$(tail -n 1 "$E2E_STATE/run.err")
e2e_log "its last line: $last"
check "its last line is the final count" grep -q -E "^$N/$N running" <<<"$last"
check "it printed progress lines" [ "$(grep -c ' started, ' "$E2E_STATE/run.err")" -ge 1 ]

api GET "/v1/instances?selector=tier%3Dstorm&limit=1000"
running=$(jq '[.items[] | select(.state == "running")] | length' <<<"$BODY")
check "all $N running when the CLI returned ($running)" [ "$running" = "$N" ]
e2e_log "ready_ms p50 $(jq '[.items[].ready_ms] | sort | .[length / 2 | floor]' <<<"$BODY"), max $(jq '[.items[].ready_ms] | max' <<<"$BODY")"

# --- libvirt's event thread of each guest is on a stack of shoald's own
# (daemon/tstack.c: glibc's fork child writes into every stack glibc made,
# a page copy per thread per fork), of shoald's default size, 512 KiB
# (shoald.c, SHOALD_THREAD_STACK), not glibc's 8 MiB. The stacks are 512 KiB
# plus a 4 KiB guard: carved from slabs of 16 with guard markers (Linux
# 6.13), or a mapping each with the guard mprotected (older kernels).
# Sanitizer builds keep glibc's threads and stacks.
stacks=0
while read -r range perms _ _ _ path; do
    [ "$perms" = rw-p ] && [ -z "$path" ] || continue
    size=$((16#${range#*-} - 16#${range%-*}))
    if [ $((size % 528384)) = 0 ]; then
        stacks=$((stacks + size / 528384))
    elif [ "$size" = 524288 ]; then
        stacks=$((stacks + 1))
    fi
done <"/proc/$E2E_PID/maps"
api GET /metrics
live=$(sed -n 's/^shoal_thread_stacks{state="live"} //p' <<<"$BODY")
if ldd "$SHOALD" | grep -q -E 'lib[at]san'; then
    e2e_log "sanitizer build: thread stacks not checked ($stacks of 512 KiB, ${live:-no} live)"
else
    check "room for at least $N thread stacks of 512 KiB in shoald ($stacks)" [ "$stacks" -ge "$N" ]
    check "at least $N threads on shoald's own stacks (${live:-none})" [ "${live:-0}" -ge "$N" ]
fi

# --- the batch's events
sleep 1
kill "$EV_PID" 2>/dev/null || true
wait "$EV_PID" 2>/dev/null || true
batch=$(head -n 1 "$E2E_STATE/run.out")
sed -n 's/^data: //p' "$E2E_STATE/events.sse" |
    jq -c --arg b "$batch" 'select(.type == "batch.progress" and .batch == $b)' >"$E2E_STATE/progress.json"
nprog=$(wc -l <"$E2E_STATE/progress.json")
e2e_log "$nprog batch.progress events; last: $(tail -n 1 "$E2E_STATE/progress.json" | head -c 300)"
check "batch.progress events arrived ($nprog)" [ "$nprog" -ge 2 ]
check "the last one is final with ready == total == $N" \
    jqt -s --argjson n "$N" 'last | .final == true and .ready == $n and .total == $n and .failed == 0 and .done == $n' "$E2E_STATE/progress.json"
check "only the last one is final" jqt -s '[.[] | select(.final)] | length == 1' "$E2E_STATE/progress.json"
check "counts never go down" jqt -s '[range(1; length) as $i | .[$i].ready >= .[$i - 1].ready and .[$i].started >= .[$i - 1].started] | all' "$E2E_STATE/progress.json"
check "started >= ready in every event" jqt -s 'map(.started >= .ready) | all' "$E2E_STATE/progress.json"
# at most two a second (plus the final one), over the events' time span
span=$(jq -s '(last.time | fromdateiso8601) - (first.time | fromdateiso8601)' "$E2E_STATE/progress.json")
check "rate-limited ($nprog events over ${span} s)" [ "$nprog" -le $((2 * span + 3)) ]

# --- all or nothing: a batch that does not fit is refused whole
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"sleep","name":"toobig","count":100,"args":["2000000000"],"labels":{"tier":"toobig"}}'
check "a batch over the slots is refused (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 507 ]
api GET "/v1/instances?selector=tier%3Dtoobig&limit=1000"
check "and leaves no instance behind" [ "$(jq '.items | length' <<<"$BODY")" = 0 ]

api DELETE "/v1/instances?selector=tier%3Dstorm&force=true"
ok=$(jq .succeeded <<<"$BODY")
check "bulk delete of the storm (HTTP $HTTP_CODE, $ok ok)" [ "$HTTP_CODE:$ok" = "200:$N" ]
e2e_finish
