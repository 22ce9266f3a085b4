#!/bin/bash
# Warm pools (issue 15): POST /v1/instances -> ready from a warm pool
# against a cold create of the same image, in the same run and the same
# shoald, the same from the pool with a large environment (4 variables of
# 950 bytes: a ~3.9 KiB configuration record through the guest's UART,
# near the 4095 bytes a create's arguments and environment may take),
# and the host memory (PSS) of an idle pool guest's QEMU against an idle
# running guest's. ready_ms is shoald's own figure for each instance
# (from the request's arrival to the guest's ready record), so neither side
# pays for the client's polling.
#
# usage: bench_pool.sh SHOALD IMAGES_DIR [N]   (N creates of each; default 20)
# Prints p50/p99 of both, the ratio, and both PSS figures. The daemon, its
# bridge and guests live in a network namespace this script creates and
# removes (tests/e2e/lib.sh).
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
N=${3:-20}
. "$(dirname "$0")/../../e2e/lib.sh"

e2e_setup
e2e_start_daemon "$SHOALD" --domain-type qemu >/dev/null || exit 1
e2e_push_images sleep >/dev/null

# create [ENV_JSON]: one instance of sleep 600; prints its id
create() {
    api POST /v1/instances -H 'Content-Type: application/json' \
        -d "{\"image\":\"sleep\",\"args\":[\"600\"],\"env\":${1:-{\}}}"
    printf '%s' "$BODY" | jq -r '.items[0].id'
}
BIG_ENV=$(jq -cn '[range(4)] | map({key: "BIG\(.)", value: ("v" * 950)}) | from_entries')
# one [ENV_JSON]: one create, wait until running; prints its ready_ms,
# then deletes it
one() {
    local id ms
    id=$(create "${1:-}")
    wait_for 60 inst_state_is "$id" running || { echo "instance $id never ran" >&2; exit 1; }
    ms=$(inst_field "$id" .ready_ms)
    api DELETE "/v1/instances/$id?force=true"
    echo "$ms"
}
# QEMUs of this state dir started as pool guests, and the ids of instances
pool_ready() {
    local n=0
    for f in "$E2E_STATE"/run/*.status; do
        id=$(basename "$f" .status)
        grep -q "^shoal-status pool-wait" "$f" 2>/dev/null || continue
        grep -q "^shoal-status ready" "$f" 2>/dev/null && continue
        pgrep -f "guest=shoal-$id" >/dev/null && n=$((n + 1))
    done
    echo $n
}
stats() { sort -n | awk '{a[NR]=$1} END {i50=int(0.5*(NR-1)+0.5)+1; i99=int(0.99*(NR-1)+0.5)+1; printf "%.1f %.1f", a[i50], a[i99]}'; }
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }

# warm-up: the first create pays for the image's materialization
one >/dev/null
COLD=$(for _ in $(seq 1 "$N"); do one; done | stats)

api PATCH /v1/images/sleep -H 'Content-Type: application/json' -d '{"warm_pool":2}'
WARM=$(for _ in $(seq 1 "$N"); do
    wait_for 60 eval '[ "$(pool_ready)" -ge 1 ]' || { echo "no pool guest" >&2; exit 1; }
    sleep 0.1 # shoald's pool sees it waiting within its 20 ms boot tick
    one
done | stats)
grep -c "from the warm pool (configuration taken" "$E2E_STATE/shoald.log" >"$E2E_STATE/nwarm"
WARM_BIG=$(for _ in $(seq 1 "$N"); do
    wait_for 60 eval '[ "$(pool_ready)" -ge 1 ]' || { echo "no pool guest" >&2; exit 1; }
    sleep 0.1
    one "$BIG_ENV"
done | stats)
NWARM_BIG=$(( $(grep -c "from the warm pool (configuration taken" "$E2E_STATE/shoald.log") - $(cat "$E2E_STATE/nwarm") ))

# memory: 3 idle running guests (cold) vs 3 idle pool guests, 10 s settled
api PATCH /v1/images/sleep -H 'Content-Type: application/json' -d '{"warm_pool":0}'
sleep 2
RUN_IDS=""
for _ in 1 2 3; do
    id=$(create)
    wait_for 60 inst_state_is "$id" running
    RUN_IDS="$RUN_IDS $id"
done
api PATCH /v1/images/sleep -H 'Content-Type: application/json' -d '{"warm_pool":3}'
wait_for 60 eval '[ "$(pool_ready)" -ge 3 ]'
sleep 10
RUN_PSS=0
for id in $RUN_IDS; do
    RUN_PSS=$((RUN_PSS + $(pss_kib "$(pgrep -f "guest=shoal-$id" | head -n 1)") / 3))
done
POOL_PSS=0
for p in $(pgrep -f "qemu-system.*$E2E_STATE.*shoal.pool=1"); do
    POOL_PSS=$((POOL_PSS + $(pss_kib "$p") / 3))
done

read -r c50 c99 <<<"$COLD"
read -r w50 w99 <<<"$WARM"
read -r b50 b99 <<<"$WARM_BIG"
echo "warm pool bench: $N creates each, sleep image, TCG/KVM as shoald chose ($(grep -o 'domain type [a-z]*' "$E2E_STATE/shoald.log" | head -n 1))"
echo "  cold create  -> ready: p50 $c50 ms, p99 $c99 ms"
echo "  warm pool    -> ready: p50 $w50 ms, p99 $w99 ms ($(cat "$E2E_STATE/nwarm") of $N from the pool)"
awk -v c="$c50" -v w="$w50" -v c9="$c99" -v w9="$w99" \
    'BEGIN {printf "  warm / cold: p50 %.3fx, p99 %.3fx\n", w / c, w9 / c9}'
echo "  warm pool, 4 x 950-byte env -> ready: p50 $b50 ms, p99 $b99 ms ($NWARM_BIG of $N from the pool)"
awk -v c="$c50" -v w="$b50" -v c9="$c99" -v w9="$b99" \
    'BEGIN {printf "  warm (large env) / cold: p50 %.3fx, p99 %.3fx\n", w / c, w9 / c9}'
awk -v r="$RUN_PSS" -v p="$POOL_PSS" \
    'BEGIN {printf "  idle QEMU PSS, mean of 3: running guest %.2f MiB, pool guest %.2f MiB (%.3fx)\n", r / 1024, p / 1024, p / r}'
e2e_stop_daemon >/dev/null
