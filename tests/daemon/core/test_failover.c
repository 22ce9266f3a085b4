/* test_failover.c - the host failure rule (daemon/core/failover.h): which
 * instances of a down host start elsewhere, which are marked lost, which
 * wait, and which domains a returning host loses (fencing). Pure, no VMs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "failover.h"

#define GRACE 30000

static fo_inst inst(state_restart r, state_inst_state st)
{
    fo_inst i = { 0 };
    i.restart = r;
    i.state = st;
    i.want_running = 1;
    return i;
}

/* Nothing happens before the grace period is over. */
static void test_grace(void **state)
{
    (void)state;
    fo_inst a = inst(RESTART_ALWAYS, ST_RUNNING), n = inst(RESTART_NEVER, ST_RUNNING);
    assert_int_equal(fo_decide(&a, 0, GRACE), FO_KEEP);
    assert_int_equal(fo_decide(&a, GRACE - 1, GRACE), FO_KEEP);
    assert_int_equal(fo_decide(&n, GRACE - 1, GRACE), FO_KEEP);
    assert_int_equal(fo_decide(&a, GRACE, GRACE), FO_MOVE);
    assert_int_equal(fo_decide(&n, GRACE, GRACE), FO_LOST);
}

/* on-failure and always move every wanted state that holds resources. */
static void test_policies(void **state)
{
    (void)state;
    const state_inst_state moving[] = { ST_PENDING, ST_STARTING, ST_RUNNING, ST_BACKOFF };
    const state_inst_state staying[] = { ST_STOPPING, ST_STOPPED, ST_EXITED, ST_CRASHED,
                                         ST_FAILED,   ST_LOST,    ST_IDLE };
    for (size_t k = 0; k < 2; k++) {
        state_restart r = k ? RESTART_ALWAYS : RESTART_ON_FAILURE;
        for (size_t i = 0; i < sizeof moving / sizeof *moving; i++) {
            fo_inst in = inst(r, moving[i]);
            assert_int_equal(fo_decide(&in, GRACE, GRACE), FO_MOVE);
        }
        for (size_t i = 0; i < sizeof staying / sizeof *staying; i++) {
            fo_inst in = inst(r, staying[i]);
            assert_int_equal(fo_decide(&in, GRACE, GRACE), FO_KEEP);
        }
    }
}

/* never: a run that may still be there is lost; a pending one waits for
 * its host; nothing of it is started elsewhere. */
static void test_never(void **state)
{
    (void)state;
    fo_inst r = inst(RESTART_NEVER, ST_RUNNING), s = inst(RESTART_NEVER, ST_STARTING),
            p = inst(RESTART_NEVER, ST_PENDING), st = inst(RESTART_NEVER, ST_STOPPING);
    assert_int_equal(fo_decide(&r, 10 * GRACE, GRACE), FO_LOST);
    assert_int_equal(fo_decide(&s, 10 * GRACE, GRACE), FO_LOST);
    assert_int_equal(fo_decide(&p, 10 * GRACE, GRACE), FO_KEEP);
    assert_int_equal(fo_decide(&st, 10 * GRACE, GRACE), FO_KEEP);
}

/* Not wanted, being deleted, being moved or busy: not now. */
static void test_blockers(void **state)
{
    (void)state;
    fo_inst a = inst(RESTART_ALWAYS, ST_RUNNING);
    a.want_running = 0;
    assert_int_equal(fo_decide(&a, GRACE, GRACE), FO_KEEP);
    a = inst(RESTART_ALWAYS, ST_RUNNING);
    a.deleting = 1;
    assert_int_equal(fo_decide(&a, GRACE, GRACE), FO_KEEP);
    a = inst(RESTART_ALWAYS, ST_RUNNING);
    a.moving = 1;
    assert_int_equal(fo_decide(&a, GRACE, GRACE), FO_KEEP);
    a = inst(RESTART_ON_FAILURE, ST_RUNNING);
    a.busy = 1;
    assert_int_equal(fo_decide(&a, GRACE, GRACE), FO_KEEP);
    a.busy = 0; /* decided again at the next round */
    assert_int_equal(fo_decide(&a, GRACE, GRACE), FO_MOVE);
    fo_inst n = inst(RESTART_NEVER, ST_RUNNING);
    n.busy = 1;
    assert_int_equal(fo_decide(&n, GRACE, GRACE), FO_KEEP);
}

/* Fencing: a domain is destroyed on a returning host exactly when its
 * instance's row names another host; rowless domains are reconcile's. */
static void test_fence(void **state)
{
    (void)state;
    assert_true(fo_fence("local", "b")); /* failed over to local */
    assert_false(fo_fence("b", "b"));    /* still b's: adopted (never, or no room) */
    assert_false(fo_fence(NULL, "b"));   /* unknown: reconcile decides */
    assert_true(fo_fence("bb", "b"));    /* names compared whole */
    assert_true(fo_fence("b", "bb"));
}

/* A remote host is hung when a ping waits and nothing (ping, sampler,
 * connect) answered for FO_PING_DEAD_MS; an idle host or one whose
 * sampler answered lately is not. */
static void test_hung(void **state)
{
    (void)state;
    assert_int_equal(fo_last_answer(100, 300, 200), 300); /* the sampler's is newest */
    assert_int_equal(fo_last_answer(500, 300, 200), 500);
    assert_int_equal(fo_last_answer(0, 0, 700), 700); /* only the connect */
    assert_false(fo_hung(10000, 0, 1000));            /* no ping waits */
    assert_false(fo_hung(10000, 9000, 0));            /* never answered: not known */
    assert_false(fo_hung(6999, 5000, 1000));          /* 5.999 s */
    assert_true(fo_hung(7000, 5000, 1000));           /* 6 s without an answer */
    /* the ping waits 6 s, but the sampler's read came back 1 s ago */
    assert_false(fo_hung(11000, 5000, fo_last_answer(4000, 10000, 0)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grace), cmocka_unit_test(test_policies),
        cmocka_unit_test(test_never), cmocka_unit_test(test_blockers),
        cmocka_unit_test(test_fence), cmocka_unit_test(test_hung),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
