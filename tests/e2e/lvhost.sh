# lvhost.sh - separate libvirt daemons on this machine, each standing in
# for a remote host (issue 17). Sourced by bash tests and benchmarks.
#
# Each "host" is one libvirtd in its own network namespace and its own
# mount namespace:
#   - network: namespace shoal-lvh-<pid>-<name>, joined to the CLIENT
#     namespace (the one the test runs shoald in, or "" for the caller's
#     own) by a veth pair; the client end is 10.217.<n>.1/30, the daemon's
#     10.217.<n>.2/30. libvirtd listens there with listen_tcp, auth none,
#     so the host is qemu+tcp://10.217.<n>.2/system (LVH_URI_<name>).
#     Nothing listens on loopback or outside namespaces the test made.
#   - mount: /run, /etc/libvirt, /var/lib/libvirt, /var/log/libvirt and
#     /var/cache/libvirt are bind mounts of the host's own directory
#     LVH_DIR/<name>/{run,etc,lib,log,cache}, and /tmp is a fresh tmpfs: the
#     host cannot see the client's state dir or image cache, nor the client
#     its files, except through libvirt (or the test reading LVH_DIR).
#   - /run/lock exists (libvirt's chardev lock files for console streams).
#   - qemu.conf: QEMU as root, stdio_handler "file" (no virtlogd needed).
#     QEMU capabilities are copied from /var/cache/libvirt/qemu when that
#     holds a probe; else the first host probes QEMU at its start (about
#     8 s) and the later ones copy its cache.
#
# usage:
#   . tests/e2e/lvhost.sh
#   lvh_init                        # once; cleanup via lvh_cleanup (trap it)
#   lvh_start NAME N [CLIENT_NS]    # N in 1..250 picks the /30; waits for TCP
#   lvh_uri NAME                    # qemu+tcp://10.217.N.2/system
#   lvh_exec NAME CMD...            # run CMD in the host's namespaces
#   lvh_stop NAME                   # kill its guests and its libvirtd
#   lvh_kill NAME / lvh_restart NAME # its libvirtd alone dies / comes back
#   lvh_cleanup                     # stop every host, remove namespaces, dirs
# A test that sources lib.sh calls lvh_cleanup from its own EXIT trap.
#
# Logs: each libvirtd logs warnings and errors (and its stream and RPC
# modules' debug lines when LVH_DEBUG=1) to LVH_DIR/<name>/log/libvirtd.log,
# its stdout and stderr to LVH_DIR/<name>/libvirtd.out. lvh_cleanup says
# when a libvirtd exited on its own (its status, or the signal that ended
# it: a crash) and, then or when the test failed (E2E_FAILS), prints the
# tail of each host's logs; with LVH_KEEP=DIR it copies them to
# DIR/<name>.* before removing LVH_DIR. LVH_CORE=1 lets a libvirtd lvh_start ran
# dump core (ulimit -c) into LVH_DIR/<name>/cores, copied with the logs.
# Start and stop take about a second each with a seeded capabilities cache.

LVH_DIR=""
LVH_NAMES=""
LVH_CAPS=/var/cache/libvirt/qemu/capabilities # QEMU probes to copy

lvh_log() { printf '[%s] lvh: %s\n' "$(date +%H:%M:%S)" "$*"; }

lvh_init() {
    for t in libvirtd nsenter unshare ip virsh; do
        command -v "$t" >/dev/null || { echo "lvh: missing $t"; return 1; }
    done
    LVH_DIR=$(mktemp -d /tmp/shoal-lvh.XXXXXX)
    LVH_EXITED=""
}

lvh_ns() { printf 'shoal-lvh-%s-%s' "$$" "$1"; }
lvh_addr() { printf '10.217.%s.2' "$(cat "$LVH_DIR/$1/n")"; }
lvh_uri() { printf 'qemu+tcp://%s/system' "$(lvh_addr "$1")"; }

# The host's directory of its /var/lib/libvirt, as the test sees it.
lvh_lib() { printf '%s/%s/lib' "$LVH_DIR" "$1"; }

# Enter NAME's network and mount namespaces (through the daemon's pid).
lvh_exec() {
    name=$1
    shift
    nsenter -t "$(cat "$LVH_DIR/$name/pid")" -n -m -- "$@"
}

# lvh_start NAME N [CLIENT_NS]
lvh_start() {
    name=$1
    n=$2
    cns=${3:-}
    d=$LVH_DIR/$name
    ns=$(lvh_ns "$name")
    veth=lvh$$$n
    veth=${veth:0:13}
    # lib/dnsmasq: where libvirt's network driver keeps its files (Debian's
    # package makes it on a real host)
    mkdir -p "$d"/run/lock "$d"/etc/qemu "$d"/lib/dnsmasq "$d"/log "$d"/cache/qemu
    echo "$n" >"$d/n"
    LVH_NAMES="$LVH_NAMES $name"
    ip netns add "$ns" || return 1
    ip -n "$ns" link set lo up
    if [ -n "$cns" ]; then
        ip link add "${veth}a" netns "$cns" type veth peer name "${veth}b" netns "$ns" || return 1
        ip -n "$cns" addr add "10.217.$n.1/30" dev "${veth}a"
        ip -n "$cns" link set "${veth}a" up
    else
        ip link add "${veth}a" type veth peer name "${veth}b" netns "$ns" || return 1
        ip addr add "10.217.$n.1/30" dev "${veth}a"
        ip link set "${veth}a" up
    fi
    ip -n "$ns" addr add "10.217.$n.2/30" dev "${veth}b"
    ip -n "$ns" link set "${veth}b" up
    cat >"$d/etc/libvirtd.conf" <<CONF
listen_tls = 0
listen_tcp = 1
listen_addr = "10.217.$n.2"
auth_tcp = "none"
auth_unix_rw = "none"
auth_unix_ro = "none"
host_uuid = "$(cat /proc/sys/kernel/random/uuid)"
log_outputs = "$([ "${LVH_DEBUG:-0}" = 1 ] && echo 1 || echo 3):file:/var/log/libvirt/libvirtd.log"
$([ "${LVH_DEBUG:-0}" = 1 ] && echo 'log_filters = "1:stream 1:daemon 1:rpc.netserverclient 1:qemu.qemu_process 3:*"')
CONF
    cat >"$d/etc/qemu.conf" <<CONF
user = "root"
group = "root"
stdio_handler = "file"
CONF
    if [ -n "$(ls "$LVH_CAPS" 2>/dev/null)" ]; then
        cp -a "$LVH_CAPS" "$d/cache/qemu/capabilities" 2>/dev/null
    fi
    # The daemon's own mount namespace: its directories over the system's,
    # a private /tmp. Entered through the network namespace's file.
    mkdir -p "$d/cores"
    # mount points: libvirt-daemon alone (setup-debian.sh) does not make
    # them, libvirt-daemon-system does
    mkdir -p /etc/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt || return 1
    nsenter --net="/run/netns/$ns" unshare -m --propagation private sh -c '
        d=$1
        [ "$2" = 1 ] && ulimit -c unlimited && cd "$d/cores"
        mount --bind "$d/run" /run &&
        mount --bind "$d/etc" /etc/libvirt &&
        mount --bind "$d/lib" /var/lib/libvirt &&
        mount --bind "$d/log" /var/log/libvirt &&
        mount --bind "$d/cache" /var/cache/libvirt &&
        exec 3>"$d/holder" &&
        mount -t tmpfs -o size=64m lvhtmp /tmp || exit 1
        # holds the mount namespace for lvh_restart (a QEMU has one of
        # its own, with libvirt'"'"'s private /dev: no /dev/net/tun there)
        sleep infinity </dev/null >/dev/null 2>&1 &
        echo $! >&3
        exec 3>&-
        exec libvirtd --listen' lvh "$d" "${LVH_CORE:-0}" >"$d/libvirtd.out" 2>&1 &
    echo $! >"$d/pid"
    for _ in $(seq 1 120); do
        if ip netns exec "$ns" ss -Hltn "sport = :16509" 2>/dev/null | grep -q 16509; then
            lvh_log "host $name: libvirtd $(cat "$d/pid") at $(lvh_uri "$name")"
            # No probe to copy: this one probes QEMU now (~8 s) and the
            # hosts started after it copy its cache.
            if [ -z "$(ls "$LVH_CAPS" 2>/dev/null)" ]; then
                lvh_exec "$name" virsh -q -c qemu:///system domcapabilities >/dev/null 2>&1
                cp -a "$d/cache/qemu/capabilities" "$LVH_DIR/caps" 2>/dev/null &&
                    LVH_CAPS=$LVH_DIR/caps
            fi
            return 0
        fi
        kill -0 "$(cat "$d/pid")" 2>/dev/null || break
        sleep 0.1
    done
    lvh_log "host $name: libvirtd did not listen:"
    cat "$d/libvirtd.out"
    return 1
}

# lvh_kill NAME: SIGKILL the host's libvirtd alone, as a crash would; its
# guests' QEMUs keep running.
lvh_kill() {
    pid=$(cat "$LVH_DIR/$1/pid")
    echo "$pid" >>"$LVH_DIR/$1/killed"
    kill -9 "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    return 1
}

# lvh_restart NAME: libvirtd again, after lvh_kill, in the host's
# namespaces (entered through a process lvh_start left there to hold its
# mount namespace); it adopts the guests still running. Waits for TCP,
# like lvh_start.
lvh_restart() {
    name=$1
    d=$LVH_DIR/$name
    ns=$(lvh_ns "$name")
    p=$(cat "$d/holder" 2>/dev/null)
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null || { lvh_log "host $name: no process left to enter"; return 1; }
    nsenter -t "$p" -n -m -- libvirtd --listen >>"$d/libvirtd.out" 2>&1 &
    echo $! >"$d/pid"
    for _ in $(seq 1 100); do
        ip netns exec "$ns" ss -Hltn "sport = :16509" 2>/dev/null | grep -q 16509 && return 0
        kill -0 "$(cat "$d/pid")" 2>/dev/null || break
        sleep 0.1
    done
    lvh_log "host $name: libvirtd did not come back:"
    tail -5 "$d/libvirtd.out"
    return 1
}

# Kill the host's guests (every process in its network namespace but
# libvirtd, which then tidies up after them), then libvirtd.
lvh_stop() {
    name=$1
    d=$LVH_DIR/$name
    ns=$(lvh_ns "$name")
    pid=$(cat "$d/pid" 2>/dev/null)
    lvh_exited "$name"
    if [ -n "$pid" ]; then
        for p in $(ip netns pids "$ns" 2>/dev/null); do
            [ "$p" = "$pid" ] || kill -9 "$p" 2>/dev/null
        done
        sleep 0.2
        kill "$pid" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
        rm -f "$d/pid"
    fi
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
    return 0
}

# lvh_exited NAME: if NAME's libvirtd is gone and no lvh_kill ended it,
# say how it ended (its exit status, 128+N for signal N) and remember it.
# Its pid is this shell's child (lvh_start and lvh_restart run it so).
lvh_exited() {
    pid=$(cat "$LVH_DIR/$1/pid" 2>/dev/null)
    [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null || return 0
    grep -qx "$pid" "$LVH_DIR/$1/killed" 2>/dev/null && return 0
    st=0
    wait "$pid" 2>/dev/null || st=$?
    lvh_log "host $1: libvirtd $pid EXITED on its own (status $st$([ "$st" -gt 128 ] && echo ", signal $((st - 128))"))"
    LVH_EXITED="$LVH_EXITED $1"
    echo "$pid" >>"$LVH_DIR/$1/killed" # said once
}

# The tail of NAME's logs (and its core files' names).
lvh_tail() {
    d=$LVH_DIR/$1
    echo "---- host $1: libvirtd.log (last 40 lines) ----"
    tail -n 40 "$d/log/libvirtd.log" 2>/dev/null
    echo "---- host $1: libvirtd.out (last 20 lines) ----"
    tail -n 20 "$d/libvirtd.out" 2>/dev/null
    ls "$d/cores" 2>/dev/null | sed "s|^|---- host $1: core file |"
}

lvh_cleanup() {
    [ -n "$LVH_DIR" ] || return 0
    for name in $LVH_NAMES; do lvh_stop "$name"; done
    sleep 0.2
    for name in $LVH_NAMES; do
        if [ "${E2E_FAILS:-0}" != 0 ] || [ -n "$LVH_EXITED" ]; then lvh_tail "$name"; fi
        if [ -n "${LVH_KEEP:-}" ] && mkdir -p "$LVH_KEEP"; then
            cp "$LVH_DIR/$name/log/libvirtd.log" "$LVH_KEEP/$name.libvirtd.log" 2>/dev/null
            cp "$LVH_DIR/$name/libvirtd.out" "$LVH_KEEP/$name.libvirtd.out" 2>/dev/null
            cp -r "$LVH_DIR/$name/cores" "$LVH_KEEP/$name.cores" 2>/dev/null
        fi
    done
    rm -rf "$LVH_DIR"
    LVH_DIR=""
    LVH_NAMES=""
}
