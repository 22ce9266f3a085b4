#!/bin/bash
# End to end (issue 14): images of other toolchains' conventions through
# shoald with their default boot profiles (docs/node.md "Boot profiles"),
# next to the reference guest: the firmware each gets (qboot for the
# reference guest, SeaBIOS for the foreign kinds), on the QEMU command line
# libvirt ran; the command line each preset builds, exactly as the test
# kernels print it (foreign_solo5 prints its line verbatim after QEMU's
# Multiboot file name, foreign_unikraft its whole PVH line); and how their
# runs end: a clean power-off without shoal's status channel is `exited`,
# code unknown (null), which `on-failure` leaves be; a disk image booted
# from a per-instance overlay that goes with the instance. Test kernels:
# guest-kernel/foreign.
# usage: daemon_foreign.sh SHOALD IMAGES_DIR
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
. "$(dirname "$0")/lib.sh"

for f in "$SHOALD" "$IMAGES/hello.elf" "$IMAGES/foreign_solo5.elf" "$IMAGES/foreign_unikraft.elf" \
    "$IMAGES/foreign_disk.img"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
e2e_setup
e2e_start_daemon "$SHOALD" || exit 1

# push FILE REF: upload one image, check 201.
push() {
    api POST "/v1/images?ref=$2" -H 'Content-Type: application/octet-stream' --data-binary "@$1"
    check "push $2 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
}

# run JSON: create one instance; its id in ID.
run() {
    api POST /v1/instances -H 'Content-Type: application/json' -d "$1"
    check "create $1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
    ID=$(printf '%s' "$BODY" | jq -r '.items[0].id')
}

# The QEMU command line libvirt ran for instance $1: its domain log, where
# libvirt writes one option a line.
qemu_cmdline() { cat "$E2E_STATE/libvirt/log/qemu/shoal-$1.log" 2>/dev/null; }

# The console of instance $1.
console() {
    api GET "/v1/instances/$1/console"
    printf '%s' "$BODY"
}

push "$IMAGES/hello.elf" hello:latest
push "$IMAGES/foreign_solo5.elf" solo5:latest
push "$IMAGES/foreign_unikraft.elf" unikraft:latest
for k in solo5 unikraft; do
    api GET "/v1/images/$k"
    check "$k: kind $k, firmware seabios, cmdline $k" \
        [ "$(printf '%s' "$BODY" | jq -r '[.kind, .profile.firmware, .profile.cmdline] | join(" ")')" = "$k seabios $k" ]
done

# --- the reference guest keeps qboot (and its status channel: exit 0)
run '{"image":"hello","name":"ref","args":["one"]}'
HELLO=$ID
check "ref exits" wait_for 60 inst_state_is ref exited
check "ref exit code 0" [ "$(inst_field ref .exit_code)" = 0 ]
check "ref booted from qboot" grep -q -- '^-bios /usr/share/qemu/qboot.rom' <<<"$(qemu_cmdline "$HELLO")"

# --- foreign kernels get SeaBIOS: QEMU's own firmware, no -bios
run '{"image":"solo5","name":"s5","args":["Hello_Solo5"],"network":false,"restart":"on-failure"}'
SOLO5=$ID
check "s5 exits" wait_for 60 inst_state_is s5 exited
check "s5's exit code is unknown (null)" [ "$(inst_field s5 .exit_code)" = null ]
check "s5 ran QEMU's default firmware (a -kernel, no -bios)" \
    eval 'grep -q -- "^-kernel " <<<"$(qemu_cmdline "$SOLO5")" && ! grep -q -- "^-bios" <<<"$(qemu_cmdline "$SOLO5")"'
check "s5 was not restarted by on-failure" [ "$(inst_field s5 .restarts)" = 0 ]
check "s5's run ended exited" [ "$(inst_field s5 '.runs[0].outcome')" = exited ]
check "s5's console is exactly its argument (got '$(console s5)')" [ "$(console s5)" = Hello_Solo5 ]

# --- solo5: the arguments joined verbatim, nothing added (no env allowed)
run '{"image":"solo5","name":"s5b","args":["--ipv4=10.0.0.2/24","--ipv4-gateway=10.0.0.1","x=\"y\""]}'
check "s5b exits" wait_for 60 inst_state_is s5b exited
check "s5b's exit code is unknown (null)" [ "$(inst_field s5b .exit_code)" = null ]
want='--ipv4=10.0.0.2/24 --ipv4-gateway=10.0.0.1 x="y"'
check "s5b's console is its arguments verbatim (got '$(console s5b)')" [ "$(console s5b)" = "$want" ]
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"solo5","name":"s5env","args":["a"],"env":{"MODE":"fast"}}'
check "env for a solo5 image is 400 (got $HTTP_CODE)" [ "$HTTP_CODE" = 400 ]
check "the error names env" [ "$(printf '%s' "$BODY" | jq -r .error.field)" = env ]

# --- unikraft (PVH): the app's name, netdev.ip from the instance's
# address, prefix and gateway, env.vars, then "--" and the arguments
run '{"image":"unikraft","name":"uk","args":["hello","two words"],"env":{"MODE":"fast"}}'
check "uk exits" wait_for 60 inst_state_is uk exited
check "uk's exit code is unknown (null)" [ "$(inst_field uk .exit_code)" = null ]
ADDR=$(inst_field uk .network.address)
check "uk has an address and prefix ($ADDR)" grep -q '^10\.88\.[0-9.]*/16$' <<<"$ADDR"
want="unikraft netdev.ip=$ADDR:10.88.0.1 env.vars=[ MODE=fast ] -- hello \"two words\""
check "uk's console is its Unikraft line (got '$(console uk)', want '$want')" [ "$(console uk)" = "$want" ]
run '{"image":"unikraft","name":"uk0","network":false}'
check "uk0 exits" wait_for 60 inst_state_is uk0 exited
check "uk0's exit code is unknown (null)" [ "$(inst_field uk0 .exit_code)" = null ]
check "uk0 without network or arguments: its name only (got '$(console uk0)')" [ "$(console uk0)" = unikraft ]

# --- a disk image: SeaBIOS boots it from the instance's qcow2 overlay over
# the read-only image; the overlay goes with the instance
push "$IMAGES/foreign_disk.img" disk:latest
api GET /v1/images/disk
check "disk: kind disk, format raw, firmware seabios" \
    [ "$(printf '%s' "$BODY" | jq -r '[.kind, .format, .profile.firmware] | join(" ")')" = "disk raw seabios" ]
api POST /v1/instances -H 'Content-Type: application/json' -d '{"image":"disk","name":"dx","args":["a"]}'
check "args for a disk image are 400 (got $HTTP_CODE)" [ "$HTTP_CODE" = 400 ]
check "the error names args" [ "$(printf '%s' "$BODY" | jq -r .error.field)" = args ]
run '{"image":"disk","name":"d"}'
DISK=$ID
check "d exits" wait_for 60 inst_state_is d exited
check "d's exit code is unknown (null)" [ "$(inst_field d .exit_code)" = null ]
check "d's console is its boot sector's line (got '$(console d)')" \
    [ "$(console d)" = "shoal-bootsector: hello from the boot sector" ]
check "d booted from a virtio disk under SeaBIOS (no -kernel, no -bios)" \
    eval 'grep -q -- "virtio-blk" <<<"$(qemu_cmdline "$DISK")" && ! grep -q -- "^-kernel" <<<"$(qemu_cmdline "$DISK")" && ! grep -q -- "^-bios" <<<"$(qemu_cmdline "$DISK")"'
OVERLAY="$E2E_STATE/disks/$DISK.qcow2"
check "d has its qcow2 overlay" [ -f "$OVERLAY" ]
check "the overlay's base is the image, format raw" \
    eval 'qemu-img info --output=json "$OVERLAY" | jq -e ".format == \"qcow2\" and (.\"backing-filename\" | endswith(\".elf\")) and .\"backing-filename-format\" == \"raw\"" >/dev/null'
api POST /v1/instances/d/start
check "d starts again from the same overlay (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "d exits again" wait_for 60 eval '[ "$(inst_field d ".runs | length")" = 2 ] && inst_state_is d exited'
api DELETE /v1/instances/d
check "delete d (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
check "its overlay is gone" [ ! -e "$OVERLAY" ]

e2e_finish
