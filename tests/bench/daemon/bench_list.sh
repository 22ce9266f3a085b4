#!/bin/bash
# bench_list.sh SHOALD SHOAL MHD_HELLO IMAGE
#
# API throughput of the real daemon with 1,000 instances in its database:
# wrk on GET /healthz, GET /v1/instances (first page of 100) and
# GET /v1/instances?limit=1000, against a bare libmicrohttpd hello-world
# (tests/bench/api) measured in the same run. The daemon's hosts are
# libvirt's mock driver (one host, memory overcommitted), so the 1,000
# records cost no VMs. Loopback only.
#
# Also the latency of GET /v1/instances?limit=100 with one connection
# (wrk, keep-alive, one request after another), p50 and p99, with no
# instance (an empty page) and with the N: issue 13's target is p99 at
# 1,000 <= 1.5x p99 at 0. And the floor of that ratio: bare libmicrohttpd
# (MHD_HELLO given a body size) sending bodies of the two pages' sizes.
set -eu
SHOALD=${1:?usage: bench_list.sh SHOALD SHOAL MHD_HELLO IMAGE}
SHOAL=${2:?}
MHD=${3:?}
IMAGE=${4:?}
N=${SHOAL_BENCH_INSTANCES:-1000}
WRK=${WRK_ARGS:-"-t2 -c16 -d5s"}

STATE=$(mktemp -d /tmp/shoal-list-bench.XXXXXX)
PIDS=""
cleanup() {
    set +e
    for p in $PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$STATE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=17893
"$SHOALD" --state-dir "$STATE" --listen "127.0.0.1:$PORT" --local-uri test:///default \
    --no-network --max-instances $((N + 100)) --mem-overcommit 50 --cpu-overcommit 1000 >"$STATE/shoald.log" 2>&1 &
PIDS="$!"
for i in $(seq 1 600); do
    curl -sf -m 2 "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    [ "$i" -eq 600 ] && { echo "shoald did not start"; tail "$STATE/shoald.log"; exit 1; }
    sleep 0.1
done
export SHOAL_URL="http://127.0.0.1:$PORT"
SHOAL_TOKEN=$(cat "$STATE/admin.token")
export SHOAL_TOKEN
"$SHOAL" image push -q "$IMAGE" bench >/dev/null

# lat [URL]: "p50_ms p99_ms" of GET URL (default /v1/instances?limit=100), one connection
lat() {
    wrk -t1 -c1 -d"${LAT_DURATION:-5s}" --latency -H "Authorization: Bearer $SHOAL_TOKEN" \
        "${1:-http://127.0.0.1:$PORT/v1/instances?limit=100}" |
        awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) } END { printf "%.3f %.3f\n", p50, p99 }'
}
read -r lat0_50 lat0_99 <<<"$(lat)"
bytes0=$(curl -s -H "Authorization: Bearer $SHOAL_TOKEN" "http://127.0.0.1:$PORT/v1/instances?limit=100" | wc -c)
left=$N
hosts=1
while [ "$left" -gt 0 ]; do
    batch=$((left < 250 ? left : 250))
    "$SHOAL" run --count "$batch" --no-wait --memory 16 --no-network bench >/dev/null 2>"$STATE/err" ||
        { cat "$STATE/err"; exit 1; }
    left=$((left - batch))
done

"$MHD" >"$STATE/mhd.out" 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 1 100); do grep -q '^port ' "$STATE/mhd.out" && break; sleep 0.05; done
MPORT=$(sed -n 's/^port //p' "$STATE/mhd.out")

read -r latn_50 latn_99 <<<"$(lat)"
bytesn=$(curl -s -H "Authorization: Bearer $SHOAL_TOKEN" "http://127.0.0.1:$PORT/v1/instances?limit=100" | wc -c)

# The floor: bare libmicrohttpd sending bodies of the two pages' sizes.
floor_lat() {
    local out="$STATE/mhd.$1" p
    "$MHD" 0 "$1" >"$out" 2>&1 &
    PIDS="$PIDS $!"
    for _ in $(seq 1 100); do grep -q '^port ' "$out" && break; sleep 0.05; done
    p=$(sed -n 's/^port //p' "$out")
    lat "http://127.0.0.1:$p/"
}
read -r fl0_50 fl0_99 <<<"$(floor_lat "$bytes0")"
read -r fln_50 fln_99 <<<"$(floor_lat "$bytesn")"

rps() { wrk $WRK "$@" | sed -n 's/^Requests\/sec: *//p'; }
AUTH="Authorization: Bearer $SHOAL_TOKEN"
bare=$(rps "http://127.0.0.1:$MPORT/healthz")
health=$(rps "http://127.0.0.1:$PORT/healthz")
page=$(rps -H "$AUTH" "http://127.0.0.1:$PORT/v1/instances")
all=$(rps -H "$AUTH" "http://127.0.0.1:$PORT/v1/instances?limit=1000")
echo "instances: $N on $hosts mock host(s); wrk $WRK"
printf '  bare libmicrohttpd /healthz      : %10.1f req/s (baseline)\n' "$bare"
printf '  shoald /healthz                  : %10.1f req/s  %.2fx (target >= 0.5x)\n' "$health" "$(echo "$health / $bare" | bc -l)"
printf '  shoald /v1/instances (100)       : %10.1f req/s  %.3fx\n' "$page" "$(echo "$page / $bare" | bc -l)"
printf '  shoald /v1/instances?limit=1000  : %10.1f req/s  %.3fx\n' "$all" "$(echo "$all / $bare" | bc -l)"
printf '  GET /v1/instances?limit=100, 1 conn: p50 %.3f ms, p99 %.3f ms at %d; at 0: p50 %.3f, p99 %.3f; p99 %.2fx (target <= 1.5x), p50 %.2fx\n' \
    "$latn_50" "$latn_99" "$N" "$lat0_50" "$lat0_99" "$(echo "$latn_99 / $lat0_99" | bc -l)" \
    "$(echo "$latn_50 / $lat0_50" | bc -l)"
printf '  the floor, bare libmicrohttpd, 1 conn: %d bytes (the page at %d): p50 %.3f ms, p99 %.3f; %d bytes (at 0): p50 %.3f, p99 %.3f; p99 %.2fx, p50 %.2fx\n' \
    "$bytesn" "$N" "$fln_50" "$fln_99" "$bytes0" "$fl0_50" "$fl0_99" "$(echo "$fln_99 / $fl0_99" | bc -l)" \
    "$(echo "$fln_50 / $fl0_50" | bc -l)"
