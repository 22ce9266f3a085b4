#!/bin/bash
# End to end (issue 16, privilege separation): shoald --privsep on, checked
# from outside.
#  - the process serving HTTP is the front: not uid 0, no capabilities in
#    any set (bounding set too), no_new_privs, a seccomp filter, its root an
#    empty directory, its only files the channel, the listening socket and
#    stdio;
#  - the root process holds no listening TCP socket (ss names the front as
#    the port's only listener);
#  - through the front: 401 for no or a wrong token, an image upload, a
#    create, a console read and a console follow, events, metrics, a token
#    made and used with its scope (403 beyond it);
#  - SIGKILL of the front: the API answers again within a few seconds from
#    a new front, the guest's QEMU is the same process and still running,
#    the log says what happened;
#  - SIGKILL of the root: the front exits too.
# usage: daemon_privsep.sh SHOALD IMAGES_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
. "$(dirname "$0")/lib.sh"

for f in "$SHOALD" "$IMAGES/sleep.elf" "$IMAGES/hello.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
if ! getent passwd shoal-api >/dev/null; then
    echo "FAIL: no user shoal-api (scripts/setup-debian.sh creates it)"
    exit 1
fi
AUID=$(id -u shoal-api)
command -v ss >/dev/null || { echo "FAIL: no ss (iproute2)"; exit 1; }

e2e_setup
e2e_start_daemon "$SHOALD" --no-network --privsep on || exit 1
ROOT_PID=$E2E_PID
front_pid() { pgrep -f -- "--privsep-front .*$E2E_STATE/privsep-empty" | head -n 1; }
status_field() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
FRONT=$(front_pid)
check "a front process runs (pid ${FRONT:-none})" [ -n "$FRONT" ]
check "it is named shoald-front" [ "$(cat "/proc/$FRONT/comm")" = shoald-front ]

# --- the front, from outside
check "front's uid is shoal-api's ($AUID), not 0" \
    [ "$(status_field "$FRONT" Uid)" = "$AUID" ]
for cap in CapEff CapPrm CapInh CapAmb CapBnd; do
    check "front's $cap is 0" [ "$(status_field "$FRONT" "$cap")" = 0000000000000000 ]
done
check "front has no_new_privs" [ "$(status_field "$FRONT" NoNewPrivs)" = 1 ]
check "front runs under its seccomp filter (Seccomp 2)" [ "$(status_field "$FRONT" Seccomp)" = 2 ]
check "front's root is the empty directory" \
    [ "$(readlink "/proc/$FRONT/root")" = "$E2E_STATE/privsep-empty" ]
check "the empty directory is empty" [ -z "$(ls -A "$E2E_STATE/privsep-empty")" ]
nfd=$(ls "/proc/$FRONT/fd" | wc -l)
check "front holds only stdio, the channel, the socket, its eventfd ($nfd fds)" [ "$nfd" -le 6 ]
listeners=$(ip netns exec "$E2E_NS" ss -Hltnp "sport = :$E2E_PORT")
check "the API port's listener is the front: $listeners" \
    grep -q "pid=$FRONT," <<<"$listeners"
check "the root process holds no listening socket of the API" \
    bash -c "! grep -q 'pid=$ROOT_PID,' <<<'$listeners'"

# --- the API through the front
E2E_TOKEN_SAVE=$E2E_TOKEN
E2E_TOKEN=wrong
api GET /v1/instances
check "a wrong token: 401 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 401 ]
E2E_TOKEN=$E2E_TOKEN_SAVE
code=$(ns_curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$E2E_PORT/v1/hosts")
check "no token: 401 (HTTP $code)" [ "$code" = 401 ]
e2e_push_images sleep hello
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"sleep","name":"keep","args":["600"]}'
check "create (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
ID=$(printf '%s' "$BODY" | jq -r '.items[0].id')
check "the instance runs" wait_for 60 inst_state_is "$ID" running
api POST /v1/instances -H 'Content-Type: application/json' -d '{"image":"hello","name":"hi"}'
HI=$(printf '%s' "$BODY" | jq -r '.items[0].id')
check "hello exits" wait_for 60 inst_state_is "$HI" exited
api GET "/v1/instances/$HI/console"
check "console read through the front (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "the console holds hello's output" [ -n "$BODY" ]
follow=$(ns_curl -sS -m 3 -H "Authorization: Bearer $E2E_TOKEN" \
    "http://127.0.0.1:$E2E_PORT/v1/instances/$ID/console?follow=true&tail=100" 2>/dev/null || true)
check "console follow streams until the client leaves" [ -n "$follow" ]
events=$(ns_curl -sS -m 2 -H "Authorization: Bearer $E2E_TOKEN" \
    "http://127.0.0.1:$E2E_PORT/v1/events?since=0" 2>/dev/null || true)
check "events stream (instance.state of the create)" grep -q "event: instance.state" <<<"$events"
check "audit events name the admin token" grep -q '"by":"admin"' <<<"$events"
api GET /metrics
check "metrics (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "metrics from the root (shoal_instances)" grep -q shoal_instances <<<"$BODY"
api POST /v1/tokens -H 'Content-Type: application/json' -d '{"name":"ro","scope":"read-only"}'
check "token create (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
RO=$(printf '%s' "$BODY" | jq -r .secret)
E2E_TOKEN=$RO
api GET /v1/instances
check "the read-only token lists (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
api DELETE "/v1/instances/$ID?force=true"
check "the read-only token cannot delete (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 403 ]
E2E_TOKEN=$E2E_TOKEN_SAVE

# --- the front dies; the API comes back, the guest never notices
QPID=$(pgrep -f "qemu-system.*guest=shoal-$ID" | head -n 1)
check "the guest's QEMU runs (pid ${QPID:-none})" [ -n "$QPID" ]
kill -9 "$FRONT"
t0=$(date +%s%N)
check "the API answers again within 5 s" wait_for 5 \
    bash -c "ip netns exec $E2E_NS curl -fsS -m 1 -H 'Authorization: Bearer $E2E_TOKEN' http://127.0.0.1:$E2E_PORT/v1/instances >/dev/null"
e2e_log "API back after $((($(date +%s%N) - t0) / 1000000)) ms"
NEW=$(front_pid)
check "a new front ($NEW), not the old one ($FRONT)" \
    bash -c "[ -n '$NEW' ] && [ '$NEW' != '$FRONT' ]"
check "the new front is unprivileged too" \
    bash -c "[ \"\$(awk '\$1 == \"CapEff:\" { print \$2 }' /proc/$NEW/status)\" = 0000000000000000 ]"
check "the guest's QEMU is the same process" kill -0 "$QPID"
check "the instance is still running" inst_state_is "$ID" running
check "the log says the front was killed and restarted" \
    grep -q "API front pid $FRONT killed by signal 9" "$E2E_STATE/shoald.log"

# --- the root dies; the front goes with it
kill -9 "$ROOT_PID"
check "the front exits when the root dies" wait_for 5 bash -c "! kill -0 $NEW 2>/dev/null"
E2E_PID=""

# --- TLS: the key stays root's (0600); the front reads it before dropping
if command -v openssl >/dev/null; then
    TLS="$E2E_STATE/tls"
    mkdir -p "$TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TLS/key.pem" -out "$TLS/cert.pem" \
        -days 1 -subj /CN=127.0.0.1 2>/dev/null
    chmod 0600 "$TLS/key.pem"
    ip netns exec "$E2E_NS" "$SHOALD" --state-dir "$E2E_STATE/tls-state" --listen 127.0.0.1:7879 \
        --no-network --local-uri test:///default --privsep on --tls-cert "$TLS/cert.pem" \
        --tls-key "$TLS/key.pem" >>"$E2E_STATE/shoald-tls.log" 2>&1 &
    E2E_PID=$!
    check "HTTPS through the front" wait_for 30 \
        bash -c "ip netns exec $E2E_NS curl -skf https://127.0.0.1:7879/healthz >/dev/null"
    TT=$(cat "$E2E_STATE/tls-state/admin.token" 2>/dev/null || true)
    code=$(ns_curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TT" \
        https://127.0.0.1:7879/v1/hosts)
    check "an authenticated HTTPS request (HTTP $code)" [ "$code" = 200 ]
    e2e_stop_daemon
else
    e2e_log "no openssl: TLS case skipped"
fi
e2e_log "$E2E_PASSES passed, $E2E_FAILS failed"
[ "$E2E_FAILS" -eq 0 ]
