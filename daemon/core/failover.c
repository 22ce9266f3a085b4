/* failover.c - host failure and fencing (failover.h; docs/shoald.md "Host
 * failure and fencing"): the supervisor notes hosts that went down, and
 * after the grace period starts their instances elsewhere or marks them
 * lost; a host that connects first loses the domains that now belong to
 * another host. */
#include "fleet_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "failover.h"
#include "log.h"
#include "snapshot.h"

fo_action fo_decide(const fo_inst *in, int64_t down_for_ms, int64_t grace_ms)
{
    if (down_for_ms < grace_ms || !in->want_running || in->deleting || in->moving || in->busy)
        return FO_KEEP;
    if (in->restart == RESTART_NEVER) {
        /* Only a run that may still be there is lost; a pending one just
         * waits for its host, as it always did. */
        return fleet_state_live(in->state) && in->state != ST_STOPPING ? FO_LOST : FO_KEEP;
    }
    switch (in->state) {
    case ST_PENDING:
    case ST_STARTING:
    case ST_RUNNING:
    case ST_BACKOFF: return FO_MOVE;
    default: return FO_KEEP; /* stopping, ended, lost, idle: nothing runs to replace */
    }
}

int64_t fo_last_answer(int64_t pong_ms, int64_t avail_ms, int64_t up_ms)
{
    int64_t last = pong_ms > avail_ms ? pong_ms : avail_ms;
    return last > up_ms ? last : up_ms;
}

int fo_hung(int64_t now, int64_t ping_ms, int64_t last_answer_ms)
{
    return ping_ms && last_answer_ms && now - last_answer_ms >= FO_PING_DEAD_MS;
}

int fo_fence(const char *row_host, const char *host)
{
    return row_host && strcmp(row_host, host) != 0;
}

/* ---- pings of hosts behind a libvirtd ---------------------------------- */

/* Every FO_PING_MS each up host whose calls may hang - a remote one or a
 * libvirtd of this machine (qemu:///system), not the embedded driver
 * (fleet_host_in_process) - gets a ping (FLEET_RIO_PING: a round trip on
 * a remote I/O worker, remoteio.c); h->ping_ms says since when one is
 * queued or in flight. This thread only queues and looks: it never waits
 * on a host. */
static void ping_hosts(fleet *f, int64_t now)
{
    fleet_host **hs;
    size_t n = 0;

    pthread_mutex_lock(&f->mu);
    hs = calloc(f->nhosts + 1, sizeof *hs);
    for (size_t i = 0; hs && i < f->nhosts; i++) {
        fleet_host *h = f->hosts[i];
        if (h->up && h->node && !fleet_host_in_process(h) && !h->ping_ms &&
            now - h->ping_last_ms >= FO_PING_MS) {
            h->ping_ms = h->ping_last_ms = now;
            h->refs++;
            hs[n++] = h;
        }
    }
    pthread_mutex_unlock(&f->mu);
    for (size_t i = 0; i < n; i++) {
        if (fleet_rio_submit(f, hs[i], FLEET_RIO_PING, NULL) != 0) {
            pthread_mutex_lock(&f->mu);
            hs[i]->ping_ms = 0;
            pthread_mutex_unlock(&f->mu);
        }
        fleet_host_release(f, hs[i]);
    }
    free(hs);
}

void fleet_failover_ping(fleet *f, fleet_host *h)
{
    struct node *node;
    int wake = 0;
    pthread_mutex_lock(&f->mu);
    node = h->up || h->hung ? h->node : NULL;
    pthread_mutex_unlock(&f->mu);
    if (node)
        (void)node_ping(node); /* a round trip; its result does not matter */
    pthread_mutex_lock(&f->mu);
    h->ping_ms = 0;
    h->pong_ms = fleet_now_ms();
    if (h->hung) {
        /* It answers again (or its connection was closed): the
         * supervisor reconnects it now, fencing first (failover.h). Not
         * before: a reconnect frees the connection that blocked calls
         * (this one, the sampler's) still use. */
        h->hung = 0;
        h->opening = 0;
        h->next_retry_ms = 0;
        wake = 1;
    }
    pthread_mutex_unlock(&f->mu);
    if (wake)
        fleet_wake_supervisor(f);
}

/* ---- the tick ----------------------------------------------------------- */

typedef struct {
    char name[STATE_NAME_MAX];
    int64_t down_ms;      /* monotonic */
    int64_t down_wall_ms; /* for messages */
} down_host;

/* The run on the lost host is over as far as shoald knows: its ports,
 * probes and isolation entries go, the run is recorded `lost`. */
static void end_lost_run(fleet *f, const state_instance *in, const char *why, int end_run)
{
    fleet_rt *rt;
    int run_no = 0, was_active;
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in->id);
    was_active = rt && rt->active;
    if (rt) {
        run_no = rt->run_no;
        rt->active = 0;
        rt->ready = 0;
        rt->backoff_due_ms = 0;
        rt->have_outcome = 0;
        rt->end_reason[0] = 0;
    }
    pthread_cond_broadcast(&f->state_cv);
    pthread_mutex_unlock(&f->mu);
    pfwd_remove(f->pfwd, in->id);
    fleet_probe_unwatch(f, in->id);
    fleet_guard_remove(f, fleet_run_id(in));
    if (end_run && was_active && run_no)
        state_run_end(f->db, in->id, run_no, fleet_wall_ms(), -1, "lost", why);
}

typedef struct {
    const char *to;  /* re-home here (NULL: stay) */
    const char *why; /* last_error */
    state_inst_state st;
} fo_mut;

static void fo_mutate_fn(state_instance *in, void *ctx)
{
    const fo_mut *m = ctx;
    in->state = m->st;
    in->exit_code = -1;
    fleet_text_copy(in->last_error, sizeof in->last_error, m->why);
    if (m->to) {
        snprintf(in->host, sizeof in->host, "%s", m->to);
        in->restarts++;
    }
}

static void mark_lost(fleet *f, const state_instance *in, const down_host *d)
{
    char why[256];
    fo_mut m = { NULL, why, ST_LOST };
    snprintf(why, sizeof why,
             "host '%s' unreachable for %lld s; " FO_LOST_MARK " "
             "(its guest may still run there: adopted again if the host comes back)",
             d->name, (long long)((fleet_now_ms() - d->down_ms) / 1000));
    end_lost_run(f, in, why, 0); /* the same run if its host comes back with it */
    fleet_mutate(f, in->id, fo_mutate_fn, &m);
    log_warn("instance %s (%s): %s", in->id, in->name, why);
}

/* 1 when the snapshot's row `in` is one of rows[] marked in move[] (the
 * snapshot reads the rows again: matched by id, and still on its host). */
static int marked(const state_instance *in, const state_instance *rows, const unsigned char *move,
                  size_t nrows)
{
    for (size_t r = 0; r < nrows; r++) {
        if (move[r] && !strcmp(rows[r].id, in->id))
            return !strcmp(rows[r].host, in->host);
    }
    return 0;
}

/* Place the instances of rows[] marked in move[] and carry each placed one
 * over. Caller holds place_mu. */
static void move_all(fleet *f, const state_instance *rows, const unsigned char *move, size_t nrows,
                     const down_host *downs, size_t ndown)
{
    fleet_snapshot snap;
    sched_state *sst = NULL;
    fleet_err e;
    char err[256];

    if (fleet_snapshot_take_pool(f, &snap, err, sizeof err) != 0) {
        log_warn("failover: %s", err);
        return;
    }
    if (fleet_snapshot_sched(&snap, &sst, &e) != FLEET_OK) {
        log_warn("failover: %s", e.msg);
        fleet_snapshot_free(&snap);
        return;
    }
    for (size_t i = 0; i < snap.ninsts; i++) {
        const state_instance *in;
        const down_host *d = NULL;
        sched_request req;
        sched_place_opts po = { .policy = SCHED_BINPACK, .commit = true };
        sched_decision dec;
        char why[SCHED_MSG_MAX + 160];
        fo_mut m;

        if (snap.row_of[i] == SCHED_NONE)
            continue;
        in = &snap.rows[snap.row_of[i]];
        if (!marked(in, rows, move, nrows))
            continue;
        for (size_t k = 0; k < ndown && !d; k++)
            d = !strcmp(downs[k].name, in->host) ? &downs[k] : NULL;
        if (!d)
            continue;
        if (snap.iplace[i].pin && !strcmp(snap.iplace[i].pin, in->host)) {
            /* Pinned ("host" at create) to the host it is on: it waits
             * for that host, like a `never` one it is not started
             * elsewhere, but stays wanted (drains, the operator's call,
             * may still move it). */
            snprintf(why, sizeof why, "host '%s' unreachable; " FO_PIN_MARK, d->name);
            if (in->state != ST_PENDING || strcmp(in->last_error, why)) {
                m = (fo_mut){ NULL, why, ST_PENDING };
                end_lost_run(f, in, why, 0); /* the same run if its host comes back */
                fleet_mutate(f, in->id, fo_mutate_fn, &m);
                log_warn("instance %s (%s): %s", in->id, in->name, why);
            }
            continue;
        }
        memset(&req, 0, sizeof req);
        memset(&dec, 0, sizeof dec);
        req.name = in->name;
        req.mem_mib = snap.insts[i].mem_mib;
        req.vcpus = snap.insts[i].vcpus;
        req.labels = snap.insts[i].labels;
        req.n_labels = snap.insts[i].n_labels;
        req.rules = snap.insts[i].rules;
        req.n_rules = snap.insts[i].n_rules;
        req.count = 1;
        if (sched_place(sst, &req, 1, &po, &dec) != SCHED_OK || dec.n_assignments != 1) {
            /* Waits where it is, pending, saying why; tried again. */
            snprintf(why, sizeof why, "host '%s' unreachable; " FO_WAIT_MARK ": %s", d->name,
                     dec.message);
            m = (fo_mut){ NULL, why, ST_PENDING };
            if (in->state != ST_PENDING || strcmp(in->last_error, why)) {
                end_lost_run(f, in, why, 0); /* the same run if its host comes back */
                fleet_mutate(f, in->id, fo_mutate_fn, &m);
                log_warn("instance %s (%s): %s", in->id, in->name, why);
            }
            sched_decision_clear(&dec);
            continue;
        }
        {
            char to[STATE_NAME_MAX], msg[200];
            snprintf(to, sizeof to, "%s", dec.assignments[0].host_id);
            sched_decision_clear(&dec);
            snprintf(why, sizeof why, "failed over from host '%s' (unreachable for %lld s)",
                     d->name, (long long)((fleet_now_ms() - d->down_ms) / 1000));
            /* Old run's ports and probes gone before the row names the
             * new host: the ports move with the instance. */
            end_lost_run(f, in, why, 1);
            m = (fo_mut){ to, why, ST_PENDING };
            if (fleet_mutate(f, in->id, fo_mutate_fn, &m) != 0)
                continue;
            pthread_mutex_lock(&f->mu);
            fleet_rt *rt = fleet_rt_get(f, in->id);
            if (rt)
                rt->request_ms = fleet_now_ms();
            pthread_mutex_unlock(&f->mu);
            snprintf(msg, sizeof msg, "from %s to %s", d->name, to);
            log_warn("instance %s (%s): failover %s (host down %lld ms)", in->id, in->name, msg,
                     (long long)(fleet_now_ms() - d->down_ms));
            fleet_emit(f, "instance.failover", in->id, in->name, NULL, to, NULL, NULL, msg);
            fleet_queue(f, JOB_START, in->id, NULL);
        }
    }
    sched_state_free(sst);
    fleet_snapshot_free(&snap);
}

/* fleet_move_finish_left of an instance of a down host whose move was
 * left to finish: its run there is over as far as shoald knows (lost). */
static void move_left_over(fleet *f, const state_instance *in, const down_host *d)
{
    char to[STATE_NAME_MAX + 1], why[200];
    fleet_rt *rt;
    int moving;
    if (state_inst_move_to(f->db, in->id, to, sizeof to) != 1)
        return;
    pthread_mutex_lock(&f->mu);
    moving = (rt = fleet_rt_find(f, in->id)) && (rt->moving || rt->busy);
    pthread_mutex_unlock(&f->mu);
    if (moving || state_inst_deleting(f->db, in->id) == 1)
        return;
    snprintf(why, sizeof why, "moved to '%s' while host '%s' is unreachable (%lld s)", to, d->name,
             (long long)((fleet_now_ms() - d->down_ms) / 1000));
    /* The move's stop reaches the old copy when its host answers, however
     * late: being that host's, its end does not end the run on `to`
     * (run.c end_elsewhere; seen before: the new copy ended "exited" at
     * the thaw). */
    end_lost_run(f, in, why, 1);
    if (fleet_move_finish_left(f, in->id))
        log_warn("instance %s (%s): %s", in->id, in->name, why);
}

void fleet_failover_tick(fleet *f, int64_t now)
{
    down_host *downs = NULL, *gone = NULL;
    char(*back)[STATE_NAME_MAX] = NULL;
    size_t ndown = 0, ngone = 0, nback = 0, nrows = 0;
    state_instance *rows = NULL;
    unsigned char *move = NULL;
    int64_t grace_ms =
        (int64_t)(f->cfg.host_grace_s > 0 ? f->cfg.host_grace_s : FO_GRACE_DEFAULT_S) * 1000;
    int any_due = 0, any_move = 0;
    char err[256];

    ping_hosts(f, now);
    fleet_rio_tick(f); /* a worker for items held back by a hung host's */
    pthread_mutex_lock(&f->mu);
    downs = calloc(f->nhosts + 1, sizeof *downs);
    gone = calloc(f->nhosts + 1, sizeof *gone);
    back = calloc(f->nhosts + 1, sizeof *back);
    for (size_t i = 0; downs && gone && back && i < f->nhosts; i++) {
        fleet_host *h = f->hosts[i];
        int64_t last;
        /* Seen up: it answered a connect (answers from before an outage
         * do not count, or it would be hung again at once). */
        if (!h->up)
            h->up_ms = 0;
        else if (!h->up_ms)
            h->up_ms = now;
        last = fo_last_answer(h->pong_ms, h->heard_ms, h->up_ms);
        if (h->up && fo_hung(now, h->ping_ms, last) && !h->opening) {
            /* Hung: down now. Held as `opening` until the ping returns,
             * so nobody reconnects (frees) the connection under the calls
             * blocked on it. */
            h->up = 0;
            h->hung = 1;
            h->opening = 1;
            snprintf(h->last_error, sizeof h->last_error, "not answering for %lld s",
                     (long long)((now - last) / 1000));
            h->next_retry_ms = now + FLEET_RECONNECT_MS;
        }
        if (h->up) {
            h->fencing = 0;
            if (h->down_ms)
                snprintf(back[nback++], sizeof back[0], "%s", h->name);
            h->down_ms = 0;
            continue;
        }
        if (!h->down_ms) {
            h->down_ms = now;
            h->down_wall_ms = fleet_wall_ms();
            snprintf(gone[ngone].name, sizeof gone[0].name, "%s", h->name);
            ngone++;
        }
        snprintf(downs[ndown].name, sizeof downs[0].name, "%s", h->name);
        downs[ndown].down_ms = h->down_ms;
        downs[ndown].down_wall_ms = h->down_wall_ms;
        /* Connected again, being fenced: left alone, or a guest found
         * still running would be marked lost again. A connect that hangs
         * counts as down. */
        if (h->fencing)
            downs[ndown].down_ms = now;
        any_due |= now - downs[ndown].down_ms >= grace_ms;
        ndown++;
    }
    if (any_due && now - f->failover_ms < FO_RETRY_MS)
        any_due = 0; /* one pass per FO_RETRY_MS while hosts stay down */
    if (any_due)
        f->failover_ms = now;
    pthread_mutex_unlock(&f->mu);

    for (size_t i = 0; i < ngone; i++) {
        char why[NODE_ERR_MAX + 64];
        fleet_host *h = fleet_host_hold(f, gone[i].name);
        pthread_mutex_lock(&f->mu);
        snprintf(why, sizeof why, "%s", h ? h->last_error : "");
        pthread_mutex_unlock(&f->mu);
        fleet_host_release(f, h);
        log_warn("host %s is down (%s): its instances fail over in %lld s", gone[i].name,
                 why[0] ? why : "not connected", (long long)(grace_ms / 1000));
        fleet_emit(f, "host.state", NULL, gone[i].name, "down", gone[i].name, NULL, NULL,
                   why[0] ? why : NULL);
    }
    for (size_t i = 0; i < nback; i++)
        log_info("host %s is back", back[i]);
    if (!any_due || state_inst_list(f->db, &rows, &nrows, err, sizeof err) != 0)
        goto out;
    move = calloc(nrows + 1, 1);
    for (size_t r = 0; move && r < nrows; r++) {
        const down_host *d = NULL;
        fo_inst fi;
        char to[STATE_NAME_MAX + 1];
        fleet_rt *rt;
        for (size_t k = 0; k < ndown && !d; k++)
            d = !strcmp(downs[k].name, rows[r].host) ? &downs[k] : NULL;
        if (d && !rows[r].want_running && rows[r].restart != RESTART_NEVER &&
            now - d->down_ms >= grace_ms) {
            /* A move whose source hung before it stopped the old copy
             * (plan.c): finished on its destination now, as a failover
             * would start it elsewhere; the old copy is fenced when its
             * host answers. */
            move_left_over(f, &rows[r], d);
            continue;
        }
        if (!d || !rows[r].want_running)
            continue;
        memset(&fi, 0, sizeof fi);
        fi.restart = rows[r].restart;
        fi.state = rows[r].state;
        fi.want_running = rows[r].want_running;
        fi.deleting = state_inst_deleting(f->db, rows[r].id) == 1;
        fi.moving = state_inst_move_to(f->db, rows[r].id, to, sizeof to) == 1;
        pthread_mutex_lock(&f->mu);
        rt = fleet_rt_find(f, rows[r].id);
        fi.busy = rt && rt->busy;
        fi.moving |= rt && rt->moving;
        pthread_mutex_unlock(&f->mu);
        switch (fo_decide(&fi, now - d->down_ms, grace_ms)) {
        case FO_LOST: mark_lost(f, &rows[r], d); break;
        case FO_MOVE:
            move[r] = 1;
            any_move = 1;
            break;
        default: break;
        }
    }
    /* Placement under place_mu, like a create; never waited for here. */
    if (any_move && pthread_mutex_trylock(&f->place_mu) == 0) {
        move_all(f, rows, move, nrows, downs, ndown);
        pthread_mutex_unlock(&f->place_mu);
    }
out:
    free(move);
    state_inst_array_free(rows, nrows);
    free(downs);
    free(gone);
    free(back);
}

void *fleet_failover_main(void *arg)
{
    fleet *f = arg;
    int64_t last = 0;
    pthread_mutex_lock(&f->mu);
    while (!f->stopping) {
        int64_t now = fleet_now_ms();
        struct timespec ts;
        if (now - last >= FO_TICK_MS) {
            last = now;
            pthread_mutex_unlock(&f->mu);
            fleet_failover_tick(f, now);
            pthread_mutex_lock(&f->mu);
            continue;
        }
        /* state_cv is broadcast at stop (and on state changes: a tick is
         * still at most one per FO_TICK_MS) */
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)(FO_TICK_MS - (now - last)) * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&f->state_cv, &f->mu, &ts);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* ---- fencing ----------------------------------------------------------- */

void fleet_failover_fence(fleet *f, fleet_host *h, struct node *node)
{
    struct node_dom *doms = NULL;
    size_t ndoms = 0, nrows = 0;
    state_instance *rows = NULL;
    char err[NODE_ERR_MAX];

    /* No failover decisions for h until it is up (the tick, its caller). */
    pthread_mutex_lock(&f->mu);
    h->fencing = 1;
    pthread_mutex_unlock(&f->mu);
    if (node_list(node, &doms, &ndoms, err, sizeof err) != NODE_OK) {
        log_warn("host %s: fence: cannot list domains: %s", h->name, err);
        return;
    }
    if (!ndoms || state_inst_list(f->db, &rows, &nrows, err, sizeof err) != 0)
        goto out;
    for (size_t d = 0; d < ndoms; d++) {
        const state_instance *row = NULL;
        char msg[2 * STATE_NAME_MAX + 40];
        for (size_t r = 0; r < nrows && !row; r++)
            row = !strcmp(rows[r].id, doms[d].instance_id) ? &rows[r] : NULL;
        if (row && !fo_fence(row->host, h->name) && row->want_running &&
            ((row->state == ST_LOST && strstr(row->last_error, FO_LOST_MARK)) ||
             (row->state == ST_PENDING &&
              (strstr(row->last_error, FO_WAIT_MARK) || strstr(row->last_error, FO_PIN_MARK))))) {
            /* Lost with its host (restart never), or waiting for room,
             * and its guest is still there: running again, the same run
             * (reconcile adopts it, ready as it was). */
            char why[128];
            snprintf(why, sizeof why, "host '%s' came back with it still running", h->name);
            fleet_set_state(f, row->id, ST_RUNNING, why);
            continue;
        }
        if (!fo_fence(row ? row->host : NULL, h->name))
            continue;
        /* its STOPPED event, from h, ends nothing: the instance's run,
         * if any, is on the host its row names (run.c end_elsewhere) */
        log_warn("host %s: fencing domain '%s': instance '%s' (%s) now belongs to host '%s'",
                 h->name, doms[d].name, row->id, row->name, row->host);
        if (node_destroy(node, doms[d].name, err, sizeof err) != NODE_OK) {
            log_warn("host %s: fence: %s", h->name, err);
            continue;
        }
        snprintf(msg, sizeof msg, "old copy destroyed on %s (runs on %s)", h->name, row->host);
        fleet_emit(f, "instance.fenced", row->id, row->name, NULL, h->name, NULL, NULL, msg);
    }
out:
    state_inst_array_free(rows, nrows);
    node_list_free(doms);
}
