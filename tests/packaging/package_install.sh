#!/bin/bash
# The Debian package, end to end (issue 18): cpack builds it from this
# build, `apt-get install` puts it on this machine, the installed shoald
# runs reference guests through the installed `shoal`, then `apt-get
# remove` keeps /var/lib/shoal and `dpkg --purge` deletes it.
#
# usage: package_install.sh BUILD_DIR
# shoald runs from the installed shoald.service, under systemd:
#   - where systemd is PID 1: that systemd, with a drop-in giving the unit
#     this test's state dir, port and network namespace;
#   - elsewhere (these machines: no init system): a systemd of the test's
#     own, PID 1 of new PID, mount, network, UTS and IPC namespaces, that
#     knows only the installed unit and stub targets (SYSTEMD_UNIT_PATH):
#     nothing else of the machine's runs (boot_systemd below);
#   - where no systemd can run, shoald by hand under the unit's file-system
#     sandbox emulated (sandbox below).
# Under systemd: `systemctl start` returns once READY=1 came, a stop with a
# guest running leaves its QEMU alive and the next start adopts it
# (KillMode=process), a SIGKILL of shoald brings it back with the guest
# (Restart=on-failure). The build tree is hidden from shoald: it must find
# its canary and helpers under /usr.
#
# Everything stays apart from a shoald someone runs here: its own network
# namespace (bridge, taps, port), its own state dir where the machine's
# systemd runs it. The package is purged on exit whatever happens. Exit 77
# when dpkg cannot be used for it: not root, no dpkg/apt, a shoal package
# already installed, or a /var/lib/shoal that the purge would delete.
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
    mkdir -p /run/libvirt # (the mount point of RuntimeDirectory= below)
    # ProtectSystem=strict: every mount read-only but /dev, /proc, /sys.
    mount -o remount,bind,ro / || { echo "sandbox: cannot make / read-only" >&2; exit 1; }
    awk '{print $5}' /proc/self/mountinfo | sort -u | while read -r mp; do
        case $mp in / | /dev | /dev/* | /proc | /proc/* | /sys | /sys/*) continue ;; esac
        mount -o remount,bind,ro "$mp" 2>/dev/null
    done
    # StateDirectory= (ReadWritePaths=) keeps the state dir writable.
    mount --bind "$state" "$state" && mount -o remount,bind,rw "$state" || exit 1
    # RuntimeDirectory=libvirt: writable (fresh here, as on a new machine)
    mount -t tmpfs -o mode=755 tmpfs /run/libvirt || exit 1
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

# boot_systemd HIDE: become PID 1 systemd in the namespaces `unshare` made,
# loading units only from a private directory: a copy of the installed
# shoald.service and empty stand-ins for the targets it names (so neither
# udev, journald, tmpfiles nor sysctl of the machine's units start).
boot_systemd() {
    hide=$1
    u=/run/shoal-pkgtest-units
    mount -t tmpfs -o mode=000 tmpfs "$hide" || exit 1
    mount -t tmpfs tmpfs /run && mount -t tmpfs -o mode=1777 tmpfs /tmp || exit 1
    mkdir -p "$u" /run/systemd
    cp /lib/systemd/system/shoald.service "$u/" || exit 1
    for t in shoal-pkgtest sysinit basic shutdown network-online nss-lookup multi-user; do
        printf '[Unit]\nDescription=%s (packaging test stand-in)\nDefaultDependencies=no\n' "$t" >"$u/$t.target"
    done
    printf '[Unit]\nDescription=System Slice\nDefaultDependencies=no\n' >"$u/system.slice"
    # no journald here: shoald's log to a file the test prints on failure
    mkdir -p "$u/shoald.service.d"
    printf '[Service]\nStandardOutput=append:/run/shoald.log\nStandardError=append:/run/shoald.log\n' \
        >"$u/shoald.service.d/log.conf"
    ip link set lo up
    export container=shoal-pkgtest SYSTEMD_UNIT_PATH=$u
    exec /lib/systemd/systemd --system --unit=shoal-pkgtest.target --log-target=console --log-level=notice
}
case "${1:-}" in
--sandbox) shift; sandbox "$@" ;;
--boot-systemd) shift; boot_systemd "$@" ;;
esac

BUILD=$(cd "${1:?usage: package_install.sh BUILD_DIR}" && pwd)
skip() { echo "SKIP: $*"; exit 77; }
# SHOAL_PKGTEST_MODE=direct|nssystemd forces a way (to try the fallbacks)
if [ -n "${SHOAL_PKGTEST_MODE:-}" ]; then
    MODE=$SHOAL_PKGTEST_MODE
elif [ "$(ps -p 1 -o comm= 2>/dev/null)" = systemd ] && [ -d /run/systemd/system ]; then
    MODE=systemd # the machine's
elif [ -x /lib/systemd/systemd ] && command -v nsenter >/dev/null; then
    MODE=nssystemd
else
    MODE=direct
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
SDPID=""   # nssystemd: the test's systemd (PID 1 of its namespaces)
UNSHARE_PID=""
if [ "$MODE" = nssystemd ]; then
    STATE=/var/lib/shoal # the unit as shipped, in namespaces of its own
    E2E_PORT=7878
fi
TMP=$(mktemp -d /tmp/shoal-pkg.XXXXXX)
INSTALLED=0
DROPIN=/run/systemd/system/shoald.service.d
# man-db's trigger rebuilds its index on every install and removal (~8 s
# each here); the test turns it off while it runs and back on at exit.
MANDB_FLAG=/var/lib/man-db/auto-update
MANDB_OFF=0

cleanup() {
    set +e
    if [ -n "$SDPID" ]; then
        # PID 1 of the namespace: its end ends shoald, QEMUs, dnsmasq in it
        kill -9 "$SDPID" 2>/dev/null
        wait "$UNSHARE_PID" 2>/dev/null
        # the (empty) cgroups that systemd made for itself and the unit
        for h in /sys/fs/cgroup/*/; do
            for d in "$h"system.slice/shoald.service "$h"system.slice "$h"init.scope; do
                [ -d "$d" ] && [ "$d" -nt "$TMP/cgroup-stamp" ] && rmdir "$d" 2>/dev/null
            done
        done
    fi
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
[ "$MODE" = nssystemd ] || mkdir -p "$STATE"
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
# IN CMD...: run CMD where shoald's network (and, nssystemd, its systemd) is
IN() { ip netns exec "$E2E_NS" "$@"; }
[ "$MODE" = nssystemd ] && IN() { nsenter -t "$SDPID" -m -p -n "$@"; }
SHOAL() { IN env SHOAL_URL="http://127.0.0.1:$E2E_PORT" SHOAL_STATE_DIR="$STATE" /usr/bin/shoal "$@"; }
SYSTEMCTL() { if [ "$MODE" = nssystemd ]; then IN systemctl "$@"; else systemctl "$@"; fi; }
healthy() { IN curl -fsS "http://127.0.0.1:$E2E_PORT/healthz" >/dev/null 2>&1; }
e2e_log "shoald runs under: $MODE"
if [ "$MODE" = nssystemd ]; then
    touch "$TMP/cgroup-stamp"
    sleep 0.01
    unshare --mount --pid --fork --mount-proc --uts --ipc --net --propagation private -- \
        bash "$HERE/package_install.sh" --boot-systemd "$BUILD" >"$TMP/systemd.log" 2>&1 &
    UNSHARE_PID=$!
    for _ in $(seq 1 100); do
        SDPID=$(pgrep -P "$UNSHARE_PID" | head -n 1)
        [ -n "$SDPID" ] && [ "$(IN systemctl is-system-running 2>/dev/null)" = running ] && break
        sleep 0.1
    done
    check "a systemd of the test's own runs (pid ${SDPID:-none})" \
        bash -c "[ \"\$(nsenter -t ${SDPID:-0} -m -p -n systemctl is-system-running 2>&1)\" = running ]"
    [ -n "$SDPID" ] || { cat "$TMP/systemd.log"; exit 1; }
fi
if [ "$MODE" != direct ]; then
    if [ "$MODE" = systemd ]; then
        mkdir -p "$DROPIN"
        cat >"$DROPIN/test.conf" <<EOT
[Service]
ExecStart=
ExecStart=/usr/bin/shoald --state-dir $STATE --listen 127.0.0.1:$E2E_PORT
ReadWritePaths=$STATE
NetworkNamespacePath=/run/netns/$E2E_NS
TemporaryFileSystem=$BUILD
EOT
        systemctl daemon-reload
    fi
    t0=$(date +%s.%N)
    if ! SYSTEMCTL start shoald.service; then
        e2e_fail "systemctl start shoald"
        SYSTEMCTL status shoald.service --no-pager -n 0
        if [ "$MODE" = nssystemd ]; then IN tail -n 40 /run/shoald.log; else journalctl -u shoald.service -n 40 --no-pager; fi
        exit 1
    fi
    e2e_pass "systemctl start shoald"
    # Type=notify: start returned after READY=1, so the API answers now
    check "active, and the API answers at once" healthy
    st=$(SYSTEMCTL show -p StatusText --value shoald.service)
    check "its status (STATUS=): '$st'" grep -q "serving the API" <<<"$st"
    host_up() { SHOAL hosts 2>/dev/null | grep -q '^local *up'; }
    check "the local host comes up (/run/libvirt writable: RuntimeDirectory=)" wait_for 60 host_up
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
# the guest network through the service: bridge, tap, nftables, DHCP
# server, a published port
check "shoald's dnsmasq (DHCP) runs" pgrep -f "dnsmasq.*--dhcp-hostsfile=$STATE/dhcp/hosts"
SHOAL image push /usr/share/shoal/images/httpd.elf httpd:latest >/dev/null
SHOAL run --name web -p 8080:80 httpd >/dev/null
web_answers() { IN curl -fsS -m 2 http://127.0.0.1:8080/healthz >/dev/null 2>&1; }
check "the httpd guest answers on its published port 8080" wait_for 30 web_answers
SHOAL rm -f web >/dev/null 2>&1

if [ "$MODE" != direct ]; then
    # KillMode=process: a stop leaves the guest running, a start adopts it
    SHOAL image push /usr/share/shoal/images/sleep.elf sleep:latest >/dev/null
    SHOAL run --name nap sleep -- 600 >/dev/null
    nap_running() { [ "$(SHOAL inspect nap 2>/dev/null | jq -r .state)" = running ]; }
    wait_for 30 nap_running
    qpid=$(pgrep -f "qemu-system.*guest=shoal-.*$STATE" | head -n 1)
    check "a sleeping guest runs (QEMU ${qpid:-none})" [ -n "$qpid" ]
    check "systemctl stop shoald" SYSTEMCTL stop shoald.service
    check "its QEMU outlived the stop" kill -0 "${qpid:-0}"
    if ! SYSTEMCTL start shoald.service; then
        e2e_fail "systemctl start shoald"
        SYSTEMCTL status shoald.service --no-pager -n 0
        if [ "$MODE" = nssystemd ]; then IN tail -n 40 /run/shoald.log; else journalctl -u shoald.service -n 40 --no-pager; fi
        exit 1
    fi
    e2e_pass "systemctl start shoald"
    nap_adopted() { nap_running && kill -0 "${qpid:-0}"; }
    check "the guest was adopted: nap running, same QEMU" wait_for 30 nap_adopted
    mpid=$(SYSTEMCTL show -p MainPID --value shoald.service)
    case $mpid in
    '' | 0 | *[!0-9]*) e2e_fail "no main pid to kill ('$mpid')" ;; # kill 0: this test's group
    *) if [ "$MODE" = nssystemd ]; then IN kill -9 "$mpid"; else kill -9 "$mpid"; fi ;;
    esac
    restarted() { [ "$(SYSTEMCTL show -p NRestarts --value shoald.service)" -ge 1 ] && healthy; }
    check "SIGKILL of shoald: systemd restarts it (Restart=on-failure)" wait_for 30 restarted
    check "the guest was adopted again" wait_for 30 nap_adopted
    SHOAL rm -f nap >/dev/null 2>&1
    SYSTEMCTL stop shoald.service
else
    e2e_stop_daemon 2>/dev/null
    check "shoald stopped on SIGTERM" [ -z "$E2E_PID" ]
fi
if [ "$E2E_FAILS" -ne 0 ]; then
    [ -f "$TMP/shoald.log" ] && tail -n 40 "$TMP/shoald.log"
    [ "$MODE" = nssystemd ] && IN tail -n 40 /run/shoald.log
    [ "$MODE" = systemd ] && journalctl -u shoald.service -n 40 --no-pager
fi

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
