/*
 * test_child.c - daemon/child.h: programs run without a shell. Output
 * captured (stdout and stderr), exit codes and signals, a program that
 * does not exist, stdin fed (larger than a pipe holds), output beyond the
 * bound dropped safely, the time limit, a clean signal state in the child
 * while this process blocks and ignores signals, EINTR storms, child_start
 * with its own process group, and no descriptor left open here or passed
 * to the child. Runs /bin/sh, cat, wc, head, ls and grep; under a second.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"

/* Descriptors open in this process (the listing's own excluded). */
static int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

/* Descriptors 3 and up open here without O_CLOEXEC (a test runner's):
 * a child inherits those whatever child.c does. */
static int inheritable_fds(void)
{
    int n = 0;
    for (int fd = 3; fd < 1024; fd++) {
        int fl = fcntl(fd, F_GETFD);
        n += fl >= 0 && !(fl & FD_CLOEXEC);
    }
    return n;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run `sh -c SCRIPT` capturing into out; the child_run status. */
static int sh_c(const char *script, char *out, size_t outlen, struct child_result *r)
{
    char *argv[] = { "/bin/sh", "-c", (char *)script, NULL };
    struct child_opts o = { .out = out, .outlen = outlen };
    return child_run(argv, &o, r, NULL, 0);
}

static void captures_stdout_and_stderr(void **state)
{
    char out[256];
    struct child_result r;
    (void)state;

    assert_int_equal(sh_c("echo one; echo two >&2; printf three", out, sizeof out, &r), CHILD_OK);
    assert_true(r.started);
    assert_string_equal(out, "one\ntwo\nthree");
    assert_int_equal(r.used, strlen(out));
    assert_false(r.truncated);
    assert_int_equal(child_exit_code(r.status), 0);
    assert_int_equal(child_chomp(out), 13);

    strcpy(out, "a line\r\n\n");
    assert_int_equal(child_chomp(out), 6);
    assert_string_equal(out, "a line");

    /* no output at all, and no opts or result wanted */
    assert_int_equal(sh_c("true", out, sizeof out, &r), CHILD_OK);
    assert_string_equal(out, "");
    assert_int_equal(r.used, 0);
    char *t[] = { "true", NULL };
    assert_int_equal(child_run(t, NULL, NULL, NULL, 0), CHILD_OK);
}

static void exit_codes_and_signals(void **state)
{
    char out[64];
    struct child_result r;
    (void)state;

    assert_int_equal(sh_c("exit 3", out, sizeof out, &r), CHILD_OK);
    assert_int_equal(child_exit_code(r.status), 3);
    assert_int_equal(sh_c("echo bye; exit 255", out, sizeof out, &r), CHILD_OK);
    assert_int_equal(child_exit_code(r.status), 255);
    assert_string_equal(out, "bye\n");
    /* a program that fails is still CHILD_OK: it ran */
    assert_int_equal(sh_c("kill -9 $$", out, sizeof out, &r), CHILD_OK);
    assert_int_equal(child_exit_code(r.status), -1);
    assert_true(WIFSIGNALED(r.status));
    assert_int_equal(WTERMSIG(r.status), SIGKILL);
}

static void missing_program(void **state)
{
    char out[64] = "stale", err[256];
    struct child_result r;
    struct child_opts o = { .out = out, .outlen = sizeof out };
    char *abs[] = { "/nonexistent/shoal-no-such-program", NULL };
    char *bare[] = { "shoal-no-such-program", "x", NULL };
    (void)state;

    assert_int_equal(child_run(abs, &o, &r, err, sizeof err), CHILD_E_START);
    assert_false(r.started);
    assert_int_equal(r.error, ENOENT);
    assert_string_equal(err, "cannot run '/nonexistent/shoal-no-such-program': "
                             "No such file or directory");
    assert_string_equal(out, "");
    assert_int_equal(child_run(bare, &o, &r, err, sizeof err), CHILD_E_START);
    assert_int_equal(r.error, ENOENT);
    assert_non_null(strstr(err, "'shoal-no-such-program'"));
    /* not executable */
    char *dir[] = { "/tmp", NULL };
    assert_int_equal(child_run(dir, &o, &r, err, sizeof err), CHILD_E_START);
    assert_int_equal(r.error, EACCES);

    /* CHILD_NOSEARCH: a bare name is a path here, not a PATH lookup */
    pid_t pid = -1;
    int fd = -1;
    char *sh[] = { "sh", "-c", "true", NULL };
    assert_int_equal(child_start(sh, CHILD_NOSEARCH, &pid, &fd, err, sizeof err), CHILD_E_START);
    assert_int_equal(pid, -1);
    assert_int_equal(fd, -1);
    assert_non_null(strstr(err, "cannot run 'sh'"));
}

static void stdin_fed(void **state)
{
    char out[64];
    struct child_result r;
    (void)state;

    char *cat[] = { "cat", NULL };
    struct child_opts o = {
        .in = "fed\nthrough stdin", .inlen = 17, .out = out, .outlen = sizeof out
    };
    assert_int_equal(child_run(cat, &o, &r, NULL, 0), CHILD_OK);
    assert_string_equal(out, "fed\nthrough stdin");

    /* 1 MiB: more than a pipe holds, with a NUL inside */
    size_t big = 1u << 20;
    char *in = malloc(big);
    assert_non_null(in);
    memset(in, 'x', big);
    in[100] = '\0';
    char *wc[] = { "wc", "-c", NULL };
    struct child_opts w = { .in = in, .inlen = big, .out = out, .outlen = sizeof out };
    assert_int_equal(child_run(wc, &w, &r, NULL, 0), CHILD_OK);
    assert_int_equal(atol(out), (long)big);
    free(in);

    /* no input: /dev/null, so a reader ends at once */
    struct child_opts none = { .out = out, .outlen = sizeof out };
    assert_int_equal(child_run(wc, &none, &r, NULL, 0), CHILD_OK);
    assert_int_equal(atol(out), 0);
}

static void output_bounded(void **state)
{
    char out[64];
    struct child_result r;
    (void)state;

    /* 200 kB into 64 bytes: the child is drained (never blocks on a full
     * pipe), out keeps 63 bytes and its NUL */
    memset(out, 'Z', sizeof out);
    assert_int_equal(sh_c("head -c 200000 /dev/zero | tr '\\0' a", out, sizeof out, &r), CHILD_OK);
    assert_int_equal(child_exit_code(r.status), 0);
    assert_true(r.truncated);
    assert_int_equal(r.used, sizeof out - 1);
    assert_int_equal(strlen(out), sizeof out - 1);
    assert_int_equal(out[0], 'a');

    /* exactly outlen-1 bytes is not truncated; one more is */
    char small[5];
    assert_int_equal(sh_c("printf 1234", small, sizeof small, &r), CHILD_OK);
    assert_string_equal(small, "1234");
    assert_false(r.truncated);
    assert_int_equal(sh_c("printf 12345", small, sizeof small, &r), CHILD_OK);
    assert_string_equal(small, "1234");
    assert_true(r.truncated);

    /* outlen 1: only the NUL */
    assert_int_equal(sh_c("echo x", small, 1, &r), CHILD_OK);
    assert_string_equal(small, "");
    assert_true(r.truncated);
}

static void time_limit(void **state)
{
    char out[64], err[128];
    struct child_result r;
    (void)state;

    /* exec: no grandchild left holding the pipe */
    char *argv[] = { "/bin/sh", "-c", "echo started; exec sleep 10", NULL };
    struct child_opts o = { .out = out, .outlen = sizeof out, .timeout_ms = 200 };
    int64_t t0 = now_ms();
    assert_int_equal(child_run(argv, &o, &r, err, sizeof err), CHILD_E_TIMEOUT);
    assert_true(now_ms() - t0 < 3000);
    assert_true(r.started);
    assert_true(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL);
    assert_string_equal(out, "started\n");
    assert_non_null(strstr(err, "still running after 200 ms"));

    /* output to /dev/null: the limit still holds */
    struct child_opts quiet = { .timeout_ms = 100 };
    assert_int_equal(child_run(argv, &quiet, &r, NULL, 0), CHILD_E_TIMEOUT);
    /* and one that ends in time is CHILD_OK */
    char *quick[] = { "/bin/sh", "-c", "exit 4", NULL };
    assert_int_equal(child_run(quick, &quiet, &r, NULL, 0), CHILD_OK);
    assert_int_equal(child_exit_code(r.status), 4);
}

static void signals_reset_in_child(void **state)
{
    char out[256];
    struct child_result r;
    sigset_t block, old;
    struct sigaction sig_ign = { .sa_handler = SIG_IGN }, oldpipe;
    (void)state;

    /* as shoald's threads: SIGINT/SIGTERM blocked, SIGPIPE ignored */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &block, &old), 0);
    assert_int_equal(sigaction(SIGPIPE, &sig_ign, &oldpipe), 0);
    char *argv[] = { "grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status", NULL };
    struct child_opts o = { .out = out, .outlen = sizeof out };
    int rc = child_run(argv, &o, &r, NULL, 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    sigaction(SIGPIPE, &oldpipe, NULL);
    assert_int_equal(rc, CHILD_OK);
    unsigned long long blk = 1, ign = 1;
    assert_int_equal(sscanf(out, "SigBlk: %llx SigIgn: %llx", &blk, &ign), 2);
    assert_int_equal(blk, 0);
    /* no standard signal ignored (glibc's posix_spawn leaves its own
     * internal ones, 32 and 33, ignored: nothing a program uses) */
    assert_int_equal(ign & 0x7fffffffull, 0); /* bit n-1: signal n */
}

static volatile sig_atomic_t ticks;
static void on_alarm(int sig)
{
    (void)sig;
    ticks++;
}

static void eintr_storm(void **state)
{
    char out[64];
    struct child_result r;
    struct sigaction sa = { .sa_handler = on_alarm }, old; /* no SA_RESTART */
    struct itimerval it = { { 0, 500 }, { 0, 500 } }, off = { { 0, 0 }, { 0, 0 } };
    (void)state;

    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    ticks = 0;
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    int rc = sh_c("sleep 0.2; echo done", out, sizeof out, &r);
    char *argv[] = { "/bin/sh", "-c", "exec sleep 5", NULL };
    struct child_opts o = { .timeout_ms = 150 };
    int rc2 = child_run(argv, &o, NULL, NULL, 0);
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old, NULL);
    assert_int_equal(rc, CHILD_OK);
    assert_string_equal(out, "done\n");
    assert_int_equal(rc2, CHILD_E_TIMEOUT);
    assert_true(ticks > 10);
}

static void start_own_group(void **state)
{
    char buf[64], err[128];
    pid_t pid = -1;
    int fd = -1, st;
    ssize_t n = 0, k;
    (void)state;

    char *argv[] = { "/bin/sh", "-c", "echo hi >&2; exec sleep 5", NULL };
    assert_int_equal(child_start(argv, CHILD_PGROUP, &pid, &fd, err, sizeof err), CHILD_OK);
    assert_true(pid > 0);
    assert_true(fd > 2);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    while (n < 3 && (k = read(fd, buf + n, sizeof buf - 1 - (size_t)n)) > 0)
        n += k;
    buf[n] = '\0';
    assert_string_equal(buf, "hi\n");
    assert_int_equal(getpgid(pid), pid);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_int_equal(read(fd, buf, sizeof buf), 0); /* EOF: its only writer is gone */
    close(fd);

    /* without CHILD_PGROUP it stays in ours */
    char *quick[] = { "/bin/sh", "-c", "exec sleep 5", NULL };
    assert_int_equal(child_start(quick, 0, &pid, &fd, err, sizeof err), CHILD_OK);
    assert_int_equal(getpgid(pid), getpgrp());
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    close(fd);
}

static void no_descriptor_leaks(void **state)
{
    char out[256], err[128];
    struct child_result r;
    (void)state;

    int before = fd_count();
    /* every path once: captured, stdin, missing program, timeout, start */
    char *ls[] = { "ls", "/proc/self/fd", NULL };
    struct child_opts o = { .in = "x", .inlen = 1, .out = out, .outlen = sizeof out };
    assert_int_equal(child_run(ls, &o, &r, NULL, 0), CHILD_OK);
    /* the child holds 0, 1, 2 and ls's own listing, nothing of ours */
    int lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 4 + inheritable_fds());
    char *missing[] = { "/nonexistent/x", NULL };
    assert_int_equal(child_run(missing, &o, &r, err, sizeof err), CHILD_E_START);
    char *slow[] = { "/bin/sh", "-c", "exec sleep 5", NULL };
    struct child_opts t = { .in = "y", .inlen = 1, .out = out, .outlen = 8, .timeout_ms = 50 };
    assert_int_equal(child_run(slow, &t, &r, NULL, 0), CHILD_E_TIMEOUT);
    assert_int_equal(sh_c("head -c 100000 /dev/zero", out, 8, &r), CHILD_OK);
    pid_t pid;
    int fd, st;
    assert_int_equal(child_start(slow, 0, &pid, &fd, err, sizeof err), CHILD_OK);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    close(fd);
    assert_int_equal(child_start(missing, 0, &pid, &fd, err, sizeof err), CHILD_E_START);
    assert_int_equal(fd_count(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(captures_stdout_and_stderr),
        cmocka_unit_test(exit_codes_and_signals),
        cmocka_unit_test(missing_program),
        cmocka_unit_test(stdin_fed),
        cmocka_unit_test(output_bounded),
        cmocka_unit_test(time_limit),
        cmocka_unit_test(signals_reset_in_child),
        cmocka_unit_test(eintr_storm),
        cmocka_unit_test(start_own_group),
        cmocka_unit_test(no_descriptor_leaks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
