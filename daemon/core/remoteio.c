/* remoteio.c - work that waits on a host, off the supervisor (issue 17;
 * fleet_int.h "remote I/O"): reading a running guest's status from its
 * remote host, reconnecting a down host (connect, fence, reconcile), the
 * failover thread's pings of hosts behind a libvirtd, remote or of this
 * machine (failover.h), and the usage sampler's readings of them
 * (capacity.c).
 *
 * A call to a host that hangs (a frozen libvirtd accepts the TCP
 * connection and never answers) waits until the host answers or its
 * connection closes. Made on the supervisor, it held up every local
 * status read, restart and reconnect meanwhile: after a failover, the new
 * copy was reported running only once the hung host answered. Here each
 * item names its host; a worker takes the oldest item whose host has none
 * running, so a hung host holds one worker and its own items, never
 * another host's for longer than FLEET_RIO_SLOW_MS and a tick. A worker
 * is started when items wait, no worker is idle and every busy one has
 * been on its item for FLEET_RIO_SLOW_MS (at most FLEET_RIO_MAX_WORKERS:
 * that many hung hosts at once); one ends after FLEET_RIO_IDLE_MS
 * without work. With every host answering that is one or two threads,
 * whatever the number of hosts; each hung host adds one.
 *
 * Host calls (fleet_host_call) are the other kind: work a caller waits for
 * with a bound (a start's domain creation on a host behind a libvirtd, a
 * GC after an image delete), each on a thread of its own at once, never
 * queued behind its host's items (a long delivery to a host that answers
 * would hold back that host's pings and make it look hung). */
#include "fleet_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "failover.h"
#include "log.h"

/* A FLEET_RIO_CALL's state, shared by its caller and its item; under
 * rio_mu; freed (with its arg) by the last of the two. */
typedef struct {
    fleet_rio_fn fn;
    void *arg;
    void (*free_arg)(void *);
    pthread_cond_t cv; /* done, with rio_mu */
    int refs, done, rc;
    char err[NODE_ERR_MAX];
} rio_call;

typedef struct fleet_rio_item {
    struct fleet_rio_item *next;
    fleet_rio_kind kind;
    fleet_host *h; /* held */
    char id[STATE_ID_LEN + 1];
    rio_call *call; /* FLEET_RIO_CALL's */
} rio_item;

/* Under rio_mu: one of the two lets go of c. */
static void call_put_locked(rio_call *c)
{
    if (--c->refs > 0)
        return;
    if (c->free_arg)
        c->free_arg(c->arg);
    pthread_cond_destroy(&c->cv);
    free(c);
}

typedef struct {
    fleet *f;
    int slot; /* in f->rio_slot / rio_since */
} rio_worker;

/* A condition variable timed on CLOCK_MONOTONIC (fleet_deadline). */
static void mono_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

void fleet_rio_init(fleet *f)
{
    pthread_mutex_init(&f->rio_mu, NULL);
    mono_cond_init(&f->rio_cv);
}

/* Hosts with an item waiting and none running. Caller holds rio_mu. */
static size_t runnable_hosts_locked(fleet *f)
{
    size_t n = 0;
    f->rio_gen++;
    for (rio_item *it = f->rio_head; it; it = it->next) {
        if (!it->h->rio_busy && it->h->rio_gen != f->rio_gen) {
            it->h->rio_gen = f->rio_gen;
            n++;
        }
    }
    return n;
}

/* The oldest item whose host has none running, unlinked; NULL if none.
 * Caller holds rio_mu. */
static rio_item *take_locked(fleet *f)
{
    for (rio_item **pp = &f->rio_head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
        rio_item *it = *pp;
        if (it->h->rio_busy)
            continue;
        *pp = it->next;
        if (f->rio_tail == it)
            f->rio_tail = prev;
        it->h->rio_busy = 1;
        return it;
    }
    return NULL;
}

static void *rio_main(void *arg);

int fleet_rio_decide(size_t runnable, int idle, const unsigned char *used, const int64_t *since,
                     int n, int64_t now, int *slot)
{
    *slot = -1;
    if (!runnable)
        return FLEET_RIO_NONE;
    if (idle > 0)
        return FLEET_RIO_WAKE; /* it takes one and asks again */
    for (int i = 0; i < n; i++) {
        /* just started, between items (0) or fresh on one: it takes the
         * next item soon; fleet_rio_tick asks again */
        if (used[i] && (!since[i] || now - since[i] < FLEET_RIO_SLOW_MS))
            return FLEET_RIO_NONE;
        if (!used[i] && *slot < 0)
            *slot = i;
    }
    /* no free slot: that many hosts hang at once, the rest wait for one */
    return *slot < 0 ? FLEET_RIO_NONE : FLEET_RIO_START;
}

/* Act on fleet_rio_decide. Caller holds rio_mu. */
static void kick_locked(fleet *f, int64_t now)
{
    pthread_t th;
    rio_worker *w;
    int slot;

    if (f->rio_stopping)
        return;
    switch (fleet_rio_decide(runnable_hosts_locked(f), f->rio_idle, f->rio_slot, f->rio_since,
                             FLEET_RIO_MAX_WORKERS, now, &slot)) {
    case FLEET_RIO_WAKE: pthread_cond_signal(&f->rio_cv); return;
    case FLEET_RIO_START: break;
    default: return;
    }
    if (!(w = malloc(sizeof *w))) {
        log_warn("cannot start a remote I/O worker: out of memory");
        return;
    }
    w->f = f;
    w->slot = slot;
    f->rio_slot[slot] = 1;
    f->rio_since[slot] = 0;
    if (pthread_create(&th, NULL, rio_main, w) != 0) {
        f->rio_slot[slot] = 0;
        free(w);
        log_warn("cannot start a remote I/O worker");
        return;
    }
    pthread_detach(th);
    f->rio_workers++;
}

static void run_item(fleet *f, const rio_item *it)
{
    switch (it->kind) {
    case FLEET_RIO_STATUS:
        fleet_remote_poll(f, it->id); /* its status file, copied here */
        fleet_status_poll(f, it->id);
        break;
    case FLEET_RIO_RECONNECT: fleet_reopen_host(f, it->h); break;
    case FLEET_RIO_PING: fleet_failover_ping(f, it->h); break;
    case FLEET_RIO_USAGE: fleet_usage_sample(f, it->h, strcmp(it->id, "full") == 0); break;
    case FLEET_RIO_CALL: {
        rio_call *c = it->call;
        struct node *node;
        char err[NODE_ERR_MAX] = "";
        int rc;
        pthread_mutex_lock(&f->mu);
        node = it->h->up ? it->h->node : NULL;
        pthread_mutex_unlock(&f->mu);
        rc = c->fn(f, node, c->arg, err, sizeof err);
        pthread_mutex_lock(&f->rio_mu);
        c->rc = rc;
        snprintf(c->err, sizeof c->err, "%s", err);
        c->done = 1;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&f->rio_mu);
        break;
    }
    }
}

/* An item's end: the call's share let go (rio_mu not held). */
static void item_free(fleet *f, rio_item *it)
{
    if (it->call) {
        pthread_mutex_lock(&f->rio_mu);
        if (!it->call->done) { /* dropped unrun: its caller stops waiting */
            it->call->done = 1;
            it->call->rc = -1;
            snprintf(it->call->err, sizeof it->call->err, "shoald is stopping");
            pthread_cond_broadcast(&it->call->cv);
        }
        call_put_locked(it->call);
        pthread_mutex_unlock(&f->rio_mu);
    }
    fleet_host_release(f, it->h);
    free(it);
}

static void *rio_main(void *arg)
{
    rio_worker *w = arg;
    fleet *f = w->f;
    int slot = w->slot;

    free(w);
    pthread_mutex_lock(&f->rio_mu);
    while (!f->rio_stopping) {
        rio_item *it = take_locked(f);
        if (!it) {
            struct timespec ts;
            int rc;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += FLEET_RIO_IDLE_MS / 1000;
            f->rio_idle++;
            rc = pthread_cond_timedwait(&f->rio_cv, &f->rio_mu, &ts);
            f->rio_idle--;
            if (rc != 0 && !runnable_hosts_locked(f))
                break; /* idle for FLEET_RIO_IDLE_MS */
            continue;
        }
        f->rio_since[slot] = fleet_now_ms();
        kick_locked(f, f->rio_since[slot]); /* an idle worker for another host's */
        pthread_mutex_unlock(&f->rio_mu);
        run_item(f, it);
        pthread_mutex_lock(&f->rio_mu);
        f->rio_since[slot] = 0;
        it->h->rio_busy = 0;
        pthread_mutex_unlock(&f->rio_mu);
        item_free(f, it);
        pthread_mutex_lock(&f->rio_mu);
    }
    f->rio_slot[slot] = 0;
    f->rio_workers--; /* last touch of the fleet: fleet_rio_close waits for it */
    pthread_cond_broadcast(&f->rio_cv);
    pthread_mutex_unlock(&f->rio_mu);
    return NULL;
}

void fleet_rio_tick(fleet *f)
{
    pthread_mutex_lock(&f->rio_mu);
    kick_locked(f, fleet_now_ms());
    pthread_mutex_unlock(&f->rio_mu);
}

/* Queue it (its host held for it here); a call is never merged. 0, or -1
 * (stopping; it is then freed). */
static int enqueue(fleet *f, fleet_host *h, rio_item *it)
{
    int rc = -1;
    it->h = h;
    pthread_mutex_lock(&f->mu);
    h->refs++;
    pthread_mutex_unlock(&f->mu);
    pthread_mutex_lock(&f->rio_mu);
    for (rio_item *q = f->rio_head; q && !it->call; q = q->next) {
        if (q->h == h && q->kind == it->kind && !strcmp(q->id, it->id)) {
            rc = 0; /* the same item waits already */
            goto out;
        }
    }
    if (f->rio_stopping)
        goto out;
    if (f->rio_tail)
        f->rio_tail->next = it;
    else
        f->rio_head = it;
    f->rio_tail = it;
    it = NULL;
    rc = 0;
    kick_locked(f, fleet_now_ms());
out:
    pthread_mutex_unlock(&f->rio_mu);
    if (it)
        item_free(f, it);
    return rc;
}

int fleet_rio_submit(fleet *f, fleet_host *h, fleet_rio_kind kind, const char *id)
{
    rio_item *it = calloc(1, sizeof *it);

    if (!it) {
        log_warn("host %s: out of memory queueing remote I/O", h->name);
        return -1;
    }
    it->kind = kind;
    snprintf(it->id, sizeof it->id, "%s", id ? id : "");
    return enqueue(f, h, it);
}

int fleet_rio_call(fleet *f, fleet_host *h, fleet_rio_fn fn, void *arg, void (*free_arg)(void *),
                   int timeout_ms, char *err, size_t errlen)
{
    rio_item *it = calloc(1, sizeof *it);
    rio_call *c = calloc(1, sizeof *c);
    struct timespec ts;
    int rc;

    if (!it || !c) {
        free(it);
        free(c);
        if (free_arg)
            free_arg(arg);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->fn = fn;
    c->arg = arg;
    c->free_arg = free_arg;
    c->refs = 2; /* this caller, the item */
    mono_cond_init(&c->cv);
    it->kind = FLEET_RIO_CALL;
    it->call = c;
    (void)enqueue(f, h, it); /* stopping: the item is freed, c done with -1 */
    fleet_deadline(&ts, CLOCK_MONOTONIC, timeout_ms);
    pthread_mutex_lock(&f->rio_mu);
    while (!c->done && pthread_cond_timedwait(&c->cv, &f->rio_mu, &ts) == 0)
        ;
    rc = c->done ? c->rc : FLEET_RIO_LATE;
    if (c->done)
        snprintf(err, errlen, "%s", c->err);
    call_put_locked(c);
    pthread_mutex_unlock(&f->rio_mu);
    return rc;
}

/* ---- host calls (fleet_host_call) ------------------------------------- */

/* One call's state, shared by its caller and its thread; under f->mu;
 * freed by the last of the two. */
struct fleet_hcall {
    fleet *f;
    fleet_host *h; /* held by the thread */
    struct node *node;
    fleet_rio_fn fn;
    fleet_late_fn late;
    void *arg;
    void (*free_arg)(void *);
    pthread_cond_t cv; /* done, with f->mu */
    int refs, done, given_up, rc;
    char err[NODE_ERR_MAX];
};
typedef fleet_hcall host_call;

static void hcall_free(host_call *c)
{
    if (c->free_arg)
        c->free_arg(c->arg);
    pthread_cond_destroy(&c->cv);
    free(c);
}

static void *hcall_main(void *arg)
{
    host_call *c = arg;
    fleet *f = c->f;
    char err[NODE_ERR_MAX] = "";
    int rc = c->fn(f, c->node, c->arg, err, sizeof err), late, last;

    pthread_mutex_lock(&f->mu);
    c->rc = rc;
    snprintf(c->err, sizeof c->err, "%s", err);
    c->done = 1;
    late = c->given_up;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&f->mu);
    if (late && c->late)
        c->late(f, c->arg, rc, err);
    fleet_host_release(f, c->h);
    pthread_mutex_lock(&f->mu);
    last = --c->refs == 0;
    f->hcalls--; /* last touch of the fleet: fleet_close waits for it */
    pthread_cond_broadcast(&f->state_cv);
    pthread_mutex_unlock(&f->mu);
    if (last)
        hcall_free(c);
    return NULL;
}

fleet_hcall *fleet_host_call_start(fleet *f, fleet_host *h, struct node *node, fleet_rio_fn fn,
                                   fleet_late_fn late, void *arg, void (*free_arg)(void *))
{
    host_call *c = calloc(1, sizeof *c);
    pthread_t th;

    if (!c) {
        log_warn("host %s: out of memory for a host call", h->name);
        if (free_arg)
            free_arg(arg);
        return NULL;
    }
    c->f = f;
    c->h = h;
    c->node = node;
    c->fn = fn;
    c->late = late;
    c->arg = arg;
    c->free_arg = free_arg;
    c->refs = 2; /* its caller, its thread */
    mono_cond_init(&c->cv);
    pthread_mutex_lock(&f->mu);
    h->refs++;
    f->hcalls++;
    pthread_mutex_unlock(&f->mu);
    if (pthread_create(&th, NULL, hcall_main, c) == 0) {
        pthread_detach(th);
        return c;
    }
    /* no thread: the call runs here, its caller finds it done */
    log_warn("host %s: no thread for a host call: it runs in its caller", h->name);
    c->rc = fn(f, node, arg, c->err, sizeof c->err);
    c->done = 1;
    pthread_mutex_lock(&f->mu);
    h->refs--;
    f->hcalls--;
    c->refs = 1;
    pthread_mutex_unlock(&f->mu);
    return c;
}

int fleet_host_call_wait(fleet *f, fleet_hcall *c, int64_t until_ms, int until_down, char *err,
                         size_t errlen)
{
    struct timespec ts;
    int64_t down_ms = 0; /* since when its host is seen down, 0: up */
    int rc, last;

    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_lock(&f->mu);
    while (!c->done) {
        int64_t now = fleet_now_ms(), slice = FO_TICK_MS;
        if (!until_down || (c->h->up && !c->h->removed))
            down_ms = 0;
        else if (!down_ms)
            down_ms = now;
        if (f->stopping || (until_ms > 0 && now >= until_ms) ||
            (down_ms && now - down_ms >= FLEET_HOST_ANSWER_MS))
            break;
        if (until_ms > 0 && until_ms - now < slice)
            slice = until_ms - now;
        /* h->up is not signalled: looked at every tick */
        fleet_deadline(&ts, CLOCK_MONOTONIC, slice);
        pthread_cond_timedwait(&c->cv, &f->mu, &ts);
    }
    if (c->done) {
        rc = c->rc;
        snprintf(err, errlen, "%s", c->err);
    } else {
        c->given_up = 1;
        rc = FLEET_RIO_LATE;
    }
    last = --c->refs == 0;
    pthread_mutex_unlock(&f->mu);
    if (last)
        hcall_free(c);
    return rc;
}

int fleet_host_call(fleet *f, fleet_host *h, struct node *node, fleet_rio_fn fn, fleet_late_fn late,
                    void *arg, void (*free_arg)(void *), int timeout_ms, int until_down, char *err,
                    size_t errlen)
{
    fleet_hcall *c = fleet_host_call_start(f, h, node, fn, late, arg, free_arg);
    int64_t until = timeout_ms >= 0 ? fleet_now_ms() + timeout_ms : 0;
    return fleet_host_call_wait(f, c, until, until_down, err, errlen);
}

int fleet_host_calls_left(fleet *f)
{
    struct timespec ts;
    int left;

    fleet_deadline(&ts, CLOCK_REALTIME, FLEET_RIO_STOP_MS); /* state_cv's clock */
    pthread_mutex_lock(&f->mu);
    while (f->hcalls > 0 && pthread_cond_timedwait(&f->state_cv, &f->mu, &ts) == 0)
        ;
    left = f->hcalls;
    pthread_mutex_unlock(&f->mu);
    if (left)
        log_warn("%d host call%s still wait%s on a host that does not answer", left,
                 left == 1 ? "" : "s", left == 1 ? "s" : "");
    return left > 0;
}

int fleet_remote_any_up(fleet *f)
{
    int any = 0;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nhosts && !any; i++)
        any = f->hosts[i]->up && f->hosts[i]->node && node_remote(f->hosts[i]->node);
    pthread_mutex_unlock(&f->mu);
    return any;
}

void fleet_rio_status(fleet *f, const char *id)
{
    state_instance in;
    fleet_host *h;
    char err[256];
    int remote = 0;

    /* Most fleets have no remote host: no database read for them. */
    if (!fleet_remote_any_up(f) || state_inst_find(f->db, id, &in, err, sizeof err) != 0)
        return;
    h = strcmp(in.id, id) == 0 ? fleet_host_hold(f, in.host) : NULL;
    if (h) {
        pthread_mutex_lock(&f->mu);
        remote = h->up && h->node && node_remote(h->node);
        pthread_mutex_unlock(&f->mu);
    }
    if (remote)
        (void)fleet_rio_submit(f, h, FLEET_RIO_STATUS, id);
    fleet_host_release(f, h);
    state_inst_free(&in);
}

void fleet_rio_close(fleet *f)
{
    rio_item *q;
    struct timespec ts;

    pthread_mutex_lock(&f->rio_mu);
    f->rio_stopping = 1;
    pthread_cond_broadcast(&f->rio_cv);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += FLEET_RIO_STOP_MS / 1000;
    while (f->rio_workers > 0 && pthread_cond_timedwait(&f->rio_cv, &f->rio_mu, &ts) == 0)
        ;
    if (f->rio_workers > 0)
        log_warn("%d remote I/O worker%s still wait%s on a host that does not answer",
                 f->rio_workers, f->rio_workers == 1 ? "" : "s", f->rio_workers == 1 ? "s" : "");
    q = f->rio_head;
    f->rio_head = f->rio_tail = NULL;
    pthread_mutex_unlock(&f->rio_mu);
    while (q) {
        rio_item *next = q->next;
        item_free(f, q);
        q = next;
    }
}

void fleet_rio_destroy(fleet *f)
{
    int left;
    pthread_mutex_lock(&f->rio_mu);
    left = f->rio_workers;
    pthread_mutex_unlock(&f->rio_mu);
    if (left)
        return; /* still used by a worker that waits on a host: shoald exits */
    pthread_cond_destroy(&f->rio_cv);
    pthread_mutex_destroy(&f->rio_mu);
}
