#!/bin/bash
# bench_privsep.sh SHOALD [N]
#
# What privilege separation costs an API request (issue 16): two shoalds in
# the same run, --privsep on and --privsep off, each with N instances
# (default 100) on libvirt's mock driver (no VMs). wrk with one connection
# (keep-alive, requests one after another: latency, not throughput) and with
# 16, on GET /healthz (answered by the front alone), GET /v1/instances (a
# page of N: two channel round trips, authenticate and list, N objects
# across) and GET /v1/instances/NAME. Prints p50/p99 and requests/s for
# each, and on/off ratios. Each row is ROUNDS (default 3) runs of on and
# off taken in turn, the medians shown (the machine is shared: one run of
# each is mostly the neighbours' noise). Loopback only.
set -eu
SHOALD=${1:?usage: bench_privsep.sh SHOALD [N]}
N=${2:-100}
DUR=${BENCH_DURATION:-3s}
ROUNDS=${ROUNDS:-3}
command -v wrk >/dev/null || { echo "bench_privsep: no wrk"; exit 77; }
getent passwd shoal-api >/dev/null || { echo "bench_privsep: no user shoal-api"; exit 77; }

BASE=$(mktemp -d /tmp/shoal-privsep-bench.XXXXXX)
PIDS=""
cleanup() {
    set +e
    for p in $PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$BASE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start MODE PORT: a shoald with --privsep MODE and N instances; its token
# in $BASE/MODE/admin.token. Not in a subshell: PIDS must keep its pid.
start() {
    local mode=$1 port=$2 st="$BASE/$1" tok
    mkdir -p "$st"
    "$SHOALD" --state-dir "$st" --listen "127.0.0.1:$port" --local-uri test:///default \
        --no-network --max-instances $((N + 10)) --mem-overcommit 50 --cpu-overcommit 1000 \
        --privsep "$mode" >"$st/shoald.log" 2>&1 &
    PIDS="$PIDS $!"
    for i in $(seq 1 600); do
        curl -sf -m 2 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
        [ "$i" -eq 600 ] && { echo "shoald ($mode) did not start"; tail "$st/shoald.log"; exit 1; }
        sleep 0.1
    done
    tok=$(cat "$st/admin.token")
    curl -sf -o /dev/null -H "Authorization: Bearer $tok" -H 'Content-Type: application/octet-stream' \
        --data-binary "@${IMAGE:-/dev/null}" "http://127.0.0.1:$port/v1/images?ref=bench:1" ||
        { echo "upload failed ($mode)"; exit 1; }
    curl -sf -o /dev/null -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
        -d "{\"image\":\"bench:1\",\"name\":\"b\",\"count\":$N,\"memory_mib\":16,\"network\":false}" \
        "http://127.0.0.1:$port/v1/instances" || { echo "create failed ($mode)"; exit 1; }
}

IMAGE=${IMAGE:-$(dirname "$SHOALD")/../guest-kernel/images/hello.elf}
[ -f "$IMAGE" ] || { echo "bench_privsep: no image $IMAGE"; exit 1; }
start on 17901
start off 17902
TOK_ON=$(cat "$BASE/on/admin.token")
TOK_OFF=$(cat "$BASE/off/admin.token")

# run CONNS PORT TOKEN PATH: "p50_ms p99_ms rps"
run() {
    wrk -t1 -c"$1" -d"$DUR" --latency -H "Authorization: Bearer $3" "http://127.0.0.1:$2$4" |
        awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
        $1 == "Requests/sec:" { rps = $2 }
        END { printf "%.3f %.3f %.0f\n", p50, p99, rps }'
}

printf '%-26s %5s | %-28s | %-28s | %s\n' "request" "conns" "privsep on: p50 p99 ms, r/s" \
    "privsep off: p50 p99 ms, r/s" "on/off p50, p99, r/s"
# median of the numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for path in /healthz /v1/instances /v1/instances/b-1; do
    for c in 1 16; do
        : >"$BASE/on.txt"
        : >"$BASE/off.txt"
        for _ in $(seq 1 "$ROUNDS"); do
            run "$c" 17901 "$TOK_ON" "$path" >>"$BASE/on.txt"
            run "$c" 17902 "$TOK_OFF" "$path" >>"$BASE/off.txt"
        done
        col() { awk -v k="$2" '{ print $k }' "$BASE/$1.txt" | median; }
        a50=$(col on 1) a99=$(col on 2) arps=$(col on 3)
        b50=$(col off 1) b99=$(col off 2) brps=$(col off 3)
        printf '%-26s %5s | %8s %8s %9s | %8s %8s %9s | %.2fx %.2fx %.2fx\n' "GET $path" "$c" \
            "$a50" "$a99" "$arps" "$b50" "$b99" "$brps" \
            "$(echo "$a50 / $b50" | bc -l)" "$(echo "$a99 / $b99" | bc -l)" \
            "$(echo "$arps / $brps" | bc -l)"
    done
done
echo "(N = $N instances each; medians of $ROUNDS runs of wrk $DUR each, on and off in turn; same machine, same run)"
