/* child.c - programs run without a shell (see child.h). */
#include "child.h"
#include "errbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Reap poll interval while a time limit runs. */
#define CHILD_REAP_POLL_MS 10

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* posix_spawn(p) argv with stdin from in (or /dev/null) and stdout and
 * stderr to out (or /dev/null). 0, or the error number. */
static int start(char *const argv[], int in, int out, unsigned flags, pid_t *pid)
{
    /* What shoald blocks (for sigwait) or ignores (SIGPIPE); a handled
     * signal is reset by exec anyway. */
    static const int sigs[] = { SIGHUP,  SIGINT,  SIGQUIT, SIGTERM, SIGPIPE,
                                SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dfl;
    short sflags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    int e, fa_init = 0, at_init = 0;

    if ((e = posix_spawn_file_actions_init(&fa)) != 0)
        goto done;
    fa_init = 1;
    if ((e = posix_spawnattr_init(&at)) != 0)
        goto done;
    at_init = 1;
    sigemptyset(&none);
    sigemptyset(&dfl);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&dfl, sigs[i]);
    if (flags & CHILD_PGROUP)
        sflags |= POSIX_SPAWN_SETPGROUP;
    /* dup2 onto 0-2 clears their O_CLOEXEC; every other descriptor keeps
     * its own and goes at exec. */
    e = in >= 0 ? posix_spawn_file_actions_adddup2(&fa, in, 0)
                : posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    for (int fd = 1; fd <= 2 && e == 0; fd++)
        e = out >= 0 ? posix_spawn_file_actions_adddup2(&fa, out, fd)
                     : posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", O_WRONLY, 0);
    if (e == 0)
        e = posix_spawnattr_setflags(&at, sflags);
    if (e == 0)
        e = posix_spawnattr_setsigmask(&at, &none);
    if (e == 0)
        e = posix_spawnattr_setsigdefault(&at, &dfl);
    if (e == 0 && (flags & CHILD_PGROUP))
        e = posix_spawnattr_setpgroup(&at, 0);
    if (e == 0)
        e = (flags & CHILD_NOSEARCH) ? posix_spawn(pid, argv[0], &fa, &at, argv, environ)
                                     : posix_spawnp(pid, argv[0], &fa, &at, argv, environ);
done:
    if (at_init)
        posix_spawnattr_destroy(&at);
    if (fa_init)
        posix_spawn_file_actions_destroy(&fa);
    return e;
}

/* A memfd holding len bytes of buf, at offset 0; -1 with errno set. */
static int memfd_of(const char *buf, size_t len, char *err, size_t errlen)
{
    const char *what = "memfd_create";
    size_t off = 0;
    int fd = memfd_create("shoal-child-stdin", MFD_CLOEXEC), e;

    if (fd < 0)
        goto fail;
    what = "writing stdin";
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            goto fail;
        }
        off += (size_t)w;
    }
    what = "lseek";
    if (lseek(fd, 0, SEEK_SET) == 0)
        return fd;
fail:
    e = errno;
    errbuf_set(err, errlen, "%s: %s", what, strerror(e));
    if (fd >= 0)
        close(fd);
    errno = e;
    return -1;
}

/* Read fd to EOF into o->out (bounded), or until deadline (0: none).
 * 1 when the deadline passed first. */
static int drain(int fd, const struct child_opts *o, int64_t deadline, struct child_result *r)
{
    for (;;) {
        char tmp[4096];
        struct pollfd p = { fd, POLLIN, 0 };
        int left = -1;
        if (deadline) {
            int64_t l = deadline - now_ms();
            if (l <= 0)
                return 1;
            left = l > INT32_MAX ? INT32_MAX : (int)l;
        }
        int n = poll(&p, 1, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            return 1;
        ssize_t k = read(fd, tmp, sizeof tmp);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0)
            return 0;
        size_t keep = o->outlen - 1 - r->used;
        if ((size_t)k < keep)
            keep = (size_t)k;
        else
            r->truncated |= (size_t)k > keep;
        memcpy(o->out + r->used, tmp, keep);
        r->used += keep;
        o->out[r->used] = '\0';
    }
}

/* waitpid for pid; past deadline (0: none) SIGKILL it and wait on.
 * 0, or -1 with errno set. *killed: the deadline passed. */
static int reap(pid_t pid, int64_t deadline, int *status, int *killed)
{
    for (;;) {
        pid_t w = waitpid(pid, status, deadline ? WNOHANG : 0);
        if (w == pid)
            return 0;
        if (w < 0 && errno != EINTR)
            return -1;
        if (w != 0)
            continue;
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            kill(pid, SIGKILL);
            *killed = 1;
            deadline = 0;
            continue;
        }
        poll(NULL, 0, left < CHILD_REAP_POLL_MS ? (int)left : CHILD_REAP_POLL_MS);
    }
}

int child_run(char *const argv[], const struct child_opts *o, struct child_result *r, char *err,
              size_t errlen)
{
    static const struct child_opts zero;
    struct child_result scratch;
    int in = -1, pfd[2] = { -1, -1 }, rc = CHILD_E_SYS, killed = 0, e;
    int64_t deadline = 0;
    pid_t pid = -1;

    if (!o)
        o = &zero;
    if (!r)
        r = &scratch;
    memset(r, 0, sizeof *r);
    int capture = o->out && o->outlen;
    if (capture)
        o->out[0] = '\0';
    if (o->in && (in = memfd_of(o->in, o->inlen, err, errlen)) < 0) {
        r->error = errno;
        goto done;
    }
    if (capture && pipe2(pfd, O_CLOEXEC) != 0) {
        r->error = errno;
        errbuf_set(err, errlen, "pipe: %s", strerror(errno));
        goto done;
    }
    if ((e = start(argv, in, pfd[1], o->flags, &pid)) != 0) {
        r->error = e;
        errbuf_set(err, errlen, "cannot run '%s': %s", argv[0], strerror(e));
        rc = CHILD_E_START;
        goto done;
    }
    r->started = 1;
    /* Ours closed, EOF comes when the child (and whatever it passed the
     * pipe to) is gone. */
    if (pfd[1] >= 0)
        close(pfd[1]);
    pfd[1] = -1;
    if (o->timeout_ms > 0)
        deadline = now_ms() + o->timeout_ms;
    if (capture && drain(pfd[0], o, deadline, r)) {
        kill(pid, SIGKILL);
        killed = 1;
        deadline = 0;
    }
    e = reap(pid, deadline, &r->status, &killed);
    if (e != 0) {
        r->error = errno;
        errbuf_set(err, errlen, "waitpid: %s", strerror(errno));
        goto done;
    }
    rc = killed ? CHILD_E_TIMEOUT : CHILD_OK;
    if (killed)
        errbuf_set(err, errlen, "'%s' still running after %d ms: killed", argv[0], o->timeout_ms);
done:
    for (int i = 0; i < 2; i++)
        if (pfd[i] >= 0)
            close(pfd[i]);
    if (in >= 0)
        close(in);
    return rc;
}

int child_start(char *const argv[], unsigned flags, pid_t *pid, int *out_fd, char *err,
                size_t errlen)
{
    int p[2], e;
    pid_t child;

    if (pipe2(p, O_CLOEXEC) != 0) {
        errbuf_set(err, errlen, "pipe: %s", strerror(errno));
        return CHILD_E_SYS;
    }
    e = start(argv, -1, p[1], flags, &child);
    close(p[1]);
    if (e != 0) {
        close(p[0]);
        errbuf_set(err, errlen, "cannot run '%s': %s", argv[0], strerror(e));
        return CHILD_E_START;
    }
    *pid = child;
    *out_fd = p[0];
    return CHILD_OK;
}

int child_exit_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

size_t child_chomp(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return n;
}
