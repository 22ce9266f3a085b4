# lvdlocal.sh - a private libvirt daemon of this machine (qemu:///system
# reached through its own unix socket, no TCP), for tests that need a
# second real host sharing the file system with shoald. Sourced by bash
# tests after lib.sh.
#
#   lvd_init      temp dir LVD, socket SOCK, libvirtd.conf. Call after
#                 e2e_setup.
#   lvd_start     start libvirtd with the machine's state dirs; waits for
#                 its socket. Starts virtlogd first when none runs
#                 (libvirtd's QEMU driver hands guest output to it).
#   lvd_stop      stop it (guests keep running)
#   lvd_start_private NAME NETNS
#                 such a host that runs beside others of this machine
#                 (another test's, a third host): a libvirtd in the
#                 network namespace NETNS and a mount namespace of its own,
#                 where /run/libvirt, /etc/libvirt, /var/lib/libvirt,
#                 /var/log/libvirt and /var/cache/libvirt are directories
#                 under LVD/NAME (two libvirtds cannot share the QEMU
#                 driver's state dirs; /tmp and the rest stay shared, so
#                 shoald's files reach its guests). Its socket:
#                 LVD/NAME/sock/libvirt-sock. Stopped by lvd_cleanup.
#   lvd_cleanup   e2e_cleanup, then stop libvirtd and virtlogd, remove the
#                 QEMU logs lvd_start's libvirtd wrote for this test's
#                 guests and LVD: the test's EXIT trap.
# Only lvd_start touches the machine's libvirt dirs (and virtlogd): a test
# that uses it alone may run beside other end-to-end tests, whose
# lvd_start_private daemons neither start virtlogd nor remove these logs.
# shoald reaches it as qemu:///system?socket=$SOCK, which it allows only
# with --host-uri-allow 'qemu?socket' (daemon/hosturi.h).

LVD=""
SOCK=""
LVD_PID=""
VLOGD_PID=""
QLOGS_BEFORE=""
QLOGS_MINE=0 # lvd_start ran: the new /var/log/libvirt/qemu logs are ours
LVD_PRIVATE_PIDS=""

lvd_cleanup() {
    set +e
    e2e_cleanup
    [ -n "$LVD_PID" ] && kill "$LVD_PID" 2>/dev/null && wait "$LVD_PID" 2>/dev/null
    for p in $LVD_PRIVATE_PIDS; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    [ -n "$VLOGD_PID" ] && kill "$VLOGD_PID" 2>/dev/null && wait "$VLOGD_PID" 2>/dev/null
    # the QEMU logs of this test's guests (names carry shoald's ids/pids)
    if [ "$QLOGS_MINE" = 1 ]; then
        for f in /var/log/libvirt/qemu/shoal-*.log; do
            [ -e "$f" ] || continue
            grep -qxF "$f" <<<"$QLOGS_BEFORE" || rm -f "$f"
        done
    fi
    [ -n "$LVD" ] && rm -rf "$LVD"
}

lvd_init() {
    command -v libvirtd >/dev/null || { echo "FAIL: no libvirtd (scripts/setup-debian.sh installs libvirt-daemon)"; return 1; }
    command -v virtlogd >/dev/null || { echo "FAIL: no virtlogd"; return 1; }
    LVD=$(mktemp -d /tmp/shoal-lvd.XXXXXX)
    SOCK=$LVD/sock/libvirt-sock
    mkdir -p "$LVD/sock"
    cat >"$LVD/libvirtd.conf" <<CONF
unix_sock_dir = "$LVD/sock"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:$LVD/libvirtd.log"
CONF
}

lvd_start() {
    if [ "$QLOGS_MINE" = 0 ]; then
        QLOGS_BEFORE=$(ls /var/log/libvirt/qemu/shoal-*.log 2>/dev/null || true)
        QLOGS_MINE=1
    fi
    if [ ! -S /run/libvirt/virtlogd-sock ]; then
        virtlogd >"$LVD/virtlogd.out" 2>&1 &
        VLOGD_PID=$!
        wait_for 10 test -S /run/libvirt/virtlogd-sock || { e2e_fail "virtlogd did not start"; return 1; }
    fi
    libvirtd --config "$LVD/libvirtd.conf" --pid-file "$LVD/libvirtd.pid" >>"$LVD/libvirtd.out" 2>&1 &
    LVD_PID=$!
    wait_for 30 test -S "$SOCK"
}

lvd_stop() {
    kill "$LVD_PID" 2>/dev/null
    wait "$LVD_PID" 2>/dev/null
    LVD_PID=""
    rm -f "$SOCK"
}

# lvd_start_private NAME NETNS: see the top; waits for its socket (30 s).
lvd_start_private() {
    local name=$1 ns=$2 d=$LVD/$1
    mkdir -p "$d"/run "$d"/etc "$d"/lib "$d"/log "$d"/cache/qemu "$d"/sock
    cat >"$d/libvirtd.conf" <<CONF
unix_sock_dir = "$d/sock"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:$d/libvirtd.log"
CONF
    # no virtlogd behind a private /run/libvirt: QEMU writes its own log.
    # QEMU's user stays the default, as the other daemons': libvirt
    # remembers a file's owner in its xattrs and refuses a guest whose
    # daemon would set another one on a file in use (the image)
    echo 'stdio_handler = "file"' >"$d/etc/qemu.conf"
    cp -a /var/cache/libvirt/qemu/capabilities "$d/cache/qemu/" 2>/dev/null || true
    # nsenter, not ip netns exec (which mounts a fresh /sys without the
    # cgroup controllers libvirtd needs for the guests' CPU limits)
    nsenter --net="/run/netns/$ns" unshare -m --propagation private sh -c '
        d=$1
        mount --bind "$d/run" /run/libvirt &&
        mount --bind "$d/etc" /etc/libvirt &&
        mount --bind "$d/lib" /var/lib/libvirt &&
        mount --bind "$d/log" /var/log/libvirt &&
        mount --bind "$d/cache" /var/cache/libvirt &&
        exec libvirtd --config "$d/libvirtd.conf" --pid-file "$d/libvirtd.pid"' lvd "$d" \
        >>"$d/libvirtd.out" 2>&1 &
    LVD_PRIVATE_PIDS="$LVD_PRIVATE_PIDS $!"
    wait_for 30 test -S "$d/sock/libvirt-sock"
}
