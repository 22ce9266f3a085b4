#!/bin/bash
# End to end (issue 14): a stored boot profile changed through the API and
# the CLI (docs/api.md "PATCH /v1/images/{ref}", docs/node.md "Boot
# profiles"), and what each change does to a run:
#   - PATCH refusals are 400 naming the field, and change nothing;
#   - `shoal image set` and `shoal image inspect` show the new profile;
#   - exit debug-exit: guest-kernel/foreign's foreign_exit writes the first
#     number of its command line to isa-debug-exit (port 0x501); through
#     shoald the run ends `exited` with that code (7, and 0), via the
#     QEMU command-line passthrough and shoal-qemu-exit (the domain log
#     shows both); with exit poweroff the same kernel finds no device,
#     powers off and ends exited with the code unknown (null);
#   - a command-line template: foreign_unikraft prints its line, filled in
#     from the instance's name, address, prefix, gateway, MAC, env and args;
#     env for a template without {env} is refused at create (400, env);
#   - an initrd: `shoal image push --initrd` uploads it first (POST
#     /v1/initrds) and names it in the push; foreign_initrd prints the first
#     line of its PVH module 0; an unknown initrd is 404 and a disk image's
#     422, both naming initrd; the initrd goes with its image;
#   - a run's own initrd: `shoal run --initrd FILE` uploads it first and
#     the instance's guest prints its line, not the image's; an unknown
#     one is 404 and a disk image's run 422, both naming initrd; the
#     instance holds a reference on it, across a restart, until deleted;
#   - the profile outlives a shoald restart.
# usage: daemon_profile.sh SHOALD IMAGES_DIR SHOAL_CLI
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
SHOAL=$3
. "$(dirname "$0")/lib.sh"

for f in "$SHOALD" "$SHOAL" "$IMAGES/foreign_exit.elf" "$IMAGES/foreign_unikraft.elf" \
    "$IMAGES/foreign_initrd.elf" "$IMAGES/foreign_disk.img"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
e2e_setup
e2e_start_daemon "$SHOALD" || exit 1
shoal() { ip netns exec "$E2E_NS" env SHOAL_URL="http://127.0.0.1:$E2E_PORT" SHOAL_TOKEN="$E2E_TOKEN" "$SHOAL" "$@"; }

push() {
    api POST "/v1/images?ref=$2" -H 'Content-Type: application/octet-stream' --data-binary "@$1"
    check "push $2 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
}
run() {
    api POST /v1/instances -H 'Content-Type: application/json' -d "$1"
    check "create $1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
    ID=$(printf '%s' "$BODY" | jq -r '.items[0].id')
}
patch() { api PATCH "/v1/images/$1" -H 'Content-Type: application/json' -d "$2"; }
profile() {
    api GET "/v1/images/$1"
    printf '%s' "$BODY" | jq -r '[.profile.firmware, .profile.cmdline, .profile.exit] | join("|")'
}
console() {
    api GET "/v1/instances/$1/console"
    printf '%s' "$BODY"
}
domlog() { cat "$E2E_STATE/libvirt/log/qemu/shoal-$1.log" 2>/dev/null; }

push "$IMAGES/foreign_exit.elf" exitk:latest
push "$IMAGES/foreign_unikraft.elf" uk:latest
check "exitk: kind pvh, profile seabios|raw|poweroff (got $(profile exitk))" \
    [ "$(profile exitk)" = "seabios|raw|poweroff" ]

# --- refusals: 400 naming the field, nothing changed
for case in '{"exit":"halt"}|exit' '{"exit":"debug-exit","firmware":"ovmf"}|firmware' \
    '{"cmdline":"ip={ip}"}|cmdline' '{"exit":3}|exit' '{"kind":"pvh"}|kind' '{}|' \
    '{"cmdline":"a\tb"}|cmdline' 'not json|' '{"ready":"tcp:99999"}|ready' \
    '{"ready":"status"}|ready' '{"health":{"probe":"console:up"}}|health.probe' \
    '{"health":{"retries":2}}|health.probe' '{"health":7}|health'; do
    body=${case%|*}
    field=${case##*|}
    patch exitk "$body"
    got=$(printf '%s' "$BODY" | jq -r '.error.field // ""')
    check "PATCH $body: 400 naming '$field' (HTTP $HTTP_CODE, field '$got': $(printf '%s' "$BODY" | jq -r .error.message))" \
        [ "$HTTP_CODE" = 400 -a "$got" = "$field" ]
done
check "nothing changed (got $(profile exitk))" [ "$(profile exitk)" = "seabios|raw|poweroff" ]
patch nope '{"exit":"debug-exit"}'
check "PATCH of an unknown image: 404 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 404 ]
api PUT /v1/images/exitk -H 'Content-Type: application/json' -d '{}'
check "PUT is not a route: 405 naming PATCH in Allow (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 405 ]

# --- the CLI: set, then inspect
out=$(shoal image set exitk --exit debug-exit 2>&1)
check "shoal image set prints the profile (got '$out')" \
    [ "$out" = "exitk: firmware seabios, cmdline raw, exit debug-exit" ]
out=$(shoal image inspect -o table exitk | grep '^profile')
check "shoal image inspect -o table shows it (got '$out')" \
    [ "$out" = "profile     firmware seabios, cmdline raw, exit debug-exit" ]
out=$(shoal image set exitk --exit nope 2>&1) && rc=0 || rc=$?
check "shoal image set --exit nope fails naming exit (rc $rc, '$out')" \
    eval '[ $rc -ne 0 ] && grep -q "exit" <<<"$out"'
check "shoal image set with no field is a usage error" eval '! shoal image set exitk >/dev/null 2>&1'

# --- isa-debug-exit: the code the guest wrote
run '{"image":"exitk","name":"x7","args":["7"],"network":false}'
X7=$ID
check "x7 exits" wait_for 90 inst_state_is x7 exited
check "x7's exit code is 7 (got $(inst_field x7 .exit_code))" [ "$(inst_field x7 .exit_code)" = 7 ]
check "x7's run ended exited with 7" \
    [ "$(inst_field x7 '.runs[0] | "\(.outcome) \(.exit_code)"')" = "exited 7" ]
check "x7's console (got '$(console x7)')" \
    [ "$(console x7)" = "foreign-exit: exiting with 7 through isa-debug-exit" ]
check "x7's QEMU had isa-debug-exit through the passthrough (custom-argv taint)" \
    eval 'grep -q -- "^-device isa-debug-exit,iobase=0x501,iosize=2" <<<"$(domlog "$X7")" && grep -q "tainted: custom-argv" <<<"$(domlog "$X7")"'
check "shoal-qemu-exit logged QEMU's status 15" \
    grep -q "shoal-qemu-exit: qemu pid [0-9]* exited with status 15" <<<"$(domlog "$X7")"
run '{"image":"exitk","name":"x0","args":["0"],"network":false,"restart":"on-failure"}'
check "x0 exits" wait_for 60 inst_state_is x0 exited
check "x0's exit code is 0 (got $(inst_field x0 .exit_code))" [ "$(inst_field x0 .exit_code)" = 0 ]
check "x0 was not restarted by on-failure" [ "$(inst_field x0 .restarts)" = 0 ]
run '{"image":"exitk","name":"x3","args":["3"],"network":false,"restart":"on-failure"}'
check "x3 (code 3, on-failure) is restarted" wait_for 90 eval '[ "$(inst_field x3 .restarts)" -ge 1 ]'
api POST /v1/instances/x3/stop
# a second run of x7 reads its own run's line
api POST /v1/instances/x7/start
check "x7 starts again (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "x7 exits again with 7" \
    wait_for 60 eval '[ "$(inst_field x7 ".runs | length")" = 2 ] && inst_state_is x7 exited && [ "$(inst_field x7 .exit_code)" = 7 ]'

# --- exit poweroff: no device, the kernel powers off, code unknown
out=$(shoal image set exitk --exit poweroff)
run '{"image":"exitk","name":"xp","args":["9"],"network":false}'
XP=$ID
check "xp exits" wait_for 60 inst_state_is xp exited
check "xp's exit code is unknown (got $(inst_field xp .exit_code))" [ "$(inst_field xp .exit_code)" = null ]
check "xp found no device (got '$(console xp)')" \
    grep -q "foreign-exit: no isa-debug-exit device" <<<"$(console xp)"
check "xp's QEMU had no passthrough" eval '! grep -q isa-debug-exit <<<"$(domlog "$XP")"'

# --- a command-line template
tmpl='{name} netdev.ip={address}/{prefix}:{gateway} mac={mac} {{x}} env=[{env}] -- {args}'
patch uk "$(jq -cn --arg t "$tmpl" '{cmdline: $t}')"
check "PATCH uk cmdline template (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "the image object shows the template" [ "$(printf '%s' "$BODY" | jq -r .profile.cmdline)" = "$tmpl" ]
run '{"image":"uk","name":"ukt","args":["hello","x=1"],"env":{"MODE":"fast"}}'
check "ukt exits" wait_for 60 inst_state_is ukt exited
ADDR=$(inst_field ukt .network.address)
MAC=$(inst_field ukt .network.mac)
want="uk netdev.ip=$ADDR:10.88.0.1 mac=$MAC {x} env=[MODE=fast] -- hello x=1"
check "ukt's console is the template filled in (got '$(console ukt)', want '$want')" \
    [ "$(console ukt)" = "$want" ]
patch uk '{"cmdline":"{name} -- {args}"}'
api POST /v1/instances -H 'Content-Type: application/json' -d '{"image":"uk","env":{"A":"b"}}'
check "env for a template without {env}: 400 naming env (HTTP $HTTP_CODE)" \
    eval '[ "$HTTP_CODE" = 400 ] && [ "$(printf "%s" "$BODY" | jq -r .error.field)" = env ]'

# --- an initrd
RD="$E2E_STATE/rootfs.txt"
printf 'hello from the initrd\nsecond line\n' >"$RD"
RD_DIGEST="sha256:$(sha256sum "$RD" | cut -d' ' -f1)"
out=$(shoal image push --initrd "$RD" "$IMAGES/foreign_initrd.elf" rdk 2>&1)
check "shoal image push --initrd (got '$out')" grep -q "initrd $RD_DIGEST (34B)" <<<"$out"
api GET /v1/images/rdk
check "the image object names its initrd" \
    [ "$(printf '%s' "$BODY" | jq -r '"\(.initrd.digest) \(.initrd.size)"')" = "$RD_DIGEST 34" ]
check "shoal image inspect -o table shows it" \
    grep -q "^initrd      $RD_DIGEST (34B)" <<<"$(shoal image inspect -o table rdk)"
run '{"image":"rdk","name":"rd","network":false}'
RDI=$ID
check "rd exits" wait_for 60 inst_state_is rd exited
check "rd printed its initrd's first line (got '$(console rd)')" \
    [ "$(console rd)" = "foreign-initrd: hello from the initrd" ]
check "rd's QEMU got -initrd" grep -q -- '^-initrd ' <<<"$(domlog "$RDI")"
api GET "/v1/images/$RD_DIGEST"
check "an initrd is not an image (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 404 ]
api POST /v1/instances -H 'Content-Type: application/json' -d "{\"image\":\"$RD_DIGEST\"}"
check "nor can an instance be made of one (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 404 ]
NOPE="sha256:$(printf '%064d' 0)"
api POST "/v1/images?ref=bad&initrd=$NOPE" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$IMAGES/foreign_exit.elf"
check "a push naming an unknown initrd: 404, field initrd (HTTP $HTTP_CODE)" \
    eval '[ "$HTTP_CODE" = 404 ] && [ "$(printf "%s" "$BODY" | jq -r .error.field)" = initrd ]'
api GET /v1/images/bad
check "and no image was made (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 404 ]
api POST "/v1/images?ref=diskrd&initrd=$RD_DIGEST" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$IMAGES/foreign_disk.img"
check "a disk image with an initrd: 422, field initrd (HTTP $HTTP_CODE)" \
    eval '[ "$HTTP_CODE" = 422 ] && [ "$(printf "%s" "$BODY" | jq -r .error.field)" = initrd ]'
api POST "/v1/images?ref=rdk2" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$IMAGES/foreign_initrd.elf"
check "the same kernel pushed without one keeps it" \
    [ "$(printf '%s' "$BODY" | jq -r .initrd.digest)" = "$RD_DIGEST" ]
initrds() { sqlite3 "$E2E_STATE/images.db" "SELECT count(*) FROM blobs WHERE role = 'initrd'"; }
check "one initrd stored" [ "$(initrds)" = 1 ]
api DELETE /v1/instances/rd
api DELETE "/v1/images/$(shoal image inspect rdk | jq -r .digest)"
check "delete the image by digest (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
check "its initrd went with it" [ "$(initrds)" = 0 ]

# --- a run's own initrd: shoal run --initrd FILE uploads it first; it wins
# over the image's; the instance holds it (refs) across a restart
RD2="$E2E_STATE/run-rootfs.txt"
printf 'the run brought this one\n' >"$RD2"
RD2_DIGEST="sha256:$(sha256sum "$RD2" | cut -d' ' -f1)"
shoal image push --initrd "$RD" "$IMAGES/foreign_initrd.elf" rdk >/dev/null 2>&1
# (and the image's stored readiness, which a run without its own takes)
out=$(shoal image set rdk --ready 'console:^foreign-initrd: ' 2>&1)
check "shoal image set --ready (got '$out')" grep -q "ready console:^foreign-initrd: " <<<"$out"
check "shoal image inspect -o table shows it" \
    grep -q "^ready       console:^foreign-initrd: $" <<<"$(shoal image inspect -o table rdk)"
out=$(shoal run --name rr --no-network --initrd "$RD2" rdk 2>&1)
check "shoal run --initrd FILE (got '$out')" wait_for 60 inst_state_is rr exited
check "rr printed its own initrd's line, not the image's (got '$(console rr)')" \
    [ "$(console rr)" = "foreign-initrd: the run brought this one" ]
check "the instance object names its initrd" [ "$(inst_field rr .initrd)" = "$RD2_DIGEST" ]
check "rr took the image's readiness (got '$(inst_field rr .ready)')" \
    [ "$(inst_field rr .ready)" = "console:^foreign-initrd: " ]
refs() { sqlite3 "$E2E_STATE/images.db" "SELECT refs FROM blobs WHERE digest = '$1'"; }
check "the instance holds its initrd (refs $(refs "$RD2_DIGEST"))" [ "$(refs "$RD2_DIGEST")" = 1 ]
run '{"image":"rdk","name":"ro","network":false,"ready":"none"}'
check "a run's own readiness wins over the image's (got '$(inst_field ro .ready)')" \
    [ "$(inst_field ro .ready)" = none ]
api DELETE /v1/instances/ro?force=true
api POST /v1/instances -H 'Content-Type: application/json' \
    -d "{\"image\":\"rdk\",\"network\":false,\"initrd\":\"$NOPE\"}"
check "a run naming an unknown initrd: 404, field initrd (HTTP $HTTP_CODE)" \
    eval '[ "$HTTP_CODE" = 404 ] && [ "$(printf "%s" "$BODY" | jq -r .error.field)" = initrd ]'
push "$IMAGES/foreign_disk.img" dk:latest
api POST /v1/instances -H 'Content-Type: application/json' \
    -d "{\"image\":\"dk\",\"network\":false,\"initrd\":\"$RD2_DIGEST\"}"
check "a disk image's run with an initrd: 422, field initrd (HTTP $HTTP_CODE)" \
    eval '[ "$HTTP_CODE" = 422 ] && [ "$(printf "%s" "$BODY" | jq -r .error.field)" = initrd ]'

# --- the profile outlives a restart of shoald
e2e_stop_daemon
e2e_start_daemon "$SHOALD" || exit 1
check "after a restart: exitk seabios|raw|poweroff, uk's template (got $(profile exitk), $(profile uk))" \
    eval '[ "$(profile exitk)" = "seabios|raw|poweroff" ] && [ "$(profile uk)" = "seabios|{name} -- {args}|poweroff" ]'
check "after a restart rr still holds its initrd (refs $(refs "$RD2_DIGEST"))" \
    [ "$(refs "$RD2_DIGEST")" = 1 ]
api POST /v1/instances/rr/start
check "rr started again after the restart (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "rr ran and exited again" \
    wait_for 60 eval '[ "$(inst_field rr ".runs | length")" = 2 ] && inst_state_is rr exited'
api DELETE /v1/instances/rr?force=true
check "deleted, rr's initrd is no longer held (refs $(refs "$RD2_DIGEST"))" \
    [ "$(refs "$RD2_DIGEST")" = 0 ]

e2e_finish
