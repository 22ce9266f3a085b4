/* remote.c - what the core does for hosts on other machines (issue 17;
 * node.h "Remote hosts", docs/node.md "Remote hosts"): fetch a running
 * guest's status file from the host where no stream carries it (node.h
 * node_serial_live: a stream that did not open, or broke, or a guest
 * adopted and not streamed again) and a finished run's files, stream an
 * adopted guest's ports again, and collect the image volumes and run
 * files no instance on a host uses any more. */
#include "fleet_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define STATUS_MAX (1u << 20) /* bytes of a status file fetched at most */

/* Copy one run file of `in` from its host; 0 or -1 (err says why). */
static int fetch_file(fleet *f, struct node *node, const state_instance *in, int console, char *err,
                      size_t errlen)
{
    char dom[64], path[FLEET_PATH_MAX];
    fleet_domain_name(fleet_run_id(in), dom, sizeof dom);
    if (console)
        fleet_console_path(f, fleet_run_id(in), path, sizeof path);
    else
        fleet_status_path(f, fleet_run_id(in), path, sizeof path);
    return node_fetch_run_file(node, dom, console ? ".console" : ".status", path,
                               console ? (uint64_t)f->cfg.console_max_kib * 1024u : STATUS_MAX, err,
                               errlen) == NODE_OK
               ? 0
               : -1;
}

void fleet_remote_fetch(fleet *f, const state_instance *in)
{
    fleet_host *host = NULL;
    struct node *node = fleet_host_node(f, in->host, &host);
    char err[NODE_ERR_MAX], dom[64];

    fleet_domain_name(fleet_run_id(in), dom, sizeof dom);
    for (int console = 0; node && node_remote(node) && console < 2; console++) {
        /* The stream ends first (its writes to the file are over). Even one
         * that saw the port close may miss the last bytes (a pty's hang-up
         * drops what its reader had not read yet); the host's log has
         * them, so the file is fetched. */
        node_serial_done(node, dom, console ? 0 : 1, FLEET_STREAM_END_WAIT_MS);
        if (fetch_file(f, node, in, console, err, sizeof err) != 0)
            log_warn("instance %s: cannot fetch its %s from host %s: %s", in->id,
                     console ? "console" : "status", in->host, err);
    }
    fleet_host_release(f, host);
}

/* Under f->mu: the monotonic start of id's run when that run is active on
 * node (or on a node not known) and no job of it runs (an end job fetches
 * the files itself), else -1. */
static int64_t poll_run_locked(fleet *f, const char *id, const struct node *node)
{
    const fleet_rt *rt = fleet_rt_find(f, id);
    return rt && rt->active && !rt->busy && (!rt->run_node || rt->run_node == node)
               ? rt->run_start_ms
               : -1;
}

void fleet_remote_poll(fleet *f, const char *id)
{
    state_instance in;
    fleet_host *host = NULL;
    struct node *node;
    char err[NODE_ERR_MAX], dom[64], path[FLEET_PATH_MAX], got[FLEET_PATH_MAX + 8];
    int64_t run_ms = -1;
    int fetched = 0, kept = 0;

    /* Most fleets have no remote host: no database read for them. */
    if (!fleet_remote_any_up(f) || state_inst_find(f->db, id, &in, err, sizeof err) != 0)
        return;
    node = strcmp(in.id, id) == 0 ? fleet_host_node(f, in.host, &host) : NULL;
    fleet_domain_name(fleet_run_id(&in), dom, sizeof dom);
    fleet_status_path(f, fleet_run_id(&in), path, sizeof path);
    snprintf(got, sizeof got, "%s.poll", path);
    /* The fallback: a live status stream needs no fetch (node.h). */
    if (node && node_remote(node) && !node_serial_live(node, dom, 1)) {
        pthread_mutex_lock(&f->mu);
        run_ms = poll_run_locked(f, in.id, node);
        pthread_mutex_unlock(&f->mu);
    }
    if (run_ms < 0)
        goto out;
    if (node_fetch_run_file(node, dom, ".status", got, STATUS_MAX, err, sizeof err) != NODE_OK) {
        log_debug("instance %s: cannot fetch its status from host %s: %s", in.id, in.host, err);
        goto out;
    }
    fetched = 1;
    /* The copy replaces the file only if the run it was fetched for is
     * still the one there: a run that ended meanwhile had its files
     * fetched whole by its end, and a new run's file (a move to another
     * host: the same path) must not be replaced by an old copy. */
    pthread_mutex_lock(&f->mu);
    if (poll_run_locked(f, in.id, node) == run_ms)
        kept = rename(got, path) == 0;
    pthread_mutex_unlock(&f->mu);
out:
    if (fetched && !kept)
        unlink(got);
    fleet_host_release(f, host);
    state_inst_free(&in);
}

void fleet_remote_adopt(fleet *f, struct node *node, const state_instance *in)
{
    char err[NODE_ERR_MAX] = "", dom[64], console[FLEET_PATH_MAX], status[FLEET_PATH_MAX];
    int paused_ms = -1;

    if (!node_remote(node))
        return;
    fleet_domain_name(fleet_run_id(in), dom, sizeof dom);
    fleet_console_path(f, fleet_run_id(in), console, sizeof console);
    fleet_status_path(f, fleet_run_id(in), status, sizeof status);
    if (node_serial_adopt(node, dom, console, (uint64_t)f->cfg.console_max_kib * 1024u, status,
                          STATUS_MAX, &paused_ms, err, sizeof err) != NODE_OK)
        log_warn("instance %s: its serial ports are not streamed again, their files are "
                 "fetched: %s",
                 in->id, err);
    else if (paused_ms >= 0)
        log_info("instance %s: serial ports streamed again from host %s (paused %d ms for it)",
                 in->id, in->host, paused_ms);
}

/* The 64 hex digits of "sha256:<hex>", or NULL. */
static const char *hex_of(const char *digest)
{
    return strncmp(digest, "sha256:", 7) == 0 && strlen(digest) == 71 ? digest + 7 : NULL;
}

/* Collect on one held host: keep what its instances (in any state) use. */
static void gc_host(fleet *f, fleet_host *h, const state_instance *rows, size_t n)
{
    const char **keep = calloc(3 * n + 1, sizeof *keep), **doms = calloc(n + 1, sizeof *doms);
    char(*names)[64] = calloc(n + 1, sizeof *names);
    char(*rds)[IMG_DIGEST_LEN + 1] = calloc(n + 1, sizeof *rds); /* images' initrds */
    size_t nk = 0, nd = 0;
    unsigned removed = 0;
    char err[NODE_ERR_MAX];

    if (!keep || !doms || !names || !rds) {
        log_warn("host %s: out of memory collecting volumes", h->name);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rows[i].host, h->name) != 0)
            continue;
        if (hex_of(rows[i].image_digest))
            keep[nk++] = hex_of(rows[i].image_digest);
        if (hex_of(rows[i].initrd))
            keep[nk++] = hex_of(rows[i].initrd);
        img_info info;
        img_err ie;
        memset(&info, 0, sizeof info);
        if (img_get(f->img, rows[i].image_digest, &info, &ie) == 0 && hex_of(info.initrd)) {
            snprintf(rds[nd], sizeof rds[nd], "%s", info.initrd);
            keep[nk++] = hex_of(rds[nd]);
        }
        img_info_clear(&info);
        fleet_domain_name(fleet_run_id(&rows[i]), names[nd], sizeof names[nd]);
        doms[nd] = names[nd];
        nd++;
    }
    if (node_store_gc(h->node, keep, nk, doms, nd, &removed, err, sizeof err) != NODE_OK)
        log_warn("host %s: cannot collect unused volumes: %s", h->name, err);
    else if (removed)
        log_info("host %s: removed %u unused image volume%s", h->name, removed,
                 removed == 1 ? "" : "s");
out:
    free(keep);
    free(doms);
    free(names);
    free(rds);
}

void fleet_remote_gc(fleet *f, const char *only)
{
    state_instance *rows = NULL;
    size_t n = 0;
    char err[256], (*names)[STATE_NAME_MAX] = NULL;
    size_t nh = 0;

    /* Names first: hosts are held one at a time, without f->mu. */
    pthread_mutex_lock(&f->mu);
    names = calloc(f->nhosts + 1, sizeof *names);
    for (size_t i = 0; names && i < f->nhosts; i++) {
        if (f->hosts[i]->up && f->hosts[i]->node && node_remote(f->hosts[i]->node) &&
            (!only || !strcmp(only, f->hosts[i]->name)))
            snprintf(names[nh++], sizeof names[0], "%s", f->hosts[i]->name);
    }
    pthread_mutex_unlock(&f->mu);
    if (!nh)
        goto out;
    if (state_inst_list(f->db, &rows, &n, err, sizeof err) != 0) {
        log_warn("cannot collect unused volumes: %s", err);
        goto out;
    }
    for (size_t i = 0; i < nh; i++) {
        fleet_host *h = NULL;
        if (fleet_host_node(f, names[i], &h))
            gc_host(f, h, rows, n);
        fleet_host_release(f, h);
    }
out:
    state_inst_array_free(rows, n);
    free(names);
}

/* One host's GC as a host call (fleet_remote_gc_bounded); arg: its name. */
static int gc_call_fn(fleet *f, struct node *node, void *arg, char *err, size_t errlen)
{
    (void)node;
    (void)err;
    (void)errlen;
    fleet_remote_gc(f, arg);
    return NODE_OK;
}

void fleet_remote_gc_bounded(fleet *f)
{
    char(*names)[STATE_NAME_MAX] = NULL, err[NODE_ERR_MAX];
    fleet_hcall **calls = NULL;
    size_t nh = 0;
    int64_t end = fleet_now_ms() + FLEET_GC_ANSWER_MS;

    pthread_mutex_lock(&f->mu);
    names = calloc(f->nhosts + 1, sizeof *names);
    calls = calloc(f->nhosts + 1, sizeof *calls);
    for (size_t i = 0; names && calls && i < f->nhosts; i++) {
        if (f->hosts[i]->up && f->hosts[i]->node && node_remote(f->hosts[i]->node))
            snprintf(names[nh++], sizeof names[0], "%s", f->hosts[i]->name);
    }
    pthread_mutex_unlock(&f->mu);
    /* all at once, then one deadline for them all */
    for (size_t i = 0; i < nh; i++) {
        fleet_host *h = NULL;
        struct node *node = fleet_host_node(f, names[i], &h);
        char *arg = node ? strdup(names[i]) : NULL;
        if (arg)
            calls[i] = fleet_host_call_start(f, h, node, gc_call_fn, NULL, arg, free);
        fleet_host_release(f, h);
    }
    for (size_t i = 0; i < nh; i++) {
        if (calls[i] &&
            fleet_host_call_wait(f, calls[i], end, 0, err, sizeof err) == FLEET_RIO_LATE)
            log_info("host %s: its volumes are collected when it answers", names[i]);
    }
    free(names);
    free(calls);
}
