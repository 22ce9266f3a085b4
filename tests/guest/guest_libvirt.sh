#!/bin/bash
# guest_libvirt.sh - boot hello in the libvirt domain shape of
# docs/guest-protocol.md through the embedded QEMU driver (no libvirtd) and
# check the status channel says "exit code=0". In the same virsh run, a
# warm pool guest (issue 15): hello with shoal.pool=1 and COM1 on a unix
# socket as docs/guest-protocol.md ("Warm pool hand-over") has it, claimed
# over that socket: the app gets the record's env and args.
# create, the wait for the guest's power-off and the teardown run in one
# virsh process: the embedding process must stay alive to tear the VM down.
set -eu
. "$(dirname "$0")/guest_lib.sh"

command -v virsh >/dev/null || { echo "SKIP: no virsh"; exit 77; }
pick_accel
domtype=$([ "$ACCEL_USED" = kvm ] && echo kvm || echo qemu)
name="shoal-guest-test-$$"
root="$WORK/root"
mkdir -p "$root/etc"
# Without virtlogd running, QEMU's output must go to files: qemu.conf's
# stdio_handler defaults to virtlogd (docs/guest-protocol.md, Domain shape).
# QEMU runs as root so it can read the build tree and the private work dir.
printf 'stdio_handler = "file"\nuser = "root"\ngroup = "root"\n' > "$root/etc/qemu.conf"
uri="qemu:///embed?root=$root"

# A guest left behind by a failed run is killed through its pid file
# before guest_lib's cleanup removes the work dir.
libvirt_cleanup() {
    local pidfile
    for pidfile in "$root/run/qemu/$name.pid" "$root/run/qemu/$name-pool.pid"; do
        if [ -f "$pidfile" ]; then
            kill -9 "$(cat "$pidfile")" 2>/dev/null || true
        fi
    done
    cleanup
}
trap libvirt_cleanup EXIT

cat > "$WORK/dom.xml" <<XML
<domain type='$domtype'>
  <name>$name</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <loader type='rom'>/usr/share/qemu/qboot.rom</loader>
    <kernel>$SHOAL_IMAGES/hello.elf</kernel>
    <cmdline>GREETING=hi -- via libvirt</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='file'><source path='$WORK/console.log'/><target port='0'/></serial>
    <serial type='file'><source path='$WORK/status.log'/><target port='1'/></serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
    <panic model='isa'/>
  </devices>
</domain>
XML

# The pool guest: the same shape, COM1 on a unix socket and logged to its
# console file, no configuration.
mkdir -p "$WORK/pool"
sed -e "s|<name>$name</name>|<name>$name-pool</name>|" \
    -e "s|<cmdline>.*</cmdline>|<cmdline>shoal.pool=1</cmdline>|" \
    -e "s|$WORK/status.log|$WORK/pool/status.log|" \
    -e "s|<serial type='file'><source path='$WORK/console.log'/>|<serial type='unix'><source mode='bind' path='$WORK/pool/cfg.sock'/><log file='$WORK/pool/console.log' append='on'/>|" \
    "$WORK/dom.xml" >"$WORK/pool.xml"
printf '%s' 'GREETING="from the pool" -- claimed' >"$WORK/pool/record"
python3 "$(dirname "$0")/pool_claim.py" "$WORK/pool/cfg.sock" "$WORK/pool/status.log" \
    "$WORK/pool/record" --timeout 80 >"$WORK/claim.out" 2>&1 &
claim_pid=$!

# First open probes QEMU capabilities (~8 s); the guests then run ~1 s.
# Each create is followed at once by its event wait (a guest that is done
# before virsh listens is an event missed): the pool guest only after the
# cold one is gone.
set +e
timeout -s KILL 90 virsh -c "$uri" \
    "create $WORK/dom.xml; event --domain $name --event lifecycle --timeout 30; create $WORK/pool.xml; event --domain $name-pool --event lifecycle --timeout 30; destroy $name; destroy $name-pool" \
    >"$WORK/virsh.out" 2>&1
rc=$?
wait "$claim_pid"
claim_rc=$?
set -e
cat "$WORK/virsh.out"
[ "$rc" -ne 137 ] || fail "virsh did not finish within 90 s"
grep -q "Domain '$name' created" "$WORK/virsh.out" || fail "domain not created"
grep -q "Shutdown" "$WORK/virsh.out" || fail "no shutdown event from the guest"
touch "$WORK/console.log" "$WORK/status.log"
expect_console "argv[1]=<via>"
expect_console "argv[2]=<libvirt>"
expect_console "env[0]=<GREETING=hi>"
expect_ready
expect_exit 0
cat "$WORK/claim.out"
[ "$claim_rc" -eq 0 ] || fail "the pool guest was not claimed"
grep -q "Domain '$name-pool' created" "$WORK/virsh.out" || fail "pool domain not created"
touch "$WORK/pool/console.log" "$WORK/pool/status.log"
grep -qxF "argv[1]=<claimed>" "$WORK/pool/console.log" || fail "pool guest: no argv[1]=<claimed>"
grep -qxF "env[0]=<GREETING=from the pool>" "$WORK/pool/console.log" || fail "pool guest: env lost"
grep -qx "shoal-status exit code=0" "$WORK/pool/status.log" || fail "pool guest: no exit code=0"
echo "PASS: libvirt ($domtype), cold and from the pool"
