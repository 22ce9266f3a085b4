/* fleet.h - shoald's core: images, instances, hosts, plans, events.
 *
 * The fleet ties the lower modules together: the state database (state.h),
 * the image store (img_store.h), the scheduler (scheduler.h), one libvirt
 * node per host (node.h), the guest bridge (netbr.h) and the port proxy
 * (portfwd.h). Everything shoald does to its fleet goes through the calls
 * below; the REST adapter (daemon/backend.c) only translates api.h requests
 * into them and their results back. Nothing in the core knows HTTP.
 *
 * Where things happen (daemon/core/):
 *   fleet.c      open, close, the threads and their start/stop order
 *   instance.c   create (placement, addresses, rollback), stop, start,
 *                restart, delete, lookups
 *   run.c        a run of an instance on a worker: start the domain, end
 *                the run when it goes, restart policy and backoff
 *   jobs.c       the job queues, the start and event worker pools,
 *                libvirt events -> jobs
 *   batch.c      a create's instances followed as a batch (batch.progress)
 *   status.c     the guest status channel (ready, exit, crash records)
 *   health.c     readiness and health probes (probe.h's engine), the
 *                per-run command line override
 *   supervisor.c the supervisor thread: status files, backoff timers,
 *                console rotation, host reconnects
 *   reconcile.c  what a host really runs vs what the database says
 *   hosts.c      add, open, cordon, remove, list
 *   snapshot.c   the scheduler's view of the fleet
 *   plan.c       drain and consolidation plans, cold moves
 *   images.c     image push, tag, delete, list (the store's policy)
 *   console.c    console streams of instances
 *   events.c     the event log and its subscribers
 *   metrics.c    counters for /metrics
 *   bulk.c       stop/start/restart/delete of many instances in parallel
 *   pages.c      GET /v1/instances from memory (renderings kept per row)
 * Threads and locks: fleet_int.h.
 *
 * Lifecycle of an instance
 *   create  -> row in SQLite (pending), image reference taken, start job queued
 *   start   -> a worker materializes the image, renders the domain and asks the
 *              node to start it (starting); the guest's status channel
 *              says when main() runs (running)
 *   end     -> libvirt says the domain is gone; the status channel says why
 *              (exited with a code / crashed), or the operator asked (stopped);
 *              the restart policy may queue a new start after a backoff
 *   delete  -> domain destroyed, row, address and image reference released
 *
 * Errors: every operation returns FLEET_OK (0) or a negative fleet_code and
 * fills a fleet_err: the code, the argument at fault (named as the API names
 * the field) and a message that quotes the bad value. Lookups of instances
 * take a key: an exact id first, then a unique id prefix (4+ hex chars),
 * then an exact name (instance names are never all hex: api/validate.c).
 */
#ifndef SHOAL_FLEET_H
#define SHOAL_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "img_store.h"
#include "state.h"

/* FLEET_MAX_HOSTS: hosts a fleet may have (409 beyond). Every per-host
 * table is on the heap, sized by the hosts there are; the bound is what one
 * process keeps open (a remote host holds a socket of RLIMIT_NOFILE's). */
#define FLEET_LOCAL_HOST       "local" /* the daemon's own host */
#define FLEET_MAX_HOSTS        4096
#define FLEET_STOP_TIMEOUT_S   10           /* default graceful-stop timeout */
#define FLEET_VMM_OVERHEAD_MIB 12           /* QEMU private memory per guest */
#define FLEET_HOST_LABEL       "shoal/host" /* label every host carries */
#define FLEET_IDLE_S_MAX       86400        /* scale to zero: longest idle time, s */

typedef struct fleet fleet;

/* ---- errors ------------------------------------------------------------ */

typedef enum {
    FLEET_OK = 0,
    FLEET_E_INVALID = -1,     /* an argument is wrong; field names it */
    FLEET_E_NOT_FOUND = -2,   /* no such instance, image or host */
    FLEET_E_CONFLICT = -3,    /* name taken, in use, wrong state, ambiguous */
    FLEET_E_CAPACITY = -4,    /* no host (or address) has room; message says
                                  which resource and how much is missing */
    FLEET_E_UNAVAILABLE = -5, /* a host did not answer in time; try again */
    FLEET_E_BAD_IMAGE = -6,   /* an uploaded image failed validation */
    FLEET_E_TOO_LARGE = -7,   /* an upload is over the store's limit */
    FLEET_E_INTERNAL = -8,    /* SQLite, memory, a bug: message says what */
    FLEET_E_BUSY = -9,        /* the state database stayed locked by another
                                  process past its busy timeout: nothing was
                                  done, try again (STATE_EBUSY) */
} fleet_code;
#define FLEET_CODES 10 /* number of codes above, FLEET_OK included */

typedef struct {
    fleet_code code;
    char field[32]; /* argument at fault, "" when none */
    char msg[512];
} fleet_err;

/* Fill e and return code (for `return fleet_err_set(...)`). e may be NULL. */
fleet_code fleet_err_set(fleet_err *e, fleet_code code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- open / close ------------------------------------------------------ */

/* Open everything under cfg->state_dir, reconcile with what is running and
 * start the threads. Blocks while hosts are probed (first start: ~10 s).
 * -1 with a message in err. */
int fleet_open(const cfg_t *cfg, fleet **out, char *err, size_t errlen);
/* Stop the threads and close. Running guests keep running. NULL ok. */
void fleet_close(fleet *f);

/* The admin bearer token (STATE_DIR/admin.token), valid until close. */
const char *fleet_admin_token(const fleet *f);
/* Guest network of address addr (host order): the gateway (0 = no network)
 * and prefix of its subnet, the local one or a remote host's /24
 * (docs/node.md "Remote hosts"). */
void fleet_network(const fleet *f, uint32_t addr, uint32_t *gateway, int *prefix);

/* Monotonic and wall-clock milliseconds. */
int64_t fleet_now_ms(void);
int64_t fleet_wall_ms(void);

/* States that hold host resources (counted by the scheduler), and states
 * in which a domain may exist. */
bool fleet_state_holds(state_inst_state s);
bool fleet_state_live(state_inst_state s);

/* ---- placement rules --------------------------------------------------- */

/* The kinds in the scheduler's order (scheduler.h sched_rule_kind; checked
 * by static asserts in snapshot.c). */
typedef enum {
    FLEET_RULE_HOST_AFFINITY = 0,
    FLEET_RULE_HOST_ANTI_AFFINITY,
    FLEET_RULE_AFFINITY,
    FLEET_RULE_ANTI_AFFINITY,
    FLEET_RULE__COUNT
} fleet_rule_kind;

/* The kind's name in stored placements ("host-affinity", ...), NULL if
 * out of range. */
const char *fleet_rule_kind_name(fleet_rule_kind k);

typedef struct {
    fleet_rule_kind kind;
    const char *key;
    const char *value; /* NULL: any value */
    bool soft;
    uint32_t weight; /* soft rules; 0 means 1 */
} fleet_rule;

typedef struct {
    const char *key;
    const char *value;
} fleet_kv;

/* An instance's stored placement ({"policy":..,"rules":[..]}) decoded.
 * Strings point into the decoded document, which fleet_placement_clear
 * frees. */
typedef struct {
    bool spread;
    fleet_rule *rules;
    size_t n_rules;
    const char *pin; /* the host named at create ("host"), or NULL */
    void *doc;       /* private */
} fleet_placement;
int fleet_placement_parse(const char *json, fleet_placement *out);
void fleet_placement_clear(fleet_placement *p);

/* ---- images ------------------------------------------------------------ */

/* A push: begin, write the body in pieces, then commit or abort. Commit
 * checks expect_digest (NULL: none) before anything becomes visible and
 * consumes the upload either way; abort accepts NULL. */
int fleet_image_push_begin(fleet *f, uint64_t content_length, img_upload **up, fleet_err *e);
int fleet_image_push_write(fleet *f, img_upload *up, const void *data, size_t len, fleet_err *e);
int fleet_image_push_commit(fleet *f, img_upload *up, const char *expect_digest, const char *name,
                            const char *tag, const img_label *labels, size_t n_labels,
                            img_info *out, fleet_err *e);
void fleet_image_push_abort(fleet *f, img_upload *up);
/* Give the image being pushed the stored initrd digest (img_upload_initrd):
 * at commit, 404 (field initrd) when no such initrd is stored, 422 for a
 * disk image. */
int fleet_image_push_initrd(fleet *f, img_upload *up, const char *digest, fleet_err *e);
/* POST /v1/initrds: an initrd upload (img_initrd_begin), written with
 * fleet_image_push_write, ended by fleet_initrd_push_commit (consumes it;
 * out gets digest, size, created) or fleet_image_push_abort. */
int fleet_initrd_push_begin(fleet *f, uint64_t content_length, img_upload **up, fleet_err *e);
int fleet_initrd_push_commit(fleet *f, img_upload *up, const char *expect_digest, img_info *out,
                             fleet_err *e);

/* Every name:tag row of the store (untagged images too: name ""), one per
 * ref; free with img_list_free. */
int fleet_image_rows(fleet *f, img_info **rows, size_t *n, fleet_err *e);
/* Ref (name[:tag], digest or digest prefix) -> full digest. */
int fleet_image_resolve(fleet *f, const char *ref, char digest[IMG_DIGEST_LEN + 1], fleet_err *e);
/* Give the image `ref` names the additional ref new_ref. */
int fleet_image_tag(fleet *f, const char *ref, const char *new_ref, char digest[IMG_DIGEST_LEN + 1],
                    fleet_err *e);
/* Change the stored boot profile of the image ref names (img_store.h,
 * img_profile_set; instances see it at their next start, its probes those
 * created after the change); digest receives the image's. The probes are
 * checked by probe.h's parser. Errors: NOT_FOUND (field ref), INVALID (the
 * field at fault: firmware, cmdline, exit, ready, health.probe,
 * health.interval_s, ...; nothing changed). Emits image.updated. */
int fleet_image_set_profile(fleet *f, const char *ref, const img_profile_change *ch,
                            char digest[IMG_DIGEST_LEN + 1], fleet_err *e);
/* A health probe's numbers with each 0 replaced by its default (probe.h). */
void fleet_health_defaults(uint32_t *interval_s, uint32_t *timeout_s, uint32_t *retries);
/* By digest: delete the image (force: even if instances use it). By name:
 * remove that name; the image goes with its last name, which instances in
 * use protect unless forced. */
int fleet_image_delete(fleet *f, const char *ref, bool force, fleet_err *e);

/* ---- instances --------------------------------------------------------- */

/* What to create. Strings are borrowed for the call. */
typedef struct {
    const char *image; /* ref */
    const char *name;  /* NULL: derived from the image and id */
    uint32_t count;    /* 0 means 1; more: names get -1, -2.. */
    uint32_t memory_mib;
    uint32_t vcpus;
    const char *const *args;
    size_t n_args;
    const fleet_kv *env;
    size_t n_env;
    const fleet_kv *labels;
    size_t n_labels;
    const fleet_rule *rules;
    size_t n_rules;
    bool spread; /* spread instead of binpack */
    state_restart restart;
    bool network;
    const state_port *ports;
    size_t n_ports;
    const char *host; /* NULL: any host */
    /* Probes (probe.h, docs/shoald.md "Probes"); checked at create (INVALID
     * naming "ready" or "health.*"). ready NULL: the image profile's, else
     * the default (status for shoal's guests, tcp:GUEST of the first
     * published TCP port, else none). health NULL: the image profile's
     * (its numbers under those given here), else no health checks; its
     * numbers 0: the image's or the defaults. */
    const char *ready;
    const char *health;
    uint32_t health_interval_s, health_timeout_s, health_retries;
    /* A per-run override of the image's command line: a template
     * (img_template_check's placeholders), NULL: the image's profile.
     * INVALID naming "cmdline" when bad or for a disk image. */
    const char *cmdline;
    /* A run's own initrd, "sha256:<hex>" of an uploaded one (POST
     * /v1/initrds), used instead of the image's; each instance holds a
     * reference on it. NOT_FOUND naming "initrd" when it is not stored,
     * BAD_IMAGE naming it for a disk image. NULL: the image's. */
    const char *initrd;
    /* Scale to zero (docs/shoald.md "Scale to zero"): sleep after idle_s
     * seconds (1..FLEET_IDLE_S_MAX) without a connection on the published
     * ports, 0 = never. INVALID naming "scale_to_zero" without a published
     * tcp port. */
    uint32_t idle_s;
} fleet_instance_spec;

/* Create spec->count instances: all of them or none. On success *made is a
 * heap array of *n rows (state_inst_array_free). Errors: NOT_FOUND (image,
 * host), CONFLICT (name taken, port published), INVALID (args too long for
 * the guest command line, ports without a network), CAPACITY. */
int fleet_instance_create(fleet *f, const fleet_instance_spec *spec, state_instance **made,
                          size_t *n, fleet_err *e);
/* One instance by key (see the header comment); state_inst_free it. */
int fleet_instance_find(fleet *f, const char *key, state_instance *out, fleet_err *e);
/* A page of instances, see state_inst_page. INVALID when `after` is unknown. */
int fleet_instance_page(fleet *f, const char *after, int state, const char *host,
                        state_inst_match match, void *ctx, size_t limit, state_instance **rows,
                        size_t *n, int *more, fleet_err *e);
/* An instance's probes and health as now (health.c). */
typedef struct {
    char ready[STATE_PROBE_MAX]; /* readiness probe ("" in rows from before
                                    probes: decided at start) */
    char probe[STATE_PROBE_MAX]; /* health probe, "" for none */
    uint32_t interval_s, timeout_s, retries;
    const char *status;    /* "none" (no health probe, or not running),
                              "starting", "healthy", "unhealthy" (static) */
    uint32_t failures;     /* checks failed in a row */
    int64_t last_check_ms; /* unix ms of the last check (readiness or
                              health) of this run, 0: none */
    int last_ok;
    char last_result[160]; /* "tcp:80: connect: Connection refused" */
    uint64_t version;      /* changes whenever the probe part above does; 0:
                              not watched (probe.h probe_health.ver) */
} fleet_health;
int fleet_instance_health(fleet *f, const state_instance *in, fleet_health *out);

/* GET /v1/instances from memory (pages.c). The core keeps each instance's
 * rendering (bytes the adapter made from the row and its health, opaque
 * here) in list order, and renders again only the rows written since
 * (every write of a row, through state.h's journal) and those whose
 * health changed (fleet_health.version): a page is a walk and a copy.
 *
 * render: one row as it is now into *out (heap, *len bytes, kept by the
 * core); 0 or -1. Called with the page lock held: it must not call
 * fleet_instance_page_rendered. The same fn and ctx on every call (another
 * pair drops the renderings). emit: each row of the page in order;
 * nonzero stops the page (INTERNAL). match: the label filter (a JSON
 * object's text), NULL: none.
 * Filters, order, `after`, `limit` and *more as fleet_instance_page; the
 * cursor of the next page (the last row's id, "" when none) in last_id. */
typedef int (*fleet_render_fn)(void *ctx, const state_instance *in, const fleet_health *h,
                               char **out, size_t *len);
typedef int (*fleet_emit_fn)(void *ctx, const char *data, size_t len);
typedef int (*fleet_labels_match)(const char *labels_json, void *ctx);
int fleet_instance_page_rendered(fleet *f, const char *after, int state, const char *host,
                                 fleet_labels_match match, void *mctx, size_t limit,
                                 fleet_render_fn render, void *rctx, fleet_emit_fn emit, void *ectx,
                                 char last_id[STATE_ID_LEN + 1], int *more, fleet_err *e);

/* Last `max` runs of an instance, newest first. */
int fleet_instance_runs(fleet *f, const char *id, state_run *out, size_t max, size_t *n);

/* Stop gracefully (ACPI power button; destroyed after timeout_s, < 0 means
 * FLEET_STOP_TIMEOUT_S). Returns once the domain is gone (or 15 s after the
 * destroy). *id_out (may be NULL) gets the full id the key resolved to. */
int fleet_instance_stop(fleet *f, const char *key, int timeout_s, char id_out[STATE_ID_LEN + 1],
                        fleet_err *e);
/* Queue a start; CONFLICT when it runs already. */
int fleet_instance_start(fleet *f, const char *key, char id_out[STATE_ID_LEN + 1], fleet_err *e);
/* Stop then start the same instance. */
int fleet_instance_restart(fleet *f, const char *key, int timeout_s, char id_out[STATE_ID_LEN + 1],
                           fleet_err *e);
/* Delete; a live instance only with force (destroyed first). */
int fleet_instance_delete(fleet *f, const char *key, bool force, fleet_err *e);

/* ---- bulk operations (bulk.c) ------------------------------------------ */

/* Stop, start, restart or delete many instances in one call, in parallel.
 * The selection is resolved once, at the start (fleet_bulk_select or
 * fleet_bulk_keys); fleet_bulk_run then runs the per-instance operation
 * above (fleet_instance_stop/start/restart/delete) on each selected
 * instance on a bounded pool of threads (FLEET_BULK_THREADS at most) and
 * records each outcome. Progress goes to the event log as "bulk.progress"
 * events (at most two a second, and one at the end). */
#define FLEET_BULK_THREADS 32

typedef enum {
    FLEET_BULK_STOP = 0,
    FLEET_BULK_START,
    FLEET_BULK_RESTART,
    FLEET_BULK_DELETE,
} fleet_bulk_op;

/* "stop", "start", "restart", "delete"; NULL when out of range. */
const char *fleet_bulk_op_name(fleet_bulk_op op);

typedef struct {
    char key[STATE_NAME_MAX + 8]; /* what was asked ("" for a selector) */
    char id[STATE_ID_LEN + 1];    /* "" when the key did not resolve */
    char name[STATE_NAME_MAX];
    fleet_err err; /* err.code FLEET_OK: it worked */
} fleet_bulk_item;

typedef struct {
    fleet_bulk_item *items; /* heap; in selection order */
    size_t n;
    size_t succeeded, failed; /* filled by fleet_bulk_run */
} fleet_bulk;

/* Every instance match() accepts (match must not be NULL: there is no
 * "everything" by accident). An empty selection is not an error. */
int fleet_bulk_select(fleet *f, state_inst_match match, void *ctx, fleet_bulk *out, fleet_err *e);
/* The instances n keys name (id, id prefix or name). A key that resolves
 * to nothing becomes an item that failed with its lookup error; a second
 * key naming an instance already selected is dropped. */
int fleet_bulk_keys(fleet *f, const char *const *keys, size_t n, fleet_bulk *out, fleet_err *e);
/* Run op on every resolved item (timeout_s: stop/restart, < 0 default;
 * force: delete). Returns FLEET_OK once every item has its outcome, or an
 * error (threads, memory) with no item acted on. */
int fleet_bulk_run(fleet *f, fleet_bulk_op op, int timeout_s, bool force, fleet_bulk *b,
                   fleet_err *e);
void fleet_bulk_clear(fleet_bulk *b);

/* ---- consoles ---------------------------------------------------------- */

#define FLEET_STREAM_END   (-1) /* no more bytes will come */
#define FLEET_STREAM_ERROR (-2)

typedef struct fleet_console fleet_console;
/* Open an instance's console: the last `tail` bytes (UINT64_MAX: all),
 * then, with follow, what it writes until it can write no more. */
int fleet_console_open(fleet *f, const char *key, uint64_t tail, bool follow, fleet_console **out,
                       fleet_err *e);
/* Bytes read (> 0), 0 when nothing came within timeout_ms, or
 * FLEET_STREAM_END / FLEET_STREAM_ERROR. */
long fleet_console_read(fleet *f, fleet_console *c, char *buf, size_t len, int timeout_ms);
void fleet_console_close(fleet_console *c);

/* ---- hosts ------------------------------------------------------------- */

/* A copy of one host as it is now. */
typedef struct {
    char name[STATE_NAME_MAX];
    char uri[STATE_URI_MAX];
    char *labels_json; /* heap, owned; "{}" when none */
    bool up;           /* libvirt connection alive */
    bool cordoned;
    char domain_type[8]; /* "kvm", "qemu" (probed) or as configured */
    int kvm;             /* KVM usable: 1, 0, -1 unknown (down) */
    char domain_type_reason[256];
    char last_error[512]; /* why it is down */
    uint64_t mem_mib;     /* capacity */
    uint32_t vcpus, slots;
    uint64_t used_mem_mib; /* charged to its instances (docs/shoald.md
                              "Capacity": measured or nominal + overhead) */
    uint32_t used_vcpus, instances;
    bool measured;             /* --capacity measured */
    uint64_t reserved_mem_mib; /* kept for the host itself */
    uint64_t avail_mem_mib;    /* the host's available memory now; 0 unknown */
    uint64_t used_cpu_milli;   /* CPU charged to its instances, 1/1000 CPU
                                  (measured model; 0 under nominal) */
    uint64_t busy_cpu_milli;   /* CPU its guests used in the last sample */
    /* What it runs that shoal does not own (issue 17), as last read:
     * active domains without shoal's metadata, their current memory, vCPUs
     * and CPU used over the last sample (1/1000 CPU). */
    uint32_t others_domains, others_vcpus;
    uint64_t others_mem_mib, others_cpu_milli;
    uint64_t free_mem_mib;  /* memory placement can still give its guests */
    int64_t down_since_ms;  /* wall ms it was first seen down (failover.h), 0 = up */
    int64_t sampled_ms_ago; /* its guests last measured that long ago, -1 never */
    bool usage_stale;       /* that is too old to be current (a hung host) */
    char guest_subnet[20];  /* its guests' subnet "a.b.c.d/p", "" = none yet (hostnet.c) */
} fleet_host_info;

int fleet_host_list(fleet *f, fleet_host_info **out, size_t *n, fleet_err *e);
void fleet_host_info_free(fleet_host_info *a, size_t n);
int fleet_host_get(fleet *f, const char *name, fleet_host_info *out, fleet_err *e);
/* Add a host (persisted) and connect to it. domain_type: "auto", "kvm" or
 * "qemu". The local embedded URI is refused; one host per URI. */
int fleet_host_add(fleet *f, const char *name, const char *uri, const fleet_kv *labels,
                   size_t n_labels, const char *domain_type, fleet_err *e);
int fleet_host_cordon(fleet *f, const char *name, bool cordoned, fleet_err *e);
/* Remove an empty host (not the local one); waits for its users to finish. */
int fleet_host_remove(fleet *f, const char *name, fleet_err *e);

/* ---- plans ------------------------------------------------------------- */

typedef struct {
    char instance[STATE_ID_LEN + 1];
    char from[STATE_NAME_MAX];
    char to[STATE_NAME_MAX];
    /* Carried-out plans only: FLEET_OK when the move was made, else why
     * not (err); tried is false for a move not tried (below). */
    int rc;
    fleet_err err;
    bool tried;
    bool to_empty; /* `to` held no instance before the plan */
} fleet_move;

typedef struct {
    fleet_move *moves;
    size_t n_moves;
    char (*freed)[STATE_NAME_MAX]; /* hosts that end empty */
    size_t n_freed;
    uint32_t hosts_before, hosts_after;
    bool executed;
    size_t n_failed; /* moves whose rc is not FLEET_OK */
} fleet_plan;

/* Plan emptying `host` (cordoning it first unless dry_run) or packing the
 * fleet onto fewer hosts; unless dry_run, carry the moves out: live for a
 * running instance with published ports (docs/shoald.md "Moves",
 * fleet_move_is_live), else cold (stop, re-home, start again if it ran).
 * A move that fails does not end the plan: every move is tried and gets
 * its own outcome (rc, err), and FLEET_OK is returned with n_failed set,
 * except that once a move found a host not answering (FLEET_E_UNAVAILABLE)
 * the later moves from or to either of its hosts are not tried (each would
 * wait as long again) and fail with FLEET_E_UNAVAILABLE saying so; a host
 * of a failed move is taken out of `freed` (hosts_after counts it again),
 * and an empty target that no move reached is not counted in hosts_after.
 * Returns an error only when no move was tried (no such host, no room) or
 * the moves were stopped by request (fleet_moves_stop: CONFLICT, also
 * when the stop came during the last move).
 * Free with fleet_plan_clear. */
int fleet_plan_drain(fleet *f, const char *host, bool dry_run, fleet_plan *out, fleet_err *e);
int fleet_plan_consolidate(fleet *f, bool dry_run, fleet_plan *out, fleet_err *e);
/* Stop the moves under way (POST /v1/moves/stop): a live move that has not
 * switched its ports yet is given up (its stand-in deleted, the instance
 * stays where it was), one past the switch finishes, no further move
 * begins; the drain or consolidate call then fails with CONFLICT. Every
 * instance runs somewhere, once. A no-op when no plan is being carried out. */
void fleet_moves_stop(fleet *f);
void fleet_plan_clear(fleet_plan *p);

/* ---- events ------------------------------------------------------------ */

/* Id of the newest event (0 when none). */
int64_t fleet_event_last_id(fleet *f);
/* The first event after *last: 1 with its JSON text in *json (free()) and
 * *last advanced, 0 when none came within timeout_ms, -1 when shoald stops. */
int fleet_event_next(fleet *f, int64_t *last, char **json, int timeout_ms);
/* Append an "audit" event: the token named by made a state-changing
 * request (method, path) and was answered http_status. */
void fleet_event_audit(fleet *f, const char *by, const char *method, const char *path,
                       int http_status);

/* ---- metrics ----------------------------------------------------------- */

#define FLEET_READY_BUCKETS 11
/* Upper bounds (seconds) of the ready-time histogram buckets. */
extern const double fleet_ready_bounds[FLEET_READY_BUCKETS];

typedef struct {
    size_t by_state[ST__COUNT];
    size_t hosts, hosts_up, images;
    uint64_t ready_hist[FLEET_READY_BUCKETS + 1]; /* last: above every bound */
    double ready_sum;                             /* seconds */
    uint64_t ready_count;
    /* The host's KSM (ksm.h), -1 where unknown. */
    int ksm_available;
    long ksm_run, ksm_pages_shared, ksm_pages_sharing;
    long long ksm_profit; /* bytes */
    /* Probes (health.c): watched instances by health ("none", "starting",
     * "healthy", "unhealthy"), checks done and failed since start. */
    size_t by_health[4];
    uint64_t probe_checks, probe_failures;
    /* Image volumes on remote hosts (nodestore.h): uploaded whole, bytes
     * sent (grows during an upload), served from a host's cache, removed. */
    uint64_t vol_uploads, vol_upload_bytes, vol_hits, vol_removed;
    /* Serial ports of remote hosts' guests read through libvirt streams
     * (node.h node_stream_counts): streams opened, failed to open, aborted
     * before a stop. */
    uint64_t serial_stream_opens, serial_stream_failures, serial_stream_aborts;
    /* Warm pools (pool.h): creates that took a waiting guest, creates of an
     * image with a pool that found none; guests waiting, guests booting. */
    uint64_t pool_claims, pool_misses;
    size_t pool_ready, pool_booting;
    /* The guest guard (guard.h guard_stats): ports added through netlink,
     * and through nft instead. */
    uint64_t guard_netlink_adds, guard_nft_fallbacks;
} fleet_metrics;

int fleet_metrics_get(fleet *f, fleet_metrics *out, fleet_err *e);

#endif
