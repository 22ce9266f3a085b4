#!/bin/bash
# End to end: hosts added by URI (libvirt's test:///default driver stands in
# for a second machine), placement with --host and cordon, drain with real
# cold moves onto the local QEMU host, consolidate, host removal, console
# rotation, --check-config and TLS.
# usage: daemon_fleet.sh SHOALD IMAGES_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
. "$(dirname "$0")/lib.sh"

e2e_setup

# --- configuration check
check "--check-config accepts a good configuration" \
    "$SHOALD" --check-config --state-dir "$E2E_STATE"
set +e
out=$("$SHOALD" --check-config --state-dir "$E2E_STATE" --subnet 10.0.0.0/33 2>&1)
rc=$?
set -e
check "--check-config rejects a bad subnet (exit $rc)" [ "$rc" = 2 ]
check "the message quotes the value" grep -q '10.0.0.0/33' <<<"$out"

# --- TLS: a self-signed certificate
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 \
    -keyout "$E2E_STATE/key.pem" -out "$E2E_STATE/cert.pem" 2>/dev/null
ip netns exec "$E2E_NS" "$SHOALD" --state-dir "$E2E_STATE/tls" --listen 127.0.0.1:7443 \
    --no-network --tls-cert "$E2E_STATE/cert.pem" --tls-key "$E2E_STATE/key.pem" \
    >"$E2E_STATE/tls.log" 2>&1 &
TLS_PID=$!
check "HTTPS answers with the configured certificate" \
    wait_for 60 ns_curl -fs --cacert "$E2E_STATE/cert.pem" https://localhost:7443/healthz -o /dev/null \
        --resolve localhost:7443:127.0.0.1
check "plain HTTP is not served on the TLS port" \
    bash -c "! ip netns exec $E2E_NS curl -fsS -m 5 http://127.0.0.1:7443/healthz"
kill "$TLS_PID"
wait "$TLS_PID" 2>/dev/null || true

# --- the daemon proper, with a tiny console budget
# The mock host (test:///default) is a driver the operator must allow
# (docs/shoald.md, --host-uri-allow); ssh with command= stays refused.
e2e_start_daemon "$SHOALD" --console-max-kib 1 --host-uri-allow 'qemu+tls,qemu+ssh,qemu,test' || exit 1
e2e_push_images hello sleep

# --- console rotation: hello prints its arguments (3 x 1000 bytes)
big=$(head -c 1000 /dev/zero | tr '\0' 'x')
args=$(for _ in $(seq 3); do printf '"%s",' "$big"; done)
api POST /v1/instances -H 'Content-Type: application/json' \
    -d "{\"image\":\"hello\",\"name\":\"chatty\",\"args\":[${args%,}]}"
check "chatty created (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "chatty exits" wait_for 60 inst_state_is chatty exited
CID=$(inst_field chatty .id)
size=$(stat -c %s "$E2E_STATE/logs/$CID.log")
check "console kept under its budget ($size bytes)" [ "$size" -le 1024 ]
check "older console output rotated to .1" [ -s "$E2E_STATE/logs/$CID.log.1" ]

# --- arguments that cannot fit the guest command line are refused up front
args=$(for _ in $(seq 5); do printf '"%s",' "$big"; done)
api POST /v1/instances -H 'Content-Type: application/json' \
    -d "{\"image\":\"hello\",\"name\":\"toolong\",\"args\":[${args%,}]}"
check "oversized command line is 400 (got $HTTP_CODE)" [ "$HTTP_CODE" = 400 ]
check "the error names args" [ "$(printf '%s' "$BODY" | jq -r .error.field)" = args ]

# --- the local host says which accelerator it chose and why
api GET /v1/hosts/local
check "local host reports whether KVM works" [ "$(printf '%s' "$BODY" | jq '.kvm | type')" = '"boolean"' ]
check "local host explains its domain type" [ -n "$(printf '%s' "$BODY" | jq -r '.domain_type_reason // empty')" ]

# --- a second host through a libvirt URI
api POST /v1/hosts -H 'Content-Type: application/json' -d '{"name":"mock1","uri":"test:///default"}'
check "add host mock1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "mock1 is up" [ "$(printf '%s' "$BODY" | jq -r .state)" = up ]
check "mock1 reports capacity" [ "$(printf '%s' "$BODY" | jq '.capacity.memory_mib > 0')" = true ]
api POST /v1/hosts -H 'Content-Type: application/json' -d '{"name":"mock1","uri":"test:///default"}'
check "adding it twice is 409 (got $HTTP_CODE)" [ "$HTTP_CODE" = 409 ]
api POST /v1/hosts -H 'Content-Type: application/json' -d '{"name":"emb","uri":"qemu:///embed?root=/tmp/x"}'
check "a second embedded root is refused (got $HTTP_CODE)" [ "$HTTP_CODE" = 400 ]
api POST /v1/hosts -H 'Content-Type: application/json' \
    -d '{"name":"evil","uri":"qemu+ssh://nobody@127.0.0.1:1/system?command=/bin/true"}'
check "a URI with command= is refused (got $HTTP_CODE)" [ "$HTTP_CODE" = 400 ]
api GET /v1/hosts
check "two hosts listed" [ "$(printf '%s' "$BODY" | jq '.items | length')" = 2 ]

api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"sleep","name":"m","count":3,"host":"mock1","args":["600"],"network":false}'
check "3 instances pinned to mock1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "all on mock1" [ "$(printf '%s' "$BODY" | jq -r '[.items[].host] | unique | join(",")')" = mock1 ]
api POST /v1/instances -H 'Content-Type: application/json' -d '{"image":"sleep","host":"nowhere"}'
check "unknown host is 404 (got $HTTP_CODE)" [ "$HTTP_CODE" = 404 ]
api POST /v1/instances -H 'Content-Type: application/json' -d '{"image":"sleep","memory_mib":65536,"count":1000}'
check "a batch that cannot fit is 507 (got $HTTP_CODE)" [ "$HTTP_CODE" = 507 ]
check "507 names the resource" grep -q -i -E 'memory|slot|vcpu' <<<"$(printf '%s' "$BODY" | jq -r .error.message)"
api GET /v1/instances
check "nothing of the refused batch was created" [ "$(printf '%s' "$BODY" | jq '.items | length')" = 4 ]

# --- cordon: new instances avoid the cordoned host
api POST /v1/hosts/local/cordon -H 'Content-Type: application/json' -d '{"cordoned":true}'
check "cordon local (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
api POST /v1/instances -H 'Content-Type: application/json' -d '{"image":"sleep","name":"c1","args":["600"],"network":false}'
check "placed off the cordoned host" [ "$(printf '%s' "$BODY" | jq -r '.items[0].host')" = mock1 ]
api POST "/v1/hosts/mock1/drain?dry_run=true"
check "drain with every other host cordoned is refused (got $HTTP_CODE)" [ "$HTTP_CODE" = 507 ]
api POST /v1/hosts/local/cordon -H 'Content-Type: application/json' -d '{"cordoned":false}'

# --- drain: plan, then real cold moves onto local QEMU
api POST "/v1/hosts/mock1/drain?dry_run=true"
check "drain plan (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "plan moves 4 instances" [ "$(printf '%s' "$BODY" | jq '.moves | length')" = 4 ]
check "plan frees mock1" [ "$(printf '%s' "$BODY" | jq -r '.hosts_freed | join(",")')" = mock1 ]
check "dry run executed nothing" [ "$(inst_field m-1 .host)" = mock1 ]
api POST /v1/hosts/mock1/drain
check "drain (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "drain reports executed" [ "$(printf '%s' "$BODY" | jq .executed)" = true ]
for n in m-1 m-2 m-3 c1; do
    check "$n moved to local" [ "$(inst_field $n .host)" = local ]
    check "$n runs on local QEMU" wait_for 60 inst_state_is $n running
done
api GET /v1/hosts/mock1
check "mock1 is cordoned after the drain" [ "$(printf '%s' "$BODY" | jq .cordoned)" = true ]

api POST "/v1/consolidate?dry_run=true"
check "consolidate plan (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "nothing to consolidate on one used host" [ "$(printf '%s' "$BODY" | jq '.moves | length')" = 0 ]

api DELETE /v1/hosts/local
check "the local host cannot be removed (got $HTTP_CODE)" [ "$HTTP_CODE" = 409 ]
api DELETE /v1/hosts/mock1
check "remove the drained host (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
api GET /v1/hosts
check "one host left" [ "$(printf '%s' "$BODY" | jq '.items | length')" = 1 ]

# --- placement rules: anti-affinity keeps replicas on different hosts
cat >"$E2E_STATE/mock2.xml" <<'XML'
<node>
  <cpu><mhz>2000</mhz><model>mock</model><active>16</active><nodes>1</nodes>
       <sockets>1</sockets><cores>16</cores><threads>1</threads></cpu>
  <memory>33554432</memory>
</node>
XML
api POST /v1/hosts -H 'Content-Type: application/json' \
    -d "{\"name\":\"mock2\",\"uri\":\"test://$E2E_STATE/mock2.xml\",\"labels\":{\"zone\":\"b\"}}"
check "add mock2 from a test-driver file (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "mock2 has the file's capacity" [ "$(printf '%s' "$BODY" | jq .capacity.memory_mib)" = 32768 ]
api POST /v1/hosts -H 'Content-Type: application/json' \
    -d "{\"name\":\"mock3\",\"uri\":\"test://$E2E_STATE/mock2.xml\"}"
check "a second host on the same URI is refused (got $HTTP_CODE)" [ "$HTTP_CODE" = 409 ]
WEB='"image":"sleep","args":["600"],"network":false,"labels":{"app":"web"},"placement":{"rules":[{"kind":"anti-affinity","key":"app","value":"web"}]}'
api POST /v1/instances -H 'Content-Type: application/json' -d "{\"name\":\"web\",\"count\":2,$WEB}"
check "2 anti-affine replicas on 2 hosts (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "one per host" [ "$(printf '%s' "$BODY" | jq -r '[.items[].host] | sort | join(",")')" = local,mock2 ]
check "the rule is shown on the instance" \
    [ "$(printf '%s' "$BODY" | jq -r '.items[0].placement.rules[0].kind')" = anti-affinity ]
api POST /v1/instances -H 'Content-Type: application/json' -d "{\"name\":\"web3\",$WEB}"
check "a third replica has no host left (got $HTTP_CODE)" [ "$HTTP_CODE" = 507 ]
check "the refusal names the rule" grep -q -i 'affinity' <<<"$(printf '%s' "$BODY" | jq -r .error.message)"
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"sleep","name":"zb","network":false,"args":["600"],"placement":{"rules":[{"kind":"host-affinity","key":"zone","value":"b"}]}}'
check "host affinity picks the zone=b host" [ "$(printf '%s' "$BODY" | jq -r '.items[0].host')" = mock2 ]
api POST "/v1/hosts/mock2/drain?dry_run=true"
check "drain cannot break anti-affinity (got $HTTP_CODE)" [ "$HTTP_CODE" = 507 ]
check "drain refusal says why" grep -q -i 'web' <<<"$(printf '%s' "$BODY" | jq -r .error.message)"

for n in m-1 m-2 m-3 c1 chatty web-1 web-2 zb; do
    api DELETE "/v1/instances/$n?force=true"
done
check "no QEMU left running" wait_for 15 eval '[ "$(pgrep -f "qemu-system.*$E2E_STATE" | wc -l)" = 0 ]'
e2e_finish
