#!/bin/bash
# End to end: shoald + libvirt embedded driver + real QEMU + the reference
# guest. Upload, create, ready, exit codes, console, crash with restart
# policy, stop/start, SIGKILL of the daemon with adoption, delete.
# usage: daemon_lifecycle.sh SHOALD IMAGES_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
. "$(dirname "$0")/lib.sh"

for f in "$SHOALD" "$IMAGES/hello.elf" "$IMAGES/exitcode.elf" "$IMAGES/crash.elf" "$IMAGES/sleep.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
e2e_setup
unset G_SLICE GLIBC_TUNABLES # shoald's own choice is checked below
e2e_start_daemon "$SHOALD" || exit 1

# --- auth and health
check "healthz without a token" ns_curl -fsS "http://127.0.0.1:$E2E_PORT/healthz" -o /dev/null
code=$(ns_curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$E2E_PORT/v1/instances")
check "instances without a token is 401 (got $code)" [ "$code" = 401 ]

# --- images
e2e_push_images hello exitcode crash sleep
printf 'not an elf at all' >"$E2E_STATE/junk.bin"
api POST "/v1/images?ref=junk:1" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$E2E_STATE/junk.bin"
check "junk upload is 422 (got $HTTP_CODE)" [ "$HTTP_CODE" = 422 ]
check "junk upload error names the problem" \
    [ -n "$(printf '%s' "$BODY" | jq -r '.error.message' | grep -i -E 'elf|magic|boot')" ]
api GET "/v1/images/junk:1"
check "junk image is not visible (got $HTTP_CODE)" [ "$HTTP_CODE" = 404 ]

# --- hello: ready, exit 0, args and env on the console
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"hello","name":"hi","count":3,"args":["one","two words"],"env":{"GREETING":"hello there"},"labels":{"app":"hello"}}'
check "create 3 hello (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "create returns 3 items" [ "$(printf '%s' "$BODY" | jq '.items | length')" = 3 ]
for n in hi-1 hi-2 hi-3; do
    check "$n exits" wait_for 60 inst_state_is "$n" exited
    check "$n exit code 0" [ "$(inst_field $n .exit_code)" = 0 ]
    check "$n reported boot time" [ "$(inst_field $n '.boot_ms != null')" = true ]
done
api GET "/v1/instances/hi-1/console"
check "console has the arguments" grep -q 'two words' <<<"$BODY"
check "console has the environment" grep -q 'GREETING=hello there' <<<"$BODY"
api GET "/v1/instances?selector=app=hello"
check "selector lists 3" [ "$(printf '%s' "$BODY" | jq '.items | length')" = 3 ]
api POST /v1/instances -H 'Content-Type: application/json' -d '{"image":"hello","name":"hi-1"}'
check "duplicate name is 409 (got $HTTP_CODE)" [ "$HTTP_CODE" = 409 ]
api POST /v1/instances -H 'Content-Type: application/json' -d '{"image":"nope:1"}'
check "unknown image is 404 (got $HTTP_CODE)" [ "$HTTP_CODE" = 404 ]

# --- exit codes
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"exitcode","name":"ec","args":["7"]}'
check "exitcode instance exits" wait_for 60 inst_state_is ec exited
check "exit code 7 recorded" [ "$(inst_field ec .exit_code)" = 7 ]

# --- crash with restart policy
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"crash","name":"boom","restart":"on-failure"}'
check "crash restarted at least twice by its policy" \
    wait_for 60 eval '[ "$(inst_field boom .restarts)" -ge 2 ]'
check "crash reason recorded" grep -q -i 'page fault' <<<"$(inst_field boom '.runs[0].reason')"
api POST /v1/instances/boom/stop -H 'Content-Type: application/json' -d '{"timeout_s":1}'
check "stop a crash-looping instance (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
sleep 2
check "it stays stopped" inst_state_is boom stopped

# --- long-running instance: stop, start, adoption after SIGKILL
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"sleep","name":"nap","args":["600"]}'
check "sleep instance runs" wait_for 60 inst_state_is nap running
ID=$(inst_field nap .id)
check "guest has an address in the subnet" \
    grep -q '^10\.88\.' <<<"$(inst_field nap .network.address)"
check "one QEMU for it" [ "$(qemu_count "$ID")" = 1 ]
# Per-thread allocator caches off (docs/benchmarks.md "shoald memory per
# instance"): shoald restarted itself with both; QEMU, which libvirt starts
# with an environment of its own, has neither.
envs=$(tr '\0' '\n' <"/proc/$E2E_PID/environ")
check "shoald runs with glibc's tcache off" grep -qx 'GLIBC_TUNABLES=glibc.malloc.tcache_count=0' <<<"$envs"
check "shoald runs with GLib's slices from malloc" grep -qx 'G_SLICE=always-malloc' <<<"$envs"
qpid=$(pgrep -f "qemu-system.*$E2E_STATE.*$ID" | head -n 1)
check "its QEMU inherits neither" eval '[ -n "$qpid" ] &&
    ! tr "\0" "\n" <"/proc/$qpid/environ" | grep -q -E "^(G_SLICE|GLIBC_TUNABLES)="'
t0=$(date +%s%N)
api POST /v1/instances/nap/stop -H 'Content-Type: application/json' -d '{"timeout_s":20}'
t1=$(date +%s%N)
check "stop (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "stopped" wait_for 20 inst_state_is nap stopped
# The guest hears the ACPI power button and exits on its own, long before
# the 20 s timeout would force it.
check "graceful stop took $(( (t1 - t0) / 1000000 )) ms (< 10 s)" [ $(( (t1 - t0) / 1000000 )) -lt 10000 ]
check "graceful stop exit code 143" [ "$(inst_field nap .exit_code)" = 143 ]
api GET /v1/instances/nap/console
check "guest said why it stopped" grep -q 'power button' <<<"$BODY"
check "its QEMU is gone" wait_for 10 eval '[ "$(qemu_count "$ID")" = 0 ]'
api POST /v1/instances/nap/start
check "start again (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "running again" wait_for 60 inst_state_is nap running

kill -9 "$E2E_PID"
wait "$E2E_PID" 2>/dev/null || true
check "guest survives the daemon's death" [ "$(qemu_count "$ID")" = 1 ]
e2e_start_daemon "$SHOALD" || exit 1
check "adopted after restart" wait_for 30 inst_state_is nap running
check "same id" [ "$(inst_field nap .id)" = "$ID" ]
check "still exactly one QEMU" [ "$(qemu_count "$ID")" = 1 ]
# A graceful daemon restart, with a domain nobody owns planted meanwhile:
# the next shoald adopts ours and destroys the stranger.
kill -TERM "$E2E_PID"
wait "$E2E_PID" 2>/dev/null || true
check "guest survives a graceful daemon stop" [ "$(qemu_count "$ID")" = 1 ]
cat >"$E2E_STATE/orphan.xml" <<XML
<domain type='qemu'>
  <name>shoal-0rphan0rphan</name>
  <metadata><shoal:instance xmlns:shoal='https://shoal.dev/xmlns/instance/1' id='0rphan0rphan'/></metadata>
  <memory unit='MiB'>16</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <loader type='rom'>/usr/share/qemu/qboot.rom</loader>
    <kernel>$IMAGES/sleep.elf</kernel><cmdline>-- 600</cmdline></os>
  <features><acpi/></features>
  <devices>
    <serial type='file'><source path='$E2E_STATE/orphan.log'/><target port='0'/></serial>
    <controller type='usb' model='none'/><memballoon model='none'/>
  </devices>
</domain>
XML
check "virsh plants a stranger shoal domain" ip netns exec "$E2E_NS" \
    virsh -q -c "qemu:///embed?root=$E2E_STATE/libvirt" create "$E2E_STATE/orphan.xml"
check "the stranger runs" [ "$(qemu_count 0rphan0rphan)" = 1 ]
e2e_start_daemon "$SHOALD" || exit 1
check "the stranger is destroyed by reconcile" wait_for 20 eval '[ "$(qemu_count 0rphan0rphan)" = 0 ]'
check "ours is adopted again" wait_for 30 inst_state_is nap running
check "still exactly one QEMU for ours" [ "$(qemu_count "$ID")" = 1 ]

api GET /v1/instances
check "nothing duplicated or lost (6 instances)" [ "$(printf '%s' "$BODY" | jq '.items | length')" = 6 ]

# --- events are retained and resumable
EV=$(ns_curl -sS -m 3 -H "Authorization: Bearer $E2E_TOKEN" -H 'Last-Event-ID: 0' \
    "http://127.0.0.1:$E2E_PORT/v1/events" || true)
check "events replay from Last-Event-ID 0" grep -q '"state":"running"' <<<"$EV"

# --- metrics
api GET /metrics
check "metrics count running instances" grep -q 'shoal_instances{state="running"} 1' <<<"$BODY"

# --- delete
api DELETE /v1/instances/nap
check "deleting a running instance needs force (got $HTTP_CODE)" [ "$HTTP_CODE" = 409 ]
api DELETE "/v1/instances/nap?force=true"
check "forced delete (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
check "its QEMU is gone" wait_for 10 eval '[ "$(qemu_count "$ID")" = 0 ]'
api GET /v1/instances/nap
check "deleted instance is 404 (got $HTTP_CODE)" [ "$HTTP_CODE" = 404 ]
api DELETE /v1/images/hello:latest
check "image in use is refused (got $HTTP_CODE)" [ "$HTTP_CODE" = 409 ]
for n in hi-1 hi-2 hi-3; do api DELETE "/v1/instances/$n"; done
api DELETE /v1/images/hello:latest
check "image deleted once unused (got $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]

check "no QEMU left running" [ "$(pgrep -f "qemu-system.*$E2E_STATE" | wc -l)" = 0 ]
e2e_finish
