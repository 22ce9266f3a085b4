#!/bin/bash
# Readiness of a guest on a remote host (issue 17): its status port read
# through a libvirt stream (the default) against the file fetch the
# supervisor's tick does without streams (SHOAL_SERIAL_STREAMS=off), in the
# same run, rounds interleaved.
#
# One separate libvirtd (tests/e2e/lvhost.sh) reached as qemu+tcp over a
# veth. Per round shoald is started in one mode (its state kept, so the
# host and images stay), GUESTS sleep guests are created on the host one at
# a time, each waited for until running, and its ready_ms read: shoald's own
# time from the create request to the ready record (the domain's creation
# over the wire, QEMU's start, the boot, and then how the record reached
# shoald). Then they are deleted. Prints the median per mode and per round,
# the difference and the ratio stream/poll.
# usage: bench_remote_ready.sh SHOALD IMAGES_DIR [GUESTS [ROUNDS]]
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
GUESTS=${3:-10}
ROUNDS=${4:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../e2e/lib.sh"
. "$HERE/../../e2e/lvhost.sh"
command -v libvirtd >/dev/null || { echo "SKIP: no libvirtd"; exit 77; }

bench_cleanup() {
    set +e
    e2e_cleanup
    lvh_cleanup
}
e2e_setup
trap bench_cleanup EXIT
lvh_init || exit 1
lvh_start r1 1 "$E2E_NS" || exit 1

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
host_up() {
    api GET /v1/hosts/r1
    [ "$(printf '%s' "$BODY" | jq -r .state)" = up ]
}

first=1
: >"$E2E_STATE/stream.ms"
: >"$E2E_STATE/poll.ms"
for r in $(seq 1 "$ROUNDS"); do
    for mode in stream poll; do
        if [ "$mode" = poll ]; then export SHOAL_SERIAL_STREAMS=off; else unset SHOAL_SERIAL_STREAMS; fi
        e2e_start_daemon "$SHOALD" --no-network --domain-type qemu \
            --host-uri-allow 'qemu+tcp,qemu' || exit 1
        if [ "$first" = 1 ]; then
            first=0
            e2e_push_images sleep
            api POST /v1/hosts -H 'Content-Type: application/json' \
                -d "{\"name\":\"r1\",\"uri\":\"$(lvh_uri r1)\",\"domain_type\":\"qemu\"}"
        fi
        wait_for 60 host_up || { echo "host r1 not up"; exit 1; }
        : >"$E2E_STATE/round.ms"
        for i in $(seq 1 "$GUESTS"); do
            api POST /v1/instances -H 'Content-Type: application/json' \
                -d "{\"image\":\"sleep\",\"name\":\"g$i\",\"host\":\"r1\",\"args\":[\"600\"]}"
            [ "$HTTP_CODE" = 201 ] || { echo "create: HTTP $HTTP_CODE $BODY"; exit 1; }
            wait_for 30 inst_state_is "g$i" running || { echo "g$i not running"; exit 1; }
            inst_field "g$i" .ready_ms >>"$E2E_STATE/round.ms"
            api DELETE "/v1/instances/g$i?force=true"
        done
        cat "$E2E_STATE/round.ms" >>"$E2E_STATE/$mode.ms"
        printf 'round %s %-6s ready_ms median %s (%s)\n' "$r" "$mode" \
            "$(median <"$E2E_STATE/round.ms")" "$(tr '\n' ' ' <"$E2E_STATE/round.ms")"
        e2e_stop_daemon
    done
done
unset SHOAL_SERIAL_STREAMS
s=$(median <"$E2E_STATE/stream.ms")
p=$(median <"$E2E_STATE/poll.ms")
echo "remote ready_ms median: stream $s, file poll $p ($((GUESTS * ROUNDS)) guests each)"
awk -v s="$s" -v p="$p" 'BEGIN { printf "stream - poll: %.0f ms; stream/poll: %.2fx\n", s - p, s / p }'
e2e_finish
