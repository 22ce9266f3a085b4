/* guestcmd.c - guest command line builder and presets. See guestcmd.h. */
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

/* ---- presets ------------------------------------------------------------- */

const char *gcmd_preset_name(gcmd_preset preset)
{
    switch (preset) {
    case GCMD_PRESET_SHOAL: return "shoal";
    case GCMD_PRESET_UNIKRAFT: return "unikraft";
    case GCMD_PRESET_SOLO5: return "solo5";
    case GCMD_PRESET_RAW: return "raw";
    }
    return "?";
}

/* Append one word, space-separated, quoted when it needs it. */
static void put_word(gcmd *c, const char *s)
{
    if (c->len)
        put(c, " ", 1);
    put_token(c, s);
}

static void build_shoal(gcmd *c, const gcmd_run *r)
{
    char tmp[48];
    if (r->ip) {
        snprintf(tmp, sizeof tmp, "%s/%d", r->ip, r->prefix);
        gcmd_env(c, "shoal.ip", tmp);
        if (!r->no_gw)
            gcmd_env(c, "shoal.gw", r->gw ? r->gw : "");
        if (r->mac)
            gcmd_env(c, "shoal.mac", r->mac);
    }
    for (size_t i = 0; i < r->n_env; i++)
        gcmd_env(c, r->env[i].key, r->env[i].value ? r->env[i].value : "");
    for (size_t i = 0; i < r->n_args; i++)
        gcmd_arg(c, r->args[i] ? r->args[i] : "");
}

/* Unikraft's ukboot hides argv[0] from its parameter parser, and takes the
 * words before "--" as library parameters only when a "--" follows them
 * and at least one parameter precedes it (with "--" first the app would
 * get it as argv[1]). A list is `name=[ a b ]`: its last element ends at
 * a word ending in ']'. */
static int build_unikraft(gcmd *c, const gcmd_run *r, char *err, size_t errlen)
{
    char tmp[80];
    int params = 0;

    if (r->argv0)
        put_word(c, r->argv0);
    if (r->ip) {
        snprintf(tmp, sizeof tmp, "netdev.ip=%s/%d:%s", r->ip, r->prefix, r->gw ? r->gw : "");
        put_word(c, tmp);
        params++;
    }
    if (r->n_env) {
        put_word(c, "env.vars=[");
        for (size_t i = 0; i < r->n_env; i++) {
            const char *v = r->env[i].value ? r->env[i].value : "";
            size_t vl = strlen(v);
            char kv[GCMD_MAX];
            if (vl && v[vl - 1] == ']') {
                snprintf(err, errlen,
                         "env '%s': a value ending in ']' would end Unikraft's env.vars list "
                         "(the 'unikraft' command line has no escape for it)",
                         r->env[i].key);
                return -1;
            }
            if ((size_t)snprintf(kv, sizeof kv, "%s=%s", r->env[i].key, v) >= sizeof kv) {
                c->overflow = 1;
                break;
            }
            put_word(c, kv);
        }
        put_word(c, "]");
        params++;
    }
    if (params)
        put_word(c, "--");
    for (size_t i = 0; i < r->n_args; i++)
        put_word(c, r->args[i] ? r->args[i] : "");
    return 0;
}

/* solo5 and raw: the arguments joined by one space, nothing added. */
static int build_verbatim(gcmd *c, gcmd_preset preset, const gcmd_run *r, char *err, size_t errlen)
{
    if (r->n_env) {
        snprintf(err, errlen,
                 "env '%s': the '%s' command line carries the arguments only, so the guest "
                 "would never see it",
                 r->env[0].key, gcmd_preset_name(preset));
        return -1;
    }
    for (size_t i = 0; i < r->n_args; i++) {
        const char *a = r->args[i] ? r->args[i] : "";
        if (i)
            put(c, " ", 1);
        for (const char *p = a; *p; p++) {
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                c->bad = 1;
        }
        put(c, a, strlen(a));
    }
    return 0;
}

int gcmd_build(gcmd *c, gcmd_preset preset, const gcmd_run *r, char *err, size_t errlen)
{
    int rc = 0;
    gcmd_init(c);
    switch (preset) {
    case GCMD_PRESET_SHOAL: build_shoal(c, r); break;
    case GCMD_PRESET_UNIKRAFT: rc = build_unikraft(c, r, err, errlen); break;
    case GCMD_PRESET_SOLO5:
    case GCMD_PRESET_RAW: rc = build_verbatim(c, preset, r, err, errlen); break;
    default:
        snprintf(err, errlen, "unknown command line preset %d", (int)preset);
        rc = -1;
        break;
    }
    if (rc != 0) {
        c->buf[0] = 0;
        c->len = 0;
        return -1;
    }
    return gcmd_finish(c, err, errlen);
}

int gcmd_build_split(gcmd *line, gcmd *record, gcmd_preset preset, const gcmd_run *r, char *err,
                     size_t errlen)
{
    gcmd_run keys, rest;

    gcmd_init(record);
    if (gcmd_build(line, preset, r, err, errlen) != 0)
        return -1;
    if (preset != GCMD_PRESET_SHOAL)
        return 0;
    /* The whole line fits and is valid, so each part does. */
    keys = *r;
    keys.env = NULL;
    keys.n_env = 0;
    keys.args = NULL;
    keys.n_args = 0;
    rest = *r;
    rest.ip = NULL;
    gcmd_init(line);
    build_shoal(line, &keys);
    build_shoal(record, &rest);
    if (gcmd_finish(line, err, errlen) != 0 || gcmd_finish(record, err, errlen) != 0)
        return -1;
    return 0;
}
