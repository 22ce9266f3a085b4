/* cli_util.c: growable buffers, URL escaping, human-readable units. */
#include "cli_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int buf_reserve(cli_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int cli_buf_append(cli_buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int cli_buf_puts(cli_buf *b, const char *s)
{
    return cli_buf_append(b, s, strlen(s));
}

int cli_buf_printf(cli_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int cli_buf_escape(cli_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == '@') {
            if (cli_buf_append(b, (const char *)p, 1) < 0)
                return -1;
        } else {
            char e[3] = { '%', hex[c >> 4], hex[c & 15] };
            if (cli_buf_append(b, e, 3) < 0)
                return -1;
        }
    }
    return 0;
}

const char *cli_buf_str(const cli_buf *b)
{
    return b->data ? b->data : "";
}

void cli_buf_free(cli_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void cli_fmt_bytes(uint64_t bytes, char *out, size_t len)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    if (bytes < 1024) {
        snprintf(out, len, "%lluB", (unsigned long long)bytes);
        return;
    }
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    snprintf(out, len, "%.1f%s", v, units[u]);
}

void cli_fmt_mib(uint64_t mib, char *out, size_t len)
{
    if (mib >= 1024 && mib % 1024 == 0)
        snprintf(out, len, "%lluG", (unsigned long long)(mib / 1024));
    else if (mib >= 1024)
        snprintf(out, len, "%.1fG", (double)mib / 1024.0);
    else
        snprintf(out, len, "%lluM", (unsigned long long)mib);
}

int cli_parse_time(const char *s, time_t *t)
{
    if (!s)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return -1;
    if (*end == '.') {
        end++;
        while (*end >= '0' && *end <= '9')
            end++;
    }
    if (*end != 'Z' || end[1] != '\0')
        return -1;
    *t = timegm(&tm);
    return 0;
}

void cli_fmt_ago(const char *rfc3339, time_t now, char *out, size_t len)
{
    time_t t;
    if (cli_parse_time(rfc3339, &t) < 0) {
        snprintf(out, len, "-");
        return;
    }
    long long d = (long long)(now - t);
    if (d < 0)
        d = 0;
    const char *unit;
    long long n;
    if (d < 60) {
        n = d;
        unit = "second";
    } else if (d < 3600) {
        n = d / 60;
        unit = "minute";
    } else if (d < 86400) {
        n = d / 3600;
        unit = "hour";
    } else {
        n = d / 86400;
        unit = "day";
    }
    snprintf(out, len, "%lld %s%s ago", n, unit, n == 1 ? "" : "s");
}
