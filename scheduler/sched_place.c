/* sched_place.c - batch placement: all replicas or none, largest first. */
#include "sched_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void name_of(const sched_request *r, size_t i, char *buf, size_t len)
{
    if (r->name != NULL && r->name[0] != '\0')
        snprintf(buf, len, "%s", r->name);
    else
        snprintf(buf, len, "request %zu", i);
}

static sched_status validate(const sched_state *st, const sched_request *reqs, size_t n_reqs,
                             size_t *n_units, sched_error *err)
{
    if (st == NULL)
        return sched_fail(err, SCHED_EINVAL, "state is NULL");
    if (n_reqs > 0 && reqs == NULL)
        return sched_fail(err, SCHED_EINVAL, "requests is NULL");
    size_t total = 0;
    for (size_t i = 0; i < n_reqs; i++) {
        const sched_request *r = &reqs[i];
        char what[SCHED_ID_MAX + 32];
        name_of(r, i, what, sizeof(what));
        if (r->name != NULL && strlen(r->name) > SCHED_ID_MAX)
            return sched_fail(err, SCHED_EINVAL, "request %zu: name longer than %d", i,
                              SCHED_ID_MAX);
        sched_status rc = sched_check_labels(r->labels, r->n_labels, what, err);
        if (rc == SCHED_OK)
            rc = sched_check_rules(r->rules, r->n_rules, what, err);
        if (rc != SCHED_OK)
            return rc;
        if (r->mem_mib > SCHED_MEM_MAX)
            return sched_fail(err, SCHED_EINVAL, "%s: mem_mib %llu out of range", what,
                              (unsigned long long)r->mem_mib);
        uint32_t count = r->count ? r->count : 1;
        if (r->ids != NULL)
            for (uint32_t k = 0; k < count; k++)
                if (!sched_id_ok(r->ids[k]))
                    return sched_fail(err, SCHED_EINVAL, "%s: ids[%u] is empty or too long", what,
                                      k);
        total += count;
        if (total > SCHED_BATCH_MAX)
            return sched_fail(err, SCHED_EINVAL, "batch of more than %d replicas", SCHED_BATCH_MAX);
    }
    *n_units = total;
    return SCHED_OK;
}

static int cmp_units(const void *a, const void *b)
{
    const sched_unit *x = *(const sched_unit *const *)a;
    const sched_unit *y = *(const sched_unit *const *)b;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    if (x->request != y->request)
        return x->request < y->request ? -1 : 1;
    return x->replica < y->replica ? -1 : x->replica > y->replica;
}

static double balance_of(const sched_state *st, const sched_unit *u)
{
    return (double)u->vcpus / st->mean_cap[SCHED_RES_VCPU] -
           (double)u->mem / st->mean_cap[SCHED_RES_MEM];
}

static int cmp_balance(const void *a, const void *b, void *ctx)
{
    const sched_state *st = ctx;
    const sched_unit *x = *(const sched_unit *const *)a;
    const sched_unit *y = *(const sched_unit *const *)b;
    double bx = balance_of(st, x), by = balance_of(st, y);
    if (bx != by)
        return bx > by ? -1 : 1;
    return cmp_units(a, b);
}

/* Tiny replicas (under SCHED_TINY_SHARE of a mean host in every resource)
 * come after the others; their order barely matters for fitting, but
 * placing them by size would put the vCPU-heavy ones on some hosts and the
 * memory-heavy ones on others, stranding the other resource on both. So
 * they alternate: most vCPU-heavy, most memory-heavy, next of each, ... */
#define SCHED_TINY_SHARE (1.0 / 16)

static sched_status mix_tiny(const sched_state *st, sched_unit **order, size_t n)
{
    size_t t = 0;
    while (t < n && order[t]->size >= SCHED_TINY_SHARE)
        t++;
    size_t m = n - t;
    if (m < 3)
        return SCHED_OK;
    sched_unit **tmp = malloc(m * sizeof(*tmp));
    if (tmp == NULL)
        return SCHED_ENOMEM;
    memcpy(tmp, order + t, m * sizeof(*tmp));
    qsort_r(tmp, m, sizeof(*tmp), cmp_balance, (void *)st);
    for (size_t i = 0, lo = 0, hi = m; i < m; i++)
        order[t + i] = i % 2 == 0 ? tmp[lo++] : tmp[--hi];
    free(tmp);
    return SCHED_OK;
}

static sched_status record_step(const sched_state *st, const sched_unit *u, size_t chosen,
                                sched_policy pol, sched_decision *d)
{
    sched_step *s = &d->steps[d->n_steps];
    memset(s, 0, sizeof(*s));
    s->request = u->request;
    s->replica = u->replica;
    snprintf(s->request_name, sizeof(s->request_name), "%s", u->name);
    s->hosts = calloc(st->n_hosts ? st->n_hosts : 1, sizeof(*s->hosts));
    if (s->hosts == NULL)
        return SCHED_ENOMEM;
    s->n_hosts = st->n_hosts;
    d->n_steps++;
    for (size_t h = 0; h < st->n_hosts; h++) {
        sched_eval e = sched_eval_host(st, u, h, pol);
        sched_host_verdict *v = &s->hosts[h];
        v->host = h;
        v->host_id = st->hosts[h].id;
        v->verdict = h == chosen ? SCHED_CHOSEN : e.ok ? SCHED_FEASIBLE : SCHED_REJECTED;
        v->why = e.ok ? SCHED_WHY_FITS : e.why;
        v->score = e.score;
        sched_verdict_text(st, u, h, &e, v->reason, sizeof(v->reason));
    }
    return SCHED_OK;
}

static sched_status commit(sched_state *st, const sched_request *reqs, sched_unit *units,
                           size_t n_units, size_t *inst_of)
{
    /* The pushed instances still point at the caller's labels and rules;
     * copy them, and give each an id. Instances were pushed in placement
     * order; inst_of maps unit -> instance. */
    for (size_t k = 0; k < n_units; k++) {
        sched_unit *u = &units[k];
        sched_inst_rt *in = &st->insts[inst_of[k]];
        const sched_request *r = &reqs[u->request];
        char idbuf[SCHED_ID_MAX + 32];
        if (r->ids != NULL)
            snprintf(idbuf, sizeof(idbuf), "%s", r->ids[u->replica]);
        else
            snprintf(idbuf, sizeof(idbuf), "%s-%u", u->name, u->replica);
        in->id = sched_arena_strdup(&st->arena, idbuf);
        in->labels = sched_copy_labels(&st->arena, r->labels, r->n_labels);
        in->rules = sched_copy_rules(&st->arena, r->rules, r->n_rules);
        if (in->id == NULL || (r->n_labels && in->labels == NULL) ||
            (r->n_rules && in->rules == NULL))
            return SCHED_ENOMEM;
    }
    return SCHED_OK;
}

sched_status sched_place(sched_state *st, const sched_request *reqs, size_t n_reqs,
                         const sched_place_opts *opts, sched_decision *d)
{
    if (d == NULL)
        return SCHED_EINVAL;
    memset(d, 0, sizeof(*d));
    d->failed_request = SCHED_NONE;
    d->largest_host = SCHED_NONE;
    sched_place_opts defaults = { 0 };
    if (opts == NULL)
        opts = &defaults;
    sched_policy pol = opts->policy == SCHED_SPREAD ? SCHED_SPREAD : SCHED_BINPACK;
    sched_error err = { 0 };
    size_t n_units = 0;
    d->status = validate(st, reqs, n_reqs, &n_units, &err);
    if (d->status != SCHED_OK) {
        snprintf(d->message, sizeof(d->message), "%s", err.message);
        return d->status;
    }

    sched_unit *units = calloc(n_units ? n_units : 1, sizeof(*units));
    sched_unit **order = calloc(n_units ? n_units : 1, sizeof(*order));
    size_t *host_of = calloc(n_units ? n_units : 1, sizeof(*host_of));
    size_t *inst_of = calloc(n_units ? n_units : 1, sizeof(*inst_of));
    char(*names)[SCHED_ID_MAX + 24] = calloc(n_reqs ? n_reqs : 1, sizeof(*names));
    size_t pushed = 0;
    sched_status rc = SCHED_OK;
    if (units == NULL || order == NULL || host_of == NULL || inst_of == NULL || names == NULL) {
        rc = SCHED_ENOMEM;
        goto out;
    }
    if (opts->explain) {
        d->steps = calloc(n_reqs + 1, sizeof(*d->steps));
        if (d->steps == NULL) {
            rc = SCHED_ENOMEM;
            goto out;
        }
    }

    size_t k = 0;
    for (size_t i = 0; i < n_reqs; i++) {
        const sched_request *r = &reqs[i];
        name_of(r, i, names[i], sizeof(names[i]));
        uint32_t count = r->count ? r->count : 1;
        for (uint32_t j = 0; j < count; j++, k++) {
            sched_unit *u = &units[k];
            u->name = names[i];
            u->request = i;
            u->replica = j;
            u->count = count;
            u->mem = r->mem_mib;
            u->vcpus = r->vcpus;
            u->labels = r->labels;
            u->n_labels = r->n_labels;
            u->rules = r->rules;
            u->n_rules = r->n_rules;
            u->self = SCHED_NONE;
            u->min_soft = -1;
            sched_unit_prepare(st, u);
            order[k] = u;
        }
    }
    qsort(order, n_units, sizeof(*order), cmp_units);
    rc = mix_tiny(st, order, n_units);
    if (rc != SCHED_OK)
        goto out;

    sched_unit *failed = NULL;
    for (k = 0; k < n_units; k++) {
        sched_unit *u = order[k];
        size_t ui = (size_t)(u - units);
        sched_unit_prepare(st, u); /* earlier replicas change affinity */
        size_t h = sched_find_host(st, u, pol, !opts->no_index);
        if (opts->explain && (u->replica == 0 || (h == SCHED_NONE && failed == NULL))) {
            rc = record_step(st, u, h, pol, d);
            if (rc != SCHED_OK)
                goto out;
        }
        if (h == SCHED_NONE) {
            d->unplaced++;
            if (failed == NULL) {
                failed = u;
                d->failed_request = u->request;
                d->failed_replica = u->replica;
                char why[SCHED_MSG_MAX];
                d->status =
                    sched_explain_failure(st, u, &d->short_resource, &d->short_by, &d->largest_host,
                                          &d->largest_free, why, sizeof(why));
                sched_msg(d->message, sizeof(d->message), "'%s' replica %u/%u: %s", u->name,
                          u->replica + 1, u->count, why);
            }
            host_of[ui] = SCHED_NONE;
            continue;
        }
        sched_inst_rt proto = {
            .id = "(an earlier replica of this batch)",
            .mem = u->mem,
            .vcpus = u->vcpus,
            .labels = u->labels,
            .n_labels = u->n_labels,
            .rules = u->rules,
            .n_rules = u->n_rules,
        };
        rc = sched_inst_push(st, &proto, h, &inst_of[ui]);
        if (rc != SCHED_OK)
            goto out;
        pushed++;
        host_of[ui] = h;
    }

    if (failed != NULL) {
        rc = d->status;
        if (d->unplaced > 1 && strlen(d->message) + 64 < sizeof(d->message)) {
            size_t n = strlen(d->message);
            snprintf(d->message + n, sizeof(d->message) - n,
                     "; %u of %zu replicas could not be placed, none was", d->unplaced, n_units);
        }
        goto out;
    }
    if (opts->commit) {
        rc = commit(st, reqs, units, n_units, inst_of);
        if (rc != SCHED_OK)
            goto out;
        pushed = 0; /* keep them */
    }
    d->assignments = calloc(n_units ? n_units : 1, sizeof(*d->assignments));
    if (d->assignments == NULL) {
        rc = SCHED_ENOMEM;
        goto out;
    }
    d->n_assignments = n_units;
    for (k = 0; k < n_units; k++) {
        sched_assignment *a = &d->assignments[k];
        a->request = units[k].request;
        a->replica = units[k].replica;
        a->host = host_of[k];
        a->host_id = st->hosts[a->host].id;
        a->instance = opts->commit ? inst_of[k] : SCHED_NONE;
    }
    if (n_units == 1)
        snprintf(d->message, sizeof(d->message), "'%s' replica 1/1 -> host '%s' (%s)",
                 units[0].name, d->assignments[0].host_id,
                 pol == SCHED_SPREAD ? "spread: emptiest host that fits"
                                     : "binpack: fullest host that fits");
    else
        snprintf(d->message, sizeof(d->message), "placed %zu replicas of %zu requests (%s)",
                 n_units, n_reqs, pol == SCHED_SPREAD ? "spread" : "binpack");
    rc = SCHED_OK;

out:
    /* Undo in reverse: each popped instance is the last on its host. */
    while (pushed > 0) {
        sched_inst_pop(st);
        pushed--;
    }
    if (rc == SCHED_ENOMEM) {
        free(d->assignments);
        d->assignments = NULL;
        d->n_assignments = 0;
        snprintf(d->message, sizeof(d->message), "out of memory");
    }
    d->status = rc;
    free(units);
    free(order);
    free(host_of);
    free(inst_of);
    free(names);
    return rc;
}

void sched_decision_clear(sched_decision *d)
{
    if (d == NULL)
        return;
    free(d->assignments);
    for (size_t i = 0; i < d->n_steps; i++)
        free(d->steps[i].hosts);
    free(d->steps);
    memset(d, 0, sizeof(*d));
    d->failed_request = SCHED_NONE;
    d->largest_host = SCHED_NONE;
}
