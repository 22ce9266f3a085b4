/*
 * node.c - a libvirt connection to one host (see node.h).
 */
#include "node.h"
#include "child.h"
#include "errbuf.h"
#include "instpath.h"
#include "killpoint.h"
#include "nodenet.h"
#include "nodestore.h"
#include "nodestream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#ifndef SHOAL_CANARY_BUILD_PATH
#define SHOAL_CANARY_BUILD_PATH ""
#endif

/* ---- small helpers ------------------------------------------------------ */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000u, (long)(ms % 1000u) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static const char *lv_msg(void)
{
    const char *m = virGetLastErrorMessage();
    return m ? m : "unknown libvirt error";
}

/* Silence libvirt's default "print every error to stderr" handler; callers
 * get the messages through err buffers. */
static void lv_quiet(void *user, virErrorPtr e)
{
    (void)user;
    (void)e;
}

/* ---- process-wide event loop ---------------------------------------------- */

static pthread_mutex_t loop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t loop_once = PTHREAD_ONCE_INIT;
static int loop_init_rc = -1;
static int loop_refs;
static pthread_t loop_thread;
static atomic_int loop_quit;
static atomic_ullong node_stream_opens, node_stream_failures,
    node_stream_aborts; /* node_stream_counts */

static void loop_register(void)
{
    if (virInitialize() < 0)
        return;
    virSetErrorFunc(NULL, lv_quiet);
    loop_init_rc = virEventRegisterDefaultImpl();
}

static void *loop_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&loop_quit)) {
        if (virEventRunDefaultImpl() < 0)
            sleep_ms(10);
    }
    return NULL;
}

static void loop_wake_cb(int timer, void *opaque)
{
    (void)opaque;
    virEventRemoveTimeout(timer);
}

static int loop_get(char *err, size_t errlen)
{
    int rc = NODE_E_LIBVIRT;

    pthread_once(&loop_once, loop_register);
    pthread_mutex_lock(&loop_lock);
    if (loop_init_rc < 0) {
        errbuf_set(err, errlen, "cannot initialise libvirt event loop: %s", lv_msg());
        goto out;
    }
    if (loop_refs == 0) {
        atomic_store(&loop_quit, 0);
        if (pthread_create(&loop_thread, NULL, loop_main, NULL) != 0) {
            errbuf_set(err, errlen, "cannot start libvirt event thread: %s", strerror(errno));
            goto out;
        }
    }
    loop_refs++;
    rc = NODE_OK;
out:
    pthread_mutex_unlock(&loop_lock);
    return rc;
}

static void loop_put(void)
{
    pthread_mutex_lock(&loop_lock);
    if (--loop_refs == 0) {
        atomic_store(&loop_quit, 1);
        /* A zero-delay timer makes virEventRunDefaultImpl return; the thread
         * then sees loop_quit. The timer removes itself when it fires. */
        if (virEventAddTimeout(0, loop_wake_cb, NULL, NULL) < 0) {
            /* cannot wake it: leave it parked rather than hang in join */
            pthread_detach(loop_thread);
        } else {
            pthread_join(loop_thread, NULL);
        }
    }
    pthread_mutex_unlock(&loop_lock);
}

/* ---- the node ---------------------------------------------------------------- */

/* uuid -> instance id cache, so STOPPED events of vanished transient
 * domains still carry their instance id. Every lifecycle event looks its
 * domain up here (on libvirt's event thread, under n->lock), and every
 * start and list adds to it: a hash table chained per bucket, doubled when
 * it holds more entries than buckets, so a lookup costs the same at 1,000
 * running domains as at 1 (it was a list walked per event). */
struct idmap {
    unsigned char uuid[VIR_UUID_BUFLEN];
    char id[DOMXML_ID_MAX + 1];
    int pause_pending;  /* a pause_check timer is armed for this domain */
    struct idmap *next; /* next in its bucket */
};

#define IDS_BUCKETS_MIN 64 /* a power of two */

/* A domain's serial ports read through streams (remote nodes: node_start,
 * nodestream.h); a port is NULL when its stream did not open or was taken
 * by node_serial_done. */
struct serials {
    char name[DOMXML_NAME_MAX + 1];
    struct nstream *port[2]; /* console (serial0), status (serial1) */
    int pending;             /* node_start is creating it: streams to come */
    int fetching;            /* node_fetch_run_file calls in flight */
    struct serials *next;
};

struct node {
    char *uri;
    /* The connection. Written only by the thread that opens, reconnects or
     * closes the node (conn_make, conn_drop), under cmu; every other
     * thread takes its own reference with conn_get and lets go with
     * conn_put. A call can outlive the connection it began on: a host call
     * left waiting on a hung host while node_reconnect replaces the
     * connection (libvirt frees a connection at its last reference, and a
     * call without one crashed in libvirt when the host answered). */
    virConnectPtr conn;
    pthread_mutex_t cmu;
    int lifecycle_cb; /* callback ids, -1 when not registered */
    int reboot_cb;
    int close_registered;
    atomic_int alive;
    int loop_ref; /* holds a reference on the event loop */
    struct node_opts opts;
    enum domxml_virt virt;
    char virt_reason[200];
    int kvm_works;         /* a kvm canary booted (this run or cached) */
    int virt_uncertain;    /* verdict made without a speed comparison */
    int embedded;          /* qemu:///embed: shoald decides QEMU's user */
    int remote;            /* files QEMU opens go through nodestore.h */
    atomic_int net_filter; /* nodenet.h's guest filter defined on the host */
    int streams;           /* serial ports read through streams (node_serial_live) */
    unsigned qemu_uid;     /* QEMU's user and primary group (embedded only; */
    unsigned qemu_gid;     /* 0/0 when QEMU runs as root) */
    int cg_cpu, cg_mem;    /* cgroup controllers libvirt can use (node_open) */
    char confinement[200]; /* node_confinement */
    struct node_capacity cap;
    pthread_mutex_t lock;   /* protects ids, cb_refs */
    pthread_cond_t cb_gone; /* signalled when cb_refs drops */
    int cb_refs;            /* registered callbacks libvirt has not freed yet */
    struct idmap **ids;     /* hash buckets (ids_nbuckets, a power of two), */
    size_t ids_nbuckets;    /* NULL until the first entry */
    size_t ids_count;       /* entries in the table */
    pthread_mutex_t smu;    /* protects serials (taken before a stream's own) */
    pthread_cond_t scv;     /* a fetch of a domain's file ended */
    struct serials *serials;
};

/* libvirt calls this (on the event thread, or inline) once a registered
 * callback can no longer run; node_close waits for all of them so that no
 * callback can touch a freed node. */
static void cb_free(void *opaque)
{
    struct node *n = opaque;
    pthread_mutex_lock(&n->lock);
    n->cb_refs--;
    pthread_cond_broadcast(&n->cb_gone);
    pthread_mutex_unlock(&n->lock);
}

static void cb_hold(struct node *n)
{
    pthread_mutex_lock(&n->lock);
    n->cb_refs++;
    pthread_mutex_unlock(&n->lock);
}

/* The node's connection with a reference of the caller's own, or NULL when
 * it has none (closed, or being replaced). Any thread. */
static virConnectPtr conn_get(struct node *n)
{
    virConnectPtr c;
    pthread_mutex_lock(&n->cmu);
    c = n->conn;
    if (c && virConnectRef(c) < 0)
        c = NULL;
    pthread_mutex_unlock(&n->cmu);
    return c;
}

/* virConnectIsAlive of the node's connection, a check of the client's
 * state (no RPC): 1 alive, 0 closed or none, -1 libvirt's error. */
static int conn_alive(struct node *n)
{
    int alive;
    pthread_mutex_lock(&n->cmu);
    alive = n->conn ? virConnectIsAlive(n->conn) : 0;
    pthread_mutex_unlock(&n->cmu);
    return alive;
}

/* Let go of conn_get's reference (the last one closes the connection).
 * Like every libvirt call it resets libvirt's last error: read that first. */
static void conn_put(virConnectPtr c)
{
    if (c)
        virConnectClose(c);
}

/* FNV-1a over the 16 bytes. libvirt's UUIDs are random, but one given by
 * an operator need not be: hash all of it. */
static size_t ids_hash(const unsigned char *uuid)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < VIR_UUID_BUFLEN; i++) {
        h ^= uuid[i];
        h *= 0x100000001b3ull;
    }
    return (size_t)h;
}

/* The link that points at uuid's entry, or at the NULL ending its bucket.
 * Caller holds n->lock and n->ids is allocated. */
static struct idmap **ids_link(struct node *n, const unsigned char *uuid)
{
    struct idmap **pp = &n->ids[ids_hash(uuid) & (n->ids_nbuckets - 1)];
    while (*pp && memcmp((*pp)->uuid, uuid, VIR_UUID_BUFLEN) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* Rehash into nb buckets (a power of two). Caller holds n->lock. On no
 * memory the table stays as it is: longer chains, same answers. */
static void ids_resize(struct node *n, size_t nb)
{
    struct idmap **b = calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < n->ids_nbuckets; i++) {
        while (n->ids[i]) {
            struct idmap *m = n->ids[i];
            size_t k = ids_hash(m->uuid) & (nb - 1);
            n->ids[i] = m->next;
            m->next = b[k];
            b[k] = m;
        }
    }
    free(n->ids);
    n->ids = b;
    n->ids_nbuckets = nb;
}

static void ids_put(struct node *n, const unsigned char *uuid, const char *id)
{
    struct idmap **pp, *m;
    pthread_mutex_lock(&n->lock);
    if (!n->ids)
        ids_resize(n, IDS_BUCKETS_MIN);
    if (!n->ids)
        goto out; /* no memory: not cached, as when an entry cannot be */
    pp = ids_link(n, uuid);
    if (*pp) {
        snprintf((*pp)->id, sizeof(*pp)->id, "%s", id);
        goto out;
    }
    m = calloc(1, sizeof *m);
    if (m) {
        memcpy(m->uuid, uuid, VIR_UUID_BUFLEN);
        snprintf(m->id, sizeof m->id, "%s", id);
        *pp = m;
        if (++n->ids_count > n->ids_nbuckets)
            ids_resize(n, 2 * n->ids_nbuckets);
    }
out:
    pthread_mutex_unlock(&n->lock);
}

/* Copy the cached id for uuid into id; remove the entry if `remove`.
 * Returns 1 if found. */
static int ids_get(struct node *n, const unsigned char *uuid, char *id, size_t idlen, int remove)
{
    struct idmap **pp = NULL, *m = NULL;
    int found = 0;
    pthread_mutex_lock(&n->lock);
    if (n->ids) {
        pp = ids_link(n, uuid);
        m = *pp;
    }
    if (m) {
        snprintf(id, idlen, "%s", m->id);
        found = 1;
        if (remove) {
            *pp = m->next;
            free(m);
            n->ids_count--;
        }
    }
    pthread_mutex_unlock(&n->lock);
    return found;
}

/* Mark a pause check pending for uuid; 0 if one already is. */
static int ids_pause_claim(struct node *n, const unsigned char *uuid, int claim)
{
    struct idmap *m = NULL;
    int ok = 1;
    pthread_mutex_lock(&n->lock);
    if (n->ids)
        m = *ids_link(n, uuid);
    if (m) {
        if (claim && m->pause_pending)
            ok = 0;
        m->pause_pending = claim;
    }
    pthread_mutex_unlock(&n->lock);
    return ok;
}

static void ids_clear(struct node *n)
{
    pthread_mutex_lock(&n->lock);
    for (size_t i = 0; i < n->ids_nbuckets; i++) {
        while (n->ids[i]) {
            struct idmap *m = n->ids[i];
            n->ids[i] = m->next;
            free(m);
        }
    }
    free(n->ids);
    n->ids = NULL;
    n->ids_nbuckets = n->ids_count = 0;
    pthread_mutex_unlock(&n->lock);
}

/* Map the thread's last libvirt error to a node_status. */
static int lv_status(struct node *n)
{
    int code = virGetLastErrorCode();
    switch (code) {
    case VIR_ERR_NO_DOMAIN: return NODE_E_NOTFOUND;
    case VIR_ERR_NO_MEMORY: return NODE_E_NOMEM;
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_INVALID_CONN:
    case VIR_ERR_RPC: return NODE_E_CONN;
    default: break;
    }
    if (n && conn_alive(n) == 0)
        return NODE_E_CONN;
    return NODE_E_LIBVIRT;
}

/* Read the shoal instance id of a live domain; 1 if it has one. */
static int dom_instance_id(virDomainPtr dom, char *id, size_t idlen)
{
    char *md = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, DOMXML_NS_URI, 0);
    int ok = md && domxml_parse_instance_id(md, id, idlen) == DOMXML_OK;
    free(md);
    if (!ok && idlen)
        id[0] = '\0';
    return ok;
}

static int dom_fill(virDomainPtr dom, struct node_dom *d)
{
    int state = 0, reason = 0;
    memset(d, 0, sizeof *d);
    const char *name = virDomainGetName(dom);
    snprintf(d->name, sizeof d->name, "%s", name ? name : "");
    if (virDomainGetUUIDString(dom, d->uuid) < 0)
        d->uuid[0] = '\0';
    dom_instance_id(dom, d->instance_id, sizeof d->instance_id);
    if (virDomainGetState(dom, &state, &reason, 0) < 0)
        return -1;
    d->state = (enum node_dom_state)state;
    d->reason = reason;
    d->internal_error = state == VIR_DOMAIN_CRASHED ||
                        (state == VIR_DOMAIN_PAUSED && (reason == VIR_DOMAIN_PAUSED_UNKNOWN ||
                                                        reason == VIR_DOMAIN_PAUSED_CRASHED ||
                                                        reason == VIR_DOMAIN_PAUSED_IOERROR));
    return 0;
}

/* ---- events ---------------------------------------------------------------- */

static const char *const started_detail[] = { "booted",        "migrated", "restored",
                                              "from-snapshot", "wakeup",   "recreated" };
static const char *const stopped_detail[] = { "shutdown", "destroyed", "crashed",      "migrated",
                                              "saved",    "failed",    "from-snapshot" };
static const char *const shutdown_detail[] = { "finished", "guest", "host" };
static const char *const crashed_detail[] = { "panicked", "crashloaded" };
static const char *const suspended_detail[] = { "paused",    "migrated", "io-error",
                                                "watchdog",  "restored", "from-snapshot",
                                                "api-error", "postcopy", "postcopy-failed" };
static const char *const resumed_detail[] = { "unpaused", "migrated", "from-snapshot", "postcopy",
                                              "postcopy-failed" };

#define DETAIL(tbl, i)                                                                             \
    ((i) >= 0 && (size_t)(i) < sizeof(tbl) / sizeof((tbl)[0]) ? (tbl)[i] : "unknown")

static void deliver(struct node *n, const char *id, enum node_event ev, const char *detail)
{
    if (n->opts.on_event)
        n->opts.on_event(n, id, ev, detail, n->opts.user);
}

/* A pause with reason "unknown" is how libvirt shows two different things
 * at first: QEMU stopping the VM on a KVM internal error (it stays paused),
 * and a guest panic (pvpanic), whose STOP event libvirt reports before its
 * worker has processed the panic, which then sets CRASHED/panicked and
 * destroys the domain. Deciding on the spot misreported panics as KVM
 * errors when the event thread ran ahead of libvirt's worker (seen under
 * load). So the verdict waits PAUSE_SETTLE_MS on a one-shot timer: still
 * paused for an unknown reason then means a KVM internal error. */
#define PAUSE_SETTLE_MS 1000

struct pause_check {
    struct node *n;     /* alive until cb_free: conn_drop waits */
    virConnectPtr conn; /* own reference: n->conn may be closed */
    unsigned char uuid[VIR_UUID_BUFLEN];
    char id[DOMXML_ID_MAX + 1];
};

static void pause_check_fire(int timer, void *opaque)
{
    struct pause_check *pc = opaque;
    int state = 0, reason = 0;

    virEventRemoveTimeout(timer); /* one-shot; pause_check_free follows */
    if (!atomic_load(&pc->n->alive))
        return;
    virDomainPtr dom = virDomainLookupByUUID(pc->conn, pc->uuid);
    if (!dom)
        return; /* gone: the panic path destroyed it */
    if (virDomainGetState(dom, &state, &reason, 0) == 0 && state == VIR_DOMAIN_PAUSED &&
        reason == VIR_DOMAIN_PAUSED_UNKNOWN)
        deliver(pc->n, pc->id, NODE_EVENT_CRASHED, "kvm-internal-error");
    virDomainFree(dom);
}

static void pause_check_free(void *opaque)
{
    struct pause_check *pc = opaque;
    ids_pause_claim(pc->n, pc->uuid, 0);
    virConnectClose(pc->conn);
    cb_free(pc->n);
    free(pc);
}

/* Schedule the check; when that is impossible, decide now as before.
 * One check per domain at a time: the SUSPENDED of node_start's paused
 * create (see create_running) can reach this thread after the resumed
 * guest has already been paused again by an emulation failure; both would
 * then find it paused for an unknown reason and report two crashes. */
static void pause_check_later(struct node *n, virConnectPtr conn, const unsigned char *uuid,
                              const char *id)
{
    if (!ids_pause_claim(n, uuid, 1))
        return;
    struct pause_check *pc = calloc(1, sizeof *pc);
    if (pc && virConnectRef(conn) == 0) {
        pc->n = n;
        pc->conn = conn;
        memcpy(pc->uuid, uuid, VIR_UUID_BUFLEN);
        snprintf(pc->id, sizeof pc->id, "%s", id);
        cb_hold(n);
        if (virEventAddTimeout(PAUSE_SETTLE_MS, pause_check_fire, pc, pause_check_free) >= 0)
            return;
        cb_free(n);
        virConnectClose(conn);
    }
    free(pc);
    ids_pause_claim(n, uuid, 0);
    deliver(n, id, NODE_EVENT_CRASHED, "kvm-internal-error");
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    struct node *n = opaque;
    unsigned char uuid[VIR_UUID_BUFLEN];
    char id[DOMXML_ID_MAX + 1] = "";
    int stopped = event == VIR_DOMAIN_EVENT_STOPPED;

    if (virDomainGetUUID(dom, uuid) < 0)
        return 0;
    if (!ids_get(n, uuid, id, sizeof id, stopped)) {
        if (stopped || !dom_instance_id(dom, id, sizeof id))
            return 0; /* not shoal's, or gone before we learnt its id */
        ids_put(n, uuid, id);
    }

    switch (event) {
    case VIR_DOMAIN_EVENT_STARTED:
        deliver(n, id, NODE_EVENT_STARTED, DETAIL(started_detail, detail));
        break;
    case VIR_DOMAIN_EVENT_RESUMED:
        deliver(n, id, NODE_EVENT_RESUMED, DETAIL(resumed_detail, detail));
        break;
    case VIR_DOMAIN_EVENT_SUSPENDED: {
        /* shoal never pauses guests: a pause is QEMU stopping the VM */
        int state = 0, reason = 0;
        if (virDomainGetState(dom, &state, &reason, 0) == 0 && state == VIR_DOMAIN_PAUSED) {
            if (reason == VIR_DOMAIN_PAUSED_UNKNOWN) {
                pause_check_later(n, conn, uuid, id);
                break;
            }
            if (reason == VIR_DOMAIN_PAUSED_CRASHED) {
                deliver(n, id, NODE_EVENT_CRASHED, "paused-crashed");
                break;
            }
            if (reason == VIR_DOMAIN_PAUSED_IOERROR) {
                deliver(n, id, NODE_EVENT_CRASHED, "io-error");
                break;
            }
        }
        deliver(n, id, NODE_EVENT_SUSPENDED, DETAIL(suspended_detail, detail));
        break;
    }
    case VIR_DOMAIN_EVENT_SHUTDOWN:
        deliver(n, id, NODE_EVENT_SHUTDOWN, DETAIL(shutdown_detail, detail));
        break;
    case VIR_DOMAIN_EVENT_STOPPED:
        deliver(n, id, NODE_EVENT_STOPPED, DETAIL(stopped_detail, detail));
        break;
    case VIR_DOMAIN_EVENT_CRASHED:
        deliver(n, id, NODE_EVENT_CRASHED, DETAIL(crashed_detail, detail));
        break;
    default: /* DEFINED, UNDEFINED, PMSUSPENDED: not used by shoal */ break;
    }
    return 0;
}

static void on_reboot(virConnectPtr conn, virDomainPtr dom, void *opaque)
{
    struct node *n = opaque;
    unsigned char uuid[VIR_UUID_BUFLEN];
    char id[DOMXML_ID_MAX + 1];

    (void)conn;
    if (virDomainGetUUID(dom, uuid) < 0)
        return;
    if (ids_get(n, uuid, id, sizeof id, 0) || dom_instance_id(dom, id, sizeof id))
        deliver(n, id, NODE_EVENT_REBOOT, "reset");
}

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
    struct node *n = opaque;
    static const char *const why[] = { "error", "eof", "keepalive", "client" };
    (void)conn;
    atomic_store(&n->alive, 0);
    deliver(n, NULL, NODE_EVENT_CONN_LOST, DETAIL(why, reason));
}

/* ---- starting a domain ------------------------------------------------------ */

/*
 * Create the transient domain described by xml and set its vCPUs running.
 * A guest that powers off (or crashes) straight away must count as a start
 * that then ended, never as a failed start; docs/node.md ("Starting: paused,
 * then resumed") has the measurements behind this.
 *
 * libvirt runs QEMU with -no-shutdown and SIGTERMs it from its SHUTDOWN
 * event handler. When that happens while virDomainCreateXML still owns the
 * start job, the 'cont' that started the vCPUs has been answered, but the
 * monitor EOF that follows is recorded (with the QEMU log: "qemu
 * unexpectedly closed the monitor: ... terminating on signal 15") before
 * the starting thread wakes up, so the whole create fails and the domain
 * vanishes without STARTED/STOPPED events. Creating it paused runs every
 * start step with the vCPUs stopped; the guest only runs from the
 * virDomainResume below. If that resume reports an error, the domain's
 * state says whether the guest got to run: still paused as created
 * (VIR_DOMAIN_PAUSED_USER) means it did not - destroy it and fail; running,
 * shutting down, crashed or already gone means it started and its end
 * arrives as events.
 *
 * Returns the domain (caller frees) or NULL with the reason in why and the
 * node status in *status.
 */
static int embed_root(const char *uri, char *root, size_t rootlen);

/* virDomainCreateXML, with --qemu-aslr off applied: the embedded driver
 * forks QEMU from this thread, and a personality is per thread and
 * inherited across fork and execve (docs/node.md "Memory per guest").
 * So is a thread's nice value: with nice > 0 the create (libvirt's work
 * in this thread and QEMU from its first instruction) runs at that nice,
 * the thread's own restored after it (docs/node.md "Warm pool guests at
 * low priority"). */
static virDomainPtr create_xml(struct node *n, virConnectPtr conn, const char *xml, unsigned flags,
                               int nice, char *why, size_t whylen)
{
    char root[8];
    int pers = -1, embedded = embed_root(n->uri, root, sizeof root), old = 0;
    pid_t tid = (pid_t)syscall(SYS_gettid);
    virDomainPtr dom;
    if (n->opts.qemu_no_aslr && embedded && (pers = personality(0xffffffff)) != -1)
        (void)personality((unsigned long)pers | ADDR_NO_RANDOMIZE);
    if (nice > 0 && embedded) {
        errno = 0;
        old = getpriority(PRIO_PROCESS, (id_t)tid);
        if ((errno || setpriority(PRIO_PROCESS, (id_t)tid, nice) != 0))
            nice = 0; /* renice_guest below still tries, by pid */
    } else {
        nice = 0;
    }
    dom = virDomainCreateXML(conn, xml, flags);
    if (nice && setpriority(PRIO_PROCESS, (id_t)tid, old) != 0 && why && why[0] == '\0')
        errbuf_set(why, whylen, "cannot restore the starting thread's nice value %d: %s", old,
                   strerror(errno));
    if (pers != -1)
        (void)personality((unsigned long)pers);
    return dom;
}

/* The memory cgroup's hard limit of a paused domain's QEMU (KiB). libvirt
 * applies <memtune><hard_limit> at start also as QEMU's RLIMIT_MEMLOCK, in
 * the child after it dropped its capabilities, and the start fails there
 * ("cannot limit locked memory ...: Operation not permitted", measured on
 * libvirt 9.0 with an unprivileged QEMU); set live, only the cgroup (and
 * the limit of the already running QEMU) changes. */
static int limit_memory(virDomainPtr dom, unsigned long long kib, char *why, size_t whylen)
{
    virTypedParameter p;
    memset(&p, 0, sizeof p);
    snprintf(p.field, sizeof p.field, "%s", VIR_DOMAIN_MEMORY_HARD_LIMIT);
    p.type = VIR_TYPED_PARAM_ULLONG;
    p.value.ul = kib;
    if (virDomainSetMemoryParameters(dom, &p, 1, VIR_DOMAIN_AFFECT_LIVE) == 0)
        return 0;
    errbuf_set(why, whylen, "cannot limit its memory to %llu KiB: %s", kib, lv_msg());
    return -1;
}

static int serials_begin(struct node *n, const char *name);
static void serials_open(struct node *n, virDomainPtr dom, const char *name, const char *console,
                         const char *status, int force, char *why, size_t whylen);
static int need_conn(struct node *n, const char *what, const char *name, virConnectPtr *conn,
                     char *err, size_t errlen);

/* Which nodes stream their guests' serial ports: remote ones, unless
 * SHOAL_SERIAL_STREAMS says "off" (every node reads files, the fallback,
 * for a comparison) or "all" (local QEMU nodes too, for measuring what
 * that costs: docs/node.md "Remote hosts"). */
static int node_streams_wanted(const char *uri, int remote)
{
    const char *v = getenv("SHOAL_SERIAL_STREAMS");
    if (v && !strcmp(v, "off"))
        return 0;
    if (v && !strcmp(v, "all"))
        return strncmp(uri, "test:", 5) != 0;
    return remote;
}

/* local (may be NULL): the spec whose serial ports are streamed into its
 * console_log and status_log (domxml_spec.serial_pty); stream_why: why a
 * port was not ("" if both were). */
/* nice (> 0): QEMU runs at that nice value from its start (create_xml),
 * checked, or set by pid on a driver that forks it elsewhere, before its
 * vCPUs run; nice_why: why it does not ("" if it does). */
static virDomainPtr create_running(struct node *n, virConnectPtr conn, const char *xml,
                                   unsigned long long mem_kib, int nice, int nice_qemu_only,
                                   char *nice_why, size_t nice_whylen,
                                   const struct domxml_spec *local, char *stream_why,
                                   size_t stream_whylen, int *status, char *why, size_t whylen)
{
    virDomainPtr dom = create_xml(n, conn, xml, VIR_DOMAIN_START_PAUSED, nice_qemu_only ? 0 : nice,
                                  nice_why, nice_whylen);
    int state = 0, reason = 0;

    /* Drivers without START_PAUSED (test:///, "unsupported flags") start
     * the domain running, as before. */
    if (!dom && virGetLastErrorCode() == VIR_ERR_INVALID_ARG) {
        dom = create_xml(n, conn, xml, 0, 0, NULL, 0);
        if (dom)
            return dom;
    }
    if (!dom) {
        errbuf_set(why, whylen, "%s", lv_msg());
        *status = lv_status(n);
        if (*status == NODE_E_NOTFOUND)
            *status = NODE_E_LIBVIRT;
        return NULL;
    }
    if (mem_kib && limit_memory(dom, mem_kib, why, whylen) != 0) {
        *status = NODE_E_LIBVIRT;
        virDomainDestroy(dom);
        virDomainFree(dom);
        return NULL;
    }
    kp_hit("start.paused");                /* tests only: killpoint.h */
    if (nice > 0 && virDomainGetName(dom)) /* a warning only: nice_why says why */
        (void)node_guest_nice(n, virDomainGetName(dom), nice, nice_why, nice_whylen);
    if (local)
        serials_open(n, dom, local->name, local->console_log, local->status_log, 0, stream_why,
                     stream_whylen);
    if (virDomainResume(dom) == 0)
        return dom;
    errbuf_set(why, whylen, "created paused, but resume failed: %s", lv_msg());
    *status = lv_status(n);
    if (virDomainGetState(dom, &state, &reason, 0) < 0) {
        if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
            return dom; /* ran and is already gone */
        *status = lv_status(n);
        virDomainFree(dom);
        return NULL;
    }
    if (state != VIR_DOMAIN_PAUSED || reason != VIR_DOMAIN_PAUSED_USER)
        return dom; /* ran: running, shutting down, crashed, ... */
    virDomainDestroy(dom);
    virDomainFree(dom);
    if (*status == NODE_E_NOTFOUND || *status == NODE_OK)
        *status = NODE_E_LIBVIRT;
    return NULL;
}

/* ---- connection ---------------------------------------------------------- */

/* If uri is qemu:///embed?root=DIR, copy DIR (percent-decoded) to root. */
static int embed_root(const char *uri, char *root, size_t rootlen)
{
    const char *p;
    size_t o = 0;

    if (strncmp(uri, "qemu:///embed?", 14) != 0)
        return 0;
    p = strstr(uri + 13, "root=");
    if (!p || (p[-1] != '?' && p[-1] != '&'))
        return 0;
    for (p += 5; *p && *p != '&' && o + 1 < rootlen; p++) {
        if (*p == '%' && p[1] && p[2]) {
            char hex[3] = { p[1], p[2], 0 };
            root[o++] = (char)strtol(hex, NULL, 16);
            p += 2;
        } else {
            root[o++] = *p;
        }
    }
    root[o] = '\0';
    return o > 0;
}

static int mkdir_p(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* ---- the QEMU capabilities cache ------------------------------------------ */

/* Memory per guest in shoald (issue 13; docs/benchmarks.md "shoald memory
 * per instance"): libvirt 9.0 gives every domain it starts its own copy of
 * the QEMU capabilities (qemuProcessPrepareQEMUCaps ->
 * virQEMUCapsCacheLookupCopy) and keeps it while the domain runs: ~5,900
 * allocations, measured at ~230 KiB of shoald's RSS per running guest.
 * Most of it describes CPU models: the models QEMU knows for each
 * accelerator (264 <cpu> entries for qemu-system-x86_64 here), why each
 * unusable one is unusable (3,923 <blocker> lines) and the host CPU model
 * QEMU would offer (<hostCPU>, ~330 properties per accelerator). shoal's
 * domains name no CPU model (domxml.c), so QEMU runs its default model,
 * which is the one libvirt would have named for them (qemu64 on pc). The
 * machine types shoal never renders go too (caps_machine_unused); the rest
 * of the capabilities (flags, everything else domxml.c uses) stay as
 * probed. libvirt judges a cache file by what it records
 * (the QEMU binary's ctime, libvirt's version, the host), never by the
 * file's own times or contents, so a trimmed file stays in use until QEMU
 * or libvirt changes; then libvirt probes again and writes a full file,
 * which caps_preprobe makes it do in another process, and trims. */
#define CAPS_FILE_MAX (16u << 20)

/* Line l[0..len) without its leading and trailing blanks. */
static const char *caps_strip(const char *l, size_t *len)
{
    while (*len && (*l == ' ' || *l == '\t')) {
        l++;
        (*len)--;
    }
    while (*len && (l[*len - 1] == ' ' || l[*len - 1] == '\t' || l[*len - 1] == '\r'))
        (*len)--;
    return l;
}

static int caps_starts(const char *l, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(l, prefix, n) == 0;
}

static int caps_closed(const char *l, size_t len) /* ends with "/>" */
{
    return len >= 2 && l[len - 2] == '/' && l[len - 1] == '>';
}

/* What libvirt writes (virQEMUCapsFormatCPUModels and
 * virQEMUCapsFormatHostCPUModelInfo, one element a line): the elements
 * dropped, each a line or a block up to its end tag.
 *
 * And one flag, for start time (issue 13, docs/benchmarks.md "Boot
 * storms"): with cpu-unavailable-features, libvirt 9.0 reads the started
 * guest's CPU back (qemuProcessFetchGuestCPU) with a qom-list and one
 * qom-get per CPU property, ~400 QMP round trips per start against QEMU
 * 7.2, ~250 ms of it and most of QEMU's monitor thread in a storm. Without
 * the flag it reads the same CPUID data, enabled and filtered, as two
 * properties (feature-words, filtered-features) and checks them the same
 * way; it then refuses a domain CPU that names MSR features ("cannot be
 * reliably used with this QEMU"). shoal's domains name no CPU, so nothing
 * reads the data; QEMU's command line is the same either way. */
static const struct {
    const char *start, *end;
} caps_drop[] = {
    { "<cpu type='", "</cpu>" },
    { "<hostCPU type='", "</hostCPU>" },
    { "<blocker name='", NULL }, /* inside <cpu> blocks, also on their own */
    { "<flag name='cpu-unavailable-features'/>", NULL },
};

/* Does l[0..len) contain needle? */
static int caps_has(const char *l, size_t len, const char *needle)
{
    return memmem(l, len, needle, strlen(needle)) != NULL;
}

/* Machine types (virQEMUCapsFormatAccel: one closed <machine .../> line
 * each, per accelerator): dozens of versioned pc-i440fx-* and pc-q35-*
 * machines, isapc, microvm..., all copied into every domain. shoal renders
 * DOMXML_MACHINE only; libvirt resolves it through the line that names it
 * or has it as alias, and falls back to the default='yes' line for a
 * domain that names none, so those are kept. Any other machine is refused
 * at create ("does not support machine type"). */
static int caps_machine_unused(const char *l, size_t len)
{
    return caps_starts(l, len, "<machine type='") && caps_closed(l, len) &&
           !caps_has(l, len, " name='" DOMXML_MACHINE "'") &&
           !caps_has(l, len, " alias='" DOMXML_MACHINE "'") && !caps_has(l, len, " default='yes'");
}

/* Rewrite one cache file without the caps_drop elements and the unused
 * machine types (atomically: a temporary file renamed over it). Lines
 * dropped, or -1. */
static int caps_trim_file(int dfd, const char *name)
{
    char tmp[300];
    char *buf = NULL, *out = NULL;
    size_t len = 0, olen = 0;
    int fd = -1, ofd = -1, made = 0, dropped = 0, rc = -1;
    const char *end = NULL; /* inside a dropped block until this end tag */
    struct stat st;

    fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (uint64_t)st.st_size > CAPS_FILE_MAX)
        goto out;
    buf = malloc((size_t)st.st_size);
    out = malloc((size_t)st.st_size);
    if (!buf || !out)
        goto out;
    while (len < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (buf + i)) + 1 : len - i, tl = nl ? n - 1 : n;
        const char *t = caps_strip(buf + i, &tl);
        int drop = end != NULL;
        if (end) {
            if (caps_starts(t, tl, end))
                end = NULL;
        } else {
            for (size_t k = 0; k < sizeof caps_drop / sizeof caps_drop[0] && !drop; k++) {
                if (!caps_starts(t, tl, caps_drop[k].start))
                    continue;
                drop = 1;
                if (caps_drop[k].end && !caps_closed(t, tl))
                    end = caps_drop[k].end;
            }
            drop = drop || caps_machine_unused(t, tl);
        }
        if (drop)
            dropped++;
        else {
            memcpy(out + olen, buf + i, n);
            olen += n;
        }
        i += n;
    }
    if (end) /* a block without its end: not the format we know, leave it */
        dropped = 0;
    rc = dropped;
    if (!dropped)
        goto out;
    rc = -1;
    if (snprintf(tmp, sizeof tmp, ".%s.shoal-trim", name) >= (int)sizeof tmp)
        goto out;
    ofd =
        openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, st.st_mode & 0777);
    if (ofd < 0)
        goto out;
    made = 1;
    for (size_t w = 0; w < olen;) {
        ssize_t r = write(ofd, out + w, olen - w);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto out;
        w += (size_t)r;
    }
    if (close(ofd) != 0) {
        ofd = -1;
        goto out;
    }
    ofd = -1;
    if (renameat(dfd, tmp, dfd, name) != 0)
        goto out;
    rc = dropped;
out:
    if (ofd >= 0)
        close(ofd);
    if (rc < 0 && made)
        (void)unlinkat(dfd, tmp, 0);
    if (fd >= 0)
        close(fd);
    free(buf);
    free(out);
    return rc;
}

int node_caps_cache_trim(const char *root)
{
    char dir[4200];
    DIR *d;
    struct dirent *e;
    int total = 0;

    if (snprintf(dir, sizeof dir, "%s/cache/qemu/capabilities", root) >= (int)sizeof dir)
        return -1;
    d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        int r;
        if (e->d_name[0] == '.' || n < 5 || strcmp(e->d_name + n - 4, ".xml") != 0)
            continue;
        r = caps_trim_file(dirfd(d), e->d_name);
        if (r < 0)
            total = -1;
        else if (total >= 0)
            total += r;
    }
    closedir(d);
    return total;
}

/* ---- probing QEMU outside this process -------------------------------------- */

#define CAPS_PROBE_TIMEOUT_MS 120000u /* libvirt's probe takes ~8 s here */

static atomic_int caps_preprobed; /* caps_preprobe ran in this process */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) != 0 && errno != ENOENT;
}

/* Have `virsh` open a throwaway embedded root whose cache/ is ROOT's, so
 * that libvirt probes QEMU (or finds ROOT's cache valid) in that process,
 * then trim the cache: this process's own driver loads the trimmed file
 * instead of keeping the full probe it would make itself on a fresh root or
 * after a QEMU or libvirt upgrade. ~0.3 s with a valid cache. Best effort:
 * without virsh, libvirt probes in this process as before. */
static int guard_dir(const char *dir, unsigned gid, char *err, size_t errlen);
static int cgroup_has(const char *ctl);

static void caps_preprobe(const char *root, unsigned gid)
{
    char probe[4200], path[4300], cache[4200], uri[4400];
    char *argv[] = { "virsh", "-q", "-c", uri, "version", NULL };
    const struct child_opts run = { .timeout_ms = CAPS_PROBE_TIMEOUT_MS };
    FILE *in, *out;

    if (snprintf(probe, sizeof probe, "%s/.capsprobe.XXXXXX", root) >= (int)sizeof probe ||
        !mkdtemp(probe))
        return;
    /* QEMU probes as its own user: it must get through like in ROOT. */
    if (guard_dir(probe, gid, NULL, 0) != NODE_OK)
        goto out;
    snprintf(cache, sizeof cache, "%s/cache", root);
    (void)mkdir_p(cache);
    snprintf(path, sizeof path, "%s/cache", probe);
    if (symlink(cache, path) != 0)
        goto out;
    snprintf(path, sizeof path, "%s/etc", probe);
    if (mkdir(path, 0755) != 0)
        goto out;
    /* The same qemu.conf (the user QEMU runs as decides what it can use). */
    snprintf(cache, sizeof cache, "%s/etc/qemu.conf", root);
    snprintf(path, sizeof path, "%s/etc/qemu.conf", probe);
    in = fopen(cache, "r");
    out = in ? fopen(path, "w") : NULL;
    if (in && out) {
        char buf[4096];
        size_t k;
        while ((k = fread(buf, 1, sizeof buf, in)) > 0)
            fwrite(buf, 1, k, out);
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    snprintf(uri, sizeof uri, "qemu:///embed?root=%s", probe);
    if (child_run(argv, &run, NULL, NULL, 0) == CHILD_E_START)
        goto out;
    (void)node_caps_cache_trim(root);
out:
    /* FTW_PHYS: the cache/ symlink goes, ROOT's cache stays. */
    (void)nftw(probe, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Does the qemu.conf text buf set key ("key = ...")? Comments (#) and
 * other keys that merely contain the word do not count. */
static int conf_sets(const char *buf, const char *key)
{
    size_t kl = strlen(key);
    for (const char *line = buf; line && *line;) {
        const char *p = line + strspn(line, " \t");
        if (!strncmp(p, key, kl) && p[kl + strspn(p + kl, " \t")] == '=')
            return 1;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return 0;
}

/* The whole of a small text file (heap, NUL-terminated; "" when absent),
 * or NULL when it cannot be read or is larger than max bytes. */
static char *read_text(const char *path, size_t max)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    if (!f)
        return errno == ENOENT ? calloc(1, 1) : NULL;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            char *b = n + 4096 > max ? NULL : realloc(buf, cap = n + 4096 + 1);
            if (!b) {
                if (n + 4096 > max)
                    errno = EFBIG;
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        buf[n] = '\0';
        if (r < 4096)
            break;
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* Settings shoald decides for an embedded root, not the operator's file:
 * QEMU's user and what confines it (node_opts.qemu_user). */
static const char *const conf_owned[] = { "user", "group", "dynamic_ownership",
                                          "clear_emulator_capabilities", "seccomp_sandbox" };

#define CONF_BEGIN      "# shoal: begin"
#define CONF_END        "# shoal: end"
#define CONF_OLD        "# written by shoal" /* roots written before issue 16 */
#define CONF_OLD_KEYS_N 4

/* Does line (up to its newline) set key? */
static int line_sets(const char *line, const char *key)
{
    const char *p = line + strspn(line, " \t");
    size_t kl = strlen(key);
    return !strncmp(p, key, kl) && p[kl + strspn(p + kl, " \t")] == '=';
}

/*
 * Make ROOT/etc/qemu.conf hold what every embedded root needs
 * (docs/node.md, "Connection"). The file is the operator's, except for
 * one block between CONF_BEGIN and CONF_END that shoald writes again at
 * every open (atomically, only when it changed):
 *   remember_owner = 0     unless the operator's part sets it: libvirt's
 *                          default (1) runs three relabel transactions per
 *                          start, each in a fork of this process (40-60 ms
 *                          of CPU at 400 running; docs/benchmarks.md)
 *   stdio_handler = "file" unless the operator's part sets it: without it
 *                          every start fails for lack of virtlogd (measured)
 *   user, group            QEMU's user and its primary group (numeric)
 *   dynamic_ownership = 0  libvirt relabels nothing: it would chown the
 *                          shared image file of every guest to QEMU's user
 *                          (who could then rewrite it for all guests) and
 *                          back to root at each stop. node_start hands
 *                          QEMU what it opens itself (see there); libvirt
 *                          opens the console and status files and the tap
 *                          as root and passes descriptors
 *   clear_emulator_capabilities = 1, seccomp_sandbox = 1  (libvirt's
 *                          defaults, written so that they are visible)
 * The keys of conf_owned in the operator's part are refused: QEMU's user is
 * node_opts.qemu_user (shoald --qemu-user), and shoald prepares files for
 * the user it knows. The "# written by shoal" lines of roots written
 * before issue 16 (which ran QEMU as root) are replaced by the block.
 */
#define QEMU_CONF_MAX (1024 * 1024)
static int write_qemu_conf(const char *root, unsigned uid, unsigned gid, char *err, size_t errlen)
{
    char dir[4096], path[4200], tmp[4300] = "";
    char *buf = NULL, *keep = NULL, *text = NULL;
    FILE *f = NULL;
    int rc = NODE_E_IO, in_block = 0, in_old = 0;
    size_t kn = 0;

    if (root[0] != '/') {
        errbuf_set(err, errlen, "embed root '%s' is not an absolute path", root);
        rc = NODE_E_INVAL;
        goto out;
    }
    if (strlen(root) + 16 > sizeof dir) {
        errbuf_set(err, errlen, "embed root '%s' is too long", root);
        rc = NODE_E_INVAL;
        goto out;
    }
    if (snprintf(dir, sizeof dir, "%s/etc", root) >= (int)sizeof dir) {
        errbuf_set(err, errlen, "embed root '%s' is too long", root);
        rc = NODE_E_INVAL;
        goto out;
    }
    if (mkdir_p(dir) != 0) {
        errbuf_set(err, errlen, "cannot create '%s': %s", dir, strerror(errno));
        goto out;
    }
    snprintf(path, sizeof path, "%s/qemu.conf", dir);
    if (!(buf = read_text(path, QEMU_CONF_MAX))) {
        errbuf_set(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        goto out;
    }
    /* The operator's part: every line outside shoal's block and the old
     * "written by shoal" lines. */
    if (!(keep = malloc(strlen(buf) + 2))) {
        errbuf_set(err, errlen, "out of memory reading '%s'", path);
        rc = NODE_E_NOMEM;
        goto out;
    }
    for (const char *line = buf; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        int drop = 0;
        if (!strncmp(line, CONF_BEGIN, strlen(CONF_BEGIN))) {
            in_block = 1;
            drop = 1;
        } else if (in_block) {
            drop = 1;
            if (!strncmp(line, CONF_END, strlen(CONF_END)))
                in_block = 0;
        } else if (!strncmp(line, CONF_OLD, strlen(CONF_OLD))) {
            in_old = drop = 1;
        } else if (in_old &&
                   (line_sets(line, "remember_owner") || line_sets(line, "stdio_handler") ||
                    line_sets(line, "user") || line_sets(line, "group"))) {
            drop = 1;
        } else {
            in_old = 0;
        }
        if (!drop) {
            memcpy(keep + kn, line, len);
            kn += len;
        }
        line += len;
    }
    if (kn && keep[kn - 1] != '\n')
        keep[kn++] = '\n';
    keep[kn] = '\0';
    for (size_t i = 0; i < sizeof conf_owned / sizeof conf_owned[0]; i++) {
        if (conf_sets(keep, conf_owned[i])) {
            errbuf_set(err, errlen,
                       "'%s' sets '%s': shoald decides QEMU's user and confinement for its "
                       "embedded root (choose the user with --qemu-user; docs/node.md)",
                       path, conf_owned[i]);
            rc = NODE_E_INVAL;
            goto out;
        }
    }
    if (asprintf(&text,
                 "%s" CONF_BEGIN " (shoald rewrites this block at every start; docs/node.md, "
                 "\"Connection\")\n%s%s"
                 "user = \"+%u\"\ngroup = \"+%u\"\ndynamic_ownership = 0\n"
                 "clear_emulator_capabilities = 1\nseccomp_sandbox = 1\n" CONF_END "\n",
                 keep, conf_sets(keep, "remember_owner") ? "" : "remember_owner = 0\n",
                 conf_sets(keep, "stdio_handler") ? "" : "stdio_handler = \"file\"\n", uid,
                 gid) < 0) {
        text = NULL;
        errbuf_set(err, errlen, "out of memory writing '%s'", path);
        rc = NODE_E_NOMEM;
        goto out;
    }
    if (!strcmp(text, buf)) {
        rc = NODE_OK;
        goto out;
    }
    snprintf(tmp, sizeof tmp, "%s.shoal-tmp", path);
    f = fopen(tmp, "w");
    if (!f || fputs(text, f) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        errbuf_set(err, errlen, "cannot write '%s': %s", tmp, strerror(errno));
        goto out;
    }
    if (fclose(f) != 0) {
        f = NULL;
        errbuf_set(err, errlen, "cannot write '%s': %s", tmp, strerror(errno));
        goto out;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        errbuf_set(err, errlen, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        goto out;
    }
    rc = NODE_OK;
out:
    if (f)
        fclose(f);
    if (rc != NODE_OK && tmp[0])
        unlink(tmp); /* a half-written or unrenamed copy */
    free(text);
    free(keep);
    free(buf);
    return rc;
}

/* QEMU's user for node_opts.qemu_user (NULL: NODE_QEMU_USER_DEFAULT). */
int node_qemu_ids(const char *user, unsigned *uid, unsigned *gid, char *err, size_t errlen)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    int e;

    if (!user || !user[0])
        user = NODE_QEMU_USER_DEFAULT;
    e = getpwnam_r(user, &pw, buf, sizeof buf, &res);
    if (e != 0 || !res) {
        errbuf_set(err, errlen,
                   "QEMU's user '%s' does not exist%s%s: scripts/setup-debian.sh creates "
                   "'" NODE_QEMU_USER_DEFAULT "' (or: groupadd --system " NODE_QEMU_USER_DEFAULT
                   "; useradd --system --no-create-home --shell /usr/sbin/nologin "
                   "-g " NODE_QEMU_USER_DEFAULT " -G kvm " NODE_QEMU_USER_DEFAULT
                   "); --qemu-user names another (--qemu-user root runs every guest's QEMU "
                   "as root: not recommended)",
                   user, e ? ": " : "", e ? strerror(e) : "");
        return NODE_E_INVAL;
    }
    *uid = (unsigned)pw.pw_uid;
    *gid = (unsigned)pw.pw_gid;
    return NODE_OK;
}

/* Let QEMU's group (and nobody else) through dir: root-owned, mode 0710. */
int node_sock_dir(struct node *n, const char *dir, char *err, size_t errlen)
{
    if ((mkdir(dir, 0700) != 0 && errno != EEXIST) ||
        (n->embedded
             ? chown(dir, (uid_t)n->qemu_uid, (gid_t)n->qemu_gid) != 0 || chmod(dir, 0700) != 0
             : chmod(dir, 0711) != 0)) {
        errbuf_set(err, errlen, "cannot prepare socket directory '%s' for QEMU: %s", dir,
                   strerror(errno));
        return NODE_E_IO;
    }
    return NODE_OK;
}

static int guard_dir(const char *dir, unsigned gid, char *err, size_t errlen)
{
    if (chown(dir, 0, (gid_t)gid) != 0 || chmod(dir, 0710) != 0) {
        errbuf_set(err, errlen, "cannot make '%s' root:%u 0710: %s", dir, gid, strerror(errno));
        return NODE_E_IO;
    }
    return NODE_OK;
}

/* The entry of domain `name`, under n->smu; NULL if none. */
static struct serials *serials_find(struct node *n, const char *name)
{
    for (struct serials *e = n->serials; e; e = e->next)
        if (!strcmp(e->name, name))
            return e;
    return NULL;
}

/* Under n->smu: the entry of `name`, made if missing; NULL without memory. */
static struct serials *serials_get(struct node *n, const char *name)
{
    struct serials *e = serials_find(n, name);
    if (!e && (e = calloc(1, sizeof *e))) {
        snprintf(e->name, sizeof e->name, "%s", name);
        e->next = n->serials;
        n->serials = e;
    }
    return e;
}

/* Under n->smu: free the entry once nothing uses it. */
static void serials_put(struct node *n, struct serials *e)
{
    if (e->port[0] || e->port[1] || e->pending || e->fetching)
        return;
    for (struct serials **pp = &n->serials; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    }
    free(e);
}

/* Every domain's streams, with the connection that carried them. A fetch
 * or start in flight keeps its entry (it ends on an error). */
static void serials_drop_all(struct node *n)
{
    struct nstream *gone[64];
    size_t ng;
    do {
        ng = 0;
        pthread_mutex_lock(&n->smu);
        for (struct serials *e = n->serials, *next; e && ng + 2 <= 64; e = next) {
            next = e->next;
            for (int p = 0; p < 2; p++) {
                if (e->port[p])
                    gone[ng++] = e->port[p];
                e->port[p] = NULL;
            }
            serials_put(n, e);
        }
        pthread_mutex_unlock(&n->smu);
        for (size_t i = 0; i < ng; i++)
            nstream_close(gone[i], 1);
    } while (ng);
}

/* node_start, before the create: no fetch of the domain's files from here
 * on (one in flight is waited for), so that none replaces a local file a
 * stream appends to. 0, or -1 without memory (then no streams). */
static int serials_begin(struct node *n, const char *name)
{
    struct serials *e;
    struct nstream *old[2] = { NULL, NULL };

    pthread_mutex_lock(&n->smu);
    /* The fetch's end frees an entry nothing else holds (fetch_end): look
     * it up again after each wait. */
    while ((e = serials_get(n, name)) && e->fetching)
        pthread_cond_wait(&n->scv, &n->smu);
    if (e) {
        e->pending = 1;
        for (int p = 0; p < 2; p++) { /* a previous run's, not ended */
            old[p] = e->port[p];
            e->port[p] = NULL;
        }
    }
    pthread_mutex_unlock(&n->smu);
    nstream_close(old[0], 0);
    nstream_close(old[1], 0);
    return e ? 0 : -1;
}

/* node_start, after the create (dom NULL: it failed): open both ports as
 * streams into the local files while the domain is still paused, so that
 * they carry the run from its first byte. A port that does not open is
 * left to the file fetch; why[whylen] says why ("" when both opened).
 * force: node_serial_adopt's (nodestream.h nstream_open). */
static void serials_open(struct node *n, virDomainPtr dom, const char *name, const char *console,
                         const char *status, int force, char *why, size_t whylen)
{
    const char *path[2] = { console, status };
    struct nstream *port[2] = { NULL, NULL };
    struct serials *e;

    if (why && whylen)
        why[0] = '\0';
    /* A domain created on a connection the node has since replaced (a
     * start that waited on a hung host through a reconnect): streams on it
     * would hold that connection open for good, as no reap names it. */
    pthread_mutex_lock(&n->cmu);
    int stale = dom && virDomainGetConnect(dom) != n->conn;
    pthread_mutex_unlock(&n->cmu);
    if (stale) {
        errbuf_set(why, whylen, "the connection to '%s' was replaced during the start", n->uri);
        dom = NULL;
    }
    for (int p = 0; dom && p < 2; p++) {
        if (nstream_open(dom, p ? "serial1" : "serial0", path[p], force, &port[p], why, whylen) !=
            0)
            node_stream_failures++;
        else
            node_stream_opens++;
    }
    pthread_mutex_lock(&n->smu);
    e = serials_find(n, name);
    if (e) {
        e->port[0] = port[0];
        e->port[1] = port[1];
        e->pending = 0;
        serials_put(n, e);
    }
    pthread_mutex_unlock(&n->smu);
    if (!e) { /* not begun (no memory) */
        nstream_close(port[0], 0);
        nstream_close(port[1], 0);
    }
}

/* Under n->smu: 1 if `name` has a stream, or its start is opening them. */
static int serials_held(struct node *n, const char *name)
{
    struct serials *e = serials_find(n, name);
    return e && (e->pending || e->port[0] || e->port[1]);
}

int node_serial_adopt(struct node *n, const char *name, const char *console, uint64_t console_max,
                      const char *status, uint64_t status_max, int *paused_ms, char *err,
                      size_t errlen)
{
    virDomainPtr dom = NULL;
    virConnectPtr conn = NULL;
    char why[NODE_ERR_MAX] = "";
    int rc, held, state = 0, reason = 0, paused = 0;
    struct timespec t0, t1;

    *paused_ms = -1;
    if (!n || !n->remote || !n->streams)
        return NODE_OK;
    if ((rc = need_conn(n, "stream", name, &conn, err, errlen)) != NODE_OK)
        return rc;
    pthread_mutex_lock(&n->smu);
    held = serials_held(n, name);
    pthread_mutex_unlock(&n->smu);
    if (held)
        goto out;
    if (!(dom = virDomainLookupByName(conn, name)) ||
        virDomainGetState(dom, &state, &reason, 0) < 0) {
        rc = lv_status(n);
        if (rc == NODE_E_NOTFOUND)
            rc = NODE_OK; /* gone meanwhile: its end fetches the files */
        else
            errbuf_set(err, errlen, "cannot look up '%s': %s", name, lv_msg());
        goto out;
    }
    if (state != VIR_DOMAIN_RUNNING && state != VIR_DOMAIN_PAUSED)
        goto out; /* ending: its end fetches the files */
    /* The stitch (docs/node.md "Remote hosts"): while the guest writes
     * nothing, the local files become the host's logs, then the streams
     * carry what it writes once it runs again. Nothing twice, nothing
     * missing, nothing out of order. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (state == VIR_DOMAIN_RUNNING) {
        if (virDomainSuspend(dom) < 0) {
            rc = lv_status(n);
            errbuf_set(err, errlen, "cannot pause '%s' to stream its ports: %s", name, lv_msg());
            goto out;
        }
        paused = 1;
    }
    rc = node_fetch_run_file(n, name, ".console", console, console_max, err, errlen);
    if (rc == NODE_OK)
        rc = node_fetch_run_file(n, name, ".status", status, status_max, err, errlen);
    if (rc == NODE_OK && serials_begin(n, name) == 0) {
        serials_open(n, dom, name, console, status, 1, why, sizeof why);
        if (why[0]) {
            errbuf_set(err, errlen, "%s", why);
            rc = NODE_E_LIBVIRT;
        }
    }
    if (paused && virDomainResume(dom) < 0) {
        /* left paused: the next reconcile resumes it (node_resume_started) */
        if (rc == NODE_OK)
            errbuf_set(err, errlen, "'%s' paused to stream its ports, resume failed: %s", name,
                       lv_msg());
        rc = lv_status(n);
        if (rc == NODE_OK)
            rc = NODE_E_LIBVIRT;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (paused)
        *paused_ms = (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
out:
    if (dom)
        virDomainFree(dom);
    conn_put(conn);
    return rc;
}

static int dom_gone(virDomainPtr dom);

/* node_destroy and node_shutdown, with dom found running: abort the
 * domain's streams that still carry its ports before the host is asked to
 * stop it (nodestream.h nstream_abort: while the domain lives no release
 * of it can meet the close on the host). A stream that saw its port end is
 * left to node_serial_done: its domain is going already. The run's end
 * fetches both files from the host, so nothing the guest wrote is lost;
 * until then they are not followed live. */
static void serials_abort(struct node *n, virDomainPtr dom, const char *name)
{
    struct nstream *s[2] = { NULL, NULL };
    struct serials *e;

    if (!n->streams || dom_gone(dom))
        return;
    pthread_mutex_lock(&n->smu);
    if ((e = serials_find(n, name))) {
        for (int p = 0; p < 2; p++) {
            if (e->port[p] && nstream_state(e->port[p]) == NSTREAM_OPEN) {
                s[p] = e->port[p];
                e->port[p] = NULL;
            }
        }
        serials_put(n, e);
    }
    pthread_mutex_unlock(&n->smu);
    for (int p = 0; p < 2; p++) /* a failed call: the host frees it at the connection's close */
        if (s[p] && nstream_abort(s[p]) == 0)
            node_stream_aborts++;
}

int node_serial_live(struct node *n, const char *name, int port)
{
    struct serials *e;
    int live = 0;
    if (!n || !n->streams || port < 0 || port > 1)
        return 0;
    pthread_mutex_lock(&n->smu);
    e = serials_find(n, name);
    live = e && e->port[port] && nstream_state(e->port[port]) != NSTREAM_BROKEN;
    pthread_mutex_unlock(&n->smu);
    return live;
}

int node_serial_done(struct node *n, const char *name, int port, int timeout_ms)
{
    struct nstream *s = NULL;
    struct serials *e;
    int ended = 0;

    if (!n || !n->streams || port < 0 || port > 1)
        return 0;
    pthread_mutex_lock(&n->smu);
    if ((e = serials_find(n, name))) {
        s = e->port[port];
        e->port[port] = NULL;
        serials_put(n, e);
    }
    pthread_mutex_unlock(&n->smu);
    if (s) {
        ended = nstream_wait_end(s, timeout_ms) != NSTREAM_OPEN;
        nstream_close(s, 0);
    }
    virConnectPtr conn = conn_get(n);
    if (conn)
        nstream_reap(conn, 0); /* earlier runs' streams now due */
    conn_put(conn);
    return ended;
}

/* node_fetch_run_file: 1 if the port is streamed (or its streams are being
 * opened): no fetch. Else the fetch is registered (serials_begin waits for
 * it) and 0 returned; fetch_end ends it. */
static int fetch_begin(struct node *n, const char *name, int port)
{
    struct serials *e;
    int skip = 0;
    pthread_mutex_lock(&n->smu);
    e = serials_get(n, name);
    if (e) {
        skip = e->pending || (e->port[port] && nstream_state(e->port[port]) != NSTREAM_BROKEN);
        if (!skip)
            e->fetching++;
    }
    pthread_mutex_unlock(&n->smu);
    return skip;
}

static void fetch_end(struct node *n, const char *name)
{
    struct serials *e;
    pthread_mutex_lock(&n->smu);
    if ((e = serials_find(n, name)) && e->fetching) {
        e->fetching--;
        pthread_cond_broadcast(&n->scv);
        serials_put(n, e);
    }
    pthread_mutex_unlock(&n->smu);
}

void node_stream_counts(unsigned long long *opens, unsigned long long *failures,
                        unsigned long long *aborts)
{
    *opens = node_stream_opens;
    *failures = node_stream_failures;
    *aborts = node_stream_aborts;
}

static void conn_drop(struct node *n)
{
    virConnectPtr conn = n->conn; /* this thread is the only writer */
    if (!conn)
        return;
    pthread_mutex_lock(&n->cmu);
    n->conn = NULL; /* new calls fail; calls under way keep their reference */
    pthread_mutex_unlock(&n->cmu);
    serials_drop_all(n);
    nstream_reap(conn, 1); /* ended streams let go: the host frees them */
    if (n->lifecycle_cb >= 0)
        virConnectDomainEventDeregisterAny(conn, n->lifecycle_cb);
    if (n->reboot_cb >= 0)
        virConnectDomainEventDeregisterAny(conn, n->reboot_cb);
    if (n->close_registered)
        virConnectUnregisterCloseCallback(conn, on_close);
    n->lifecycle_cb = n->reboot_cb = -1;
    n->close_registered = 0;
    virConnectClose(conn);
    atomic_store(&n->alive, 0);

    /* Wait (bounded) until libvirt has released our callbacks. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += 5;
    pthread_mutex_lock(&n->lock);
    while (n->cb_refs > 0 && pthread_cond_timedwait(&n->cb_gone, &n->lock, &ts) == 0)
        ;
    pthread_mutex_unlock(&n->lock);
}

/* The URI to open for uri. Once a process has opened an embedded QEMU
 * driver (shoald's local host), libvirt routes every later "qemu:///..."
 * URI to that in-process driver, which rejects /system and /session
 * ("Missing URI parameter 'root'"). Naming the transport ("qemu+unix")
 * sends them through the remote driver to the daemon's socket, which is
 * what they mean anyway; other URIs are opened as given. */
static void open_uri(const char *uri, char *out, size_t outlen)
{
    size_t k = strncmp(uri, "qemu:///system", 14) == 0    ? 14
               : strncmp(uri, "qemu:///session", 15) == 0 ? 15
                                                          : 0;
    if (k && (uri[k] == '\0' || uri[k] == '?'))
        snprintf(out, outlen, "qemu+unix://%s", uri + 7);
    else
        snprintf(out, outlen, "%s", uri);
}

static int conn_make(struct node *n, char *err, size_t errlen)
{
    char root[4096] = "", uri[4200];
    int rc;

    if (embed_root(n->uri, root, sizeof root)) {
        n->embedded = 1;
        rc = node_qemu_ids(n->opts.qemu_user, &n->qemu_uid, &n->qemu_gid, err, errlen);
        if (rc != NODE_OK)
            goto out;
        rc = write_qemu_conf(root, n->qemu_uid, n->qemu_gid, err, errlen);
        if (rc != NODE_OK)
            goto out;
        /* QEMU reads its master key under ROOT/lib; nobody but its group
         * needs to get in (libvirt's files inside are root's). */
        rc = guard_dir(root, n->qemu_gid, err, errlen);
        if (rc != NODE_OK)
            goto out;
        /* Best effort: a cache that is not trimmed costs memory and start
         * time only. Only the process's first open loads the capabilities. */
        if (!atomic_exchange(&caps_preprobed, 1))
            caps_preprobe(root, n->qemu_gid);
        /* Memory per guest (issue 13): the embedded driver forks QEMU from
         * this process, and the flag is inherited across fork and execve.
         * QEMU madvises guest RAM, its ROMs and the TCG code buffer
         * MADV_HUGEPAGE, so the first touch of each costs a 2 MiB page. */
        if (!n->opts.guest_thp)
            (void)prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    n->remote = nstore_uri_remote(n->uri);
    n->streams = node_streams_wanted(n->uri, n->remote);
    open_uri(n->uri, uri, sizeof uri);
    virConnectPtr opened = virConnectOpen(uri);
    pthread_mutex_lock(&n->cmu);
    n->conn = opened;
    pthread_mutex_unlock(&n->cmu);
    if (!n->conn) {
        const char *m = lv_msg();
        errbuf_set(err, errlen, "cannot connect to '%s': %s%s", n->uri, m,
                   strstr(m, "parse user")
                       ? " (libvirt's QEMU driver needs the "
                         "system user 'libvirt-qemu' to exist even when embedded; "
                         "see docs/node.md)"
                       : "");
        rc = NODE_E_CONN;
        goto out;
    }
    virConnSetErrorFunc(n->conn, NULL, lv_quiet);
    /* Opening probed QEMU if the cache was missing or stale: this process
     * keeps the full copy, the next start loads the trimmed file. */
    if (root[0])
        (void)node_caps_cache_trim(root);
    cb_hold(n);
    n->lifecycle_cb =
        virConnectDomainEventRegisterAny(n->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                         VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), n, cb_free);
    if (n->lifecycle_cb < 0)
        cb_free(n);
    cb_hold(n);
    n->reboot_cb =
        virConnectDomainEventRegisterAny(n->conn, NULL, VIR_DOMAIN_EVENT_ID_REBOOT,
                                         VIR_DOMAIN_EVENT_CALLBACK(on_reboot), n, cb_free);
    if (n->reboot_cb < 0)
        cb_free(n);
    if (n->lifecycle_cb < 0 || n->reboot_cb < 0) {
        errbuf_set(err, errlen, "cannot register domain events on '%s': %s", n->uri, lv_msg());
        rc = NODE_E_LIBVIRT;
        goto out;
    }
    /* Not every driver supports close callbacks (embed, test); that is fine:
     * those connections cannot be lost. */
    /* Not counted in cb_refs: drivers without close support (embed, test)
     * accept the registration but never call a free callback, and
     * virConnectUnregisterCloseCallback is synchronous with on_close (both
     * hold the connection's close-callback lock). */
    n->close_registered = virConnectRegisterCloseCallback(n->conn, on_close, n, NULL) == 0;
    atomic_store(&n->alive, 1);
    rc = NODE_OK;
out:
    if (rc != NODE_OK)
        conn_drop(n);
    return rc;
}

/*
 * Wait until libvirt has adopted every running domain. The embed/system
 * QEMU drivers reconnect to surviving QEMUs in background threads, each
 * holding a domain job meanwhile. virDomainGetControlInfo reports a held
 * job or busy monitor; we also require the domain list to be stable over
 * two successive polls. Domains whose reconnect fails vanish from the list.
 * Fills the uuid -> id cache as a side effect.
 */
static int settle(struct node *n, char *err, size_t errlen)
{
    uint64_t deadline = now_ms() + n->opts.settle_timeout_ms;
    int prev = -1;
    int rc = NODE_E_TIMEOUT;

    for (;;) {
        virDomainPtr *doms = NULL;
        int count = virConnectListAllDomains(n->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
        int busy = 0;
        if (count < 0) {
            errbuf_set(err, errlen, "cannot list domains on '%s': %s", n->uri, lv_msg());
            rc = lv_status(n);
            goto out;
        }
        for (int i = 0; i < count; i++) {
            virDomainControlInfo ci;
            char id[DOMXML_ID_MAX + 1];
            unsigned char uuid[VIR_UUID_BUFLEN];
            if (virDomainGetControlInfo(doms[i], &ci, 0) == 0 &&
                ci.state != VIR_DOMAIN_CONTROL_OK && ci.state != VIR_DOMAIN_CONTROL_ERROR)
                busy = 1;
            if (dom_instance_id(doms[i], id, sizeof id) && virDomainGetUUID(doms[i], uuid) == 0)
                ids_put(n, uuid, id);
            virDomainFree(doms[i]);
        }
        free(doms);
        if (!busy && count == prev) {
            rc = NODE_OK;
            goto out;
        }
        prev = busy ? -1 : count;
        if (now_ms() >= deadline) {
            errbuf_set(err, errlen, "domains on '%s' still being adopted after %u ms", n->uri,
                       n->opts.settle_timeout_ms);
            goto out;
        }
        sleep_ms(count ? 100 : 20);
    }
out:
    return rc;
}

/* ---- canary ------------------------------------------------------------- */

static int file_contains(const char *path, const char *needle)
{
    char buf[4096];
    FILE *f = fopen(path, "r");
    size_t n;
    if (!f)
        return 0;
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, needle) != NULL;
}

static const char *canary_path(const struct node *n)
{
    if (n->opts.canary_path)
        return n->opts.canary_path;
    if (instpath_get(INSTPATH_CANARY)) /* PREFIX/bin/shoald's PREFIX/share */
        return instpath_get(INSTPATH_CANARY);
    if (access(NODE_CANARY_INSTALLED, R_OK) == 0)
        return NODE_CANARY_INSTALLED;
    if (SHOAL_CANARY_BUILD_PATH[0] && access(SHOAL_CANARY_BUILD_PATH, R_OK) == 0)
        return SHOAL_CANARY_BUILD_PATH;
    return NODE_CANARY_INSTALLED;
}

/* Directory for canary files and the verdict cache, or NULL. */
static const char *work_dir(const struct node *n, char *buf, size_t len)
{
    if (n->opts.state_dir)
        return n->opts.state_dir;
    if (embed_root(n->uri, buf, len))
        return buf;
    return NULL;
}

/* Read the cycle count a bench canary printed ("ok cycles=<hex>"); 0 if none. */
static uint64_t canary_cycles(const char *path)
{
    char buf[256];
    FILE *f = fopen(path, "r");
    size_t n;
    const char *p;
    if (!f)
        return 0;
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    p = strstr(buf, "cycles=");
    return p ? strtoull(p + 7, NULL, 16) : 0;
}

/* Boot the canary in bench mode with domain type virt; 1 if it powered off
 * cleanly. *cycles receives the TSC cycles its fixed loop took. The reason
 * (why not, or how long it took) goes to n->virt_reason. */
static int canary_boot(struct node *n, enum domxml_virt virt, uint64_t *cycles)
{
    const char *what = virt == DOMXML_VIRT_KVM ? "kvm" : "qemu";
    char dirbuf[4096], console[4200], status[4200], name[64], xml_err[256];
    char why[NODE_ERR_MAX];
    int rc;
    const char *dir = work_dir(n, dirbuf, sizeof dirbuf);
    char *xml = NULL;
    virDomainPtr dom = NULL;
    uint64_t t0, deadline;
    int ok = 0, state = 0, reason = 0;
    struct nstore_stage stage;

    *cycles = 0;
    memset(&stage, 0, sizeof stage);
    static atomic_int seq;

    if (!dir)
        dir = "/tmp";
    snprintf(name, sizeof name, "shoal-canary-%ld-%d", (long)getpid(), atomic_fetch_add(&seq, 1));
    snprintf(console, sizeof console, "%s/%s.console", dir, name);
    snprintf(status, sizeof status, "%s/%s.status", dir, name);
    struct domxml_spec spec = {
        .name = name,
        .virt = virt,
        .boot = DOMXML_BOOT_PVH,
        .memory_mib = 16,
        .vcpus = 1,
        .kernel = canary_path(n),
        .cmdline = "canary=bench",
        .console_log = console,
        .status_log = status,
    };
    if (access(spec.kernel, R_OK) != 0) {
        errbuf_set(n->virt_reason, sizeof n->virt_reason, "canary '%s' not found", spec.kernel);
        goto out;
    }
    /* A remote host gets the canary and its serial files as volumes, as a
     * guest does (nodestore.h); its console is fetched back below. */
    if (n->remote && nstore_stage(n->conn, &spec, &stage, why, sizeof why) != NSTORE_OK) {
        errbuf_set(n->virt_reason, sizeof n->virt_reason, "%s canary not delivered: %s", what, why);
        goto out;
    }
    if (domxml_render(&spec, &xml, xml_err, sizeof xml_err) != DOMXML_OK) {
        errbuf_set(n->virt_reason, sizeof n->virt_reason, "canary: %s", xml_err);
        goto out;
    }
    t0 = now_ms();
    dom = create_running(n, n->conn, xml, 0, 0, 0, NULL, 0, NULL, NULL, 0, &rc, why, sizeof why);
    if (!dom) {
        errbuf_set(n->virt_reason, sizeof n->virt_reason, "%s canary did not start: %s", what, why);
        goto out;
    }
    deadline = t0 + n->opts.canary_timeout_ms;
    for (;;) {
        if (virDomainGetState(dom, &state, &reason, 0) < 0) {
            state = VIR_DOMAIN_SHUTOFF; /* transient domain vanished */
            break;
        }
        if (state == VIR_DOMAIN_SHUTDOWN || state == VIR_DOMAIN_SHUTOFF ||
            state == VIR_DOMAIN_CRASHED)
            break;
        if (state == VIR_DOMAIN_PAUSED && reason != VIR_DOMAIN_PAUSED_STARTING_UP)
            break;
        if (now_ms() >= deadline)
            break;
        sleep_ms(20);
    }
    if (n->remote &&
        nstore_fetch(n->conn, name, ".console", console, 64u * 1024u, why, sizeof why) != NSTORE_OK)
        (void)unlink(console); /* judged as printing nothing */
    if (state == VIR_DOMAIN_PAUSED) {
        errbuf_set(n->virt_reason, sizeof n->virt_reason,
                   "%s canary paused (reason %d): KVM internal error", what, reason);
    } else if (state == VIR_DOMAIN_CRASHED) {
        errbuf_set(n->virt_reason, sizeof n->virt_reason, "%s canary crashed", what);
    } else if (state != VIR_DOMAIN_SHUTDOWN && state != VIR_DOMAIN_SHUTOFF) {
        errbuf_set(n->virt_reason, sizeof n->virt_reason,
                   "%s canary did not power off within %u ms", what, n->opts.canary_timeout_ms);
    } else if (!file_contains(console, "ok")) {
        errbuf_set(n->virt_reason, sizeof n->virt_reason,
                   "%s canary powered off without printing 'ok' to '%s'", what, console);
    } else {
        errbuf_set(n->virt_reason, sizeof n->virt_reason, "%s canary powered off in %llu ms", what,
                   (unsigned long long)(now_ms() - t0));
        *cycles = canary_cycles(console);
        ok = 1;
    }
out:
    if (dom) {
        virDomainDestroy(dom); /* fails harmlessly if already gone */
        virDomainFree(dom);
    }
    free(xml);
    unlink(console);
    unlink(status);
    /* Its name is new at every boot: libvirt's log of it would pile up
     * (two per shoald start without a cached verdict). */
    (void)node_domain_log_remove(n->uri, name);
    return ok;
}

/* kvm when its canary works and is not much slower than TCG's. Nested
 * kvm-pvm (these hosts) emulates guest instructions one by one: the same
 * loop there takes ~1000x the cycles it takes under TCG. */
static int canary_kvm(struct node *n)
{
    uint64_t kvm_cycles = 0, tcg_cycles = 0;
    char kvm_reason[sizeof n->virt_reason], why[sizeof n->virt_reason] = "";
    if (!canary_boot(n, DOMXML_VIRT_KVM, &kvm_cycles))
        return 0;
    n->kvm_works = 1;
    errbuf_set(kvm_reason, sizeof kvm_reason, "%s", n->virt_reason);
    /* A canary can miss its deadline on a loaded host; one more try each
     * before giving up on the comparison. */
    for (int i = 0; i < 2 && !(kvm_cycles && tcg_cycles); i++) {
        if (!kvm_cycles && !canary_boot(n, DOMXML_VIRT_KVM, &kvm_cycles))
            errbuf_set(why, sizeof why, "%s", n->virt_reason);
        else if (!kvm_cycles)
            errbuf_set(why, sizeof why, "kvm canary printed no cycle count");
        if (!tcg_cycles && !canary_boot(n, DOMXML_VIRT_QEMU, &tcg_cycles))
            errbuf_set(why, sizeof why, "%s", n->virt_reason);
        else if (!tcg_cycles)
            errbuf_set(why, sizeof why, "qemu canary printed no cycle count");
    }
    if (!kvm_cycles || !tcg_cycles) {
        /* No comparison: KVM works, so use it, but do not cache a verdict
         * made blind - the next start measures again. */
        n->virt_uncertain = 1;
        errbuf_set(n->virt_reason, sizeof n->virt_reason,
                   "%s; no speed comparison (%s): using kvm, not cached", kvm_reason, why);
        return 1;
    }
    if (kvm_cycles > 2 * tcg_cycles) {
        errbuf_set(n->virt_reason, sizeof n->virt_reason,
                   "kvm works but ran the canary loop %llux slower than TCG "
                   "(%llu vs %llu cycles): using qemu",
                   (unsigned long long)(kvm_cycles / tcg_cycles), (unsigned long long)kvm_cycles,
                   (unsigned long long)tcg_cycles);
        return 0;
    }
    errbuf_set(n->virt_reason, sizeof n->virt_reason, "%s; loop %llu cycles vs %llu under TCG",
               kvm_reason, (unsigned long long)kvm_cycles, (unsigned long long)tcg_cycles);
    return 1;
}

static void cache_path(const struct node *n, char *out, size_t len)
{
    char dirbuf[4096];
    const char *dir = n->opts.no_cache ? NULL : work_dir(n, dirbuf, sizeof dirbuf);
    uint64_t h = 0xcbf29ce484222325ull;
    out[0] = '\0';
    if (!dir)
        return;
    for (const char *p = n->uri; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 0x100000001b3ull;
    }
    snprintf(out, len, "%s/shoal-kvm-verdict-%016llx", dir, (unsigned long long)h);
}

/* What a cached verdict is valid for: URI, host kernel, QEMU/libvirt
 * versions and the canary file's size/mtime. */
static void cache_key(struct node *n, char *out, size_t len)
{
    struct utsname u;
    unsigned long hv = 0, lv = 0;
    struct stat st;
    memset(&st, 0, sizeof st);
    if (uname(&u) != 0)
        snprintf(u.release, sizeof u.release, "?");
    virConnectGetVersion(n->conn, &hv);
    virConnectGetLibVersion(n->conn, &lv);
    stat(canary_path(n), &st);
    /* QEMU's user too: whether it may open /dev/kvm is its group's. */
    snprintf(out, len, "uri=%s kernel=%s hv=%lu libvirt=%lu canary=%lld.%lld qemu=%u:%u", n->uri,
             u.release, hv, lv, (long long)st.st_size, (long long)st.st_mtime, n->qemu_uid,
             n->qemu_gid);
}

static void decide_virt(struct node *n)
{
    char path[4300], key[1024], line[1200];
    FILE *f;

    if (n->opts.domain_type == DOMXML_VIRT_KVM || n->opts.domain_type == DOMXML_VIRT_QEMU) {
        n->virt = n->opts.domain_type;
        errbuf_set(n->virt_reason, sizeof n->virt_reason, "forced by operator");
        return;
    }
    if (strncmp(n->uri, "test:", 5) == 0) {
        n->virt = DOMXML_VIRT_QEMU;
        errbuf_set(n->virt_reason, sizeof n->virt_reason, "test driver: no canary, using qemu");
        return;
    }
    cache_path(n, path, sizeof path);
    cache_key(n, key, sizeof key);
    if (path[0] && (f = fopen(path, "r"))) {
        int hit = fgets(line, sizeof line, f) && strncmp(line, key, strlen(key)) == 0 &&
                  line[strlen(key)] == ' ';
        fclose(f);
        if (hit) {
            const char *v = line + strlen(key) + 1;
            if (strncmp(v, "kvm", 3) == 0 || strncmp(v, "qemu", 4) == 0) {
                n->virt = v[0] == 'k' ? DOMXML_VIRT_KVM : DOMXML_VIRT_QEMU;
                n->kvm_works = strstr(v, "kvm-works") != NULL || n->virt == DOMXML_VIRT_KVM;
                errbuf_set(n->virt_reason, sizeof n->virt_reason, "cached verdict (%s)", path);
                return;
            }
        }
    }
    n->virt = canary_kvm(n) ? DOMXML_VIRT_KVM : DOMXML_VIRT_QEMU;
    if (path[0] && !n->virt_uncertain && (f = fopen(path, "w"))) {
        fprintf(f, "%s %s%s\n", key, n->virt == DOMXML_VIRT_KVM ? "kvm" : "qemu",
                n->kvm_works ? " kvm-works" : "");
        fclose(f);
    }
}

static int probe_capacity(struct node *n, char *err, size_t errlen)
{
    virNodeInfo info;
    if (virNodeGetInfo(n->conn, &info) < 0) {
        errbuf_set(err, errlen, "cannot get node info from '%s': %s", n->uri, lv_msg());
        return lv_status(n);
    }
    n->cap.memory_mib = info.memory / 1024u;
    n->cap.vcpus = info.cpus;
    snprintf(n->cap.model, sizeof n->cap.model, "%s", info.model);
    unsigned long long fm = virNodeGetFreeMemory(n->conn);
    n->cap.free_memory_mib = fm / (1024u * 1024u);
    return NODE_OK;
}

/* ---- public API ------------------------------------------------------------ */

int node_open(const char *uri, const struct node_opts *opts, struct node **out, char *err,
              size_t errlen)
{
    struct node *n = NULL;
    int rc = NODE_E_INVAL;

    if (out)
        *out = NULL;
    if (!uri || !uri[0] || !out) {
        errbuf_set(err, errlen, "node_open: no URI given");
        goto out;
    }
    if (opts && opts->domain_type != DOMXML_VIRT_AUTO && opts->domain_type != DOMXML_VIRT_KVM &&
        opts->domain_type != DOMXML_VIRT_QEMU) {
        errbuf_set(err, errlen, "invalid domain type '%d'", (int)opts->domain_type);
        goto out;
    }
    rc = NODE_E_NOMEM;
    n = calloc(1, sizeof *n);
    if (!n) {
        errbuf_set(err, errlen, "out of memory opening '%s'", uri);
        goto out;
    }
    pthread_mutex_init(&n->lock, NULL);
    pthread_mutex_init(&n->smu, NULL);
    pthread_mutex_init(&n->cmu, NULL);
    pthread_cond_init(&n->scv, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&n->cb_gone, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (!(n->uri = strdup(uri))) {
        errbuf_set(err, errlen, "out of memory opening '%s'", uri);
        goto out;
    }
    n->lifecycle_cb = n->reboot_cb = -1;
    if (opts)
        n->opts = *opts;
    if (!n->opts.canary_timeout_ms)
        n->opts.canary_timeout_ms = NODE_CANARY_TIMEOUT_MS;
    if (!n->opts.settle_timeout_ms)
        n->opts.settle_timeout_ms = NODE_SETTLE_TIMEOUT_MS;

    rc = loop_get(err, errlen);
    if (rc != NODE_OK)
        goto out;
    n->loop_ref = 1;
    rc = conn_make(n, err, errlen);
    if (rc != NODE_OK)
        goto out;
    rc = probe_capacity(n, err, errlen);
    if (rc != NODE_OK)
        goto out;
    rc = settle(n, err, errlen);
    if (rc != NODE_OK)
        goto out;
    decide_virt(n);
    if (n->embedded) {
        struct passwd pw, *res = NULL;
        char pwbuf[1024];
        n->cg_cpu = cgroup_has("cpu");
        n->cg_mem = cgroup_has("memory");
        if (getpwuid_r((uid_t)n->qemu_uid, &pw, pwbuf, sizeof pwbuf, &res) != 0)
            res = NULL;
        errbuf_set(n->confinement, sizeof n->confinement,
                   "QEMU runs as %s (uid %u, gid %u)%s; cgroup limits per guest: %s%s%s",
                   res ? res->pw_name : "?", n->qemu_uid, n->qemu_gid,
                   n->qemu_uid ? ", no capabilities, seccomp" : ", AS ROOT",
                   n->cg_mem ? "memory" : "", n->cg_mem && n->cg_cpu ? ", " : "",
                   n->cg_cpu ? "cpu" : "");
        if (!n->cg_cpu && !n->cg_mem) {
            size_t l = strlen(n->confinement);
            errbuf_set(n->confinement + l, sizeof n->confinement - l,
                       "none (no cgroup controllers mounted here)");
        }
    } else {
        errbuf_set(n->confinement, sizeof n->confinement,
                   "QEMU's user and cgroups as the libvirt daemon's qemu.conf says");
    }
    *out = n;
    n = NULL;
    rc = NODE_OK;
out:
    node_close(n);
    return rc;
}

void node_close(struct node *n)
{
    if (!n)
        return;
    conn_drop(n);
    serials_drop_all(n); /* none left unless the connection was gone already */
    nstream_drain(1000); /* freed on the event loop, before it may stop */
    if (n->loop_ref)
        loop_put();
    ids_clear(n);
    pthread_cond_destroy(&n->cb_gone);
    pthread_mutex_destroy(&n->lock);
    pthread_mutex_destroy(&n->smu);
    pthread_mutex_destroy(&n->cmu);
    pthread_cond_destroy(&n->scv);
    free(n->uri);
    free(n);
}

const char *node_uri(const struct node *n)
{
    return n ? n->uri : NULL;
}

enum domxml_virt node_domain_type(const struct node *n)
{
    return n ? n->virt : DOMXML_VIRT_AUTO;
}

int node_kvm_works(const struct node *n)
{
    return n->kvm_works || n->virt == DOMXML_VIRT_KVM;
}

const char *node_domain_type_reason(const struct node *n)
{
    return n ? n->virt_reason : "";
}

int node_alive(struct node *n)
{
    return n && atomic_load(&n->alive) && conn_alive(n) == 1;
}

int node_capacity(struct node *n, struct node_capacity *cap, char *err, size_t errlen)
{
    virConnectPtr conn = n ? conn_get(n) : NULL;
    if (!n || !cap || !conn) {
        errbuf_set(err, errlen, "node_capacity: no node or connection");
        conn_put(conn);
        return n && !conn ? NODE_E_CONN : NODE_E_INVAL;
    }
    unsigned long long fm = virNodeGetFreeMemory(conn);
    if (fm)
        n->cap.free_memory_mib = fm / (1024u * 1024u);
    *cap = n->cap;
    conn_put(conn);
    return NODE_OK;
}

/* Check the arguments and take the connection (conn_get): *conn is the
 * caller's to conn_put on NODE_OK, NULL otherwise. */
static int need_conn(struct node *n, const char *what, const char *name, virConnectPtr *conn,
                     char *err, size_t errlen)
{
    *conn = NULL;
    if (!n || (name && !name[0])) {
        errbuf_set(err, errlen, "%s: missing node or domain name", what);
        return NODE_E_INVAL;
    }
    if (!(*conn = conn_get(n))) {
        errbuf_set(err, errlen, "%s '%s': not connected to '%s'", what, name ? name : "", n->uri);
        return NODE_E_CONN;
    }
    return NODE_OK;
}

/* Parse a canonical UUID string into 16 bytes; 0 on success. */
static int uuid_parse(const char *str, unsigned char out[VIR_UUID_BUFLEN])
{
    size_t j = 0;
    for (size_t i = 0; str[i] && j < 2 * VIR_UUID_BUFLEN; i++) {
        char c = str[i];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (c == '-')
            continue;
        if (v < 0)
            return -1;
        if (j % 2 == 0)
            out[j / 2] = (unsigned char)(v << 4);
        else
            out[j / 2] |= (unsigned char)v;
        j++;
    }
    return j == 2 * VIR_UUID_BUFLEN ? 0 : -1;
}

/* A random (version 4) UUID in canonical form. */
static void uuid_random(char out[DOMXML_UUID_LEN + 1])
{
    unsigned char b[VIR_UUID_BUFLEN];
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(b, 1, sizeof b, f) != sizeof b) {
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (unsigned char)(rand() ^ (int)(now_ms() >> (i % 8)));
    }
    if (f)
        fclose(f);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, DOMXML_UUID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

/* Is cgroup controller `ctl` ("cpu", "memory") mounted where libvirt looks
 * for it (this process's mount table)? `ip netns exec` mounts a fresh /sys
 * without the hierarchies, and libvirt then refuses <cputune> ("cgroup cpu
 * is required for scheduler tuning") and has nowhere to put a memory
 * limit. cgroup v1: a "cgroup" mount with the controller among its
 * options; v2: a "cgroup2" mount whose cgroup.controllers lists it. */
static int cgroup_has(const char *ctl)
{
    FILE *f = fopen("/proc/self/mounts", "r");
    char line[1024], dev[256], dir[512], type[64], opts[512];
    int found = 0;
    if (!f)
        return 0;
    while (!found && fgets(line, sizeof line, f)) {
        if (sscanf(line, "%255s %511s %63s %511s", dev, dir, type, opts) != 4)
            continue;
        if (!strcmp(type, "cgroup")) {
            for (char *tok = strtok(opts, ","); tok; tok = strtok(NULL, ","))
                if (!strcmp(tok, ctl))
                    found = 1;
        } else if (!strcmp(type, "cgroup2")) {
            char path[600], buf[512];
            FILE *c;
            snprintf(path, sizeof path, "%s/cgroup.controllers", dir);
            if ((c = fopen(path, "r"))) {
                if (fgets(buf, sizeof buf, c))
                    for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n"))
                        if (!strcmp(tok, ctl))
                            found = 1;
                fclose(c);
            }
        }
    }
    fclose(f);
    return found;
}

const char *node_confinement(const struct node *n)
{
    return n ? n->confinement : "";
}

/* ROOT/log/qemu/<name>.log (suffix "" or ".1") of an embedded URI. */
static int qemu_log_path(const char *uri, const char *name, const char *suffix, char *out,
                         size_t len)
{
    char root[4096];
    if (!uri || !name || !domxml_valid_name(name) || !embed_root(uri, root, sizeof root))
        return -1;
    return snprintf(out, len, "%s/log/qemu/%s.log%s", root, name, suffix) < (int)len ? 0 : -1;
}

int node_domain_log_remove(const char *uri, const char *name)
{
    char path[4400];
    int rc = 0;
    if (qemu_log_path(uri, name, "", path, sizeof path) != 0)
        return 0;
    if (unlink(path) != 0 && errno != ENOENT)
        rc = -1;
    (void)qemu_log_path(uri, name, ".1", path, sizeof path);
    if (unlink(path) != 0 && errno != ENOENT)
        rc = -1;
    return rc;
}

/* libvirt appends to a domain's log at every start (~4 KiB of command line
 * and messages): a guest that restarts for weeks would grow it without
 * bound. Past NODE_QEMU_LOG_MAX it becomes <name>.log.1 (the one before
 * goes) and libvirt starts a new one. */
static void qemu_log_cap(const struct node *n, const char *name)
{
    char path[4400], old[4400];
    struct stat st;
    if (qemu_log_path(n->uri, name, "", path, sizeof path) != 0 || stat(path, &st) != 0 ||
        st.st_size <= (off_t)NODE_QEMU_LOG_MAX)
        return;
    if (qemu_log_path(n->uri, name, ".1", old, sizeof old) == 0)
        (void)rename(path, old);
}

/* Write a guest's private configuration record where only QEMU's user can
 * read it: WORK_DIR/guestcfg/<domain>.cfg, the directory root's with mode
 * 0710 and QEMU's group (0711 when libvirt decides QEMU's user), the file
 * 0400 and QEMU's (root's 0600 for a libvirt daemon, which relabels it for
 * its QEMU itself). The path goes to path[len]. */
static int write_guest_config(struct node *n, const char *name, const char *data, char *path,
                              size_t len, char *err, size_t errlen)
{
    char dirbuf[4096], dir[4200];
    const char *wd = work_dir(n, dirbuf, sizeof dirbuf);
    size_t dl = strlen(data);
    int fd = -1, rc = NODE_E_IO;

    path[0] = '\0';
    if (!wd) {
        errbuf_set(err, errlen,
                   "no directory for the guest configuration of '%s' (node_opts.state_dir)", name);
        return NODE_E_INVAL;
    }
    snprintf(dir, sizeof dir, "%s/guestcfg", wd);
    if ((mkdir(dir, 0700) != 0 && errno != EEXIST) ||
        (n->embedded ? guard_dir(dir, n->qemu_gid, NULL, 0) != NODE_OK : chmod(dir, 0711) != 0)) {
        errbuf_set(err, errlen, "cannot prepare '%s': %s", dir, strerror(errno));
        return NODE_E_IO;
    }
    if (snprintf(path, len, "%s/%s.cfg", dir, name) >= (int)len) {
        errbuf_set(err, errlen, "guest configuration path for '%s' is too long", name);
        path[0] = '\0';
        return NODE_E_INVAL;
    }
    (void)unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
    if (fd < 0 || (n->embedded && fchown(fd, (uid_t)n->qemu_uid, (gid_t)n->qemu_gid) != 0) ||
        write(fd, data, dl) != (ssize_t)dl) {
        errbuf_set(err, errlen, "cannot write '%s': %s", path, strerror(errno));
        goto out;
    }
    rc = NODE_OK;
out:
    if (fd >= 0 && close(fd) != 0 && rc == NODE_OK) {
        errbuf_set(err, errlen, "cannot write '%s': %s", path, strerror(errno));
        rc = NODE_E_IO;
    }
    if (rc != NODE_OK) {
        (void)unlink(path);
        path[0] = '\0';
    }
    return rc;
}

/* nodestore's status as a node_status. */
static int nstore_node_status(struct node *n, int rc)
{
    switch (rc) {
    case NSTORE_OK: return NODE_OK;
    case NSTORE_E_INVAL: return NODE_E_INVAL;
    case NSTORE_E_LIBVIRT: return lv_status(n);
    default: return NODE_E_IO;
    }
}

int node_store_forget(struct node *n, const char *name, char *err, size_t errlen)
{
    virConnectPtr conn;
    int rc;
    if (!n->remote)
        return NODE_OK;
    rc = need_conn(n, "remove run files", name, &conn, err, errlen);
    if (rc == NODE_OK)
        rc = nstore_node_status(n, nstore_forget(conn, name, err, errlen));
    conn_put(conn);
    return rc;
}

int node_store_gc(struct node *n, const char *const *keep, size_t nkeep,
                  const char *const *keep_domains, size_t nkeep_domains, unsigned *removed,
                  char *err, size_t errlen)
{
    virConnectPtr conn;
    int rc;
    if (removed)
        *removed = 0;
    if (!n->remote)
        return NODE_OK;
    rc = need_conn(n, "collect volumes", NULL, &conn, err, errlen);
    if (rc == NODE_OK)
        rc = nstore_node_status(
            n, nstore_gc(conn, keep, nkeep, keep_domains, nkeep_domains, removed, err, errlen));
    conn_put(conn);
    return rc;
}

int node_fetch_run_file(struct node *n, const char *name, const char *suffix,
                        const char *local_path, uint64_t max, char *err, size_t errlen)
{
    virConnectPtr conn;
    int rc, port = strcmp(suffix, ".console") == 0 ? 0 : 1;
    if (!n->remote)
        return NODE_OK;
    /* A stream appends to the local file: a fetch would replace it. */
    if (n->streams && fetch_begin(n, name, port))
        return NODE_OK;
    rc = need_conn(n, "fetch", name, &conn, err, errlen);
    if (rc == NODE_OK)
        rc = nstore_node_status(n, nstore_fetch(conn, name, suffix, local_path, max, err, errlen));
    conn_put(conn);
    if (n->streams)
        fetch_end(n, name);
    return rc;
}

/* A nodenet.h status as a node status. */
static int nnet_node_status(struct node *n, int rc)
{
    switch (rc) {
    case NNET_OK: return NODE_OK;
    case NNET_E_LIBVIRT: return lv_status(n);
    default: return NODE_E_INVAL;
    }
}

int node_net_get(struct node *n, int *found, uint32_t *gw, int *prefix, char *err, size_t errlen)
{
    virConnectPtr conn;
    int ours, rc = need_conn(n, "network", NULL, &conn, err, errlen);
    *found = 0;
    if (rc == NODE_OK)
        rc = nnet_node_status(n, nnet_get(conn, found, gw, prefix, &ours, err, errlen));
    conn_put(conn);
    return rc;
}

int node_net_ensure(struct node *n, uint32_t gw, int prefix, char *err, size_t errlen)
{
    virConnectPtr conn;
    int rc = need_conn(n, "network", NULL, &conn, err, errlen), filter;
    if (rc != NODE_OK)
        return rc;
    /* the filter is defined once per node (an older shoald's replaced) */
    filter = !atomic_load(&n->net_filter);
    rc = nnet_node_status(n, nnet_ensure(conn, gw, prefix, filter, err, errlen));
    if (rc == NODE_OK && filter)
        atomic_store(&n->net_filter, 1);
    conn_put(conn);
    return rc;
}

int node_net_remove(struct node *n, int *removed, char *err, size_t errlen)
{
    virConnectPtr conn;
    int rc = need_conn(n, "network", NULL, &conn, err, errlen);
    *removed = 0;
    if (rc == NODE_OK)
        rc = nnet_node_status(n, nnet_remove(conn, removed, err, errlen));
    if (rc == NODE_OK)
        atomic_store(&n->net_filter, 0);
    conn_put(conn);
    return rc;
}

int node_net_dhcp_list(struct node *n, struct nnet_host **out, size_t *cnt, char *err,
                       size_t errlen)
{
    virConnectPtr conn;
    int rc = need_conn(n, "network", NULL, &conn, err, errlen);
    *out = NULL;
    *cnt = 0;
    if (rc == NODE_OK)
        rc = nnet_node_status(n, nnet_dhcp_list(conn, out, cnt, err, errlen));
    conn_put(conn);
    return rc;
}

int node_net_dhcp_put(struct node *n, const struct nnet_host *h, char *err, size_t errlen)
{
    virConnectPtr conn;
    int rc = need_conn(n, "network", NULL, &conn, err, errlen);
    if (rc == NODE_OK)
        rc = nnet_node_status(n, nnet_dhcp_put(conn, h, err, errlen));
    conn_put(conn);
    return rc;
}

int node_net_dhcp_del(struct node *n, const char *mac, char *err, size_t errlen)
{
    virConnectPtr conn;
    int rc = need_conn(n, "network", NULL, &conn, err, errlen);
    if (rc == NODE_OK)
        rc = nnet_node_status(n, nnet_dhcp_del(conn, mac, err, errlen));
    conn_put(conn);
    return rc;
}

int node_net_dhcp_leased(struct node *n, const char *except_mac, uint32_t **out, size_t *cnt,
                         char *err, size_t errlen)
{
    virConnectPtr conn;
    int rc = need_conn(n, "network", NULL, &conn, err, errlen);
    *out = NULL;
    *cnt = 0;
    if (rc == NODE_OK)
        rc = nnet_node_status(n, nnet_dhcp_leased(conn, except_mac, out, cnt, err, errlen));
    conn_put(conn);
    return rc;
}

int node_remote(const struct node *n)
{
    return n && n->remote;
}

int node_start(struct node *n, const struct domxml_spec *spec, char uuid_out[DOMXML_UUID_LEN + 1],
               char *err, size_t errlen)
{
    struct domxml_spec s;
    virDomainPtr dom = NULL;
    char *xml = NULL, uuid_str[DOMXML_UUID_LEN + 1], why[NODE_ERR_MAX], cfg[4400] = "";
    char host_console[4200], host_status[4200], stream_why[NODE_ERR_MAX] = "";
    char nice_why[NODE_ERR_MAX] = "";
    unsigned char uuid[VIR_UUID_BUFLEN];
    unsigned long long mem_kib = 0;
    int rc, mapped = 0, limits, streamed;
    struct nstore_stage stage;
    virConnectPtr conn = NULL;

    memset(&stage, 0, sizeof stage);
    rc = need_conn(n, "start", NULL, &conn, err, errlen);
    if (rc != NODE_OK)
        goto out;
    if (!spec) {
        errbuf_set(err, errlen, "start: no domain spec");
        rc = NODE_E_INVAL;
        goto out;
    }
    s = *spec;
    if (s.virt == DOMXML_VIRT_AUTO)
        s.virt = n->virt;
    /* Choose the UUID here so the instance id can be cached before the
     * domain exists: its first events (RESUMED, STARTED) then need no
     * libvirt call on the event thread, which must never wait on a domain
     * that is still being created (its monitor runs on that same thread). */
    if (!s.uuid) {
        uuid_random(uuid_str);
        s.uuid = uuid_str;
    }
    /* Per-guest cgroup limits on every QEMU driver (libvirt sets none by
     * default: no memory limit, cpu.shares 1024, no CPU quota). */
    limits = strncmp(n->uri, "test:", 5) != 0;
    if (n->embedded && !n->cg_cpu)
        s.cpu_quota_pct = 0;
    else if (limits && !s.cpu_quota_pct && s.vcpus && s.vcpus <= DOMXML_VCPUS_MAX)
        s.cpu_quota_pct = s.vcpus * 100u + NODE_QEMU_CPU_EXTRA_PCT;
    if (limits && (!n->embedded || n->cg_mem))
        mem_kib = ((unsigned long long)s.memory_mib + NODE_QEMU_MEM_OVERHEAD_MIB) * 1024ull;
    /* Validate before the name and paths are used for files. */
    if (domxml_render(&s, NULL, err, errlen) != DOMXML_OK) {
        rc = NODE_E_INVAL;
        goto out;
    }
    /* What QEMU opens itself must be its user's: the disk overlay (read and
     * written; its base, the image, is read through the image cache's
     * group) and the private record. libvirt opens the console and status
     * files and the tap. */
    if (n->embedded && s.disk &&
        (chown(s.disk, (uid_t)n->qemu_uid, (gid_t)n->qemu_gid) != 0 || chmod(s.disk, 0600) != 0)) {
        errbuf_set(err, errlen, "cannot hand disk '%s' to QEMU's user %u: %s", s.disk, n->qemu_uid,
                   strerror(errno));
        rc = NODE_E_IO;
        goto out;
    }
    if (n->embedded)
        qemu_log_cap(n, s.name);
    /* A host elsewhere opens only its own files: the image, the serial
     * files and the record go there as storage volumes (issue 17). */
    if (n->remote &&
        (rc = nstore_node_status(n, nstore_stage(conn, &s, &stage, err, errlen))) != NODE_OK)
        goto out;
    /* Its serial ports are read live through streams into the local files
     * the spec names, and logged on the host for the fetch (a local node
     * streaming for a measurement logs beside them). */
    s.serial_pty = n->streams;
    if (n->streams && !n->remote) {
        snprintf(host_console, sizeof host_console, "%s.host", spec->console_log);
        snprintf(host_status, sizeof host_status, "%s.host", spec->status_log);
        s.console_log = host_console;
        s.status_log = host_status;
    }
    if (s.fwcfg_data && !n->remote) {
        rc = write_guest_config(n, s.name, s.fwcfg_data, cfg, sizeof cfg, err, errlen);
        if (rc != NODE_OK)
            goto out;
        s.fwcfg_file = cfg;
    }
    switch (domxml_render(&s, &xml, err, errlen)) {
    case DOMXML_OK: break;
    case DOMXML_E_NOMEM: rc = NODE_E_NOMEM; goto out;
    default: rc = NODE_E_INVAL; goto out;
    }
    dom = virDomainLookupByName(conn, s.name);
    if (dom) {
        errbuf_set(err, errlen, "domain '%s' already exists on '%s'", s.name, n->uri);
        rc = NODE_E_EXISTS;
        goto out;
    }
    if (s.instance_id && uuid_parse(s.uuid, uuid) == 0) {
        ids_put(n, uuid, s.instance_id);
        mapped = 1;
    }
    streamed = n->streams && serials_begin(n, s.name) == 0;
    dom = create_running(n, conn, xml, mem_kib, spec->nice, spec->nice_qemu_only, nice_why,
                         sizeof nice_why, streamed ? spec : NULL, stream_why, sizeof stream_why,
                         &rc, why, sizeof why);
    if (streamed && !dom)
        serials_open(n, NULL, s.name, NULL, NULL, 0, NULL, 0); /* ends the pending state */
    /* QEMU read the record at its start (or never will): it lives on disk
     * only for the create. */
    if (cfg[0])
        (void)unlink(cfg);
    cfg[0] = '\0';
    if (!dom) {
        errbuf_set(err, errlen, "cannot start domain '%s': %s", s.name, why);
        goto out;
    }
    if (s.instance_id && !mapped && virDomainGetUUID(dom, uuid) == 0)
        ids_put(n, uuid, s.instance_id);
    if (uuid_out && virDomainGetUUIDString(dom, uuid_out) < 0)
        uuid_out[0] = '\0';
    rc = NODE_OK;
    /* Started: a warning only (node.h node_start). */
    if (stream_why[0])
        errbuf_set(err, errlen, "serial ports not streamed, their files are fetched: %s",
                   stream_why);
    else if (nice_why[0])
        errbuf_set(err, errlen, "not at nice %d: %s", spec->nice, nice_why);
    else if (err && errlen)
        err[0] = '\0';
out:
    if (rc != NODE_OK && mapped) {
        char id[DOMXML_ID_MAX + 1];
        ids_get(n, uuid, id, sizeof id, 1);
    }
    if (cfg[0])
        (void)unlink(cfg);
    if (n->remote && conn)
        nstore_unstage(conn, &stage);
    if (dom)
        virDomainFree(dom);
    conn_put(conn);
    free(xml);
    return rc;
}

/* Lookup by name; NODE_E_NOTFOUND if no such domain. */
static int lookup(struct node *n, const char *what, const char *name, virDomainPtr *dom, char *err,
                  size_t errlen)
{
    virConnectPtr conn;
    int rc = need_conn(n, what, name, &conn, err, errlen);
    if (rc != NODE_OK)
        return rc;
    *dom = virDomainLookupByName(conn, name); /* a domain holds its connection */
    if (!*dom) {
        rc = lv_status(n);
        if (rc == NODE_E_NOTFOUND)
            errbuf_set(err, errlen, "%s: domain '%s' not found on '%s'", what, name, n->uri);
        else
            errbuf_set(err, errlen, "%s: cannot look up domain '%s': %s", what, name, lv_msg());
    }
    conn_put(conn); /* after reading libvirt's error: a libvirt call resets it */
    return rc;
}

/* 1 if dom is gone or shut off. */
static int dom_gone(virDomainPtr dom)
{
    int state = 0;
    if (virDomainGetState(dom, &state, NULL, 0) < 0)
        return 1;
    return state == VIR_DOMAIN_SHUTOFF;
}

int node_destroy(struct node *n, const char *name, char *err, size_t errlen)
{
    virDomainPtr dom = NULL;
    int rc = lookup(n, "destroy", name, &dom, err, errlen);
    if (rc != NODE_OK)
        goto out;
    serials_abort(n, dom, name);
    if (virDomainDestroy(dom) < 0) {
        int code = virGetLastErrorCode();
        rc = lv_status(n);
        if (code == VIR_ERR_OPERATION_INVALID && dom_gone(dom))
            rc = NODE_E_NOTFOUND; /* "domain is not running" */
        errbuf_set(err, errlen, "cannot destroy domain '%s': %s", name, lv_msg());
        goto out;
    }
    rc = NODE_OK;
out:
    if (dom)
        virDomainFree(dom);
    return rc;
}

int node_set_instance_id(struct node *n, const char *name, const char *id, char *err, size_t errlen)
{
    virDomainPtr dom = NULL;
    unsigned char uuid[VIR_UUID_BUFLEN];
    char md[DOMXML_ID_MAX + 32];
    int rc;
    if (!id || !domxml_valid_instance_id(id)) {
        errbuf_set(err, errlen, "set instance: invalid instance id");
        return NODE_E_INVAL;
    }
    rc = lookup(n, "set instance", name, &dom, err, errlen);
    if (rc != NODE_OK)
        goto out;
    /* the element domxml_render writes; an id is hex, nothing to escape */
    snprintf(md, sizeof md, "<instance id='%s'/>", id);
    if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, md, DOMXML_NS_PREFIX, DOMXML_NS_URI,
                             VIR_DOMAIN_AFFECT_LIVE) < 0) {
        rc = lv_status(n);
        errbuf_set(err, errlen, "cannot name instance '%s' in domain '%s': %s", id, name, lv_msg());
        goto out;
    }
    /* events look the id up by uuid first (on_lifecycle) */
    if (virDomainGetUUID(dom, uuid) == 0)
        ids_put(n, uuid, id);
    rc = NODE_OK;
out:
    if (dom)
        virDomainFree(dom);
    return rc;
}

void node_forget(struct node *n, const char *name)
{
    virDomainPtr dom = NULL;
    unsigned char uuid[VIR_UUID_BUFLEN];
    char id[DOMXML_ID_MAX + 1], err[NODE_ERR_MAX];
    if (lookup(n, "forget", name, &dom, err, sizeof err) != NODE_OK)
        return;
    /* on_lifecycle delivers a STOPPED only for a domain in the table */
    if (virDomainGetUUID(dom, uuid) == 0)
        ids_get(n, uuid, id, sizeof id, 1);
    virDomainFree(dom);
}

int node_resume_started(struct node *n, const char *name, char *err, size_t errlen)
{
    virDomainPtr dom = NULL;
    int state = 0, reason = 0;
    int rc = lookup(n, "resume", name, &dom, err, errlen);
    if (rc != NODE_OK)
        goto out;
    if (virDomainGetState(dom, &state, &reason, 0) < 0) {
        rc = lv_status(n);
        errbuf_set(err, errlen, "cannot read the state of domain '%s': %s", name, lv_msg());
        goto out;
    }
    rc = 0;
    if (state != VIR_DOMAIN_PAUSED ||
        (reason != VIR_DOMAIN_PAUSED_USER && reason != VIR_DOMAIN_PAUSED_STARTING_UP))
        goto out; /* running, or paused for another reason (a crash is one) */
    if (virDomainResume(dom) < 0) {
        rc = lv_status(n);
        errbuf_set(err, errlen, "cannot resume domain '%s': %s", name, lv_msg());
        goto out;
    }
    rc = 1;
out:
    if (dom)
        virDomainFree(dom);
    return rc;
}

int node_shutdown(struct node *n, const char *name, unsigned timeout_ms, int *forced, char *err,
                  size_t errlen)
{
    virDomainPtr dom = NULL;
    uint64_t deadline;
    int rc;

    if (forced)
        *forced = 0;
    rc = lookup(n, "shutdown", name, &dom, err, errlen);
    if (rc != NODE_OK)
        goto out;
    serials_abort(n, dom, name);
    deadline = now_ms() + timeout_ms;
    if (virDomainShutdown(dom) < 0) {
        if (dom_gone(dom)) {
            rc = NODE_OK; /* went away by itself meanwhile */
            goto out;
        }
        deadline = 0; /* shutdown refused (e.g. no ACPI): destroy now */
    }
    while (now_ms() < deadline) {
        if (dom_gone(dom)) {
            rc = NODE_OK;
            goto out;
        }
        sleep_ms(50);
    }
    if (virDomainDestroy(dom) < 0 && !dom_gone(dom)) {
        errbuf_set(err, errlen,
                   "cannot destroy domain '%s' after %u ms shutdown "
                   "timeout: %s",
                   name, timeout_ms, lv_msg());
        rc = lv_status(n);
        goto out;
    }
    if (forced)
        *forced = 1;
    rc = NODE_OK;
out:
    if (dom)
        virDomainFree(dom);
    return rc;
}

int node_state(struct node *n, const char *name, struct node_dom *out, char *err, size_t errlen)
{
    virDomainPtr dom = NULL;
    int rc = lookup(n, "state", name, &dom, err, errlen);
    if (rc != NODE_OK)
        goto out;
    if (!out || dom_fill(dom, out) < 0) {
        rc = out ? lv_status(n) : NODE_E_INVAL;
        errbuf_set(err, errlen, "cannot get state of domain '%s': %s", name,
                   out ? lv_msg() : "no output");
        goto out;
    }
    rc = NODE_OK;
out:
    if (dom)
        virDomainFree(dom);
    return rc;
}

int node_list(struct node *n, struct node_dom **list, size_t *count, char *err, size_t errlen)
{
    virDomainPtr *doms = NULL;
    struct node_dom *res = NULL;
    virConnectPtr conn = NULL;
    int nd = 0, rc;
    size_t k = 0;

    if (list)
        *list = NULL;
    if (count)
        *count = 0;
    rc = need_conn(n, "list", NULL, &conn, err, errlen);
    if (rc != NODE_OK)
        goto out;
    if (!list || !count) {
        errbuf_set(err, errlen, "list: no output");
        rc = NODE_E_INVAL;
        goto out;
    }
    nd = virConnectListAllDomains(conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    if (nd < 0) {
        errbuf_set(err, errlen, "cannot list domains on '%s': %s", n->uri, lv_msg());
        rc = lv_status(n);
        nd = 0;
        goto out;
    }
    if (nd > 0 && !(res = calloc((size_t)nd, sizeof *res))) {
        errbuf_set(err, errlen, "out of memory listing %d domains", nd);
        rc = NODE_E_NOMEM;
        goto out;
    }
    for (int i = 0; i < nd; i++) {
        struct node_dom *d = &res[k];
        /* a domain may vanish between list and query: skip it */
        if (dom_fill(doms[i], d) < 0 || !d->instance_id[0])
            continue;
        unsigned char uuid[VIR_UUID_BUFLEN];
        if (virDomainGetUUID(doms[i], uuid) == 0)
            ids_put(n, uuid, d->instance_id);
        k++;
    }
    if (k == 0) {
        free(res);
        res = NULL;
    }
    *list = res;
    *count = k;
    res = NULL;
    rc = NODE_OK;
out:
    for (int i = 0; i < nd; i++)
        virDomainFree(doms[i]);
    free(doms);
    free(res);
    conn_put(conn);
    return rc;
}

void node_list_free(struct node_dom *list)
{
    free(list);
}

/* Directory of QEMU pid files for a local URI ("" when not local). */
static void pid_dir(const struct node *n, char *dir, size_t len)
{
    char root[4096];
    dir[0] = '\0';
    if (embed_root(n->uri, root, sizeof root))
        snprintf(dir, len, "%s/run/qemu", root);
    else if (!strncmp(n->uri, "qemu:///system", 14))
        snprintf(dir, len, "/run/libvirt/qemu");
}

/* First "Key: N kB" value of a /proc file, in KiB; 0 if absent. */
static uint64_t proc_kib(const char *path, const char *key)
{
    char line[256];
    uint64_t v = 0;
    size_t kl = strlen(key);
    FILE *fp = fopen(path, "re");
    if (!fp)
        return 0;
    while (fgets(line, sizeof line, fp)) {
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = strtoull(line + kl + 1, NULL, 10);
            break;
        }
    }
    fclose(fp);
    return v;
}

/* The pid in domain `name`'s pid file under dir; 0 if none. */
static long dom_pid(const char *dir, const char *name)
{
    char path[4400], buf[32];
    ssize_t r;
    long pid;
    snprintf(path, sizeof path, "%s/%s.pid", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r <= 0)
        return 0;
    buf[r] = '\0';
    pid = strtol(buf, NULL, 10);
    return pid > 0 ? pid : 0;
}

/* The processes that make up a guest: the domain's pid and its direct
 * children (the isa-debug-exit wrapper runs QEMU as its child; docs/node.md
 * "Exit through isa-debug-exit"). Returns how many were put in pids. */
static size_t guest_pids(long pid, long *pids, size_t max)
{
    char path[96], buf[256];
    size_t n = 0;
    if (pid <= 0 || max == 0)
        return 0;
    pids[n++] = pid;
    snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", pid, pid);
    FILE *fp = fopen(path, "re");
    if (!fp)
        return n;
    if (fgets(buf, sizeof buf, fp)) {
        char *p = buf, *e;
        for (long c; n < max && (c = strtol(p, &e, 10)) > 0; p = e)
            pids[n++] = c;
    }
    fclose(fp);
    return n;
}

/* utime + stime of process pid (all its threads), ns; 0 if unknown. */
static uint64_t proc_cpu_ns(long pid)
{
    char path[64], buf[1024];
    unsigned long long ut = 0, st = 0;
    static long hz;
    if (!hz && (hz = sysconf(_SC_CLK_TCK)) <= 0)
        hz = 100;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r <= 0)
        return 0;
    buf[r] = '\0';
    /* comm may hold spaces and parentheses: fields resume after the last ')';
     * utime and stime are fields 14 and 15, the 12th and 13th after it. */
    char *p = strrchr(buf, ')');
    if (!p ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (ut + st) * (1000000000ull / (unsigned long long)hz);
}

/* A local guest's private resident memory (KiB) and CPU time (ns) from
 * /proc, through its pid file: no call into QEMU. 0 if it has no pid file. */
static int proc_usage(const char *dir, const char *name, uint64_t *mem_kib, uint64_t *cpu_ns)
{
    long pids[4];
    size_t n = guest_pids(dom_pid(dir, name), pids, 4);
    char path[64];
    *mem_kib = 0;
    *cpu_ns = 0;
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "/proc/%ld/status", pids[i]);
        *mem_kib += proc_kib(path, "RssAnon");
        *cpu_ns += proc_cpu_ns(pids[i]);
    }
    return n > 0;
}

/* Set every thread of process pid (/proc/PID/task) to nice value nice.
 * Threads that appear meanwhile are those of a thread not yet changed:
 * passes until one finds every thread at nice. 0, or -1 with errno. */
static int nice_threads(long pid, int nice)
{
    char path[64];
    int changed = 1, rc = 0;
    for (int pass = 0; changed && pass < 4 && rc == 0; pass++) {
        struct dirent *de;
        DIR *d;
        changed = 0;
        snprintf(path, sizeof path, "/proc/%ld/task", pid);
        if (!(d = opendir(path)))
            return -1;
        while ((de = readdir(d))) {
            long tid = strtol(de->d_name, NULL, 10);
            int cur;
            if (tid <= 0)
                continue;
            errno = 0;
            cur = getpriority(PRIO_PROCESS, (id_t)tid);
            if (errno == ESRCH || (!errno && cur == nice))
                continue; /* gone, or done */
            if (setpriority(PRIO_PROCESS, (id_t)tid, nice) != 0) {
                if (errno == ESRCH)
                    continue;
                rc = -1;
                break;
            }
            changed = 1;
        }
        int saved = errno;
        closedir(d);
        errno = saved;
    }
    return rc;
}

int node_guest_nice(struct node *n, const char *name, int nice, char *err, size_t errlen)
{
    char dir[4200];
    long pids[4];
    size_t np;
    if (!n || !name) {
        errbuf_set(err, errlen, "nice: no node or domain");
        return NODE_E_INVAL;
    }
    pid_dir(n, dir, sizeof dir);
    if (!dir[0]) {
        errbuf_set(err, errlen, "domain '%s' is not on this machine: no nice value set", name);
        return NODE_E_INVAL;
    }
    if (!(np = guest_pids(dom_pid(dir, name), pids, 4))) {
        errbuf_set(err, errlen, "domain '%s' has no QEMU process", name);
        return NODE_E_NOTFOUND;
    }
    for (size_t i = 0; i < np; i++)
        if (nice_threads(pids[i], nice) != 0 && errno != ENOENT) {
            errbuf_set(err, errlen, "cannot set the nice value of domain '%s' (pid %ld) to %d: %s",
                       name, pids[i], nice, strerror(errno));
            return NODE_E_IO;
        }
    return NODE_OK;
}

/* Host memory available to new guests, MiB; 0 if unknown. */
static uint64_t avail_mib(virConnectPtr conn, int local)
{
    virNodeMemoryStatsPtr st = NULL;
    int np = 0;
    uint64_t kib = 0;
    if (local)
        return proc_kib("/proc/meminfo", "MemAvailable") / 1024;
    if (virNodeGetMemoryStats(conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, NULL, &np, 0) < 0 || np <= 0 ||
        !(st = calloc((size_t)np, sizeof *st)))
        goto out;
    if (virNodeGetMemoryStats(conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, st, &np, 0) < 0)
        goto out;
    for (int i = 0; i < np; i++) {
        if (!strcmp(st[i].field, VIR_NODE_MEMORY_STATS_FREE) ||
            !strcmp(st[i].field, VIR_NODE_MEMORY_STATS_BUFFERS) ||
            !strcmp(st[i].field, VIR_NODE_MEMORY_STATS_CACHED))
            kib += st[i].value;
    }
out:
    free(st);
    return kib / 1024;
}

uint64_t node_mem_available(struct node *n)
{
    char dir[4200];
    virConnectPtr conn = n ? conn_get(n) : NULL;
    uint64_t mib = 0;
    if (conn) {
        pid_dir(n, dir, sizeof dir);
        mib = avail_mib(conn, dir[0] != '\0');
    }
    conn_put(conn);
    return mib;
}

int node_ping(struct node *n)
{
    unsigned long version = 0;
    virConnectPtr conn = n ? conn_get(n) : NULL;
    int rc = NODE_E_CONN;
    if (conn)
        rc = virConnectGetLibVersion(conn, &version) == 0 ? NODE_OK : lv_status(n);
    conn_put(conn);
    return rc;
}

int node_usage(struct node *n, struct node_usage **list, size_t *count, uint64_t *avail, char *err,
               size_t errlen)
{
    virDomainStatsRecordPtr *recs = NULL;
    virDomainPtr *doms = NULL;
    struct node_usage *res = NULL;
    char dir[4200];
    virConnectPtr conn = NULL;
    int nr = 0, rc;
    size_t k = 0;

    if (list)
        *list = NULL;
    if (count)
        *count = 0;
    if (avail)
        *avail = 0;
    rc = need_conn(n, "usage", NULL, &conn, err, errlen);
    if (rc != NODE_OK)
        goto out;
    if (n->streams)
        nstream_reap(conn, 0); /* finishes due (nodestream.h): every few s */
    if (!list || !count || !avail) {
        errbuf_set(err, errlen, "usage: no output");
        rc = NODE_E_INVAL;
        goto out;
    }
    pid_dir(n, dir, sizeof dir);
    /* A local host is measured from /proc: libvirt's CPU statistics ask
     * every QEMU over QMP (query-stats for halt polling, even under TCG),
     * which woke each idle guest's QEMU every sample. Listing the running
     * domains asks no QEMU anything. */
    if (dir[0])
        nr = virConnectListAllDomains(conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    else
        nr =
            virConnectGetAllDomainStats(conn, VIR_DOMAIN_STATS_CPU_TOTAL | VIR_DOMAIN_STATS_BALLOON,
                                        &recs, VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE);
    if (nr < 0) {
        errbuf_set(err, errlen, "cannot read domain statistics on '%s': %s", n->uri, lv_msg());
        rc = lv_status(n);
        nr = 0;
        goto out;
    }
    if (nr > 0 && !(res = calloc((size_t)nr, sizeof *res))) {
        errbuf_set(err, errlen, "out of memory measuring %d domains", nr);
        rc = NODE_E_NOMEM;
        goto out;
    }
    for (int i = 0; i < nr; i++) {
        struct node_usage *u = &res[k];
        virDomainPtr dom = doms ? doms[i] : recs[i]->dom;
        unsigned char uuid[VIR_UUID_BUFLEN];
        unsigned long long v = 0;
        const char *name = virDomainGetName(dom);
        if (virDomainGetUUID(dom, uuid) != 0 ||
            (!ids_get(n, uuid, u->instance_id, sizeof u->instance_id, 0) &&
             !dom_instance_id(dom, u->instance_id, sizeof u->instance_id)) ||
            !u->instance_id[0])
            continue; /* not shoal's, or gone meanwhile */
        if (doms) {
            if (name && proc_usage(dir, name, &u->mem_kib, &u->cpu_ns))
                u->mem_private = u->mem_kib > 0;
        } else {
            if (virTypedParamsGetULLong(recs[i]->params, recs[i]->nparams, "cpu.time", &v) == 1)
                u->cpu_ns = v;
            if (virTypedParamsGetULLong(recs[i]->params, recs[i]->nparams, "balloon.rss", &v) == 1)
                u->mem_kib = v;
        }
        k++;
    }
    *avail = avail_mib(conn, dir[0] != '\0');
    if (k == 0) {
        free(res);
        res = NULL;
    }
    *list = res;
    *count = k;
    res = NULL;
    rc = NODE_OK;
out:
    if (recs)
        virDomainStatsRecordListFree(recs);
    if (doms) {
        for (int i = 0; i < nr; i++)
            virDomainFree(doms[i]);
        free(doms);
    }
    free(res);
    conn_put(conn);
    return rc;
}

int node_foreign(struct node *n, struct node_foreign *out, char *err, size_t errlen)
{
    virDomainPtr *doms = NULL;
    virConnectPtr conn = NULL;
    uint64_t kib = 0;
    int nd = 0, rc;

    if (out)
        memset(out, 0, sizeof *out);
    rc = need_conn(n, "foreign", NULL, &conn, err, errlen);
    if (rc != NODE_OK)
        goto out;
    if (!out) {
        errbuf_set(err, errlen, "foreign: no output");
        rc = NODE_E_INVAL;
        goto out;
    }
    nd = virConnectListAllDomains(conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    if (nd < 0) {
        errbuf_set(err, errlen, "cannot list domains on '%s': %s", n->uri, lv_msg());
        rc = lv_status(n);
        nd = 0;
        goto out;
    }
    for (int i = 0; i < nd; i++) {
        unsigned char uuid[VIR_UUID_BUFLEN];
        char id[DOMXML_ID_MAX + 1];
        virDomainInfo info;
        /* shoal's own (known by uuid, else by its metadata), or gone */
        if (virDomainGetUUID(doms[i], uuid) != 0 || ids_get(n, uuid, id, sizeof id, 0) ||
            dom_instance_id(doms[i], id, sizeof id) || virDomainGetInfo(doms[i], &info) != 0)
            continue;
        out->domains++;
        kib += info.memory;
        out->vcpus += info.nrVirtCpu;
        out->cpu_ns += info.cpuTime;
    }
    out->memory_mib = (kib + 1023) / 1024;
    rc = NODE_OK;
out:
    for (int i = 0; i < nd; i++)
        virDomainFree(doms[i]);
    free(doms);
    conn_put(conn);
    return rc;
}

int node_reconnect(struct node *n, char *err, size_t errlen)
{
    int rc;
    if (!n) {
        errbuf_set(err, errlen, "reconnect: no node");
        return NODE_E_INVAL;
    }
    conn_drop(n);
    rc = conn_make(n, err, errlen);
    if (rc != NODE_OK)
        return rc;
    return settle(n, err, errlen);
}

const char *node_event_name(enum node_event ev)
{
    static const char *const names[] = { "started", "resumed", "suspended", "shutdown",
                                         "stopped", "crashed", "reboot",    "conn-lost" };
    return DETAIL(names, (int)ev);
}

const char *node_dom_state_name(enum node_dom_state st)
{
    static const char *const names[] = { "nostate",  "running", "blocked", "paused",
                                         "shutdown", "shutoff", "crashed", "pmsuspended" };
    return DETAIL(names, (int)st);
}
