/* batch.c - progress of a boot storm: the instances of one create request
 * (count > 1) followed until each is ready or has failed, reported as
 * batch.progress events.
 *
 * A batch is named by the id of its first instance (items[0].id of the
 * create's answer, so a client knows which events are its own). Each
 * instance counts once, for its first run: `started` when its domain is
 * created, `ready` when the guest's ready record arrives (it was running),
 * `failed` when it ends otherwise: the start failed (state failed with
 * last_error), the run ended before the guest was ready (crashed, exited,
 * lost), or it was stopped or deleted first. A restart policy may start a
 * failed one again; the batch does not wait for that. Once ready + failed
 * = total the batch is complete: its final event carries the failed
 * instances (up to FLEET_BATCH_FAILS of them) and the batch is freed.
 *
 * Like bulk.progress (bulk.c), at most one event per batch every
 * FLEET_BATCH_EMIT_MS, and always one at the end. The counts change under
 * f->mu on workers and the supervisor; only the supervisor emits
 * (fleet_batch_flush, each loop of supervisor.c), so a batch's events are
 * in order and the final one is last. */
#include "fleet_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"

void fleet_batch_begin(fleet *f, const state_instance *made, size_t n)
{
    fleet_batch *b;
    if (n < 2)
        return;
    b = calloc(1, sizeof *b);
    if (!b) {
        log_warn("batch of %zu: out of memory, no progress events", n);
        return;
    }
    snprintf(b->id, sizeof b->id, "%s", made[0].id);
    b->total = (uint32_t)n;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < n; i++) {
        fleet_rt *rt = fleet_rt_get(f, made[i].id);
        if (rt) {
            rt->batch = b;
            rt->batch_started = 0;
        } else {
            b->failed++; /* out of memory: never counted, never waited for */
        }
    }
    b->dirty = 1;
    b->next = f->batches;
    f->batches = b;
    pthread_mutex_unlock(&f->mu);
}

void fleet_batch_note_locked(fleet *f, fleet_rt *rt, fleet_batch_what what, const char *name,
                             const char *state, const char *error)
{
    fleet_batch *b = rt ? rt->batch : NULL;
    (void)f;
    if (!b)
        return;
    b->dirty = 1;
    if (what == FLEET_BATCH_STARTED) {
        if (!rt->batch_started)
            b->started++;
        rt->batch_started = 1;
        return;
    }
    if (what == FLEET_BATCH_READY) {
        if (!rt->batch_started)
            b->started++;
        b->ready++;
    } else {
        b->failed++;
        if (b->nfails < FLEET_BATCH_FAILS) {
            fleet_batch_fail *x = &b->fails[b->nfails++];
            fleet_text_copy(x->id, sizeof x->id, rt->id);
            fleet_text_copy(x->name, sizeof x->name, name ? name : rt->id);
            fleet_text_copy(x->state, sizeof x->state, state ? state : "failed");
            fleet_text_copy(x->error, sizeof x->error, error);
        }
    }
    rt->batch = NULL;
    rt->batch_started = 0;
}

void fleet_batch_note(fleet *f, const char *id, fleet_batch_what what, const char *name,
                      const char *state, const char *error)
{
    fleet_batch *b;
    int complete = 0;
    pthread_mutex_lock(&f->mu);
    fleet_rt *rt = fleet_rt_get(f, id);
    if (rt && (b = rt->batch)) {
        fleet_batch_note_locked(f, rt, what, name, state, error);
        complete = b->ready + b->failed >= b->total;
    }
    pthread_mutex_unlock(&f->mu);
    /* The final event goes out now rather than at the next tick. */
    if (complete)
        fleet_wake_supervisor(f);
}

/* What one event says, copied out of the batch under f->mu. */
typedef struct {
    fleet_batch snap;
    fleet_batch *owned; /* complete: free after the event */
} batch_emit;

static void emit(fleet *f, const fleet_batch *b)
{
    json_t *o = json_object(), *fails = json_array();
    char msg[160];
    uint32_t done = b->ready + b->failed;

    snprintf(msg, sizeof msg, "batch %s: %u/%u ready, %u started, %u failed", b->id, b->ready,
             b->total, b->started, b->failed);
    json_object_set_new(o, "time", json_integer(fleet_wall_ms() / 1000));
    json_object_set_new(o, "type", json_string("batch.progress"));
    json_object_set_new(o, "batch", json_string(b->id));
    json_object_set_new(o, "total", json_integer(b->total));
    json_object_set_new(o, "started", json_integer(b->started));
    json_object_set_new(o, "ready", json_integer(b->ready));
    json_object_set_new(o, "failed", json_integer(b->failed));
    json_object_set_new(o, "done", json_integer(done));
    json_object_set_new(o, "final", json_boolean(done >= b->total));
    for (size_t i = 0; i < b->nfails; i++) {
        const fleet_batch_fail *x = &b->fails[i];
        json_t *fo = json_object();
        json_object_set_new(fo, "instance", json_string(x->id));
        json_object_set_new(fo, "name", json_string(x->name));
        json_object_set_new(fo, "state", json_string(x->state));
        if (x->error[0])
            json_object_set_new(fo, "message", json_string(x->error));
        json_array_append_new(fails, fo);
    }
    json_object_set_new(o, "failures", fails);
    json_object_set_new(o, "message", json_string(msg));
    fleet_emit_object(f, o);
}

void fleet_batch_flush(fleet *f)
{
    batch_emit *out = NULL;
    size_t n = 0, cap = 0;
    int64_t now = fleet_now_ms();

    pthread_mutex_lock(&f->mu);
    for (fleet_batch **pp = &f->batches; *pp;) {
        fleet_batch *b = *pp;
        int complete = b->ready + b->failed >= b->total;
        if (!b->dirty ||
            (!complete && b->last_emit_ms && now - b->last_emit_ms < FLEET_BATCH_EMIT_MS)) {
            pp = &b->next;
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 8;
            batch_emit *a = realloc(out, ncap * sizeof *a);
            if (!a)
                break; /* the next flush tries again */
            out = a;
            cap = ncap;
        }
        b->dirty = 0;
        b->last_emit_ms = now;
        out[n].snap = *b;
        out[n].owned = NULL;
        if (complete) {
            *pp = b->next;
            out[n].owned = b;
        } else {
            pp = &b->next;
        }
        n++;
    }
    pthread_mutex_unlock(&f->mu);
    for (size_t i = 0; i < n; i++) {
        emit(f, &out[i].snap);
        if (out[i].owned)
            log_info("batch %s: %u/%u ready, %u failed", out[i].snap.id, out[i].snap.ready,
                     out[i].snap.total, out[i].snap.failed);
        free(out[i].owned);
    }
    free(out);
}

void fleet_batch_free_all(fleet *f)
{
    while (f->batches) {
        fleet_batch *b = f->batches;
        f->batches = b->next;
        free(b);
    }
}
