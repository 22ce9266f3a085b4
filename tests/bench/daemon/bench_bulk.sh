#!/bin/bash
# bench_bulk.sh SHOALD IMAGES_DIR [N]
#
# Bulk delete (issue 13): N running `sleep` guests (default 200, 32 MiB
# each) deleted by selector in ONE request (DELETE /v1/instances?selector=
# ..&force=true, run in parallel inside shoald), against the same-run
# baseline: an equal batch deleted one at a time through the per-instance
# route (DELETE /v1/instances/{id}?force=true), which is what `shoal rm -f
# -l` did before. Prints both rates and the ratio. Real QEMU through
# libvirt's embedded driver, in a network namespace of its own (the e2e
# helpers of tests/e2e/lib.sh). Not run in CI (label bench).
set -eu
SHOALD=${1:?usage: bench_bulk.sh SHOALD IMAGES_DIR [N]}
IMAGES=$(cd "${2:?}" && pwd)
N=${3:-200}
. "$(dirname "$0")/../../e2e/lib.sh"

[ -e "$IMAGES/sleep.elf" ] || { echo "missing $IMAGES/sleep.elf (build first)"; exit 1; }
e2e_setup
# idle sleep guests halt: allow many vCPUs per core (the default is 16)
e2e_start_daemon "$SHOALD" --max-instances $((N + 50)) --cpu-overcommit 1000 || exit 1
e2e_push_images sleep >/dev/null

now_ms() { date +%s%3N; }
running() { # SELECTOR -> instances running
    api GET "/v1/instances?selector=$1&state=running&limit=1000"
    jq '.items | length' <<<"$BODY"
}
# make BATCH: N running sleep guests labelled batch=BATCH
make_batch() {
    left=$N
    k=0
    while [ "$left" -gt 0 ]; do
        c=$((left < 250 ? left : 250))
        k=$((k + 1))
        api POST /v1/instances -H 'Content-Type: application/json' \
            -d "{\"image\":\"sleep\",\"name\":\"$1-$k\",\"count\":$c,\"args\":[\"3600\"],\"labels\":{\"batch\":\"$1\"}}"
        [ "$HTTP_CODE" = 201 ] || { echo "create failed: $HTTP_CODE $BODY"; exit 1; }
        left=$((left - c))
    done
    t=$(now_ms)
    until [ "$(running "batch=$1")" = "$N" ]; do
        [ $(($(now_ms) - t)) -lt 900000 ] || { echo "batch $1 did not start"; exit 1; }
        sleep 1
    done
    e2e_log "batch $1: $N guests running ($(($(now_ms) - t)) ms after the last create)"
}
rate() { awk "BEGIN{printf \"%.2f\", $1 * 1000 / $2}"; }

# --- bulk: one request
make_batch bulk
t0=$(now_ms)
api DELETE "/v1/instances?selector=batch%3Dbulk&force=true"
t1=$(now_ms)
[ "$HTTP_CODE" = 200 ] || { echo "bulk delete: $HTTP_CODE $BODY"; exit 1; }
ok=$(jq .succeeded <<<"$BODY")
bulk_ms=$((t1 - t0))
e2e_log "bulk delete: $ok/$N ok in $bulk_ms ms"

# --- baseline: one request per instance, one after another
make_batch seq
api GET "/v1/instances?selector=batch%3Dseq&limit=1000"
ids=$(jq -r '.items[].id' <<<"$BODY")
t0=$(now_ms)
fails=0
for id in $ids; do
    api DELETE "/v1/instances/$id?force=true"
    [ "$HTTP_CODE" = 204 ] || fails=$((fails + 1))
done
t1=$(now_ms)
seq_ms=$((t1 - t0))
e2e_log "one-at-a-time delete: $((N - fails))/$N ok in $seq_ms ms"

bulk_rate=$(rate "$N" "$bulk_ms")
seq_rate=$(rate "$N" "$seq_ms")
echo "N=$N guests (sleep, 32 MiB), $(nproc) cores"
echo "bulk delete by selector (1 request): $bulk_ms ms, $bulk_rate instances/s"
echo "one at a time (N requests):         $seq_ms ms, $seq_rate instances/s"
echo "ratio: $(awk "BEGIN{printf \"%.1f\", $seq_ms / $bulk_ms}")x"
e2e_stop_daemon
[ "$ok" = "$N" ] && [ "$fails" = 0 ]
