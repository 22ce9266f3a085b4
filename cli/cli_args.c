/* cli_args.c: option value parsers (memory sizes, ports, K=V, selectors). */
#include "cli_args.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int cli_parse_memory(const char *s, uint32_t *mib, char *err, size_t errlen)
{
    const char *p = s;
    unsigned long long n = 0;
    if (!isdigit((unsigned char)*p))
        goto bad;
    while (isdigit((unsigned char)*p)) {
        n = n * 10 + (unsigned long long)(*p - '0');
        if (n > (1ULL << 40))
            goto range;
        p++;
    }
    /* Unit: empty or M/MB/MiB (MiB), K.., G.., T.. (binary multiples). */
    unsigned long long kib;
    char u = (char)toupper((unsigned char)*p);
    switch (u) {
    case '\0':
    case 'M': kib = n * 1024; break;
    case 'K': kib = n; break;
    case 'G': kib = n * 1024 * 1024; break;
    case 'T': kib = n * 1024 * 1024 * 1024; break;
    default: goto bad;
    }
    if (*p) {
        p++;
        if (strcasecmp(p, "") != 0 && strcasecmp(p, "B") != 0 && strcasecmp(p, "iB") != 0 &&
            strcasecmp(p, "i") != 0)
            goto bad;
    }
    if (kib % 1024) {
        snprintf(err, errlen, "memory '%s' is not a whole number of MiB", s);
        return -1;
    }
    if (kib == 0)
        goto range;
    if (kib / 1024 > UINT32_MAX)
        goto range;
    *mib = (uint32_t)(kib / 1024);
    return 0;
bad:
    snprintf(err, errlen, "invalid memory size '%s' (examples: 32, 32M, 32MiB, 1G)", s);
    return -1;
range:
    snprintf(err, errlen, "memory size '%s' is out of range", s);
    return -1;
}

static int parse_port_num(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

int cli_parse_port(const char *s, uint16_t *host, uint16_t *guest, const char **proto, char *err,
                   size_t errlen)
{
    const char *colon = strchr(s, ':');
    const char *slash = strchr(s, '/');
    if (slash && strcmp(slash, "/tcp") != 0 && strcmp(slash, "/udp") != 0) {
        snprintf(err, errlen, "port mapping '%s': the protocol is tcp or udp (HOSTPORT:PORT/udp)",
                 s);
        return -1;
    }
    *proto = slash ? slash + 1 : NULL;
    size_t end = slash ? (size_t)(slash - s) : strlen(s);
    if (!colon || (size_t)(colon - s) > end || parse_port_num(s, (size_t)(colon - s), host) < 0 ||
        parse_port_num(colon + 1, end - (size_t)(colon - s) - 1, guest) < 0) {
        snprintf(err, errlen,
                 "invalid port mapping '%s' (expected HOSTPORT:PORT[/tcp|/udp], ports 1-65535)", s);
        return -1;
    }
    return 0;
}

int cli_parse_kv(const char *s, size_t *keylen, const char **val, char *err, size_t errlen)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s) {
        snprintf(err, errlen, "invalid '%s' (expected KEY=VALUE)", s);
        return -1;
    }
    for (const char *p = s; p < eq; p++)
        if (isspace((unsigned char)*p)) {
            snprintf(err, errlen, "invalid '%s': the key contains a space", s);
            return -1;
        }
    *keylen = (size_t)(eq - s);
    *val = eq + 1;
    return 0;
}

static int key_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '/' || c == '-';
}

int cli_parse_selector(const char *s, char *err, size_t errlen)
{
    if (!*s)
        goto bad;
    const char *p = s;
    for (;;) {
        const char *term = p;
        if (*p == '!')
            p++;
        const char *k = p;
        while (key_char(*p))
            p++;
        if (p == k)
            goto bad;
        if (*term != '!' && (*p == '=' || (p[0] == '!' && p[1] == '='))) {
            p += *p == '=' ? 1 : 2;
            while (*p && *p != ',' && *p != '=' && *p != '!')
                p++;
        }
        if (*p == '\0')
            return 0;
        if (*p != ',')
            goto bad;
        p++;
    }
bad:
    snprintf(err, errlen,
             "invalid selector '%s' (expected terms like k=v, k!=v, k, !k "
             "separated by commas)",
             s);
    return -1;
}

int cli_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out,
                   char *err, size_t errlen)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*s))
        goto bad;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v < min || v > max)
        goto bad;
    *out = v;
    return 0;
bad:
    snprintf(err, errlen, "invalid number '%s' (expected %lu to %lu)", s, min, max);
    return -1;
}

int cli_parse_duration(const char *s, unsigned long *secs, char *err, size_t errlen)
{
    static const struct {
        char unit;
        unsigned long secs;
    } units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 } };
    char *end;
    unsigned long v;

    errno = 0;
    if (!isdigit((unsigned char)*s))
        goto bad;
    v = strtoul(s, &end, 10);
    if (errno || v == 0)
        goto bad;
    if (*end == '\0') {
        *secs = v;
        return 0;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (end[0] == units[i].unit && end[1] == '\0' && v <= 315360000ul / units[i].secs) {
            *secs = v * units[i].secs;
            return 0;
        }
    }
bad:
    snprintf(err, errlen, "invalid duration '%s' (a number with s, m, h or d, e.g. 24h)", s);
    return -1;
}

int cli_parse_rate(const char *s, unsigned long *per_s, char *err, size_t errlen)
{
    char num[24];
    size_t n = strcspn(s, "/");

    if (n >= sizeof num || (s[n] != '\0' && strcmp(s + n, "/s") != 0))
        goto bad;
    memcpy(num, s, n);
    num[n] = '\0';
    if (cli_parse_uint(num, 1, 1000000, per_s, err, errlen) == 0)
        return 0;
bad:
    snprintf(err, errlen, "invalid rate '%s' (requests per second, e.g. 50/s)", s);
    return -1;
}

int cli_parse_format(const char *s, cli_fmt *fmt, char *err, size_t errlen)
{
    if (strcmp(s, "table") == 0)
        *fmt = CLI_FMT_TABLE;
    else if (strcmp(s, "json") == 0)
        *fmt = CLI_FMT_JSON;
    else if (strcmp(s, "wide") == 0)
        *fmt = CLI_FMT_WIDE;
    else {
        snprintf(err, errlen, "invalid output format '%s' (table, json, wide)", s);
        return -1;
    }
    return 0;
}
