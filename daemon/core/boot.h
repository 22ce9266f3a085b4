/* boot.h - how shoald boots an image: the image store's verdict (boot
 * protocol, format, kind, stored profile: img_store.h) turned into what
 * fleet_job_start renders, or a refusal naming why shoald cannot boot it.
 *
 * Decided at create (instance.c), so that an instance shoald cannot boot is
 * refused there (422 invalid_image, field image) rather than failing at
 * every start, and again at every start (run.c), from the image row, so a
 * run always follows what the store says now. Pure: no I/O, no locks, any
 * thread. docs/node.md ("Boot profiles") has the table and examples.
 */
#ifndef SHOAL_CORE_BOOT_H
#define SHOAL_CORE_BOOT_H

#include <stddef.h>

#include "domxml.h"
#include "guestcmd.h"
#include "img_store.h"

typedef struct fleet_boot {
    int disk;                /* 1: a disk image (format raw or qcow2): booted by
                                SeaBIOS from the instance's overlay (disk.h), no
                                <kernel>, no command line (args and env are
                                refused at create) */
    enum domxml_boot boot;   /* protocol QEMU finds in the <kernel> */
    enum domxml_firmware fw; /* profile.firmware: qboot (kind shoal) or SeaBIOS
                                (every other kind: their drivers expect the
                                firmware to assign PCI BARs); qboot for rows
                                from before kinds (firmware none), as then */
    gcmd_preset preset;      /* profile.cmdline (guestcmd.h); shoal for rows
                                from before kinds (cmdline none), as then */
    int argv0;               /* 1: the unikraft preset under PVH, where QEMU
                                hands the line over as is: the app's name goes
                                first (fleet_boot_argv0), as Unikraft takes the
                                first word for argv[0] and never parses it.
                                Under Multiboot QEMU puts the kernel's file
                                name there itself */
    int status_channel;      /* 1: the guest reports ready/exit/crash on COM2
                                (docs/guest-protocol.md): profile.exit status
                                (kind shoal's default), and rows from before
                                kinds (kind unknown), as then. A guest with a
                                status channel that powers off without an exit
                                record has crashed; one without it has exited,
                                code unknown */
    int debug_exit;          /* 1: profile.exit debug-exit: QEMU's isa-debug-exit
                                on port 0x501 and the exit-status wrapper as
                                emulator (debugexit.h); the value the guest
                                writes there is its exit code */
    int template;            /* 1: profile.cmdline is a template (tmpl): the line
                                is fleet_boot_cmdline's, not a preset's */
    char tmpl[IMG_TEMPLATE_MAX + 1];
} fleet_boot;

/*
 * What to render for an image described by `info` (img_get). Returns 0 and
 * fills *out, or -1 with a sentence in err that starts with the verb and
 * names the image's kind and format or protocol, for "image 'REF' <err>":
 *   "is a disk image (kind disk, format raw) whose profile asks for qboot,
 *    which boots no disks (firmware seabios does)"
 *   "is a Multiboot2 kernel (kind multiboot, boot multiboot2): QEMU 7.2 has
 *    no Multiboot2 loader, so it cannot boot it"
 */
int fleet_boot_plan(const img_info *info, fleet_boot *out, char *err, size_t errlen);

/*
 * The guest's command line for one run into *c: a template's placeholders
 * filled in (img_store.h, img_template_check: {address} {prefix} {gateway}
 * {mac} from run, {env} as KEY=VALUE and {args} joined by single spaces,
 * verbatim, {name} from image_ref as fleet_boot_argv0), else the preset's
 * line (gcmd_build). Returns 0, or -1 with a reason in err that starts with
 * "env " or "args " when those cannot reach the guest: environment or
 * arguments given to a template without {env} or {args} (never dropped),
 * a control character; a template that needs the network ({address},
 * {prefix}, {gateway}, {mac}) for a run without one; a line over
 * GCMD_MAX - 1 bytes.
 */
int fleet_boot_cmdline(const fleet_boot *b, const char *image_ref, const gcmd_run *run, gcmd *c,
                       char *err, size_t errlen);

/* The app's name for argv[0] from the image ref an instance was made of:
 * the image name's last component ("registry/nginx:1.25" -> "nginx"); "app"
 * for a digest ref. Writes at most len bytes, NUL-terminated. */
void fleet_boot_argv0(const char *image_ref, char *out, size_t len);

#endif
