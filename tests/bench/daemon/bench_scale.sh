#!/bin/bash
# bench_scale.sh SHOALD IMAGES_DIR [N] [SMALL]
#
# Instantiation as the fleet grows (issue 13): a batch of SMALL (default
# 20) `sleep` guests with nothing running, then a ramp to N (default 300)
# running in creates of 100, then the same batch again. For each batch:
# the p50 of its instances' ready_ms (create request -> guest ready) and of
# libvirt's domain creation (shoald logs `domain created in N ms`), and,
# with perf (PERF=0 turns it off), shoald's CPU per start split by kernel
# path: fork (dup_mmap: page tables copied), copy-on-write faults after a
# fork, the fork children's teardown (exec or exit), other page faults and
# everything else; plus the forks per start (perf's task events). shoald's
# process holds libvirt's embedded driver, so that is libvirt's work too.
# PERF_ALL=1 adds the whole host's CPU per start by command (perf -a: the
# QEMUs being started, the running ones, kernel threads, dnsmasq).
#
# REPEAT (default 3) runs each batch that many times, deleting it after
# each run so that the fleet stays at 0 or N; the batch's figures are the
# median of its runs (perf on the first), because a batch of 20 at 0 lasts
# a few seconds and one run moves with whatever else the host does.
#
# With SHOALD_BASE set, the same is run first with that shoald (a build of
# an earlier commit, or this one with QEMUCONF_BASE): the baseline in the
# same run. QEMUCONF adds lines to the embed root's qemu.conf before shoald
# starts (e.g. 'namespaces = []'; shoald appends what it needs), and
# QEMUCONF_BASE does so for the baseline only (e.g. 'remember_owner = 1',
# libvirt's default, with SHOALD_BASE=SHOALD). Real QEMU through libvirt's embedded
# driver in a network namespace of its own (tests/e2e/lib.sh), guests
# without network unless NET=1, capacity not the limit. Wall times vary
# with the other tenants of the host; the CPU per start is the steadier
# figure. NET=1 gives the guests shoald's network (bridge port, tap, guard
# entries, a lease each), as the density benchmark's guests have. Not run
# in CI (label bench).
set -eu
SHOALD=${1:?usage: bench_scale.sh SHOALD IMAGES_DIR [N] [SMALL]}
IMAGES=$(cd "${2:?}" && pwd)
N=${3:-300}
SMALL=${4:-20}
PERF=${PERF:-1}
REPEAT=${REPEAT:-3}
NET=${NET:-0}
PERF_KEEP=${PERF_KEEP:-} # a directory: perf's data files are copied there
PERF_ALL=${PERF_ALL:-0}   # 1: also the whole host's CPU per start, by command
PERF_HZ=4000              # samples per second and CPU: the ms figures divide by it
NETFLAG=--no-network
[ "$NET" = 1 ] && NETFLAG=""
. "$(dirname "$0")/../../e2e/lib.sh"

[ -e "$IMAGES/sleep.elf" ] || { echo "missing $IMAGES/sleep.elf (build first)"; exit 1; }
command -v perf >/dev/null || PERF=0
e2e_setup
# each config below gets a state dir of its own: drop the one e2e_setup made
rmdir "$E2E_STATE" 2>/dev/null || true
E2E_STATE=""
OUT=$(mktemp -d /tmp/shoal-scale-out.XXXXXX)
trap 'e2e_cleanup; rm -rf "$OUT"' EXIT

now_ms() { date +%s%3N; }
BASE=0
# Instances ready (running, or exited after their ready record) beyond BASE.
ready() {
    api GET /metrics
    local r x
    r=$(sed -n 's/^shoal_instances{state="running"} //p' <<<"$BODY")
    x=$(sed -n 's/^shoal_instances{state="exited"} //p' <<<"$BODY")
    echo $((${r:-0} + ${x:-0} - BASE))
}
create() { # NAME COUNT
    T_POST=$(now_ms)
    api POST /v1/instances -H 'Content-Type: application/json' \
        -d "{\"image\":\"sleep\",\"name\":\"$1\",\"count\":$2,\"memory_mib\":32,\"args\":[\"2000000000\"],\"labels\":{\"batch\":\"$1\"}}"
    [ "$HTTP_CODE" = 201 ] || { echo "create $1 failed: $HTTP_CODE $BODY"; exit 1; }
}
wait_all() { # NAME COUNT LIMIT_S
    while [ "$(ready)" -lt "$2" ]; do
        [ $(($(now_ms) - T_POST)) -lt $(($3 * 1000)) ] || { echo "batch $1 did not start"; exit 1; }
        sleep 0.5
    done
}
p50_ready() {
    api GET "/v1/instances?selector=batch%3D$1&limit=1000"
    jq '[.items[].ready_ms] | sort | .[(length - 1) / 2 | floor] | floor' <<<"$BODY"
}
p50_created() { # the last N starts' domain creation
    grep -o 'domain created in [0-9]* ms' "$E2E_STATE/shoald.log" | awk '{print $4}' |
        tail -n "$1" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'
}
# Samples of shoald's process (its comm) per kernel path -> "ms per start".
split_cpu() { # PERF_DATA COMM STARTS
    perf script -i "$1" -F comm,ip,sym --comm "$2" 2>/dev/null | python3 -c '
import sys, collections
starts = int(sys.argv[1]); hz = float(sys.argv[2])
def kind(s):
    for key, name in (("dup_mmap", "fork"), ("copy_process", "fork"),
                      ("exit_mmap", "teardown"), ("exec_mmap", "teardown"),
                      ("do_wp_page", "cow"), ("wp_page_copy", "cow"),
                      ("exc_page_fault", "faults")):
        if key in s:
            return name
    return "other"
c = collections.Counter(); st = []
for line in sys.stdin:
    if not line.strip():
        if st: c[kind(" ".join(st))] += 1
        st = []
    elif line[0] in " \t":
        st.append(line.split()[-1])
tot = sum(c.values())
ms = lambda k: c[k] / hz * 1000 / starts
print("%.0f %.1f %.1f %.1f %.1f %.0f" % (tot / hz * 1000 / starts, ms("fork"), ms("cow"),
      ms("teardown"), ms("faults"), ms("other")))' "$3" "$PERF_HZ"
}
forks_per_start() { # PERF_DATA STARTS: process (not thread) creations
    perf script -i "$1" --show-task-events 2>/dev/null | grep -o 'FORK([0-9]*:[0-9]*):([0-9]*:' |
        awk -F'[(:)]' -v n="$2" '$2 != $6 {k++} END{printf "%.1f", k / n}'
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
gone() { # NAME: wait until the batch's instances are deleted
    local i
    api DELETE "/v1/instances?selector=batch%3D$1&force=true"
    for i in $(seq 1 240); do
        api GET "/v1/instances?selector=batch%3D$1&limit=1"
        [ "$(jq '.items | length' <<<"$BODY")" = 0 ] && return 0
        sleep 0.5
    done
    echo "batch $1 was not deleted"
    exit 1
}
batch() { # NAME: REPEAT runs of batch_once, the medians in B_*
    local r ready="" created="" ticks=""
    for r in $(seq 1 "$REPEAT"); do
        [ "$r" = 1 ] || PERF_ON=0
        batch_once "$1-$r"
        ready="$ready $B_READY"
        created="$created $B_CREATED"
        ticks="$ticks $B_TICKS_MS"
        [ "$r" = 1 ] && { split=$B_SPLIT; forks=$B_FORKS; }
        [ "$r" = "$REPEAT" ] || gone "$1-$r"
        PERF_ON=$PERF
    done
    B_READY=$(median <<<"$ready")
    B_CREATED=$(median <<<"$created")
    e2e_log "  $1: ready p50 of the runs:$ready ms (median $B_READY), shoald CPU/start:$ticks ms (median $(median <<<"$ticks"))"
    ROW="$ROW $B_READY $B_CREATED $(cut -d' ' -f1,2 <<<"$split") $forks"
}
PERF_ON=$PERF
batch_once() { # NAME
    local pp="" pa="" c0 c1
    c0=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$E2E_PID/stat")
    if [ "$PERF_ON" = 1 ]; then
        if [ "$PERF_ALL" = 1 ]; then
            perf record -q -F "$PERF_HZ" -a -o "$OUT/$1.all.data" >/dev/null 2>&1 &
            pa=$!
        fi
        perf record -q -F "$PERF_HZ" -g -p "$E2E_PID" -o "$OUT/$1.data" >/dev/null 2>&1 &
        pp=$!
        # perf attaches to every thread first: on a loaded host that takes
        # a while, and starts made before it would go unseen.
        for _ in $(seq 1 100); do [ -s "$OUT/$1.data" ] && break; sleep 0.1; done
        sleep 2
    fi
    BASE=0
    BASE=$(ready)
    create "$1" "$SMALL"
    wait_all "$1" "$SMALL" 600
    if [ -n "$pp" ]; then kill -INT "$pp"; wait "$pp" 2>/dev/null || true; fi
    if [ -n "$pa" ]; then kill -INT "$pa"; wait "$pa" 2>/dev/null || true; fi
    c1=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$E2E_PID/stat")
    B_READY=$(p50_ready "$1")
    B_CREATED=$(p50_created "$SMALL")
    B_TICKS_MS=$(((c1 - c0) * 1000 / $(getconf CLK_TCK) / SMALL))
    B_SPLIT="- - - - - -"
    B_FORKS="-"
    if [ -n "$pp" ]; then
        B_SPLIT=$(split_cpu "$OUT/$1.data" "$(cut -c1-15 "/proc/$E2E_PID/comm")" "$SMALL")
        B_FORKS=$(forks_per_start "$OUT/$1.data" "$SMALL")
        [ -z "$PERF_KEEP" ] || cp "$OUT/$1.data" "$PERF_KEEP/$CFG-$1.data"
    fi
    if [ -n "$pa" ]; then
        # the whole host while the batch ran, ms of CPU per start by command
        # (QEMUs' vCPU threads and libvirt's per-domain threads grouped)
        e2e_log "  $1: host CPU ms/start by command: $(perf script -i "$OUT/$1.all.data" -F comm 2>/dev/null |
            sed 's/^ *//; s/ *$//; s/^vm-.*/vm-*/; s/^CPU [0-9]*\/.*/CPU-n\/accel/; s/^kworker.*/kworker/; s/^ksoftirqd.*/ksoftirqd/' |
            sort | uniq -c | sort -rn | head -12 | awk -v n="$SMALL" -v hz="$PERF_HZ" '{c=$1; $1=""; sub(/^ /, ""); printf "%s=%.1f; ", $0, c * 1000 / hz / n}')"
        [ -z "$PERF_KEEP" ] || cp "$OUT/$1.all.data" "$PERF_KEEP/$CFG-$1.all.data"
    fi
    e2e_log "  $1: ready p50 $B_READY ms, domain created p50 $B_CREATED ms, shoald CPU $B_TICKS_MS ms/start (/proc); perf ms/start total fork cow teardown faults other: $B_SPLIT; forks/start $B_FORKS; shoald RSS $(awk '/VmRSS/{print $2}' "/proc/$E2E_PID/status") kB"
}

TABLE=""
for cfg in ${SHOALD_BASE:+base} new; do
    bin=$SHOALD
    CFG=$cfg
    [ "$cfg" = base ] && bin=$SHOALD_BASE
    E2E_STATE=$(mktemp -d /tmp/shoal-scale.XXXXXX)
    conf=${QEMUCONF:-}
    [ "$cfg" = base ] && conf="${QEMUCONF_BASE:-}${QEMUCONF_BASE:+\n}$conf"
    e2e_qemuconf "$conf"
    # shellcheck disable=SC2086
    e2e_start_daemon "$bin" $NETFLAG --max-instances $((N + SMALL + 100)) \
        --cpu-overcommit 1000 --mem-overcommit 8 || exit 1
    e2e_qemuconf_kept "$conf" || exit 1
    e2e_push_images sleep >/dev/null
    # The batch at 0 is a few seconds: let the load of what ran before (the
    # previous config's 900 deletes) fade first, up to 2 minutes.
    for _ in $(seq 1 120); do
        awk '{exit !($1 < 1.5)}' /proc/loadavg && break
        sleep 1
    done
    e2e_log "== $cfg ($bin), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    ROW="$cfg"
    batch "at-0"
    have=$SMALL
    while [ "$have" -lt "$N" ]; do
        c=$((N - have))
        [ $c -gt 100 ] && c=100
        BASE=$have
        create "ramp-$have" "$c"
        wait_all "ramp-$have" "$c" 1800
        have=$((have + c))
    done
    e2e_log "  ramp to $have running done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    batch "at-$N"
    TABLE="$TABLE$ROW
"
    api DELETE "/v1/instances?selector=batch&force=true"
    e2e_stop_daemon
    pkill -9 -f "qemu-system.*$E2E_STATE" 2>/dev/null || true
    rm -rf "$E2E_STATE"
    E2E_STATE=""
done

echo "batch of $SMALL sleep guests ($([ "$NET" = 1 ] && echo networked || echo no network)) at 0 and at N=$N running, $(nproc) CPUs; ms; cpu/fork = shoald's CPU per start (perf) and the fork part of it"
echo "config  ready@0 created@0 cpu@0 fork@0 forks@0  ready@N created@N cpu@N fork@N forks@N  ready N/0"
printf '%s' "$TABLE" | awk '{printf "%-6s %8s %9s %5s %6s %7s  %7s %9s %5s %6s %7s  %8.2fx\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, ($2 > 0 ? $7 / $2 : 0)}'
[ "$E2E_FAILS" -eq 0 ]
