/* bulk.c - stop, start, restart or delete many instances at once.
 *
 * The selection is resolved once, up front, into a list of full ids; then
 * up to FLEET_BULK_THREADS threads of this call take items off the list and
 * run the ordinary per-instance operation (fleet_instance_stop / start /
 * restart / delete, instance.c) on each, recording its fleet_err.
 *
 * Why threads, and why at most 32: a delete or stop spends almost all its
 * time waiting: for libvirt to destroy the domain and reap QEMU, then for a
 * worker to record the end of the run (fleet_rt_wait), about 1.5 s a
 * guest. Running them one after another leaves the host idle; the waits
 * overlap perfectly, so throughput grows with the number in flight until
 * libvirt or the 4 job workers become the limit. 32 at once is 20+ deletes
 * a second, over the 1,000-in-90-s target, while keeping the number of
 * threads, libvirt calls and SQLite writers in flight modest (each thread
 * does nothing but wait; the libvirt calls run on it, so it keeps the
 * default stack).
 *
 * Locks: the per-instance operations take the fleet's locks themselves, in
 * the order of fleet_int.h, and release them before they wait. This file
 * holds no fleet lock at all; its own `mu` (one per call, guarding the next
 * index and the counters) is a leaf: nothing else is taken while it is
 * held, and the progress events are emitted with it released, by the
 * calling thread only (so they are in order and at most two a second).
 */
#include "fleet_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "log.h"

#define BULK_PAGE        1000 /* rows per fleet_instance_page call */
#define BULK_PROGRESS_MS 500  /* at most one progress event per period */

static const char *const OP_NAMES[] = {
    [FLEET_BULK_STOP] = "stop",
    [FLEET_BULK_START] = "start",
    [FLEET_BULK_RESTART] = "restart",
    [FLEET_BULK_DELETE] = "delete",
};

const char *fleet_bulk_op_name(fleet_bulk_op op)
{
    return (unsigned)op < sizeof OP_NAMES / sizeof OP_NAMES[0] ? OP_NAMES[op] : NULL;
}

void fleet_bulk_clear(fleet_bulk *b)
{
    if (!b)
        return;
    free(b->items);
    memset(b, 0, sizeof *b);
}

static fleet_bulk_item *bulk_add(fleet_bulk *b, size_t *cap)
{
    if (b->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        fleet_bulk_item *a = realloc(b->items, ncap * sizeof *a);
        if (!a)
            return NULL;
        b->items = a;
        *cap = ncap;
    }
    memset(&b->items[b->n], 0, sizeof b->items[0]);
    return &b->items[b->n++];
}

/* ---- selection ---------------------------------------------------------- */

int fleet_bulk_select(fleet *f, state_inst_match match, void *ctx, fleet_bulk *out, fleet_err *e)
{
    char after[STATE_ID_LEN + 1] = "";
    size_t cap = 0;
    int more = 1, rc = FLEET_OK;

    memset(out, 0, sizeof *out);
    if (!match)
        return fleet_err_set(e, FLEET_E_INVALID, "selector",
                             "a bulk operation needs a "
                             "selector or a list of instances");
    while (more && rc == FLEET_OK) {
        state_instance *rows = NULL;
        size_t n = 0;
        more = 0;
        rc = fleet_instance_page(f, after[0] ? after : NULL, -1, NULL, match, ctx, BULK_PAGE, &rows,
                                 &n, &more, e);
        for (size_t i = 0; i < n && rc == FLEET_OK; i++) {
            fleet_bulk_item *it = bulk_add(out, &cap);
            if (!it) {
                rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "out of memory");
                break;
            }
            snprintf(it->id, sizeof it->id, "%s", rows[i].id);
            snprintf(it->name, sizeof it->name, "%s", rows[i].name);
        }
        if (n)
            snprintf(after, sizeof after, "%s", rows[n - 1].id);
        else
            more = 0;
        state_inst_array_free(rows, n);
    }
    if (rc != FLEET_OK)
        fleet_bulk_clear(out);
    return rc;
}

int fleet_bulk_keys(fleet *f, const char *const *keys, size_t n, fleet_bulk *out, fleet_err *e)
{
    size_t cap = 0;

    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        state_instance in;
        fleet_err le;
        fleet_bulk_item *it;
        int dup = 0, rc = fleet_instance_find(f, keys[i], &in, &le);
        if (rc == FLEET_OK) {
            for (size_t k = 0; k < out->n && !dup; k++)
                dup = !strcmp(out->items[k].id, in.id);
            if (dup) {
                state_inst_free(&in);
                continue;
            }
        }
        if (!(it = bulk_add(out, &cap))) {
            if (rc == FLEET_OK)
                state_inst_free(&in);
            fleet_bulk_clear(out);
            return fleet_err_set(e, FLEET_E_INTERNAL, NULL, "out of memory");
        }
        fleet_text_copy(it->key, sizeof it->key, keys[i]);
        if (rc == FLEET_OK) {
            snprintf(it->id, sizeof it->id, "%s", in.id);
            snprintf(it->name, sizeof it->name, "%s", in.name);
            state_inst_free(&in);
        } else {
            it->err = le;
        }
    }
    return FLEET_OK;
}

/* ---- running ------------------------------------------------------------ */

typedef struct {
    fleet *f;
    fleet_bulk *b;
    fleet_bulk_op op;
    int timeout_s;
    bool force;
    pthread_mutex_t mu; /* leaf: next, done, failed */
    pthread_cond_t cv;  /* an item finished */
    size_t next, done, failed, total;
} bulk_run;

static void bulk_one(bulk_run *r, fleet_bulk_item *it)
{
    fleet_err *e = &it->err;
    int rc;

    memset(e, 0, sizeof *e);
    /* By full id: the selection was resolved once and means exactly these
     * instances, whatever is created or renamed meanwhile. */
    switch (r->op) {
    case FLEET_BULK_STOP: rc = fleet_instance_stop(r->f, it->id, r->timeout_s, NULL, e); break;
    case FLEET_BULK_START: rc = fleet_instance_start(r->f, it->id, NULL, e); break;
    case FLEET_BULK_RESTART:
        rc = fleet_instance_restart(r->f, it->id, r->timeout_s, NULL, e);
        break;
    case FLEET_BULK_DELETE: rc = fleet_instance_delete(r->f, it->id, r->force, e); break;
    default: rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "unknown bulk operation %d", (int)r->op);
    }
    if (rc == FLEET_OK)
        memset(e, 0, sizeof *e);
    else
        e->code = (fleet_code)rc;
}

static void *bulk_thread(void *arg)
{
    bulk_run *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        fleet_bulk_item *it = NULL;
        /* Skip items whose key did not resolve: their outcome is known. */
        while (r->next < r->b->n && !r->b->items[r->next].id[0])
            r->next++;
        if (r->next >= r->b->n)
            break;
        it = &r->b->items[r->next++];
        pthread_mutex_unlock(&r->mu);
        bulk_one(r, it);
        pthread_mutex_lock(&r->mu);
        r->done++;
        if (it->err.code != FLEET_OK)
            r->failed++;
        pthread_cond_signal(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* One bulk.progress event: {"type":"bulk.progress","action":"delete",
 * "done":N,"total":M,"failed":K,"message":"delete: N/M done, K failed"}.
 * Appended like fleet_emit's (events.c), with the numbers as numbers. */
static void emit_progress(fleet *f, fleet_bulk_op op, size_t done, size_t total, size_t failed)
{
    json_t *o = json_object();
    char msg[128];

    snprintf(msg, sizeof msg, "%s: %zu/%zu done, %zu failed", fleet_bulk_op_name(op), done, total,
             failed);
    json_object_set_new(o, "time", json_integer(fleet_wall_ms() / 1000));
    json_object_set_new(o, "type", json_string("bulk.progress"));
    json_object_set_new(o, "action", json_string(fleet_bulk_op_name(op)));
    json_object_set_new(o, "done", json_integer((json_int_t)done));
    json_object_set_new(o, "total", json_integer((json_int_t)total));
    json_object_set_new(o, "failed", json_integer((json_int_t)failed));
    json_object_set_new(o, "message", json_string(msg));
    fleet_emit_object(f, o);
}

int fleet_bulk_run(fleet *f, fleet_bulk_op op, int timeout_s, bool force, fleet_bulk *b,
                   fleet_err *e)
{
    bulk_run r;
    pthread_t th[FLEET_BULK_THREADS];
    pthread_condattr_t ca;
    size_t nthreads = 0, want, pre_failed = 0, last_done = (size_t)-1;
    int64_t t0 = fleet_now_ms();

    if (!fleet_bulk_op_name(op))
        return fleet_err_set(e, FLEET_E_INVALID, NULL, "unknown bulk operation %d", (int)op);
    memset(&r, 0, sizeof r);
    r.f = f;
    r.b = b;
    r.op = op;
    r.timeout_s = timeout_s;
    r.force = force;
    for (size_t i = 0; i < b->n; i++) {
        if (b->items[i].id[0])
            r.total++;
        else
            pre_failed++;
    }
    want = r.total < FLEET_BULK_THREADS ? r.total : FLEET_BULK_THREADS;
    pthread_mutex_init(&r.mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r.cv, &ca);
    pthread_condattr_destroy(&ca);
    for (size_t i = 0; i < want; i++) {
        int err = pthread_create(&th[nthreads], NULL, bulk_thread, &r);
        if (err != 0) {
            log_warn("bulk %s: thread %zu: %s", fleet_bulk_op_name(op), i, strerror(err));
            break;
        }
        nthreads++;
    }
    if (want && !nthreads) {
        pthread_cond_destroy(&r.cv);
        pthread_mutex_destroy(&r.mu);
        return fleet_err_set(e, FLEET_E_INTERNAL, NULL, "cannot start bulk threads");
    }
    log_info("bulk %s of %zu instance%s on %zu thread%s", fleet_bulk_op_name(op), r.total,
             r.total == 1 ? "" : "s", nthreads, nthreads == 1 ? "" : "s");

    /* Report progress while the threads work: this thread holds only r.mu
     * while it looks, and emits with it released. */
    pthread_mutex_lock(&r.mu);
    for (;;) {
        size_t done = r.done, failed = r.failed;
        int finished = done >= r.total;
        struct timespec ts;
        pthread_mutex_unlock(&r.mu);
        if (done != last_done && (done > 0 || (finished && r.total + pre_failed > 0)))
            emit_progress(f, op, done + pre_failed, r.total + pre_failed, failed + pre_failed);
        last_done = done;
        if (finished)
            break;
        fleet_deadline(&ts, CLOCK_MONOTONIC, BULK_PROGRESS_MS);
        pthread_mutex_lock(&r.mu);
        while (r.done < r.total) {
            if (pthread_cond_timedwait(&r.cv, &r.mu, &ts) == ETIMEDOUT)
                break;
        }
    }
    for (size_t i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.mu);

    b->succeeded = b->failed = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->items[i].err.code == FLEET_OK)
            b->succeeded++;
        else
            b->failed++;
    }
    log_info("bulk %s: %zu ok, %zu failed in %.1f s", fleet_bulk_op_name(op), b->succeeded,
             b->failed, (double)(fleet_now_ms() - t0) / 1000.0);
    return FLEET_OK;
}
