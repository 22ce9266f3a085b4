/*
 * errbuf.h - the daemon's one way of filling a caller's error buffer.
 * Functions across daemon/ report failures as (char *err, size_t errlen):
 * a message the caller shows or logs as is.
 */
#ifndef SHOAL_DAEMON_ERRBUF_H
#define SHOAL_DAEMON_ERRBUF_H

#include <stddef.h>

/* Format into err (truncated to errlen, always terminated). err may be
 * NULL or errlen 0: nothing is written. Returns -1, so a failing path can
 * end with `return errbuf_set(err, errlen, "...", ...);`. */
int errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
