#!/bin/sh
# One code style for the whole tree: every tracked C file must be what
# clang-format makes of it with the repository's .clang-format. Prints the
# files that differ (and how to fix them) and exits 1; exit 77 (skipped)
# only when the tree is not a git checkout or clang-format is missing.
set -eu
root=$1
command -v clang-format >/dev/null || { echo "SKIP: no clang-format"; exit 77; }
cd "$root"
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { echo "SKIP: not a git checkout"; exit 77; }
bad=$(git ls-files -z '*.c' '*.h' | xargs -0 clang-format --dry-run 2>&1 \
      | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: warning: code should be clang-formatted.*/\1/p' \
      | sort -u)
if [ -n "$bad" ]; then
    echo "not formatted (run: clang-format -i FILE):"
    echo "$bad" | sed 's/^/    /'
    exit 1
fi
echo "all $(git ls-files '*.c' '*.h' | wc -l) C files formatted"
