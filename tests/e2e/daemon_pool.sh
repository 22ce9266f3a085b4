#!/bin/bash
# End to end (issue 15): warm pools with real libvirt/QEMU (TCG where KVM
# cannot run the guest), docs/shoald.md "Warm pools":
#   - PATCH {"warm_pool": N}: 400 naming warm_pool for an image that does
#     not speak the hand-over (a foreign PVH kernel); shown by GET;
#   - a pool of 2 fills; two concurrent creates take both guests (each
#     once: two distinct ids, both pool guests'), their env, args and name
#     reach the app (hello prints them), the event says "from the warm
#     pool"; the pool refills with new guests; a pooled instance's next
#     run is a cold start (a pool guest serves one run);
#   - an httpd guest taken from the pool answers HTTP at the address the
#     instance was given (the record's shoal.ip, the guard's rule);
#   - a waiting pool guest's QEMU threads run at nice 19, a claimed one's
#     at a cold-started guest's nice and class;
#   - capacity: with --max-instances 6 pool guests hold slots; a create
#     that needs one takes a pool guest's room (201, the pool shrinks) and
#     the pool does not grow past what is free; it refills when room comes;
#   - a pool of 0, and an image's deletion, destroy its pool guests;
#   - shoald's stop destroys the pool; a pool guest of a killed shoald is
#     destroyed by the next one's reconcile, never adopted;
#   - /metrics: every guest port went to the guard through netlink, none
#     through nft; with SHOAL_GUARD_NETLINK=off a claim's through nft,
#     counted.
# --domain-type qemu: TCG, no KVM canary (~13 s); kvm-pvm here is slower.
# usage: daemon_pool.sh SHOALD IMAGES_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
. "$(dirname "$0")/lib.sh"

for f in "$SHOALD" "$IMAGES/hello.elf" "$IMAGES/httpd.elf" "$IMAGES/sleep.elf" \
    "$IMAGES/foreign_exit.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
e2e_setup
# Every claim's thread waits 500 ms between the go-ahead and its hang-up
# (daemon/killpoint.h, pool.goahead): as one that lost its CPU there, so
# the console checks below see what such a claim leaves.
SHOAL_TEST_DELAY_AT=pool.goahead:500 \
    e2e_start_daemon "$SHOALD" --max-instances 6 --domain-type qemu || exit 1

patch() { api PATCH "/v1/images/$1" -H 'Content-Type: application/json' -d "$2"; }
# Ids of the running pool guests: QEMUs started with shoal.pool=1 whose id
# is no instance's (a claimed guest keeps its QEMU and becomes one).
pool_ids() {
    api GET /v1/instances
    local insts
    insts=$(printf '%s' "$BODY" | jq -r '.items[].id')
    for p in $(pgrep -f "qemu-system.*$E2E_STATE.*shoal.pool=1" || true); do
        id=$(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -o 'guest=shoal-[0-9a-f]*' |
            head -n 1 | cut -d- -f2)
        [ -n "$id" ] && ! grep -qx "$id" <<<"$insts" && echo "$id"
    done
    return 0
}
# ... of those, the ones waiting (pool-wait in their status file).
ready_ids() {
    for id in $(pool_ids); do
        grep -q "^shoal-status pool-wait" "$E2E_STATE/run/$id.status" 2>/dev/null && echo "$id"
    done
    return 0
}
nready() { ready_ids | wc -l; }
# n guests wait, and shoald's pool has seen them wait (its next tick)
waiting() { [ "$(nready)" = "$1" ] && sleep 0.5 && [ "$(nready)" = "$1" ]; }
npool() { pool_ids | wc -l; }
metric() { ns_curl -sS -H "Authorization: Bearer $E2E_TOKEN" "http://127.0.0.1:$E2E_PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
create() { api POST /v1/instances -H 'Content-Type: application/json' -d "$1"; }
console() {
    api GET "/v1/instances/$1/console"
    printf '%s' "$BODY"
}
# The nice values and scheduling classes of every thread of instance (or
# pool guest) id's QEMU (and its exit wrapper), one "NI CLS" of each kind
prio() {
    local p
    for p in $(pgrep -f "qemu.*guest=shoal-$1" || true); do
        ps -L -o ni=,cls= -p "$p"
    done | awk '{print $1, $2}' | sort -u | tr '\n' ' '
}

e2e_push_images hello httpd sleep
api POST "/v1/images?ref=exitk:latest" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$IMAGES/foreign_exit.elf"

# --- the size, and who may have one
patch exitk '{"warm_pool":2}'
check "warm_pool on a foreign PVH image: 400 naming warm_pool (HTTP $HTTP_CODE: $(printf '%s' "$BODY" | jq -r .error.message))" \
    eval '[ "$HTTP_CODE" = 400 ] && [ "$(printf "%s" "$BODY" | jq -r .error.field)" = warm_pool ]'
patch hello '{"warm_pool":-1}'
check "warm_pool -1: 400 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 400 ]
patch hello '{"warm_pool":2}'
check "PATCH hello warm_pool 2 (HTTP $HTTP_CODE)" \
    eval '[ "$HTTP_CODE" = 200 ] && [ "$(printf "%s" "$BODY" | jq -r .profile.warm_pool)" = 2 ]'
check "2 pool guests of hello wait" wait_for 30 waiting 2
POOL1=$(ready_ids | sort)

# --- two concurrent creates take both, each once. Each app prints 3 KiB of
# arguments at once: the console file must hold each byte once (the guest
# writes nothing after its reply until shoald's go-ahead, and shoald shuts
# its reading side before it, so QEMU's sends fail at once while the
# claim's thread waits to hang up; without the shutdown, a claim's thread
# held up past a few hundred bytes of that output left a byte twice in the
# file: docs/guest-protocol.md "Robustness")
LONG=$(printf 'z%.0s' $(seq 1 1000))
for k in 1 2; do
    ns_curl -sS -m 30 -X POST -H "Authorization: Bearer $E2E_TOKEN" \
        -H 'Content-Type: application/json' \
        -d "{\"image\":\"hello\",\"name\":\"p$k\",\"args\":[\"a b\",\"x=$k\",\"$LONG\",\"$LONG\",\"$LONG\"],\"env\":{\"MODE\":\"m$k\"}}" \
        -o "$E2E_STATE/create$k.json" "http://127.0.0.1:$E2E_PORT/v1/instances" &
    CURLS="${CURLS:-} $!"
done
for p in $CURLS; do wait "$p" || true; done
e2e_log "creates: $(cut -c1-300 "$E2E_STATE/create1.json") | $(cut -c1-300 "$E2E_STATE/create2.json")"
ID1=$(jq -r '.items[0].id' "$E2E_STATE/create1.json")
ID2=$(jq -r '.items[0].id' "$E2E_STATE/create2.json")
check "both creates answered with distinct ids ($ID1 $ID2)" \
    eval '[ -n "$ID1" ] && [ "$ID1" != null ] && [ "$ID1" != "$ID2" ]'
check "both are the pool guests' ids (pool $(echo $POOL1))" \
    [ "$(printf '%s\n%s\n' "$ID1" "$ID2" | sort)" = "$POOL1" ]
for k in 1 2; do
    check "p$k exits 0" wait_for 30 eval 'inst_state_is p'$k' exited && [ "$(inst_field p'$k' .exit_code)" = 0 ]'
    out=$(console p$k)
    check "p$k's app got its args and env (console: $(tr '\n' '|' <<<"$out"))" \
        eval 'grep -qx "argv\[1\]=<a b>" <<<"$out" && grep -qx "argv\[2\]=<x='$k'>" <<<"$out" && grep -qx "env\[0\]=<MODE=m'$k'>" <<<"$out"'
    check "p$k's console holds its 3 KiB of arguments once ($(grep '^argv\[[3-5]\]' <<<"$out" | wc -c) bytes)" \
        [ "$(grep -cx "argv\[[3-5]\]=<$LONG>" <<<"$out")" = 3 ]
done
# a pooled instance's next run is a cold start of its own domain: the
# pool guest served one run and is gone (never reused)
api POST /v1/instances/p1/start
check "p1 starts again (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "p1's second run is a cold start and exits 0" \
    wait_for 30 eval '[ "$(inst_field p1 ".runs | length")" = 2 ] && inst_state_is p1 exited && grep -q "instance $ID1 (p1) started on local (domain created" "$E2E_STATE/shoald.log"'
events=$(ns_curl -sS -N -m 1 -H "Authorization: Bearer $E2E_TOKEN" -H "Last-Event-ID: 0" \
    "http://127.0.0.1:$E2E_PORT/v1/events" 2>/dev/null || true)
check "the events say both came from the warm pool" \
    [ "$(grep '"type":"instance.created"' <<<"$events" | grep -c '"message":"from the warm pool"')" = 2 ]
check "the pool refills with 2 new guests" \
    wait_for 30 eval '[ "$(nready)" = 2 ] && [ -z "$(comm -12 <(ready_ids | sort) <(echo "$POOL1"))" ]'
check "/metrics shows 2 guests waiting" \
    wait_for 5 eval '[ "$(metric "shoal_warm_pool_guests{state=\"waiting\"}")" = 2 ]'

check "/metrics counts the 2 claims (got $(metric shoal_warm_pool_claims_total))" \
    [ "$(metric shoal_warm_pool_claims_total)" = 2 ]
check "the guard allowed every guest port through netlink, never nft (netlink $(metric shoal_guard_netlink_adds_total), nft $(metric shoal_guard_nft_fallbacks_total))" \
    eval '[ "$(metric shoal_guard_netlink_adds_total)" -ge 2 ] && [ "$(metric shoal_guard_nft_fallbacks_total)" = 0 ]'

# --- a pool of 0 empties it; httpd from its pool answers at its address
patch hello '{"warm_pool":0}'
check "warm_pool 0 destroys hello's pool guests" wait_for 15 eval '[ "$(npool)" = 0 ]'
patch httpd '{"warm_pool":1}'
check "1 pool guest of httpd waits" wait_for 30 waiting 1
WAITER=$(ready_ids)
check "a waiting pool guest's QEMU runs at nice 19, every thread ($(prio "$WAITER"))" \
    [ "$(prio "$WAITER")" = "19 TS " ]
create '{"image":"httpd","name":"web"}'
WEB=$(printf '%s' "$BODY" | jq -r '.items[0].id')
# (the start job logs it once the hand-over is done, after the 201)
web_from_pool() {
    [ "$(grep -c "instance $WEB (web) started on local from the warm pool" "$E2E_STATE/shoald.log")" = 1 ]
}
check "web was created from the pool (HTTP $HTTP_CODE)" \
    eval '[ "$HTTP_CODE" = 201 ] && wait_for 10 web_from_pool'
check "web runs" wait_for 30 inst_state_is web running
ADDR=$(inst_field web .network.address)
check "web answers HTTP at its address ${ADDR%/*}" \
    wait_for 10 ns_curl -fsS -m 2 -o /dev/null "http://${ADDR%/*}/"
# the record leaves shoal.gw and shoal.mac out: the pool guest's boot
# line has them (docs/guest-protocol.md), the gateway and MAC the instance
# shows; the guest found that MAC on its NIC, and is up with that gateway
MAC=$(inst_field web .network.mac)
GW=$(inst_field web .network.gateway)
check "web's boot line has shoal.gw=$GW shoal.mac=$MAC; its guest is up with them" \
    eval 'pgrep -af "guest=shoal-$WEB" | grep -q "shoal.pool=1 shoal.gw=$GW shoal.mac=$MAC" &&
          ! console web | grep -q "differs from shoal.mac" &&
          console web | grep -q "^net: .* gw $GW "'

# --- capacity: 6 slots; web (1) + httpd's pool (1) + 3 sleeps = 5
check "httpd's pool refills" wait_for 30 waiting 1
for k in 1 2 3; do
    create "{\"image\":\"sleep\",\"name\":\"s$k\",\"network\":false,\"args\":[\"600\"]}"
    check "s$k created (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
done
# a claimed guest's QEMU is back at a cold-started one's priority
check "web's QEMU threads ($(prio "$WEB")) have a cold guest's nice and class ($(prio "$(inst_field s1 .id)"))" \
    eval 'wait_for 30 inst_state_is s1 running && [ -n "$(prio "$WEB")" ] && [ "$(prio "$WEB")" = "$(prio "$(inst_field s1 .id)")" ]'
create '{"image":"sleep","name":"s4","network":false,"args":["600"]}'
check "s4 fits beside the pool guest (6 of 6) (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
create '{"image":"sleep","name":"s5","network":false,"args":["600"]}'
check "s5 takes the pool guest's slot (HTTP $HTTP_CODE: $(printf '%s' "$BODY" | jq -r '.error.message // ""'))" \
    [ "$HTTP_CODE" = 201 ]
check "the pool guest made room" wait_for 15 eval '[ "$(npool)" = 0 ]'
sleep 1
check "and the pool does not grow into a full host" [ "$(npool)" = 0 ]
create '{"image":"sleep","name":"s6","network":false,"args":["600"]}'
check "a 7th guest is refused (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 507 ]
for k in 4 5; do api DELETE "/v1/instances/s$k?force=true"; done
check "room again: the pool refills" wait_for 30 waiting 1

# --- deleting the image takes its pool with it
api DELETE "/v1/instances/web?force=true"
check "web deleted (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
api DELETE /v1/images/httpd:latest
check "httpd image deleted (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
check "its pool guest is gone" wait_for 15 eval '[ "$(npool)" = 0 ]'

# --- restarts: a killed shoald's pool guest is not adopted
patch hello '{"warm_pool":1}'
check "hello's pool waits again" wait_for 30 waiting 1
OLD=$(ready_ids)
kill -9 "$E2E_PID"
wait "$E2E_PID" 2>/dev/null || true
E2E_PID=""
# (this shoald's guard changes go through nft: counted as fallbacks)
export SHOAL_GUARD_NETLINK=off
e2e_start_daemon "$SHOALD" --max-instances 6 --domain-type qemu || exit 1
unset SHOAL_GUARD_NETLINK
check "the old pool guest $OLD is destroyed by reconcile" \
    wait_for 20 eval '! pgrep -f "qemu-system.*guest=shoal-$OLD" >/dev/null'
check "and a new one waits" wait_for 30 eval '[ "$(nready)" = 1 ] && [ "$(ready_ids)" != "$OLD" ]'
create '{"image":"hello","name":"p3"}'
check "with SHOAL_GUARD_NETLINK=off a claim's port goes through nft, counted (HTTP $HTTP_CODE; nft $(metric shoal_guard_nft_fallbacks_total), netlink $(metric shoal_guard_netlink_adds_total))" \
    eval '[ "$HTTP_CODE" = 201 ] && wait_for 30 eval "inst_state_is p3 exited" && [ "$(metric shoal_guard_nft_fallbacks_total)" -ge 1 ] && [ "$(metric shoal_guard_netlink_adds_total)" = 0 ]'
e2e_stop_daemon
check "shoald's stop destroyed its pool guests" \
    wait_for 10 eval '[ -z "$(pgrep -f "qemu-system.*$E2E_STATE.*shoal.pool=1")" ]'
e2e_log "$E2E_PASSES passed, $E2E_FAILS failed"
[ "$E2E_FAILS" -eq 0 ]
