/*
 * img_profile.c - changing a stored boot profile: the one check of profile
 * values (img_profile_apply, img_template_check; the probes' syntax is the
 * daemon's, asked through img_profile_change.check) and the update
 * (img_profile_set). See img_store.h.
 */
#include "img_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const placeholders[] = { "address", "prefix", "gateway", "mac",
                                            "env",     "args",   "name" };

/* Length of the UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned min;
    unsigned cp;
    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0) {
        len = 2, min = 0x80, cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3, min = 0x800, cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        len = 4, min = 0x10000, cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

int img_template_check(const char *tmpl, char *msg, size_t msglen)
{
    size_t n = tmpl ? strlen(tmpl) : 0;
    const unsigned char *t = (const unsigned char *)tmpl;
    if (n == 0) {
        snprintf(msg, msglen, "command line template is empty");
        return -1;
    }
    if (n > IMG_TEMPLATE_MAX) {
        snprintf(msg, msglen, "command line template of %zu bytes is over the limit of %d", n,
                 IMG_TEMPLATE_MAX);
        return -1;
    }
    for (size_t i = 0; i < n;) {
        if (t[i] < 0x20 || t[i] == 0x7f) {
            snprintf(msg, msglen,
                     "command line template has a control character (0x%02x) at byte %zu", t[i], i);
            return -1;
        }
        size_t u = utf8_len(t + i, n - i);
        if (u == 0) {
            snprintf(msg, msglen, "command line template is not UTF-8 at byte %zu", i);
            return -1;
        }
        if (t[i] == '}') {
            if (t[i + 1] != '}') {
                snprintf(msg, msglen, "unmatched '}' at byte %zu (write '}}' for a brace)", i);
                return -1;
            }
            i += 2;
            continue;
        }
        if (t[i] != '{') {
            i += u;
            continue;
        }
        if (t[i + 1] == '{') {
            i += 2;
            continue;
        }
        const char *end = strchr(tmpl + i + 1, '}');
        size_t len = end ? (size_t)(end - (tmpl + i + 1)) : 0;
        if (!end || memchr(tmpl + i + 1, '{', len)) {
            snprintf(msg, msglen, "unmatched '{' at byte %zu (write '{{' for a brace)", i);
            return -1;
        }
        size_t k;
        for (k = 0; k < sizeof placeholders / sizeof placeholders[0]; k++)
            if (strlen(placeholders[k]) == len && !strncmp(tmpl + i + 1, placeholders[k], len))
                break;
        if (k == sizeof placeholders / sizeof placeholders[0]) {
            snprintf(msg, msglen,
                     "unknown placeholder '{%.*s}' in the command line template (known: "
                     "{address} {prefix} {gateway} {mac} {env} {args} {name})",
                     len > 40 ? 40 : (int)len, tmpl + i + 1);
            return -1;
        }
        i += len + 2;
    }
    return 0;
}

static int bad(const char **field, const char *name, img_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(const char **field, const char *name, img_err *err, const char *fmt, ...)
{
    char msg[IMG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (field)
        *field = name;
    return img_fail(err, IMG_E_INVALID, "%s", msg);
}

/* A probe's text as the store takes it: "" or 1..IMG_PROBE_MAX bytes
 * without control characters (its syntax is the daemon's: ch->check). */
static int probe_text_ok(const char *t, char *msg, size_t msglen)
{
    size_t n = strlen(t);
    if (n > IMG_PROBE_MAX) {
        snprintf(msg, msglen, "probe of %zu bytes is over the limit of %d", n, IMG_PROBE_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f) {
            snprintf(msg, msglen, "probe has a control character (0x%02x) at byte %zu",
                     (unsigned char)t[i], i);
            return -1;
        }
    }
    return 0;
}

/* The probe part of a change applied to q (ready, health and its numbers). */
static int apply_probes(img_profile *q, const img_profile_change *ch, const char **field,
                        img_err *err)
{
    char msg[IMG_ERR_MSG_MAX - 64];
    bool numbers = ch->health_interval_s || ch->health_timeout_s || ch->health_retries;
    if (ch->ready) {
        if (probe_text_ok(ch->ready, msg, sizeof msg) != 0)
            return bad(field, "ready", err, "ready: %s", msg);
        snprintf(q->ready, sizeof q->ready, "%s", ch->ready);
    }
    if (ch->health) {
        if (probe_text_ok(ch->health, msg, sizeof msg) != 0)
            return bad(field, "health.probe", err, "health.probe: %s", msg);
        if (!ch->health[0] && numbers)
            return bad(field, "health", err,
                       "health: removing the health probe takes no interval, timeout or retries");
        snprintf(q->health, sizeof q->health, "%s", ch->health);
        q->health_interval_s = q->health_timeout_s = q->health_retries = 0;
    } else if (numbers && !q->health[0]) {
        return bad(field, "health.probe", err,
                   "health: the image has no health probe to give an interval, timeout or "
                   "retries (set one with health)");
    }
    if (ch->health_interval_s)
        q->health_interval_s = ch->health_interval_s;
    if (ch->health_timeout_s)
        q->health_timeout_s = ch->health_timeout_s;
    if (ch->health_retries)
        q->health_retries = ch->health_retries;
    return 0;
}

int img_profile_apply(img_profile *p, img_kind kind, img_format format,
                      const img_profile_change *ch, const char **field, img_err *err)
{
    img_profile q = *p;
    bool disk = format == IMG_FORMAT_RAW || format == IMG_FORMAT_QCOW2;
    bool probes = ch->ready || ch->health || ch->health_interval_s || ch->health_timeout_s ||
                  ch->health_retries;
    char msg[IMG_ERR_MSG_MAX - 64];
    img_err_clear(err);
    if (field)
        *field = NULL;
    if (!ch->firmware && !ch->cmdline && !ch->exit && !probes && !ch->warm_pool_set)
        return bad(field, NULL, err,
                   "no profile field to change (firmware, cmdline, exit, ready, health, "
                   "warm_pool)");
    if (q.firmware == IMG_FW_NONE) /* a row from before kinds: start from what it boots with */
        q.firmware = IMG_FW_QBOOT;
    if (q.cmdline == IMG_CMDLINE_NONE)
        q.cmdline = IMG_CMDLINE_SHOAL;
    if (q.exit == IMG_EXIT_NONE)
        q.exit = IMG_EXIT_STATUS;
    if (ch->firmware) {
        q.firmware = img_firmware_parse(ch->firmware);
        if (q.firmware == IMG_FW_NONE)
            return bad(field, "firmware", err, "firmware '%.40s' is not qboot or seabios",
                       ch->firmware);
    }
    if (ch->cmdline) {
        q.cmdline = img_cmdline_parse(ch->cmdline);
        q.template[0] = '\0';
        if (q.cmdline == IMG_CMDLINE_NONE) {
            if (img_template_check(ch->cmdline, msg, sizeof msg) != 0)
                return bad(field, "cmdline", err,
                           "cmdline is neither a preset (shoal, unikraft, solo5, raw) nor a "
                           "usable template: %s",
                           msg);
            q.cmdline = IMG_CMDLINE_TEMPLATE;
            snprintf(q.template, sizeof q.template, "%s", ch->cmdline);
        }
    }
    if (ch->exit) {
        q.exit = img_exit_parse(ch->exit);
        if (q.exit == IMG_EXIT_NONE)
            return bad(field, "exit", err, "exit '%.40s' is not status, debug-exit or poweroff",
                       ch->exit);
    }
    if (probes && apply_probes(&q, ch, field, err) != 0)
        return -1;
    if (ch->warm_pool_set) {
        if (ch->warm_pool > IMG_WARM_POOL_MAX)
            return bad(field, "warm_pool", err, "warm_pool %u is over the limit of %d",
                       ch->warm_pool, IMG_WARM_POOL_MAX);
        q.warm_pool = ch->warm_pool;
    }
    /* A pool guest waits for its configuration on a protocol only shoal's
     * reference kernel speaks, and reads it in the shoal preset's grammar
     * (docs/guest-protocol.md "Warm pool hand-over"); kept through a later change
     * only while that holds. */
    if (q.warm_pool && (kind != IMG_KIND_SHOAL || q.cmdline != IMG_CMDLINE_SHOAL))
        return bad(field, "warm_pool", err,
                   "warm_pool: only images of kind shoal with the shoal command line can have a "
                   "warm pool (this one is kind %s, command line %s): its guests must speak "
                   "shoal's hand-over protocol",
                   img_kind_name(kind), img_cmdline_name(q.cmdline));
    if (disk && q.firmware != IMG_FW_SEABIOS)
        return bad(field, "firmware", err,
                   "a disk image (format %s) boots only with seabios: qboot boots no disks",
                   img_format_name(format));
    if (disk && q.cmdline != IMG_CMDLINE_RAW)
        return bad(field, "cmdline", err,
                   "a disk image (format %s) takes no command line: its cmdline stays raw",
                   img_format_name(format));
    /* The probes as they would be, judged by the daemon's parser: after
     * a change of them, or of the exit (ready "status" needs the status
     * channel). */
    if ((probes || ch->exit) && (q.ready[0] || q.health[0])) {
        const char *f = NULL;
        if (!ch->check)
            return bad(field, q.ready[0] ? "ready" : "health.probe", err,
                       "probes cannot be checked here (no probe checker given)");
        msg[0] = '\0';
        if (ch->check(ch->check_ctx, &q, kind, &f, msg, sizeof msg) != 0)
            return bad(field, f ? f : "ready", err, "%s", msg[0] ? msg : "probe refused");
    }
    *p = q;
    return 0;
}

int img_profile_set(img_store *s, const char *ref, const img_profile_change *ch, img_info *info,
                    const char **field, img_err *err)
{
    int ret = -1;
    img_conn *c = NULL;
    img_blob b;
    img_err_clear(err);
    if (field)
        *field = NULL;
    if (info)
        memset(info, 0, sizeof *info);
    if (img_conn_get(s, &c, err) != 0)
        return -1;
    if (img_tx_write(s, c, err) != 0)
        goto put;
    if (img_resolve_conn(c, ref, &b, err) != 0 ||
        img_profile_apply(&b.profile, b.kind, b.format, ch, field, err) != 0)
        goto out;
    sqlite3_stmt *st = img_stmt(c, ST_PROFILE_SET, err);
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, b.id);
    sqlite3_bind_text(st, 2, img_firmware_name(b.profile.firmware), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, img_cmdline_name(b.profile.cmdline), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, img_exit_name(b.profile.exit), -1, SQLITE_STATIC);
    if (b.profile.cmdline == IMG_CMDLINE_TEMPLATE)
        sqlite3_bind_text(st, 5, b.profile.template, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    /* probes: "" and 0 are stored as NULL, the kind's default */
    if (b.profile.ready[0])
        sqlite3_bind_text(st, 6, b.profile.ready, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    if (b.profile.health[0]) {
        sqlite3_bind_text(st, 7, b.profile.health, -1, SQLITE_STATIC);
        const uint32_t nums[] = { b.profile.health_interval_s, b.profile.health_timeout_s,
                                  b.profile.health_retries };
        for (int i = 0; i < 3; i++) {
            if (nums[i])
                sqlite3_bind_int64(st, 8 + i, nums[i]);
            else
                sqlite3_bind_null(st, 8 + i);
        }
    } else {
        for (int i = 7; i <= 10; i++)
            sqlite3_bind_null(st, i);
    }
    if (b.profile.warm_pool) /* 0 is stored as NULL, like a row from before pools */
        sqlite3_bind_int64(st, 11, b.profile.warm_pool);
    else
        sqlite3_bind_null(st, 11);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        img_fail_db(err, c->db, rc, "set profile");
        goto out;
    }
    if (img_tx_commit(s, c, true, err) != 0)
        goto put;
    ret = 0;
    if (info) {
        img_err e2;
        if (img_blob_by_id(c, b.id, &b, &e2) != 0 || img_fill_info(c, &b, info, &e2) != 0) {
            img_info_clear(info);
            memset(info, 0, sizeof *info);
        }
    }
    goto put;
out:
    img_tx_rollback(s, c, true);
put:
    img_conn_put(s, c);
    return ret;
}
