/* sched_eval.c - judging one host for one guest, finding the best host, and
 * explaining in words why a host was or was not chosen. */
#include "sched_internal.h"

#include <stdio.h>
#include <string.h>

typedef unsigned long long ull;

static bool resident_match(const sched_state *st, const sched_host_rt *h, size_t self,
                           const char *key, const char *value, size_t *who)
{
    for (uint32_t k = 0; k < h->n_res; k++) {
        size_t i = h->res[k];
        if (i == self)
            continue;
        const sched_inst_rt *in = &st->insts[i];
        if (sched_label_match(in->labels, in->n_labels, key, value)) {
            if (who != NULL)
                *who = i;
            return true;
        }
    }
    return false;
}

static uint32_t rule_weight(const sched_rule *r)
{
    return r->weight ? r->weight : 1;
}

void sched_unit_prepare(const sched_state *st, sched_unit *u)
{
    u->vacuous = 0;
    u->has_soft = false;
    for (size_t i = 0; i < u->n_rules; i++) {
        const sched_rule *r = &u->rules[i];
        if (r->soft) {
            u->has_soft = true;
            continue;
        }
        if (r->kind != SCHED_RULE_AFFINITY ||
            !sched_label_match(u->labels, u->n_labels, r->key, r->value))
            continue;
        bool other = false;
        for (size_t k = 0; k < st->n_insts && !other; k++) {
            const sched_inst_rt *in = &st->insts[k];
            other = k != u->self && in->host != SCHED_NONE &&
                    sched_label_match(in->labels, in->n_labels, r->key, r->value);
        }
        if (!other)
            u->vacuous |= 1u << i;
    }
    /* A lone self-affine instance (its hard AFFINITY met only because no
     * companion exists yet) needs the next companion on its own host. */
    u->need_host = SCHED_NONE;
    u->need_by = SCHED_NONE;
    for (size_t a = 0; u->self == SCHED_NONE && u->n_labels > 0 && a < st->n_aff; a++) {
        size_t ri = st->aff[a];
        const sched_inst_rt *r = &st->insts[ri];
        if (r->host == SCHED_NONE)
            continue;
        for (size_t j = 0; j < r->n_rules; j++) {
            const sched_rule *ru = &r->rules[j];
            if (ru->soft || ru->kind != SCHED_RULE_AFFINITY ||
                !sched_label_match(u->labels, u->n_labels, ru->key, ru->value) ||
                !sched_label_match(r->labels, r->n_labels, ru->key, ru->value))
                continue;
            bool other = false;
            for (size_t k = 0; k < st->n_insts && !other; k++)
                other = k != ri && st->insts[k].host != SCHED_NONE &&
                        sched_label_match(st->insts[k].labels, st->insts[k].n_labels, ru->key,
                                          ru->value);
            if (other)
                continue;
            if (u->need_host == SCHED_NONE) {
                u->need_host = r->host;
                u->need_by = ri;
            } else if (u->need_host != r->host) {
                u->need_host = SCHED_NEED_NOWHERE;
            }
        }
    }
    double s = 0;
    double share[SCHED_RES__COUNT] = { (double)u->mem, (double)u->vcpus, 1.0 };
    for (int r = 0; r < SCHED_RES__COUNT; r++) {
        double x = share[r] / st->mean_cap[r];
        if (x > s)
            s = x;
    }
    u->size = s;
}

static sched_why capacity_why(const sched_host_rt *h, const sched_unit *u)
{
    if (h->used[SCHED_RES_MEM] + u->mem + h->overhead > h->cap[SCHED_RES_MEM])
        return SCHED_WHY_MEM;
    if (h->used[SCHED_RES_VCPU] + u->vcpus > h->cap[SCHED_RES_VCPU])
        return SCHED_WHY_VCPU;
    if (h->used[SCHED_RES_SLOT] + 1 > h->cap[SCHED_RES_SLOT])
        return SCHED_WHY_SLOT;
    return SCHED_WHY_FITS;
}

static sched_eval reject(sched_eval e, sched_why why, size_t rule)
{
    e.ok = false;
    e.why = why;
    e.rule = rule;
    e.score = -1;
    return e;
}

/* full=false stops at the first reason (capacity first, it is cheap);
 * full=true checks rules before capacity so the reported reason is the
 * more fundamental one. */
static sched_eval eval(const sched_state *st, const sched_unit *u, size_t hi, sched_policy pol,
                       bool full)
{
    const sched_host_rt *h = &st->hosts[hi];
    sched_eval e = { .ok = false, .why = SCHED_WHY_FITS, .rule = SCHED_NONE };
    if (h->blocked > 0 || (u->self != SCHED_NONE && st->insts[u->self].host == hi))
        return reject(e, SCHED_WHY_EXCLUDED, SCHED_NONE);
    if (h->cordoned)
        return reject(e, SCHED_WHY_CORDONED, SCHED_NONE);
    sched_why cap = capacity_why(h, u);
    if (!full && cap != SCHED_WHY_FITS)
        return reject(e, cap, SCHED_NONE);

    for (size_t i = 0; i < u->n_rules; i++) {
        const sched_rule *r = &u->rules[i];
        bool m;
        switch (r->kind) {
        case SCHED_RULE_HOST_AFFINITY:
            m = sched_label_match(h->labels, h->n_labels, r->key, r->value);
            if (!r->soft && !m)
                return reject(e, SCHED_WHY_HOST_AFFINITY, i);
            if (r->soft && m)
                e.soft += rule_weight(r);
            break;
        case SCHED_RULE_HOST_ANTI_AFFINITY:
            m = sched_label_match(h->labels, h->n_labels, r->key, r->value);
            if (!r->soft && m)
                return reject(e, SCHED_WHY_HOST_ANTI_AFFINITY, i);
            if (r->soft && !m)
                e.soft += rule_weight(r);
            break;
        case SCHED_RULE_AFFINITY:
            m = resident_match(st, h, u->self, r->key, r->value, NULL);
            if (!r->soft && !m && !(u->vacuous & (1u << i)))
                return reject(e, SCHED_WHY_AFFINITY, i);
            if (r->soft && m)
                e.soft += rule_weight(r);
            break;
        case SCHED_RULE_ANTI_AFFINITY:
            m = resident_match(st, h, u->self, r->key, r->value, NULL);
            if (!r->soft && m)
                return reject(e, SCHED_WHY_ANTI_AFFINITY, i);
            if (r->soft && !m)
                e.soft += rule_weight(r);
            break;
        }
    }
    /* Hard anti-affinity of residents binds the newcomer too. */
    if (h->n_ruled > 0 && u->n_labels > 0) {
        for (uint32_t k = 0; k < h->n_res; k++) {
            size_t i = h->res[k];
            const sched_inst_rt *in = &st->insts[i];
            if (i == u->self || !in->ruled)
                continue;
            for (size_t j = 0; j < in->n_rules; j++) {
                const sched_rule *r = &in->rules[j];
                if (!r->soft && r->kind == SCHED_RULE_ANTI_AFFINITY &&
                    sched_label_match(u->labels, u->n_labels, r->key, r->value))
                    return reject(e, SCHED_WHY_PEER_RULE, i);
            }
        }
    }
    if (u->need_host != SCHED_NONE && u->need_host != hi)
        return reject(e, SCHED_WHY_PEER_AFFINITY, u->need_by);
    if (cap != SCHED_WHY_FITS)
        return reject(e, cap, SCHED_NONE);
    if (u->min_soft >= 0 && e.soft < u->min_soft)
        return reject(e, SCHED_WHY_PREFERENCE, SCHED_NONE);
    int64_t util = sched_host_util(h);
    e.ok = true;
    e.score = e.soft * SCHED_SOFT_UNIT + (pol == SCHED_SPREAD ? 2 * SCHED_UTIL_CLAMP - util : util);
    return e;
}

sched_eval sched_eval_host(const sched_state *st, const sched_unit *u, size_t host,
                           sched_policy pol)
{
    return eval(st, u, host, pol, true);
}

/* Can instance i leave its host without breaking a hard AFFINITY of an
 * instance that stays? (Its companions' rules name labels it carries.) */
bool sched_departure_ok(const sched_state *st, size_t i)
{
    const sched_inst_rt *x = &st->insts[i];
    const sched_host_rt *h = &st->hosts[x->host];
    if (h->n_ruled == 0 || x->n_labels == 0)
        return true;
    for (uint32_t k = 0; k < h->n_res; k++) {
        size_t ri = h->res[k];
        const sched_inst_rt *r = &st->insts[ri];
        if (ri == i || !r->ruled)
            continue;
        for (size_t j = 0; j < r->n_rules; j++) {
            const sched_rule *ru = &r->rules[j];
            if (ru->soft || ru->kind != SCHED_RULE_AFFINITY ||
                !sched_label_match(x->labels, x->n_labels, ru->key, ru->value))
                continue;
            /* x satisfies it now; someone else here must as well. */
            bool other = false;
            for (uint32_t m = 0; m < h->n_res && !other; m++) {
                size_t oi = h->res[m];
                other = oi != i && oi != ri &&
                        sched_label_match(st->insts[oi].labels, st->insts[oi].n_labels, ru->key,
                                          ru->value);
            }
            if (!other)
                return false;
        }
    }
    return true;
}

static size_t find_linear(const sched_state *st, const sched_unit *u, sched_policy pol)
{
    size_t best = SCHED_NONE;
    int64_t best_score = -1;
    for (size_t h = 0; h < st->n_hosts; h++) {
        sched_eval e = eval(st, u, h, pol, false);
        if (e.ok && e.score > best_score) {
            best = h;
            best_score = e.score;
        }
    }
    return best;
}

#define FIND_RETRIES 64

/* Best host for the unit, or SCHED_NONE. With the index: the best host by
 * capacity and utilisation, then its rules are checked; a host that fails
 * them is hidden and the search repeated. Gives the same answer as the
 * linear scan as long as the unit has no soft rules (they change scores). */
size_t sched_find_host(sched_state *st, const sched_unit *u, sched_policy pol, bool use_index)
{
    if (u->need_host == SCHED_NEED_NOWHERE)
        return SCHED_NONE;
    if (u->need_host != SCHED_NONE)
        return eval(st, u, u->need_host, pol, false).ok ? u->need_host : SCHED_NONE;
    if (!use_index || u->has_soft || u->min_soft > 0)
        return find_linear(st, u, pol);
    size_t hidden[FIND_RETRIES];
    size_t n_hidden = 0;
    size_t found = SCHED_NONE;
    bool fallback = false;
    for (;;) {
        size_t h = sched_index_best(st, u, pol);
        if (h == SCHED_NONE)
            break;
        sched_eval e = eval(st, u, h, pol, false);
        if (e.ok) {
            found = h;
            break;
        }
        if (n_hidden == FIND_RETRIES) {
            fallback = true;
            break;
        }
        hidden[n_hidden++] = h;
        st->hosts[h].blocked++;
        sched_index_update(st, h);
    }
    for (size_t k = 0; k < n_hidden; k++) {
        st->hosts[hidden[k]].blocked--;
        sched_index_update(st, hidden[k]);
    }
    return fallback ? find_linear(st, u, pol) : found;
}

/* A CPU figure for messages: "2 vCPUs", or "0.004 CPU" in milli units. */
static void cpu_text(const sched_state *st, uint64_t n, char *buf, size_t len)
{
    if (st->cpu_milli)
        snprintf(buf, len, "%llu.%03llu CPU", (ull)(n / 1000), (ull)(n % 1000));
    else
        snprintf(buf, len, "%llu vCPUs", (ull)n);
}

/* ---- words -------------------------------------------------------------- */

void sched_rule_text(const sched_rule *r, char *buf, size_t len)
{
    static const char *kinds[] = { "host affinity", "host anti-affinity", "affinity",
                                   "anti-affinity" };
    const char *kind = (unsigned)r->kind <= SCHED_RULE_ANTI_AFFINITY ? kinds[r->kind] : "rule";
    if (r->value != NULL)
        snprintf(buf, len, "%s %s %s=%s", r->soft ? "soft" : "hard", kind, r->key, r->value);
    else
        snprintf(buf, len, "%s %s %s=*", r->soft ? "soft" : "hard", kind, r->key);
}

static void selector_text(const sched_rule *r, char *buf, size_t len)
{
    snprintf(buf, len, "%s=%s", r->key, r->value != NULL ? r->value : "*");
}

static int64_t clamp0(int64_t v)
{
    return v < 0 ? 0 : v;
}

void sched_verdict_text(const sched_state *st, const sched_unit *u, size_t hi, const sched_eval *e,
                        char *buf, size_t len)
{
    const sched_host_rt *h = &st->hosts[hi];
    char sel[2 * SCHED_ID_MAX + 8] = "";
    const sched_rule *r = e->rule != SCHED_NONE && e->rule < u->n_rules &&
                                  e->why != SCHED_WHY_PEER_RULE && e->why != SCHED_WHY_PEER_AFFINITY
                              ? &u->rules[e->rule]
                              : NULL;
    if (r != NULL)
        selector_text(r, sel, sizeof(sel));
    size_t who = SCHED_NONE;
    if (e->ok) {
        int64_t util = sched_host_util(h);
        snprintf(buf, len,
                 "fits; most used resource at %.1f%%, soft weight met %lld, "
                 "score %lld",
                 (double)util * 100.0 / (double)SCHED_UTIL_ONE, (long long)e->soft,
                 (long long)e->score);
        return;
    }
    switch (e->why) {
    case SCHED_WHY_FITS: snprintf(buf, len, "fits"); break;
    case SCHED_WHY_CORDONED: snprintf(buf, len, "cordoned: takes no new guests"); break;
    case SCHED_WHY_EXCLUDED:
        snprintf(buf, len, "excluded: the host being emptied or not a target");
        break;
    case SCHED_WHY_MEM:
        if (h->overhead == 0) {
            snprintf(
                buf, len, "needs %llu MiB memory, %lld MiB free of %llu", (ull)u->mem,
                (long long)clamp0((int64_t)h->cap[SCHED_RES_MEM] - (int64_t)h->used[SCHED_RES_MEM]),
                (ull)h->cap[SCHED_RES_MEM]);
            break;
        }
        snprintf(
            buf, len,
            "needs %llu MiB memory (%llu + %llu VMM), %lld MiB free of "
            "%llu",
            (ull)(u->mem + h->overhead), (ull)u->mem, (ull)h->overhead,
            (long long)clamp0((int64_t)h->cap[SCHED_RES_MEM] - (int64_t)h->used[SCHED_RES_MEM]),
            (ull)h->cap[SCHED_RES_MEM]);
        break;
    case SCHED_WHY_VCPU: {
        char need[32], avail[32], cap[32];
        cpu_text(st, u->vcpus, need, sizeof need);
        cpu_text(st, (uint64_t)clamp0(sched_host_free(h, SCHED_RES_VCPU)), avail, sizeof avail);
        cpu_text(st, h->cap[SCHED_RES_VCPU], cap, sizeof cap);
        snprintf(buf, len, "needs %s, %s free of %s", need, avail, cap);
        break;
    }
    case SCHED_WHY_SLOT:
        snprintf(buf, len, "all %llu guest slots taken", (ull)h->cap[SCHED_RES_SLOT]);
        break;
    case SCHED_WHY_HOST_AFFINITY:
        snprintf(buf, len, "lacks label %s (hard host affinity)", sel);
        break;
    case SCHED_WHY_HOST_ANTI_AFFINITY:
        snprintf(buf, len, "carries label %s (hard host anti-affinity)", sel);
        break;
    case SCHED_WHY_AFFINITY:
        snprintf(buf, len, "no instance with %s here (hard affinity)", sel);
        break;
    case SCHED_WHY_ANTI_AFFINITY:
        if (r != NULL)
            resident_match(st, h, u->self, r->key, r->value, &who);
        snprintf(buf, len, "instance '%s' with %s is here (hard anti-affinity)",
                 who != SCHED_NONE ? st->insts[who].id : "?", sel);
        break;
    case SCHED_WHY_PEER_RULE: {
        const sched_inst_rt *in = e->rule < st->n_insts ? &st->insts[e->rule] : NULL;
        const sched_rule *pr = NULL;
        for (size_t j = 0; in != NULL && j < in->n_rules && pr == NULL; j++)
            if (!in->rules[j].soft && in->rules[j].kind == SCHED_RULE_ANTI_AFFINITY &&
                sched_label_match(u->labels, u->n_labels, in->rules[j].key, in->rules[j].value))
                pr = &in->rules[j];
        if (pr != NULL)
            selector_text(pr, sel, sizeof(sel));
        snprintf(buf, len, "instance '%s' here forbids %s (its hard anti-affinity)",
                 in != NULL && in->id != NULL ? in->id : "?", sel);
        break;
    }
    case SCHED_WHY_PEER_AFFINITY: {
        const sched_inst_rt *in = e->rule < st->n_insts ? &st->insts[e->rule] : NULL;
        if (u->need_host == SCHED_NEED_NOWHERE || in == NULL || in->host == SCHED_NONE)
            snprintf(buf, len,
                     "lone instances with a hard affinity to its "
                     "labels wait on two different hosts");
        else
            snprintf(buf, len,
                     "instance '%s' on host '%s' has a hard affinity to "
                     "its labels and no companion yet: it must go there",
                     in->id, st->hosts[in->host].id);
        break;
    }
    case SCHED_WHY_DEPARTURE:
        snprintf(buf, len, "leaving would break a companion's hard affinity");
        break;
    case SCHED_WHY_PREFERENCE:
        snprintf(buf, len, "meets soft weight %lld, less than %lld where it is now",
                 (long long)e->soft, (long long)u->min_soft);
        break;
    }
}

/* ---- why nothing fits --------------------------------------------------- */

/* "512 MiB more memory", "2 more vCPUs" / "0.004 more CPU", "1 more guest slot" */
static void more_text(const sched_state *st, sched_resource r, uint64_t n, char *buf, size_t len)
{
    if (r == SCHED_RES_MEM)
        snprintf(buf, len, "%llu MiB more memory", (ull)n);
    else if (r == SCHED_RES_VCPU && st->cpu_milli)
        snprintf(buf, len, "%llu.%03llu more CPU", (ull)(n / 1000), (ull)(n % 1000));
    else if (r == SCHED_RES_VCPU)
        snprintf(buf, len, "%llu more vCPUs", (ull)n);
    else
        snprintf(buf, len, "%llu more guest slot", (ull)n);
}

sched_status sched_explain_failure(const sched_state *st, const sched_unit *u, sched_resource *res,
                                   uint64_t *short_by, size_t *largest_host, uint64_t *largest_free,
                                   char *msg, size_t len)
{
    size_t by_why[SCHED_WHY_PREFERENCE + 1] = { 0 };
    size_t by_rule[SCHED_RULES_MAX] = { 0 };
    size_t allowed = 0;
    int64_t maxfree[SCHED_RES__COUNT] = { -1, -1, -1 };
    size_t maxhost[SCHED_RES__COUNT] = { SCHED_NONE, SCHED_NONE, SCHED_NONE };
    int64_t need[SCHED_RES__COUNT] = { (int64_t)u->mem, (int64_t)u->vcpus, 1 };
    double closest = 1e300;
    size_t closest_host = SCHED_NONE;
    sched_resource closest_res = SCHED_RES_MEM;

    for (size_t hi = 0; hi < st->n_hosts; hi++) {
        sched_eval e = eval(st, u, hi, SCHED_BINPACK, true);
        if (e.ok)
            continue; /* cannot happen for a unit that found no host */
        by_why[e.why]++;
        if (e.rule != SCHED_NONE && e.why != SCHED_WHY_PEER_RULE &&
            e.why != SCHED_WHY_PEER_AFFINITY && e.rule < SCHED_RULES_MAX)
            by_rule[e.rule]++;
        if (e.why != SCHED_WHY_MEM && e.why != SCHED_WHY_VCPU && e.why != SCHED_WHY_SLOT)
            continue;
        allowed++;
        const sched_host_rt *h = &st->hosts[hi];
        double worst = 0;
        sched_resource worst_r = SCHED_RES_MEM;
        for (int r = 0; r < SCHED_RES__COUNT; r++) {
            int64_t f = clamp0(sched_host_free(h, (sched_resource)r));
            if (f > maxfree[r]) {
                maxfree[r] = f;
                maxhost[r] = hi;
            }
            double d = (double)(need[r] - f) / st->mean_cap[r];
            if (d > worst) {
                worst = d;
                worst_r = (sched_resource)r;
            }
        }
        if (worst < closest) {
            closest = worst;
            closest_host = hi;
            closest_res = worst_r;
        }
    }

    size_t n = 0;
    sched_status status;
    if (st->n_hosts == 0) {
        status = SCHED_ENOSPACE;
        *res = SCHED_RES_MEM;
        *short_by = u->mem;
        *largest_host = SCHED_NONE;
        *largest_free = 0;
        n = (size_t)snprintf(msg, len, "the fleet has no hosts");
        return status;
    }
    if (allowed == 0) {
        status = SCHED_ECONSTRAINT;
        *res = SCHED_RES_MEM;
        *short_by = 0;
        *largest_host = SCHED_NONE;
        *largest_free = 0;
        n = (size_t)snprintf(msg, len, "no host may take it:");
    } else {
        status = SCHED_ENOSPACE;
        /* A resource no allowed host has enough of: the largest shortage
         * (relative to a mean host) is the one to name. */
        double worst = 0;
        int pick = -1;
        for (int r = 0; r < SCHED_RES__COUNT; r++) {
            double d = (double)(need[r] - maxfree[r]) / st->mean_cap[r];
            if (need[r] > maxfree[r] && d > worst) {
                worst = d;
                pick = r;
            }
        }
        if (pick >= 0) {
            sched_resource r = (sched_resource)pick;
            *res = r;
            *short_by = (uint64_t)(need[r] - maxfree[r]);
            *largest_host = maxhost[r];
            *largest_free = (uint64_t)maxfree[r];
            if (r == SCHED_RES_SLOT)
                n = (size_t)snprintf(msg, len,
                                     "need 1 more guest slot: every allowed "
                                     "host has all its slots taken");
            else {
                char more[64], largest[32];
                more_text(st, r, *short_by, more, sizeof(more));
                if (r == SCHED_RES_MEM)
                    snprintf(largest, sizeof largest, "%llu MiB", (ull)*largest_free);
                else
                    cpu_text(st, *largest_free, largest, sizeof largest);
                n = (size_t)snprintf(msg, len, "need %s: largest free block is %s on host '%s'",
                                     more, largest, st->hosts[*largest_host].id);
            }
        } else {
            /* Enough of each, but never on one host at once. */
            const sched_host_rt *h = &st->hosts[closest_host];
            int64_t f = clamp0(sched_host_free(h, closest_res));
            *res = closest_res;
            *short_by = (uint64_t)(need[closest_res] - f);
            *largest_host = closest_host;
            *largest_free = (uint64_t)f;
            char more[64], cpu[32];
            more_text(st, closest_res, *short_by, more, sizeof(more));
            cpu_text(st, u->vcpus, cpu, sizeof cpu);
            n = (size_t)snprintf(msg, len,
                                 "no single host has %llu MiB memory and %s free at "
                                 "once: closest is host '%s', which needs %s",
                                 (ull)u->mem, cpu, h->id, more);
        }
        if (allowed < st->n_hosts && n < len)
            n += (size_t)snprintf(msg + n, len - n, " (other hosts excluded:");
    }
    if (allowed == st->n_hosts || n >= len)
        return status;

    /* Which rule removed how many hosts. */
    static const struct {
        sched_why why;
        const char *text;
    } words[] = {
        { SCHED_WHY_CORDONED, "cordoned" },
        { SCHED_WHY_EXCLUDED, "excluded" },
        { SCHED_WHY_PEER_RULE, "forbidden by a resident's anti-affinity" },
        { SCHED_WHY_PEER_AFFINITY, "not where a lone self-affine instance "
                                   "waits for it" },
        { SCHED_WHY_PREFERENCE, "worse for its soft rules" },
    };
    const char *sep = " ";
    for (size_t k = 0; k < sizeof(words) / sizeof(words[0]) && n < len; k++)
        if (by_why[words[k].why] > 0) {
            n += (size_t)snprintf(msg + n, len - n, "%s%zu %s", sep, by_why[words[k].why],
                                  words[k].text);
            sep = ", ";
        }
    for (size_t i = 0; i < u->n_rules && i < SCHED_RULES_MAX && n < len; i++)
        if (by_rule[i] > 0) {
            char rt[2 * SCHED_ID_MAX + 40];
            sched_rule_text(&u->rules[i], rt, sizeof(rt));
            n += (size_t)snprintf(msg + n, len - n, "%s%zu by %s", sep, by_rule[i], rt);
            sep = ", ";
        }
    if (allowed > 0 && n < len)
        snprintf(msg + n, len - n, ")");
    return status;
}

/* Soft weight the unit meets on a host (its own host included). */
int64_t sched_soft_weight(const sched_state *st, const sched_unit *u, size_t hi)
{
    const sched_host_rt *h = &st->hosts[hi];
    int64_t soft = 0;
    for (size_t i = 0; i < u->n_rules; i++) {
        const sched_rule *r = &u->rules[i];
        if (!r->soft)
            continue;
        bool m;
        switch (r->kind) {
        case SCHED_RULE_HOST_AFFINITY:
        case SCHED_RULE_HOST_ANTI_AFFINITY:
            m = sched_label_match(h->labels, h->n_labels, r->key, r->value);
            break;
        default: m = resident_match(st, h, u->self, r->key, r->value, NULL); break;
        }
        bool want = r->kind == SCHED_RULE_HOST_AFFINITY || r->kind == SCHED_RULE_AFFINITY;
        if (m == want)
            soft += rule_weight(r);
    }
    return soft;
}
