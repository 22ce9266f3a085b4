/* jobs.c - the job queues, the worker threads that run jobs, and libvirt's
 * events turned into jobs (on libvirt's event thread: queue only).
 *
 * Two queues, two pools. Starts (JOB_START) go to f->starts and are run by
 * f->nstart_workers threads (--start-parallel): that number is how many
 * domains are being created at once, which is what a boot storm is made of.
 * Everything else (a domain went, a domain crashed) goes to f->jobs and is
 * run by FLEET_EVENT_WORKERS threads of its own, so the end of a run, a
 * crash or a restart policy never waits behind a queue of 1,000 starts.
 * Jobs of one instance still never run at once (fleet_rt.busy), and a start
 * is not taken while an event job of the same instance is queued (the
 * event, older, goes first, as with one queue).
 *
 * Why --start-parallel auto is what it is: see fleet_start_parallel_auto. */
#include "fleet_int.h"
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int fleet_start_parallel_auto(long cpus)
{
    /* A start costs ~0.35 s of CPU (QEMU's exec and start, ~0.27 s of it,
     * most in its monitor thread answering libvirt; libvirt and shoald the
     * rest) and a few waits (fork/exec, monitor round trips). Measured on 2
     * CPUs under TCG (docs/benchmarks.md, "Boot storms"): a storm is
     * CPU-bound from 4 starts at once on, 8 was the fastest (200 guests in
     * 42.6 s against 46.2 s with 4), 16 no faster, and each start's own
     * time grows with the number in flight (0.7 s at 4, 1.6 s at 8, 3.8 s
     * at 16): more in flight only queue in the kernel's run queue instead
     * of ours, each holding a half-started QEMU. 4 per CPU keeps the CPUs
     * busy through the waits; 8 at least, 32 at most. */
    long n = cpus > 0 ? 4 * cpus : 8;
#if defined(__SANITIZE_ADDRESS__)
    /* Sanitizer builds only: libvirt's child between fork and exec mallocs
     * (opendir to close fds), and ASan's allocator, unlike glibc's, is not
     * made fork-safe: a lock another thread held at the fork is never
     * released in the child, which hangs, and virDomainCreateXML with it
     * (seen with 8 starts at once in e2e_daemon_storm). Every allocating
     * thread adds to that risk; keep the 4 starts at once these builds
     * always had. */
    (void)n;
    return 4;
#else
    return (int)(n < 8 ? 8 : n > 32 ? 32 : n);
#endif
}

/* A job; from: the node of the libvirt event it comes from (fleet_job). */
static void queue_from(fleet *f, fleet_job_kind kind, const char *id, const char *detail,
                       const struct node *from)
{
    fleet_job *j = calloc(1, sizeof *j);
    if (!j) {
        log_error("instance %s: out of memory queueing a job", id);
        return;
    }
    j->kind = kind;
    j->from = from;
    snprintf(j->id, sizeof j->id, "%s", id);
    snprintf(j->detail, sizeof j->detail, "%s", detail ? detail : "");
    pthread_mutex_lock(&f->mu);
    if (kind == JOB_START) {
        if (f->starts_tail)
            f->starts_tail->next = j;
        else
            f->starts = j;
        f->starts_tail = j;
    } else {
        if (f->jobs_tail)
            f->jobs_tail->next = j;
        else
            f->jobs = j;
        f->jobs_tail = j;
    }
    /* Both pools wait on job_cv: wake them all, the right one takes it. */
    pthread_cond_broadcast(&f->job_cv);
    pthread_mutex_unlock(&f->mu);
}

void fleet_queue(fleet *f, fleet_job_kind kind, const char *id, const char *detail)
{
    queue_from(f, kind, id, detail, NULL);
}

/* Is an event job of this instance queued? Caller holds f->mu. */
static int event_queued(const fleet *f, const char *id)
{
    for (const fleet_job *j = f->jobs; j; j = j->next) {
        if (!strcmp(j->id, id))
            return 1;
    }
    return 0;
}

/* Take the first job of the queue whose instance is not busy. Caller holds
 * f->mu. */
static fleet_job *take_job(fleet *f, int starts)
{
    fleet_job **head = starts ? &f->starts : &f->jobs;
    fleet_job **tail = starts ? &f->starts_tail : &f->jobs_tail;
    fleet_job *prev = NULL;
    for (fleet_job *j = *head; j; prev = j, j = j->next) {
        fleet_rt *rt = fleet_rt_get(f, j->id);
        if (rt && rt->busy)
            continue;
        if (starts && f->jobs && event_queued(f, j->id))
            continue;
        if (prev)
            prev->next = j->next;
        else
            *head = j->next;
        if (*tail == j)
            *tail = prev;
        if (rt)
            rt->busy = 1;
        return j;
    }
    return NULL;
}

void *fleet_worker_main(void *arg)
{
    fleet_worker *w = arg;
    fleet *f = w->f;
    pthread_mutex_lock(&f->mu);
    while (!f->stopping) {
        fleet_job *j = take_job(f, w->starts);
        fleet_rt *rt;
        if (!j) {
            pthread_cond_wait(&f->job_cv, &f->mu);
            continue;
        }
        pthread_mutex_unlock(&f->mu);
        switch (j->kind) {
        case JOB_START: fleet_job_start(f, j); break;
        case JOB_DOMAIN_GONE: fleet_job_domain_gone(f, j); break;
        case JOB_DOMAIN_CRASHED: fleet_job_domain_crashed(f, j); break;
        case JOB_PROBE: fleet_job_probe(f, j); break;
        case JOB_SLEEP: fleet_job_sleep(f, j); break;
        case JOB_WAKE: fleet_job_wake(f, j); break;
        case JOB_MOVE_LEFT: fleet_job_move_left(f, j); break;
        }
        pthread_mutex_lock(&f->mu);
        rt = fleet_rt_get(f, j->id);
        if (rt)
            rt->busy = 0;
        /* Others may be waiting for this instance to be free. */
        pthread_cond_broadcast(&f->job_cv);
        pthread_cond_broadcast(&f->state_cv);
        free(j);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

void fleet_on_node_event(struct node *node, const char *instance_id, enum node_event ev,
                         const char *detail, void *user)
{
    fleet *f = user;
    switch (ev) {
    case NODE_EVENT_STOPPED:
    case NODE_EVENT_CRASHED:
        /* a warm pool guest that dies is replaced (pool.h); no row: the
         * jobs below find nothing to do for it */
        fleet_pool_gone(f, instance_id);
        /* With the node it comes from: an end from a node other than the
         * one the instance's run is on when the job runs is an old copy's
         * and ends nothing (run.c end_elsewhere). Decided there, not here:
         * a run may begin elsewhere while the job waits. */
        queue_from(f, ev == NODE_EVENT_STOPPED ? JOB_DOMAIN_GONE : JOB_DOMAIN_CRASHED, instance_id,
                   detail, node);
        break;
    case NODE_EVENT_CONN_LOST:
        pthread_mutex_lock(&f->mu);
        for (size_t i = 0; i < f->nhosts; i++) {
            fleet_host *h = f->hosts[i];
            if (h->node == node) {
                h->up = 0;
                snprintf(h->last_error, sizeof h->last_error, "connection lost (%s)",
                         detail ? detail : "unknown");
                h->next_retry_ms = 0;
            }
        }
        pthread_mutex_unlock(&f->mu);
        fleet_wake_supervisor(f);
        break;
    default: break;
    }
}
