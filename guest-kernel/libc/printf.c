/*
 * printf.c - the formatter behind every printf-family function. One core
 * (fmt_core) writes through a sink callback; snprintf's sink fills a
 * buffer, the console sink batches into serial writes.
 */
#include <stdio.h>

#include <stdint.h>
#include <string.h>

#include "sys.h"

typedef void (*fmt_sink)(void *ctx, const char *s, size_t n);

struct fmt_spec {
    int left, zero, plus, space, alt; /* flags - 0 + ' ' # */
    int width;                        /* -1: none */
    int prec;                         /* -1: none */
};

static size_t fmt_pad(fmt_sink out, void *ctx, char c, int n)
{
    char buf[16];
    size_t total = 0;
    memset(buf, c, sizeof buf);
    while (n > 0) {
        int k = n > 16 ? 16 : n;
        out(ctx, buf, (size_t)k);
        n -= k;
        total += (size_t)k;
    }
    return total;
}

/* Emit body (len bytes) with a prefix ("-", "0x") and the padding asked
 * for. zeros: leading zeros from the precision, or -1 for a non-number
 * (then the '0' flag does not apply). */
static size_t fmt_field(fmt_sink out, void *ctx, const struct fmt_spec *sp, const char *prefix,
                        const char *body, int len, int zeros)
{
    int numeric = zeros >= 0;
    if (zeros < 0)
        zeros = 0;
    int plen = (int)strlen(prefix);
    int used = plen + zeros + len;
    int pad = sp->width > used ? sp->width - used : 0;
    int zero_pad = numeric && sp->zero && !sp->left && sp->prec < 0;
    size_t n = (size_t)plen + (size_t)len;
    if (!sp->left && !zero_pad)
        n += fmt_pad(out, ctx, ' ', pad);
    out(ctx, prefix, (size_t)plen);
    if (zero_pad) /* zeros go after the sign/0x */
        n += fmt_pad(out, ctx, '0', pad);
    n += fmt_pad(out, ctx, '0', zeros);
    out(ctx, body, (size_t)len);
    if (sp->left)
        n += fmt_pad(out, ctx, ' ', pad);
    return n;
}

static size_t fmt_int(fmt_sink out, void *ctx, struct fmt_spec *sp, uintmax_t v, int neg,
                      unsigned base, int upper, int is_ptr)
{
    char buf[24];
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    int len = 0;
    if (!(v == 0 && sp->prec == 0))
        do {
            buf[sizeof buf - 1 - len++] = digits[v % base];
            v /= base;
        } while (v);
    const char *prefix = neg ? "-" : sp->plus ? "+" : sp->space ? " " : "";
    if ((sp->alt && len && buf[sizeof buf - len] != '0' && base == 16) || (is_ptr && base == 16))
        prefix = upper ? "0X" : "0x";
    else if (sp->alt && base == 8 && len && buf[sizeof buf - len] != '0')
        prefix = "0";
    int zeros = sp->prec > len ? sp->prec - len : 0;
    return fmt_field(out, ctx, sp, prefix, buf + sizeof buf - len, len, zeros);
}

static int fmt_core(fmt_sink out, void *ctx, const char *fmt, va_list ap)
{
    size_t total = 0;
    while (*fmt) {
        const char *lit = fmt;
        while (*fmt && *fmt != '%')
            fmt++;
        if (fmt > lit) {
            out(ctx, lit, (size_t)(fmt - lit));
            total += (size_t)(fmt - lit);
        }
        if (!*fmt)
            break;
        fmt++; /* past '%' */

        struct fmt_spec sp = { 0, 0, 0, 0, 0, -1, -1 };
        for (;; fmt++) {
            if (*fmt == '-')
                sp.left = 1;
            else if (*fmt == '0')
                sp.zero = 1;
            else if (*fmt == '+')
                sp.plus = 1;
            else if (*fmt == ' ')
                sp.space = 1;
            else if (*fmt == '#')
                sp.alt = 1;
            else
                break;
        }
        if (*fmt == '*') {
            sp.width = va_arg(ap, int);
            if (sp.width < 0)
                sp.left = 1, sp.width = -sp.width;
            fmt++;
        } else {
            for (sp.width = 0; *fmt >= '0' && *fmt <= '9'; fmt++)
                sp.width = sp.width * 10 + (*fmt - '0');
        }
        if (*fmt == '.') {
            fmt++;
            if (*fmt == '*') {
                sp.prec = va_arg(ap, int);
                if (sp.prec < 0)
                    sp.prec = -1;
                fmt++;
            } else {
                for (sp.prec = 0; *fmt >= '0' && *fmt <= '9'; fmt++)
                    sp.prec = sp.prec * 10 + (*fmt - '0');
            }
        }
        int lng = 0; /* -2 hh, -1 h, 1 l, 2 ll/j/z/t */
        for (;; fmt++) {
            if (*fmt == 'h')
                lng--;
            else if (*fmt == 'l')
                lng++;
            else if (*fmt == 'z' || *fmt == 'j' || *fmt == 't')
                lng = 2;
            else
                break;
        }

        char c = *fmt ? *fmt++ : '\0';
        switch (c) {
        case 'd':
        case 'i': {
            intmax_t v = lng >= 1 ? va_arg(ap, long long) : va_arg(ap, int);
            if (lng == -1)
                v = (short)v;
            if (lng <= -2)
                v = (signed char)v;
            uintmax_t mag = v < 0 ? (uintmax_t)0 - (uintmax_t)v : (uintmax_t)v;
            total += fmt_int(out, ctx, &sp, mag, v < 0, 10, 0, 0);
            break;
        }
        case 'u':
        case 'x':
        case 'X':
        case 'o': {
            uintmax_t v = lng >= 1 ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
            if (lng == -1)
                v = (unsigned short)v;
            if (lng <= -2)
                v = (unsigned char)v;
            unsigned base = c == 'u' ? 10 : c == 'o' ? 8 : 16;
            total += fmt_int(out, ctx, &sp, v, 0, base, c == 'X', 0);
            break;
        }
        case 'p':
            total += fmt_int(out, ctx, &sp, (uintptr_t)va_arg(ap, void *), 0, 16, 0, 1);
            break;
        case 'c': {
            char ch = (char)va_arg(ap, int);
            sp.prec = -1;
            total += fmt_field(out, ctx, &sp, "", &ch, 1, -1);
            break;
        }
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            int len = (int)(sp.prec >= 0 ? strnlen(s, (size_t)sp.prec) : strlen(s));
            sp.prec = -1;
            total += fmt_field(out, ctx, &sp, "", s, len, -1);
            break;
        }
        case '%':
            out(ctx, "%", 1);
            total++;
            break;
        default: /* unknown: print it verbatim */
            out(ctx, "%", 1);
            total++;
            if (c) {
                out(ctx, &c, 1);
                total++;
            }
            break;
        }
    }
    return total > INT32_MAX ? INT32_MAX : (int)total;
}

/* --- buffer sink (snprintf) -------------------------------------------- */

struct buf_sink {
    char *buf;
    size_t cap; /* bytes available, NUL included */
    size_t len; /* bytes produced so far (may exceed cap) */
};

static void buf_out(void *ctx, const char *s, size_t n)
{
    struct buf_sink *b = ctx;
    if (b->len < b->cap) {
        size_t room = b->cap - 1 - b->len;
        memcpy(b->buf + b->len, s, n < room ? n : room);
    }
    b->len += n;
}

int vsnprintf(char *restrict buf, size_t n, const char *restrict fmt, va_list ap)
{
    struct buf_sink b = { buf, n, 0 };
    int r = fmt_core(buf_out, &b, fmt, ap);
    if (n)
        buf[b.len < n ? b.len : n - 1] = '\0';
    return r;
}

int snprintf(char *restrict buf, size_t n, const char *restrict fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return r;
}

int sprintf(char *restrict buf, const char *restrict fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(buf, (size_t)INT32_MAX, fmt, ap);
    va_end(ap);
    return r;
}

/* --- console sink (printf and friends) -------------------------------- */

struct shoal_file {
    int fd;
};
static struct shoal_file file_stdout = { 1 }, file_stderr = { 2 };
FILE *const stdout = &file_stdout;
FILE *const stderr = &file_stderr;

struct con_sink {
    char buf[128];
    size_t len;
};

static void con_flush(struct con_sink *c)
{
    sys_console_write(c->buf, c->len);
    c->len = 0;
}

static void con_out(void *ctx, const char *s, size_t n)
{
    struct con_sink *c = ctx;
    while (n) {
        size_t k = sizeof c->buf - c->len;
        if (k > n)
            k = n;
        memcpy(c->buf + c->len, s, k);
        c->len += k;
        s += k;
        n -= k;
        if (c->len == sizeof c->buf)
            con_flush(c);
    }
}

int vfprintf(FILE *restrict f, const char *restrict fmt, va_list ap)
{
    (void)f;
    struct con_sink c;
    c.len = 0;
    int r = fmt_core(con_out, &c, fmt, ap);
    con_flush(&c);
    return r;
}

int vprintf(const char *restrict fmt, va_list ap)
{
    return vfprintf(stdout, fmt, ap);
}

int printf(const char *restrict fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vfprintf(stdout, fmt, ap);
    va_end(ap);
    return r;
}

int fprintf(FILE *restrict f, const char *restrict fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vfprintf(f, fmt, ap);
    va_end(ap);
    return r;
}

size_t fwrite(const void *restrict p, size_t size, size_t n, FILE *restrict f)
{
    (void)f;
    sys_console_write(p, size * n);
    return n;
}

int fputs(const char *restrict s, FILE *restrict f)
{
    fwrite(s, 1, strlen(s), f);
    return 0;
}

int puts(const char *s)
{
    fputs(s, stdout);
    fputs("\n", stdout);
    return 0;
}

int fputc(int c, FILE *f)
{
    char ch = (char)c;
    fwrite(&ch, 1, 1, f);
    return (unsigned char)ch;
}

int putc(int c, FILE *f)
{
    return fputc(c, f);
}
int putchar(int c)
{
    return fputc(c, stdout);
}
int fflush(FILE *f)
{
    (void)f;
    return 0;
}
