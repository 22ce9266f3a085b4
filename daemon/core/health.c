/* health.c - readiness and health probes of instances (probe.h's engine
 * wired into the fleet; docs/shoald.md "Probes").
 *
 * At create the readiness probe is decided once and stored in the row
 * (fleet_probe_plan): the one asked for, else the image profile's, else
 * `status` for an image with shoal's status channel, else `tcp:GUEST` of
 * the first published TCP port, else `none` (ready when the domain runs);
 * the health probe likewise (the run's, else the image's, else none). An
 * image's stored probes are checked here too (fleet_profile_probe_check). At every start of a run
 * (run.c) and adoption of a running domain (reconcile.c) the instance is
 * watched by the probe engine; the engine's notes (on its thread) only
 * queue a JOB_PROBE, which an event worker runs here: ready -> running,
 * healthy/unhealthy -> events, and an unhealthy instance whose restart
 * policy is on-failure or always is destroyed, which ends its run crashed
 * ("unhealthy: ...") and lets the policy start it again. */
#include "fleet_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot.h"
#include "log.h"
#include "probe.h"

/* ---- the engine's notes (probe thread: queue only) ------------------------ */

/* Take run gen of id as ready at at_ms (monotonic) if it is that run and
 * it was not: 1 with its ready time in *ready_ms (-1 unknown), counted in
 * the histogram. Takes f->mu (briefly: any thread, the probe thread too). */
static int accept_ready(fleet *f, const char *id, int gen, int64_t at_ms, double *ready_ms)
{
    fleet_rt *rt;
    int first = 0;

    *ready_ms = -1;
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_find(f, id);
    if (rt && rt->active && rt->run_no == gen && !rt->ready) {
        rt->ready = 1;
        first = 1;
        if (rt->request_ms) {
            *ready_ms = (double)(at_ms - rt->request_ms);
            fleet_observe_ready(f, *ready_ms);
        }
    }
    pthread_cond_broadcast(&f->state_cv);
    pthread_mutex_unlock(&f->mu);
    return first;
}

static void on_note(void *user, const probe_note *n)
{
    fleet *f = user;
    char detail[64];
    double ready_ms;
    static const char *const what[] = { "ready", "healthy", "unhealthy", "slow" };

    /* Ready is taken here, while the run is surely live: a guest that is
     * ready and powers off at once may have its end queued before this
     * note's job, which then only records it. */
    if (n->kind == PROBE_NOTE_READY) {
        if (!accept_ready(f, n->id, (int)n->gen, n->at_ms, &ready_ms))
            return;
        snprintf(detail, sizeof detail, "ready %" PRIu64 " %.0f", n->gen, ready_ms);
    } else {
        snprintf(detail, sizeof detail, "%s %" PRIu64 " %lld", what[n->kind], n->gen,
                 (long long)n->at_ms);
    }
    fleet_queue(f, JOB_PROBE, n->id, detail);
}

int fleet_probes_open(fleet *f, char *err, size_t errlen)
{
    return probe_open(on_note, f, &f->probes, err, errlen);
}

void fleet_probes_close(fleet *f)
{
    probe_close(f->probes);
    f->probes = NULL;
}

/* ---- create: decide and check ------------------------------------------------ */

/* The default readiness probe of a row (docs/shoald.md "Probes"). */
static void default_ready(const state_instance *in, int status_channel, char *out, size_t len)
{
    if (status_channel) {
        snprintf(out, len, "status");
        return;
    }
    for (int i = 0; in->network && i < in->nports; i++) {
        if (in->ports[i].proto == STATE_PROTO_TCP) {
            snprintf(out, len, "tcp:%d", in->ports[i].guest);
            return;
        }
    }
    snprintf(out, len, "none");
}

/* The health numbers' bounds (probe.h), the field named when one is
 * out: NULL when all are in. */
static const char *health_numbers_bad(uint32_t interval_s, uint32_t timeout_s, uint32_t retries,
                                      char *msg, size_t len)
{
    if (interval_s > PROBE_INTERVAL_S_MAX) {
        snprintf(msg, len, "health.interval_s must be 1..%d", PROBE_INTERVAL_S_MAX);
        return "health.interval_s";
    }
    if (timeout_s > PROBE_TIMEOUT_S_MAX) {
        snprintf(msg, len, "health.timeout_s must be 1..%d", PROBE_TIMEOUT_S_MAX);
        return "health.timeout_s";
    }
    if (retries > PROBE_RETRIES_MAX) {
        snprintf(msg, len, "health.retries must be 1..%d", PROBE_RETRIES_MAX);
        return "health.retries";
    }
    return NULL;
}

int fleet_probe_plan(const fleet_instance_spec *spec, const img_profile *prof, int status_channel,
                     bool network, state_instance *row, fleet_err *e)
{
    probe_spec ps;
    char err[400];
    const char *bad;
    /* the run's own, else the image's profile's, else the kind's default */
    const char *ready = spec->ready ? spec->ready : prof && prof->ready[0] ? prof->ready : NULL;
    const char *whose = spec->ready ? "" : " (the image's profile)";
    const char *health = spec->health;
    uint32_t interval_s = spec->health_interval_s, timeout_s = spec->health_timeout_s,
             retries = spec->health_retries;

    row->network = network;
    row->nports = 0;
    for (size_t p = 0; p < spec->n_ports && p < STATE_MAX_PORTS; p++)
        row->ports[row->nports++] = spec->ports[p];
    if (!ready) {
        default_ready(row, status_channel, row->ready, sizeof row->ready);
    } else {
        if (probe_spec_parse(ready, 0, &ps, err, sizeof err) != 0)
            return fleet_err_set(e, FLEET_E_INVALID, "ready", "ready%s: %s", whose, err);
        if (ps.kind == PROBE_STATUS && !status_channel)
            return fleet_err_set(e, FLEET_E_INVALID, "ready",
                                 "ready 'status'%s: image '%s' has no shoal status channel (only "
                                 "shoal's own guests do): use tcp:PORT, http:PORT/PATH, "
                                 "console:REGEX or none",
                                 whose, spec->image);
        if ((ps.kind == PROBE_TCP || ps.kind == PROBE_HTTP) && !network)
            return fleet_err_set(e, FLEET_E_INVALID, "ready",
                                 "ready '%s'%s probes the guest's address, and the instance has "
                                 "no network",
                                 ready, whose);
        probe_spec_format(&ps, row->ready, sizeof row->ready);
    }
    row->health[0] = 0;
    /* the image's health probe, its numbers under the run's own */
    if (!health && prof && prof->health[0]) {
        health = prof->health;
        whose = " (the image's profile)";
        interval_s = interval_s ? interval_s : prof->health_interval_s;
        timeout_s = timeout_s ? timeout_s : prof->health_timeout_s;
        retries = retries ? retries : prof->health_retries;
    } else {
        whose = "";
    }
    if (!health) {
        if (interval_s || timeout_s || retries)
            return fleet_err_set(e, FLEET_E_INVALID, "health.probe",
                                 "health needs a probe (tcp:PORT or http:PORT/PATH)");
        return FLEET_OK;
    }
    if (probe_spec_parse(health, 1, &ps, err, sizeof err) != 0)
        return fleet_err_set(e, FLEET_E_INVALID, "health.probe", "health.probe%s: %s", whose, err);
    if (!network)
        return fleet_err_set(e, FLEET_E_INVALID, "health.probe",
                             "health.probe '%s'%s probes the guest's address, and the instance "
                             "has no network",
                             health, whose);
    if ((bad = health_numbers_bad(interval_s, timeout_s, retries, err, sizeof err)))
        return fleet_err_set(e, FLEET_E_INVALID, bad, "%s", err);
    probe_spec_format(&ps, row->health, sizeof row->health);
    row->health_interval_s = (int)(interval_s ? interval_s : PROBE_INTERVAL_S_DEFAULT);
    row->health_timeout_s = (int)(timeout_s ? timeout_s : PROBE_TIMEOUT_S_DEFAULT);
    row->health_retries = (int)(retries ? retries : PROBE_RETRIES_DEFAULT);
    return FLEET_OK;
}

void fleet_health_defaults(uint32_t *interval_s, uint32_t *timeout_s, uint32_t *retries)
{
    if (!*interval_s)
        *interval_s = PROBE_INTERVAL_S_DEFAULT;
    if (!*timeout_s)
        *timeout_s = PROBE_TIMEOUT_S_DEFAULT;
    if (!*retries)
        *retries = PROBE_RETRIES_DEFAULT;
}

/* ---- an image's stored probes (img_profile_change.check) ---------------------- */

int fleet_profile_probe_check(void *ctx, img_profile *p, img_kind kind, const char **field,
                              char *msg, size_t msglen)
{
    probe_spec ps;
    char err[400];
    const char *bad;

    (void)ctx;
    (void)kind;
    if (p->ready[0]) {
        *field = "ready";
        if (probe_spec_parse(p->ready, 0, &ps, err, sizeof err) != 0) {
            snprintf(msg, msglen, "ready: %s", err);
            return -1;
        }
        /* the status channel is the exit mode status's (boot.h) */
        if (ps.kind == PROBE_STATUS && p->exit != IMG_EXIT_STATUS) {
            snprintf(msg, msglen,
                     "ready 'status' needs shoal's status channel, and the image's exit is %s "
                     "(status has it): use tcp:PORT, http:PORT/PATH, console:REGEX or none",
                     img_exit_name(p->exit));
            return -1;
        }
        probe_spec_format(&ps, p->ready, sizeof p->ready);
    }
    if (p->health[0]) {
        *field = "health.probe";
        if (probe_spec_parse(p->health, 1, &ps, err, sizeof err) != 0) {
            snprintf(msg, msglen, "health.probe: %s", err);
            return -1;
        }
        probe_spec_format(&ps, p->health, sizeof p->health);
    }
    if ((bad = health_numbers_bad(p->health_interval_s, p->health_timeout_s, p->health_retries, msg,
                                  msglen))) {
        *field = bad;
        return -1;
    }
    *field = NULL;
    return 0;
}

/* ---- the per-run command line override ---------------------------------------- */

int fleet_boot_override(fleet_boot *boot, const char *tmpl, const char *image, fleet_err *e)
{
    char msg[256];

    if (!tmpl)
        return FLEET_OK;
    if (boot->disk)
        return fleet_err_set(e, FLEET_E_INVALID, "cmdline",
                             "cmdline: image '%s' is a disk image: it boots from its disk and "
                             "takes no command line",
                             image);
    if (img_template_check(tmpl, msg, sizeof msg) != 0)
        return fleet_err_set(e, FLEET_E_INVALID, "cmdline", "cmdline '%.80s': %s", tmpl, msg);
    boot->template = 1;
    snprintf(boot->tmpl, sizeof boot->tmpl, "%s", tmpl);
    return FLEET_OK;
}

/* ---- runs ------------------------------------------------------------------- */

int fleet_probe_by_status(const state_instance *in, int status_channel)
{
    char ready[STATE_PROBE_MAX];
    if (in->ready[0])
        snprintf(ready, sizeof ready, "%s", in->ready);
    else
        default_ready(in, status_channel, ready, sizeof ready);
    return !strcmp(ready, "status");
}

int fleet_probe_watch(fleet *f, const state_instance *in, int status_channel, int gen,
                      int ready_now, int *ready_at_once)
{
    probe_watch_spec w;
    char ready[STATE_PROBE_MAX], err[400], console[FLEET_PATH_MAX];

    *ready_at_once = 0;
    memset(&w, 0, sizeof w);
    if (in->ready[0])
        snprintf(ready, sizeof ready, "%s", in->ready);
    else
        default_ready(in, status_channel, ready, sizeof ready);
    if (probe_spec_parse(ready, 0, &w.ready, err, sizeof err) != 0 ||
        (in->health[0] && probe_spec_parse(in->health, 1, &w.health, err, sizeof err) != 0)) {
        /* rows are checked at create; a bad one is not probed */
        log_warn("instance %s: %s", in->id, err);
        return -1;
    }
    /* Ready when the domain runs: now (the caller marks it). */
    if (w.ready.kind == PROBE_NONE && !ready_now)
        *ready_at_once = 1;
    if (w.health.kind == PROBE_NONE &&
        (w.ready.kind == PROBE_NONE || w.ready.kind == PROBE_STATUS || ready_now)) {
        probe_unwatch(f->probes, in->id); /* nothing to probe */
        return 0;
    }
    fleet_console_path(f, fleet_run_id(in), console, sizeof console);
    w.id = in->id;
    w.gen = (uint64_t)gen;
    w.addr = in->network ? in->ipv4 : 0;
    w.console_path = console;
    w.ready_now = ready_now;
    w.interval_ms = (uint32_t)in->health_interval_s * 1000;
    w.timeout_ms = (uint32_t)in->health_timeout_s * 1000;
    w.retries = (uint32_t)in->health_retries;
    if (probe_watch(f->probes, &w, err, sizeof err) != 0) {
        log_warn("instance %s: not probed: %s", in->id, err);
        fleet_emit(f, "instance.warning", in->id, in->name, NULL, in->host, NULL, NULL, err);
        return -1;
    }
    /* A guest that wrote its ready record before the watch began (while
     * its domain was still being created) was made ready by status.c with
     * nothing to start the health checks: start them now. */
    if (w.ready.kind == PROBE_STATUS && !ready_now) {
        int was_ready;
        pthread_mutex_lock(&f->mu);
        fleet_rt *rt = fleet_rt_find(f, in->id);
        was_ready = rt && rt->ready;
        pthread_mutex_unlock(&f->mu);
        if (was_ready)
            probe_set_ready(f->probes, in->id, (uint64_t)gen);
    }
    return 0;
}

void fleet_probe_unwatch(fleet *f, const char *id)
{
    probe_unwatch(f->probes, id);
}

void fleet_probe_status_ready(fleet *f, const char *id, int gen)
{
    probe_set_ready(f->probes, id, (uint64_t)gen);
}

/* ---- notes, on an event worker ------------------------------------------------ */

struct ready_ctx {
    double ready_ms;
};

static void ready_fn(state_instance *in, void *ctx)
{
    struct ready_ctx *c = ctx;
    if (in->state == ST_STARTING)
        in->state = ST_RUNNING;
    in->ready_ms = c->ready_ms;
}

/* The row of an accepted ready: running (if still starting), ready_ms;
 * the batch counts it. */
static void record_ready(fleet *f, const char *id, double ready_ms)
{
    struct ready_ctx rc = { ready_ms };
    fleet_mutate(f, id, ready_fn, &rc);
    fleet_batch_note(f, id, FLEET_BATCH_READY, NULL, NULL, NULL);
    fleet_idle_ready(f, id); /* scale to zero: held connections go through */
}

void fleet_mark_ready(fleet *f, const char *id, int gen, int64_t at_ms)
{
    double ready_ms;
    if (accept_ready(f, id, gen, at_ms, &ready_ms))
        record_ready(f, id, ready_ms);
}

void fleet_job_probe(fleet *f, const fleet_job *j)
{
    char what[16], msg[PROBE_RESULT_MAX + 128], dom[64], err[NODE_ERR_MAX];
    unsigned long long gen = 0;
    long long at = 0;
    probe_health h;
    state_instance in;
    fleet_rt *rt;
    int live, stop_requested;

    if (sscanf(j->detail, "%15s %llu %lld", what, &gen, &at) != 3)
        return;
    if (!strcmp(what, "ready")) {
        /* accepted by on_note: `at` is the ready time in ms, -1 unknown;
         * recorded even if the run has ended since, not once another began */
        pthread_mutex_lock(&f->mu);
        rt = fleet_rt_find(f, j->id);
        live = rt && rt->run_no == (int)gen;
        pthread_mutex_unlock(&f->mu);
        if (live)
            record_ready(f, j->id, (double)at);
        return;
    }
    if (state_inst_find(f->db, j->id, &in, err, sizeof err) != 0)
        return;
    if (strcmp(in.id, j->id) != 0)
        goto out;
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_find(f, in.id);
    live = rt && rt->active && rt->run_no == (int)gen;
    stop_requested = rt && rt->stop_requested;
    pthread_mutex_unlock(&f->mu);
    if (!live || probe_health_get(f->probes, in.id, &h) != 0)
        goto out;
    if (!strcmp(what, "slow")) {
        snprintf(msg, sizeof msg, "not ready after %d s: %s", PROBE_READY_WARN_MS / 1000,
                 h.last_result);
        log_warn("instance %s (%s): %s", in.id, in.name, msg);
        fleet_emit(f, "instance.warning", in.id, in.name, NULL, in.host, NULL, NULL, msg);
        goto out;
    }
    if (!strcmp(what, "healthy")) {
        snprintf(msg, sizeof msg, "healthy: %s", h.last_result);
        log_info("instance %s (%s) %s", in.id, in.name, msg);
        fleet_emit(f, "instance.healthy", in.id, in.name, state_inst_state_name(in.state), in.host,
                   NULL, NULL, msg);
        goto out;
    }
    /* unhealthy */
    snprintf(msg, sizeof msg, "unhealthy: %u checks in a row failed, last %s", h.failures,
             h.last_result);
    log_warn("instance %s (%s) %s", in.id, in.name, msg);
    fleet_emit(f, "instance.unhealthy", in.id, in.name, state_inst_state_name(in.state), in.host,
               NULL, NULL, msg);
    if (in.restart == RESTART_NEVER || !in.want_running || stop_requested)
        goto out; /* it keeps running, unhealthy */
    /* The policy restarts it: end this run as a crash with the reason. */
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_find(f, in.id);
    if (rt && !rt->end_reason[0])
        fleet_text_copy(rt->end_reason, sizeof rt->end_reason, msg);
    pthread_mutex_unlock(&f->mu);
    fleet_domain_name(fleet_run_id(&in), dom, sizeof dom);
    fleet_host *host = NULL;
    struct node *node = fleet_host_node(f, in.host, &host);
    if (node) {
        int rc = node_destroy(node, dom, err, sizeof err);
        if (rc != NODE_OK && rc != NODE_E_NOTFOUND)
            log_warn("instance %s: destroy of an unhealthy guest failed: %s", in.id, err);
    }
    fleet_host_release(f, host);
out:
    state_inst_free(&in);
}

/* ---- what the API shows --------------------------------------------------------- */

int fleet_instance_health(fleet *f, const state_instance *in, fleet_health *out)
{
    probe_health h;

    memset(out, 0, sizeof *out);
    snprintf(out->ready, sizeof out->ready, "%s", in->ready);
    snprintf(out->probe, sizeof out->probe, "%s", in->health);
    out->interval_s = (uint32_t)in->health_interval_s;
    out->timeout_s = (uint32_t)in->health_timeout_s;
    out->retries = (uint32_t)in->health_retries;
    out->status = "none";
    if (probe_health_get(f->probes, in->id, &h) != 0)
        return 0;
    out->status = probe_health_name(h.state);
    out->version = h.ver;
    out->failures = h.failures;
    out->last_check_ms = h.last_wall_ms;
    out->last_ok = h.last_ok;
    snprintf(out->last_result, sizeof out->last_result, "%s", h.last_result);
    return 0;
}

void fleet_probe_stats(fleet *f, size_t by_health[4], uint64_t *checks, uint64_t *failures)
{
    probe_stats ps;
    probe_stats_get(f->probes, &ps);
    for (int i = 0; i < 4; i++)
        by_health[i] = ps.by_health[i];
    *checks = ps.checks;
    *failures = ps.failures;
}
