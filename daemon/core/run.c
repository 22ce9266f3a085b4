/* run.c - one run of an instance, on a worker thread: start its domain,
 * end the run when the domain goes (exit code, crash, stop), and apply the
 * restart policy with its backoff. */
#include "fleet_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "boot.h"
#include "debugexit.h"
#include "disk.h"
#include "guard.h"
#include "guestcmd.h"
#include "killpoint.h"
#include "log.h"
#include "nodenet.h"
#include "pool.h"
#include "portfwd.h"

/* Build the guest command line from the row, in the image's preset
 * (boot.h, guestcmd.h); gw and prefix: its subnet's (hostnet.c). pooled:
 * for a warm pool guest's record, without what its boot line has: its
 * shoal.mac, and shoal.gw when it is this host's gateway (pool.c,
 * docs/guest-protocol.md "Warm pool hand-over"). */
static int build_cmdline(const state_instance *in, uint32_t gw, int prefix, const fleet_boot *boot,
                         int pooled, uint32_t pool_gw, gcmd *c, gcmd *rec, char *err, size_t errlen)
{
    json_t *args = json_loads(in->args_json, 0, NULL);
    json_t *env = json_loads(in->env_json, 0, NULL);
    size_t na = json_array_size(args), ne = json_object_size(env), i;
    const char **av = calloc(na + 1, sizeof *av);
    gcmd_kv *kv = calloc(ne + 1, sizeof *kv);
    const char *k;
    json_t *v;
    char ip[16], gwbuf[16], argv0[IMG_NAME_MAX + 1];
    gcmd_run r;
    int rc = -1;

    if (!av || !kv) {
        snprintf(err, errlen, "out of memory building the guest command line");
        goto out;
    }
    memset(&r, 0, sizeof r);
    json_array_foreach (args, i, v)
        av[i] = json_string_value(v) ? json_string_value(v) : "";
    i = 0;
    json_object_foreach (env, k, v) {
        kv[i].key = k;
        kv[i].value = json_string_value(v) ? json_string_value(v) : "";
        i++;
    }
    if (in->network && in->ipv4) {
        r.ip = cfg_ip4_str(in->ipv4, ip);
        r.prefix = prefix;
        r.gw = cfg_ip4_str(gw, gwbuf);
        r.mac = pooled ? NULL : in->mac;
        r.no_gw = pooled && pool_gw && gw == pool_gw;
    }
    if (boot->argv0) {
        fleet_boot_argv0(in->image_ref, argv0, sizeof argv0);
        r.argv0 = argv0;
    }
    r.args = av;
    r.n_args = na;
    r.env = kv;
    r.n_env = ne;
    /* Environment and arguments off QEMU's command line where the kernel
     * reads them from fw_cfg (guestcmd.h, gcmd_build_split). */
    if (boot->template) { /* the image's own line (boot.h): no private record */
        gcmd_init(rec);
        rc = fleet_boot_cmdline(boot, in->image_ref, &r, c, err, errlen);
    } else {
        rc = gcmd_build_split(c, rec, boot->preset, &r, err, errlen);
    }
out:
    free(av);
    free(kv);
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
    fleet_text_copy(in->last_error, sizeof in->last_error, c->why);
}

/* A start given up on its host (fleet_job_start): pending, or stopped
 * when a stop came meanwhile. */
static void given_up_fn(state_instance *in, void *ctx)
{
    struct fail_ctx *c = ctx;
    in->state = in->want_running ? ST_PENDING : ST_STOPPED;
    fleet_text_copy(in->last_error, sizeof in->last_error, c->why);
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
void fleet_publish_ports(fleet *f, const state_instance *in)
{
    char err[256];
    /* No ports of its own: nothing to publish, and nothing to close (the
     * only forwards such an id can hold are a live move's, lent to it as
     * its stand-in: move.c) */
    if (!f->pfwd || !in->ipv4 || in->nports == 0)
        return;
    /* Scale to zero: the forwards stay while it sleeps and wakes (they
     * hold the connection that wakes it); idle.c */
    if (in->idle_s > 0 && pfwd_owned(f->pfwd, in->id))
        return;
    /* A live move's stand-in serves them until the move hands them back
     * (move.c). */
    if (fleet_move_lent(f, in->id))
        return;
    pfwd_remove(f->pfwd, in->id);
    for (int i = 0; i < in->nports; i++) {
        if (pfwd_add(f->pfwd, in->id, in->ports[i].proto == STATE_PROTO_UDP ? PFWD_UDP : PFWD_TCP,
                     in->ports[i].host, in->ipv4, in->ports[i].guest, err, sizeof err) != 0) {
            log_warn("instance %s: cannot publish %s", in->id, err);
            fleet_emit(f, "instance.warning", in->id, in->name, NULL, in->host, NULL, NULL, err);
        }
    }
    if (in->idle_s > 0 && pfwd_set_idle(f->pfwd, in->id, in->idle_s * 1000) != 0)
        log_warn("instance %s: no published port to scale to zero behind", in->id);
}

/* A claimed warm pool guest that will not get its configuration: out of
 * the pool, its domain destroyed (named after the identity the instance
 * runs with: pool.h, fleet_run_id). */
static void drop_pool_guest(fleet *f, struct node *node, const char *id, const char *dom)
{
    char err[NODE_ERR_MAX];
    int rc;
    fleet_pool_forget(f, id);
    /* its end is not the cold run's that reuses its name (a create's
     * guest has the instance's id in its metadata) */
    node_forget(node, dom);
    if ((rc = node_destroy(node, dom, err, sizeof err)) != NODE_OK && rc != NODE_E_NOTFOUND)
        log_warn("instance %s: cannot destroy its warm pool guest: %s", id, err);
}

/* A pool guest a wake took (idle.c) runs under its own id: its domain's
 * metadata is made to name the instance, so that its events, usage and a
 * later reconcile find the instance. 0, or -1 with a message. */
static int name_instance(struct node *node, const state_instance *in, const char *dom, char *err,
                         size_t errlen)
{
    if (!in->guest[0])
        return 0; /* a create's guest: made with the instance's id */
    return node_set_instance_id(node, dom, in->id, err, errlen) == NODE_OK ? 0 : -1;
}

/* Hand a claimed pool guest its configuration (pool.h): the line and the
 * private record a cold start would give it, joined as the guest parses
 * them. 0, or -1 with a message (the caller starts the instance cold). */
static int pool_handover(fleet *f, const char *id, const gcmd *cmd, const gcmd *rec, char *err,
                         size_t errlen)
{
    char *all = malloc(2 * GCMD_MAX + 2);
    int rc = -1;
    if (!all) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(all, 2 * GCMD_MAX + 2, "%s%s%s", cmd->buf, cmd->len && rec->len ? " " : "",
             rec->len ? rec->buf : "");
    rc = fleet_pool_handover(f, id, all, err, errlen);
    free(all);
    return rc;
}

/* ---- Starts given up ------------------------------------------------------
 *
 * A domain's creation (node_start: on a remote host its delivery and
 * create) on a host whose calls may hang, remote or a libvirtd of this
 * machine (not the embedded driver: fleet_host_in_process), runs as a
 * host call (fleet_host_call): the start worker waits for it
 * until it returns or the host is seen down (not answering for
 * FO_PING_DEAD_MS, or its connection lost), so a host that hangs holds
 * none of the --start-parallel workers for longer than that. Given up, the
 * run ends `lost`, the row is `pending` with last_error "host 'r1' did not
 * answer within N s", and the call runs on. Its rule: the domain a
 * given-up start makes never counts (it would run unseen, or beside a
 * copy started meanwhile). Until the call has returned and the host's
 * domains have been looked at on a connection that is up, the instance is
 * held for that host (fleet_rt.hung): it does not start there, reconcile
 * does not adopt its domain there and fleet_start_unhold destroys it (the
 * call's own thread when the call returns with the host up, else the
 * reconnect's reconcile). Then it starts again (a new run) on whatever host
 * its row names: that host after its reconnect, or the one failover chose
 * after --host-grace, where the fence had destroyed the copy on the old
 * host anyway. */

/* node_start's spec, its strings copied: the call may outlive the job
 * (every string field of struct domxml_spec: start_domain's list). */
typedef struct {
    struct domxml_spec spec;
    char *own[24];
    size_t nown;
    char id[STATE_ID_LEN + 1];
    char host[STATE_NAME_MAX];
} start_call;

static void start_call_free(void *arg)
{
    start_call *c = arg;
    for (size_t i = 0; c && i < c->nown; i++)
        free(c->own[i]);
    free(c);
}

/* *field, copied into c. 0, or -1 (out of memory). */
static int start_call_own(start_call *c, const char **field)
{
    char *d;
    if (!*field)
        return 0;
    if (c->nown == sizeof c->own / sizeof c->own[0] || !(d = strdup(*field)))
        return -1;
    c->own[c->nown++] = d;
    *field = d;
    return 0;
}

static int start_call_fn(fleet *f, struct node *node, void *arg, char *err, size_t errlen)
{
    start_call *c = arg;
    (void)f;
    return node_start(node, &c->spec, NULL, err, errlen);
}

/* The given-up call returned: the hold may end (fleet_start_unhold). */
static void start_call_late(fleet *f, void *arg, int rc, const char *err)
{
    start_call *c = arg;
    fleet_rt *rt;
    log_info("instance %s: the start given up on host %s came back (%s)", c->id, c->host,
             rc == NODE_OK ? "domain created" : err);
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_find(f, c->id);
    if (rt && (rt->hung == FLEET_HUNG_CALL || rt->hung == FLEET_HUNG_GIVEN_UP))
        rt->hung = FLEET_HUNG_RETURNED;
    pthread_mutex_unlock(&f->mu);
    fleet_start_unhold(f, c->id, c->host);
}

int fleet_start_held(fleet *f, const char *id, const char *host)
{
    fleet_rt *rt;
    int held;
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_find(f, id);
    held = rt && rt->hung >= FLEET_HUNG_GIVEN_UP && !strcmp(rt->hung_host, host);
    pthread_mutex_unlock(&f->mu);
    return held;
}

void fleet_start_unhold(fleet *f, const char *id, const char *host_name)
{
    fleet_host *host = NULL;
    struct node *node = fleet_host_node(f, host_name, &host);
    char err[NODE_ERR_MAX], dom[64] = "";
    fleet_rt *rt;
    int rc;

    if (!node)
        goto out; /* down: its reconnect's reconcile comes here */
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_find(f, id);
    if (rt && rt->hung >= FLEET_HUNG_GIVEN_UP && !strcmp(rt->hung_host, host_name))
        snprintf(dom, sizeof dom, "%s", rt->hung_dom);
    pthread_mutex_unlock(&f->mu);
    if (!dom[0])
        goto out;
    rc = node_destroy(node, dom, err, sizeof err);
    if (rc == NODE_OK)
        log_warn("host %s: destroyed domain '%s' of a start given up (instance '%s')", host_name,
                 dom, id);
    else if (rc != NODE_E_NOTFOUND) {
        log_warn("host %s: cannot destroy domain '%s' of a start given up: %s", host_name, dom,
                 err);
        goto out; /* held: the next reconnect tries again */
    }
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_find(f, id);
    if (rt && rt->hung == FLEET_HUNG_RETURNED && !strcmp(rt->hung_host, host_name)) {
        rt->hung = FLEET_HUNG_NONE;
        rt->backoff_due_ms = fleet_now_ms() + FLEET_HUNG_RESTART_MS;
    }
    pthread_mutex_unlock(&f->mu);
out:
    fleet_host_release(f, host);
}

void fleet_start_unhold_host(fleet *f, const char *host_name)
{
    char(*ids)[STATE_ID_LEN + 1] = NULL;
    size_t n = 0;

    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nrt; i++) {
        fleet_rt *rt = &f->rt[i];
        if (rt->hung < FLEET_HUNG_GIVEN_UP || strcmp(rt->hung_host, host_name) != 0)
            continue;
        char(*more)[STATE_ID_LEN + 1] = realloc(ids, (n + 1) * sizeof *ids);
        if (!more)
            break; /* the rest at the next reconnect */
        ids = more;
        memcpy(ids[n++], rt->id, sizeof ids[0]);
    }
    pthread_mutex_unlock(&f->mu);
    for (size_t i = 0; i < n; i++)
        fleet_start_unhold(f, ids[i], host_name);
    free(ids);
}

/* node_start, bounded on a host whose calls may hang (above):
 * FLEET_RIO_LATE when the host was seen down before the call returned. */
static int start_domain(fleet *f, fleet_host *host, struct node *node, const char *id,
                        const struct domxml_spec *spec, char *err, size_t errlen)
{
    start_call *c;
    fleet_rt *rt;
    int rc;

    if (fleet_host_in_process(host))
        return node_start(node, spec, NULL, err, errlen);
    if (!(c = calloc(1, sizeof *c))) {
        snprintf(err, errlen, "out of memory");
        return NODE_E_NOMEM;
    }
    c->spec = *spec;
    snprintf(c->id, sizeof c->id, "%s", id);
    snprintf(c->host, sizeof c->host, "%s", host->name);
    const char **strs[] = { &c->spec.name,        &c->spec.uuid,        &c->spec.kernel,
                            &c->spec.cmdline,     &c->spec.disk,        &c->spec.console_log,
                            &c->spec.status_log,  &c->spec.bridge,      &c->spec.network,
                            &c->spec.filter,      &c->spec.filter_ip,   &c->spec.mac,
                            &c->spec.tap,         &c->spec.instance_id, &c->spec.firmware,
                            &c->spec.initrd,      &c->spec.emulator,    &c->spec.fwcfg_file,
                            &c->spec.fwcfg_data,  &c->spec.disk_base,   &c->spec.disk_format,
                            &c->spec.console_sock };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (start_call_own(c, strs[i]) != 0) {
            start_call_free(c);
            snprintf(err, errlen, "out of memory");
            return NODE_E_NOMEM;
        }
    }
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, id);
    rt->hung = FLEET_HUNG_CALL;
    snprintf(rt->hung_host, sizeof rt->hung_host, "%s", host->name);
    snprintf(rt->hung_dom, sizeof rt->hung_dom, "%s", spec->name);
    pthread_mutex_unlock(&f->mu);
    rc = fleet_host_call(f, host, node, start_call_fn, start_call_late, c, start_call_free, -1, 1,
                         err, errlen);
    pthread_mutex_lock(&f->mu);
    /* NULL: deleted meanwhile (a late domain without a row: reconcile
     * destroys it) */
    rt = fleet_rt_find(f, id);
    if (rt && rc != FLEET_RIO_LATE)
        rt->hung = FLEET_HUNG_NONE;
    else if (rt && rt->hung == FLEET_HUNG_CALL)
        rt->hung = FLEET_HUNG_GIVEN_UP;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

void fleet_job_start(fleet *f, const fleet_job *j)
{
    state_instance in;
    char err[NODE_ERR_MAX], console[FLEET_PATH_MAX], status[FLEET_PATH_MAX], dom[64];
    char tap[GUARD_TAP_SIZE];
    char *kernel = NULL, disk[FLEET_PATH_MAX];
    char *initrd = NULL;
    img_info info;
    img_err ierr;
    fleet_boot boot;
    gcmd cmd, rec;
    struct node *node = NULL;
    fleet_host *host = NULL;
    struct domxml_spec spec;
    struct fail_ctx fc;
    struct starting_ctx sc;
    fleet_rt *rt;
    int run_no = 0, have_row = 0, pooled = 0, net_prefix = 0, bad_line = 0, remote_disk = 0;
    int start_rc = NODE_OK;
    char derr[256];
    const char *run;
    uint32_t net_gw = 0;
    char net_ip[16];
    int64_t t_create;

    memset(&info, 0, sizeof info);
    if (state_inst_find(f->db, j->id, &in, err, sizeof err) != 0 || strcmp(in.id, j->id))
        goto out;
    have_row = 1;
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    if (!rt || !in.want_running || rt->active || fleet_state_live(in.state)) {
        pthread_mutex_unlock(&f->mu);
        /* Stopped before its start came: it will not be ready, and a pool
         * guest claimed for it is never handed over. */
        if (!in.want_running) {
            fleet_pool_drop(f, fleet_run_id(&in));
            fleet_batch_note(f, in.id, FLEET_BATCH_FAILED, in.name, state_inst_state_name(in.state),
                             "stopped before it started");
        }
        goto out;
    }
    rt->backoff_due_ms = 0;
    if (rt->hung >= FLEET_HUNG_GIVEN_UP && !strcmp(rt->hung_host, in.host)) {
        /* a start given up on this host: it waits for that (above) */
        pthread_mutex_unlock(&f->mu);
        goto out;
    }
    pthread_mutex_unlock(&f->mu);

    if (!(node = fleet_host_node(f, in.host, &host))) {
        /* Stays pending; reconnecting the host queues the start again. */
        snprintf(err, sizeof err, "waiting for host '%s' to come back", in.host);
        fleet_set_state(f, in.id, ST_PENDING, err);
        goto out;
    }
    if (img_get(f->img, in.image_digest, &info, &ierr) != 0 ||
        img_materialize(f->img, in.image_digest, &kernel, &ierr) != 0) {
        snprintf(err, sizeof err, "image %s: %s", in.image_digest, ierr.msg);
        fc.why = err;
        fleet_mutate(f, in.id, fail_fn, &fc);
        fleet_batch_note(f, in.id, FLEET_BATCH_FAILED, in.name, "failed", err);
        goto out;
    }
    /* its initrd: the run's own, else the image's (docs/imagestore.md "Initrds") */
    const char *rd = in.initrd[0] ? in.initrd : info.initrd;
    if (rd[0] && img_materialize_initrd(f->img, rd, &initrd, &ierr) != 0) {
        snprintf(err, sizeof err, "image %s: initrd %s: %s", in.image_digest, rd, ierr.msg);
        fc.why = err;
        fleet_mutate(f, in.id, fail_fn, &fc);
        fleet_batch_note(f, in.id, FLEET_BATCH_FAILED, in.name, "failed", err);
        goto out;
    }
    if (fleet_boot_plan(&info, &boot, err, sizeof err) != 0) {
        char why[NODE_ERR_MAX + 300];
        snprintf(why, sizeof why, "image '%s' %s", in.image_ref, err);
        fc.why = why;
        fleet_mutate(f, in.id, fail_fn, &fc);
        fleet_batch_note(f, in.id, FLEET_BATCH_FAILED, in.name, "failed", why);
        goto out;
    }
    /* The instance's own command line override replaces the image's
     * (health.c; checked at create, so this fails only for an image that
     * became a disk). */
    if (in.cmdline) {
        fleet_err oe;
        if (fleet_boot_override(&boot, in.cmdline, in.image_ref, &oe) != FLEET_OK) {
            fc.why = oe.msg;
            fleet_mutate(f, in.id, fail_fn, &fc);
            fleet_batch_note(f, in.id, FLEET_BATCH_FAILED, in.name, "failed", oe.msg);
            goto out;
        }
    }
    /* Its address in the subnet of the host it starts on; a remote host's
     * network and guest filter made there first (hostnet.c). */
    if (in.network && f->gateway &&
        fleet_net_prepare(f, host, node, &in, &net_gw, &net_prefix, err, sizeof err) != 0) {
        fc.why = err;
        fleet_mutate(f, in.id, fail_fn, &fc);
        fleet_batch_note(f, in.id, FLEET_BATCH_FAILED, in.name, "failed", err);
        log_warn("instance %s: start failed: %s", in.id, err);
        goto out;
    }
    /* Its domain, tap and files are those of its identity: its own id, or
     * the pool guest's it woke on (fleet_run_id, idle.c). Its first start,
     * when the create or the wake took a warm pool guest: the guest runs
     * already, with this identity's files and MAC (pool.h); its status
     * file keeps the pool-wait record, which readiness ignores. */
    run = fleet_run_id(&in);
    pooled = !boot.disk && !boot.template && fleet_pool_claimed(f, run);
    /* A disk image boots from the instance's overlay, with no command
     * line (a remote host's overlay is made there by node_start, disk.h);
     * a kernel gets its line in the image's preset. */
    remote_disk = boot.disk && node_remote(node);
    if (!remote_disk && (boot.disk ? fleet_disk_prepare(f, in.id, kernel, info.format, info.size,
                                                        disk, sizeof disk, err, sizeof err)
                                   : build_cmdline(&in, net_gw, net_prefix, &boot, pooled,
                                                   f->gateway, &cmd, &rec, err, sizeof err))) {
        fleet_net_dhcp_drop(f, &in);
        fc.why = err;
        fleet_mutate(f, in.id, fail_fn, &fc);
        fleet_batch_note(f, in.id, FLEET_BATCH_FAILED, in.name, "failed", err);
        goto out;
    }
    fleet_console_path(f, run, console, sizeof console);
    fleet_status_path(f, run, status, sizeof status);
    fleet_domain_name(run, dom, sizeof dom);
    if (!pooled && unlink(status) != 0 && errno != ENOENT)
        log_warn("instance %s: cannot reset '%s': %s", in.id, status, strerror(errno));

    memset(&spec, 0, sizeof spec);
    spec.name = dom;
    spec.virt = DOMXML_VIRT_AUTO;
    spec.boot = boot.boot;
    spec.fw = boot.fw;
    if (boot.debug_exit) { /* isa-debug-exit, its status logged (debugexit.h) */
        spec.debug_exit = 1;
        if (!(spec.emulator = fleet_debug_exit_wrapper()))
            log_warn("instance %s: no %s: its exit code will be unknown", in.id,
                     FLEET_QEMU_EXIT_NAME);
    }
    spec.memory_mib = (unsigned)in.memory_mib;
    spec.vcpus = (unsigned)in.vcpus;
    if (boot.disk) {
        spec.disk = disk;
        if (remote_disk) {
            /* node_start replaces it with the overlay's path there */
            spec.disk = spec.disk_base = kernel;
            spec.disk_format = img_format_name(info.format);
            spec.disk_bytes = fleet_disk_bytes(info.format, info.size);
            spec.disk_fresh = fleet_disk_remote_fresh(f, in.id, in.host);
        }
    } else {
        spec.kernel = kernel;
        spec.initrd = initrd;
        spec.cmdline = cmd.buf;
        spec.fwcfg_data = rec.len ? rec.buf : NULL; /* node_start writes it */
    }
    spec.console_log = console;
    spec.status_log = status;
    spec.instance_id = in.id;
    if (in.network && f->gateway && node_remote(node)) {
        /* On its host's network, behind the guest filter there (nodenet.h):
         * nothing of this machine's bridge, table or DHCP. */
        spec.network = NNET_NETWORK;
        spec.filter = NNET_FILTER;
        spec.filter_ip = cfg_ip4_str(in.ipv4, net_ip);
        spec.mac = in.mac;
        guard_tap_name(run, tap);
        spec.tap = tap;
    } else if (in.network && f->gateway) {
        /* Its DHCP lease is in place before it boots; a pool guest booted
         * already and takes its address from its record, never DHCP (the
         * supervisor writes its lease soon after, fleet_dhcp_sync). */
        if (!pooled)
            fleet_dhcp_flush(f);
        /* Its tap is allowed before it exists (guard.h): the guest sends
         * nothing unfiltered. */
        /* A pool guest's tap is on its bridge already: its rule now
         * pins the instance's address too, before the guest learns it. */
        if ((!pooled && !(spec.bridge = fleet_bridge_pick(f, &in, err, sizeof err))) ||
            fleet_guard_add(f, &in, tap, err, sizeof err) != 0) {
            if (pooled)
                drop_pool_guest(f, node, run, dom);
            fc.why = err;
            fleet_mutate(f, in.id, fail_fn, &fc);
            fleet_batch_note(f, in.id, FLEET_BATCH_FAILED, in.name, "failed", err);
            log_warn("instance %s: start failed: %s", in.id, err);
            goto out;
        }
        spec.mac = in.mac;
        spec.tap = tap;
    }

    pthread_mutex_lock(&f->mu);
    /* A pool guest's events while it waited may have made an entry of its
     * id: no run's from now on (its status file is this run's). Dropped
     * first: a drop moves entries. */
    if (in.guest[0] && (rt = fleet_rt_find(f, in.guest)) && !rt->active && !rt->busy)
        fleet_rt_drop(f, in.guest);
    rt = fleet_rt_get(f, in.id);
    memset(&rt->tracker, 0, sizeof rt->tracker);
    rt->active = 1;
    rt->run_node = node; /* only its end ends this run (end_elsewhere) */
    fleet_text_copy(rt->guest, sizeof rt->guest, in.guest);
    rt->ready = 0;
    rt->ready_by_probe = !fleet_probe_by_status(&in, boot.status_channel);
    rt->boot_seen = 0;
    rt->have_outcome = 0;
    rt->end_reason[0] = 0;
    rt->stop_requested = 0;
    rt->run_start_ms = fleet_now_ms();
    if (!rt->request_ms)
        rt->request_ms = rt->run_start_ms;
    pthread_mutex_unlock(&f->mu);

    state_run_begin(f->db, in.id, fleet_wall_ms(), &run_no);
    sc.wall_ms = fleet_wall_ms();
    fleet_mutate(f, in.id, starting_fn, &sc);
    kp_hit("start.row");

    t_create = fleet_now_ms();
    if (pooled && (pool_handover(f, run, &cmd, &rec, err, sizeof err) != 0 ||
                   name_instance(node, &in, dom, err, sizeof err) != 0)) {
        /* Started cold instead, from a clean slate: the guest is gone. Its
         * domain's end is not this run's: the domain still names the
         * guest (name_instance comes last), so its events find no row. */
        log_warn("instance %s: warm pool guest failed (%s): starting it cold", in.id, err);
        drop_pool_guest(f, node, run, dom);
        pooled = 0;
        if (unlink(status) != 0 && errno != ENOENT)
            log_warn("instance %s: cannot reset '%s': %s", in.id, status, strerror(errno));
        pthread_mutex_lock(&f->mu);
        rt = fleet_rt_get(f, in.id);
        memset(&rt->tracker, 0, sizeof rt->tracker);
        pthread_mutex_unlock(&f->mu);
        /* a cold start's line has the shoal.mac the record left out */
        bad_line = build_cmdline(&in, net_gw, net_prefix, &boot, 0, 0, &cmd, &rec, err, sizeof err);
        spec.fwcfg_data = rec.len ? rec.buf : NULL;
        if (!bad_line && spec.mac) /* NULL (err set): the start fails below */
            spec.bridge = fleet_bridge_pick(f, &in, err, sizeof err);
    }
    if (!pooled && !bad_line && !(spec.mac && !spec.bridge && !spec.network))
        start_rc = start_domain(f, host, node, in.id, &spec, err, sizeof err);
    if (!pooled &&
        (bad_line || (spec.mac && !spec.bridge && !spec.network) || start_rc != NODE_OK)) {
        /* FLEET_RIO_LATE: its host did not answer, the start is given up
         * and the instance held (above) */
        int late = start_rc == FLEET_RIO_LATE;
        if (late)
            snprintf(err, sizeof err,
                     "host '%s' did not answer within %lld s; the start is given up (it "
                     "starts again once the host answers, or elsewhere by failover)",
                     in.host, (long long)((fleet_now_ms() - t_create + 500) / 1000));
        pthread_mutex_lock(&f->mu);
        rt = fleet_rt_get(f, in.id);
        rt->active = 0;
        rt->request_ms = 0;
        pthread_mutex_unlock(&f->mu);
        fleet_guard_remove(f, run);
        if (!late) /* a late one's entry there goes with the reconnect's DHCP sync */
            fleet_net_dhcp_drop(f, &in);
        state_run_end(f->db, in.id, run_no, fleet_wall_ms(), -1, late ? "lost" : "failed", err);
        fc.why = err;
        fleet_mutate(f, in.id, late ? given_up_fn : fail_fn, &fc);
        fleet_batch_note(f, in.id, FLEET_BATCH_FAILED, in.name, late ? "pending" : "failed", err);
        log_warn("instance %s: start %s: %s", in.id, late ? "given up" : "failed", err);
        goto out;
    }
    kp_hit("start.created");
    t_create = fleet_now_ms() - t_create;
    if (remote_disk && fleet_disk_remote_done(f, in.id, in.host, derr, sizeof derr) != 0)
        log_warn("instance %s: its next start on %s makes a fresh overlay: %s", in.id, in.host,
                 derr);
    if (spec.tap && !pooled && !spec.network) /* a tap of this machine */
        fleet_tap_no_ipv6(spec.tap);
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    rt->run_no = run_no;
    fleet_batch_note_locked(f, rt, FLEET_BATCH_STARTED, NULL, NULL, NULL);
    pthread_mutex_unlock(&f->mu);
    fleet_publish_ports(f, &in);
    /* Readiness and health probes of this run (health.c); `none`: ready
     * now that the domain runs. */
    int at_once;
    fleet_probe_watch(f, &in, boot.status_channel, run_no, 0, &at_once);
    if (at_once)
        fleet_mark_ready(f, in.id, run_no, fleet_now_ms());
    /* The domain's creation (libvirt + QEMU's start) is most of a start:
     * its time is logged for bench_storm.sh. */
    if (pooled)
        log_info("instance %s (%s) started on %s from the warm pool (configuration taken in %lld "
                 "ms)",
                 in.id, in.name, in.host, (long long)t_create);
    else
        log_info("instance %s (%s) started on %s (domain created in %lld ms)", in.id, in.name,
                 in.host, (long long)t_create);
    if (!pooled && err[0]) /* node_start's warning */
        log_warn("instance %s on %s: %s", in.id, in.host, err);
    kp_hit("start.done");
    fleet_status_poll(f, in.id);
out:
    if (have_row)
        fleet_idle_check_wake(f, in.id, NULL); /* a wake whose start failed */
    fleet_host_release(f, host);
    free(kernel);
    free(initrd);
    img_info_clear(&info);
    if (have_row)
        state_inst_free(&in);
}

struct end_ctx {
    state_inst_state st;
    int exit_code;
    const char *error;
    int restart; /* 1: go to backoff */
};

static void end_fn(state_instance *in, void *ctx)
{
    struct end_ctx *c = ctx;
    in->state = c->restart ? ST_BACKOFF : c->st;
    in->exit_code = c->exit_code;
    fleet_text_copy(in->last_error, sizeof in->last_error, c->error);
    if (c->restart)
        in->restarts++;
    else if (c->st != ST_STOPPED && c->st != ST_IDLE)
        in->want_running = 0;
}

/* The names of an event's host and of the run's (for the log). */
typedef struct {
    char from[STATE_NAME_MAX], on[STATE_NAME_MAX];
} end_hosts;

/* Is j a domain's end (a libvirt event's job) from a node other than the
 * one the instance's active run is on (fleet_rt.run_node)? Then it is an
 * old copy's - a domain fenced at its host's return, the stop of a move
 * that failover finished elsewhere, reaching a host that hung - and ends
 * nothing, however late it comes (docs/shoald.md "Host failure and
 * fencing"). With no active run, or its node unknown, the job goes on as
 * before (it then finds nothing to end). Caller holds mu. */
static int end_elsewhere(const fleet *f, const fleet_job *j, const fleet_rt *rt, end_hosts *names)
{
    if (!j->from || !rt || !rt->active || !rt->run_node || rt->run_node == j->from)
        return 0;
    /* a node not yet a host's: its first connect, fencing (hosts.c) */
    snprintf(names->from, sizeof names->from, "(connecting)");
    snprintf(names->on, sizeof names->on, "(connecting)");
    for (size_t i = 0; i < f->nhosts; i++) {
        if (f->hosts[i]->node == j->from)
            snprintf(names->from, sizeof names->from, "%s", f->hosts[i]->name);
        if (f->hosts[i]->node == rt->run_node)
            snprintf(names->on, sizeof names->on, "%s", f->hosts[i]->name);
    }
    return 1;
}

static void log_end_elsewhere(const fleet_job *j, const state_instance *in, const end_hosts *names)
{
    log_info("instance %s (%s): ignoring '%s' (%s) from host %s: its run is on host %s (an old "
             "copy's end)",
             in->id, in->name, j->kind == JOB_DOMAIN_GONE ? "stopped" : "crashed", j->detail,
             names->from, names->on);
}

/* A start a killed shoald left half done: pending again, still wanted. */
static void retry_fn(state_instance *in, void *ctx)
{
    in->state = ST_PENDING;
    in->exit_code = -1;
    fleet_text_copy(in->last_error, sizeof in->last_error, ctx);
}

void fleet_job_domain_gone(fleet *f, const fleet_job *j)
{
    state_instance in;
    char err[512], text[300];
    const char *outcome;
    struct end_ctx c = { ST_EXITED, -1, NULL, 0 };
    fleet_rt *rt;
    int stop_requested, have_outcome, run_no, was_ready, policy_restart = 0, retry = 0, sleeping;
    int elsewhere;
    end_hosts names;
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
    elsewhere = end_elsewhere(f, j, rt, &names);
    pthread_mutex_unlock(&f->mu);
    if (elsewhere) {
        log_end_elsewhere(j, &in, &names);
        state_inst_free(&in);
        return;
    }
    /* Last records the guest wrote before it went. The tracker only reads
     * while active, so read before clearing the flag. A remote host's
     * files are fetched first. */
    fleet_remote_fetch(f, &in);
    fleet_status_poll(f, in.id);
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    stop_requested = rt->stop_requested;
    sleeping = rt->sleep_requested && !stop_requested; /* scale to zero: idle.c */
    rt->sleep_requested = 0;
    was_ready = rt->ready;
    have_outcome = rt->have_outcome;
    rec = rt->outcome;
    run_no = rt->run_no;
    run_ms = fleet_now_ms() - rt->run_start_ms;
    snprintf(text, sizeof text, "%s", rt->end_reason);
    rt->active = 0;
    rt->request_ms = 0;
    pthread_mutex_unlock(&f->mu);
    if (!sleeping) /* asleep, its ports keep listening and hold connections */
        pfwd_remove(f->pfwd, in.id);
    fleet_probe_unwatch(f, in.id);
    fleet_guard_remove(f, fleet_run_id(&in));
    fleet_net_dhcp_drop(f, &in); /* on its remote host */
    fleet_console_rotate(f, fleet_run_id(&in));

    if (have_outcome && rec.kind == GST_EXIT)
        c.exit_code = rec.exit_code;
    if (stop_requested) {
        c.st = ST_STOPPED;
        outcome = "stopped";
    } else if (sleeping) {
        snprintf(text, sizeof text, "idle: no connection on its published ports for %d s",
                 in.idle_s);
        c.st = ST_IDLE;
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
    } else if (fleet_debug_exit_code(f, &in, &c.exit_code) == 0) {
        /* the guest wrote its code to isa-debug-exit (debugexit.h) */
        c.st = ST_EXITED;
        outcome = "exited";
    } else if (!strcmp(j->detail, "vanished") && in.state == ST_STARTING && in.want_running) {
        /* A start in flight when shoald died (issue 16): the row says
         * starting, no domain was made (or it never reported). Started
         * again, not lost. */
        snprintf(text, sizeof text, "shoald stopped while starting it; started again");
        c.st = ST_PENDING;
        outcome = "failed";
        retry = 1;
    } else if (!strcmp(j->detail, "vanished")) {
        snprintf(text, sizeof text, "its domain vanished while shoald was not watching");
        c.st = ST_LOST;
        outcome = "lost";
    } else if (!strcmp(j->detail, "shutdown") && !fleet_has_status_channel(f, &in)) {
        /* A clean power-off of a guest that has no status channel to
         * report on: it exited, code unknown (-1). */
        c.st = ST_EXITED;
        outcome = "exited";
    } else {
        snprintf(text, sizeof text,
                 "guest stopped without reporting an exit status "
                 "(libvirt: %s)",
                 j->detail[0] ? j->detail : "unknown");
        c.st = ST_CRASHED;
        outcome = "crashed";
    }
    c.error = text[0] && !sleeping ? text : NULL; /* a sleep's reason is no error */
    state_run_end(f->db, in.id, run_no, fleet_wall_ms(), c.exit_code, outcome, text);
    if (retry) {
        log_info("instance %s (%s): %s", in.id, in.name, text);
        fleet_mutate(f, in.id, retry_fn, text); /* pending, still wanted */
        pthread_mutex_lock(&f->mu);
        rt = fleet_rt_get(f, in.id);
        rt->stop_requested = 0;
        rt->have_outcome = 0;
        rt->end_reason[0] = 0;
        rt->request_ms = fleet_now_ms();
        pthread_mutex_unlock(&f->mu);
        fleet_queue(f, JOB_START, in.id, NULL);
        state_inst_free(&in);
        return;
    }

    if (!stop_requested && !sleeping && in.want_running) {
        if (in.restart == RESTART_ALWAYS)
            policy_restart = 1;
        else if (in.restart == RESTART_ON_FAILURE) /* exited, code 0 or unknown: success */
            policy_restart = c.st != ST_EXITED || c.exit_code > 0;
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
    fleet_mutate(f, in.id, end_fn, &c);
    if (policy_restart)
        kp_hit("policy.backoff");
    /* A first run that ends before the guest was ready fails its batch (a
     * no-op when it was counted, or is in no batch); one that was ready
     * counts as ready even if its ready record is still being recorded. */
    if (was_ready)
        fleet_batch_note(f, in.id, FLEET_BATCH_READY, NULL, NULL, NULL);
    else
        fleet_batch_note(f, in.id, FLEET_BATCH_FAILED, in.name, outcome, text[0] ? text : NULL);
    log_info("instance %s (%s) %s%s%s", in.id, in.name, outcome, text[0] ? ": " : "", text);
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    rt->stop_requested = 0;
    rt->have_outcome = 0;
    rt->end_reason[0] = 0;
    pthread_cond_broadcast(&f->state_cv);
    pthread_mutex_unlock(&f->mu);
    if (sleeping)
        fleet_idle_asleep(f, &in);
    else
        fleet_idle_check_wake(f, in.id, NULL); /* a wake whose run ended unready */
    if (stop_requested)
        fleet_move_finish_left(f, in.id); /* the stop of a move whose source was late */
    state_inst_free(&in);
}

/* A domain crashed or is stuck paused (KVM internal error): make sure it
 * goes, remembering why. The STOPPED event then ends the run. */
void fleet_job_domain_crashed(fleet *f, const fleet_job *j)
{
    state_instance in;
    char err[NODE_ERR_MAX], dom[64];
    struct node *node;
    fleet_host *host = NULL;
    fleet_rt *rt;
    const char *why;
    end_hosts names;
    int elsewhere;

    if (state_inst_find(f->db, j->id, &in, err, sizeof err) != 0)
        return;
    pthread_mutex_lock(&f->mu);
    elsewhere = end_elsewhere(f, j, fleet_rt_find(f, in.id), &names);
    pthread_mutex_unlock(&f->mu);
    if (elsewhere) { /* its reason is not this run's, nor its domain to destroy */
        log_end_elsewhere(j, &in, &names);
        state_inst_free(&in);
        return;
    }
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
    fleet_domain_name(fleet_run_id(&in), dom, sizeof dom);
    if ((node = fleet_host_node(f, in.host, &host))) {
        int rc = node_destroy(node, dom, err, sizeof err);
        if (rc != NODE_OK && rc != NODE_E_NOTFOUND)
            log_warn("instance %s: destroy after crash failed: %s", in.id, err);
    }
    fleet_host_release(f, host);
    state_inst_free(&in);
}
