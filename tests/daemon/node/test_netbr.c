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

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netbr.h"
#include "shoal_skip.h"

static char ns[64];
static char no_ns_why[128]; /* why there is no namespace (ns[0] == '\0') */

static int sh_ip(const char *a1, const char *a2, const char *a3)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("ip", "ip", a1, a2, a3, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int setup(void **state)
{
    (void)state;
    snprintf(ns, sizeof ns, "shoal-test-%d", (int)getpid());
    if (geteuid() != 0) {
        snprintf(no_ns_why, sizeof no_ns_why,
                 "not root (euid %d): cannot create a network namespace", (int)geteuid());
        ns[0] = '\0';
    } else {
        int rc = sh_ip("netns", "add", ns);
        if (rc != 0) {
            snprintf(no_ns_why, sizeof no_ns_why, "`ip netns add %s` failed (status %d)", ns, rc);
            ns[0] = '\0';
        }
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (ns[0])
        sh_ip("netns", "del", ns);
    return 0;
}

/* Run `ip -o addr show dev NAME` in the current namespace; capture output. */
static int ip_addr_show(const char *dev, char *out, size_t len)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        execlp("ip", "ip", "-o", "addr", "show", "dev", dev, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t used = 0;
    ssize_t n;
    while (used + 1 < len && (n = read(p[0], out + used, len - 1 - used)) > 0)
        used += (size_t)n;
    out[used] = '\0';
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "child: %s:%d: %s\n", __FILE__, __LINE__, #c);                         \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

/* Body run inside the namespace. Exits 0 on success. */
static void in_ns(void)
{
    char err[512], out[4096];
    CHECK(!netbr_exists("shoalbr9"));
    CHECK(netbr_create("shoalbr9", "10.99.0.1", 24, err, sizeof err) == NETBR_OK);
    CHECK(netbr_exists("shoalbr9"));
    CHECK(ip_addr_show("shoalbr9", out, sizeof out) == 0);
    CHECK(strstr(out, "inet 10.99.0.1/24") != NULL);
    /* idempotent */
    CHECK(netbr_create("shoalbr9", "10.99.0.1", 24, err, sizeof err) == NETBR_OK);
    /* bad values are rejected and quoted */
    CHECK(netbr_create("shoalbr9", "10.99.0.300", 24, err, sizeof err) == NETBR_E_INVAL);
    CHECK(strstr(err, "'10.99.0.300'") != NULL);
    CHECK(netbr_create("bad/name", "10.0.0.1", 24, err, sizeof err) == NETBR_E_INVAL);
    CHECK(netbr_create("shoalbr9", "10.0.0.1", 33, err, sizeof err) == NETBR_E_INVAL);
    /* loopback is not a bridge: neither reused nor deleted */
    CHECK(netbr_create("lo", "10.98.0.1", 24, err, sizeof err) == NETBR_E_EXISTS);
    CHECK(netbr_delete("lo", err, sizeof err) == NETBR_E_EXISTS);
    CHECK(netbr_delete("shoalbr9", err, sizeof err) == NETBR_OK);
    CHECK(!netbr_exists("shoalbr9"));
    CHECK(netbr_delete("shoalbr9", err, sizeof err) == NETBR_OK);
    _exit(0);
}

static void bridge_in_netns(void **state)
{
    (void)state;
    char path[128];
    if (!ns[0])
        SHOAL_SKIP("bridge_in_netns: %s", no_ns_why);
    snprintf(path, sizeof path, "/run/netns/%s", ns);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) != 0)
            _exit(2);
        close(fd);
        in_ns();
    }
    assert_true(pid > 0);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    /* and nothing leaked into the host namespace */
    assert_false(netbr_exists("shoalbr9"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bridge_in_netns),
    };
    return shoal_test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
