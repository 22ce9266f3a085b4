/* runtime.c - the runtime table (facts about instances that live only in
 * memory, indexed by id) and read-modify-write of instance rows. */
#include "fleet_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* Lookups happen on every status-file change and, each tick, for every
 * running instance: the table is indexed by id rather than scanned. */
static size_t rt_hash(const char *id)
{
    size_t h = 1469598103934665603u;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211u;
    return h;
}

/* Slot of id in the index: where it is, or the empty slot it would take. */
static size_t rt_slot(const fleet *f, const char *id)
{
    size_t mask = 2 * f->rt_cap - 1, i = rt_hash(id) & mask;
    while (f->rt_index[i] && strcmp(f->rt[f->rt_index[i] - 1].id, id) != 0)
        i = (i + 1) & mask;
    return i;
}

static void rt_reindex(fleet *f)
{
    memset(f->rt_index, 0, 2 * f->rt_cap * sizeof *f->rt_index);
    for (size_t k = 0; k < f->nrt; k++)
        f->rt_index[rt_slot(f, f->rt[k].id)] = k + 1;
}

fleet_rt *fleet_rt_find(fleet *f, const char *id)
{
    size_t slot;
    if (!f->rt_cap)
        return NULL;
    slot = rt_slot(f, id);
    return f->rt_index[slot] ? &f->rt[f->rt_index[slot] - 1] : NULL;
}

fleet_rt *fleet_rt_get(fleet *f, const char *id)
{
    fleet_rt *rt;
    size_t slot;
    if (f->rt_cap) {
        slot = rt_slot(f, id);
        if (f->rt_index[slot])
            return &f->rt[f->rt_index[slot] - 1];
    }
    if (f->nrt == f->rt_cap) {
        /* Entries are addressed by pointer only while f->mu is held, so a
         * realloc here cannot strand a reader. Capacity stays a power of
         * two so the index can mask. */
        size_t ncap = f->rt_cap ? f->rt_cap * 2 : 256;
        fleet_rt *n = realloc(f->rt, ncap * sizeof *n);
        size_t *ix;
        if (!n)
            return NULL;
        f->rt = n;
        ix = realloc(f->rt_index, 2 * ncap * sizeof *ix);
        if (!ix)
            return NULL;
        f->rt_index = ix;
        f->rt_cap = ncap;
        rt_reindex(f);
    }
    rt = &f->rt[f->nrt++];
    memset(rt, 0, sizeof *rt);
    snprintf(rt->id, sizeof rt->id, "%s", id);
    f->rt_index[rt_slot(f, id)] = f->nrt;
    return rt;
}

void fleet_rt_drop(fleet *f, const char *id)
{
    size_t slot;
    if (!f->rt_cap)
        return;
    slot = rt_slot(f, id);
    if (!f->rt_index[slot])
        return;
    /* Still counted in its batch: it goes before it was ready. */
    fleet_batch_note_locked(f, &f->rt[f->rt_index[slot] - 1], FLEET_BATCH_FAILED, NULL, "deleted",
                            "deleted before it was ready");
    /* Deletes are rare: move the last entry into the hole and rebuild. */
    f->rt[f->rt_index[slot] - 1] = f->rt[--f->nrt];
    rt_reindex(f);
}

int fleet_rt_wait(fleet *f, const char *id, int need_inactive, int timeout_ms)
{
    int64_t deadline = fleet_now_ms() + timeout_ms;
    int quiet = 0;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        fleet_rt *rt = fleet_rt_get(f, id);
        struct timespec ts;
        int64_t left = deadline - fleet_now_ms(), slice = left > 200 ? 200 : left;
        if (!rt || (!rt->busy && (!need_inactive || !rt->active))) {
            quiet = 1;
            break;
        }
        if (left <= 0)
            break;
        fleet_deadline(&ts, CLOCK_REALTIME, slice);
        pthread_cond_timedwait(&f->state_cv, &f->mu, &ts);
    }
    pthread_mutex_unlock(&f->mu);
    return quiet;
}

int fleet_mutate(fleet *f, const char *id, fleet_mutator fn, void *ctx)
{
    state_instance in;
    char err[256];
    int rc;
    state_inst_state before;

    pthread_mutex_lock(&f->row_mu);
    rc = state_inst_find(f->db, id, &in, err, sizeof err);
    if (rc != 0 || strcmp(in.id, id) != 0) {
        if (rc == 0)
            state_inst_free(&in);
        pthread_mutex_unlock(&f->row_mu);
        return STATE_ENOTFOUND;
    }
    before = in.state;
    fn(&in, ctx);
    rc = state_inst_update(f->db, &in, err, sizeof err);
    pthread_mutex_unlock(&f->row_mu);
    if (rc != 0)
        log_error("instance %s: cannot save state: %s", id, err);
    if (in.state != before)
        fleet_emit(f, "instance.state", in.id, in.name, state_inst_state_name(in.state), in.host,
                   in.image_ref, NULL, in.last_error);
    pthread_mutex_lock(&f->mu);
    pthread_cond_broadcast(&f->state_cv);
    pthread_mutex_unlock(&f->mu);
    state_inst_free(&in);
    return rc;
}

struct set_state_ctx {
    state_inst_state st;
    const char *last_error;
};

static void set_state_fn(state_instance *in, void *ctx)
{
    struct set_state_ctx *c = ctx;
    in->state = c->st;
    if (c->last_error)
        fleet_text_copy(in->last_error, sizeof in->last_error, c->last_error);
}

int fleet_set_state(fleet *f, const char *id, state_inst_state st, const char *last_error)
{
    struct set_state_ctx c = { st, last_error };
    return fleet_mutate(f, id, set_state_fn, &c);
}

static void set_host_fn(state_instance *in, void *ctx)
{
    snprintf(in->host, sizeof in->host, "%s", (const char *)ctx);
}

int fleet_set_host(fleet *f, const char *id, const char *host)
{
    return fleet_mutate(f, id, set_host_fn, (void *)host);
}
