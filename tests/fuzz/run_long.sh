#!/bin/sh
# run_long.sh [SECONDS] [BUILD_DIR]
# Every libFuzzer target of the repo, one after another, SECONDS each
# (default 600), from an existing CMake build dir (default build/; any
# compiler: the targets are built with clang from the sources). Seeds come
# from the committed corpora; new inputs go to BUILD_DIR/tests/fuzz/long/
# and never into the source tree. A crash, leak or timeout stops that
# target and is reported (file BUILD_DIR/tests/fuzz/long/NAME.crash-*);
# keep it as a regression case: copy it into the target's corpus and fix.
# Prints one line per target (runs, exec/s, cov, ft, corpus) and exits
# non-zero if any target failed. docs/fuzzing.md has the figures.
#   tests/fuzz/run_long.sh 3600 build      # an hour each
#   FUZZ_ONLY="http selector" tests/fuzz/run_long.sh 300
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
secs=${1:-600}
build=$(cd "${2:-$repo/build}" && pwd) || exit 1
out=$build/tests/fuzz/long
mkdir -p "$out"

cmake --build "$build" --target fuzz_lf_all -j "$(nproc)" >"$out/build.log" 2>&1 || {
    tail -n 40 "$out/build.log"
    echo "run_long.sh: building the fuzz targets failed ($out/build.log)"
    exit 1
}

# name  max_len  corpus dirs (colon-separated, relative to the repo)
targets="
http        4096  tests/fuzz/http_corpus
selector    1024  tests/fuzz/selector_corpus
chan        8192  tests/fuzz/chan_corpus
config      4096  tests/fuzz/config_corpus
hosturi     2048  tests/fuzz/hosturi_corpus
domxml      8192  tests/fuzz/domxml_corpus
capstrim    16384 tests/fuzz/capstrim_corpus
gstatus     2048  tests/fuzz/gstatus_corpus
api_decode  4096  tests/api/fuzz_corpus
imagestore  65536 tests/imagestore/fuzz_corpus:tests/imagestore/fuzz_regressions
guestnet    4096  tests/guestnet/corpus
"
echo "$targets" | while read -r name maxlen dirs; do
    [ -n "$name" ] || continue
    if [ -n "${FUZZ_ONLY:-}" ] && ! echo " $FUZZ_ONLY " | grep -q " $name "; then
        continue
    fi
    first=${dirs%%:*}
    rest=$(echo "$dirs" | tr ':' ' ' | cut -s -d' ' -f2-)
    dict=""
    [ -f "$here/$name.dict" ] && dict="-dict=$here/$name.dict"
    extra=""
    for d in $rest; do extra="$extra $repo/$d"; done
    if [ ! -x "$build/tests/fuzz/fuzz_${name}_lf" ]; then
        echo "fuzz_${name}_lf: not built here, skipped"
        continue
    fi
    # shellcheck disable=SC2086  # word splitting of the flag lists
    sh "$here/run_one.sh" "$build/tests/fuzz/fuzz_${name}_lf" "$repo/$first" "$out/$name" \
        "$secs" -max_len="$maxlen" $dict $extra || echo "run_long.sh: $name FAILED"
done | tee "$out/summary.txt"
! grep -q FAILED "$out/summary.txt"
