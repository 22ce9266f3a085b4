/* Unit tests: daemon/state.c against a real SQLite file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "state.h"

static char dir[64];
static char path[128];

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof dir, "/tmp/shoal-state-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/s.db", dir);
    return 0;
}

static int teardown(void **st)
{
    char cmd[160];
    (void)st;
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void fill(state_instance *in, const char *id, const char *name)
{
    memset(in, 0, sizeof *in);
    snprintf(in->id, sizeof in->id, "%s", id);
    snprintf(in->name, sizeof in->name, "%s", name);
    snprintf(in->image_ref, sizeof in->image_ref, "hello:latest");
    snprintf(in->image_digest, sizeof in->image_digest, "sha256:abc");
    snprintf(in->host, sizeof in->host, "local");
    in->memory_mib = 32;
    in->vcpus = 1;
    in->args_json = "[\"a b\"]";
    in->env_json = "{\"K\":\"v\"}";
    in->labels_json = "{\"app\":\"web\"}";
    in->exit_code = -1;
    in->boot_us = -1;
    in->ready_ms = -1;
}

static void test_roundtrip_and_reopen(void **st)
{
    state_db *db;
    state_instance in, out;
    char err[256];
    (void)st;
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    fill(&in, "0123456789ab", "web-1");
    in.ipv4 = 0x0a580002;
    in.ports[0].host = 8080;
    in.ports[0].guest = 80;
    in.ports[1].host = 5353;
    in.ports[1].guest = 53;
    in.ports[1].proto = STATE_PROTO_UDP;
    in.ports[2].host = 5353; /* tcp and udp of one number: two ports */
    in.ports[2].guest = 53;
    in.nports = 3;
    in.restart = RESTART_ON_FAILURE;
    assert_int_equal(state_inst_insert(db, &in, err, sizeof err), 0);
    state_close(db);

    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    assert_int_equal(state_inst_find(db, "web-1", &out, err, sizeof err), 0);
    assert_string_equal(out.id, "0123456789ab");
    assert_string_equal(out.args_json, "[\"a b\"]");
    assert_string_equal(out.labels_json, "{\"app\":\"web\"}");
    assert_int_equal(out.ipv4, 0x0a580002);
    assert_int_equal(out.nports, 3);
    assert_int_equal(out.ports[0].host, 8080);
    assert_int_equal(out.ports[0].proto, STATE_PROTO_TCP);
    assert_int_equal(out.ports[1].host, 5353);
    assert_int_equal(out.ports[1].guest, 53);
    assert_int_equal(out.ports[1].proto, STATE_PROTO_UDP);
    assert_int_equal(out.ports[2].host, 5353);
    assert_int_equal(out.ports[2].proto, STATE_PROTO_TCP);
    assert_int_equal(out.restart, RESTART_ON_FAILURE);
    assert_int_equal(out.state, ST_PENDING);
    state_inst_free(&out);
    assert_true(state_port_in_use(db, 8080, STATE_PROTO_TCP));
    assert_false(state_port_in_use(db, 8080, STATE_PROTO_UDP));
    assert_false(state_port_in_use(db, 8081, STATE_PROTO_TCP));
    assert_true(state_port_in_use(db, 5353, STATE_PROTO_UDP));
    assert_true(state_port_in_use(db, 5353, STATE_PROTO_TCP));
    assert_true(state_addr_in_use(db, 0x0a580002));
    state_close(db);
}

/* The journal of written rows (state_inst_changes): everything at the
 * first call, then each written row by rowid, rolled back writes too, and
 * everything again past its bound. */
static void test_changes_journal(void **st)
{
    state_db *db;
    state_instance a, b, c, out;
    int64_t *ids = NULL;
    size_t n = 0;
    int all = 0;
    char err[256];
    (void)st;
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    fill(&a, "aaaaaaaaaaaa", "one");
    assert_int_equal(state_inst_insert(db, &a, err, sizeof err), 0);
    assert_int_equal(state_inst_changes(db, &ids, &n, &all), 0);
    assert_int_equal(all, 1); /* nobody asked before */
    free(ids);
    assert_int_equal(state_inst_changes(db, &ids, &n, &all), 0);
    assert_int_equal(all, 0);
    assert_int_equal(n, 0);
    free(ids);
    /* an insert, an update, a rolled back update (name taken), a delete */
    fill(&b, "bbbbbbbbbbbb", "two");
    b.nports = 1;
    b.ports[0].host = 8080;
    b.ports[0].guest = 80;
    assert_int_equal(state_inst_insert(db, &b, err, sizeof err), 0);
    assert_int_equal(state_inst_find(db, "two", &out, err, sizeof err), 0);
    assert_int_equal(state_inst_changes(db, &ids, &n, &all), 0);
    assert_int_equal(all, 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], out.rowid);
    free(ids);
    state_inst_free(&out);
    assert_int_equal(state_inst_get_rowid(db, -5, &out), 0); /* no such row */
    assert_int_equal(state_inst_find(db, "one", &out, err, sizeof err), 0);
    assert_int_equal(state_inst_get_rowid(db, out.rowid, &b), 1);
    assert_string_equal(b.name, "one");
    state_inst_free(&b);
    /* "three" publishes the port "two" holds: its row is written, then
     * rolled back with the ports */
    fill(&c, "cccccccccccc", "three");
    c.nports = 1;
    c.ports[0].host = 8080;
    c.ports[0].guest = 80;
    assert_int_equal(state_inst_insert(db, &c, err, sizeof err), STATE_ECONFLICT);
    assert_int_equal(state_inst_changes(db, &ids, &n, &all), 0);
    assert_int_equal(all, 0);
    assert_int_equal(n, 1);
    assert_int_equal(state_inst_get_rowid(db, ids[0], &b), 0); /* not there */
    free(ids);
    /* an update refused before it changed the row journals nothing */
    snprintf(a.name, sizeof a.name, "two");
    assert_int_not_equal(state_inst_update(db, &a, err, sizeof err), 0);
    assert_int_equal(state_inst_changes(db, &ids, &n, &all), 0);
    assert_int_equal(n, 0);
    free(ids);
    assert_int_equal(state_inst_update(db, &out, err, sizeof err), 0);
    assert_int_equal(state_inst_changes(db, &ids, &n, &all), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], out.rowid);
    free(ids);
    assert_int_equal(state_inst_delete(db, "aaaaaaaaaaaa", err, sizeof err), 0);
    assert_int_equal(state_inst_changes(db, &ids, &n, &all), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], out.rowid);
    free(ids);
    assert_int_equal(state_inst_get_rowid(db, out.rowid, &b), 0);
    state_inst_free(&out);
    /* past 4096 writes: everything */
    snprintf(a.name, sizeof a.name, "one");
    assert_int_equal(state_inst_insert(db, &a, err, sizeof err), 0);
    fill(&b, "bbbbbbbbbbbb", "two");
    for (int i = 0; i < 2100; i++) {
        assert_int_equal(state_inst_update(db, &a, err, sizeof err), 0);
        assert_int_equal(state_inst_update(db, &b, err, sizeof err), 0);
    }
    assert_int_equal(state_inst_changes(db, &ids, &n, &all), 0);
    assert_int_equal(all, 1);
    assert_null(ids);
    state_close(db);
}

static void test_conflicts(void **st)
{
    state_db *db;
    state_instance a, b;
    char err[256];
    (void)st;
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    fill(&a, "aaaaaaaaaaaa", "one");
    a.ipv4 = 5;
    a.ports[0].host = 9000;
    a.nports = 1;
    assert_int_equal(state_inst_insert(db, &a, err, sizeof err), 0);

    fill(&b, "bbbbbbbbbbbb", "one");
    assert_int_equal(state_inst_insert(db, &b, err, sizeof err), STATE_ECONFLICT);
    assert_non_null(strstr(err, "'one'"));

    fill(&b, "bbbbbbbbbbbb", "two");
    b.ipv4 = 5; /* an address is never handed out twice */
    assert_int_equal(state_inst_insert(db, &b, err, sizeof err), STATE_ECONFLICT);

    fill(&b, "bbbbbbbbbbbb", "two");
    b.ports[0].host = 9000;
    b.nports = 1;
    assert_int_equal(state_inst_insert(db, &b, err, sizeof err), STATE_ECONFLICT);
    assert_non_null(strstr(err, "9000/tcp"));

    /* The failed inserts left nothing behind. */
    assert_int_equal(state_inst_find(db, "two", &b, err, sizeof err), STATE_ENOTFOUND);

    /* udp 9000 is another port than a's tcp 9000; then it is held too. */
    fill(&b, "bbbbbbbbbbbb", "two");
    b.ports[0].host = 9000;
    b.ports[0].proto = STATE_PROTO_UDP;
    b.nports = 1;
    assert_int_equal(state_inst_insert(db, &b, err, sizeof err), 0);
    fill(&b, "cccccccccccc", "three");
    b.ports[0].host = 9001;
    b.ports[1].host = 9000;
    b.ports[1].proto = STATE_PROTO_UDP;
    b.nports = 2;
    assert_int_equal(state_inst_insert(db, &b, err, sizeof err), STATE_ECONFLICT);
    assert_non_null(strstr(err, "9000/udp"));
    assert_false(state_port_in_use(db, 9001, STATE_PROTO_TCP));
    /* An update moving a's port to udp clashes as well and changes nothing. */
    a.ports[0].proto = STATE_PROTO_UDP;
    assert_int_equal(state_inst_update(db, &a, err, sizeof err), STATE_ECONFLICT);
    assert_true(state_port_in_use(db, 9000, STATE_PROTO_TCP));
    /* Deleting an instance frees its ports. */
    assert_int_equal(state_inst_delete(db, "bbbbbbbbbbbb", err, sizeof err), 0);
    assert_false(state_port_in_use(db, 9000, STATE_PROTO_UDP));
    assert_int_equal(state_inst_update(db, &a, err, sizeof err), 0);
    assert_false(state_port_in_use(db, 9000, STATE_PROTO_TCP));
    assert_true(state_port_in_use(db, 9000, STATE_PROTO_UDP));
    state_close(db);
}

static void test_find_prefix(void **st)
{
    state_db *db;
    state_instance a, out;
    char err[256];
    (void)st;
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    fill(&a, "abcd11111111", "x1");
    assert_int_equal(state_inst_insert(db, &a, err, sizeof err), 0);
    fill(&a, "abcd22222222", "x2");
    assert_int_equal(state_inst_insert(db, &a, err, sizeof err), 0);
    assert_int_equal(state_inst_find(db, "abcd1", &out, err, sizeof err), 0);
    assert_string_equal(out.name, "x1");
    state_inst_free(&out);
    assert_int_equal(state_inst_find(db, "abcd", &out, err, sizeof err), STATE_ECONFLICT);
    assert_non_null(strstr(err, "ambiguous"));
    assert_int_equal(state_inst_find(db, "abc", &out, err, sizeof err), STATE_ENOTFOUND);
    assert_int_equal(state_inst_find(db, "zzzz", &out, err, sizeof err), STATE_ENOTFOUND);
    assert_non_null(strstr(err, "'zzzz'"));
    /* A name that looks like another instance's id prefix (older databases
     * may hold one) never hides that instance: ids come first. */
    fill(&a, "72f6097ae40b", "victim");
    assert_int_equal(state_inst_insert(db, &a, err, sizeof err), 0);
    fill(&a, "123456789abc", "72f609");
    assert_int_equal(state_inst_insert(db, &a, err, sizeof err), 0);
    assert_int_equal(state_inst_find(db, "72f609", &out, err, sizeof err), 0);
    assert_string_equal(out.id, "72f6097ae40b");
    state_inst_free(&out);
    /* ... and the name still finds its own instance when no id matches. */
    fill(&a, "fedcba987654", "abcdef");
    assert_int_equal(state_inst_insert(db, &a, err, sizeof err), 0);
    assert_int_equal(state_inst_find(db, "abcdef", &out, err, sizeof err), 0);
    assert_string_equal(out.id, "fedcba987654");
    state_inst_free(&out);
    state_close(db);
}

static void test_update_keeps_runs(void **st)
{
    state_db *db;
    state_instance a, out;
    state_run runs[10];
    size_t n;
    int r1, r2;
    char err[256];
    (void)st;
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    fill(&a, "cccccccccccc", "runner");
    assert_int_equal(state_inst_insert(db, &a, err, sizeof err), 0);
    assert_int_equal(state_run_begin(db, a.id, 1000, &r1), 0);
    assert_int_equal(state_run_end(db, a.id, r1, 2000, 3, "exited", ""), 0);
    assert_int_equal(state_run_begin(db, a.id, 3000, &r2), 0);
    assert_int_equal(r2, r1 + 1);
    a.state = ST_RUNNING;
    assert_int_equal(state_inst_update(db, &a, err, sizeof err), 0);
    assert_int_equal(state_run_list(db, a.id, runs, 10, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(runs[0].outcome, "running"); /* newest first */
    assert_int_equal(runs[1].exit_code, 3);
    assert_int_equal(state_inst_find(db, a.id, &out, err, sizeof err), 0);
    assert_int_equal(out.state, ST_RUNNING);
    state_inst_free(&out);
    /* Delete cascades to runs. */
    assert_int_equal(state_inst_delete(db, a.id, err, sizeof err), 0);
    assert_int_equal(state_run_list(db, a.id, runs, 10, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(state_inst_delete(db, a.id, err, sizeof err), STATE_ENOTFOUND);
    state_close(db);
}

/* A delete in flight (issue 16): the mark survives updates of the row and
 * a reopen, and goes with the row. */
static void test_deleting_mark(void **st)
{
    state_db *db;
    state_instance a, b;
    char err[256];
    (void)st;
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    fill(&a, "dddddddddddd", "going");
    fill(&b, "eeeeeeeeeeee", "staying");
    assert_int_equal(state_inst_insert(db, &a, err, sizeof err), 0);
    assert_int_equal(state_inst_insert(db, &b, err, sizeof err), 0);
    assert_int_equal(state_inst_deleting(db, a.id), 0);
    assert_int_equal(state_inst_mark_deleting(db, a.id, err, sizeof err), 0);
    assert_int_equal(state_inst_deleting(db, a.id), 1);
    assert_int_equal(state_inst_deleting(db, b.id), 0);
    a.state = ST_STOPPING; /* fleet_mutate rewrites every column it knows */
    assert_int_equal(state_inst_update(db, &a, err, sizeof err), 0);
    assert_int_equal(state_inst_deleting(db, a.id), 1);
    state_close(db);
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    assert_int_equal(state_inst_deleting(db, a.id), 1);
    assert_int_equal(state_inst_delete(db, a.id, err, sizeof err), 0);
    assert_int_equal(state_inst_deleting(db, a.id), 0);
    assert_int_equal(state_inst_mark_deleting(db, a.id, err, sizeof err), STATE_ENOTFOUND);
    assert_non_null(strstr(err, a.id));
    state_close(db);
}

/* Counts per state (what /metrics shows) agree with the rows; the
 * addresses of a subnet come back sorted (what a start picks from). */
static void test_counts_and_addrs(void **st)
{
    state_db *db;
    state_instance a, *rows = NULL;
    size_t counts[ST__COUNT], tally[ST__COUNT] = { 0 }, n = 0;
    char err[256], id[13], name[8];
    const state_inst_state states[] = { ST_RUNNING, ST_RUNNING, ST_EXITED, ST_PENDING, ST_RUNNING };
    /* addresses out of order; one outside 10.88.0.0/16; one row without */
    const uint32_t addrs[] = { 0x0a580009, 0x0a580002, 0x0a590001, 0, 0x0a580005 };
    uint32_t *got = NULL;
    (void)st;
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    assert_int_equal(state_inst_count(db, counts, err, sizeof err), 0);
    for (size_t k = 0; k < ST__COUNT; k++)
        assert_int_equal(counts[k], 0);
    for (size_t i = 0; i < sizeof states / sizeof *states; i++) {
        snprintf(id, sizeof id, "c0000000000%zu", i);
        snprintf(name, sizeof name, "c%zu", i);
        fill(&a, id, name);
        a.state = states[i];
        a.ipv4 = addrs[i];
        assert_int_equal(state_inst_insert(db, &a, err, sizeof err), 0);
    }
    assert_int_equal(state_inst_count(db, counts, err, sizeof err), 0);
    assert_int_equal(counts[ST_RUNNING], 3);
    assert_int_equal(counts[ST_EXITED], 1);
    assert_int_equal(counts[ST_PENDING], 1);
    assert_int_equal(state_inst_list(db, &rows, &n, err, sizeof err), 0);
    for (size_t i = 0; i < n; i++)
        tally[rows[i].state]++;
    state_inst_array_free(rows, n);
    for (size_t k = 0; k < ST__COUNT; k++)
        assert_int_equal(counts[k], tally[k]);
    /* a subnet's addresses in use, ascending, from the index */
    assert_int_equal(state_addrs_in(db, 0x0a580000, 0x0a58ffff, &got, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(got[0], 0x0a580002);
    assert_int_equal(got[1], 0x0a580005);
    assert_int_equal(got[2], 0x0a580009);
    free(got);
    assert_int_equal(state_addrs_in(db, 0x0a5a0000, 0x0a5affff, &got, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    assert_null(got);
    state_close(db);
}

/* A create batch (issue 16): rows marked until committed as a whole; the
 * rows of a batch never committed are dropped, committed ones stay. */
static void test_batch_commit_and_drop(void **st)
{
    state_db *db;
    state_instance a, b, c, out;
    char err[256];
    (void)st;
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    fill(&a, "a00000000001", "b1-1");
    fill(&b, "a00000000002", "b1-2");
    fill(&c, "c00000000001", "b2-1");
    assert_int_equal(state_inst_insert_batch(db, &a, a.id, err, sizeof err), 0);
    assert_int_equal(state_inst_insert_batch(db, &b, a.id, err, sizeof err), 0);
    assert_int_equal(state_batch_commit(db, a.id, err, sizeof err), 0);
    assert_int_equal(state_inst_insert_batch(db, &c, c.id, err, sizeof err), 0);
    c.state = ST_STARTING; /* an update keeps the mark */
    assert_int_equal(state_inst_update(db, &c, err, sizeof err), 0);
    state_close(db);
    /* what a restart finds: the uncommitted batch goes, the other stays */
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    assert_int_equal(state_batch_drop_uncommitted(db, err, sizeof err), 1);
    assert_int_equal(state_inst_find(db, c.id, &out, err, sizeof err), STATE_ENOTFOUND);
    assert_int_equal(state_inst_find(db, a.id, &out, err, sizeof err), 0);
    state_inst_free(&out);
    assert_int_equal(state_inst_find(db, b.id, &out, err, sizeof err), 0);
    state_inst_free(&out);
    assert_int_equal(state_batch_drop_uncommitted(db, err, sizeof err), 0);
    state_close(db);
}

/* A cold move in flight (issue 16): the mark survives updates and a
 * reopen; finishing re-homes the row wanted and pending in one write. */
static void test_move_mark(void **st)
{
    state_db *db;
    state_instance a, out;
    char err[256], to[STATE_NAME_MAX + 1];
    (void)st;
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    fill(&a, "f00000000001", "mover");
    a.state = ST_RUNNING;
    a.want_running = 1;
    assert_int_equal(state_inst_insert(db, &a, err, sizeof err), 0);
    assert_int_equal(state_inst_move_to(db, a.id, to, sizeof to), 0);
    assert_int_equal(state_inst_finish_move(db, a.id, err, sizeof err), STATE_ENOTFOUND);
    assert_int_equal(state_inst_mark_move(db, a.id, "h2", err, sizeof err), 0);
    a.state = ST_STOPPED; /* the stop, through fleet_mutate */
    a.want_running = 0;
    assert_int_equal(state_inst_update(db, &a, err, sizeof err), 0);
    state_close(db);
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    assert_int_equal(state_inst_move_to(db, a.id, to, sizeof to), 1);
    assert_string_equal(to, "h2");
    assert_int_equal(state_inst_finish_move(db, a.id, err, sizeof err), 0);
    assert_int_equal(state_inst_move_to(db, a.id, to, sizeof to), 0);
    assert_int_equal(state_inst_find(db, a.id, &out, err, sizeof err), 0);
    assert_string_equal(out.host, "h2");
    assert_int_equal(out.want_running, 1);
    assert_int_equal(out.state, ST_PENDING);
    state_inst_free(&out);
    assert_int_equal(state_inst_mark_move(db, "nope00000000", "h2", err, sizeof err),
                     STATE_ENOTFOUND);
    state_close(db);
}

/* Another process holding the write lock past the busy timeout (5 s):
 * STATE_EBUSY, not a plain failure, and nothing written. */
static void test_busy(void **st)
{
    state_db *db;
    state_instance a, out;
    sqlite3 *other;
    char err[256];
    (void)st;
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    fill(&a, "b00000000001", "busy");
    assert_int_equal(state_inst_insert(db, &a, err, sizeof err), STATE_EBUSY);
    assert_non_null(strstr(err, "locked"));
    assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(state_inst_find(db, a.id, &out, err, sizeof err), STATE_ENOTFOUND);
    assert_int_equal(state_inst_insert(db, &a, err, sizeof err), 0);
    state_close(db);
}

static void test_events(void **st)
{
    state_db *db;
    state_event *ev;
    size_t n;
    int64_t id = 0, first = 0;
    char err[256];
    (void)st;
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    for (int i = 0; i < 20; i++) {
        char js[64];
        snprintf(js, sizeof js, "{\"n\":%d}", i);
        assert_int_equal(state_event_append(db, js, &id), 0);
        if (!first)
            first = id;
    }
    assert_int_equal(state_event_last_id(db), id);
    assert_int_equal(state_event_after(db, first + 4, 3, &ev, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ev[0].id, first + 5);
    assert_string_equal(ev[0].data_json, "{\"n\":5}");
    state_event_array_free(ev, n);
    assert_int_equal(state_event_trim(db, 5), 0);
    assert_int_equal(state_event_after(db, 0, 100, &ev, &n), 0);
    assert_int_equal(n, 5);
    state_event_array_free(ev, n);
    /* Ids keep increasing after a trim. */
    assert_int_equal(state_event_append(db, "{}", &first), 0);
    assert_true(first > id);
    state_close(db);
}

static void test_hosts_and_meta(void **st)
{
    state_db *db;
    state_host h, *list;
    size_t n;
    char err[256], v[32];
    (void)st;
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    memset(&h, 0, sizeof h);
    snprintf(h.name, sizeof h.name, "h1");
    snprintf(h.uri, sizeof h.uri, "test:///default");
    h.labels_json = "{\"zone\":\"a\"}";
    snprintf(h.domain_type, sizeof h.domain_type, "auto");
    assert_int_equal(state_host_upsert(db, &h, err, sizeof err), 0);
    h.cordoned = 1;
    assert_int_equal(state_host_upsert(db, &h, err, sizeof err), 0);
    assert_int_equal(state_host_list(db, &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].cordoned, 1);
    assert_string_equal(list[0].labels_json, "{\"zone\":\"a\"}");
    state_host_array_free(list, n);
    assert_int_equal(state_host_delete(db, "h1", err, sizeof err), 0);
    assert_int_equal(state_host_delete(db, "h1", err, sizeof err), STATE_ENOTFOUND);
    assert_int_equal(state_meta_get(db, "k", v, sizeof v), STATE_ENOTFOUND);
    assert_int_equal(state_meta_set(db, "k", "v1"), 0);
    assert_int_equal(state_meta_get(db, "k", v, sizeof v), 0);
    assert_string_equal(v, "v1");
    state_close(db);
}

static void test_newer_schema_refused(void **st)
{
    state_db *db;
    char err[256], cmd[256];
    (void)st;
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    state_close(db);
    snprintf(cmd, sizeof cmd, "sqlite3 %s 'PRAGMA user_version=99'", path);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(state_open(path, &db, err, sizeof err), -1);
    assert_non_null(strstr(err, "newer"));
}

/* A database made by a shoald before published ports had a protocol
 * (schema 3, written here with the statements that shoald shipped) opens,
 * is migrated, and reads its ports as tcp; udp ports can be added next to
 * them. */
static const char *const SCHEMA_V3 =
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
    "CREATE UNIQUE INDEX instances_ipv4 ON instances(ipv4) WHERE ipv4 IS NOT NULL;"
    "CREATE TABLE host_ports(port INTEGER PRIMARY KEY,"
    "  instance TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE);"
    "CREATE TABLE runs(instance TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,"
    "  run INTEGER NOT NULL, started_ms INTEGER NOT NULL, ended_ms INTEGER NOT NULL,"
    "  exit_code INTEGER NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL,"
    "  PRIMARY KEY(instance, run));"
    "CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL);"
    "CREATE INDEX instances_created ON instances(created_ms, id);"
    "ALTER TABLE instances ADD COLUMN placement TEXT NOT NULL DEFAULT '{}';"
    "INSERT INTO instances VALUES('0123456789ab','old','echo:latest','sha256:abc','local',"
    "  'running',32,1,'[]','{}','{}','never',0,1,167247874,'02:73:68:00:00:02',"
    "  '[{\"host\":8080,\"guest\":80},{\"host\":8443,\"guest\":443}]',1000,1000,-1,-1,-1,'',1,"
    "  '{}');"
    "INSERT INTO host_ports VALUES(8080,'0123456789ab');"
    "INSERT INTO host_ports VALUES(8443,'0123456789ab');"
    "INSERT INTO runs VALUES('0123456789ab',1,1000,0,-1,'running','');"
    "PRAGMA user_version=3;";

static int column_exists(const char *table, const char *col)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    char sql[128];
    int found = 0;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    snprintf(sql, sizeof sql, "SELECT name FROM pragma_table_info('%s')", table);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW)
        found |= strcmp((const char *)sqlite3_column_text(st, 0), col) == 0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return found;
}

static void test_old_schema_ports_are_tcp(void **st)
{
    state_db *db;
    state_instance in, out;
    state_run runs[4];
    size_t n;
    sqlite3 *raw;
    char err[256], *msg = NULL;
    (void)st;
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, SCHEMA_V3, NULL, NULL, &msg), SQLITE_OK);
    sqlite3_close(raw);
    assert_false(column_exists("host_ports", "proto"));

    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    assert_int_equal(state_inst_find(db, "old", &out, err, sizeof err), 0);
    assert_int_equal(out.nports, 2);
    assert_int_equal(out.ports[0].host, 8080);
    assert_int_equal(out.ports[0].guest, 80);
    assert_int_equal(out.ports[0].proto, STATE_PROTO_TCP);
    assert_int_equal(out.ports[1].host, 8443);
    assert_int_equal(out.ports[1].proto, STATE_PROTO_TCP);
    assert_int_equal(out.state, ST_RUNNING);
    assert_int_equal(out.idle_s, 0);    /* schema 10: no scale to zero before */
    assert_string_equal(out.guest, ""); /* schema 11: runs as itself */
    state_inst_free(&out);
    assert_true(column_exists("instances", "idle_s"));
    /* The old rows hold their tcp ports, not the udp ones. */
    assert_true(state_port_in_use(db, 8080, STATE_PROTO_TCP));
    assert_true(state_port_in_use(db, 8443, STATE_PROTO_TCP));
    assert_false(state_port_in_use(db, 8080, STATE_PROTO_UDP));
    /* The migration kept the instance's runs (nothing cascaded). */
    assert_int_equal(state_run_list(db, "0123456789ab", runs, 4, &n), 0);
    assert_int_equal(n, 1);

    fill(&in, "fedcba987654", "new");
    in.ports[0].host = 8080;
    in.ports[0].proto = STATE_PROTO_UDP;
    in.nports = 1;
    assert_int_equal(state_inst_insert(db, &in, err, sizeof err), 0);
    fill(&in, "aaaaaaaaaaaa", "clash");
    in.ports[0].host = 8443;
    in.nports = 1;
    assert_int_equal(state_inst_insert(db, &in, err, sizeof err), STATE_ECONFLICT);
    assert_non_null(strstr(err, "8443/tcp"));
    state_close(db);
    assert_true(column_exists("host_ports", "proto"));

    /* Reopened (already migrated): the same answers. */
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    assert_int_equal(state_inst_find(db, "new", &out, err, sizeof err), 0);
    assert_int_equal(out.nports, 1);
    assert_int_equal(out.ports[0].proto, STATE_PROTO_UDP);
    state_inst_free(&out);
    assert_true(state_port_in_use(db, 8080, STATE_PROTO_UDP));
    /* Deleting the old instance frees its migrated ports. */
    assert_int_equal(state_inst_delete(db, "0123456789ab", err, sizeof err), 0);
    assert_false(state_port_in_use(db, 8080, STATE_PROTO_TCP));
    assert_false(state_port_in_use(db, 8443, STATE_PROTO_TCP));
    assert_true(state_port_in_use(db, 8080, STATE_PROTO_UDP));
    state_close(db);
}

/* Scale to zero (schema 10): idle_s and the state idle are kept. */
static void test_idle_round_trip(void **st)
{
    state_db *db;
    state_instance in, out;
    char err[256];
    (void)st;
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    fill(&in, "0a0b0c0d0e0f", "sleepy");
    in.idle_s = 30;
    assert_int_equal(state_inst_insert(db, &in, err, sizeof err), 0);
    assert_int_equal(state_inst_find(db, "sleepy", &out, err, sizeof err), 0);
    assert_int_equal(out.idle_s, 30);
    out.state = ST_IDLE;
    assert_int_equal(state_inst_update(db, &out, err, sizeof err), 0);
    state_inst_free(&out);
    assert_int_equal(state_inst_find(db, "0a0b0c0d0e0f", &out, err, sizeof err), 0);
    assert_int_equal(out.state, ST_IDLE);
    assert_int_equal(out.idle_s, 30);
    assert_string_equal(state_inst_state_name(out.state), "idle");
    state_inst_free(&out);
    state_close(db);
}

static void test_enum_names(void **st)
{
    state_inst_state s;
    state_restart r;
    (void)st;
    for (int i = 0; i < ST__COUNT; i++) {
        assert_int_equal(state_inst_state_parse(state_inst_state_name((state_inst_state)i), &s), 0);
        assert_int_equal(s, i);
    }
    assert_int_equal(state_inst_state_parse("bogus", &s), -1);
    assert_int_equal(state_restart_parse("on-failure", &r), 0);
    assert_int_equal(r, RESTART_ON_FAILURE);
    assert_int_equal(state_restart_parse("sometimes", &r), -1);
    {
        state_proto pr;
        assert_int_equal(state_proto_parse("udp", &pr), 0);
        assert_int_equal(pr, STATE_PROTO_UDP);
        assert_int_equal(state_proto_parse("tcp", &pr), 0);
        assert_int_equal(pr, STATE_PROTO_TCP);
        assert_int_equal(state_proto_parse("sctp", &pr), -1);
        assert_int_equal(state_proto_parse(NULL, &pr), -1);
        assert_string_equal(state_proto_name(STATE_PROTO_UDP), "udp");
        assert_string_equal(state_proto_name(STATE_PROTO_TCP), "tcp");
    }
}

/* Wake from a warm pool (schema 11): a database of schema 10 (the column
 * taken away again by hand) opens, its rows run as themselves (guest ""),
 * and a guest written is read back. */
static void test_guest_from_schema_10(void **st)
{
    state_db *db;
    state_instance in, out;
    sqlite3 *raw;
    char err[256], *msg = NULL;
    (void)st;
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    fill(&in, "0a0b0c0d0e0f", "woken");
    in.idle_s = 5;
    assert_int_equal(state_inst_insert(db, &in, err, sizeof err), 0);
    state_close(db);
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw,
                                  "ALTER TABLE instances DROP COLUMN guest;"
                                  "PRAGMA user_version=10;",
                                  NULL, NULL, &msg),
                     SQLITE_OK);
    sqlite3_close(raw);
    assert_false(column_exists("instances", "guest"));

    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    assert_true(column_exists("instances", "guest"));
    assert_int_equal(state_inst_find(db, "woken", &out, err, sizeof err), 0);
    assert_string_equal(out.guest, "");
    assert_int_equal(out.idle_s, 5);
    snprintf(out.guest, sizeof out.guest, "fedcba987654");
    assert_int_equal(state_inst_update(db, &out, err, sizeof err), 0);
    state_inst_free(&out);
    state_close(db);
    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    assert_int_equal(state_inst_find(db, "0a0b0c0d0e0f", &out, err, sizeof err), 0);
    assert_string_equal(out.guest, "fedcba987654");
    state_inst_free(&out);
    state_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_keeps_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleting_mark, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_commit_and_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_mark, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts_and_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_schema_ports_are_tcp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_from_schema_10, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_and_addrs, setup, teardown),
        cmocka_unit_test(test_enum_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
