/* snapshot.c - the scheduler's view of the fleet, and the stored form of
 * an instance's placement (policy and rules). */
#include "snapshot.h"

#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* fleet_rule_kind is the scheduler's sched_rule_kind, value for value. */
_Static_assert((int)FLEET_RULE_HOST_AFFINITY == (int)SCHED_RULE_HOST_AFFINITY, "rule kinds");
_Static_assert((int)FLEET_RULE_HOST_ANTI_AFFINITY == (int)SCHED_RULE_HOST_ANTI_AFFINITY,
               "rule kinds");
_Static_assert((int)FLEET_RULE_AFFINITY == (int)SCHED_RULE_AFFINITY, "rule kinds");
_Static_assert((int)FLEET_RULE_ANTI_AFFINITY == (int)SCHED_RULE_ANTI_AFFINITY, "rule kinds");

/* Names of the kinds in stored placements (the same words as the API's). */
static const char *const RULE_NAMES[FLEET_RULE__COUNT] = {
    [FLEET_RULE_HOST_AFFINITY] = "host-affinity",
    [FLEET_RULE_HOST_ANTI_AFFINITY] = "host-anti-affinity",
    [FLEET_RULE_AFFINITY] = "affinity",
    [FLEET_RULE_ANTI_AFFINITY] = "anti-affinity",
};

const char *fleet_rule_kind_name(fleet_rule_kind k)
{
    return (unsigned)k < FLEET_RULE__COUNT ? RULE_NAMES[k] : NULL;
}

static int rule_kind(const char *name)
{
    for (int i = 0; i < FLEET_RULE__COUNT; i++) {
        if (name && !strcmp(name, RULE_NAMES[i]))
            return i;
    }
    return -1;
}

static char *json_text(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    return s;
}

char *fleet_placement_format(bool spread, const fleet_rule *r, size_t n, const char *pin)
{
    json_t *o = json_object(), *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *ro = json_pack("{s:s,s:s,s:b,s:i}", "kind", fleet_rule_kind_name(r[i].kind), "key",
                               r[i].key, "soft", r[i].soft, "weight", (int)r[i].weight);
        if (r[i].value)
            json_object_set_new(ro, "value", json_string(r[i].value));
        json_array_append_new(a, ro);
    }
    json_object_set_new(o, "policy", json_string(spread ? "spread" : "binpack"));
    json_object_set_new(o, "rules", a);
    if (pin)
        json_object_set_new(o, "pin", json_string(pin));
    return json_text(o);
}

int fleet_placement_parse(const char *text, fleet_placement *out)
{
    json_t *doc, *a, *r;
    const char *policy;
    size_t i;

    memset(out, 0, sizeof *out);
    /* what fleet_placement_format writes for no rules (nearly every row a
     * list renders): no parse */
    if (text != NULL && (strcmp(text, "{\"policy\":\"binpack\",\"rules\":[]}") == 0 ||
                         strcmp(text, "{\"policy\":\"spread\",\"rules\":[]}") == 0)) {
        out->spread = text[11] == 's';
        out->rules = calloc(1, sizeof *out->rules);
        return out->rules != NULL ? 0 : -1;
    }
    doc = json_loads(text ? text : "{}", 0, NULL);
    if (!doc)
        return -1;
    out->doc = doc;
    policy = json_string_value(json_object_get(doc, "policy"));
    out->spread = policy && !strcmp(policy, "spread");
    out->pin = json_string_value(json_object_get(doc, "pin"));
    a = json_object_get(doc, "rules");
    out->rules = calloc(json_array_size(a) + 1, sizeof *out->rules);
    if (!out->rules) {
        fleet_placement_clear(out);
        return -1;
    }
    json_array_foreach (a, i, r) {
        int k = rule_kind(json_string_value(json_object_get(r, "kind")));
        fleet_rule *fr = &out->rules[out->n_rules];
        if (k < 0 || !json_string_value(json_object_get(r, "key")))
            continue;
        fr->kind = (fleet_rule_kind)k;
        fr->key = json_string_value(json_object_get(r, "key"));
        fr->value = json_string_value(json_object_get(r, "value"));
        fr->soft = json_is_true(json_object_get(r, "soft"));
        fr->weight = (uint32_t)json_integer_value(json_object_get(r, "weight"));
        out->n_rules++;
    }
    return 0;
}

void fleet_placement_clear(fleet_placement *p)
{
    if (!p)
        return;
    free(p->rules);
    json_decref(p->doc);
    memset(p, 0, sizeof *p);
}

void fleet_rules_to_sched(const fleet_rule *in, size_t n, sched_rule *out)
{
    for (size_t i = 0; i < n; i++) {
        out[i].kind = (sched_rule_kind)in[i].kind;
        out[i].key = in[i].key;
        out[i].value = in[i].value;
        out[i].soft = in[i].soft;
        out[i].weight = in[i].weight;
    }
}

/* A labels object as scheduler labels pointing into doc, plus `extra`. */
static sched_label *labels_from(json_t *doc, const sched_label *extra, size_t *n)
{
    const char *k;
    json_t *v;
    sched_label *out = calloc(json_object_size(doc) + 2, sizeof *out);
    *n = 0;
    if (!out)
        return NULL;
    json_object_foreach (doc, k, v) {
        out[*n].key = k;
        out[*n].value = json_string_value(v);
        (*n)++;
    }
    if (extra)
        out[(*n)++] = *extra;
    return out;
}

void fleet_snapshot_free(fleet_snapshot *s)
{
    for (size_t i = 0; s->hlabels && i < s->nhosts; i++) {
        free(s->hlabels[i]);
        json_decref(s->hlabels_doc[i]);
    }
    free(s->hosts);
    free(s->names);
    free(s->hlabels);
    free(s->hlabels_doc);
    free(s->room_mib);
    free(s->cpus);
    free(s->others);
    fleet_name_idx_free(&s->host_idx);
    for (size_t i = 0; i < s->ninsts; i++) {
        if (s->idocs)
            json_decref(s->idocs[i]);
        if (s->ilabels)
            free(s->ilabels[i]);
        if (s->iplace)
            fleet_placement_clear(&s->iplace[i]);
        if (s->irules)
            free(s->irules[i]);
    }
    free(s->idocs);
    free(s->ilabels);
    free(s->iplace);
    free(s->irules);
    free(s->insts);
    free(s->row_of);
    free(s->use);
    free(s->pool);
    state_inst_array_free(s->rows, s->nrows);
    memset(s, 0, sizeof *s);
}

/* Memory a host may give its guests: its usable memory, but never more
 * than what they hold now (charged) plus what the host really has free
 * beyond its reserve. Reshapes sh so the scheduler's formula gives that. */
static void cap_by_available(sched_host *sh, uint64_t charged, uint64_t avail)
{
    uint64_t usable = (uint64_t)((double)(sh->mem_mib - sh->reserved_mem_mib) *
                                 (sh->mem_overcommit > 0 ? sh->mem_overcommit : 1.0));
    uint64_t real = charged + (avail > sh->reserved_mem_mib ? avail - sh->reserved_mem_mib : 0);
    if (!avail || real >= usable)
        return;
    sh->mem_mib = real;
    sh->reserved_mem_mib = 0;
    sh->mem_overcommit = 1.0;
}

static int take(fleet *f, fleet_snapshot *s, int with_pool, char *err, size_t errlen);

int fleet_snapshot_take(fleet *f, fleet_snapshot *s, char *err, size_t errlen)
{
    return take(f, s, 0, err, errlen);
}

int fleet_snapshot_take_pool(fleet *f, fleet_snapshot *s, char *err, size_t errlen)
{
    return take(f, s, 1, err, errlen);
}

static int take(fleet *f, fleet_snapshot *s, int with_pool, char *err, size_t errlen)
{
    uint64_t *avail = NULL, *charged = NULL;
    fleet_charge_memo memo = { 0 };

    memset(s, 0, sizeof *s);
    if (state_inst_list(f->db, &s->rows, &s->nrows, err, errlen) != 0)
        return -1;
    s->measured = fleet_capacity_measured(f) != 0;
    s->use = calloc(s->nrows + 1, sizeof *s->use);
    if (!s->use) {
        snprintf(err, errlen, "out of memory");
        fleet_snapshot_free(s);
        return -1;
    }
    fleet_usage_copy(f, s->rows, s->nrows, s->use);
    pthread_mutex_lock(&f->mu);
    /* Every per-host array sized by the hosts there are (heap: hundreds of
     * hosts, and the snapshot is a local of its callers). */
    s->hosts = calloc(f->nhosts + 1, sizeof *s->hosts);
    s->names = calloc(f->nhosts + 1, sizeof *s->names);
    s->hlabels = calloc(f->nhosts + 1, sizeof *s->hlabels);
    s->hlabels_doc = calloc(f->nhosts + 1, sizeof *s->hlabels_doc);
    s->room_mib = calloc(f->nhosts + 1, sizeof *s->room_mib);
    s->cpus = calloc(f->nhosts + 1, sizeof *s->cpus);
    s->others = calloc(f->nhosts + 1, sizeof *s->others);
    avail = calloc(f->nhosts + 1, sizeof *avail);
    charged = calloc(f->nhosts + 1, sizeof *charged);
    if (!s->hosts || !s->names || !s->hlabels || !s->hlabels_doc || !s->room_mib || !s->cpus ||
        !s->others || !avail || !charged) {
        pthread_mutex_unlock(&f->mu);
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < f->nhosts; i++) {
        const fleet_host *h = f->hosts[i];
        sched_host *sh = &s->hosts[i];
        sched_label self;
        size_t n = 0;
        snprintf(s->names[i], sizeof s->names[i], "%s", h->name);
        /* Every host carries shoal/host=NAME, which --host pins to. */
        self.key = FLEET_HOST_LABEL;
        self.value = s->names[i];
        s->hlabels_doc[i] = json_loads(h->labels_json ? h->labels_json : "{}", 0, NULL);
        s->hlabels[i] = labels_from(s->hlabels_doc[i], &self, &n);
        memset(sh, 0, sizeof *sh);
        sh->id = s->names[i];
        sh->mem_mib = h->mem_mib;
        sh->vcpus = h->vcpus ? h->vcpus : 1;
        sh->slots = h->slots;
        sh->reserved_mem_mib = fleet_mem_reserve(f, h->mem_mib);
        /* Domains shoal does not own may touch all they hold: their memory
         * is not the host's to give, overcommitted or not. */
        s->others[i] = h->others;
        sh->mem_mib = h->mem_mib > h->others.memory_mib + sh->reserved_mem_mib
                          ? h->mem_mib - h->others.memory_mib
                          : sh->reserved_mem_mib;
        s->room_mib[i] = sh->mem_mib - sh->reserved_mem_mib;
        s->cpus[i] = sh->vcpus;
        sh->mem_overcommit = f->cfg.mem_overcommit;
        if (s->measured) {
            /* Charges include QEMU; CPU is measured use in 1/1000 CPU. */
            sh->vmm_overhead_mib = 0;
            sh->vcpus *= 1000;
            sh->reserved_vcpus = sh->vcpus * (uint32_t)(100 - f->cfg.cpu_target) / 100;
            /* and the CPU the others' domains used over the last period */
            sh->reserved_vcpus += h->others_cpu_milli;
            if (sh->reserved_vcpus > sh->vcpus)
                sh->reserved_vcpus = sh->vcpus;
            sh->cpu_overcommit = 1.0;
        } else {
            sh->vmm_overhead_mib = FLEET_VMM_OVERHEAD_MIB;
            /* Idle unikernels halt; vCPUs are overcommitted like threads. */
            sh->cpu_overcommit = f->cfg.cpu_overcommit;
            /* The others' vCPUs count like shoal's: CPUs' worth of them
             * are kept out. */
            sh->reserved_vcpus =
                (uint32_t)((double)h->others.vcpus /
                               (sh->cpu_overcommit > 0 ? sh->cpu_overcommit : 1.0) +
                           0.999);
            if (sh->reserved_vcpus > sh->vcpus)
                sh->reserved_vcpus = sh->vcpus;
        }
        /* A reading older than a few periods is no reading. */
        avail[i] = h->avail_at_ms && fleet_now_ms() - h->avail_at_ms < 5 * FLEET_AVAIL_PERIOD_MS
                       ? h->avail_mib
                       : 0;
        sh->labels = s->hlabels[i];
        sh->n_labels = s->hlabels[i] ? n : 0;
        sh->cordoned = h->cordoned || !h->up;
    }
    s->nhosts = f->nhosts;
    pthread_mutex_unlock(&f->mu);
    /* Each row looks its host up: O(1), not O(hosts). */
    (void)fleet_name_idx_build(&s->host_idx, s->names[0], sizeof s->names[0], s->nhosts);
    if (with_pool)
        s->pool = fleet_pool_residents(f, &s->npool);
    s->insts = calloc(s->nrows + s->npool + 1, sizeof *s->insts);
    s->row_of = calloc(s->nrows + s->npool + 1, sizeof *s->row_of);
    s->idocs = calloc(s->nrows + s->npool + 1, sizeof *s->idocs);
    s->ilabels = calloc(s->nrows + s->npool + 1, sizeof *s->ilabels);
    s->iplace = calloc(s->nrows + s->npool + 1, sizeof *s->iplace);
    s->irules = calloc(s->nrows + s->npool + 1, sizeof *s->irules);
    if (!s->insts || !s->row_of || !s->idocs || !s->ilabels || !s->iplace || !s->irules) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t r = 0; r < s->nrows; r++) {
        const state_instance *in = &s->rows[r];
        size_t h = fleet_snapshot_host(s, in->host), k = s->ninsts;
        sched_instance *si = &s->insts[k];
        uint64_t mem;
        uint32_t cpu;
        if (!fleet_state_holds(in->state) || h == s->nhosts)
            continue;
        si->id = in->id;
        fleet_charge_resident(s->measured, s->rows, s->use, s->nrows, r, &memo, &mem, &cpu);
        /* The scheduler adds the host's VMM overhead (0 when measured). */
        si->mem_mib = s->measured ? mem : (uint64_t)in->memory_mib;
        si->vcpus = cpu;
        charged[h] += si->mem_mib + s->hosts[h].vmm_overhead_mib;
        si->host = h;
        /* Labels and rules of residents bind newcomers (anti-affinity). */
        s->idocs[k] = json_loads(in->labels_json, 0, NULL);
        s->ilabels[k] = labels_from(s->idocs[k], NULL, &si->n_labels);
        si->labels = s->ilabels[k];
        fleet_placement_parse(in->placement_json, &s->iplace[k]);
        s->irules[k] = calloc(s->iplace[k].n_rules + 1, sizeof *s->irules[k]);
        if (s->irules[k]) {
            fleet_rules_to_sched(s->iplace[k].rules, s->iplace[k].n_rules, s->irules[k]);
            si->rules = s->irules[k];
            si->n_rules = s->iplace[k].n_rules;
        }
        s->row_of[s->ninsts++] = r;
    }
    /* Warm pool guests: charged like a new guest of their image (no rows,
     * labels or rules). */
    for (size_t i = 0; i < s->npool; i++) {
        size_t h = fleet_snapshot_host(s, s->pool[i].host);
        sched_instance *si = &s->insts[s->ninsts];
        if (h == s->nhosts)
            continue;
        si->id = s->pool[i].id;
        fleet_charge_new(s, s->pool[i].digest, s->pool[i].memory_mib, s->pool[i].vcpus,
                         &si->mem_mib, &si->vcpus);
        charged[h] += si->mem_mib + s->hosts[h].vmm_overhead_mib;
        si->host = h;
        s->row_of[s->ninsts++] = SCHED_NONE;
    }
    for (size_t i = 0; i < s->nhosts; i++)
        cap_by_available(&s->hosts[i], charged[i], avail[i]);
    free(avail);
    free(charged);
    return 0;
fail:
    free(avail);
    free(charged);
    fleet_snapshot_free(s);
    return -1;
}

void fleet_snapshot_note_others(const fleet_snapshot *s, fleet_err *e)
{
    size_t top[3], nt = 0;
    uint64_t rank[3];
    if (!e || e->code != FLEET_E_CAPACITY)
        return;
    for (size_t i = 0; i < s->nhosts; i++) {
        char quoted[STATE_NAME_MAX + 2];
        uint64_t r = s->others[i].memory_mib;
        size_t k;
        if (!r || s->hosts[i].cordoned)
            continue;
        /* The hosts the refusal names first (the message is bounded),
         * then the most memory held. */
        snprintf(quoted, sizeof quoted, "'%s'", s->names[i]);
        if (strstr(e->msg, quoted))
            r += UINT64_MAX / 2;
        /* insertion into the three ranked highest */
        k = nt < 3 ? nt++ : 3;
        while (k > 0 && rank[k - 1] < r) {
            if (k < 3) {
                top[k] = top[k - 1];
                rank[k] = rank[k - 1];
            }
            k--;
        }
        if (k < 3) {
            top[k] = i;
            rank[k] = r;
        }
    }
    for (size_t j = 0; j < nt; j++) {
        size_t l = strlen(e->msg), i = top[j];
        snprintf(e->msg + l, sizeof e->msg - l,
                 "%s host '%s' has %llu MiB held by %u domain%s shoal does not own (%u vCPUs)",
                 j ? ";" : "; not counted as free:", s->names[i],
                 (unsigned long long)s->others[i].memory_mib, s->others[i].domains,
                 s->others[i].domains == 1 ? "" : "s", s->others[i].vcpus);
    }
}

int fleet_snapshot_fits(const fleet_snapshot *s, uint64_t mem_mib, uint32_t vcpus, fleet_err *e)
{
    size_t at_mem = s->nhosts, at_cpu = s->nhosts;
    for (size_t i = 0; i < s->nhosts; i++) {
        if (s->hosts[i].cordoned)
            continue;
        if (at_mem == s->nhosts || s->room_mib[i] > s->room_mib[at_mem])
            at_mem = i;
        if (at_cpu == s->nhosts || s->cpus[i] > s->cpus[at_cpu])
            at_cpu = i;
    }
    if (at_mem == s->nhosts)
        return FLEET_OK; /* no host takes guests: the scheduler says so */
    if (mem_mib + FLEET_VMM_OVERHEAD_MIB > s->room_mib[at_mem])
        return fleet_err_set(e, FLEET_E_CAPACITY, NULL,
                             "a guest of %llu MiB (+%d MiB VMM) needs more memory than any host "
                             "has: the largest, '%s', has %llu MiB beyond its reserve",
                             (unsigned long long)mem_mib, FLEET_VMM_OVERHEAD_MIB, s->names[at_mem],
                             (unsigned long long)s->room_mib[at_mem]);
    if (s->measured && vcpus > s->cpus[at_cpu])
        return fleet_err_set(e, FLEET_E_CAPACITY, NULL,
                             "a guest of %u vCPUs needs more CPUs than any host has: the largest, "
                             "'%s', has %u",
                             vcpus, s->names[at_cpu], s->cpus[at_cpu]);
    return FLEET_OK;
}

void fleet_charge_new(const fleet_snapshot *s, const char *digest, uint64_t mem_mib, uint32_t vcpus,
                      uint64_t *mem, uint32_t *cpu)
{
    fleet_charge_estimate(s->measured, s->rows, s->use, s->nrows, digest, mem_mib, vcpus, mem, cpu);
    /* The scheduler adds the host's VMM overhead (0 when measured). */
    if (!s->measured)
        *mem = mem_mib;
}

size_t fleet_snapshot_host(const fleet_snapshot *s, const char *name)
{
    return fleet_name_idx_find(&s->host_idx, name);
}

int fleet_snapshot_sched(const fleet_snapshot *s, sched_state **out, fleet_err *e)
{
    sched_fleet sf = { s->hosts, s->nhosts, s->insts, s->ninsts, s->measured };
    sched_error serr;
    if (sched_state_new(&sf, out, &serr) != SCHED_OK)
        return fleet_err_set(e, FLEET_E_INTERNAL, NULL, "scheduler: %s", serr.message);
    return FLEET_OK;
}
