/*
 * netns.h - network namespaces for the daemon's tests that change links:
 * test_netbr, test_netbr_overflow, test_guard_net, test_dhcp_netns.
 *
 * netns_run makes namespace NAME and N guest namespaces NAME-g1 ...
 * NAME-gN (`ip netns add`, loopback up in each), runs the case's body in
 * a forked child that setns(2)'d into NAME, and then, in the parent,
 * whatever the child did: an optional `after` hook (kill what the body
 * left running, remove its files), the guests' namespaces and NAME
 * deleted, and the child's exit status checked. Every packet stays inside
 * them (DESIGN.md, "Network traffic rule for tests").
 *
 * The body's process ends as a pass when the body returns (_exit(0)), or
 * through its own exit(0) (so LeakSanitizer checks it); NETNS_CHECK ends it
 * as a failure (exit 1, the failed condition on stderr). cmocka's
 * assertions do not work there: the child is not the test.
 *
 * Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN). Without it, or when `ip netns
 * add NAME` fails, netns_run makes nothing and returns -1 with the reason:
 * the caller skips the case with SHOAL_SKIP, from its own file (the skip
 * count in shoal_skip.h is per file).
 */
#ifndef SHOAL_TEST_NETNS_H
#define SHOAL_TEST_NETNS_H

#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

/* In a body: end the child as a failure unless c holds. */
#define NETNS_CHECK(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "child: %s:%d: %s\n", __FILE__, __LINE__, #c);                         \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

/* Run a shell command (formatted, at most 1 KiB) in the calling thread's
 * namespace; its output goes to /dev/null unless SHOAL_TEST_VERBOSE is set
 * (then the command is echoed to stderr too). Its exit status, or -1 when
 * it did not exit. */
int netns_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The same, with its standard output (up to len-1 bytes, NUL-terminated)
 * in out; stderr is not redirected. */
int netns_sh_out(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A descriptor (O_CLOEXEC) of namespace `name` (/run/netns/NAME), for
 * setns(2); -1 if there is none. */
int netns_open(const char *name);

/* See above. guests: 0 or more; after: NULL or run in the parent once the
 * child is reaped, before the deletes. 0 when the body ran (a failure of
 * the child's status fails the case here, after the deletes), or -1 with
 * why[whylen] when nothing could be made. */
int netns_run(const char *name, int guests, void (*body)(void), void (*after)(void), char *why,
              size_t whylen);

#endif
