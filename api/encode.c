/*
 * encode.c - results -> JSON exactly as docs/api.md shows them, and the
 * api_sink the backend emits into.
 *
 * JSON is written straight into one growing buffer (no document tree): a
 * list of 1,000 instances is the hottest response the daemon serves, and
 * building then serializing a jansson tree for it cost more than the rest
 * of the request together. The output is byte-for-byte what jansson's
 * json_dumps(JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))
 * gave for the same values (tests/api compares), so decoders and golden
 * outputs see no change.
 *
 * Strings from the backend may carry guest-written text; anything that is
 * not valid UTF-8 has its bad bytes replaced by '?' rather than failing the
 * response.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"

/* ---- the writer ----------------------------------------------------------- */

/* A growing buffer plus "is the next member/element the first of its
 * container" - the only state JSON punctuation needs. After an allocation
 * failure every call is a no-op and oom stays set. */
typedef struct jw {
    char *buf;
    size_t len, cap;
    bool first;
    bool oom;
} jw;

static bool jw_reserve(jw *w, size_t more)
{
    size_t cap;
    char *b;

    if (w->oom)
        return false;
    if (w->len + more + 1 <= w->cap)
        return true;
    cap = w->cap ? w->cap : 1024;
    while (cap < w->len + more + 1)
        cap *= 2;
    b = realloc(w->buf, cap);
    if (b == NULL) {
        w->oom = true;
        return false;
    }
    w->buf = b;
    w->cap = cap;
    return true;
}

/* The buffer is terminated only by jw_take: appends skip the NUL. */
static inline void jw_raw(jw *w, const char *s, size_t n)
{
    if (w->len + n + 1 > w->cap && !jw_reserve(w, n))
        return;
    if (w->oom)
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static inline void jw_ch(jw *w, char c)
{
    if (w->len + 2 > w->cap && !jw_reserve(w, 1))
        return;
    if (w->oom)
        return;
    w->buf[w->len++] = c;
}

/* Formatted text; -1 (and oom set) if it could not be added. */
static int jw_vprintf(jw *w, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static int jw_vprintf(jw *w, const char *fmt, va_list ap)
{
    for (;;) {
        size_t room = w->oom ? 0 : w->cap - w->len;
        va_list aq;
        int n;

        va_copy(aq, ap);
        n = vsnprintf(room ? w->buf + w->len : NULL, room, fmt, aq);
        va_end(aq);
        if (n < 0) {
            w->oom = true;
            return -1;
        }
        if ((size_t)n < room) {
            w->len += (size_t)n;
            return 0;
        }
        if (!jw_reserve(w, (size_t)n))
            return -1;
    }
}

static void jw_printf(jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void jw_printf(jw *w, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    jw_vprintf(w, fmt, ap);
    va_end(ap);
}

/* Length of a valid UTF-8 sequence at s (n bytes left) or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t k, len;
    unsigned long cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* A JSON string, or null for NULL. Escapes as jansson does: '"', '\\',
 * \b \f \n \r \t, other C0 controls as \u00XX; everything else (DEL,
 * non-ASCII) verbatim. Invalid UTF-8 bytes become '?'. */
static void jw_str(jw *w, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s;
    size_t len, i, run, k;

    if (s == NULL) {
        jw_raw(w, "null", 4);
        return;
    }
    len = strlen(s);
    jw_ch(w, '"');
    for (i = 0; i < len;) {
        /* copy the longest run that needs nothing done in one go */
        for (run = i;
             run < len && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\'; run++)
            ;
        if (run > i) {
            jw_raw(w, s + i, run - i);
            i = run;
            continue;
        }
        if (p[i] >= 0x80) {
            k = utf8_seq(p + i, len - i);
            if (k == 0) {
                jw_ch(w, '?');
                k = 1;
            } else {
                jw_raw(w, s + i, k);
            }
            i += k;
            continue;
        }
        switch (p[i]) {
        case '"': jw_raw(w, "\\\"", 2); break;
        case '\\': jw_raw(w, "\\\\", 2); break;
        case '\b': jw_raw(w, "\\b", 2); break;
        case '\f': jw_raw(w, "\\f", 2); break;
        case '\n': jw_raw(w, "\\n", 2); break;
        case '\r': jw_raw(w, "\\r", 2); break;
        case '\t': jw_raw(w, "\\t", 2); break;
        default: {
            char u[6] = { '\\', 'u', '0', '0', hex[p[i] >> 4], hex[p[i] & 15] };
            jw_raw(w, u, sizeof u);
        }
        }
        i++;
    }
    jw_ch(w, '"');
}

/* Separator before a member or element: nothing for the first one. */
static void jw_sep(jw *w)
{
    if (!w->first)
        jw_ch(w, ',');
    w->first = false;
}

/* "key": - the value follows (keys are literals here: no escaping). */
static void jw_key(jw *w, const char *key)
{
    jw_sep(w);
    jw_ch(w, '"');
    jw_raw(w, key, strlen(key));
    jw_raw(w, "\":", 2);
}

static void jw_open(jw *w, char c)
{
    jw_ch(w, c);
    w->first = true;
}

static void jw_close(jw *w, char c)
{
    jw_ch(w, c);
    w->first = false;
}

static void jw_int(jw *w, int64_t v)
{
    /* digits by hand: printf was a tenth of a list row's encoding */
    char b[24];
    size_t i = sizeof b;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do {
        b[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        b[--i] = '-';
    jw_raw(w, b + i, sizeof b - i);
}

static void jw_bool(jw *w, bool v)
{
    if (v)
        jw_raw(w, "true", 4);
    else
        jw_raw(w, "false", 5);
}

/* A real as jansson prints it with precision 15: "%.15g", ".0" added when
 * that looks like an integer, no '+' or leading zeros in the exponent. */
static void jw_real15(jw *w, double v)
{
    char b[40], out[40];
    size_t i, o = 0;

    snprintf(b, sizeof b, "%.15g", v);
    for (i = 0; b[i] != '\0' && o < sizeof out - 3; i++) {
        out[o++] = b[i];
        if (b[i] == 'e') {
            if (b[i + 1] == '+')
                i++;
            else if (b[i + 1] == '-')
                out[o++] = b[++i];
            while (b[i + 1] == '0' && b[i + 2] != '\0')
                i++;
        }
    }
    out[o] = '\0';
    if (strchr(out, '.') == NULL && strchr(out, 'e') == NULL) {
        out[o++] = '.';
        out[o++] = '0';
        out[o] = '\0';
    }
    jw_raw(w, out, o);
}

/* A duration in milliseconds for people: the precision it carries (the
 * guest measures microseconds, the daemon milliseconds), so rounded to
 * 3 decimals and written in its shortest form - 1.697, 12, 0.5 - never
 * 1.6970000000000001. Integer arithmetic on the microseconds, so the
 * digits are exact; at most 15 significant digits, so a JSON reader that
 * parses this into a double and prints it back with jansson's precision
 * 15 gets the same text. From 10^12 ms (31 years) whole milliseconds, from
 * 2^53 jansson's form: nonsense values stay valid JSON. Negative (the
 * "unknown" marker) and non-finite values are null. */
/* Nearest integer to x >= 0, halves away from zero (llround without
 * libm, which this library does not link). x - i is exact below 2^52. */
static int64_t round_nonneg(double x)
{
    int64_t i = (int64_t)x;

    return x - (double)i >= 0.5 ? i + 1 : i;
}

static void jw_opt_ms(jw *w, double v)
{
    if (v < 0 || !isfinite(v)) {
        jw_raw(w, "null", 4);
        return;
    }
    if (v < 1e12) {
        int64_t us = round_nonneg(v * 1000.0);
        int64_t frac = us % 1000;
        int digits = 3;

        if (frac == 0) {
            jw_int(w, us / 1000);
            return;
        }
        while (frac % 10 == 0) {
            frac /= 10;
            digits--;
        }
        jw_printf(w, "%" PRId64 ".%0*" PRId64, us / 1000, digits, frac);
    } else if (v < 9007199254740992.0) {
        jw_int(w, round_nonneg(v));
    } else {
        jw_real15(w, v);
    }
}

/* Two digits of v (0..99) at p. */
static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

void api_format_time(int64_t t, char buf[32])
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (t >= 0 && t <= 253402300799) { /* 1970 .. 9999-12-31T23:59:59Z */
        /* the civil date of a day count (H. Hinnant's days_from_civil,
         * inverted): gmtime_r + strftime were a tenth of a list row */
        int64_t days = t / 86400, secs = t % 86400;
        int64_t z = days + 719468, era = z / 146097;
        unsigned doe = (unsigned)(z - era * 146097);
        unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        unsigned mp = (5 * doy + 2) / 153;
        unsigned d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
        unsigned y = (unsigned)(yoe + era * 400) + (m <= 2);

        put2(buf, y / 100);
        put2(buf + 2, y % 100);
        buf[4] = '-';
        put2(buf + 5, m);
        buf[7] = '-';
        put2(buf + 8, d);
        buf[10] = 'T';
        put2(buf + 11, (unsigned)(secs / 3600));
        buf[13] = ':';
        put2(buf + 14, (unsigned)(secs / 60 % 60));
        buf[16] = ':';
        put2(buf + 17, (unsigned)(secs % 60));
        memcpy(buf + 19, "Z", 2);
        return;
    }
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, 32, "1970-01-01T00:00:00Z");
}

static void jw_time(jw *w, int64_t t)
{
    char buf[32];

    if (t == API_TIME_NONE) {
        jw_raw(w, "null", 4);
        return;
    }
    api_format_time(t, buf);
    jw_str(w, buf);
}

/* {"k": "v", ...}; a NULL value is written as "". */
static void jw_kv(jw *w, const api_kv *kv, size_t n)
{
    size_t i;

    jw_open(w, '{');
    for (i = 0; i < n; i++) {
        if (kv[i].key == NULL)
            continue;
        jw_sep(w);
        jw_str(w, kv[i].key);
        jw_ch(w, ':');
        jw_str(w, kv[i].value != NULL ? kv[i].value : "");
    }
    jw_close(w, '}');
}

static void jw_strs(jw *w, const char *const *s, size_t n)
{
    size_t i;

    jw_open(w, '[');
    for (i = 0; i < n; i++) {
        jw_sep(w);
        jw_str(w, s[i] != NULL ? s[i] : "");
    }
    jw_close(w, ']');
}

/* ---- objects ------------------------------------------------------------ */

static void enc_ports(jw *w, const api_port *p, size_t n)
{
    size_t i;

    jw_open(w, '[');
    for (i = 0; i < n; i++) {
        const char *proto = api_proto_str(p[i].protocol);
        jw_sep(w);
        jw_open(w, '{');
        jw_key(w, "host");
        jw_int(w, p[i].host);
        jw_key(w, "guest");
        jw_int(w, p[i].guest);
        jw_key(w, "protocol");
        jw_str(w, proto != NULL ? proto : "tcp");
        jw_close(w, '}');
    }
    jw_close(w, ']');
}

static void enc_placement(jw *w, bool spread, const api_rule *r, size_t n)
{
    size_t i;

    jw_open(w, '{');
    jw_key(w, "policy");
    jw_str(w, spread ? "spread" : "binpack");
    jw_key(w, "rules");
    jw_open(w, '[');
    for (i = 0; i < n; i++) {
        const char *kind = api_rule_kind_str(r[i].kind);
        jw_sep(w);
        jw_open(w, '{');
        jw_key(w, "kind");
        jw_str(w, kind != NULL ? kind : "affinity");
        jw_key(w, "key");
        jw_str(w, r[i].key != NULL ? r[i].key : "");
        jw_key(w, "value");
        jw_str(w, r[i].value);
        jw_key(w, "soft");
        jw_bool(w, r[i].soft);
        jw_key(w, "weight");
        jw_int(w, (int)r[i].weight);
        jw_close(w, '}');
    }
    jw_close(w, ']');
    jw_close(w, '}');
}

static void enc_image(jw *w, const api_image *img)
{
    jw_open(w, '{');
    jw_key(w, "digest");
    jw_str(w, img->digest);
    jw_key(w, "size");
    jw_int(w, (int64_t)img->size);
    jw_key(w, "boot");
    jw_str(w, img->boot);
    jw_key(w, "format");
    jw_str(w, img->format);
    jw_key(w, "kind");
    jw_str(w, img->kind);
    jw_key(w, "evidence");
    jw_strs(w, img->evidence, img->n_evidence);
    jw_key(w, "profile");
    jw_open(w, '{');
    jw_key(w, "firmware");
    jw_str(w, img->firmware);
    jw_key(w, "cmdline");
    jw_str(w, img->cmdline);
    jw_key(w, "exit");
    jw_str(w, img->exit);
    jw_key(w, "ready"); /* null: the kind's default */
    jw_str(w, img->ready);
    jw_key(w, "health"); /* null: none */
    if (img->health) {
        jw_open(w, '{');
        jw_key(w, "probe");
        jw_str(w, img->health);
        jw_key(w, "interval_s");
        jw_int(w, img->health_interval_s);
        jw_key(w, "timeout_s");
        jw_int(w, img->health_timeout_s);
        jw_key(w, "retries");
        jw_int(w, img->health_retries);
        jw_close(w, '}');
    } else {
        jw_str(w, NULL);
    }
    jw_key(w, "warm_pool");
    jw_int(w, img->warm_pool);
    jw_close(w, '}');
    jw_key(w, "initrd");
    if (img->initrd) {
        jw_open(w, '{');
        jw_key(w, "digest");
        jw_str(w, img->initrd);
        jw_key(w, "size");
        jw_int(w, (int64_t)img->initrd_size);
        jw_close(w, '}');
    } else {
        jw_str(w, NULL);
    }
    jw_key(w, "refs");
    jw_strs(w, img->refs, img->n_refs);
    jw_key(w, "labels");
    jw_kv(w, img->labels, img->n_labels);
    jw_key(w, "created");
    jw_time(w, img->created);
    jw_key(w, "instances");
    jw_int(w, img->instances);
    jw_close(w, '}');
}

static void enc_runs(jw *w, const api_run *r, size_t n)
{
    size_t i;

    jw_open(w, '[');
    for (i = 0; i < n; i++) {
        jw_sep(w);
        jw_open(w, '{');
        jw_key(w, "started");
        jw_time(w, r[i].started);
        jw_key(w, "ended");
        jw_time(w, r[i].ended);
        jw_key(w, "exit_code");
        if (r[i].has_exit_code)
            jw_int(w, r[i].exit_code);
        else
            jw_raw(w, "null", 4);
        jw_key(w, "outcome");
        jw_str(w, r[i].outcome);
        jw_key(w, "reason");
        jw_str(w, r[i].reason);
        jw_close(w, '}');
    }
    jw_close(w, ']');
}

static void enc_instance(jw *w, const api_instance *in)
{
    const char *state = api_state_str(in->state);
    const char *restart = api_restart_str(in->restart);

    jw_open(w, '{');
    jw_key(w, "id");
    jw_str(w, in->id);
    jw_key(w, "name");
    jw_str(w, in->name);
    jw_key(w, "image");
    jw_str(w, in->image);
    jw_key(w, "image_digest");
    jw_str(w, in->image_digest);
    jw_key(w, "host");
    jw_str(w, in->host);
    jw_key(w, "state");
    jw_str(w, state != NULL ? state : "lost");
    jw_key(w, "memory_mib");
    jw_int(w, in->memory_mib);
    jw_key(w, "vcpus");
    jw_int(w, in->vcpus);
    jw_key(w, "args");
    jw_strs(w, in->args, in->n_args);
    jw_key(w, "env");
    jw_kv(w, in->env, in->n_env);
    jw_key(w, "labels");
    jw_kv(w, in->labels, in->n_labels);
    jw_key(w, "restart");
    jw_str(w, restart != NULL ? restart : "never");
    jw_key(w, "restarts");
    jw_int(w, in->restarts);
    jw_key(w, "network");
    jw_open(w, '{');
    jw_key(w, "enabled");
    jw_bool(w, in->network.enabled);
    jw_key(w, "address");
    jw_str(w, in->network.address);
    jw_key(w, "gateway");
    jw_str(w, in->network.gateway);
    jw_key(w, "mac");
    jw_str(w, in->network.mac);
    jw_key(w, "ports");
    enc_ports(w, in->network.ports, in->network.n_ports);
    jw_close(w, '}');
    jw_key(w, "placement");
    enc_placement(w, in->spread, in->rules, in->n_rules);
    jw_key(w, "created");
    jw_time(w, in->created);
    jw_key(w, "started");
    jw_time(w, in->started);
    jw_key(w, "boot_ms");
    jw_opt_ms(w, in->boot_ms);
    jw_key(w, "ready_ms");
    jw_opt_ms(w, in->ready_ms);
    jw_key(w, "exit_code");
    if (in->has_exit_code)
        jw_int(w, in->exit_code);
    else
        jw_raw(w, "null", 4);
    jw_key(w, "last_error");
    jw_str(w, in->last_error);
    jw_key(w, "ready");
    jw_str(w, in->ready);
    jw_key(w, "cmdline"); /* the per-run override, or null */
    jw_str(w, in->cmdline);
    jw_key(w, "initrd"); /* the run's own, or null (the image's) */
    jw_str(w, in->initrd);
    jw_key(w, "scale_to_zero"); /* {"idle_s": N}, or null (off) */
    if (in->idle_s) {
        jw_open(w, '{');
        jw_key(w, "idle_s");
        jw_int(w, in->idle_s);
        jw_close(w, '}');
    } else {
        jw_raw(w, "null", 4);
    }
    jw_key(w, "health");
    if (in->health) {
        const api_health *h = in->health;
        jw_open(w, '{');
        jw_key(w, "probe");
        jw_str(w, h->probe);
        jw_key(w, "interval_s");
        if (h->probe)
            jw_int(w, h->interval_s);
        else
            jw_raw(w, "null", 4);
        jw_key(w, "timeout_s");
        if (h->probe)
            jw_int(w, h->timeout_s);
        else
            jw_raw(w, "null", 4);
        jw_key(w, "retries");
        if (h->probe)
            jw_int(w, h->retries);
        else
            jw_raw(w, "null", 4);
        jw_key(w, "status");
        jw_str(w, h->status ? h->status : "none");
        jw_key(w, "failures");
        jw_int(w, h->failures);
        jw_key(w, "last_check");
        jw_time(w, h->last_check);
        jw_key(w, "last_result");
        jw_str(w, h->last_result);
        jw_close(w, '}');
    } else {
        jw_raw(w, "null", 4);
    }
    if (in->has_runs) {
        jw_key(w, "runs");
        enc_runs(w, in->runs, in->n_runs);
    }
    jw_close(w, '}');
}

static void enc_resources(jw *w, const api_resources *r)
{
    jw_open(w, '{');
    jw_key(w, "memory_mib");
    jw_int(w, (int64_t)r->memory_mib);
    jw_key(w, "vcpus");
    jw_int(w, (int)r->vcpus);
    jw_key(w, "slots");
    jw_int(w, (int)r->slots);
    jw_close(w, '}');
}

static void enc_host(jw *w, const api_host *h)
{
    jw_open(w, '{');
    jw_key(w, "name");
    jw_str(w, h->name);
    jw_key(w, "uri");
    jw_str(w, h->uri);
    jw_key(w, "state");
    jw_str(w, h->state);
    jw_key(w, "cordoned");
    jw_bool(w, h->cordoned);
    jw_key(w, "domain_type");
    jw_str(w, h->domain_type);
    jw_key(w, "kvm");
    if (h->kvm < 0)
        jw_raw(w, "null", 4);
    else
        jw_bool(w, h->kvm);
    jw_key(w, "domain_type_reason");
    jw_str(w, h->domain_type_reason);
    jw_key(w, "labels");
    jw_kv(w, h->labels, h->n_labels);
    jw_key(w, "capacity");
    enc_resources(w, &h->capacity);
    jw_key(w, "used");
    enc_resources(w, &h->used);
    jw_key(w, "instances");
    jw_int(w, h->instances);
    jw_key(w, "usage");
    jw_open(w, '{');
    jw_key(w, "model");
    jw_str(w, h->capacity_model);
    jw_key(w, "reserved_memory_mib");
    jw_int(w, (int64_t)h->reserved_memory_mib);
    jw_key(w, "available_memory_mib");
    if (h->available_memory_mib)
        jw_int(w, (int64_t)h->available_memory_mib);
    else
        jw_raw(w, "null", 4);
    jw_key(w, "charged_cpu_milli");
    jw_int(w, (int64_t)h->charged_cpu_milli);
    jw_key(w, "busy_cpu_milli");
    jw_int(w, (int64_t)h->busy_cpu_milli);
    jw_key(w, "sampled_ms_ago");
    if (h->sampled_ms_ago >= 0)
        jw_int(w, h->sampled_ms_ago);
    else
        jw_raw(w, "null", 4);
    jw_key(w, "stale");
    jw_bool(w, h->usage_stale);
    jw_close(w, '}');
    jw_key(w, "others");
    jw_open(w, '{');
    jw_key(w, "domains");
    jw_int(w, (int64_t)h->others_domains);
    jw_key(w, "memory_mib");
    jw_int(w, (int64_t)h->others_memory_mib);
    jw_key(w, "vcpus");
    jw_int(w, (int64_t)h->others_vcpus);
    jw_key(w, "busy_cpu_milli");
    jw_int(w, (int64_t)h->others_cpu_milli);
    jw_close(w, '}');
    jw_key(w, "free_memory_mib");
    jw_int(w, (int64_t)h->free_memory_mib);
    jw_key(w, "last_error");
    jw_str(w, h->last_error);
    jw_key(w, "down_since");
    jw_time(w, h->down_since); /* API_TIME_NONE (0): up */
    jw_key(w, "guest_subnet");
    jw_str(w, h->guest_subnet);
    jw_close(w, '}');
}

/* "ok" and, when not, "error" {code, message}: a bulk item's or a move's
 * outcome. */
static void enc_outcome(jw *w, bool ok, api_code code, const char *message)
{
    jw_key(w, "ok");
    jw_bool(w, ok);
    if (!ok) {
        jw_key(w, "error");
        jw_open(w, '{');
        jw_key(w, "code");
        jw_str(w, api_code_str(code == API_OK ? API_E_INTERNAL : code));
        jw_key(w, "message");
        jw_str(w, message != NULL ? message : "");
        jw_close(w, '}');
    }
}

static void enc_plan(jw *w, const api_plan *p)
{
    size_t i, failed = 0;

    jw_open(w, '{');
    jw_key(w, "moves");
    jw_open(w, '[');
    for (i = 0; i < p->n_moves; i++) {
        const api_move *m = &p->moves[i];
        jw_sep(w);
        jw_open(w, '{');
        jw_key(w, "instance");
        jw_str(w, m->instance);
        jw_key(w, "from");
        jw_str(w, m->from);
        jw_key(w, "to");
        jw_str(w, m->to);
        if (p->executed) {
            enc_outcome(w, m->ok, m->code, m->message);
            failed += !m->ok;
        }
        jw_close(w, '}');
    }
    jw_close(w, ']');
    if (p->executed) {
        jw_key(w, "succeeded");
        jw_int(w, (int64_t)(p->n_moves - failed));
        jw_key(w, "failed");
        jw_int(w, (int64_t)failed);
    }
    jw_key(w, "hosts_freed");
    jw_strs(w, p->hosts_freed, p->n_hosts_freed);
    jw_key(w, "hosts_before");
    jw_int(w, p->hosts_before);
    jw_key(w, "hosts_after");
    jw_int(w, p->hosts_after);
    jw_key(w, "executed");
    jw_bool(w, p->executed);
    jw_close(w, '}');
}

static void enc_bulk_item(jw *w, const api_bulk_item *it)
{
    jw_open(w, '{');
    jw_key(w, "id");
    jw_str(w, it->id);
    jw_key(w, "name");
    jw_str(w, it->name);
    if (it->key != NULL) {
        jw_key(w, "key");
        jw_str(w, it->key);
    }
    enc_outcome(w, it->ok, it->code, it->message);
    jw_close(w, '}');
}

/* A token (/v1/tokens). "secret" only in the answer to its create. */
static void enc_quota(jw *w, const char *key, uint32_t max, uint32_t used)
{
    jw_key(w, key);
    jw_open(w, '{');
    jw_key(w, "max");
    if (max == 0)
        jw_raw(w, "null", 4);
    else
        jw_int(w, max);
    jw_key(w, "used");
    jw_int(w, used);
    jw_close(w, '}');
}

static void enc_token(jw *w, const api_token *t)
{
    jw_open(w, '{');
    jw_key(w, "id");
    jw_str(w, t->id);
    jw_key(w, "name");
    jw_str(w, t->name);
    jw_key(w, "scope");
    jw_str(w, api_scope_name(t->scope));
    jw_key(w, "selector");
    if (t->selector == NULL || t->selector[0] == '\0')
        jw_raw(w, "null", 4);
    else
        jw_str(w, t->selector);
    jw_key(w, "quotas");
    jw_open(w, '{');
    enc_quota(w, "instances", t->max_instances, t->used_instances);
    enc_quota(w, "memory_mib", t->max_memory_mib, t->used_memory_mib);
    enc_quota(w, "vcpus", t->max_vcpus, t->used_vcpus);
    jw_close(w, '}');
    jw_key(w, "created");
    jw_time(w, t->created);
    jw_key(w, "expires");
    jw_time(w, t->expires);
    jw_key(w, "expired");
    jw_bool(w, t->expired);
    jw_key(w, "rate");
    if (t->rate == 0)
        jw_raw(w, "null", 4);
    else
        jw_int(w, t->rate);
    jw_key(w, "burst");
    if (t->rate == 0)
        jw_raw(w, "null", 4);
    else
        jw_int(w, t->burst ? t->burst : t->rate);
    if (t->secret != NULL) {
        jw_key(w, "secret");
        jw_str(w, t->secret);
    }
    jw_close(w, '}');
}

/* ---- sink --------------------------------------------------------------- */

/* LIST and ITEMS sinks write '{"items":[' up front and close the array in
 * api_sink_finish; ONE sinks hold one object; TEXT sinks plain text. */
struct api_sink {
    api_sink_kind kind;
    api_sink_shape shape;
    bool failed;
    size_t count;
    size_t n_ok; /* BULK: items with ok true */
    char *next;  /* LIST cursor or NULL */
    jw w;
    api_sink_capture_fn cap; /* capture sink: each object goes here, encoded */
    void *cap_cls;
    size_t cap_ok; /* n_ok at the last capture */
};

api_sink *api_sink_new(api_sink_kind kind, api_sink_shape shape)
{
    api_sink *s = calloc(1, sizeof *s);

    if (s == NULL)
        return NULL;
    s->kind = kind;
    s->shape = shape;
    if (kind != API_SINK_TEXT && shape != API_SHAPE_ONE) {
        jw_open(&s->w, '{');
        jw_key(&s->w, "items");
        jw_open(&s->w, '[');
        if (s->w.oom) {
            api_sink_free(s);
            return NULL;
        }
    }
    return s;
}

void api_sink_free(api_sink *s)
{
    if (s == NULL)
        return;
    free(s->w.buf);
    free(s->next);
    free(s);
}

size_t api_sink_count(const api_sink *s)
{
    return s != NULL ? s->count : 0;
}

/* May an object of this kind go in now? Marks the sink failed if not. */
static bool sink_accepts(api_sink *s, api_sink_kind kind, const void *obj)
{
    if (s == NULL)
        return false;
    if (s->failed || s->kind != kind || obj == NULL ||
        (s->shape == API_SHAPE_ONE && s->count > 0)) {
        s->failed = true;
        return false;
    }
    if (s->shape != API_SHAPE_ONE && s->cap == NULL)
        jw_sep(&s->w);
    return true;
}

static int sink_added(api_sink *s)
{
    if (s->w.oom) {
        s->failed = true;
        return -1;
    }
    s->count++;
    if (s->cap != NULL) {
        bool ok = s->n_ok > s->cap_ok;
        s->cap_ok = s->n_ok;
        if (s->cap(s->cap_cls, s->w.buf, s->w.len, ok) != 0) {
            s->failed = true;
            return -1;
        }
        s->w.len = 0;
    }
    return 0;
}

api_sink *api_sink_new_capture(api_sink_kind kind, api_sink_shape shape, api_sink_capture_fn fn,
                               void *cls)
{
    api_sink *s = calloc(1, sizeof *s);

    if (s == NULL)
        return NULL;
    s->kind = kind;
    s->shape = shape;
    s->cap = fn;
    s->cap_cls = cls;
    return s;
}

static char *jw_take(jw *w, size_t *len);

int api_sink_raw(api_sink *s, api_sink_kind kind, const char *json, size_t len, bool ok)
{
    if (!sink_accepts(s, kind, json))
        return -1;
    jw_raw(&s->w, json, len);
    if (ok)
        s->n_ok++;
    return sink_added(s);
}

const char *api_sink_cursor(const api_sink *s)
{
    return s != NULL ? s->next : NULL;
}

int api_sink_image(api_sink *s, const api_image *img)
{
    if (!sink_accepts(s, API_SINK_IMAGE, img))
        return -1;
    enc_image(&s->w, img);
    return sink_added(s);
}

int api_sink_instance(api_sink *s, const api_instance *inst)
{
    if (!sink_accepts(s, API_SINK_INSTANCE, inst))
        return -1;
    enc_instance(&s->w, inst);
    return sink_added(s);
}

char *api_encode_instance(const api_instance *inst, size_t *len)
{
    jw w = { 0 };

    *len = 0;
    enc_instance(&w, inst);
    return jw_take(&w, len);
}

int api_sink_instance_json(api_sink *s, const char *json, size_t len)
{
    return api_sink_raw(s, API_SINK_INSTANCE, json, len, false);
}

int api_sink_host(api_sink *s, const api_host *host)
{
    if (!sink_accepts(s, API_SINK_HOST, host))
        return -1;
    enc_host(&s->w, host);
    return sink_added(s);
}

int api_sink_plan(api_sink *s, const api_plan *plan)
{
    if (!sink_accepts(s, API_SINK_PLAN, plan))
        return -1;
    enc_plan(&s->w, plan);
    return sink_added(s);
}

int api_sink_bulk_item(api_sink *s, const api_bulk_item *item)
{
    if (!sink_accepts(s, API_SINK_BULK, item))
        return -1;
    enc_bulk_item(&s->w, item);
    if (item->ok)
        s->n_ok++;
    return sink_added(s);
}

int api_sink_token(api_sink *s, const api_token *tok)
{
    if (!sink_accepts(s, API_SINK_TOKEN, tok))
        return -1;
    enc_token(&s->w, tok);
    return sink_added(s);
}

int api_sink_next(api_sink *s, const char *cursor)
{
    if (s == NULL || s->failed)
        return -1;
    free(s->next);
    s->next = NULL;
    if (cursor == NULL)
        return 0;
    if (!api_valid_cursor(cursor)) {
        s->failed = true;
        return -1;
    }
    s->next = strdup(cursor);
    if (s->next == NULL) {
        s->failed = true;
        return -1;
    }
    return 0;
}

int api_sink_printf(api_sink *s, const char *fmt, ...)
{
    va_list ap;
    int rc;

    if (s == NULL || s->failed || s->kind != API_SINK_TEXT) {
        if (s != NULL)
            s->failed = true;
        return -1;
    }
    va_start(ap, fmt);
    rc = jw_vprintf(&s->w, fmt, ap);
    va_end(ap);
    if (rc != 0)
        s->failed = true;
    return rc;
}

/* Hand the writer's buffer to the caller; NULL (buffer freed) if it ran
 * out of memory. The writer is empty afterwards either way. */
static char *jw_take(jw *w, size_t *len)
{
    char *out;

    if (w->oom || !jw_reserve(w, 0)) {
        free(w->buf);
        memset(w, 0, sizeof *w);
        return NULL;
    }
    w->buf[w->len] = '\0';
    out = w->buf;
    *len = w->len;
    memset(w, 0, sizeof *w);
    return out;
}

char *api_sink_finish(api_sink *s, size_t *len)
{
    *len = 0;
    if (s == NULL || s->failed)
        return NULL;
    switch (s->shape) {
    case API_SHAPE_ONE:
        if (s->kind != API_SINK_TEXT && s->count == 0)
            return NULL;
        return jw_take(&s->w, len);
    case API_SHAPE_LIST:
        jw_close(&s->w, ']');
        jw_key(&s->w, "next");
        jw_str(&s->w, s->next);
        jw_close(&s->w, '}');
        return jw_take(&s->w, len);
    case API_SHAPE_ITEMS:
        jw_close(&s->w, ']');
        jw_close(&s->w, '}');
        return jw_take(&s->w, len);
    case API_SHAPE_BULK:
        jw_close(&s->w, ']');
        jw_key(&s->w, "succeeded");
        jw_int(&s->w, (int64_t)s->n_ok);
        jw_key(&s->w, "failed");
        jw_int(&s->w, (int64_t)(s->count - s->n_ok));
        jw_close(&s->w, '}');
        return jw_take(&s->w, len);
    }
    return NULL;
}

/* ---- errors and events -------------------------------------------------- */

char *api_encode_error(const api_status *st, size_t *len)
{
    jw w = { 0 };

    *len = 0;
    jw_open(&w, '{');
    jw_key(&w, "error");
    jw_open(&w, '{');
    jw_key(&w, "code");
    jw_str(&w, api_code_str(st->code));
    jw_key(&w, "message");
    jw_str(&w, st->message);
    if (st->field[0] != '\0') {
        jw_key(&w, "field");
        jw_str(&w, st->field);
    }
    jw_close(&w, '}');
    jw_close(&w, '}');
    return jw_take(&w, len);
}

/* "key":"v" unless the fixed-size field is empty; arr need not be
 * terminated (at most n bytes are read). */
static void jw_field(jw *w, const char *key, const char *arr, size_t n)
{
    char buf[API_EVENT_STR_MAX + 1];

    snprintf(buf, sizeof buf, "%.*s", (int)n, arr);
    if (buf[0] == '\0')
        return;
    jw_key(w, key);
    jw_str(w, buf);
}

char *api_encode_event(const api_event *ev, size_t *len)
{
    char type[API_EVENT_TYPE_MAX];
    jw w = { 0 };
    size_t i;

    *len = 0;
    snprintf(type, sizeof type, "%.*s", (int)sizeof ev->type, ev->type);
    for (i = 0; type[i] != '\0'; i++) {
        char c = type[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            type[i] = '_';
    }
    jw_printf(&w, "id: %" PRIu64 "\nevent: %s\ndata: ", ev->id, type);
    jw_open(&w, '{');
    jw_key(&w, "id");
    jw_printf(&w, "%" PRIu64, ev->id);
    jw_key(&w, "time");
    jw_time(&w, ev->time);
    jw_key(&w, "type");
    jw_str(&w, type);
    jw_field(&w, "instance", ev->instance, sizeof ev->instance);
    jw_field(&w, "name", ev->name, sizeof ev->name);
    jw_field(&w, "state", ev->state, sizeof ev->state);
    jw_field(&w, "host", ev->host, sizeof ev->host);
    jw_field(&w, "image", ev->image, sizeof ev->image);
    jw_field(&w, "digest", ev->digest, sizeof ev->digest);
    jw_field(&w, "message", ev->message, sizeof ev->message);
    jw_field(&w, "action", ev->action, sizeof ev->action);
    jw_field(&w, "by", ev->by, sizeof ev->by);
    jw_field(&w, "path", ev->path, sizeof ev->path);
    if (ev->http_status != 0) {
        jw_key(&w, "status");
        jw_int(&w, ev->http_status);
    }
    jw_field(&w, "reason", ev->reason, sizeof ev->reason); /* instance.sleep/wake */
    if (ev->has_latency) {
        jw_key(&w, "latency_ms");
        jw_int(&w, ev->latency_ms);
    }
    jw_field(&w, "error", ev->error, sizeof ev->error);
    if (ev->has_progress) {
        jw_key(&w, "done");
        jw_int(&w, ev->done);
        jw_key(&w, "total");
        jw_int(&w, ev->total);
        jw_key(&w, "failed");
        jw_int(&w, ev->failed);
    }
    if (ev->has_batch) {
        jw_field(&w, "batch", ev->batch, sizeof ev->batch);
        jw_key(&w, "started");
        jw_int(&w, ev->started);
        jw_key(&w, "ready");
        jw_int(&w, ev->ready);
        jw_key(&w, "final");
        jw_bool(&w, ev->final);
        jw_key(&w, "failures");
        jw_open(&w, '[');
        for (size_t k = 0; k < ev->n_failures && k < API_EVENT_FAILURES_MAX; k++) {
            jw_sep(&w);
            jw_open(&w, '{');
            jw_field(&w, "instance", ev->failures[k].instance, sizeof ev->failures[k].instance);
            jw_field(&w, "name", ev->failures[k].name, sizeof ev->failures[k].name);
            jw_field(&w, "state", ev->failures[k].state, sizeof ev->failures[k].state);
            jw_field(&w, "message", ev->failures[k].message, sizeof ev->failures[k].message);
            jw_close(&w, '}');
        }
        jw_close(&w, ']');
    }
    jw_close(&w, '}');
    jw_raw(&w, "\n\n", 2);
    return jw_take(&w, len);
}
