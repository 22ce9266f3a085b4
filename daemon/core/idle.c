/* idle.c - scale to zero (issue 15, docs/shoald.md "Scale to zero").
 *
 * An instance created with an idle time (state_instance.idle_s) and a
 * published TCP port sleeps once the port proxy has seen no connection on
 * its ports for that long: its domain is destroyed and its row says `idle`,
 * while its address, MAC and published ports stay and the proxy keeps
 * listening. The next connection is accepted and held by the proxy
 * (portfwd.h), which tells us once; the instance is started again through
 * the ordinary start path, and once it is ready the proxy passes the held
 * connections through. A wake that fails closes them cleanly.
 *
 * Who does what:
 *   proxy thread   decides "idle" and "a connection came" (fleet_idle_note,
 *                  with no proxy lock held): only queues JOB_SLEEP/JOB_WAKE;
 *   event workers  fleet_job_sleep (destroy the domain, rt->sleep_requested),
 *                  fleet_job_wake (start it; record why and when);
 *   run.c          a run ended by a sleep becomes `idle`, keeps its ports,
 *                  and calls fleet_idle_asleep (event, a wake that came
 *                  meanwhile); fleet_idle_check_wake after a start job and
 *                  after a run's end (a wake that failed);
 *   status.c,      fleet_idle_ready when a run is ready: the proxy passes
 *   health.c       held connections through, instance.wake with latency.
 * State lives in fleet_rt (sleep_requested, wake_pending, wake_ms,
 * wake_reason), under f->mu like the rest of it. No new lock, no new
 * thread.
 *
 * Waking from the warm pool: when the instance's image has a waiting pool
 * guest on its host that fits its run (pool.h), the wake claims it with
 * the create's call (under pool.mu only), and the instance takes that guest's
 * identity: its row's `guest` names the guest's id (state.h), from which
 * its domain name, tap, MAC and run files derive from then on
 * (fleet_run_id), while its address, ports and id stay. The start job
 * then hands the guest the configuration a cold start would give it
 * (run.c, fleet_pool_handover) instead of creating a domain, and names the
 * instance in the domain's metadata (node_set_instance_id) so that its
 * events and a later shoald's reconcile find it. A hand-over that fails
 * destroys the guest and starts the instance cold under the same
 * identity; so does every later run (a stop, a restart, a wake with no
 * guest waiting). The identity moves again only at the next wake from the
 * pool; the files of the one it leaves are removed then. */
#include "fleet_int.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "boot.h"
#include "log.h"
#include "netbr.h"
#include "pool.h"
#include "portfwd.h"

/* An instance.sleep / instance.wake event with its own fields. */
static void emit_idle_event(fleet *f, const char *type, const state_instance *in, const char *state,
                            const char *reason, int64_t latency_ms, const char *error)
{
    json_t *o = json_object();
    json_object_set_new(o, "time", json_integer(fleet_wall_ms() / 1000));
    json_object_set_new(o, "type", json_string(type));
    json_object_set_new(o, "instance", json_string(in->id));
    json_object_set_new(o, "name", json_string(in->name));
    if (state)
        json_object_set_new(o, "state", json_string(state));
    if (in->host[0])
        json_object_set_new(o, "host", json_string(in->host));
    if (reason && reason[0])
        json_object_set_new(o, "reason", json_string(reason));
    if (latency_ms >= 0)
        json_object_set_new(o, "latency_ms", json_integer(latency_ms));
    if (error && error[0])
        json_object_set_new(o, "error", json_string(error));
    fleet_emit_object(f, o);
}

void fleet_idle_note(void *user, const char *owner, pfwd_note_kind kind, const char *detail)
{
    fleet *f = user;
    if (kind == PFWD_NOTE_IDLE)
        fleet_queue(f, JOB_SLEEP, owner, detail);
    else if (kind == PFWD_NOTE_WAKE)
        fleet_queue(f, JOB_WAKE, owner, detail);
    else
        fleet_queue(f, JOB_WAKE, owner, FLEET_WAKE_TIMEOUT);
}

void fleet_job_sleep(fleet *f, const fleet_job *j)
{
    state_instance in;
    char err[NODE_ERR_MAX], dom[64];
    struct node *node;
    fleet_host *host = NULL;
    fleet_rt *rt;
    int ok, rc = NODE_E_NOTFOUND;

    if (state_inst_find(f->db, j->id, &in, err, sizeof err) != 0)
        return; /* deleted: its forwards went with it */
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    /* Only a ready run that nobody is stopping sleeps; else not now: the
     * proxy is woken and the quiet time starts again. */
    ok = rt && !strcmp(in.id, j->id) && in.idle_s > 0 && in.state == ST_RUNNING &&
         in.want_running && rt->active && !rt->stop_requested && !rt->sleep_requested;
    if (ok)
        rt->sleep_requested = 1;
    pthread_mutex_unlock(&f->mu);
    if (!ok) {
        pfwd_resume(f->pfwd, j->id);
        goto out;
    }
    fleet_domain_name(fleet_run_id(&in), dom, sizeof dom);
    if ((node = fleet_host_node(f, in.host, &host)))
        rc = node_destroy(node, dom, err, sizeof err);
    else
        snprintf(err, sizeof err, "host '%s' is down", in.host);
    fleet_host_release(f, host);
    if (rc != NODE_OK) {
        /* Still running (or its host is away): it stays awake. */
        log_warn("instance %s: cannot put it to sleep: %s", in.id, err);
        pthread_mutex_lock(&f->mu);
        if ((rt = fleet_rt_find(f, in.id)))
            rt->sleep_requested = rt->wake_pending = 0; /* held ones pass through */
        pthread_mutex_unlock(&f->mu);
        pfwd_resume(f->pfwd, in.id);
        goto out;
    }
    /* The domain's end (JOB_DOMAIN_GONE) makes the row idle: run.c. */
    log_info("instance %s (%s): going to sleep (%s)", in.id, in.name, j->detail);
out:
    state_inst_free(&in);
}

void fleet_identity_take(state_instance *in, const char *guest)
{
    fleet_text_copy(in->guest, sizeof in->guest, guest && strcmp(guest, in->id) ? guest : "");
    if (in->network) /* the NIC of a pool guest has the MAC of its id (pool.c) */
        netbr_mac(fleet_run_id(in), in->mac);
}

static void guest_fn(state_instance *in, void *ctx)
{
    fleet_identity_take(in, ctx);
}

int fleet_set_guest(fleet *f, const char *id, const char *guest)
{
    return fleet_mutate(f, id, guest_fn, (void *)guest);
}

/* A waiting pool guest for this wake (idle.c's head comment): claimed,
 * and the row given its identity before the start job runs. 1 with its id
 * in gid, 0 when none fits (a cold start). */
static int wake_claim(fleet *f, const state_instance *in, char gid[STATE_ID_LEN + 1])
{
    img_info info;
    img_err ie;
    fleet_boot boot;
    char err[256], old[STATE_ID_LEN + 1];
    int got = 0;

    memset(&info, 0, sizeof info);
    if (!f->pool || img_get(f->img, in->image_digest, &info, &ie) != 0 ||
        fleet_boot_plan(&info, &boot, err, sizeof err) != 0 ||
        !fleet_pool_fits(&boot, in->initrd[0] != 0, in->cmdline != NULL))
        goto out;
    /* No place_mu (jobs never take it: a plan holds it while it waits for
     * stops that event workers carry out). A wake places nothing: its host
     * is fixed, and the guest's room, charged until now, becomes its. */
    got = fleet_pool_claim(f, in->image_digest, in->host, (uint32_t)in->memory_mib,
                           (uint32_t)in->vcpus, in->network, gid);
    if (!got)
        goto out;
    if (fleet_set_guest(f, in->id, gid) != 0) {
        log_warn("instance %s: cannot take pool guest %s: starting it cold", in->id, gid);
        fleet_pool_unclaim(f, gid); /* untouched: back to the pool */
        got = 0;
        goto out;
    }
    /* the identity it leaves: its domain is gone (it slept) */
    fleet_text_copy(old, sizeof old, fleet_run_id(in));
    fleet_run_files_remove(f, old);
    log_info("instance %s (%s): waking on warm pool guest %s", in->id, in->name, gid);
out:
    img_info_clear(&info);
    return got;
}

/* Start an idle instance for a wake: on a waiting pool guest of its image
 * when there is one (wake_claim), else cold, through the ordinary start
 * path either way. */
static void wake_start(fleet *f, const state_instance *in, const char *reason)
{
    char gid[STATE_ID_LEN + 1];
    fleet_err e;
    fleet_rt *rt;
    int pooled;
    pthread_mutex_lock(&f->mu);
    if ((rt = fleet_rt_get(f, in->id))) {
        rt->wake_ms = fleet_now_ms();
        fleet_text_copy(rt->wake_reason, sizeof rt->wake_reason, reason);
    }
    pthread_mutex_unlock(&f->mu);
    log_info("instance %s (%s): waking (%s)", in->id, in->name, reason);
    pooled = wake_claim(f, in, gid);
    if (fleet_start_id(f, in->id, &e) != FLEET_OK) {
        if (pooled) /* never to be handed over; the row keeps its identity */
            fleet_pool_drop(f, gid);
        fleet_set_state(f, in->id, ST_FAILED, e.msg);
        fleet_idle_check_wake(f, in->id, e.msg);
    }
}

static void last_error_fn(state_instance *in, void *ctx)
{
    fleet_text_copy(in->last_error, sizeof in->last_error, ctx);
}

void fleet_job_wake(fleet *f, const fleet_job *j)
{
    state_instance in;
    char err[STATE_ERR_MAX];
    fleet_rt *rt;
    int pending = 0;

    if (state_inst_find(f->db, j->id, &in, err, sizeof err) != 0)
        return;
    if (strcmp(in.id, j->id) != 0 || state_inst_deleting(f->db, in.id) == 1)
        goto out;
    if (!strcmp(j->detail, FLEET_WAKE_TIMEOUT)) {
        /* The proxy gave up on held connections: the guest never accepted
         * on its port (a start still under way, or an app that does not
         * listen). Said where people look: its last error and an event. */
        snprintf(err, sizeof err,
                 "wake: held connections were closed after %d ms: the guest did not accept on "
                 "its published port",
                 f->cfg.publish_wake_ms > 0 ? f->cfg.publish_wake_ms : PFWD_WAKE_MS);
        fleet_mutate(f, in.id, last_error_fn, err);
        emit_idle_event(f, "instance.wake", &in, state_inst_state_name(in.state), NULL, -1, err);
        log_warn("instance %s (%s): %s", in.id, in.name, err);
        goto out;
    }
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    if (rt && rt->sleep_requested) {
        /* Going to sleep right now: woken as soon as it is (run.c). */
        rt->wake_pending = 1;
        fleet_text_copy(rt->wake_reason, sizeof rt->wake_reason, j->detail);
        pending = 1;
    }
    pthread_mutex_unlock(&f->mu);
    if (pending)
        goto out;
    if (in.state == ST_IDLE)
        wake_start(f, &in, j->detail);
    else if (in.state == ST_RUNNING)
        pfwd_resume(f->pfwd, in.id); /* awake after all: pass them through */
    /* Otherwise a start is under way (its readiness resumes the proxy) or
     * it was stopped (its ports went, with the held connections). */
out:
    state_inst_free(&in);
}

void fleet_idle_asleep(fleet *f, const state_instance *in)
{
    char reason[64], why[96];
    fleet_rt *rt;
    int pending = 0;
    pthread_mutex_lock(&f->mu);
    if ((rt = fleet_rt_find(f, in->id)) && rt->wake_pending) {
        rt->wake_pending = 0;
        pending = 1;
        fleet_text_copy(reason, sizeof reason, rt->wake_reason);
    }
    pthread_mutex_unlock(&f->mu);
    snprintf(why, sizeof why, "no connection on its published ports for %d s", in->idle_s);
    emit_idle_event(f, "instance.sleep", in, "idle", why, -1, NULL);
    log_info("instance %s (%s) idle: %s", in->id, in->name, why);
    if (pending)
        wake_start(f, in, reason);
}

void fleet_idle_ready(fleet *f, const char *id)
{
    state_instance in;
    char reason[64], err[STATE_ERR_MAX];
    fleet_rt *rt;
    int64_t began = 0, now = fleet_now_ms();

    pfwd_resume(f->pfwd, id); /* held connections go through (a no-op without) */
    pthread_mutex_lock(&f->mu);
    if ((rt = fleet_rt_find(f, id)) && rt->wake_ms) {
        began = rt->wake_ms;
        rt->wake_ms = 0;
        fleet_text_copy(reason, sizeof reason, rt->wake_reason);
    }
    pthread_mutex_unlock(&f->mu);
    if (!began || state_inst_find(f->db, id, &in, err, sizeof err) != 0)
        return;
    emit_idle_event(f, "instance.wake", &in, "running", reason, now - began, NULL);
    log_info("instance %s (%s) awake in %lld ms (%s)", in.id, in.name, (long long)(now - began),
             reason);
    state_inst_free(&in);
}

void fleet_idle_check_wake(fleet *f, const char *id, const char *error)
{
    state_instance in;
    char err[STATE_ERR_MAX];
    fleet_rt *rt;
    int waking;

    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_find(f, id);
    waking = rt && rt->wake_ms;
    pthread_mutex_unlock(&f->mu);
    if (!waking || state_inst_find(f->db, id, &in, err, sizeof err) != 0)
        return;
    if (!error && (in.state == ST_PENDING || in.state == ST_STARTING || in.state == ST_RUNNING ||
                   in.state == ST_BACKOFF)) {
        state_inst_free(&in); /* still on its way */
        return;
    }
    pthread_mutex_lock(&f->mu);
    if ((rt = fleet_rt_find(f, id)))
        rt->wake_ms = 0;
    pthread_mutex_unlock(&f->mu);
    if (!error)
        error = in.last_error[0] ? in.last_error : state_inst_state_name(in.state);
    /* Its held connections are closed cleanly with its forwards; a later
     * `shoal start` publishes them again. */
    pfwd_remove(f->pfwd, id);
    emit_idle_event(f, "instance.wake", &in, state_inst_state_name(in.state), NULL, -1, error);
    log_warn("instance %s (%s): wake failed (%s): %s", in.id, in.name,
             state_inst_state_name(in.state), error);
    state_inst_free(&in);
}

void fleet_idle_adopt(fleet *f, const state_instance *in)
{
    if (in->idle_s <= 0 || pfwd_owned(f->pfwd, in->id))
        return;
    fleet_publish_ports(f, in);
    if (pfwd_sleep(f->pfwd, in->id) == 0)
        log_info("instance %s (%s): idle, its ports listening", in->id, in->name);
}
