#!/bin/bash
# The Debian package, end to end (issue 18): cpack builds it from this
# build, `apt-get install` puts it on this machine, the installed shoald
# runs a reference guest through the installed `shoal`, then `apt-get
# remove` keeps /var/lib/shoal and `dpkg --purge` deletes it.
#
# usage: package_install.sh BUILD_DIR direct|systemd
#   direct   shoald is started by hand, under the file-system sandbox of
#            shoald.service emulated with a mount namespace (sandbox()
#            below): ProtectSystem=strict with the state dir writable,
#            PrivateTmp, ProtectHome, ProtectKernelModules, ProtectKernelLogs
#            (their capabilities), ProtectHostname, NoNewPrivileges.
#   systemd  the unit itself, through systemctl, with a drop-in giving it
#            this test's state dir, port and network namespace; a stop with a
#            guest running leaves its QEMU alive and the next start adopts it
#            (KillMode=process). Exit 77 unless systemd is PID 1.
#
# Everything stays apart from a shoald someone runs here: its own state dir
# (/var/lib/shoal-pkgtest.PID), port and network namespace (bridge, taps).
# The package is purged on exit whatever happens. Exit 77 when dpkg cannot
# be used for it: not root, no dpkg/apt, a shoal package already installed,
# or a /var/lib/shoal that the purge would delete.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)

# sandbox STATE HIDE CMD...: run CMD as shoald.service's sandbox would (the
# options in daemon/shoald.service.in), in the mount and UTS namespaces
# `unshare` gave this shell, with the directory HIDE (the build tree) empty:
# the installed shoald must find its files under /usr, not fall back on the
# build tree's.
sandbox() {
    state=$1
    hide=$2
    shift 2
    mount -t tmpfs -o mode=000 tmpfs "$hide" || exit 1
    # ProtectSystem=strict: every mount read-only but /dev, /proc, /sys.
    mount -o remount,bind,ro / || { echo "sandbox: cannot make / read-only" >&2; exit 1; }
    awk '{print $5}' /proc/self/mountinfo | sort -u | while read -r mp; do
        case $mp in / | /dev | /dev/* | /proc | /proc/* | /sys | /sys/*) continue ;; esac
        mount -o remount,bind,ro "$mp" 2>/dev/null
    done
    # StateDirectory= (ReadWritePaths=) keeps the state dir writable.
    mount --bind "$state" "$state" && mount -o remount,bind,rw "$state" || exit 1
    # PrivateTmp=yes
    mount -t tmpfs -o mode=1777 tmpfs /tmp && mount -t tmpfs -o mode=1777 tmpfs /var/tmp || exit 1
    # ProtectHome=yes: empty and inaccessible
    for d in /home /root /run/user; do
        [ -d "$d" ] && { mount -t tmpfs -o mode=000 tmpfs "$d" || exit 1; }
    done
    # ProtectKernelModules=yes: no modules tree, no CAP_SYS_MODULE;
    # ProtectKernelLogs=yes: no /dev/kmsg, no CAP_SYSLOG.
    [ -d /usr/lib/modules ] && { mount -t tmpfs -o mode=000 tmpfs /usr/lib/modules || exit 1; }
    [ -e /dev/kmsg ] && { mount --bind /dev/null /dev/kmsg || exit 1; }
    # ProtectHostname=yes: the UTS namespace unshare made. NoNewPrivileges=yes.
    exec setpriv --no-new-privs --bounding-set -sys_module,-syslog -- "$@"
}
if [ "${1:-}" = --sandbox ]; then
    shift
    sandbox "$@"
fi

BUILD=$(cd "${1:?usage: package_install.sh BUILD_DIR direct|systemd}" && pwd)
MODE=${2:?usage: package_install.sh BUILD_DIR direct|systemd}
skip() { echo "SKIP: $*"; exit 77; }

if [ "$MODE" = systemd ]; then
    [ "$(ps -p 1 -o comm= 2>/dev/null)" = systemd ] && [ -d /run/systemd/system ] ||
        skip "systemd is not PID 1 here (PID 1: $(ps -p 1 -o comm= 2>/dev/null)): the unit cannot be run live; packaging_deb runs the package and unit_verify the unit file"
fi
[ "$(id -u)" -eq 0 ] || skip "not root: cannot install packages"
for t in dpkg dpkg-deb dpkg-query apt-get cpack ip unshare setpriv jq; do
    command -v "$t" >/dev/null || skip "no $t"
done
st=$(dpkg-query -W -f='${Status}' shoal 2>/dev/null)
case $st in '' | *not-installed) ;; *) skip "a shoal package is on this machine ($st): this test would replace it" ;; esac
[ -e /var/lib/shoal ] && skip "/var/lib/shoal exists: purging the test package would delete it"

# shellcheck source=../e2e/lib.sh
. "$HERE/../e2e/lib.sh"
E2E_NS="shoal-pkg-$$"
E2E_PORT=7893
STATE=/var/lib/shoal-pkgtest.$$
TMP=$(mktemp -d /tmp/shoal-pkg.XXXXXX)
INSTALLED=0
DROPIN=/run/systemd/system/shoald.service.d
# man-db's trigger rebuilds its index on every install and removal (~8 s
# each here); the test turns it off while it runs and back on at exit.
MANDB_FLAG=/var/lib/man-db/auto-update
MANDB_OFF=0

cleanup() {
    set +e
    if [ "$MODE" = systemd ] && [ "$INSTALLED" = 1 ]; then
        systemctl stop shoald.service >/dev/null 2>&1
        rm -rf "$DROPIN"
        systemctl daemon-reload
    fi
    E2E_STATE=$STATE
    e2e_cleanup # shoald, its QEMUs and dnsmasq, the state dir, the netns
    if [ "$INSTALLED" = 1 ] || dpkg-query -W shoal >/dev/null 2>&1; then
        dpkg --purge shoal >/dev/null 2>&1
        dpkg-query -W -f='${Status}\n' shoal 2>/dev/null | grep -q 'not-installed\|^$' ||
            echo "cleanup: dpkg --purge shoal did not finish"
    fi
    [ "$MANDB_OFF" = 1 ] && touch "$MANDB_FLAG"
    rm -rf "$TMP"
}
mkdir -p "$STATE"
ip netns add "$E2E_NS" && ip -n "$E2E_NS" link set lo up || { rm -rf "$STATE" "$TMP"; exit 1; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build and look at the package ---
t0=$(date +%s.%N)
if ! cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$TMP/pkg" >"$TMP/cpack.log" 2>&1; then
    cat "$TMP/cpack.log"
fi
DEB=$(ls "$TMP"/pkg/shoal_*.deb 2>/dev/null | head -n 1)
check "cpack -G DEB built $(basename "${DEB:-nothing}") in $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-4) s" test -f "$DEB"
[ -f "$DEB" ] || exit 1
VERSION=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$BUILD/CPackConfig.cmake")
check "package shoal, version $VERSION-1" \
    [ "$(dpkg-deb -f "$DEB" Package)" = shoal -a "$(dpkg-deb -f "$DEB" Version)" = "$VERSION-1" ]
deps=$(dpkg-deb -f "$DEB" Depends)
for d in libvirt0 libmicrohttpd12 libjansson4 libsqlite3-0 libcurl4 libgnutls30 qemu-system-x86 \
    qemu-utils libvirt-daemon-driver-qemu iproute2 nftables dnsmasq-base; do
    check "Depends: $d" grep -q "\(^\|, \)$d\( \|,\|$\)" <<<"$deps"
done
dpkg-deb -c "$DEB" | awk '{print $6}' >"$TMP/contents"
for f in ./lib/systemd/system/shoald.service ./usr/bin/shoald ./usr/bin/shoal \
    ./usr/libexec/shoal/shoal-qemu-exit ./usr/libexec/shoal/shoal-users ./usr/share/shoal/canary.elf \
    ./usr/share/shoal/images/hello.elf ./usr/share/shoal/images/exitcode.elf \
    ./usr/share/man/man1/shoal.1.gz ./usr/share/man/man8/shoald.8.gz \
    ./usr/share/bash-completion/completions/shoal ./usr/share/doc/shoal/copyright; do
    check "holds $f" grep -qx -- "$f" "$TMP/contents"
done
check "nothing under /usr/local" bash -c "! grep -q '^./usr/local' '$TMP/contents'"

# --- install ---
if [ -e "$MANDB_FLAG" ]; then
    rm -f "$MANDB_FLAG" && MANDB_OFF=1
fi
t0=$(date +%s.%N)
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$DEB" >"$TMP/apt.log" 2>&1
rc=$?
INSTALLED=1
check "apt-get install ./$(basename "$DEB") (rc $rc, $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-4) s)" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || { tail -n 30 "$TMP/apt.log"; exit 1; }
check "dpkg: install ok installed" [ "$(dpkg-query -W -f='${Status}' shoal)" = "install ok installed" ]
check "postinst made /var/lib/shoal, mode 711" [ "$(stat -c %a /var/lib/shoal 2>/dev/null)" = 711 ]
check "postinst made the user shoal-qemu" getent passwd shoal-qemu >/dev/null
check "postinst made the user libvirt-qemu" getent passwd libvirt-qemu >/dev/null
check "the installed shoald reports $VERSION" bash -c "/usr/bin/shoald --version | grep -q '$VERSION'"
out=$(systemd-analyze verify /lib/systemd/system/shoald.service 2>&1)
check "systemd-analyze verify of the installed unit, man pages found ('$out')" [ -z "$out" ]
check "the unit is not enabled by the install" \
    bash -c "! ls /etc/systemd/system/*.wants/shoald.service >/dev/null 2>&1"

# --- run shoald from the package ---
SHOAL() { ip netns exec "$E2E_NS" env SHOAL_URL="http://127.0.0.1:$E2E_PORT" SHOAL_STATE_DIR="$STATE" /usr/bin/shoal "$@"; }
healthy() { ns_curl -fsS "http://127.0.0.1:$E2E_PORT/healthz" >/dev/null 2>&1; }
if [ "$MODE" = systemd ]; then
    mkdir -p "$DROPIN"
    cat >"$DROPIN/test.conf" <<EOT
[Service]
ExecStart=
ExecStart=/usr/bin/shoald --state-dir $STATE --listen 127.0.0.1:$E2E_PORT
ReadWritePaths=$STATE
NetworkNamespacePath=/run/netns/$E2E_NS
EOT
    systemctl daemon-reload
    t0=$(date +%s.%N)
    check "systemctl start shoald (Type=notify: returns once READY=1)" systemctl start shoald.service
    check "active, and the API answers at once" bash -c "systemctl is-active -q shoald.service && ip netns exec $E2E_NS curl -fsS http://127.0.0.1:$E2E_PORT/healthz >/dev/null"
    check "its status line says it serves" bash -c "systemctl status shoald.service | grep -q 'serving the API'"
else
    t0=$(date +%s.%N)
    ip netns exec "$E2E_NS" unshare --mount --uts --propagation private -- \
        bash "$HERE/package_install.sh" --sandbox "$STATE" "$BUILD" \
        /usr/bin/shoald --state-dir "$STATE" --listen "127.0.0.1:$E2E_PORT" >"$TMP/shoald.log" 2>&1 &
    E2E_PID=$!
    check "the installed shoald answers under the unit's sandbox" wait_for 90 healthy
fi
e2e_log "shoald up in $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-4) s"
# The accelerator verdict records the size of the canary it booted (0: none
# found). In direct mode the build tree is hidden and nothing is under
# /usr/local, so only /usr/share/shoal/canary.elf can be it (instpath.h).
csize=$(stat -c %s /usr/share/shoal/canary.elf)
check "no /usr/local/share/shoal to fall back on" [ ! -e /usr/local/share/shoal/canary.elf ]
check "the canary booted was /usr/share/shoal/canary.elf ($csize bytes: $(cat "$STATE"/shoal-kvm-verdict-* 2>/dev/null))" \
    grep -qs " canary=$csize\." "$STATE"/shoal-kvm-verdict-*

check "shoal image push /usr/share/shoal/images/hello.elf" \
    SHOAL image push /usr/share/shoal/images/hello.elf hello:latest
check "shoal image push /usr/share/shoal/images/exitcode.elf" \
    SHOAL image push /usr/share/shoal/images/exitcode.elf exitcode:latest
out=$(SHOAL run --attach hello -- "hi from the package" 2>&1)
rc=$?
check "shoal run --attach hello: rc $rc, console says hi ('$(tail -n 3 <<<"$out" | tr '\n' ' ')')" \
    bash -c "[ $rc -eq 0 ] && grep -q 'hi from the package' <<<'$out'"
SHOAL run --attach exitcode -- 7 >/dev/null 2>&1
rc=$?
check "shoal run --attach exitcode -- 7 exits 7 (got $rc)" [ "$rc" -eq 7 ]

if [ "$MODE" = systemd ]; then
    # KillMode=process: a stop leaves the guest running, a start adopts it
    SHOAL run --name nap sleep -- 600 >/dev/null 2>&1 ||
        { SHOAL image push /usr/share/shoal/images/sleep.elf sleep:latest >/dev/null && SHOAL run --name nap sleep -- 600 >/dev/null; }
    qpid=$(pgrep -f "qemu-system.*$STATE" | head -n 1)
    check "a sleeping guest runs (QEMU ${qpid:-none})" [ -n "$qpid" ]
    check "systemctl stop shoald" systemctl stop shoald.service
    check "its QEMU outlived the stop" kill -0 "${qpid:-0}"
    check "systemctl start shoald" systemctl start shoald.service
    check "the guest was adopted: nap running, same QEMU" \
        bash -c "[ \"\$(ip netns exec $E2E_NS env SHOAL_URL=http://127.0.0.1:$E2E_PORT SHOAL_STATE_DIR=$STATE /usr/bin/shoal inspect nap | jq -r .state)\" = running ] && kill -0 ${qpid:-0}"
    SHOAL rm -f nap >/dev/null 2>&1
    systemctl stop shoald.service
else
    e2e_stop_daemon 2>/dev/null
    check "shoald stopped on SIGTERM" [ -z "$E2E_PID" ]
fi
[ "$E2E_FAILS" -ne 0 ] && [ -f "$TMP/shoald.log" ] && tail -n 40 "$TMP/shoald.log"

# --- remove, then purge ---
touch /var/lib/shoal/kept
DEBIAN_FRONTEND=noninteractive apt-get remove -y -q shoal >"$TMP/apt.log" 2>&1
check "apt-get remove shoal" [ $? -eq 0 ]
check "shoald is gone" [ ! -e /usr/bin/shoald ]
check "remove keeps /var/lib/shoal" [ -f /var/lib/shoal/kept ]
dpkg --purge shoal >"$TMP/apt.log" 2>&1
check "dpkg --purge shoal" [ $? -eq 0 ]
check "purge deletes /var/lib/shoal" [ ! -e /var/lib/shoal ]
st=$(dpkg-query -W -f='${Status}' shoal 2>/dev/null)
check "dpkg: not installed ('$st')" bash -c "[ -z '$st' ] || [ '$st' = 'unknown ok not-installed' ]"
INSTALLED=0

echo "$E2E_PASSES passed, $E2E_FAILS failed"
[ "$E2E_FAILS" -eq 0 ]
