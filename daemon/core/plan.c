/* plan.c - drain and consolidation: the scheduler plans the moves, and
 * unless it is a dry run each move is carried out: live (move.c) for a
 * running instance with published ports, else cold (stop, re-home, start
 * again if it ran) under place_mu so that no create lands on a host while
 * it is being emptied. */
#include "fleet_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "killpoint.h"
#include "log.h"
#include "snapshot.h"

void fleet_plan_clear(fleet_plan *p)
{
    if (!p)
        return;
    free(p->moves);
    free(p->freed);
    memset(p, 0, sizeof *p);
}

static void set_moving(fleet *f, const char *id, int on)
{
    fleet_rt *rt;
    pthread_mutex_lock(&f->mu);
    if ((rt = fleet_rt_get(f, id)))
        rt->moving = on;
    pthread_mutex_unlock(&f->mu);
}

/* Cold-move one instance: stop where it is, re-home, start if it ran.
 * A stopped one is re-homed by one write. A running one survives a
 * SIGKILL of shoald at any step (issue 16): its row is marked with the
 * destination before its domain is stopped, and re-homed, wanted and
 * pending in one write after (state_inst_finish_move); a shoald killed in
 * between finishes the move at the source host's next reconcile
 * (reconcile.c): the old domain destroyed first, then the start on the
 * destination, so never two copies and never left stopped. */
static int move_instance(fleet *f, const char *id, const char *to, fleet_err *e)
{
    state_instance in;
    char err[256], name[STATE_NAME_MAX], from[STATE_NAME_MAX];
    int was_up, rc;
    if ((rc = fleet_lookup(f, id, &in, e)) != FLEET_OK)
        return rc;
    was_up = in.want_running;
    snprintf(name, sizeof name, "%s", in.name);
    snprintf(from, sizeof from, "%s", in.host);
    state_inst_free(&in);
    if (!was_up) {
        fleet_set_host(f, id, to);
        fleet_emit(f, "instance.moved", id, NULL, NULL, to, NULL, NULL, NULL);
        return FLEET_OK;
    }
    set_moving(f, id, 1);
    if ((rc = state_inst_mark_move(f->db, id, to, err, sizeof err)) != 0) {
        rc = fleet_err_set(e, fleet_state_code(rc), NULL, "%s", err);
        goto out;
    }
    kp_hit("move.marked"); /* tests only: killpoint.h */
    rc = fleet_stop_id(f, id, 2, e);
    /* The stop is recorded even when the host answered late (a slow or
     * loaded remote host: 503) or not at all (one that hangs, or is down:
     * the stop answers without the run's end). Giving the move up would
     * leave the instance stopped once the stop is carried out, so it goes
     * on if the run ends within --move-ready-timeout; past that the row
     * keeps its mark, and the move is finished when the run ends
     * (fleet_move_finish_left): never left stopped, never two copies. */
    if (rc != FLEET_OK || !fleet_rt_wait(f, id, 1, 0)) {
        if (!fleet_rt_wait(f, id, 1, f->cfg.move_ready_ms)) {
            rc = fleet_err_set(e, FLEET_E_UNAVAILABLE, NULL,
                               "moving '%s' to '%s': host '%s' did not stop it within %d s; the "
                               "move finishes when it does (or after --host-grace while the host "
                               "is down, for a restart policy other than never)",
                               name, to, from, f->cfg.move_ready_ms / 1000);
            log_warn("move: %s", e ? e->msg : "the old copy did not stop in time");
            set_moving(f, id, 0);
            /* after any job of it in flight: finishes the move if the run
             * ended meanwhile (its end saw this move under way) */
            fleet_queue(f, JOB_MOVE_LEFT, id, NULL);
            return rc;
        }
        log_info("move: instance %s stopped late: moving it on", id);
        rc = FLEET_OK;
    }
    kp_hit("move.stopped");
    if ((rc = state_inst_finish_move(f->db, id, err, sizeof err)) != 0) {
        rc = fleet_err_set(e, fleet_state_code(rc), NULL, "%s", err);
        goto out;
    }
    kp_hit("move.rehomed");
    fleet_emit(f, "instance.moved", id, NULL, NULL, to, NULL, NULL, NULL);
    rc = fleet_start_id(f, id, e);
out:
    set_moving(f, id, 0);
    return rc;
}

int fleet_move_finish_left(fleet *f, const char *id)
{
    char to[STATE_NAME_MAX + 1], err[256];
    fleet_rt *rt;
    int busy;
    if (state_inst_move_to(f->db, id, to, sizeof to) != 1 || state_inst_deleting(f->db, id) == 1)
        return 0;
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, id);
    busy = rt && (rt->moving || rt->active);
    pthread_mutex_unlock(&f->mu);
    if (busy)
        return 0;
    if (state_inst_finish_move(f->db, id, err, sizeof err) != 0)
        return 0; /* finished by another thread meanwhile, or gone */
    log_info("instance %s: moved to %s after its old copy stopped", id, to);
    fleet_emit(f, "instance.moved", id, NULL, NULL, to, NULL, NULL, NULL);
    fleet_queue(f, JOB_START, id, NULL);
    return 1;
}

void fleet_job_move_left(fleet *f, const fleet_job *j)
{
    fleet_move_finish_left(f, j->id);
}

/* One move: live when fleet_move_is_live, with place_mu released meanwhile
 * (the stand-in's create takes it; a drained host is cordoned already),
 * else cold under place_mu. Caller holds place_mu. */
static int move_one(fleet *f, const char *id, const char *to, fleet_err *e)
{
    state_instance in;
    int live, rc;
    if ((rc = fleet_lookup(f, id, &in, e)) != FLEET_OK)
        return rc;
    live = fleet_move_is_live(f, &in, to);
    state_inst_free(&in);
    if (!live)
        return move_instance(f, id, to, e);
    pthread_mutex_unlock(&f->place_mu);
    rc = fleet_move_live(f, id, to, move_instance, e);
    pthread_mutex_lock(&f->place_mu);
    return rc;
}

/* The earlier move (before index i) that found host from or to not
 * answering, or NULL. */
static const fleet_move *plan_unanswered(const fleet_plan *p, size_t i)
{
    const fleet_move *m = &p->moves[i];
    for (size_t k = 0; k < i; k++) {
        const fleet_move *o = &p->moves[k];
        if (!o->tried || o->rc != FLEET_E_UNAVAILABLE)
            continue;
        if (!strcmp(o->from, m->from) || !strcmp(o->from, m->to) || !strcmp(o->to, m->from) ||
            !strcmp(o->to, m->to))
            return o;
    }
    return NULL;
}

/* A host that still holds an instance whose move failed is not freed. */
static void plan_unfree(fleet_plan *p, const char *host)
{
    for (size_t k = 0; k < p->n_freed; k++) {
        if (strcmp(p->freed[k], host) != 0)
            continue;
        memmove(&p->freed[k], &p->freed[k + 1], (p->n_freed - k - 1) * sizeof p->freed[0]);
        p->n_freed--;
        p->hosts_after++;
        return;
    }
}

/* An empty target that no move reached stays empty: hosts_after, the
 * plan's count of hosts in use after it, does not count it. Each such host
 * once (its first move). */
static void plan_unfilled(fleet_plan *p)
{
    for (size_t i = 0; i < p->n_moves; i++) {
        const fleet_move *m = &p->moves[i];
        bool first = m->to_empty, reached = false;
        for (size_t k = 0; k < p->n_moves && first; k++) {
            const fleet_move *o = &p->moves[k];
            if (strcmp(o->to, m->to) != 0)
                continue;
            if (k < i)
                first = false;
            else if (o->rc == FLEET_OK)
                reached = true;
        }
        if (first && !reached && p->hosts_after > 0)
            p->hosts_after--;
    }
}

/* CONFLICT when a stop was asked (fleet_moves_stop) before move i of n
 * began, or during the last one (i == n), else FLEET_OK. */
static int plan_stopped(fleet *f, size_t i, size_t n, fleet_err *e)
{
    if (!fleet_move_stopping(f))
        return FLEET_OK;
    return fleet_err_set(e, FLEET_E_CONFLICT, NULL, "moves stopped by request after %zu of %zu", i,
                         n);
}

int fleet_plan_run(fleet *f, fleet_plan *p, fleet_move_cold_fn move, fleet_err *e)
{
    int rc = FLEET_OK;
    p->executed = true;
    p->n_failed = 0;
    for (size_t i = 0; i < p->n_moves; i++) {
        fleet_move *m = &p->moves[i];
        const fleet_move *dead;
        if ((rc = plan_stopped(f, i, p->n_moves, e)) != FLEET_OK)
            return rc;
        if ((dead = plan_unanswered(p, i))) {
            m->rc = fleet_err_set(&m->err, FLEET_E_UNAVAILABLE, NULL,
                                  "not tried: the move of %s (%s -> %s) before it found a host "
                                  "not answering: %.200s",
                                  dead->instance, dead->from, dead->to, dead->err.msg);
        } else {
            m->tried = true;
            m->rc = move(f, m->instance, m->to, &m->err);
        }
        if (m->rc == FLEET_OK)
            continue;
        log_warn("move of %s from %s to %s failed: %s", m->instance, m->from, m->to, m->err.msg);
        p->n_failed++;
        plan_unfree(p, m->from);
    }
    plan_unfilled(p);
    return plan_stopped(f, p->n_moves, p->n_moves, e);
}

static int plan_common(fleet *f, const char *drain_host, bool dry_run, fleet_plan *out,
                       fleet_err *e)
{
    fleet_snapshot snap;
    sched_state *sst = NULL;
    sched_plan plan;
    char err[256];
    int rc = FLEET_OK;

    memset(out, 0, sizeof *out);
    memset(&plan, 0, sizeof plan);
    pthread_mutex_lock(&f->place_mu);
    if (drain_host && !dry_run &&
        (rc = fleet_host_cordon_locked(f, drain_host, true, e)) != FLEET_OK)
        goto unlock;
    if (fleet_snapshot_take(f, &snap, err, sizeof err) != 0) {
        rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "%s", err);
        goto unlock;
    }
    if ((rc = fleet_snapshot_sched(&snap, &sst, e)) != FLEET_OK)
        goto out;
    if (drain_host) {
        size_t h = fleet_snapshot_host(&snap, drain_host);
        if (h == snap.nhosts) {
            rc = fleet_err_set(e, FLEET_E_NOT_FOUND, "name", "host '%s' not found", drain_host);
            goto out;
        }
        if (sched_plan_drain(sst, h, NULL, &plan) != SCHED_OK) {
            rc = fleet_err_set(e, FLEET_E_CAPACITY, NULL, "%s", plan.message);
            goto out;
        }
    } else if (sched_plan_consolidate(sst, NULL, &plan) != SCHED_OK) {
        rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "consolidate: %s", plan.message);
        goto out;
    }
    out->moves = calloc(plan.n_moves + 1, sizeof *out->moves);
    out->freed = calloc(plan.n_freed + 1, sizeof *out->freed);
    if (!out->moves || !out->freed) {
        rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < plan.n_moves; i++) {
        fleet_move *m = &out->moves[i];
        size_t to = fleet_snapshot_host(&snap, plan.moves[i].to_id);
        snprintf(m->instance, sizeof m->instance, "%s", plan.moves[i].instance_id);
        snprintf(m->from, sizeof m->from, "%s", plan.moves[i].from_id);
        snprintf(m->to, sizeof m->to, "%s", plan.moves[i].to_id);
        m->to_empty = true;
        for (size_t k = 0; k < snap.ninsts && m->to_empty; k++)
            m->to_empty = snap.insts[k].host != to;
    }
    out->n_moves = plan.n_moves;
    for (size_t i = 0; i < plan.n_freed; i++)
        snprintf(out->freed[i], sizeof out->freed[i], "%s", snap.names[plan.freed[i]]);
    out->n_freed = plan.n_freed;
    out->hosts_before = (uint32_t)plan.hosts_used_before;
    out->hosts_after = (uint32_t)plan.hosts_used_after;
    if (!dry_run) {
        pthread_mutex_lock(&f->mu);
        f->move_stop = 0;
        pthread_mutex_unlock(&f->mu);
        rc = fleet_plan_run(f, out, move_one, e);
    }
out:
    sched_plan_clear(&plan);
    sched_state_free(sst);
    fleet_snapshot_free(&snap);
unlock:
    pthread_mutex_unlock(&f->place_mu);
    if (rc != FLEET_OK)
        fleet_plan_clear(out);
    return rc;
}

int fleet_plan_drain(fleet *f, const char *host, bool dry_run, fleet_plan *out, fleet_err *e)
{
    return plan_common(f, host, dry_run, out, e);
}

int fleet_plan_consolidate(fleet *f, bool dry_run, fleet_plan *out, fleet_err *e)
{
    return plan_common(f, NULL, dry_run, out, e);
}
