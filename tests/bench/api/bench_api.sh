#!/bin/sh
# bench_api.sh - GET /healthz with wrk: the api server (fake backend) vs a
# bare libmicrohttpd hello-world, same machine, same run. Prints both, the
# ratio, and fails when the ratio is below 0.5. The two servers are measured
# alternately ROUNDS times (default 3) and the median of each is compared,
# so load from other processes on the machine hits both alike.
#   usage: [ROUNDS=n] bench_api.sh BIN_DIR [wrk args]   (default: -t2 -c50 -d5s)
set -eu
BIN=$1; shift
ARGS=${*:-"-t2 -c50 -d5s"}
TMP=$(mktemp -d)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM

start() { # name -> sets PORT, appends pid
	"$BIN/$1" >"$TMP/$1.out" 2>&1 &
	pid=$!
	PIDS="$PIDS $pid"
	i=0
	while ! grep -q '^port ' "$TMP/$1.out" 2>/dev/null; do
		i=$((i + 1)); [ $i -gt 100 ] && { cat "$TMP/$1.out"; exit 1; }
		sleep 0.05
	done
	PORT=$(sed -n 's/^port //p' "$TMP/$1.out")
	LAST_PID=$pid
}

run() { # name -> prints requests/s
	start "$1"
	wrk $ARGS "http://127.0.0.1:$PORT/healthz" >"$TMP/$1.wrk"
	kill "$LAST_PID"; wait "$LAST_PID" 2>/dev/null || true
	PIDS=$(echo "$PIDS" | sed "s/ $LAST_PID//")
	sed -n 's/^Requests\/sec: *//p' "$TMP/$1.wrk"
}

ROUNDS=${ROUNDS:-3}
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
B_ALL=""; A_ALL=""
i=0
while [ $i -lt "$ROUNDS" ]; do
	B_ALL="$B_ALL $(run bench_mhd_hello)"
	A_ALL="$A_ALL $(run bench_api_server)"
	i=$((i + 1))
done
BARE=$(echo "$B_ALL" | median)
API=$(echo "$A_ALL" | median)
echo "command: wrk $ARGS http://127.0.0.1:PORT/healthz  ($ROUNDS alternating rounds, median)"
echo "bare libmicrohttpd (epoll, pool of $(nproc)): $BARE req/s  (rounds:$B_ALL)"
echo "shoal api server (fake backend):             $API req/s  (rounds:$A_ALL)"
awk -v a="$API" -v b="$BARE" 'BEGIN {
	r = a / b; printf "ratio api/bare: %.2f (target >= 0.50)\n", r;
	exit (r >= 0.5 ? 0 : 1) }'
