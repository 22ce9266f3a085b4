/* jobs.c - the job queue, the worker threads that run jobs, and libvirt's
 * events turned into jobs (on libvirt's event thread: queue only). */
#include "fleet_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

void fleet_queue(fleet *f, fleet_job_kind kind, const char *id, const char *detail)
{
    fleet_job *j = calloc(1, sizeof *j);
    if (!j) {
        log_error("instance %s: out of memory queueing a job", id);
        return;
    }
    j->kind = kind;
    snprintf(j->id, sizeof j->id, "%s", id);
    snprintf(j->detail, sizeof j->detail, "%s", detail ? detail : "");
    pthread_mutex_lock(&f->mu);
    if (f->jobs_tail)
        f->jobs_tail->next = j;
    else
        f->jobs = j;
    f->jobs_tail = j;
    pthread_cond_signal(&f->job_cv);
    pthread_mutex_unlock(&f->mu);
}

/* Take the first job whose instance is not busy. Caller holds f->mu. */
static fleet_job *take_job(fleet *f)
{
    fleet_job *prev = NULL;
    for (fleet_job *j = f->jobs; j; prev = j, j = j->next) {
        fleet_rt *rt = fleet_rt_get(f, j->id);
        if (rt && rt->busy)
            continue;
        if (prev)
            prev->next = j->next;
        else
            f->jobs = j->next;
        if (f->jobs_tail == j)
            f->jobs_tail = prev;
        if (rt)
            rt->busy = 1;
        return j;
    }
    return NULL;
}

void *fleet_worker_main(void *arg)
{
    fleet *f = arg;
    pthread_mutex_lock(&f->mu);
    while (!f->stopping) {
        fleet_job *j = take_job(f);
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
    case NODE_EVENT_STOPPED: fleet_queue(f, JOB_DOMAIN_GONE, instance_id, detail); break;
    case NODE_EVENT_CRASHED: fleet_queue(f, JOB_DOMAIN_CRASHED, instance_id, detail); break;
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
