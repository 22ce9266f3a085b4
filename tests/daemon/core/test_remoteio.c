/* test_remoteio.c - when the remote I/O queue (daemon/core/remoteio.c)
 * gets a worker: an item that can run never waits behind a worker stuck
 * on a hung host for longer than FLEET_RIO_SLOW_MS, and a healthy fleet
 * does not grow a worker per host. Pure, no threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fleet_int.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_to_run),
        cmocka_unit_test(test_idle_first),
        cmocka_unit_test(test_fresh_worker_waited_for),
        cmocka_unit_test(test_stuck_workers_get_help),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_usage_stale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
