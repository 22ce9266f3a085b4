/*
 * node.h - one libvirt connection = one host that runs shoal guests.
 *
 * A node owns a libvirt connection, probes the host once at open (capacity,
 * and whether domain type 'kvm' really works, by booting a canary guest),
 * starts/stops/lists shoal's domains, and turns libvirt's domain events
 * into node events for the daemon.
 *
 * URIs:
 *   qemu:///embed?root=DIR  the default: libvirt's QEMU driver inside this
 *                           process, no libvirtd. node_open writes
 *                           DIR/etc/qemu.conf (stdio_handler = "file", so no
 *                           virtlogd is needed) before connecting. libvirt
 *                           allows ONE embed root per process. The first open
 *                           of a fresh root probes QEMU (~8 s); later opens
 *                           reuse the cache under DIR.
 *   qemu:///system          a running libvirtd; qemu.conf is the operator's.
 *   qemu+ssh://host/system  any remote URI (the close callback matters here).
 *   test:///default         libvirt's mock driver, for scheduler-scale tests:
 *                           no canary is booted, the verdict is 'qemu' unless
 *                           forced, capacity is what the mock reports.
 *
 * Domains are TRANSIENT (virDomainCreateXML), by design: a guest that powers
 * off, crashes or is destroyed vanishes from libvirt, which matches "the
 * daemon decides restarts" - the desired state lives in shoald's database
 * and the XML is re-rendered from it, so there are no stale definitions to
 * undefine and nothing for libvirt to autostart behind the daemon's back.
 * Running transient domains still survive a restart of libvirtd or of the
 * embedding process (libvirt keeps their status and reconnects), which is
 * all reconcile needs. A domain belongs to shoal iff it carries shoal's
 * <metadata> element (domxml.h, DOMXML_NS_URI); all other domains on the
 * host are ignored by node_list() and by event delivery.
 *
 * Threads: libvirt's default event loop runs in one process-wide thread
 * started by the first node_open() and stopped by the last node_close().
 * Event callbacks (node_event_fn) run on that thread. All other functions
 * may be called from any thread except that event thread (they block);
 * a node may be used by several threads at once, except that node_close()
 * must not race other calls on the same node, and node_open() /
 * node_reconnect() must not race each other or node_close(). A
 * node_reconnect() may run while other calls are under way: each call
 * holds a reference to the connection it began on, finishes on it (or
 * fails, once libvirt closes it), and calls that begin meanwhile fail with
 * NODE_E_CONN until the new connection is open.
 *
 * Errors: functions return NODE_OK (0) or a negative node_status, and write
 * a human-readable message quoting the bad value / libvirt's reason to
 * err[errlen] when err is not NULL. Nothing here calls exit().
 */
#ifndef SHOAL_NODE_H
#define SHOAL_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "domxml.h"

/* Size for error buffers passed to this module (messages are truncated to
 * whatever errlen the caller gives; this fits all of them). */
#define NODE_ERR_MAX 512

/* Defaults for node_opts fields left 0/NULL. */
#define NODE_CANARY_TIMEOUT_MS 10000u /* canary must power off within this */
#define NODE_SETTLE_TIMEOUT_MS 10000u /* adoption of running domains, see node_open */
#define NODE_CANARY_INSTALLED  SHOAL_DATADIR "/shoal/canary.elf"

/* QEMU's user on an embedded connection when node_opts.qemu_user is NULL:
 * a system user with no login and no capabilities, in group kvm
 * (scripts/setup-debian.sh creates it; docs/node.md "QEMU's user"). */
#define NODE_QEMU_USER_DEFAULT "shoal-qemu"

/* Per-guest cgroup limits node_start sets on every QEMU driver (not on
 * test:///). Memory: the guest's RAM plus this much for QEMU itself (an
 * idle 32 MiB guest's QEMU has ~13-19 MiB of its own, docs/node.md; the
 * rest is room for TCG's code buffer, which grows with the code a guest
 * runs); a QEMU past it is reclaimed from, then killed by the kernel's OOM
 * killer (the run ends crashed). CPU: the vCPUs at 100 % each plus this
 * much for QEMU's main loop and I/O threads, per 100 ms period. */
/* libvirt's log of one domain (ROOT/log/qemu/<name>.log) on an embedded
 * root: node_start moves it to <name>.log.1 once it is past this size. */
#define NODE_QEMU_LOG_MAX (256u * 1024u)

#define NODE_QEMU_MEM_OVERHEAD_MIB 256u
#define NODE_QEMU_CPU_EXTRA_PCT    50u

enum node_status {
    NODE_OK = 0,
    NODE_E_INVAL = -1,    /* bad argument or spec (message quotes it) */
    NODE_E_NOMEM = -2,    /* allocation failed */
    NODE_E_LIBVIRT = -3,  /* libvirt refused the operation; message is libvirt's */
    NODE_E_NOTFOUND = -4, /* no such (running) domain */
    NODE_E_EXISTS = -5,   /* a domain with that name already exists */
    NODE_E_CONN = -6,     /* the connection is lost; call node_reconnect() */
    NODE_E_TIMEOUT = -7,  /* a bounded wait expired */
    NODE_E_IO = -8,       /* a local file (qemu.conf, canary files) failed */
};

/* Node events, delivered per shoal domain (and CONN_LOST per node).
 * node_start creates the domain paused and then resumes it (see
 * node_start), so every start begins with
 *   STARTED(booted), SUSPENDED(paused), RESUMED(unpaused)
 * in that order, followed by how the run ends. Sequences measured on the
 * embed driver here (after the three start events):
 *   guest powers off:  SHUTDOWN(guest), STOPPED(shutdown)
 *                      (STOPPED ~1.2-1.4 s after SHUTDOWN); also for a
 *                      guest that powers off at once
 *   node_destroy:      SHUTDOWN(host), STOPPED(destroyed)
 *   pvpanic:           CRASHED(panicked), STOPPED(crashed)
 *   SSE under kvm-pvm: CRASHED(kvm-internal-error) 1 s after the pause,
 *                      domain stays paused
 * Before the paused start, RESUMED arrived before STARTED, there was no
 * SUSPENDED, and a guest that powered off at once could even deliver
 * SHUTDOWN before STARTED (libvirt queues STARTED when the create returns). */
enum node_event {
    NODE_EVENT_STARTED = 0,   /* QEMU started; detail: "booted", "restored", ... */
    NODE_EVENT_RESUMED = 1,   /* vCPUs running; "unpaused" right after
                                 node_start's SUSPENDED */
    NODE_EVENT_SUSPENDED = 2, /* paused for a benign reason: "paused" once at
                                 every start (the domain is created paused);
                                 shoal never pauses a running guest */
    NODE_EVENT_SHUTDOWN = 3,  /* guest powered off / shutdown requested; QEMU
                                 is being torn down, STOPPED follows ~1.5 s later.
                                 detail: "finished", "guest", "host" */
    NODE_EVENT_STOPPED = 4,   /* domain gone (transient: no longer listed).
                                 detail: "shutdown", "destroyed", "crashed",
                                 "failed", "migrated", "saved", "unknown" */
    NODE_EVENT_CRASHED = 5,   /* guest crashed. detail: "panicked" (pvpanic),
                                 "crashloaded", "kvm-internal-error" (paused with
                                 an emulation failure, e.g. SSE under kvm-pvm;
                                 the domain stays PAUSED until destroyed; sent
                                 1 s after the pause, once a panic would have
                                 shown as "panicked" instead),
                                 "paused-crashed", "io-error" */
    NODE_EVENT_REBOOT = 6,    /* guest reset (with on_reboot=destroy, STOPPED follows) */
    NODE_EVENT_CONN_LOST = 7, /* connection closed; instance_id is NULL. detail:
                                 "error", "eof", "keepalive", "client" */
};

struct node;

/*
 * Event callback. Runs on the libvirt event-loop thread: it must return
 * quickly and must NOT block or call node_* functions that wait (node_start,
 * node_shutdown, node_list, node_open/close/reconnect...); hand the event to
 * another thread (queue + eventfd/condvar) instead. instance_id and detail
 * are valid only during the call. Events for domains without shoal metadata
 * are not delivered.
 */
typedef void node_event_fn(struct node *node, const char *instance_id, enum node_event event,
                           const char *detail, void *user);

/* Options for node_open(). Zero-initialise, then set what you need. */
struct node_opts {
    enum domxml_virt domain_type; /* AUTO: decided by the canary boot;
                                     KVM or QEMU: forced by the operator */
    const char *canary_path;      /* canary ELF; NULL: NODE_CANARY_INSTALLED,
                                     then the build-tree copy */
    const char *state_dir;        /* existing dir for the verdict cache and the
                                     canary's console files; NULL: the embed
                                     root, else no cache and files in /tmp */
    unsigned canary_timeout_ms;   /* 0: NODE_CANARY_TIMEOUT_MS */
    unsigned settle_timeout_ms;   /* 0: NODE_SETTLE_TIMEOUT_MS */
    int no_cache;                 /* 1: ignore and do not write the verdict cache */
    int guest_thp;                /* 0 (default): an embedded connection
                                     (qemu:///embed) sets PR_SET_THP_DISABLE on
                                     this process, so the QEMUs it forks map no
                                     transparent huge pages (-3.4 MiB per idle
                                     guest, docs/node.md "Memory per guest");
                                     process-wide and never undone. 1: leave THP
                                     alone. No effect on other URIs. */
    int qemu_no_aslr;             /* 1: an embedded connection starts QEMU
                                     without address-space randomisation
                                     (personality ADDR_NO_RANDOMIZE on the
                                     creating thread, inherited by the QEMU
                                     it forks): every QEMU then has the same
                                     layout and KSM merges its relocated data
                                     and heap (13.5 -> 2.8 MiB PSS per idle
                                     guest with KSM, docs/node.md "Memory per
                                     guest"), at the price of a predictable
                                     layout for an attacker. 0 (default):
                                     randomised. No effect on other URIs. */
    const char *qemu_user;        /* embedded connections: the user every QEMU
                                     runs as (name); NULL: NODE_QEMU_USER_DEFAULT.
                                     It must exist, or node_open fails naming the
                                     way out (no silent fallback to root). "root"
                                     runs QEMU as root, as before issue 16.
                                     node_open writes it into ROOT/etc/qemu.conf
                                     with libvirt's relabelling off
                                     (dynamic_ownership = 0), capabilities
                                     cleared and the seccomp sandbox on, and
                                     makes ROOT root:<its group> 0710. What QEMU
                                     opens itself is then handed to it by
                                     node_start; the kernel image must be
                                     readable by its group (shoald's image cache
                                     is root:<group> 0750). Ignored for other
                                     URIs (a libvirt daemon's qemu.conf decides) */
    node_event_fn *on_event;      /* may be NULL */
    void *user;                   /* passed to on_event */
};

/* Host capacity as libvirt reports it. */
struct node_capacity {
    uint64_t memory_mib;      /* total RAM (virNodeGetInfo) */
    uint64_t free_memory_mib; /* free RAM now (virNodeGetFreeMemory; 0 if unknown) */
    unsigned vcpus;           /* logical CPUs (virNodeGetInfo) */
    char model[32];           /* CPU model string, e.g. "x86_64" */
};

/* Domain state, 1:1 with libvirt's virDomainState. */
enum node_dom_state {
    NODE_DOM_NOSTATE = 0,
    NODE_DOM_RUNNING = 1,
    NODE_DOM_BLOCKED = 2,
    NODE_DOM_PAUSED = 3,
    NODE_DOM_SHUTDOWN = 4, /* being shut down */
    NODE_DOM_SHUTOFF = 5,
    NODE_DOM_CRASHED = 6,
    NODE_DOM_PMSUSPENDED = 7,
};

/* One shoal domain, as listed or queried. */
struct node_dom {
    char name[256];                      /* libvirt domain name */
    char uuid[DOMXML_UUID_LEN + 1];      /* libvirt UUID, canonical form */
    char instance_id[DOMXML_ID_MAX + 1]; /* from shoal metadata; "" if none */
    enum node_dom_state state;           /* current state */
    int reason;                          /* libvirt's reason code for state */
    int internal_error;                  /* 1: paused with an unknown reason or
                                          crashed - treat as a crash
                                          ("kvm-internal-error") */
};

/* Resume domain `name` if it is paused the way node_start leaves it
 * between creating and resuming it (reason user or starting up): a shoald
 * killed in that window leaves it so, and reconcile adopts it (docs/shoald.md
 * "Faults"). shoal never pauses a guest otherwise. Returns 1 if resumed, 0
 * if it was not paused so (running, or paused by a crash), else NODE_E_*.
 * Its memory limit (set in that window) may be missing. Any thread. */
int node_resume_started(struct node *n, const char *name, char *err, size_t errlen);

/* The uid and primary gid of QEMU's user `user` (NULL:
 * NODE_QEMU_USER_DEFAULT). NODE_E_INVAL with a message naming how to create
 * it when there is no such user. Any thread. */
int node_qemu_ids(const char *user, unsigned *uid, unsigned *gid, char *err, size_t errlen);

/* Remove libvirt's QEMU log of domain `name` (and its .1) under the embed
 * root of `uri`; nothing for other URIs (a libvirt daemon keeps its own
 * logs, /var/log/libvirt/qemu, and rotates them). libvirt never removes
 * them: call it when the domain's instance is deleted. The canary's are
 * removed by node_open itself. 0, or -1 when a file could not be removed.
 * No connection needed; any thread. */
int node_domain_log_remove(const char *uri, const char *name);

/* Thin libvirt's QEMU capabilities cache under the embed root ROOT (each
 * .xml file in ROOT/cache/qemu/capabilities): drop the CPU model lists
 * (<cpu type='...'> entries with their <blocker> lines), the host CPU
 * model info (<hostCPU> blocks), the flag cpu-unavailable-features and
 * every machine type but DOMXML_MACHINE's and the default, keeping every
 * other line byte for byte (a
 * file is rewritten through a temporary file and rename; one with an
 * unterminated block is left alone). libvirt 9.0 copies the capabilities
 * into every domain it starts and keeps the copy while the domain runs;
 * those parts were ~230 KiB of this process's RSS per running guest
 * (docs/benchmarks.md, "shoald memory per instance"). The cost: libvirt
 * then refuses CPU modes 'custom' and 'host-model' on this driver (no model
 * is known) and machine types other than those kept; shoal's domains name no CPU and get QEMU's default model, the
 * one libvirt would have named (qemu64). Without the flag libvirt reads a
 * started guest's CPU back in 3 QMP commands instead of ~400 (~250 ms of a
 * start; docs/benchmarks.md, "Boot storms"), and would refuse a domain CPU
 * that names MSR features. node_open trims an embedded root's
 * cache before connecting, after having a separate `virsh` process probe
 * QEMU into it when needed (else the probing process keeps a full copy),
 * and again after connecting. Returns the number of lines dropped (0: none,
 * or no cache yet), -1 when a file could not be read or rewritten. */
int node_caps_cache_trim(const char *root);

/*
 * Connect to `uri` (NULL: error; no implicit default), start the event loop
 * if needed, register event and close callbacks, probe capacity, decide the
 * domain type (forced, cached verdict, or canary boots of up to
 * canary_timeout_ms each: kvm is chosen when its canary powers off and runs
 * a fixed loop no slower than 2x TCG's; nested kvm-pvm runs it ~1000x
 * slower, so there the verdict is qemu), then wait until libvirt has finished adopting domains
 * that were already running (embed/system drivers reconnect to them
 * asynchronously: a destroy issued right after open failed with "Domain not
 * found" and lost the VM; node_open returns only once every listed domain
 * answers a monitor-backed query, bounded by settle_timeout_ms).
 * On success *out owns the node; free with node_close().
 * Errors: NODE_E_INVAL (uri/opts), NODE_E_IO (qemu.conf), NODE_E_LIBVIRT or
 * NODE_E_CONN (connect failed), NODE_E_NOMEM.
 */
int node_open(const char *uri, const struct node_opts *opts, struct node **out, char *err,
              size_t errlen);

/* Deregister callbacks (waits until libvirt has released them, so no
 * callback runs after this returns), close the connection, stop the event
 * loop if this was the last node. Running domains keep running. Accepts
 * NULL. Embed driver: libvirt keeps the driver loaded (and the root locked)
 * until the process exits, but with the loop stopped it no longer services
 * QEMU monitors, so a guest powering off after the last node_close keeps
 * its QEMU until a later open (in this or another process) adopts it.
 * Close the last node only when the process is about to exit. */
void node_close(struct node *node);

/* URI given to node_open (owned by node). */
const char *node_uri(const struct node *node);

/* The domain type node_start() uses for DOMXML_VIRT_AUTO specs, and a short
 * human-readable reason ("forced", "canary powered off in 180 ms", "cached",
 * "canary paused: KVM internal error", ...). Owned by node. */
enum domxml_virt node_domain_type(const struct node *node);
const char *node_domain_type_reason(const struct node *node);

/* One line on how the node confines each guest's QEMU, for shoald's log:
 * its user and which per-guest cgroup limits apply ("QEMU runs as
 * shoal-qemu (uid 994, gid 994), no capabilities, seccomp; cgroup limits
 * per guest: memory, cpu"). A limit whose cgroup controller this process
 * cannot see (e.g. under `ip netns exec`, which mounts a fresh /sys) is
 * not set, and the line says so. Owned by node. */
const char *node_confinement(const struct node *node);

/* 1 if domain type kvm runs guests on this host at all (a kvm canary
 * powered off), even when the verdict chose qemu because kvm was slower. */
int node_kvm_works(const struct node *node);

/* Make dir (created if missing) a directory where QEMU's user can create a
 * listening socket (domxml_spec.console_sock): on an embedded connection
 * owned by QEMU's user, mode 0700 (only it and root get in); else 0711 as
 * it is. NODE_E_IO with the path quoted. */
int node_sock_dir(struct node *node, const char *dir, char *err, size_t errlen);

/* Capacity as probed at open (refreshes free memory). */
int node_capacity(struct node *node, struct node_capacity *cap, char *err, size_t errlen);

/*
 * Start a transient domain rendered from `spec` (spec->virt AUTO is replaced
 * by node_domain_type()): created paused (VIR_DOMAIN_START_PAUSED), then
 * resumed. Returns once the vCPUs were set running (~0.5 s on the embed
 * driver). A guest that powers off or crashes at once is a successful
 * start whose end arrives as events (SHUTDOWN, STOPPED / CRASHED), never a
 * start error: libvirt kills QEMU on the guest's poweroff, and a create
 * still in progress then failed ("qemu unexpectedly closed the monitor",
 * issue 12; docs/node.md "Starting: paused, then resumed"). Between create
 * and resume (a few ms) node_list shows the domain PAUSED (reason user).
 * spec->instance_id should be set: without it the domain is not
 * shoal's (not listed, no events). uuid_out (may be NULL) receives the UUID.
 * Confinement (issue 16; docs/node.md "QEMU's user"), on an embedded
 * connection: spec->disk is chowned to QEMU's user, mode 0600. With
 * spec->fwcfg_data, node_start writes it to WORK_DIR/guestcfg/<name>.cfg
 * (WORK_DIR: node_opts.state_dir, else the embed root; the directory
 * root:<QEMU's group> 0710, the file QEMU's user's, 0400), renders it as
 * fw_cfg file DOMXML_FWCFG_RECORD, and removes the file as soon as the
 * create returned (QEMU read it at its start), whatever the outcome; a
 * spec->fwcfg_file of the caller is replaced. On every driver but test:///,
 * the guest's cgroup gets a CPU quota (spec->cpu_quota_pct, or the vCPUs
 * plus NODE_QEMU_CPU_EXTRA_PCT) and a memory hard limit (RAM plus
 * NODE_QEMU_MEM_OVERHEAD_MIB, set while the domain is still paused).
 * Errors: NODE_E_INVAL (spec; message from domxml), NODE_E_EXISTS (name in
 * use), NODE_E_LIBVIRT (e.g. missing kernel file, KVM unavailable, or a
 * resume that left the guest paused without running it: the domain is then
 * destroyed; a memory limit libvirt refused, likewise), NODE_E_IO (the
 * disk or the record could not be handed to QEMU's user), NODE_E_CONN.
 * With spec->nice > 0 QEMU runs at that nice value from its start (the
 * embedded driver forks it from the calling thread, which makes the create
 * at that nice; otherwise node_guest_nice before the vCPUs run).
 * On NODE_OK err holds "" or a warning: serial ports that should have been
 * streamed (see node_serial_live) and were not, and why; or why QEMU is
 * not at spec->nice.
 */
int node_start(struct node *node, const struct domxml_spec *spec,
               char uuid_out[DOMXML_UUID_LEN + 1], char *err, size_t errlen);

/*
 * Graceful stop: virDomainShutdown (ACPI power button), wait up to
 * timeout_ms for the domain to go away, then virDomainDestroy. The reference
 * guest ignores the power button, so expect the destroy; a guest that
 * listens to ACPI stops by itself. *forced (may be NULL) is set to 1 if
 * destroy was needed. Blocks up to timeout_ms + a few seconds.
 * Errors: NODE_E_NOTFOUND (not running), NODE_E_LIBVIRT, NODE_E_CONN.
 */
int node_shutdown(struct node *node, const char *name, unsigned timeout_ms, int *forced, char *err,
                  size_t errlen);

/* Hard stop (virDomainDestroy: SIGTERM then SIGKILL to QEMU). Returns once
 * QEMU is gone. Errors: NODE_E_NOTFOUND, NODE_E_LIBVIRT, NODE_E_CONN. */
int node_destroy(struct node *node, const char *name, char *err, size_t errlen);

/* Set every thread of local domain `name`'s QEMU (and of the exit-status
 * wrapper it runs under) to nice value `nice` (setpriority per thread of
 * /proc/PID/task; threads QEMU creates later inherit it from their
 * creator). A warm pool guest waits at low priority and is set back to
 * shoald's own before its claim's record (docs/node.md "Warm pool guests
 * at low priority"). Errors: NODE_E_INVAL (not a local host's domain),
 * NODE_E_NOTFOUND (no QEMU process), NODE_E_IO (setpriority refused: a
 * lower value needs CAP_SYS_NICE or RLIMIT_NICE). */
int node_guest_nice(struct node *node, const char *name, int nice, char *err, size_t errlen);

/* Make running domain `name` instance `id`'s: its shoal metadata (live
 * only: it is transient) names id, and so do its events, usage and list
 * entries from now on. A warm pool guest handed to an idle instance's
 * wake (docs/shoald.md "Scale to zero"). Errors: NODE_E_INVAL (id not a
 * valid instance id), NODE_E_NOTFOUND, NODE_E_LIBVIRT, NODE_E_CONN. */
int node_set_instance_id(struct node *node, const char *name, const char *id, char *err,
                         size_t errlen);

/* Forget which instance running domain `name` is, so that its end (a
 * destroy about to come) is reported to no instance: a claimed warm pool
 * guest given up by its instance's start, whose domain name the cold
 * start that follows reuses. A no-op when it is not running. */
void node_forget(struct node *node, const char *name);

/* State of domain `name`. Errors: NODE_E_NOTFOUND, NODE_E_LIBVIRT, NODE_E_CONN. */
int node_state(struct node *node, const char *name, struct node_dom *out, char *err, size_t errlen);

/*
 * All active shoal domains (those with shoal metadata). On success *list is
 * a malloc'd array of *count entries (NULL if 0); free with node_list_free().
 * Errors: NODE_E_LIBVIRT, NODE_E_CONN, NODE_E_NOMEM.
 */
int node_list(struct node *node, struct node_dom **list, size_t *count, char *err, size_t errlen);
void node_list_free(struct node_dom *list);

/* What one running shoal domain really costs its host (node_usage). */
struct node_usage {
    char instance_id[DOMXML_ID_MAX + 1]; /* from shoal metadata */
    uint64_t mem_kib;                    /* memory the guest holds; 0 = unknown */
    int mem_private;                     /* 1: mem_kib is QEMU's private
                                            (anonymous) resident memory, read
                                            from /proc on a local host; 0: its
                                            whole RSS as libvirt reports it
                                            (shared library pages included) */
    uint64_t cpu_ns;                     /* CPU time used so far; 0 = unknown */
};

/*
 * Measure every running shoal domain in one pass. On a local URI -
 * qemu:///embed, qemu:///system - from /proc through each QEMU's pid file:
 * CPU from /proc/PID/stat, memory from /proc/PID/status RssAnon (RSS counts
 * the QEMU binary and libraries every guest shares), asking no QEMU
 * anything (libvirt's CPU statistics send each QEMU a QMP command, which
 * woke every idle guest's QEMU at each sample); elsewhere through
 * virConnectGetAllDomainStats (CPU and balloon stats). Also reports
 * the host's available memory in *avail_mib (MemAvailable locally, free +
 * buffers + cached through libvirt elsewhere; 0 = unknown). On success *list
 * is a malloc'd array of *count entries (NULL if 0), freed with free().
 * Cost: about 1 ms per 10 domains. Errors: NODE_E_LIBVIRT, NODE_E_CONN,
 * NODE_E_NOMEM.
 */
/* Only the host's available memory, as node_usage reports it (MiB, 0 =
 * unknown): a /proc read on a local URI, one call to libvirt elsewhere. */
uint64_t node_mem_available(struct node *node);
/* One round trip to the node's driver (it answers with its libvirt
 * version, no other work): the failover's ping of a host that may hang
 * (docs/shoald.md "Host failure and fencing"); node_mem_available is no
 * round trip on a local URI. Waits as long as the host does. NODE_OK when
 * it answered. Errors: NODE_E_CONN, NODE_E_LIBVIRT. */
int node_ping(struct node *node);

int node_usage(struct node *node, struct node_usage **list, size_t *count, uint64_t *avail_mib,
               char *err, size_t errlen);

/* What a host runs that is not shoal's (issue 17: hosts that already run
 * other things): its active domains without shoal's metadata. memory_mib
 * is what libvirt says each holds now (virDomainGetInfo: the balloon's
 * current size, which the guest may touch whole), vcpus their vCPUs,
 * cpu_ns their CPU time so far (0 = unknown). The embedded driver lists
 * only its own domains, so the local host reports none; a libvirtd
 * (qemu:///system, remote) lists everyone's. Cost: one list, plus a
 * metadata and an info call per domain not yet known as shoal's. Errors:
 * NODE_E_LIBVIRT, NODE_E_CONN. */
struct node_foreign {
    unsigned domains;
    uint64_t memory_mib;
    unsigned vcpus;
    uint64_t cpu_ns;
};
int node_foreign(struct node *node, struct node_foreign *out, char *err, size_t errlen);

/* Remote hosts (issue 17; nodestore.h, docs/node.md "Remote hosts"): a
 * node whose URI is remote (another machine: qemu+tcp, +ssh, +tls, ...)
 * has node_start deliver the kernel and initrd, or a disk's base
 * (spec->disk_base), as image volumes named by digest (uploaded once,
 * verified, cached), make a disk's overlay there, and put the console,
 * status and guest record files in a storage pool on that host instead of
 * the paths the spec names. node_remote: 1 for such a node. */
int node_remote(const struct node *node);

/* Remove image volumes whose digest (64 hex) is not in keep and run files
 * of domains not in keep_domains from a remote host; NODE_OK at once on
 * other hosts. *removed (may be NULL): image volumes removed. Errors:
 * NODE_E_LIBVIRT, NODE_E_CONN. */
int node_store_gc(struct node *node, const char *const *keep, size_t nkeep,
                  const char *const *keep_domains, size_t nkeep_domains, unsigned *removed,
                  char *err, size_t errlen);

/* Remove domain `name`'s files from a remote host (its serial files and
 * its disk overlay: its instance is deleted); NODE_OK at once on other
 * hosts and when there are none. Errors: NODE_E_LIBVIRT, NODE_E_CONN. */
int node_store_forget(struct node *node, const char *name, char *err, size_t errlen);

/* Copy domain `name`'s run file with `suffix` (".status", ".console") from
 * a remote host to local_path (at most its last max bytes); NODE_OK at
 * once on other hosts. NODE_E_INVAL when the host has no such file. */
int node_fetch_run_file(struct node *node, const char *name, const char *suffix,
                        const char *local_path, uint64_t max, char *err, size_t errlen);

/* A remote host's guest network (nodenet.h, docs/node.md "Remote hosts"):
 * node_net_get reads the host's libvirt network NNET_NETWORK (*found 0
 * when it has none; else its gateway and prefix); node_net_ensure makes it
 * exist with gateway gw (host order) / prefix, active and autostarted, and
 * defines the guest filter NNET_FILTER (once per node); node_net_remove
 * undefines the network if shoald defined it, and the filter. Callers
 * serialise them per host. NODE_E_INVAL when the host's network has another
 * address (message says which); NODE_E_LIBVIRT, NODE_E_CONN. */
int node_net_get(struct node *node, int *found, uint32_t *gw, int *prefix, char *err,
                 size_t errlen);
int node_net_ensure(struct node *node, uint32_t gw, int prefix, char *err, size_t errlen);
int node_net_remove(struct node *node, int *removed, char *err, size_t errlen);

/* Static DHCP entries of a remote host's NNET_NETWORK (nodenet.h
 * nnet_dhcp_*): list (malloc'd, free it), make one exist, delete one by
 * MAC, and the addresses the host's dnsmasq still leases to another MAC.
 * NODE_E_LIBVIRT (message says what libvirt said, e.g. no dnsmasq),
 * NODE_E_CONN. */
struct nnet_host;
int node_net_dhcp_list(struct node *node, struct nnet_host **out, size_t *n, char *err,
                       size_t errlen);
int node_net_dhcp_put(struct node *node, const struct nnet_host *h, char *err, size_t errlen);
int node_net_dhcp_del(struct node *node, const char *mac, char *err, size_t errlen);
int node_net_dhcp_leased(struct node *node, const char *except_mac, uint32_t **out, size_t *n,
                         char *err, size_t errlen);

/* Serial ports through libvirt streams (issue 17; nodestream.h, docs/node.md
 * "Remote hosts"). On a remote node, node_start renders both serial ports as
 * ptys logged to the host's run files and, while the domain is still paused,
 * opens each as a stream that appends to the local file the spec names
 * (console_log, status_log): the local files then follow the guest live.
 * port: 0 the console, 1 the status channel.
 *
 * node_serial_live: 1 if that port of domain `name` has been read through a
 * stream since its start and the stream has not failed (it may have ended
 * with the port): the local file has what the guest wrote, no fetch is
 * needed. 0 otherwise (not remote, not opened, broken, after a reconnect).
 *
 * node_serial_done: the domain is gone; wait up to timeout_ms for the
 * port's stream to see the port's end, then close it (its writes to the
 * local file are over). 1 if it saw the end, 0 if not. Even then the file
 * may miss the last bytes: a pty's hang-up drops what its reader had not
 * read yet (measured: a guest's exit record written just before it powered
 * off, 1 run in 4), so a run's end fetches the host's log all the same.
 *
 * node_serial_adopt: a running guest of a remote node found by reconcile
 * with no streams (its connection was lost and made again, or shoald
 * restarted) gets them again. The guest is paused while its local files
 * are replaced by the host's logs (console_log by the console's last
 * console_max bytes, status_log by the status file's last status_max)
 * and both streams are opened (taking the ports from streams of a lost
 * connection that the host still holds), then resumed: the local files
 * then hold each byte the guest wrote once and in order, as a start's
 * streams do (docs/node.md "Remote hosts"). *paused_ms: how long it was
 * paused (-1: not paused). NODE_OK also when there is nothing to do (not
 * remote, streams open or a start opening them, the domain not running);
 * else the status, and the ports are left to the fetch (the guest runs
 * on; one left paused by a failed resume is resumed by the next
 * reconcile).
 *
 * node_stream_counts: streams opened, failed to open, and aborted before a
 * stop (node_destroy and node_shutdown abort a running domain's open
 * streams before they ask the host to stop it: nodestream.h
 * nstream_abort; the run's end fetches its files), process-wide. */
int node_serial_adopt(struct node *node, const char *name, const char *console_log,
                      uint64_t console_max, const char *status_log, uint64_t status_max,
                      int *paused_ms, char *err, size_t errlen);
int node_serial_live(struct node *node, const char *name, int port);
int node_serial_done(struct node *node, const char *name, int port, int timeout_ms);
void node_stream_counts(unsigned long long *opens, unsigned long long *failures,
                        unsigned long long *aborts);

/* 1 if the connection is open and alive, 0 if lost (CONN_LOST was sent). */
int node_alive(struct node *node);

/*
 * Replace a lost (or live) connection with a new one to the same URI and
 * re-register callbacks; the verdict and capacity are kept. Like node_open,
 * it waits for adoption of running domains before returning - callers must
 * still treat "Domain not found" right after a reconnect with suspicion and
 * re-list before acting (see node_open). Errors as node_open.
 */
int node_reconnect(struct node *node, char *err, size_t errlen);

/* Names of enum values, for logs ("started", "stopped", ...). */
const char *node_event_name(enum node_event ev);
const char *node_dom_state_name(enum node_dom_state st);

#endif /* SHOAL_NODE_H */
