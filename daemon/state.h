/* state.h - shoald's own records in SQLite: hosts, instances, runs, events.
 *
 * One database file under the state dir (STATE_DIR/shoald.db), WAL mode,
 * foreign keys on, a schema version with forward migrations. Images live in
 * the image store's own database; this one only records digests.
 *
 * Threading: a state_db is shared by all daemon threads; every call takes the
 * handle's mutex, so calls are atomic with respect to each other. Calls never
 * block on anything but SQLite.
 *
 * Errors: functions return 0 on success, STATE_ENOTFOUND when the named row
 * does not exist, STATE_ECONFLICT on a uniqueness clash (name taken, address
 * or port in use), STATE_EBUSY when the database stayed locked by another
 * connection past the busy timeout (writes: instance insert, update,
 * delete, marks), -1 on any other failure; the message is in err (may be
 * NULL) and names the bad value.
 */
#ifndef SHOAL_STATE_H
#define SHOAL_STATE_H

#include <stddef.h>
#include <stdint.h>

#define STATE_ENOTFOUND (-2)
#define STATE_ECONFLICT (-3)
#define STATE_EBUSY                                                                                \
    (-4) /* another connection held the database past the
                                busy timeout (5 s): nothing written, try again */

#define STATE_ID_LEN   12 /* hex chars of an instance id */
#define STATE_NAME_MAX 64
#define STATE_URI_MAX  1100
#define STATE_ERR_MAX  256

/* A probe spec (probe.h PROBE_SPEC_MAX) and its NUL. */
#define STATE_PROBE_MAX 304

typedef struct state_db state_db;

/* Instance states, as shown by the API (docs/api.md). */
typedef enum {
    ST_PENDING = 0, /* accepted, not yet started */
    ST_STARTING,    /* domain created, guest not ready */
    ST_RUNNING,     /* guest reported ready */
    ST_STOPPING,    /* stop requested, waiting for the domain to go */
    ST_STOPPED,     /* stopped by the operator */
    ST_EXITED,      /* app returned; exit_code set */
    ST_CRASHED,     /* CPU exception, pvpanic or KVM internal error */
    ST_BACKOFF,     /* waiting to be restarted by its policy */
    ST_FAILED,      /* could not be started; last_error says why */
    ST_LOST,        /* its domain vanished */
    ST_IDLE,        /* scaled to zero: stopped for want of connections, its
                       address and published ports kept; a connection wakes it */
    ST__COUNT
} state_inst_state;

typedef enum { RESTART_NEVER = 0, RESTART_ON_FAILURE, RESTART_ALWAYS } state_restart;

/* Transport protocol of a published port. */
typedef enum { STATE_PROTO_TCP = 0, STATE_PROTO_UDP = 1 } state_proto;

/* One published port: host port -> instance port, for one protocol. A host
 * port is held per protocol: tcp 8080 and udp 8080 are two ports and may
 * belong to different instances. A zeroed struct is tcp. */
typedef struct {
    int host;
    int guest;
    state_proto proto;
} state_port;

#define STATE_MAX_PORTS 16

/* One instance row. Strings are NUL-terminated and owned by the struct;
 * args/env/labels are JSON text (array of strings, object of strings). */
typedef struct {
    char id[STATE_ID_LEN + 1];
    char name[STATE_NAME_MAX];
    char image_ref[256];       /* the ref the user asked for */
    char image_digest[80];     /* sha256:<hex> resolved at create */
    char host[STATE_NAME_MAX]; /* host name; "" before placement */
    state_inst_state state;
    int memory_mib;
    int vcpus;
    char *args_json;   /* heap, owned; "[]" when none */
    char *env_json;    /* heap, owned; "{}" when none */
    char *labels_json; /* heap, owned; "{}" when none */
    state_restart restart;
    int restarts;  /* restarts done by the policy so far */
    int network;   /* 1: attached to the host bridge */
    uint32_t ipv4; /* host byte order; 0 when none */
    char mac[18];  /* "5a:5c:xx:xx:xx:xx" or "" */
    state_port ports[STATE_MAX_PORTS];
    int nports;
    int64_t created_ms; /* unix ms */
    int64_t started_ms; /* unix ms of the current run's start, 0 */
    int64_t boot_us;    /* guest entry->main, -1 unknown */
    double ready_ms;    /* create/start request -> ready, -1 unknown */
    int exit_code;      /* -1 when none */
    char last_error[STATE_ERR_MAX];
    int want_running;     /* operator intent: 1 run, 0 stay down */
    char *placement_json; /* heap, owned: {"policy":..,"rules":[..]}; "{}" */
    /* Probes (probe.h, docs/shoald.md "Probes"), as text. ready: the
     * readiness probe, filled at create ("" in rows from before schema 5:
     * decided at each start); health: the health probe, "" for none, with
     * its interval, timeout (seconds) and failures in a row that make the
     * instance unhealthy (0: the defaults). */
    char ready[STATE_PROBE_MAX];
    char health[STATE_PROBE_MAX];
    int health_interval_s, health_timeout_s, health_retries;
    char *cmdline;   /* heap, owned: the run's command line override, NULL: the image's */
    char initrd[80]; /* the run's own initrd "sha256:<hex>" (a reference held on it
                        in the image store), "": the image's */
    /* scale to zero: sleep after this many seconds without a connection on
     * the published ports (state idle), 0 never */
    int idle_s;
    /* the warm pool guest whose identity its current or last domain has
     * (a wake from the pool, docs/shoald.md "Scale to zero"): that domain's
     * name, tap and run files derive from this id, not from `id`. "" for a
     * domain of its own. Use fleet_run_id(). */
    char guest[STATE_ID_LEN + 1];
    int64_t rowid; /* SQLite's, set by reads (state_inst_changes names rows by it) */
} state_instance;

/* One host row (a libvirt connection). */
typedef struct {
    char name[STATE_NAME_MAX];
    char uri[STATE_URI_MAX];
    char *labels_json; /* heap, owned */
    int cordoned;
    char domain_type[8]; /* "auto", "kvm" or "qemu" */
} state_host;

/* One run of an instance (a boot until poweroff/crash/destroy). */
typedef struct {
    int64_t started_ms;
    int64_t ended_ms; /* 0 while running */
    int exit_code;    /* -1 unknown */
    char outcome[16]; /* "running","exited","crashed","stopped","failed","lost" */
    char reason[STATE_ERR_MAX];
} state_run;

/* One retained event. data_json is the whole event object as sent. */
typedef struct {
    int64_t id;
    char *data_json; /* heap, owned */
} state_event;

/* Open (creating and migrating as needed) STATE_DIR's database. */
int state_open(const char *path, state_db **out, char *err, size_t errlen);
void state_close(state_db *db);

const char *state_inst_state_name(state_inst_state s);
int state_inst_state_parse(const char *s, state_inst_state *out);
const char *state_restart_name(state_restart r);
int state_restart_parse(const char *s, state_restart *out);
/* "tcp" / "udp"; parse: 0, or -1 for anything else. */
const char *state_proto_name(state_proto p);
int state_proto_parse(const char *s, state_proto *out);

/* Instances. Insert fails with STATE_ECONFLICT when the id or name exists.
 * Update rewrites every column of the row with this id. */
int state_inst_insert(state_db *db, const state_instance *in, char *err, size_t errlen);
int state_inst_update(state_db *db, const state_instance *in, char *err, size_t errlen);
int state_inst_delete(state_db *db, const char *id, char *err, size_t errlen);
/* A delete in flight (issue 16): mark the row before its domain goes, so
 * that a restarted shoald finishes the delete (reconcile.c) instead of
 * finding a live row without a domain. The mark survives every update
 * (it is not a column of state_instance) and goes with the row.
 * state_inst_deleting: 1 marked, 0 not (or no such row), -1 on error. */
int state_inst_mark_deleting(state_db *db, const char *id, char *err, size_t errlen);
int state_inst_deleting(state_db *db, const char *id);
/* A create request written as a whole or not at all (issue 16): its rows
 * are inserted marked with the batch id (in the insert's own transaction)
 * and state_batch_commit clears the mark of all of them at once, before
 * any is started. state_batch_drop_uncommitted (shoald's start, before
 * anything reads the rows) deletes the rows of batches never committed:
 * the number deleted, or a negative code. */
int state_inst_insert_batch(state_db *db, const state_instance *in, const char *batch, char *err,
                            size_t errlen);
int state_batch_commit(state_db *db, const char *batch, char *err, size_t errlen);
int state_batch_drop_uncommitted(state_db *db, char *err, size_t errlen);
/* A cold move in flight (issue 16, core/plan.c): mark the row with its
 * destination host before its domain is stopped; state_inst_finish_move
 * then re-homes it and makes it wanted and pending in one write, clearing
 * the mark (STATE_ENOTFOUND when no move was marked). Like the delete
 * mark, the move mark survives every update. state_inst_move_to: 1 with
 * the destination in to, 0 none (or no row), -1 on error. */
int state_inst_mark_move(state_db *db, const char *id, const char *to, char *err, size_t errlen);
int state_inst_move_to(state_db *db, const char *id, char *to, size_t tolen);
int state_inst_finish_move(state_db *db, const char *id, char *err, size_t errlen);
/* Lookup by exact id, then unique id prefix (4..11 hex chars), then exact
 * name: ids come first, so a name can never hide an id. Ambiguous prefix:
 * STATE_ECONFLICT. The result must be state_inst_free()d. */
int state_inst_find(state_db *db, const char *key, state_instance *out, char *err, size_t errlen);
/* All instances ordered by (created, id). *out is a heap array of *n
 * instances; free it with state_inst_array_free. */
int state_inst_list(state_db *db, state_instance **out, size_t *n, char *err, size_t errlen);
/* Instances per state, without reading the rows (what /metrics shows):
 * counts[s] for each state s; 0 or -1 with err. */
int state_inst_count(state_db *db, size_t counts[ST__COUNT], char *err, size_t errlen);
/* One page of instances in (created, id) order, after the instance `after`
 * (NULL: from the start). Only rows with the given state (>= 0) and host
 * (non-NULL) are read; `match` (may be NULL) filters further. At most
 * `limit` rows are returned in *out (free with state_inst_array_free);
 * *more says whether matching rows follow. STATE_ENOTFOUND when `after`
 * names no instance. Reads stop as soon as the page is full. */
typedef int (*state_inst_match)(const state_instance *in, void *ctx);
int state_inst_page(state_db *db, const char *after, int state, const char *host,
                    state_inst_match match, void *ctx, size_t limit, state_instance **out,
                    size_t *n, int *more, char *err, size_t errlen);
/* Rows of instances written since the last call, by their rowid: every
 * insert, update and delete of this connection (the only one that writes
 * instances), rolled back ones too; one row may come more than once. The
 * first call, and any after more than 4096 writes, says *all = 1 instead
 * (*rowids NULL): read everything again. *rowids is the caller's to free.
 * Writes before the first call are not recorded (nobody asked). -1: out
 * of memory (*all = 1 then too). SQLite's update hook does not see rows
 * that REPLACE or a DELETE without WHERE remove: write instances with
 * neither. */
int state_inst_changes(state_db *db, int64_t **rowids, size_t *n, int *all);
/* The instance row `rowid`: 1 (in *out, state_inst_free it), 0 when no
 * such row (deleted), -1 on a SQLite error. */
int state_inst_get_rowid(state_db *db, int64_t rowid, state_instance *out);
void state_inst_free(state_instance *in); /* frees owned fields only */
void state_inst_array_free(state_instance *a, size_t n);

/* Is this IPv4 address held by some instance? Is host_port held for proto
 * by some instance (a port held for the other protocol does not count)? */
int state_addr_in_use(state_db *db, uint32_t ipv4);
/* The instances' IPv4 addresses in [lo, hi], ascending, from the unique
 * index (no row is read): *out is a heap array of *n (free() it; NULL when
 * none). 0, or -1 with err. */
int state_addrs_in(state_db *db, uint32_t lo, uint32_t hi, uint32_t **out, size_t *n, char *err,
                   size_t errlen);
int state_port_in_use(state_db *db, int host_port, state_proto proto);

/* Runs: begin a run (returns its number), end it. */
int state_run_begin(state_db *db, const char *id, int64_t started_ms, int *run_no);
int state_run_end(state_db *db, const char *id, int run_no, int64_t ended_ms, int exit_code,
                  const char *outcome, const char *reason);
/* Last `max` runs, newest first. */
int state_run_list(state_db *db, const char *id, state_run *out, size_t max, size_t *n);

/* Hosts. */
int state_host_upsert(state_db *db, const state_host *h, char *err, size_t errlen);
int state_host_delete(state_db *db, const char *name, char *err, size_t errlen);
int state_host_list(state_db *db, state_host **out, size_t *n, char *err, size_t errlen);
void state_host_array_free(state_host *a, size_t n);

/* Events: append (assigns the id, returns it in *id), read those after
 * `since` (at most max), trim to the newest `keep`. */
int state_event_append(state_db *db, const char *data_json_without_id, int64_t *id);
int state_event_after(state_db *db, int64_t since, size_t max, state_event **out, size_t *n);
void state_event_array_free(state_event *a, size_t n);
int state_event_trim(state_db *db, int64_t keep);
int64_t state_event_last_id(state_db *db);

/* Key/value settings kept across restarts (e.g. the subnet in use). */
int state_meta_get(state_db *db, const char *key, char *val, size_t vallen);
int state_meta_set(state_db *db, const char *key, const char *val);

#endif
