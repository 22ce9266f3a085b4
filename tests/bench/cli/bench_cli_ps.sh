#!/bin/bash
# bench_cli_ps.sh SHOAL SHOALD IMAGE
#
# `shoal ps -a` over 1,000 instance records versus `curl` of the same
# endpoint (GET /v1/instances?limit=1000), measured with hyperfine in the
# same run. The daemon's local host is libvirt's mock driver
# (--local-uri test:///default, --no-network), so 1,000 records cost no VMs.
# Fails when shoal's median wall time exceeds SHOAL_BENCH_MAX_RATIO (default
# 1.5) times curl's (the median, because the machines are shared and a few
# slow runs skew the mean). Prints the exact commands and the result.
set -eu

SHOAL=${1:?usage: bench_cli_ps.sh SHOAL SHOALD IMAGE}
SHOALD=${2:?usage: bench_cli_ps.sh SHOAL SHOALD IMAGE}
IMAGE=${3:?usage: bench_cli_ps.sh SHOAL SHOALD IMAGE}
N=${SHOAL_BENCH_INSTANCES:-1000}
MAX_RATIO=${SHOAL_BENCH_MAX_RATIO:-1.5}

fail() { echo "FAIL: $*" >&2; exit 1; }
[ -x "$SHOAL" ] || fail "shoal not found at '$SHOAL'"
[ -x "$SHOALD" ] || fail "shoald not found at '$SHOALD'"
[ -f "$IMAGE" ] || fail "guest image '$IMAGE' missing"
command -v hyperfine >/dev/null || fail "hyperfine is not installed"

STATE=$(mktemp -d /tmp/shoal-cli-bench.XXXXXX)
DPID=""
cleanup() {
    local rc=$?
    set +e
    if [ -n "$DPID" ]; then
        kill -TERM "$DPID" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DPID" 2>/dev/null
        wait "$DPID" 2>/dev/null
    fi
    [ "$rc" -ne 0 ] && [ -f "$STATE/shoald.log" ] && tail -n 30 "$STATE/shoald.log" >&2
    rm -rf "$STATE"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# One mock host (libvirt's test driver reports 3 GiB): memory overcommit
# lets it hold N records of 16 MiB guests.
"$SHOALD" --state-dir "$STATE" --listen "127.0.0.1:$PORT" --local-uri test:///default \
    --no-network --max-instances $((N + 100)) --mem-overcommit 50 --cpu-overcommit 1000 >"$STATE/shoald.log" 2>&1 &
DPID=$!
for i in $(seq 1 600); do
    curl -sf -m 2 "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    kill -0 "$DPID" 2>/dev/null || fail "shoald exited during startup"
    [ "$i" -eq 600 ] && fail "shoald did not answer /healthz within 60 s"
    sleep 0.1
done
export SHOAL_URL="http://127.0.0.1:$PORT"
export SHOAL_TOKEN
SHOAL_TOKEN=$(cat "$STATE/admin.token")

timeout 60 "$SHOAL" image push -q "$IMAGE" bench >/dev/null
left=$N
hosts=1
while [ "$left" -gt 0 ]; do
    batch=$((left < 250 ? left : 250))
    timeout 120 "$SHOAL" run --count "$batch" --no-wait --memory 16 --no-network bench >/dev/null 2>"$STATE/run.err" ||
        fail "run --count $batch: $(cat "$STATE/run.err")"
    left=$((left - batch))
done
have=$("$SHOAL" ps -a -q | wc -l)
[ "$have" -eq "$N" ] || fail "expected $N instances, daemon lists $have"

URL="$SHOAL_URL/v1/instances?limit=1000"
CURL_CMD="curl -sf -H 'Authorization: Bearer $SHOAL_TOKEN' '$URL'"
SHOAL_CMD="$SHOAL ps -a"
echo "instances: $N on $hosts mock host(s)"
echo "bytes: shoal table $("$SHOAL" ps -a | wc -c), JSON body $(eval "$CURL_CMD" | wc -c)"
hyperfine -N --warmup 5 --runs 60 --export-json "$STATE/h.json" \
    -n curl "$CURL_CMD" -n "shoal ps -a" "$SHOAL_CMD" | sed "s/$SHOAL_TOKEN/<token>/g"
python3 - "$STATE/h.json" "$MAX_RATIO" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
c, s = r["curl"], r["shoal ps -a"]
ratio = s["median"] / c["median"]
print("RESULT: median curl %.1f ms, shoal ps -a %.1f ms, ratio %.2fx (target <= %sx); "
      "mean curl %.1f +- %.1f ms, shoal %.1f +- %.1f ms"
      % (c["median"] * 1e3, s["median"] * 1e3, ratio, sys.argv[2],
         c["mean"] * 1e3, c["stddev"] * 1e3, s["mean"] * 1e3, s["stddev"] * 1e3))
sys.exit(0 if ratio <= float(sys.argv[2]) else 1)
PY
