/* guestcmd.h - build a guest kernel command line (docs/guest-protocol.md).
 *
 *   [shoal.KEY=VALUE ...] [KEY=VALUE ...] -- [ARG ...]
 *
 * Tokens that need it are double-quoted with \" and \\ escapes, so any
 * argument or value (spaces, quotes, empty strings) reaches the guest
 * intact. Control characters cannot be carried and are refused.
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

void gcmd_init(gcmd *c);
/* Append KEY=VALUE (key must be [A-Za-z_][A-Za-z0-9_.]*; 0 or -1). */
int gcmd_env(gcmd *c, const char *key, const char *value);
/* Append the `--` separator (once) and then one argument. */
int gcmd_arg(gcmd *c, const char *arg);
/* 0 when the whole line is usable; otherwise -1 and a reason in err. */
int gcmd_finish(gcmd *c, char *err, size_t errlen);

#endif
