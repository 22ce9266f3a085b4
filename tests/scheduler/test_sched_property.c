/* test_sched_property.c - thousands of random fleets, seeded and
 * reproducible. After every decision and every move of every plan the
 * independent checker must find each host within capacity and every hard
 * rule held; failed batches must leave the state exactly as it was; a
 * replica reported as unplaceable must really fit no host; the indexed
 * search must agree with the linear scan.
 *
 *   SCHED_SEED=n       seed (default 20261126); printed on failure
 *   SCHED_PROP_ITERS=n fleets (default 3000)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sched_check.h"
#include "scheduler.h"

#define MAXH 9
#define MAXI 160

static unsigned long long g_seed;
static unsigned long g_iter;
static uint64_t g_rng;
/* what the run covered, printed at the end */
static unsigned long n_ok, n_fail, n_moves, n_freed, n_drain_ok, n_drain_fail;

#define PFAIL(...)                                                                                 \
    do {                                                                                           \
        char m_[1024];                                                                             \
        snprintf(m_, sizeof(m_), __VA_ARGS__);                                                     \
        fail_msg("seed=%llu iter=%lu (rerun: SCHED_SEED=%llu): %s", g_seed, g_iter, g_seed, m_);   \
    } while (0)

static uint64_t rnd(void)
{
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ull;
}

static uint32_t below(uint32_t n)
{
    return n ? (uint32_t)(rnd() % n) : 0;
}

/* ---- pools of labels and rules ------------------------------------------ */

static const sched_label zone_l[3][1] = { { { "zone", "a" } },
                                          { { "zone", "b" } },
                                          { { "zone", "c" } } };
static const sched_label app_l[3][1] = { { { "app", "web" } },
                                         { { "app", "db" } },
                                         { { "app", "cache" } } };

static const sched_rule rules_pool[][2] = {
    /* 0: none */
    { { 0 } },
    /* 1: replicas apart */
    { { .kind = SCHED_RULE_ANTI_AFFINITY, .key = "app", .value = "web" } },
    /* 2: zone a only */
    { { .kind = SCHED_RULE_HOST_AFFINITY, .key = "zone", .value = "a" } },
    /* 3: next to a db */
    { { .kind = SCHED_RULE_AFFINITY, .key = "app", .value = "db" } },
    /* 4: prefer apart from web, never zone c */
    { { .kind = SCHED_RULE_ANTI_AFFINITY, .key = "app", .value = "web", .soft = true, .weight = 4 },
      { .kind = SCHED_RULE_HOST_ANTI_AFFINITY, .key = "zone", .value = "c" } },
    /* 5: prefer zone b, apart from any cache */
    { { .kind = SCHED_RULE_HOST_AFFINITY, .key = "zone", .value = "b", .soft = true, .weight = 2 },
      { .kind = SCHED_RULE_ANTI_AFFINITY, .key = "app", .value = "cache" } },
    /* 6: self-affine group of db */
    { { .kind = SCHED_RULE_AFFINITY, .key = "app", .value = "db" },
      { .kind = SCHED_RULE_HOST_ANTI_AFFINITY, .key = "zone", .value = "b" } },
};
static const size_t rules_n[] = { 0, 1, 1, 1, 2, 2, 2 };
#define N_RULESETS (sizeof(rules_n) / sizeof(rules_n[0]))

typedef struct {
    sched_host hosts[MAXH];
    size_t nh;
    char hid[MAXH][24];
    sched_instance insts[MAXI];
    size_t ni;
    char iid[MAXI][48];
} model;

static void random_hosts(model *m)
{
    static const uint64_t mems[] = { 512, 1024, 2048, 4096 };
    static const uint32_t cpus[] = { 2, 4, 8 };
    static const double mo[] = { 0, 1.0, 1.5 };
    static const double co[] = { 0, 1.0, 2.0, 4.0 };
    m->nh = 1 + below(MAXH - 1);
    for (size_t h = 0; h < m->nh; h++) {
        sched_host *x = &m->hosts[h];
        memset(x, 0, sizeof(*x));
        snprintf(m->hid[h], sizeof(m->hid[h]), "h%zu", h);
        x->id = m->hid[h];
        x->mem_mib = mems[below(4)];
        x->vcpus = cpus[below(3)];
        x->slots = below(3) == 0 ? 2 + below(12) : 0;
        x->reserved_mem_mib = below(4) == 0 ? below((uint32_t)x->mem_mib / 4) : 0;
        x->reserved_vcpus = below(5) == 0 ? 1 : 0;
        x->vmm_overhead_mib = below(2) ? 12 : 0;
        x->mem_overcommit = mo[below(3)];
        x->cpu_overcommit = co[below(4)];
        uint32_t z = below(4);
        if (z < 3) {
            x->labels = zone_l[z];
            x->n_labels = 1;
        }
        x->cordoned = below(10) == 0;
    }
}

static void random_request(sched_request *r, uint32_t max_count)
{
    memset(r, 0, sizeof(*r));
    r->name = "r";
    r->mem_mib = 16 + below(241);
    r->vcpus = 1 + below(2);
    r->count = 1 + below(max_count);
    uint32_t a = below(4);
    if (a < 3) {
        r->labels = app_l[a];
        r->n_labels = 1;
    }
    uint32_t k = below(N_RULESETS + 2); /* rules-free more often */
    if (k < N_RULESETS && rules_n[k] > 0) {
        r->rules = rules_pool[k];
        r->n_rules = rules_n[k];
    }
}

static sched_state *build(const model *m)
{
    sched_fleet f = { m->hosts, m->nh, m->insts, m->ni, false };
    sched_state *st = NULL;
    sched_error err;
    if (sched_state_new(&f, &st, &err) != SCHED_OK)
        PFAIL("sched_state_new: %s", err.message);
    return st;
}

static void snapshot(const sched_state *st, uint64_t *out)
{
    size_t nh = sched_state_hosts(st);
    for (size_t h = 0; h < nh; h++)
        for (int r = 0; r < SCHED_RES__COUNT; r++)
            sched_state_usage(st, h, (sched_resource)r, NULL, &out[h * SCHED_RES__COUNT + r]);
}

/* A replica the scheduler could not place: really no host may take it? */
static void check_really_full(model *m, const sched_request *r)
{
    if (m->ni >= MAXI)
        return;
    sched_instance *x = &m->insts[m->ni];
    memset(x, 0, sizeof(*x));
    x->id = "candidate";
    x->mem_mib = r->mem_mib;
    x->vcpus = r->vcpus;
    x->labels = r->labels;
    x->n_labels = r->n_labels;
    x->rules = r->rules;
    x->n_rules = r->n_rules;
    char why[512];
    for (size_t h = 0; h < m->nh; h++) {
        if (m->hosts[h].cordoned)
            continue;
        x->host = h;
        /* Resident rules apply too: check_fleet sees them all. */
        if (check_fleet(m->hosts, m->nh, m->insts, m->ni + 1, why, sizeof(why)))
            PFAIL("single replica rejected but host '%s' could take it", m->hosts[h].id);
    }
}

static void one_fleet(void)
{
    model m;
    memset(&m, 0, sizeof(m));
    random_hosts(&m);
    sched_state *st = build(&m);
    uint64_t before[MAXH * SCHED_RES__COUNT], after[MAXH * SCHED_RES__COUNT];
    char why[512];
    uint32_t n_req = 1 + below(16);

    for (uint32_t q = 0; q < n_req && m.ni + 8 < MAXI; q++) {
        sched_request reqs[2];
        size_t nr = 1 + below(2);
        for (size_t i = 0; i < nr; i++)
            random_request(&reqs[i], 4);
        sched_policy pol = below(3) == 0 ? SCHED_SPREAD : SCHED_BINPACK;

        /* index and linear scan agree */
        sched_place_opts lin = { .policy = pol, .no_index = true };
        sched_decision dl, d;
        sched_status rl = sched_place(st, reqs, nr, &lin, &dl);

        snapshot(st, before);
        size_t ni_before = sched_state_instances(st);
        sched_place_opts o = { .policy = pol, .commit = true, .explain = below(8) == 0 };
        sched_status rc = sched_place(st, reqs, nr, &o, &d);
        if (rc != rl || d.n_assignments != dl.n_assignments)
            PFAIL("indexed %d and linear %d disagree", rc, rl);
        for (size_t k = 0; k < d.n_assignments; k++)
            if (d.assignments[k].host != dl.assignments[k].host)
                PFAIL("indexed and linear chose different hosts for "
                      "replica %zu",
                      k);

        if (rc == SCHED_OK)
            n_ok++;
        else
            n_fail++;
        if (rc == SCHED_OK) {
            for (size_t k = 0; k < d.n_assignments; k++) {
                const sched_assignment *a = &d.assignments[k];
                const sched_request *r = &reqs[a->request];
                if (a->instance < m.ni || a->instance >= m.ni + d.n_assignments)
                    PFAIL("instance index %zu unexpected", a->instance);
                if (m.hosts[a->host].cordoned)
                    PFAIL("placed on cordoned host '%s'", a->host_id);
                sched_instance *x = &m.insts[a->instance];
                memset(x, 0, sizeof(*x));
                snprintf(m.iid[a->instance], sizeof(m.iid[0]), "q%u-%zu", q, k);
                x->id = m.iid[a->instance];
                x->mem_mib = r->mem_mib;
                x->vcpus = r->vcpus;
                x->labels = r->labels;
                x->n_labels = r->n_labels;
                x->rules = r->rules;
                x->n_rules = r->n_rules;
                x->host = a->host;
            }
            m.ni += d.n_assignments;
            if (!check_fleet(m.hosts, m.nh, m.insts, m.ni, why, sizeof(why)))
                PFAIL("after placement: %s", why);
            for (size_t s = 0; s < d.n_steps; s++) {
                const sched_step *step = &d.steps[s];
                size_t chosen = 0;
                for (size_t h = 0; h < step->n_hosts; h++)
                    chosen += step->hosts[h].verdict == SCHED_CHOSEN;
                if (chosen != 1 || step->n_hosts != m.nh)
                    PFAIL("explanation has %zu chosen hosts", chosen);
            }
        } else {
            if (rc != SCHED_ENOSPACE && rc != SCHED_ECONSTRAINT)
                PFAIL("unexpected status %d: %s", rc, d.message);
            if (d.message[0] == '\0' || d.n_assignments != 0 || d.unplaced == 0)
                PFAIL("failure without explanation");
            snapshot(st, after);
            if (memcmp(before, after, m.nh * SCHED_RES__COUNT * sizeof(uint64_t)) != 0 ||
                sched_state_instances(st) != ni_before)
                PFAIL("failed batch changed the state");
            if (nr == 1 && reqs[0].count == 1)
                check_really_full(&m, &reqs[0]);
        }
        sched_decision_clear(&d);
        sched_decision_clear(&dl);
    }
    sched_state_free(st);

    /* Plans, from a fresh state with a few pinned guests. */
    for (size_t i = 0; i < m.ni; i++)
        m.insts[i].pinned = below(20) == 0;
    st = build(&m);
    sched_plan p;
    if (sched_plan_consolidate(st, NULL, &p) != SCHED_OK)
        PFAIL("consolidate: %s", p.message);
    size_t used_after = 0;
    if (!check_plan(m.hosts, m.nh, m.insts, m.ni, &p, true, &used_after, why, sizeof(why)))
        PFAIL("consolidation plan: %s", why);
    if (used_after != p.hosts_used_after || p.hosts_used_after > p.hosts_used_before)
        PFAIL("consolidation reports %zu -> %zu, replay %zu", p.hosts_used_before,
              p.hosts_used_after, used_after);
    n_moves += p.n_moves;
    n_freed += p.n_freed;
    sched_plan_clear(&p);

    size_t victim = below((uint32_t)m.nh);
    sched_status rc = sched_plan_drain(st, victim, NULL, &p);
    if (rc == SCHED_OK)
        n_drain_ok++;
    else
        n_drain_fail++;
    if (rc == SCHED_OK) {
        if (!check_plan(m.hosts, m.nh, m.insts, m.ni, &p, false, NULL, why, sizeof(why)))
            PFAIL("drain plan: %s", why);
        size_t left = 0;
        for (size_t i = 0; i < m.ni; i++)
            left += m.insts[i].host == victim;
        for (size_t k = 0; k < p.n_moves; k++)
            left -= p.moves[k].from == victim;
        if (left != 0)
            PFAIL("drain left %zu guests on the host", left);
    } else if (rc == SCHED_EINVAL) {
        bool pinned = false;
        for (size_t i = 0; i < m.ni; i++)
            pinned |= m.insts[i].host == victim && m.insts[i].pinned;
        if (!pinned)
            PFAIL("drain EINVAL without a pinned guest: %s", p.message);
    } else if (p.stuck_instance == SCHED_NONE) {
        PFAIL("drain failed without naming an instance: %s", p.message);
    }
    sched_plan_clear(&p);
    sched_state_free(st);
}

static void test_random_fleets(void **s)
{
    (void)s;
    const char *e = getenv("SCHED_SEED");
    g_seed = e != NULL ? strtoull(e, NULL, 10) : 20261126ull;
    e = getenv("SCHED_PROP_ITERS");
    unsigned long iters = e != NULL ? strtoul(e, NULL, 10) : 3000;
    g_rng = g_seed * 0x9E3779B97F4A7C15ull + 1;
    for (g_iter = 0; g_iter < iters; g_iter++)
        one_fleet();
    printf("[ PROPERTY ] %lu random fleets, seed %llu: %lu batches placed, "
           "%lu refused; consolidation %lu moves freed %lu hosts; drains "
           "%lu ok, %lu refused\n",
           iters, g_seed, n_ok, n_fail, n_moves, n_freed, n_drain_ok, n_drain_fail);
}

/* On a large heterogeneous fleet the index and the linear scan agree. */
static void test_index_matches_linear_large(void **s)
{
    (void)s;
    enum { NH = 700 };
    static sched_host hosts[NH];
    static char ids[NH][24];
    g_seed = 11;
    g_rng = 1111;
    for (size_t h = 0; h < NH; h++) {
        static const uint64_t mems[] = { 2048, 4096, 8192, 24576 };
        memset(&hosts[h], 0, sizeof(hosts[h]));
        snprintf(ids[h], sizeof(ids[h]), "h%zu", h);
        hosts[h].id = ids[h];
        hosts[h].mem_mib = mems[below(4)];
        hosts[h].vcpus = 4 + below(29);
        hosts[h].cpu_overcommit = 1.0 + below(8);
        hosts[h].vmm_overhead_mib = below(2) ? 12 : 0;
        hosts[h].slots = below(4) == 0 ? 8 + below(64) : 0;
        hosts[h].cordoned = below(30) == 0;
        uint32_t z = below(4);
        if (z < 3) {
            hosts[h].labels = zone_l[z];
            hosts[h].n_labels = 1;
        }
    }
    sched_fleet f = { hosts, NH, NULL, 0, false };
    sched_state *st = NULL;
    assert_int_equal(sched_state_new(&f, &st, NULL), SCHED_OK);
    size_t agree = 0;
    for (g_iter = 0; g_iter < 3000; g_iter++) {
        sched_request r;
        random_request(&r, 3);
        /* soft rules always take the linear scan; keep hard ones */
        if (r.n_rules > 0 && (r.rules[0].soft || (r.n_rules > 1 && r.rules[1].soft))) {
            r.rules = NULL;
            r.n_rules = 0;
        }
        r.mem_mib = 16 + below(2000);
        sched_policy pol = below(3) == 0 ? SCHED_SPREAD : SCHED_BINPACK;
        sched_place_opts lin = { .policy = pol, .no_index = true };
        sched_place_opts idx = { .policy = pol, .commit = below(4) != 0 };
        sched_decision dl, di;
        sched_status rl = sched_place(st, &r, 1, &lin, &dl);
        sched_status ri = sched_place(st, &r, 1, &idx, &di);
        if (rl != ri || dl.n_assignments != di.n_assignments)
            PFAIL("status %d vs %d", rl, ri);
        for (size_t k = 0; k < di.n_assignments; k++)
            if (dl.assignments[k].host != di.assignments[k].host)
                PFAIL("replica %zu: linear '%s', index '%s'", k, dl.assignments[k].host_id,
                      di.assignments[k].host_id);
        agree += ri == SCHED_OK;
        sched_decision_clear(&dl);
        sched_decision_clear(&di);
    }
    sched_state_free(st);
    printf("[ PROPERTY ] index == linear scan on %d hosts: %zu placements\n", NH, agree);
}

/* Batch placement of small instances is optimal or optimal plus one. */
static void test_small_batches_near_optimum(void **s)
{
    (void)s;
    g_seed = 7;
    g_rng = 77;
    sched_host h = {
        .id = "h", .mem_mib = 1024, .vcpus = 4, .vmm_overhead_mib = 12, .cpu_overcommit = 2.0
    };
    sched_host hosts[12];
    char ids[12][24];
    size_t equal = 0, total = 0;
    for (g_iter = 0; g_iter < 200; g_iter++) {
        size_t n = 6 + below(7);
        uint64_t mem[12];
        uint32_t cpu[12];
        sched_request reqs[12];
        for (size_t i = 0; i < n; i++) {
            mem[i] = 16 + below(497);
            cpu[i] = 1 + below(2);
            reqs[i] = (sched_request){ .mem_mib = mem[i], .vcpus = cpu[i] };
        }
        for (size_t k = 0; k < n; k++) {
            hosts[k] = h;
            snprintf(ids[k], sizeof(ids[k]), "h%zu", k);
            hosts[k].id = ids[k];
        }
        sched_fleet f = { hosts, n, NULL, 0, false };
        sched_state *st = NULL;
        assert_int_equal(sched_state_new(&f, &st, NULL), SCHED_OK);
        sched_decision d;
        assert_int_equal(sched_place(st, reqs, n, NULL, &d), SCHED_OK);
        bool usedh[12] = { 0 };
        size_t used = 0;
        for (size_t k = 0; k < d.n_assignments; k++)
            if (!usedh[d.assignments[k].host]) {
                usedh[d.assignments[k].host] = true;
                used++;
            }
        size_t opt = check_optimum(&h, mem, cpu, n, 2000000);
        assert_true(opt > 0);
        if (used > opt + 1)
            PFAIL("batch used %zu hosts, optimum %zu", used, opt);
        equal += used == opt;
        total++;
        sched_decision_clear(&d);
        sched_state_free(st);
    }
    printf("[ PROPERTY ] small batches: %zu of %zu optimal, rest optimum+1\n", equal, total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_fleets),
        cmocka_unit_test(test_index_matches_linear_large),
        cmocka_unit_test(test_small_batches_near_optimum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
