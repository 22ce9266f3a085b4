#!/bin/bash
# End to end (issue 14): a networked Unikraft-style guest whose NIC's BARs
# the firmware assigned. foreign_uk_httpd (guest-kernel/foreign: the
# reference kernel and httpd in the mode uk_mode.c sets: it reads
# `NAME netdev.ip=CIDR:GW -- ARGS` and leaves PCI set-up to the firmware,
# stripped of what marks a shoal guest) is pushed with no options: kind
# unikraft, SeaBIOS, the unikraft preset. Through shoald it gets its
# address from netdev.ip= and answers /healthz from the test's namespace at
# that address and through a published port. The same image set to boot
# from qboot (which assigns no BARs) cannot network, and says so. Prints
# create-to-answer for it and for the reference httpd (qboot), same run.
# usage: daemon_foreign_net.sh SHOALD IMAGES_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
. "$(dirname "$0")/lib.sh"

for f in "$SHOALD" "$IMAGES/foreign_uk_httpd.elf" "$IMAGES/httpd.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
e2e_setup
e2e_start_daemon "$SHOALD" || exit 1

push() {
    api POST "/v1/images?ref=$2" -H 'Content-Type: application/octet-stream' --data-binary "@$1"
    check "push $2 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
}
run() {
    api POST /v1/instances -H 'Content-Type: application/json' -d "$1"
    check "create $1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
    ID=$(printf '%s' "$BODY" | jq -r '.items[0].id')
}
console() {
    api GET "/v1/instances/$1/console"
    printf '%s' "$BODY"
}
now_ms() { date +%s%3N; }
# answers URL: /healthz says ok
answers() { [ "$(ns_curl -sS -m 2 "$1" 2>/dev/null)" = ok ]; }

push "$IMAGES/foreign_uk_httpd.elf" ukhttpd:latest
push "$IMAGES/httpd.elf" httpd:latest
api GET /v1/images/ukhttpd
check "ukhttpd: kind unikraft, seabios, unikraft preset" \
    [ "$(printf '%s' "$BODY" | jq -r '[.kind, .profile.firmware, .profile.cmdline] | join(" ")')" = "unikraft seabios unikraft" ]

# --- the reference httpd first, for the same-run comparison
t0=$(now_ms)
run '{"image":"httpd","name":"ref","args":["80"]}'
REF_IP=$(inst_field ref .network.address | cut -d/ -f1)
check "the reference httpd answers at $REF_IP" wait_for 60 answers "http://$REF_IP/healthz"
ref_ms=$(($(now_ms) - t0))

# --- the Unikraft-style guest under SeaBIOS
t0=$(now_ms)
run '{"image":"ukhttpd","name":"uk","args":["8080"],"ports":[{"host":18080,"guest":8080}]}'
UK=$ID
UK_IP=$(inst_field uk .network.address | cut -d/ -f1)
check "uk answers /healthz at its address $UK_IP" wait_for 90 answers "http://$UK_IP:8080/healthz"
uk_ms=$(($(now_ms) - t0))
check "uk answers through the published port 18080" wait_for 20 answers "http://127.0.0.1:18080/healthz"
check "uk took its address from netdev.ip= (console: $(console uk | grep '^net:' || true))" \
    grep -q "^net: $UK_IP/16 .* gw 10.88.0.1 virtio" <<<"$(console uk)"
check "uk's QEMU ran SeaBIOS (no -bios)" \
    eval '! grep -q -- "^-bios" "$E2E_STATE/libvirt/log/qemu/shoal-$UK.log"'
e2e_log "create to /healthz answering: reference httpd (qboot) ${ref_ms} ms, foreign_uk_httpd (SeaBIOS) ${uk_ms} ms"

# --- the same image from qboot: no BARs assigned, no network
api PATCH /v1/images/ukhttpd -H 'Content-Type: application/json' -d '{"firmware":"qboot"}'
check "set ukhttpd to qboot (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
run '{"image":"ukhttpd","name":"ukq","args":["8080"]}'
check "under qboot it reports the unassigned BAR and cannot network" \
    wait_for 60 eval 'grep -q "the firmware left the BAR unassigned" <<<"$(console ukq)"'
check "and ends (exited)" wait_for 60 inst_state_is ukq exited

e2e_finish
