/* bench_sched.c - how well and how fast the scheduler packs.
 *
 *   bench_sched [--quick]
 *
 * Prints one line per figure as "figure, baseline, ratio, target":
 *  1. packing of random tiny guests (16..256 MiB, 1..2 vCPUs) against the
 *     lower bound (sum of demand / capacity, per resource, max over
 *     resources), placed one at a time (as the daemon does) and as a batch;
 *  2. small batches against the exact optimum (branch and bound);
 *  3. consolidation of a random spread placement against the lower bound,
 *     with moves per host freed;
 *  4. cost: 100,000 placements onto 10,000 hosts, total and p99 of one
 *     decision, indexed and (sampled) linear scan.
 * Exits 1 if a quality target is missed (timings are reported, not judged:
 * the machines are shared).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sched_check.h"
#include "scheduler.h"

static uint64_t g_rng = 88172645463325252ull;

static uint64_t rnd(void)
{
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ull;
}

static uint32_t below(uint32_t n)
{
    return (uint32_t)(rnd() % n);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of this process: stable on shared machines, unlike wall time. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static bool g_fail;

static void figure(const char *name, double value, double baseline, const char *unit, double target,
                   bool judged)
{
    const bool lower_is_better = true;
    double ratio = value / baseline;
    bool ok = lower_is_better ? ratio <= target + 1e-9 : ratio >= target;
    printf("%-44s %10.3f %-6s baseline %10.3f  ratio %6.3f  target %s%.2f  "
           "%s\n",
           name, value, unit, baseline, ratio, lower_is_better ? "<=" : ">=", target,
           ok ? "ok" : "MISSED");
    if (!ok && judged)
        g_fail = true;
}

/* A fleet of identical hosts. */
static sched_host *make_hosts(size_t n, const sched_host *shape, char **ids)
{
    sched_host *h = calloc(n, sizeof(*h));
    *ids = calloc(n, 24);
    for (size_t i = 0; i < n; i++) {
        h[i] = *shape;
        snprintf(*ids + 24 * i, 24, "h%zu", i);
        h[i].id = *ids + 24 * i;
    }
    return h;
}

static size_t hosts_in_use(const sched_state *st)
{
    size_t n = 0;
    for (size_t h = 0; h < sched_state_hosts(st); h++) {
        uint64_t used = 0;
        sched_state_usage(st, h, SCHED_RES_SLOT, NULL, &used);
        n += used > 0;
    }
    return n;
}

/* ---- 1. packing ---------------------------------------------------------- */

static void packing(const char *label, const sched_host *shape, size_t n_guests, int trials)
{
    double sum_online = 0, sum_batch = 0, sum_lb = 0;
    for (int t = 0; t < trials; t++) {
        uint64_t *mem = malloc(n_guests * sizeof(*mem));
        uint32_t *cpu = malloc(n_guests * sizeof(*cpu));
        sched_request *reqs = calloc(n_guests, sizeof(*reqs));
        for (size_t i = 0; i < n_guests; i++) {
            mem[i] = 16 + below(241);
            cpu[i] = 1 + below(2);
            reqs[i] = (sched_request){ .mem_mib = mem[i], .vcpus = cpu[i] };
        }
        size_t lb = check_lower_bound(shape, mem, cpu, n_guests);
        size_t nh = lb * 2 + 4;
        char *ids;
        sched_host *hosts = make_hosts(nh, shape, &ids);
        sched_fleet f = { hosts, nh, NULL, 0, false };

        /* online: one decision per guest, in arrival order */
        sched_state *st;
        sched_state_new(&f, &st, NULL);
        sched_place_opts o = { .commit = true };
        for (size_t i = 0; i < n_guests; i++) {
            sched_decision d;
            if (sched_place(st, &reqs[i], 1, &o, &d) != SCHED_OK) {
                fprintf(stderr, "online placement failed: %s\n", d.message);
                exit(2);
            }
            sched_decision_clear(&d);
        }
        sum_online += (double)hosts_in_use(st);
        sched_state_free(st);

        /* batch: one decision for all, largest first */
        sched_state_new(&f, &st, NULL);
        sched_decision d;
        if (sched_place(st, reqs, n_guests, &o, &d) != SCHED_OK) {
            fprintf(stderr, "batch placement failed: %s\n", d.message);
            exit(2);
        }
        sched_decision_clear(&d);
        sum_batch += (double)hosts_in_use(st);
        sched_state_free(st);
        sum_lb += (double)lb;
        free(mem);
        free(cpu);
        free(reqs);
        free(hosts);
        free(ids);
    }
    char name[128];
    snprintf(name, sizeof(name), "packing %s, online (hosts)", label);
    figure(name, sum_online / trials, sum_lb / trials, "hosts", 1.05, true);
    snprintf(name, sizeof(name), "packing %s, batch (hosts)", label);
    figure(name, sum_batch / trials, sum_lb / trials, "hosts", 1.05, true);
}

/* ---- 2. exact optimum ---------------------------------------------------- */

static void optimum(int trials)
{
    sched_host shape = {
        .mem_mib = 1024, .vcpus = 4, .vmm_overhead_mib = 12, .cpu_overcommit = 2.0
    };
    int equal = 0, plus1 = 0, worse = 0, done = 0;
    double sum_used = 0, sum_opt = 0;
    for (int t = 0; t < trials; t++) {
        size_t n = 8 + below(7);
        uint64_t mem[16];
        uint32_t cpu[16];
        sched_request reqs[16];
        for (size_t i = 0; i < n; i++) {
            mem[i] = 16 + below(497);
            cpu[i] = 1 + below(2);
            reqs[i] = (sched_request){ .mem_mib = mem[i], .vcpus = cpu[i] };
        }
        size_t opt = check_optimum(&shape, mem, cpu, n, 5000000);
        if (opt == 0)
            continue;
        char *ids;
        sched_host *hosts = make_hosts(n, &shape, &ids);
        sched_fleet f = { hosts, n, NULL, 0, false };
        sched_state *st;
        sched_state_new(&f, &st, NULL);
        sched_decision d;
        sched_place_opts o = { .commit = true };
        sched_place(st, reqs, n, &o, &d);
        sched_decision_clear(&d);
        size_t used = hosts_in_use(st);
        sched_state_free(st);
        free(hosts);
        free(ids);
        done++;
        sum_used += (double)used;
        sum_opt += (double)opt;
        if (used == opt)
            equal++;
        else if (used == opt + 1)
            plus1++;
        else
            worse++;
    }
    printf("small batches (8-14 guests, 1 GiB hosts): %d trials: %d optimal, "
           "%d optimum+1, %d worse\n",
           done, equal, plus1, worse);
    figure("small batches vs exact optimum (hosts)", sum_used / done, sum_opt / done, "hosts", 1.10,
           true);
    if (worse > 0) {
        printf("  MISSED: %d batches worse than optimum+1\n", worse);
        g_fail = true;
    }
}

/* ---- 3. consolidation ---------------------------------------------------- */

static void consolidation(const sched_host *shape, size_t nh, double load, int trials)
{
    double sum_after = 0, sum_lb = 0, sum_before = 0, sum_moves = 0, sum_freed = 0, sum_time = 0,
           sum_guests = 0, sum_min_moves = 0;
    for (int t = 0; t < trials; t++) {
        char *ids;
        sched_host *hosts = make_hosts(nh, shape, &ids);
        sched_fleet f = { hosts, nh, NULL, 0, false };
        sched_state *st;
        sched_state_new(&f, &st, NULL);
        /* spread guests until the fleet is `load` full in memory */
        uint64_t cap = check_usable(shape, SCHED_RES_MEM);
        uint64_t target = (uint64_t)(load * (double)cap * (double)nh);
        uint64_t total = 0;
        size_t n = 0, cap_n = 1024;
        uint64_t *mem = malloc(cap_n * sizeof(*mem));
        uint32_t *cpu = malloc(cap_n * sizeof(*cpu));
        sched_place_opts o = { .policy = SCHED_SPREAD, .commit = true };
        while (total < target) {
            if (n == cap_n) {
                cap_n *= 2;
                mem = realloc(mem, cap_n * sizeof(*mem));
                cpu = realloc(cpu, cap_n * sizeof(*cpu));
            }
            mem[n] = 16 + below(241);
            cpu[n] = 1 + below(2);
            sched_request r = { .mem_mib = mem[n], .vcpus = cpu[n] };
            sched_decision d;
            if (sched_place(st, &r, 1, &o, &d) != SCHED_OK) {
                sched_decision_clear(&d);
                break;
            }
            sched_decision_clear(&d);
            total += mem[n] + shape->vmm_overhead_mib;
            n++;
        }
        size_t lb = check_lower_bound(shape, mem, cpu, n);
        sum_guests += (double)n;
        double t0 = cpu_now();
        sched_plan p;
        sched_plan_consolidate(st, NULL, &p);
        sum_time += cpu_now() - t0;
        sum_before += (double)p.hosts_used_before;
        sum_after += (double)p.hosts_used_after;
        sum_lb += (double)lb;
        sum_moves += (double)p.n_moves;
        sum_freed += (double)p.n_freed;
        /* Fewest moves that could free as many hosts: the guests on the
         * n_freed emptiest hosts. */
        double *cnt = malloc(nh * sizeof(*cnt));
        for (size_t h = 0; h < nh; h++) {
            uint64_t u = 0;
            sched_state_usage(st, h, SCHED_RES_SLOT, NULL, &u);
            cnt[h] = (double)u;
        }
        qsort(cnt, nh, sizeof(*cnt), cmp_double);
        for (size_t k = 0; k < p.n_freed; k++)
            sum_min_moves += cnt[k];
        free(cnt);
        sched_plan_clear(&p);
        sched_state_free(st);
        free(mem);
        free(cpu);
        free(hosts);
        free(ids);
    }
    printf("consolidation: %zu hosts at %.0f%% memory, spread: %.1f -> %.1f "
           "hosts, %.1f moves per host freed (%.0f guests per host before), "
           "plan %.1f ms CPU\n",
           nh, load * 100, sum_before / trials, sum_after / trials,
           sum_moves / (sum_freed ? sum_freed : 1), sum_guests / (sum_before ? sum_before : 1),
           sum_time / trials * 1e3);
    figure("consolidation, hosts after plan", sum_after / trials, sum_lb / trials, "hosts", 1.10,
           true);
    figure("consolidation, moves vs fewest possible", sum_moves / trials, sum_min_moves / trials,
           "moves", 1.05, false);
}

/* ---- 4. cost ------------------------------------------------------------- */

static void cost(size_t nh, size_t n, sched_policy pol, bool linear, size_t sample,
                 size_t extrapolate, size_t prefill, const char *label)
{
    sched_host shape = { .mem_mib = 24576,
                         .vcpus = 16,
                         .reserved_mem_mib = 1024,
                         .vmm_overhead_mib = 12,
                         .cpu_overcommit = 16.0,
                         .slots = 1024 };
    char *ids;
    sched_host *hosts = make_hosts(nh, &shape, &ids);
    sched_fleet f = { hosts, nh, NULL, 0, false };
    sched_state *st;
    sched_state_new(&f, &st, NULL);
    double *lat = malloc(n * sizeof(*lat));
    /* churned fleets: every host partly used, by a spread placement */
    sched_place_opts pre = { .policy = SCHED_SPREAD, .commit = true };
    for (size_t i = 0; i < prefill; i++) {
        sched_request r = { .mem_mib = 16 + below(241), .vcpus = 1 + below(2) };
        sched_decision d;
        sched_place(st, &r, 1, &pre, &d);
        sched_decision_clear(&d);
    }
    sched_place_opts o = { .policy = pol, .commit = true, .no_index = linear };
    double t0 = now(), c0 = cpu_now();
    size_t timed = 0;
    for (size_t i = 0; i < n; i++) {
        sched_request r = { .mem_mib = 16 + below(241), .vcpus = 1 + below(2) };
        sched_decision d;
        bool measure = linear ? i % (n / sample) == 0 : true;
        o.no_index = linear && measure;
        double a = now();
        sched_status rc = sched_place(st, &r, 1, &o, &d);
        double b = now();
        if (rc != SCHED_OK) {
            fprintf(stderr, "cost: placement %zu failed: %s\n", i, d.message);
            exit(2);
        }
        sched_decision_clear(&d);
        if (measure)
            lat[timed++] = b - a;
    }
    double total = now() - t0, total_cpu = cpu_now() - c0;
    qsort(lat, timed, sizeof(*lat), cmp_double);
    double p50 = lat[timed / 2], p99 = lat[timed * 99 / 100];
    if (!linear) {
        printf("cost %s: %zu placements onto %zu hosts in %.3f s CPU (%.3f s "
               "wall), p50 %.2f us, p99 %.2f us per decision (wall), %zu "
               "hosts in use\n",
               label, n, nh, total_cpu, total, p50 * 1e6, p99 * 1e6, hosts_in_use(st));
        char name[96];
        snprintf(name, sizeof(name), "cost %s, %zu placements (s CPU)", label, n);
        figure(name, total_cpu, 2.0, "s", 1.0, false);
    } else {
        printf("cost %s (linear scan, %zu sampled decisions): p50 %.2f us, "
               "p99 %.2f us per decision -> %.2f s for %zu placements\n",
               label, timed, p50 * 1e6, p99 * 1e6, p50 * (double)extrapolate, extrapolate);
    }
    free(lat);
    sched_state_free(st);
    free(hosts);
    free(ids);
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int trials = quick ? 2 : 5;

    /* 24 GiB hosts, 1 GiB reserved, 12 MiB QEMU per guest, 16 CPUs at 16x:
     * memory binds first (about 159 guests), vCPUs close behind (170). */
    sched_host mem_bound = { .mem_mib = 24576,
                             .vcpus = 16,
                             .reserved_mem_mib = 1024,
                             .vmm_overhead_mib = 12,
                             .cpu_overcommit = 16.0 };
    /* same memory, 16 CPUs at 8x: vCPUs bind (85 guests) */
    sched_host cpu_bound = mem_bound;
    cpu_bound.cpu_overcommit = 8.0;
    /* both bind together: 236 vCPUs for ~159 guests of 1.5 vCPUs */
    sched_host balanced = mem_bound;
    balanced.cpu_overcommit = 14.75;

    printf("shoal scheduler benchmark%s\n", quick ? " (quick)" : "");
    packing("mem-bound 24GiB/256vCPU, 5000 guests", &mem_bound, 5000, trials);
    packing("cpu-bound 24GiB/128vCPU, 5000 guests", &cpu_bound, 5000, trials);
    packing("balanced 24GiB/236vCPU, 5000 guests", &balanced, 5000, trials);
    packing("mem-bound, 500 guests", &mem_bound, 500, trials * 4);
    optimum(quick ? 100 : 500);
    consolidation(&mem_bound, quick ? 100 : 200, 0.35, trials);
    consolidation(&balanced, quick ? 100 : 200, 0.6, trials);
    if (!quick)
        consolidation(&mem_bound, 2000, 0.35, 1);
    size_t nh = 10000, n = quick ? 20000 : 100000;
    cost(nh, n, SCHED_BINPACK, false, 0, 0, 0, "binpack");
    cost(nh, n, SCHED_SPREAD, false, 0, 0, 0, "spread");
    cost(nh, n, SCHED_BINPACK, false, 0, 0, 3 * nh + 7, "binpack, hosts ~2-3% used");
    cost(nh, n / 10, SCHED_BINPACK, true, quick ? 100 : 500, n, 0, "binpack");
    return g_fail ? 1 : 0;
}
