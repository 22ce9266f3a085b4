/*
 * bench_delivery - image delivery to a remote host through libvirt's storage
 * API (daemon/nodestore.h), the path node_start takes for a host elsewhere.
 *
 * usage: bench_delivery URI FILE ROUNDS
 *   FILE must be named <sha256 of its bytes>.<ext> (bench_delivery.sh makes
 *   it). Each round removes the host's volume (nstore_gc keeping nothing)
 *   and delivers FILE again, timed; then one more delivery, which must be a
 *   cache hit. Prints one line per round and
 *   "delivery MiB/s: <median>" (the median round).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <libvirt/virterror.h>

#include "nodestore.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Errors reach the user through err buffers, not libvirt's stderr. */
static void quiet(void *user, virErrorPtr e)
{
    (void)user;
    (void)e;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    char err[512], path[NSTORE_PATH_MAX];
    double rates[64];
    struct stat sb;
    virConnectPtr c;
    int rounds, uploaded = 0, rc = 1;

    if (argc != 4 || (rounds = atoi(argv[3])) < 1 || rounds > 64 || stat(argv[2], &sb) != 0) {
        fprintf(stderr, "usage: bench_delivery URI FILE ROUNDS(1-64)\n");
        return 2;
    }
    virSetErrorFunc(NULL, quiet);
    if (!(c = virConnectOpen(argv[1]))) {
        fprintf(stderr, "cannot connect to %s\n", argv[1]);
        return 1;
    }
    for (int i = 0; i < rounds; i++) {
        double t0, dt;
        if (nstore_gc(c, NULL, 0, NULL, 0, NULL, err, sizeof err) != NSTORE_OK) {
            fprintf(stderr, "gc: %s\n", err);
            goto out;
        }
        t0 = now_s();
        if (nstore_image(c, argv[2], path, sizeof path, &uploaded, err, sizeof err) != NSTORE_OK ||
            !uploaded) {
            fprintf(stderr, "round %d: %s\n", i, uploaded ? err : "not uploaded");
            goto out;
        }
        dt = now_s() - t0;
        rates[i] = (double)sb.st_size / 1048576.0 / dt;
        printf("round %d: %lld bytes to %s in %.3f s: %.1f MiB/s\n", i, (long long)sb.st_size, path,
               dt, rates[i]);
    }
    if (nstore_image(c, argv[2], path, sizeof path, &uploaded, err, sizeof err) != NSTORE_OK ||
        uploaded) {
        fprintf(stderr, "the cached volume was not used: %s\n", uploaded ? "uploaded" : err);
        goto out;
    }
    qsort(rates, (size_t)rounds, sizeof rates[0], cmp_d);
    printf("delivery MiB/s: %.1f\n", rates[rounds / 2]);
    rc = 0;
out:
    (void)nstore_gc(c, NULL, 0, NULL, 0, NULL, err, sizeof err);
    virConnectClose(c);
    return rc;
}
