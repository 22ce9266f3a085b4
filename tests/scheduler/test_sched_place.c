/* test_sched_place.c - placement: policies, resources, rules, batches,
 * failures and their explanations. */
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

/* A small fleet under construction. */
typedef struct {
    sched_host hosts[MAXH];
    size_t n_hosts;
    sched_instance insts[MAXI];
    size_t n_insts;
    char names[MAXI][32];
} fleet;

static sched_host *add_host(fleet *f, const char *id, uint64_t mem, uint32_t vcpus)
{
    sched_host *h = &f->hosts[f->n_hosts++];
    memset(h, 0, sizeof(*h));
    h->id = id;
    h->mem_mib = mem;
    h->vcpus = vcpus;
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
    sched_status rc = sched_state_new(&sf, &st, &err);
    if (rc != SCHED_OK)
        fail_msg("sched_state_new: %s", err.message);
    return st;
}

static size_t place1(sched_state *st, const sched_request *r, sched_policy pol, bool commit)
{
    sched_place_opts o = { .policy = pol, .commit = commit };
    sched_decision d;
    sched_status rc = sched_place(st, r, 1, &o, &d);
    size_t h = rc == SCHED_OK ? d.assignments[0].host : SCHED_NONE;
    sched_decision_clear(&d);
    return h;
}

static uint64_t used(const sched_state *st, size_t h, sched_resource r)
{
    uint64_t u = 0;
    assert_true(sched_state_usage(st, h, r, NULL, &u));
    return u;
}

/* ---- policies ----------------------------------------------------------- */

static void test_binpack_picks_fullest(void **s)
{
    (void)s;
    fleet f = { 0 };
    add_host(&f, "h0", 1000, 8);
    add_host(&f, "h1", 1000, 8);
    add_host(&f, "h2", 1000, 8);
    add_inst(&f, 0, 500, 1);
    add_inst(&f, 1, 800, 1);
    sched_state *st = build(&f);
    sched_request r = { .name = "web", .mem_mib = 100, .vcpus = 1 };
    assert_int_equal(place1(st, &r, SCHED_BINPACK, false), 1);
    assert_int_equal(place1(st, &r, SCHED_SPREAD, false), 2);
    /* 250 MiB does not fit h1 (200 free): next fullest. */
    r.mem_mib = 250;
    assert_int_equal(place1(st, &r, SCHED_BINPACK, false), 0);
    sched_state_free(st);
}

static void test_tiny_guests_fill_one_host_first(void **s)
{
    (void)s;
    fleet f = { 0 };
    for (int i = 0; i < 3; i++)
        add_host(&f, i == 0 ? "a" : i == 1 ? "b" : "c", 1024, 4)->vmm_overhead_mib = 12;
    sched_state *st = build(&f);
    sched_request r = { .name = "tiny", .mem_mib = 32, .vcpus = 1 };
    for (int i = 0; i < 4; i++)
        assert_int_equal(place1(st, &r, SCHED_BINPACK, true), 0);
    /* a has 4 vCPUs: full; the fifth opens b. */
    assert_int_equal(place1(st, &r, SCHED_BINPACK, true), 1);
    assert_int_equal(used(st, 0, SCHED_RES_MEM), 4 * (32 + 12));
    /* spread evens out */
    assert_int_equal(place1(st, &r, SCHED_SPREAD, true), 2);
    sched_state_free(st);
}

/* ---- resources ---------------------------------------------------------- */

static void test_reserved_and_vmm_overhead(void **s)
{
    (void)s;
    fleet f = { 0 };
    sched_host *h = add_host(&f, "h1", 1024, 4);
    h->reserved_mem_mib = 512;
    h->vmm_overhead_mib = 12;
    sched_state *st = build(&f);
    uint64_t usable = 0;
    sched_state_usage(st, 0, SCHED_RES_MEM, &usable, NULL);
    assert_int_equal(usable, 512);
    sched_request r = { .name = "g", .mem_mib = 500, .vcpus = 1 };
    assert_int_equal(place1(st, &r, SCHED_BINPACK, false), 0);
    r.mem_mib = 501;
    sched_decision d;
    assert_int_equal(sched_place(st, &r, 1, NULL, &d), SCHED_ENOSPACE);
    assert_int_equal(d.short_resource, SCHED_RES_MEM);
    assert_int_equal(d.short_by, 1);
    assert_int_equal(d.largest_free, 500);
    assert_int_equal(d.largest_host, 0);
    assert_non_null(strstr(d.message, "need 1 MiB more memory: largest free "
                                      "block is 500 MiB on host 'h1'"));
    sched_decision_clear(&d);
    sched_state_free(st);
}

static void test_overcommit(void **s)
{
    (void)s;
    fleet f = { 0 };
    sched_host *h = add_host(&f, "h1", 1000, 4);
    h->cpu_overcommit = 4.0;
    h->mem_overcommit = 1.5;
    sched_state *st = build(&f);
    sched_request r = { .name = "g", .mem_mib = 90, .vcpus = 1 };
    for (int i = 0; i < 16; i++)
        assert_int_equal(place1(st, &r, SCHED_BINPACK, true), 0);
    assert_int_equal(used(st, 0, SCHED_RES_MEM), 1440); /* > 1000 physical */
    sched_decision d;
    assert_int_equal(sched_place(st, &r, 1, NULL, &d), SCHED_ENOSPACE);
    assert_int_equal(d.short_resource, SCHED_RES_VCPU);
    assert_int_equal(d.short_by, 1);
    assert_non_null(strstr(d.message, "need 1 more vCPUs: largest free "
                                      "block is 0 vCPUs on host 'h1'"));
    sched_decision_clear(&d);
    /* memory overcommit: 1500 usable, 1440 used, 60 left */
    sched_state_free(st);
    f.hosts[0].cpu_overcommit = 100;
    st = build(&f);
    for (int i = 0; i < 16; i++)
        place1(st, &r, SCHED_BINPACK, true);
    r.mem_mib = 61;
    assert_int_equal(sched_place(st, &r, 1, NULL, &d), SCHED_ENOSPACE);
    assert_int_equal(d.short_resource, SCHED_RES_MEM);
    assert_int_equal(d.short_by, 1);
    sched_decision_clear(&d);
    r.mem_mib = 60;
    assert_int_equal(place1(st, &r, SCHED_BINPACK, false), 0);
    sched_state_free(st);
}

static void test_slots(void **s)
{
    (void)s;
    fleet f = { 0 };
    add_host(&f, "h1", 1000, 8)->slots = 2;
    sched_state *st = build(&f);
    sched_request r = { .name = "g", .mem_mib = 10, .vcpus = 1, .count = 3 };
    sched_decision d;
    assert_int_equal(sched_place(st, &r, 1, NULL, &d), SCHED_ENOSPACE);
    assert_int_equal(d.short_resource, SCHED_RES_SLOT);
    assert_int_equal(d.unplaced, 1);
    assert_non_null(strstr(d.message, "guest slot"));
    sched_decision_clear(&d);
    r.count = 2;
    assert_int_equal(sched_place(st, &r, 1, NULL, &d), SCHED_OK);
    sched_decision_clear(&d);
    sched_state_free(st);
}

static void test_cordon(void **s)
{
    (void)s;
    fleet f = { 0 };
    add_host(&f, "h0", 1000, 8)->cordoned = true;
    add_host(&f, "h1", 1000, 8);
    add_inst(&f, 0, 500, 1); /* h0 is fuller, but cordoned */
    sched_state *st = build(&f);
    sched_request r = { .name = "g", .mem_mib = 10, .vcpus = 1 };
    assert_int_equal(place1(st, &r, SCHED_BINPACK, false), 1);
    sched_state_free(st);
    f.hosts[1].cordoned = true;
    st = build(&f);
    sched_decision d;
    assert_int_equal(sched_place(st, &r, 1, NULL, &d), SCHED_ECONSTRAINT);
    assert_non_null(strstr(d.message, "2 cordoned"));
    sched_decision_clear(&d);
    sched_state_free(st);
}

/* ---- rules -------------------------------------------------------------- */

static const sched_label web[] = { { "app", "web" } };
static const sched_rule no_two_web[] = {
    { .kind = SCHED_RULE_ANTI_AFFINITY, .key = "app", .value = "web" }
};

static void test_anti_affinity_replicas(void **s)
{
    (void)s;
    fleet f = { 0 };
    add_host(&f, "h0", 1000, 8);
    add_host(&f, "h1", 1000, 8);
    add_host(&f, "h2", 1000, 8);
    sched_state *st = build(&f);
    sched_request r = { .name = "web",
                        .mem_mib = 10,
                        .vcpus = 1,
                        .labels = web,
                        .n_labels = 1,
                        .rules = no_two_web,
                        .n_rules = 1,
                        .count = 3 };
    sched_decision d;
    assert_int_equal(sched_place(st, &r, 1, NULL, &d), SCHED_OK);
    assert_int_equal(d.n_assignments, 3);
    assert_int_not_equal(d.assignments[0].host, d.assignments[1].host);
    assert_int_not_equal(d.assignments[0].host, d.assignments[2].host);
    assert_int_not_equal(d.assignments[1].host, d.assignments[2].host);
    sched_decision_clear(&d);
    /* four replicas cannot: nothing is placed, even with commit */
    r.count = 4;
    sched_place_opts o = { .commit = true };
    assert_int_equal(sched_place(st, &r, 1, &o, &d), SCHED_ECONSTRAINT);
    assert_int_equal(d.n_assignments, 0);
    assert_int_equal(d.failed_replica, 3);
    assert_non_null(strstr(d.message, "hard anti-affinity app=web"));
    sched_decision_clear(&d);
    for (size_t h = 0; h < 3; h++)
        assert_int_equal(used(st, h, SCHED_RES_SLOT), 0);
    assert_int_equal(sched_state_instances(st), 0);
    sched_state_free(st);
}

static void test_resident_rule_binds_newcomer(void **s)
{
    (void)s;
    fleet f = { 0 };
    add_host(&f, "h0", 1000, 8);
    add_host(&f, "h1", 1000, 8);
    sched_instance *in = add_inst(&f, 0, 500, 1);
    in->rules = no_two_web;
    in->n_rules = 1;
    sched_state *st = build(&f);
    /* a web guest without rules of its own still avoids h0 */
    sched_request r = { .name = "web", .mem_mib = 10, .vcpus = 1, .labels = web, .n_labels = 1 };
    sched_place_opts o = { .explain = true };
    sched_decision d;
    assert_int_equal(sched_place(st, &r, 1, &o, &d), SCHED_OK);
    assert_int_equal(d.assignments[0].host, 1);
    assert_int_equal(d.n_steps, 1);
    assert_int_equal(d.steps[0].n_hosts, 2);
    assert_int_equal(d.steps[0].hosts[0].verdict, SCHED_REJECTED);
    assert_int_equal(d.steps[0].hosts[0].why, SCHED_WHY_PEER_RULE);
    assert_non_null(strstr(d.steps[0].hosts[0].reason, "instance 'i0'"));
    assert_int_equal(d.steps[0].hosts[1].verdict, SCHED_CHOSEN);
    sched_decision_clear(&d);
    /* an unlabelled guest goes to the fuller h0 */
    r.labels = NULL;
    r.n_labels = 0;
    assert_int_equal(place1(st, &r, SCHED_BINPACK, false), 0);
    sched_state_free(st);
}

static void test_host_affinity(void **s)
{
    (void)s;
    static const sched_label za[] = { { "zone", "a" } }, zb[] = { { "zone", "b" } };
    fleet f = { 0 };
    sched_host *h = add_host(&f, "a0", 1000, 8);
    h->labels = za;
    h->n_labels = 1;
    h = add_host(&f, "b0", 1000, 8);
    h->labels = zb;
    h->n_labels = 1;
    h = add_host(&f, "a1", 1000, 8);
    h->labels = za;
    h->n_labels = 1;
    add_inst(&f, 2, 700, 1); /* a1 fullest */
    sched_state *st = build(&f);

    sched_rule hard_b = { .kind = SCHED_RULE_HOST_AFFINITY, .key = "zone", .value = "b" };
    sched_request r = { .name = "g", .mem_mib = 100, .vcpus = 1, .rules = &hard_b, .n_rules = 1 };
    assert_int_equal(place1(st, &r, SCHED_BINPACK, false), 1);
    /* anti-affinity to zone a: only b0 */
    hard_b.kind = SCHED_RULE_HOST_ANTI_AFFINITY;
    hard_b.value = "a";
    assert_int_equal(place1(st, &r, SCHED_BINPACK, false), 1);
    /* soft preference for b beats the fuller a1 ... */
    sched_rule soft_b = {
        .kind = SCHED_RULE_HOST_AFFINITY, .key = "zone", .value = "b", .soft = true, .weight = 10
    };
    r.rules = &soft_b;
    assert_int_equal(place1(st, &r, SCHED_BINPACK, false), 1);
    /* ... but gives way when b0 cannot take it */
    r.mem_mib = 1001;
    sched_state_free(st);
    f.hosts[2].mem_mib = 2000;
    st = build(&f);
    assert_int_equal(place1(st, &r, SCHED_BINPACK, false), 2);
    /* any value of the key */
    sched_rule any_zone = { .kind = SCHED_RULE_HOST_AFFINITY, .key = "zone" };
    r.rules = &any_zone;
    r.mem_mib = 10;
    assert_int_equal(place1(st, &r, SCHED_BINPACK, false), 2);
    any_zone.key = "rack";
    sched_decision d;
    assert_int_equal(sched_place(st, &r, 1, NULL, &d), SCHED_ECONSTRAINT);
    assert_non_null(strstr(d.message, "3 by hard host affinity rack=*"));
    sched_decision_clear(&d);
    sched_state_free(st);
}

static void test_instance_affinity(void **s)
{
    (void)s;
    static const sched_label db[] = { { "app", "db" } };
    static const sched_label grp[] = { { "grp", "x" } };
    fleet f = { 0 };
    add_host(&f, "h0", 1000, 8);
    add_host(&f, "h1", 1000, 8);
    add_inst(&f, 0, 600, 1); /* h0 fullest */
    sched_instance *d0 = add_inst(&f, 1, 100, 1);
    d0->labels = db;
    d0->n_labels = 1;
    sched_state *st = build(&f);
    sched_rule with_db = { .kind = SCHED_RULE_AFFINITY, .key = "app", .value = "db" };
    sched_request r = {
        .name = "app", .mem_mib = 100, .vcpus = 1, .rules = &with_db, .n_rules = 1
    };
    assert_int_equal(place1(st, &r, SCHED_BINPACK, false), 1);
    /* no cache anywhere, and the request is no cache itself */
    with_db.value = "cache";
    sched_decision d;
    assert_int_equal(sched_place(st, &r, 1, NULL, &d), SCHED_ECONSTRAINT);
    sched_decision_clear(&d);
    /* a self-affine group: all replicas on one host */
    sched_rule together = { .kind = SCHED_RULE_AFFINITY, .key = "grp", .value = "x" };
    sched_request g = { .name = "grp",
                        .mem_mib = 50,
                        .vcpus = 1,
                        .labels = grp,
                        .n_labels = 1,
                        .rules = &together,
                        .n_rules = 1,
                        .count = 5 };
    assert_int_equal(sched_place(st, &g, 1, NULL, &d), SCHED_OK);
    for (size_t i = 1; i < 5; i++)
        assert_int_equal(d.assignments[i].host, d.assignments[0].host);
    sched_decision_clear(&d);
    /* soft anti-affinity spreads when it can, packs when it must */
    sched_rule apart = {
        .kind = SCHED_RULE_ANTI_AFFINITY, .key = "grp", .value = "x", .soft = true, .weight = 5
    };
    g.rules = &apart;
    g.count = 2;
    assert_int_equal(sched_place(st, &g, 1, NULL, &d), SCHED_OK);
    assert_int_not_equal(d.assignments[0].host, d.assignments[1].host);
    sched_decision_clear(&d);
    g.count = 4;
    assert_int_equal(sched_place(st, &g, 1, NULL, &d), SCHED_OK);
    sched_decision_clear(&d);
    sched_state_free(st);
}

static void test_lone_self_affine_waits(void **s)
{
    (void)s;
    static const sched_label db[] = { { "app", "db" } };
    static const sched_rule with_db = { .kind = SCHED_RULE_AFFINITY, .key = "app", .value = "db" };
    fleet f = { 0 };
    add_host(&f, "h0", 1000, 8);
    add_host(&f, "h1", 1000, 8);
    add_inst(&f, 1, 800, 1); /* h1 is the fuller host */
    sched_state *st = build(&f);
    /* a db that wants company, added after the snapshot */
    sched_instance x = { .id = "db-0",
                         .mem_mib = 50,
                         .vcpus = 1,
                         .labels = db,
                         .n_labels = 1,
                         .rules = &with_db,
                         .n_rules = 1,
                         .host = 0 };
    assert_int_equal(sched_state_add(st, &x, NULL, NULL), SCHED_OK);
    /* the next db, rules or not, must join it */
    sched_request r = { .name = "db", .mem_mib = 50, .vcpus = 1, .labels = db, .n_labels = 1 };
    sched_place_opts o = { .explain = true };
    sched_decision d;
    assert_int_equal(sched_place(st, &r, 1, &o, &d), SCHED_OK);
    assert_int_equal(d.assignments[0].host, 0);
    assert_int_equal(d.steps[0].hosts[1].why, SCHED_WHY_PEER_AFFINITY);
    assert_non_null(strstr(d.steps[0].hosts[1].reason, "'db-0' on host 'h0'"));
    sched_decision_clear(&d);
    /* no room next to it: refused, naming why */
    r.mem_mib = 990;
    assert_int_equal(sched_place(st, &r, 1, NULL, &d), SCHED_ENOSPACE);
    sched_decision_clear(&d);
    /* a guest without the label is free to go elsewhere */
    r.labels = NULL;
    r.n_labels = 0;
    r.mem_mib = 50;
    assert_int_equal(place1(st, &r, SCHED_BINPACK, false), 1);
    sched_state_free(st);
}

/* ---- batches ------------------------------------------------------------ */

static void test_batch_largest_first(void **s)
{
    (void)s;
    fleet f = { 0 };
    add_host(&f, "h0", 100, 100);
    add_host(&f, "h1", 100, 100);
    add_host(&f, "h2", 100, 100);
    sched_state *st = build(&f);
    /* In request order 30,30,30 would fill h0 and strand a 70. */
    sched_request reqs[2] = {
        { .name = "small", .mem_mib = 30, .vcpus = 1, .count = 3 },
        { .name = "big", .mem_mib = 70, .vcpus = 1, .count = 3 },
    };
    sched_place_opts o = { .commit = true };
    sched_decision d;
    assert_int_equal(sched_place(st, reqs, 2, &o, &d), SCHED_OK);
    assert_int_equal(d.n_assignments, 6);
    /* assignments come back in request order */
    assert_int_equal(d.assignments[0].request, 0);
    assert_int_equal(d.assignments[3].request, 1);
    assert_int_equal(d.assignments[5].replica, 2);
    assert_string_equal((const char *)sched_state_find_instance(st, "big-2") != NULL ? "x" : "",
                        "x");
    assert_int_not_equal(sched_state_find_instance(st, "small-0"), SCHED_NONE);
    sched_decision_clear(&d);
    for (size_t h = 0; h < 3; h++)
        assert_int_equal(used(st, h, SCHED_RES_MEM), 100);
    sched_state_free(st);
}

static void test_batch_all_or_nothing(void **s)
{
    (void)s;
    fleet f = { 0 };
    add_host(&f, "h0", 1000, 8);
    add_host(&f, "h1", 1000, 8);
    sched_state *st = build(&f);
    const char *ids[2] = { "web-a", "web-b" };
    sched_request reqs[2] = {
        { .name = "web", .mem_mib = 400, .vcpus = 1, .count = 2, .ids = ids },
        { .name = "db", .mem_mib = 700, .vcpus = 1, .count = 2 },
    };
    sched_place_opts o = { .commit = true };
    sched_decision d;
    assert_int_equal(sched_place(st, reqs, 2, &o, &d), SCHED_ENOSPACE);
    assert_int_equal(d.n_assignments, 0);
    assert_int_equal(d.failed_request, 0);
    assert_int_equal(d.unplaced, 2);
    assert_non_null(strstr(d.message, "2 of 4 replicas could not be placed"));
    sched_decision_clear(&d);
    assert_int_equal(sched_state_instances(st), 0);
    assert_int_equal(used(st, 0, SCHED_RES_MEM), 0);
    assert_int_equal(used(st, 1, SCHED_RES_MEM), 0);
    reqs[1].mem_mib = 600;
    assert_int_equal(sched_place(st, reqs, 2, &o, &d), SCHED_OK);
    sched_decision_clear(&d);
    assert_int_not_equal(sched_state_find_instance(st, "web-b"), SCHED_NONE);
    assert_int_equal(used(st, 0, SCHED_RES_MEM) + used(st, 1, SCHED_RES_MEM), 2000);
    sched_state_free(st);
}

/* ---- failures and explanations ----------------------------------------- */

static void test_shortage_names_resource(void **s)
{
    (void)s;
    fleet f = { 0 };
    add_host(&f, "h1", 1000, 8)->vmm_overhead_mib = 12;
    add_host(&f, "h2", 1000, 8)->vmm_overhead_mib = 12;
    add_inst(&f, 0, 888, 1); /* h1: 1000 - 900 - 12 = 88 MiB left */
    add_inst(&f, 1, 776, 1); /* h2: 1000 - 788 - 12 = 200 MiB left */
    sched_state *st = build(&f);
    sched_request r = { .name = "big", .mem_mib = 712, .vcpus = 1 };
    sched_decision d;
    assert_int_equal(sched_place(st, &r, 1, NULL, &d), SCHED_ENOSPACE);
    assert_int_equal(d.short_resource, SCHED_RES_MEM);
    assert_int_equal(d.short_by, 512);
    assert_int_equal(d.largest_host, 1);
    assert_string_equal(d.message, "'big' replica 1/1: need 512 MiB more memory: largest "
                                   "free block is 200 MiB on host 'h2'");
    sched_decision_clear(&d);
    /* vCPUs */
    r.mem_mib = 10;
    r.vcpus = 9;
    assert_int_equal(sched_place(st, &r, 1, NULL, &d), SCHED_ENOSPACE);
    assert_int_equal(d.short_resource, SCHED_RES_VCPU);
    assert_int_equal(d.short_by, 2);
    sched_decision_clear(&d);
    /* fragmentation: memory on one host, vCPUs on the other */
    fleet g = { 0 };
    add_host(&g, "m", 1000, 8);
    add_host(&g, "c", 1000, 8);
    add_inst(&g, 0, 10, 8);  /* m: memory free, no vCPU */
    add_inst(&g, 1, 900, 1); /* c: vCPUs free, little memory */
    sched_state_free(st);
    st = build(&g);
    r.mem_mib = 500;
    r.vcpus = 2;
    assert_int_equal(sched_place(st, &r, 1, NULL, &d), SCHED_ENOSPACE);
    assert_non_null(strstr(d.message, "no single host"));
    sched_decision_clear(&d);
    sched_state_free(st);
    /* no hosts at all */
    fleet e = { 0 };
    st = build(&e);
    assert_int_equal(sched_place(st, &r, 1, NULL, &d), SCHED_ENOSPACE);
    assert_non_null(strstr(d.message, "no hosts"));
    sched_decision_clear(&d);
    sched_state_free(st);
}

static void test_explain_render(void **s)
{
    (void)s;
    fleet f = { 0 };
    add_host(&f, "small", 100, 8);
    add_host(&f, "big", 1000, 8);
    add_host(&f, "off", 1000, 8)->cordoned = true;
    add_host(&f, "other", 2000, 8);
    sched_state *st = build(&f);
    sched_request r = { .name = "g", .mem_mib = 200, .vcpus = 1 };
    sched_place_opts o = { .explain = true };
    sched_decision d;
    assert_int_equal(sched_place(st, &r, 1, &o, &d), SCHED_OK);
    char buf[4096];
    size_t n = sched_decision_render(&d, buf, sizeof(buf));
    assert_true(n < sizeof(buf));
    assert_int_equal(strlen(buf), n);
    assert_non_null(strstr(buf, "chosen   host 'big'"));
    assert_non_null(strstr(buf, "fits     host 'other'"));
    assert_non_null(strstr(buf, "rejected host 'small': needs 200 MiB memory"));
    assert_non_null(strstr(buf, "rejected host 'off': cordoned"));
    /* truncation keeps the snprintf contract */
    char tiny[16];
    assert_int_equal(sched_decision_render(&d, tiny, sizeof(tiny)), n);
    assert_int_equal(strlen(tiny), 15);
    sched_decision_clear(&d);
    /* a failed request explains its failed replica */
    r.mem_mib = 5000;
    assert_int_equal(sched_place(st, &r, 1, &o, &d), SCHED_ENOSPACE);
    assert_int_equal(d.n_steps, 1);
    assert_int_equal(d.steps[0].hosts[3].why, SCHED_WHY_MEM);
    sched_decision_clear(&d);
    sched_decision_clear(NULL);
    sched_state_free(st);
}

/* cpu_milli: the vCPU resource counts thousandths of a CPU of measured use;
 * the same arithmetic, messages in CPUs, and no VMM term when overhead is 0. */
static void test_cpu_milli_messages(void **s)
{
    (void)s;
    fleet f = { 0 };
    add_host(&f, "h1", 1000, 2000)->reserved_vcpus = 200; /* 2 CPUs, 90 % */
    add_inst(&f, 0, 100, 1790);                           /* 0.010 CPU left */
    sched_fleet sf = { f.hosts, f.n_hosts, f.insts, f.n_insts, true };
    sched_state *st = NULL;
    sched_error err;
    assert_int_equal(sched_state_new(&sf, &st, &err), SCHED_OK);
    sched_request r = { .name = "w", .mem_mib = 15, .vcpus = 4, .count = 2 };
    sched_decision d;
    assert_int_equal(sched_place(st, &r, 1, NULL, &d), SCHED_OK); /* 0.008 fits */
    sched_decision_clear(&d);
    r.count = 3; /* 0.012 does not: the third replica is short by 0.002 */
    assert_int_equal(sched_place(st, &r, 1, NULL, &d), SCHED_ENOSPACE);
    assert_int_equal(d.short_resource, SCHED_RES_VCPU);
    /* (which replica is last is the batch order's business) */
    if (!strstr(d.message, ": need 0.002 more CPU: largest free block is 0.002 CPU on host 'h1'"))
        fail_msg("message: %s", d.message);
    sched_decision_clear(&d);
    /* explained: the host's verdict in CPUs, memory without a VMM term */
    sched_place_opts o = { .explain = true };
    r.count = 1;
    r.vcpus = 20;
    assert_int_equal(sched_place(st, &r, 1, &o, &d), SCHED_ENOSPACE);
    assert_true(d.n_steps > 0);
    const char *why = d.steps[d.n_steps - 1].hosts[0].reason;
    if (!strstr(why, "needs 0.020 CPU, 0.010 CPU free of 1.800 CPU"))
        fail_msg("verdict: %s", why);
    sched_decision_clear(&d);
    r.vcpus = 1;
    r.mem_mib = 950;
    assert_int_equal(sched_place(st, &r, 1, &o, &d), SCHED_ENOSPACE);
    assert_true(d.n_steps > 0);
    why = d.steps[d.n_steps - 1].hosts[0].reason;
    if (!strstr(why, "needs 950 MiB memory, 900 MiB free of 1000"))
        fail_msg("verdict: %s", why);
    sched_decision_clear(&d);
    sched_state_free(st);
}

/* ---- input validation and state API ------------------------------------ */

static void test_invalid_input(void **s)
{
    (void)s;
    fleet f = { 0 };
    add_host(&f, "h0", 1000, 8);
    add_host(&f, "h0", 1000, 8);
    sched_fleet sf = { f.hosts, f.n_hosts, NULL, 0, false };
    sched_state *st = NULL;
    sched_error err;
    assert_int_equal(sched_state_new(&sf, &st, &err), SCHED_EINVAL);
    assert_null(st);
    assert_non_null(strstr(err.message, "host id 'h0' appears twice"));
    f.hosts[1].id = "h1";
    f.hosts[1].cpu_overcommit = -2;
    assert_int_equal(sched_state_new(&sf, &st, &err), SCHED_EINVAL);
    assert_non_null(strstr(err.message, "'h1'"));
    f.hosts[1].cpu_overcommit = 0;
    add_inst(&f, 7, 10, 1);
    sf.instances = f.insts;
    sf.n_instances = 1;
    assert_int_equal(sched_state_new(&sf, &st, &err), SCHED_EINVAL);
    assert_non_null(strstr(err.message, "instance 'i0': host index 7"));
    f.insts[0].host = 1;
    assert_int_equal(sched_state_new(&sf, &st, &err), SCHED_OK);
    sched_request r = { .name = "x", .mem_mib = 1, .vcpus = 1 };
    sched_rule bad = { .kind = (sched_rule_kind)9, .key = "k" };
    r.rules = &bad;
    r.n_rules = 1;
    sched_decision d;
    assert_int_equal(sched_place(st, &r, 1, NULL, &d), SCHED_EINVAL);
    assert_non_null(strstr(d.message, "unknown kind"));
    sched_decision_clear(&d);
    /* the state API */
    assert_int_equal(sched_state_find_host(st, "h1"), 1);
    assert_int_equal(sched_state_find_host(st, "nope"), SCHED_NONE);
    size_t i0 = sched_state_find_instance(st, "i0");
    assert_int_equal(i0, 0);
    assert_int_equal(sched_state_move(st, i0, 0), SCHED_OK);
    assert_int_equal(sched_state_instance_host(st, i0), 0);
    assert_int_equal(used(st, 0, SCHED_RES_MEM), 10);
    sched_instance dup = f.insts[0];
    assert_int_equal(sched_state_add(st, &dup, NULL, &err), SCHED_EINVAL);
    dup.id = "i1";
    size_t idx;
    assert_int_equal(sched_state_add(st, &dup, &idx, &err), SCHED_OK);
    assert_int_equal(idx, 1);
    assert_int_equal(sched_state_remove(st, i0), SCHED_OK);
    assert_int_equal(sched_state_remove(st, i0), SCHED_EINVAL);
    assert_int_equal(used(st, 0, SCHED_RES_MEM), 0);
    assert_int_equal(used(st, 1, SCHED_RES_MEM), 10);
    sched_state_free(st);
    sched_state_free(NULL);
    assert_string_equal(sched_resource_name(SCHED_RES_VCPU), "vcpu");
    assert_string_equal(sched_status_name(SCHED_ENOSPACE), "no_space");
    assert_string_equal(sched_why_name(SCHED_WHY_PEER_RULE), "peer_anti_affinity");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binpack_picks_fullest),
        cmocka_unit_test(test_tiny_guests_fill_one_host_first),
        cmocka_unit_test(test_reserved_and_vmm_overhead),
        cmocka_unit_test(test_overcommit),
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_cordon),
        cmocka_unit_test(test_anti_affinity_replicas),
        cmocka_unit_test(test_resident_rule_binds_newcomer),
        cmocka_unit_test(test_host_affinity),
        cmocka_unit_test(test_instance_affinity),
        cmocka_unit_test(test_lone_self_affine_waits),
        cmocka_unit_test(test_batch_largest_first),
        cmocka_unit_test(test_batch_all_or_nothing),
        cmocka_unit_test(test_shortage_names_resource),
        cmocka_unit_test(test_explain_render),
        cmocka_unit_test(test_cpu_milli_messages),
        cmocka_unit_test(test_invalid_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
