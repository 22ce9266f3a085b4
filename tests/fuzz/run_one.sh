#!/bin/sh
# run_one.sh BIN CORPUS WORK SECONDS [-LIBFUZZER-FLAG...] [MORE-CORPUS-DIRS...]
# One bounded libFuzzer run of BIN: the committed CORPUS (and any more
# dirs) is read, new inputs go to the scratch dir WORK (emptied first; the
# first dir libFuzzer is given is the one it writes), a crash, leak or
# timeout is written as WORK.crash-* etc. and fails the run. The last
# line libFuzzer prints (execs, cov, ft) is repeated as a summary.
set -u
bin=$1 corpus=$2 work=$3 secs=$4
shift 4
flags="" dirs=""
for a in "$@"; do
    case $a in
    -*) flags="$flags $a" ;;
    *) dirs="$dirs $a" ;;
    esac
done
rm -rf "$work" && mkdir -p "$work" || exit 1
log=$work.log
# shellcheck disable=SC2086  # flags and dirs hold no blanks
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -error_exitcode=1 -print_final_stats=1 \
    -artifact_prefix="$work." $flags "$work" "$corpus" $dirs >"$log" 2>&1
rc=$?
if [ "$rc" -ne 0 ]; then
    tail -n 60 "$log"
    echo "run_one.sh: $(basename "$bin") failed (exit $rc); inputs: $work.*"
    exit "$rc"
fi
# The last status line ("#4336008 REDUCE cov: 312 ft: 1210 corp: 590/12Kb
# ... exec/s: 206476 rss: 497Mb") and the final stats.
last=$(grep -E '^#[0-9]+[[:space:]].* cov: ' "$log" | tail -n 1)
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
corp=$(echo "$last" | sed -n 's/.* corp: \([^ ]*\).*/\1/p')
echo "$(basename "$bin") ${secs}s: runs ${runs:-?} exec/s ${eps:-?} cov ${cov:-?} ft ${ft:-?} corp ${corp:-?}"
