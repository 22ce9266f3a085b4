#!/bin/bash
# Benchmark (issue 17): the longest outage a client of a published port sees
# while its instance is moved by a drain, live (--move live: a ready
# stand-in carries the port) against cold (--move cold: stop, re-home,
# start) in the same run: the same two real hosts (the embedded local host
# and a private libvirtd of this machine in this script's network
# namespace, as e2e_daemon_moves), the reference httpd on port 8080, a
# client polling /healthz every 20 ms (tests/e2e/poll_gap.py). Each mode
# N times, the instance drained local -> sys and back alternately. Prints
# per move the longest failure and the drain's duration, then the worst
# of each mode and live / cold (ratio).
# usage: bench_moves.sh SHOALD IMAGES_DIR [N]
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
N=${3:-3}
E2E=$(cd "$(dirname "$0")/../../e2e" && pwd)
. "$E2E/lib.sh"
. "$E2E/lvdlocal.sh"

[ -e "$IMAGES/httpd.elf" ] || { echo "missing $IMAGES/httpd.elf (build first)"; exit 1; }
e2e_setup
trap lvd_cleanup EXIT
lvd_init || exit 1
nsenter --net=/run/netns/"$E2E_NS" libvirtd --config "$LVD/libvirtd.conf" \
    --pid-file "$LVD/libvirtd.pid" >>"$LVD/libvirtd.out" 2>&1 &
LVD_PID=$!
wait_for 30 test -S "$SOCK" || { echo "libvirtd did not start"; exit 1; }

json_post() { api POST "$1" -H 'Content-Type: application/json' -d "$2"; }
field() {
    api GET "/v1/instances/web"
    jq -r "$1" <<<"$BODY"
}
runs_on() { [ "$(field .state)" = running ] && [ "$(field .host)" = "$1" ]; }
answers() { [ "$(ns_curl -s -m 2 http://127.0.0.1:8080/healthz)" = ok ]; }

# one_mode MODE: N drains with --move MODE; prints a line per move and
# leaves the worst gap in WORST
one_mode() {
    local mode=$1 from=local to=sys t0 t1 polls fails gap
    WORST=0
    e2e_start_daemon "$SHOALD" --host-uri-allow 'qemu?socket' --move "$mode" || exit 1
    api GET /v1/hosts/sys
    if [ "$HTTP_CODE" != 200 ]; then
        json_post /v1/hosts "{\"name\":\"sys\",\"uri\":\"qemu:///system?socket=$SOCK\",\"domain_type\":\"qemu\"}"
        api POST "/v1/images?ref=httpd:latest" -H 'Content-Type: application/octet-stream' \
            --data-binary "@$IMAGES/httpd.elf"
    fi
    json_post /v1/instances '{"image":"httpd","name":"web","host":"local","args":["80","64"],"ports":[{"host":8080,"guest":80}]}'
    wait_for 60 runs_on local && wait_for 20 answers || { echo "web not up"; exit 1; }
    for i in $(seq 1 "$N"); do
        ip netns exec "$E2E_NS" python3 "$E2E/poll_gap.py" 8080 "$E2E_STATE/poll.out" &
        poller=$!
        sleep 1
        t0=$(date +%s%N)
        api POST "/v1/hosts/$from/drain"
        t1=$(date +%s%N)
        wait_for 60 runs_on "$to" && wait_for 30 answers || true
        sleep 0.5
        kill -TERM "$poller"
        wait "$poller" || true
        read -r polls fails gap <"$E2E_STATE/poll.out"
        echo "$mode move $i ($from -> $to, HTTP $HTTP_CODE): longest failure $gap ms ($fails of $polls polls failed), drain call $(((t1 - t0) / 1000000)) ms"
        grep -E "move\.(done|failed)" "$E2E_STATE/shoald.log" | tail -n 1 | cut -c1-220 || true
        [ "$gap" -gt "$WORST" ] && WORST=$gap
        json_post "/v1/hosts/$from/cordon" '{"cordoned":false}'
        local x=$from
        from=$to
        to=$x
    done
    api DELETE "/v1/instances/web?force=true"
    e2e_stop_daemon
}

COLD=0 LIVE=0
if [ "${MOVES_ONLY:-cold}" = cold ] || [ -z "${MOVES_ONLY:-}" ]; then one_mode cold; COLD=$WORST; fi
if [ "${MOVES_ONLY:-live}" = live ] || [ -z "${MOVES_ONLY:-}" ]; then one_mode live; LIVE=$WORST; fi
echo "longest failure seen by a client polling every 20 ms: live $LIVE ms, cold $COLD ms"
awk -v l="$LIVE" -v c="$COLD" 'BEGIN { printf "live / cold = %.3f\n", (c > 0 ? l / c : 0) }'
