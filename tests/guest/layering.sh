#!/bin/sh
# layering.sh - keep the guest kernel layered (docs/guest-kernel.md, "Layers").
#
#   sh tests/guest/layering.sh [GUEST_KERNEL_DIR]
#
# Layers, lowest first: libc (the base everyone may use), arch, kernel,
# drivers, net, apps (apps/, tests/ and foreign/, the programs). A file may include
# headers of its own layer and of the layers below it, never of one above:
# whatever has to go upward is a callback the higher layer registers.
#
# Scans every #include "..." in the tree (resolved like the compiler does:
# next to the file, then libc/include and net/include), and every
# #include <...> that only net/include provides (sys/socket.h, poll.h, ...:
# the net layer's POSIX headers, on the include path of drivers/ too).
# Prints file:line and the include for each violation and exits 1; exits 1
# as well for a source file outside every layer or a quoted include that
# resolves to nothing, so neither can slip past. POSIX sh, no build needed.

set -u

here=$(cd "$(dirname "$0")" && pwd -P)
root=${1:-$here/../../guest-kernel}
root=$(cd "$root" 2>/dev/null && pwd -P) || { echo "layering: no directory ${1:-}" >&2; exit 2; }
[ -d "$root/kernel" ] && [ -d "$root/arch" ] || { echo "layering: $root is not guest-kernel/" >&2; exit 2; }

# Layer of a path relative to guest-kernel/: rank and name, or nothing.
layer() {
    case $1 in
        libc/*)          echo "0 libc" ;;
        arch/*)          echo "1 arch" ;;
        kernel/*)        echo "2 kernel" ;;
        drivers/*)       echo "3 drivers" ;;
        net/*)           echo "4 net" ;;
        apps/*|tests/*|foreign/*) echo "5 apps" ;;
    esac
}

# Absolute, normalized path of an existing file ($1), or nothing.
resolve() {
    [ -f "$1" ] || return 0
    d=$(cd "$(dirname "$1")" 2>/dev/null && pwd -P) || return 0
    echo "$d/$(basename "$1")"
}

report=$(
    find "$root" -type f \( -name '*.c' -o -name '*.h' -o -name '*.S' \) | LC_ALL=C sort |
    while IFS= read -r f; do
        rel=${f#"$root"/}
        own=$(layer "$rel")
        if [ -z "$own" ]; then
            echo "guest-kernel/$rel: in no layer (add its directory to tests/guest/layering.sh and docs/guest-kernel.md)"
            continue
        fi
        own_rank=${own%% *} own_name=${own#* }
        dir=$(dirname "$f")
        # "line<TAB>q|a<TAB>target<TAB>the directive as written"
        awk '
            /^[ \t]*#[ \t]*include[ \t]*"/ {
                t = $0; sub(/^[^"]*"/, "", t); sub(/".*$/, "", t)
                print NR "\tq\t" t "\t" $0; next
            }
            /^[ \t]*#[ \t]*include[ \t]*</ {
                t = $0; sub(/^[^<]*</, "", t); sub(/>.*$/, "", t)
                print NR "\ta\t" t "\t" $0
            }' "$f" |
        while IFS="$(printf '\t')" read -r line kind target text; do
            if [ "$kind" = q ]; then
                hit=$(resolve "$dir/$target")
                [ -n "$hit" ] || hit=$(resolve "$root/libc/include/$target")
                [ -n "$hit" ] || hit=$(resolve "$root/net/include/$target")
                if [ -z "$hit" ]; then
                    echo "guest-kernel/$rel:$line: cannot resolve: $text"
                    continue
                fi
            else
                # Angle includes count only when the net layer alone has them.
                [ -f "$root/net/include/$target" ] && [ ! -f "$root/libc/include/$target" ] || continue
                hit="$root/net/include/$target"
            fi
            case $hit in
                "$root"/*) ;;
                *) echo "guest-kernel/$rel:$line: outside guest-kernel/: $text"; continue ;;
            esac
            to=$(layer "${hit#"$root"/}")
            if [ -z "$to" ]; then
                echo "guest-kernel/$rel:$line: includes a header in no layer: $text"
            elif [ "${to%% *}" -gt "$own_rank" ]; then
                echo "guest-kernel/$rel:$line: $own_name includes ${to#* } (a higher layer): $text"
            fi
        done
    done
)
files=$(find "$root" -type f \( -name '*.c' -o -name '*.h' -o -name '*.S' \) | wc -l)
incs=$(find "$root" -type f \( -name '*.c' -o -name '*.h' -o -name '*.S' \) -exec cat {} + |
       grep -c '^[[:space:]]*#[[:space:]]*include')

if [ -n "$report" ]; then
    printf '%s\n' "$report"
    n=$(printf '%s\n' "$report" | wc -l)
    echo "layering: $n violation(s); order, lowest first: libc, arch, kernel, drivers, net, apps" \
         "(docs/guest-kernel.md, \"Layers\")"
    exit 1
fi
echo "layering: ok ($files files, $incs includes; libc < arch < kernel < drivers < net < apps)"
