/*
 * test_netbr.c - bridges inside a network namespace the test creates
 * (`ip netns add shoal-test-<pid>`); the bridge code runs in a forked child
 * that setns(2)'d into it. Never touches the host namespace's links.
 * Needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN); otherwise it exits 77, which
 * CTest reports as "Skipped" (SKIP_RETURN_CODE 77), not "Passed".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netbr.h"
#include "netns.h"
#include "shoal_skip.h"

/* Body run inside the namespace. Exits 0 on success. */
static void in_ns(void)
{
    char err[512], out[4096];
    NETNS_CHECK(!netbr_exists("shoalbr9"));
    NETNS_CHECK(netbr_create("shoalbr9", "10.99.0.1", 24, err, sizeof err) == NETBR_OK);
    NETNS_CHECK(netbr_exists("shoalbr9"));
    NETNS_CHECK(netns_sh_out(out, sizeof out, "ip -o addr show dev shoalbr9 2>&1") == 0);
    NETNS_CHECK(strstr(out, "inet 10.99.0.1/24") != NULL);
    /* idempotent */
    NETNS_CHECK(netbr_create("shoalbr9", "10.99.0.1", 24, err, sizeof err) == NETBR_OK);
    /* bad values are rejected and quoted */
    NETNS_CHECK(netbr_create("shoalbr9", "10.99.0.300", 24, err, sizeof err) == NETBR_E_INVAL);
    NETNS_CHECK(strstr(err, "'10.99.0.300'") != NULL);
    NETNS_CHECK(netbr_create("bad/name", "10.0.0.1", 24, err, sizeof err) == NETBR_E_INVAL);
    NETNS_CHECK(netbr_create("shoalbr9", "10.0.0.1", 33, err, sizeof err) == NETBR_E_INVAL);
    /* loopback is not a bridge: neither reused nor deleted */
    NETNS_CHECK(netbr_create("lo", "10.98.0.1", 24, err, sizeof err) == NETBR_E_EXISTS);
    NETNS_CHECK(netbr_delete("lo", err, sizeof err) == NETBR_E_EXISTS);
    NETNS_CHECK(netbr_delete("shoalbr9", err, sizeof err) == NETBR_OK);
    NETNS_CHECK(!netbr_exists("shoalbr9"));
    NETNS_CHECK(netbr_delete("shoalbr9", err, sizeof err) == NETBR_OK);
    _exit(0);
}

static void bridge_in_netns(void **state)
{
    char ns[64], why[256];
    (void)state;
    snprintf(ns, sizeof ns, "shoal-test-%d", (int)getpid());
    if (netns_run(ns, 0, in_ns, NULL, why, sizeof why) != 0)
        SHOAL_SKIP("bridge_in_netns: %s", why);
    /* and nothing leaked into the host namespace */
    assert_false(netbr_exists("shoalbr9"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bridge_in_netns),
    };
    return shoal_test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
