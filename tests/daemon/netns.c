/* netns.c - network namespaces for the daemon's link tests (see netns.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

int netns_sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (!getenv("SHOAL_TEST_VERBOSE"))
        strncat(cmd, " >/dev/null 2>&1", sizeof cmd - strlen(cmd) - 1);
    else
        fprintf(stderr, "+ %s\n", cmd);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int netns_sh_out(char *out, size_t len, const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    out[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int netns_open(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "/run/netns/%s", name);
    return open(path, O_RDONLY | O_CLOEXEC);
}

int netns_run(const char *name, int guests, void (*body)(void), void (*after)(void), char *why,
              size_t whylen)
{
    pid_t pid = -1;
    int ok, st = -1;

    if (geteuid() != 0) {
        snprintf(why, whylen, "not root (euid %d): cannot create a network namespace",
                 (int)geteuid());
        return -1;
    }
    if (netns_sh("ip netns add %s", name) != 0) {
        snprintf(why, whylen, "`ip netns add %s` failed", name);
        return -1;
    }
    ok = netns_sh("ip -n %s link set lo up", name) == 0;
    for (int i = 1; ok && i <= guests; i++)
        ok = netns_sh("ip netns add %s-g%d", name, i) == 0 &&
             netns_sh("ip -n %s-g%d link set lo up", name, i) == 0;
    fflush(NULL); /* a body may exit through exit(): nothing buffered twice */
    pid = ok ? fork() : -1;
    if (pid == 0) {
        int fd = netns_open(name);
        if (fd < 0 || setns(fd, CLONE_NEWNET) != 0)
            _exit(2);
        close(fd);
        body();
        _exit(0);
    }
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (after)
        after();
    for (int i = 1; i <= guests; i++)
        netns_sh("ip netns del %s-g%d", name, i);
    netns_sh("ip netns del %s", name);
    assert_true(ok);
    assert_true(pid > 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    return 0;
}
