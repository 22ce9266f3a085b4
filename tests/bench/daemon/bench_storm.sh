#!/bin/bash
# bench_storm.sh SHOALD IMAGES_DIR [N] [PARALLEL...]
#
# Boot storm (issue 13): ONE POST /v1/instances with count N (default 200)
# of the `sleep` image, timed from the request to every instance `running`,
# with the p50/p99 of the instances' ready_ms (create -> guest ready). Then
# the instantiation cost as the fleet grows: a batch of 10 with nothing
# running, and the same batch again with the N guests running (p50 of
# ready_ms, and the ratio). All of it once per start parallelism given
# (default: "4 auto"; 4 is the worker count before issue 13; "default"
# passes no --start-parallel flag; "base" runs $SHOALD_BASE, a shoald built
# from before issue 13, without it: the baseline in the same run), each
# with a fresh shoald and state dir, in the same run, and a ratio of the
# storm times against the first. Real QEMU through libvirt's embedded
# driver, in a network namespace of its own (tests/e2e/lib.sh); guests
# without network (--no-network), --cpu-overcommit 1000 and a memory
# overcommit so that capacity is not the limit. Not run in CI (label bench).
#
# Evidence of where the time goes, per configuration: the CPU seconds of
# shoald (and its libvirt threads) and of all QEMU processes during the
# storm (from /proc), and shoald's own per-start timings when it logs them
# (`start ... domain created in N ms`, debug lines with -v).
set -eu
SHOALD=${1:?usage: bench_storm.sh SHOALD IMAGES_DIR [N] [PARALLEL...]}
IMAGES=$(cd "${2:?}" && pwd)
N=${3:-200}
shift $(($# < 3 ? $# : 3))
CONFIGS=${*:-4 auto}
SMALL=${SMALL:-10}
MEM=${MEM:-32}
. "$(dirname "$0")/../../e2e/lib.sh"

[ -e "$IMAGES/sleep.elf" ] || { echo "missing $IMAGES/sleep.elf (build first)"; exit 1; }
e2e_setup
# each config below gets a state dir of its own: drop the one e2e_setup made
rmdir "$E2E_STATE" 2>/dev/null || true
E2E_STATE=""

now_ms() { date +%s%3N; }
# CPU seconds (user+sys) of the processes whose command line matches $1.
cpu_s() {
    local t=0 p
    for p in $(pgrep -f "$1"); do
        [ -r "/proc/$p/stat" ] || continue
        t=$((t + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    awk "BEGIN{printf \"%.1f\", $t / $(getconf CLK_TCK)}"
}
# running BATCH -> instances of the batch that became ready: running, or
# exited (a sleep guest exits only after its ready record; under a heavy
# storm a guest may calibrate its clock badly and end its sleep early).
# Polled through /metrics (all instances, minus those of earlier batches:
# BASE), which costs shoald far less than listing up to 1,000 instances
# twice a second while it boots them.
BASE=0
running() {
    local r x
    api GET /metrics
    r=$(sed -n 's/^shoal_instances{state="running"} //p' <<<"$BODY")
    x=$(sed -n 's/^shoal_instances{state="exited"} //p' <<<"$BODY")
    echo $((${r:-0} + ${x:-0} - BASE))
}
# create BATCH COUNT: one request; sets T_POST (ms, before the request)
create() {
    T_POST=$(now_ms)
    api POST /v1/instances -H 'Content-Type: application/json' \
        -d "{\"image\":\"sleep\",\"name\":\"$1\",\"count\":$2,\"memory_mib\":$MEM,\"args\":[\"2000000000\"],\"labels\":{\"batch\":\"$1\"}}"
    [ "$HTTP_CODE" = 201 ] || { echo "create $1 failed: $HTTP_CODE $BODY"; exit 1; }
    T_CREATED=$(now_ms)
}
# wait_all BATCH COUNT LIMIT_S: until COUNT are running; sets T_ALL (ms after T_POST)
wait_all() {
    local n=0 last=-1
    while :; do
        n=$(running "$1")
        [ "$n" = "$2" ] && break
        if [ "$n" != "$last" ]; then
            e2e_log "  $1: $n/$2 running after $(($(now_ms) - T_POST)) ms"
            last=$n
        fi
        [ $(($(now_ms) - T_POST)) -lt $(($3 * 1000)) ] || { echo "batch $1 did not start ($n/$2)"; return 1; }
        if grep -q '^shoal_instances{state="failed"} [1-9]' <<<"$BODY"; then
            api GET "/v1/instances?state=failed&limit=1000"
            echo "batch $1: failures: $(jq -c '[.items[] | {name, last_error}]' <<<"$BODY" | head -c 600)"
            return 1
        fi
        sleep 0.5
    done
    T_ALL=$(($(now_ms) - T_POST))
}
# pct BATCH P -> P-th percentile of the batch's ready_ms
pct() {
    api GET "/v1/instances?selector=batch%3D$1&limit=1000"
    jq "[.items[].ready_ms] | sort | .[((length - 1) * $2 / 100 | floor)] | floor" <<<"$BODY"
}
maxready() {
    api GET "/v1/instances?selector=batch%3D$1&limit=1000"
    jq '[.items[].ready_ms] | max | floor' <<<"$BODY"
}

RESULTS=""
for cfg in $CONFIGS; do
    flags=""
    bin=$SHOALD
    case $cfg in
    default) ;;
    base) bin=${SHOALD_BASE:?base needs SHOALD_BASE, a shoald from before --start-parallel} ;;
    *) flags="--start-parallel $cfg" ;;
    esac
    E2E_STATE=$(mktemp -d /tmp/shoal-storm.XXXXXX)
    # 32 MiB guests touch a few MiB: overcommit memory so that 1,000 fit.
    # shellcheck disable=SC2086
    e2e_start_daemon "$bin" --no-network --max-instances $((N + 100)) \
        --cpu-overcommit 1000 --mem-overcommit 8 $flags || exit 1
    e2e_push_images sleep >/dev/null
    e2e_log "== start parallelism: $cfg"

    BASE=0
    create s0 "$SMALL"
    wait_all s0 "$SMALL" 300
    s0_p50=$(pct s0 50)
    e2e_log "batch of $SMALL at 0 running: all ready in $T_ALL ms, ready_ms p50 $s0_p50"

    qemu0=$(cpu_s "qemu-system.*$E2E_STATE")
    d0=$(cpu_s "state-dir $E2E_STATE --listen")
    BASE=$SMALL
    create storm "$N"
    e2e_log "storm: POST of $N answered in $((T_CREATED - T_POST)) ms"
    wait_all storm "$N" 1800
    storm_ms=$T_ALL
    qemu1=$(cpu_s "qemu-system.*$E2E_STATE")
    d1=$(cpu_s "state-dir $E2E_STATE --listen")
    p50=$(pct storm 50)
    p99=$(pct storm 99)
    mx=$(maxready storm)
    e2e_log "storm of $N: all running after $storm_ms ms (max ready_ms $mx), ready_ms p50 $p50 p99 $p99"
    e2e_log "  CPU during the storm: shoald+libvirt $(awk "BEGIN{print $d1 - $d0}") s, QEMU $(awk "BEGIN{print $qemu1 - $qemu0}") s (wall $((storm_ms / 1000)) s, $(nproc) CPUs)"
    grep -o 'domain created in [0-9]* ms' "$E2E_STATE/shoald.log" 2>/dev/null |
        awk '{print $4}' | sort -n | awk '{a[NR]=$1} END{k = int(NR * 0.99); if (k < 1) k = 1; if (NR) printf "  domain creation (libvirt + QEMU start) per start: p50 %d ms, p99 %d ms (%d starts)\n", a[int((NR+1)/2)], a[k], NR}'

    # What N idle guests cost the host while nothing else happens.
    q0=$(cpu_s "qemu-system.*$E2E_STATE")
    d0=$(cpu_s "state-dir $E2E_STATE --listen")
    sleep 5
    q1=$(cpu_s "qemu-system.*$E2E_STATE")
    d1=$(cpu_s "state-dir $E2E_STATE --listen")
    e2e_log "  idle, $((N + SMALL)) running, 5 s: QEMU $(awk "BEGIN{print $q1 - $q0}") CPU s, shoald $(awk "BEGIN{print $d1 - $d0}") CPU s"

    BASE=$((SMALL + N))
    create s1 "$SMALL"
    wait_all s1 "$SMALL" 600
    s1_p50=$(pct s1 50)
    e2e_log "batch of $SMALL at $N running: all ready in $T_ALL ms, ready_ms p50 $s1_p50"
    ratio=$(awk -v a="$s1_p50" -v b="$s0_p50" 'BEGIN{if (b <= 0) b = 1; printf "%.2f", a / b}')
    RESULTS="$RESULTS$(printf '%-8s %6d %10d %8d %8d %10d %10d %7sx' "$cfg" "$N" "$storm_ms" "$p50" "$p99" "$s0_p50" "$s1_p50" "$ratio")
"
    t=$(now_ms)
    api DELETE "/v1/instances?selector=batch&force=true" -m 3600 # ~65 s for 1,000
    e2e_log "deleted everything ($HTTP_CODE) in $(($(now_ms) - t)) ms"
    e2e_stop_daemon
    pkill -9 -f "qemu-system.*$E2E_STATE" 2>/dev/null || true
    rm -rf "$E2E_STATE"
done
E2E_STATE=""

echo "N=$N sleep guests ($MEM MiB, no network), $(nproc) CPUs, $(uname -r)"
echo "parallel      N  all-ready  p50(ms)  p99(ms)  small@0   small@N   slowdown"
printf '%s' "$RESULTS"
first=$(printf '%s' "$RESULTS" | head -n 1 | awk '{print $3}')
printf '%s' "$RESULTS" | awk -v f="$first" '{printf "storm time vs the first: %s %.2fx\n", $1, $3 / f}'
[ "$E2E_FAILS" -eq 0 ]
