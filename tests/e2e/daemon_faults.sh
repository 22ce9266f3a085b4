#!/bin/bash
# End to end (issue 16, "Faults"): a guest that floods its status channel
# and its console, and a QEMU killed from outside. A host-side writer appends to a running instance's
# status file (COM2's file: what a guest writing without end produces)
# fake `ready` records and junk as fast as it can for FLOOD_S seconds, and
# to its console file 32 MiB. shoald must stay cheap (its CPU over the
# flood under MAX_CPU_PCT of one core), count one ready time for the run
# (shoal_instance_ready_seconds_count stays 1), keep the status file and
# the console bounded on disk, keep answering, and still read a real
# record after the flood. Then QEMUs killed with SIGKILL from outside: one
# that wrote an exit record ends `exited` with its code, one without ends
# `crashed` and its restart policy (always) starts it again. About 60 s.
# usage: daemon_faults.sh SHOALD IMAGES_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
FLOOD_S=${FLOOD_S:-10}
MAX_CPU_PCT=${MAX_CPU_PCT:-15}
. "$(dirname "$0")/lib.sh"

for f in "$SHOALD" "$IMAGES/sleep.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
e2e_setup
e2e_start_daemon "$SHOALD" --no-network --console-max-kib 256 || exit 1
e2e_push_images sleep

metric() {
    api GET /metrics
    printf '%s\n' "$BODY" | awk -v m="$1" '$1 == m { print $2 }'
}
# CPU ticks (user + system) of shoald so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$E2E_PID/stat"; }

api POST /v1/instances -H 'Content-Type: application/json' -d '{"image":"sleep","name":"fl","args":["600"]}'
check "create (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "running" wait_for 60 inst_state_is fl running
id=$(inst_field fl .id)
check "one ready time before the flood" [ "$(metric shoal_instance_ready_seconds_count)" = 1 ]
status="$E2E_STATE/run/$id.status"
console="$E2E_STATE/logs/$id.log"
check "status file exists" [ -e "$status" ]

# The flood: fake ready records, a crash-looking junk line, overlong lines.
hz=$(getconf CLK_TCK)
t0=$(cpu_ticks)
python3 - "$status" "$FLOOD_S" <<'EOF'
import os, sys, time
path, secs = sys.argv[1], float(sys.argv[2])
rec = b"shoal-status ready boot_us=7\n" * 200 + b"shoal-status bogus\n" + b"x" * 300 + b"\n"
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
end = time.monotonic() + secs
n = 0
while time.monotonic() < end:
    os.write(fd, rec)
    n += len(rec)
os.close(fd)
print("status flood: %d MiB written" % (n >> 20))
EOF
t1=$(cpu_ticks)
pct=$(((t1 - t0) * 100 / hz / FLOOD_S))
e2e_log "shoald CPU during the status flood: $pct% of a core ($((t1 - t0)) ticks in ${FLOOD_S} s)"
check "shoald CPU during the flood under $MAX_CPU_PCT% of a core (got $pct%)" [ "$pct" -lt "$MAX_CPU_PCT" ]
check "healthz answers during/after the flood" ns_curl -fsS -m 2 "http://127.0.0.1:$E2E_PORT/healthz" -o /dev/null
check "still one ready time (got $(metric shoal_instance_ready_seconds_count))" \
    [ "$(metric shoal_instance_ready_seconds_count)" = 1 ]
status_small() { [ "$(stat -c %s "$status")" -le $((128 * 1024)) ]; }
wait_for 10 status_small || true
check "status file bounded on disk ($(stat -c %s "$status") bytes)" status_small
check "still running" inst_state_is fl running

# Console flood: 32 MiB appended; rotation keeps it near --console-max-kib.
head -c $((32 << 20)) /dev/zero | tr '\0' 'c' >>"$console"
console_small() { [ "$(stat -c %s "$console")" -le $((1024 * 1024)) ]; }
wait_for 15 console_small || true
check "console bounded after the flood ($(stat -c %s "$console") bytes)" console_small
check "console's rotated part bounded too ($(stat -c %s "$console.1" 2>/dev/null || echo 0) bytes)" \
    [ "$(stat -c %s "$console.1" 2>/dev/null || echo 0)" -le $((1024 * 1024)) ]

# After the flood a real record is still read: an exit record, then its
# QEMU killed from outside; the run ends exited with that code.
qemu_of() { pgrep -f "qemu-system.*guest=shoal-$1" | head -n 1; }
printf 'shoal-status exit code=5\n' >>"$status"
sleep 1
kill -9 "$(qemu_of "$id")"
check "QEMU killed after an exit record: exited" wait_for 30 inst_state_is fl exited
check "with the code it wrote (got $(inst_field fl .exit_code))" [ "$(inst_field fl .exit_code)" = 5 ]
check "one ready time in the end" [ "$(metric shoal_instance_ready_seconds_count)" = 1 ]

# A QEMU killed from outside with no record: crashed, and restart always
# starts it again.
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"sleep","name":"ka","args":["600"],"restart":"always"}'
check "ka running" wait_for 60 inst_state_is ka running
kid=$(inst_field ka .id)
kill -9 "$(qemu_of "$kid")"
restarted() { [ "$(inst_field ka .restarts)" -ge 1 ] && inst_state_is ka running; }
check "QEMU killed from outside: restarted by its policy" wait_for 60 restarted
api GET "/v1/instances/ka"
e2e_log "ka's runs: $(printf '%s' "$BODY" | jq -c '[.runs[]? | {outcome, reason}]' | cut -c1-300)"
BODY=$(printf '%s' "$BODY" | jq -c '.runs')
check "the killed run is recorded as crashed" grep -q crashed <<<"$BODY"
check "one QEMU for ka" [ "$(pgrep -f "qemu-system.*guest=shoal-$kid" | wc -l)" = 1 ]

e2e_finish
