/* test_sched_plan.c - consolidation and drain plans. Every plan is replayed
 * move by move through the independent checker: capacity and hard rules
 * must hold after each single move, not only at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sched_check.h"
#include "scheduler.h"

#define MAXH 16
#define MAXI 256

typedef struct {
    sched_host hosts[MAXH];
    size_t n_hosts;
    sched_instance insts[MAXI];
    size_t n_insts;
    char names[MAXI][32];
    char hnames[MAXH][16];
} fleet;

static sched_host *add_host(fleet *f, uint64_t mem, uint32_t vcpus)
{
    sched_host *h = &f->hosts[f->n_hosts];
    snprintf(f->hnames[f->n_hosts], sizeof(f->hnames[0]), "h%zu", f->n_hosts);
    memset(h, 0, sizeof(*h));
    h->id = f->hnames[f->n_hosts];
    h->mem_mib = mem;
    h->vcpus = vcpus;
    f->n_hosts++;
    return h;
}

static sched_instance *add_inst(fleet *f, size_t host, uint64_t mem, uint32_t vcpus)
{
    sched_instance *in = &f->insts[f->n_insts];
    snprintf(f->names[f->n_insts], sizeof(f->names[0]), "i%zu", f->n_insts);
    memset(in, 0, sizeof(*in));
    in->id = f->names[f->n_insts];
    in->mem_mib = mem;
    in->vcpus = vcpus;
    in->host = host;
    f->n_insts++;
    return in;
}

static sched_state *build(const fleet *f)
{
    sched_fleet sf = { f->hosts, f->n_hosts, f->insts, f->n_insts, false };
    sched_state *st = NULL;
    sched_error err;
    if (sched_state_new(&sf, &st, &err) != SCHED_OK)
        fail_msg("sched_state_new: %s", err.message);
    return st;
}

/* Plan, replay, check; returns hosts in use after. */
static size_t consolidate(const fleet *f, size_t max_moves, sched_plan *p)
{
    sched_state *st = build(f);
    sched_plan_opts o = { .max_moves = max_moves };
    assert_int_equal(sched_plan_consolidate(st, &o, p), SCHED_OK);
    char why[512];
    assert_true(check_fleet(f->hosts, f->n_hosts, f->insts, f->n_insts, why, sizeof(why)));
    size_t after = 0;
    if (!check_plan(f->hosts, f->n_hosts, f->insts, f->n_insts, p, true, &after, why, sizeof(why)))
        fail_msg("plan breaks a constraint: %s", why);
    assert_int_equal(after, p->hosts_used_after);
    sched_state_free(st);
    return after;
}

static void test_consolidate_quarters(void **s)
{
    (void)s;
    fleet f = { 0 };
    for (int h = 0; h < 4; h++) {
        add_host(&f, 1000, 16)->vmm_overhead_mib = 10;
        for (int k = 0; k < 3; k++)
            add_inst(&f, h, 70, 1); /* 240 per host */
    }
    sched_plan p;
    assert_int_equal(consolidate(&f, 0, &p), 1);
    assert_int_equal(p.n_freed, 3);
    assert_int_equal(p.n_moves, 9);
    assert_int_equal(p.hosts_used_before, 4);
    assert_non_null(strstr(p.message, "9 moves free 3 hosts"));
    sched_plan_clear(&p);
    /* a move budget frees what it can within it */
    assert_int_equal(consolidate(&f, 7, &p), 2);
    assert_int_equal(p.n_moves, 6);
    sched_plan_clear(&p);
    sched_plan_clear(NULL);
}

static void test_fewest_moves(void **s)
{
    (void)s;
    fleet f = { 0 };
    add_host(&f, 1000, 64);
    add_host(&f, 1000, 64);
    add_host(&f, 1000, 64);
    for (int k = 0; k < 10; k++)
        add_inst(&f, 0, 40, 1);
    add_inst(&f, 1, 40, 1); /* the lone guest should move, not the ten */
    for (int k = 0; k < 10; k++)
        add_inst(&f, 2, 40, 1);
    sched_plan p;
    consolidate(&f, 0, &p);
    /* all 21 fit one host (840): 11 moves empty two hosts */
    assert_int_equal(p.n_freed, 2);
    assert_int_equal(p.n_moves, 11);
    assert_int_equal(p.moves[0].instance, 10);
    sched_plan_clear(&p);
}

static const sched_label web[] = { { "app", "web" } };
static const sched_rule no_two_web[] = {
    { .kind = SCHED_RULE_ANTI_AFFINITY, .key = "app", .value = "web" }
};

static void test_consolidate_keeps_anti_affinity(void **s)
{
    (void)s;
    fleet f = { 0 };
    for (int h = 0; h < 3; h++) {
        add_host(&f, 1000, 16);
        sched_instance *in = add_inst(&f, h, 50, 1);
        in->labels = web;
        in->n_labels = 1;
        in->rules = no_two_web;
        in->n_rules = 1;
    }
    add_host(&f, 1000, 16);
    add_inst(&f, 3, 50, 1); /* plain guest: can join a web host */
    sched_plan p;
    assert_int_equal(consolidate(&f, 0, &p), 3);
    assert_int_equal(p.n_moves, 1);
    sched_plan_clear(&p);
    /* an unlabelled guest with no rules next to rule-less web replicas is
     * still kept apart from them when it is web itself */
    f.insts[3].labels = web;
    f.insts[3].n_labels = 1;
    assert_int_equal(consolidate(&f, 0, &p), 4);
    assert_int_equal(p.n_moves, 0);
    sched_plan_clear(&p);
}

static void test_consolidate_cordon_and_pinned(void **s)
{
    (void)s;
    fleet f = { 0 };
    add_host(&f, 1000, 16)->cordoned = true;
    add_host(&f, 1000, 16);
    add_host(&f, 1000, 16);
    add_inst(&f, 0, 600, 1); /* cordoned host: emptied first */
    add_inst(&f, 1, 100, 1);
    add_inst(&f, 2, 100, 1)->pinned = true;
    sched_plan p;
    size_t after = consolidate(&f, 0, &p);
    /* i0 to h1 or h2 (never h0); h2 keeps its pinned guest, so i1 joins it */
    assert_int_equal(after, 1);
    for (size_t m = 0; m < p.n_moves; m++) {
        assert_int_not_equal(p.moves[m].to, 0);
        assert_int_not_equal(p.moves[m].instance, 2);
    }
    assert_int_equal(p.moves[0].instance, 0);
    sched_plan_clear(&p);
}

static void test_consolidate_affinity_order(void **s)
{
    (void)s;
    static const sched_label db[] = { { "app", "db" } };
    static const sched_rule with_db[] = {
        { .kind = SCHED_RULE_AFFINITY, .key = "app", .value = "db" }
    };
    fleet f = { 0 };
    add_host(&f, 1000, 16);
    add_host(&f, 1000, 16);
    /* h0: a db and an app that needs a db next to it */
    sched_instance *x = add_inst(&f, 0, 100, 1);
    x->labels = db;
    x->n_labels = 1;
    sched_instance *r = add_inst(&f, 0, 100, 1);
    r->rules = with_db;
    r->n_rules = 1;
    /* h1: fuller, with another db */
    x = add_inst(&f, 1, 300, 1);
    x->labels = db;
    x->n_labels = 1;
    sched_plan p;
    assert_int_equal(consolidate(&f, 0, &p), 1);
    /* the app must move before its db leaves */
    assert_int_equal(p.n_moves, 2);
    assert_int_equal(p.moves[0].instance, 1);
    sched_plan_clear(&p);
    /* without a db on h1 the pair cannot be split: h1's guest joins them */
    f.insts[2].labels = NULL;
    f.insts[2].n_labels = 0;
    assert_int_equal(consolidate(&f, 0, &p), 1);
    assert_int_equal(p.n_moves, 1);
    assert_int_equal(p.moves[0].instance, 2);
    sched_plan_clear(&p);
}

static void test_consolidate_keeps_soft_weight(void **s)
{
    (void)s;
    static const sched_label za[] = { { "zone", "a" } };
    static const sched_rule pref_a[] = {
        { .kind = SCHED_RULE_HOST_AFFINITY, .key = "zone", .value = "a", .soft = true, .weight = 3 }
    };
    fleet f = { 0 };
    sched_host *h = add_host(&f, 1000, 16);
    h->labels = za;
    h->n_labels = 1;
    add_host(&f, 1000, 16);
    sched_instance *in = add_inst(&f, 0, 100, 1);
    in->rules = pref_a;
    in->n_rules = 1;
    add_inst(&f, 1, 500, 1);
    sched_plan p;
    /* i0 would lose its zone preference on h1; i1 moves to h0 instead */
    assert_int_equal(consolidate(&f, 0, &p), 1);
    assert_int_equal(p.n_moves, 1);
    assert_int_equal(p.moves[0].instance, 1);
    sched_plan_clear(&p);
}

static void test_drain(void **s)
{
    (void)s;
    fleet f = { 0 };
    add_host(&f, 1000, 16);
    add_host(&f, 1000, 16);
    add_host(&f, 1000, 16)->cordoned = true;
    add_host(&f, 1000, 16);
    add_inst(&f, 0, 300, 1);
    add_inst(&f, 0, 300, 1);
    add_inst(&f, 1, 500, 1);
    sched_state *st = build(&f);
    sched_plan p;
    assert_int_equal(sched_plan_drain(st, 0, NULL, &p), SCHED_OK);
    char why[512];
    if (!check_plan(f.hosts, f.n_hosts, f.insts, f.n_insts, &p, false, NULL, why, sizeof(why)))
        fail_msg("%s", why);
    assert_int_equal(p.n_moves, 2);
    assert_int_equal(p.n_freed, 1);
    assert_int_equal(p.freed[0], 0);
    /* fullest first: one 300 joins h1 (800), the other opens h3 */
    assert_int_equal(p.moves[0].to, 1);
    assert_int_equal(p.moves[1].to, 3);
    sched_plan_clear(&p);
    sched_state_free(st);

    /* no room: names the instance and the resource */
    f.hosts[3].cordoned = true;
    st = build(&f);
    assert_int_equal(sched_plan_drain(st, 0, NULL, &p), SCHED_ENOSPACE);
    assert_int_not_equal(p.stuck_instance, SCHED_NONE);
    assert_non_null(strstr(p.message, "cannot drain host 'h0'"));
    assert_non_null(strstr(p.message, "MiB more memory"));
    sched_plan_clear(&p);
    /* pinned, or a bad index */
    sched_state_free(st);
    f.insts[1].pinned = true;
    st = build(&f);
    assert_int_equal(sched_plan_drain(st, 0, NULL, &p), SCHED_EINVAL);
    assert_non_null(strstr(p.message, "instance 'i1' on host 'h0' is pinned"));
    sched_plan_clear(&p);
    assert_int_equal(sched_plan_drain(st, 99, NULL, &p), SCHED_EINVAL);
    sched_plan_clear(&p);
    /* an empty host drains with no moves */
    assert_int_equal(sched_plan_drain(st, 3, NULL, &p), SCHED_OK);
    assert_int_equal(p.n_moves, 0);
    sched_plan_clear(&p);
    sched_state_free(st);
}

static void test_drain_anti_affinity(void **s)
{
    (void)s;
    fleet f = { 0 };
    for (int h = 0; h < 3; h++) {
        add_host(&f, 1000, 16);
        sched_instance *in = add_inst(&f, h, 50, 1);
        in->labels = web;
        in->n_labels = 1;
        in->rules = no_two_web;
        in->n_rules = 1;
    }
    sched_state *st = build(&f);
    sched_plan p;
    assert_int_equal(sched_plan_drain(st, 0, NULL, &p), SCHED_ECONSTRAINT);
    assert_non_null(strstr(p.message, "hard anti-affinity app=web"));
    sched_plan_clear(&p);
    sched_state_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consolidate_quarters),
        cmocka_unit_test(test_fewest_moves),
        cmocka_unit_test(test_consolidate_keeps_anti_affinity),
        cmocka_unit_test(test_consolidate_cordon_and_pinned),
        cmocka_unit_test(test_consolidate_affinity_order),
        cmocka_unit_test(test_consolidate_keeps_soft_weight),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_drain_anti_affinity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
