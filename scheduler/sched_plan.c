/* sched_plan.c - consolidation and drain plans.
 *
 * Both work on a private copy of the state and apply each move to it as it
 * is chosen, so every move is judged against the state the fleet will really
 * be in when that move runs: capacity and hard rules hold after every prefix
 * of the plan, not only at its end.
 *
 * Consolidation: hosts are tried from the emptiest (cordoned ones first). A
 * host's guests, largest first, each go to the fullest host in use that fits
 * them (best fit), never to an empty or cordoned host. If one guest finds no
 * place, that host's moves are undone and it stays. Guests held back by an
 * affinity to a companion are retried after the others moved. */
#include "sched_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    sched_move *v;
    size_t n, cap;
} move_log;

static sched_status log_move(sched_state *c, move_log *log, size_t i, size_t to)
{
    if (log->n == log->cap) {
        size_t cap = log->cap ? log->cap * 2 : 64;
        sched_move *p = realloc(log->v, cap * sizeof(*p));
        if (p == NULL)
            return SCHED_ENOMEM;
        log->v = p;
        log->cap = cap;
    }
    size_t from = c->insts[i].host;
    sched_status rc = sched_state_move(c, i, to);
    if (rc != SCHED_OK)
        return rc;
    log->v[log->n++] = (sched_move){
        .instance = i,
        .instance_id = c->insts[i].id,
        .from = from,
        .to = to,
        .from_id = c->hosts[from].id,
        .to_id = c->hosts[to].id,
    };
    return SCHED_OK;
}

static void undo_to(sched_state *c, move_log *log, size_t mark)
{
    while (log->n > mark) {
        const sched_move *m = &log->v[--log->n];
        /* The source's resident array kept its capacity: cannot fail. */
        sched_state_move(c, m->instance, m->from);
    }
}

static void unit_of(const sched_state *c, size_t i, sched_unit *u)
{
    const sched_inst_rt *in = &c->insts[i];
    memset(u, 0, sizeof(*u));
    u->name = in->id;
    u->request = SCHED_NONE;
    u->count = 1;
    u->mem = in->mem;
    u->vcpus = in->vcpus;
    u->labels = in->labels;
    u->n_labels = in->n_labels;
    u->rules = in->rules;
    u->n_rules = in->n_rules;
    u->self = i;
    u->min_soft = -1;
    sched_unit_prepare(c, u);
    if (u->has_soft)
        u->min_soft = sched_soft_weight(c, u, in->host);
}

/* Sort instance indexes largest first. Insertion sort: no shared state, and
 * lists are one host's guests (hundreds at most). */
static void sort_largest_first(const sched_state *c, uint32_t *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint32_t x = v[i];
        size_t j = i;
        while (j > 0) {
            const sched_inst_rt *a = &c->insts[v[j - 1]];
            const sched_inst_rt *b = &c->insts[x];
            bool before = b->mem > a->mem ||
                          (b->mem == a->mem &&
                           (b->vcpus > a->vcpus || (b->vcpus == a->vcpus && x < v[j - 1])));
            if (!before)
                break;
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

/* Move every guest off host s (already blocked as a target). On return
 * *stuck is SCHED_NONE when the host is empty, else a guest that could not
 * move (its moves stay applied; the caller undoes them if it wants). */
static sched_status empty_host(sched_state *c, size_t s, move_log *log, size_t *stuck)
{
    sched_host_rt *h = &c->hosts[s];
    size_t n = h->n_res;
    *stuck = SCHED_NONE;
    if (n == 0)
        return SCHED_OK;
    uint32_t *pending = malloc(n * sizeof(*pending));
    if (pending == NULL)
        return SCHED_ENOMEM;
    memcpy(pending, h->res, n * sizeof(*pending));
    sort_largest_first(c, pending, n);
    sched_status rc = SCHED_OK;
    bool progress = true;
    while (n > 0 && progress && rc == SCHED_OK) {
        progress = false;
        size_t kept = 0;
        for (size_t k = 0; k < n; k++) {
            size_t i = pending[k];
            size_t t = SCHED_NONE;
            if (rc == SCHED_OK && sched_departure_ok(c, i)) {
                sched_unit u;
                unit_of(c, i, &u);
                t = sched_find_host(c, &u, SCHED_BINPACK, true);
            }
            if (t != SCHED_NONE) {
                rc = log_move(c, log, i, t);
                progress = true;
            } else {
                pending[kept++] = (uint32_t)i;
            }
        }
        n = kept;
    }
    if (n > 0)
        *stuck = pending[0];
    free(pending);
    return rc;
}

static size_t hosts_used(const sched_state *c)
{
    size_t n = 0;
    for (size_t h = 0; h < c->n_hosts; h++)
        n += c->hosts[h].n_res > 0;
    return n;
}

static sched_status finish(const sched_state *st, sched_state *c, move_log *log, sched_plan *p)
{
    p->moves = log->v;
    p->n_moves = log->n;
    log->v = NULL;
    p->hosts_used_after = hosts_used(c);
    size_t nf = 0;
    for (size_t h = 0; h < c->n_hosts; h++)
        nf += c->hosts[h].n_res == 0 && st->hosts[h].n_res > 0;
    p->freed = calloc(nf ? nf : 1, sizeof(*p->freed));
    if (p->freed == NULL)
        return SCHED_ENOMEM;
    for (size_t h = 0; h < c->n_hosts; h++)
        if (c->hosts[h].n_res == 0 && st->hosts[h].n_res > 0)
            p->freed[p->n_freed++] = h;
    return SCHED_OK;
}

static void plan_init(sched_plan *p)
{
    memset(p, 0, sizeof(*p));
    p->stuck_instance = SCHED_NONE;
}

typedef struct {
    size_t host;
    bool cordoned;
    int64_t util;
    uint32_t n_res;
} candidate;

static int cmp_candidates(const void *a, const void *b)
{
    const candidate *x = a, *y = b;
    if (x->cordoned != y->cordoned)
        return x->cordoned ? -1 : 1;
    if (x->util != y->util)
        return x->util < y->util ? -1 : 1;
    if (x->n_res != y->n_res)
        return x->n_res < y->n_res ? -1 : 1;
    return x->host < y->host ? -1 : x->host > y->host;
}

static candidate candidate_of(const sched_state *c, size_t h)
{
    const sched_host_rt *ho = &c->hosts[h];
    return (candidate){ h, ho->cordoned, sched_host_util(ho), ho->n_res };
}

/* A binary min-heap of candidates in place (the array holds at most nc). */
static void heap_push(candidate *v, size_t *n, candidate x)
{
    size_t i = (*n)++;
    while (i > 0 && cmp_candidates(&x, &v[(i - 1) / 2]) < 0) {
        v[i] = v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    v[i] = x;
}

static candidate heap_pop(candidate *v, size_t *n)
{
    candidate top = v[0], x = v[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const candidate *best = &x;
        if (l < *n && cmp_candidates(&v[l], best) < 0) {
            m = l;
            best = &v[l];
        }
        if (l + 1 < *n && cmp_candidates(&v[l + 1], best) < 0)
            m = l + 1;
        if (m == i)
            break;
        v[i] = v[m];
        i = m;
    }
    v[i] = x;
    return top;
}

sched_status sched_plan_consolidate(const sched_state *st, const sched_plan_opts *opts,
                                    sched_plan *p)
{
    if (p == NULL)
        return SCHED_EINVAL;
    plan_init(p);
    if (st == NULL) {
        snprintf(p->message, sizeof(p->message), "state is NULL");
        return p->status = SCHED_EINVAL;
    }
    size_t max_moves = opts != NULL ? opts->max_moves : 0;
    p->hosts_used_before = hosts_used(st);
    sched_state *c = sched_state_clone(st);
    candidate *cand = calloc(st->n_hosts ? st->n_hosts : 1, sizeof(*cand));
    move_log log = { 0 };
    sched_status rc = SCHED_OK;
    if (c == NULL || cand == NULL) {
        rc = SCHED_ENOMEM;
        goto out;
    }
    /* Only hosts in use take moves. */
    size_t nc = 0;
    for (size_t h = 0; h < c->n_hosts; h++) {
        sched_host_rt *ho = &c->hosts[h];
        if (ho->n_res == 0) {
            ho->blocked++;
            sched_index_update(c, h);
            continue;
        }
        bool pinned = false;
        for (uint32_t k = 0; k < ho->n_res && !pinned; k++)
            pinned = c->insts[ho->res[k]].pinned;
        if (pinned)
            continue;
        cand[nc++] = candidate_of(c, h);
    }

    /* Always try the emptiest host not tried yet: hosts that took moves
     * got fuller and wait, so no guest moves twice. A heap with lazy keys:
     * a host's key only grows while it waits (it only receives guests, and
     * undone attempts bring it back to a key it had), so a popped host
     * whose key is still current is the emptiest. */
    size_t heap_n = 0;
    for (size_t k = 0; k < nc; k++)
        heap_push(cand, &heap_n, cand[k]);
    while (heap_n > 0) {
        candidate top = heap_pop(cand, &heap_n);
        candidate now = candidate_of(c, top.host);
        if (cmp_candidates(&now, &top) != 0) {
            heap_push(cand, &heap_n, now);
            continue;
        }
        size_t s = top.host;
        sched_host_rt *ho = &c->hosts[s];
        if (ho->n_res == 0)
            continue;
        if (max_moves > 0 && log.n + ho->n_res > max_moves)
            continue;
        ho->blocked++;
        sched_index_update(c, s);
        size_t mark = log.n, stuck;
        rc = empty_host(c, s, &log, &stuck);
        if (rc != SCHED_OK)
            goto out;
        if (stuck != SCHED_NONE) {
            undo_to(c, &log, mark);
            ho->blocked--;
            sched_index_update(c, s);
        }
    }
    rc = finish(st, c, &log, p);
    if (rc == SCHED_OK)
        snprintf(p->message, sizeof(p->message),
                 "%zu moves free %zu hosts (%zu -> %zu hosts in use)", p->n_moves, p->n_freed,
                 p->hosts_used_before, p->hosts_used_after);
out:
    if (rc != SCHED_OK) {
        sched_plan_clear(p);
        snprintf(p->message, sizeof(p->message), "out of memory");
    }
    p->status = rc;
    free(log.v);
    free(cand);
    sched_state_free(c);
    return rc;
}

sched_status sched_plan_drain(const sched_state *st, size_t host, const sched_plan_opts *opts,
                              sched_plan *p)
{
    if (p == NULL)
        return SCHED_EINVAL;
    plan_init(p);
    if (st == NULL || host >= st->n_hosts) {
        snprintf(p->message, sizeof(p->message), "host index %zu out of range", host);
        return p->status = SCHED_EINVAL;
    }
    const sched_host_rt *src = &st->hosts[host];
    for (uint32_t k = 0; k < src->n_res; k++) {
        const sched_inst_rt *in = &st->insts[src->res[k]];
        if (in->pinned) {
            p->stuck_instance = src->res[k];
            snprintf(p->message, sizeof(p->message), "instance '%s' on host '%s' is pinned", in->id,
                     src->id);
            return p->status = SCHED_EINVAL;
        }
    }
    size_t max_moves = opts != NULL ? opts->max_moves : 0;
    p->hosts_used_before = hosts_used(st);
    sched_state *c = sched_state_clone(st);
    move_log log = { 0 };
    sched_status rc = SCHED_OK;
    if (c == NULL) {
        rc = SCHED_ENOMEM;
        goto out;
    }
    c->hosts[host].blocked++;
    sched_index_update(c, host);
    size_t stuck;
    rc = empty_host(c, host, &log, &stuck);
    if (rc != SCHED_OK)
        goto out;
    rc = finish(st, c, &log, p);
    if (rc != SCHED_OK)
        goto out;
    if (stuck != SCHED_NONE) {
        p->stuck_instance = stuck;
        sched_unit u;
        unit_of(c, stuck, &u);
        char why[SCHED_MSG_MAX];
        if (!sched_departure_ok(c, stuck)) {
            rc = SCHED_ECONSTRAINT;
            snprintf(why, sizeof(why),
                     "leaving would break the hard affinity of an instance "
                     "that cannot move before it");
        } else {
            sched_resource r;
            uint64_t by, lf;
            size_t lh;
            rc = sched_explain_failure(c, &u, &r, &by, &lh, &lf, why, sizeof(why));
        }
        sched_msg(p->message, sizeof(p->message),
                  "cannot drain host '%s': instance '%s' has nowhere to go: %s", src->id,
                  c->insts[stuck].id, why);
    } else if (max_moves > 0 && p->n_moves > max_moves) {
        rc = SCHED_ENOSPACE;
        snprintf(p->message, sizeof(p->message),
                 "draining host '%s' takes %zu moves, more than max_moves %zu", src->id, p->n_moves,
                 max_moves);
    } else {
        snprintf(p->message, sizeof(p->message), "%zu moves drain host '%s'", p->n_moves, src->id);
    }
out:
    if (rc == SCHED_ENOMEM) {
        sched_plan_clear(p);
        snprintf(p->message, sizeof(p->message), "out of memory");
    }
    p->status = rc;
    free(log.v);
    sched_state_free(c);
    return rc;
}

void sched_plan_clear(sched_plan *p)
{
    if (p == NULL)
        return;
    free(p->moves);
    free(p->freed);
    plan_init(p);
}
