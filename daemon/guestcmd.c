/* guestcmd.c - guest command line builder. See guestcmd.h. */
#include "guestcmd.h"

#include <stdio.h>
#include <string.h>

static void put(gcmd *c, const char *s, size_t n)
{
    if (c->len + n >= sizeof c->buf) {
        c->overflow = 1;
        return;
    }
    memcpy(c->buf + c->len, s, n);
    c->len += n;
    c->buf[c->len] = 0;
}

/* Append s, quoting when it is empty or has a space, quote or backslash. */
static void put_token(gcmd *c, const char *s)
{
    int quote = s[0] == 0 || strpbrk(s, " \"\\") != NULL;
    if (quote)
        put(c, "\"", 1);
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            c->bad = 1;
            return;
        }
        if (*p == '"' || *p == '\\')
            put(c, "\\", 1);
        put(c, p, 1);
    }
    if (quote)
        put(c, "\"", 1);
}

void gcmd_init(gcmd *c)
{
    memset(c, 0, sizeof *c);
}

int gcmd_env(gcmd *c, const char *key, const char *value)
{
    size_t klen = strlen(key);
    if (!klen ||
        strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789.") != klen ||
        (key[0] >= '0' && key[0] <= '9') || key[0] == '.') {
        c->bad = 1;
        return -1;
    }
    if (c->args) { /* environment must come before `--` */
        c->bad = 1;
        return -1;
    }
    {
        /* Quote KEY=VALUE as one token ("K=a b"), never K="a b". */
        char tok[GCMD_MAX];
        if ((size_t)snprintf(tok, sizeof tok, "%s=%s", key, value) >= sizeof tok) {
            c->overflow = 1;
            return -1;
        }
        if (c->len)
            put(c, " ", 1);
        put_token(c, tok);
    }
    return c->bad || c->overflow ? -1 : 0;
}

int gcmd_arg(gcmd *c, const char *arg)
{
    if (!c->args) {
        put(c, c->len ? " --" : "--", c->len ? 3 : 2);
        c->args = 1;
    }
    put(c, " ", 1);
    put_token(c, arg);
    return c->bad || c->overflow ? -1 : 0;
}

int gcmd_finish(gcmd *c, char *err, size_t errlen)
{
    if (c->bad) {
        snprintf(err, errlen, "arguments and environment must not contain control characters");
        return -1;
    }
    if (c->overflow) {
        snprintf(err, errlen, "arguments and environment exceed the %d-byte guest command line",
                 GCMD_MAX - 1);
        return -1;
    }
    return 0;
}
