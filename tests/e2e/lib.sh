# lib.sh - helpers for shoald end-to-end tests (sourced by bash scripts).
#
# Each test gets its own network namespace (so the daemon's bridge, the
# guests' taps and all traffic stay inside it), its own state dir and its
# own daemon, all removed by e2e_cleanup even when the test fails.

E2E_NS="shoal-e2e-$$"
E2E_STATE=""
E2E_PID=""
E2E_PORT=7878
E2E_FAILS=0
E2E_PASSES=0

e2e_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

e2e_fail() {
    e2e_log "FAIL: $*"
    E2E_FAILS=$((E2E_FAILS + 1))
}

e2e_pass() {
    E2E_PASSES=$((E2E_PASSES + 1))
    e2e_log "ok: $*"
}

# check "description" command...: passes when the command succeeds.
check() {
    desc=$1
    shift
    if "$@"; then e2e_pass "$desc"; else e2e_fail "$desc"; fi
}

e2e_setup() {
    E2E_STATE=$(mktemp -d /tmp/shoal-e2e.XXXXXX)
    ip netns add "$E2E_NS"
    ip -n "$E2E_NS" link set lo up
    trap e2e_cleanup EXIT
    trap 'exit 130' INT TERM
}

# Kill the daemon and every QEMU started under this test's state dir.
e2e_cleanup() {
    set +e
    if [ -n "$E2E_PID" ]; then
        kill "$E2E_PID" 2>/dev/null
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$E2E_PID" 2>/dev/null || break; sleep 0.3; done
        kill -9 "$E2E_PID" 2>/dev/null
    fi
    if [ -n "$E2E_STATE" ]; then
        # A shoald killed before it could stop its dnsmasq (--dhcp) leaves
        # it running: the pid file's, if it is that dnsmasq.
        dpid=$(cat "$E2E_STATE/dhcp/dnsmasq.pid" 2>/dev/null)
        if [ -n "$dpid" ] && tr '\0' ' ' <"/proc/$dpid/cmdline" 2>/dev/null | grep -q -- "$E2E_STATE/dhcp/"; then
            kill -9 "$dpid" 2>/dev/null
        fi
        # A fork child of shoald that never reached exec (stuck on GCC
        # ASan's allocator lock in sanitizer builds) carries shoald's
        # command line and outlives the daemon.
        pkill -9 -f -- "--state-dir $E2E_STATE" 2>/dev/null
        pkill -9 -f "qemu-system.*$E2E_STATE" 2>/dev/null
        sleep 0.3
        if [ "$E2E_FAILS" -ne 0 ] && [ -f "$E2E_STATE/shoald.log" ]; then
            echo "---- shoald.log (last 60 lines) ----"
            tail -n 60 "$E2E_STATE/shoald.log"
        fi
        rm -rf "$E2E_STATE"
    fi
    ip netns del "$E2E_NS" 2>/dev/null
}

# e2e_start_daemon SHOALD [extra flags]: start and wait for /healthz (60 s).
e2e_start_daemon() {
    bin=$1
    shift
    ip netns exec "$E2E_NS" "$bin" --state-dir "$E2E_STATE" \
        --listen "127.0.0.1:$E2E_PORT" "$@" >>"$E2E_STATE/shoald.log" 2>&1 &
    E2E_PID=$!
    for _ in $(seq 1 240); do
        if ns_curl -fsS "http://127.0.0.1:$E2E_PORT/healthz" >/dev/null 2>&1; then
            E2E_TOKEN=$(cat "$E2E_STATE/admin.token")
            return 0
        fi
        kill -0 "$E2E_PID" 2>/dev/null || break
        sleep 0.25
    done
    e2e_fail "shoald did not come up"
    return 1
}

# e2e_qemuconf LINES: the operator's part of the embedded root's qemu.conf
# (LINES may hold printf %b escapes, e.g. 'namespaces = []'), written
# before e2e_start_daemon; shoald rewrites only its own block in that file
# (docs/node.md "Connection"). Nothing is written for empty LINES.
e2e_qemuconf() {
    [ -n "$1" ] || return 0
    mkdir -p "$E2E_STATE/libvirt/etc"
    printf '%b\n' "$1" >"$E2E_STATE/libvirt/etc/qemu.conf"
}

# e2e_qemuconf_kept LINES: after e2e_start_daemon, each of LINES is still
# in qemu.conf (one e2e_fail per lost line; returns 1 then).
e2e_qemuconf_kept() {
    local l rc=0
    while IFS= read -r l; do
        [ -z "$l" ] || grep -qxF -- "$l" "$E2E_STATE/libvirt/etc/qemu.conf" ||
            { e2e_fail "qemu.conf lost '$l' when shoald started"; rc=1; }
    done < <(printf '%b\n' "$1")
    return $rc
}

ns_curl() { ip netns exec "$E2E_NS" curl "$@"; }

# api METHOD PATH [curl args...]: prints the body, sets HTTP_CODE.
api() {
    method=$1
    path=$2
    shift 2
    out=$(ns_curl -sS -m 60 -X "$method" -H "Authorization: Bearer $E2E_TOKEN" \
        -w '\n%{http_code}' "$@" "http://127.0.0.1:$E2E_PORT$path")
    HTTP_CODE=$(printf '%s' "$out" | tail -n 1)
    BODY=$(printf '%s' "$out" | sed '$d')
}

# api_retry METHOD PATH ARGS...: api, called again every second (up to
# 60 s) while it answers 503. A host that did not answer in time (one
# loaded by other tests) gets the API's "try again" (docs/api.md); where
# that is not what a test checks, it tries again as a client would.
api_retry() {
    local try
    for try in $(seq 1 60); do
        api "$@" || return $?
        [ "$HTTP_CODE" = 503 ] || return 0
        e2e_log "$1 $2: HTTP 503 (try $try): $(jq -r .error.message <<<"$BODY" 2>/dev/null | cut -c1-160)"
        sleep 1
    done
}

# wait_for SECONDS CMD...: retry CMD until it succeeds or time runs out.
wait_for() {
    limit=$1
    shift
    end=$(($(date +%s) + limit))
    while [ "$(date +%s)" -lt "$end" ]; do
        if "$@"; then return 0; fi
        sleep 0.25
    done
    return 1
}

# out_is WANT CMD...: CMD prints exactly WANT. For wait_for, which runs its
# command again each time: `wait_for 10 [ "$(f)" = 0 ]` would compare the
# one output read when the line ran; `wait_for 10 out_is 0 f` reads again.
out_is() {
    want=$1
    shift
    [ "$("$@")" = "$want" ]
}

# e2e_push_images APP...: upload IMAGES/APP.elf as APP:latest, one check each.
e2e_push_images() {
    for app in "$@"; do
        api POST "/v1/images?ref=$app:latest" -H 'Content-Type: application/octet-stream' \
            --data-binary "@$IMAGES/$app.elf"
        check "push $app (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
    done
}

# inst_field ID JQ: one field of an instance.
inst_field() {
    api GET "/v1/instances/$1"
    printf '%s' "$BODY" | jq -r "$2"
}

inst_state_is() { [ "$(inst_field "$1" .state)" = "$2" ]; }

# QEMU processes of this test's state dir whose command line names $1.
qemu_count() { pgrep -f "qemu-system.*$E2E_STATE.*$1" | wc -l; }

# Stop the daemon the way an operator would and check its log: in the
# sanitizer build, an ASan/UBSan/LSan report (leaks show at exit) fails the
# test even when every API answer was right.
e2e_stop_daemon() {
    [ -n "$E2E_PID" ] || return 0
    kill -TERM "$E2E_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$E2E_PID" 2>/dev/null || break; sleep 0.1; done
    st=0
    wait "$E2E_PID" 2>/dev/null || st=$?
    E2E_PID=""
    case $st in # a crash at the stop (SIGILL, TRAP, ABRT, BUS, FPE, SEGV)
    132 | 133 | 134 | 135 | 136 | 139) e2e_fail "shoald died of signal $((st - 128)) at its stop" ;;
    esac
    if grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$E2E_STATE/shoald.log"; then
        e2e_fail "sanitizer report in shoald.log:"
        grep -A 20 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$E2E_STATE/shoald.log" | head -40
    else
        e2e_pass "shoald stopped cleanly, no sanitizer report"
    fi
}

e2e_finish() {
    e2e_stop_daemon
    e2e_log "$E2E_PASSES passed, $E2E_FAILS failed"
    [ "$E2E_FAILS" -eq 0 ]
}
