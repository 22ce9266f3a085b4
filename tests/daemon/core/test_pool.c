/* test_pool.c - the warm pool table's accounting and claims (pool_tab.c,
 * daemon/core/pool.h), without VMs: what is wanted and missing, which
 * guests a create may take, that no guest is handed out twice (also under
 * concurrent claims, with the table under one mutex as pool.c holds it),
 * and what a shrink, an eviction or an image's removal dooms. Also which
 * runs may take a guest (fleet_pool_fits), and the identity an instance
 * takes when it wakes on one (fleet_identity_take, fleet_run_id: idle.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "netbr.h"
#include "pool.h"

#define DA "sha256:aaaa"
#define DB "sha256:bbbb"

static pool_tab *tab_new(void)
{
    pool_tab *t = malloc(sizeof *t);
    assert_non_null(t);
    pool_tab_init(t);
    return t;
}

static void add_ready(pool_tab *t, const char *id, const char *digest, const char *host,
                      int64_t now)
{
    pool_guest *g = pool_tab_add(t, id, digest, host, 32, 1, 1, now);
    assert_non_null(g);
    g->st = POOL_G_READY;
}

static void test_wants_and_deficit(void **st)
{
    pool_tab *t = tab_new();
    pool_want w[] = { { DA, 2 }, { DB, 1 }, { "sha256:cccc", 0 } };
    (void)st;
    pool_tab_set_wants(t, w, 3);
    assert_int_equal(t->nw, 2); /* no pool: not wanted at all */
    assert_int_equal(pool_tab_want(t, DA), 2);
    assert_int_equal(pool_tab_want(t, "sha256:cccc"), 0);
    assert_int_equal(pool_tab_deficit(t, DA), 2);
    assert_non_null(pool_tab_add(t, "a1", DA, "local", 32, 1, 1, 1));
    assert_int_equal(pool_tab_deficit(t, DA), 1); /* booting counts */
    add_ready(t, "a2", DA, "local", 2);
    assert_int_equal(pool_tab_deficit(t, DA), 0);
    assert_null(pool_tab_add(t, "a2", DA, "local", 32, 1, 1, 3)); /* id twice */
    /* a claimed guest is an instance's: the pool refills behind it */
    char id[STATE_ID_LEN + 1];
    assert_int_equal(pool_tab_claim(t, DA, "local", 32, 1, 1, id), 1);
    assert_string_equal(id, "a2");
    assert_int_equal(pool_tab_deficit(t, DA), 1);
    /* shrink to 0: the live guest is doomed, the claimed one kept */
    w[0].want = 0;
    pool_tab_set_wants(t, w, 3);
    assert_int_equal(pool_tab_trim(t), 1);
    assert_int_equal(pool_tab_find(t, "a1")->st, POOL_G_DOOMED);
    assert_int_equal(pool_tab_find(t, "a2")->st, POOL_G_CLAIMED);
    assert_int_equal(pool_tab_deficit(t, DA), 0);
    free(t);
}

static void test_trim_newest_first(void **st)
{
    pool_tab *t = tab_new();
    pool_want w[] = { { DA, 3 } };
    (void)st;
    pool_tab_set_wants(t, w, 1);
    add_ready(t, "a1", DA, "local", 1);
    add_ready(t, "a2", DA, "local", 2);
    assert_non_null(pool_tab_add(t, "a3", DA, "local", 32, 1, 1, 3));
    assert_int_equal(pool_tab_trim(t), 0);
    w[0].want = 1;
    pool_tab_set_wants(t, w, 1);
    assert_int_equal(pool_tab_trim(t), 2);
    assert_int_equal(pool_tab_find(t, "a1")->st, POOL_G_READY); /* the oldest stays */
    assert_int_equal(pool_tab_find(t, "a2")->st, POOL_G_DOOMED);
    assert_int_equal(pool_tab_find(t, "a3")->st, POOL_G_DOOMED);
    assert_int_equal(pool_tab_trim(t), 0); /* idempotent */
    free(t);
}

static void test_claim_matches(void **st)
{
    pool_tab *t = tab_new();
    pool_want w[] = { { DA, 4 } };
    char id[STATE_ID_LEN + 1];
    (void)st;
    pool_tab_set_wants(t, w, 1);
    assert_non_null(pool_tab_add(t, "boot", DA, "local", 32, 1, 1, 1)); /* not ready */
    add_ready(t, "old", DA, "local", 2);
    add_ready(t, "new", DA, "local", 3);
    add_ready(t, "other", DA, "h2", 4);
    /* options that differ from the guests': never taken */
    assert_int_equal(pool_tab_claim(t, DA, "local", 64, 1, 1, id), 0);
    assert_int_equal(pool_tab_claim(t, DA, "local", 32, 2, 1, id), 0);
    assert_int_equal(pool_tab_claim(t, DA, "local", 32, 1, 0, id), 0);
    assert_int_equal(pool_tab_claim(t, DB, "local", 32, 1, 1, id), 0);
    assert_int_equal(pool_tab_claim(t, DA, "h3", 32, 1, 1, id), 0);
    assert_int_equal(t->misses, 4); /* DB has no pool: not a miss */
    /* the oldest ready one first, each once */
    assert_int_equal(pool_tab_claim(t, DA, "local", 32, 1, 1, id), 1);
    assert_string_equal(id, "old");
    assert_int_equal(pool_tab_claim(t, DA, "local", 32, 1, 1, id), 1);
    assert_string_equal(id, "new");
    assert_int_equal(pool_tab_claim(t, DA, "local", 32, 1, 1, id), 0);
    assert_int_equal(t->claims, 2);
    /* a create that cannot use its claim gives it back */
    pool_tab_unclaim(t, "new");
    assert_int_equal(t->claims, 1);
    assert_int_equal(pool_tab_claim(t, DA, "local", 32, 1, 1, id), 1);
    assert_string_equal(id, "new");
    /* a removed guest (handed over) is gone; order kept */
    pool_tab_remove(t, "old");
    assert_null(pool_tab_find(t, "old"));
    assert_int_equal(t->n, 3);
    assert_string_equal(t->g[0].id, "boot");
    assert_string_equal(t->g[1].id, "new");
    assert_string_equal(t->g[2].id, "other");
    pool_tab_remove(t, "nosuch");
    assert_int_equal(t->n, 3);
    free(t);
}

static void test_evict_and_drop(void **st)
{
    pool_tab *t = tab_new();
    pool_want w[] = { { DA, 4 }, { DB, 4 } };
    char id[STATE_ID_LEN + 1];
    (void)st;
    pool_tab_set_wants(t, w, 2);
    add_ready(t, "a1", DA, "local", 1);
    add_ready(t, "a2", DA, "local", 2);
    assert_non_null(pool_tab_add(t, "b1", DB, "local", 32, 1, 1, 3));
    add_ready(t, "b2", DB, "h2", 4);
    assert_int_equal(pool_tab_claim(t, DA, "local", 32, 1, 1, id), 1);
    /* a create needs local's room: its idle guests go, not the claimed */
    assert_int_equal(pool_tab_evict_host(t, "local"), 2);
    assert_int_equal(pool_tab_find(t, "a1")->st, POOL_G_CLAIMED);
    assert_int_equal(pool_tab_find(t, "a2")->st, POOL_G_DOOMED);
    assert_int_equal(pool_tab_find(t, "b1")->st, POOL_G_DOOMED);
    assert_int_equal(pool_tab_find(t, "b2")->st, POOL_G_READY);
    /* a doomed guest is never claimed */
    assert_int_equal(pool_tab_claim(t, DB, "local", 32, 1, 1, id), 0);
    assert_int_equal(pool_tab_drop_image(t, DB), 1);
    assert_int_equal(pool_tab_find(t, "b2")->st, POOL_G_DOOMED);
    assert_int_equal(pool_tab_count(t, NULL, POOL_G_DOOMED), 3);
    assert_int_equal(pool_tab_count(t, DA, POOL_G_CLAIMED), 1);
    free(t);
}

static void test_full(void **st)
{
    pool_tab *t = tab_new();
    char id[STATE_ID_LEN + 1];
    (void)st;
    for (int i = 0; i < FLEET_POOL_MAX; i++) {
        snprintf(id, sizeof id, "g%d", i);
        assert_non_null(pool_tab_add(t, id, DA, "local", 32, 1, 1, i));
    }
    assert_null(pool_tab_add(t, "one-more", DA, "local", 32, 1, 1, 0));
    assert_int_equal(t->started, FLEET_POOL_MAX);
    free(t);
}

/* Concurrent creates: 8 threads claim from 40 ready guests, the table
 * under one mutex as pool.c holds it; every guest goes to exactly one. */
#define CLAIMERS 8
#define READY    40
struct race {
    pthread_mutex_t mu;
    pool_tab *t;
    char got[CLAIMERS][READY][STATE_ID_LEN + 1];
    int ngot[CLAIMERS];
};
struct claimer {
    struct race *r;
    int k;
};

static void *claimer_main(void *arg)
{
    struct claimer *c = arg;
    struct race *r = c->r;
    for (;;) {
        char id[STATE_ID_LEN + 1];
        int got;
        pthread_mutex_lock(&r->mu);
        got = pool_tab_claim(r->t, DA, "local", 32, 1, 1, id);
        pthread_mutex_unlock(&r->mu);
        if (!got)
            return NULL;
        snprintf(r->got[c->k][r->ngot[c->k]++], STATE_ID_LEN + 1, "%s", id);
    }
}

static void test_concurrent_claims(void **st)
{
    struct race *r = calloc(1, sizeof *r);
    pthread_t th[CLAIMERS];
    struct claimer c[CLAIMERS];
    int seen[READY] = { 0 }, total = 0;
    pool_want w[] = { { DA, READY } };
    (void)st;
    assert_non_null(r);
    r->t = tab_new();
    pthread_mutex_init(&r->mu, NULL);
    pool_tab_set_wants(r->t, w, 1);
    for (int i = 0; i < READY; i++) {
        char id[STATE_ID_LEN + 1];
        snprintf(id, sizeof id, "r%d", i);
        add_ready(r->t, id, DA, "local", i);
    }
    for (int k = 0; k < CLAIMERS; k++) {
        c[k] = (struct claimer){ r, k };
        assert_int_equal(pthread_create(&th[k], NULL, claimer_main, &c[k]), 0);
    }
    for (int k = 0; k < CLAIMERS; k++)
        pthread_join(th[k], NULL);
    for (int k = 0; k < CLAIMERS; k++) {
        for (int i = 0; i < r->ngot[k]; i++) {
            int n = atoi(r->got[k][i] + 1);
            assert_true(n >= 0 && n < READY);
            seen[n]++;
            total++;
        }
    }
    assert_int_equal(total, READY);
    for (int i = 0; i < READY; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(r->t->claims, READY);
    assert_int_equal(pool_tab_deficit(r->t, DA), READY); /* all to refill */
    pthread_mutex_destroy(&r->mu);
    free(r->t);
    free(r);
}

/* A shoal-preset kernel with nothing of the run's own takes a guest; a
 * disk, a template line, another preset, an initrd or a command line of
 * its own do not (the guest booted without them). */
static void test_pool_fits(void **st)
{
    fleet_boot b;
    (void)st;
    memset(&b, 0, sizeof b);
    b.preset = GCMD_PRESET_SHOAL;
    assert_true(fleet_pool_fits(&b, 0, 0));
    assert_false(fleet_pool_fits(&b, 1, 0));
    assert_false(fleet_pool_fits(&b, 0, 1));
    b.disk = 1;
    assert_false(fleet_pool_fits(&b, 0, 0));
    b.disk = 0;
    b.template = 1;
    assert_false(fleet_pool_fits(&b, 0, 0));
    b.template = 0;
    b.preset = GCMD_PRESET_RAW;
    assert_false(fleet_pool_fits(&b, 0, 0));
}

/* An instance that wakes on pool guest g runs as g (domain, tap, files:
 * fleet_run_id) with g's MAC, and keeps its id and address; taking its
 * own id back (or "") gives it its own MAC again. */
static void test_identity(void **st)
{
    state_instance in;
    char mac[NETBR_MAC_STRLEN];
    (void)st;
    memset(&in, 0, sizeof in);
    snprintf(in.id, sizeof in.id, "0123456789ab");
    in.network = 1;
    in.ipv4 = 0x0a580003;
    netbr_mac(in.id, in.mac);
    assert_string_equal(fleet_run_id(&in), "0123456789ab");
    fleet_identity_take(&in, "fedcba987654");
    assert_string_equal(fleet_run_id(&in), "fedcba987654");
    assert_string_equal(in.id, "0123456789ab");
    netbr_mac("fedcba987654", mac);
    assert_string_equal(in.mac, mac);
    assert_int_equal(in.ipv4, 0x0a580003);
    fleet_identity_take(&in, "0123456789ab"); /* its own id: no guest */
    assert_string_equal(in.guest, "");
    netbr_mac("0123456789ab", mac);
    assert_string_equal(in.mac, mac);
    in.network = 0; /* no NIC: no MAC to change */
    in.mac[0] = 0;
    fleet_identity_take(&in, "fedcba987654");
    assert_string_equal(fleet_run_id(&in), "fedcba987654");
    assert_string_equal(in.mac, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wants_and_deficit),
        cmocka_unit_test(test_trim_newest_first),
        cmocka_unit_test(test_claim_matches),
        cmocka_unit_test(test_evict_and_drop),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_concurrent_claims),
        cmocka_unit_test(test_pool_fits),
        cmocka_unit_test(test_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
