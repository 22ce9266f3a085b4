/* sched_state.c - the fleet model: hosts, instances, the host index. */
#include "sched_internal.h"

#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena -------------------------------------------------------------- */

void *sched_arena_alloc(sched_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    sched_arena_block *b = a->head;
    if (b == NULL || b->size - b->used < n) {
        size_t size = n > 65536 ? n : 65536;
        b = malloc(sizeof(*b) + size);
        if (b == NULL)
            return NULL;
        b->size = size;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

char *sched_arena_strdup(sched_arena *a, const char *s)
{
    if (s == NULL)
        s = "";
    size_t n = strlen(s) + 1;
    char *p = sched_arena_alloc(a, n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

void sched_arena_free(sched_arena *a)
{
    sched_arena_block *b = a->head;
    while (b != NULL) {
        sched_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

/* ---- helpers ------------------------------------------------------------ */

sched_status sched_fail(sched_error *err, sched_status code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return code;
}

void sched_msg(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

bool sched_id_ok(const char *s)
{
    return s != NULL && s[0] != '\0' && strlen(s) <= SCHED_ID_MAX;
}

bool sched_label_match(const sched_label *labels, size_t n, const char *key, const char *value)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(labels[i].key, key) != 0)
            continue;
        if (value == NULL)
            return true;
        const char *v = labels[i].value != NULL ? labels[i].value : "";
        if (strcmp(v, value) == 0)
            return true;
    }
    return false;
}

sched_status sched_check_labels(const sched_label *l, size_t n, const char *what, sched_error *err)
{
    if (n > 0 && l == NULL)
        return sched_fail(err, SCHED_EINVAL, "%s: labels is NULL with n_labels %zu", what, n);
    for (size_t i = 0; i < n; i++) {
        if (!sched_id_ok(l[i].key))
            return sched_fail(err, SCHED_EINVAL, "%s: label %zu has an empty or too long key", what,
                              i);
        if (l[i].value != NULL && strlen(l[i].value) > SCHED_ID_MAX)
            return sched_fail(err, SCHED_EINVAL, "%s: label '%s' has a value longer than %d", what,
                              l[i].key, SCHED_ID_MAX);
    }
    return SCHED_OK;
}

sched_status sched_check_rules(const sched_rule *r, size_t n, const char *what, sched_error *err)
{
    if (n > SCHED_RULES_MAX)
        return sched_fail(err, SCHED_EINVAL, "%s: %zu rules, at most %d", what, n, SCHED_RULES_MAX);
    if (n > 0 && r == NULL)
        return sched_fail(err, SCHED_EINVAL, "%s: rules is NULL with n_rules %zu", what, n);
    for (size_t i = 0; i < n; i++) {
        if ((unsigned)r[i].kind > SCHED_RULE_ANTI_AFFINITY)
            return sched_fail(err, SCHED_EINVAL, "%s: rule %zu has unknown kind %d", what, i,
                              (int)r[i].kind);
        if (!sched_id_ok(r[i].key))
            return sched_fail(err, SCHED_EINVAL, "%s: rule %zu has an empty or too long key", what,
                              i);
        if (r[i].value != NULL && strlen(r[i].value) > SCHED_ID_MAX)
            return sched_fail(err, SCHED_EINVAL, "%s: rule %zu value too long", what, i);
        if (r[i].soft && r[i].weight > 1000)
            return sched_fail(err, SCHED_EINVAL, "%s: rule %zu weight %u out of range 1..1000",
                              what, i, r[i].weight);
    }
    return SCHED_OK;
}

sched_label *sched_copy_labels(sched_arena *a, const sched_label *l, size_t n)
{
    if (n == 0)
        return NULL;
    sched_label *out = sched_arena_alloc(a, n * sizeof(*out));
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i].key = sched_arena_strdup(a, l[i].key);
        out[i].value = sched_arena_strdup(a, l[i].value);
        if (out[i].key == NULL || out[i].value == NULL)
            return NULL;
    }
    return out;
}

sched_rule *sched_copy_rules(sched_arena *a, const sched_rule *r, size_t n)
{
    if (n == 0)
        return NULL;
    sched_rule *out = sched_arena_alloc(a, n * sizeof(*out));
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = r[i];
        if (out[i].soft && out[i].weight == 0)
            out[i].weight = 1;
        out[i].key = sched_arena_strdup(a, r[i].key);
        if (out[i].key == NULL)
            return NULL;
        if (r[i].value != NULL) {
            out[i].value = sched_arena_strdup(a, r[i].value);
            if (out[i].value == NULL)
                return NULL;
        }
    }
    return out;
}

static bool rules_affine(const sched_rule *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!r[i].soft && r[i].kind == SCHED_RULE_AFFINITY)
            return true;
    return false;
}

static bool rules_ruled(const sched_rule *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!r[i].soft &&
            (r[i].kind == SCHED_RULE_AFFINITY || r[i].kind == SCHED_RULE_ANTI_AFFINITY))
            return true;
    return false;
}

static uint64_t usable(uint64_t total, uint64_t reserved, double ratio)
{
    if (reserved >= total)
        return 0;
    if (ratio == 0.0)
        ratio = 1.0;
    return (uint64_t)floor((double)(total - reserved) * ratio + 1e-9);
}

/* ---- utilisation and the index ------------------------------------------ */

int64_t sched_host_free(const sched_host_rt *h, sched_resource r)
{
    int64_t f = (int64_t)h->cap[r] - (int64_t)h->used[r];
    if (r == SCHED_RES_MEM)
        f -= (int64_t)h->overhead;
    return f;
}

int64_t sched_host_util(const sched_host_rt *h)
{
    int64_t best = 0;
    for (int r = 0; r < SCHED_RES__COUNT; r++) {
        int64_t u;
        if (h->cap[r] == 0)
            u = SCHED_UTIL_CLAMP;
        else if (h->used[r] >= 2 * h->cap[r])
            u = SCHED_UTIL_CLAMP;
        else if (h->used[r] < ((uint64_t)1 << 43))
            u = (int64_t)((h->used[r] << 20) / h->cap[r]);
        else
            u = (int64_t)((double)h->used[r] * 1048576.0 / (double)h->cap[r]);
        if (u > best)
            best = u;
    }
    return best;
}

/* ---- instances on hosts ------------------------------------------------- */

sched_status sched_inst_attach(sched_state *st, size_t i, size_t host)
{
    sched_inst_rt *in = &st->insts[i];
    sched_host_rt *h = &st->hosts[host];
    if (h->n_res == h->res_cap) {
        uint32_t cap = h->res_cap ? h->res_cap * 2 : 8;
        uint32_t *p = realloc(h->res, cap * sizeof(*p));
        if (p == NULL)
            return SCHED_ENOMEM;
        h->res = p;
        h->res_cap = cap;
    }
    in->host = host;
    in->pos = h->n_res;
    h->res[h->n_res++] = (uint32_t)i;
    h->used[SCHED_RES_MEM] += in->mem + h->overhead;
    h->used[SCHED_RES_VCPU] += in->vcpus;
    h->used[SCHED_RES_SLOT] += 1;
    if (in->ruled)
        h->n_ruled++;
    sched_index_update(st, host);
    return SCHED_OK;
}

void sched_inst_detach(sched_state *st, size_t i)
{
    sched_inst_rt *in = &st->insts[i];
    if (in->host == SCHED_NONE)
        return;
    sched_host_rt *h = &st->hosts[in->host];
    uint32_t last = h->res[h->n_res - 1];
    h->res[in->pos] = last;
    st->insts[last].pos = in->pos;
    h->n_res--;
    h->used[SCHED_RES_MEM] -= in->mem + h->overhead;
    h->used[SCHED_RES_VCPU] -= in->vcpus;
    h->used[SCHED_RES_SLOT] -= 1;
    if (in->ruled)
        h->n_ruled--;
    size_t host = in->host;
    in->host = SCHED_NONE;
    sched_index_update(st, host);
}

sched_status sched_inst_push(sched_state *st, const sched_inst_rt *proto, size_t host,
                             size_t *index)
{
    if (st->n_insts == st->insts_cap) {
        size_t cap = st->insts_cap ? st->insts_cap * 2 : 64;
        sched_inst_rt *p = realloc(st->insts, cap * sizeof(*p));
        if (p == NULL)
            return SCHED_ENOMEM;
        st->insts = p;
        st->insts_cap = cap;
    }
    size_t i = st->n_insts;
    if (rules_affine(proto->rules, proto->n_rules)) {
        if (st->n_aff == st->aff_cap) {
            size_t cap = st->aff_cap ? st->aff_cap * 2 : 16;
            uint32_t *p = realloc(st->aff, cap * sizeof(*p));
            if (p == NULL)
                return SCHED_ENOMEM;
            st->aff = p;
            st->aff_cap = cap;
        }
        st->aff[st->n_aff++] = (uint32_t)i;
    }
    st->insts[i] = *proto;
    st->insts[i].ruled = rules_ruled(proto->rules, proto->n_rules);
    st->insts[i].host = SCHED_NONE;
    if (host != SCHED_NONE) {
        sched_status rc = sched_inst_attach(st, i, host);
        if (rc != SCHED_OK) {
            if (st->n_aff > 0 && st->aff[st->n_aff - 1] == i)
                st->n_aff--;
            return rc;
        }
    }
    st->n_insts++;
    if (index != NULL)
        *index = i;
    return SCHED_OK;
}

/* Undo the last push. Its instance is the last resident of its host. */
void sched_inst_pop(sched_state *st)
{
    size_t i = st->n_insts - 1;
    sched_inst_detach(st, i);
    if (st->n_aff > 0 && st->aff[st->n_aff - 1] == i)
        st->n_aff--;
    st->n_insts--;
}

/* ---- public state API --------------------------------------------------- */

void sched_state_free(sched_state *st)
{
    if (st == NULL)
        return;
    for (size_t h = 0; h < st->n_hosts; h++)
        free(st->hosts[h].res);
    free(st->hosts);
    free(st->insts);
    free(st->aff);
    if (st->owns_arena)
        sched_arena_free(&st->arena);
    sched_index_free(&st->idx);
    free(st);
}

static sched_status check_instance(const sched_state *st, const sched_instance *in, size_t i,
                                   sched_error *err)
{
    char what[64];
    snprintf(what, sizeof(what), "instance %zu", i);
    if (!sched_id_ok(in->id))
        return sched_fail(err, SCHED_EINVAL, "instance %zu: id is empty or longer than %d", i,
                          SCHED_ID_MAX);
    if (in->mem_mib > SCHED_MEM_MAX)
        return sched_fail(err, SCHED_EINVAL, "instance '%s': mem_mib %llu out of range", in->id,
                          (unsigned long long)in->mem_mib);
    if (in->host >= st->n_hosts)
        return sched_fail(err, SCHED_EINVAL,
                          "instance '%s': host index %zu out of range (%zu hosts)", in->id,
                          in->host, st->n_hosts);
    sched_status rc = sched_check_labels(in->labels, in->n_labels, what, err);
    if (rc == SCHED_OK)
        rc = sched_check_rules(in->rules, in->n_rules, what, err);
    return rc;
}

static sched_status add_instance(sched_state *st, const sched_instance *in, size_t *index,
                                 sched_error *err)
{
    sched_inst_rt rt = { 0 };
    rt.id = sched_arena_strdup(&st->arena, in->id);
    rt.mem = in->mem_mib;
    rt.vcpus = in->vcpus;
    rt.labels = sched_copy_labels(&st->arena, in->labels, in->n_labels);
    rt.n_labels = in->n_labels;
    rt.rules = sched_copy_rules(&st->arena, in->rules, in->n_rules);
    rt.n_rules = in->n_rules;
    rt.pinned = in->pinned;
    if (rt.id == NULL || (in->n_labels > 0 && rt.labels == NULL) ||
        (in->n_rules > 0 && rt.rules == NULL))
        return sched_fail(err, SCHED_ENOMEM, "out of memory");
    sched_status rc = sched_inst_push(st, &rt, in->host, index);
    if (rc != SCHED_OK)
        return sched_fail(err, rc, "out of memory");
    return SCHED_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Ids must be unique: sort a copy of the pointers, compare neighbours. */
static sched_status unique_ids(size_t n, const void *base, size_t stride, size_t off,
                               const char *what, sched_error *err)
{
    if (n < 2)
        return SCHED_OK;
    const char **ids = malloc(n * sizeof(*ids));
    if (ids == NULL)
        return sched_fail(err, SCHED_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        memcpy(&ids[i], (const char *)base + i * stride + off, sizeof(ids[i]));
    qsort(ids, n, sizeof(*ids), cmp_str);
    sched_status rc = SCHED_OK;
    for (size_t i = 1; i < n && rc == SCHED_OK; i++)
        if (strcmp(ids[i], ids[i - 1]) == 0)
            rc = sched_fail(err, SCHED_EINVAL, "%s id '%s' appears twice", what, ids[i]);
    free(ids);
    return rc;
}

sched_status sched_state_new(const sched_fleet *fleet, sched_state **out, sched_error *err)
{
    if (err != NULL) {
        err->code = SCHED_OK;
        err->message[0] = '\0';
    }
    if (out == NULL || fleet == NULL)
        return sched_fail(err, SCHED_EINVAL, "fleet or out is NULL");
    *out = NULL;
    if ((fleet->n_hosts > 0 && fleet->hosts == NULL) ||
        (fleet->n_instances > 0 && fleet->instances == NULL))
        return sched_fail(err, SCHED_EINVAL, "fleet arrays are NULL");
    if (fleet->n_hosts > UINT32_MAX || fleet->n_instances > UINT32_MAX)
        return sched_fail(err, SCHED_EINVAL, "fleet too large");

    sched_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return sched_fail(err, SCHED_ENOMEM, "out of memory");
    st->owns_arena = true;
    st->cpu_milli = fleet->cpu_milli;
    sched_status rc = SCHED_OK;
    st->hosts = calloc(fleet->n_hosts ? fleet->n_hosts : 1, sizeof(*st->hosts));
    if (st->hosts == NULL) {
        rc = sched_fail(err, SCHED_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < fleet->n_hosts; i++) {
        const sched_host *h = &fleet->hosts[i];
        sched_host_rt *rt = &st->hosts[i];
        char what[64];
        snprintf(what, sizeof(what), "host %zu", i);
        if (!sched_id_ok(h->id)) {
            rc = sched_fail(err, SCHED_EINVAL, "host %zu: id is empty or longer than %d", i,
                            SCHED_ID_MAX);
            goto out;
        }
        if (h->mem_mib > SCHED_MEM_MAX || h->reserved_mem_mib > SCHED_MEM_MAX ||
            h->vmm_overhead_mib > SCHED_MEM_MAX) {
            rc = sched_fail(err, SCHED_EINVAL, "host '%s': memory figure out of range", h->id);
            goto out;
        }
        if (!(h->mem_overcommit >= 0.0 && h->mem_overcommit <= 1000.0) ||
            !(h->cpu_overcommit >= 0.0 && h->cpu_overcommit <= 1000.0)) {
            rc = sched_fail(err, SCHED_EINVAL,
                            "host '%s': overcommit ratio (memory %g, cpu %g) out of "
                            "range 0..1000",
                            h->id, h->mem_overcommit, h->cpu_overcommit);
            goto out;
        }
        rc = sched_check_labels(h->labels, h->n_labels, what, err);
        if (rc != SCHED_OK)
            goto out;
        st->n_hosts = i + 1;
        rt->id = sched_arena_strdup(&st->arena, h->id);
        rt->labels = sched_copy_labels(&st->arena, h->labels, h->n_labels);
        rt->n_labels = h->n_labels;
        if (rt->id == NULL || (h->n_labels > 0 && rt->labels == NULL)) {
            rc = sched_fail(err, SCHED_ENOMEM, "out of memory");
            goto out;
        }
        rt->cap[SCHED_RES_MEM] = usable(h->mem_mib, h->reserved_mem_mib, h->mem_overcommit);
        rt->cap[SCHED_RES_VCPU] = usable(h->vcpus, h->reserved_vcpus, h->cpu_overcommit);
        rt->cap[SCHED_RES_SLOT] = h->slots ? h->slots : SCHED_NO_SLOT_LIMIT;
        rt->overhead = h->vmm_overhead_mib;
        rt->cordoned = h->cordoned;
        for (int r = 0; r < SCHED_RES__COUNT; r++)
            st->mean_cap[r] += r == SCHED_RES_SLOT && h->slots == 0 ? 1e6 : (double)rt->cap[r];
    }
    for (int r = 0; r < SCHED_RES__COUNT; r++) {
        st->mean_cap[r] /= fleet->n_hosts ? (double)fleet->n_hosts : 1.0;
        if (st->mean_cap[r] < 1.0)
            st->mean_cap[r] = 1.0;
    }
    rc = unique_ids(st->n_hosts, st->hosts, sizeof(*st->hosts), offsetof(sched_host_rt, id), "host",
                    err);
    if (rc != SCHED_OK)
        goto out;
    for (size_t i = 0; i < fleet->n_instances; i++) {
        rc = check_instance(st, &fleet->instances[i], i, err);
        if (rc == SCHED_OK)
            rc = add_instance(st, &fleet->instances[i], NULL, err);
        if (rc != SCHED_OK)
            goto out;
    }
    rc = unique_ids(st->n_insts, st->insts, sizeof(*st->insts), offsetof(sched_inst_rt, id),
                    "instance", err);
    if (rc != SCHED_OK)
        goto out;
    /* The index is built once, after the instances are in (sched_inst_attach
     * leaves it alone until then). */
    rc = sched_index_init(st);
    if (rc != SCHED_OK)
        sched_fail(err, rc, "out of memory");
out:
    if (rc != SCHED_OK) {
        sched_state_free(st);
        return rc;
    }
    *out = st;
    return SCHED_OK;
}

sched_state *sched_state_clone(const sched_state *st)
{
    sched_state *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->owns_arena = false;
    c->n_hosts = st->n_hosts;
    c->n_insts = st->n_insts;
    c->insts_cap = st->n_insts ? st->n_insts : 1;
    memcpy(c->mean_cap, st->mean_cap, sizeof(c->mean_cap));
    c->hosts = calloc(st->n_hosts ? st->n_hosts : 1, sizeof(*c->hosts));
    c->insts = malloc(c->insts_cap * sizeof(*c->insts));
    if (c->hosts == NULL || c->insts == NULL)
        goto fail;
    if (st->n_insts)
        memcpy(c->insts, st->insts, st->n_insts * sizeof(*c->insts));
    if (st->n_aff > 0) {
        c->aff = malloc(st->n_aff * sizeof(*c->aff));
        if (c->aff == NULL)
            goto fail;
        memcpy(c->aff, st->aff, st->n_aff * sizeof(*c->aff));
        c->n_aff = c->aff_cap = st->n_aff;
    }
    for (size_t h = 0; h < st->n_hosts; h++) {
        c->hosts[h] = st->hosts[h];
        c->hosts[h].res = NULL;
        c->hosts[h].res_cap = st->hosts[h].n_res;
        if (st->hosts[h].n_res > 0) {
            c->hosts[h].res = malloc(st->hosts[h].n_res * sizeof(uint32_t));
            if (c->hosts[h].res == NULL) {
                c->hosts[h].res_cap = 0;
                c->hosts[h].n_res = 0;
                goto fail;
            }
            memcpy(c->hosts[h].res, st->hosts[h].res, st->hosts[h].n_res * sizeof(uint32_t));
        }
    }
    if (sched_index_init(c) != SCHED_OK)
        goto fail;
    return c;
fail:
    sched_state_free(c);
    return NULL;
}

sched_status sched_state_add(sched_state *st, const sched_instance *inst, size_t *index,
                             sched_error *err)
{
    if (st == NULL || inst == NULL)
        return sched_fail(err, SCHED_EINVAL, "state or instance is NULL");
    sched_status rc = check_instance(st, inst, st->n_insts, err);
    if (rc == SCHED_OK && sched_state_find_instance(st, inst->id) != SCHED_NONE)
        rc = sched_fail(err, SCHED_EINVAL, "instance id '%s' already known", inst->id);
    if (rc == SCHED_OK)
        rc = add_instance(st, inst, index, err);
    return rc;
}

sched_status sched_state_remove(sched_state *st, size_t instance)
{
    if (st == NULL || instance >= st->n_insts || st->insts[instance].host == SCHED_NONE)
        return SCHED_EINVAL;
    sched_inst_detach(st, instance);
    return SCHED_OK;
}

sched_status sched_state_move(sched_state *st, size_t instance, size_t to)
{
    if (st == NULL || instance >= st->n_insts || to >= st->n_hosts ||
        st->insts[instance].host == SCHED_NONE)
        return SCHED_EINVAL;
    size_t from = st->insts[instance].host;
    sched_inst_detach(st, instance);
    sched_status rc = sched_inst_attach(st, instance, to);
    if (rc != SCHED_OK)
        sched_inst_attach(st, instance, from); /* res arrays keep capacity */
    return rc;
}

size_t sched_state_hosts(const sched_state *st)
{
    return st != NULL ? st->n_hosts : 0;
}

size_t sched_state_instances(const sched_state *st)
{
    return st != NULL ? st->n_insts : 0;
}

size_t sched_state_find_host(const sched_state *st, const char *id)
{
    if (st == NULL || id == NULL)
        return SCHED_NONE;
    for (size_t h = 0; h < st->n_hosts; h++)
        if (strcmp(st->hosts[h].id, id) == 0)
            return h;
    return SCHED_NONE;
}

size_t sched_state_find_instance(const sched_state *st, const char *id)
{
    if (st == NULL || id == NULL)
        return SCHED_NONE;
    for (size_t i = 0; i < st->n_insts; i++)
        if (st->insts[i].host != SCHED_NONE && st->insts[i].id != NULL &&
            strcmp(st->insts[i].id, id) == 0)
            return i;
    return SCHED_NONE;
}

size_t sched_state_instance_host(const sched_state *st, size_t instance)
{
    if (st == NULL || instance >= st->n_insts)
        return SCHED_NONE;
    return st->insts[instance].host;
}

bool sched_state_usage(const sched_state *st, size_t host, sched_resource r, uint64_t *usable_out,
                       uint64_t *used_out)
{
    if (st == NULL || host >= st->n_hosts || (unsigned)r >= SCHED_RES__COUNT)
        return false;
    if (usable_out != NULL)
        *usable_out = st->hosts[host].cap[r];
    if (used_out != NULL)
        *used_out = st->hosts[host].used[r];
    return true;
}
