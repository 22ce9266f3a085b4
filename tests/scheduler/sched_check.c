/* sched_check.c - independent checks of scheduler results (see .h). */
#include "sched_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t check_usable(const sched_host *h, sched_resource r)
{
    double ratio;
    uint64_t total, reserved;
    switch (r) {
    case SCHED_RES_MEM:
        total = h->mem_mib;
        reserved = h->reserved_mem_mib;
        ratio = h->mem_overcommit;
        break;
    case SCHED_RES_VCPU:
        total = h->vcpus;
        reserved = h->reserved_vcpus;
        ratio = h->cpu_overcommit;
        break;
    default: return h->slots ? h->slots : UINT64_MAX;
    }
    if (reserved >= total)
        return 0;
    if (ratio == 0.0)
        ratio = 1.0;
    return (uint64_t)floor((double)(total - reserved) * ratio + 1e-9);
}

static bool match(const sched_label *l, size_t n, const char *key, const char *value)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].key, key) == 0 &&
            (value == NULL || strcmp(l[i].value ? l[i].value : "", value) == 0))
            return true;
    return false;
}

bool check_fleet(const sched_host *hosts, size_t n_hosts, const sched_instance *insts,
                 size_t n_insts, char *why, size_t len)
{
    for (size_t h = 0; h < n_hosts; h++) {
        uint64_t mem = 0, cpu = 0, slots = 0;
        for (size_t i = 0; i < n_insts; i++)
            if (insts[i].host == h) {
                mem += insts[i].mem_mib + hosts[h].vmm_overhead_mib;
                cpu += insts[i].vcpus;
                slots++;
            }
        if (mem > check_usable(&hosts[h], SCHED_RES_MEM) ||
            cpu > check_usable(&hosts[h], SCHED_RES_VCPU) ||
            slots > check_usable(&hosts[h], SCHED_RES_SLOT)) {
            typedef unsigned long long ull;
            snprintf(why, len,
                     "host '%s' over capacity: mem %llu/%llu cpu %llu/%llu "
                     "slots %llu",
                     hosts[h].id, (ull)mem, (ull)check_usable(&hosts[h], SCHED_RES_MEM), (ull)cpu,
                     (ull)check_usable(&hosts[h], SCHED_RES_VCPU), (ull)slots);
            return false;
        }
    }
    for (size_t i = 0; i < n_insts; i++) {
        const sched_instance *x = &insts[i];
        if (x->host == SCHED_NONE)
            continue;
        const sched_host *h = &hosts[x->host];
        for (size_t k = 0; k < x->n_rules; k++) {
            const sched_rule *r = &x->rules[k];
            if (r->soft)
                continue;
            bool ok = true;
            bool here = false, anywhere = false;
            switch (r->kind) {
            case SCHED_RULE_HOST_AFFINITY:
                ok = match(h->labels, h->n_labels, r->key, r->value);
                break;
            case SCHED_RULE_HOST_ANTI_AFFINITY:
                ok = !match(h->labels, h->n_labels, r->key, r->value);
                break;
            case SCHED_RULE_AFFINITY:
            case SCHED_RULE_ANTI_AFFINITY:
                for (size_t j = 0; j < n_insts; j++) {
                    if (j == i || insts[j].host == SCHED_NONE ||
                        !match(insts[j].labels, insts[j].n_labels, r->key, r->value))
                        continue;
                    anywhere = true;
                    here |= insts[j].host == x->host;
                }
                if (r->kind == SCHED_RULE_ANTI_AFFINITY)
                    ok = !here;
                else
                    ok = here || (!anywhere && match(x->labels, x->n_labels, r->key, r->value));
                break;
            }
            if (!ok) {
                snprintf(why, len,
                         "instance '%s' on host '%s' breaks hard rule %zu "
                         "(kind %d, %s=%s)",
                         x->id, h->id, k, (int)r->kind, r->key, r->value ? r->value : "*");
                return false;
            }
        }
    }
    return true;
}

bool check_plan(const sched_host *hosts, size_t n_hosts, const sched_instance *insts,
                size_t n_insts, const sched_plan *plan, bool targets_in_use, size_t *hosts_after,
                char *why, size_t len)
{
    sched_instance *cur = malloc((n_insts ? n_insts : 1) * sizeof(*cur));
    size_t *count = calloc(n_hosts ? n_hosts : 1, sizeof(*count));
    bool ok = cur != NULL && count != NULL;
    if (!ok)
        snprintf(why, len, "out of memory");
    if (ok && n_insts)
        memcpy(cur, insts, n_insts * sizeof(*cur));
    for (size_t i = 0; ok && i < n_insts; i++)
        if (cur[i].host != SCHED_NONE)
            count[cur[i].host]++;
    for (size_t m = 0; ok && m < plan->n_moves; m++) {
        const sched_move *mv = &plan->moves[m];
        if (mv->instance >= n_insts || cur[mv->instance].host != mv->from || mv->to >= n_hosts ||
            mv->to == mv->from) {
            snprintf(why, len, "move %zu is inconsistent", m);
            ok = false;
            break;
        }
        if (cur[mv->instance].pinned) {
            snprintf(why, len, "move %zu moves pinned instance '%s'", m, cur[mv->instance].id);
            ok = false;
            break;
        }
        if (hosts[mv->to].cordoned) {
            snprintf(why, len, "move %zu goes to cordoned host '%s'", m, hosts[mv->to].id);
            ok = false;
            break;
        }
        if (targets_in_use && count[mv->to] == 0) {
            snprintf(why, len, "move %zu goes to empty host '%s'", m, hosts[mv->to].id);
            ok = false;
            break;
        }
        count[mv->from]--;
        count[mv->to]++;
        cur[mv->instance].host = mv->to;
        char w[256];
        if (!check_fleet(hosts, n_hosts, cur, n_insts, w, sizeof(w))) {
            snprintf(why, len, "after move %zu of %zu: %s", m + 1, plan->n_moves, w);
            ok = false;
        }
    }
    if (ok && hosts_after != NULL) {
        size_t used = 0;
        for (size_t h = 0; h < n_hosts; h++)
            used += count[h] > 0;
        *hosts_after = used;
    }
    for (size_t f = 0; ok && f < plan->n_freed; f++)
        if (count[plan->freed[f]] != 0) {
            snprintf(why, len, "host '%s' reported freed but holds %zu", hosts[plan->freed[f]].id,
                     count[plan->freed[f]]);
            ok = false;
        }
    free(cur);
    free(count);
    return ok;
}

/* ---- exact optimum ------------------------------------------------------ */

typedef struct {
    uint64_t cap[3];
    uint64_t (*item)[3];
    size_t n;
    uint64_t (*load)[3];
    size_t best;
    uint64_t rem[3];
    unsigned long nodes, limit;
    bool gave_up;
} bnb;

static void bnb_go(bnb *b, size_t k, size_t open)
{
    if (b->gave_up || open >= b->best)
        return;
    if (++b->nodes > b->limit) {
        b->gave_up = true;
        return;
    }
    if (k == b->n) {
        b->best = open;
        return;
    }
    /* Bound: bins still needed for what is left beyond the open bins'
     * free room. */
    for (int r = 0; r < 3; r++) {
        uint64_t free_room = 0;
        for (size_t j = 0; j < open; j++)
            free_room += b->cap[r] - b->load[j][r];
        if (b->rem[r] > free_room) {
            uint64_t extra = (b->rem[r] - free_room + b->cap[r] - 1) / b->cap[r];
            if (open + extra >= b->best)
                return;
        }
    }
    const uint64_t *it = b->item[k];
    for (int r = 0; r < 3; r++)
        b->rem[r] -= it[r];
    for (size_t j = 0; j <= open; j++) {
        if (j == open && open + 1 >= b->best)
            break;
        bool same = false; /* skip bins with the same load as an earlier one */
        for (size_t q = 0; q < j && !same; q++)
            same = memcmp(b->load[q], b->load[j], sizeof(b->load[j])) == 0;
        if (same)
            continue;
        bool fits = true;
        for (int r = 0; r < 3; r++)
            fits &= b->load[j][r] + it[r] <= b->cap[r];
        if (!fits)
            continue;
        for (int r = 0; r < 3; r++)
            b->load[j][r] += it[r];
        bnb_go(b, k + 1, j == open ? open + 1 : open);
        for (int r = 0; r < 3; r++)
            b->load[j][r] -= it[r];
    }
    for (int r = 0; r < 3; r++)
        b->rem[r] += it[r];
}

size_t check_optimum(const sched_host *h, const uint64_t *mem, const uint32_t *vcpus, size_t n,
                     unsigned long limit)
{
    bnb b = { 0 };
    b.cap[0] = check_usable(h, SCHED_RES_MEM);
    b.cap[1] = check_usable(h, SCHED_RES_VCPU);
    b.cap[2] = h->slots ? h->slots : n + 1;
    b.n = n;
    b.item = calloc(n + 1, sizeof(*b.item));
    b.load = calloc(n + 1, sizeof(*b.load));
    if (b.item == NULL || b.load == NULL) {
        free(b.item);
        free(b.load);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        b.item[i][0] = mem[i] + h->vmm_overhead_mib;
        b.item[i][1] = vcpus[i];
        b.item[i][2] = 1;
    }
    /* Largest first (by normalised sum) makes the search short. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            double a = (double)b.item[j][0] / b.cap[0] + (double)b.item[j][1] / b.cap[1];
            double c = (double)b.item[j - 1][0] / b.cap[0] + (double)b.item[j - 1][1] / b.cap[1];
            if (a <= c)
                break;
            uint64_t t[3];
            memcpy(t, b.item[j], sizeof(t));
            memcpy(b.item[j], b.item[j - 1], sizeof(t));
            memcpy(b.item[j - 1], t, sizeof(t));
        }
    for (size_t i = 0; i < n; i++)
        for (int r = 0; r < 3; r++)
            b.rem[r] += b.item[i][r];
    b.best = n + 1;
    b.limit = limit;
    bnb_go(&b, 0, 0);
    size_t best = b.gave_up ? 0 : b.best;
    free(b.item);
    free(b.load);
    return best;
}

size_t check_lower_bound(const sched_host *h, const uint64_t *mem, const uint32_t *vcpus, size_t n)
{
    uint64_t sum[3] = { 0, 0, n };
    for (size_t i = 0; i < n; i++) {
        sum[0] += mem[i] + h->vmm_overhead_mib;
        sum[1] += vcpus[i];
    }
    size_t lb = 0;
    for (int r = 0; r < 3; r++) {
        uint64_t cap = check_usable(h, (sched_resource)r);
        if (cap == UINT64_MAX || cap == 0)
            continue;
        size_t need = (size_t)((sum[r] + cap - 1) / cap);
        if (need > lb)
            lb = need;
    }
    return lb;
}
