/* test_fork_gate.c - fork from a process whose other threads allocate,
 * with a child that allocates before it exits, as libvirt's fork children
 * do (tests/sanitize/asan_fork_gate.c says why this hangs under GCC 12's
 * ASan without the gate).
 *
 * usage: test_fork_gate [FORKS]   (default 400)
 * Fails when the gate is not what malloc resolves to in this process, or
 * when a child has not exited 5 s after its fork (it is killed, and the
 * test says which fork hung). Without the gate this hung within a few
 * hundred forks on a 2-core machine (docs/benchmarks.md has no figure for
 * it: this is a correctness test, not a benchmark).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void *__interceptor_malloc(size_t n);

static atomic_int stop;

/* Allocate and free in the size classes a fork child uses (small, a
 * directory stream's ~32 KiB buffer, large), so that allocator locks are
 * often held when the main thread forks. */
static void *churn(void *arg)
{
    unsigned seed = (unsigned)(size_t)arg;
    void *keep[64] = { 0 };
    while (!atomic_load(&stop)) {
        unsigned i = (unsigned)rand_r(&seed) % 64;
        static const size_t sizes[] = { 24, 100, 4000, 32816, 40000, 200000 };
        free(keep[i]);
        keep[i] = malloc(sizes[(unsigned)rand_r(&seed) % 6]);
    }
    for (int i = 0; i < 64; i++)
        free(keep[i]);
    return NULL;
}

static void child(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        while (readdir(d))
            ;
        closedir(d);
    }
    char *p = malloc(40000);
    char *q = strdup("child");
    free(p);
    free(q);
    _exit(0);
}

/* 1 when child pid exited with status 0 within 5 s; else kills it. */
static int reap(pid_t pid)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) && WEXITSTATUS(st) == 0;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= 5) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return 0;
        }
        usleep(200);
    }
}

int main(int argc, char **argv)
{
    int forks = argc > 1 ? atoi(argv[1]) : 400;
    int rc = 1;
    pthread_t th[3];
    int nth = 0;

    void *resolved = dlsym(RTLD_DEFAULT, "malloc");
    if (resolved == NULL || resolved == (void *)__interceptor_malloc) {
        fprintf(stderr, "FAIL: malloc resolves to libasan's (%p), not the fork gate\n", resolved);
        return 1;
    }
    for (; nth < 3; nth++)
        if (pthread_create(&th[nth], NULL, churn, (void *)(size_t)(nth + 1)) != 0)
            goto out;
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            goto out;
        }
        if (pid == 0)
            child();
        if (!reap(pid)) {
            fprintf(stderr, "FAIL: fork %d of %d: child did not exit within 5 s\n", i + 1, forks);
            goto out;
        }
    }
    printf("ok: %d forks, every child allocated and exited\n", forks);
    rc = 0;
out:
    atomic_store(&stop, 1);
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    return rc;
}
