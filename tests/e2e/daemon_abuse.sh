#!/bin/bash
# End to end, abuse (issue 16): a live shoald's API and a published port of
# a real guest under slowloris, 10,000 idle connections to each, oversized
# headers and bodies, pipelined garbage, path traversal in names, invalid
# UTF-8 and NUL bytes in string fields (tests/e2e/abuse.py). /healthz and a
# normal create must keep answering (correctness bound 3 s; the 1 s goal and
# the p99 per phase are printed as figures), shoald's RSS and descriptors
# stay bounded, and after the clients leave every descriptor comes back and
# no socket is left in CLOSE-WAIT. Everything runs inside a network
# namespace this test creates; attackers use 127.0.0.2-22 there.
# usage: daemon_abuse.sh SHOALD IMAGES_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

for f in "$SHOALD" "$IMAGES/httpd.elf" "$IMAGES/hello.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
e2e_setup
# The limits under test, at their defaults but named: 64 connections per
# client address, 10 s idle timeout and header deadline, 1024 connections
# per published port.
# ABUSE_SHOALD_FLAGS (not set in CI) adds flags after these, e.g. to see the
# test fail with the limits of before: --api-max-conns 256
# --api-max-conns-per-ip 65536 --api-timeout 30.
e2e_start_daemon "$SHOALD" --api-max-conns-per-ip 64 --api-timeout 10 \
    --publish-port-max-conns 1024 ${ABUSE_SHOALD_FLAGS:-} || exit 1
e2e_push_images httpd hello

api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"httpd","name":"web","args":["80","64"],"ports":[{"host":8080,"guest":80}]}'
check "create httpd with a published port (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "httpd runs" wait_for 60 inst_state_is web running
body=$(ns_curl -sS -m 10 "http://127.0.0.1:8080/healthz" || true)
check "the published port answers before (got '$body')" [ "$body" = ok ]

check "abuse.py: every phase within its bounds (figures below)" \
    ip netns exec "$E2E_NS" timeout 400 python3 "$HERE/abuse.py" "$E2E_PORT" "$E2E_TOKEN" 8080 \
    "$E2E_PID" hello

# Proxy connections whose guest never answered the SYN (the guest's stack
# was full) end at --publish-connect-timeout (5 s), their clients' sockets
# with them; a connection one side has ended closes after 10 s without a
# byte moving (docs/shoald.md), checked on the proxy's 1 s tick. That is
# a correctness bound, not a figure: on a loaded machine (CI beside other
# jobs) the last ones took longer than 15 s (91 left once, none leaked), so
# 30 s; what is left is printed with its owners.
n_state() { ip netns exec "$E2E_NS" ss -Htan state "$1" '( sport = :8080 or dport = :8080 or dport = :80 )' | wc -l; }
# None, twice 1 s apart: abuse.py's sockets closed at its exit, and their
# FINs may reach the proxy just after a first count of 0.
none_in() { [ "$(n_state "$1")" = 0 ] && sleep 1 && [ "$(n_state "$1")" = 0 ]; }
cw0=$(n_state close-wait)
wait_for 30 none_in close-wait || true
cw=$(n_state close-wait)
[ "$cw" = 0 ] || ip netns exec "$E2E_NS" ss -Htanp state close-wait | head -5
check "no socket of the published port left in CLOSE-WAIT within 30 s ($cw0 at first, $cw left)" \
    [ "$cw" = 0 ]
ss0=$(n_state syn-sent)
wait_for 30 none_in syn-sent || true
check "no proxy connect left in SYN-SENT within 30 s ($ss0 at first, $(n_state syn-sent) left)" \
    [ "$(n_state syn-sent)" = 0 ]
body=$(ns_curl -sS -m 10 "http://127.0.0.1:8080/healthz" || true)
check "the published port answers after (got '$body')" [ "$body" = ok ]
api GET /v1/instances/web
check "the API answers after (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
e2e_finish
