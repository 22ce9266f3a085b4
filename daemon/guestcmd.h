/* guestcmd.h - build a guest kernel command line.
 *
 * One line per run, in the form the image's command-line preset names
 * (docs/imagestore.md, "What the stored profile asks of the boot side";
 * examples in docs/node.md, "Boot profiles"):
 *
 *   shoal     [shoal.KEY=VALUE ...] [KEY=VALUE ...] -- [ARG ...]
 *             (docs/guest-protocol.md; the reference guest)
 *   unikraft  [NAME] [netdev.ip=A.B.C.D/N:G] [env.vars=[ K=V ... ]] -- [ARG ...]
 *             (Unikraft's library parameters before "--", the app's
 *             arguments after; "--" only when a parameter precedes it)
 *   solo5     ARG ARG ...  the arguments joined by one space, verbatim
 *   raw       ARG ARG ...  the same (a kernel of no known convention)
 *
 * shoal and unikraft quote a token that needs it in double quotes with \"
 * and \\ escapes (both kernels' parsers undo exactly that), so any argument
 * or value (spaces, quotes, empty strings) reaches the guest intact. solo5
 * and raw add nothing, so an argument with a space is two words there.
 * Control characters cannot be carried and are refused. Pure functions: no
 * allocation, no I/O, any thread.
 */
#ifndef SHOAL_GUESTCMD_H
#define SHOAL_GUESTCMD_H

#include <stddef.h>

#define GCMD_MAX 4096 /* longest command line handed to QEMU */

typedef struct {
    char buf[GCMD_MAX]; /* NUL-terminated result */
    size_t len;
    int overflow; /* set when something did not fit */
    int bad;      /* set when a value had a control character */
    int args;     /* the `--` separator has been written */
} gcmd;

/* The shoal preset, token by token. */
void gcmd_init(gcmd *c);
/* Append KEY=VALUE (key must be [A-Za-z_][A-Za-z0-9_.]*; 0 or -1). */
int gcmd_env(gcmd *c, const char *key, const char *value);
/* Append the `--` separator (once) and then one argument. */
int gcmd_arg(gcmd *c, const char *arg);
/* 0 when the whole line is usable; otherwise -1 and a reason in err. */
int gcmd_finish(gcmd *c, char *err, size_t errlen);

/* ---- presets ------------------------------------------------------------- */

typedef enum gcmd_preset {
    GCMD_PRESET_SHOAL = 0,    /* docs/guest-protocol.md */
    GCMD_PRESET_UNIKRAFT = 1, /* Unikraft library parameters, then the app's */
    GCMD_PRESET_SOLO5 = 2,    /* the arguments verbatim (Solo5 hands the line to
                                 the app as it is) */
    GCMD_PRESET_RAW = 3,      /* the arguments verbatim */
} gcmd_preset;

typedef struct gcmd_kv {
    const char *key, *value;
} gcmd_kv;

/* What one run hands its guest. Strings are borrowed for the call. */
typedef struct gcmd_run {
    const char *ip;     /* guest address "A.B.C.D"; NULL: no network (prefix,
                           gw and mac are then not used) */
    int prefix;         /* 0..32 */
    const char *gw;     /* gateway "A.B.C.D", required with ip */
    const char *mac;    /* "xx:xx:..", shoal only (shoal.mac); NULL: none */
    int no_gw;          /* shoal only: no shoal.gw (a warm pool guest's boot
                           line has it) */
    const char *argv0;  /* unikraft only: the first word, which Unikraft takes
                           as argv[0] and never parses as a parameter. Give
                           the app's name under PVH, where the line reaches
                           the kernel as is; NULL under Multiboot, where QEMU
                           puts the kernel's file name there itself */
    const gcmd_kv *env; /* environment, in order; keys [A-Za-z_][A-Za-z0-9_]* */
    size_t n_env;
    const char *const *args; /* the app's arguments */
    size_t n_args;
} gcmd_run;

/*
 * Build the whole line for `preset` into *c (initialised here). Returns 0,
 * or -1 with a reason in err that names what cannot be carried:
 *   - a control character in an argument or value, or a line over
 *     GCMD_MAX - 1 bytes (every preset);
 *   - any environment under solo5 or raw (they carry the arguments only);
 *   - under unikraft, an env value ending in ']' (it would close Unikraft's
 *     list, which has no escape).
 * The address is written by shoal (shoal.ip, shoal.gw, shoal.mac) and
 * unikraft (netdev.ip=CIDR:GW) only.
 */
int gcmd_build(gcmd *c, gcmd_preset preset, const gcmd_run *run, char *err, size_t errlen);

/*
 * The same, in two parts (issue 16): what a preset's kernel can read from
 * elsewhere than its command line goes to `record`, which shoald hands the
 * guest privately (fw_cfg file "opt/org.shoal/cmdline", readable on the
 * host only by root and that guest's QEMU; docs/guest-protocol.md, "Private
 * configuration record"), and nothing of it to `line`, which QEMU's command
 * line shows to every local user.
 *   shoal     line: the kernel's keys (shoal.ip, shoal.gw, shoal.mac);
 *             record: the environment, then `--` and the arguments, in the
 *             command line's grammar. The guest parses "line record".
 *   others    line: all of it, as gcmd_build; record: empty (len 0). Their
 *             kernels read only the command line, so environment and
 *             arguments stay visible there (docs/node.md).
 * The checks and errors are gcmd_build's (the whole line must fit).
 */
int gcmd_build_split(gcmd *line, gcmd *record, gcmd_preset preset, const gcmd_run *run, char *err,
                     size_t errlen);

/* "shoal", "unikraft", "solo5", "raw" (static), "?" for anything else. */
const char *gcmd_preset_name(gcmd_preset preset);

#endif
