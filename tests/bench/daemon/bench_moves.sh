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
# Then a consolidation: a third host (p3, a libvirtd in a mount namespace
# of its own, lvd_start_private), G httpds placed `spread` (so G/3 a
# host), a client polling each one's published port every 20 ms, and
# POST /v1/consolidate, with --move cold, then --move live. Prints per
# guest its move (from -> to, and for a live one its duration from
# move.done) and its longest failure, then the worst of each mode and
# live / cold.
# usage: bench_moves.sh SHOALD IMAGES_DIR [N] [G]
#   MOVES_ONLY=cold|live: one mode; MOVES_PART=drain|consolidate: one part
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
N=${3:-3}
G=${4:-6}
PART=${MOVES_PART:-}
E2E=$(cd "$(dirname "$0")/../../e2e" && pwd)
. "$E2E/lib.sh"
. "$E2E/lvdlocal.sh"

[ -e "$IMAGES/httpd.elf" ] || { echo "missing $IMAGES/httpd.elf (build first)"; exit 1; }
e2e_setup
trap lvd_cleanup EXIT
lvd_init || exit 1
lvd_start_private sys "$E2E_NS" || { echo "libvirtd did not start"; exit 1; }
SOCK=$LVD/sys/sock/libvirt-sock

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

# consolidate_mode MODE: G guests spread over local, sys and p3, one poller
# each, POST /v1/consolidate; a line per guest, the worst gap in WORST
consolidate_mode() {
    local mode=$1 g i id host0 host1 polls fails gap move_ms t0 ms
    local -A poller from
    WORST=0
    e2e_start_daemon "$SHOALD" --host-uri-allow 'qemu?socket' --move "$mode" || exit 1
    for h in sys p3; do
        api GET "/v1/hosts/$h"
        [ "$HTTP_CODE" = 200 ] && continue
        local sock=$SOCK
        [ "$h" = p3 ] && sock=$LVD/p3/sock/libvirt-sock
        json_post /v1/hosts "{\"name\":\"$h\",\"uri\":\"qemu:///system?socket=$sock\",\"domain_type\":\"qemu\"}"
    done
    api GET /v1/images/httpd:latest
    [ "$HTTP_CODE" = 200 ] || api POST "/v1/images?ref=httpd:latest" -H 'Content-Type: application/octet-stream' \
        --data-binary "@$IMAGES/httpd.elf"
    for h in local sys p3; do json_post "/v1/hosts/$h/cordon" '{"cordoned":false}'; done
    for i in $(seq 1 "$G"); do
        json_post /v1/instances "{\"image\":\"httpd\",\"name\":\"c$i\",\"args\":[\"80\",\"64\"],\"ports\":[{\"host\":$((8100 + i)),\"guest\":80}],\"placement\":{\"policy\":\"spread\"}}"
        [ "$HTTP_CODE" = 201 ] || { echo "create c$i: HTTP $HTTP_CODE $BODY"; exit 1; }
    done
    up() { [ "$(inst_field "c$1" .state)" = running ] &&
        [ "$(ns_curl -s -m 2 "http://127.0.0.1:$((8100 + $1))/healthz")" = ok ]; }
    for i in $(seq 1 "$G"); do wait_for 60 up "$i" || { echo "c$i not up"; exit 1; }; done
    for i in $(seq 1 "$G"); do from[$i]=$(inst_field "c$i" .host); done
    api POST "/v1/consolidate?dry_run=true"
    echo "$mode: $G guests on $(printf '%s\n' "${from[@]}" | sort | uniq -c | awk '{printf "%s %s, ", $2, $1}')dry run: $(jq -r '"\(.hosts_before) -> \(.hosts_after) hosts, \(.moves | length) moves"' <<<"$BODY")"
    for i in $(seq 1 "$G"); do
        ip netns exec "$E2E_NS" python3 "$E2E/poll_gap.py" $((8100 + i)) "$E2E_STATE/poll-$i.out" &
        poller[$i]=$!
    done
    sleep 1
    t0=$(date +%s%N)
    api POST /v1/consolidate
    ms=$((($(date +%s%N) - t0) / 1000000))
    echo "$mode: consolidate HTTP $HTTP_CODE in $ms ms: $(jq -c '{hosts_before, hosts_after, executed}' <<<"$BODY" 2>/dev/null)"
    for i in $(seq 1 "$G"); do wait_for 60 up "$i" || echo "c$i not up again"; done
    sleep 0.5
    for i in $(seq 1 "$G"); do kill -TERM "${poller[$i]}"; done
    for i in $(seq 1 "$G"); do wait "${poller[$i]}" || true; done
    EVENTS=$(ns_curl -sS -m 2 -H "Authorization: Bearer $E2E_TOKEN" -H 'Last-Event-ID: 0' \
        "http://127.0.0.1:$E2E_PORT/v1/events" 2>/dev/null | grep '^data: ' | cut -c7- || true)
    for i in $(seq 1 "$G"); do
        id=$(inst_field "c$i" .id)
        host1=$(inst_field "c$i" .host)
        read -r polls fails gap <"$E2E_STATE/poll-$i.out"
        move_ms=$(jq -rs "[.[] | select(.type == \"move.done\" and .instance == \"$id\") | .latency_ms] | last // empty" <<<"$EVENTS")
        if [ "${from[$i]}" = "$host1" ]; then
            echo "$mode c$i: stays on $host1, longest failure $gap ms ($fails of $polls polls failed)"
        else
            echo "$mode c$i: ${from[$i]} -> $host1,${move_ms:+ move $move_ms ms,} longest failure $gap ms ($fails of $polls polls failed)"
        fi
        [ "$gap" -gt "$WORST" ] && WORST=$gap
    done
    for i in $(seq 1 "$G"); do api DELETE "/v1/instances/c$i?force=true"; done
    e2e_stop_daemon
}

COLD=0 LIVE=0
if [ "$PART" != consolidate ]; then
    if [ "${MOVES_ONLY:-cold}" = cold ]; then one_mode cold; COLD=$WORST; fi
    if [ "${MOVES_ONLY:-live}" = live ]; then one_mode live; LIVE=$WORST; fi
    echo "drain: longest failure seen by a client polling every 20 ms: live $LIVE ms, cold $COLD ms"
    awk -v l="$LIVE" -v c="$COLD" 'BEGIN { printf "drain: live / cold = %.3f\n", (c > 0 ? l / c : 0) }'
fi
if [ "$PART" != drain ]; then
    lvd_start_private p3 "$E2E_NS" || { echo "p3's libvirtd did not start"; exit 1; }
    CCOLD=0 CLIVE=0
    if [ "${MOVES_ONLY:-cold}" = cold ]; then consolidate_mode cold; CCOLD=$WORST; fi
    if [ "${MOVES_ONLY:-live}" = live ]; then consolidate_mode live; CLIVE=$WORST; fi
    echo "consolidation of $G guests over 3 hosts: longest failure of any guest: live $CLIVE ms, cold $CCOLD ms"
    awk -v l="$CLIVE" -v c="$CCOLD" 'BEGIN { printf "consolidation: live / cold = %.3f\n", (c > 0 ? l / c : 0) }'
fi
