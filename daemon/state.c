/* state.c - shoald's records in SQLite. See state.h for the contract. */
#include "state.h"
#include "errbuf.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Prepared statements kept for the reads every API call makes (an
 * instance by id or name, a page of the list): parsing the SQL again was
 * half of a GET /v1/instances/NAME in the daemon. Used under mu; reset
 * after each use, so none holds a read transaction open. */
#define STMT_CACHE 16

struct state_db {
    sqlite3 *db;
    pthread_mutex_t mu;
    struct {
        char *sql;
        sqlite3_stmt *st;
    } stmts[STMT_CACHE];
    /* Instance rows written since the last state_inst_changes (the update
     * hook, under mu): on once somebody asked; past JOURNAL_MAX, `all`. */
    int journal_on, journal_all;
    int64_t *journal;
    size_t njournal;
};

#define JOURNAL_MAX 4096

/* The statement for sql, prepared once (mu held); NULL on error. */
static sqlite3_stmt *stmt_get(state_db *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    size_t i;

    for (i = 0; i < STMT_CACHE && db->stmts[i].sql != NULL; i++) {
        if (strcmp(db->stmts[i].sql, sql) == 0)
            return db->stmts[i].st;
    }
    if (sqlite3_prepare_v3(db->db, sql, -1, i < STMT_CACHE ? SQLITE_PREPARE_PERSISTENT : 0, &st,
                           NULL) != SQLITE_OK)
        return NULL;
    if (i < STMT_CACHE && (db->stmts[i].sql = strdup(sql)) != NULL)
        db->stmts[i].st = st;
    return st;
}

/* Done with a statement of stmt_get: reset it (or finalize one the cache
 * had no room for). */
static void stmt_put(state_db *db, sqlite3_stmt *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < STMT_CACHE && db->stmts[i].sql != NULL; i++) {
        if (db->stmts[i].st == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return;
        }
    }
    sqlite3_finalize(st);
}

/* Schema migrations, applied in order; user_version counts those done.
 * Never edit a shipped step: append a new one. */
static const char *const MIGRATIONS[] = {
    /* 1: initial schema */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE hosts("
    "  name TEXT PRIMARY KEY, uri TEXT NOT NULL, labels TEXT NOT NULL,"
    "  cordoned INTEGER NOT NULL DEFAULT 0, domain_type TEXT NOT NULL);"
    "CREATE TABLE instances("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, image_ref TEXT NOT NULL,"
    "  image_digest TEXT NOT NULL, host TEXT NOT NULL, state TEXT NOT NULL,"
    "  memory_mib INTEGER NOT NULL, vcpus INTEGER NOT NULL,"
    "  args TEXT NOT NULL, env TEXT NOT NULL, labels TEXT NOT NULL,"
    "  restart TEXT NOT NULL, restarts INTEGER NOT NULL, network INTEGER NOT NULL,"
    "  ipv4 INTEGER, mac TEXT NOT NULL, ports TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL, started_ms INTEGER NOT NULL,"
    "  boot_us INTEGER NOT NULL, ready_ms REAL NOT NULL, exit_code INTEGER NOT NULL,"
    "  last_error TEXT NOT NULL, want_running INTEGER NOT NULL);"
    /* An address is never held by two instances. */
    "CREATE UNIQUE INDEX instances_ipv4 ON instances(ipv4) WHERE ipv4 IS NOT NULL;"
    "CREATE TABLE host_ports(port INTEGER PRIMARY KEY,"
    "  instance TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE);"
    "CREATE TABLE runs(instance TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,"
    "  run INTEGER NOT NULL, started_ms INTEGER NOT NULL, ended_ms INTEGER NOT NULL,"
    "  exit_code INTEGER NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL,"
    "  PRIMARY KEY(instance, run));"
    "CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL);",
    /* 2: listing pages in creation order without a sort */
    "CREATE INDEX instances_created ON instances(created_ms, id);",
    /* 3: placement policy and rules, kept so they bind later placements */
    "ALTER TABLE instances ADD COLUMN placement TEXT NOT NULL DEFAULT '{}';",
    /* 4: a protocol per published port; a host port is held per protocol.
     * Ports published before were all tcp. (The instances.ports JSON gains
     * a "proto" key; entries without it are tcp.) */
    "CREATE TABLE host_ports_v4(port INTEGER NOT NULL,"
    "  proto TEXT NOT NULL DEFAULT 'tcp' CHECK(proto IN ('tcp','udp')),"
    "  instance TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,"
    "  PRIMARY KEY(port, proto));"
    "INSERT INTO host_ports_v4(port,proto,instance) SELECT port,'tcp',instance FROM host_ports;"
    "DROP TABLE host_ports;"
    "ALTER TABLE host_ports_v4 RENAME TO host_ports;"
    "CREATE INDEX host_ports_instance ON host_ports(instance);",
    /* 5: readiness and health probes (probe.h) and a per-run command line.
     * Rows from before have ready '' (decided at start, as then: the
     * status channel for shoal's guests) and no health probe. */
    "ALTER TABLE instances ADD COLUMN ready TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE instances ADD COLUMN health TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE instances ADD COLUMN health_interval_s INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE instances ADD COLUMN health_timeout_s INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE instances ADD COLUMN health_retries INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE instances ADD COLUMN cmdline TEXT;",
    /* 6: a delete in flight (issue 16): set before the domain is destroyed,
     * so that a shoald killed meanwhile finishes it after its restart.
     * Not in INST_COLS: only state_inst_mark_deleting writes it. */
    "ALTER TABLE instances ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0;",
    /* 7: API tokens (daemon/tokens.h), kept as SHA-256 of their secret,
     * and which token created each instance (for the token quotas). */
    "CREATE TABLE tokens(id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  hash BLOB NOT NULL UNIQUE, scope TEXT NOT NULL, selector TEXT NOT NULL DEFAULT '',"
    "  max_instances INTEGER NOT NULL DEFAULT 0, max_memory_mib INTEGER NOT NULL DEFAULT 0,"
    "  max_vcpus INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL);"
    "CREATE TABLE token_instances("
    "  instance TEXT PRIMARY KEY REFERENCES instances(id) ON DELETE CASCADE,"
    "  token TEXT NOT NULL);"
    "CREATE INDEX token_instances_token ON token_instances(token);",
    /* 8: a run's own initrd (issue 14), "sha256:<hex>" of an uploaded
     * initrd the instance holds a reference on; NULL: the image's. */
    "ALTER TABLE instances ADD COLUMN initrd TEXT;",
    /* 9: crash safety of creates and moves, token expiry and rate (issue
     * 16). instances.batch: the create request that wrote the row, until
     * the whole request is committed ('' once it is): a shoald killed
     * mid-batch leaves rows a restart removes (state_batch_*).
     * instances.move_to: a cold move in flight to that host
     * (state_inst_*_move). Neither is in INST_COLS. tokens: expiry (unix
     * ms, 0 = never) and a request rate (per second, 0 = unlimited) with
     * its burst (tokens.h). */
    "ALTER TABLE instances ADD COLUMN batch TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE instances ADD COLUMN move_to TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE tokens ADD COLUMN expires_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tokens ADD COLUMN rate INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tokens ADD COLUMN burst INTEGER NOT NULL DEFAULT 0;",
    /* 10: scale to zero (issue 15): seconds without a connection on the
     * published ports after which the instance sleeps (state idle); 0 off,
     * as for every row from before. */
    "ALTER TABLE instances ADD COLUMN idle_s INTEGER NOT NULL DEFAULT 0;",
    /* 11: wake from a warm pool (issue 15): the id of the pool guest whose
     * domain, tap and run files the instance's current (or last) run uses;
     * '' for a run of its own (every row from before). */
    "ALTER TABLE instances ADD COLUMN guest TEXT NOT NULL DEFAULT '';",
};

static const char *const STATE_NAMES[ST__COUNT] = {
    "pending", "starting", "running", "stopping", "stopped", "exited",
    "crashed", "backoff",  "failed",  "lost",     "idle",
};

static const char *const RESTART_NAMES[] = { "never", "on-failure", "always" };

const char *state_proto_name(state_proto p)
{
    return p == STATE_PROTO_UDP ? "udp" : "tcp";
}

int state_proto_parse(const char *s, state_proto *out)
{
    if (s && strcmp(s, "tcp") == 0)
        *out = STATE_PROTO_TCP;
    else if (s && strcmp(s, "udp") == 0)
        *out = STATE_PROTO_UDP;
    else
        return -1;
    return 0;
}

const char *state_inst_state_name(state_inst_state s)
{
    return (s >= 0 && s < ST__COUNT) ? STATE_NAMES[s] : "unknown";
}

int state_inst_state_parse(const char *s, state_inst_state *out)
{
    for (int i = 0; i < ST__COUNT; i++) {
        if (strcmp(s, STATE_NAMES[i]) == 0) {
            *out = (state_inst_state)i;
            return 0;
        }
    }
    return -1;
}

const char *state_restart_name(state_restart r)
{
    return (r >= RESTART_NEVER && r <= RESTART_ALWAYS) ? RESTART_NAMES[r] : "never";
}

int state_restart_parse(const char *s, state_restart *out)
{
    for (int i = 0; i <= RESTART_ALWAYS; i++) {
        if (strcmp(s, RESTART_NAMES[i]) == 0) {
            *out = (state_restart)i;
            return 0;
        }
    }
    return -1;
}

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        errbuf_set(err, errlen, "state db: %s", msg ? msg : "unknown error");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* rc, or STATE_EBUSY when what failed last on db was another connection's
 * lock outlasting the busy timeout (SQLITE_BUSY, SQLITE_LOCKED). */
static int busy_or(sqlite3 *db, int rc)
{
    int c = sqlite3_errcode(db) & 0xff;
    return rc == -1 && (c == SQLITE_BUSY || c == SQLITE_LOCKED) ? STATE_EBUSY : rc;
}

static int migrate(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int version = 0, rc = -1;
    const int latest = (int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]);

    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    /* Done with it: a statement left open makes DROP TABLE fail (locked). */
    sqlite3_finalize(st);
    st = NULL;
    if (version > latest) {
        errbuf_set(err, errlen, "state db schema version %d is newer than this shoald (%d)",
                   version, latest);
        goto out;
    }
    for (int v = version; v < latest; v++) {
        char pragma[64];
        if (exec_sql(db, "BEGIN IMMEDIATE", err, errlen) < 0)
            goto out;
        snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", v + 1);
        if (exec_sql(db, MIGRATIONS[v], err, errlen) < 0 || exec_sql(db, pragma, err, errlen) < 0) {
            exec_sql(db, "ROLLBACK", NULL, 0);
            goto out;
        }
        if (exec_sql(db, "COMMIT", err, errlen) < 0)
            goto out;
    }
    rc = 0;
out:
    if (rc < 0 && err && !err[0])
        errbuf_set(err, errlen, "state db: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

/* sqlite3_update_hook: every row this connection inserts, updates or
 * deletes, committed or not (a rolled back one is read again and found as
 * it was). Runs inside the statement, so under mu. */
static void on_update(void *ctx, int op, const char *dbname, const char *table, sqlite3_int64 rowid)
{
    state_db *s = ctx;
    (void)op;
    (void)dbname;
    if (!s->journal_on || s->journal_all || strcmp(table, "instances") != 0)
        return;
    if (s->njournal && s->journal[s->njournal - 1] == rowid)
        return; /* the same row again */
    if (s->njournal == JOURNAL_MAX) {
        s->journal_all = 1;
        return;
    }
    s->journal[s->njournal++] = rowid;
}

int state_open(const char *path, state_db **out, char *err, size_t errlen)
{
    state_db *s = calloc(1, sizeof *s);
    int rc = -1;

    if (err && errlen)
        err[0] = 0;
    if (!s) {
        errbuf_set(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&s->mu, NULL);
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        errbuf_set(err, errlen, "cannot open state db '%s': %s", path,
                   s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (exec_sql(s->db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                 "PRAGMA foreign_keys=ON;",
                 err, errlen) < 0)
        goto out;
    if (migrate(s->db, err, errlen) < 0)
        goto out;
    sqlite3_update_hook(s->db, on_update, s);
    rc = 0;
out:
    if (rc < 0) {
        state_close(s);
        s = NULL;
    }
    *out = s;
    return rc;
}

void state_close(state_db *db)
{
    if (!db)
        return;
    for (size_t i = 0; i < STMT_CACHE; i++) {
        sqlite3_finalize(db->stmts[i].st);
        free(db->stmts[i].sql);
    }
    sqlite3_close(db->db);
    pthread_mutex_destroy(&db->mu);
    free(db->journal);
    free(db);
}

/* ---- instances ---------------------------------------------------------- */

static char *ports_to_json(const state_instance *in)
{
    json_t *a = json_array();
    char *s;
    for (int i = 0; i < in->nports; i++)
        json_array_append_new(a, json_pack("{s:i,s:i,s:s}", "host", in->ports[i].host, "guest",
                                           in->ports[i].guest, "proto",
                                           state_proto_name(in->ports[i].proto)));
    s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return s;
}

static void ports_from_json(state_instance *in, const char *txt)
{
    json_t *a;
    size_t i;
    json_t *v;
    in->nports = 0;
    if (txt == NULL || strcmp(txt, "[]") == 0)
        return; /* most rows: no parse */
    a = json_loads(txt, 0, NULL);
    json_array_foreach (a, i, v) {
        if (in->nports >= STATE_MAX_PORTS)
            break;
        in->ports[in->nports].host = (int)json_integer_value(json_object_get(v, "host"));
        in->ports[in->nports].guest = (int)json_integer_value(json_object_get(v, "guest"));
        /* Rows written before schema 4 have no "proto": tcp. */
        if (state_proto_parse(json_string_value(json_object_get(v, "proto")),
                              &in->ports[in->nports].proto) < 0)
            in->ports[in->nports].proto = STATE_PROTO_TCP;
        in->nports++;
    }
    json_decref(a);
}

#define INST_COLS                                                                                  \
    "id,name,image_ref,image_digest,host,state,memory_mib,vcpus,args,env,"                         \
    "labels,restart,restarts,network,ipv4,mac,ports,created_ms,started_ms,boot_us,"                \
    "ready_ms,exit_code,last_error,want_running,placement,ready,health,"                           \
    "health_interval_s,health_timeout_s,health_retries,cmdline,initrd,idle_s,guest"
/* What reads select: the columns, then the rowid (read_inst). */
#define INST_SEL INST_COLS ",rowid"

static int bind_inst(sqlite3_stmt *st, const state_instance *in, const char *ports)
{
    int i = 1;
    sqlite3_bind_text(st, i++, in->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, in->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, in->image_ref, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, in->image_digest, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, in->host, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, state_inst_state_name(in->state), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, i++, in->memory_mib);
    sqlite3_bind_int(st, i++, in->vcpus);
    sqlite3_bind_text(st, i++, in->args_json ? in->args_json : "[]", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, in->env_json ? in->env_json : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, in->labels_json ? in->labels_json : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, state_restart_name(in->restart), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, i++, in->restarts);
    sqlite3_bind_int(st, i++, in->network);
    if (in->ipv4)
        sqlite3_bind_int64(st, i++, in->ipv4);
    else
        sqlite3_bind_null(st, i++);
    sqlite3_bind_text(st, i++, in->mac, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, ports, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, i++, in->created_ms);
    sqlite3_bind_int64(st, i++, in->started_ms);
    sqlite3_bind_int64(st, i++, in->boot_us);
    sqlite3_bind_double(st, i++, in->ready_ms);
    sqlite3_bind_int(st, i++, in->exit_code);
    sqlite3_bind_text(st, i++, in->last_error, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, i++, in->want_running);
    sqlite3_bind_text(st, i++, in->placement_json ? in->placement_json : "{}", -1,
                      SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, in->ready, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, in->health, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, i++, in->health_interval_s);
    sqlite3_bind_int(st, i++, in->health_timeout_s);
    sqlite3_bind_int(st, i++, in->health_retries);
    if (in->cmdline)
        sqlite3_bind_text(st, i++, in->cmdline, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i++);
    if (in->initrd[0])
        sqlite3_bind_text(st, i++, in->initrd, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i++);
    sqlite3_bind_int(st, i++, in->idle_s);
    sqlite3_bind_text(st, i++, in->guest, -1, SQLITE_TRANSIENT);
    return i;
}

static void copy_col(char *dst, size_t len, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = t ? (size_t)sqlite3_column_bytes(st, col) : 0;
    if (n >= len)
        n = len - 1;
    if (n)
        memcpy(dst, t, n);
    dst[n] = 0;
}

static char *dup_col(sqlite3_stmt *st, int col, const char *dflt)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return strdup(t ? (const char *)t : dflt);
}

static void read_inst(sqlite3_stmt *st, state_instance *in)
{
    int c = 0;
    char buf[32];
    memset(in, 0, sizeof *in);
    copy_col(in->id, sizeof in->id, st, c++);
    copy_col(in->name, sizeof in->name, st, c++);
    copy_col(in->image_ref, sizeof in->image_ref, st, c++);
    copy_col(in->image_digest, sizeof in->image_digest, st, c++);
    copy_col(in->host, sizeof in->host, st, c++);
    copy_col(buf, sizeof buf, st, c++);
    if (state_inst_state_parse(buf, &in->state) < 0)
        in->state = ST_LOST;
    in->memory_mib = sqlite3_column_int(st, c++);
    in->vcpus = sqlite3_column_int(st, c++);
    in->args_json = dup_col(st, c++, "[]");
    in->env_json = dup_col(st, c++, "{}");
    in->labels_json = dup_col(st, c++, "{}");
    copy_col(buf, sizeof buf, st, c++);
    if (state_restart_parse(buf, &in->restart) < 0)
        in->restart = RESTART_NEVER;
    in->restarts = sqlite3_column_int(st, c++);
    in->network = sqlite3_column_int(st, c++);
    in->ipv4 = (uint32_t)sqlite3_column_int64(st, c++);
    copy_col(in->mac, sizeof in->mac, st, c++);
    ports_from_json(in, (const char *)sqlite3_column_text(st, c++));
    in->created_ms = sqlite3_column_int64(st, c++);
    in->started_ms = sqlite3_column_int64(st, c++);
    in->boot_us = sqlite3_column_int64(st, c++);
    in->ready_ms = sqlite3_column_double(st, c++);
    in->exit_code = sqlite3_column_int(st, c++);
    copy_col(in->last_error, sizeof in->last_error, st, c++);
    in->want_running = sqlite3_column_int(st, c++);
    in->placement_json = dup_col(st, c++, "{}");
    copy_col(in->ready, sizeof in->ready, st, c++);
    copy_col(in->health, sizeof in->health, st, c++);
    in->health_interval_s = sqlite3_column_int(st, c++);
    in->health_timeout_s = sqlite3_column_int(st, c++);
    in->health_retries = sqlite3_column_int(st, c++);
    in->cmdline = sqlite3_column_type(st, c) == SQLITE_NULL ? NULL : dup_col(st, c, "");
    c++;
    copy_col(in->initrd, sizeof in->initrd, st, c++);
    in->idle_s = sqlite3_column_int(st, c++);
    copy_col(in->guest, sizeof in->guest, st, c++);
    in->rowid = sqlite3_column_int64(st, c);
}

/* Rewrite the host_ports rows of one instance. Caller holds the mutex and
 * an open transaction. */
static int write_ports(state_db *db, const state_instance *in, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(db->db, "DELETE FROM host_ports WHERE instance=?", -1, &st, NULL) !=
        SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, in->id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto out;
    sqlite3_finalize(st);
    st = NULL;
    for (int i = 0; i < in->nports; i++) {
        if (sqlite3_prepare_v2(db->db,
                               "INSERT INTO host_ports(port,proto,instance)"
                               " VALUES(?,?,?)",
                               -1, &st, NULL) != SQLITE_OK)
            goto out;
        sqlite3_bind_int(st, 1, in->ports[i].host);
        sqlite3_bind_text(st, 2, state_proto_name(in->ports[i].proto), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, in->id, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE) {
            if (sqlite3_extended_errcode(db->db) == SQLITE_CONSTRAINT_PRIMARYKEY) {
                errbuf_set(err, errlen, "host port %d/%s is already published", in->ports[i].host,
                           state_proto_name(in->ports[i].proto));
                rc = STATE_ECONFLICT;
            }
            goto out;
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    rc = 0;
out:
    if (rc == -1)
        errbuf_set(err, errlen, "state db: %s", sqlite3_errmsg(db->db));
    sqlite3_finalize(st);
    return rc;
}

static int inst_write(state_db *db, const state_instance *in, int insert, const char *batch,
                      char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    char *ports = ports_to_json(in);
    int rc = -1, step;
    /* UPDATE, not REPLACE: REPLACE deletes the row and cascades away runs. */
    const char *sql =
        insert ? "INSERT INTO instances(" INST_COLS
                 ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
               : "UPDATE instances SET id=?1,name=?2,image_ref=?3,image_digest=?4,host=?5,"
                 "state=?6,memory_mib=?7,vcpus=?8,args=?9,env=?10,labels=?11,restart=?12,"
                 "restarts=?13,network=?14,ipv4=?15,mac=?16,ports=?17,created_ms=?18,"
                 "started_ms=?19,boot_us=?20,ready_ms=?21,exit_code=?22,last_error=?23,"
                 "want_running=?24,placement=?25,ready=?26,health=?27,health_interval_s=?28,"
                 "health_timeout_s=?29,health_retries=?30,cmdline=?31,initrd=?32,idle_s=?33,"
                 "guest=?34 "
                 "WHERE id=?1";

    pthread_mutex_lock(&db->mu);
    if (exec_sql(db->db, "BEGIN IMMEDIATE", err, errlen) < 0) {
        rc = busy_or(db->db, -1);
        goto unlock;
    }
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK)
        goto rollback;
    bind_inst(st, in, ports ? ports : "[]");
    step = sqlite3_step(st);
    if (step != SQLITE_DONE) {
        int ext = sqlite3_extended_errcode(db->db);
        if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY) {
            const char *m = sqlite3_errmsg(db->db);
            if (strstr(m, "instances.name"))
                errbuf_set(err, errlen, "instance name '%s' is already taken", in->name);
            else if (strstr(m, "ipv4"))
                errbuf_set(err, errlen, "address is already held by another instance");
            else
                errbuf_set(err, errlen, "instance id '%s' already exists", in->id);
            rc = STATE_ECONFLICT;
        }
        goto rollback;
    }
    if (!insert && sqlite3_changes(db->db) == 0) {
        errbuf_set(err, errlen, "instance '%s' not found", in->id);
        rc = STATE_ENOTFOUND;
        goto rollback;
    }
    if (batch && batch[0]) {
        /* in the same transaction: the row is never there unmarked */
        sqlite3_finalize(st);
        if (sqlite3_prepare_v2(db->db, "UPDATE instances SET batch=?2 WHERE id=?1", -1, &st,
                               NULL) != SQLITE_OK)
            goto rollback;
        sqlite3_bind_text(st, 1, in->id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, batch, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto rollback;
    }
    rc = write_ports(db, in, err, errlen);
    if (rc != 0)
        goto rollback;
    if (exec_sql(db->db, "COMMIT", err, errlen) < 0) {
        rc = -1;
        goto rollback;
    }
    rc = 0;
    goto unlock;
rollback:
    if (rc == -1 && err && !err[0])
        errbuf_set(err, errlen, "state db: %s", sqlite3_errmsg(db->db));
    exec_sql(db->db, "ROLLBACK", NULL, 0);
unlock:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    free(ports);
    return rc;
}

int state_inst_insert(state_db *db, const state_instance *in, char *err, size_t errlen)
{
    return state_inst_insert_batch(db, in, NULL, err, errlen);
}

int state_inst_insert_batch(state_db *db, const state_instance *in, const char *batch, char *err,
                            size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    return inst_write(db, in, 1, batch, err, errlen);
}

int state_inst_update(state_db *db, const state_instance *in, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    return inst_write(db, in, 0, NULL, err, errlen);
}

/* Run a one-parameter DELETE; STATE_ENOTFOUND (with "<what> '<key>' not
 * found") when it removed nothing. */
static int delete_one(state_db *db, const char *sql, const char *what, const char *key, char *err,
                      size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto out;
    rc = sqlite3_changes(db->db) ? 0 : STATE_ENOTFOUND;
    if (rc == STATE_ENOTFOUND)
        errbuf_set(err, errlen, "%s '%s' not found", what, key);
out:
    if (rc == -1)
        errbuf_set(err, errlen, "state db: %s", sqlite3_errmsg(db->db));
    rc = busy_or(db->db, rc);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int state_inst_delete(state_db *db, const char *id, char *err, size_t errlen)
{
    return delete_one(db, "DELETE FROM instances WHERE id=?", "instance", id, err, errlen);
}

int state_inst_mark_deleting(state_db *db, const char *id, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db, "UPDATE instances SET deleting=1 WHERE id=?", -1, &st, NULL) !=
        SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto out;
    rc = sqlite3_changes(db->db) ? 0 : STATE_ENOTFOUND;
    if (rc == STATE_ENOTFOUND)
        errbuf_set(err, errlen, "instance '%s' not found", id);
out:
    if (rc == -1)
        errbuf_set(err, errlen, "state db: %s", sqlite3_errmsg(db->db));
    rc = busy_or(db->db, rc);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int state_inst_deleting(state_db *db, const char *id)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db, "SELECT deleting FROM instances WHERE id=?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        int step = sqlite3_step(st);
        rc = step == SQLITE_ROW ? sqlite3_column_int(st, 0) != 0 : step == SQLITE_DONE ? 0 : -1;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

/* One statement with text parameters ?1.. (NULL-terminated list): the
 * number of rows it changed, or a negative state code. */
static int exec_text(state_db *db, const char *sql, char *err, size_t errlen, ...)
{
    sqlite3_stmt *st = NULL;
    const char *v;
    va_list ap;
    int rc = -1, i = 1;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK)
        goto out;
    va_start(ap, errlen);
    while ((v = va_arg(ap, const char *)))
        sqlite3_bind_text(st, i++, v, -1, SQLITE_TRANSIENT);
    va_end(ap);
    if (sqlite3_step(st) == SQLITE_DONE)
        rc = sqlite3_changes(db->db);
out:
    if (rc < 0) {
        errbuf_set(err, errlen, "state db: %s", sqlite3_errmsg(db->db));
        rc = busy_or(db->db, rc);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int state_batch_commit(state_db *db, const char *batch, char *err, size_t errlen)
{
    int rc = exec_text(db, "UPDATE instances SET batch='' WHERE batch=?1", err, errlen, batch,
                       (const char *)NULL);
    return rc < 0 ? rc : 0;
}

int state_batch_drop_uncommitted(state_db *db, char *err, size_t errlen)
{
    return exec_text(db, "DELETE FROM instances WHERE batch!=''", err, errlen, (const char *)NULL);
}

int state_inst_mark_move(state_db *db, const char *id, const char *to, char *err, size_t errlen)
{
    int rc = exec_text(db, "UPDATE instances SET move_to=?2 WHERE id=?1", err, errlen, id, to,
                       (const char *)NULL);
    if (rc == 0)
        errbuf_set(err, errlen, "instance '%s' not found", id);
    return rc < 0 ? rc : rc == 0 ? STATE_ENOTFOUND : 0;
}

int state_inst_move_to(state_db *db, const char *id, char *to, size_t tolen)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    to[0] = 0;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db, "SELECT move_to FROM instances WHERE id=?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            snprintf(to, tolen, "%s", (const char *)sqlite3_column_text(st, 0));
        rc = step == SQLITE_ROW ? to[0] != 0 : step == SQLITE_DONE ? 0 : -1;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int state_inst_finish_move(state_db *db, const char *id, char *err, size_t errlen)
{
    int rc = exec_text(db,
                       "UPDATE instances SET host=move_to, move_to='', want_running=1,"
                       " state='pending' WHERE id=?1 AND move_to!=''",
                       err, errlen, id, (const char *)NULL);
    if (rc == 0)
        errbuf_set(err, errlen, "instance '%s' has no move in flight", id);
    return rc < 0 ? rc : rc == 0 ? STATE_ENOTFOUND : 0;
}

/* One row by `sql` with ?1 = key (and ?2 = its length): 1 found (in *out),
 * 2 more than one, 0 none, -1 SQLite error. */
static int find_one(state_db *db, const char *sql, const char *key, state_instance *out)
{
    sqlite3_stmt *st = stmt_get(db, sql);
    int found = 0, step;
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_int(st, 2, (int)strlen(key));
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (found++ == 0)
            read_inst(st, out);
    }
    stmt_put(db, st);
    if (step != SQLITE_DONE) {
        if (found)
            state_inst_free(out);
        return -1;
    }
    if (found > 1)
        state_inst_free(out);
    return found > 1 ? 2 : found;
}

int state_inst_find(state_db *db, const char *key, state_instance *out, char *err, size_t errlen)
{
    size_t klen = strlen(key);
    int rc, found;

    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&db->mu);
    /* Ids before names, so that a name can never hide an id: the exact id,
     * then a unique id prefix (hex only, so no LIKE wildcards), then the
     * exact name. */
    found = find_one(db, "SELECT " INST_SEL " FROM instances WHERE id=?1 LIMIT 1", key, out);
    if (found == 0 && klen >= 4 && klen < STATE_ID_LEN && strspn(key, "0123456789abcdef") == klen)
        found = find_one(db,
                         "SELECT " INST_SEL " FROM instances WHERE substr(id,1,?2)=?1"
                         " LIMIT 2",
                         key, out);
    if (found == 0)
        found = find_one(db, "SELECT " INST_SEL " FROM instances WHERE name=?1 LIMIT 1", key, out);
    if (found == 1) {
        rc = 0;
    } else if (found == 2) {
        errbuf_set(err, errlen,
                   "instance id prefix '%s' is ambiguous (ids are matched "
                   "before names)",
                   key);
        rc = STATE_ECONFLICT;
    } else if (found == 0) {
        errbuf_set(err, errlen, "instance '%s' not found", key);
        rc = STATE_ENOTFOUND;
    } else {
        errbuf_set(err, errlen, "state db: %s", sqlite3_errmsg(db->db));
        rc = -1;
    }
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int state_inst_list(state_db *db, state_instance **out, size_t *n, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    state_instance *a = NULL;
    size_t cnt = 0, cap = 0;
    int rc = -1, step;

    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db, "SELECT " INST_SEL " FROM instances ORDER BY created_ms, id", -1,
                           &st, NULL) != SQLITE_OK)
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            state_instance *na = realloc(a, ncap * sizeof *a);
            if (!na)
                goto out;
            a = na;
            cap = ncap;
        }
        read_inst(st, &a[cnt++]);
    }
    if (step != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    if (rc < 0) {
        errbuf_set(err, errlen, "state db: %s", sqlite3_errmsg(db->db));
        state_inst_array_free(a, cnt);
        a = NULL;
        cnt = 0;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    *out = a;
    *n = cnt;
    return rc;
}

int state_inst_count(state_db *db, size_t counts[ST__COUNT], char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = -1, step;

    memset(counts, 0, ST__COUNT * sizeof *counts);
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db, "SELECT state, count(*) FROM instances GROUP BY state", -1, &st,
                           NULL) != SQLITE_OK)
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(st, 0);
        state_inst_state k;
        /* a state this build does not know is left out, as in a list */
        if (s && state_inst_state_parse(s, &k) == 0 && (unsigned)k < ST__COUNT)
            counts[k] += (size_t)sqlite3_column_int64(st, 1);
    }
    if (step != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        errbuf_set(err, errlen, "state db: %s", sqlite3_errmsg(db->db));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int state_inst_page(state_db *db, const char *after, int state, const char *host,
                    state_inst_match match, void *ctx, size_t limit, state_instance **out,
                    size_t *n, int *more, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    state_instance *a = calloc(limit + 1, sizeof *a), row;
    size_t cnt = 0;
    int rc = -1, step;
    char sql[1024];

    *out = NULL;
    *n = 0;
    *more = 0;
    if (!a) {
        errbuf_set(err, errlen, "out of memory");
        return -1;
    }
    snprintf(sql, sizeof sql,
             "SELECT " INST_SEL " FROM instances WHERE 1"
             "%s%s%s ORDER BY created_ms, id",
             after ? " AND (created_ms, id) > (SELECT created_ms, id FROM instances"
                     " WHERE id=?1)"
                   : "",
             state >= 0 ? " AND state=?2" : "", host ? " AND host=?3" : "");
    pthread_mutex_lock(&db->mu);
    if (after) {
        sqlite3_stmt *chk = stmt_get(db, "SELECT 1 FROM instances WHERE id=?");
        int found = 0;
        if (chk != NULL) {
            sqlite3_bind_text(chk, 1, after, -1, SQLITE_TRANSIENT);
            found = sqlite3_step(chk) == SQLITE_ROW;
        }
        stmt_put(db, chk);
        if (!found) {
            errbuf_set(err, errlen, "unknown cursor '%s'", after);
            rc = STATE_ENOTFOUND;
            goto out;
        }
    }
    if ((st = stmt_get(db, sql)) == NULL)
        goto out;
    if (after)
        sqlite3_bind_text(st, 1, after, -1, SQLITE_TRANSIENT);
    if (state >= 0)
        sqlite3_bind_text(st, 2, state_inst_state_name((state_inst_state)state), -1, SQLITE_STATIC);
    if (host)
        sqlite3_bind_text(st, 3, host, -1, SQLITE_TRANSIENT);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        read_inst(st, &row);
        if (match && !match(&row, ctx)) {
            state_inst_free(&row);
            continue;
        }
        if (cnt == limit) {
            state_inst_free(&row);
            *more = 1;
            break;
        }
        a[cnt++] = row;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    if (rc == -1)
        errbuf_set(err, errlen, "state db: %s", sqlite3_errmsg(db->db));
    stmt_put(db, st);
    pthread_mutex_unlock(&db->mu);
    if (rc != 0) {
        state_inst_array_free(a, cnt);
        return rc;
    }
    *out = a;
    *n = cnt;
    return 0;
}

int state_inst_changes(state_db *db, int64_t **rowids, size_t *n, int *all)
{
    int64_t *fresh;

    *rowids = NULL;
    *n = 0;
    *all = 0;
    pthread_mutex_lock(&db->mu);
    if (db->journal_on && !db->journal_all && db->njournal == 0) {
        pthread_mutex_unlock(&db->mu); /* nothing written: the common case */
        return 0;
    }
    pthread_mutex_unlock(&db->mu);
    *all = 1;
    if (!(fresh = malloc(JOURNAL_MAX * sizeof *fresh)))
        return -1;
    pthread_mutex_lock(&db->mu);
    if (db->journal_on && !db->journal_all) {
        *all = 0;
        *rowids = db->journal;
        *n = db->njournal;
    } else {
        free(db->journal);
    }
    db->journal = fresh;
    db->njournal = 0;
    db->journal_on = 1;
    db->journal_all = 0;
    pthread_mutex_unlock(&db->mu);
    return 0;
}

int state_inst_get_rowid(state_db *db, int64_t rowid, state_instance *out)
{
    sqlite3_stmt *st;
    int rc = -1, step;

    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&db->mu);
    st = stmt_get(db, "SELECT " INST_SEL " FROM instances WHERE rowid=?1");
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, rowid);
        step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            read_inst(st, out);
        rc = step == SQLITE_ROW ? 1 : step == SQLITE_DONE ? 0 : -1;
    }
    stmt_put(db, st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

void state_inst_free(state_instance *in)
{
    if (!in)
        return;
    free(in->args_json);
    free(in->env_json);
    free(in->labels_json);
    free(in->placement_json);
    free(in->cmdline);
    in->args_json = in->env_json = in->labels_json = in->placement_json = NULL;
    in->cmdline = NULL;
}

void state_inst_array_free(state_instance *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        state_inst_free(&a[i]);
    free(a);
}

static int count_where(state_db *db, const char *sql, int64_t v)
{
    sqlite3_stmt *st = NULL;
    int n = -1;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, v);
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return n;
}

int state_addr_in_use(state_db *db, uint32_t ipv4)
{
    return count_where(db, "SELECT count(*) FROM instances WHERE ipv4=?", ipv4) != 0;
}

int state_addrs_in(state_db *db, uint32_t lo, uint32_t hi, uint32_t **out, size_t *n, char *err,
                   size_t errlen)
{
    sqlite3_stmt *st = NULL;
    uint32_t *a = NULL;
    size_t cnt = 0, cap = 0;
    int rc = -1, step = SQLITE_OK, oom = 0;

    pthread_mutex_lock(&db->mu);
    /* instances_ipv4 holds them in order: the index alone answers */
    if (sqlite3_prepare_v2(db->db,
                           "SELECT ipv4 FROM instances WHERE ipv4 BETWEEN ? AND ? ORDER BY ipv4",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, lo);
    sqlite3_bind_int64(st, 2, hi);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            uint32_t *na = realloc(a, ncap * sizeof *a);
            if (!na) {
                oom = 1;
                goto out;
            }
            a = na;
            cap = ncap;
        }
        a[cnt++] = (uint32_t)sqlite3_column_int64(st, 0);
    }
    if (step == SQLITE_DONE)
        rc = 0;
out:
    if (rc < 0) {
        if (oom)
            errbuf_set(err, errlen, "out of memory");
        else
            errbuf_set(err, errlen, "state db: %s", sqlite3_errmsg(db->db));
        free(a);
        a = NULL;
        cnt = 0;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    *out = a;
    *n = cnt;
    return rc;
}

int state_port_in_use(state_db *db, int host_port, state_proto proto)
{
    sqlite3_stmt *st = NULL;
    int n = -1;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db, "SELECT count(*) FROM host_ports WHERE port=? AND proto=?", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int(st, 1, host_port);
        sqlite3_bind_text(st, 2, state_proto_name(proto), -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return n != 0;
}

/* ---- runs --------------------------------------------------------------- */

int state_run_begin(state_db *db, const char *id, int64_t started_ms, int *run_no)
{
    sqlite3_stmt *st = NULL;
    int rc = -1, next = 1;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db, "SELECT coalesce(max(run),0)+1 FROM runs WHERE instance=?", -1,
                           &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW)
        next = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db->db,
                           "INSERT INTO runs(instance,run,started_ms,ended_ms,exit_code,"
                           "outcome,reason) VALUES(?,?,?,0,-1,'running','')",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, next);
    sqlite3_bind_int64(st, 3, started_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto out;
    /* Keep the newest 50 runs per instance. */
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db->db, "DELETE FROM runs WHERE instance=? AND run<=?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 2, next - 50);
        sqlite3_step(st);
    }
    *run_no = next;
    rc = 0;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int state_run_end(state_db *db, const char *id, int run_no, int64_t ended_ms, int exit_code,
                  const char *outcome, const char *reason)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db,
                           "UPDATE runs SET ended_ms=?,exit_code=?,outcome=?,reason=?"
                           " WHERE instance=? AND run=?",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, ended_ms);
    sqlite3_bind_int(st, 2, exit_code);
    sqlite3_bind_text(st, 3, outcome, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, reason ? reason : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 6, run_no);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int state_run_list(state_db *db, const char *id, state_run *out, size_t max, size_t *n)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    *n = 0;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db,
                           "SELECT started_ms,ended_ms,exit_code,outcome,reason FROM runs"
                           " WHERE instance=? ORDER BY run DESC LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, (int64_t)max);
    while (*n < max && sqlite3_step(st) == SQLITE_ROW) {
        state_run *r = &out[(*n)++];
        r->started_ms = sqlite3_column_int64(st, 0);
        r->ended_ms = sqlite3_column_int64(st, 1);
        r->exit_code = sqlite3_column_int(st, 2);
        copy_col(r->outcome, sizeof r->outcome, st, 3);
        copy_col(r->reason, sizeof r->reason, st, 4);
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

/* ---- hosts -------------------------------------------------------------- */

int state_host_upsert(state_db *db, const state_host *h, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db,
                           "INSERT INTO hosts(name,uri,labels,cordoned,domain_type)"
                           " VALUES(?1,?2,?3,?4,?5) ON CONFLICT(name) DO UPDATE SET uri=?2,"
                           " labels=?3, cordoned=?4, domain_type=?5",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, h->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, h->uri, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, h->labels_json ? h->labels_json : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 4, h->cordoned);
    sqlite3_bind_text(st, 5, h->domain_type, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
out:
    if (rc < 0)
        errbuf_set(err, errlen, "state db: %s", sqlite3_errmsg(db->db));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int state_host_delete(state_db *db, const char *name, char *err, size_t errlen)
{
    return delete_one(db, "DELETE FROM hosts WHERE name=?", "host", name, err, errlen);
}

int state_host_list(state_db *db, state_host **out, size_t *n, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    state_host *a = NULL;
    size_t cnt = 0, cap = 0;
    int rc = -1, step;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db,
                           "SELECT name,uri,labels,cordoned,domain_type FROM hosts"
                           " ORDER BY rowid",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            state_host *na = realloc(a, ncap * sizeof *a);
            if (!na)
                goto out;
            a = na;
            cap = ncap;
        }
        state_host *h = &a[cnt++];
        memset(h, 0, sizeof *h);
        copy_col(h->name, sizeof h->name, st, 0);
        copy_col(h->uri, sizeof h->uri, st, 1);
        h->labels_json = dup_col(st, 2, "{}");
        h->cordoned = sqlite3_column_int(st, 3);
        copy_col(h->domain_type, sizeof h->domain_type, st, 4);
    }
    rc = step == SQLITE_DONE ? 0 : -1;
out:
    if (rc < 0) {
        errbuf_set(err, errlen, "state db: %s", sqlite3_errmsg(db->db));
        state_host_array_free(a, cnt);
        a = NULL;
        cnt = 0;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    *out = a;
    *n = cnt;
    return rc;
}

void state_host_array_free(state_host *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        free(a[i].labels_json);
    free(a);
}

/* ---- events ------------------------------------------------------------- */

int state_event_append(state_db *db, const char *data_json, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db, "INSERT INTO events(data) VALUES(?)", -1, &st, NULL) !=
        SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, data_json, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto out;
    *id = sqlite3_last_insert_rowid(db->db);
    rc = 0;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int state_event_after(state_db *db, int64_t since, size_t max, state_event **out, size_t *n)
{
    sqlite3_stmt *st = NULL;
    state_event *a = calloc(max ? max : 1, sizeof *a);
    size_t cnt = 0;
    int rc = -1;
    *out = NULL;
    *n = 0;
    if (!a)
        return -1;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db, "SELECT id,data FROM events WHERE id>? ORDER BY id LIMIT ?", -1,
                           &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, since);
    sqlite3_bind_int64(st, 2, (int64_t)max);
    while (cnt < max && sqlite3_step(st) == SQLITE_ROW) {
        a[cnt].id = sqlite3_column_int64(st, 0);
        a[cnt].data_json = dup_col(st, 1, "{}");
        cnt++;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    if (rc < 0) {
        state_event_array_free(a, cnt);
        return -1;
    }
    *out = a;
    *n = cnt;
    return 0;
}

void state_event_array_free(state_event *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        free(a[i].data_json);
    free(a);
}

int state_event_trim(state_db *db, int64_t keep)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db, "DELETE FROM events WHERE id <= (SELECT max(id) FROM events)-?",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, keep);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int64_t state_event_last_id(state_db *db)
{
    sqlite3_stmt *st = NULL;
    int64_t id = 0;
    pthread_mutex_lock(&db->mu);
    /* sqlite_sequence keeps the high-water mark even after trimming. */
    if (sqlite3_prepare_v2(db->db, "SELECT seq FROM sqlite_sequence WHERE name='events'", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return id;
}

/* ---- meta --------------------------------------------------------------- */

int state_meta_get(state_db *db, const char *key, char *val, size_t vallen)
{
    sqlite3_stmt *st = NULL;
    int rc = STATE_ENOTFOUND;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db, "SELECT value FROM meta WHERE key=?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW) {
            copy_col(val, vallen, st, 0);
            rc = 0;
        }
    } else {
        rc = -1;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int state_meta_set(state_db *db, const char *key, const char *val)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db, "REPLACE INTO meta(key,value) VALUES(?,?)", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, val, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}
