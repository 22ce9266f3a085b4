/* debugexit.h - exits through QEMU's isa-debug-exit (issue 14): the
 * program libvirt runs as QEMU for such an image, and the exit code read
 * back when its run ends. docs/node.md, "Exit through isa-debug-exit", has
 * the trade-off.
 *
 * A guest whose image's profile says exit "debug-exit" gets the device on
 * port 0x501 (domxml_spec.debug_exit) and shoal-qemu-exit (qemu_exit.c) as
 * its <emulator>: that wrapper writes QEMU's exit status to the domain's
 * log file, which libvirt keeps at ROOT/log/qemu/<domain>.log for an
 * embedded root (and /var/log/libvirt/qemu/ for qemu:///system). When the
 * run ends, fleet_debug_exit_code reads the last run's line there.
 */
#ifndef SHOAL_CORE_DEBUGEXIT_H
#define SHOAL_CORE_DEBUGEXIT_H

#include <stddef.h>

#include "fleet.h"
#include "state.h"

#define FLEET_QEMU_EXIT_NAME "shoal-qemu-exit"

/* The wrapper's path: installed (SHOAL_LIBEXECDIR/shoal/shoal-qemu-exit),
 * else the build tree's; NULL when neither is executable. */
const char *fleet_debug_exit_wrapper(void);

/*
 * The exit code of the run of `in` that just ended, when its image reads
 * exits through isa-debug-exit and its domain's log says QEMU ended with
 * an odd status S after the run's start: *code = (S - 1) / 2, the value the
 * guest wrote (0 for 0). Returns 0 then; -1 when there is no such line (the
 * guest powered off or crashed, QEMU was killed, the log is not local),
 * when QEMU reported an error of its own in that run, or when the image
 * does not exit that way. Reads at most 64 KiB of the log's end.
 */
int fleet_debug_exit_code(fleet *f, const state_instance *in, int *code);

/* The same decision over a log's text (the tail of the file): pure, for
 * tests. Returns 0 and *code, or -1. */
int fleet_debug_exit_parse(const char *log, size_t len, int *code);

#endif
