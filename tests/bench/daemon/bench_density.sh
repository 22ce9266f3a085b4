#!/bin/bash
# bench_density.sh SHOALD IMAGES_DIR [N [STEP [OUT_DIR]]]
#
# Density (issue 13, "A density benchmark"): ramps 0 -> N `httpd` guests
# (default 1000, 32 MiB, network on) through the REST API, STEP at a time
# (default 100, ONE `POST /v1/instances` with `count` per step), and at 0
# running and after each step records:
#   - instantiation: the step's time from the request to all running, and
#     the p50/p99 of its instances' `ready_ms` (create request -> guest
#     ready, recorded by shoald);
#   - host memory per guest: the sum of every QEMU's Pss
#     (/proc/PID/smaps_rollup) over the number of QEMUs;
#   - idle CPU: utime+stime of every QEMU over a quiet window (default
#     10 s), per guest and for all of them, in % of one CPU, and shoald's;
#   - shoald's RSS;
#   - API latency: p50/p99 of 50 sequential GET /v1/instances?limit=100.
# The baseline is the same run's: the 0-running row for shoald RSS and API
# latency, the first step (STEP guests started with nothing running) for
# instantiation, memory and CPU per guest; every row prints its ratio to it.
# At the end every guest must answer GET /healthz at its address (from
# inside the namespace, over the guest bridge); then all are deleted by
# selector in one request (DELETE /v1/instances?selector=...&force=true),
# timed. Writes OUT_DIR (default /tmp/shoal-density): results.md (the
# table, printed too), density.dat, density.gp and density.png (gnuplot;
# skipped with a message when gnuplot is missing).
#
# shoald runs with its default capacity flags plus $SHOAL_DENSITY_FLAGS
# (e.g. "--cpu-overcommit 1000" while the defaults do not admit N guests),
# in a network namespace, state dir and instance labels of its own, all
# removed on exit (also on failure, SIGINT and SIGTERM: lib.sh's cleanup).
# Exits 1 when a step is refused or a guest fails to start, or when a
# guest does not answer /healthz or is not deleted; timeouts are generous
# (a slow machine is not a failure). The suite runs it with N=50, STEP=25
# (e2e_daemon_density); the benchmark is N=1000 (bench_density, label bench).
#
# The ratio that matters, a step at N - STEP running against one at 0,
# moves between runs with the host (a first step of 100 took 9.4 to 12.5
# s in two runs of one session), so both are run DENSITY_REPEAT times
# (default 3): the first step is deleted and started again, as is the last
# one at the end (deleted, then started again with N - STEP running), and
# results.md gives each one's runs and their medians. The table's rows are
# the first runs.
#
# Knobs (environment): DENSITY_REPEAT (runs of the first and last step, 3),
# DENSITY_WINDOW (idle window, s, 10, after
# DENSITY_SETTLE s, 3, once a step is all running), DENSITY_LAT_N
# (API requests per point, 50), DENSITY_MEM (MiB per guest, 32),
# DENSITY_STEP_TIMEOUT (s per step to all running, 1800), DENSITY_HEALTHZ_S
# (s for every guest to answer, 180), SHOAL_DENSITY_FLAGS, QEMUCONF
# (lines added to the embed root's qemu.conf before shoald starts, e.g.
# 'namespaces = []', an operator's setting; shoald appends what it needs).
set -euo pipefail
SHOALD=${1:?usage: bench_density.sh SHOALD IMAGES_DIR [N [STEP [OUT_DIR]]]}
IMAGES=$(cd "${2:?}" && pwd)
N=${3:-1000}
STEP=${4:-100}
OUT=${5:-/tmp/shoal-density}
WINDOW=${DENSITY_WINDOW:-10}
SETTLE=${DENSITY_SETTLE:-3}
LAT_N=${DENSITY_LAT_N:-50}
MEM=${DENSITY_MEM:-32}
STEP_TIMEOUT=${DENSITY_STEP_TIMEOUT:-1800}
HEALTHZ_S=${DENSITY_HEALTHZ_S:-180}
REPEAT=${DENSITY_REPEAT:-3}
FLAGS=${SHOAL_DENSITY_FLAGS:-}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=$HERE/density_probe.py
. "$HERE/../../e2e/lib.sh"
E2E_NS="shoal-density-$$"
LABEL="density-$$" # every guest carries bench=$LABEL

for f in "$SHOALD" "$IMAGES/httpd.elf" "$PY"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
case "$N:$STEP:$REPEAT" in
*[!0-9:]* | 0:* | *:0:* | *:0) echo "N, STEP and DENSITY_REPEAT must be positive integers (got N=$N STEP=$STEP DENSITY_REPEAT=$REPEAT)"; exit 2 ;;
esac
for t in jq curl python3; do
    command -v "$t" >/dev/null || { echo "missing $t (scripts/setup-debian.sh installs it)"; exit 1; }
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

e2e_setup # namespace, cleanup trap (EXIT; INT/TERM exit 130 through it)
rmdir "$E2E_STATE"
E2E_STATE=$(mktemp -d /tmp/shoal-density.XXXXXX)

now_ms() { date +%s%3N; }
die() {
    e2e_fail "$*"
    exit 1
}
# sleep that a trapped SIGTERM interrupts at once
nap() {
    sleep "$1" &
    wait $!
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (a == "NaN" || b == "NaN" || b <= 0) print "-"; else printf "%.2fx", a / b}'; }
shoald_rss_mib() { awk '{printf "%.1f", $1 / 1024}' <<<"$(python3 "$PY" rss "$E2E_PID")"; }
# "P50 P99 MAX" (ms) of GET /v1/instances?limit=100
api_latency() {
    ip netns exec "$E2E_NS" python3 "$PY" latency "http://127.0.0.1:$E2E_PORT/v1/instances?limit=100" \
        "$E2E_TOKEN" "$LAT_N"
}
# "QEMUS QEMU_CPU_S SHOALD_CPU_S WALL_S" over the quiet window
idle_cpu() { python3 "$PY" idle "$E2E_STATE" "$E2E_PID" "$WINDOW"; }

# --- shoald, the image
e2e_qemuconf "${QEMUCONF:-}"
# shellcheck disable=SC2086
e2e_start_daemon "$SHOALD" $FLAGS || exit 1
e2e_qemuconf_kept "${QEMUCONF:-}" || exit 1
e2e_push_images httpd >/dev/null
[ "$E2E_FAILS" = 0 ] || die "could not push the httpd image"
api GET /v1/hosts/local
e2e_log "host: $(jq -c '{domain_type, capacity, used}' <<<"$BODY")"
HOSTINFO="$(nproc) CPUs, $(awk '/MemTotal/{printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), $(uname -r), $(qemu-system-x86_64 --version | head -n 1 | sed 's/ (.*//')"

# --- baseline: nothing running
DAT=$OUT/density.dat
printf '# running step_n all_ready_s p50_s p99_s pss_mib_guest cpu_pct_guest cpu_pct_all shoald_cpu_pct shoald_rss_mib api_p50_ms api_p99_ms\n' >"$DAT"
x=$(idle_cpu)
read -r _ _ d_cpu wall <<<"$x"
rss=$(shoald_rss_mib)
x=$(api_latency) || die "GET /v1/instances?limit=100 failed at 0 running"
read -r lat50 lat99 _ <<<"$x"
d_pct=$(awk -v c="$d_cpu" -v w="$wall" 'BEGIN{printf "%.3f", 100 * c / w}')
printf '0 0 NaN NaN NaN NaN NaN NaN %s %s %s %s\n' "$d_pct" "$rss" "$lat50" "$lat99" >>"$DAT"
e2e_log "0 running: shoald RSS $rss MiB, idle CPU $d_pct%, API p50 $lat50 ms p99 $lat99 ms"

# states that mean a guest of this run did not make it
BAD_STATES='failed|crashed|exited|lost|stopped|backoff|stopping'
# wait_step TOTAL: until TOTAL instances are running; any bad state fails
wait_step() {
    local r bad last=-1
    while :; do
        api GET /metrics
        [ "$HTTP_CODE" = 200 ] || die "GET /metrics: HTTP $HTTP_CODE"
        r=$(sed -n 's/^shoal_instances{state="running"} //p' <<<"$BODY")
        r=${r:-0}
        bad=$(grep -E "^shoal_instances\\{state=\"($BAD_STATES)\"\\} " <<<"$BODY" | awk '{s += $2} END{print s + 0}')
        if [ "$bad" != 0 ]; then
            api GET "/v1/instances?selector=bench%3D$LABEL&limit=1000"
            die "step $k: $bad guest(s) did not start: $(jq -c '[.items[] | select(.state != "running" and .state != "starting" and .state != "pending") | {name, state, last_error}]' <<<"$BODY" | head -c 800)"
        fi
        [ "$r" = "$1" ] && return 0
        if [ "$r" != "$last" ]; then
            e2e_log "  step $k: $r/$1 running after $(($(now_ms) - T_POST)) ms"
            last=$r
        fi
        [ $(($(now_ms) - T_POST)) -lt $((STEP_TIMEOUT * 1000)) ] ||
            die "step $k: only $r/$1 running after $STEP_TIMEOUT s"
        nap 1
    done
}

# run_step TAG C: one create of C guests labelled step=TAG, until all of
# them run; sets running, all_s, p50 and p99 (s)
run_step() {
    T_POST=$(now_ms)
    api POST /v1/instances -H 'Content-Type: application/json' \
        -d "{\"image\":\"httpd\",\"name\":\"dens$$-$1\",\"count\":$2,\"memory_mib\":$MEM,\"labels\":{\"bench\":\"$LABEL\",\"step\":\"$1\"}}"
    if [ "$HTTP_CODE" != 201 ]; then
        [ "$HTTP_CODE" != 507 ] || e2e_log "the host refused $2 more guests at $running running; until the default capacity admits them, pass SHOAL_DENSITY_FLAGS (e.g. '--cpu-overcommit 1000')"
        die "step $1: create of $2 at $running running: HTTP $HTTP_CODE $(head -c 400 <<<"$BODY")"
    fi
    running=$((running + $2))
    wait_step "$running"
    all_s=$(awk -v t=$(($(now_ms) - T_POST)) 'BEGIN{printf "%.2f", t / 1000}')
    api GET "/v1/instances?selector=step%3D$1,bench%3D$LABEL&limit=1000"
    [ "$(jq '[.items[] | select(.state == "running")] | length' <<<"$BODY")" = "$2" ] ||
        die "step $1: the API lists $(jq '.items | length' <<<"$BODY") instances, not $2 running"
    read -r p50 p99 <<<"$(jq -r '[.items[].ready_ms] | sort | [.[(length - 1) * 50 / 100 | floor], .[(length - 1) * 99 / 100 | floor]] | map(. / 1000 * 100 | round / 100) | "\(.[0]) \(.[1])"' <<<"$BODY")"
}
# rerun_step TAG C: delete the guests of step TAG (C of them), then
# DENSITY_REPEAT - 1 more runs of a step of C, each deleted before the
# next but the last; RERUN_P50S: the runs' p50s, the first run's first
rerun_step() {
    local tag=$1 r p50s=$p50
    for r in $(seq 2 "$REPEAT"); do
        api DELETE "/v1/instances?selector=step%3D$tag,bench%3D$LABEL&force=true" -m 3600
        [ "$HTTP_CODE:$(jq -r '.succeeded // 0' <<<"$BODY")" = "200:$2" ] ||
            die "step $tag: delete for the next run: HTTP $HTTP_CODE $(head -c 400 <<<"$BODY")"
        running=$((running - $2))
        nap "$SETTLE"
        tag="$1r$r"
        run_step "$tag" "$2"
        p50s="$p50s $p50"
        e2e_log "  step $1 again ($r of $REPEAT, $running running after it): $2 guests in $all_s s, ready p50 $p50 s"
    done
    RERUN_P50S=$p50s
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END{print a[int((NR + 1) / 2)]}'; }

# --- the ramp
running=0
k=0
while [ "$running" -lt "$N" ]; do
    k=$((k + 1))
    c=$((N - running < STEP ? N - running : STEP))
    run_step "$k" "$c"

    nap "$SETTLE"
    x=$(idle_cpu)
    read -r nq q_cpu d_cpu wall <<<"$x"
    x=$(python3 "$PY" mem "$E2E_STATE")
    read -r nm pss <<<"$x"
    if [ "$nq" != "$running" ] || [ "$nm" != "$running" ]; then
        e2e_log "  note: $nq/$nm QEMU processes measured for $running guests"
    fi
    rss=$(shoald_rss_mib)
    x=$(api_latency) || die "GET /v1/instances?limit=100 failed at $running running"
    read -r lat50 lat99 _ <<<"$x"
    read -r pss_g cpu_g cpu_all d_pct <<<"$(awk -v p="$pss" -v nm="$nm" -v q="$q_cpu" -v nq="$nq" -v d="$d_cpu" -v w="$wall" 'BEGIN{
        printf "%.2f %.4f %.2f %.3f\n", (nm ? p / nm / 1024 : 0), (nq ? 100 * q / w / nq : 0), 100 * q / w, 100 * d / w}')"
    printf '%d %d %s %s %s %s %s %s %s %s %s %s\n' "$running" "$c" "$all_s" "$p50" "$p99" \
        "$pss_g" "$cpu_g" "$cpu_all" "$d_pct" "$rss" "$lat50" "$lat99" >>"$DAT"
    e2e_log "$running running (step $k, $c guests in $all_s s, ready p50 $p50 s p99 $p99 s): PSS $pss_g MiB/guest, idle CPU $cpu_g%/guest ($cpu_all% all, shoald $d_pct%), shoald RSS $rss MiB, API p50 $lat50 ms p99 $lat99 ms"
    # the first step again: the baseline is their median
    if [ "$k" = 1 ]; then
        FIRST_P50S=$p50
        if [ "$REPEAT" -gt 1 ] && [ "$running" -lt "$N" ]; then
            rerun_step 1 "$c"
            FIRST_P50S=$RERUN_P50S
        fi
    fi
    LAST_C=$c
done
# the last step again, each time with N - STEP running
LAST_P50S=$p50
if [ "$REPEAT" -gt 1 ] && [ "$k" -gt 1 ]; then
    rerun_step "$k" "$LAST_C"
    LAST_P50S=$RERUN_P50S
fi
FIRST_MED=$(median <<<"$FIRST_P50S")
LAST_MED=$(median <<<"$LAST_P50S")
REPEAT_LINE="a step of $STEP at 0 running, ready p50 of $(wc -w <<<"$FIRST_P50S") runs: $FIRST_P50S s (median $FIRST_MED); at $((N - LAST_C)) running: $LAST_P50S s (median $LAST_MED): $(ratio "$LAST_MED" "$FIRST_MED")"
e2e_log "$REPEAT_LINE"

# --- every guest answers /healthz over its network
addrs=$E2E_STATE/addresses
: >"$addrs"
after=""
while :; do
    api GET "/v1/instances?selector=bench%3D$LABEL&limit=1000$after"
    jq -r '.items[].network.address // empty | sub("/.*"; "")' <<<"$BODY" >>"$addrs"
    next=$(jq -r '.next // empty' <<<"$BODY")
    [ -n "$next" ] || break
    after="&after=$(jq -rn --arg c "$next" '$c | @uri')"
done
t0=$(now_ms)
x=$(ip netns exec "$E2E_NS" python3 "$PY" healthz "$HEALTHZ_S" 32 <"$addrs")
read -r answered total <<<"$x"
HEALTHZ_MS=$(($(now_ms) - t0))
e2e_log "/healthz: $answered of $N guests answered ($total addresses listed) in $HEALTHZ_MS ms"
check "every guest answers /healthz at its address ($answered/$N)" [ "$answered" = "$N" ]

# --- delete them all by selector, one request
t0=$(now_ms)
api DELETE "/v1/instances?selector=bench%3D$LABEL&force=true" -m 3600
DEL_MS=$(($(now_ms) - t0))
ok=$(jq -r '.succeeded // 0' <<<"$BODY" 2>/dev/null || echo 0)
check "delete all by selector (HTTP $HTTP_CODE, $ok/$N deleted in $DEL_MS ms)" [ "$HTTP_CODE:$ok" = "200:$N" ]
left() { [ "$(pgrep -f "qemu-system.*$E2E_STATE" | wc -l)" = 0 ]; }
check "no QEMU left after the delete" wait_for 120 left
DEL_RATE=$(awk -v n="$N" -v t="$DEL_MS" 'BEGIN{printf "%.1f", t ? n * 1000 / t : 0}')
e2e_stop_daemon

# --- the table
MD=$OUT/results.md
{
    echo "## Density: 0 -> $N httpd guests, $STEP per step ($(date -u +%Y-%m-%d))"
    echo
    echo "Host: $HOSTINFO. Guests: httpd, $MEM MiB, network on. shoald flags: ${FLAGS:-(defaults)}.${QEMUCONF:+ Added to qemu.conf: \`$QEMUCONF\`.}"
    echo "Command: \`${QEMUCONF:+QEMUCONF='$QEMUCONF' }bash tests/bench/daemon/bench_density.sh SHOALD IMAGES $N $STEP OUT\`."
    echo "Baseline (same run): the 0-running row for shoald RSS and API latency; the first step"
    echo "(its guests started with nothing running) for instantiation, PSS and CPU per guest."
    echo "Idle CPU over $WINDOW s in % of one CPU; API: $LAT_N x GET /v1/instances?limit=100."
    echo
    echo "| running | step: all ready (s) | ready p50 (s) | ready p99 (s) | QEMU PSS/guest (MiB) | idle CPU/guest (%) | idle CPU, all guests (%) | shoald idle CPU (%) | shoald RSS (MiB) | API p50 (ms) | API p99 (ms) |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk '!/^#/ {
        if ($1 == 0) { rss0 = $10; api0 = $12 }
        else if (!f) { f = 1; p500 = $4; pss0 = $6; cpu0 = $7 }
        printf "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, d($3), vr($4, p500),
            d($5), vr($6, pss0), vr($7, cpu0), d($8), $9, vr($10, rss0), $11, vr($12, api0)
    }
    function d(v) { return v == "NaN" ? "-" : v }
    # value (ratio to the baseline B)
    function vr(v, b) {
        if (v == "NaN") return "-"
        if (b == "" || b == "NaN" || b + 0 <= 0) return v " (-)"
        return sprintf("%s (%.2fx)", v, v / b)
    }' "$DAT"
    echo
    awk '!/^#/ { if ($1 == 0) rss0 = $10; else if (!f) { f = 1; r1 = $1; rss1 = $10 } last = $1; rssl = $10 }
        END { if (last > r1) printf "shoald RSS growth per instance, %d -> %d running: %.1f KiB (from 0: %.1f KiB)\n", r1, last, (rssl - rss1) * 1024 / (last - r1), (rssl - rss0) * 1024 / last }' "$DAT"
    echo "$REPEAT_LINE"
    echo "/healthz at every guest's address: $answered of $N answered (in $HEALTHZ_MS ms)"
    echo "delete all $N by selector (one request): $DEL_MS ms, $DEL_RATE instances/s ($ok deleted)"
} >"$MD"
cat "$MD"

# --- the plot
if command -v gnuplot >/dev/null; then
    cat >"$OUT/density.gp" <<EOF
set terminal pngcairo size 1500,1000 font ",10"
set output "$OUT/density.png"
set multiplot layout 2,3 title "shoal density: 0 -> $N httpd guests ($HOSTINFO), $(date -u +%Y-%m-%d)"
set key below horizontal
set grid
set xlabel "guests running"
set xrange [0:*]
set yrange [0:*]
set title "instantiation (POST -> ready), step of $STEP"
set ylabel "s"
plot "$DAT" using 1:4 with linespoints title "p50", "" using 1:5 with linespoints title "p99", "" using 1:3 with linespoints title "step, all ready"
set title "host memory per guest (QEMU PSS)"
set ylabel "MiB"
plot "$DAT" using 1:6 with linespoints title "PSS / guest"
set title "idle CPU per guest ($WINDOW s window)"
set ylabel "% of one CPU"
plot "$DAT" using 1:7 with linespoints title "QEMU / guest"
set title "shoald RSS"
set ylabel "MiB"
plot "$DAT" using 1:10 with linespoints title "RSS"
set title "API: GET /v1/instances?limit=100 ($LAT_N requests)"
set ylabel "ms"
plot "$DAT" using 1:11 with linespoints title "p50", "" using 1:12 with linespoints title "p99"
set title "idle CPU, whole fleet"
set ylabel "% of one CPU"
plot "$DAT" using 1:8 with linespoints title "all QEMUs", "" using 1:9 with linespoints title "shoald"
unset multiplot
EOF
    if gnuplot "$OUT/density.gp" 2>"$OUT/gnuplot.log"; then
        echo "plot: $OUT/density.png"
    else
        echo "gnuplot failed (plot skipped): $(head -c 400 "$OUT/gnuplot.log")"
    fi
else
    echo "gnuplot not found: plot skipped (scripts/setup-debian.sh installs gnuplot-nox)"
fi
echo "table: $MD, data: $DAT"
e2e_log "$E2E_PASSES passed, $E2E_FAILS failed"
[ "$E2E_FAILS" -eq 0 ]
