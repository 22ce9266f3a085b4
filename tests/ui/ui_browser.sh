#!/bin/bash
# End to end: shoald's web view (docs/ui.md) in headless Chromium.
# One shoald in its own network namespace with two real guests on its
# embedded QEMU host and 1,000 instances on a simulated host
# (test:///default); chromedriver inside the same namespace, driven by
# ui_browser.py over WebDriver's HTTP protocol. Chromium runs as root here,
# so the test (only) passes it --no-sandbox. About 30 s.
# usage: ui_browser.sh SHOALD IMAGES_DIR SHOTS_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
SHOTS=$3
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../e2e/lib.sh"

for f in "$SHOALD" "$IMAGES/sleep.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
for p in chromium chromedriver python3 jq; do
    command -v "$p" >/dev/null || { echo "SKIP: $p is not installed (scripts/setup-debian.sh)"; exit 77; }
done

E2E_DRIVER=""
ui_cleanup() {
    set +e # the test's verdict stands; cleanup failing changes nothing
    [ -n "$E2E_DRIVER" ] && kill "$E2E_DRIVER" 2>/dev/null
    # a Chromium whose session was never closed (the driver script died):
    # only ours, by its profile directory under this test's state dir
    [ -n "$E2E_STATE" ] && pkill -9 -f -- "--user-data-dir=$E2E_STATE/chromium" 2>/dev/null
    e2e_cleanup
}
e2e_setup
trap ui_cleanup EXIT
# nominal capacity and overcommit: the simulated host holds 1,000 records
e2e_start_daemon "$SHOALD" --host-uri-allow 'qemu+tls,qemu+ssh,qemu,test' \
    --capacity nominal --mem-overcommit 40 --cpu-overcommit 1000 --max-instances 1200 || exit 1
e2e_push_images sleep
JSON=(-H 'Content-Type: application/json')

# two real guests (TCG or KVM, whatever the canary chose), one with a port
api POST /v1/instances "${JSON[@]}" \
    -d '{"image":"sleep","name":"web-1","args":["600"],"host":"local","labels":{"app":"web"},"ports":[{"host":18080,"guest":80}]}'
check "real guest web-1 created (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
api POST /v1/instances "${JSON[@]}" \
    -d '{"image":"sleep","name":"web-2","args":["600"],"host":"local","labels":{"app":"web"}}'
check "real guest web-2 created (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
api POST /v1/hosts "${JSON[@]}" -d '{"name":"sim","uri":"test:///default"}'
check "simulated host added (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
for b in 1 2 3 4; do
    api POST /v1/instances "${JSON[@]}" \
        -d "{\"image\":\"sleep\",\"name\":\"s$b\",\"count\":250,\"memory_mib\":16,\"host\":\"sim\",\"network\":false,\"ready\":\"none\",\"labels\":{\"app\":\"sim\"}}"
    check "250 simulated instances s$b (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
done
both_run() { inst_state_is web-1 running && inst_state_is web-2 running; }
check "the real guests run" wait_for 90 both_run
sim_run() {
    api GET "/v1/instances?host=sim&state=running&limit=1000"
    [ "$(jq '.items | length' <<<"$BODY")" = 1000 ]
}
check "the simulated instances run" wait_for 60 sim_run

mkdir -p "$SHOTS"
DPORT=$((9515 + $$ % 400))
ip netns exec "$E2E_NS" chromedriver --port="$DPORT" --allowed-ips=127.0.0.1 >"$E2E_STATE/chromedriver.log" 2>&1 &
E2E_DRIVER=$!
if ip netns exec "$E2E_NS" python3 "$HERE/ui_browser.py" \
    --base "http://127.0.0.1:$E2E_PORT" --driver "http://127.0.0.1:$DPORT" \
    --token-file "$E2E_STATE/admin.token" --shots "$SHOTS" --profile "$E2E_STATE/chromium"; then
    e2e_pass "browser checks (ui_browser.py)"
else
    e2e_fail "browser checks (ui_browser.py)"
    tail -n 20 "$E2E_STATE/chromedriver.log"
fi
e2e_finish
