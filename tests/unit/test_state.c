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
    in.nports = 1;
    in.restart = RESTART_ON_FAILURE;
    assert_int_equal(state_inst_insert(db, &in, err, sizeof err), 0);
    state_close(db);

    assert_int_equal(state_open(path, &db, err, sizeof err), 0);
    assert_int_equal(state_inst_find(db, "web-1", &out, err, sizeof err), 0);
    assert_string_equal(out.id, "0123456789ab");
    assert_string_equal(out.args_json, "[\"a b\"]");
    assert_string_equal(out.labels_json, "{\"app\":\"web\"}");
    assert_int_equal(out.ipv4, 0x0a580002);
    assert_int_equal(out.nports, 1);
    assert_int_equal(out.ports[0].host, 8080);
    assert_int_equal(out.restart, RESTART_ON_FAILURE);
    assert_int_equal(out.state, ST_PENDING);
    state_inst_free(&out);
    assert_true(state_port_in_use(db, 8080));
    assert_false(state_port_in_use(db, 8081));
    assert_true(state_addr_in_use(db, 0x0a580002));
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
    b.ipv4 = 5;    /* an address is never handed out twice */
    assert_int_equal(state_inst_insert(db, &b, err, sizeof err), STATE_ECONFLICT);

    fill(&b, "bbbbbbbbbbbb", "two");
    b.ports[0].host = 9000;
    b.nports = 1;
    assert_int_equal(state_inst_insert(db, &b, err, sizeof err), STATE_ECONFLICT);
    assert_non_null(strstr(err, "9000"));

    /* The failed inserts left nothing behind. */
    assert_int_equal(state_inst_find(db, "two", &b, err, sizeof err), STATE_ENOTFOUND);
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
    assert_string_equal(runs[0].outcome, "running");   /* newest first */
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
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_keeps_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts_and_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test(test_enum_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
