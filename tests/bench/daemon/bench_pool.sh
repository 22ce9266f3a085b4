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
#
# bench_pool.sh SHOALD IMAGES_DIR N refill [ROUNDS] [MODES]: claims made
# while a refill runs, with shoald's refill settings (docs/shoald.md "Warm
# pools") compared in the same run, each round a shoald of its own, the
# modes alternated ROUNDS times (default 3). MODES (default "default old"):
#   default  refills at nice 19, held while a claim is in flight
#   qemu     the hold, and nice 19 for QEMU only, libvirt's create of it
#            at shoald's priority (SHOAL_POOL_REFILL_NICE_CREATE=off)
#   nice     nice 19 only (SHOAL_POOL_REFILL_HOLD=off)
#   hold     the hold only (SHOAL_POOL_REFILL_NICE=0)
#   old      neither (both knobs): the behaviour before
# A round is N pairs: with a pool of 2 waiting, one create takes a guest
# (its refill follows at once, or after its hand-over with the hold), a
# second one follows 50-450 ms later (cycling, so that it meets every
# phase of the refill: libvirt's create, QEMU's start, the guest's boot).
# Prints p50/p99 of the first and of the second creates' ready_ms per mode
# and round, and over all rounds of each mode.
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
N=${3:-20}
MODE=${4:-}
ROUNDS=${5:-3}
MODES=${6:-default old}
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

# refill mode: N pairs of claims, the second while the first's refill runs
# (see the top); one line per pair: the first's and the second's ready_ms,
# whether both came from the pool (1/0)
pairs() {
    local a b k both
    for k in $(seq 0 $((N - 1))); do
        wait_for 60 eval '[ "$(pool_ready)" -ge 2 ]' || { echo "no pool of 2" >&2; exit 1; }
        sleep 0.1
        a=$(create)
        sleep "$(printf '0.%02d' $((k % 5 * 10 + 5)))"
        b=$(create)
        wait_for 60 inst_state_is "$a" running && wait_for 60 inst_state_is "$b" running ||
            { echo "instance $a or $b never ran" >&2; exit 1; }
        both=$(grep -c -e "instance $a .*from the warm pool" -e "instance $b .*from the warm pool" \
            "$E2E_STATE/shoald.log" || true)
        echo "$(inst_field "$a" .ready_ms) $(inst_field "$b" .ready_ms) $((both == 2))"
        api DELETE "/v1/instances/$a?force=true"
        api DELETE "/v1/instances/$b?force=true"
    done
}
mode_env() { # the knobs of mode $1
    unset SHOAL_POOL_REFILL_NICE SHOAL_POOL_REFILL_HOLD SHOAL_POOL_REFILL_NICE_CREATE
    case $1 in
    default) ;;
    qemu) export SHOAL_POOL_REFILL_NICE_CREATE=off ;;
    nice) export SHOAL_POOL_REFILL_HOLD=off ;;
    hold) export SHOAL_POOL_REFILL_NICE=0 ;;
    old) export SHOAL_POOL_REFILL_NICE=0 SHOAL_POOL_REFILL_HOLD=off ;;
    *) echo "unknown mode $1" >&2; exit 2 ;;
    esac
}
if [ "$MODE" = refill ]; then
    e2e_stop_daemon >/dev/null
    echo "warm pool claims during a refill: $N pairs a round, $ROUNDS rounds of each of: $MODES"
    for mode in $MODES; do : >"$E2E_STATE/all.$mode"; done
    for r in $(seq 1 "$ROUNDS"); do
        for mode in $MODES; do
            mode_env "$mode"
            load=$(cut -d' ' -f1 /proc/loadavg)
            e2e_start_daemon "$SHOALD" --domain-type qemu >/dev/null || exit 1
            api PATCH /v1/images/sleep -H 'Content-Type: application/json' -d '{"warm_pool":2}'
            pairs >"$E2E_STATE/round"
            api PATCH /v1/images/sleep -H 'Content-Type: application/json' -d '{"warm_pool":0}'
            e2e_stop_daemon >/dev/null
            cat "$E2E_STATE/round" >>"$E2E_STATE/all.$mode"
            read -r a50 a99 <<<"$(cut -d' ' -f1 "$E2E_STATE/round" | stats)"
            read -r b50 b99 <<<"$(cut -d' ' -f2 "$E2E_STATE/round" | stats)"
            printf '  round %d, %-7s (load %5s): first p50 %4s p99 %5s ms; during a refill p50 %4s p99 %5s ms (%s of %s pairs from the pool)\n' \
                "$r" "$mode" "$load" "$a50" "$a99" "$b50" "$b99" \
                "$(awk '$3 == 1' "$E2E_STATE/round" | wc -l)" "$N"
        done
    done
    mode_env default
    for mode in $MODES; do
        read -r a50 a99 <<<"$(cut -d' ' -f1 "$E2E_STATE/all.$mode" | stats)"
        read -r b50 b99 <<<"$(cut -d' ' -f2 "$E2E_STATE/all.$mode" | stats)"
        printf '  all rounds, %-7s: first p50 %4s p99 %5s ms; during a refill p50 %4s p99 %5s ms; claims over 60 ms: %s of %s\n' \
            "$mode" "$a50" "$a99" "$b50" "$b99" \
            "$(cut -d' ' -f1,2 "$E2E_STATE/all.$mode" | tr ' ' '\n' | awk '$1 > 60' | wc -l)" \
            "$((2 * $(wc -l <"$E2E_STATE/all.$mode")))"
    done
    exit 0
fi
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
