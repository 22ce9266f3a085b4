/* fleet.h - shoald's core: hosts, instances and their lifecycle.
 *
 * A fleet ties the other modules together: the state database (state.h),
 * the image store (imagestore/img_store.h), the scheduler, and one libvirt
 * node per host (node.h). It implements the REST API's backend (backend.c
 * turns api.h requests into the calls below).
 *
 * Lifecycle of an instance
 *   create  -> row in SQLite (pending), image reference taken, start job queued
 *   start   -> a worker materializes the image, renders the domain and asks the
 *              node to start it (starting); the guest's status channel
 *              (gstatus.h) says when main() runs (running)
 *   end     -> libvirt says the domain is gone; the status channel says why
 *              (exited with a code / crashed), or the operator asked (stopped);
 *              the restart policy may queue a new start after a backoff
 *   delete  -> domain destroyed, row, address and image reference released
 *
 * Threads
 *   - API connection threads call the fleet_* operations; they may block for
 *     bounded times (a stop waits for the domain to go).
 *   - Workers (FLEET_WORKERS) run queued jobs; jobs for one instance never run
 *     concurrently (the instance is marked busy).
 *   - The supervisor thread watches status files (inotify), fires backoff
 *     timers, rotates consoles and reconnects lost hosts.
 *   - libvirt's event thread only queues jobs (node_event_fn must not block).
 *   f->mu guards the in-memory tables (hosts, runtime, jobs); it is never held
 *   across a libvirt call or a SQLite call that may wait.
 */
#ifndef SHOAL_FLEET_H
#define SHOAL_FLEET_H

#include <pthread.h>
#include <stdint.h>

#include "config.h"
#include "gstatus.h"
#include "node.h"
#include "state.h"

#define FLEET_MAX_HOSTS      64
#define FLEET_WORKERS        4
#define FLEET_EVENTS_KEEP    10000     /* events retained for Last-Event-ID */
#define FLEET_STOP_TIMEOUT_S 10        /* default graceful-stop timeout */
#define FLEET_VMM_OVERHEAD_MIB 12      /* QEMU private memory per guest */
#define FLEET_BACKOFF_BASE_MS 500
#define FLEET_BACKOFF_CAP_MS  30000
#define FLEET_STABLE_RUN_MS   10000    /* a run this long resets the backoff */
#define FLEET_LOCAL_HOST     "local"

struct node;
struct img_store;
struct pfwd;

/* One host: a libvirt connection plus what the scheduler needs to know. */
typedef struct {
    char name[STATE_NAME_MAX];
    char uri[STATE_URI_MAX];
    char *labels_json;             /* owned; "{}" when none */
    char domain_type_cfg[8];       /* "auto", "kvm", "qemu" as configured */
    struct node *node;             /* NULL while down */
    int up;                        /* connection alive */
    int cordoned;
    char last_error[NODE_ERR_MAX];  /* why it is down */
    uint64_t mem_mib;              /* capacity as probed */
    uint32_t vcpus;
    uint32_t slots;
    int64_t next_retry_ms;         /* monotonic ms of the next reconnect try */
    int opening;                   /* open_host running: nobody else opens it */
} fleet_host;

/* Runtime facts about one instance that are not worth a database row. */
typedef struct {
    char id[STATE_ID_LEN + 1];
    int busy;                      /* a job for it is running */
    int active;                    /* its domain is (believed) running */
    int stop_requested;            /* the operator stopped it: end is "stopped" */
    int run_no;                    /* current run number (state_run_begin) */
    int64_t request_ms;            /* monotonic ms when start was asked (ready_ms) */
    int64_t run_start_ms;          /* monotonic ms the current run began */
    int64_t backoff_due_ms;        /* monotonic ms of a pending policy restart, 0 */
    int backoff_level;             /* consecutive quick failures */
    gst_tracker tracker;           /* status channel reader */
    int have_outcome;              /* an exit or crash record arrived */
    gst_record outcome;
    char end_reason[256];          /* extra reason (e.g. KVM internal error) */
    int ready;                     /* ready record seen this run */
    int64_t console_size_checked_ms;
} fleet_rt;

typedef enum { JOB_START = 0, JOB_DOMAIN_GONE, JOB_DOMAIN_CRASHED } fleet_job_kind;

typedef struct fleet_job {
    fleet_job_kind kind;
    char id[STATE_ID_LEN + 1];
    char detail[64];
    struct fleet_job *next;
} fleet_job;

typedef struct fleet {
    cfg_t cfg;
    state_db *db;
    struct img_store *img;
    char token[65];                /* admin bearer token */
    char run_dir[1100];            /* status files: RUN_DIR/<id>.status */
    char log_dir[1100];            /* consoles: LOG_DIR/<id>.log */
    uint32_t gateway;              /* bridge address (host order), 0 = no network */
    struct pfwd *pfwd;             /* published ports */

    pthread_mutex_t mu;
    pthread_cond_t job_cv;         /* jobs queued / instance no longer busy */
    pthread_cond_t state_cv;       /* an instance's state changed */
    pthread_cond_t event_cv;       /* an event was appended */
    fleet_host hosts[FLEET_MAX_HOSTS];
    size_t nhosts;
    fleet_rt *rt;                  /* runtime table, nrt entries */
    size_t nrt, rt_cap;
    size_t *rt_index;              /* open addressing over rt by id: slot holds
                                      index + 1, 0 = empty; 2 * rt_cap slots */
    fleet_job *jobs, *jobs_tail;
    int64_t last_event_id;
    int stopping;

    pthread_mutex_t create_mu;     /* serialises create/placement/addresses */
    pthread_t workers[FLEET_WORKERS];
    pthread_t supervisor;
    int inotify_fd;
    int wake_fd;                   /* eventfd to wake the supervisor */

    /* metrics */
    uint64_t ready_hist[12];       /* ready_seconds histogram buckets */
    double ready_sum;
    uint64_t ready_count;
} fleet;

/* Errors of fleet operations: an api.h code plus message and field. */
struct api_status;

/* Open everything under cfg->state_dir, reconcile with what is running and
 * start the threads. Blocks while hosts are probed (first start: ~10 s). */
int fleet_open(const cfg_t *cfg, fleet **out, char *err, size_t errlen);
/* Stop threads and close. Running guests keep running. */
void fleet_close(fleet *f);

/* Monotonic and wall-clock milliseconds. */
int64_t fleet_now_ms(void);
int64_t fleet_wall_ms(void);

/* Append an event (JSON object fields, see docs/api.md) and wake streams.
 * Any string may be NULL. */
void fleet_emit(fleet *f, const char *type, const char *instance, const char *name,
                const char *state, const char *host, const char *image,
                const char *digest, const char *message);

/* Runtime entry of an instance, created on demand. Caller holds f->mu. */
fleet_rt *fleet_rt_get(fleet *f, const char *id);
void fleet_rt_drop(fleet *f, const char *id);

/* Queue a job (takes f->mu itself). */
void fleet_queue(fleet *f, fleet_job_kind kind, const char *id, const char *detail);

/* Host lookup by name; caller holds f->mu. NULL when unknown. */
fleet_host *fleet_host_find(fleet *f, const char *name);

/* Set an instance's state in SQLite and emit instance.state. Reads the row,
 * applies `state` and the optional fields, writes it back. */
int fleet_set_state(fleet *f, const char *id, state_inst_state st, const char *last_error);

/* Re-home an instance (cold move; it must not be running). */
int fleet_set_host(fleet *f, const char *id, const char *host);

/* File paths of an instance. */
void fleet_console_path(const fleet *f, const char *id, char *buf, size_t len);
void fleet_status_path(const fleet *f, const char *id, char *buf, size_t len);

/* Operations used by the API backend (backend.c). Each returns an api_code
 * and fills st on error. */
int fleet_stop(fleet *f, const char *id, int timeout_s, struct api_status *st);
int fleet_start(fleet *f, const char *id, struct api_status *st);
int fleet_delete(fleet *f, const char *id, int force, struct api_status *st);
/* Add a host at runtime (also persisted). */
int fleet_host_add(fleet *f, const char *name, const char *uri, const char *labels_json,
                   const char *domain_type, struct api_status *st);
/* Effective domain type of a host ("kvm"/"qemu"/"auto"). Caller holds f->mu. */
const char *fleet_host_domain_type(const fleet_host *h);

/* States that hold host resources (counted by the scheduler). */
int fleet_state_holds(state_inst_state s);
/* States in which a domain may exist. */
int fleet_state_live(state_inst_state s);

#endif
