/* hosts.c - the hosts of the fleet: loading, connecting, adding,
 * cordoning, removing, and copies of them for the API.
 *
 * A host is heap-allocated and reference-counted (fleet_host.refs, under
 * f->mu): whoever uses its node without f->mu holds it, and removal takes
 * it out of the table at once but frees it (closing its node) only when the
 * last holder releases it. */
#include "fleet_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failover.h"
#include "hosturi.h"
#include "log.h"

/* Caller holds f->mu. */
static fleet_host *find_locked(fleet *f, const char *name)
{
    for (size_t i = 0; i < f->nhosts; i++) {
        if (strcmp(f->hosts[i]->name, name) == 0)
            return f->hosts[i];
    }
    return NULL;
}

static size_t name_hash(const char *s)
{
    size_t h = 14695981039346656037u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

int fleet_name_idx_build(fleet_name_idx *ix, const char *base, size_t stride, size_t n)
{
    memset(ix, 0, sizeof *ix);
    ix->base = base;
    ix->stride = stride;
    ix->n = n;
    for (ix->cap = 16; ix->cap < 2 * n; ix->cap *= 2)
        ;
    ix->slot = calloc(ix->cap, sizeof *ix->slot);
    if (!ix->slot)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t k = name_hash(base + i * stride) & (ix->cap - 1);
        while (ix->slot[k])
            k = (k + 1) & (ix->cap - 1);
        ix->slot[k] = i + 1;
    }
    return 0;
}

size_t fleet_name_idx_find(const fleet_name_idx *ix, const char *name)
{
    if (!ix->slot) {
        size_t i;
        for (i = 0; i < ix->n && strcmp(ix->base + i * ix->stride, name); i++)
            ;
        return i;
    }
    for (size_t k = name_hash(name) & (ix->cap - 1); ix->slot[k]; k = (k + 1) & (ix->cap - 1)) {
        if (!strcmp(ix->base + (ix->slot[k] - 1) * ix->stride, name))
            return ix->slot[k] - 1;
    }
    return ix->n;
}

void fleet_name_idx_free(fleet_name_idx *ix)
{
    free(ix->slot);
    ix->slot = NULL;
}

/* Append h to the table (caller holds f->mu, or is the opener); -1: no
 * memory. */
static int hosts_append(fleet *f, fleet_host *h)
{
    if (f->nhosts == f->hosts_cap) {
        size_t cap = f->hosts_cap ? 2 * f->hosts_cap : 16;
        fleet_host **a = realloc(f->hosts, cap * sizeof *a);
        if (!a)
            return -1;
        f->hosts = a;
        f->hosts_cap = cap;
    }
    f->hosts[f->nhosts++] = h;
    return 0;
}

fleet_host *fleet_host_hold(fleet *f, const char *name)
{
    fleet_host *h;
    pthread_mutex_lock(&f->mu);
    h = find_locked(f, name);
    if (h)
        h->refs++;
    pthread_mutex_unlock(&f->mu);
    return h;
}

static void host_free(fleet_host *h)
{
    node_close(h->node);
    free(h->labels_json);
    free(h);
}

void fleet_host_release(fleet *f, fleet_host *h)
{
    int last;
    if (!h)
        return;
    pthread_mutex_lock(&f->mu);
    last = --h->refs == 0 && h->removed;
    pthread_cond_broadcast(&f->state_cv);
    pthread_mutex_unlock(&f->mu);
    if (last)
        host_free(h);
}

int fleet_host_in_process(const fleet_host *h)
{
    return !strncmp(h->uri, "qemu:///embed", 13) || !strncmp(h->uri, "test:", 5);
}

struct node *fleet_host_node(fleet *f, const char *name, fleet_host **held)
{
    struct node *node = NULL;
    fleet_host *h;
    *held = NULL;
    pthread_mutex_lock(&f->mu);
    h = find_locked(f, name);
    if (h && h->up && h->node) {
        h->refs++;
        node = h->node;
        *held = h;
    }
    pthread_mutex_unlock(&f->mu);
    return node;
}

int64_t fleet_host_retry_delay(fleet_host *h)
{
    int64_t d = (int64_t)FLEET_RECONNECT_MIN_MS << (h->retry_level < 8 ? h->retry_level : 8);
    h->retry_level++;
    return d < FLEET_RECONNECT_MS ? d : FLEET_RECONNECT_MS;
}

const char *fleet_host_domain_type(const fleet_host *h)
{
    if (h->node) {
        switch (node_domain_type(h->node)) {
        case DOMXML_VIRT_KVM: return "kvm";
        case DOMXML_VIRT_QEMU: return "qemu";
        default: break;
        }
    }
    return h->domain_type_cfg;
}

void fleet_host_open(fleet *f, fleet_host *h)
{
    struct node_opts o;
    struct node *node = NULL;
    struct node_capacity cap;
    char err[NODE_ERR_MAX], uri[STATE_URI_MAX], dt[8];
    int64_t t0 = fleet_now_ms();

    pthread_mutex_lock(&f->mu);
    /* One opener at a time: two nodes on one host would each deliver every
     * event, and a duplicate "stopped" would end the next run too. */
    if (h->opening || h->up || h->node || h->removed) {
        pthread_mutex_unlock(&f->mu);
        return;
    }
    h->opening = 1;
    snprintf(uri, sizeof uri, "%s", h->uri);
    snprintf(dt, sizeof dt, "%s", h->domain_type_cfg);
    pthread_mutex_unlock(&f->mu);

    memset(&o, 0, sizeof o);
    /* A host added before the allow list (or under a wider one) is held to
     * today's: its URI is never opened when the list refuses it. */
    if (strcmp(h->name, FLEET_LOCAL_HOST) != 0 &&
        huri_check(f->cfg.host_uri_allow, uri, err, sizeof err) != HURI_OK) {
        int again;
        pthread_mutex_lock(&f->mu);
        again = !strcmp(h->last_error, err); /* said once: retried every 10 s */
        snprintf(h->last_error, sizeof h->last_error, "%s", err);
        h->up = 0;
        h->opening = 0;
        h->next_retry_ms = fleet_now_ms() + FLEET_RECONNECT_MS;
        pthread_cond_broadcast(&f->state_cv);
        pthread_mutex_unlock(&f->mu);
        if (!again)
            log_warn("host %s is not opened: %s", h->name, err);
        return;
    }
    o.domain_type = !strcmp(dt, "kvm")    ? DOMXML_VIRT_KVM
                    : !strcmp(dt, "qemu") ? DOMXML_VIRT_QEMU
                                          : DOMXML_VIRT_AUTO;
    o.state_dir = f->cfg.state_dir;
    o.qemu_no_aslr = !strcmp(f->cfg.qemu_aslr, "off");
    o.qemu_user = f->cfg.qemu_user[0] ? f->cfg.qemu_user : NULL;
    o.on_event = fleet_on_node_event;
    o.user = f;
    if (node_open(uri, &o, &node, err, sizeof err) != NODE_OK) {
        pthread_mutex_lock(&f->mu);
        snprintf(h->last_error, sizeof h->last_error, "%s", err);
        h->up = 0;
        h->opening = 0;
        h->next_retry_ms = fleet_now_ms() + fleet_host_retry_delay(h);
        pthread_cond_broadcast(&f->state_cv);
        pthread_mutex_unlock(&f->mu);
        log_warn("host %s (%s) is down: %s", h->name, uri, err);
        return;
    }
    memset(&cap, 0, sizeof cap);
    node_capacity(node, &cap, err, sizeof err);
    /* Before it takes guests: what others hold there is never placed on. */
    fleet_foreign_sample(f, h, node);
    fleet_failover_fence(f, h, node); /* copies that now run elsewhere: failover.h */
    pthread_mutex_lock(&f->mu);
    h->node = node;
    h->up = 1;
    h->opening = 0;
    h->retry_level = 0;
    h->last_error[0] = 0;
    h->mem_mib = cap.memory_mib;
    h->vcpus = cap.vcpus;
    if (!h->slots)
        h->slots = (uint32_t)f->cfg.max_instances;
    pthread_cond_broadcast(&f->state_cv);
    pthread_mutex_unlock(&f->mu);
    log_info("host %s (%s) up in %lld ms: %llu MiB, %u vCPUs, domain type %s (%s)", h->name, uri,
             (long long)(fleet_now_ms() - t0), (unsigned long long)cap.memory_mib, cap.vcpus,
             fleet_host_domain_type(h), node_domain_type_reason(node));
    log_info("host %s: %s", h->name, node_confinement(node));
    fleet_emit(f, "host.state", NULL, h->name, "up", h->name, NULL, NULL, NULL);
    fleet_reconcile_host(f, h);
    fleet_remote_gc(f, h->name);
    fleet_net_learn(f, h, node); /* its guest subnet, if it has one: hostnet.c */
}

/* Opening every host at start: test:/// and remote hosts spend most of
 * an open waiting (a settle poll, a round trip), so a few at a time. */
#define OPEN_THREADS 16

typedef struct {
    fleet *f;
    atomic_size_t next;
} open_all_ctx;

static void *open_all_main(void *arg)
{
    open_all_ctx *c = arg;
    for (size_t i; (i = atomic_fetch_add(&c->next, 1)) < c->f->nhosts;)
        fleet_host_open(c->f, c->f->hosts[i]);
    return NULL;
}

void fleet_hosts_open_all(fleet *f)
{
    open_all_ctx c = { f, 0 };
    pthread_t th[OPEN_THREADS];
    size_t n = 0;
    /* No API yet: the table does not change meanwhile. */
    for (; n < OPEN_THREADS && n + 1 < f->nhosts; n++) {
        if (pthread_create(&th[n], NULL, open_all_main, &c) != 0)
            break;
    }
    open_all_main(&c);
    for (size_t i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

static fleet_host *host_new(fleet *f, const char *name, const char *uri, const char *labels_json,
                            const char *domain_type, int cordoned)
{
    fleet_host *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    snprintf(h->name, sizeof h->name, "%s", name);
    snprintf(h->uri, sizeof h->uri, "%s", uri);
    snprintf(h->domain_type_cfg, sizeof h->domain_type_cfg, "%s", domain_type);
    h->labels_json = strdup(labels_json ? labels_json : "{}");
    h->cordoned = cordoned;
    h->slots = (uint32_t)f->cfg.max_instances;
    if (!h->labels_json) {
        free(h);
        return NULL;
    }
    return h;
}

int fleet_hosts_load(fleet *f, char *err, size_t errlen)
{
    state_host *rows = NULL, local;
    size_t n = 0;
    char uri[STATE_URI_MAX];
    int rc = -1;

    if (f->cfg.local_uri[0])
        snprintf(uri, sizeof uri, "%s", f->cfg.local_uri);
    else
        snprintf(uri, sizeof uri, "qemu:///embed?root=%s/libvirt", f->cfg.state_dir);
    /* The local host follows the configuration on every start. */
    memset(&local, 0, sizeof local);
    snprintf(local.name, sizeof local.name, FLEET_LOCAL_HOST);
    snprintf(local.uri, sizeof local.uri, "%s", uri);
    snprintf(local.domain_type, sizeof local.domain_type, "%s", f->cfg.domain_type);
    if (state_host_list(f->db, &rows, &n, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(rows[i].name, FLEET_LOCAL_HOST)) {
            local.cordoned = rows[i].cordoned;
            local.labels_json = rows[i].labels_json;
        }
    }
    if (!local.labels_json)
        local.labels_json = "{}";
    if (state_host_upsert(f->db, &local, err, errlen) != 0)
        goto out;
    state_host_array_free(rows, n);
    rows = NULL;
    if (state_host_list(f->db, &rows, &n, err, errlen) != 0)
        goto out;
    for (size_t i = 0; i < n && f->nhosts < FLEET_MAX_HOSTS; i++) {
        fleet_host *h = host_new(f, rows[i].name, rows[i].uri, rows[i].labels_json,
                                 rows[i].domain_type, rows[i].cordoned);
        if (!h || hosts_append(f, h) != 0) {
            if (h)
                host_free(h);
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    state_host_array_free(rows, n);
    return rc;
}

int fleet_host_add(fleet *f, const char *name, const char *uri, const fleet_kv *labels,
                   size_t n_labels, const char *domain_type, fleet_err *e)
{
    state_host row;
    char err[512], *labels_json;
    fleet_host *h;
    int rc = FLEET_OK;

    if (!strncmp(uri, "qemu:///embed", 13))
        return fleet_err_set(e, FLEET_E_INVALID, "uri",
                             "uri '%s': only the local host uses the embedded driver "
                             "(one per process); add hosts through libvirtd URIs",
                             uri);
    /* The one parse of a URI from the API (hosturi.h): transports and
     * parameters the operator allowed, nothing else reaches libvirt. */
    if (huri_check(f->cfg.host_uri_allow, uri, err, sizeof err) != HURI_OK)
        return fleet_err_set(e, FLEET_E_INVALID, "uri", "%s", err);
    labels_json = fleet_kv_json(labels, n_labels);
    h = labels_json ? host_new(f, name, uri, labels_json, domain_type, 0) : NULL;
    free(labels_json);
    if (!h)
        return fleet_err_set(e, FLEET_E_INTERNAL, NULL, "out of memory");
    pthread_mutex_lock(&f->place_mu);
    pthread_mutex_lock(&f->mu);
    if (find_locked(f, name)) {
        rc = fleet_err_set(e, FLEET_E_CONFLICT, "name", "host '%s' already exists", name);
        goto unlock;
    }
    /* One URI is one machine: two hosts on it would each reconcile away
     * the other's domains. */
    for (size_t i = 0; i < f->nhosts; i++) {
        if (!strcmp(f->hosts[i]->uri, uri)) {
            rc = fleet_err_set(e, FLEET_E_CONFLICT, "uri", "uri '%s' is already host '%s'", uri,
                               f->hosts[i]->name);
            goto unlock;
        }
    }
    if (f->nhosts >= FLEET_MAX_HOSTS) {
        rc = fleet_err_set(e, FLEET_E_CONFLICT, NULL,
                           "host '%s': a fleet has at most %d hosts; remove one first", name,
                           FLEET_MAX_HOSTS);
        goto unlock;
    }
    memset(&row, 0, sizeof row);
    snprintf(row.name, sizeof row.name, "%s", name);
    snprintf(row.uri, sizeof row.uri, "%s", uri);
    row.labels_json = h->labels_json;
    snprintf(row.domain_type, sizeof row.domain_type, "%s", domain_type);
    if (state_host_upsert(f->db, &row, err, sizeof err) != 0) {
        rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "%s", err);
        goto unlock;
    }
    /* The first connect is below; the supervisor waits its turn. */
    h->next_retry_ms = fleet_now_ms() + FLEET_RECONNECT_MS;
    h->refs = 1;
    if (hosts_append(f, h) != 0) {
        state_host_delete(f->db, name, NULL, 0);
        rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "out of memory");
    }
unlock:
    pthread_mutex_unlock(&f->mu);
    pthread_mutex_unlock(&f->place_mu);
    if (rc != FLEET_OK) {
        host_free(h);
        return rc;
    }
    fleet_emit(f, "host.added", NULL, name, NULL, name, NULL, NULL, NULL);
    fleet_host_open(f, h);
    fleet_host_release(f, h);
    return FLEET_OK;
}

/* Write a host's row back from memory. */
static int persist_host(fleet *f, const char *name, fleet_err *e)
{
    state_host row;
    fleet_host *h;
    char err[256];
    int rc;
    memset(&row, 0, sizeof row);
    pthread_mutex_lock(&f->mu);
    h = find_locked(f, name);
    if (!h) {
        pthread_mutex_unlock(&f->mu);
        return fleet_err_set(e, FLEET_E_NOT_FOUND, "name", "host '%s' not found", name);
    }
    snprintf(row.name, sizeof row.name, "%s", h->name);
    snprintf(row.uri, sizeof row.uri, "%s", h->uri);
    row.labels_json = strdup(h->labels_json ? h->labels_json : "{}");
    row.cordoned = h->cordoned;
    snprintf(row.domain_type, sizeof row.domain_type, "%s", h->domain_type_cfg);
    pthread_mutex_unlock(&f->mu);
    rc = row.labels_json ? state_host_upsert(f->db, &row, err, sizeof err) : -1;
    free(row.labels_json);
    if (rc != 0)
        return fleet_err_set(e, FLEET_E_INTERNAL, NULL, "host '%s': %s", name,
                             row.labels_json ? err : "out of memory");
    return FLEET_OK;
}

int fleet_host_cordon_locked(fleet *f, const char *name, bool cordoned, fleet_err *e)
{
    fleet_host *h;
    int rc;
    pthread_mutex_lock(&f->mu);
    h = find_locked(f, name);
    if (h)
        h->cordoned = cordoned;
    pthread_mutex_unlock(&f->mu);
    if (!h)
        return fleet_err_set(e, FLEET_E_NOT_FOUND, "name", "host '%s' not found", name);
    if ((rc = persist_host(f, name, e)) != FLEET_OK)
        return rc;
    fleet_emit(f, "host.state", NULL, name, cordoned ? "cordoned" : "uncordoned", name, NULL, NULL,
               NULL);
    return FLEET_OK;
}

int fleet_host_cordon(fleet *f, const char *name, bool cordoned, fleet_err *e)
{
    int rc;
    pthread_mutex_lock(&f->place_mu);
    rc = fleet_host_cordon_locked(f, name, cordoned, e);
    pthread_mutex_unlock(&f->place_mu);
    return rc;
}

int fleet_host_remove(fleet *f, const char *name, fleet_err *e)
{
    state_instance *rows = NULL;
    size_t n = 0, users = 0;
    char err[256];
    fleet_host *h = NULL;
    int rc = FLEET_OK, last;

    if (!strcmp(name, FLEET_LOCAL_HOST))
        return fleet_err_set(e, FLEET_E_CONFLICT, "name",
                             "host '%s' is the daemon's own "
                             "host and cannot be removed",
                             name);
    /* Under place_mu no create can land on the host between the count of
     * its instances and its removal. */
    pthread_mutex_lock(&f->place_mu);
    if (state_inst_list(f->db, &rows, &n, err, sizeof err) != 0) {
        rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "%s", err);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        users += !strcmp(rows[i].host, name);
    pthread_mutex_lock(&f->mu);
    h = find_locked(f, name);
    if (!h)
        rc = fleet_err_set(e, FLEET_E_NOT_FOUND, "name", "host '%s' not found", name);
    else if (users)
        rc = fleet_err_set(e, FLEET_E_CONFLICT, "name",
                           "host '%s' still has %zu instance%s; "
                           "drain it first",
                           name, users, users == 1 ? "" : "s");
    if (rc != FLEET_OK) {
        pthread_mutex_unlock(&f->mu);
        goto out;
    }
    /* Its guest network goes with it, if shoald made it (hostnet.c); held
     * meanwhile (place_mu keeps anything from landing on it). */
    h->refs++;
    pthread_mutex_unlock(&f->mu);
    fleet_net_host_removed(f, h);
    pthread_mutex_lock(&f->mu);
    h->refs--;
    for (size_t i = 0; i < f->nhosts; i++) {
        if (f->hosts[i] == h)
            f->hosts[i] = f->hosts[--f->nhosts];
    }
    h->removed = 1;
    last = h->refs == 0;
    pthread_mutex_unlock(&f->mu);
    /* Holders (a reconnect, a reconcile) free it when they let go. */
    if (last)
        host_free(h);
    state_host_delete(f->db, name, NULL, 0);
    fleet_emit(f, "host.removed", NULL, name, NULL, name, NULL, NULL, NULL);
out:
    pthread_mutex_unlock(&f->place_mu);
    state_inst_array_free(rows, n);
    return rc;
}

/* Copy host h (caller holds f->mu); usage is filled by the caller. */
static int info_copy(const fleet *f, const fleet_host *h, fleet_host_info *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", h->name);
    snprintf(o->uri, sizeof o->uri, "%s", h->uri);
    o->labels_json = strdup(h->labels_json ? h->labels_json : "{}");
    o->up = h->up != 0;
    o->cordoned = h->cordoned != 0;
    snprintf(o->domain_type, sizeof o->domain_type, "%s", fleet_host_domain_type(h));
    o->kvm = -1;
    if (h->node) {
        o->kvm = node_kvm_works(h->node);
        snprintf(o->domain_type_reason, sizeof o->domain_type_reason, "%s",
                 node_domain_type_reason(h->node));
    }
    snprintf(o->last_error, sizeof o->last_error, "%s", h->up ? "" : h->last_error);
    o->mem_mib = h->mem_mib;
    o->vcpus = h->vcpus;
    o->slots = h->slots;
    o->avail_mem_mib = h->avail_mib;
    o->busy_cpu_milli = h->use_cpu_milli;
    o->others_domains = h->others.domains;
    o->others_vcpus = h->others.vcpus;
    o->others_mem_mib = h->others.memory_mib;
    o->others_cpu_milli = h->others_cpu_milli;
    o->down_since_ms = h->up ? 0 : h->down_wall_ms;
    o->sampled_ms_ago = h->use_at_ms ? fleet_now_ms() - h->use_at_ms : -1;
    o->usage_stale = fleet_usage_stale(h->use_at_ms, fleet_now_ms());
    fleet_net_subnet(f, h, o->guest_subnet, sizeof o->guest_subnet);
    return o->labels_json ? 0 : -1;
}

void fleet_host_info_free(fleet_host_info *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        free(a[i].labels_json);
    free(a);
}

int fleet_host_list(fleet *f, fleet_host_info **out, size_t *n, fleet_err *e)
{
    state_instance *rows = NULL;
    size_t nrows = 0, nh = 0;
    fleet_host_info *a;
    fleet_use *use;
    fleet_charge_memo memo = { 0 };
    fleet_name_idx ix = { 0 };
    int measured = fleet_capacity_measured(f);
    char err[256];
    int oom = 0;

    *out = NULL;
    *n = 0;
    if (state_inst_list(f->db, &rows, &nrows, err, sizeof err) != 0)
        return fleet_err_set(e, FLEET_E_INTERNAL, NULL, "%s", err);
    use = calloc(nrows + 1, sizeof *use);
    if (!use) {
        state_inst_array_free(rows, nrows);
        return fleet_err_set(e, FLEET_E_INTERNAL, NULL, "out of memory");
    }
    fleet_usage_copy(f, rows, nrows, use);
    pthread_mutex_lock(&f->mu);
    a = calloc(f->nhosts + 1, sizeof *a);
    for (; a && nh < f->nhosts; nh++)
        oom |= info_copy(f, f->hosts[nh], &a[nh]);
    pthread_mutex_unlock(&f->mu);
    if (!a)
        oom = 1;
    else
        (void)fleet_name_idx_build(&ix, a[0].name, sizeof *a, nh); /* else it scans */
    for (size_t r = 0; !oom && r < nrows; r++) {
        const state_instance *in = &rows[r];
        size_t i = fleet_name_idx_find(&ix, in->host);
        uint64_t mem;
        uint32_t cpu;
        if (!fleet_state_holds(in->state) || i == nh)
            continue;
        /* The same charges placement uses (snapshot.c). */
        fleet_charge_resident(measured, rows, use, nrows, r, &memo, &mem, &cpu);
        a[i].used_mem_mib += mem;
        a[i].used_vcpus += (uint32_t)in->vcpus;
        a[i].used_cpu_milli += measured ? cpu : 0;
        a[i].instances++;
    }
    fleet_name_idx_free(&ix);
    for (size_t i = 0; i < nh; i++) {
        a[i].measured = measured != 0;
        a[i].reserved_mem_mib = fleet_mem_reserve(f, a[i].mem_mib);
        a[i].free_mem_mib = a[i].up ? fleet_mem_free(f, a[i].mem_mib, a[i].others_mem_mib,
                                                     a[i].used_mem_mib, a[i].avail_mem_mib)
                                    : 0;
    }
    free(use);
    state_inst_array_free(rows, nrows);
    if (oom) {
        fleet_host_info_free(a, nh);
        return fleet_err_set(e, FLEET_E_INTERNAL, NULL, "out of memory");
    }
    *out = a;
    *n = nh;
    return FLEET_OK;
}

int fleet_host_get(fleet *f, const char *name, fleet_host_info *out, fleet_err *e)
{
    fleet_host_info *a;
    size_t n;
    int rc = fleet_host_list(f, &a, &n, e);
    if (rc != FLEET_OK)
        return rc;
    rc = fleet_err_set(e, FLEET_E_NOT_FOUND, "name", "host '%s' not found", name);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(a[i].name, name)) {
            *out = a[i];
            a[i].labels_json = NULL;
            rc = FLEET_OK;
        }
    }
    fleet_host_info_free(a, n);
    return rc;
}
