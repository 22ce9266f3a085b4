#!/bin/bash
# End to end (issue 16, "Faults"): SIGKILL shoald at every kill point
# (daemon/killpoint.h, SHOAL_TEST_KILL_AT=STEP:N) of create, start, delete,
# restart-policy handling, upload and cold moves, restart it, and check what
# it finds:
# no instance `lost`, no orphan or duplicate QEMU (every shoal-* QEMU of
# this state dir belongs to a row, one per row), no pending (half) upload,
# PRAGMA integrity_check ok on shoald.db and images.db; and what each
# operation should have become (starts resumed or retried, deletes
# finished, policy restarts still happening, a committed upload whole).
# Then random kills during 50-instance batches (create, bulk delete). Last,
# moves between real hosts: a running guest drained from the local
# embedded host to a private libvirtd of this machine (lvdlocal.sh,
# qemu:///system through its own socket), killed at each move step: after a
# restart it runs on the destination, once, never two copies (its QEMUs
# counted every 0.1 s from the restart until it runs). Real QEMU (TCG
# here), no guest network. About 4.5 minutes.
# usage: daemon_killpoints.sh SHOALD IMAGES_DIR [ROUNDS]
# (KILLPOINTS_ONLY=REGEX runs only the cases whose name matches, e.g.
# 'delete|round' - for debugging one case.)
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
ROUNDS=${3:-3}
ONLY=${KILLPOINTS_ONLY:-.}
want() { grep -q -E "$ONLY" <<<"$1"; }
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lvdlocal.sh"

for f in "$SHOALD" "$IMAGES/sleep.elf" "$IMAGES/exitcode.elf" "$IMAGES/hello.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
e2e_setup
SAMPLER=""
kp_cleanup() {
    set +e
    [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
    lvd_cleanup
}
trap kp_cleanup EXIT
FLAGS=(--no-network --cpu-overcommit 100 --max-instances 80 --host-uri-allow 'qemu?socket')
LOG() { echo "$E2E_STATE/shoald.log"; }

json_post() { api POST "$1" -H 'Content-Type: application/json' -d "$2"; }

# start_kp STEP:N: start shoald with that kill point ("" for none).
start_kp() {
    if [ -n "$1" ]; then
        SHOAL_TEST_KILL_AT=$1 e2e_start_daemon "$SHOALD" "${FLAGS[@]}"
    else
        e2e_start_daemon "$SHOALD" "${FLAGS[@]}"
    fi
}

# killed_at STEP:N SECS: shoald died at that kill point within SECS.
killed_at() {
    for _ in $(seq 1 $(($2 * 4))); do
        kill -0 "$E2E_PID" 2>/dev/null || break
        sleep 0.25
    done
    if kill -0 "$E2E_PID" 2>/dev/null; then
        e2e_fail "$1: shoald still alive after $2 s"
        kill -9 "$E2E_PID" 2>/dev/null
    fi
    wait "$E2E_PID" 2>/dev/null || true
    E2E_PID=""
    check "$1: shoald killed at its kill point" grep -q "killpoint: $1 reached, SIGKILL" "$(LOG)"
}

# sigkill_now: kill -9 the daemon (random kills).
sigkill_now() {
    kill -9 "$E2E_PID" 2>/dev/null || true
    wait "$E2E_PID" 2>/dev/null || true
    E2E_PID=""
}

rows() {
    api GET "/v1/instances?limit=1000"
    printf '%s' "$BODY"
}
# QEMU processes of this state dir, one instance id per line.
qemu_ids() {
    pgrep -af "qemu-system.*$E2E_STATE" | grep -o 'guest=shoal-[0-9a-f]*' | sed 's/guest=shoal-//' | sort
}
count_state() { rows | jq "[.items[] | select(.state == \"$1\")] | length"; }
all_in_state() { # all_in_state N STATE: exactly N rows, all in STATE
    local r
    r=$(rows)
    [ "$(jq '.items | length' <<<"$r")" = "$1" ] &&
        [ "$(jq "[.items[] | select(.state == \"$2\")] | length" <<<"$r")" = "$1" ]
}
db_ok() { [ "$(sqlite3 "$1" 'PRAGMA integrity_check')" = ok ]; }
no_pending_upload() { [ "$(sqlite3 "$E2E_STATE/images.db" 'SELECT count(*) FROM blobs WHERE state = 0')" = 0 ]; }
no_orphan() { [ -z "$(comm -23 <(qemu_ids) <(rows | jq -r '.items[].id' | sort))" ]; }
no_duplicate() { [ -z "$(qemu_ids | uniq -d)" ]; }
# Every row that runs has its QEMU: running rows == QEMUs.
runs_match() { [ "$(count_state running)" = "$(qemu_ids | wc -l)" ]; }

# invariants LABEL: what every restart must find.
invariants() {
    check "$1: no instance lost" [ "$(count_state lost)" = 0 ]
    check "$1: no orphan QEMU" no_orphan
    check "$1: no duplicate QEMU" no_duplicate
    check "$1: no pending upload" wait_for 10 no_pending_upload
    check "$1: shoald.db integrity ok" db_ok "$E2E_STATE/shoald.db"
    check "$1: images.db integrity ok" db_ok "$E2E_STATE/images.db"
}

# Remove every instance and stop the daemon: the next case starts clean.
clean_slate() {
    local ids
    ids=$(rows | jq -c '[.items[].id]')
    if [ "$ids" != "[]" ]; then
        api POST /v1/instances/delete -H 'Content-Type: application/json' \
            -d "{\"ids\":$ids,\"force\":true}" || true
    fi
    check "clean slate: no instance left" wait_for 60 all_in_state 0 running
    check "clean slate: no QEMU left" wait_for 30 no_qemu
    e2e_stop_daemon
}
no_qemu() { [ -z "$(qemu_ids)" ]; }
orphan_gone() { ! qemu_ids | grep -q -x "$orphan"; }
files_gone() { [ ! -e "$E2E_STATE/run/$1.status" ] && [ ! -e "$E2E_STATE/logs/$1.log" ]; }
restarts_ge2() { [ "$(inst_field pol .restarts)" -ge 2 ]; }

start_kp "" || exit 1
e2e_push_images sleep exitcode
e2e_stop_daemon

# --- a QEMU of the embed root that libvirt does not know (what a shoald
# killed inside virDomainCreateXML leaves): killed at the next start
if want orphan; then
    orphan=0123456789ab
    qemu-system-x86_64 -machine none -S -display none -nodefaults -name "guest=shoal-$orphan" \
        -pidfile "$E2E_STATE/libvirt/orphan-test.pid" >/dev/null 2>&1 &
    orphan_pid=$!
    sleep 0.5
    check "orphan: a QEMU libvirt does not know runs" [ "$(qemu_ids | grep -c -x "$orphan")" = 1 ]
    start_kp "" || exit 1
    check "orphan: killed at start" wait_for 10 orphan_gone
    check "orphan: logged" grep -q "killing QEMU pid .* of domain 'shoal-$orphan'" "$(LOG)"
    wait "$orphan_pid" 2>/dev/null || true
    e2e_stop_daemon
fi

# --- create and start: 3 sleep guests, killed at the 2nd passage
for kp in create.row:2 start.row:2 start.paused:2 start.created:2 start.done:2; do
    want "$kp" || continue
    start_kp "$kp" || exit 1
    json_post /v1/instances '{"image":"sleep","name":"cr","count":3,"args":["600"]}' || true
    killed_at "$kp" 60
    start_kp "" || exit 1
    want=3
    [ "$kp" = create.row:2 ] && want=0 # a batch is all or nothing: its rows go
    check "$kp: $want instances run after the restart" wait_for 90 all_in_state $want running
    [ "$kp" = create.row:2 ] &&
        check "$kp: the uncommitted batch was removed" grep -q "removed 2 instance rows of a create request" "$(LOG)"
    e2e_log "$kp: $(rows | jq -c '[.items[] | {name, state, last_error}]' | cut -c1-600)"
    check "$kp: one QEMU per running instance" runs_match
    invariants "$kp"
    clean_slate
done

# --- delete: two running, one deleted with force, killed on the way
for kp in delete.marked:1 delete.destroyed:1 delete.row:1; do
    want "$kp" || continue
    start_kp "$kp" || exit 1
    json_post /v1/instances '{"image":"sleep","name":"dl","count":2,"args":["600"]}'
    check "$kp: 2 running" wait_for 90 all_in_state 2 running
    gone=$(rows | jq -r '.items[] | select(.name == "dl-1") | .id')
    api DELETE "/v1/instances/dl-1?force=true" || true
    killed_at "$kp" 60
    start_kp "" || exit 1
    api GET "/v1/instances/$gone"
    check "$kp: the deleted instance is gone (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 404 ]
    check "$kp: its QEMU is gone" [ -z "$(qemu_ids | grep -x "$gone" || true)" ]
    check "$kp: its console and status files are gone" files_gone "$gone"
    check "$kp: the other still runs" wait_for 30 all_in_state 1 running
    invariants "$kp"
    clean_slate
done

# --- restart policy: a guest that exits 3 under on-failure
for kp in policy.backoff:1 policy.restart:1; do
    want "$kp" || continue
    start_kp "$kp" || exit 1
    json_post /v1/instances '{"image":"exitcode","name":"pol","args":["3"],"restart":"on-failure"}'
    killed_at "$kp" 90
    start_kp "" || exit 1
    check "$kp: restarted by its policy after the restart" wait_for 60 restarts_ge2
    check "$kp: never failed or lost" [ -z "$(inst_field pol .state | grep -x -E 'lost|failed' || true)" ]
    invariants "$kp"
    clean_slate
done

# --- upload: an 8 MiB image (hello padded), killed half way and after commit
big="$E2E_STATE/big.elf"
cp "$IMAGES/hello.elf" "$big"
truncate -s 8M "$big"
if want upload; then
start_kp upload.partial:1 || exit 1
api POST "/v1/images?ref=big:1" -H 'Content-Type: application/octet-stream' --data-binary "@$big" || true
killed_at upload.partial:1 60
check "upload.partial:1: a pending blob was left" [ "$(sqlite3 "$E2E_STATE/images.db" 'SELECT count(*) FROM blobs WHERE state = 0')" -ge 1 ]
start_kp "" || exit 1
check "upload.partial:1: collected by the sweep with no image delete" wait_for 10 no_pending_upload
check "upload.partial:1: the sweep said so" grep -q "collected 1 abandoned upload" "$(LOG)"
api GET "/v1/images/big:1"
check "upload.partial:1: no image big:1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 404 ]
invariants upload.partial:1
e2e_stop_daemon
start_kp upload.row:1 || exit 1
api POST "/v1/images?ref=big:2" -H 'Content-Type: application/octet-stream' --data-binary "@$big" || true
killed_at upload.row:1 60
start_kp "" || exit 1
api GET "/v1/images/big:2"
check "upload.row:1: big:2 is there, whole ($(jq -r .size <<<"$BODY") bytes)" \
    [ "$(jq -r .size <<<"$BODY")" = "$(stat -c %s "$big")" ]
invariants upload.row:1
e2e_stop_daemon
fi

# --- random kills during 50-instance batches: create, then bulk delete
all_or_nothing() { [ "$1" = 50 ] || [ "$1" = 0 ]; }
for round in $(seq 1 "$ROUNDS"); do
    want "round" || continue
    start_kp "" || exit 1
    json_post /v1/instances '{"image":"sleep","name":"b'"$round"'","count":50,"args":["600"],"labels":{"k":"b"}}'
    t=$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.1f", 0.5 + rand() * 8 }')
    sleep "$t"
    sigkill_now
    e2e_log "round $round: create killed after $t s ($(qemu_ids | wc -l) QEMUs)"
    start_kp "" || exit 1
    # a batch is all or nothing: 0 rows if the kill came before its commit
    n=$(rows | jq '.items | length')
    check "round $round: the batch is all or nothing ($n rows)" all_or_nothing "$n"
    if wait_for 180 all_in_state "$n" running; then
        e2e_pass "round $round: all $n run after the restart"
    else
        e2e_fail "round $round: all $n run after the restart"
        e2e_log "round $round: states $(rows | jq -c '[.items[] | .state] | group_by(.) | map({(.[0]): length}) | add')"
        e2e_log "round $round: not running: $(rows | jq -c '[.items[] | select(.state != "running") | {id, state, last_error}]' | cut -c1-800)"
        e2e_log "round $round: QEMUs $(qemu_ids | wc -l), duplicates: $(qemu_ids | uniq -d | tr '\n' ' ')"
        grep -E 'warn|error|killing' "$(LOG)" | tail -n 20
    fi
    check "round $round: one QEMU each" runs_match
    invariants "round $round create"
    api POST /v1/instances/delete -H 'Content-Type: application/json' -d '{"selector":"k=b","force":true}' &
    t=$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.1f", 0.1 + rand() * 1.4 }')
    sleep "$t"
    sigkill_now
    wait || true
    e2e_log "round $round: bulk delete killed after $t s ($(qemu_ids | wc -l) QEMUs left)"
    start_kp "" || exit 1
    n=$(rows | jq '.items | length')
    e2e_log "round $round: $n rows after the restart"
    invariants "round $round delete"
    check "round $round: the $n not yet deleted still run" wait_for 60 all_in_state "$n" running
    clean_slate
done

# --- cold moves between two real hosts (drain of local to sys), killed at
# each step; last, since the host sys stays in the fleet
copies() { pgrep -f "qemu-system.*guest=shoal-$1" | wc -l; }
local_copies() { pgrep -f "qemu-system.*guest=shoal-$1.*$E2E_STATE/libvirt" | wc -l; }
one_on_sys() { [ "$(copies "$1")" = 1 ] && [ "$(local_copies "$1")" = 0 ]; }
no_copies() { [ "$(copies "$1")" = 0 ]; }
mv_field() {
    api GET /v1/instances/mv
    jq -r ".$1" <<<"$BODY"
}
mv_runs_on() { [ "$(mv_field state)" = running ] && [ "$(mv_field host)" = "$1" ]; }
if want move; then
    lvd_init || exit 1
    # libvirt's state dirs of its own (lvd_start_private): a libvirtd of
    # another test running meanwhile stopped the shared-dirs one from
    # starting (seen beside a CI run)
    check "host sys (a libvirt daemon of its own) starts" lvd_start_private sys "$E2E_NS"
    SOCK=$LVD/sys/sock/libvirt-sock
    start_kp "" || exit 1
    api POST /v1/hosts -H 'Content-Type: application/json' \
        -d "{\"name\":\"sys\",\"uri\":\"qemu:///system?socket=$SOCK\",\"domain_type\":\"qemu\"}"
    check "add host sys as qemu:///system?socket=... (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
    e2e_stop_daemon
fi
for kp in move.marked:1 move.stopped:1 move.rehomed:1; do
    want "$kp" || continue
    start_kp "$kp" || exit 1
    json_post /v1/instances '{"image":"sleep","name":"mv","host":"local","args":["600"]}'
    check "$kp: mv runs on local" wait_for 60 mv_runs_on local
    id=$(mv_field id)
    api POST /v1/hosts/local/drain || true
    killed_at "$kp" 60
    echo 0 >"$E2E_STATE/max-copies"
    (
        max=0
        while :; do
            n=$(copies "$id")
            [ "$n" -gt "$max" ] && max=$n && echo "$max" >"$E2E_STATE/max-copies"
            sleep 0.1
        done
    ) &
    SAMPLER=$!
    start_kp "" || exit 1
    if ! wait_for 60 mv_runs_on sys; then
        e2e_fail "$kp: mv runs on sys after the restart"
        e2e_log "$kp: mv is $(mv_field state) on $(mv_field host): $(mv_field last_error)"
    else
        e2e_pass "$kp: mv runs on sys after the restart"
    fi
    kill "$SAMPLER" 2>/dev/null
    wait "$SAMPLER" 2>/dev/null || true
    SAMPLER=""
    e2e_log "$kp: $(grep -E "moving to|finished the move" "$(LOG)" | tail -n 2 | cut -c1-160 | tr '\n' '|')"
    check "$kp: never two copies (at most $(cat "$E2E_STATE/max-copies") QEMU)" \
        [ "$(cat "$E2E_STATE/max-copies")" -le 1 ]
    check "$kp: one QEMU, on sys ($(copies "$id") in all, $(local_copies "$id") on local)" \
        one_on_sys "$id"
    invariants "$kp"
    api DELETE "/v1/instances/mv?force=true"
    check "$kp: deleted (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
    json_post /v1/hosts/local/cordon '{"cordoned":false}'
    check "$kp: no QEMU left" wait_for 20 no_copies "$id"
    e2e_stop_daemon
done

e2e_finish
