#!/bin/bash
# Benchmark (issue 15): the first byte of a connection that wakes a
# scaled-to-zero instance, against a cold start in the same run, same
# shoald, real QEMU (TCG or KVM as shoald decides), the reference httpd
# behind a published port, everything inside a network namespace this
# script creates:
#   cold   POST /v1/instances -> ready (ready_ms as shoald measures it) of
#          the same httpd with the same published port (one instance at a
#          time, deleted after): the baseline;
#   wake   one instance with "scale_to_zero": {"idle_s": 1}: wait until it
#          is idle (its domain gone), then time an HTTP GET through the
#          published port to its first byte (curl's time_starttransfer,
#          from connect(2) on); also shoald's own wake -> ready
#          (instance.wake latency_ms);
#   pool   the same for another such instance with a warm pool of 1 for
#          httpd, turned on for it alone: wait until it is idle and a pool
#          guest waits; the wake takes that guest (docs/shoald.md "Scale
#          to zero").
# N rounds of the three, interleaved (the machine is shared and noisy).
# Prints p50/p90 of each, the wakes' first byte over cold p50 (ratio) and
# minus it (targets: <= cold + 20 ms without a pool, <= 50 ms with one).
# usage: bench_scale0.sh SHOALD IMAGES_DIR [N]
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
N=${3:-10}
. "$(dirname "$0")/../../e2e/lib.sh"

[ -e "$IMAGES/httpd.elf" ] || { echo "missing $IMAGES/httpd.elf (build first)"; exit 1; }
e2e_setup
e2e_start_daemon "$SHOALD" || exit 1
api POST "/v1/images?ref=httpd:latest" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$IMAGES/httpd.elf"
[ "$HTTP_CODE" = 201 ] || { echo "push: HTTP $HTTP_CODE"; exit 1; }

pct() { # P: the P-th percentile of the numbers on stdin
    sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int((NR*p+99)/100); if (i<1) i=1; printf "%.1f", a[i]}'
}

metric() { ns_curl -sS -H "Authorization: Bearer $E2E_TOKEN" "http://127.0.0.1:$E2E_PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
pool() { # the warm pool of httpd: $1 guests
    api PATCH /v1/images/httpd -H 'Content-Type: application/json' -d "{\"warm_pool\":$1}"
    [ "$HTTP_CODE" = 200 ] || { echo "PATCH warm_pool $1: HTTP $HTTP_CODE $BODY"; exit 1; }
}
# The first byte of GET /healthz through host port $1, in ms, into file $2.
first_byte() {
    local out
    out=$(ns_curl -sS -m 30 -o /dev/null -w '%{http_code} %{time_starttransfer}' \
        "http://127.0.0.1:$1/healthz")
    [ "${out%% *}" = 200 ] || { echo "GET :$1: $out"; exit 1; }
    awk '{printf "%.1f\n", $2 * 1000}' <<<"$out" >>"$E2E_STATE/$2"
}
# web wakes cold, pw from the pool; both made before any pool (cold creates)
for n in web:8080 pw:8081; do
    api POST /v1/instances -H 'Content-Type: application/json' \
        -d "{\"image\":\"httpd\",\"name\":\"${n%%:*}\",\"args\":[\"80\",\"64\"],\"ports\":[{\"host\":${n##*:},\"guest\":80}],\"scale_to_zero\":{\"idle_s\":1}}"
    [ "$HTTP_CODE" = 201 ] || { echo "create ${n%%:*}: HTTP $HTTP_CODE $BODY"; exit 1; }
done
# Rounds interleave the three, so that the machine's load, whatever it is,
# weighs on each alike; the pool is on only for the pool wake (its guest
# boots while nothing is measured).
: >"$E2E_STATE/cold"
: >"$E2E_STATE/wake"
: >"$E2E_STATE/pool"
claimed=0
for i in $(seq "$N"); do
    # cold: create, wait for ready_ms, delete
    api POST /v1/instances -H 'Content-Type: application/json' \
        -d '{"image":"httpd","name":"cold","args":["80","64"],"ports":[{"host":8090,"guest":80}]}'
    [ "$HTTP_CODE" = 201 ] || { echo "create: HTTP $HTTP_CODE $BODY"; exit 1; }
    wait_for 60 eval '[ "$(inst_field cold .ready_ms)" != null ]' || { echo "cold $i not ready"; exit 1; }
    inst_field cold .ready_ms >>"$E2E_STATE/cold"
    api DELETE "/v1/instances/cold?force=true"
    [ "$HTTP_CODE" = 204 ] || { echo "delete: HTTP $HTTP_CODE"; exit 1; }
    # wake without a pool
    wait_for 60 inst_state_is web idle || { echo "web not idle (round $i)"; exit 1; }
    first_byte 8080 wake
    # wake from the pool
    pool 1
    wait_for 60 eval 'inst_state_is pw idle && [ "$(metric "shoal_warm_pool_guests{state=\"waiting\"}")" = 1 ]' ||
        { echo "pw not idle with a guest waiting (round $i)"; exit 1; }
    c0=$(metric shoal_warm_pool_claims_total)
    first_byte 8081 pool
    claimed=$((claimed + $(metric shoal_warm_pool_claims_total) - c0))
    pool 0
    wait_for 30 eval '[ "$(metric "shoal_warm_pool_guests{state=\"waiting\"}")$(metric "shoal_warm_pool_guests{state=\"booting\"}")" = 00 ]' || true
done
ns_curl -sS -m 2 -H "Authorization: Bearer $E2E_TOKEN" \
    "http://127.0.0.1:$E2E_PORT/v1/events?since=0" 2>/dev/null | grep '^data: ' | sed 's/^data: //' >"$E2E_STATE/ev" || true
jq -r 'select(.type=="instance.wake" and .name=="web" and .latency_ms != null) | .latency_ms' <"$E2E_STATE/ev" >"$E2E_STATE/lat" || true
jq -r 'select(.type=="instance.wake" and .name=="pw" and .latency_ms != null) | .latency_ms' <"$E2E_STATE/ev" >"$E2E_STATE/plat" || true

c50=$(pct 50 <"$E2E_STATE/cold")
c90=$(pct 90 <"$E2E_STATE/cold")
w50=$(pct 50 <"$E2E_STATE/wake")
w90=$(pct 90 <"$E2E_STATE/wake")
l50=$(pct 50 <"$E2E_STATE/lat")
p50=$(pct 50 <"$E2E_STATE/pool")
p90=$(pct 90 <"$E2E_STATE/pool")
pl50=$(pct 50 <"$E2E_STATE/plat")
dtype=$(grep -o 'domain type [a-z]*' "$E2E_STATE/shoald.log" | head -n 1)
echo "scale to zero, httpd behind a published port, $N runs each, $dtype"
printf '%-44s p50 %8s ms   p90 %8s ms\n' "cold start: POST -> ready (baseline)" "$c50" "$c90"
printf '%-44s p50 %8s ms   p90 %8s ms\n' "wake: first byte of the waking connection" "$w50" "$w90"
printf '%-44s p50 %8s ms\n' "wake: shoald's wake -> ready (latency_ms)" "$l50"
printf '%-44s p50 %8s ms   p90 %8s ms\n' "pool wake: first byte ($claimed/$N from the pool)" "$p50" "$p90"
printf '%-44s p50 %8s ms\n' "pool wake: shoald's wake -> ready" "$pl50"
awk -v w="$w50" -v c="$c50" 'BEGIN {printf "wake first byte / cold start: %.2fx, minus: %+.1f ms (target <= +20 ms)\n", w / c, w - c}'
awk -v p="$p50" -v c="$c50" -v w="$w50" 'BEGIN {printf "pool wake first byte / cold start: %.3fx, / wake without a pool: %.3fx (target p50 <= 50 ms)\n", p / c, p / w}'
api DELETE "/v1/instances/web?force=true"
api DELETE "/v1/instances/pw?force=true"
e2e_finish
