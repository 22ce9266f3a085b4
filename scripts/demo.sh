#!/bin/sh
# Set up a fresh Debian 12 machine, build and install shoal, start shoald on
# its embedded default (libvirt's QEMU driver inside the daemon, no libvirtd)
# and run a small fleet of the reference guest (5 x hello, 3 x sleep and an
# httpd published on 127.0.0.1:8080).
#
# Environment: SHOAL_STATE_DIR (default /var/lib/shoal), SHOAL_PREFIX
# (install prefix, default ./out), SHOAL_PORT (default 7878).
set -eu
cd "$(dirname "$0")/.."
ROOT=$PWD

./scripts/setup-debian.sh

PREFIX=${SHOAL_PREFIX:-$ROOT/out}
STATE=${SHOAL_STATE_DIR:-/var/lib/shoal}
PORT=${SHOAL_PORT:-7878}
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)"
cmake --install build --prefix "$PREFIX" >/dev/null
PATH="$PREFIX/bin:$PATH"
export PATH SHOAL_URL="http://127.0.0.1:$PORT" SHOAL_STATE_DIR="$STATE"
IMAGES="$PREFIX/share/shoal/images"

mkdir -p "$STATE"
if curl -fsS "$SHOAL_URL/healthz" >/dev/null 2>&1; then
    echo "demo: shoald already answers on $SHOAL_URL"
else
    echo "demo: starting shoald (state in $STATE, log in $STATE/shoald.log)"
    nohup shoald --state-dir "$STATE" --listen "127.0.0.1:$PORT" \
        >>"$STATE/shoald.log" 2>&1 </dev/null &
    # The first start probes QEMU (~10 s) and boots a KVM canary.
    i=0
    until curl -fsS "$SHOAL_URL/healthz" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ "$i" -gt 120 ]; then
            echo "demo: shoald did not come up; last log lines:" >&2
            tail -n 20 "$STATE/shoald.log" >&2
            exit 1
        fi
        sleep 0.5
    done
fi

echo "demo: pushing the reference images"
for app in hello sleep exitcode crash httpd; do
    shoal image push "$IMAGES/$app.elf" "$app:latest"
done
shoal image ls

echo "demo: running a fleet: 5 x hello, 3 x sleep (restart on failure)"
shoal rm -f -l demo=shoal >/dev/null 2>&1 || true
shoal run --count 5 --name hello --label demo=shoal hello -- "hi from the shoal"
shoal run --count 3 --name sleeper --label demo=shoal --restart on-failure sleep -- 600

shoal run --name web --label demo=shoal -p 8080:80 httpd

# Wait (bounded) until the hello guests have run to completion.
i=0
while shoal ps -a -l demo=shoal | grep hello | grep -q -E 'pending|starting|running'; do
    i=$((i + 1))
    [ "$i" -gt 60 ] && break
    sleep 0.5
done
shoal ps -a -l demo=shoal
echo
echo "demo: console of hello-1:"
shoal logs hello-1
echo
echo "demo: the web guest through its published port:"
curl -sS -m 5 http://127.0.0.1:8080/healthz && echo "  <- GET http://127.0.0.1:8080/healthz"
echo
shoal hosts
cat <<EOT

shoald keeps running in the background (log: $STATE/shoald.log).
Try next:
  export PATH=$PREFIX/bin:\$PATH
  shoal ps -a                      # the fleet
  shoal inspect sleeper-1          # one instance, with its runs
  shoal run --attach exitcode -- 7; echo \$?   # the guest's exit code is the CLI's
  shoal events                     # live lifecycle events (Ctrl-C to stop)
  shoal rm -f -l demo=shoal        # remove the demo fleet
  kill \$(pgrep -x shoald)          # stop the daemon (guests keep running)
EOT
