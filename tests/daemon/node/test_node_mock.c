/*
 * test_node_mock.c - node against libvirt's mock driver (test:///default):
 * capacity, verdict without canary, start/list/state/destroy and events.
 * No QEMU involved, so it is fast and runs as label `unit`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evlog.h"
#include "node.h"

static struct evlog elog;
static struct node *node;
static char err[NODE_ERR_MAX];

static int setup(void **state)
{
    (void)state;
    struct node_opts o = { .on_event = evlog_cb, .user = &elog };
    evlog_init(&elog);
    if (node_open("test:///default", &o, &node, err, sizeof err) != NODE_OK) {
        fprintf(stderr, "node_open: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    node_close(node);
    node = NULL;
    evlog_destroy(&elog);
    return 0;
}

static void capacity_and_verdict(void **state)
{
    (void)state;
    struct node_capacity c;
    assert_int_equal(node_capacity(node, &c, err, sizeof err), NODE_OK);
    assert_int_equal(c.vcpus, 16); /* what the mock reports */
    assert_int_equal(c.memory_mib, 3072);
    assert_int_equal(node_domain_type(node), DOMXML_VIRT_QEMU);
    assert_non_null(strstr(node_domain_type_reason(node), "test driver"));
    assert_true(node_alive(node));
}

static void start_list_destroy(void **state)
{
    (void)state;
    struct node_dom *l = NULL, d;
    size_t n = 99;
    char uuid[DOMXML_UUID_LEN + 1];

    /* the mock's own domain "test" has no shoal metadata: not listed */
    assert_int_equal(node_list(node, &l, &n, err, sizeof err), NODE_OK);
    assert_int_equal(n, 0);
    assert_null(l);

    struct domxml_spec s = {
        .name = "mock-1",
        .boot = DOMXML_BOOT_PVH,
        .memory_mib = 32,
        .vcpus = 1,
        .kernel = "/nonexistent/k.elf",
        .cmdline = "a=b",
        .console_log = "/tmp/mock-1.console",
        .status_log = "/tmp/mock-1.status",
        .instance_id = "m-1",
    };
    assert_int_equal(node_start(node, &s, uuid, err, sizeof err), NODE_OK);
    assert_int_equal(strlen(uuid), DOMXML_UUID_LEN);
    assert_true(evlog_wait(&elog, "m-1", NODE_EVENT_STARTED, 10, NULL) >= 0);

    assert_int_equal(node_list(node, &l, &n, err, sizeof err), NODE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(l[0].instance_id, "m-1");
    assert_string_equal(l[0].name, "mock-1");
    assert_string_equal(l[0].uuid, uuid);
    assert_int_equal(l[0].state, NODE_DOM_RUNNING);
    node_list_free(l);

    assert_int_equal(node_state(node, "mock-1", &d, err, sizeof err), NODE_OK);
    assert_string_equal(node_dom_state_name(d.state), "running");

    assert_int_equal(node_start(node, &s, NULL, err, sizeof err), NODE_E_EXISTS);
    assert_int_equal(node_destroy(node, "mock-1", err, sizeof err), NODE_OK);
    struct evlog_entry e;
    assert_true(evlog_wait(&elog, "m-1", NODE_EVENT_STOPPED, 10, &e) >= 0);
    assert_string_equal(e.detail, "destroyed");
    assert_int_equal(node_destroy(node, "mock-1", err, sizeof err), NODE_E_NOTFOUND);
    assert_non_null(strstr(err, "'mock-1'"));
}

/* node_set_instance_id (a warm pool guest handed to a waking instance):
 * the domain's metadata, its list entry and its events name the new id
 * from then on; a bad id or a missing domain is refused. */
static void set_instance_id_names_events(void **state)
{
    (void)state;
    struct node_dom *l = NULL;
    struct evlog_entry e;
    size_t n = 0;
    struct domxml_spec s = {
        .name = "mock-si",
        .boot = DOMXML_BOOT_PVH,
        .memory_mib = 32,
        .vcpus = 1,
        .kernel = "/nonexistent/k.elf",
        .cmdline = "a=b",
        .console_log = "/tmp/mock-si.console",
        .status_log = "/tmp/mock-si.status",
        .instance_id = "siguest",
    };
    assert_int_equal(node_start(node, &s, NULL, err, sizeof err), NODE_OK);
    assert_true(evlog_wait(&elog, "siguest", NODE_EVENT_STARTED, 10, NULL) >= 0);
    assert_int_equal(node_set_instance_id(node, "mock-si", "a'b", err, sizeof err), NODE_E_INVAL);
    assert_int_equal(node_set_instance_id(node, "mock-none", "siinst", err, sizeof err),
                     NODE_E_NOTFOUND);
    assert_int_equal(node_set_instance_id(node, "mock-si", "siinst", err, sizeof err), NODE_OK);
    assert_int_equal(node_list(node, &l, &n, err, sizeof err), NODE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(l[0].name, "mock-si");
    assert_string_equal(l[0].instance_id, "siinst");
    node_list_free(l);
    assert_int_equal(node_destroy(node, "mock-si", err, sizeof err), NODE_OK);
    assert_true(evlog_wait(&elog, "siinst", NODE_EVENT_STOPPED, 10, &e) >= 0);
    assert_true(evlog_wait(&elog, "siguest", NODE_EVENT_STOPPED, 0.2, NULL) < 0);

    /* node_forget: the destroy that follows is reported to nobody */
    s.instance_id = "siforget";
    assert_int_equal(node_start(node, &s, NULL, err, sizeof err), NODE_OK);
    assert_true(evlog_wait(&elog, "siforget", NODE_EVENT_STARTED, 10, NULL) >= 0);
    node_forget(node, "mock-si");
    node_forget(node, "mock-none"); /* not running: nothing */
    assert_int_equal(node_destroy(node, "mock-si", err, sizeof err), NODE_OK);
    assert_true(evlog_wait(&elog, "siforget", NODE_EVENT_STOPPED, 0.5, NULL) < 0);
}

/* Every event carries its domain's instance id, looked up by UUID in the
 * node's id table: hundreds of domains (the table grows several times),
 * each STOPPED removes its entry, and a domain started again under the
 * same name but a new UUID maps to its new id. */
#define MANY 300
static void many_domains_map_ids(void **state)
{
    (void)state;
    char name[32], id[32], uuid[MANY][DOMXML_UUID_LEN + 1];
    struct domxml_spec s = {
        .boot = DOMXML_BOOT_PVH,
        .memory_mib = 32,
        .vcpus = 1,
        .kernel = "/nonexistent/k.elf",
        .cmdline = "a=b",
        .console_log = "/tmp/mock-many.console",
        .status_log = "/tmp/mock-many.status",
    };
    struct node_dom *l = NULL;
    struct evlog_entry e;
    size_t n = 0;

    s.name = name;
    s.instance_id = id;
    for (int i = 0; i < MANY; i++) {
        snprintf(name, sizeof name, "many-%d", i);
        snprintf(id, sizeof id, "many-id-%d", i);
        assert_int_equal(node_start(node, &s, uuid[i], err, sizeof err), NODE_OK);
    }
    for (int i = 0; i < MANY; i++) {
        snprintf(id, sizeof id, "many-id-%d", i);
        assert_true(evlog_wait(&elog, id, NODE_EVENT_STARTED, 10, NULL) >= 0);
    }
    /* Stop every other one: each STOPPED names its own instance, which
     * only the table knows by then (the domain is gone). Before any list,
     * which would put entries back. */
    for (int i = 0; i < MANY; i += 2) {
        snprintf(name, sizeof name, "many-%d", i);
        assert_int_equal(node_destroy(node, name, err, sizeof err), NODE_OK);
    }
    for (int i = 0; i < MANY; i += 2) {
        snprintf(id, sizeof id, "many-id-%d", i);
        assert_true(evlog_wait(&elog, id, NODE_EVENT_STOPPED, 10, &e) >= 0);
        assert_string_equal(e.detail, "destroyed");
    }
    assert_int_equal(node_list(node, &l, &n, err, sizeof err), NODE_OK);
    assert_int_equal(n, MANY / 2);
    for (size_t k = 0; k < n; k++) {
        int i = atoi(l[k].name + 5);
        snprintf(id, sizeof id, "many-id-%d", i);
        assert_int_equal(i % 2, 1);
        assert_string_equal(l[k].instance_id, id);
        assert_string_equal(l[k].uuid, uuid[i]);
    }
    node_list_free(l);

    /* Same name again, new UUID and instance id: the event maps to it. */
    snprintf(name, sizeof name, "many-0");
    snprintf(id, sizeof id, "many-again-0");
    assert_int_equal(node_start(node, &s, uuid[0], err, sizeof err), NODE_OK);
    assert_true(evlog_wait(&elog, "many-again-0", NODE_EVENT_STARTED, 10, NULL) >= 0);
    assert_int_equal(node_destroy(node, "many-0", err, sizeof err), NODE_OK);
    assert_true(evlog_wait(&elog, "many-again-0", NODE_EVENT_STOPPED, 10, NULL) >= 0);
    for (int i = 1; i < MANY; i += 2) {
        snprintf(name, sizeof name, "many-%d", i);
        snprintf(id, sizeof id, "many-id-%d", i);
        assert_int_equal(node_destroy(node, name, err, sizeof err), NODE_OK);
        assert_true(evlog_wait(&elog, id, NODE_EVENT_STOPPED, 10, &e) >= 0);
    }
    /* Nothing of ours is left, and no event lost its id. */
    assert_int_equal(node_list(node, &l, &n, err, sizeof err), NODE_OK);
    assert_int_equal(n, 0);
    pthread_mutex_lock(&elog.lock);
    for (int i = 0; i < elog.n; i++)
        assert_true(elog.e[i].id[0] != '\0');
    pthread_mutex_unlock(&elog.lock);
}

static void forced_type_and_bad_args(void **state)
{
    (void)state;
    struct node *n2 = NULL;
    struct node_opts o = { .domain_type = DOMXML_VIRT_KVM };
    assert_int_equal(node_open("test:///default", &o, &n2, err, sizeof err), NODE_OK);
    assert_int_equal(node_domain_type(n2), DOMXML_VIRT_KVM);
    assert_string_equal(node_domain_type_reason(n2), "forced by operator");
    node_close(n2);

    assert_int_equal(node_open(NULL, NULL, &n2, err, sizeof err), NODE_E_INVAL);
    assert_null(n2);
    o.domain_type = (enum domxml_virt)7;
    assert_int_equal(node_open("test:///default", &o, &n2, err, sizeof err), NODE_E_INVAL);
    assert_int_equal(node_open("bogus:///nothing", NULL, &n2, err, sizeof err), NODE_E_CONN);
    assert_non_null(strstr(err, "'bogus:///nothing'"));
    node_close(NULL);
    node_list_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(capacity_and_verdict),         cmocka_unit_test(start_list_destroy),
        cmocka_unit_test(set_instance_id_names_events), cmocka_unit_test(many_domains_map_ids),
        cmocka_unit_test(forced_type_and_bad_args),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
