/* reconcile.c - bring the database in line with what a host really runs,
 * on every (re)connect: adopt our running domains, destroy unknown ones,
 * end the runs of rows whose domain went while shoald was not watching,
 * and queue the starts that were waiting for the host.
 *
 * What a shoald killed mid-operation left (issue 16, docs/shoald.md
 * "Faults") is finished here, never turned into `lost`:
 *   - a row marked deleting (state_inst_mark_deleting): its domain is
 *     destroyed if it still runs, then the delete completes;
 *   - a row `starting` whose domain runs is adopted like any running one;
 *     one whose domain does not exist was never started (or never
 *     reported): JOB_DOMAIN_GONE "vanished" reads its status file and,
 *     with no exit or crash in it, starts it again (run.c);
 *   - a row pending or in backoff and still wanted is started;
 *   - a row marked with a cold move's destination (plan.c) whose move no
 *     thread of this process carries out: its domain here is destroyed,
 *     then the row is re-homed and started there (never two copies);
 *   - at a host's first reconcile, a QEMU of its embed root that libvirt
 *     does not list (launched by a start the kill interrupted) is killed.
 * A domain of an instance held for this host (a start given up because the
 * host did not answer, run.c "Starts given up") is not adopted: it is
 * destroyed and the hold ends (fleet_start_unhold_host). */
#include "fleet_int.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pool.h"

/* QEMUs of an embedded host's root that libvirt does not list: a start
 * that a killed shoald left inside virDomainCreateXML, after QEMU was
 * launched and before libvirt recorded the domain (issue 16: seen once in
 * e2e_daemon_killpoints as an extra QEMU whose retried start then failed).
 * Only at a host's first reconcile in this process, before any start of
 * ours can be in flight on it. A process counts when its executable is a
 * qemu-system binary and its command line names a shoal domain
 * (guest=shoal-ID) and the embed root; it is killed (SIGKILL). */
static void kill_unlisted_qemus(const char *host, const char *uri, const struct node_dom *doms,
                                size_t ndoms)
{
    const char *r = !strncmp(uri, "qemu:///embed?", 14) ? strstr(uri, "root=") : NULL;
    char root[FLEET_PATH_MAX];
    size_t rn;
    DIR *d;
    struct dirent *e;

    if (!r)
        return;
    r += 5;
    rn = strcspn(r, "&");
    if (!rn || rn >= sizeof root)
        return;
    memcpy(root, r, rn);
    root[rn] = 0;
    if (!(d = opendir("/proc")))
        return;
    while ((e = readdir(d))) {
        char path[64], exe[FLEET_PATH_MAX], buf[16384], id[STATE_ID_LEN + 1];
        const char *g, *base;
        ssize_t n;
        int fd, listed = 0;
        pid_t pid;

        if (!isdigit((unsigned char)e->d_name[0]) || (pid = (pid_t)atoi(e->d_name)) <= 1)
            continue;
        snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
        if ((n = readlink(path, exe, sizeof exe - 1)) <= 0)
            continue;
        exe[n] = 0;
        base = strrchr(exe, '/');
        if (strncmp(base ? base + 1 : exe, "qemu-system", 11) != 0)
            continue;
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
            continue;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        for (ssize_t i = 0; i < n; i++)
            buf[i] = buf[i] ? buf[i] : ' ';
        buf[n] = 0;
        if (!(g = strstr(buf, "guest=shoal-")) || !strstr(buf, root))
            continue;
        g += 12;
        if (strspn(g, "0123456789abcdef") != STATE_ID_LEN)
            continue;
        memcpy(id, g, STATE_ID_LEN);
        id[STATE_ID_LEN] = 0;
        /* by name: a domain woken from the pool is named after its guest,
         * not its instance (fleet_run_id) */
        for (size_t k = 0; k < ndoms && !listed; k++)
            listed = !strncmp(doms[k].name, "shoal-", 6) && !strcmp(doms[k].name + 6, id);
        if (listed)
            continue;
        log_warn("host %s: killing QEMU pid %d of domain 'shoal-%s': libvirt does not know it "
                 "(a start interrupted when shoald was killed)",
                 host, (int)pid, id);
        kill(pid, SIGKILL);
    }
    closedir(d);
}

/* A cold move an earlier shoald left half done (plan.c): 1 with its
 * destination in to when the row is marked and no move of this process is
 * carrying it out. */
static int move_left(fleet *f, const char *id, char *to, size_t tolen)
{
    fleet_rt *rt;
    int moving;
    if (state_inst_move_to(f->db, id, to, tolen) != 1)
        return 0;
    pthread_mutex_lock(&f->mu);
    moving = (rt = fleet_rt_get(f, id)) && rt->moving;
    pthread_mutex_unlock(&f->mu);
    return !moving;
}

/* Finish such a move: the domain on this host is gone (destroyed here or
 * never there), so the row goes to its destination, wanted, and starts. */
static void finish_move(fleet *f, struct node *node, const state_instance *row, const char *to,
                        int found)
{
    char err[NODE_ERR_MAX], dom[64];
    int rc = NODE_OK;
    if (found) { /* its end ends nothing: the run is on `to` (run.c end_elsewhere) */
        fleet_domain_name(fleet_run_id(row), dom, sizeof dom);
        rc = node_destroy(node, dom, err, sizeof err);
    }
    if (rc != NODE_OK && rc != NODE_E_NOTFOUND)
        log_warn("instance %s: move to %s left unfinished: destroy: %s", row->id, to, err);
    else if (!fleet_move_finish_left(f, row->id))
        log_warn("instance %s: move to %s left unfinished", row->id, to);
}

/* Is a run of id active in this process? */
static int run_active(fleet *f, const char *id)
{
    fleet_rt *rt;
    int active;
    pthread_mutex_lock(&f->mu);
    active = (rt = fleet_rt_get(f, id)) && rt->active;
    pthread_mutex_unlock(&f->mu);
    return active;
}

/* An adopted domain's name "shoal-<run id>" that is not the row's
 * (fleet_run_id): the row is made to name that id as its guest. */
static void adopt_guest(fleet *f, state_instance *row, const char *name)
{
    char want[64];
    const char *run = !strncmp(name, "shoal-", 6) ? name + 6 : "";
    fleet_domain_name(fleet_run_id(row), want, sizeof want);
    if (!strcmp(want, name) || strlen(run) != STATE_ID_LEN ||
        strspn(run, "0123456789abcdef") != STATE_ID_LEN)
        return;
    log_warn("instance %s: its domain is '%s': taking that identity", row->id, name);
    fleet_set_guest(f, row->id, strcmp(run, row->id) ? run : "");
    fleet_text_copy(row->guest, sizeof row->guest, strcmp(run, row->id) ? run : "");
}

/* Bring the rows of host h in line with the domains it really runs. */
void fleet_reconcile_host(fleet *f, fleet_host *h)
{
    const char *host_name = h->name; /* fixed for the host's life */
    struct node *node;
    struct node_dom *doms = NULL;
    size_t ndoms = 0;
    state_instance *rows = NULL;
    size_t nrows = 0;
    char err[NODE_ERR_MAX];
    int first;
    int64_t listed_ms;

    pthread_mutex_lock(&f->mu);
    node = h->up ? h->node : NULL;
    pthread_mutex_unlock(&f->mu);
    if (!node)
        return;
    listed_ms = fleet_now_ms();
    if (node_list(node, &doms, &ndoms, err, sizeof err) != NODE_OK) {
        log_warn("host %s: cannot list domains: %s", host_name, err);
        return;
    }
    pthread_mutex_lock(&f->mu);
    first = !h->reconciled;
    h->reconciled = 1;
    pthread_mutex_unlock(&f->mu);
    if (first)
        kill_unlisted_qemus(host_name, h->uri, doms, ndoms);
    if (state_inst_list(f->db, &rows, &nrows, err, sizeof err) != 0) {
        log_warn("reconcile: %s", err);
        node_list_free(doms);
        return;
    }
    /* Domains: adopt ours, destroy unknown ones. */
    for (size_t d = 0; d < ndoms; d++) {
        state_instance *row = NULL;
        char to[STATE_NAME_MAX + 1];
        for (size_t r = 0; r < nrows; r++) {
            if (!strcmp(rows[r].id, doms[d].instance_id)) {
                row = &rows[r];
                break;
            }
        }
        /* A start given up here made it: never adopted (run.c), destroyed
         * by fleet_start_unhold_host below. */
        if (row && fleet_start_held(f, row->id, host_name))
            continue;
        if (row && !strcmp(row->host, host_name) && move_left(f, row->id, to, sizeof to)) {
            /* not adopted: the rows loop below finishes the move */
            log_warn("host %s: destroying domain '%s' (instance '%s' is moving to %s)", host_name,
                     doms[d].name, doms[d].instance_id, to);
            pthread_mutex_lock(&f->mu);
            fleet_rt *rt = fleet_rt_get(f, row->id);
            int run_here = rt->active;
            if (run_here)
                rt->stop_requested = 1;
            pthread_mutex_unlock(&f->mu);
            /* A run of this process (a move whose source hung, plan.c):
             * its end, on the STOPPED event, finishes the move. Else (a
             * killed shoald's move) the STOPPED event comes late, when the
             * run on `to` may have begun: being this host's, it does not
             * end that run (run.c end_elsewhere; seen before in
             * e2e_daemon_killpoints' move.marked: the new copy reported
             * crashed, "destroyed") */
            if (node_destroy(node, doms[d].name, err, sizeof err) != NODE_OK)
                log_warn("host %s: destroy '%s' failed: %s", host_name, doms[d].name, err);
            continue;
        }
        /* A warm pool guest of this process (pool.h): not an instance yet.
         * One an earlier shoald left has no row and is destroyed below. */
        if (!row && fleet_pool_owns(f, doms[d].instance_id))
            continue;
        if (!row || strcmp(row->host, host_name) != 0 || !row->want_running) {
            log_warn("host %s: destroying domain '%s' (instance '%s' is %s)", host_name,
                     doms[d].name, doms[d].instance_id,
                     !row                 ? "unknown"
                     : !row->want_running ? "not meant to run"
                                          : "elsewhere");
            if (row && !row->want_running) {
                pthread_mutex_lock(&f->mu);
                fleet_rt *rt = fleet_rt_get(f, row->id);
                /* a run of this domain, which its end ends "stopped";
                 * one active already (a stop on another host in flight)
                 * keeps its node, and this domain's end ends nothing */
                if (!rt->active)
                    rt->run_node = node;
                rt->active = 1;
                rt->stop_requested = 1;
                pthread_mutex_unlock(&f->mu);
            }
            if (node_destroy(node, doms[d].name, err, sizeof err) != NODE_OK)
                log_warn("host %s: destroy '%s' failed: %s", host_name, doms[d].name, err);
            continue;
        }
        /* Its domain is named after the identity it runs with: a pool
         * guest's when it woke from the pool (state.h guest). The row is
         * written before the guest gets its configuration, so they agree;
         * should they not, the domain tells. */
        adopt_guest(f, row, doms[d].name);
        pthread_mutex_lock(&f->mu);
        fleet_rt *rt = fleet_rt_get(f, row->id);
        int was_active = rt->active;
        rt->active = 1;
        rt->run_node = node; /* the row's host: the run is this domain */
        fleet_text_copy(rt->guest, sizeof rt->guest, row->guest);
        if (!was_active)
            rt->run_start_ms = fleet_now_ms();
        pthread_mutex_unlock(&f->mu);
        if (!was_active) {
            log_info("instance %s (%s): adopted running domain on %s", row->id, row->name,
                     host_name);
            /* A start cut short between create and resume left it paused. */
            if (doms[d].state == NODE_DOM_PAUSED && !doms[d].internal_error &&
                node_resume_started(node, doms[d].name, err, sizeof err) < 0)
                log_warn("instance %s: %s", row->id, err);
            if (!fleet_state_live(row->state))
                fleet_set_state(f, row->id, ST_STARTING, NULL);
            fleet_guard_adopt(f, row);
            fleet_publish_ports(f, row);
            /* probes again: health at once if it was ready, else readiness */
            int at_once, sc = fleet_has_status_channel(f, row);
            pthread_mutex_lock(&f->mu);
            fleet_rt *prt = fleet_rt_get(f, row->id);
            int gen = prt->run_no;
            prt->ready_by_probe = !fleet_probe_by_status(row, sc);
            prt->ready = row->state == ST_RUNNING;
            pthread_mutex_unlock(&f->mu);
            fleet_probe_watch(f, row, sc, gen, row->state == ST_RUNNING, &at_once);
            if (at_once)
                fleet_mark_ready(f, row->id, gen, fleet_now_ms());
        }
        if (doms[d].internal_error)
            fleet_queue(f, JOB_DOMAIN_CRASHED, row->id, "kvm-internal-error");
        else
            fleet_remote_adopt(f, node, row); /* its streams again, if remote */
        fleet_status_poll(f, row->id);
    }
    /* A remote host's DHCP entries: those of the guests it runs, before
     * any start is queued below (hostnet.c). */
    fleet_net_dhcp_sync(f, h, node, doms, ndoms);
    /* Rows: live ones without a domain ended while we were away. */
    for (size_t r = 0; r < nrows; r++) {
        state_instance *row = &rows[r];
        char to[STATE_NAME_MAX + 1];
        int found = 0;
        if (strcmp(row->host, host_name) != 0)
            continue;
        for (size_t d = 0; d < ndoms; d++)
            found |= !strcmp(doms[d].instance_id, row->id);
        if (state_inst_deleting(f->db, row->id) == 1) {
            /* A delete in flight when shoald died: its domain (not meant
             * to run) was destroyed above; make sure, then finish. */
            char dom[64];
            int rc = NODE_OK;
            if (found) {
                fleet_domain_name(fleet_run_id(row), dom, sizeof dom);
                rc = node_destroy(node, dom, err, sizeof err);
            }
            if (rc != NODE_OK && rc != NODE_E_NOTFOUND)
                log_warn("instance %s: delete left unfinished: destroy: %s", row->id, err);
            else if (fleet_delete_finish(f, row, err, sizeof err) != 0)
                log_warn("instance %s: delete left unfinished: %s", row->id, err);
            else
                log_info("instance %s (%s): finished the delete an earlier shoald began", row->id,
                         row->name);
            continue;
        }
        if (move_left(f, row->id, to, sizeof to) && !run_active(f, row->id)) {
            finish_move(f, node, row, to, found);
            continue;
        }
        /* else a run of this process: its end below finishes the move */
        if (found || fleet_start_held(f, row->id, host_name))
            continue; /* held: started again once the hold ends */
        if (fleet_state_live(row->state)) {
            pthread_mutex_lock(&f->mu);
            fleet_rt *rt = fleet_rt_get(f, row->id);
            /* Not gone: a run begun since the list was read (another
             * host's reconcile finishing a move to this one starts it
             * here meanwhile), or a start of it in flight. Its domain came
             * after the list; an end of it is still reported by libvirt. */
            if (rt && ((rt->active && rt->run_start_ms >= listed_ms) ||
                       (rt->busy && row->state == ST_STARTING))) {
                pthread_mutex_unlock(&f->mu);
                continue;
            }
            int was_active = rt->active;
            rt->active = 1; /* so the final status poll reads the file */
            rt->run_node = node;
            if (row->state == ST_STOPPING)
                rt->stop_requested = 1;
            pthread_mutex_unlock(&f->mu);
            fleet_queue(f, JOB_DOMAIN_GONE, row->id, was_active ? "unknown" : "vanished");
        } else if (row->want_running && (row->state == ST_PENDING || row->state == ST_BACKOFF)) {
            fleet_queue(f, JOB_START, row->id, NULL);
        } else if (row->state == ST_IDLE) {
            fleet_idle_adopt(f, row); /* asleep: its ports listen (idle.c) */
        }
    }
    state_inst_array_free(rows, nrows);
    node_list_free(doms);
    fleet_start_unhold_host(f, host_name);
}
