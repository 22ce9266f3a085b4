/* pool.c - the warm pool manager: one thread that keeps each image's pool
 * of booted, waiting guests filled on the local host, and the hand-over of
 * a claimed guest to its instance (pool.h says what and why; the table's
 * accounting is pool_tab.c). */
#include "pool.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "boot.h"
#include "debugexit.h"
#include "guard.h"
#include "killpoint.h"
#include "log.h"
#include "netbr.h"
#include "scheduler.h"
#include "snapshot.h"

/* The shape of a pool guest: the API's defaults for a create (api.h), so
 * that a create that names no memory or vCPUs can take one. */
#define POOL_MEMORY_MIB 32
#define POOL_VCPUS      1

struct fleet_pool {
    pthread_mutex_t mu; /* a leaf: see pool.h */
    pthread_cond_t cv;  /* wakes the manager (claim, image change, stop) */
    pool_tab tab;
    pthread_t thread;  /* the manager: fills, trims, destroys */
    pthread_t watcher; /* sees booting guests wait (never blocked by a start) */
    int running, watching, stop;
    int refresh;              /* re-read the wanted sizes at the next tick */
    int64_t want_at_ms;       /* monotonic ms of the last read */
    int64_t full_warn_ms;     /* last "no room for a pool guest" warning */
    int64_t no_room_until_ms; /* no placement check before (manager only) */
    /* images whose guests booted without waiting (a reference kernel from
     * before the hand-over): no pool until their profile changes */
    char refused[16][IMG_DIGEST_LEN + 1];
    size_t nrefused;
    char sock_dir[FLEET_PATH_MAX];
    /* a refilling guest's QEMU runs at refill_nice until it is claimed,
     * then at base_nice, shoald's own (0: no change; set at open) */
    int refill_nice, base_nice;
    int hold;           /* refills wait for claims in flight (claims_in_flight) */
    int nice_qemu_only; /* libvirt's create at shoald's priority, QEMU's at refill_nice */
    int handing;        /* records sent and not yet answered */
};

static void sock_path(const fleet *f, const char *id, char *buf, size_t len)
{
    if (snprintf(buf, len, "%s/%s.sock", f->pool->sock_dir, id) >= (int)len)
        buf[0] = 0; /* refused by the length check of start_guest */
}

/* A fresh id no row has (pool.h: it becomes an instance's). */
static int new_id(fleet *f, char out[STATE_ID_LEN + 1])
{
    unsigned char raw[STATE_ID_LEN / 2];
    state_instance in;
    char err[256];
    for (int tries = 0; tries < 8; tries++) {
        if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
            return -1;
        for (size_t i = 0; i < sizeof raw; i++)
            snprintf(out + 2 * i, 3, "%02x", raw[i]);
        if (state_inst_find(f->db, out, &in, err, sizeof err) != 0)
            return 0;
        state_inst_free(&in);
    }
    return -1;
}

/* The row-shaped view of a pool guest that isolation.c and fleet.c take
 * (its tap, MAC and bridge; no address until it is claimed). */
static void pseudo_row(const pool_guest *g, state_instance *in)
{
    memset(in, 0, sizeof *in);
    snprintf(in->id, sizeof in->id, "%s", g->id);
    snprintf(in->host, sizeof in->host, "%s", g->host);
    in->network = g->network;
    netbr_mac(g->id, in->mac);
}

/* ---- wanted sizes --------------------------------------------------------- */

/* No pool for digest until its profile changes or it is deleted (why is
 * logged). Under p->mu. */
static void refuse_image(struct fleet_pool *p, const char *digest, const char *why)
{
    for (size_t i = 0; i < p->nrefused; i++)
        if (!strcmp(p->refused[i], digest))
            return;
    log_warn("warm pool of %.19s: %s: no pool for it", digest, why);
    snprintf(p->refused[p->nrefused % 16], sizeof p->refused[0], "%s", digest);
    if (p->nrefused < 16)
        p->nrefused++;
    p->refresh = 1;
}

static int refused(const struct fleet_pool *p, const char *digest)
{
    for (size_t i = 0; i < p->nrefused; i++)
        if (!strcmp(p->refused[i], digest))
            return 1;
    return 0;
}

static void refresh_wants(fleet *f)
{
    img_info *list = NULL;
    size_t n = 0, nw = 0;
    img_err ie;
    img_filter flt = { .include_untagged = 0 }; /* an image without names has no pool */
    pool_want *w;

    if (img_list(f->img, &flt, &list, &n, &ie) != 0) {
        log_warn("warm pools: cannot list images: %s", ie.msg);
        return;
    }
    w = calloc(n + 1, sizeof *w);
    for (size_t i = 0; w && i < n; i++) {
        size_t k;
        if (!list[i].profile.warm_pool || list[i].kind != IMG_KIND_SHOAL)
            continue;
        for (k = 0; k < nw && strcmp(w[k].digest, list[i].digest); k++)
            ;
        if (k == nw) {
            snprintf(w[nw].digest, sizeof w[nw].digest, "%s", list[i].digest);
            w[nw++].want = list[i].profile.warm_pool;
        }
    }
    pthread_mutex_lock(&f->pool->mu);
    for (size_t i = 0; w && i < nw; i++)
        if (refused(f->pool, w[i].digest))
            w[i].want = 0;
    if (w)
        pool_tab_set_wants(&f->pool->tab, w, nw);
    f->pool->want_at_ms = fleet_now_ms();
    pthread_mutex_unlock(&f->pool->mu);
    free(w);
    img_list_free(list, n);
}

/* ---- placement: a pool guest counts like any guest ------------------------ */

/* Under place_mu: can one more guest of digest run on the local host
 * beside everything placed (pool guests included)? */
static int room_for(fleet *f, const char *digest)
{
    fleet_snapshot snap;
    sched_state *sst = NULL;
    sched_decision dec;
    sched_request req;
    sched_rule rule;
    fleet_err e;
    char err[256];
    int ok = 0;

    memset(&dec, 0, sizeof dec);
    if (fleet_snapshot_take_pool(f, &snap, err, sizeof err) != 0)
        return 0;
    if (fleet_snapshot_fits(&snap, POOL_MEMORY_MIB, POOL_VCPUS, &e) != FLEET_OK ||
        fleet_snapshot_sched(&snap, &sst, &e) != FLEET_OK)
        goto out;
    memset(&req, 0, sizeof req);
    memset(&rule, 0, sizeof rule);
    req.name = "warm-pool";
    fleet_charge_new(&snap, digest, POOL_MEMORY_MIB, POOL_VCPUS, &req.mem_mib, &req.vcpus);
    req.count = 1;
    rule.kind = SCHED_RULE_HOST_AFFINITY;
    rule.key = FLEET_HOST_LABEL;
    rule.value = FLEET_LOCAL_HOST;
    req.rules = &rule;
    req.n_rules = 1;
    sched_place_opts po = { .policy = SCHED_BINPACK };
    ok = sched_place(sst, &req, 1, &po, &dec) == SCHED_OK;
out:
    sched_decision_clear(&dec);
    sched_state_free(sst);
    fleet_snapshot_free(&snap);
    return ok;
}

/* ---- one guest's life ----------------------------------------------------- */

/* Destroy a guest's domain and forget it: its tap's rule, socket, files. */
static void destroy_guest(fleet *f, const pool_guest *g)
{
    char err[NODE_ERR_MAX], dom[64], path[FLEET_PATH_MAX];
    fleet_host *h = NULL;
    struct node *node;

    if (g->created && (node = fleet_host_node(f, g->host, &h))) {
        fleet_domain_name(g->id, dom, sizeof dom);
        int rc = node_destroy(node, dom, err, sizeof err);
        if (rc != NODE_OK && rc != NODE_E_NOTFOUND)
            log_warn("warm pool guest %s: destroy failed: %s", g->id, err);
    }
    fleet_host_release(f, h);
    if (g->network)
        fleet_guard_remove(f, g->id);
    if (g->fd >= 0)
        close(g->fd);
    sock_path(f, g->id, path, sizeof path);
    (void)unlink(path);
    fleet_status_path(f, g->id, path, sizeof path);
    (void)unlink(path);
    fleet_console_path(f, g->id, path, sizeof path);
    (void)unlink(path);
    pthread_mutex_lock(&f->mu);
    fleet_rt_drop(f, g->id); /* events of its domain may have made one */
    pthread_mutex_unlock(&f->mu);
}

/* Decide, then create one guest of digest on the local host. */
static void start_guest(fleet *f, const char *digest)
{
    struct fleet_pool *p = f->pool;
    char id[STATE_ID_LEN + 1], err[NODE_ERR_MAX], dom[64], console[FLEET_PATH_MAX],
        status[FLEET_PATH_MAX], sock[FLEET_PATH_MAX], tap[GUARD_TAP_SIZE], line[80], gwbuf[16];
    char *kernel = NULL, *initrd = NULL;
    img_info info;
    img_err ie;
    fleet_boot boot;
    struct domxml_spec spec;
    state_instance row;
    pool_guest g;
    fleet_host *h = NULL;
    struct node *node;
    int network = f->gateway != 0, room;

    memset(&info, 0, sizeof info);
    if (new_id(f, id) != 0)
        return;
    if (img_get(f->img, digest, &info, &ie) != 0 ||
        fleet_boot_plan(&info, &boot, err, sizeof err) || boot.disk || boot.template ||
        boot.preset != GCMD_PRESET_SHOAL) {
        pthread_mutex_lock(&p->mu);
        refuse_image(p, digest, "the image cannot be read or booted as a pool guest");
        pool_tab_drop_image(&p->tab, digest);
        pthread_mutex_unlock(&p->mu);
        goto out;
    }
    /* A full host is asked again after a while, not every tick (a
     * placement check reads every row). */
    if (fleet_now_ms() < p->no_room_until_ms)
        goto out;
    /* Charged from the moment it is decided: the table entry is made under
     * place_mu, so no create can place into the same room meanwhile. */
    pthread_mutex_lock(&f->place_mu);
    room = room_for(f, digest);
    pthread_mutex_lock(&p->mu);
    pool_guest *tg = room ? pool_tab_add(&p->tab, id, digest, FLEET_LOCAL_HOST, POOL_MEMORY_MIB,
                                         POOL_VCPUS, network, fleet_now_ms())
                          : NULL;
    if (tg)
        g = *tg;
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&f->place_mu);
    if (!tg) {
        int64_t now = fleet_now_ms();
        if (!room)
            p->no_room_until_ms = now + FLEET_POOL_ROOM_RETRY_MS;
        if (!room && now - p->full_warn_ms > 60000) {
            log_warn("warm pool of %.19s: no room on host %s for another pool guest", digest,
                     FLEET_LOCAL_HOST);
            p->full_warn_ms = now;
        }
        goto out;
    }
    if (!(node = fleet_host_node(f, g.host, &h))) {
        snprintf(err, sizeof err, "host %s is down", g.host);
        goto fail;
    }
    if (img_materialize(f->img, digest, &kernel, &ie) != 0 ||
        (info.initrd[0] && img_materialize_initrd(f->img, info.initrd, &initrd, &ie) != 0)) {
        snprintf(err, sizeof err, "%s", ie.msg);
        goto fail;
    }
    fleet_console_path(f, id, console, sizeof console);
    fleet_status_path(f, id, status, sizeof status);
    sock_path(f, id, sock, sizeof sock);
    fleet_domain_name(id, dom, sizeof dom);
    (void)unlink(status);
    (void)unlink(sock);
    if (!sock[0] || strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        snprintf(err, sizeof err,
                 "console socket path under '%.200s' is too long for a Unix socket", p->sock_dir);
        goto fail;
    }
    if (node_sock_dir(node, p->sock_dir, err, sizeof err) != NODE_OK)
        goto fail;
    memset(&spec, 0, sizeof spec);
    spec.name = dom;
    spec.virt = DOMXML_VIRT_AUTO;
    spec.boot = boot.boot;
    spec.fw = boot.fw;
    if (boot.debug_exit) {
        spec.debug_exit = 1;
        spec.emulator = fleet_debug_exit_wrapper();
    }
    spec.memory_mib = POOL_MEMORY_MIB;
    spec.vcpus = POOL_VCPUS;
    spec.kernel = kernel;
    spec.initrd = initrd;
    spec.cmdline = FLEET_POOL_LINE;
    spec.console_log = console;
    spec.status_log = status;
    spec.console_sock = sock;
    spec.instance_id = id;
    spec.nice = p->refill_nice; /* never in a claim's way (fleet_pool_open) */
    spec.nice_qemu_only = p->nice_qemu_only;
    if (network) {
        /* Its tap is allowed before it exists, with no address yet: it can
         * send nothing but DHCP and ARP probes until it is claimed. */
        pseudo_row(&g, &row);
        if (!(spec.bridge = fleet_bridge_pick(f, &row, err, sizeof err)) ||
            fleet_guard_add(f, &row, tap, err, sizeof err) != 0)
            goto fail;
        spec.mac = row.mac;
        spec.tap = tap;
        /* Its MAC is its NIC's from now on, its gateway this host's: on
         * the boot line, they need not be in the record (run.c,
         * docs/guest-protocol.md). */
        snprintf(line, sizeof line, "%s shoal.gw=%s shoal.mac=%s", FLEET_POOL_LINE,
                 cfg_ip4_str(f->gateway, gwbuf), row.mac);
        spec.cmdline = line;
    }
    pthread_mutex_lock(&p->mu);
    if ((tg = pool_tab_find(&p->tab, id)))
        tg->created = 1; /* from here on a destroy is needed */
    pthread_mutex_unlock(&p->mu);
    g.created = 1;
    if (node_start(node, &spec, NULL, err, sizeof err) != NODE_OK)
        goto fail;
    if (err[0])
        log_warn("warm pool guest %s: %s", id, err);
    if (spec.tap)
        fleet_tap_no_ipv6(spec.tap);
    log_debug("warm pool guest %s of %.19s started", id, digest);
    goto out;
fail:
    log_warn("warm pool guest of %.19s: start failed: %s", digest, err);
    pthread_mutex_lock(&p->mu);
    if ((tg = pool_tab_find(&p->tab, id))) {
        tg->st = POOL_G_DOOMED;
        p->tab.failed++;
    }
    pthread_mutex_unlock(&p->mu);
out:
    fleet_host_release(f, h);
    free(kernel);
    free(initrd);
    img_info_clear(&info);
}

static void on_record(void *ctx, const gst_record *r)
{
    int64_t *boot_us = ctx;
    if (r->kind == GST_POOL_WAIT)
        *boot_us = r->boot_us;
    else if (r->kind == GST_READY && *boot_us < 0)
        *boot_us = -2; /* booted as a cold guest: an older kernel (pool.h) */
    else if (r->kind == GST_EXIT && *boot_us == -1)
        *boot_us = -3; /* gave up before waiting: guest protocol 2's kernel
                          finds no virtio console to wait on */
}

/* A guest that booted as a cold one (boot_us -2) or exited before it
 * waited (-3, on_record): its kernel does not speak this hand-over. Under
 * p->mu. */
static void refuse_old_kernel(struct fleet_pool *p, const char *digest, int64_t boot_us)
{
    refuse_image(p, digest,
                 boot_us == -2 ? "its guest booted without waiting for a configuration (a "
                                 "reference kernel older than the hand-over?)"
                               : "its guest exited before waiting for a configuration (a "
                                 "reference kernel of guest protocol 2, whose hand-over needs "
                                 "a virtio console? rebuild the image; its instances start "
                                 "cold)");
}

/* A doomed guest that never waited (its domain may have ended before the
 * watcher read its status): the records it left say whether its kernel
 * cannot wait, so that the pool is not started again and again. */
static void check_never_waited(fleet *f, const pool_guest *g)
{
    char status[FLEET_PATH_MAX];
    gst_tracker tr = g->tracker;
    int64_t boot_us = -1;

    if (g->ready_ms || !g->created)
        return;
    fleet_status_path(f, g->id, status, sizeof status);
    gst_tracker_poll_max(&tr, status, FLEET_STATUS_READ_MAX, on_record, &boot_us, NULL);
    if (boot_us != -2 && boot_us != -3)
        return;
    pthread_mutex_lock(&f->pool->mu);
    refuse_old_kernel(f->pool, g->digest, boot_us);
    pthread_mutex_unlock(&f->pool->mu);
}

/* A booting guest: has it written pool-wait? Then connect its socket (its
 * COM1). */
static void check_booting(fleet *f, const char *id)
{
    struct fleet_pool *p = f->pool;
    char status[FLEET_PATH_MAX], sock[FLEET_PATH_MAX];
    gst_tracker tr;
    int64_t boot_us = -1, born;
    pool_guest *g;
    int fd = -1;

    pthread_mutex_lock(&p->mu);
    g = pool_tab_find(&p->tab, id);
    if (!g || g->st != POOL_G_BOOTING || !g->created) {
        pthread_mutex_unlock(&p->mu);
        return;
    }
    tr = g->tracker;
    born = g->born_ms;
    pthread_mutex_unlock(&p->mu);
    fleet_status_path(f, id, status, sizeof status);
    gst_tracker_poll_max(&tr, status, FLEET_STATUS_READ_MAX, on_record, &boot_us, NULL);
    if (boot_us == -2 || boot_us == -3) {
        pthread_mutex_lock(&p->mu);
        if ((g = pool_tab_find(&p->tab, id)) && g->st == POOL_G_BOOTING) {
            refuse_old_kernel(p, g->digest, boot_us);
            g->st = POOL_G_DOOMED;
            p->tab.failed++;
        }
        pthread_mutex_unlock(&p->mu);
        return;
    }
    if (boot_us >= 0) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        sock_path(f, id, sock, sizeof sock);
        if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock) >= (int)sizeof sa.sun_path)
            sa.sun_path[0] = 0;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            log_warn("warm pool guest %s: cannot connect its COM1 socket '%s': %s", id, sock,
                     strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    pthread_mutex_lock(&p->mu);
    g = pool_tab_find(&p->tab, id);
    if (g && g->st == POOL_G_BOOTING) {
        g->tracker = tr;
        if (fd >= 0) {
            g->st = POOL_G_READY;
            g->fd = fd;
            g->boot_us = boot_us;
            g->ready_ms = fleet_now_ms();
            fd = -1;
        } else if (boot_us >= 0 || fleet_now_ms() - born > FLEET_POOL_BOOT_MS) {
            g->st = POOL_G_DOOMED;
            p->tab.failed++;
            log_warn("warm pool guest %s: %s", id,
                     boot_us >= 0 ? "its COM1 socket cannot be reached"
                                  : "did not report pool-wait in time (does the image speak "
                                    "the warm pool protocol?)");
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (fd >= 0)
        close(fd);
}

/* Is a claim in flight: a guest claimed (its start job not yet at the
 * hand-over, for at most FLEET_POOL_HANDOVER_MS), or a record sent and not
 * yet answered? A refill then waits: started now, it would be created and
 * boot beside the hand-over (libvirt's fork of shoald, QEMU's start), even
 * at low priority. The hand-over's end wakes the manager. Under p->mu. */
static int claims_in_flight(const struct fleet_pool *p)
{
    int64_t now = fleet_now_ms();
    if (!p->hold)
        return 0;
    if (p->handing)
        return 1;
    for (size_t i = 0; i < p->tab.n; i++)
        if (p->tab.g[i].st == POOL_G_CLAIMED &&
            now - p->tab.g[i].claimed_ms < FLEET_POOL_HANDOVER_MS)
            return 1;
    return 0;
}

/* One tick: trim, destroy what is doomed, refill. */
static void tick(fleet *f)
{
    struct fleet_pool *p = f->pool;
    pool_guest doomed[8];
    pool_want need[FLEET_POOL_MAX];
    size_t nd = 0, nn = 0;

    if (p->refresh || fleet_now_ms() - p->want_at_ms >= FLEET_POOL_WANT_MS) {
        p->refresh = 0;
        refresh_wants(f);
    }
    pthread_mutex_lock(&p->mu);
    pool_tab_trim(&p->tab);
    for (size_t i = 0; i < p->tab.n; i++) {
        const pool_guest *g = &p->tab.g[i];
        if (g->st == POOL_G_DOOMED && nd < sizeof doomed / sizeof doomed[0])
            doomed[nd++] = *g;
    }
    /* taken out of the table now: a guest being destroyed is no one's */
    for (size_t i = 0; i < nd; i++)
        pool_tab_remove(&p->tab, doomed[i].id);
    for (size_t i = 0; !claims_in_flight(p) && i < p->tab.nw; i++) {
        uint32_t d = pool_tab_deficit(&p->tab, p->tab.w[i].digest);
        if (d) {
            need[nn] = p->tab.w[i];
            need[nn++].want = d;
        }
    }
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < nd; i++) {
        check_never_waited(f, &doomed[i]);
        destroy_guest(f, &doomed[i]);
    }
    /* one start a tick (~0.5 s of libvirt): the guests already booting
     * are looked at between two starts, so one that waits is claimable
     * at once, and a pool never crowds out the creates' own starts */
    if (nn)
        start_guest(f, need[0].digest);
}

/* The watcher: every FLEET_POOL_BOOT_TICK_MS while guests boot, reads
 * their status files and connects those that wait. A thread of its own,
 * so that a start in progress (~0.5 s of libvirt, more under load) never
 * holds back a guest that is ready to be claimed. */
static void *watch_main(void *arg)
{
    fleet *f = arg;
    struct fleet_pool *p = f->pool;
    char ids[FLEET_POOL_MAX][STATE_ID_LEN + 1];
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        struct timespec ts;
        size_t nb = 0;
        for (size_t i = 0; i < p->tab.n; i++)
            if (p->tab.g[i].st == POOL_G_BOOTING && p->tab.g[i].created)
                snprintf(ids[nb++], sizeof ids[0], "%s", p->tab.g[i].id);
        pthread_mutex_unlock(&p->mu);
        for (size_t i = 0; i < nb; i++)
            check_booting(f, ids[i]);
        pthread_mutex_lock(&p->mu);
        if (p->stop)
            break;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (nb ? FLEET_POOL_BOOT_TICK_MS : FLEET_POOL_TICK_MS) * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void *pool_main(void *arg)
{
    fleet *f = arg;
    struct fleet_pool *p = f->pool;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        struct timespec ts;
        pthread_mutex_unlock(&p->mu);
        tick(f);
        pthread_mutex_lock(&p->mu);
        if (p->stop)
            break;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += FLEET_POOL_TICK_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- the core's calls ----------------------------------------------------- */

/* May shoald set a claimed guest back from nice n to its own? Raising a
 * priority takes CAP_SYS_NICE or an RLIMIT_NICE that allows it. */
static int can_raise_from(int base)
{
    struct rlimit rl;
    char line[256];
    unsigned long long cap = 0;
    FILE *fp;
    if (getrlimit(RLIMIT_NICE, &rl) == 0 &&
        (rl.rlim_cur == RLIM_INFINITY || (long long)rl.rlim_cur >= 20 - base))
        return 1;
    if (!(fp = fopen("/proc/self/status", "re")))
        return 0;
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "CapEff: %llx", &cap) == 1)
            break;
    fclose(fp);
    return (cap >> 23) & 1; /* CAP_SYS_NICE */
}

/* The nice value refills run at: SHOAL_POOL_REFILL_NICE (0-19; 0 = as
 * every guest, a bench and diagnostic knob), default FLEET_POOL_REFILL_NICE;
 * none if shoald could not set a claimed guest back. Whether refills wait
 * for claims in flight: unless SHOAL_POOL_REFILL_HOLD=off (the same kind
 * of knob); SHOAL_POOL_REFILL_NICE_CREATE=off leaves libvirt's create at
 * shoald's priority (QEMU's threads only: node.h). docs/shoald.md "Warm
 * pools", docs/benchmarks.md "Refills out of a claim's way". */
static void refill_priority(struct fleet_pool *p)
{
    const char *v = getenv("SHOAL_POOL_REFILL_NICE");
    char *end = NULL;
    long n = FLEET_POOL_REFILL_NICE;
    errno = 0;
    p->base_nice = getpriority(PRIO_PROCESS, 0);
    if (errno)
        p->base_nice = 0;
    if (v && *v) {
        n = strtol(v, &end, 10);
        if (*end || n < 0 || n > 19) {
            log_warn("SHOAL_POOL_REFILL_NICE='%s' is not 0-19: using %d", v,
                     FLEET_POOL_REFILL_NICE);
            n = FLEET_POOL_REFILL_NICE;
        }
    }
    p->refill_nice = n > p->base_nice ? (int)n : 0;
    v = getenv("SHOAL_POOL_REFILL_HOLD");
    p->hold = !(v && !strcmp(v, "off"));
    v = getenv("SHOAL_POOL_REFILL_NICE_CREATE");
    p->nice_qemu_only = v && !strcmp(v, "off");
    if (p->refill_nice && !can_raise_from(p->base_nice)) {
        log_info("warm pools: refills at shoald's priority (no CAP_SYS_NICE to set a claimed "
                 "guest back from nice %d)",
                 p->refill_nice);
        p->refill_nice = 0;
    }
}

int fleet_pool_open(fleet *f, char *err, size_t errlen)
{
    struct fleet_pool *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pool_tab_init(&p->tab);
    p->refresh = 1;
    refill_priority(p);
    if (snprintf(p->sock_dir, sizeof p->sock_dir, "%s/pool", f->run_dir) >= (int)sizeof p->sock_dir)
        p->sock_dir[0] = 0; /* every start then fails, saying so */
    f->pool = p;
    if (pthread_create(&p->thread, NULL, pool_main, f) != 0) {
        snprintf(err, errlen, "cannot start the warm pool thread");
        f->pool = NULL;
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return -1;
    }
    p->running = 1;
    if (pthread_create(&p->watcher, NULL, watch_main, f) != 0) {
        snprintf(err, errlen, "cannot start the warm pool watcher thread");
        fleet_pool_close(f);
        fleet_pool_free(p);
        f->pool = NULL;
        return -1;
    }
    p->watching = 1;
    return 0;
}

void fleet_pool_close(fleet *f)
{
    struct fleet_pool *p = f ? f->pool : NULL;
    size_t n = 0;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (p->running)
        pthread_join(p->thread, NULL);
    if (p->watching)
        pthread_join(p->watcher, NULL);
    /* Every guest goes, claimed ones too: a claimed guest's instance has
     * not had its configuration, and is started cold by the next shoald.
     * The table is emptied first: the workers, still running, find none. */
    pool_guest *gone = malloc(sizeof p->tab.g);
    pthread_mutex_lock(&p->mu);
    if (gone) {
        n = p->tab.n;
        memcpy(gone, p->tab.g, n * sizeof *gone);
        p->tab.n = 0;
    }
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < n; i++)
        destroy_guest(f, &gone[i]);
    free(gone);
    if (n)
        log_info("warm pools: %zu pool guest%s destroyed", n, n == 1 ? "" : "s");
}

void fleet_pool_free(struct fleet_pool *p)
{
    if (!p)
        return;
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void fleet_pool_image_changed(fleet *f, const char *digest)
{
    struct fleet_pool *p = f->pool;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    if (digest)
        pool_tab_drop_image(&p->tab, digest);
    for (size_t i = 0; i < p->nrefused; i++) /* a changed image is tried again */
        if (!strcmp(p->refused[i], digest ? digest : ""))
            p->refused[i][0] = 0;
    p->refresh = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int fleet_pool_claim(fleet *f, const char *digest, const char *host, uint32_t memory_mib,
                     uint32_t vcpus, int network, char id_out[STATE_ID_LEN + 1])
{
    struct fleet_pool *p = f->pool;
    pool_guest *g;
    int got;
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    got = pool_tab_claim(&p->tab, digest, host, memory_mib, vcpus, network, id_out);
    if (got && (g = pool_tab_find(&p->tab, id_out)))
        g->claimed_ms = fleet_now_ms();
    pthread_cond_broadcast(&p->cv); /* refill (once no claim is in flight) */
    pthread_mutex_unlock(&p->mu);
    return got;
}

int fleet_pool_fits(const fleet_boot *boot, int own_initrd, int own_cmdline)
{
    return !own_initrd && !own_cmdline && !boot->disk && !boot->template &&
           boot->preset == GCMD_PRESET_SHOAL;
}

void fleet_pool_drop(fleet *f, const char *id)
{
    pool_guest g, *tg;
    int found = 0;
    if (!f->pool || !id)
        return;
    pthread_mutex_lock(&f->pool->mu);
    if ((tg = pool_tab_find(&f->pool->tab, id)) && tg->st == POOL_G_CLAIMED) {
        g = *tg;
        pool_tab_remove(&f->pool->tab, id);
        found = 1;
    }
    pthread_cond_broadcast(&f->pool->cv);
    pthread_mutex_unlock(&f->pool->mu);
    if (found)
        destroy_guest(f, &g);
}

void fleet_pool_unclaim(fleet *f, const char *id)
{
    if (!f->pool)
        return;
    pthread_mutex_lock(&f->pool->mu);
    pool_tab_unclaim(&f->pool->tab, id);
    pthread_mutex_unlock(&f->pool->mu);
}

size_t fleet_pool_make_room(fleet *f, const char *host)
{
    size_t n;
    if (!f->pool)
        return 0;
    pthread_mutex_lock(&f->pool->mu);
    n = pool_tab_evict_host(&f->pool->tab, host);
    pthread_cond_broadcast(&f->pool->cv);
    pthread_mutex_unlock(&f->pool->mu);
    return n;
}

fleet_pool_resident *fleet_pool_residents(fleet *f, size_t *n)
{
    fleet_pool_resident *r;
    *n = 0;
    if (!f->pool)
        return NULL;
    pthread_mutex_lock(&f->pool->mu);
    r = calloc(f->pool->tab.n + 1, sizeof *r);
    for (size_t i = 0; r && i < f->pool->tab.n; i++) {
        const pool_guest *g = &f->pool->tab.g[i];
        if (g->st != POOL_G_BOOTING && g->st != POOL_G_READY)
            continue;
        snprintf(r[*n].id, sizeof r[*n].id, "%s", g->id);
        snprintf(r[*n].digest, sizeof r[*n].digest, "%s", g->digest);
        snprintf(r[*n].host, sizeof r[*n].host, "%s", g->host);
        r[*n].memory_mib = g->memory_mib;
        r[*n].vcpus = g->vcpus;
        (*n)++;
    }
    pthread_mutex_unlock(&f->pool->mu);
    return r;
}

int fleet_pool_owns(fleet *f, const char *id)
{
    int owns;
    if (!f->pool)
        return 0;
    pthread_mutex_lock(&f->pool->mu);
    owns = pool_tab_find(&f->pool->tab, id) != NULL;
    pthread_mutex_unlock(&f->pool->mu);
    return owns;
}

int fleet_pool_claimed(fleet *f, const char *id)
{
    pool_guest *g;
    int claimed;
    if (!f->pool)
        return 0;
    pthread_mutex_lock(&f->pool->mu);
    claimed = (g = pool_tab_find(&f->pool->tab, id)) && g->st == POOL_G_CLAIMED;
    pthread_mutex_unlock(&f->pool->mu);
    return claimed;
}

void fleet_pool_gone(fleet *f, const char *id)
{
    pool_guest *g;
    if (!f->pool || !id)
        return;
    pthread_mutex_lock(&f->pool->mu);
    if ((g = pool_tab_find(&f->pool->tab, id)) && g->st != POOL_G_CLAIMED &&
        g->st != POOL_G_DOOMED) {
        g->st = POOL_G_DOOMED;
        f->pool->tab.failed++;
        pthread_cond_broadcast(&f->pool->cv);
    }
    pthread_mutex_unlock(&f->pool->mu);
}

void fleet_pool_forget(fleet *f, const char *id)
{
    pool_guest *g;
    int fd = -1;
    if (!f->pool)
        return;
    pthread_mutex_lock(&f->pool->mu);
    if ((g = pool_tab_find(&f->pool->tab, id))) {
        fd = g->fd;
        pool_tab_remove(&f->pool->tab, id);
    }
    pthread_cond_broadcast(&f->pool->cv);
    pthread_mutex_unlock(&f->pool->mu);
    if (fd >= 0)
        close(fd);
}

/* Write all of buf to fd (a stream socket), never raising SIGPIPE. */
static int send_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A claimed guest's QEMU back at shoald's priority, as a cold-started
 * one's, before its record: the claim waits on its threads. A failure
 * costs the claim speed, not its start: logged only. */
static void normal_priority(fleet *f, const char *id, const char *host)
{
    char dom[64], why[NODE_ERR_MAX];
    fleet_host *h = NULL;
    struct node *node = fleet_host_node(f, host, &h);
    fleet_domain_name(id, dom, sizeof dom);
    if (!node)
        log_warn("warm pool guest %s: host %s is down: its priority stays low", id, host);
    else if (node_guest_nice(node, dom, f->pool->base_nice, why, sizeof why) != NODE_OK)
        log_warn("warm pool guest %s: %s", id, why);
    fleet_host_release(f, h);
}

int fleet_pool_handover(fleet *f, const char *id, const char *record, char *err, size_t errlen)
{
    struct fleet_pool *p = f->pool;
    char head[48], line[256];
    size_t len = strlen(record), ll = 0;
    int64_t deadline = fleet_now_ms() + FLEET_POOL_HANDOVER_MS;
    char host[STATE_NAME_MAX] = "";
    pool_guest *g;
    int fd = -1, rc = -1;

    if (!p) {
        snprintf(err, errlen, "warm pools are closed");
        return -1;
    }
    pthread_mutex_lock(&p->mu);
    if ((g = pool_tab_find(&p->tab, id)) && g->st == POOL_G_CLAIMED) {
        fd = g->fd;
        g->fd = -1;
        snprintf(host, sizeof host, "%s", g->host);
        pool_tab_remove(&p->tab, id); /* an instance's from now on */
    }
    if (fd >= 0)
        p->handing++; /* until it is answered: claims_in_flight */
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (fd < 0) {
        snprintf(err, errlen, "pool guest %s is no longer waiting", id);
        return -1;
    }
    if (len > FLEET_POOL_RECORD_MAX) {
        snprintf(err, errlen, "configuration of %zu bytes is over the pool record's %d", len,
                 FLEET_POOL_RECORD_MAX);
        goto out;
    }
    if (p->refill_nice)
        normal_priority(f, id, host);
    /* The newline first: the guest ignores it, or it ends whatever a
     * previous writer left unfinished (docs/guest-protocol.md). */
    snprintf(head, sizeof head, "\nshoal-config %zu\n", len);
    if (send_all(fd, head, strlen(head)) != 0 || send_all(fd, record, len) != 0) {
        snprintf(err, errlen, "cannot send the configuration record: %s", strerror(errno));
        goto out;
    }
    /* The answer: the first line that starts "shoal-config " (untrusted:
     * bounded, anything else skipped). */
    for (;;) {
        int64_t left = deadline - fleet_now_ms();
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        char c;
        ssize_t n;
        if (left <= 0) {
            snprintf(err, errlen, "no answer to the configuration record in %d ms",
                     FLEET_POOL_HANDOVER_MS);
            goto out;
        }
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "the guest closed its console before answering");
            goto out;
        }
        if (c != '\n') {
            /* the reason goes into last_error and the log: printable only */
            if (ll < sizeof line - 1)
                line[ll++] = c == '\r' || (c >= 0x20 && c < 0x7f) ? c : '?';
            continue;
        }
        line[ll] = 0;
        ll = 0;
        if (line[0] && line[strlen(line) - 1] == '\r')
            line[strlen(line) - 1] = 0;
        if (!strcmp(line, "shoal-config ok")) {
            /* The go-ahead, then the hang-up right behind it: the guest
             * writes nothing more on COM1 until this byte (or 20 ms), so
             * its app's output meets no connected socket, which QEMU 7.2
             * would log bytes of twice once full (docs/guest-protocol.md
             * "Robustness"). Our reading side is shut first: from then on
             * QEMU's sends fail at once (EPIPE, each byte logged once)
             * instead of filling a socket nobody reads, should this thread
             * lose its CPU between the byte and the hang-up. A send that
             * fails costs the guest 20 ms. */
            (void)shutdown(fd, SHUT_RD);
            (void)send_all(fd, "\n", 1);
            kp_hit("pool.goahead"); /* tests only: killpoint.h */
            rc = 0;
            goto out;
        }
        if (!strncmp(line, "shoal-config error", 18)) {
            snprintf(err, errlen, "the guest refused its configuration:%s", line + 18);
            goto out;
        }
    }
out:
    close(fd);
    pthread_mutex_lock(&p->mu);
    p->handing--;
    pthread_cond_broadcast(&p->cv); /* the refill it held */
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void fleet_pool_stats(fleet *f, uint64_t *claims, uint64_t *misses, size_t *ready, size_t *booting)
{
    *claims = *misses = 0;
    *ready = *booting = 0;
    if (!f->pool)
        return;
    pthread_mutex_lock(&f->pool->mu);
    *claims = f->pool->tab.claims;
    *misses = f->pool->tab.misses;
    *ready = pool_tab_count(&f->pool->tab, NULL, POOL_G_READY);
    *booting = pool_tab_count(&f->pool->tab, NULL, POOL_G_BOOTING);
    pthread_mutex_unlock(&f->pool->mu);
}
