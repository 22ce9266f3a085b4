/*
 * sbuf.c - string building for the boot path (see sbuf.h).
 */
#include "sbuf.h"

void sb_init(struct sbuf *sb, char *buf, size_t cap)
{
    sb->buf = buf;
    sb->cap = cap;
    sb->len = 0;
    buf[0] = '\0';
}

void sb_str(struct sbuf *sb, const char *s)
{
    while (*s && sb->len + 1 < sb->cap)
        sb->buf[sb->len++] = *s++;
    sb->buf[sb->len] = '\0';
}

void sb_num(struct sbuf *sb, uint64_t v, unsigned base)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (base == 16)
        sb_str(sb, "0x");
    while (n > 0 && sb->len + 1 < sb->cap)
        sb->buf[sb->len++] = tmp[--n];
    sb->buf[sb->len] = '\0';
}
