/* fleet.c - opening and closing the fleet: state dir, databases, bridge,
 * port proxy, hosts, and the threads (in the order fleet_int.h lists). */
#include "fleet_int.h"
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
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

#include "guard.h"
#include "ksm.h"
#include "failover.h"
#include "log.h"
#include "netbr.h"
#include "portfwd.h"

fleet_code fleet_err_set(fleet_err *e, fleet_code code, const char *field, const char *fmt, ...)
{
    va_list ap;
    if (!e)
        return code;
    e->code = code;
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

fleet_code fleet_state_code(int state_rc)
{
    switch (state_rc) {
    case 0: return FLEET_OK;
    case STATE_ENOTFOUND: return FLEET_E_NOT_FOUND;
    case STATE_ECONFLICT: return FLEET_E_CONFLICT;
    case STATE_EBUSY: return FLEET_E_BUSY;
    default: return FLEET_E_INTERNAL;
    }
}

int64_t fleet_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fleet_deadline(struct timespec *ts, clockid_t clock, int64_t ms)
{
    clock_gettime(clock, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int64_t fleet_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool fleet_state_holds(state_inst_state s)
{
    return s == ST_PENDING || s == ST_STARTING || s == ST_RUNNING || s == ST_STOPPING ||
           s == ST_BACKOFF;
}

bool fleet_state_live(state_inst_state s)
{
    return s == ST_STARTING || s == ST_RUNNING || s == ST_STOPPING;
}

const char *fleet_admin_token(const fleet *f)
{
    return f->token;
}

const char *fleet_bridge_pick(fleet *f, const state_instance *in, char *err, size_t errlen)
{
    const char *bridge = f->cfg.bridge;
    /* Overflow bridges exist only on this host; another host's guests go
     * to the configured bridge there. */
    if (f->bridges && !strcmp(in->host, FLEET_LOCAL_HOST) &&
        netbr_set_pick(f->bridges, in->mac, &bridge, err, errlen) != NETBR_OK)
        return NULL;
    return bridge;
}

void fleet_console_path(const fleet *f, const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s.log", f->log_dir, id);
}

void fleet_status_path(const fleet *f, const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s.status", f->run_dir, id);
}

void fleet_domain_name(const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "shoal-%s", id);
}

const char *fleet_run_id(const state_instance *in)
{
    return in->guest[0] ? in->guest : in->id;
}

void fleet_wake_supervisor(fleet *f)
{
    uint64_t one = 1;
    if (write(f->wake_fd, &one, sizeof one) < 0)
        log_warn("cannot wake supervisor: %s", strerror(errno));
}

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[FLEET_PATH_MAX];
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
    char p[FLEET_PATH_MAX + 8];
    chmod(db, 0600);
    snprintf(p, sizeof p, "%s-wal", db);
    chmod(p, 0600);
    snprintf(p, sizeof p, "%s-shm", db);
    chmod(p, 0600);
}

/* Read STATE_DIR/admin.token, creating it (0600) on first start. */
static int load_token(fleet *f, char *err, size_t errlen)
{
    char path[FLEET_PATH_MAX];
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

/* Stop and join the threads that were started; the hosts' nodes close
 * after the workers (which use them) are gone. */
static void stop_threads(fleet *f, size_t workers, int supervisor)
{
    pthread_mutex_lock(&f->mu);
    f->stopping = 1;
    pthread_cond_broadcast(&f->job_cv);
    pthread_cond_broadcast(&f->event_cv);
    pthread_cond_broadcast(&f->state_cv);
    pthread_cond_broadcast(&f->usage_cv);
    pthread_mutex_unlock(&f->mu);
    if (f->usage_started)
        pthread_join(f->usage, NULL);
    if (f->failover_started)
        pthread_join(f->failover, NULL);
    if (supervisor) {
        fleet_wake_supervisor(f);
        pthread_join(f->supervisor, NULL);
    }
    fleet_rio_close(f); /* after the supervisor, which queues its items */
    for (size_t i = 0; i < workers; i++)
        pthread_join(f->workers[i].th, NULL);
}

static void free_jobs(fleet_job *j)
{
    while (j) {
        fleet_job *next = j->next;
        free(j);
        j = next;
    }
}

static void free_fleet(fleet *f)
{
    fleet_probes_close(f); /* before the queues its notes go to */
    for (size_t i = 0; i < f->nhosts; i++) {
        node_close(f->hosts[i]->node);
        free(f->hosts[i]->labels_json);
        free(f->hosts[i]);
    }
    free(f->hosts);
    free_jobs(f->jobs);
    free_jobs(f->starts);
    fleet_batch_free_all(f);
    free(f->workers);
    fleet_dhcp_close(f);
    pfwd_stop(f->pfwd);
    guard_close(f->guard); /* the table stays: guests outlive shoald */
    netbr_set_close(f->bridges);
    if (f->inotify_fd >= 0)
        close(f->inotify_fd);
    if (f->wake_fd >= 0)
        close(f->wake_fd);
    free(f->rt);
    free(f->rt_index);
    img_store_close(f->img);
    state_close(f->db);
    pthread_mutex_destroy(&f->place_mu);
    pthread_mutex_destroy(&f->row_mu);
    pthread_mutex_destroy(&f->mu);
    pthread_mutex_destroy(&f->dhcp_mu);
    pthread_mutex_destroy(&f->net_mu);
    fleet_pages_free(f);
    pthread_mutex_destroy(&f->pg_mu);
    fleet_rio_destroy(f);
    pthread_cond_destroy(&f->job_cv);
    pthread_cond_destroy(&f->state_cv);
    pthread_cond_destroy(&f->event_cv);
    pthread_cond_destroy(&f->usage_cv);
    free(f);
}

/* Every instance row holds one reference on its image. */
static int count_image_refs(fleet *f, char *err, size_t errlen)
{
    state_instance *rows = NULL;
    size_t nrows = 0;
    img_err ierr;

    if (img_refs_reset(f->img, &ierr) != 0) {
        snprintf(err, errlen, "image store: %s", ierr.msg);
        return -1;
    }
    if (state_inst_list(f->db, &rows, &nrows, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < nrows; i++) {
        if (img_ref_acquire(f->img, rows[i].image_digest, &ierr) != 0)
            log_warn("instance %s: image %s: %s", rows[i].id, rows[i].image_digest, ierr.msg);
        /* a run's own initrd is held like its image */
        if (rows[i].initrd[0] && img_initrd_acquire(f->img, rows[i].initrd, &ierr) != 0)
            log_warn("instance %s: initrd %s: %s", rows[i].id, rows[i].initrd, ierr.msg);
    }
    state_inst_array_free(rows, nrows);
    return 0;
}

int fleet_open(const cfg_t *cfg, fleet **out, char *err, size_t errlen)
{
    fleet *f = calloc(1, sizeof *f);
    char path[FLEET_PATH_MAX];
    img_opts io;
    img_err ierr;
    size_t workers = 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    pthread_condattr_t ca;
    enum ksm_mode ksm = KSM_MODE_OFF;
    int ksm_on = 0;

    *out = NULL;
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    f->cfg = *cfg;
    f->inotify_fd = f->wake_fd = -1;
    pthread_mutex_init(&f->place_mu, NULL);
    pthread_mutex_init(&f->row_mu, NULL);
    pthread_mutex_init(&f->mu, NULL);
    pthread_mutex_init(&f->dhcp_mu, NULL);
    pthread_mutex_init(&f->net_mu, NULL);
    pthread_mutex_init(&f->pg_mu, NULL);
    fleet_rio_init(f);
    pthread_cond_init(&f->job_cv, NULL);
    pthread_cond_init(&f->state_cv, NULL);
    pthread_cond_init(&f->event_cv, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the sampler's timed wait */
    pthread_cond_init(&f->usage_cv, &ca);
    pthread_condattr_destroy(&ca);
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
        snprintf(err, errlen, "cannot create state dir '%s': %s", cfg->state_dir, strerror(errno));
        goto fail;
    }
    if (load_token(f, err, errlen) != 0)
        goto fail;
    snprintf(path, sizeof path, "%s/shoald.db", cfg->state_dir);
    if (state_open(path, &f->db, err, errlen) != 0)
        goto fail;
    private_files(path);
    f->last_event_id = state_event_last_id(f->db);
    /* The image cache (the store's default "<db>.cache"): QEMU's group
     * reads the kernels and disk bases in it, nobody else lists or reads it
     * (issue 16; docs/node.md "QEMU's user"). Made here, before the store
     * would make it; an older 0755 one is closed too. */
    {
        unsigned quid, qgid;
        snprintf(path, sizeof path, "%s/images.db.cache", cfg->state_dir);
        if (node_qemu_ids(cfg->qemu_user[0] ? cfg->qemu_user : NULL, &quid, &qgid, err, errlen) !=
            0)
            goto fail;
        if ((mkdir(path, 0750) != 0 && errno != EEXIST) || chown(path, 0, (gid_t)qgid) != 0 ||
            chmod(path, 0750) != 0) {
            snprintf(err, errlen, "cannot make the image cache '%s' root:%u 0750: %s", path, qgid,
                     strerror(errno));
            goto fail;
        }
    }
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
        if (netbr_set_open(cfg->bridge, cfg_ip4_str(f->gateway, gw), (unsigned)cfg->prefix,
                           NETBR_PORTS_MAX, NETBR_OVERFLOW_MAX, &f->bridges, err,
                           errlen) != NETBR_OK) {
            size_t l = strlen(err);
            snprintf(err + l, errlen - l,
                     " (run with --no-network to start without guest "
                     "networking)");
            goto fail;
        }
        if (netbr_overflow_names(cfg->bridge, 1, &(struct netbr_names){ 0 }, err, errlen) != 0)
            log_warn("%s: bridge '%s' takes at most %d networked guests", err, cfg->bridge,
                     NETBR_PORTS_MAX);
        /* remote hosts' guest subnets (hostnet.c), known to the table */
        if (fleet_net_open(f, err, errlen) != 0)
            goto fail;
        /* Guest isolation before any guest can start (docs/node.md). */
        if (fleet_guard_open(f, err, errlen) != 0) {
            size_t l = strlen(err);
            snprintf(err + l, errlen - l,
                     " (guest isolation needs nftables: install it, or run with "
                     "--no-network)");
            goto fail;
        }
    }
    /* DHCP answers on the main bridge (it reaches the overflow ones too)
     * before any guest starts. */
    if (cfg->network && fleet_dhcp_open(f, err, errlen) != 0) {
        size_t l = strlen(err);
        snprintf(err + l, errlen - l, " (run with --dhcp off to start without DHCP)");
        goto fail;
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
    /* issue 16: connection limits and the guest connect timeout (portfwd.h) */
    pfwd_set_tcp_limits(f->pfwd, cfg->publish_max_conns, cfg->publish_port_max_conns,
                        cfg->publish_connect_ms, 0);
    pfwd_set_notify(f->pfwd, fleet_idle_note, f); /* scale to zero: idle.c */
    pfwd_set_wake_ms(f->pfwd, cfg->publish_wake_ms);
    if (fleet_probes_open(f, err, errlen) != 0)
        goto fail;
    /* Before any QEMU is forked: they inherit the merge setting. */
    if (ksm_parse_mode(cfg->ksm, &ksm) != 0 || ksm_apply(ksm, &ksm_on, err, errlen) != 0) {
        size_t l = strlen(err);
        snprintf(err + l, errlen - l, " (--ksm %s)", cfg->ksm);
        goto fail;
    }
    if (ksm != KSM_MODE_OFF)
        log_info("ksm (--ksm %s): %s%s%s", cfg->ksm, ksm_on ? "running" : "not running",
                 ksm_on ? "" : ": ", ksm_on ? "" : err);
    if (fleet_hosts_load(f, err, errlen) != 0)
        goto fail;
    /* A create batch a killed shoald never committed is undone as a
     * whole (issue 16): its rows were never started. */
    {
        int dropped = state_batch_drop_uncommitted(f->db, err, errlen);
        if (dropped < 0)
            goto fail;
        if (dropped > 0)
            log_warn("removed %d instance row%s of a create request that an earlier shoald "
                     "never finished (a batch is all or nothing)",
                     dropped, dropped == 1 ? "" : "s");
    }
    if (count_image_refs(f, err, errlen) != 0)
        goto fail;

    f->nstart_workers =
        cfg->start_parallel > 0 ? cfg->start_parallel : fleet_start_parallel_auto(cpus);
    if (f->nstart_workers > FLEET_START_MAX)
        f->nstart_workers = FLEET_START_MAX;
    f->nworkers = FLEET_EVENT_WORKERS + (size_t)f->nstart_workers;
    f->workers = calloc(f->nworkers, sizeof *f->workers);
    if (!f->workers) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (; workers < f->nworkers; workers++) {
        fleet_worker *w = &f->workers[workers];
        w->f = f;
        w->starts = workers >= FLEET_EVENT_WORKERS;
        /* Workers mostly wait on libvirt; libvirt's calls want the default
         * stack, so it is kept. */
        if (pthread_create(&w->th, NULL, fleet_worker_main, w) != 0) {
            snprintf(err, errlen, "cannot start worker threads");
            goto fail;
        }
    }
    if (cfg->start_parallel > 0)
        log_info("%d start workers (--start-parallel), %d event workers", f->nstart_workers,
                 FLEET_EVENT_WORKERS);
    else
        log_info("%d start workers (--start-parallel auto, %ld CPUs), %d event workers",
                 f->nstart_workers, cpus, FLEET_EVENT_WORKERS);
    /* Hosts open (and reconcile) with workers running, so that jobs queued
     * by reconcile and by events are served at once. */
    fleet_hosts_open_all(f);
    fleet_move_leftovers(f); /* a live move's stand-in a killed shoald left */
    if (pthread_create(&f->usage, NULL, fleet_usage_main, f) != 0) {
        snprintf(err, errlen, "cannot start the usage sampler thread");
        goto fail;
    }
    f->usage_started = 1;
    if (pthread_create(&f->supervisor, NULL, fleet_supervisor_main, f) != 0) {
        snprintf(err, errlen, "cannot start supervisor thread");
        goto fail;
    }
    if (pthread_create(&f->failover, NULL, fleet_failover_main, f) != 0) {
        snprintf(err, errlen, "cannot start the failover thread");
        goto fail;
    }
    f->failover_started = 1;
    /* Warm pools last: their guests are placed beside reconciled rows. */
    if (fleet_pool_open(f, err, errlen) != 0)
        log_warn("warm pools are off: %s", err);
    *out = f;
    return 0;

fail:
    stop_threads(f, workers, 0);
    free_fleet(f);
    return -1;
}

void fleet_close(fleet *f)
{
    if (!f)
        return;
    fleet_pool_close(f); /* its guests never outlive shoald (pool.h) */
    stop_threads(f, f->nworkers, 1);
    /* a thread still uses the fleet: left to the exit */
    if (fleet_host_calls_left(f))
        return;
    struct fleet_pool *pool = f->pool; /* freed once nothing can ask it */
    free_fleet(f);
    fleet_pool_free(pool);
}
