/* sched_index.c - the host index (see sched_internal.h): two treaps with
 * per-subtree free capacity, so a placement finds its host in O(log hosts)
 * typical time instead of scanning them all. */
#include "sched_internal.h"

#include <stdlib.h>
#include <string.h>

static bool host_open(const sched_host_rt *h)
{
    return !h->cordoned && h->blocked == 0;
}

static void host_values(const sched_state *st, size_t h)
{
    const sched_index *ix = &st->idx;
    const sched_host_rt *ho = &st->hosts[h];
    bool open = host_open(ho);
    for (int k = 0; k < SCHED_RES__COUNT; k++)
        ix->avail[k][h] = open ? sched_host_free(ho, (sched_resource)k) : -1;
    int64_t util = sched_host_util(ho);
    ix->t[SCHED_BINPACK].key[h] = -util;
    ix->t[SCHED_SPREAD].key[h] = util;
}

/* Strict order: key, then host index. */
static bool before(const sched_treap *t, uint32_t a, uint32_t b)
{
    return t->key[a] < t->key[b] || (t->key[a] == t->key[b] && a < b);
}

static void pull(const sched_index *ix, sched_treap *t, uint32_t x)
{
    for (int k = 0; k < SCHED_RES__COUNT; k++) {
        int64_t m = ix->avail[k][x];
        if (t->l[x] != SCHED_NIL && t->agg[k][t->l[x]] > m)
            m = t->agg[k][t->l[x]];
        if (t->r[x] != SCHED_NIL && t->agg[k][t->r[x]] > m)
            m = t->agg[k][t->r[x]];
        t->agg[k][x] = m;
    }
}

/* Split t into nodes before x (*a) and the rest (*b). */
static void split(const sched_index *ix, sched_treap *t, uint32_t n, uint32_t x, uint32_t *a,
                  uint32_t *b)
{
    if (n == SCHED_NIL) {
        *a = *b = SCHED_NIL;
        return;
    }
    if (before(t, n, x)) {
        split(ix, t, t->r[n], x, &t->r[n], b);
        *a = n;
    } else {
        split(ix, t, t->l[n], x, a, &t->l[n]);
        *b = n;
    }
    pull(ix, t, n);
}

static uint32_t merge(const sched_index *ix, sched_treap *t, uint32_t a, uint32_t b)
{
    if (a == SCHED_NIL)
        return b;
    if (b == SCHED_NIL)
        return a;
    if (ix->prio[a] > ix->prio[b]) {
        t->r[a] = merge(ix, t, t->r[a], b);
        pull(ix, t, a);
        return a;
    }
    t->l[b] = merge(ix, t, a, t->l[b]);
    pull(ix, t, b);
    return b;
}

static void insert(const sched_index *ix, sched_treap *t, uint32_t x)
{
    uint32_t a, b;
    t->l[x] = t->r[x] = SCHED_NIL;
    pull(ix, t, x);
    split(ix, t, t->root, x, &a, &b);
    t->root = merge(ix, t, merge(ix, t, a, x), b);
}

/* Remove x from the subtree at n; returns the new subtree root. */
static uint32_t erase(const sched_index *ix, sched_treap *t, uint32_t n, uint32_t x)
{
    if (n == SCHED_NIL)
        return SCHED_NIL;
    if (n == x)
        return merge(ix, t, t->l[n], t->r[n]);
    if (before(t, x, n))
        t->l[n] = erase(ix, t, t->l[n], x);
    else
        t->r[n] = erase(ix, t, t->r[n], x);
    pull(ix, t, n);
    return n;
}

void sched_index_update(sched_state *st, size_t host)
{
    sched_index *ix = &st->idx;
    if (host >= ix->n)
        return;
    uint32_t x = (uint32_t)host;
    for (int p = 0; p < 2; p++)
        ix->t[p].root = erase(ix, &ix->t[p], ix->t[p].root, x);
    host_values(st, host);
    for (int p = 0; p < 2; p++)
        insert(ix, &ix->t[p], x);
}

void sched_index_free(sched_index *ix)
{
    free(ix->prio);
    for (int k = 0; k < SCHED_RES__COUNT; k++)
        free(ix->avail[k]);
    for (int p = 0; p < 2; p++) {
        free(ix->t[p].l);
        free(ix->t[p].r);
        free(ix->t[p].key);
        for (int k = 0; k < SCHED_RES__COUNT; k++)
            free(ix->t[p].agg[k]);
    }
    memset(ix, 0, sizeof(*ix));
}

static uint32_t mix32(uint64_t x)
{
    /* splitmix64 finaliser: fixed priorities, so builds are deterministic */
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)(x ^ (x >> 31));
}

sched_status sched_index_init(sched_state *st)
{
    sched_index *ix = &st->idx;
    size_t n = st->n_hosts ? st->n_hosts : 1;
    memset(ix, 0, sizeof(*ix));
    ix->prio = malloc(n * sizeof(*ix->prio));
    bool ok = ix->prio != NULL;
    for (int k = 0; k < SCHED_RES__COUNT; k++)
        ok &= (ix->avail[k] = malloc(n * sizeof(int64_t))) != NULL;
    for (int p = 0; p < 2; p++) {
        sched_treap *t = &ix->t[p];
        t->root = SCHED_NIL;
        ok &= (t->l = malloc(n * sizeof(uint32_t))) != NULL;
        ok &= (t->r = malloc(n * sizeof(uint32_t))) != NULL;
        ok &= (t->key = malloc(n * sizeof(int64_t))) != NULL;
        for (int k = 0; k < SCHED_RES__COUNT; k++)
            ok &= (t->agg[k] = malloc(n * sizeof(int64_t))) != NULL;
    }
    if (!ok) {
        sched_index_free(ix);
        return SCHED_ENOMEM;
    }
    ix->n = st->n_hosts;
    for (size_t h = 0; h < st->n_hosts; h++) {
        ix->prio[h] = mix32(h);
        host_values(st, h);
        for (int p = 0; p < 2; p++)
            insert(ix, &ix->t[p], (uint32_t)h);
    }
    return SCHED_OK;
}

typedef struct {
    const sched_index *ix;
    const sched_treap *t;
    int64_t need[SCHED_RES__COUNT];
} search;

static bool fits(const search *s, int64_t *const *v, uint32_t x)
{
    for (int k = 0; k < SCHED_RES__COUNT; k++)
        if (v[k][x] < s->need[k])
            return false;
    return true;
}

/* First host in order with room. The subtree maximum of each resource is
 * a necessary condition; it is not sufficient (the maxima may come from
 * different hosts), so the descent may back up. */
static uint32_t first_fit(const search *s, uint32_t n)
{
    if (n == SCHED_NIL || !fits(s, s->t->agg, n))
        return SCHED_NIL;
    uint32_t x = first_fit(s, s->t->l[n]);
    if (x != SCHED_NIL)
        return x;
    if (fits(s, s->ix->avail, n))
        return n;
    return first_fit(s, s->t->r[n]);
}

/* The host with room for the unit that comes first in policy order, not
 * looking at rules; SCHED_NONE if none. */
size_t sched_index_best(const sched_state *st, const sched_unit *u, sched_policy pol)
{
    const sched_index *ix = &st->idx;
    search s = {
        .ix = ix,
        .t = &ix->t[pol == SCHED_SPREAD ? SCHED_SPREAD : SCHED_BINPACK],
        .need = { (int64_t)u->mem, (int64_t)u->vcpus, 1 },
    };
    if (ix->n == 0)
        return SCHED_NONE;
    uint32_t x = first_fit(&s, s.t->root);
    return x == SCHED_NIL ? SCHED_NONE : x;
}
