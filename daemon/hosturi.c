/* hosturi.c - the allow list for host URIs. See hosturi.h. */
#include "hosturi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOWER  "abcdefghijklmnopqrstuvwxyz"
#define UPPER  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define DIGITS "0123456789"

/* Characters of each part. Everything else is refused, so libvirt's
 * parser cannot read the URI differently (no '%', ';', '#', quotes,
 * spaces or controls anywhere). */
#define CH_SCHEME LOWER DIGITS "+"
#define CH_USER   LOWER UPPER DIGITS "._-"
#define CH_HOST   LOWER UPPER DIGITS ".-"
#define CH_HOST6  "abcdefABCDEF" DIGITS ":."
#define CH_PATH   LOWER UPPER DIGITS "/._-"
#define CH_PNAME  LOWER "_"
#define CH_PVALUE LOWER UPPER DIGITS "._-/:,@+~"

static int only(const char *s, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++) {
        if (!s[i] || !strchr(set, s[i]))
            return 0;
    }
    return 1;
}

static int copy_part(char *dst, size_t dstlen, const char *s, size_t n)
{
    if (n >= dstlen)
        return -1;
    memcpy(dst, s, n);
    dst[n] = 0;
    return 0;
}

/* scheme: DRIVER or DRIVER+TRANSPORT, lower case, starting with a letter. */
static int scheme_ok(const char *s, size_t n)
{
    const char *plus = memchr(s, '+', n);
    if (n == 0 || n >= sizeof((struct huri *)0)->scheme || !only(s, n, CH_SCHEME) ||
        !strchr(LOWER, s[0]))
        return 0;
    if (!plus)
        return 1;
    return plus > s && plus < s + n - 1 && !memchr(plus + 1, '+', (size_t)(s + n - plus - 1));
}

int huri_parse(const char *uri, struct huri *out, char *err, size_t errlen)
{
    const char *p = uri, *sep, *auth_end, *at, *host, *host_end, *q;
    size_t n = strlen(uri);

    memset(out, 0, sizeof *out);
#define BAD(...)                                                                                   \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return HURI_E_SYNTAX;                                                                      \
    } while (0)
    if (n == 0 || n >= HURI_MAX)
        BAD("uri must be 1..%d bytes", HURI_MAX - 1);
    sep = strstr(p, "://");
    if (!sep || !scheme_ok(p, (size_t)(sep - p)))
        BAD("uri '%.200s': expected DRIVER[+TRANSPORT]://[USER@][HOST][:PORT]/PATH[?PARAMS] "
            "with a lower-case scheme",
            uri);
    copy_part(out->scheme, sizeof out->scheme, p, (size_t)(sep - p));
    p = sep + 3;
    auth_end = p + strcspn(p, "/?#");
    if (*auth_end != '/')
        BAD("uri '%.200s': a path is needed (e.g. /system)", uri);
    /* authority: [user@]host[:port] */
    at = memchr(p, '@', (size_t)(auth_end - p));
    host = p;
    if (at) {
        if (at == p || !only(p, (size_t)(at - p), CH_USER) || p[0] == '-' ||
            copy_part(out->user, sizeof out->user, p, (size_t)(at - p)))
            BAD("uri '%.200s': bad user name (letters, digits, '.', '_', '-')", uri);
        host = at + 1;
    }
    if (*host == '[') {
        const char *close = memchr(host, ']', (size_t)(auth_end - host));
        if (!close || close == host + 1 || !only(host + 1, (size_t)(close - host - 1), CH_HOST6) ||
            copy_part(out->host, sizeof out->host, host + 1, (size_t)(close - host - 1)))
            BAD("uri '%.200s': bad IPv6 host", uri);
        host_end = close + 1;
    } else {
        host_end = host + strcspn(host, ":/");
        if (host_end > auth_end)
            host_end = auth_end;
        if (!only(host, (size_t)(host_end - host), CH_HOST) || host[0] == '-' || host[0] == '.' ||
            copy_part(out->host, sizeof out->host, host, (size_t)(host_end - host)))
            BAD("uri '%.200s': bad host name (letters, digits, '.', '-')", uri);
    }
    if (host_end < auth_end) {
        char *end;
        long port;
        if (*host_end != ':' || host_end + 1 == auth_end ||
            !only(host_end + 1, (size_t)(auth_end - host_end - 1), DIGITS))
            BAD("uri '%.200s': bad port", uri);
        port = strtol(host_end + 1, &end, 10);
        if (end != auth_end || port < 1 || port > 65535)
            BAD("uri '%.200s': port must be 1..65535", uri);
        out->port = (int)port;
    }
    if (!out->host[0] && (out->user[0] || out->port))
        BAD("uri '%.200s': a user or port needs a host", uri);
    /* path */
    p = auth_end;
    q = p + strcspn(p, "?#");
    if (!only(p, (size_t)(q - p), CH_PATH) || strstr(p, "..") ||
        copy_part(out->path, sizeof out->path, p, (size_t)(q - p)))
        BAD("uri '%.200s': bad path", uri);
    if (*q == '#' || strchr(q, '#'))
        BAD("uri '%.200s': a fragment ('#') is not accepted", uri);
    if (*q == '?') {
        q++;
        /* name[=value] joined by '&'; libvirt also splits on ';', refused */
        for (const char *s = q; *s;) {
            size_t len = strcspn(s, "&"), nl = strcspn(s, "=&");
            if (nl == 0 || !only(s, nl, CH_PNAME))
                BAD("uri '%.200s': bad parameter '%.*s' (names are lower-case letters and '_', "
                    "no percent-encoding)",
                    uri, (int)(len > 64 ? 64 : len), s);
            if (nl < len && !only(s + nl + 1, len - nl - 1, CH_PVALUE))
                BAD("uri '%.200s': bad value of parameter '%.*s'", uri, (int)nl, s);
            s += len;
            if (*s == '&') {
                s++;
                if (!*s)
                    BAD("uri '%.200s': empty parameter", uri);
            }
        }
        copy_part(out->query, sizeof out->query, q, strlen(q));
    }
#undef BAD
    return HURI_OK;
}

/* The scheme the allow list is consulted for: a remote URI without a
 * transport is TLS in libvirt (`qemu://h/system` = `qemu+tls://h/system`). */
static void effective_scheme(const struct huri *u, char *out, size_t len)
{
    if (u->host[0] && !strchr(u->scheme, '+'))
        snprintf(out, len, "%s+tls", u->scheme);
    else
        snprintf(out, len, "%s", u->scheme);
}

/* Find scheme in allow; 1 and *params (the "P1&P2" after '?', length
 * *plen) when listed. */
static int allow_find(const char *allow, const char *scheme, const char **params, size_t *plen)
{
    const char *s = allow;
    size_t sl = strlen(scheme);
    while (*s) {
        size_t len = strcspn(s, ", "), nl = strcspn(s, "?, ");
        if (len && nl == sl && !strncmp(s, scheme, sl)) {
            *params = nl < len ? s + nl + 1 : "";
            *plen = nl < len ? len - nl - 1 : 0;
            return 1;
        }
        s += len;
        s += strspn(s, ", ");
    }
    return 0;
}

int huri_allow_check(const char *allow, char *err, size_t errlen)
{
    const char *s = allow;
    if (strlen(allow) >= HURI_MAX) {
        snprintf(err, errlen, "host-uri-allow is over %d bytes", HURI_MAX - 1);
        return -1;
    }
    s += strspn(s, ", ");
    while (*s) {
        size_t len = strcspn(s, ", "), nl = strcspn(s, "?, ");
        int ok = scheme_ok(s, nl);
        if (ok && nl < len) {
            for (const char *p = s + nl + 1, *end = s + len; ok && p <= end;) {
                size_t pl = strcspn(p, "&, ");
                if (p + pl > end)
                    pl = (size_t)(end - p);
                ok = pl > 0 && only(p, pl, CH_PNAME);
                p += pl + 1;
            }
        }
        if (!ok) {
            snprintf(err, errlen,
                     "host-uri-allow entry '%.*s': expected SCHEME or SCHEME?PARAM&PARAM "
                     "(e.g. qemu+ssh, qemu?socket)",
                     (int)(len > 80 ? 80 : len), s);
            return -1;
        }
        s += len;
        s += strspn(s, ", ");
    }
    return 0;
}

int huri_check(const char *allow, const char *uri, char *err, size_t errlen)
{
    struct huri u;
    char scheme[40];
    const char *params;
    size_t plen;
    int rc;

    if (!allow || !allow[0])
        allow = HURI_DEFAULT_ALLOW;
    if ((rc = huri_parse(uri, &u, err, errlen)) != HURI_OK)
        return rc;
    effective_scheme(&u, scheme, sizeof scheme);
    if (!allow_find(allow, scheme, &params, &plen)) {
        snprintf(err, errlen,
                 "uri '%.200s': scheme '%s' is not allowed (host-uri-allow '%.200s'; the "
                 "operator may add it to shoald's configuration)",
                 uri, scheme, allow);
        return HURI_E_REFUSED;
    }
    if (!strncmp(u.scheme, "qemu", 4) && (u.scheme[4] == 0 || u.scheme[4] == '+') &&
        strcmp(u.path, "/system") != 0) {
        snprintf(err, errlen,
                 "uri '%.200s': path '%s' is not allowed (only /system: /session would start a "
                 "libvirtd for root, /embed is the local host's)",
                 uri, u.path);
        return HURI_E_REFUSED;
    }
    for (const char *s = u.query; *s;) {
        size_t len = strcspn(s, "&"), nl = strcspn(s, "=&"), found = 0;
        for (const char *a = params, *end = params + plen; a < end;) {
            size_t al = strcspn(a, "&, ");
            if (a + al > end)
                al = (size_t)(end - a);
            found |= al == nl && !strncmp(a, s, nl);
            a += al + 1;
        }
        if (!found) {
            snprintf(err, errlen,
                     "uri '%.200s': parameter '%.*s' is not allowed for %s (host-uri-allow "
                     "'%.200s'; only the operator's configuration can allow a parameter)",
                     uri, (int)nl, s, scheme, allow);
            return HURI_E_REFUSED;
        }
        s += len;
        s += *s == '&';
    }
    return HURI_OK;
}
