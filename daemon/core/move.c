/* move.c - moves without downtime (issue 17; docs/shoald.md "Moves").
 *
 * One instance id is one domain name, tap, MAC, address, status and
 * console file, and runtime entry: two copies of one instance cannot run at
 * once (on hosts of this machine they would share all of those). So a move
 * of an instance with published ports runs a stand-in: a clone (same image,
 * args, env, labels, probes; its own id, address and MAC; no ports, restart
 * never) created on the target host. Once the stand-in is ready (healthy
 * with a health probe), the published ports are switched to it (pfwd_retarget:
 * new connections go there, open ones finish on the instance), the instance
 * is moved cold (plan.c, kill points and all), and once it is ready on the
 * target the ports are switched back and the stand-in deleted. Clients of the
 * published ports always reach a ready copy; the instance keeps its id and
 * address. A stand-in that is not ready in time is deleted and the instance
 * stays where it was (move.failed). A stand-in refused for room (507: the
 * plan counted the instance on the target, not a second copy) makes the
 * move cold instead (move.cold), so a drain or consolidation goes on; so
 * does a stand-in on a remote host that shoald cannot reach (no route to
 * that host's guest network: the proxy could not reach it either), found
 * as soon as the stand-in runs, before it is ready (a TCP or HTTP
 * readiness probe would never pass). */
#include "fleet_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "killpoint.h"
#include "log.h"

#define MOVE_POLL_MS 20
/* A ready stand-in on a remote host that neither takes nor refuses a
 * connection from shoald within this is unreachable from here (no route
 * to its host's guest network, or one that drops): the move goes cold. */
#define MOVE_REACH_MS 5000

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* move.* event: instance, from, to (also as `host`), the stand-in, ms since
 * the move began (elapsed_ms, also as `latency_ms`), the phases reached
 * (ready_ms, switched_ms; -1 not reached), and in `message` all that as
 * text; a failure's reason in `error`. */
static void move_emit(fleet *f, const char *type, const state_instance *in, const char *from,
                      const char *to, const char *standin, int64_t t0, int64_t ready_ms,
                      int64_t switched_ms, const char *error)
{
    json_t *o = json_object();
    int64_t elapsed = fleet_now_ms() - t0;
    char msg[256];
    int n = snprintf(msg, sizeof msg, "%s -> %s", from, to);
    if (standin && standin[0] && n > 0 && (size_t)n < sizeof msg)
        n += snprintf(msg + n, sizeof msg - (size_t)n, ", stand-in %s", standin);
    if (ready_ms >= 0 && n > 0 && (size_t)n < sizeof msg)
        n +=
            snprintf(msg + n, sizeof msg - (size_t)n, ", ready after %lld ms", (long long)ready_ms);
    if (switched_ms >= 0 && n > 0 && (size_t)n < sizeof msg)
        n += snprintf(msg + n, sizeof msg - (size_t)n, ", switched after %lld ms",
                      (long long)switched_ms);
    if (n > 0 && (size_t)n < sizeof msg)
        snprintf(msg + n, sizeof msg - (size_t)n, ", %lld ms so far", (long long)elapsed);
    json_object_set_new(o, "time", json_integer(fleet_wall_ms() / 1000));
    json_object_set_new(o, "type", json_string(type));
    json_object_set_new(o, "instance", json_string(in->id));
    json_object_set_new(o, "name", json_string(in->name));
    json_object_set_new(o, "host", json_string(to));
    json_object_set_new(o, "from", json_string(from));
    json_object_set_new(o, "to", json_string(to));
    if (standin && standin[0])
        json_object_set_new(o, "standin", json_string(standin));
    json_object_set_new(o, "elapsed_ms", json_integer(elapsed));
    json_object_set_new(o, "latency_ms", json_integer(elapsed));
    if (ready_ms >= 0)
        json_object_set_new(o, "ready_ms", json_integer(ready_ms));
    if (switched_ms >= 0)
        json_object_set_new(o, "switched_ms", json_integer(switched_ms));
    json_object_set_new(o, "message", json_string(msg));
    if (error && error[0])
        json_object_set_new(o, "error", json_string(error));
    log_info("%s: instance %s (%s) %s%s%s", type, in->id, in->name, msg,
             error && error[0] ? ": " : "", error ? error : "");
    fleet_emit_object(f, o);
}

int fleet_move_stopping(fleet *f)
{
    int s;
    pthread_mutex_lock(&f->mu);
    s = f->move_stop;
    pthread_mutex_unlock(&f->mu);
    return s;
}

void fleet_moves_stop(fleet *f)
{
    pthread_mutex_lock(&f->mu);
    f->move_stop = 1;
    pthread_mutex_unlock(&f->mu);
    log_info("moves: stop requested");
}

int fleet_move_lent(fleet *f, const char *id)
{
    fleet_rt *rt;
    int lent;
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_find(f, id);
    lent = rt && rt->ports_lent;
    pthread_mutex_unlock(&f->mu);
    return lent;
}

static void set_lent(fleet *f, const char *id, int on)
{
    fleet_rt *rt;
    pthread_mutex_lock(&f->mu);
    if ((rt = fleet_rt_get(f, id)))
        rt->ports_lent = on;
    pthread_mutex_unlock(&f->mu);
}

/* The guest port of in's first published TCP port (fleet_move_is_live
 * makes sure there is one). */
static int first_tcp_port(const state_instance *in)
{
    for (int i = 0; i < in->nports; i++)
        if (in->ports[i].proto != STATE_PROTO_UDP)
            return in->ports[i].guest;
    return 0;
}

/* Is host `name` up (open)? */
static int host_up(fleet *f, const char *name)
{
    fleet_host *h = NULL;
    int up = fleet_host_node(f, name, &h) != NULL;
    fleet_host_release(f, h);
    return up;
}

int fleet_move_is_live(fleet *f, const state_instance *in, const char *to)
{
    if (!strcmp(f->cfg.move_mode, "cold") || !f->pfwd || !in->want_running || !in->network ||
        !in->ipv4 || in->idle_s != 0 || !first_tcp_port(in))
        return 0;
    /* whether the proxy reaches the target's guests (always on this
     * machine's bridge; through the operator's route for a remote host)
     * is checked on the stand-in: fleet_move_live */
    return host_up(f, in->host) && host_up(f, to);
}

/* Is instance id's current run ready (healthy when it has a health
 * probe)? -1 when it no longer runs or is gone. In *ip (unless NULL) its
 * address once it runs, its start complete; else 0. */
static int copy_ready(fleet *f, const char *id, uint32_t *ip)
{
    state_instance in;
    fleet_health h;
    fleet_rt *rt;
    int ready, active, running;
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_find(f, id);
    /* a past run's mark is no readiness; nor is a ready record that came
     * while the start job still runs: that job has not published (or, for
     * a stand-in, cleared) the copy's ports yet, and a switch before it
     * would be undone by it */
    ready = rt && rt->active && rt->ready && !rt->busy;
    active = rt && (rt->active || rt->busy);
    running = rt && rt->active && !rt->busy;
    pthread_mutex_unlock(&f->mu);
    if (state_inst_find(f->db, id, &in, NULL, 0) != 0)
        return -1;
    if (strcmp(in.id, id) || (!active && !fleet_state_live(in.state) && in.state != ST_PENDING)) {
        state_inst_free(&in);
        return -1;
    }
    if (ip)
        *ip = running ? in.ipv4 : 0;
    if (ready && in.health[0])
        ready = fleet_instance_health(f, &in, &h) == 0 && !strcmp(h.status, "healthy");
    state_inst_free(&in);
    return ready;
}

/* An object's string members as pairs into kv (borrowed from o): how many. */
static size_t kv_borrow(json_t *o, fleet_kv *kv)
{
    const char *k;
    json_t *v;
    size_t i = 0;
    json_object_foreach (o, k, v) {
        kv[i].key = k;
        kv[i].value = json_string_value(v) ? json_string_value(v) : "";
        i++;
    }
    return i;
}

/* Try a TCP connection to ip:port (host order) from here, the proxy's
 * side: 0 when it is accepted within MOVE_POLL_MS * 10, else why not (an
 * errno: ECONNREFUSED, ENETUNREACH, ...; ETIMEDOUT for no answer). */
static int connect_try(uint32_t ip, int port)
{
    struct sockaddr_in a;
    struct pollfd pfd;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err = ETIMEDOUT;
    socklen_t len = sizeof err;
    if (fd < 0)
        return errno;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(ip);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        err = 0;
    } else if (errno != EINPROGRESS) {
        err = errno;
    } else {
        pfd.fd = fd;
        pfd.events = POLLOUT;
        if (poll(&pfd, 1, MOVE_POLL_MS * 10) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = ETIMEDOUT;
    }
    close(fd);
    return err;
}

/* A copy that says it is ready may not take connections from the proxy
 * yet (its service not listening, the bridge not forwarding to its tap, a
 * neighbour entry of an earlier guest with its address): wait until a
 * connection to ip:port works, like one the proxy makes. 1, or 0 on
 * timeout or a stop request (stoppable). With reach_ms >= 0 (a copy on a
 * remote host), 2 when ip is not reachable from here: no route to it at
 * once, or neither a connection nor a refusal (the guest's own answer)
 * within reach_ms; the last reason in *why. */
static int wait_accepts(fleet *f, uint32_t ip, int port, int timeout_ms, int stoppable,
                        int reach_ms, int *why)
{
    int64_t start = fleet_now_ms(), end = start + timeout_ms;
    int heard = reach_ms < 0, err;
    for (;;) {
        if ((err = connect_try(ip, port)) == 0)
            return 1;
        if (stoppable && fleet_move_stopping(f))
            return 0; /* given up, not made cold */
        heard = heard || err == ECONNREFUSED;
        if (!heard && why)
            *why = err;
        /* no route is the routing table's answer, not a slow guest's */
        if (!heard && (err == ENETUNREACH || fleet_now_ms() - start >= reach_ms))
            return 2;
        if (fleet_now_ms() >= end)
            return 0;
        sleep_ms(MOVE_POLL_MS);
    }
}

/* Wait until id is ready: 1, 0 on timeout or a stop request (stoppable),
 * -1 when it stopped running; its address in *ip (may be NULL if port is
 * 0). With port > 0 (a copy on a remote host), one connection to it as
 * soon as it runs (its start complete: a delete then is the one of a copy
 * not ready in time): 2 when there is no route to it (wait_accepts'
 * verdict, the reason in *why), for then its TCP or HTTP probe, shoald's
 * own connection, cannot pass either. The verdict of no answer within
 * MOVE_REACH_MS waits until it is ready: a booting guest answers nothing. */
static int wait_ready(fleet *f, const char *id, int timeout_ms, int stoppable, int port,
                      uint32_t *ip, int *why)
{
    int64_t end = fleet_now_ms() + timeout_ms;
    int tried = 0;
    for (;;) {
        int r = copy_ready(f, id, ip);
        if (r != 0)
            return r;
        if (port > 0 && *ip && !tried) {
            tried = 1;
            if (wait_accepts(f, *ip, port, 0, stoppable, MOVE_REACH_MS, why) == 2)
                return 2;
        }
        if (fleet_now_ms() >= end || (stoppable && fleet_move_stopping(f)))
            return 0;
        sleep_ms(MOVE_POLL_MS);
    }
}

/* Create the stand-in of `in` on host `to`: its id in standin. */
static int standin_create(fleet *f, const state_instance *in, const char *to,
                          char standin[STATE_ID_LEN + 1], fleet_err *e)
{
    json_t *args = json_loads(in->args_json, 0, NULL);
    json_t *env = json_loads(in->env_json, 0, NULL);
    json_t *labels = json_loads(in->labels_json, 0, NULL);
    size_t na = json_array_size(args), ne = json_object_size(env);
    size_t nl = json_object_size(labels), i;
    const char **av = calloc(na + 1, sizeof *av);
    fleet_kv *ev = calloc(ne + 1, sizeof *ev), *lv = calloc(nl + 2, sizeof *lv);
    fleet_instance_spec spec;
    state_instance *made = NULL;
    size_t nmade = 0;
    char name[STATE_NAME_MAX];
    json_t *v;
    int rc;

    if (!av || !ev || !lv) {
        rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    json_array_foreach (args, i, v)
        av[i] = json_string_value(v) ? json_string_value(v) : "";
    kv_borrow(env, ev);
    i = kv_borrow(labels, lv);
    lv[i].key = FLEET_MOVE_LABEL; /* whose stand-in it is */
    lv[i].value = in->id;
    snprintf(name, sizeof name, "%.*s-move", (int)sizeof name - 6, in->name);
    memset(&spec, 0, sizeof spec);
    spec.image = in->image_digest;
    spec.name = name;
    spec.memory_mib = (uint32_t)in->memory_mib;
    spec.vcpus = (uint32_t)in->vcpus;
    spec.args = av;
    spec.n_args = na;
    spec.env = ev;
    spec.n_env = ne;
    spec.labels = lv;
    spec.n_labels = nl + 1;
    spec.restart = RESTART_NEVER;
    spec.network = true;
    spec.host = to;
    spec.ready = in->ready[0] ? in->ready : NULL;
    spec.health = in->health[0] ? in->health : NULL;
    spec.health_interval_s = (uint32_t)in->health_interval_s;
    spec.health_timeout_s = (uint32_t)in->health_timeout_s;
    spec.health_retries = (uint32_t)in->health_retries;
    spec.cmdline = in->cmdline;
    spec.initrd = in->initrd[0] ? in->initrd : NULL;
    if ((rc = fleet_instance_create(f, &spec, &made, &nmade, e)) == FLEET_OK)
        snprintf(standin, STATE_ID_LEN + 1, "%s", made[0].id);
    state_inst_array_free(made, nmade);
out:
    free(av);
    free(ev);
    free(lv);
    json_decref(args);
    json_decref(env);
    json_decref(labels);
    return rc;
}

/* Give id's published ports to owner `to` at address ip (host order): how
 * many were switched. */
static int ports_switch(fleet *f, const char *from, const char *to, uint32_t ip)
{
    int n = pfwd_retarget(f->pfwd, from, to, ip);
    if (n == 0)
        log_warn("move: no published port of %s to switch to %s", from, to);
    return n;
}

/* How long a stand-in's delete is tried again while its host does not
 * answer in time (503): the delete marks the row and queues the destroy,
 * but only a later delete (or a reconcile, at a reconnect or a restart)
 * removes the row, and a host that is slow, never seen down, is never
 * reconnected: its stand-in stayed for good. */
#define MOVE_STANDIN_DELETE_MS 60000

static int shoald_stopping(fleet *f)
{
    int s;
    pthread_mutex_lock(&f->mu);
    s = f->stopping;
    pthread_mutex_unlock(&f->mu);
    return s;
}

static void standin_delete(fleet *f, const char *standin)
{
    fleet_err de;
    int64_t until = fleet_now_ms() + MOVE_STANDIN_DELETE_MS;
    int rc;
    while ((rc = fleet_instance_delete(f, standin, true, &de)) == FLEET_E_UNAVAILABLE &&
           fleet_now_ms() < until && !shoald_stopping(f))
        sleep_ms(1000);
    if (rc != FLEET_OK && rc != FLEET_E_NOT_FOUND)
        log_warn("move: cannot delete stand-in %s: %s", standin, de.msg);
}

/* The move made cold after all (why: the reason, in move.cold's error):
 * the instance stopped, re-homed and started on `to` by `cold`, its
 * published ports refusing clients until it is ready there; move.done, or
 * move.failed when it is not ready in time. */
static int move_cold_instead(fleet *f, const state_instance *in, const char *from, const char *to,
                             int64_t t0, const char *why, fleet_move_cold_fn cold, fleet_err *e)
{
    char fail[800];
    int rc, r;
    move_emit(f, "move.cold", in, from, to, NULL, t0, -1, -1, why);
    rc = cold(f, in->id, to, e);
    r = rc == FLEET_OK ? wait_ready(f, in->id, f->cfg.move_ready_ms, 0, 0, NULL, NULL) : 0;
    if (r == 1) {
        move_emit(f, "move.done", in, from, to, NULL, t0, -1, -1, NULL);
        return rc;
    }
    snprintf(fail, sizeof fail, "%s",
             rc != FLEET_OK && e ? e->msg : "not ready on the target in time");
    move_emit(f, "move.failed", in, from, to, NULL, t0, -1, -1, fail);
    if (rc == FLEET_OK)
        rc = fleet_err_set(e, FLEET_E_CONFLICT, NULL, "move of '%s' to '%s' failed: %s", in->name,
                           to, fail);
    return rc;
}

/* why = "stand-in on 'TO' not reachable from shoald at IP:PORT (...)": the
 * connection's last error and the host's guest network. */
static void unreachable_why(fleet *f, const char *to, uint32_t ip, int port, int err, char *why,
                            size_t len)
{
    fleet_host *h = fleet_host_hold(f, to);
    char net[20] = "", addr[16], what[64];
    if (h) {
        pthread_mutex_lock(&f->mu);
        fleet_net_subnet(f, h, net, sizeof net);
        pthread_mutex_unlock(&f->mu);
        fleet_host_release(f, h);
    }
    if (err == ETIMEDOUT)
        snprintf(what, sizeof what, "no answer within %d s", MOVE_REACH_MS / 1000);
    else
        snprintf(what, sizeof what, "%s", strerror(err));
    snprintf(why, len,
             "stand-in on '%s' not reachable from shoald at %s:%d (%s; no route to the host's "
             "guest network %s?): moved cold",
             to, cfg_ip4_str(ip, addr), port, what, net[0] ? net : "(unknown)");
}

int fleet_move_live(fleet *f, const char *id, const char *to, fleet_move_cold_fn cold, fleet_err *e)
{
    state_instance in, now;
    char standin[STATE_ID_LEN + 1] = "", from[STATE_NAME_MAX], why[800];
    int64_t t0 = fleet_now_ms(), t_ready = -1, t_switch = -1;
    uint32_t ip = 0;
    int rc, r, port, left, back, remote, err = ETIMEDOUT;

    if ((rc = fleet_lookup(f, id, &in, e)) != FLEET_OK)
        return rc;
    snprintf(from, sizeof from, "%s", in.host);
    port = first_tcp_port(&in);
    move_emit(f, "move.started", &in, from, to, NULL, t0, -1, -1, NULL);
    rc = kp_fail("move.standin") ? fleet_err_set(e, FLEET_E_CAPACITY, NULL,
                                                 "host '%s' has no room (SHOAL_TEST_FAIL_AT)", to)
                                 : standin_create(f, &in, to, standin, e);
    if (rc == FLEET_E_CAPACITY) {
        /* The plan has room on `to` for the instance, not always for a
         * second copy beside it (other guests' real memory moves): the
         * instance moves cold, its clients refused meanwhile. */
        snprintf(why, sizeof why, "no room for a stand-in on '%s' (%s): moved cold", to,
                 e ? e->msg : "");
        rc = move_cold_instead(f, &in, from, to, t0, why, cold, e);
        goto out;
    }
    if (rc != FLEET_OK) {
        snprintf(why, sizeof why, "no stand-in on '%s': %s", to, e ? e->msg : "");
        move_emit(f, "move.failed", &in, from, to, NULL, t0, -1, -1, why);
        goto out;
    }
    /* on this machine's bridge the proxy reaches it by construction; on
     * a remote host only through the operator's route */
    remote = fleet_host_is_remote(f, to);
    r = wait_ready(f, standin, f->cfg.move_ready_ms, 1, remote ? port : 0, &ip, &err);
    if (r == 1 && state_inst_find(f->db, standin, &now, NULL, 0) == 0) {
        ip = now.ipv4;
        state_inst_free(&now);
        left = f->cfg.move_ready_ms - (int)(fleet_now_ms() - t0);
        r = wait_accepts(f, ip, port, left > 0 ? left : 0, 1, remote ? MOVE_REACH_MS : -1, &err);
    } else if (r == 1) {
        r = -1; /* its row went: deleted meanwhile */
    }
    if (r == 2) {
        /* the proxy could not reach it either: no switch to it */
        unreachable_why(f, to, ip, port, err, why, sizeof why);
        standin_delete(f, standin);
        rc = move_cold_instead(f, &in, from, to, t0, why, cold, e);
        goto out;
    }
    if (r != 1) {
        snprintf(why, sizeof why, "%s",
                 r < 0                    ? "its stand-in stopped before it was ready"
                 : fleet_move_stopping(f) ? "stopped by request before the switch"
                                          : "its stand-in was not ready in time");
        standin_delete(f, standin);
        move_emit(f, "move.failed", &in, from, to, standin, t0, -1, -1, why);
        rc = fleet_err_set(e, FLEET_E_CONFLICT, NULL, "move of '%s' to '%s' failed: %s", in.name,
                           to, why);
        goto out;
    }
    t_ready = fleet_now_ms() - t0;
    move_emit(f, "move.ready", &in, from, to, standin, t0, t_ready, -1, NULL);
    set_lent(f, in.id, 1);
    ports_switch(f, in.id, standin, ip);
    t_switch = fleet_now_ms() - t0;
    move_emit(f, "move.switched", &in, from, to, standin, t0, t_ready, t_switch, NULL);
    kp_hit("move.switched"); /* tests only: killpoint.h */
    /* open connections finish on the instance (a short drain), then the
     * instance itself moves cold; the stand-in serves meanwhile */
    sleep_ms(FLEET_MOVE_DRAIN_MS);
    rc = cold(f, in.id, to, e);
    r = rc == FLEET_OK ? wait_ready(f, in.id, f->cfg.move_ready_ms, 0, 0, NULL, NULL) : 0;
    /* the ports back to the instance, wherever it runs now (once it
     * takes connections, within the same time); gone from the stand-in
     * (its run ended, which closes the forwards it holds): opened again */
    if (fleet_lookup(f, in.id, &now, NULL) == FLEET_OK) {
        if (r == 1)
            r = wait_accepts(f, now.ipv4, port, f->cfg.move_ready_ms, 0, -1, NULL) == 1;
        back = ports_switch(f, standin, in.id, now.ipv4);
        set_lent(f, in.id, 0);
        if (back == 0 && fleet_state_live(now.state))
            fleet_publish_ports(f, &now);
        state_inst_free(&now);
    }
    set_lent(f, in.id, 0);
    sleep_ms(FLEET_MOVE_DRAIN_MS);
    standin_delete(f, standin);
    if (r == 1) {
        move_emit(f, "move.done", &in, from, to, standin, t0, t_ready, t_switch, NULL);
    } else {
        snprintf(why, sizeof why, "%s",
                 rc != FLEET_OK && e ? e->msg : "not ready on the target in time");
        move_emit(f, "move.failed", &in, from, to, standin, t0, t_ready, t_switch, why);
        if (rc == FLEET_OK)
            rc = fleet_err_set(e, FLEET_E_CONFLICT, NULL, "move of '%s' to '%s' failed: %s",
                               in.name, to, why);
    }
out:
    state_inst_free(&in);
    return rc;
}

static int standin_match(const state_instance *in, void *ctx)
{
    json_t *labels;
    int is;
    (void)ctx;
    if (!in->labels_json || !strstr(in->labels_json, FLEET_MOVE_LABEL))
        return 0;
    labels = json_loads(in->labels_json, 0, NULL);
    is = json_object_get(labels, FLEET_MOVE_LABEL) != NULL;
    json_decref(labels);
    return is;
}

void fleet_move_leftovers(fleet *f)
{
    state_instance *rows = NULL;
    size_t n = 0;
    int more = 0;
    char err[256];
    if (state_inst_page(f->db, NULL, -1, NULL, standin_match, NULL, 1000, &rows, &n, &more, err,
                        sizeof err) != 0) {
        log_warn("move: cannot look for stand-ins left behind: %s", err);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        log_info("move: deleting stand-in %s (%s), left by a move an earlier shoald did not finish",
                 rows[i].id, rows[i].name);
        standin_delete(f, rows[i].id);
    }
    state_inst_array_free(rows, n);
}
