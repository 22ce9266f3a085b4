/*
 * pool.c - the configuration record's framing (see pool.h).
 */
#include "pool.h"

#include <string.h>

void pool_reader_init(struct pool_reader *r, char *body)
{
    memset(r, 0, sizeof *r);
    r->body = body;
}

/* A complete line (without its newline): a header or noise. 1 with *want
 * set for a good header, -1 with *why for a refused one, 0 for noise. */
static int pool_header(const char *line, size_t len, int truncated, size_t *want, const char **why)
{
    const size_t hl = sizeof POOL_HEADER - 1;
    if (len < hl || memcmp(line, POOL_HEADER, hl) != 0 || (len > hl && line[hl] != ' '))
        return 0;
    const char *d = line + hl + 1, *end = line + len;
    size_t v = 0;
    if (len <= hl + 1) {
        *why = "length is not a number";
        return -1;
    }
    for (const char *c = d; c < end; c++) {
        if (*c < '0' || *c > '9') {
            *why = "length is not a number";
            return -1;
        }
        if (v <= POOL_RECORD_MAX)
            v = v * 10 + (size_t)(*c - '0');
    }
    if (truncated || v > POOL_RECORD_MAX) {
        *why = "record is longer than 8192 bytes";
        return -1;
    }
    *want = v;
    return 1;
}

enum pool_event pool_feed(struct pool_reader *r, const char *p, size_t n, size_t *used, size_t *len,
                          const char **why)
{
    size_t i = 0;
    while (i < n) {
        if (r->in_body) {
            size_t take = r->want - r->have < n - i ? r->want - r->have : n - i;
            memcpy(r->body + r->have, p + i, take);
            r->have += take;
            i += take;
        } else if (p[i] != '\n') {
            if (r->linelen < sizeof r->line)
                r->line[r->linelen++] = p[i];
            else
                r->skip = 1;
            i++;
            continue;
        } else {
            i++; /* the newline */
            int h = pool_header(r->line, r->linelen, r->skip, &r->want, why);
            r->linelen = 0;
            r->skip = 0;
            if (h < 0) {
                *used = i;
                return POOL_REFUSED;
            }
            if (h == 0)
                continue;
            r->in_body = 1;
            r->have = 0;
        }
        if (r->have == r->want) {
            r->body[r->have] = '\0';
            *len = r->have;
            r->in_body = 0;
            *used = i;
            return POOL_RECORD;
        }
    }
    *used = i;
    return POOL_MORE;
}
