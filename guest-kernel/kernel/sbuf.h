/*
 * sbuf.h - append-only string building for the boot path (banner, status
 * records). printf's formatter is large, and under TCG every piece of code
 * that runs for the first time is translated first: keeping it off the
 * boot path takes about a millisecond off boot_us. Out of line on purpose:
 * inlined, every call site would be translated separately.
 * Output that does not fit is cut; the buffer is always NUL-terminated.
 */
#ifndef SHOAL_KERNEL_SBUF_H
#define SHOAL_KERNEL_SBUF_H

#include <stddef.h>
#include <stdint.h>

struct sbuf {
    char *buf;  /* caller's storage */
    size_t cap; /* its size, NUL included (> 0) */
    size_t len; /* bytes written so far, NUL excluded */
};

void sb_init(struct sbuf *sb, char *buf, size_t cap);
void sb_str(struct sbuf *sb, const char *s);
/* v in base 10 or 16 (hex with a "0x" prefix, lower case). */
void sb_num(struct sbuf *sb, uint64_t v, unsigned base);

#endif
