/* fleet.c - shoald's core: hosts, lifecycle, reconcile, events.
 * See fleet.h for the model and the threading rules. */
#include "fleet.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "api.h"
#include "guestcmd.h"
#include "img_store.h"
#include "log.h"
#include "netbr.h"
#include "node.h"
#include "portfwd.h"

/* Serialises read-modify-write of instance rows across threads. */
static pthread_mutex_t row_mu = PTHREAD_MUTEX_INITIALIZER;

int64_t fleet_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t fleet_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fleet_state_holds(state_inst_state s)
{
    return s == ST_PENDING || s == ST_STARTING || s == ST_RUNNING || s == ST_STOPPING ||
           s == ST_BACKOFF;
}

int fleet_state_live(state_inst_state s)
{
    return s == ST_STARTING || s == ST_RUNNING || s == ST_STOPPING;
}

void fleet_console_path(const fleet *f, const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s.log", f->log_dir, id);
}

void fleet_status_path(const fleet *f, const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s.status", f->run_dir, id);
}

static void domain_name(const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "shoal-%s", id);
}

static void rotate_console(fleet *f, const char *id);

/* ---- runtime table ------------------------------------------------------ */

/* Lookups happen on every status-file change and, each tick, for every
 * running instance: the table is indexed by id rather than scanned. */
static size_t rt_hash(const char *id)
{
    size_t h = 1469598103934665603u;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211u;
    return h;
}

/* Slot of id in the index: where it is, or the empty slot it would take. */
static size_t rt_slot(const fleet *f, const char *id)
{
    size_t mask = 2 * f->rt_cap - 1, i = rt_hash(id) & mask;
    while (f->rt_index[i] && strcmp(f->rt[f->rt_index[i] - 1].id, id) != 0)
        i = (i + 1) & mask;
    return i;
}

static void rt_reindex(fleet *f)
{
    memset(f->rt_index, 0, 2 * f->rt_cap * sizeof *f->rt_index);
    for (size_t k = 0; k < f->nrt; k++)
        f->rt_index[rt_slot(f, f->rt[k].id)] = k + 1;
}

fleet_rt *fleet_rt_get(fleet *f, const char *id)
{
    fleet_rt *rt;
    size_t slot;
    if (f->rt_cap) {
        slot = rt_slot(f, id);
        if (f->rt_index[slot])
            return &f->rt[f->rt_index[slot] - 1];
    }
    if (f->nrt == f->rt_cap) {
        /* Entries are addressed by pointer only while f->mu is held, so a
         * realloc here cannot strand a reader. Capacity stays a power of
         * two so the index can mask. */
        size_t ncap = f->rt_cap ? f->rt_cap * 2 : 256;
        fleet_rt *n = realloc(f->rt, ncap * sizeof *n);
        size_t *ix;
        if (!n)
            return NULL;
        f->rt = n;
        ix = realloc(f->rt_index, 2 * ncap * sizeof *ix);
        if (!ix)
            return NULL;
        f->rt_index = ix;
        f->rt_cap = ncap;
        rt_reindex(f);
    }
    rt = &f->rt[f->nrt++];
    memset(rt, 0, sizeof *rt);
    snprintf(rt->id, sizeof rt->id, "%s", id);
    f->rt_index[rt_slot(f, id)] = f->nrt;
    return rt;
}

void fleet_rt_drop(fleet *f, const char *id)
{
    size_t slot;
    if (!f->rt_cap)
        return;
    slot = rt_slot(f, id);
    if (!f->rt_index[slot])
        return;
    /* Deletes are rare: move the last entry into the hole and rebuild. */
    f->rt[f->rt_index[slot] - 1] = f->rt[--f->nrt];
    rt_reindex(f);
}

fleet_host *fleet_host_find(fleet *f, const char *name)
{
    for (size_t i = 0; i < f->nhosts; i++) {
        if (strcmp(f->hosts[i].name, name) == 0)
            return &f->hosts[i];
    }
    return NULL;
}

const char *fleet_host_domain_type(const fleet_host *h)
{
    if (h->node) {
        switch (node_domain_type(h->node)) {
        case DOMXML_VIRT_KVM:
            return "kvm";
        case DOMXML_VIRT_QEMU:
            return "qemu";
        default:
            break;
        }
    }
    return h->domain_type_cfg;
}

/* ---- events ------------------------------------------------------------- */

void fleet_emit(fleet *f, const char *type, const char *instance, const char *name,
                const char *state, const char *host, const char *image,
                const char *digest, const char *message)
{
    json_t *o = json_object();
    char *txt;
    int64_t id = 0;

    json_object_set_new(o, "time", json_integer(fleet_wall_ms() / 1000));
    json_object_set_new(o, "type", json_string(type));
#define PUT(k, v) if ((v) && (v)[0]) json_object_set_new(o, k, json_string(v))
    PUT("instance", instance);
    PUT("name", name);
    PUT("state", state);
    PUT("host", host);
    PUT("image", image);
    PUT("digest", digest);
    PUT("message", message);
#undef PUT
    txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (txt && state_event_append(f->db, txt, &id) == 0) {
        pthread_mutex_lock(&f->mu);
        if (id > f->last_event_id)
            f->last_event_id = id;
        pthread_cond_broadcast(&f->event_cv);
        pthread_mutex_unlock(&f->mu);
    }
    free(txt);
}

/* ---- rows --------------------------------------------------------------- */

typedef void (*mutator)(state_instance *in, void *ctx);

/* Read the row, apply fn, write it back, emit instance.state when the
 * state changed. 0, or STATE_ENOTFOUND when the row is gone. */
static int mutate(fleet *f, const char *id, mutator fn, void *ctx)
{
    state_instance in;
    char err[256];
    int rc;
    state_inst_state before;

    pthread_mutex_lock(&row_mu);
    rc = state_inst_find(f->db, id, &in, err, sizeof err);
    if (rc != 0 || strcmp(in.id, id) != 0) {
        if (rc == 0)
            state_inst_free(&in);
        pthread_mutex_unlock(&row_mu);
        return STATE_ENOTFOUND;
    }
    before = in.state;
    fn(&in, ctx);
    rc = state_inst_update(f->db, &in, err, sizeof err);
    pthread_mutex_unlock(&row_mu);
    if (rc != 0)
        log_error("instance %s: cannot save state: %s", id, err);
    if (in.state != before)
        fleet_emit(f, "instance.state", in.id, in.name, state_inst_state_name(in.state),
                   in.host, in.image_ref, NULL, in.last_error);
    pthread_mutex_lock(&f->mu);
    pthread_cond_broadcast(&f->state_cv);
    pthread_mutex_unlock(&f->mu);
    state_inst_free(&in);
    return rc;
}

struct set_state_ctx {
    state_inst_state st;
    const char *last_error;
};

static void set_state_fn(state_instance *in, void *ctx)
{
    struct set_state_ctx *c = ctx;
    in->state = c->st;
    if (c->last_error)
        snprintf(in->last_error, sizeof in->last_error, "%s", c->last_error);
}

int fleet_set_state(fleet *f, const char *id, state_inst_state st, const char *last_error)
{
    struct set_state_ctx c = { st, last_error };
    return mutate(f, id, set_state_fn, &c);
}

static void set_host_fn(state_instance *in, void *ctx)
{
    snprintf(in->host, sizeof in->host, "%s", (const char *)ctx);
}

int fleet_set_host(fleet *f, const char *id, const char *host)
{
    return mutate(f, id, set_host_fn, (void *)host);
}

/* ---- jobs --------------------------------------------------------------- */

void fleet_queue(fleet *f, fleet_job_kind kind, const char *id, const char *detail)
{
    fleet_job *j = calloc(1, sizeof *j);
    if (!j) {
        log_error("instance %s: out of memory queueing a job", id);
        return;
    }
    j->kind = kind;
    snprintf(j->id, sizeof j->id, "%s", id);
    snprintf(j->detail, sizeof j->detail, "%s", detail ? detail : "");
    pthread_mutex_lock(&f->mu);
    if (f->jobs_tail)
        f->jobs_tail->next = j;
    else
        f->jobs = j;
    f->jobs_tail = j;
    pthread_cond_signal(&f->job_cv);
    pthread_mutex_unlock(&f->mu);
}

/* Take the first job whose instance is not busy. Caller holds f->mu. */
static fleet_job *take_job(fleet *f)
{
    fleet_job *prev = NULL;
    for (fleet_job *j = f->jobs; j; prev = j, j = j->next) {
        fleet_rt *rt = fleet_rt_get(f, j->id);
        if (rt && rt->busy)
            continue;
        if (prev)
            prev->next = j->next;
        else
            f->jobs = j->next;
        if (f->jobs_tail == j)
            f->jobs_tail = prev;
        if (rt)
            rt->busy = 1;
        return j;
    }
    return NULL;
}

/* ---- status channel ----------------------------------------------------- */

struct rec_buf {
    gst_record recs[8];
    size_t n;
};

static void collect_rec(void *ctx, const gst_record *r)
{
    struct rec_buf *b = ctx;
    if (b->n < sizeof b->recs / sizeof b->recs[0])
        b->recs[b->n++] = *r;
    else
        b->recs[b->n - 1] = *r;  /* keep the latest outcome */
}

struct ready_ctx {
    int64_t boot_us;
    double ready_ms;
};

static void ready_fn(state_instance *in, void *ctx)
{
    struct ready_ctx *c = ctx;
    if (in->state == ST_STARTING)
        in->state = ST_RUNNING;
    in->boot_us = c->boot_us;
    in->ready_ms = c->ready_ms;
}

static void observe_ready(fleet *f, double ready_ms)
{
    static const double bounds[] = { 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 5, 10, 30 };
    double s = ready_ms / 1000.0;
    size_t i;
    for (i = 0; i < sizeof bounds / sizeof bounds[0] && s > bounds[i]; i++)
        ;
    f->ready_hist[i]++;
    f->ready_sum += s;
    f->ready_count++;
}

/* Read new status records of one instance and act on them. */
static void poll_status(fleet *f, const char *id)
{
    char path[1200];
    struct rec_buf b = { .n = 0 };
    fleet_rt *rt;
    int64_t request_ms = 0;

    fleet_status_path(f, id, path, sizeof path);
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, id);
    if (!rt || !rt->active) {
        pthread_mutex_unlock(&f->mu);
        return;
    }
    gst_tracker_poll(&rt->tracker, path, collect_rec, &b);
    request_ms = rt->request_ms;
    for (size_t i = 0; i < b.n; i++) {
        if (b.recs[i].kind == GST_EXIT || b.recs[i].kind == GST_CRASH) {
            rt->have_outcome = 1;
            rt->outcome = b.recs[i];
        }
    }
    pthread_mutex_unlock(&f->mu);

    for (size_t i = 0; i < b.n; i++) {
        if (b.recs[i].kind == GST_READY) {
            struct ready_ctx c = { b.recs[i].boot_us,
                                   request_ms ? (double)(fleet_now_ms() - request_ms) : -1 };
            pthread_mutex_lock(&f->mu);
            rt = fleet_rt_get(f, id);
            if (rt)
                rt->ready = 1;
            if (c.ready_ms >= 0)
                observe_ready(f, c.ready_ms);
            pthread_mutex_unlock(&f->mu);
            mutate(f, id, ready_fn, &c);
        }
    }
}

/* ---- start -------------------------------------------------------------- */

static int host_node(fleet *f, const char *name, struct node **out)
{
    fleet_host *h;
    int ok = 0;
    pthread_mutex_lock(&f->mu);
    h = fleet_host_find(f, name);
    if (h && h->up && h->node) {
        *out = h->node;
        ok = 1;
    }
    pthread_mutex_unlock(&f->mu);
    return ok;
}

/* Build the guest command line from the row. */
static int build_cmdline(fleet *f, const state_instance *in, gcmd *c, char *err, size_t errlen)
{
    json_t *args = json_loads(in->args_json, 0, NULL);
    json_t *env = json_loads(in->env_json, 0, NULL);
    const char *k;
    json_t *v;
    size_t i;
    char ip[16], gw[16], tmp[40];
    int rc = -1;

    gcmd_init(c);
    if (in->network && in->ipv4) {
        snprintf(tmp, sizeof tmp, "%s/%d", cfg_ip4_str(in->ipv4, ip), f->cfg.prefix);
        gcmd_env(c, "shoal.ip", tmp);
        gcmd_env(c, "shoal.gw", cfg_ip4_str(f->gateway, gw));
        gcmd_env(c, "shoal.mac", in->mac);
    }
    json_object_foreach(env, k, v)
        gcmd_env(c, k, json_string_value(v) ? json_string_value(v) : "");
    json_array_foreach(args, i, v)
        gcmd_arg(c, json_string_value(v) ? json_string_value(v) : "");
    rc = gcmd_finish(c, err, errlen);
    json_decref(args);
    json_decref(env);
    return rc;
}

struct fail_ctx {
    const char *why;
};

static void fail_fn(state_instance *in, void *ctx)
{
    struct fail_ctx *c = ctx;
    in->state = ST_FAILED;
    in->want_running = 0;
    snprintf(in->last_error, sizeof in->last_error, "%s", c->why);
}

struct starting_ctx {
    int64_t wall_ms;
};

static void starting_fn(state_instance *in, void *ctx)
{
    struct starting_ctx *c = ctx;
    in->state = ST_STARTING;
    in->started_ms = c->wall_ms;
    in->exit_code = -1;
    in->boot_us = -1;
    in->last_error[0] = 0;
}

/* Open the instance's published ports (a failure is reported, the guest
 * keeps running). */
static void publish_ports(fleet *f, const state_instance *in)
{
    char err[256];
    if (!f->pfwd || !in->ipv4)
        return;
    pfwd_remove(f->pfwd, in->id);
    for (int i = 0; i < in->nports; i++) {
        if (pfwd_add(f->pfwd, in->id, in->ports[i].host, in->ipv4, in->ports[i].guest, err,
                     sizeof err) != 0) {
            log_warn("instance %s: cannot publish %s", in->id, err);
            fleet_emit(f, "instance.warning", in->id, in->name, NULL, in->host, NULL, NULL, err);
        }
    }
}

static void job_start(fleet *f, const fleet_job *j)
{
    state_instance in;
    char err[NODE_ERR_MAX], console[1200], status[1200], dom[64];
    char *kernel = NULL;
    img_info info;
    img_err ierr;
    gcmd cmd;
    struct node *node = NULL;
    struct domxml_spec spec;
    struct fail_ctx fc;
    struct starting_ctx sc;
    fleet_rt *rt;
    int run_no = 0, have_row = 0;

    memset(&info, 0, sizeof info);
    if (state_inst_find(f->db, j->id, &in, err, sizeof err) != 0 || strcmp(in.id, j->id))
        goto out;
    have_row = 1;
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    if (!rt || !in.want_running || rt->active || fleet_state_live(in.state)) {
        pthread_mutex_unlock(&f->mu);
        goto out;
    }
    rt->backoff_due_ms = 0;
    pthread_mutex_unlock(&f->mu);

    if (!host_node(f, in.host, &node)) {
        /* Stays pending; reconnecting the host queues the start again. */
        snprintf(err, sizeof err, "waiting for host '%s' to come back", in.host);
        fleet_set_state(f, in.id, ST_PENDING, err);
        goto out;
    }
    if (img_get(f->img, in.image_digest, &info, &ierr) != 0 ||
        img_materialize(f->img, in.image_digest, &kernel, &ierr) != 0) {
        snprintf(err, sizeof err, "image %s: %s", in.image_digest, ierr.msg);
        fc.why = err;
        mutate(f, in.id, fail_fn, &fc);
        goto out;
    }
    if (build_cmdline(f, &in, &cmd, err, sizeof err) != 0) {
        fc.why = err;
        mutate(f, in.id, fail_fn, &fc);
        goto out;
    }
    fleet_console_path(f, in.id, console, sizeof console);
    fleet_status_path(f, in.id, status, sizeof status);
    domain_name(in.id, dom, sizeof dom);
    if (unlink(status) != 0 && errno != ENOENT)
        log_warn("instance %s: cannot reset '%s': %s", in.id, status, strerror(errno));

    memset(&spec, 0, sizeof spec);
    spec.name = dom;
    spec.virt = DOMXML_VIRT_AUTO;
    spec.boot = info.boot == IMG_BOOT_PVH ? DOMXML_BOOT_PVH : DOMXML_BOOT_MULTIBOOT;
    spec.memory_mib = (unsigned)in.memory_mib;
    spec.vcpus = (unsigned)in.vcpus;
    spec.kernel = kernel;
    spec.cmdline = cmd.buf;
    spec.console_log = console;
    spec.status_log = status;
    spec.instance_id = in.id;
    if (in.network && f->gateway) {
        spec.bridge = f->cfg.bridge;
        spec.mac = in.mac;
    }

    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    memset(&rt->tracker, 0, sizeof rt->tracker);
    rt->active = 1;
    rt->ready = 0;
    rt->have_outcome = 0;
    rt->end_reason[0] = 0;
    rt->stop_requested = 0;
    rt->run_start_ms = fleet_now_ms();
    if (!rt->request_ms)
        rt->request_ms = rt->run_start_ms;
    pthread_mutex_unlock(&f->mu);

    state_run_begin(f->db, in.id, fleet_wall_ms(), &run_no);
    sc.wall_ms = fleet_wall_ms();
    mutate(f, in.id, starting_fn, &sc);

    if (node_start(node, &spec, NULL, err, sizeof err) != NODE_OK) {
        pthread_mutex_lock(&f->mu);
        rt = fleet_rt_get(f, in.id);
        rt->active = 0;
        rt->request_ms = 0;
        pthread_mutex_unlock(&f->mu);
        state_run_end(f->db, in.id, run_no, fleet_wall_ms(), -1, "failed", err);
        fc.why = err;
        mutate(f, in.id, fail_fn, &fc);
        log_warn("instance %s: start failed: %s", in.id, err);
        goto out;
    }
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    rt->run_no = run_no;
    pthread_mutex_unlock(&f->mu);
    publish_ports(f, &in);
    log_info("instance %s (%s) started on %s", in.id, in.name, in.host);
    poll_status(f, in.id);
out:
    free(kernel);
    img_info_clear(&info);
    if (have_row)
        state_inst_free(&in);
}

/* ---- end of a run ------------------------------------------------------- */

struct end_ctx {
    state_inst_state st;
    int exit_code;
    const char *error;
    int restart;            /* 1: go to backoff */
};

static void end_fn(state_instance *in, void *ctx)
{
    struct end_ctx *c = ctx;
    in->state = c->restart ? ST_BACKOFF : c->st;
    in->exit_code = c->exit_code;
    snprintf(in->last_error, sizeof in->last_error, "%s", c->error ? c->error : "");
    if (c->restart)
        in->restarts++;
    else if (c->st != ST_STOPPED)
        in->want_running = 0;
}

static void job_domain_gone(fleet *f, const fleet_job *j)
{
    state_instance in;
    char err[512], text[300];
    const char *outcome;
    struct end_ctx c = { ST_EXITED, -1, NULL, 0 };
    fleet_rt *rt;
    int stop_requested, have_outcome, run_no, policy_restart = 0;
    gst_record rec;
    int64_t run_ms;

    if (state_inst_find(f->db, j->id, &in, err, sizeof err) != 0)
        return;
    if (strcmp(in.id, j->id) != 0) {
        state_inst_free(&in);
        return;
    }
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    if (!rt || !rt->active) {
        /* No domain of ours is running: a duplicate or stale event. */
        pthread_mutex_unlock(&f->mu);
        log_debug("instance %s: ignoring 'stopped' (%s) with no run active", in.id, j->detail);
        state_inst_free(&in);
        return;
    }
    pthread_mutex_unlock(&f->mu);
    /* Last records the guest wrote before it went. The tracker only reads
     * while active, so read before clearing the flag. */
    poll_status(f, in.id);
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    stop_requested = rt->stop_requested;
    have_outcome = rt->have_outcome;
    rec = rt->outcome;
    run_no = rt->run_no;
    run_ms = fleet_now_ms() - rt->run_start_ms;
    snprintf(text, sizeof text, "%s", rt->end_reason);
    rt->active = 0;
    rt->request_ms = 0;
    pthread_mutex_unlock(&f->mu);
    pfwd_remove(f->pfwd, in.id);
    rotate_console(f, in.id);

    if (have_outcome && rec.kind == GST_EXIT)
        c.exit_code = rec.exit_code;
    if (stop_requested) {
        c.st = ST_STOPPED;
        outcome = "stopped";
    } else if (have_outcome && rec.kind == GST_CRASH) {
        gst_crash_text(&rec, text, sizeof text);
        c.st = ST_CRASHED;
        outcome = "crashed";
    } else if (text[0]) {
        c.st = ST_CRASHED;
        outcome = "crashed";
    } else if (!strcmp(j->detail, "crashed")) {
        snprintf(text, sizeof text, "guest panicked (pvpanic)");
        c.st = ST_CRASHED;
        outcome = "crashed";
    } else if (have_outcome) {
        c.st = ST_EXITED;
        outcome = "exited";
    } else if (!strcmp(j->detail, "vanished")) {
        snprintf(text, sizeof text, "its domain vanished while shoald was not watching");
        c.st = ST_LOST;
        outcome = "lost";
    } else {
        snprintf(text, sizeof text, "guest stopped without reporting an exit status "
                 "(libvirt: %s)", j->detail[0] ? j->detail : "unknown");
        c.st = ST_CRASHED;
        outcome = "crashed";
    }
    c.error = text[0] ? text : NULL;
    state_run_end(f->db, in.id, run_no, fleet_wall_ms(), c.exit_code, outcome, text);

    if (!stop_requested && in.want_running) {
        if (in.restart == RESTART_ALWAYS)
            policy_restart = 1;
        else if (in.restart == RESTART_ON_FAILURE)
            policy_restart = c.st != ST_EXITED || c.exit_code != 0;
    }
    c.restart = policy_restart;
    if (policy_restart) {
        int64_t delay;
        pthread_mutex_lock(&f->mu);
        rt = fleet_rt_get(f, in.id);
        if (run_ms >= FLEET_STABLE_RUN_MS)
            rt->backoff_level = 0;
        delay = (int64_t)FLEET_BACKOFF_BASE_MS << (rt->backoff_level < 8 ? rt->backoff_level : 8);
        if (delay > FLEET_BACKOFF_CAP_MS)
            delay = FLEET_BACKOFF_CAP_MS;
        rt->backoff_level++;
        rt->backoff_due_ms = fleet_now_ms() + delay;
        pthread_mutex_unlock(&f->mu);
    }
    mutate(f, in.id, end_fn, &c);
    log_info("instance %s (%s) %s%s%s", in.id, in.name, outcome, text[0] ? ": " : "", text);
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    rt->stop_requested = 0;
    rt->have_outcome = 0;
    rt->end_reason[0] = 0;
    pthread_cond_broadcast(&f->state_cv);
    pthread_mutex_unlock(&f->mu);
    state_inst_free(&in);
}

/* A domain crashed or is stuck paused (KVM internal error): make sure it
 * goes, remembering why. The STOPPED event then ends the run. */
static void job_domain_crashed(fleet *f, const fleet_job *j)
{
    state_instance in;
    char err[NODE_ERR_MAX], dom[64];
    struct node *node;
    fleet_rt *rt;
    const char *why;

    if (state_inst_find(f->db, j->id, &in, err, sizeof err) != 0)
        return;
    if (!strcmp(j->detail, "kvm-internal-error") || !strcmp(j->detail, "paused-crashed"))
        why = "KVM internal error: the guest stopped on an instruction this host's KVM "
              "cannot run; start it on a host with domain type qemu";
    else if (!strcmp(j->detail, "panicked"))
        why = "guest panicked (pvpanic)";
    else
        why = "guest crashed";
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    if (!rt->end_reason[0])
        snprintf(rt->end_reason, sizeof rt->end_reason, "%s", why);
    pthread_mutex_unlock(&f->mu);
    domain_name(in.id, dom, sizeof dom);
    if (host_node(f, in.host, &node)) {
        int rc = node_destroy(node, dom, err, sizeof err);
        if (rc != NODE_OK && rc != NODE_E_NOTFOUND)
            log_warn("instance %s: destroy after crash failed: %s", in.id, err);
    }
    state_inst_free(&in);
}

static void *worker_main(void *arg)
{
    fleet *f = arg;
    pthread_mutex_lock(&f->mu);
    while (!f->stopping) {
        fleet_job *j = take_job(f);
        fleet_rt *rt;
        if (!j) {
            pthread_cond_wait(&f->job_cv, &f->mu);
            continue;
        }
        pthread_mutex_unlock(&f->mu);
        switch (j->kind) {
        case JOB_START:
            job_start(f, j);
            break;
        case JOB_DOMAIN_GONE:
            job_domain_gone(f, j);
            break;
        case JOB_DOMAIN_CRASHED:
            job_domain_crashed(f, j);
            break;
        }
        pthread_mutex_lock(&f->mu);
        rt = fleet_rt_get(f, j->id);
        if (rt)
            rt->busy = 0;
        /* Others may be waiting for this instance to be free. */
        pthread_cond_broadcast(&f->job_cv);
        pthread_cond_broadcast(&f->state_cv);
        free(j);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* ---- node events (libvirt's thread: queue only) ------------------------- */

static void on_node_event(struct node *node, const char *instance_id, enum node_event ev,
                          const char *detail, void *user)
{
    fleet *f = user;
    switch (ev) {
    case NODE_EVENT_STOPPED:
        fleet_queue(f, JOB_DOMAIN_GONE, instance_id, detail);
        break;
    case NODE_EVENT_CRASHED:
        fleet_queue(f, JOB_DOMAIN_CRASHED, instance_id, detail);
        break;
    case NODE_EVENT_CONN_LOST: {
        uint64_t one = 1;
        pthread_mutex_lock(&f->mu);
        for (size_t i = 0; i < f->nhosts; i++) {
            if (f->hosts[i].node == node) {
                f->hosts[i].up = 0;
                snprintf(f->hosts[i].last_error, sizeof f->hosts[i].last_error,
                         "connection lost (%s)", detail ? detail : "unknown");
                f->hosts[i].next_retry_ms = 0;
            }
        }
        pthread_mutex_unlock(&f->mu);
        if (write(f->wake_fd, &one, sizeof one) < 0)
            log_warn("cannot wake supervisor: %s", strerror(errno));
        break;
    }
    default:
        break;
    }
}

/* ---- reconcile ---------------------------------------------------------- */

/* Bring the rows of host h in line with the domains it really runs. */
static void reconcile_host(fleet *f, const char *host_name)
{
    struct node *node;
    struct node_dom *doms = NULL;
    size_t ndoms = 0;
    state_instance *rows = NULL;
    size_t nrows = 0;
    char err[NODE_ERR_MAX];

    if (!host_node(f, host_name, &node))
        return;
    if (node_list(node, &doms, &ndoms, err, sizeof err) != NODE_OK) {
        log_warn("host %s: cannot list domains: %s", host_name, err);
        return;
    }
    if (state_inst_list(f->db, &rows, &nrows, err, sizeof err) != 0) {
        log_warn("reconcile: %s", err);
        node_list_free(doms);
        return;
    }
    /* Domains: adopt ours, destroy unknown ones. */
    for (size_t d = 0; d < ndoms; d++) {
        state_instance *row = NULL;
        for (size_t r = 0; r < nrows; r++) {
            if (!strcmp(rows[r].id, doms[d].instance_id)) {
                row = &rows[r];
                break;
            }
        }
        if (!row || strcmp(row->host, host_name) != 0 || !row->want_running) {
            log_warn("host %s: destroying domain '%s' (instance '%s' is %s)", host_name,
                     doms[d].name, doms[d].instance_id,
                     !row ? "unknown" : !row->want_running ? "not meant to run" : "elsewhere");
            if (row && !row->want_running) {
                pthread_mutex_lock(&f->mu);
                fleet_rt *rt = fleet_rt_get(f, row->id);
                rt->active = 1;
                rt->stop_requested = 1;
                pthread_mutex_unlock(&f->mu);
            }
            if (node_destroy(node, doms[d].name, err, sizeof err) != NODE_OK)
                log_warn("host %s: destroy '%s' failed: %s", host_name, doms[d].name, err);
            continue;
        }
        pthread_mutex_lock(&f->mu);
        fleet_rt *rt = fleet_rt_get(f, row->id);
        int was_active = rt->active;
        rt->active = 1;
        if (!was_active)
            rt->run_start_ms = fleet_now_ms();
        pthread_mutex_unlock(&f->mu);
        if (!was_active) {
            log_info("instance %s (%s): adopted running domain on %s", row->id, row->name,
                     host_name);
            if (!fleet_state_live(row->state))
                fleet_set_state(f, row->id, ST_STARTING, NULL);
            publish_ports(f, row);
        }
        if (doms[d].internal_error)
            fleet_queue(f, JOB_DOMAIN_CRASHED, row->id, "kvm-internal-error");
        poll_status(f, row->id);
    }
    /* Rows: live ones without a domain ended while we were away. */
    for (size_t r = 0; r < nrows; r++) {
        state_instance *row = &rows[r];
        int found = 0;
        if (strcmp(row->host, host_name) != 0)
            continue;
        for (size_t d = 0; d < ndoms; d++)
            found |= !strcmp(doms[d].instance_id, row->id);
        if (found)
            continue;
        if (fleet_state_live(row->state)) {
            pthread_mutex_lock(&f->mu);
            fleet_rt *rt = fleet_rt_get(f, row->id);
            int was_active = rt->active;
            rt->active = 1;  /* so the final status poll reads the file */
            if (row->state == ST_STOPPING)
                rt->stop_requested = 1;
            pthread_mutex_unlock(&f->mu);
            fleet_queue(f, JOB_DOMAIN_GONE, row->id, was_active ? "unknown" : "vanished");
        } else if (row->want_running && (row->state == ST_PENDING || row->state == ST_BACKOFF)) {
            fleet_queue(f, JOB_START, row->id, NULL);
        }
    }
    state_inst_array_free(rows, nrows);
    node_list_free(doms);
}

/* ---- hosts -------------------------------------------------------------- */

static void open_host(fleet *f, size_t idx)
{
    fleet_host *h = &f->hosts[idx];
    struct node_opts o;
    struct node *node = NULL;
    struct node_capacity cap;
    char err[NODE_ERR_MAX], uri[STATE_URI_MAX], dt[8];
    int64_t t0 = fleet_now_ms();

    pthread_mutex_lock(&f->mu);
    /* One opener at a time: two nodes on one host would each deliver every
     * event, and a duplicate "stopped" would end the next run too. */
    if (h->opening || h->up) {
        pthread_mutex_unlock(&f->mu);
        return;
    }
    h->opening = 1;
    snprintf(uri, sizeof uri, "%s", h->uri);
    snprintf(dt, sizeof dt, "%s", h->domain_type_cfg);
    pthread_mutex_unlock(&f->mu);

    memset(&o, 0, sizeof o);
    o.domain_type = !strcmp(dt, "kvm") ? DOMXML_VIRT_KVM
                  : !strcmp(dt, "qemu") ? DOMXML_VIRT_QEMU : DOMXML_VIRT_AUTO;
    o.state_dir = f->cfg.state_dir;
    o.on_event = on_node_event;
    o.user = f;
    if (node_open(uri, &o, &node, err, sizeof err) != NODE_OK) {
        pthread_mutex_lock(&f->mu);
        snprintf(h->last_error, sizeof h->last_error, "%s", err);
        h->up = 0;
        h->opening = 0;
        h->next_retry_ms = fleet_now_ms() + 10000;
        pthread_mutex_unlock(&f->mu);
        log_warn("host %s (%s) is down: %s", h->name, uri, err);
        return;
    }
    memset(&cap, 0, sizeof cap);
    node_capacity(node, &cap, err, sizeof err);
    pthread_mutex_lock(&f->mu);
    h->node = node;
    h->up = 1;
    h->opening = 0;
    h->last_error[0] = 0;
    h->mem_mib = cap.memory_mib;
    h->vcpus = cap.vcpus;
    if (!h->slots)
        h->slots = (uint32_t)f->cfg.max_instances;
    pthread_mutex_unlock(&f->mu);
    log_info("host %s (%s) up in %lld ms: %llu MiB, %u vCPUs, domain type %s (%s)", h->name,
             uri, (long long)(fleet_now_ms() - t0), (unsigned long long)cap.memory_mib,
             cap.vcpus, fleet_host_domain_type(h), node_domain_type_reason(node));
    fleet_emit(f, "host.state", NULL, h->name, "up", h->name, NULL, NULL, NULL);
    reconcile_host(f, h->name);
}

int fleet_host_add(fleet *f, const char *name, const char *uri, const char *labels_json,
                   const char *domain_type, api_status *st)
{
    state_host row;
    char err[256];
    size_t idx;

    if (!strncmp(uri, "qemu:///embed", 13))
        return api_status_set(st, API_E_INVALID_FIELD, "uri",
                              "uri '%s': only the local host uses the embedded driver "
                              "(one per process); add hosts through libvirtd URIs", uri);
    pthread_mutex_lock(&f->mu);
    if (fleet_host_find(f, name)) {
        pthread_mutex_unlock(&f->mu);
        return api_status_set(st, API_E_CONFLICT, "name", "host '%s' already exists", name);
    }
    /* One URI is one machine: two hosts on it would each reconcile away
     * the other's domains. */
    for (size_t i = 0; i < f->nhosts; i++) {
        if (!strcmp(f->hosts[i].uri, uri)) {
            char other[STATE_NAME_MAX];
            snprintf(other, sizeof other, "%s", f->hosts[i].name);
            pthread_mutex_unlock(&f->mu);
            return api_status_set(st, API_E_CONFLICT, "uri", "uri '%s' is already host '%s'",
                                  uri, other);
        }
    }
    if (f->nhosts >= FLEET_MAX_HOSTS) {
        pthread_mutex_unlock(&f->mu);
        return api_status_set(st, API_E_CONFLICT, NULL, "at most %d hosts", FLEET_MAX_HOSTS);
    }
    idx = f->nhosts++;
    memset(&f->hosts[idx], 0, sizeof f->hosts[idx]);
    snprintf(f->hosts[idx].name, sizeof f->hosts[idx].name, "%s", name);
    snprintf(f->hosts[idx].uri, sizeof f->hosts[idx].uri, "%s", uri);
    snprintf(f->hosts[idx].domain_type_cfg, sizeof f->hosts[idx].domain_type_cfg, "%s",
             domain_type);
    f->hosts[idx].labels_json = strdup(labels_json ? labels_json : "{}");
    f->hosts[idx].slots = (uint32_t)f->cfg.max_instances;
    /* open_host below does the first connect; the supervisor waits. */
    f->hosts[idx].next_retry_ms = fleet_now_ms() + 10000;
    pthread_mutex_unlock(&f->mu);

    memset(&row, 0, sizeof row);
    snprintf(row.name, sizeof row.name, "%s", name);
    snprintf(row.uri, sizeof row.uri, "%s", uri);
    row.labels_json = (char *)(labels_json ? labels_json : "{}");
    snprintf(row.domain_type, sizeof row.domain_type, "%s", domain_type);
    if (state_host_upsert(f->db, &row, err, sizeof err) != 0)
        return api_status_set(st, API_E_INTERNAL, NULL, "%s", err);
    fleet_emit(f, "host.added", NULL, name, NULL, name, NULL, NULL, NULL);
    open_host(f, idx);
    return API_OK;
}

/* ---- operations --------------------------------------------------------- */

/* Wait until no job runs for the instance and, with need_inactive, until
 * it has no domain either. 1 when reached, 0 on timeout. */
static int wait_rt(fleet *f, const char *id, int need_inactive, int timeout_ms)
{
    int64_t deadline = fleet_now_ms() + timeout_ms;
    int quiet = 0;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        fleet_rt *rt = fleet_rt_get(f, id);
        struct timespec ts;
        int64_t left = deadline - fleet_now_ms();
        if (!rt || (!rt->busy && (!need_inactive || !rt->active))) {
            quiet = 1;
            break;
        }
        if (left <= 0)
            break;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (left > 200 ? 200 : left) / 1000;
        ts.tv_nsec += ((left > 200 ? 200 : left) % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&f->state_cv, &f->mu, &ts);
    }
    pthread_mutex_unlock(&f->mu);
    return quiet;
}

static void want_down_fn(state_instance *in, void *ctx)
{
    int *stopping = ctx;
    in->want_running = 0;
    if (*stopping)
        in->state = ST_STOPPING;
    else if (in->state == ST_PENDING || in->state == ST_BACKOFF)
        in->state = ST_STOPPED;
}

static int lookup(fleet *f, const char *key, state_instance *in, api_status *st)
{
    char err[256];
    int rc = state_inst_find(f->db, key, in, err, sizeof err);
    if (rc == STATE_ENOTFOUND)
        return api_status_set(st, API_E_NOT_FOUND, "id", "instance '%s' not found", key);
    if (rc == STATE_ECONFLICT)
        return api_status_set(st, API_E_CONFLICT, "id", "%s", err);
    if (rc != 0)
        return api_status_set(st, API_E_INTERNAL, NULL, "%s", err);
    return API_OK;
}

int fleet_stop(fleet *f, const char *key, int timeout_s, api_status *st)
{
    state_instance in;
    char err[NODE_ERR_MAX], dom[64];
    struct node *node;
    fleet_rt *rt;
    int active, stopping, rc;

    if ((rc = lookup(f, key, &in, st)) != API_OK)
        return rc;
    if (timeout_s < 0)
        timeout_s = FLEET_STOP_TIMEOUT_S;
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    active = rt->active || rt->busy;
    rt->backoff_due_ms = 0;
    if (active)
        rt->stop_requested = 1;
    pthread_mutex_unlock(&f->mu);
    stopping = active;
    mutate(f, in.id, want_down_fn, &stopping);
    if (active) {
        /* A start job may still be creating the domain: let it finish. */
        wait_rt(f, in.id, 0, 30000);
        domain_name(in.id, dom, sizeof dom);
        if (host_node(f, in.host, &node)) {
            rc = node_shutdown(node, dom, (unsigned)timeout_s * 1000u, NULL, err, sizeof err);
            if (rc != NODE_OK && rc != NODE_E_NOTFOUND) {
                state_inst_free(&in);
                return api_status_set(st, API_E_UNAVAILABLE, NULL, "stopping '%s': %s",
                                      key, err);
            }
        }
        if (!wait_rt(f, in.id, 1, 15000))
            log_warn("instance %s: still not stopped 15 s after destroy", in.id);
    }
    state_inst_free(&in);
    return API_OK;
}

static void want_up_fn(state_instance *in, void *ctx)
{
    (void)ctx;
    in->want_running = 1;
    in->state = ST_PENDING;
    in->exit_code = -1;
    in->last_error[0] = 0;
}

int fleet_start(fleet *f, const char *key, api_status *st)
{
    state_instance in;
    fleet_rt *rt;
    int rc;

    if ((rc = lookup(f, key, &in, st)) != API_OK)
        return rc;
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    if (rt->active || fleet_state_live(in.state)) {
        pthread_mutex_unlock(&f->mu);
        rc = api_status_set(st, API_E_CONFLICT, "id", "instance '%s' is already %s", key,
                            state_inst_state_name(in.state));
        state_inst_free(&in);
        return rc;
    }
    rt->request_ms = fleet_now_ms();
    rt->backoff_due_ms = 0;
    rt->backoff_level = 0;
    pthread_mutex_unlock(&f->mu);
    mutate(f, in.id, want_up_fn, NULL);
    fleet_queue(f, JOB_START, in.id, NULL);
    state_inst_free(&in);
    return API_OK;
}

int fleet_delete(fleet *f, const char *key, int force, api_status *st)
{
    state_instance in;
    char err[NODE_ERR_MAX], dom[64], path[1200];
    struct node *node;
    fleet_rt *rt;
    img_err ierr;
    int active, rc, stopping = 0;

    if ((rc = lookup(f, key, &in, st)) != API_OK)
        return rc;
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    active = rt->active || rt->busy || fleet_state_live(in.state);
    if (active && !force) {
        pthread_mutex_unlock(&f->mu);
        rc = api_status_set(st, API_E_CONFLICT, "id", "instance '%s' is %s; stop it first "
                            "or delete with force", key, state_inst_state_name(in.state));
        state_inst_free(&in);
        return rc;
    }
    rt->stop_requested = 1;
    rt->backoff_due_ms = 0;
    pthread_mutex_unlock(&f->mu);
    mutate(f, in.id, want_down_fn, &stopping);
    wait_rt(f, in.id, 0, 30000);
    domain_name(in.id, dom, sizeof dom);
    if (host_node(f, in.host, &node)) {
        rc = node_destroy(node, dom, err, sizeof err);
        if (rc != NODE_OK && rc != NODE_E_NOTFOUND)
            log_warn("instance %s: destroy: %s", in.id, err);
    }
    if (!wait_rt(f, in.id, 1, 15000)) {
        state_inst_free(&in);
        return api_status_set(st, API_E_UNAVAILABLE, NULL,
                              "instance '%s' did not stop; try again", key);
    }
    if (state_inst_delete(f->db, in.id, err, sizeof err) != 0) {
        state_inst_free(&in);
        return api_status_set(st, API_E_INTERNAL, NULL, "%s", err);
    }
    pfwd_remove(f->pfwd, in.id);
    if (img_ref_release(f->img, in.image_digest, &ierr) != 0)
        log_warn("instance %s: releasing image %s: %s", in.id, in.image_digest, ierr.msg);
    fleet_console_path(f, in.id, path, sizeof path);
    unlink(path);
    strncat(path, ".1", sizeof path - strlen(path) - 1);
    unlink(path);
    fleet_status_path(f, in.id, path, sizeof path);
    unlink(path);
    pthread_mutex_lock(&f->mu);
    fleet_rt_drop(f, in.id);
    pthread_mutex_unlock(&f->mu);
    fleet_emit(f, "instance.deleted", in.id, in.name, NULL, in.host, in.image_ref, NULL, NULL);
    log_info("instance %s (%s) deleted", in.id, in.name);
    state_inst_free(&in);
    return API_OK;
}

/* ---- supervisor --------------------------------------------------------- */

/* Keep each console under the budget: the older half moves to .1. QEMU
 * writes with O_APPEND, so truncating under it is safe. */
static void rotate_console(fleet *f, const char *id)
{
    char path[1200], old[1210];
    struct stat sb;
    off_t max = (off_t)f->cfg.console_max_kib * 1024;
    int in = -1, out = -1;
    char buf[65536];
    ssize_t n;

    fleet_console_path(f, id, path, sizeof path);
    if (stat(path, &sb) != 0 || sb.st_size <= max)
        return;
    snprintf(old, sizeof old, "%s.1", path);
    in = open(path, O_RDWR | O_CLOEXEC);
    out = open(old, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (in < 0 || out < 0)
        goto out;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        if (write(out, buf, (size_t)n) != n)
            goto out;
    }
    if (ftruncate(in, 0) != 0)
        log_warn("instance %s: cannot truncate console: %s", id, strerror(errno));
out:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
}

static void supervise_tick(fleet *f, int64_t now, int *last_trim)
{
    char (*ids)[STATE_ID_LEN + 1] = NULL;
    size_t n = 0;
    char (*due)[STATE_ID_LEN + 1] = NULL;
    size_t ndue = 0;
    size_t reopen[FLEET_MAX_HOSTS];
    size_t nreopen = 0;

    pthread_mutex_lock(&f->mu);
    ids = calloc(f->nrt + 1, sizeof *ids);
    due = calloc(f->nrt + 1, sizeof *due);
    for (size_t i = 0; ids && due && i < f->nrt; i++) {
        fleet_rt *rt = &f->rt[i];
        if (rt->active)
            memcpy(ids[n++], rt->id, sizeof ids[0]);
        if (rt->backoff_due_ms && rt->backoff_due_ms <= now) {
            rt->backoff_due_ms = 0;
            memcpy(due[ndue++], rt->id, sizeof due[0]);
        }
    }
    for (size_t i = 0; i < f->nhosts; i++) {
        fleet_host *h = &f->hosts[i];
        if (!h->up && !h->opening && h->next_retry_ms <= now) {
            h->next_retry_ms = now + 10000;
            reopen[nreopen++] = i;
        }
    }
    pthread_mutex_unlock(&f->mu);

    for (size_t i = 0; i < n; i++) {
        poll_status(f, ids[i]);
        rotate_console(f, ids[i]);
    }
    for (size_t i = 0; i < ndue; i++)
        fleet_queue(f, JOB_START, due[i], NULL);
    for (size_t i = 0; i < nreopen; i++) {
        fleet_host *h = &f->hosts[reopen[i]];
        char err[NODE_ERR_MAX];
        if (h->node) {
            if (node_reconnect(h->node, err, sizeof err) == NODE_OK) {
                pthread_mutex_lock(&f->mu);
                h->up = 1;
                h->last_error[0] = 0;
                pthread_mutex_unlock(&f->mu);
                log_info("host %s reconnected", h->name);
                fleet_emit(f, "host.state", NULL, h->name, "up", h->name, NULL, NULL, NULL);
                reconcile_host(f, h->name);
            } else {
                log_warn("host %s: reconnect failed: %s", h->name, err);
            }
        } else {
            open_host(f, reopen[i]);
        }
    }
    if (++*last_trim >= 120) {
        *last_trim = 0;
        state_event_trim(f->db, FLEET_EVENTS_KEEP);
    }
    free(ids);
    free(due);
}

static void *supervisor_main(void *arg)
{
    fleet *f = arg;
    int64_t last_tick = 0;
    int trim = 0;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));

    for (;;) {
        struct pollfd p[2] = { { f->inotify_fd, POLLIN, 0 }, { f->wake_fd, POLLIN, 0 } };
        int64_t now;
        pthread_mutex_lock(&f->mu);
        int stop = f->stopping;
        pthread_mutex_unlock(&f->mu);
        if (stop)
            break;
        if (poll(p, 2, 500) > 0) {
            if (p[0].revents & POLLIN) {
                ssize_t len = read(f->inotify_fd, buf, sizeof buf);
                for (ssize_t off = 0; len > 0 && off < len;) {
                    const struct inotify_event *ev = (const void *)(buf + off);
                    size_t nl = ev->len ? strlen(ev->name) : 0;
                    if (nl == STATE_ID_LEN + 7 && !strcmp(ev->name + STATE_ID_LEN, ".status")) {
                        char id[STATE_ID_LEN + 1];
                        memcpy(id, ev->name, STATE_ID_LEN);
                        id[STATE_ID_LEN] = 0;
                        poll_status(f, id);
                    }
                    off += (ssize_t)(sizeof *ev + ev->len);
                }
            }
            if (p[1].revents & POLLIN) {
                uint64_t v;
                if (read(f->wake_fd, &v, sizeof v) < 0)
                    log_debug("wake read: %s", strerror(errno));
            }
        }
        now = fleet_now_ms();
        if (now - last_tick >= 500) {
            last_tick = now;
            supervise_tick(f, now, &trim);
        }
    }
    return NULL;
}

/* ---- open / close ------------------------------------------------------- */

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, mode) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(tmp, mode) != 0 && errno != EEXIST ? -1 : 0;
}

/* A SQLite database and its journals readable by root only (they hold
 * instance environments). SQLite creates -wal/-shm with the database's
 * mode; the chmods of the journals cover databases from older versions. */
static void private_files(const char *db)
{
    char p[4200];
    chmod(db, 0600);
    snprintf(p, sizeof p, "%s-wal", db);
    chmod(p, 0600);
    snprintf(p, sizeof p, "%s-shm", db);
    chmod(p, 0600);
}

/* Read STATE_DIR/admin.token, creating it (0600) on first start. */
static int load_token(fleet *f, char *err, size_t errlen)
{
    char path[1100];
    unsigned char raw[24];
    FILE *fp;
    int fd;

    snprintf(path, sizeof path, "%s/admin.token", f->cfg.state_dir);
    fp = fopen(path, "r");
    if (fp) {
        int ok = fgets(f->token, sizeof f->token, fp) != NULL;
        fclose(fp);
        f->token[strcspn(f->token, "\r\n")] = 0;
        if (ok && strlen(f->token) >= 16)
            return 0;
        snprintf(err, errlen, "token file '%s' is empty or too short", path);
        return -1;
    }
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        snprintf(err, errlen, "getrandom: %s", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(f->token + 2 * i, 3, "%02x", raw[i]);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, f->token, strlen(f->token)) != (ssize_t)strlen(f->token) ||
        write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
        snprintf(err, errlen, "cannot write token file '%s': %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    log_info("created admin token in %s", path);
    return 0;
}

static int load_hosts(fleet *f, char *err, size_t errlen)
{
    state_host *rows = NULL, local;
    size_t n = 0;
    char uri[STATE_URI_MAX];

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
    if (state_host_upsert(f->db, &local, err, errlen) != 0) {
        state_host_array_free(rows, n);
        return -1;
    }
    state_host_array_free(rows, n);
    if (state_host_list(f->db, &rows, &n, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < n && f->nhosts < FLEET_MAX_HOSTS; i++) {
        fleet_host *h = &f->hosts[f->nhosts++];
        memset(h, 0, sizeof *h);
        snprintf(h->name, sizeof h->name, "%s", rows[i].name);
        snprintf(h->uri, sizeof h->uri, "%s", rows[i].uri);
        h->labels_json = strdup(rows[i].labels_json);
        h->cordoned = rows[i].cordoned;
        snprintf(h->domain_type_cfg, sizeof h->domain_type_cfg, "%s", rows[i].domain_type);
        h->slots = (uint32_t)f->cfg.max_instances;
    }
    state_host_array_free(rows, n);
    return 0;
}

int fleet_open(const cfg_t *cfg, fleet **out, char *err, size_t errlen)
{
    fleet *f = calloc(1, sizeof *f);
    char path[1100];
    img_opts io;
    img_err ierr;
    state_instance *rows = NULL;
    size_t nrows = 0;
    int started = 0;

    *out = NULL;
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    f->cfg = *cfg;
    f->inotify_fd = f->wake_fd = -1;
    pthread_mutex_init(&f->mu, NULL);
    pthread_mutex_init(&f->create_mu, NULL);
    pthread_cond_init(&f->job_cv, NULL);
    pthread_cond_init(&f->state_cv, NULL);
    pthread_cond_init(&f->event_cv, NULL);
    snprintf(f->run_dir, sizeof f->run_dir, "%s/run", cfg->state_dir);
    snprintf(f->log_dir, sizeof f->log_dir, "%s/logs", cfg->state_dir);
    /* 0711, not 0700: a QEMU started by a libvirt daemon (a qemu:///system
     * host on this machine) runs as libvirt's qemu user and must get through
     * these directories to the image, console and status files libvirt
     * relabels for it. Nobody else can list them; the databases and the
     * token are 0600. */
    if (mkdir_p(cfg->state_dir, 0711) != 0 || chmod(cfg->state_dir, 0711) != 0 ||
        mkdir_p(f->run_dir, 0711) != 0 || chmod(f->run_dir, 0711) != 0 ||
        mkdir_p(f->log_dir, 0711) != 0 || chmod(f->log_dir, 0711) != 0) {
        snprintf(err, errlen, "cannot create state dir '%s': %s", cfg->state_dir,
                 strerror(errno));
        goto fail;
    }
    if (load_token(f, err, errlen) != 0)
        goto fail;
    snprintf(path, sizeof path, "%s/shoald.db", cfg->state_dir);
    if (state_open(path, &f->db, err, errlen) != 0)
        goto fail;
    private_files(path);
    f->last_event_id = state_event_last_id(f->db);
    memset(&io, 0, sizeof io);
    snprintf(path, sizeof path, "%s/images.db", cfg->state_dir);
    if (img_store_open(path, &io, &f->img, &ierr) != 0) {
        snprintf(err, errlen, "image store: %s", ierr.msg);
        goto fail;
    }
    private_files(path);
    if (cfg->network) {
        char gw[16];
        f->gateway = cfg->subnet + 1;
        if (netbr_create(cfg->bridge, cfg_ip4_str(f->gateway, gw), (unsigned)cfg->prefix,
                         err, errlen) != NETBR_OK) {
            size_t l = strlen(err);
            snprintf(err + l, errlen - l, " (run with --no-network to start without guest "
                     "networking)");
            goto fail;
        }
    }
    f->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    f->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (f->inotify_fd < 0 || f->wake_fd < 0 ||
        inotify_add_watch(f->inotify_fd, f->run_dir, IN_MODIFY | IN_CLOSE_WRITE) < 0) {
        snprintf(err, errlen, "inotify on '%s': %s", f->run_dir, strerror(errno));
        goto fail;
    }
    if (pfwd_start(cfg->publish_addr, &f->pfwd, err, errlen) != 0)
        goto fail;
    if (load_hosts(f, err, errlen) != 0)
        goto fail;

    /* Every instance row holds one reference on its image. */
    if (img_refs_reset(f->img, &ierr) != 0) {
        snprintf(err, errlen, "image store: %s", ierr.msg);
        goto fail;
    }
    if (state_inst_list(f->db, &rows, &nrows, err, errlen) != 0)
        goto fail;
    for (size_t i = 0; i < nrows; i++) {
        if (img_ref_acquire(f->img, rows[i].image_digest, &ierr) != 0)
            log_warn("instance %s: image %s: %s", rows[i].id, rows[i].image_digest, ierr.msg);
    }
    state_inst_array_free(rows, nrows);

    for (int i = 0; i < FLEET_WORKERS; i++) {
        if (pthread_create(&f->workers[i], NULL, worker_main, f) != 0) {
            snprintf(err, errlen, "cannot start worker threads");
            goto fail_threads;
        }
        started++;
    }
    /* Hosts open (and reconcile) with workers running, so that jobs queued
     * by reconcile and by events are served at once. */
    for (size_t i = 0; i < f->nhosts; i++)
        open_host(f, i);
    if (pthread_create(&f->supervisor, NULL, supervisor_main, f) != 0) {
        snprintf(err, errlen, "cannot start supervisor thread");
        goto fail_threads;
    }
    *out = f;
    return 0;

fail_threads:
    pthread_mutex_lock(&f->mu);
    f->stopping = 1;
    pthread_cond_broadcast(&f->job_cv);
    pthread_mutex_unlock(&f->mu);
    for (int i = 0; i < started; i++)
        pthread_join(f->workers[i], NULL);
    for (size_t i = 0; i < f->nhosts; i++)
        node_close(f->hosts[i].node);
fail:
    for (size_t i = 0; i < f->nhosts; i++)
        free(f->hosts[i].labels_json);
    pfwd_stop(f->pfwd);
    if (f->inotify_fd >= 0)
        close(f->inotify_fd);
    if (f->wake_fd >= 0)
        close(f->wake_fd);
    img_store_close(f->img);
    state_close(f->db);
    free(f->rt);
    free(f->rt_index);
    free(f);
    return -1;
}

void fleet_close(fleet *f)
{
    uint64_t one = 1;
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    f->stopping = 1;
    pthread_cond_broadcast(&f->job_cv);
    pthread_cond_broadcast(&f->event_cv);
    pthread_cond_broadcast(&f->state_cv);
    pthread_mutex_unlock(&f->mu);
    if (write(f->wake_fd, &one, sizeof one) < 0)
        log_warn("cannot wake supervisor: %s", strerror(errno));
    pthread_join(f->supervisor, NULL);
    for (int i = 0; i < FLEET_WORKERS; i++)
        pthread_join(f->workers[i], NULL);
    for (size_t i = 0; i < f->nhosts; i++) {
        node_close(f->hosts[i].node);
        free(f->hosts[i].labels_json);
    }
    while (f->jobs) {
        fleet_job *j = f->jobs;
        f->jobs = j->next;
        free(j);
    }
    pfwd_stop(f->pfwd);
    close(f->inotify_fd);
    close(f->wake_fd);
    free(f->rt);
    free(f->rt_index);
    img_store_close(f->img);
    state_close(f->db);
    pthread_mutex_destroy(&f->mu);
    pthread_mutex_destroy(&f->create_mu);
    pthread_cond_destroy(&f->job_cv);
    pthread_cond_destroy(&f->state_cv);
    pthread_cond_destroy(&f->event_cv);
    free(f);
}
