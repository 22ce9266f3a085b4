#!/bin/bash
# guest_fwcfg.sh - the private configuration record (issue 16;
# docs/guest-protocol.md "Private configuration record"): raw QEMU hands
# hello a fw_cfg file opt/org.shoal/cmdline, as shoald does through
# libvirt's <sysinfo type='fwcfg'>.
#  - the record's environment and arguments reach the app after the
#    command line's own, quotes and escapes intact, with nothing of them on
#    the command line; the same through fw_cfg's DMA interface (QEMU's
#    default) and through its port interface (dma_enabled=off);
#  - a record that makes the line too long, or holds a NUL byte, is a bad
#    command line: the message, exit 2, no ready record.
# See guest_lib.sh for the environment (SHOAL_IMAGES, ACCEL).
set -eu
. "$(dirname "$0")/guest_lib.sh"

pick_accel
REC="$WORK/record"

check_hello() {
    [ "$RC" -eq 0 ] || fail "QEMU exited with $RC ($1)"
    expect_console "argc=3"
    expect_console "argv[1]=<two words>"
    expect_console 'argv[2]=<say "hi" \>'
    expect_console "env[0]=<FROM_CMDLINE=1>"
    expect_console "env[1]=<DB_PASSWORD=s3cr3t value>"
    expect_console "env[2]=<EMPTY=>"
    grep -qF "env[3]" "$WORK/console.log" && fail "an extra environment entry ($1)"
    expect_ready
    expect_exit 0
}

printf '%s' 'DB_PASSWORD="s3cr3t value" EMPTY= -- "two words" "say \"hi\" \\"' >"$REC"
for mode in dma port; do
    extra=()
    [ "$mode" = port ] && extra=(-global fw_cfg_io.dma_enabled=off)
    boot "$SHOAL_IMAGES/hello.elf" 'shoal.quiet=1 FROM_CMDLINE=1' \
        -fw_cfg "name=opt/org.shoal/cmdline,file=$REC" "${extra[@]}"
    check_hello "$mode"
    echo "ok: record through fw_cfg ($mode)"
done

# Too long together: an 8000-byte argument in the record after 300 bytes
# of command line (the kernel takes 8192).
{ printf -- '-- '; head -c 8000 /dev/zero | tr '\0' x; } >"$REC"
boot "$SHOAL_IMAGES/hello.elf" "shoal.quiet=1 PAD=$(head -c 300 /dev/zero | tr '\0' y)" \
    -fw_cfg "name=opt/org.shoal/cmdline,file=$REC"
expect_console "shoal: bad command line: with the fw_cfg record 'opt/org.shoal/cmdline' longer than 8192 bytes"
expect_exit 2
grep -q ready "$WORK/status.log" && fail "a ready record after a bad record"
echo "ok: a record that makes the line too long is refused"

printf 'A=1\0B=2' >"$REC"
boot "$SHOAL_IMAGES/hello.elf" "shoal.quiet=1" -fw_cfg "name=opt/org.shoal/cmdline,file=$REC"
expect_console "shoal: bad command line: the fw_cfg record 'opt/org.shoal/cmdline' holds a NUL byte"
expect_exit 2
echo "ok: a record with a NUL byte is refused"
echo "PASS"
