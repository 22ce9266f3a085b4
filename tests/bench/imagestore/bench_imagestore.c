/*
 * bench_imagestore.c - upload throughput of a 256 MiB image through the
 * streaming API, against `sha256sum FILE && cp FILE DEST` of the same file in
 * the same run, plus the peak memory growth during the upload.
 *
 * Targets (docs/imagestore.md): upload >= 0.5x the baseline, growth < 32 MiB.
 * Exit status 0 when both hold, 1 otherwise.
 * Usage: bench_imagestore [SIZE_MIB]   (default 256; TMPDIR picks the disk)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "img_testlib.h"

#define MiB  (UINT64_C(1) << 20)
#define RUNS 3

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* user + system CPU seconds of this process (who = RUSAGE_SELF) or of its
   waited-for children (RUSAGE_CHILDREN). */
static double cpu(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* kB value of a /proc/self/status field. */
static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* Reset VmHWM to the current RSS (Linux >= 4.0). */
static void reset_hwm(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY);
    if (fd >= 0) {
        if (write(fd, "5", 1) != 1)
            perror("clear_refs");
        close(fd);
    }
}

/*
 * Upload path into a new store at db. *secs: open to commit returned (the
 * image is durable in the WAL and visible); *secs_close: to the store closed,
 * i.e. the WAL checkpointed into the database and fsynced.
 */
static int upload_file(const char *db, const char *path, double *secs, double *secs_close,
                       long *growth_kb, char digest[IMG_DIGEST_LEN + 1])
{
    img_store *s = NULL;
    img_err e;
    img_info info;
    const size_t bufsz = 256 * 1024; /* what an HTTP server hands over per call */
    uint8_t *buf = malloc(bufsz);
    int fd = open(path, O_RDONLY);
    int rc = -1;
    long rss0 = status_kb("VmRSS");
    reset_hwm();
    double t0 = now();
    if (!buf || fd < 0 || img_store_open(db, NULL, &s, &e) != 0)
        goto out;
    img_upload *u = NULL;
    if (img_upload_begin(s, 0, &u, &e) != 0)
        goto out;
    for (;;) {
        ssize_t n = read(fd, buf, bufsz);
        if (n < 0) {
            snprintf(e.msg, sizeof e.msg, "read: %s", strerror(errno));
            img_upload_abort(u);
            goto out;
        }
        if (n == 0)
            break;
        if (img_upload_write(u, buf, (size_t)n, &e) != 0) {
            img_upload_abort(u);
            goto out;
        }
    }
    if (img_upload_commit(u, "bench", NULL, NULL, 0, &info, &e) != 0)
        goto out;
    *secs = now() - t0;
    *growth_kb = status_kb("VmHWM") - rss0;
    img_store_close(s); /* waits for the checkpointer, final checkpoint + fsync */
    s = NULL;
    *secs_close = now() - t0;
    memcpy(digest, info.digest, IMG_DIGEST_LEN + 1);
    img_info_clear(&info);
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "upload failed: %s\n", e.msg);
    img_store_close(s);
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 256;
    uint64_t size = mib * MiB;
    char *dir = imgt_mkdtemp(), *file = NULL, *dest = NULL, *cmd = NULL;
    double best_base = 1e9, best_up = 1e9, best_close = 1e9, cpu_base = 1e9, cpu_up = 1e9;
    long worst_growth = 0;
    char digest[IMG_DIGEST_LEN + 1] = "", want[IMG_DIGEST_LEN + 1];
    int status = 1;
    if (!dir || asprintf(&file, "%s/image.elf", dir) < 0 ||
        asprintf(&dest, "%s/copy.elf", dir) < 0 ||
        asprintf(&cmd, "sha256sum %s >/dev/null && cp %s %s", file, file, dest) < 0)
        return 1;

    /* the file: a valid PVH ELF padded to size (page cache warm, like an upload's source) */
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    uint8_t *buf = malloc(MiB);
    for (uint64_t off = 0; off < size; off += MiB) {
        imgt_fill(1, size, off, buf, MiB);
        if (write(fd, buf, MiB) != (ssize_t)MiB) {
            perror("write");
            return 1;
        }
    }
    close(fd);
    free(buf);
    imgt_digest(1, size, want);

    for (int r = 0; r < RUNS; r++) {
        unlink(dest);
        double t0 = now(), c0 = cpu(RUSAGE_CHILDREN);
        if (system(cmd) != 0) {
            fprintf(stderr, "baseline command failed\n");
            return 1;
        }
        double t = now() - t0, c = cpu(RUSAGE_CHILDREN) - c0;
        if (t < best_base)
            best_base = t;
        if (c < cpu_base)
            cpu_base = c;

        char *db = NULL, *cache = NULL;
        double secs, secs_close;
        long growth;
        if (asprintf(&db, "%s/run%d.db", dir, r) < 0 || asprintf(&cache, "%s.cache", db) < 0)
            return 1;
        double c1 = cpu(RUSAGE_SELF);
        if (upload_file(db, file, &secs, &secs_close, &growth, digest) != 0)
            return 1;
        if (cpu(RUSAGE_SELF) - c1 < cpu_up)
            cpu_up = cpu(RUSAGE_SELF) - c1;
        if (secs < best_up)
            best_up = secs;
        if (secs_close < best_close)
            best_close = secs_close;
        if (growth > worst_growth)
            worst_growth = growth;
        /* drop the store (keep the disk and page cache small for the next run) */
        char *rm = NULL;
        if (asprintf(&rm, "rm -rf %s %s-wal %s-shm %s", db, db, db, cache) > 0 && system(rm) != 0)
            fprintf(stderr, "cleanup failed\n");
        free(rm);
        free(db);
        free(cache);
    }
    double mbs_base = (double)mib / best_base, mbs_up = (double)mib / best_up;
    double mbs_close = (double)mib / best_close;
    double ratio = mbs_up / mbs_base;
    printf("image store upload benchmark, %llu MiB valid PVH ELF, best of %d runs\n",
           (unsigned long long)mib, RUNS);
    printf("  baseline `sha256sum FILE && cp FILE DEST`: %.3f s  %.0f MiB/s\n", best_base,
           mbs_base);
    printf("  upload: open, begin/write/commit:          %.3f s  %.0f MiB/s\n", best_up, mbs_up);
    printf("  same, until close (WAL checkpointed+fsync): %.3f s  %.0f MiB/s\n", best_close,
           mbs_close);
    printf("  ratio upload/baseline: %.2fx (target >= 0.50x); until close: %.2fx\n", ratio,
           mbs_close / mbs_base);
    printf("  CPU (user+sys, least of %d): baseline %.3f s, upload until close %.3f s "
           "(ratio %.2fx)\n",
           RUNS, cpu_base, cpu_up, cpu_base / cpu_up);
    printf("  peak memory growth during upload: %.1f MiB (target < 32 MiB)\n",
           (double)worst_growth / 1024.0);
    printf("  digest %s %s\n", digest, strcmp(digest, want) == 0 ? "(matches)" : "(MISMATCH)");
    if (ratio >= 0.5 && worst_growth < 32 * 1024 && strcmp(digest, want) == 0) {
        printf("  result: PASS\n");
        status = 0;
    } else {
        printf("  result: FAIL\n");
    }
    unlink(file);
    unlink(dest);
    imgt_rmtree(dir);
    free(file);
    free(dest);
    free(cmd);
    return status;
}
