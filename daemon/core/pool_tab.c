/* pool_tab.c - the warm pool table: which guests exist, which are wanted,
 * which one a create takes. Pure (no I/O, no locks: the caller holds
 * pool.mu), so its accounting is unit-tested without VMs
 * (tests/daemon/core/test_pool.c). See pool.h. */
#include "pool.h"

#include <stdio.h>
#include <string.h>

void pool_tab_init(pool_tab *t)
{
    memset(t, 0, sizeof *t);
}

void pool_tab_set_wants(pool_tab *t, const pool_want *w, size_t n)
{
    t->nw = 0;
    for (size_t i = 0; i < n && t->nw < FLEET_POOL_MAX; i++)
        if (w[i].want)
            t->w[t->nw++] = w[i];
}

uint32_t pool_tab_want(const pool_tab *t, const char *digest)
{
    for (size_t i = 0; i < t->nw; i++)
        if (!strcmp(t->w[i].digest, digest))
            return t->w[i].want;
    return 0;
}

size_t pool_tab_count(const pool_tab *t, const char *digest, pool_gstate st)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        n += t->g[i].st == st && (!digest || !strcmp(t->g[i].digest, digest));
    return n;
}

pool_guest *pool_tab_find(pool_tab *t, const char *id)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->g[i].id, id))
            return &t->g[i];
    return NULL;
}

pool_guest *pool_tab_add(pool_tab *t, const char *id, const char *digest, const char *host,
                         uint32_t memory_mib, uint32_t vcpus, int network, int64_t now_ms)
{
    pool_guest *g;
    if (t->n >= FLEET_POOL_MAX || pool_tab_find(t, id))
        return NULL;
    g = &t->g[t->n++];
    memset(g, 0, sizeof *g);
    snprintf(g->id, sizeof g->id, "%s", id);
    snprintf(g->digest, sizeof g->digest, "%s", digest);
    snprintf(g->host, sizeof g->host, "%s", host);
    g->memory_mib = memory_mib;
    g->vcpus = vcpus;
    g->network = network;
    g->st = POOL_G_BOOTING;
    g->born_ms = now_ms;
    g->fd = -1;
    t->started++;
    return g;
}

void pool_tab_remove(pool_tab *t, const char *id)
{
    pool_guest *g = pool_tab_find(t, id);
    if (!g)
        return;
    /* order kept: the oldest guest is claimed first */
    memmove(g, g + 1, (size_t)(&t->g[t->n] - (g + 1)) * sizeof *g);
    t->n--;
}

int pool_tab_claim(pool_tab *t, const char *digest, const char *host, uint32_t memory_mib,
                   uint32_t vcpus, int network, char id_out[STATE_ID_LEN + 1])
{
    for (size_t i = 0; i < t->n; i++) {
        pool_guest *g = &t->g[i];
        if (g->st != POOL_G_READY || strcmp(g->digest, digest) || strcmp(g->host, host) ||
            g->memory_mib != memory_mib || g->vcpus != vcpus || g->network != network)
            continue;
        g->st = POOL_G_CLAIMED;
        snprintf(id_out, STATE_ID_LEN + 1, "%s", g->id);
        t->claims++;
        return 1;
    }
    if (pool_tab_want(t, digest))
        t->misses++;
    return 0;
}

void pool_tab_unclaim(pool_tab *t, const char *id)
{
    pool_guest *g = pool_tab_find(t, id);
    if (g && g->st == POOL_G_CLAIMED) {
        g->st = POOL_G_READY;
        t->claims--;
    }
}

static int live(const pool_guest *g)
{
    return g->st == POOL_G_BOOTING || g->st == POOL_G_READY;
}

size_t pool_tab_trim(pool_tab *t)
{
    size_t marked = 0;
    /* newest first: the oldest guests are the likeliest to be ready */
    for (size_t i = t->n; i-- > 0;) {
        pool_guest *g = &t->g[i];
        size_t n = 0;
        if (!live(g))
            continue;
        for (size_t k = 0; k < t->n; k++)
            n += live(&t->g[k]) && !strcmp(t->g[k].digest, g->digest);
        if (n > pool_tab_want(t, g->digest)) {
            g->st = POOL_G_DOOMED;
            marked++;
        }
    }
    return marked;
}

uint32_t pool_tab_deficit(const pool_tab *t, const char *digest)
{
    uint32_t want = pool_tab_want(t, digest), n = 0;
    for (size_t i = 0; i < t->n; i++)
        n += live(&t->g[i]) && !strcmp(t->g[i].digest, digest);
    return want > n ? want - n : 0;
}

size_t pool_tab_evict_host(pool_tab *t, const char *host)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (live(&t->g[i]) && !strcmp(t->g[i].host, host)) {
            t->g[i].st = POOL_G_DOOMED;
            n++;
        }
    }
    return n;
}

size_t pool_tab_drop_image(pool_tab *t, const char *digest)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (live(&t->g[i]) && !strcmp(t->g[i].digest, digest)) {
            t->g[i].st = POOL_G_DOOMED;
            n++;
        }
    }
    return n;
}
