/*
 * test_tokens.c - daemon/tokens.c over a real state database (migrated by
 * state_open): secrets never stored, hashing, the constant-time compare
 * used against every token, create/list/revoke, the admin token following
 * its file, quota arithmetic, usage that follows the instance rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "state.h"
#include "tokens.h"

static char dir[64], db[128];

static int setup(void **st)
{
    state_db *s = NULL;
    char err[256];

    (void)st;
    snprintf(dir, sizeof dir, "/tmp/shoal-tok.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(db, sizeof db, "%s/shoald.db", dir);
    if (state_open(db, &s, err, sizeof err) != 0) {
        fprintf(stderr, "state_open: %s\n", err);
        return -1;
    }
    state_close(s);
    return 0;
}

static int teardown(void **st)
{
    char cmd[160];

    (void)st;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Does the file hold these bytes anywhere (the WAL too)? */
static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    size_t n = strlen(needle), len = 0, cap = 0;
    char *buf = NULL, chunk[65536];
    bool hit = false;

    if (f == NULL)
        return false;
    for (;;) {
        size_t r = fread(chunk, 1, sizeof chunk, f);
        if (r == 0)
            break;
        if (len + r > cap) {
            cap = (len + r) * 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        memcpy(buf + len, chunk, r);
        len += r;
    }
    fclose(f);
    for (size_t i = 0; i + n <= len && !hit; i++)
        hit = memcmp(buf + i, needle, n) == 0;
    free(buf);
    return hit;
}

static void t_hash(void **st)
{
    static const uint8_t abc[TOK_HASH_LEN] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
        0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
        0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
    };
    uint8_t h[TOK_HASH_LEN];

    (void)st;
    assert_int_equal(tok_hash("abc", h), 0);
    assert_memory_equal(h, abc, TOK_HASH_LEN);
}

static void t_ct_equal(void **st)
{
    uint8_t a[TOK_HASH_LEN], b[TOK_HASH_LEN];

    (void)st;
    memset(a, 0x5a, sizeof a);
    memcpy(b, a, sizeof b);
    assert_true(tok_ct_equal(a, b, sizeof a));
    b[0] ^= 1;
    assert_false(tok_ct_equal(a, b, sizeof a));
    b[0] ^= 1;
    b[TOK_HASH_LEN - 1] ^= 0x80;
    assert_false(tok_ct_equal(a, b, sizeof a));
    assert_true(tok_ct_equal(a, b, 0));
}

static void t_store(void **st)
{
    tok_store *ts = NULL;
    tok_info who, spec, made, *all = NULL;
    char err[256], secret[TOK_SECRET_LEN + 1], s2[TOK_SECRET_LEN + 1], wal[160];
    uint64_t before;
    size_t n = 0;

    (void)st;
    assert_int_equal(tok_open(db, "first-admin-secret", &ts, err, sizeof err), 0);
    assert_int_equal(tok_authenticate(ts, "first-admin-secret", &who), 0);
    assert_string_equal(who.name, "admin");
    assert_int_equal(who.scope, TOK_ADMIN);
    assert_int_equal(tok_authenticate(ts, "first-admin-secreT", &who), TOK_ENOTFOUND);
    assert_int_equal(tok_authenticate(ts, "", &who), TOK_ENOTFOUND);

    memset(&spec, 0, sizeof spec);
    snprintf(spec.name, sizeof spec.name, "ci");
    spec.scope = TOK_OPERATOR;
    snprintf(spec.selector, sizeof spec.selector, "team=a");
    spec.max_instances = 2;
    assert_int_equal(tok_create(ts, &spec, secret, &made, err, sizeof err), 0);
    assert_int_equal(strlen(secret), TOK_SECRET_LEN);
    assert_memory_equal(secret, TOK_SECRET_PREFIX, strlen(TOK_SECRET_PREFIX));
    assert_int_equal(strlen(made.id), TOK_ID_LEN);
    assert_int_equal(tok_create(ts, &spec, s2, NULL, err, sizeof err), TOK_ECONFLICT);
    assert_non_null(strstr(err, "'ci'"));
    snprintf(spec.name, sizeof spec.name, "ro");
    spec.scope = TOK_READ_ONLY;
    spec.selector[0] = '\0';
    spec.max_instances = 0;
    assert_int_equal(tok_create(ts, &spec, s2, NULL, err, sizeof err), 0);
    assert_string_not_equal(secret, s2);

    assert_int_equal(tok_authenticate(ts, secret, &who), 0);
    assert_string_equal(who.name, "ci");
    assert_int_equal(who.scope, TOK_OPERATOR);
    assert_string_equal(who.selector, "team=a");
    assert_int_equal(who.max_instances, 2);

    /* a hit on the first token still compares with all three */
    before = tok_compares(ts);
    assert_int_equal(tok_authenticate(ts, "first-admin-secret", &who), 0);
    assert_int_equal(tok_compares(ts) - before, 3);
    before = tok_compares(ts);
    assert_int_equal(tok_authenticate(ts, "nobody", &who), TOK_ENOTFOUND);
    assert_int_equal(tok_compares(ts) - before, 3);

    assert_int_equal(tok_list(ts, &all, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    /* listed by creation time, then id: the tokens here are made within
     * one millisecond, so only membership is certain */
    {
        int admins = 0;
        for (size_t i = 0; i < n; i++)
            admins += strcmp(all[i].name, "admin") == 0;
        assert_int_equal(admins, 1);
    }
    free(all);

    /* only hashes on disk */
    snprintf(wal, sizeof wal, "%s-wal", db);
    assert_false(file_has(db, secret) || file_has(wal, secret));
    assert_false(file_has(db, "first-admin-secret") || file_has(wal, "first-admin-secret"));

    /* revocation: at once; the admin token cannot go */
    assert_int_equal(tok_revoke(ts, "ci", NULL, err, sizeof err), 0);
    assert_int_equal(tok_authenticate(ts, secret, &who), TOK_ENOTFOUND);
    assert_int_equal(tok_revoke(ts, "ci", NULL, err, sizeof err), TOK_ENOTFOUND);
    assert_int_equal(tok_revoke(ts, "admin", NULL, err, sizeof err), TOK_EREFUSED);
    tok_close(ts);

    /* the admin token follows its file; the others stay */
    assert_int_equal(tok_open(db, "second-admin-secret", &ts, err, sizeof err), 0);
    assert_int_equal(tok_authenticate(ts, "first-admin-secret", &who), TOK_ENOTFOUND);
    assert_int_equal(tok_authenticate(ts, "second-admin-secret", &who), 0);
    assert_string_equal(who.name, "admin");
    assert_int_equal(tok_authenticate(ts, s2, &who), 0);
    assert_string_equal(who.name, "ro");
    assert_int_equal(tok_list(ts, &all, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    free(all);
    tok_close(ts);
}

/* Expiry and rate (issue 16): kept across a reopen; an expired token is
 * recognised (named) but refused; the admin token is never limited. */
static void t_expiry_rate(void **st)
{
    tok_store *ts = NULL;
    tok_info who, spec, made;
    char err[256], soon[TOK_SECRET_LEN + 1], later[TOK_SECRET_LEN + 1];
    struct timespec now;

    (void)st;
    clock_gettime(CLOCK_REALTIME, &now);
    assert_int_equal(tok_open(db, "admin-secret", &ts, err, sizeof err), 0);
    memset(&spec, 0, sizeof spec);
    snprintf(spec.name, sizeof spec.name, "soon");
    spec.scope = TOK_OPERATOR;
    spec.expires_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + 300;
    spec.rate = 50;
    spec.burst = 100;
    assert_int_equal(tok_create(ts, &spec, soon, &made, err, sizeof err), 0);
    assert_int_equal(made.expires_ms, spec.expires_ms);
    snprintf(spec.name, sizeof spec.name, "later");
    spec.expires_ms += 3600 * 1000;
    spec.rate = 0;
    spec.burst = 0;
    assert_int_equal(tok_create(ts, &spec, later, NULL, err, sizeof err), 0);
    tok_close(ts);

    assert_int_equal(tok_open(db, "admin-secret", &ts, err, sizeof err), 0);
    assert_int_equal(tok_authenticate(ts, soon, &who), 0);
    assert_string_equal(who.name, "soon");
    assert_int_equal(who.rate, 50);
    assert_int_equal(who.burst, 100);
    usleep(400 * 1000);
    memset(&who, 0, sizeof who);
    assert_int_equal(tok_authenticate(ts, soon, &who), TOK_EEXPIRED);
    assert_string_equal(who.name, "soon");
    assert_true(who.expires_ms > 0);
    assert_int_equal(tok_authenticate(ts, later, &who), 0);
    assert_int_equal(who.rate, 0);
    assert_int_equal(tok_authenticate(ts, "admin-secret", &who), 0);
    assert_int_equal(who.expires_ms, 0);
    assert_int_equal(who.rate, 0);
    tok_close(ts);
}

static void t_quota_math(void **st)
{
    tok_info t;
    tok_usage u = { 2, 64, 2 };
    const char *q = NULL;
    char msg[256];

    (void)st;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "ci");
    /* no quota: anything goes */
    assert_int_equal(tok_quota_check(&t, &u, 1000, 65536, 64, &q, msg, sizeof msg), 0);
    t.max_instances = 3;
    assert_int_equal(tok_quota_check(&t, &u, 1, 32, 1, &q, msg, sizeof msg), 0);
    assert_int_equal(tok_quota_check(&t, &u, 2, 32, 1, &q, msg, sizeof msg), -1);
    assert_string_equal(q, "instances");
    assert_string_equal(msg, "token 'ci' is over its instances quota: 2 in use + 2 asked > 3 "
                             "allowed");
    t.max_instances = 0;
    t.max_memory_mib = 128;
    assert_int_equal(tok_quota_check(&t, &u, 2, 32, 1, &q, msg, sizeof msg), 0); /* 64+64 */
    assert_int_equal(tok_quota_check(&t, &u, 2, 33, 1, &q, msg, sizeof msg), -1);
    assert_string_equal(q, "memory_mib");
    assert_non_null(strstr(msg, "64 in use + 66 asked > 128"));
    t.max_memory_mib = 0;
    t.max_vcpus = 4;
    assert_int_equal(tok_quota_check(&t, &u, 1, 32, 3, &q, msg, sizeof msg), -1);
    assert_string_equal(q, "vcpus");
    /* products do not wrap */
    t.max_vcpus = 0;
    t.max_memory_mib = 1u << 30;
    assert_int_equal(tok_quota_check(&t, &u, 100000, 65536, 1, &q, msg, sizeof msg), -1);
}

static void fill_row(state_instance *in, const char *id, const char *name, int mib, int vcpus)
{
    memset(in, 0, sizeof *in);
    snprintf(in->id, sizeof in->id, "%s", id);
    snprintf(in->name, sizeof in->name, "%s", name);
    snprintf(in->image_ref, sizeof in->image_ref, "hello:latest");
    snprintf(in->image_digest, sizeof in->image_digest, "sha256:00");
    in->memory_mib = mib;
    in->vcpus = vcpus;
    in->args_json = (char *)"[]";
    in->env_json = (char *)"{}";
    in->labels_json = (char *)"{}";
    in->placement_json = (char *)"{}";
    in->boot_us = -1;
    in->ready_ms = -1;
    in->exit_code = -1;
}

static void t_usage(void **st)
{
    tok_store *ts = NULL;
    state_db *s = NULL;
    state_instance in;
    tok_usage u;
    char err[256];

    (void)st;
    assert_int_equal(state_open(db, &s, err, sizeof err), 0);
    assert_int_equal(tok_open(db, "admin-secret", &ts, err, sizeof err), 0);
    fill_row(&in, "aaaaaaaaaaa1", "u1", 32, 1);
    assert_int_equal(state_inst_insert(s, &in, err, sizeof err), 0);
    fill_row(&in, "aaaaaaaaaaa2", "u2", 64, 2);
    assert_int_equal(state_inst_insert(s, &in, err, sizeof err), 0);
    fill_row(&in, "aaaaaaaaaaa3", "u3", 16, 1);
    assert_int_equal(state_inst_insert(s, &in, err, sizeof err), 0);
    assert_int_equal(tok_record_creator(ts, "aaaaaaaaaaa1", "t1"), 0);
    assert_int_equal(tok_record_creator(ts, "aaaaaaaaaaa2", "t1"), 0);
    assert_int_equal(tok_record_creator(ts, "aaaaaaaaaaa3", "t2"), 0);
    assert_int_equal(tok_usage_get(ts, "t1", &u), 0);
    assert_int_equal(u.instances, 2);
    assert_int_equal(u.memory_mib, 96);
    assert_int_equal(u.vcpus, 3);
    /* a deleted instance no longer counts (ON DELETE CASCADE) */
    assert_int_equal(state_inst_delete(s, "aaaaaaaaaaa2", err, sizeof err), 0);
    assert_int_equal(tok_usage_get(ts, "t1", &u), 0);
    assert_int_equal(u.instances, 1);
    assert_int_equal(u.memory_mib, 32);
    assert_int_equal(tok_usage_get(ts, "t3", &u), 0);
    assert_int_equal(u.instances, 0);
    tok_close(ts);
    state_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_hash),
        cmocka_unit_test(t_ct_equal),
        cmocka_unit_test_setup_teardown(t_store, setup, teardown),
        cmocka_unit_test_setup_teardown(t_expiry_rate, setup, teardown),
        cmocka_unit_test(t_quota_math),
        cmocka_unit_test_setup_teardown(t_usage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
