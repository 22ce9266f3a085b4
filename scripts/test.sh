#!/bin/sh
# Set up a fresh Debian 12 machine, build shoal twice (plain and
# ASan+UBSan) and run the whole test suite. Exits non-zero on any failure.
set -eu
cd "$(dirname "$0")/.."

./scripts/setup-debian.sh

JOBS=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$JOBS"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSHOAL_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$JOBS"

# Sanitizer reports must fail the test that produced them.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

status=0
echo "== plain build: all tests except benchmarks"
ctest --test-dir build --output-on-failure -j "$JOBS" -LE bench || status=1
echo "== ASan+UBSan build: unit and integration tests"
ctest --test-dir build-asan --output-on-failure -j "$JOBS" -L 'unit|integration' || status=1

if [ "$status" -ne 0 ]; then
    echo "test.sh: FAILED"
else
    echo "test.sh: all passed"
fi
exit "$status"
