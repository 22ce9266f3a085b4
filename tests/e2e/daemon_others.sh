#!/bin/bash
# End to end (issue 17): a host that already runs something else. A
# separate libvirtd (tests/e2e/lvhost.sh: its own network and mount
# namespace, reached as qemu+tcp:// from the namespace shoald runs in) runs
# a domain that is not shoal's (96 MiB, 2 vCPUs, no shoal metadata), started
# with virsh before the host is added. Then:
#   - GET /v1/hosts/h1 shows it under "others" (1 domain, 96 MiB, 2 vCPUs)
#     and free_memory_mib leaves its memory out; /metrics too;
#   - a create pinned to h1 that would fit the host's memory only with the
#     others' 96 MiB is refused 507, naming h1's foreign load;
#   - once that domain is destroyed, the next sample (every 5 s) shows no
#     others.
# qemu+tcp is allowed with --host-uri-allow here only. About 15 s.
# usage: daemon_others.sh SHOALD IMAGES_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lvhost.sh"

for f in "$SHOALD" "$IMAGES/sleep.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
command -v libvirtd >/dev/null || { echo "SKIP: no libvirtd"; exit 77; }

others_cleanup() {
    set +e
    e2e_cleanup
    lvh_cleanup
}

e2e_setup
trap others_cleanup EXIT
lvh_init || exit 1
check "host h1 starts" lvh_start h1 1 "$E2E_NS"
[ "$E2E_FAILS" = 0 ] || exit 1

# Someone else's VM: no kernel, no disk (SeaBIOS finds nothing to boot and
# waits), no shoal metadata.
cat >"$(lvh_lib h1)/other.xml" <<'EOF'
<domain type='qemu'>
  <name>someone-else</name>
  <memory unit='MiB'>96</memory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><controller type='usb' model='none'/><memballoon model='none'/></devices>
</domain>
EOF
check "someone else's domain runs on h1" \
    lvh_exec h1 virsh -q -c qemu:///system create /var/lib/libvirt/other.xml

# The local host is libvirt's mock (8 GiB): h1 is the largest host.
e2e_start_daemon "$SHOALD" --no-network --local-uri test:///default \
    --host-uri-allow 'qemu+tcp,test' || exit 1
e2e_push_images sleep
api POST /v1/hosts -H 'Content-Type: application/json' \
    -d "{\"name\":\"h1\",\"uri\":\"$(lvh_uri h1)\",\"domain_type\":\"qemu\"}"
check "add h1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]

api GET /v1/hosts/h1
H1=$BODY
field() { printf '%s' "$H1" | jq -r "$1"; }
check "h1 is up" [ "$(field .state)" = up ]
check "others: 1 domain ($(field .others.domains))" [ "$(field .others.domains)" = 1 ]
check "others: 96 MiB ($(field .others.memory_mib))" [ "$(field .others.memory_mib)" = 96 ]
check "others: 2 vCPUs ($(field .others.vcpus))" [ "$(field .others.vcpus)" = 2 ]
CAP=$(field .capacity.memory_mib)
RES=$(field .usage.reserved_memory_mib)
FREE=$(field .free_memory_mib)
free_ok() { [ "$FREE" -gt 0 ] && [ "$FREE" -le $((CAP - RES - 96)) ]; }
check "free memory ($FREE MiB) leaves out the others' 96 MiB" free_ok

api GET /metrics
check "/metrics: shoal_host_others_memory_mib of h1 is 96" \
    grep -qx 'shoal_host_others_memory_mib{host="h1"} 96' <<<"$BODY"
check "/metrics: shoal_host_others_domains of h1 is 1" \
    grep -qx 'shoal_host_others_domains{host="h1"} 1' <<<"$BODY"

# A guest whose memory + 12 MiB VMM is one MiB more than h1 has beyond its
# reserve once the others' memory is left out: it would fit without them.
MEM=$((CAP - RES - 96 - 12 + 1))
create() {
    api POST /v1/instances -H 'Content-Type: application/json' \
        -d "{\"image\":\"sleep\",\"name\":\"big\",\"memory_mib\":$MEM,\"host\":\"h1\",\"network\":false}"
}
create
check "a guest that fits only in the others' memory: 507 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 507 ]
check "the 507 names h1's foreign load: $(printf '%s' "$BODY" | jq -r .error.message)" \
    grep -q "host 'h1' has 96 MiB held by 1 domain shoal does not own" <<<"$BODY"

check "someone else's domain is destroyed" \
    lvh_exec h1 virsh -q -c qemu:///system destroy someone-else
others_gone() {
    api GET /v1/hosts/h1
    [ "$(printf '%s' "$BODY" | jq -r .others.domains)" = 0 ]
}
check "the next sample shows no others on h1" wait_for 15 others_gone
check "and no memory held by others" \
    [ "$(printf '%s' "$BODY" | jq -r .others.memory_mib)" = 0 ]
e2e_finish
