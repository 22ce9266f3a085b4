/*
 * evlog.h - test helper: record node events and wait for them (header-only).
 *
 * evlog_cb is a node_event_fn; it only appends under a mutex and signals,
 * as node.h requires of callbacks. evlog_wait() blocks the test thread with
 * a deadline, so every wait in the tests is time-bounded.
 */
#ifndef SHOAL_TEST_EVLOG_H
#define SHOAL_TEST_EVLOG_H

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "node.h"

#define EVLOG_MAX 4096 /* test_node_mock starts hundreds of domains */

struct evlog_entry {
    char id[DOMXML_ID_MAX + 1];
    enum node_event ev;
    char detail[32];
    double t; /* CLOCK_MONOTONIC seconds */
};

struct evlog {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct evlog_entry e[EVLOG_MAX];
    int n;
    int verbose;
};

static inline double evlog_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void evlog_init(struct evlog *l)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->lock, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cond, &a);
    pthread_condattr_destroy(&a);
}

static inline void evlog_destroy(struct evlog *l)
{
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->cond);
}

static inline void evlog_cb(struct node *node, const char *id, enum node_event ev,
                            const char *detail, void *user)
{
    struct evlog *l = user;
    (void)node;
    pthread_mutex_lock(&l->lock);
    if (l->n < EVLOG_MAX) {
        struct evlog_entry *e = &l->e[l->n++];
        snprintf(e->id, sizeof e->id, "%s", id ? id : "");
        e->ev = ev;
        snprintf(e->detail, sizeof e->detail, "%s", detail ? detail : "");
        e->t = evlog_now();
        if (l->verbose)
            fprintf(stderr, "  event %-10s %-9s %s\n", e->id, node_event_name(ev), e->detail);
    }
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

/* Wait up to timeout_s for event `ev` on instance `id`; returns the entry
 * index (copying it to *out if non-NULL) or -1 on timeout. */
static inline int evlog_wait(struct evlog *l, const char *id, enum node_event ev, double timeout_s,
                             struct evlog_entry *out)
{
    double deadline = evlog_now() + timeout_s;
    int found = -1;
    pthread_mutex_lock(&l->lock);
    for (;;) {
        for (int i = 0; i < l->n; i++) {
            if (l->e[i].ev == ev && strcmp(l->e[i].id, id) == 0) {
                found = i;
                if (out)
                    *out = l->e[i];
                goto out;
            }
        }
        double left = deadline - evlog_now();
        if (left <= 0)
            goto out;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)left;
        ts.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&l->cond, &l->lock, &ts);
    }
out:
    pthread_mutex_unlock(&l->lock);
    return found;
}

#endif /* SHOAL_TEST_EVLOG_H */
