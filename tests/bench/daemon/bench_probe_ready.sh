#!/bin/bash
# Benchmark (issue 14): create -> ready of a networked guest made ready by a
# tcp probe under SeaBIOS (what a foreign image with a published port gets
# by default), against the reference guest (qboot, status channel), same
# run, same shoald, real QEMU. One row per variant, N sequential runs each
# (one guest at a time, deleted after), ready_ms as shoald measures it
# (request -> ready):
#   ref/qboot/status      httpd, its own profile: the baseline
#   ref/qboot/tcp:80      the same guest, readiness by tcp probe instead
#   ref/seabios/tcp:80    the same kernel (another digest) with firmware
#                         seabios (PATCH /v1/images), readiness by tcp probe
#   ukhttpd/seabios/tcp   foreign_uk_httpd (kind unikraft: SeaBIOS, the
#                         unikraft preset) with a published port and no
#                         --ready: the default tcp probe of its guest port,
#                         the networked foreign guest of the target
#   uk/seabios/console    foreign_unikraft (kind unikraft, SeaBIOS, no
#                         network stack), ready by a console line
# Prints median and p90 per row, the target ratio (the networked foreign
# guest over the baseline, target <= 1.5) and what SeaBIOS costs over qboot.
# usage: bench_probe_ready.sh SHOALD IMAGES_DIR [N]
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
N=${3:-10}
. "$(dirname "$0")/../../e2e/lib.sh"

for f in "$SHOALD" "$IMAGES/httpd.elf" "$IMAGES/foreign_unikraft.elf" "$IMAGES/foreign_uk_httpd.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
e2e_setup
e2e_start_daemon "$SHOALD" || exit 1

push() { # FILE REF
    api POST "/v1/images?ref=$2" -H 'Content-Type: application/octet-stream' --data-binary "@$1"
    [ "$HTTP_CODE" = 201 ] || { echo "push $2: HTTP $HTTP_CODE $BODY"; exit 1; }
}
push "$IMAGES/httpd.elf" ref:1
# The same kernel under another digest, so that its profile is its own.
cp "$IMAGES/httpd.elf" "$E2E_STATE/httpd-sb.elf"
printf '\0' >>"$E2E_STATE/httpd-sb.elf"
push "$E2E_STATE/httpd-sb.elf" sb:1
push "$IMAGES/foreign_unikraft.elf" uk:1
push "$IMAGES/foreign_uk_httpd.elf" ukhttpd:1
api PATCH /v1/images/sb:1 -H 'Content-Type: application/json' -d '{"firmware":"seabios"}'
SEABIOS=1
if [ "$HTTP_CODE" = 200 ]; then
    api GET /v1/images/sb:1
    echo "sb:1 firmware: $(printf '%s' "$BODY" | jq -r .profile.firmware); ukhttpd:1: $(api GET /v1/images/ukhttpd:1; printf '%s' "$BODY" | jq -r '[.kind, .profile.firmware] | join(" ")')"
else
    echo "PATCH /v1/images: HTTP $HTTP_CODE ($BODY): no SeaBIOS row for the reference guest"
    SEABIOS=0
fi

# one BODY: create, wait until running, print ready_ms, delete.
one() {
    api POST /v1/instances -H 'Content-Type: application/json' -d "$1"
    [ "$HTTP_CODE" = 201 ] || { echo "create: HTTP $HTTP_CODE $BODY" >&2; return 1; }
    local id ms
    id=$(printf '%s' "$BODY" | jq -r '.items[0].id')
    wait_for 60 eval '[ "$(inst_field '"$id"' .ready_ms)" != null ]' || {
        echo "$id never ready: $(inst_field "$id" '{state, ready, health, runs}' | tr -d '\n')" >&2
        return 1
    }
    ms=$(inst_field "$id" .ready_ms)
    api DELETE "/v1/instances/$id?force=true"
    wait_for 30 eval 'api GET /v1/instances/'"$id"'; [ "$HTTP_CODE" = 404 ]' || true
    printf '%s\n' "$ms"
}

# row NAME BODY: N runs, "NAME median p90" on stdout, the runs on stderr.
declare -A MED
row() {
    local name=$1 body=$2 vals=()
    local v
    if ! one "$body" >/dev/null; then # warm-up: image materialized, caches
        printf '%-22s failed (above)\n' "$name"
        return 0
    fi
    for _ in $(seq 1 "$N"); do
        v=$(one "$body") || { printf '%-22s failed (above)\n' "$name"; return 0; }
        vals+=("$v")
    done
    local sorted med p90
    sorted=$(printf '%s\n' "${vals[@]}" | sort -g)
    med=$(printf '%s\n' "$sorted" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
    p90=$(printf '%s\n' "$sorted" | awk '{a[NR]=$1} END {i=int(NR*0.9+0.999); if (i<1) i=1; print a[i]}')
    MED[$name]=$med
    printf '%-22s %9.1f ms %9.1f ms   (runs: %s)\n' "$name" "$med" "$p90" "$(printf '%s ' "${vals[@]}")"
}

echo "create -> ready (ms, shoald's ready_ms), $N runs per row, one guest at a time"
printf '%-22s %12s %12s\n' variant median p90
row ref/qboot/status '{"image":"ref:1","args":["80"]}'
row ref/qboot/tcp:80 '{"image":"ref:1","args":["80"],"ready":"tcp:80"}'
if [ "$SEABIOS" = 1 ]; then
    row ref/seabios/tcp:80 '{"image":"sb:1","args":["80"],"ready":"tcp:80"}'
fi
row ukhttpd/seabios/tcp '{"image":"ukhttpd:1","args":["8080"],"ports":[{"host":18080,"guest":8080}]}'
row uk/seabios/console '{"image":"uk:1","ready":"console:netdev\\.ip="}'
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
base=${MED[ref/qboot/status]:-}
if [ -n "${MED[ukhttpd/seabios/tcp]:-}" ] && [ -n "$base" ]; then
    echo "target: networked foreign guest (SeaBIOS, default tcp probe) over the reference guest (qboot, status channel): $(ratio "${MED[ukhttpd/seabios/tcp]}" "$base")x (target <= 1.5)"
fi
if [ -n "${MED[ref/seabios/tcp:80]:-}" ] && [ -n "${MED[ref/qboot/tcp:80]:-}" ]; then
    echo "SeaBIOS over qboot (same kernel, same tcp probe): +$(awk -v a="${MED[ref/seabios/tcp:80]}" -v b="${MED[ref/qboot/tcp:80]}" 'BEGIN { printf "%.1f", a - b }') ms (median)"
fi
if [ -n "${MED[ref/qboot/tcp:80]:-}" ] && [ -n "$base" ]; then
    echo "tcp probe over the status channel (qboot): $(ratio "${MED[ref/qboot/tcp:80]}" "$base")x"
fi
e2e_finish
