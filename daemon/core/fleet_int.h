/* fleet_int.h - the core's private types, and shoald's threads and locks.
 * Only the files of daemon/core include this; everyone else sees fleet.h.
 *
 * THREADS (every thread shoald runs)
 *   main            shoald.c: opens the fleet, starts the API server, waits
 *                   for SIGINT/SIGTERM, stops the server, closes the fleet.
 *   API             libmicrohttpd's connection threads (api/server.c): call
 *                   fleet_* operations. They may block for bounded times (a
 *                   stop waits for the domain to go, up to ~45 s). At most
 *                   --api-max-conns of them (--api-max-conns-per-ip per
 *                   client address), plus MHD's listening thread and the
 *                   API watchdog (api/server.c: every 250 ms shuts down
 *                   connections past their header deadline; its lock is a
 *                   leaf of the api, never held across anything but
 *                   shutdown(2)). Each request's token (api.h
 *                   api_request_principal) is a thread-local of the
 *                   connection thread serving it; every request but
 *                   /healthz takes tok.mu once to authenticate.
 *   start workers   --start-parallel threads (cfg.start_parallel, auto:
 *                   fleet_start_parallel_auto; jobs.c): run start jobs
 *                   (materialize, render, create the domain) from f->starts.
 *                   Their number is how many domains are created at once.
 *   event workers   FLEET_EVENT_WORKERS threads (jobs.c): run the other jobs
 *                   (end a run, destroy a crashed domain) from f->jobs, so
 *                   they never wait behind a boot storm's starts. Jobs of
 *                   one instance never run at once (fleet_rt.busy), whichever
 *                   pool runs them.
 *   supervisor      one thread (supervisor.c): inotify on the status files,
 *                   backoff timers, console rotation, reconnects of lost
 *                   hosts (queued on the remote I/O workers: it never
 *                   waits on a host), event trimming, the sweep of abandoned image
 *                   uploads (img_gc_uploads, every FLEET_UPLOAD_SWEEP_MS
 *                   and at its first tick), batch.progress events (batch.c;
 *                   the only thread that emits them), and every
 *                   FLEET_GUARD_VERIFY_MS a check that the guest isolation
 *                   table is still there (isolation.c). Ticks every 500 ms;
 *                   each tick re-reads the status files of a tenth of the
 *                   running instances (inotify covers the rest). File
 *                   events of flooding guests are ignored for a while, and
 *                   a batch of only those makes it sleep
 *                   FLEET_STATUS_FLOOD_PAUSE_MS before reading more (no
 *                   lock held). A running guest's status file on a remote
 *                   host is fetched by a remote I/O worker (remoteio.c).
 *   remote I/O      workers (remoteio.c) started on demand: run queued
 *                   items that wait on a host (a remote guest's status, a
 *                   host's reconnect with fence and reconcile, a failover
 *                   ping), the oldest whose host has none running. A new
 *                   one starts when items wait, none is idle and every
 *                   busy one has been on its item for FLEET_RIO_SLOW_MS
 *                   (a hung host's; fleet_rio_decide); at most
 *                   FLEET_RIO_MAX_WORKERS (8 answering remote hosts: 1); one
 *                   ends after FLEET_RIO_IDLE_MS idle. No fleet lock held
 *                   across libvirt; rio_mu (the queue) is a leaf.
 *                   Reconcile (reconcile.c) runs here on a reconnect (on
 *                   the main thread at open, on an API thread when a host
 *                   is added); it may finish a delete a killed shoald left
 *                   (no lock held).
 *   bulk workers    per bulk request (bulk.c), min(32, n) short-lived threads
 *                   that run the per-instance stop/start/restart/delete
 *                   calls; they take the locks below like any API thread,
 *                   plus their request's own mutex (next item, counters),
 *                   which is never held while another lock is taken.
 *   usage sampler   one thread (capacity.c): every FLEET_USAGE_PERIOD_MS
 *                   measures each up host's guests (node_usage), every
 *                   FLEET_AVAIL_PERIOD_MS its available memory, with no lock
 *                   held; stores the figures under mu (a reading the host
 *                   answered is also an answer for failover.c). The
 *                   embedded local host is read by the sampler; each other
 *                   host's reading (remote, or a libvirtd of this machine:
 *                   fleet_host_in_process) is a
 *                   FLEET_RIO_USAGE item on the remote I/O workers, stored
 *                   when it arrives: a hung host's figures grow stale
 *                   (fleet_usage_stale), the round and other hosts' do not
 *                   wait for it.
 *   libvirt events  one process-wide thread (node.c): node events arrive
 *                   here; the core only queues jobs or marks a host down
 *                   (jobs.c on_node_event) and never blocks on it.
 *                   Remote guests' serial streams (nodestream.h) append to
 *                   their local console and status files here (no RPC, no
 *                   fleet lock); inotify then wakes the supervisor.
 *   port proxy      one thread (portfwd.c) with its own lock; the core calls
 *                   pfwd_* from any thread.
 *   probes          one thread (daemon/probe.c, wired in health.c): every
 *                   readiness and health check of every instance, with
 *                   non-blocking sockets on one epoll set and reads of
 *                   console files (bounded); never blocks, never takes a
 *                   fleet lock. Its lock (probe_engine.mu) is a leaf, never
 *                   held across I/O or its callback; the callback takes
 *                   mu briefly (a ready run is marked so in the runtime
 *                   table while it surely runs) and queues a JOB_PROBE,
 *                   which an event worker runs (health.c fleet_job_probe:
 *                   the row, events, a restart).
 *   dnsmasq         with --dhcp on, one child process (the guest network's
 *                   DHCP server) and one thread (daemon/dhcp.c) that logs
 *                   its output and starts it again when it dies; the core
 *                   writes its lease list from API threads, start workers
 *                   and the supervisor (leases.c).
 *   warm pools      two threads (pool.c, pool.h): the manager keeps each
 *                   image's pool of booted, waiting guests filled on the
 *                   local host (a placement check under place_mu, then
 *                   libvirt and SQLite with no lock held); the watcher
 *                   reads booting guests' status files and connects their
 *                   console sockets (no lock held).
 *   failover        one thread (failover.c, failover.h): every 500 ms
 *                   queues the due pings of hosts behind a libvirtd
 *                   (remote or this machine's; FO_PING_MS, on the remote
 *                   I/O workers), notes hosts that went down
 *                   (a ping waits and no answer for FO_PING_DEAD_MS) or
 *                   came back and, once one has been down for
 *                   --host-grace, starts its instances elsewhere
 *                   (place_mu by trylock only, then row_mu, mu). Never
 *                   waits on a host.
 *   image store     img_store.c's own checkpoint thread and lock.
 *   privsep calls   --privsep on (api/chan_server.c): the supervisor reads
 *                   the front's calls; each runs on a pooled call worker
 *                   (one per call in flight, at most --api-max-conns + 16,
 *                   plus at most 16 idle for 10 s) that calls the adapter
 *                   like an API thread. Its locks (mu, wmu, all_mu,
 *                   pool.mu) are leaves of the api, never held across a
 *                   backend call.
 *
 * LOCKS, in the order they may be taken (never take one to the left while
 * holding one to its right):
 *
 *   tok.quota_mu  >  place_mu  >  row_mu  >  mu  >  (state_db, img_store,
 *                                    pfwd, netbr set, guard, probe engine,
 *                                    tok.mu: leaf locks inside those modules)
 *
 *   tok.quota_mu  daemon/tokens.c, taken by the adapter (backend.c) only
 *             around the create of a token that has quotas: its usage
 *             read, the check and fleet_instance_create, so two creates
 *             cannot both pass on the same room. The core never sees it.
 *   tok.mu    daemon/tokens.c: the tokens in memory and the module's own
 *             SQLite connection; a leaf (held across that connection's
 *             calls only), taken by API threads.
 *
 *   place_mu  fleet.place_mu. Every placement decision: instance create
 *             (names, ports, placement, addresses, rows), host cordon and
 *             removal, plan execution. Held across SQLite and the scheduler,
 *             and across a plan's cold moves (which wait for stops), so
 *             nothing is placed on a host that is being drained or removed;
 *             released during a live move (move.c), whose stand-in's create
 *             and delete take it.
 *             Jobs and the supervisor never take it.
 *   row_mu    fleet.row_mu. Read-modify-write of one instance row
 *             (runtime.c fleet_mutate); held only across the two SQLite calls.
 *   mu        fleet.mu. The in-memory tables: hosts (the array, each host's
 *             fields and refs), the runtime table, the job queues, batches
 *             (batch.c), event and metrics counters, `stopping`. Never held
 *             across a libvirt call, a SQLite call or file I/O (status files
 *             are read with it released: status.c). Condition variables
 *             job_cv, state_cv and event_cv go with it, and each host
 *             call's cv (remoteio.c, fleet_host_call: its caller waits on
 *             it, its thread signals it; the calls' count f->hcalls).
 *
 *   pool.mu   the warm pool table (pool.h): a leaf below mu, never held
 *             across I/O; a create claims a guest under it while holding
 *             place_mu (place_mu > row_mu > mu > pool.mu), a wake's job
 *             (idle.c) under it alone.
 *
 *   pg_mu     fleet.pg_mu (pages.c): GET /v1/instances from memory, the
 *             renderings and their order. Taken by API threads with no
 *             other fleet lock held; inside it the state db's lock (reads
 *             of the rows written since the last page: state.h journal),
 *             the probe engine's lock (health versions) and the adapter's
 *             renderer; held while a page is copied to the caller's sink.
 *             The journal is filled by SQLite's update hook under the
 *             state db's lock alone, so no writer ever waits on pg_mu.
 *
 *   rio_mu    fleet.rio_mu (remoteio.c): the remote I/O queue and its
 *             workers' slots, and each fleet_rio_call's state (its
 *             caller waits on the call's cv with it); a leaf, never held
 *             across anything but pthread_create and freeing a call's
 *             arg; items' hosts are held (refs) without it.
 *
 *   nstore conn_lock  nodestore.c, one per libvirt connection: a remote
 *             host's image check-and-upload and its volume GC (node.c
 *             node_stage_remote / node_store_gc); held across RPCs on that
 *             connection only, taken with no fleet lock held, so a hung
 *             host's upload blocks its own deliveries, never another host's
 *             start. Its list's tab_mu and stats_mu are leaves.
 *
 *   node smu  node.c, one per node: its streamed domains (node.h
 *             node_serial_live); a leaf for the core, never held across an
 *             RPC; a stream's own lock (nodestream.c) below it. Beside
 *             them nodestream.c's ended_mu (streams waiting for their
 *             delayed finish) and pending_mu (streams to free), leaves
 *             never held across an RPC.
 *
 *   dhcp_mu   fleet.dhcp_mu. Serializes writing the DHCP lease list
 *             (leases.c): held across the SQLite read of the rows and
 *             dhcp_set (~3 ms); taken with no other fleet lock held (so
 *             never under place_mu or row_mu), takes mu briefly inside:
 *             dhcp_mu > mu > (dhcp's own locks, leaves).
 *
 *   net_mu    fleet.net_mu (hostnet.c). Serializes what a networked start
 *             decides about addresses: a remote host's /24, an address
 *             picked for the start (SQLite read, the row's update); never
 *             held across a libvirt call. Taken by start jobs and a host's
 *             opener with no other fleet lock held; takes row_mu and mu
 *             inside: net_mu > row_mu > mu.
 *
 * Enforced by: fleet_mutate (runtime.c) takes row_mu alone and releases it
 * before taking mu; host_hold/host_release (hosts.c) keep a host and its
 * node alive without mu held; status.c marks a poll in progress instead of
 * holding mu while it reads.
 */
#ifndef SHOAL_FLEET_INT_H
#define SHOAL_FLEET_INT_H

#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "fleet.h"
#include "gstatus.h"
#include "node.h"
#include "portfwd.h"

#define FLEET_EVENT_WORKERS 4   /* threads for jobs other than starts */
#define FLEET_START_MAX     256 /* --start-parallel's upper bound */
#define FLEET_BATCH_EMIT_MS 500 /* batch.progress: at most one per period */
/* Failed instances named per batch.progress event (api.h
 * API_EVENT_FAILURES_MAX). */
#define FLEET_BATCH_FAILS    20
#define FLEET_SAFETY_POLL_MS 5000 /* each status file re-read at least this often */
/* Remote I/O workers (remoteio.c). */
#define FLEET_RIO_MAX_WORKERS 64    /* hung hosts served at once (each holds one) */
#define FLEET_RIO_IDLE_MS     10000 /* an idle worker ends after this long */
#define FLEET_RIO_STOP_MS     6000  /* fleet_close waits this long for workers */
#define FLEET_RIO_SLOW_MS     250   /* a worker on one item this long may be stuck */

/* Capacity model (capacity.c, docs/shoald.md "Capacity"). */
#define FLEET_USAGE_PERIOD_MS 5000 /* guests measured this often */
#define FLEET_AVAIL_PERIOD_MS 1000 /* hosts' available memory read this often */
/* A host's guest figures older than this are stale (3 periods: one missed
 * reading is not). */
#define FLEET_USAGE_STALE_MS  (3 * FLEET_USAGE_PERIOD_MS)
#define FLEET_USAGE_SETTLE_MS 10000 /* CPU counted from this long after a start */
#define FLEET_MEM_MARGIN_MIB  1     /* added to a guest's measured memory */
#define FLEET_TOUCH_GUESS_MIB 4     /* guest RAM a new guest is assumed to touch */
#define FLEET_CPU_FLOOR_MILLI 1     /* least CPU charged per vCPU, 1/1000 CPU */
#define FLEET_EVENTS_KEEP     10000 /* events retained for Last-Event-ID */
#define FLEET_BACKOFF_BASE_MS 500
#define FLEET_BACKOFF_CAP_MS  30000
#define FLEET_STABLE_RUN_MS   10000    /* a run this long resets the backoff */
#define FLEET_RECONNECT_MS    10000    /* retry period of a down host */
#define FLEET_PATH_MAX        PATH_MAX /* every file path the core builds */
/* A failed connect is retried after 1 s, then 2, 4, 8, and then every
 * FLEET_RECONNECT_MS: a libvirtd that restarts is back within a second or
 * two of being ready; a host that stays away costs one try a period. */
#define FLEET_RECONNECT_MIN_MS 1000
/* Status channel: bytes read per poll, and the most a status file may hold
 * on disk before the part already read is dropped (a guest that writes to
 * COM2 without end must not fill the disk or hold a thread). */
#define FLEET_STATUS_READ_MAX (16 * 1024)
#define FLEET_STATUS_FILE_MAX (64 * 1024)
#define FLEET_STATUS_QUIET_MS 500 /* file events ignored after a flood */
/* A batch of file events that were all ignored (flooding guests): the
 * supervisor reads the next one no sooner than this, so that the kernel
 * merges a flood's events instead of waking it for each write (issue 16:
 * ~50,000 wake-ups a second otherwise). Other guests' records wait at
 * most this long meanwhile (the tick reads them anyway). */
#define FLEET_STATUS_FLOOD_PAUSE_MS 10
/* DHCP lease list: the supervisor writes it at most this often (a start
 * job that needs it writes it at once: leases.c). */
#define FLEET_DHCP_DEBOUNCE_MS 200
/* The guest isolation table is checked (and written again if someone
 * flushed it) this often: one netlink request, well under 1 ms. */
#define FLEET_GUARD_VERIFY_MS 10000
/* Abandoned uploads (pending blobs of a gone process or a dropped client)
 * are collected by the supervisor this often, and at its first tick. */
#define FLEET_UPLOAD_SWEEP_MS 60000

struct node;
struct pfwd;
struct netbr_set;
struct guard;
struct img_store;
struct dhcp;
struct probe_engine;

/* One host: a libvirt connection plus what the scheduler needs to know.
 * Heap-allocated; f->hosts holds pointers, so a host outlives its removal
 * from the table while someone holds it (refs). Fields under f->mu. */
typedef struct fleet_host {
    char name[STATE_NAME_MAX];
    char uri[STATE_URI_MAX];
    char *labels_json;       /* owned; "{}" when none */
    char domain_type_cfg[8]; /* "auto", "kvm", "qemu" as configured */
    struct node *node;       /* NULL until first opened */
    int up;                  /* connection alive */
    int cordoned;
    char last_error[NODE_ERR_MAX]; /* why it is down */
    uint64_t mem_mib;              /* capacity as probed */
    uint32_t vcpus;
    uint32_t slots;
    int64_t next_retry_ms;  /* monotonic ms of the next reconnect try */
    int retry_level;        /* failed connects in a row (backoff) */
    int opening;            /* being opened/reconnected: nobody else does */
    int refs;               /* holders (host_hold) */
    int removed;            /* out of the table; last release frees */
    int reconciled;         /* reconciled at least once (reconcile.c) */
    uint64_t avail_mib;     /* host's available memory as last read, 0 = unknown */
    int64_t avail_at_ms;    /* monotonic ms of that read */
    int64_t heard_ms;       /* the sampler's last reading the host answered (failover.c) */
    uint64_t use_cpu_milli; /* CPU its guests used, 1/1000 CPU (sampler) */
    uint32_t use_guests;    /* guests measured in the last sample */
    int64_t use_at_ms;      /* monotonic ms of the last sample, 0 = none */
    int64_t down_ms;        /* monotonic ms it was first seen down, 0 = up (failover.c) */
    int64_t down_wall_ms;   /* the same, wall clock */
    int64_t ping_ms;        /* its ping (failover.c) queued or in flight since, 0 none */
    int64_t ping_last_ms;   /* last ping queued */
    int64_t pong_ms;        /* its last ping answered, 0 none */
    int64_t up_ms;          /* first seen up (failover tick) since it last came up, 0 down */
    int hung;               /* down by ping: opening held until the ping returns */
    uint32_t net_gw;        /* remote: its guest network's gateway (hostnet.c), 0 unknown */
    int dhcp_failing;       /* remote: its last DHCP entry was refused (no dnsmasq
                               there?): the next refusals are not warned of again */
    int fencing;            /* connected again, being fenced: no failover decisions (failover.c) */
    /* Under rio_mu (remoteio.c): an item of this host runs on a remote I/O
     * worker; the mark of the last count of hosts with items waiting. */
    int rio_busy;
    uint64_t rio_gen;
    /* What it runs that is not shoal's (node_foreign, read by the sampler
     * and at open): placement never gives away their memory (capacity.c). */
    struct node_foreign others;
    uint32_t others_cpu_milli; /* their CPU use over the last period, 1/1000 CPU */
    int64_t others_at_ms;      /* monotonic ms of that reading, 0 = none */
} fleet_host;

/* Runtime facts about one instance that are not worth a database row. */
typedef struct {
    char id[STATE_ID_LEN + 1];
    int busy;               /* a job for it is running */
    int active;             /* its domain is (believed) running */
    int stop_requested;     /* the operator stopped it: end is "stopped" */
    int polling;            /* a thread is reading its status file */
    int64_t quiet_until_ms; /* flooding guest: file events ignored until */
    int run_no;             /* current run number (state_run_begin) */
    int64_t request_ms;     /* monotonic ms when start was asked (ready_ms) */
    int64_t run_start_ms;   /* monotonic ms the current run began */
    int64_t backoff_due_ms; /* monotonic ms of a pending policy restart, 0 */
    int backoff_level;      /* consecutive quick failures */
    gst_tracker tracker;    /* status channel reader */
    int have_outcome;       /* an exit or crash record arrived */
    gst_record outcome;
    char end_reason[256];      /* extra reason (e.g. KVM internal error) */
    int ready;                 /* ready this run (record or probe) */
    int ready_by_probe;        /* this run's readiness is a probe (health.c):
                                  a ready record only gives boot_us */
    int boot_seen;             /* that record was seen this run */
    struct fleet_batch *batch; /* its create request's batch until it is
                                  ready or failed (batch.c), else NULL */
    int batch_started;         /* counted as started in it */
    int moving;                /* a cold move of this process is carrying it
                                  (plan.c): reconcile leaves its mark alone */
    int ports_lent;            /* a live move's stand-in holds its published
                                  ports (move.c): a start does not publish them */
    int dhcp_entry;            /* a start wrote (is writing) its static DHCP
                                  entry on its remote host (hostnet.c):
                                  reconcile keeps it */
    /* Measured by the usage sampler (capacity.c) for the run that began
     * at use_run_ms; a different run_start_ms means nothing measured. */
    int64_t use_run_ms;
    uint64_t use_mem_kib, use_mem_peak_kib; /* private memory now, most this run */
    int use_mem_private;                    /* 0: whole RSS (remote host) */
    uint64_t use_cpu_ns;                    /* CPU time at the last sample */
    int64_t use_at_ms;                      /* monotonic ms of that sample */
    uint32_t use_cpu_milli;                 /* smoothed CPU use, 1/1000 CPU */
    int use_cpu_samples;
    /* Scale to zero (idle.c). */
    int sleep_requested;  /* the idle timer is ending this run: it becomes idle */
    int wake_pending;     /* a connection came while it went to sleep */
    int64_t wake_ms;      /* monotonic ms a wake (or a start of an idle
                             instance) began, 0: none under way */
    char wake_reason[64]; /* "connection to port 8080/tcp", "start request" */
    /* The node (host connection: fixed for the host's life) the active
     * run's domain is on, set by whoever makes the run active (run.c at a
     * start, reconcile.c when it adopts a domain or ends a run of that
     * host). A domain's end from any other node is an old copy's (fenced,
     * or the stop of a move that failover finished: failover.h) and ends
     * nothing (run.c end_elsewhere); NULL: not known. Meaningful only
     * while active. */
    const struct node *run_node;
    /* The run's fleet_run_id when that is a pool guest's ("" its own),
     * copied from the row by whoever makes the run active (run.c,
     * reconcile.c): status.c and supervisor.c read its files by id. */
    char guest[STATE_ID_LEN + 1];
    /* A start's domain creation on a remote host (run.c "Starts given
     * up"): FLEET_HUNG_CALL while the start waits for it, GIVEN_UP once the
     * start gave up on the host (the call still runs), RETURNED once the
     * call came back; 0 none. Given up or returned, the instance is held
     * for hung_host: it does not start there, and its domain there
     * (hung_dom) is destroyed, never adopted, until fleet_start_unhold. */
    int hung;
    char hung_host[STATE_NAME_MAX];
    char hung_dom[64];
} fleet_rt;
enum { FLEET_HUNG_NONE, FLEET_HUNG_CALL, FLEET_HUNG_GIVEN_UP, FLEET_HUNG_RETURNED };

/* One failed instance of a batch. */
typedef struct {
    char id[STATE_ID_LEN + 1];
    char name[STATE_NAME_MAX];
    char state[16];
    char error[256];
} fleet_batch_fail;

/* The instances of one create request with count > 1, followed until each
 * is ready or failed (batch.c). Under f->mu; freed by the supervisor after
 * the final batch.progress event. */
typedef struct fleet_batch {
    char id[STATE_ID_LEN + 1]; /* the id of its first instance */
    uint32_t total, started, ready, failed;
    int dirty;            /* counts changed since the last event */
    int64_t last_emit_ms; /* monotonic ms of the last event, 0: none */
    fleet_batch_fail fails[FLEET_BATCH_FAILS];
    size_t nfails;
    struct fleet_batch *next;
} fleet_batch;

typedef enum {
    JOB_START = 0,
    JOB_DOMAIN_GONE,
    JOB_DOMAIN_CRASHED,
    JOB_PROBE, /* a probe note: detail "ready|healthy|unhealthy|slow GEN AT_MS" */
    JOB_SLEEP, /* scale to zero (idle.c): the proxy saw no connection; detail why */
    /* a connection came for an idle instance (detail why), or
     * FLEET_WAKE_TIMEOUT: held connections were given up */
    JOB_WAKE,
    /* a cold move whose source stopped late (plan.c): finished if its run
     * has ended */
    JOB_MOVE_LEFT,
} fleet_job_kind;

typedef struct fleet_pg_row fleet_pg_row;
/* pages.c: drop every rendering (fleet_close). */
void fleet_pages_free(fleet *f);

typedef struct fleet_job {
    fleet_job_kind kind;
    char id[STATE_ID_LEN + 1];
    char detail[64];
    /* The node of the libvirt event a JOB_DOMAIN_GONE/CRASHED comes from
     * (jobs.c); NULL for the jobs the core queues itself. Compared only,
     * never used. */
    const struct node *from;
    struct fleet_job *next;
} fleet_job;

/* One worker thread and the queue it serves. */
typedef struct {
    struct fleet *f;
    int starts; /* 1: f->starts, 0: f->jobs */
    pthread_t th;
} fleet_worker;

struct fleet {
    cfg_t cfg;
    state_db *db;
    struct img_store *img;
    char token[65];               /* admin bearer token */
    char run_dir[FLEET_PATH_MAX]; /* status files: RUN_DIR/<id>.status */
    char log_dir[FLEET_PATH_MAX]; /* consoles: LOG_DIR/<id>.log */
    uint32_t gateway;             /* bridge address (host order), 0 = no network */
    struct netbr_set *bridges;    /* the local guest bridges (netbr.h), NULL = no network */
    struct pfwd *pfwd;            /* published ports */
    struct probe_engine *probes;  /* readiness and health checks (health.c) */
    struct guard *guard;          /* guest isolation table (guard.h), NULL = no network */
    int64_t guard_checked_ms;     /* its last check (supervisor thread only) */
    int64_t uploads_swept_ms;     /* last sweep of abandoned uploads (supervisor only) */

    pthread_mutex_t place_mu; /* see LOCKS above */
    pthread_mutex_t row_mu;
    pthread_mutex_t mu;
    pthread_cond_t job_cv;   /* jobs queued / instance no longer busy */
    pthread_cond_t state_cv; /* an instance's or host's state changed */
    pthread_cond_t event_cv; /* an event was appended */
    fleet_host **hosts;      /* heap, hosts_cap entries (hosts.c grows it) */
    size_t nhosts, hosts_cap;
    fleet_rt *rt; /* runtime table, nrt entries */
    size_t nrt, rt_cap;
    size_t *rt_index;                /* open addressing over rt by id: slot holds
                                      index + 1, 0 = empty; 2 * rt_cap slots */
    fleet_job *jobs, *jobs_tail;     /* event jobs (all but starts) */
    fleet_job *starts, *starts_tail; /* start jobs */
    fleet_batch *batches;            /* batches being followed */
    size_t tick_cursor;              /* supervisor: next rt to re-read */
    int poll_all;                    /* supervisor: inotify lost events */
    int64_t last_event_id;
    int stopping;
    int move_stop; /* under mu: a stop of the moves under way was asked (move.c) */

    fleet_worker *workers; /* nworkers: FLEET_EVENT_WORKERS event workers, */
    size_t nworkers;       /* then the start workers */
    int nstart_workers;
    pthread_t supervisor;
    pthread_t usage;         /* capacity.c sampler */
    pthread_cond_t usage_cv; /* with mu: wakes the sampler to stop */
    int usage_started;
    int inotify_fd;
    int wake_fd; /* eventfd to wake the supervisor */

    uint64_t ready_hist[FLEET_READY_BUCKETS + 1];
    double ready_sum;
    uint64_t ready_count;

    /* DHCP on the guest network (leases.c). */
    struct dhcp *dhcp;       /* dnsmasq (dhcp.h), NULL when off or no network */
    pthread_mutex_t dhcp_mu; /* see LOCKS above */
    pthread_mutex_t net_mu;  /* see LOCKS above */
    uint32_t rnet;           /* --remote-subnets: network (host order) */
    int rprefix;             /* and prefix (hostnet.c) */
    uint64_t dhcp_gen;       /* under mu: bumped when networked rows come or go */
    uint64_t dhcp_done;      /* under mu: generation the written list covers */
    struct fleet_pool *pool; /* warm pools (pool.h), NULL when not running */
    int64_t dhcp_last_ms;    /* under mu: monotonic ms of the last write */
    int64_t failover_ms;     /* under mu: last failover pass (failover.c) */
    pthread_t failover;      /* failover.c's thread */

    /* GET /v1/instances from memory (pages.c), under pg_mu */
    pthread_mutex_t pg_mu;         /* see LOCKS above */
    struct fleet_pg_row **pg_rows; /* every instance in (created, id) order */
    size_t pg_n, pg_cap;
    int pg_loaded;             /* 0: read the whole table at the next page */
    fleet_render_fn pg_render; /* what made the renderings */
    void *pg_render_ctx;
    int failover_started;

    /* Remote I/O (remoteio.c): items of work that wait on a host, run by
     * workers started on demand; under rio_mu, a leaf. */
    pthread_mutex_t rio_mu;
    pthread_cond_t rio_cv;           /* an item queued / stop */
    struct fleet_rio_item *rio_head; /* queue, oldest first */
    struct fleet_rio_item *rio_tail;
    int rio_workers; /* running */
    int rio_idle;    /* of those, waiting for an item */
    int rio_stopping;
    uint64_t rio_gen;
    int64_t rio_since[FLEET_RIO_MAX_WORKERS];      /* per worker slot: item since, 0 idle */
    unsigned char rio_slot[FLEET_RIO_MAX_WORKERS]; /* slot taken by a worker */
    int hcalls; /* under mu: host call threads running (fleet_host_call) */
};

/* Copy src into dst[len], cut at len - 1 bytes (reasons and errors are
 * shown to people; a long one is cut, never overflows). */
static inline void fleet_text_copy(char *dst, size_t len, const char *src)
{
    size_t n = src ? strnlen(src, len - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = 0;
}

/* ---- fleet.c ---- */
void fleet_console_path(const fleet *f, const char *id, char *buf, size_t len);
void fleet_status_path(const fleet *f, const char *id, char *buf, size_t len);
void fleet_domain_name(const char *id, char *buf, size_t len);
/* The id an instance's current (or last) domain's name, tap, MAC and run
 * files derive from: the warm pool guest's it woke from (state.h guest),
 * else its own. Pass it, never in->id, to the four helpers above. */
const char *fleet_run_id(const state_instance *in);
void fleet_wake_supervisor(fleet *f);
/* The bridge for the tap of instance `in` about to start on its host: on
 * the local host netbr_set_pick's choice (the main bridge or an overflow
 * one), elsewhere the configured bridge. NULL with a message in err when
 * every local bridge is full or one could not be made. Any thread. */
const char *fleet_bridge_pick(fleet *f, const state_instance *in, char *err, size_t errlen);

/* Guest networks of remote hosts (hostnet.c). fleet_net_open: parse and
 * check --remote-subnets (-1 with a message). fleet_net_prepare: before a
 * networked start of in on host h (held, its node `node`): on a remote
 * host its /24 chosen and its libvirt network and guest filter made
 * (nodenet.h); in->ipv4 made an address of the host's subnet (a new one
 * written to the row when not); *gw and *prefix what the guest gets. -1
 * with a message (the start fails). fleet_net_host_removed: a remote host
 * leaves: its network removed if shoald made it. */
int fleet_net_open(fleet *f, char *err, size_t errlen);
int fleet_net_prepare(fleet *f, fleet_host *h, struct node *node, state_instance *in, uint32_t *gw,
                      int *prefix, char *err, size_t errlen);
void fleet_net_host_removed(fleet *f, fleet_host *h);
/* Host h's guest subnet "a.b.c.d/p" into buf, "" when none is known (no
 * network; a remote host before its first networked start). Under mu. */
void fleet_net_subnet(const fleet *f, const fleet_host *h, char *buf, size_t len);
/* Static DHCP entries of remote hosts' networks (hostnet.c, nodenet.h):
 * fleet_net_prepare writes a starting instance's; fleet_net_dhcp_drop
 * deletes in's from its host (its run ended; a host down keeps it until
 * reconciled); fleet_net_dhcp_sync (reconcile.c, after adopting the host's
 * domains doms) leaves exactly those of instances with a domain there or a
 * start writing theirs, and entries of MACs not shoal's (NETBR_MAC_PREFIX:
 * the operator's, in a network of theirs) alone. Libvirt calls: any thread, no fleet lock held. */
void fleet_net_dhcp_drop(fleet *f, const state_instance *in);
void fleet_net_dhcp_sync(fleet *f, fleet_host *h, struct node *node, const struct node_dom *doms,
                         size_t ndoms);
/* A remote host h (held, its node `node`) came up: the /24 of its network
 * 'shoal', if it has a valid one, is its guest subnet from now (after a
 * restart of shoald GET /v1/hosts names it before any start there). */
void fleet_net_learn(fleet *f, fleet_host *h, struct node *node);
/* 1 when addr is in --remote-subnets: a remote host's guest, isolated on
 * that host, with no element in this machine's table (isolation.c). */
int fleet_net_remote_addr(const fleet *f, uint32_t addr);
/* 1 when host `name` is open and on another machine (node_remote). */
int fleet_host_is_remote(fleet *f, const char *name);

/* ---- runtime.c: runtime table (caller holds f->mu) and row updates ---- */
fleet_rt *fleet_rt_get(fleet *f, const char *id);
/* The entry for id, or NULL (never creates one). */
fleet_rt *fleet_rt_find(fleet *f, const char *id);
void fleet_rt_drop(fleet *f, const char *id);
/* Wait (up to timeout_ms) until no job runs for the instance and, with
 * need_inactive, until it has no domain either. 1 when reached. */
int fleet_rt_wait(fleet *f, const char *id, int need_inactive, int timeout_ms);
/* Read the row, apply fn, write it back, emit instance.state when the state
 * changed. 0, STATE_ENOTFOUND when the row is gone, -1 on a write error. */
typedef void (*fleet_mutator)(state_instance *in, void *ctx);
int fleet_mutate(fleet *f, const char *id, fleet_mutator fn, void *ctx);
int fleet_set_state(fleet *f, const char *id, state_inst_state st, const char *last_error);
int fleet_set_host(fleet *f, const char *id, const char *host);

/* ---- events.c ---- */
/* Append the event object o (its "time" and "type" set; consumed), and wake
 * the subscribers. */
struct json_t;
void fleet_emit_object(fleet *f, struct json_t *o);
/* Append an event (fields of docs/api.md; any string may be NULL). */
void fleet_emit(fleet *f, const char *type, const char *instance, const char *name,
                const char *state, const char *host, const char *image, const char *digest,
                const char *message);

/* ---- jobs.c ---- */
void fleet_queue(fleet *f, fleet_job_kind kind, const char *id, const char *detail);
void *fleet_worker_main(void *arg); /* arg: its fleet_worker */
/* --start-parallel auto on a host with `cpus` CPUs. */
int fleet_start_parallel_auto(long cpus);

/* ---- batch.c: progress of a create request's instances ---- */
/* Follow made[0..n) (just created, n > 1) as one batch. Takes f->mu. */
void fleet_batch_begin(fleet *f, const state_instance *made, size_t n);
typedef enum { FLEET_BATCH_STARTED, FLEET_BATCH_READY, FLEET_BATCH_FAILED } fleet_batch_what;
/* Something happened to instance id; a no-op unless it still counts in a
 * batch (only its first run does). name, state and error describe a
 * failure (may be NULL). Takes f->mu; wakes the supervisor when the batch
 * is complete. */
void fleet_batch_note(fleet *f, const char *id, fleet_batch_what what, const char *name,
                      const char *state, const char *error);
/* The same with f->mu held (the runtime entry is going: fleet_rt_drop). */
void fleet_batch_note_locked(fleet *f, fleet_rt *rt, fleet_batch_what what, const char *name,
                             const char *state, const char *error);
/* Emit due batch.progress events (supervisor thread only): every batch
 * that changed and had none for FLEET_BATCH_EMIT_MS, and every complete
 * one (its final event; then it is freed). Takes f->mu, emits without. */
void fleet_batch_flush(fleet *f);
/* Free every batch (fleet_close). */
void fleet_batch_free_all(fleet *f);
void fleet_on_node_event(struct node *node, const char *instance_id, enum node_event ev,
                         const char *detail, void *user);

/* ---- run.c ---- */
void fleet_job_start(fleet *f, const fleet_job *j);
void fleet_job_domain_gone(fleet *f, const fleet_job *j);
void fleet_job_domain_crashed(fleet *f, const fleet_job *j);
void fleet_publish_ports(fleet *f, const state_instance *in);
/* A held instance (fleet_rt.hung) starts again this long after its hold
 * ends: its destroyed domain's late "stopped" event comes first. */
#define FLEET_HUNG_RESTART_MS 1000
/* Is instance id held for host (a start given up there)? */
int fleet_start_held(fleet *f, const char *id, const char *host);
/* Held for host, and host up: destroy the domain the given-up start may
 * have made there (a missing one is fine); once that start's call has
 * returned, the hold ends and a wanted instance starts again after
 * FLEET_HUNG_RESTART_MS (the supervisor's backoff path; on whatever host
 * its row names by then). Nothing while host is down: its reconnect's
 * reconcile calls this. A thread that may wait on host, no lock held. */
void fleet_start_unhold(fleet *f, const char *id, const char *host);
/* fleet_start_unhold for every instance held for host (reconcile). */
void fleet_start_unhold_host(fleet *f, const char *host);

/* ---- move.c: live moves (docs/shoald.md "Moves") ---- */
#define FLEET_MOVE_LABEL    "shoal.move-standin" /* a stand-in's label: whose it is */
#define FLEET_MOVE_DRAIN_MS 500                  /* open connections finish on the old copy */
/* A cold move of instance id to host `to` (plan.c). */
typedef int (*fleet_move_cold_fn)(fleet *f, const char *id, const char *to, fleet_err *e);
/* Should a running `in` move live to host `to` (--move live, network, a
 * published tcp port, no scale to zero, both hosts up)? Else it moves
 * cold. Whether the proxy reaches the target's guests (a remote host's
 * only through the operator's route) is fleet_move_live's check. */
int fleet_move_is_live(fleet *f, const state_instance *in, const char *to);
/* Move id to `to` live: a stand-in on `to`, ready, carries the published
 * ports while `cold` moves the instance; move.* events. No fleet lock held
 * (it creates and deletes the stand-in). CONFLICT naming why when the
 * stand-in was not ready (the instance stays where it was). A stand-in
 * refused for room, or on a remote host and not reachable from here,
 * makes the move cold (move.cold). */
int fleet_move_live(fleet *f, const char *id, const char *to, fleet_move_cold_fn cold,
                    fleet_err *e);
/* Its ports are held by a stand-in (fleet_publish_ports leaves them). */
int fleet_move_lent(fleet *f, const char *id);
/* Has a stop of the moves been asked since the plan began? Takes mu. */
int fleet_move_stopping(fleet *f);
/* A cold move left to finish (plan.c): the row is marked with its
 * destination (state_inst_mark_move) and no move of this process carries
 * it out, because its source host did not stop the old copy within
 * --move-ready-timeout. Once that run has ended (not active), the row is
 * re-homed, wanted and pending in one write (state_inst_finish_move), and
 * started there: 1. Else, or when it is being deleted, 0 and nothing
 * changes. Takes mu; called by the run's end (run.c), reconcile and the
 * failover (a source down past its grace). Any thread but holding mu. */
int fleet_move_finish_left(fleet *f, const char *id);
/* JOB_MOVE_LEFT: fleet_move_finish_left of j->id. */
void fleet_job_move_left(fleet *f, const fleet_job *j);
/* Carry out p's moves in order through `move` (plan.c's move of one
 * instance; tests pass their own), each recorded in its rc and err, as
 * fleet_plan_drain says: a failure does not end the plan, a host found
 * not answering (UNAVAILABLE) is not tried again, the hosts of failed
 * moves are taken out of p->freed. CONFLICT when stopped by request (the
 * moves after it not made; also when it came during the last move), else
 * FLEET_OK. Caller holds place_mu (which `move` may release meanwhile). */
int fleet_plan_run(fleet *f, fleet_plan *p, fleet_move_cold_fn move, fleet_err *e);
/* At open, after the hosts' reconcile: delete the stand-ins a killed
 * shoald left (the instances themselves were finished by reconcile). */
void fleet_move_leftovers(fleet *f);

/* ---- isolation.c: guest isolation (guard.h), any thread ---- */
/* Write the table for the live networked instances (fleet_open, before any
 * worker runs). -1 with a message when nft is missing or refuses. */
int fleet_guard_open(fleet *f, char *err, size_t errlen);
/* Allow `in`'s tap (named into tap[GUARD_TAP_SIZE] whether or not there
 * is a table) before its domain is created. 0 also for an instance without
 * network or when there is no table; -1 with a message: do not start it. */
int fleet_guard_add(fleet *f, const state_instance *in, char *tap, char *err, size_t errlen);
/* The run of instance `id` has ended (or its start failed): its tap may
 * send nothing. Failures are logged. */
void fleet_guard_remove(fleet *f, const char *id);
/* Reconcile adopted a running domain: allow it (logs on failure, and when
 * its tap predates shoald's tap names and so is not filtered). */
void fleet_guard_adopt(fleet *f, const state_instance *in);
/* A guest's tap was just created (its domain started): no host IPv6 on it.
 * Otherwise the host's stack on the tap sends the guest router
 * solicitations and MLD reports for minutes, each waking an idle guest
 * (docs/node.md, "Idle guests"). Best effort: logs once on failure. */
void fleet_tap_no_ipv6(const char *tap);
/* Supervisor tick: every FLEET_GUARD_VERIFY_MS, put the table back if it
 * went. */
void fleet_guard_tick(fleet *f, int64_t now);

/* ---- leases.c: DHCP leases on the guest network (dhcp.h) ---- */
/* Start dnsmasq with every networked row's lease when --dhcp is on
 * (fleet_open, after the bridges, before any worker). -1 with a message. */
int fleet_dhcp_open(fleet *f, char *err, size_t errlen);
/* Stop dnsmasq (free_fleet, after the threads). */
void fleet_dhcp_close(fleet *f);
/* Networked rows were made or removed: the list gets written by the
 * supervisor within FLEET_DHCP_DEBOUNCE_MS, or by the next flush. Takes
 * mu. Any thread. */
void fleet_dhcp_sync(fleet *f);
/* The written list covers every row made before this call; writes it now
 * if not (start jobs, before a networked guest starts). No fleet lock
 * held. */
void fleet_dhcp_flush(fleet *f);
/* Supervisor: write a pending list once FLEET_DHCP_DEBOUNCE_MS have passed
 * since the last write. Returns the ms until it wants to run again, -1
 * when nothing is pending. */
int fleet_dhcp_tick(fleet *f, int64_t now);

/* ---- status.c ---- */
/* Read the instance's new status records (bounded, f->mu not held while
 * reading) and act on them. Waits for a poll of the same instance by
 * another thread, so that a caller that needs the last records gets them. */
void fleet_status_poll(fleet *f, const char *id);
/* The status file of run id `run` (fleet_run_id: the instance's own, or
 * the pool guest's it woke on) changed (inotify): poll its instance unless
 * the guest floods it. 1 when it polled, 0 when the event was ignored (a
 * flood's quiet time). */
int fleet_status_event(fleet *f, const char *run);

/* Record a ready time in the histogram. Caller holds f->mu. */
void fleet_observe_ready(fleet *f, double ready_ms);

/* ---- health.c: readiness and health probes (probe.h) ---- */
int fleet_probes_open(fleet *f, char *err, size_t errlen);
void fleet_probes_close(fleet *f);
/* Decide and check a create's probes into row's ready/health fields (the
 * row's network and ports are set from spec too): the run's own, else the
 * image profile's (prof, may be NULL), else the kind's default. INVALID
 * naming the field. */
int fleet_probe_plan(const fleet_instance_spec *spec, const img_profile *prof, int status_channel,
                     bool network, state_instance *row, fleet_err *e);
/* img_profile_change.check for an image's stored probes: probe_spec_parse
 * (ready; health tcp/http only), ready `status` only with exit status, the
 * health numbers' bounds; rewrites them in canonical form. */
int fleet_profile_probe_check(void *ctx, img_profile *p, img_kind kind, const char **field,
                              char *msg, size_t msglen);
/* A run (generation gen: fleet_rt.run_no) of `in` began, or a running
 * domain was adopted (ready_now: it was ready). Watches what needs
 * probing; *ready_at_once is 1 when its readiness is `none` (the caller
 * marks it ready). -1 when it cannot be probed (logged, warned). */
int fleet_probe_watch(fleet *f, const state_instance *in, int status_channel, int gen,
                      int ready_now, int *ready_at_once);
void fleet_probe_unwatch(fleet *f, const char *id);
/* A per-run command line override (a template, NULL: none) applied to an
 * image's boot plan: INVALID naming "cmdline" when the template is bad or
 * the image is a disk. health.c. */
struct fleet_boot;
int fleet_boot_override(struct fleet_boot *boot, const char *tmpl, const char *image, fleet_err *e);
/* Is the instance's readiness its status channel's ready record? */
int fleet_probe_by_status(const state_instance *in, int status_channel);
/* The status channel said ready: health checks begin. */
void fleet_probe_status_ready(fleet *f, const char *id, int gen);
/* Run gen of id is ready (at_ms monotonic): running, ready_ms, histogram,
 * batch. A no-op for another run or when it was ready. No lock held. */
void fleet_mark_ready(fleet *f, const char *id, int gen, int64_t at_ms);
void fleet_job_probe(fleet *f, const fleet_job *j);
void fleet_probe_stats(fleet *f, size_t by_health[4], uint64_t *checks, uint64_t *failures);

/* ---- idle.c: scale to zero (issue 15) ---- */
#define FLEET_WAKE_TIMEOUT "timeout" /* JOB_WAKE detail: held connections given up */
/* pfwd_note_fn (portfwd.h) of the fleet's proxy: queues JOB_SLEEP/JOB_WAKE. */
void fleet_idle_note(void *user, const char *owner, pfwd_note_kind kind, const char *detail);
void fleet_job_sleep(fleet *f, const fleet_job *j);
void fleet_job_wake(fleet *f, const fleet_job *j);
/* A run ended by a sleep was made idle: instance.sleep, and a wake that
 * came meanwhile starts it. No lock held. */
void fleet_idle_asleep(fleet *f, const state_instance *in);
/* Run of id is ready: the proxy passes held connections through; a wake
 * under way gets its instance.wake event (latency). No lock held. */
void fleet_idle_ready(fleet *f, const char *id);
/* After a start job or a run's end: a wake under way that failed (error,
 * or the row's state says so) closes its held connections (the ports go)
 * and gets its instance.wake event with the error. No lock held. */
void fleet_idle_check_wake(fleet *f, const char *id, const char *error);
/* Reconcile: an idle row's ports listen, asleep (a no-op when they do). */
void fleet_idle_adopt(fleet *f, const state_instance *in);
/* Give row `in` the identity of run id `guest` (a pool guest's id, or ""
 * or its own id for its own): state.h guest, and its MAC, which derives
 * from the run id as a pool guest's does (pool.c). Pure. */
void fleet_identity_take(state_instance *in, const char *guest);
/* The same on the stored row (fleet_mutate). 0, or -1. */
int fleet_set_guest(fleet *f, const char *id, const char *guest);

/* ms from now on `clock` (CLOCK_MONOTONIC or CLOCK_REALTIME, the
 * condition variable's), for pthread_cond_timedwait (fleet.c). */
void fleet_deadline(struct timespec *ts, clockid_t clock, int64_t ms);

/* ---- remoteio.c: work that waits on a host, off the supervisor ---- */
typedef enum {
    FLEET_RIO_STATUS,    /* a running instance's status from its remote host */
    FLEET_RIO_RECONNECT, /* (re)connect a down host, fence, reconcile */
    FLEET_RIO_PING,      /* a round trip (failover.c) */
    FLEET_RIO_USAGE,     /* the sampler's reading, id "full" or "avail" (capacity.c) */
    FLEET_RIO_CALL,      /* an API call's work on the host (fleet_rio_call) */
} fleet_rio_kind;
/* Queue an item for host h (held by the caller; the item holds it too) and
 * instance id (NULL but for a status). An item equal to one still waiting
 * is dropped (0). Items of one host run one at a time, in order; an item
 * of a hung host (one whose item waits on it) holds back another host's
 * for at most FLEET_RIO_SLOW_MS + a tick. -1: out of memory, or stopping.
 * Any thread, no lock held. */
int fleet_rio_submit(fleet *f, fleet_host *h, fleet_rio_kind kind, const char *id);
/* An API call's work on host h, bounded (docs/shoald.md "Host failure and
 * fencing"): fn(f, node, arg, err, errlen) runs as h's next item (after
 * those queued before it), node being h's while h is up (else the call
 * gets NULL). The caller waits up to timeout_ms: fn's status (err filled
 * by fn), or FLEET_RIO_LATE when it has not returned by then (the host
 * does not answer: the work stays queued or under way and is carried out
 * when the host answers, or dropped if shoald stops first), or -1 when it
 * could not be queued (out of memory, stopping). arg belongs to the call:
 * free_arg(arg) (may be NULL) once both are done with it. Any thread but
 * a remote I/O worker, no lock held; h held by the caller. */
#define FLEET_RIO_LATE (-1000)
/* What an API call aimed at a remote host allows the host for its answer,
 * beyond the time the work itself may take (a stop's timeout). */
#define FLEET_HOST_ANSWER_MS 5000
typedef int (*fleet_rio_fn)(fleet *f, struct node *node, void *arg, char *err, size_t errlen);
int fleet_rio_call(fleet *f, fleet_host *h, fleet_rio_fn fn, void *arg, void (*free_arg)(void *),
                   int timeout_ms, char *err, size_t errlen);
/* Work on host h that must not hold its caller past a bound, yet must not
 * wait behind h's remote I/O items either (a start's delivery or a GC may
 * take long on a host that answers, and would hold back its pings):
 * fn(f, node, arg, err, errlen) runs at once on a thread of its own (a
 * "host call" thread: detached, one per call, holding h; counted in
 * f->hcalls, which fleet_close waits for). fleet_host_call_wait waits
 * until fn returns, until until_ms (monotonic; 0: no time bound), with
 * until_down until h has been seen down (no longer up: its connection
 * lost, or not answering for FO_PING_DEAD_MS, failover.h) for
 * FLEET_HOST_ANSWER_MS (a host back by then, as one slow under load is,
 * is waited for on), or until shoald stops. It returns fn's status (err
 * filled by fn), or FLEET_RIO_LATE: fn runs on, and once it returns
 * late(f, arg, rc, err) (may be NULL) runs on its thread. free_arg(arg)
 * (may be NULL) when both are done. Without a thread fn runs in
 * fleet_host_call_start; without memory the wait returns -1 (nothing
 * ran, arg freed). node: h's, held by the caller. Every started call is
 * waited for once. Any thread, no lock held. */
typedef struct fleet_hcall fleet_hcall;
typedef void (*fleet_late_fn)(fleet *f, void *arg, int rc, const char *err);
fleet_hcall *fleet_host_call_start(fleet *f, fleet_host *h, struct node *node, fleet_rio_fn fn,
                                   fleet_late_fn late, void *arg, void (*free_arg)(void *));
int fleet_host_call_wait(fleet *f, fleet_hcall *c, int64_t until_ms, int until_down, char *err,
                         size_t errlen);
/* Both: timeout_ms from now (< 0: no time bound). */
int fleet_host_call(fleet *f, fleet_host *h, struct node *node, fleet_rio_fn fn, fleet_late_fn late,
                    void *arg, void (*free_arg)(void *), int timeout_ms, int until_down, char *err,
                    size_t errlen);
/* fleet_close: wait up to FLEET_RIO_STOP_MS for host calls; 1 if some
 * still wait on a host (the fleet is then not freed: shoald is exiting). */
int fleet_host_calls_left(fleet *f);
/* Start a worker when items wait while every busy worker has been on its
 * item for FLEET_RIO_SLOW_MS (a hung host's); the failover tick. */
void fleet_rio_tick(fleet *f);
/* Whether items that can run (runnable: hosts with one waiting and none
 * running) get a worker (pure; test_remoteio): wake an idle one; else
 * start one in a free slot (*slot) unless a worker has been on its item
 * for less than FLEET_RIO_SLOW_MS or is about to take one (since[i]: when
 * slot i's worker took its item, 0 when just started or between items;
 * used[i]: slot i is a worker's) or every slot is taken. */
enum { FLEET_RIO_NONE, FLEET_RIO_WAKE, FLEET_RIO_START };
int fleet_rio_decide(size_t runnable, int idle, const unsigned char *used, const int64_t *since,
                     int n, int64_t now, int *slot);
/* Queue the fetch (and read) of a running instance's status from its
 * remote host (nothing for other hosts). Supervisor. */
void fleet_rio_status(fleet *f, const char *id);
/* Is any remote host up? (no database read for fleets without one) */
int fleet_remote_any_up(fleet *f);
/* fleet_open, with the other locks. */
void fleet_rio_init(fleet *f);
/* After the supervisor: stop the workers (waits up to FLEET_RIO_STOP_MS
 * for those inside a call to a hung host, then leaves them: shoald is
 * exiting) and drop the items left. */
void fleet_rio_close(fleet *f);
/* free_fleet: the lock and condition variable (kept while a worker was
 * left behind). */
void fleet_rio_destroy(fleet *f);

/* ---- supervisor.c ---- */
/* Reconnect (or first open) a held host: a FLEET_RIO_RECONNECT item. */
void fleet_reopen_host(fleet *f, fleet_host *h);
void *fleet_supervisor_main(void *arg);
/* Keep the console file of run id `run` (fleet_run_id) under its budget. */
void fleet_console_rotate(fleet *f, const char *run);

/* ---- reconcile.c ---- */
void fleet_reconcile_host(fleet *f, fleet_host *h);

/* ---- remote.c (hosts on other machines, node.h "Remote hosts") ---- */
/* How long a run's end waits for its serial streams to see the ports
 * close before it fetches the files instead (node_serial_done). */
#define FLEET_STREAM_END_WAIT_MS 1000
/* Copy a finished run's status and console files from its remote host to
 * their local paths (nothing for other hosts). */
void fleet_remote_fetch(fleet *f, const state_instance *in);
/* The status file alone, for the poll of a running instance (a remote
 * I/O worker's; no-op, and no database read, while no remote host is up).
 * The copy replaces the local file only if, once fetched, the same run is
 * still active on that host with no job of it running (checked and
 * renamed under f->mu): never over a new run's file or an end's copy. */
void fleet_remote_poll(fleet *f, const char *id);
/* Reconcile found `in` running on node (a remote host's, or nothing is
 * done) with no streams of its serial ports (after a reconnect or a
 * restart of shoald): stream them again (node_serial_adopt). */
void fleet_remote_adopt(fleet *f, struct node *node, const state_instance *in);
/* On every up remote host (only: that host alone), remove image volumes
 * and run files that no instance placed there uses. */
void fleet_remote_gc(fleet *f, const char *only);
/* What an image delete waits for the GC of all remote hosts together. */
#define FLEET_GC_ANSWER_MS 2000
/* fleet_remote_gc of each up remote host, each a host call (remoteio.c)
 * waited for until FLEET_GC_ANSWER_MS in all: a host that does not answer
 * by then is collected when its call returns (and again at its
 * reconnect), its caller answered meanwhile. */
void fleet_remote_gc_bounded(fleet *f);

/* ---- hosts.c ---- */
/* Is h's driver inside shoald (the embedded local host, test:///)? Its
 * calls never wait on a daemon; every other host's may hang (uri is fixed
 * for the host's life: no lock). */
int fleet_host_in_process(const fleet_host *h);
/* Find and hold a host by name (NULL when unknown); release when done. A
 * held host and its node stay valid without f->mu. */
fleet_host *fleet_host_hold(fleet *f, const char *name);
void fleet_host_release(fleet *f, fleet_host *h);
/* The node of an up host, held (release the host): NULL when down. */
struct node *fleet_host_node(fleet *f, const char *name, fleet_host **held);
/* Connect a held host (no-op when up or being opened) and reconcile it. */
void fleet_host_open(fleet *f, fleet_host *h);
/* After a failed connect of h: the delay to its next try (backoff from
 * FLEET_RECONNECT_MIN_MS to FLEET_RECONNECT_MS), counting the failure.
 * Caller holds mu; a successful connect sets h->retry_level to 0. */
int64_t fleet_host_retry_delay(fleet_host *h);
/* Effective domain type ("kvm"/"qemu", or as configured). Caller holds mu. */
const char *fleet_host_domain_type(const fleet_host *h);
int fleet_hosts_load(fleet *f, char *err, size_t errlen);
/* Open (and reconcile) every loaded host, several at a time; at start,
 * before the API serves (the table does not change meanwhile). */
void fleet_hosts_open_all(fleet *f);
/* Cordon without taking place_mu (caller holds it). */
int fleet_host_cordon_locked(fleet *f, const char *name, bool cordoned, fleet_err *e);
/* Names to indexes in O(1), for the loops that look a host up per row
 * (hundreds of hosts times thousands of rows): n names, each at
 * base + i * stride, borrowed while the index is used. */
typedef struct {
    size_t *slot; /* index + 1, 0 = empty; cap slots (a power of two) */
    size_t cap;
    const char *base;
    size_t stride, n;
} fleet_name_idx;
/* 0, or -1 (no memory: lookups then scan). */
int fleet_name_idx_build(fleet_name_idx *ix, const char *base, size_t stride, size_t n);
/* Index of name, or ix->n. */
size_t fleet_name_idx_find(const fleet_name_idx *ix, const char *name);
void fleet_name_idx_free(fleet_name_idx *ix);

/* ---- instance.c ---- */
/* {"key":"value",...} of n pairs, sorted by key (heap; NULL: no memory). */
char *fleet_kv_json(const fleet_kv *kv, size_t n);
int fleet_lookup(fleet *f, const char *key, state_instance *in, fleet_err *e);
/* A state.h return code as a fleet code (STATE_EBUSY: FLEET_E_BUSY). */
fleet_code fleet_state_code(int state_rc);
/* Stop and start by full id, for cold moves (plan.c). */
int fleet_stop_id(fleet *f, const char *id, int timeout_s, fleet_err *e);
int fleet_start_id(fleet *f, const char *id, fleet_err *e);
/* The last steps of a delete whose domain is gone (the row marked
 * deleting): the row, published ports, probes, lease, image reference,
 * files, runtime entry, instance.deleted. fleet_instance_delete, and
 * reconcile.c for a delete a killed shoald left. No lock held. -1 with a
 * message when the row could not be removed. */
int fleet_delete_finish(fleet *f, const state_instance *in, char *err, size_t errlen);
/* The files a run of run id `run` (fleet_run_id) leaves on this host: its
 * console (and .1), status file and libvirt's QEMU log of its domain. */
void fleet_run_files_remove(fleet *f, const char *run);

/* ---- images.c ---- */
/* Bytes an upload holds (two stored chunks) from which each write is a
 * passage of the test-only kill point upload.partial (killpoint.h). */
#define FLEET_KP_UPLOAD_PARTIAL (2u << 20)
fleet_code fleet_img_err(fleet_err *e, const img_err *ie, const char *field);
/* Whether the instance's image reports on shoal's status channel (boot.h;
 * an image the store cannot describe is taken to, as before kinds). */
int fleet_has_status_channel(fleet *f, const state_instance *in);
/* Did ref, which resolved to digest, name the image by digest (sha256:...
 * or a bare hex prefix) rather than by name? */
int fleet_image_is_digest(const char *ref, const char *digest);

/* ---- capacity.c: what guests cost (docs/shoald.md "Capacity") ---- */
void *fleet_usage_main(void *arg);
/* 1 under --capacity measured (the default), 0 under nominal. */
int fleet_capacity_measured(const fleet *f);
/* Memory kept for a host of mem_mib itself (--mem-reserve, or auto). */
uint64_t fleet_mem_reserve(const fleet *f, uint64_t mem_mib);
/* Read what host h (held) runs that is not shoal's through node (its
 * node, open) into h (logs a failure, keeps the last reading). No lock
 * held. */
void fleet_foreign_sample(fleet *f, fleet_host *h, struct node *node);
/* Read held host h's usage (full: its guests and others' domains too, else
 * its available memory) and store it. The sampler's, or a remote I/O
 * worker's for a remote host; no lock held. */
void fleet_usage_sample(fleet *f, fleet_host *h, int full);
/* Whether guests' figures read at at_ms (0: never) are too old to show as
 * current at now: FLEET_USAGE_STALE_MS (pure; test_capacity). */
int fleet_usage_stale(int64_t at_ms, int64_t now);
/* Memory placement can still give a host's guests, MiB: (mem - others -
 * reserve) x --mem-overcommit, never more than charged + its available
 * memory beyond the reserve (avail 0: unknown), less what is charged. */
uint64_t fleet_mem_free(const fleet *f, uint64_t mem_mib, uint64_t others_mib, uint64_t charged,
                        uint64_t avail);

/* One row's measurements, copied out of the runtime table. */
typedef struct {
    uint64_t mem_kib;   /* most private memory this run; 0 = not measured */
    uint32_t cpu_milli; /* smoothed CPU use, 1/1000 CPU */
    int cpu_measured;
} fleet_use;

/* The last estimate, kept so a batch's residents cost one scan. */
typedef struct {
    int valid;
    char digest[80];
    uint64_t mem_mib;
    uint32_t vcpus;
    uint64_t mem;
    uint32_t cpu;
} fleet_charge_memo;

/* Fill out[r] for each of the n rows (takes and releases f->mu). */
void fleet_usage_copy(fleet *f, const state_instance *rows, size_t n, fleet_use *out);
/* What a new guest of image digest and mem_mib/vcpus is charged: memory in
 * MiB, CPU in vCPUs (nominal) or 1/1000 CPU (measured). */
void fleet_charge_estimate(int measured, const state_instance *rows, const fleet_use *use, size_t n,
                           const char *digest, uint64_t mem_mib, uint32_t vcpus, uint64_t *mem,
                           uint32_t *cpu);
/* What row r, which holds resources, is charged. */
void fleet_charge_resident(int measured, const state_instance *rows, const fleet_use *use, size_t n,
                           size_t r, fleet_charge_memo *memo, uint64_t *mem, uint32_t *cpu);

#endif
