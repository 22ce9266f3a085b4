/* bench_mm - what the host's memory management costs (issue 13).
 *
 * usage: bench_mm [MIB [FORKS]]
 *
 * A start of a guest is mostly page faults (one QEMU start takes ~4,900)
 * and forks of shoald (libvirt's embedded driver), so how fast a
 * host does those decides how a boot storm and a start at 900 running
 * go. This prints, for an anonymous mapping of MIB MiB (default 256, 4 KiB
 * pages, no THP):
 *   - first touch: one write per page into fresh memory (a fault, a
 *     zeroed page, a page table entry), in us per page, against a second
 *     pass over the same pages (no fault: the memory's own speed), the
 *     baseline of the same run, and their ratio;
 *   - fork + _exit + waitpid with those MIB MiB touched against the same
 *     with nothing touched (FORKS of each, default 20; median), and their
 *     ratio, i.e. what the page tables of MIB MiB add to a fork.
 * Both are the host's own (docs/benchmarks.md: on the machine of
 * 2026-12-07 a first touch cost ~400 writes to a mapped page): compare
 * them before comparing start figures between machines. Not a test:
 * nothing is judged. Run: ctest -L bench -R bench_mm -V.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median ms of n fork + _exit + waitpid; -1 when a fork fails */
static double fork_ms(int n)
{
    double *t = calloc((size_t)n, sizeof *t), med = -1;
    int i;

    if (!t)
        return -1;
    for (i = 0; i < n; i++) {
        double t0 = now_s();
        pid_t c = fork();
        if (c < 0)
            goto out;
        if (c == 0)
            _exit(0);
        if (waitpid(c, NULL, 0) != c)
            goto out;
        t[i] = (now_s() - t0) * 1e3;
    }
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    med = t[n / 2];
out:
    free(t);
    return med;
}

int main(int argc, char **argv)
{
    long mib = argc > 1 ? strtol(argv[1], NULL, 10) : 256;
    int forks = argc > 2 ? atoi(argv[2]) : 20;
    size_t len, pages, i;
    volatile char *p;
    double t0, first_us, again_us, fork0, forkn;

    if (mib < 1 || mib > 65536 || forks < 1 || forks > 10000) {
        fprintf(stderr, "usage: bench_mm [MIB 1..65536 [FORKS 1..10000]]\n");
        return 2;
    }
    len = (size_t)mib << 20;
    pages = len / PAGE;

    fork0 = fork_ms(forks);
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || fork0 < 0) {
        perror("bench_mm: mmap or fork");
        return 1;
    }
    /* 4 KiB pages: THP would turn 512 faults into one */
    (void)madvise((void *)p, len, MADV_NOHUGEPAGE);

    t0 = now_s();
    for (i = 0; i < pages; i++)
        p[i * PAGE] = 1;
    first_us = (now_s() - t0) * 1e6 / (double)pages;
    t0 = now_s();
    for (i = 0; i < pages; i++)
        p[i * PAGE] = 2;
    again_us = (now_s() - t0) * 1e6 / (double)pages;
    forkn = fork_ms(forks);
    if (forkn < 0) {
        perror("bench_mm: fork");
        return 1;
    }

    printf("first touch of a 4 KiB page: %.3f us; a write to a page already mapped (same run): "
           "%.3f us: %.0fx\n",
           first_us, again_us, again_us > 0 ? first_us / again_us : 0.0);
    printf("fork + exit + wait with %ld MiB touched: %.2f ms; with none (same run): %.2f ms: "
           "%.1fx (median of %d)\n",
           mib, forkn, fork0, fork0 > 0 ? forkn / fork0 : 0.0, forks);
    munmap((void *)p, len);
    return 0;
}
