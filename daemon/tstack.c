/* tstack.c - shoald's thread stacks (see tstack.h for the contract). */
#include "tstack.h"

#include <string.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)

/* The sanitizer runtimes intercept pthread_create: leave threads to them. */
void tstack_stats(tstack_stats_t *out)
{
    memset(out, 0, sizeof(*out));
}

int tstack_active(void)
{
    return 0;
}

#else

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef int (*ts_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
typedef int (*ts_join_fn)(pthread_t, void **);
typedef int (*ts_timedjoin_fn)(pthread_t, void **, const struct timespec *);
typedef int (*ts_clockjoin_fn)(pthread_t, void **, clockid_t, const struct timespec *);
typedef int (*ts_detach_fn)(pthread_t);

/* A stack's life: RUNNING (its thread runs) -> ENDED (a joinable thread
 * ended, not joined yet) -> released to the pool after a join; a
 * detached thread goes RUNNING -> RETIRING at its end -> released once the
 * kernel no longer knows its id. */
enum { TS_RUNNING, TS_ENDED, TS_RETIRING, TS_POOLED };

typedef struct ts_rec {
    struct ts_rec *prev, *next; /* on exactly one list, by state */
    char *map;                  /* guard page(s), then the stack */
    size_t maplen, guard;
    int state, detached, has_thr;
    unsigned gen;  /* bumped each time the stack is handed out */
    pthread_t thr; /* joinable threads only, set once created */
    pid_t tid;     /* set by the thread itself before it runs fn */
    void *(*fn)(void *);
    void *arg;
} ts_rec;

typedef struct {
    size_t size, guard;
    int detached;
} ts_plan_t;

static pthread_once_t ts_once = PTHREAD_ONCE_INIT;
static pthread_key_t ts_key;
static int ts_key_ok;
static ts_create_fn real_create;
static ts_join_fn real_join, real_tryjoin;
static ts_timedjoin_fn real_timedjoin;
static ts_clockjoin_fn real_clockjoin;
static ts_detach_fn real_detach;

static pthread_mutex_t tstack_mu = PTHREAD_MUTEX_INITIALIZER;
static ts_rec *ts_live, *ts_retiring, *ts_pool; /* RUNNING+ENDED, RETIRING, POOLED */
static tstack_stats_t ts_count;
/* Address space new stacks are carved from, guard markers between them
 * (one mapping for many stacks); markers_ok -1 until the first install
 * says whether the kernel has them. */
static char *ts_slab;
static size_t ts_slab_left;
static int ts_markers_ok = -1;

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 (uapi asm-generic/mman-common.h) */
#endif
#define TS_SLAB_STACKS 16
#define TS_SLAB_MIN    (8u << 20)

static void ts_push(ts_rec **head, ts_rec *r)
{
    r->prev = NULL;
    r->next = *head;
    if (*head)
        (*head)->prev = r;
    *head = r;
}

static void ts_unlink(ts_rec **head, ts_rec *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        *head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* A fork child has one thread: whoever held the lock in the parent is not
 * there. */
static void ts_child_reset(void)
{
    pthread_mutex_init(&tstack_mu, NULL);
}

static void ts_thread_end(void *p);

static void ts_init(void)
{
    real_create = (ts_create_fn)dlsym(RTLD_NEXT, "pthread_create");
    real_join = (ts_join_fn)dlsym(RTLD_NEXT, "pthread_join");
    real_tryjoin = (ts_join_fn)dlsym(RTLD_NEXT, "pthread_tryjoin_np");
    real_timedjoin = (ts_timedjoin_fn)dlsym(RTLD_NEXT, "pthread_timedjoin_np");
    real_clockjoin = (ts_clockjoin_fn)dlsym(RTLD_NEXT, "pthread_clockjoin_np");
    real_detach = (ts_detach_fn)dlsym(RTLD_NEXT, "pthread_detach");
    if (!real_create || !real_join || !real_tryjoin || !real_timedjoin || !real_clockjoin ||
        !real_detach) {
        /* Nothing can start a thread without them: say why, once. */
        fprintf(stderr, "shoald: glibc's thread functions not found: %s\n", dlerror());
        abort();
    }
    ts_key_ok = pthread_key_create(&ts_key, ts_thread_end) == 0;
    pthread_atfork(NULL, NULL, ts_child_reset);
}

/* Whether a create with ATTR gets a stack of ours, and its shape. Attributes
 * this file could not carry over to a new attribute object unchanged go to
 * glibc as they are. */
static int ts_plan(const pthread_attr_t *attr, ts_plan_t *p)
{
    pthread_attr_t def;
    const pthread_attr_t *a = attr;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    int ds = PTHREAD_CREATE_JOINABLE, rc = -1;

    if (!attr) {
        if (pthread_getattr_default_np(&def) != 0)
            return -1;
        a = &def;
    } else {
        void *addr = NULL;
        size_t len = 0;
        int inherit = PTHREAD_INHERIT_SCHED;
        sigset_t mask;
        cpu_set_t cpus;
        const unsigned char *c = (const unsigned char *)&cpus;

        /* glibc keeps the stack's top and reports top - size: with no
         * stack given the top is NULL, so the two add up to 0 */
        if (pthread_attr_getstack(attr, &addr, &len) != 0 || (uintptr_t)addr + len != 0)
            return -1;
        if (pthread_attr_getinheritsched(attr, &inherit) != 0 || inherit != PTHREAD_INHERIT_SCHED)
            return -1;
        if (pthread_attr_getsigmask_np(attr, &mask) != PTHREAD_ATTR_NO_SIGMASK_NP)
            return -1;
        /* no affinity in the attribute reads back as every CPU */
        if (pthread_attr_getaffinity_np(attr, sizeof(cpus), &cpus) != 0)
            return -1;
        for (size_t i = 0; i < sizeof(cpus); i++)
            if (c[i] != 0xff)
                return -1;
    }
    if (pthread_attr_getstacksize(a, &p->size) != 0 ||
        pthread_attr_getguardsize(a, &p->guard) != 0 || pthread_attr_getdetachstate(a, &ds) != 0)
        goto out;
    if (p->size < (size_t)PTHREAD_STACK_MIN)
        p->size = (size_t)PTHREAD_STACK_MIN;
    p->size = (p->size + page - 1) / page * page;
    p->guard = (p->guard + page - 1) / page * page;
    p->detached = ds == PTHREAD_CREATE_DETACHED;
    rc = 0;
out:
    if (a == &def)
        pthread_attr_destroy(&def);
    return rc;
}

/* Under tstack_mu: a stack whose thread is gone goes to the pool, or, past
 * TSTACK_POOL_WARM pooled stacks, onto *cool for the caller to give its
 * memory back first (ts_cool, outside the lock). */
static void ts_release_locked(ts_rec *r, ts_rec **cool)
{
    r->has_thr = 0;
    if (ts_count.pooled < TSTACK_POOL_WARM) {
        r->state = TS_POOLED;
        ts_push(&ts_pool, r);
        ts_count.pooled++;
    } else {
        ts_push(cool, r);
    }
}

/* Under tstack_mu: release the detached threads' stacks the kernel is done
 * with. ESRCH from tgkill means the thread's task is gone, and the kernel
 * cleared the descriptor's tid (its last write there) before that. */
static void ts_sweep_locked(ts_rec **cool)
{
    pid_t pid = getpid();
    ts_rec *r = ts_retiring, *next;

    for (; r; r = next) {
        next = r->next;
        if (syscall(SYS_tgkill, pid, r->tid, 0) == 0 || errno != ESRCH)
            continue;
        ts_unlink(&ts_retiring, r);
        ts_count.retiring--;
        ts_release_locked(r, cool);
    }
}

/* Give the memory of COOL's stacks back (their address ranges and guards
 * stay), then pool them. A stack is in the pool only once that is done:
 * a create may take it at once. */
static void ts_cool(ts_rec *cool)
{
    while (cool) {
        ts_rec *r = cool;
        cool = r->next;
        madvise(r->map + r->guard, r->maplen - r->guard, MADV_DONTNEED);
        pthread_mutex_lock(&tstack_mu);
        r->state = TS_POOLED;
        ts_push(&ts_pool, r);
        ts_count.pooled++;
        ts_count.trimmed++;
        pthread_mutex_unlock(&tstack_mu);
    }
}

/* Under tstack_mu: LEN bytes of new address space for a stack, its GUARD
 * bytes first and no access to them; NULL when out of memory. Carved from
 * a slab with guard markers (MADV_GUARD_INSTALL: a page no access reaches,
 * without a mapping of its own), so that a thousand stacks are a few
 * mappings, not two each: a fork copies every mapping. A kernel without
 * markers (before 6.13) gets a mapping per stack, its guard mprotected,
 * as glibc makes them. Never unmapped: released stacks are pooled. */
static char *ts_carve_locked(size_t len, size_t guard)
{
    char *m;

    if (ts_markers_ok != 0) {
        if (ts_slab_left < len) {
            size_t chunk = len * TS_SLAB_STACKS;
            if (chunk < TS_SLAB_MIN)
                chunk = TS_SLAB_MIN;
            m = mmap(NULL, chunk, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
            if (m == MAP_FAILED)
                return NULL;
            ts_slab = m; /* the last one's tail stays unused: address space only */
            ts_slab_left = chunk;
        }
        if (guard == 0 || madvise(ts_slab, guard, MADV_GUARD_INSTALL) == 0) {
            ts_markers_ok = 1;
            m = ts_slab;
            ts_slab += len;
            ts_slab_left -= len;
            return m;
        }
        if (ts_markers_ok == 1 || errno != EINVAL)
            return NULL;
        ts_markers_ok = 0;
        munmap(ts_slab, ts_slab_left);
        ts_slab_left = 0;
    }
    m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    if (guard && mprotect(m, guard, PROT_NONE) != 0) {
        munmap(m, len);
        return NULL;
    }
    return m;
}

/* A stack of the plan's shape, from the pool or newly mapped; NULL when
 * memory is short. Not on any list. */
static ts_rec *ts_take(const ts_plan_t *p)
{
    ts_rec *r, *cool = NULL;
    size_t len = p->size + p->guard;

    pthread_mutex_lock(&tstack_mu);
    ts_sweep_locked(&cool);
    for (r = ts_pool; r; r = r->next)
        if (r->maplen == len && r->guard == p->guard)
            break;
    if (r) {
        ts_unlink(&ts_pool, r);
        ts_count.pooled--;
        ts_count.reused++;
        r->gen++; /* a creator of its last thread may still look (pthread_create) */
        r->has_thr = 0;
    }
    pthread_mutex_unlock(&tstack_mu);
    ts_cool(cool);
    if (r)
        return r;

    if (!(r = calloc(1, sizeof(*r))))
        return NULL;
    pthread_mutex_lock(&tstack_mu);
    r->map = ts_carve_locked(len, p->guard);
    pthread_mutex_unlock(&tstack_mu);
    if (!r->map) {
        free(r);
        return NULL;
    }
    r->maplen = len;
    r->guard = p->guard;
    return r;
}

static void *ts_start(void *p)
{
    ts_rec *r = p;

    r->tid = (pid_t)syscall(SYS_gettid);
    /* without the key the end is never seen: the stack stays (a leak) */
    if (ts_key_ok)
        pthread_setspecific(ts_key, r);
    return r->fn(r->arg);
}

/* The thread's key destructor: it ends (return, pthread_exit or cancel). */
static void ts_thread_end(void *p)
{
    ts_rec *r = p;

    pthread_mutex_lock(&tstack_mu);
    if (r->state == TS_RUNNING) {
        if (r->detached) {
            ts_unlink(&ts_live, r);
            ts_count.live--;
            r->state = TS_RETIRING;
            ts_push(&ts_retiring, r);
            ts_count.retiring++;
        } else {
            r->state = TS_ENDED;
        }
    }
    pthread_mutex_unlock(&tstack_mu);
}

int pthread_create(pthread_t *thr, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    ts_plan_t plan;
    pthread_attr_t na;
    pthread_t t;
    ts_rec *r, *cool = NULL;
    unsigned gen;
    int rc;

    pthread_once(&ts_once, ts_init);
    if (ts_plan(attr, &plan) != 0) {
        pthread_mutex_lock(&tstack_mu);
        ts_count.passed++;
        pthread_mutex_unlock(&tstack_mu);
        return real_create(thr, attr, fn, arg);
    }
    if (!(r = ts_take(&plan)))
        return EAGAIN;
    r->fn = fn;
    r->arg = arg;
    if ((rc = pthread_attr_init(&na)) != 0)
        goto fail;
    if ((rc = pthread_attr_setdetachstate(&na, plan.detached ? PTHREAD_CREATE_DETACHED
                                                             : PTHREAD_CREATE_JOINABLE)) != 0 ||
        (rc = pthread_attr_setstack(&na, r->map + r->guard, plan.size)) != 0) {
        pthread_attr_destroy(&na);
        goto fail;
    }
    /* on the live list before the thread runs: it may end at once */
    pthread_mutex_lock(&tstack_mu);
    r->state = TS_RUNNING;
    r->detached = plan.detached;
    r->tid = 0;
    gen = r->gen;
    ts_push(&ts_live, r);
    ts_count.live++;
    pthread_mutex_unlock(&tstack_mu);
    rc = real_create(&t, &na, ts_start, r);
    pthread_attr_destroy(&na);
    pthread_mutex_lock(&tstack_mu);
    if (rc != 0) {
        ts_unlink(&ts_live, r);
        ts_count.live--;
        ts_release_locked(r, &cool);
    } else {
        ts_count.created++;
        /* Only for a joinable thread whose stack is still its own: the
         * thread may have detached itself, ended and had its stack handed
         * out again by now. */
        if (!plan.detached && r->gen == gen && !r->detached &&
            (r->state == TS_RUNNING || r->state == TS_ENDED)) {
            r->thr = t;
            r->has_thr = 1;
        }
    }
    pthread_mutex_unlock(&tstack_mu);
    ts_cool(cool);
    if (rc == 0)
        *thr = t;
    return rc;
fail:
    pthread_mutex_lock(&tstack_mu);
    ts_release_locked(r, &cool);
    pthread_mutex_unlock(&tstack_mu);
    ts_cool(cool);
    return rc;
}

/* Under tstack_mu: the live record of joinable thread T (or of the calling
 * thread, whose id may not be recorded yet), NULL when T is not ours. */
static ts_rec *ts_find_locked(pthread_t t)
{
    if (pthread_equal(t, pthread_self()) && ts_key_ok) {
        ts_rec *self = pthread_getspecific(ts_key);
        if (self && (self->state == TS_RUNNING || self->state == TS_ENDED))
            return self;
    }
    for (ts_rec *r = ts_live; r; r = r->next)
        if (r->has_thr && pthread_equal(r->thr, t))
            return r;
    return NULL;
}

/* T was joined: glibc waited for the kernel to clear its tid, so nothing
 * writes to the stack any more. */
static void ts_joined(pthread_t t)
{
    ts_rec *r, *cool = NULL;

    pthread_mutex_lock(&tstack_mu);
    if ((r = ts_find_locked(t))) {
        ts_unlink(&ts_live, r);
        ts_count.live--;
        ts_release_locked(r, &cool);
    }
    pthread_mutex_unlock(&tstack_mu);
    ts_cool(cool);
}

/* What every join does after glibc's: a joined thread's stack is free. */
static int ts_join_done(pthread_t t, int rc)
{
    if (rc == 0)
        ts_joined(t);
    return rc;
}

int pthread_join(pthread_t t, void **ret)
{
    pthread_once(&ts_once, ts_init);
    return ts_join_done(t, real_join(t, ret));
}

int pthread_tryjoin_np(pthread_t t, void **ret)
{
    pthread_once(&ts_once, ts_init);
    return ts_join_done(t, real_tryjoin(t, ret));
}

int pthread_timedjoin_np(pthread_t t, void **ret, const struct timespec *abstime)
{
    pthread_once(&ts_once, ts_init);
    return ts_join_done(t, real_timedjoin(t, ret, abstime));
}

int pthread_clockjoin_np(pthread_t t, void **ret, clockid_t clock, const struct timespec *abstime)
{
    pthread_once(&ts_once, ts_init);
    return ts_join_done(t, real_clockjoin(t, ret, clock, abstime));
}

/* A joinable thread detached: its stack is released like a detached
 * thread's, once it has ended and the kernel is done with it. */
int pthread_detach(pthread_t t)
{
    ts_rec *r;
    int rc;

    pthread_once(&ts_once, ts_init);
    if ((rc = real_detach(t)) != 0)
        return rc;
    pthread_mutex_lock(&tstack_mu);
    if ((r = ts_find_locked(t))) {
        r->detached = 1;
        r->has_thr = 0;
        if (r->state == TS_ENDED) {
            ts_unlink(&ts_live, r);
            ts_count.live--;
            r->state = TS_RETIRING;
            ts_push(&ts_retiring, r);
            ts_count.retiring++;
        }
    }
    pthread_mutex_unlock(&tstack_mu);
    return 0;
}

void tstack_stats(tstack_stats_t *out)
{
    pthread_mutex_lock(&tstack_mu);
    *out = ts_count;
    out->guard_markers = ts_markers_ok == 1;
    pthread_mutex_unlock(&tstack_mu);
}

int tstack_active(void)
{
    return 1;
}

#endif
