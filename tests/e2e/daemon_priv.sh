#!/bin/bash
# End to end (issue 16, guest privileges): what a guest's QEMU may do,
# checked from outside on a running shoald.
#  - QEMU runs as shoald's QEMU user (--qemu-user, default shoal-qemu):
#    /proc/PID/status shows its uid, no effective capabilities
#    (CapEff 0), seccomp filtering (Seccomp 2), no_new_privs; libvirt no
#    longer logs "tainted: high-privileges";
#  - its cgroup limits memory (RAM + 256 MiB) and CPU (vCPUs + 50 %);
#  - a secret in env or args is on no command line: not in
#    /proc/PID/cmdline (read as an unprivileged user too), not in `ps`,
#    not in libvirt's QEMU log; the guest still sees it (hello prints its
#    environment and arguments) and exits 0; the fw_cfg file that carried
#    it is gone once the domain is created;
#  - the image cache is root:<QEMU's group> 0750 (an unprivileged user can
#    neither list it nor read a kernel in it); the embed root is 0710;
#  - a disk image boots from its overlay, which belongs to QEMU's user
#    (mode 0600), and writes to it;
#  - deleting an instance removes libvirt's QEMU log of its domain.
# usage: daemon_priv.sh SHOALD IMAGES_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
. "$(dirname "$0")/lib.sh"

for f in "$SHOALD" "$IMAGES/hello.elf" "$IMAGES/sleep.elf" "$IMAGES/foreign_disk.img"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
QUSER=shoal-qemu
if ! getent passwd "$QUSER" >/dev/null; then
    echo "FAIL: no user $QUSER (scripts/setup-debian.sh creates it)"
    exit 1
fi
QUID=$(id -u "$QUSER")
QGID=$(id -g "$QUSER")
command -v setpriv >/dev/null || { echo "FAIL: no setpriv (util-linux)"; exit 1; }
# as_nobody CMD...: run CMD as an unprivileged local user.
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

e2e_setup
# `ip netns exec` mounts a fresh /sys without the cgroup hierarchies, so
# libvirt would find no controller (shoald then sets no limit and says so
# in its log). This shoald gets the host's hierarchies mounted again, in
# the mount namespace `ip netns exec` made for it only.
WRAP="$E2E_STATE/shoald-cgroups.sh"
if grep -q ' /sys/fs/cgroup cgroup2 ' /proc/self/mounts; then
    MOUNTS='mount -t cgroup2 none /sys/fs/cgroup'
else
    MOUNTS='mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup &&
for c in cpu cpuacct cpuset memory devices freezer blkio pids; do
    grep -q "^cgroup /sys/fs/cgroup/$c cgroup" /proc/1/mounts || continue
    mkdir -p /sys/fs/cgroup/$c && mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c
done'
fi
cat >"$WRAP" <<WRAPEOF
#!/bin/sh
grep -q ' cgroup' /proc/self/mounts || { $MOUNTS; } || exit 1
exec "$SHOALD" "\$@"
WRAPEOF
chmod 0700 "$WRAP"
e2e_start_daemon "$WRAP" --no-network || exit 1
check "shoald names QEMU's user and both cgroup limits" \
    grep -q "QEMU runs as $QUSER (uid $QUID, gid $QGID), no capabilities, seccomp; cgroup limits per guest: memory, cpu" "$E2E_STATE/shoald.log"
e2e_push_images hello sleep
api POST "/v1/images?ref=disk:latest" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$IMAGES/foreign_disk.img"
check "push disk (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]

# run JSON: create one instance; its id in ID.
run() {
    api POST /v1/instances -H 'Content-Type: application/json' -d "$1"
    check "create (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
    ID=$(printf '%s' "$BODY" | jq -r '.items[0].id')
}
# qemu_pid ID: the pid of instance ID's QEMU.
qemu_pid() { pgrep -f "qemu-system.*guest=shoal-$1" | head -n 1; }
status_field() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
SECRET="pw-$$-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
ARGSECRET="arg-$$-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

# --- a running guest's QEMU, from outside
run "{\"image\":\"sleep\",\"name\":\"s1\",\"args\":[\"100000\",\"$ARGSECRET\"],\"env\":{\"DB_PASSWORD\":\"$SECRET\"}}"
S1=$ID
check "s1 running" wait_for 60 inst_state_is "$S1" running
PID=$(qemu_pid "$S1")
check "s1 has a QEMU" [ -n "$PID" ]
if [ -n "$PID" ]; then
    e2e_log "QEMU $PID: Uid $(status_field "$PID" Uid | head -c 12) CapEff $(status_field "$PID" CapEff) CapPrm $(status_field "$PID" CapPrm) Seccomp $(status_field "$PID" Seccomp) NoNewPrivs $(status_field "$PID" NoNewPrivs)"
    check "QEMU runs as $QUSER (uid $QUID)" [ "$(awk '$1 == "Uid:" { print $2 $3 $4 $5 }' "/proc/$PID/status")" = "$QUID$QUID$QUID$QUID" ]
    check "QEMU's group is $QUSER's ($QGID)" [ "$(awk '$1 == "Gid:" { print $2 }' "/proc/$PID/status")" = "$QGID" ]
    check "QEMU has no effective capabilities" [ "$(status_field "$PID" CapEff)" = 0000000000000000 ]
    check "QEMU has no permitted capabilities" [ "$(status_field "$PID" CapPrm)" = 0000000000000000 ]
    check "QEMU's seccomp filter is on (Seccomp 2)" [ "$(status_field "$PID" Seccomp)" = 2 ]
    check "QEMU has no_new_privs" [ "$(status_field "$PID" NoNewPrivs)" = 1 ]
    check "the secret is not in QEMU's /proc/PID/cmdline" \
        eval '! tr "\0" " " <"/proc/$PID/cmdline" | grep -qF -- "$SECRET"'
    check "the secret argument is not in QEMU's /proc/PID/cmdline" \
        eval '! tr "\0" " " <"/proc/$PID/cmdline" | grep -qF -- "$ARGSECRET"'
    # (the second grep's own arguments hold the secrets, not "qemu-system")
    check "an unprivileged user's ps shows neither on a QEMU line" \
        eval '! as_nobody ps -eo args | grep qemu-system | grep -qE -- "$SECRET|$ARGSECRET"'
    check "the QEMU command line names the fw_cfg record by path only" \
        eval 'tr "\0" " " <"/proc/$PID/cmdline" | grep -qF "name=opt/org.shoal/cmdline,file="'
    mcg=$(awk -F: '$2 == "memory" { print $3 }' "/proc/$PID/cgroup")
    if [ -n "$mcg" ] && [ -r "/sys/fs/cgroup/memory$mcg/memory.limit_in_bytes" ]; then
        check "memory cgroup limit is 32 + 256 MiB" \
            [ "$(cat "/sys/fs/cgroup/memory$mcg/memory.limit_in_bytes")" = $(((32 + 256) * 1048576)) ]
    else
        e2e_log "note: no cgroup v1 memory controller for $PID; limit not checked"
    fi
    ccg=$(awk -F: '$2 == "cpu" || $2 == "cpu,cpuacct" { print $3 }' "/proc/$PID/cgroup")
    ccg=${ccg%/emulator}
    if [ -n "$ccg" ] && [ -r "/sys/fs/cgroup/cpu$ccg/cpu.cfs_quota_us" ]; then
        check "CPU quota is 150 % (1 vCPU + 50 %)" \
            [ "$(cat "/sys/fs/cgroup/cpu$ccg/cpu.cfs_quota_us")" = 150000 ]
    else
        e2e_log "note: no cgroup v1 cpu controller for $PID; quota not checked"
    fi
fi
LOG="$E2E_STATE/libvirt/log/qemu/shoal-$S1.log"
check "libvirt's QEMU log of s1 exists" [ -f "$LOG" ]
check "the QEMU log holds neither secret" eval '! grep -qE -- "$SECRET|$ARGSECRET" "$LOG"'
check "libvirt no longer taints the domain high-privileges" eval '! grep -q "high-privileges" "$LOG"'
check "no fw_cfg record file is left" eval '[ -z "$(ls -A "$E2E_STATE/guestcfg" 2>/dev/null)" ]'

# --- modes of what QEMU reads
CACHE="$E2E_STATE/images.db.cache"
check "image cache is root:$QGID 0750" [ "$(stat -c '%u:%g %a' "$CACHE")" = "0:$QGID 750" ]
KFILE=$(ls "$CACHE"/*.elf | head -n 1)
check "a kernel is in the cache" [ -n "$KFILE" ]
check "an unprivileged user cannot list the image cache" eval '! as_nobody ls "$CACHE" >/dev/null 2>&1'
check "an unprivileged user cannot read a cached kernel" eval '! as_nobody cat "$KFILE" >/dev/null 2>&1'
check "QEMU's user can read a cached kernel" \
    eval 'setpriv --reuid=$QUID --regid=$QGID --init-groups cat "$KFILE" >/dev/null'
check "the cached kernel still belongs to root" [ "$(stat -c %u "$KFILE")" = 0 ]
check "embed root is root:$QGID 0710" [ "$(stat -c '%u:%g %a' "$E2E_STATE/libvirt")" = "0:$QGID 710" ]
check "qemu.conf names QEMU's user" grep -qx "user = \"+$QUID\"" "$E2E_STATE/libvirt/etc/qemu.conf"

# --- the guest still sees its environment and arguments, and exits 0
run "{\"image\":\"hello\",\"name\":\"h1\",\"args\":[\"$ARGSECRET\",\"two words\"],\"env\":{\"DB_PASSWORD\":\"$SECRET\",\"MODE\":\"a \\\"quoted\\\" value\"}}"
H1=$ID
check "h1 exited" wait_for 60 inst_state_is "$H1" exited
check "h1 exit code 0" [ "$(inst_field "$H1" .exit_code)" = 0 ]
api GET "/v1/instances/$H1/console"
CON=$BODY
check "h1 sees DB_PASSWORD" eval 'printf "%s" "$CON" | grep -qxF "env[0]=<DB_PASSWORD=$SECRET>"'
check "h1 sees MODE with its quotes" eval 'printf "%s" "$CON" | grep -qxF "env[1]=<MODE=a \"quoted\" value>"'
check "h1 sees its arguments" \
    eval 'printf "%s" "$CON" | grep -qxF "argv[1]=<$ARGSECRET>" && printf "%s" "$CON" | grep -qxF "argv[2]=<two words>"'
check "h1's QEMU log holds no secret" \
    eval '! grep -qE -- "$SECRET|$ARGSECRET" "$E2E_STATE/libvirt/log/qemu/shoal-$H1.log"'

# --- a disk image: its overlay is QEMU's user's, and QEMU writes it
run '{"image":"disk","name":"d1"}'
D1=$ID
check "d1 exited" wait_for 60 inst_state_is "$D1" exited
OVL="$E2E_STATE/disks/$D1.qcow2"
check "d1's overlay belongs to $QUSER, 0600" [ "$(stat -c '%u:%g %a' "$OVL" 2>/dev/null)" = "$QUID:$QGID 600" ]
check "d1's console has its line" eval 'api GET "/v1/instances/$D1/console"; printf "%s" "$BODY" | grep -q .'

# --- delete: libvirt's per-domain QEMU log goes with the instance
api DELETE "/v1/instances/$H1"
check "delete h1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
check "h1's QEMU log is removed" wait_for 10 eval '[ ! -e "$E2E_STATE/libvirt/log/qemu/shoal-$H1.log" ]'
api DELETE "/v1/instances/$S1?force=true"
check "delete s1, forced (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
check "s1's QEMU log is removed" wait_for 20 eval '[ ! -e "$LOG" ]'
check "s1's QEMU is gone" wait_for 20 eval '[ -z "$(qemu_pid "$S1")" ]'

e2e_finish
