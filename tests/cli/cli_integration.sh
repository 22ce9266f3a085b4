#!/bin/bash
# cli_integration.sh SHOAL SHOALD IMAGES_DIR
#
# Starts the real shoald on 127.0.0.1 (temp state dir) inside a network
# namespace this script creates, so the daemon's bridge, the guests' taps and
# all traffic stay there (tests send network traffic only to loopback or to
# hosts inside a network namespace the test itself created), and drives
# every `shoal` command against it, checking output and exit statuses.
# Missing binaries or images are a FAILURE, never a skip. Every wait is
# bounded; the trap removes instances, stops the daemon, deletes the
# namespace and the state dir even when a check fails.
set -eu

SHOAL=${1:?usage: cli_integration.sh SHOAL SHOALD IMAGES_DIR}
SHOALD=${2:?usage: cli_integration.sh SHOAL SHOALD IMAGES_DIR}
IMAGES=${3:?usage: cli_integration.sh SHOAL SHOALD IMAGES_DIR}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

[ -x "$SHOAL" ] || fail "shoal CLI not found at '$SHOAL'"
[ -x "$SHOALD" ] || fail "shoald not found at '$SHOALD' (build the daemon target first)"
for img in hello exitcode sleep; do
    [ -f "$IMAGES/$img.elf" ] || fail "guest image '$IMAGES/$img.elf' missing (build the guest-kernel images)"
done

command -v ip >/dev/null || fail "iproute2 'ip' is needed for the test's network namespace"
STATE=$(mktemp -d /tmp/shoal-cli-it.XXXXXX)
OUT=$STATE/out
ERR=$STATE/err
DPID=""
NS="shoal-cli-$$"
NSX=(ip netns exec "$NS")

cleanup() {
    local rc=$?
    set +e
    if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
        # Guests outlive the daemon under the embedded driver: remove them
        # through the API first.
        ids=$(timeout 20 "${NSX[@]}" "$SHOAL" ps -a -q 2>/dev/null)
        [ -n "$ids" ] && timeout 60 "${NSX[@]}" "$SHOAL" rm -f $ids >/dev/null 2>&1
        kill -TERM "$DPID" 2>/dev/null
        for _ in $(seq 1 100); do
            kill -0 "$DPID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$DPID" 2>/dev/null
        wait "$DPID" 2>/dev/null
    fi
    if [ "$rc" -ne 0 ] && [ -f "$STATE/shoald.log" ]; then
        echo "---- last lines of shoald.log" >&2
        tail -n 40 "$STATE/shoald.log" >&2
    fi
    ip netns del "$NS" 2>/dev/null
    rm -rf "$STATE"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS" || fail "cannot create network namespace '$NS' (needs root)"
ip -n "$NS" link set lo up

# free_port: an unused loopback port inside the namespace.
free_port() {
    "${NSX[@]}" python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

PORT=$(free_port)
# `host add` below uses the mock driver (test:///default), which the
# operator must allow (docs/shoald.md, --host-uri-allow).
"${NSX[@]}" "$SHOALD" --state-dir "$STATE" --listen "127.0.0.1:$PORT" \
    --host-uri-allow 'qemu+tls,qemu+ssh,qemu,test' >"$STATE/shoald.log" 2>&1 &
DPID=$!

# First start probes QEMU capabilities (several seconds): wait up to 90 s.
for i in $(seq 1 900); do
    if "${NSX[@]}" curl -sf -m 2 "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
        break
    fi
    kill -0 "$DPID" 2>/dev/null || fail "shoald exited during startup"
    [ "$i" -eq 900 ] && fail "shoald did not answer /healthz within 90 s"
    sleep 0.1
done
[ -s "$STATE/admin.token" ] || fail "shoald wrote no admin token"

export SHOAL_URL="http://127.0.0.1:$PORT"
export SHOAL_TOKEN
SHOAL_TOKEN=$(cat "$STATE/admin.token")
unset SHOAL_STATE_DIR XDG_CONFIG_HOME
export HOME="$STATE" # no user config file leaks in

# run_shoal WANT ARGS...: run shoal (bounded), keep stdout/stderr in
# $OUT/$ERR, fail unless the exit status is WANT.
run_shoal() {
    local want=$1
    shift
    local got=0
    timeout 120 "${NSX[@]}" "$SHOAL" "$@" >"$OUT" 2>"$ERR" || got=$?
    if [ "$got" -ne "$want" ]; then
        echo "---- stdout" >&2
        cat "$OUT" >&2
        echo "---- stderr" >&2
        cat "$ERR" >&2
        fail "shoal $*: exit $got, expected $want"
    fi
}
expect_out() { grep -q -- "$1" "$OUT" || { cat "$OUT" >&2; fail "stdout lacks '$1'"; }; }
expect_err() { grep -q -- "$1" "$ERR" || { cat "$ERR" >&2; fail "stderr lacks '$1'"; }; }
json_check() { # PYTHON-EXPR over j = parsed stdout
    python3 -c "import json,sys; j=json.load(open('$OUT')); sys.exit(0 if ($1) else 1)" ||
        { cat "$OUT" >&2; fail "JSON check failed: $1"; }
}

# wait_state SELECTOR STATE N: until N instances matching SELECTOR are in STATE (60 s).
wait_state() {
    for _ in $(seq 1 300); do
        n=$(timeout 20 "${NSX[@]}" "$SHOAL" ps -a -l "$1" -o json |
            python3 -c "import json,sys; print(sum(1 for i in json.load(sys.stdin) if i['state']=='$2'))")
        [ "$n" -ge "$3" ] && return 0
        sleep 0.2
    done
    timeout 20 "${NSX[@]}" "$SHOAL" ps -a -o wide -l "$1" >&2
    fail "instances '$1' did not reach '$2' within 60 s"
}

echo "== version, help"
run_shoal 0 version
expect_out "health: ok"
run_shoal 0 --help
expect_out "Usage: shoal"
for c in run ps inspect logs stop start restart rm hosts consolidate events; do
    run_shoal 0 "$c" --help
    expect_out "Examples:"
done
run_shoal 0 image push --help
run_shoal 0 host --help

echo "== image push, ls, inspect, tag, rm"
digest="sha256:$(sha256sum "$IMAGES/hello.elf" | cut -d' ' -f1)"
run_shoal 0 image push "$IMAGES/hello.elf" hello:1.0
expect_out "pushed hello:1.0 $digest"
[ ! -s "$ERR" ] || fail "push printed progress while piped: $(cat "$ERR")"
# On a terminal: a progress bar with bytes and rate (script(1) gives a pty).
if command -v script >/dev/null; then
    timeout 60 script -qec "ip netns exec $NS $SHOAL image push $IMAGES/hello.elf tty:1" /dev/null >"$OUT" 2>&1 ||
        { cat "$OUT" >&2; fail "image push on a pty failed"; }
    expect_out "100%.*B/s"
    run_shoal 0 image rm tty:1
else
    fail "script(1) (bsdutils) is needed for the pty progress check"
fi
# Not an image: the server's validation message, exit 1.
head -c 4096 /dev/zero >"$STATE/zero.bin"
run_shoal 1 image push "$STATE/zero.bin" zero:1
[ -s "$ERR" ] && ! grep -q "422" "$ERR" || { cat "$ERR" >&2; fail "invalid image: expected the server's message"; }
run_shoal 0 image push -q "$IMAGES/exitcode.elf" exitcode
run_shoal 0 image push -q "$IMAGES/sleep.elf" sleep:latest
run_shoal 0 image ls
expect_out "^NAME  *TAG  *DIGEST"
expect_out "^hello  *1.0  *${digest:7:12}"
run_shoal 0 image ls -o json
json_check "any('hello:1.0' in i['refs'] for i in j)"
run_shoal 0 images -o wide
expect_out "$digest"
run_shoal 0 image inspect hello:1.0
json_check "j['digest'] == '$digest'"
run_shoal 0 image tag hello:1.0 hello:latest
expect_out "tagged"
run_shoal 0 image inspect "${digest:7:12}"
json_check "'hello:latest' in j['refs'] and 'hello:1.0' in j['refs']"
run_shoal 0 image rm hello:latest
run_shoal 3 image inspect hello:latest
expect_err "^shoal: .*hello"
run_shoal 3 image rm nope:1
expect_err "not found"

echo "== run, ps, inspect, logs"
run_shoal 0 run --name hi --count 3 -l app=hi -m 32M --vcpus 1 -e GREETING=yo hello:1.0 -- one two
[ "$(wc -l <"$OUT")" -eq 3 ] || fail "run --count 3 printed $(wc -l <"$OUT") ids"
first_id=$(head -n 1 "$OUT")
wait_state app=hi exited 3
run_shoal 0 ps
expect_out "^ID  *NAME  *IMAGE  *STATE"
run_shoal 0 ps -a -l app=hi
expect_out "hi-1"
expect_out "exited (0)"
run_shoal 0 ps -a -o json
json_check "len([i for i in j if i['labels'].get('app') == 'hi']) == 3"
run_shoal 0 ps -a -o wide
expect_out "LABELS"
run_shoal 0 ps -a -q -l app=hi
[ "$(wc -l <"$OUT")" -eq 3 ] || fail "ps -q printed $(wc -l <"$OUT") lines"
run_shoal 0 inspect hi-2
json_check "j['name'] == 'hi-2' and j['state'] == 'exited' and j['exit_code'] == 0"
run_shoal 0 inspect "$first_id" hi-3
json_check "len(j) == 2"
run_shoal 0 logs hi-1
expect_out "argv\[1\]=<one>"
expect_out "GREETING"
run_shoal 0 logs -f hi-1 # exited: follow ends at once
expect_out "argv\[2\]=<two>"
run_shoal 0 logs --tail 16 hi-1
[ "$(wc -c <"$OUT")" -le 16 ] || fail "logs --tail 16 printed $(wc -c <"$OUT") bytes"
run_shoal 4 run --name hi-1 hello:1.0
expect_err "hi-1"

echo "== run --attach returns the guest's exit status"
run_shoal 3 run --attach exitcode -- 3
expect_out "exiting with 3"
run_shoal 0 run --attach --no-network exitcode -- 0

echo "== stop, start, restart, rm by name, id, prefix, selector"
run_shoal 0 run --name sl --count 2 -l app=sl sleep -- 300
sl_id=$(head -n 1 "$OUT")
wait_state app=sl running 2
run_shoal 4 rm sl-1
expect_err "sl-1"
run_shoal 0 stop -t 2 sl-1
expect_out "sl-1"
wait_state app=sl stopped 1
run_shoal 0 start "$sl_id"
wait_state app=sl running 2
run_shoal 0 restart "${sl_id:0:8}"
wait_state app=sl running 2
run_shoal 0 stop -l app=sl
expect_out "sl-2"
wait_state app=sl stopped 2
run_shoal 0 rm sl-1
run_shoal 0 start -l app=sl
run_shoal 0 rm -f -l app=sl
run_shoal 0 ps -a -q -l app=sl
[ ! -s "$OUT" ] || fail "instances left after rm -f -l app=sl"
run_shoal 0 rm -l app=hi
[ "$(wc -l <"$OUT")" -eq 3 ] || fail "rm -l app=hi removed $(wc -l <"$OUT")"

echo "== ps --watch draws a table (bounded)"
got=0
timeout 5 "${NSX[@]}" "$SHOAL" ps --watch >"$OUT" 2>"$ERR" || got=$?
[ "$got" -eq 124 ] || fail "ps --watch ended with $got: $(cat "$ERR")"
expect_out "ID  *NAME"

echo "== hosts, host, consolidate, events"
run_shoal 0 hosts
expect_out "^NAME  *STATE"
expect_out "\[[#.]*\] *[0-9]*%"
run_shoal 0 hosts -o json
host=$(python3 -c "import json; print(json.load(open('$OUT'))[0]['name'])")
run_shoal 0 hosts -o wide
expect_out "URI"
run_shoal 0 host cordon "$host"
run_shoal 0 hosts -o json
json_check "j[0]['cordoned'] is True"
run_shoal 0 host uncordon "$host"
run_shoal 0 host inspect "$host"
json_check "j['name'] == '$host' and j['cordoned'] is False"
run_shoal 3 host cordon no-such-host
run_shoal 0 host add mock1 test:///default -l kind=mock -t qemu
expect_out "added mock1"
run_shoal 4 host add mock1 test:///default
run_shoal 0 hosts
expect_out "^mock1 "
run_shoal 0 host drain --dry-run mock1
run_shoal 0 host rm mock1
run_shoal 3 host inspect mock1
run_shoal 0 consolidate --dry-run
expect_out "hosts\|nothing to move"
run_shoal 0 consolidate --dry-run -o json
json_check "'moves' in j and j['executed'] is False"
run_shoal 0 events --since 0 --max 3 --timeout 20
[ "$(wc -l <"$OUT")" -eq 3 ] || fail "events --max 3 printed $(wc -l <"$OUT") lines"
expect_out "image.pushed"
run_shoal 0 events --since 0 --max 2 --timeout 20 -o json
python3 -c "import json; [json.loads(l) for l in open('$OUT')]" || fail "events -o json is not JSON lines"
run_shoal 0 events --timeout 1

echo "== usage errors (2), not found (3), unreachable (5), auth (6)"
run_shoal 2 run
expect_err "missing IMAGE"
run_shoal 2 run --memory lots hello:1.0
expect_err "'lots'"
run_shoal 2 run -p 80 hello:1.0
expect_err "'80'"
run_shoal 2 ps -l 'a b'
expect_err "selector"
run_shoal 2 ps -o yaml
run_shoal 2 frobnicate
expect_err "unknown command 'frobnicate'"
run_shoal 2 stop
run_shoal 3 inspect no-such-instance
expect_err "no-such-instance"
run_shoal 3 stop no-such-instance
run_shoal 3 logs no-such-instance
run_shoal 3 run no-such-image:1
expect_err "no-such-image"
dead=$(free_port)
run_shoal 5 --url "http://127.0.0.1:$dead" ps
expect_err "http://127.0.0.1:$dead"
run_shoal 6 --token wrong-token ps
run_shoal 6 --token wrong-token image ls

echo "== image rm while used (4), then force"
run_shoal 0 run --name keep -l app=keep -p 18080:80 --restart on-failure sleep -- 300
wait_state app=keep running 1
run_shoal 0 ps -o wide -l app=keep
expect_out "18080->80/tcp"
expect_out "on-failure/0"
run_shoal 4 image rm sleep:latest
run_shoal 0 rm -f keep
run_shoal 0 image rm hello:1.0
run_shoal 0 consolidate # nothing left to pack: shows the plan, executes nothing

echo "PASS: cli integration"
