/* gstatus.c - guest status channel parser. See gstatus.h. */
#include "gstatus.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PREFIX "shoal-status "

/* Parse "key=<number>" at *p (base 10 or 16), advancing past it. */
static int take_num(const char **p, const char *end, const char *key, int base, uint64_t max,
                    uint64_t *out)
{
    size_t klen = strlen(key);
    const char *s = *p;
    uint64_t v = 0;
    int digits = 0;

    while (s < end && *s == ' ')
        s++;
    if ((size_t)(end - s) <= klen || memcmp(s, key, klen) != 0 || s[klen] != '=')
        return -1;
    s += klen + 1;
    if (base == 16 && end - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    for (; s < end && *s != ' ' && *s != '\r'; s++) {
        int d;
        if (*s >= '0' && *s <= '9')
            d = *s - '0';
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = *s - 'a' + 10;
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = *s - 'A' + 10;
        else
            return -1;
        if (v > (max - (uint64_t)d) / (uint64_t)base)
            return -1;
        v = v * (uint64_t)base + (uint64_t)d;
        digits++;
    }
    if (!digits)
        return -1;
    *out = v;
    *p = s;
    return 0;
}

static int at_end(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\r'))
        p++;
    return p == end;
}

int gst_parse_line(const char *line, size_t len, gst_record *out)
{
    const char *p = line, *end = line + len;
    uint64_t v;
    gst_record r;

    memset(&r, 0, sizeof r);
    r.claim_us = -1;
    if (len < sizeof PREFIX - 1 || memcmp(p, PREFIX, sizeof PREFIX - 1) != 0)
        return -1;
    p += sizeof PREFIX - 1;
    if (end - p >= 5 && !memcmp(p, "ready", 5)) {
        p += 5;
        if (take_num(&p, end, "boot_us", 10, INT64_MAX, &v) < 0)
            return -1;
        r.kind = GST_READY;
        r.boot_us = (int64_t)v;
        const char *q = p;
        while (q < end && *q == ' ')
            q++;
        if (q < end && *q != '\r') { /* a pool guest's claim time */
            if (take_num(&p, end, "claim_us", 10, INT64_MAX, &v) < 0)
                return -1;
            r.claim_us = (int64_t)v;
        }
    } else if (end - p >= 9 && !memcmp(p, "pool-wait", 9)) {
        p += 9;
        if (take_num(&p, end, "boot_us", 10, INT64_MAX, &v) < 0)
            return -1;
        r.kind = GST_POOL_WAIT;
        r.boot_us = (int64_t)v;
    } else if (end - p >= 4 && !memcmp(p, "exit", 4)) {
        p += 4;
        if (take_num(&p, end, "code", 10, 255, &v) < 0)
            return -1;
        r.kind = GST_EXIT;
        r.exit_code = (int)v;
    } else if (end - p >= 5 && !memcmp(p, "crash", 5)) {
        p += 5;
        if (take_num(&p, end, "vector", 10, 255, &v) < 0)
            return -1;
        r.vector = (int)v;
        if (take_num(&p, end, "error", 16, UINT64_MAX, &r.error) < 0 ||
            take_num(&p, end, "rip", 16, UINT64_MAX, &r.rip) < 0 ||
            take_num(&p, end, "cr2", 16, UINT64_MAX, &r.cr2) < 0)
            return -1;
        r.kind = GST_CRASH;
    } else {
        return -1;
    }
    if (!at_end(p, end))
        return -1;
    *out = r;
    return 0;
}

int gst_tracker_poll(gst_tracker *t, const char *path, gst_record_cb cb, void *ctx)
{
    return gst_tracker_poll_max(t, path, SIZE_MAX, cb, ctx, NULL);
}

int gst_tracker_poll_max(gst_tracker *t, const char *path, size_t max, gst_record_cb cb, void *ctx,
                         off_t *size_out)
{
    char buf[4096];
    int fd, delivered = 0;
    ssize_t n = 0;
    size_t done = 0;
    off_t size;

    if (size_out)
        *size_out = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    /* The file may have been recreated by a new run: start over if it shrank. */
    size = lseek(fd, 0, SEEK_END);
    if (size >= 0 && size < t->off) {
        t->off = 0;
        t->len = 0;
        t->overlong = 0;
    }
    while (done < max &&
           (n = pread(fd, buf, max - done < sizeof buf ? max - done : sizeof buf, t->off)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            char c = buf[i];
            if (c == '\n') {
                gst_record r;
                if (!t->overlong && gst_parse_line(t->line, t->len, &r) == 0) {
                    cb(ctx, &r);
                    delivered++;
                } else if (t->len || t->overlong) {
                    t->bad++;
                }
                t->len = 0;
                t->overlong = 0;
            } else if (t->len < sizeof t->line) {
                t->line[t->len++] = c;
            } else {
                t->overlong = 1;
            }
        }
        t->off += n;
        done += (size_t)n;
    }
    if (size_out)
        *size_out = size > t->off ? size : t->off;
    close(fd);
    return n < 0 ? -1 : delivered;
}

static const char *vector_name(int v)
{
    static const char *const names[] = {
        "divide error",
        "debug",
        "NMI",
        "breakpoint",
        "overflow",
        "bound range",
        "invalid opcode",
        "device not available",
        "double fault",
        "coprocessor overrun",
        "invalid TSS",
        "segment not present",
        "stack fault",
        "general protection fault",
        "page fault",
        "reserved",
        "x87 error",
        "alignment check",
        "machine check",
        "SIMD error",
        "virtualization exception",
        "control protection",
    };
    return (v >= 0 && v < (int)(sizeof names / sizeof names[0])) ? names[v] : "exception";
}

void gst_crash_text(const gst_record *r, char *buf, size_t len)
{
    if (r->vector == 14)
        snprintf(buf, len,
                 "guest crashed: page fault at rip=0x%" PRIx64 " accessing 0x%" PRIx64
                 " (error 0x%" PRIx64 ")",
                 r->rip, r->cr2, r->error);
    else
        snprintf(buf, len, "guest crashed: %s (vector %d) at rip=0x%" PRIx64 " error=0x%" PRIx64,
                 vector_name(r->vector), r->vector, r->rip, r->error);
}
