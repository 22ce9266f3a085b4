/*
 * cmdline.c - command line parser (see cmdline.h for the grammar).
 * Pass 1 splits the line into tokens (quotes and escapes resolved), pass 2
 * sorts them into environment, kernel keys and arguments.
 */
#include "cmdline.h"

#include <stdio.h>
#include <string.h>

#define SNIP 40 /* bytes of a bad token quoted in an error message */

static int cmd_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int cmd_key_ok(const char *tok, const char *eq)
{
    if (eq == tok)
        return 0;
    for (const char *k = tok; k < eq; k++) {
        char c = *k;
        int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        int digit_dot = (c >= '0' && c <= '9') || c == '.';
        if (!alpha && !(k > tok && digit_dot))
            return 0;
    }
    return 1;
}

static void cmd_err(char *err, size_t errlen, const char *what, const char *tok)
{
    size_t n = strlen(tok);
    snprintf(err, errlen, "%s '%.*s%s'", what, SNIP, tok, n > SNIP ? "..." : "");
}

int cmdline_parse(const char *line, char *strbuf, size_t strbuf_len, char **ptrs, size_t nptrs,
                  struct cmdline *out, char *err, size_t errlen)
{
    size_t len = strlen(line);
    memset(out, 0, sizeof(*out));
    if (len > CMDLINE_MAX) {
        snprintf(err, errlen, "line is longer than %d bytes", CMDLINE_MAX);
        return -1;
    }
    if (strbuf_len < len + 1 || nptrs < len + 8) {
        snprintf(err, errlen, "internal: parse buffers too small");
        return -1;
    }

    /* Pass 1: tokens into strbuf, pointers into ptrs[0..n). Output never
     * outgrows input, so strbuf cannot overflow. */
    const char *p = line;
    char *o = strbuf;
    size_t n = 0, dd = (size_t)-1; /* dd: index of the first argument */
    for (;;) {
        while (cmd_is_space(*p))
            p++;
        if (*p == '\0')
            break;
        const char *raw = p;
        char *start = o;
        int quoted = 0, inq = 0;
        while (*p && (inq || !cmd_is_space(*p))) {
            if (inq) {
                if (*p == '"') {
                    inq = 0;
                    p++;
                } else if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) {
                    *o++ = p[1];
                    p += 2;
                } else {
                    *o++ = *p++;
                }
            } else if (*p == '"') {
                inq = quoted = 1;
                p++;
            } else if (*p == '\\') {
                if (p[1] == '\0') {
                    cmd_err(err, errlen, "trailing backslash in", raw);
                    return -1;
                }
                *o++ = p[1];
                p += 2;
                quoted = 1;
            } else {
                *o++ = *p++;
            }
        }
        if (inq) {
            cmd_err(err, errlen, "unterminated quote in", raw);
            return -1;
        }
        *o++ = '\0';
        if (dd == (size_t)-1 && !quoted && strcmp(start, "--") == 0) {
            dd = n; /* the separator itself is dropped */
            continue;
        }
        ptrs[n++] = start;
    }
    if (dd == (size_t)-1)
        dd = n;

    /* Pass 2a: arguments go to argv = ptrs[n+1 ..], argv[0] left for the
     * caller. Copy them before 2b compacts the environment in place. */
    char **argv = &ptrs[n + 1];
    argv[0] = NULL;
    int argc = 1;
    for (size_t i = dd; i < n; i++)
        argv[argc++] = ptrs[i];
    argv[argc] = NULL;

    /* Pass 2b: KEY=VALUE tokens; shoal.* to the kernel, the rest to envp
     * (compacted to ptrs[0..envc), NULL at ptrs[envc] <= ptrs[n]). */
    int envc = 0;
    for (size_t i = 0; i < dd; i++) {
        char *tok = ptrs[i];
        char *eq = strchr(tok, '=');
        if (!eq || !cmd_key_ok(tok, eq)) {
            cmd_err(err, errlen, "not KEY=VALUE (program arguments go after --):", tok);
            return -1;
        }
        if (strncmp(tok, "shoal.", 6) == 0) {
            if (out->kparamc == CMDLINE_KPARAMS_MAX) {
                snprintf(err, errlen, "more than %d shoal.* keys", CMDLINE_KPARAMS_MAX);
                return -1;
            }
            out->kparams[out->kparamc++] = tok;
        } else {
            ptrs[envc++] = tok;
        }
    }
    ptrs[envc] = NULL;

    out->argc = argc;
    out->argv = argv;
    out->envc = envc;
    out->envp = ptrs;
    return 0;
}

const char *cmdline_kparam(const struct cmdline *c, const char *name)
{
    size_t nl = strlen(name);
    for (int i = 0; i < c->kparamc; i++) {
        const char *k = c->kparams[i] + 6; /* past "shoal." */
        if (strncmp(k, name, nl) == 0 && k[nl] == '=')
            return k + nl + 1;
    }
    return NULL;
}

/* The next token of a Unikraft line at *p: its extent [*start, return). */
static const char *uk_token(const char **p, const char **start)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    *start = s;
    int q = 0;
    while (*s && (q || (*s != ' ' && *s != '\t'))) {
        if (*s == '\\' && s[1]) {
            s += 2;
            continue;
        }
        if (*s == '"')
            q = !q;
        s++;
    }
    *p = s;
    return s;
}

static int uk_put(char *out, size_t outlen, size_t *n, const char *s, size_t len)
{
    if (*n + len + 2 > outlen)
        return -1;
    if (*n)
        out[(*n)++] = ' ';
    memcpy(out + *n, s, len);
    *n += len;
    out[*n] = '\0';
    return 0;
}

int cmdline_from_unikraft(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    const char *p = in, *t, *e;
    size_t n = 0;
    int have_dd = 0, in_env = 0;
    char buf[96];

    if (outlen == 0)
        return -1;
    out[0] = '\0';
    /* Is there a "--" at all? Without it every word is an argument. */
    for (const char *q = in; (e = uk_token(&q, &t)) != t;)
        if (e - t == 2 && t[0] == '-' && t[1] == '-')
            have_dd = 1;
    e = uk_token(&p, &t); /* argv[0] */
    if (e == t)
        return 0;
    if (!have_dd) {
        if (uk_put(out, outlen, &n, "--", 2) != 0)
            goto long_line;
        while ((e = uk_token(&p, &t)) != t)
            if (uk_put(out, outlen, &n, t, (size_t)(e - t)) != 0)
                goto long_line;
        return 0;
    }
    while ((e = uk_token(&p, &t)) != t) {
        size_t len = (size_t)(e - t);
        if (in_env) {
            if (len == 1 && t[0] == ']') {
                in_env = 0;
                continue;
            }
            if (uk_put(out, outlen, &n, t, len) != 0)
                goto long_line;
            continue;
        }
        if (len == 2 && t[0] == '-' && t[1] == '-') {
            if (uk_put(out, outlen, &n, "--", 2) != 0)
                goto long_line;
            while ((e = uk_token(&p, &t)) != t)
                if (uk_put(out, outlen, &n, t, (size_t)(e - t)) != 0)
                    goto long_line;
            return 0;
        }
        if (len == 10 && !memcmp(t, "env.vars=[", 10)) {
            in_env = 1;
            continue;
        }
        if (len > 10 && !memcmp(t, "netdev.ip=", 10)) {
            const char *cidr = t + 10, *c1 = memchr(cidr, ':', (size_t)(e - cidr));
            const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(e - c1 - 1)) : NULL;
            size_t gwlen = c1 ? (size_t)((c2 ? c2 : e) - c1 - 1) : 0;
            if (!c1 || gwlen == 0 || (size_t)(c1 - cidr) > 40 || gwlen > 40) {
                snprintf(err, errlen, "netdev.ip '%.*s' is not CIDR:GATEWAY",
                         (int)(len > 60 ? 60 : len), t);
                return -1;
            }
            snprintf(buf, sizeof buf, "shoal.ip=%.*s", (int)(c1 - cidr), cidr);
            if (uk_put(out, outlen, &n, buf, strlen(buf)) != 0)
                goto long_line;
            snprintf(buf, sizeof buf, "shoal.gw=%.*s", (int)gwlen, c1 + 1);
            if (uk_put(out, outlen, &n, buf, strlen(buf)) != 0)
                goto long_line;
        }
        /* any other library parameter: not ours */
    }
    snprintf(err, errlen, "%s",
             in_env ? "env.vars=[ has no closing ]" : "no -- after the parameters");
    return -1;
long_line:
    snprintf(err, errlen, "longer than %zu bytes once rewritten", outlen - 1);
    return -1;
}
