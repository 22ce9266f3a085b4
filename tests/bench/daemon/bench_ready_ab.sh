#!/bin/bash
# bench_ready_ab.sh SHOALD SHOALD_BASE IMAGES_DIR [N]
#
# POST /v1/instances -> ready (the instance's ready_ms, measured by shoald)
# of one `sleep` guest at a time, N times (default 20) on each of two
# shoalds running side by side: SHOALD and SHOALD_BASE (a build from before
# a change), each with its own state dir, in one network namespace
# (tests/e2e/lib.sh), TCG (DOMAIN_TYPE=kvm: KVM), no network. Creates
# alternate between the two (ABBA order) so that the other tenants of a
# shared machine load both alike: the baseline is measured in the same
# run, interleaved. Prints p50/p99 of each and the ratios. Not run in CI.
set -eu
SHOALD=${1:?usage: bench_ready_ab.sh SHOALD SHOALD_BASE IMAGES_DIR [N]}
BASE_BIN=${2:?}
IMAGES=$(cd "${3:?}" && pwd)
N=${4:-20}
DTYPE=${DOMAIN_TYPE:-qemu} # kvm: forced, as --domain-type
. "$(dirname "$0")/../../e2e/lib.sh"

[ -e "$IMAGES/sleep.elf" ] || { echo "missing $IMAGES/sleep.elf (build first)"; exit 1; }
e2e_setup
ROOT=$E2E_STATE
# QEMU runs as shoald's QEMU user: it must get through to each state dir.
chmod 0711 "$ROOT"
PIDS=""
stop_all() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for _ in $(seq 1 50); do
        alive=0
        for p in $PIDS; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    E2E_PID="" E2E_STATE=$ROOT
    e2e_cleanup
}
trap stop_all EXIT

declare -A PORT TOKEN
for v in new base; do
    bin=$SHOALD
    [ $v = base ] && bin=$BASE_BIN
    E2E_STATE=$ROOT/$v
    [ $v = new ] && E2E_PORT=7878 || E2E_PORT=7879
    mkdir -p "$E2E_STATE"
    e2e_start_daemon "$bin" --no-network --domain-type "$DTYPE" || exit 1
    PIDS="$PIDS $E2E_PID"
    e2e_push_images sleep >/dev/null
    PORT[$v]=$E2E_PORT
    TOKEN[$v]=$E2E_TOKEN
done
E2E_PID=""

use() { E2E_PORT=${PORT[$1]} E2E_TOKEN=${TOKEN[$1]}; }
# one VARIANT -> prints the instance's ready_ms
one() {
    local id st r t=0
    use "$1"
    api POST /v1/instances -H 'Content-Type: application/json' \
        -d '{"image":"sleep","memory_mib":32,"args":["2000000000"]}'
    [ "$HTTP_CODE" = 201 ] || { echo "create on $1 failed: $HTTP_CODE $BODY" >&2; return 1; }
    id=$(jq -r '.id // .items[0].id' <<<"$BODY")
    while :; do
        api GET "/v1/instances/$id"
        st=$(jq -r .state <<<"$BODY")
        r=$(jq -r '.ready_ms // empty' <<<"$BODY")
        [ -n "$r" ] && break
        [ "$st" = failed ] && { echo "start on $1 failed: $BODY" >&2; return 1; }
        t=$((t + 1))
        [ $t -lt 1200 ] || { echo "start on $1 timed out" >&2; return 1; }
        sleep 0.05
    done
    api DELETE "/v1/instances/$id?force=true"
    printf '%.0f\n' "$r"
}

one new >/dev/null && one base >/dev/null # warm-up (image caches)
: >"$ROOT/new.ms"
: >"$ROOT/base.ms"
for i in $(seq 1 "$N"); do
    if [ $((i % 2)) = 1 ]; then order="new base"; else order="base new"; fi
    for v in $order; do one "$v" >>"$ROOT/$v.ms"; done
done
pct() { sort -n "$1" | awk -v p="$2" '{a[NR]=$1} END{k=int((NR-1)*p+0.5)+1; print a[k]}'; }
np50=$(pct "$ROOT/new.ms" 0.5)
np99=$(pct "$ROOT/new.ms" 0.99)
bp50=$(pct "$ROOT/base.ms" 0.5)
bp99=$(pct "$ROOT/base.ms" 0.99)
echo "POST -> ready, sleep guest, domain type $DTYPE, $N each, interleaved, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  new  ($SHOALD): p50 $np50 ms  p99 $np99 ms  (all: $(tr '\n' ' ' <"$ROOT/new.ms"))"
echo "  base ($BASE_BIN): p50 $bp50 ms  p99 $bp99 ms  (all: $(tr '\n' ' ' <"$ROOT/base.ms"))"
awk -v a="$np50" -v b="$bp50" -v c="$np99" -v d="$bp99" \
    'BEGIN{printf "  ratio new/base: p50 %.2fx  p99 %.2fx\n", a / b, c / d}'
