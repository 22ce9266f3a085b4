#!/bin/bash
# End to end (issue 17): host failure and fencing (docs/shoald.md "Host
# failure and fencing"). shoald runs the embedded local host plus one
# separate libvirtd (tests/e2e/lvhost.sh: its own network and mount
# namespace, reached as qemu+tcp:// over a veth), host r1:
#   - two sleep guests on r1: fa (restart always) and fn (restart never);
#   - r1's libvirtd frozen (SIGSTOP): its QEMUs keep running, it answers
#     nothing; its ping (a round trip every 2 s, queued by the failover
#     thread on the remote I/O workers) waits 6 s, r1 is `down`;
#   - after --host-grace (5 s here) fa runs on local, within grace + 10 s of
#     the freeze (the figure is printed: docs/benchmarks.md), with an
#     instance.failover event "from r1 to local"; fn is `lost`, still on r1;
#   - r1 thawed (SIGCONT): at the reconnect, before r1 is up, fa's old
#     domain there is destroyed (virsh over qemu+tcp lists none, no QEMU of
#     fa left in r1's namespace, event instance.fenced), fa keeps running on
#     local (the fenced copy's end does not end its run); fn's guest, which
#     kept running, is adopted again (running, on r1);
#   - r1's libvirtd killed (SIGKILL) and started again: r1 down at once
#     (connection lost), reconnected with backoff and reconciled: fn's
#     guest, still running, adopted (same run, same QEMU); fb (restart
#     always, pinned to r1), whose guest was killed meanwhile, runs again;
#   - r1 frozen again while a start there delivers its image: a create on
#     r2 (its first image delivery there) runs within 20 s, and r2's usage
#     stays fresh while r1's is marked stale (docs/shoald.md "Host failure
#     and fencing": what a hung host can still hold up); the start on r1
#     is given up once r1 is seen down (pending, last_error naming r1); an
#     image delete answers within 4 s and its volume on r1 is collected
#     after the thaw; then the given-up start's domain is destroyed and fr
#     runs on r1 once (virsh lists one domain of it);
#   - r1 drained while frozen, twice (--move-ready-timeout 3 s): each
#     drain answers 200 with its first move failed (`unavailable`) and left
#     to finish, the second drain's other move not tried; fm (restart
#     never) runs on local after the thaw, fma (always) while r1 is still
#     down (after the grace); neither is left stopped or runs twice.
# Guests have no network (remote hosts have none yet), so the published
# ports part of the rule is not exercised here. About 120 s (label long).
# usage: daemon_failover.sh SHOALD IMAGES_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lvhost.sh"

for f in "$SHOALD" "$IMAGES/sleep.elf" "$IMAGES/hello.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
command -v libvirtd >/dev/null || { echo "SKIP: no libvirtd"; exit 77; }
GRACE=${SHOAL_FAILOVER_GRACE:-5} # the benchmark sets others (docs/benchmarks.md)

failover_cleanup() {
    set +e
    [ -n "${LVPID:-}" ] && kill -CONT "$LVPID" 2>/dev/null
    [ -n "${EVPID:-}" ] && kill "$EVPID" 2>/dev/null
    e2e_cleanup
    lvh_cleanup
}

e2e_setup
trap failover_cleanup EXIT
lvh_init || exit 1
check "remote host r1 starts" lvh_start r1 1 "$E2E_NS"
check "remote host r2 starts" lvh_start r2 2 "$E2E_NS"
[ "$E2E_FAILS" = 0 ] || exit 1
LVPID=$(cat "$LVH_DIR/r1/pid")
R1=$(lvh_uri r1)

e2e_start_daemon "$SHOALD" --no-network --domain-type qemu --host-grace "$GRACE" \
    --move-ready-timeout 3000 --host-uri-allow 'qemu+tcp,qemu' || exit 1
e2e_push_images sleep hello
ns_curl -sS -N -m 120 -H "Authorization: Bearer $E2E_TOKEN" \
    "http://127.0.0.1:$E2E_PORT/v1/events" >"$E2E_STATE/events.txt" 2>/dev/null &
EVPID=$!

host_state_is() {
    api GET "/v1/hosts/$1"
    [ "$(printf '%s' "$BODY" | jq -r .state)" = "$2" ]
}
api POST /v1/hosts -H 'Content-Type: application/json' \
    -d "{\"name\":\"r1\",\"uri\":\"$R1\",\"domain_type\":\"qemu\"}"
check "add host r1 as $R1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "r1 comes up over TCP" wait_for 60 host_state_is r1 up

# Both guests on r1, not pinned (a pinned instance cannot fail over):
# local is cordoned while they are placed.
api POST /v1/hosts/local/cordon -H 'Content-Type: application/json' -d '{"cordoned":true}'
check "cordon local (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
for spec in fa:always fn:never; do
    api POST /v1/instances -H 'Content-Type: application/json' \
        -d "{\"image\":\"sleep\",\"name\":\"${spec%%:*}\",\"restart\":\"${spec#*:}\",\"args\":[\"600\"]}"
    check "create ${spec%%:*} restart ${spec#*:} (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
done
api POST /v1/hosts/local/cordon -H 'Content-Type: application/json' -d '{"cordoned":false}'
check "uncordon local (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
for n in fa fn; do
    check "$n runs on r1" wait_for 40 inst_state_is $n running
    check "$n is on r1" [ "$(inst_field $n .host)" = r1 ]
done
FA=$(inst_field fa .id)
FN=$(inst_field fn .id)
# QEMUs in r1's network namespace (pgrep alone would see local's too).
r1_qemus() {
    for p in $(ip netns pids "$(lvh_ns r1)"); do
        grep -qa "guest=shoal-$1" "/proc/$p/cmdline" 2>/dev/null && echo "$p"
    done | wc -l
}
check "one QEMU of fa on r1" [ "$(r1_qemus "$FA")" = 1 ]
[ "$E2E_FAILS" = 0 ] || exit 1

# --- r1 hangs: its libvirtd stops answering, its guests keep running
t0=$(date +%s.%N)
kill -STOP "$LVPID"
check "r1 is down (not answering)" wait_for 20 host_state_is r1 down
t_down=$(date +%s.%N)
api GET /v1/hosts/r1
check "r1 says since when it is down" \
    [ "$(jq -r '.down_since | test("^[0-9-]+T[0-9:]+Z$")' <<<"$BODY")" = true ]
check "and why" grep -q "not answering" <<<"$(jq -r .last_error <<<"$BODY")"
on_local_running() { inst_state_is fa running && [ "$(inst_field fa .host)" = local ]; }
on_local_started() {
    api GET /v1/instances/fa
    [ "$(jq -r '.host + " " + .state' <<<"$BODY")" = "local starting" ] ||
        [ "$(jq -r '.host + " " + .state' <<<"$BODY")" = "local running" ]
}
check "fa is started on local within grace + 10 s" wait_for $((GRACE + 10)) on_local_started
t_up=$(date +%s.%N)
fa_qemu_local() { [ "$(qemu_count "$FA")" = 1 ]; }
check "its QEMU runs on local" wait_for 5 fa_qemu_local
# Reported running (its ready record read) while r1 is still frozen: the
# supervisor never waits on a remote host (remote I/O runs on the remote
# I/O workers, docs/architecture.md).
check "fa is reported running on local while r1 is frozen" \
    wait_for $((GRACE + 10)) on_local_running
t_run=$(date +%s.%N)
detect=$(awk -v a="$t0" -v b="$t_down" 'BEGIN { printf "%.1f", b - a }')
fail=$(awk -v a="$t0" -v b="$t_up" 'BEGIN { printf "%.1f", b - a }')
run=$(awk -v a="$t0" -v b="$t_run" 'BEGIN { printf "%.1f", b - a }')
e2e_log "failover: r1 frozen -> down ${detect} s, -> fa started on local ${fail} s," \
    "-> reported running ${run} s (grace ${GRACE} s)"
echo "FAILOVER_S=$fail DETECT_S=$detect RUNNING_S=$run GRACE_S=$GRACE"
check "failed over no sooner than the grace period" awk -v f="$fail" -v g="$GRACE" 'BEGIN { exit !(f >= g) }'
check "fn (restart never) is lost" wait_for 5 inst_state_is fn lost
check "fn stays on r1" [ "$(inst_field fn .host)" = r1 ]
check "fn's last_error says why" grep -q "host 'r1' unreachable" <<<"$(inst_field fn .last_error)"
n_old=$(r1_qemus "$FA")
e2e_log "QEMUs of fa on r1 while it is frozen: $n_old"
check "fa's old QEMU still runs on r1 (partitioned, not fenceable)" [ "$n_old" = 1 ]
runs_before=$(inst_field fa '.runs | length')

# --- r1 back: fenced before it is up
kill -CONT "$LVPID"
check "r1 is up again" wait_for 30 host_state_is r1 up
api GET /v1/hosts/r1
check "r1 up: down_since null" [ "$(jq -r .down_since <<<"$BODY")" = null ]
# Its status (ready) is read by the supervisor, which a call to the hung
# host held until now (docs/shoald.md "Host failure and fencing").
check "fa is running on local" wait_for 15 on_local_running
r1_lacks_fa() {
    out=$(ip netns exec "$E2E_NS" virsh -c "$R1" list --all --name) || return 1
    ! grep -q "shoal-$FA" <<<"$out"
}
check "virsh over qemu+tcp lists no fa domain on r1" wait_for 5 r1_lacks_fa
check "no QEMU of fa left on r1" wait_for 10 out_is 0 r1_qemus "$FA"
check "fn's guest kept running on r1" [ "$(r1_qemus "$FN")" = 1 ]
check "fn is adopted again" wait_for 15 inst_state_is fn running
sleep 3 # the fenced domain's STOPPED event has come and gone
check "fa still runs on local" on_local_running
check "fa's run on local was not ended by the fence" \
    [ "$(inst_field fa '.runs | length')" = "$runs_before" ]
check "one QEMU of fa on local" [ "$(qemu_count "$FA")" = 1 ]
check "log: fenced at the reconnect" grep -q "fencing domain 'shoal-$FA'" "$E2E_STATE/shoald.log"
# an end counts only from the host the run is on (no time window)
check "log: the fenced copy's end, from r1, ended nothing" \
    grep -q "instance $FA (fa): ignoring 'stopped' ([a-z-]*) from host r1: its run is on host local" \
    "$E2E_STATE/shoald.log"
# --- r1's libvirtd killed (a real connection loss, not a freeze) and
# started again: shoald sees the close at once, reconnects with backoff
# (1 s, 2 s, ...) and reconciles: fn, whose guest kept running, is adopted
# (the same run, the same QEMU); fb (restart always, pinned to r1), whose
# guest died while libvirtd was away, is started again by its policy.
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"sleep","name":"fb","restart":"always","host":"r1","args":["600"]}'
check "create fb on r1, restart always (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "fb runs on r1" wait_for 40 inst_state_is fb running
FB=$(inst_field fb .id)
fn_runs=$(inst_field fn '.runs | length')
fb_runs=$(inst_field fb '.runs | length')
fn_qemu() {
    for p in $(ip netns pids "$(lvh_ns r1)"); do
        grep -qa "guest=shoal-$FN" "/proc/$p/cmdline" 2>/dev/null && echo "$p"
    done
    true
}
fn_pid=$(fn_qemu)
t0=$(date +%s.%N)
check "r1's libvirtd killed" lvh_kill r1
check "r1 is down (connection lost)" wait_for 5 host_state_is r1 down
api GET /v1/hosts/r1
check "and why: the connection was lost" grep -q "connection lost" <<<"$(jq -r .last_error <<<"$BODY")"
for p in $(ip netns pids "$(lvh_ns r1)"); do
    grep -qa "guest=shoal-$FB" "/proc/$p/cmdline" 2>/dev/null && kill -9 "$p"
done || true
check "fb's guest died meanwhile" wait_for 5 out_is 0 r1_qemus "$FB"
sleep 1 # a reconnect or two fail (backoff)
check "r1's libvirtd started again" lvh_restart r1
check "r1 is up again after the restart" wait_for 20 host_state_is r1 up
t_back=$(date +%s.%N)
back=$(awk -v a="$t0" -v b="$t_back" 'BEGIN { printf "%.1f", b - a }')
e2e_log "reconnect: r1's libvirtd killed -> up again ${back} s (restarted after ~1.5 s)"
echo "RECONNECT_S=$back"
check "log: reconnects failed while it was away" grep -q "host r1: reconnect failed" "$E2E_STATE/shoald.log"
check "log: reconnected" grep -q "host r1 reconnected" "$E2E_STATE/shoald.log"
check "fn is running (adopted)" wait_for 10 inst_state_is fn running
check "fn: the same run" [ "$(inst_field fn '.runs | length')" = "$fn_runs" ]
check "fn: the same QEMU" [ "$(fn_qemu)" = "$fn_pid" ]
fb_again() { inst_state_is fb running && [ "$(inst_field fb '.runs | length')" -gt "$fb_runs" ]; }
check "fb runs again, a new run (restart always)" wait_for 30 fb_again
check "fb is still on r1" [ "$(inst_field fb .host)" = r1 ]
check "one QEMU of fb on r1" wait_for 5 out_is 1 r1_qemus "$FB"
check "r1 still up" host_state_is r1 up

kill "$EVPID" 2>/dev/null || true
wait "$EVPID" 2>/dev/null || true
EVPID=
check "event host.state down" grep -q '"type":"host.state".*"state":"down"' "$E2E_STATE/events.txt"
check "event instance.failover from r1 to local" \
    grep -q '"type":"instance.failover".*from r1 to local' "$E2E_STATE/events.txt"
check "event instance.fenced" grep -q '"type":"instance.fenced"' "$E2E_STATE/events.txt"

# --- a hung host holds up only its own work: r1 frozen while a start there
# is delivering its image (it waits on r1 until r1 answers), r2 (added
# now, so nothing is delivered there yet) still gets a create with its
# image delivery within a bound, and its usage stays fresh while r1's goes
# stale. Before per-host delivery locks, fr's hung upload held the one
# delivery lock and f2 waited for r1's thaw; before the sampler read remote
# hosts on the remote I/O workers, r1's reading held every host's round.
api POST /v1/hosts -H 'Content-Type: application/json' \
    -d "{\"name\":\"r2\",\"uri\":\"$(lvh_uri r2)\",\"domain_type\":\"qemu\"}"
check "add host r2 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "r2 comes up" wait_for 60 host_state_is r2 up
# hello's volume on r1, used by no instance once fh is gone: the image's
# delete below collects it
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"hello","name":"fh","host":"r1"}'
check "create fh (hello) on r1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "fh exits on r1" wait_for 30 inst_state_is fh exited
api DELETE "/v1/instances/fh?force=true"
check "delete fh (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
HELLO_VOL=$(lvh_lib r1)/shoal/images/$(sha256sum "$IMAGES/hello.elf" | cut -c1-64).img
check "hello's volume is on r1" test -e "$HELLO_VOL"
LVPID=$(cat "$LVH_DIR/r1/pid") # restarted above
t0=$(date +%s.%N)
kill -STOP "$LVPID"
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"sleep","name":"fr","restart":"never","host":"r1","args":["600"]}'
check "create fr on frozen r1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
t_fr=$(date +%s.%N)
FR=$(inst_field fr .id)
# A stop of fn, on r1, before r1 is seen down (in the background, beside
# the checks below): its shutdown waits on r1, the API call does not
# (fleet_rio_call: 503 naming the host after the stop's timeout +
# FLEET_HOST_ANSWER_MS); the stop is carried out at the thaw. Before, the
# call waited for the thaw.
stop_fn() {
    set +e # a curl timeout (the call waited) is an answer here too
    t=$(date +%s.%N)
    api POST /v1/instances/fn/stop -H 'Content-Type: application/json' -d '{"timeout_s":1}' -m 15
    printf '%s %s %s\n' "$HTTP_CODE" "$(awk -v a="$t" -v b="$(date +%s.%N)" \
        'BEGIN { printf "%.1f", b - a }')" "$BODY" >"$E2E_STATE/stop_fn"
}
stop_fn &
STOPPID=$!
# An image delete answers while r1 hangs: its GC there waits on r1 for
# FLEET_GC_ANSWER_MS (2 s) at most and is done when r1 answers. Before,
# the call waited for the thaw. (fr's start is inside its delivery to r1
# by now.)
t=$(date +%s.%N)
api DELETE /v1/images/hello:latest -m 10
d_time=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
e2e_log "image delete with r1 frozen: HTTP $HTTP_CODE after $d_time s"
check "an image delete answers within 4 s while r1 is frozen (HTTP $HTTP_CODE, $d_time s)" \
    awk -v c="$HTTP_CODE" -v d="$d_time" 'BEGIN { exit !(c == 204 && d < 4) }'
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"sleep","name":"f2","restart":"never","host":"r2","args":["600"]}'
check "create f2 on r2 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "f2 runs on r2 within 20 s while r1 is frozen" wait_for 20 inst_state_is f2 running
t_f2=$(date +%s.%N)
e2e_log "r1 frozen: f2 (image delivered to r2) running $(awk -v a="$t0" -v b="$t_f2" \
    'BEGIN { printf "%.1f", b - a }') s after the freeze"
check "fr is not running (r1 frozen)" [ "$(inst_field fr .state)" != running ]
# fr's start gives its start worker back once r1 has been seen down for
# 5 s (run.c "Starts given up"): pending, saying which host did not answer
fr_given_up() { grep -q "host 'r1' did not answer within" <<<"$(inst_field fr .last_error)"; }
check "fr's start on frozen r1 is given up within 15 s, naming r1" wait_for 15 fr_given_up
e2e_log "fr given up $(awk -v a="$t_fr" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s" \
    "after its create: $(inst_field fr .last_error)"
check "fr is pending" inst_state_is fr pending
wait "$STOPPID" || true
s_code=none s_time=? s_body=
read -r s_code s_time s_body <"$E2E_STATE/stop_fn" || true
e2e_log "stop of fn on frozen r1: HTTP $s_code after $s_time s: $s_body"
check "a stop on frozen r1 answers 503 within 15 s (HTTP $s_code, $s_time s)" [ "$s_code" = 503 ]
check "naming the host" grep -q "host r1 did not answer" <<<"$s_body"
# Usage is stale after 15 s without a reading: r1 frozen for over that.
frozen_for() { awk -v a="$t0" -v b="$(date +%s.%N)" -v s="$1" 'BEGIN { exit !(b - a > s) }'; }
wait_for 25 frozen_for 17 || true
usage_of() {
    api GET "/v1/hosts/$1"
    jq -r '"\(.usage.stale) \(.usage.sampled_ms_ago)"' <<<"$BODY"
}
u1=$(usage_of r1)
u2=$(usage_of r2)
e2e_log "usage (stale, sampled_ms_ago) after $(awk -v a="$t0" -v b="$(date +%s.%N)" \
    'BEGIN { printf "%.1f", b - a }') s frozen: r1 $u1, r2 $u2"
check "r2's usage is fresh while r1 is frozen" \
    awk -v u="${u2#* }" 'BEGIN { exit !(u ~ /^[0-9]+$/ && u + 0 < 7000) }'
check "r2's usage is not stale" [ "${u2% *}" = false ]
check "r1's usage is marked stale" [ "${u1% *}" = true ]
# fb is pinned to r1 ("host" at create): the grace passed, yet it was not
# failed over to r2 or local; it waits for r1 (failover.c, FO_PIN_MARK)
check "fb, pinned to r1, stays on r1 while r1 is down" [ "$(inst_field fb .host)" = r1 ]
check "fb says it waits for its pinned host" \
    grep -q 'pinned to it' <<<"$(inst_field fb .last_error)"
kill -CONT "$LVPID"
check "r1 is up again after the second freeze" wait_for 30 host_state_is r1 up
check "fb runs on r1 again after the thaw" wait_for 30 inst_state_is fb running
check "fb is still on r1" [ "$(inst_field fb .host)" = r1 ]
check "fn's stop is carried out after the thaw" wait_for 20 inst_state_is fn stopped
check "no QEMU of fn left on r1" wait_for 10 out_is 0 r1_qemus "$FN"
check "hello's volume on r1 is collected after the thaw" wait_for 15 test ! -e "$HELLO_VOL"
# fr: the domain its given-up start made at the thaw is destroyed, and fr
# starts again on r1 (pinned there): one domain, one QEMU, never two
check "fr runs on r1 after the thaw" wait_for 30 inst_state_is fr running
r1_domains() {
    ip netns exec "$E2E_NS" virsh -c "$R1" list --all --name | grep -c "^shoal-$1\$"
}
sleep 2 # a late copy would show by now
check "one domain of fr on r1 (virsh)" [ "$(r1_domains "$FR")" = 1 ]
check "one QEMU of fr on r1" [ "$(r1_qemus "$FR")" = 1 ]
check "one domain of fb on r1 (virsh)" [ "$(r1_domains "$FB")" = 1 ]

for n in fa fn fb fr f2; do
    api DELETE "/v1/instances/$n?force=true"
    check "delete $n (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
done

# --- a drain of a host that hangs (docs/shoald.md "Moves"): the move's stop
# is not carried out within --move-ready-timeout (3 s here), so that move
# fails (code "unavailable" in the plan's answer) and is left to
# finish, the instance never left stopped nor run twice. fm (restart never)
# moves when r1 answers again: the reconnect's reconcile destroys its old
# domain, whose end finishes the move. fma (restart always) moves after the
# grace while r1 is still down. Before, both stayed stopped for good once
# r1 carried the stop out. The second drain has two instances on r1: the
# one moved second is not tried once the first found r1 not answering
# (each would wait as long again), and the plan says so.
on_r1() { # create $1 with restart $2 on r1 (local cordoned meanwhile)
    api POST /v1/hosts/local/cordon -H 'Content-Type: application/json' -d '{"cordoned":true}'
    api POST /v1/instances -H 'Content-Type: application/json' \
        -d "{\"image\":\"sleep\",\"name\":\"$1\",\"restart\":\"$2\",\"args\":[\"600\"]}"
    check "create $1 restart $2 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
    api POST /v1/hosts/local/cordon -H 'Content-Type: application/json' -d '{"cordoned":false}'
    check "$1 runs on r1" wait_for 40 inst_state_is "$1" running
    check "$1 is on r1" [ "$(inst_field "$1" .host)" = r1 ]
}
drain_frozen_r1() { # drain r1 ($1: its instances, $2 of them) with its libvirtd frozen
    LVPID=$(cat "$LVH_DIR/r1/pid")
    kill -STOP "$LVPID"
    t=$(date +%s.%N)
    api POST /v1/hosts/r1/drain -m 60
    d_time=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    e2e_log "drain of frozen r1 ($1): HTTP $HTTP_CODE after $d_time s: $BODY"
    check "the drain of frozen r1 answers its plan ($1, HTTP $HTTP_CODE, $d_time s)" \
        [ "$HTTP_CODE" = 200 ]
    check "its first move failed, naming the stop not carried out" \
        eval 'jq -r ".moves[0].error.message" <<<"$BODY" | grep -q "did not stop it within 3 s"'
    # each move: ok, error code, tried or not
    outcomes=$(jq -r '.moves[] | "\(.ok) \(.error.code) \(if (.error.message |
        startswith("not tried")) then "not-tried" else "tried" end)"' <<<"$BODY")
    want=$(printf 'false unavailable tried\n'; for _ in $(seq 2 "$2"); do
        printf 'false unavailable not-tried\n'; done)
    check "every move failed, the first tried, the rest not ($(tr '\n' '|' <<<"$outcomes"))" \
        [ "$outcomes" = "$want" ]
    check "the plan counts them ($(jq -c '[.succeeded, .failed]' <<<"$BODY"))" \
        [ "$(jq -c '[.succeeded, .failed]' <<<"$BODY")" = "[0,$2]" ]
    check "r1 is not counted freed" [ "$(jq -c .hosts_freed <<<"$BODY")" = "[]" ]
}
on_local_alone() { # $1 runs on local, one QEMU, no domain on r1
    inst_state_is "$1" running && [ "$(inst_field "$1" .host)" = local ] &&
        [ "$(qemu_count "$2")" = 1 ]
}
on_r1 fm never
FM=$(inst_field fm .id)
drain_frozen_r1 fm 1
check "fm is not started elsewhere while r1 is frozen" [ "$(qemu_count "$FM")" = 0 ]
kill -CONT "$LVPID"
check "r1 is up after the drain's freeze" wait_for 30 host_state_is r1 up
check "fm runs on local after the thaw" wait_for 30 on_local_alone fm "$FM"
check "no domain of fm left on r1 (virsh)" wait_for 10 out_is 0 r1_domains "$FM"
check "log: fm moved once its old copy stopped" \
    grep -q "instance $FM: moved to local after its old copy stopped" "$E2E_STATE/shoald.log"
api POST /v1/hosts/r1/cordon -H 'Content-Type: application/json' -d '{"cordoned":false}'
check "uncordon r1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
on_r1 fma always
on_r1 fx never
FMA=$(inst_field fma .id)
FX=$(inst_field fx .id)
drain_frozen_r1 "fma fx" 2
check "fma runs on local while r1 is frozen (after the grace)" wait_for 30 on_local_alone fma "$FMA"
check "r1 is still down" host_state_is r1 down
kill -CONT "$LVPID"
check "r1 is up after the second drain's freeze" wait_for 30 host_state_is r1 up
check "fma's old domain on r1 is fenced (virsh)" wait_for 10 out_is 0 r1_domains "$FMA"
sleep 2 # the fenced domain's late STOPPED event has come and gone
check "fma still runs on local, once" on_local_alone fma "$FMA"
# fx was either the move left to finish (then on local now) or the one not
# tried (then still on r1): running, once, either way
fx_once() {
    inst_state_is fx running && case "$(inst_field fx .host)" in
    r1) [ "$(r1_domains "$FX")" = 1 ] && [ "$(qemu_count "$FX")" = 0 ] ;;
    local) [ "$(r1_domains "$FX")" = 0 ] && [ "$(qemu_count "$FX")" = 1 ] ;;
    *) false ;;
    esac
}
check "fx runs once, on $(inst_field fx .host)" wait_for 30 fx_once
for n in fm fma fx; do
    api DELETE "/v1/instances/$n?force=true"
    check "delete $n (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
done
e2e_finish
