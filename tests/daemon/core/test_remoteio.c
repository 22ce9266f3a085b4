/* test_remoteio.c - when the remote I/O queue (daemon/core/remoteio.c)
 * gets a worker: an item that can run never waits behind a worker stuck
 * on a hung host for longer than FLEET_RIO_SLOW_MS, and a healthy fleet
 * does not grow a worker per host (pure, no threads); and host calls
 * (fleet_host_call, a thread each): the caller gets the call's answer, or
 * gives up once the host is seen down or its time is over, and the call
 * then finishes on its own (its late callback, its arg freed, the fleet's
 * count of calls back to 0); and which hosts all this is for. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "fleet_int.h"

#include "failover.h"

#define N 4

static void test_nothing_to_run(void **state)
{
    unsigned char used[N] = { 0 };
    int64_t since[N] = { 0 };
    int slot;
    (void)state;
    assert_int_equal(fleet_rio_decide(0, 0, used, since, N, 1000, &slot), FLEET_RIO_NONE);
}

/* An idle worker is woken rather than a new one started. */
static void test_idle_first(void **state)
{
    unsigned char used[N] = { 1, 0, 0, 0 };
    int64_t since[N] = { 0 };
    int slot;
    (void)state;
    assert_int_equal(fleet_rio_decide(3, 1, used, since, N, 1000, &slot), FLEET_RIO_WAKE);
    /* none at all: the first one starts in slot 0 */
    used[0] = 0;
    assert_int_equal(fleet_rio_decide(1, 0, used, since, N, 1000, &slot), FLEET_RIO_START);
    assert_int_equal(slot, 0);
}

/* A worker fresh on an item (a host that answers) is waited for: a
 * healthy fleet of many hosts stays on one worker. */
static void test_fresh_worker_waited_for(void **state)
{
    unsigned char used[N] = { 1, 0, 0, 0 };
    int64_t since[N] = { 900, 0, 0, 0 };
    int slot;
    (void)state;
    assert_int_equal(fleet_rio_decide(50, 0, used, since, N, 900 + FLEET_RIO_SLOW_MS - 1, &slot),
                     FLEET_RIO_NONE);
    /* one just started (or between items) takes the next at once: a burst
     * of items for many hosts does not start a worker per item */
    since[0] = 0;
    assert_int_equal(fleet_rio_decide(8, 0, used, since, N, 100000, &slot), FLEET_RIO_NONE);
}

/* Every busy worker on its item for FLEET_RIO_SLOW_MS (hung hosts): a new
 * one in the first free slot, so the other hosts' items run. */
static void test_stuck_workers_get_help(void **state)
{
    unsigned char used[N] = { 1, 0, 1, 0 };
    int64_t since[N] = { 100, 0, 200, 0 };
    int slot;
    (void)state;
    assert_int_equal(fleet_rio_decide(1, 0, used, since, N, 200 + FLEET_RIO_SLOW_MS, &slot),
                     FLEET_RIO_START);
    assert_int_equal(slot, 1);
    /* one of them only just took its item: waited for */
    since[2] = 200 + FLEET_RIO_SLOW_MS;
    assert_int_equal(fleet_rio_decide(1, 0, used, since, N, 200 + FLEET_RIO_SLOW_MS, &slot),
                     FLEET_RIO_NONE);
}

/* Every slot taken by a stuck worker: nothing more (the bound). */
static void test_bound(void **state)
{
    unsigned char used[N] = { 1, 1, 1, 1 };
    int64_t since[N] = { 1, 1, 1, 1 };
    int slot;
    (void)state;
    assert_int_equal(fleet_rio_decide(2, 0, used, since, N, 100000, &slot), FLEET_RIO_NONE);
    assert_int_equal(slot, -1);
}

/* A remote host's usage arrives when a worker has read it: a hung host's
 * figures are marked stale once older than FLEET_USAGE_STALE_MS, one
 * missed reading is not. */
static void test_usage_stale(void **state)
{
    (void)state;
    assert_true(fleet_usage_stale(0, 100000));       /* never read */
    assert_false(fleet_usage_stale(100000, 100000)); /* just read */
    assert_false(fleet_usage_stale(100000, 100000 + 2 * FLEET_USAGE_PERIOD_MS));
    assert_false(fleet_usage_stale(100000, 100000 + FLEET_USAGE_STALE_MS));
    assert_true(fleet_usage_stale(100000, 100000 + FLEET_USAGE_STALE_MS + 1));
}

/* Which hosts are pinged, read on the workers and have their starts run as
 * host calls: every one behind a libvirtd, a remote one or this machine's
 * (qemu:///system, with or without its socket); never the embedded driver
 * or the mock, whose calls are made inside shoald. */
static void test_in_process(void **state)
{
    static const struct {
        const char *uri;
        int in_process;
    } cases[] = {
        { "qemu:///embed?root=/var/lib/shoal/libvirt", 1 },
        { "test:///default", 1 },
        { "qemu:///system", 0 },
        { "qemu:///system?socket=/tmp/lvd/libvirt-sock", 0 },
        { "qemu+tcp://10.0.0.2/system", 0 },
        { "qemu+ssh://root@r1/system", 0 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fleet_host h;
        memset(&h, 0, sizeof h);
        snprintf(h.uri, sizeof h.uri, "%s", cases[i].uri);
        if (fleet_host_in_process(&h) != cases[i].in_process)
            fail_msg("%s: in process %d, want %d", cases[i].uri, fleet_host_in_process(&h),
                     cases[i].in_process);
    }
}

/* ---- host calls ---------------------------------------------------------- */

/* A "host": fn waits until released (a hung libvirtd that answers later). */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open, late_rc = 1, late_calls, freed;

static int hung_fn(fleet *f, struct node *node, void *arg, char *err, size_t errlen)
{
    (void)f;
    (void)node;
    (void)arg;
    pthread_mutex_lock(&gate_mu);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    snprintf(err, errlen, "answered late");
    return 7;
}

static int quick_fn(fleet *f, struct node *node, void *arg, char *err, size_t errlen)
{
    (void)f;
    (void)node;
    (void)arg;
    snprintf(err, errlen, "at once");
    return 3;
}

static void late_fn(fleet *f, void *arg, int rc, const char *err)
{
    (void)f;
    (void)arg;
    assert_string_equal(err, "answered late");
    pthread_mutex_lock(&gate_mu);
    late_rc = rc;
    late_calls++;
    pthread_mutex_unlock(&gate_mu);
}

static void free_fn(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&gate_mu);
    freed++;
    pthread_mutex_unlock(&gate_mu);
}

/* freed once it reaches n, or after 5 s: the call's last owner frees its
 * arg just after letting go of the fleet (fleet_host_calls_left is 0
 * already), so the count can lag the fleet's by a moment. */
static int freed_when(int n)
{
    int v = 0;
    for (int i = 0; i < 5000; i++) {
        struct timespec ts = { 0, 1000000L };
        pthread_mutex_lock(&gate_mu);
        v = freed;
        pthread_mutex_unlock(&gate_mu);
        if (v >= n)
            break;
        nanosleep(&ts, NULL);
    }
    return v;
}

static fleet *hc_fleet(fleet_host **h)
{
    fleet *f = calloc(1, sizeof *f);
    assert_non_null(f);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->state_cv, NULL);
    *h = calloc(1, sizeof **h);
    assert_non_null(*h);
    snprintf((*h)->name, sizeof(*h)->name, "r1");
    (*h)->up = 1;
    (*h)->refs = 1; /* the caller's */
    gate_open = late_calls = freed = 0;
    late_rc = 1;
    return f;
}

static void hc_free(fleet *f, fleet_host *h)
{
    assert_int_equal(fleet_host_calls_left(f), 0);
    assert_int_equal(h->refs, 1); /* the thread let go of it */
    pthread_cond_destroy(&f->state_cv);
    pthread_mutex_destroy(&f->mu);
    free(h);
    free(f);
}

static void open_gate(void)
{
    pthread_mutex_lock(&gate_mu);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

/* A host that answers: the call's own status and message, no late call. */
static void test_host_call_answers(void **state)
{
    fleet_host *h;
    fleet *f = hc_fleet(&h);
    char err[64] = "";
    (void)state;
    assert_int_equal(
        fleet_host_call(f, h, NULL, quick_fn, late_fn, NULL, free_fn, -1, 1, err, sizeof err), 3);
    assert_string_equal(err, "at once");
    hc_free(f, h); /* waits for the thread's end */
    assert_int_equal(late_calls, 0);
    assert_int_equal(freed_when(1), 1);
}

/* The host seen down 600 ms into the call (the failover tick's doing). */
static void *go_down(void *arg)
{
    fleet_host *h = ((void **)arg)[1];
    fleet *f = ((void **)arg)[0];
    struct timespec ts = { 0, 600 * 1000000L };
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&f->mu);
    h->up = 0;
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* No time bound, until_down: the caller waits while the host is up, and
 * gives up once it has been seen down for FLEET_HOST_ANSWER_MS; the call
 * finishes when the host answers, on its own thread (late callback, arg
 * freed). */
static void test_host_call_until_down(void **state)
{
    fleet_host *h;
    fleet *f = hc_fleet(&h);
    void *args[2] = { f, h };
    char err[64] = "";
    pthread_t th;
    int64_t t0 = fleet_now_ms(), took;
    (void)state;
    assert_int_equal(pthread_create(&th, NULL, go_down, args), 0);
    assert_int_equal(
        fleet_host_call(f, h, NULL, hung_fn, late_fn, NULL, free_fn, -1, 1, err, sizeof err),
        FLEET_RIO_LATE);
    took = fleet_now_ms() - t0;
    pthread_join(th, NULL);
    assert_true(took >= 600 + FLEET_HOST_ANSWER_MS &&
                took < 600 + FLEET_HOST_ANSWER_MS + 2 * FO_TICK_MS);
    assert_int_equal(freed, 0); /* the call still runs */
    open_gate();
    hc_free(f, h);
    assert_int_equal(late_calls, 1);
    assert_int_equal(late_rc, 7);
    assert_int_equal(freed_when(1), 1);
}

/* A time bound (an image delete's GC): given up when it is over, whatever
 * the host's state. */
static void test_host_call_timeout(void **state)
{
    fleet_host *h;
    fleet *f = hc_fleet(&h);
    char err[64] = "";
    int64_t t0 = fleet_now_ms(), took;
    (void)state;
    assert_int_equal(
        fleet_host_call(f, h, NULL, hung_fn, NULL, NULL, free_fn, 200, 0, err, sizeof err),
        FLEET_RIO_LATE);
    took = fleet_now_ms() - t0;
    assert_true(took >= 200 && took < 200 + FO_TICK_MS);
    open_gate();
    hc_free(f, h);
    assert_int_equal(freed_when(1), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_to_run),
        cmocka_unit_test(test_idle_first),
        cmocka_unit_test(test_fresh_worker_waited_for),
        cmocka_unit_test(test_stuck_workers_get_help),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_usage_stale),
        cmocka_unit_test(test_in_process),
        cmocka_unit_test(test_host_call_answers),
        cmocka_unit_test(test_host_call_until_down),
        cmocka_unit_test(test_host_call_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
