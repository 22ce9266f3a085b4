/* test_tstack.c - shoald's thread stacks (daemon/tstack.c), linked into this
 * executable as into shoald's, so every thread here is created through it.
 *
 * What it checks: threads run on stacks of tstack's with a guard page below;
 * stacks come back for reuse after a join, after a detached thread's end
 * and after a late or self detach; attributes tstack cannot carry over go
 * to glibc unchanged; and the point of it all, a fork child of a process
 * with many threads takes a handful of page faults instead of one per
 * thread (glibc's fork marks each glibc-made stack free in the child). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../daemon/tstack.h"

typedef struct {
    uintptr_t local;  /* address of a local of the thread */
    uintptr_t lo, hi; /* its stack as glibc reports it */
} where_t;

/* The mappings of this process. */
static int maps_count(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int n = 0;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f))
        n++;
    fclose(f);
    return n;
}

/* Whether a read of ADDR kills a forked child with SIGSEGV (the guard is
 * inherited by fork, markers and mprotect alike). */
static int faults_at(uintptr_t addr)
{
    int st = 0;
    pid_t pid = fork();

    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL); /* not cmocka's handler */
        volatile char c = *(volatile char *)addr;
        (void)c;
        _exit(0);
    }
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV;
}

static void *where(void *p)
{
    where_t *w = p;
    pthread_attr_t a;
    void *lo = NULL;
    size_t len = 0;
    volatile char here = 0;

    w->local = (uintptr_t)&here;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstack(&a, &lo, &len);
        pthread_attr_destroy(&a);
    }
    w->lo = (uintptr_t)lo;
    w->hi = (uintptr_t)lo + len;
    return NULL;
}

static void *nothing(void *p)
{
    return p;
}

static void *self_detach(void *p)
{
    pthread_detach(pthread_self());
    return p;
}

static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cv = PTHREAD_COND_INITIALIZER;
static int park_go;

static void *park(void *p)
{
    pthread_mutex_lock(&park_mu);
    while (!park_go)
        pthread_cond_wait(&park_cv, &park_mu);
    pthread_mutex_unlock(&park_mu);
    return p;
}

static void unpark_all(void)
{
    pthread_mutex_lock(&park_mu);
    park_go = 1;
    pthread_cond_broadcast(&park_cv);
    pthread_mutex_unlock(&park_mu);
}

/* Wait up to 5 s until the stacks in use are back to LIVE and no detached
 * thread's stack waits for the kernel: a create sweeps, so keep creating
 * and joining a thread. 1 when that happened. */
static int settles_to(size_t live)
{
    tstack_stats_t s = { 0 };

    for (int i = 0; i < 500; i++) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, nothing, NULL), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        tstack_stats(&s);
        if (s.retiring == 0 && s.live == live)
            return 1;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    print_message("stacks in use %zu (want %zu), retiring %zu\n", s.live, live, s.retiring);
    return 0;
}

static void test_own_stack_with_guard(void **state)
{
    tstack_stats_t before, after;
    pthread_attr_t a;
    pthread_t t;
    where_t w = { 0 };

    (void)state;
    tstack_stats(&before);
    assert_int_equal(pthread_attr_init(&a), 0);
    assert_int_equal(pthread_attr_setstacksize(&a, 1024 * 1024), 0);
    assert_int_equal(pthread_create(&t, &a, where, &w), 0);
    pthread_attr_destroy(&a);
    assert_int_equal(pthread_join(t, NULL), 0);
    tstack_stats(&after);

    assert_int_equal(after.created, before.created + 1);
    assert_true(w.local > w.lo && w.local < w.hi);
    assert_true(w.hi - w.lo >= 1024 * 1024);
    /* the stack is pooled now, its guard still in place below it */
    assert_true(faults_at(w.lo - 1));
    assert_true(faults_at(w.lo - 4096));
    assert_false(faults_at(w.lo));
}

static void test_join_reuses(void **state)
{
    tstack_stats_t before, after;

    (void)state;
    tstack_stats(&before);
    for (int i = 0; i < 2000; i++) {
        pthread_t t;
        void *ret = NULL;
        assert_int_equal(pthread_create(&t, NULL, nothing, (void *)(intptr_t)(i + 1)), 0);
        assert_int_equal(pthread_join(t, &ret), 0);
        assert_int_equal((intptr_t)ret, i + 1);
    }
    tstack_stats(&after);
    assert_int_equal(after.created - before.created, 2000);
    assert_int_equal(after.live, before.live);
    /* one stack serves them all (the first may be new) */
    assert_true(after.reused - before.reused >= 1999);
}

static void test_detached_released(void **state)
{
    tstack_stats_t before, after;
    pthread_attr_t a;

    (void)state;
    tstack_stats(&before);
    assert_int_equal(pthread_attr_init(&a), 0);
    assert_int_equal(pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED), 0);
    /* all 200 alive at once, so that more are released than the pool keeps */
    park_go = 0;
    int maps0 = maps_count();
    for (int i = 0; i < 200; i++) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, &a, park, NULL), 0);
    }
    pthread_attr_destroy(&a);
    int maps1 = maps_count();
    tstack_stats(&after);
    assert_int_equal(after.live - before.live, 200);
    /* with guard markers 200 new stacks are a few slabs, not 400 mappings */
    print_message("200 threads: %d more mappings (guard markers: %s)\n", maps1 - maps0,
                  after.guard_markers ? "yes" : "no, kernel before 6.13");
    if (after.guard_markers)
        assert_true(maps1 - maps0 < 40);
    else
        assert_true(maps1 - maps0 >= 400);
    unpark_all();
    assert_true(settles_to(before.live));
    tstack_stats(&after);
    /* more released than the pool keeps warm: the rest gave their memory back */
    assert_true(after.pooled >= 200);
    assert_true(after.trimmed - before.trimmed >= 200 - TSTACK_POOL_WARM);
}

static void test_late_and_self_detach(void **state)
{
    tstack_stats_t before, after;
    pthread_t t1, t2;

    (void)state;
    tstack_stats(&before);
    /* joinable, ended, then detached by another thread */
    assert_int_equal(pthread_create(&t1, NULL, nothing, NULL), 0);
    struct timespec ts = { 0, 50 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    assert_int_equal(pthread_detach(t1), 0);
    /* detaches itself before it ends */
    assert_int_equal(pthread_create(&t2, NULL, self_detach, NULL), 0);
    assert_true(settles_to(before.live));
    tstack_stats(&after);
    assert_true(after.created - before.created >= 2);
}

/* A stack that cannot be mapped: EAGAIN, as glibc answers, and nothing
 * left in use. */
static void test_no_room(void **state)
{
    tstack_stats_t before, after;
    pthread_attr_t a;
    pthread_t t;

    (void)state;
    tstack_stats(&before);
    assert_int_equal(pthread_attr_init(&a), 0);
    assert_int_equal(pthread_attr_setstacksize(&a, (size_t)1 << 46), 0); /* 64 TiB */
    assert_int_equal(pthread_create(&t, &a, nothing, NULL), EAGAIN);
    pthread_attr_destroy(&a);
    tstack_stats(&after);
    assert_int_equal(after.live, before.live);
    assert_int_equal(after.created, before.created);
    /* and the next create still works */
    assert_int_equal(pthread_create(&t, NULL, nothing, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
}

static void test_passthrough(void **state)
{
    tstack_stats_t before, after;
    pthread_attr_t a;
    pthread_t t;
    where_t w = { 0 };
    size_t len = 256 * 1024;
    char *mine = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    sigset_t all;

    (void)state;
    assert_true(mine != MAP_FAILED);
    tstack_stats(&before);
    /* the caller's own stack */
    assert_int_equal(pthread_attr_init(&a), 0);
    assert_int_equal(pthread_attr_setstack(&a, mine, len), 0);
    assert_int_equal(pthread_create(&t, &a, where, &w), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    pthread_attr_destroy(&a);
    assert_true(w.local >= (uintptr_t)mine && w.local < (uintptr_t)mine + len);
    /* a signal mask */
    sigfillset(&all);
    assert_int_equal(pthread_attr_init(&a), 0);
    assert_int_equal(pthread_attr_setsigmask_np(&a, &all), 0);
    assert_int_equal(pthread_create(&t, &a, nothing, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    pthread_attr_destroy(&a);
    tstack_stats(&after);
    assert_int_equal(after.passed - before.passed, 2);
    assert_int_equal(after.created, before.created);
    munmap(mine, len);
}

#define FORK_THREADS 300

/* The child of a fork, in a process of FORK_THREADS parked threads, counts
 * its page faults up to its first instruction after fork returned (glibc's
 * fork work in the child included) and exits with that count (255 at
 * most). With glibc's stacks that is at least one per thread. */
static void test_fork_child_faults(void **state)
{
    static pthread_t t[FORK_THREADS];
    int faults = 255;

    (void)state;
    park_go = 0;
    for (int i = 0; i < FORK_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, park, NULL), 0);
    for (int round = 0; round < 3; round++) {
        pid_t pid = fork();
        int st = 0;
        if (pid == 0) {
            struct rusage ru;
            getrusage(RUSAGE_SELF, &ru);
            _exit(ru.ru_minflt > 255 ? 255 : (int)ru.ru_minflt);
        }
        assert_true(pid > 0);
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        if (WEXITSTATUS(st) < faults)
            faults = WEXITSTATUS(st);
    }
    unpark_all();
    for (int i = 0; i < FORK_THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    print_message("fork child page faults with %d threads: %d\n", FORK_THREADS, faults);
    assert_true(faults < FORK_THREADS / 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_stack_with_guard),
        cmocka_unit_test(test_join_reuses),
        cmocka_unit_test(test_detached_released),
        cmocka_unit_test(test_late_and_self_detach),
        cmocka_unit_test(test_no_room),
        cmocka_unit_test(test_passthrough),
        cmocka_unit_test(test_fork_child_faults),
    };

    if (!tstack_active()) {
        fprintf(stderr, "tstack inactive in this build\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
