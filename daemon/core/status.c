/* status.c - the guest status channel (COM2 -> a file per instance):
 * ready, exit and crash records turned into instance state.
 *
 * The file is written by the guest and so untrusted: each poll reads at
 * most FLEET_STATUS_READ_MAX bytes with f->mu released, one ready record per
 * run counts, and a file that grows past FLEET_STATUS_FILE_MAX is emptied
 * once read (QEMU appends, so truncating under it is safe; records of a
 * guest that floods its channel may be lost, a flood cannot fill the disk).
 * A file past FLEET_STATUS_FILE_MAX with more than a poll's worth unread
 * is read from its last FLEET_STATUS_READ_MAX bytes: a guest writing faster
 * than the polls read would otherwise never be caught up with, and its file
 * never emptied. */
#include "fleet_int.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

const double fleet_ready_bounds[FLEET_READY_BUCKETS] = {
    0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 5, 10, 30,
};

struct recs {
    int have_ready;
    gst_record ready; /* the first ready record of this poll */
    int have_outcome;
    gst_record outcome; /* the last exit or crash record */
};

static void collect(void *ctx, const gst_record *r)
{
    struct recs *b = ctx;
    if (r->kind == GST_READY && !b->have_ready) {
        b->have_ready = 1;
        b->ready = *r;
    } else if (r->kind == GST_EXIT || r->kind == GST_CRASH) {
        b->have_outcome = 1;
        b->outcome = *r;
    }
}

struct ready_ctx {
    int64_t boot_us;
    double ready_ms;
    int boot_only; /* readiness is a probe's: the record gives boot_us only */
};

static void ready_fn(state_instance *in, void *ctx)
{
    struct ready_ctx *c = ctx;
    in->boot_us = c->boot_us;
    if (c->boot_only)
        return;
    if (in->state == ST_STARTING)
        in->state = ST_RUNNING;
    in->ready_ms = c->ready_ms;
}

void fleet_observe_ready(fleet *f, double ready_ms)
{
    double s = ready_ms / 1000.0;
    size_t i;
    for (i = 0; i < FLEET_READY_BUCKETS && s > fleet_ready_bounds[i]; i++)
        ;
    f->ready_hist[i]++;
    f->ready_sum += s;
    f->ready_count++;
}

/* Empty a status file that grew past its bound; the tracker starts over. */
static void drop_read_part(const char *path, gst_tracker *t)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (ftruncate(fd, 0) == 0) {
        t->off = 0;
        t->len = 0;
        t->overlong = 0;
    }
    close(fd);
}

void fleet_status_poll(fleet *f, const char *id)
{
    char path[FLEET_PATH_MAX];
    struct recs b;
    struct ready_ctx rc = { 0, -1, 0 };
    gst_tracker t;
    fleet_rt *rt;
    off_t size = 0;
    int64_t request_ms;
    int first_ready = 0, n, run_no = 0;

    memset(&b, 0, sizeof b);
    pthread_mutex_lock(&f->mu);
    /* One reader per instance; a second caller waits so that it sees the
     * records the first one is reading (job_domain_gone needs the last). */
    while ((rt = fleet_rt_get(f, id)) && rt->active && rt->polling)
        pthread_cond_wait(&f->state_cv, &f->mu);
    if (!rt || !rt->active) {
        pthread_mutex_unlock(&f->mu);
        return;
    }
    rt->polling = 1;
    /* the run's file: a pool guest's when it woke from the pool */
    fleet_status_path(f, rt->guest[0] ? rt->guest : id, path, sizeof path);
    t = rt->tracker;
    request_ms = rt->request_ms;
    pthread_mutex_unlock(&f->mu);

    off_t before = t.off;
    struct stat sb;
    if (stat(path, &sb) == 0 && sb.st_size > FLEET_STATUS_FILE_MAX &&
        sb.st_size - t.off > FLEET_STATUS_READ_MAX) {
        /* Skip what a flood put before the last READ_MAX bytes (its records
         * are lost) so that this poll reads to the end and empties the file
         * below; the line the skip lands in is dropped. */
        t.off = sb.st_size - FLEET_STATUS_READ_MAX;
        t.len = 0;
        t.overlong = 1;
    }
    n = gst_tracker_poll_max(&t, path, FLEET_STATUS_READ_MAX, collect, &b, &size);
    if (n < 0)
        log_debug("instance %s: cannot read status channel '%s'", id, path);
    if (size > FLEET_STATUS_FILE_MAX && t.off >= size)
        drop_read_part(path, &t);

    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, id);
    if (rt) {
        rt->tracker = t;
        rt->polling = 0;
        /* A poll that hit the read bound means a guest writing without
         * end: file events of it are ignored for a while (the tick still
         * reads it), so it cannot keep a thread busy. */
        if (t.off - before >= FLEET_STATUS_READ_MAX || t.off < before)
            rt->quiet_until_ms = fleet_now_ms() + FLEET_STATUS_QUIET_MS;
        if (b.have_outcome) {
            rt->have_outcome = 1;
            rt->outcome = b.outcome;
        }
        if (b.have_ready && rt->ready_by_probe && !rt->boot_seen) {
            /* a probe decides readiness (health.c): keep the boot time */
            rt->boot_seen = 1;
            first_ready = 1;
            rc.boot_only = 1;
            rc.boot_us = b.ready.boot_us;
        } else if (b.have_ready && !rt->ready && !rt->ready_by_probe) {
            rt->ready = 1;
            first_ready = 1;
            run_no = rt->run_no;
            rc.boot_us = b.ready.boot_us;
            if (request_ms) {
                rc.ready_ms = (double)(fleet_now_ms() - request_ms);
                fleet_observe_ready(f, rc.ready_ms);
            }
        }
    }
    pthread_cond_broadcast(&f->state_cv);
    pthread_mutex_unlock(&f->mu);
    if (first_ready) {
        fleet_mutate(f, id, ready_fn, &rc);
        if (!rc.boot_only) {
            fleet_probe_status_ready(f, id, run_no); /* health checks begin */
            fleet_idle_ready(f, id);                 /* held connections go through */
            /* Counted once the row says running, so that a batch's final
             * event never comes before its instances' state. */
            fleet_batch_note(f, id, FLEET_BATCH_READY, NULL, NULL, NULL);
        }
    }
}

/* The runtime entry of the instance whose run writes `run`'s status file:
 * the instance `run` itself, or the one that woke on pool guest `run`
 * (fleet_run_id; the guest's events while it waited in the pool may have
 * made an entry of that id, which is no run's). Under f->mu. */
static fleet_rt *rt_of_run(fleet *f, const char *run)
{
    fleet_rt *rt = fleet_rt_find(f, run);
    if (rt && rt->active && !rt->guest[0])
        return rt; /* running as itself: the common case */
    for (size_t i = 0; i < f->nrt; i++)
        if (!strcmp(f->rt[i].guest, run))
            return &f->rt[i];
    return rt ? rt : fleet_rt_get(f, run);
}

int fleet_status_event(fleet *f, const char *run)
{
    char id[STATE_ID_LEN + 1];
    fleet_rt *rt;
    int quiet;
    pthread_mutex_lock(&f->mu);
    rt = rt_of_run(f, run);
    quiet = rt && rt->quiet_until_ms > fleet_now_ms();
    fleet_text_copy(id, sizeof id, rt ? rt->id : run);
    pthread_mutex_unlock(&f->mu);
    if (!quiet)
        fleet_status_poll(f, id);
    return !quiet;
}
