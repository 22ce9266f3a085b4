/* bench_boot.h - what the daemon benches that drive libvirt themselves
 * share (bench_ready.c, bench_restore.c): a monotonic clock, percentiles,
 * and one reference `sleep` guest created through libvirt with shoal's
 * domain XML, timed to its ready record. Header-only (static functions):
 * each bench is one program. */
#ifndef SHOAL_BENCH_BOOT_H
#define SHOAL_BENCH_BOOT_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "domxml.h"

static inline double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile of v[0..n) (sorts v). */
static inline double pct(double *v, int n, double p)
{
    int i = (int)(p * (n - 1) + 0.5);
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[i];
}

static inline int file_has(const char *path, const char *needle)
{
    char buf[4096];
    int fd = open(path, O_RDONLY), n;
    if (fd < 0)
        return 0;
    n = (int)read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

/* Create domain `name` (sleep 600 s, 32 MiB, 1 vCPU, no network, qboot;
 * files under root) and wait up to 30 s for its ready record. The domain
 * (NULL on failure, with a message on stderr); *ms gets the time from
 * virDomainCreateXML to the record. */
static inline virDomainPtr bench_boot_sleep(virConnectPtr conn, const char *root,
                                            const char *kernel, const char *dtype, const char *name,
                                            double *ms)
{
    char console[512], status[512], err[512], *xml = NULL;
    struct domxml_spec s;
    virDomainPtr d;
    double t0;
    snprintf(console, sizeof console, "%s/%s.log", root, name);
    snprintf(status, sizeof status, "%s/%s.status", root, name);
    memset(&s, 0, sizeof s);
    s.name = name;
    s.virt = !strcmp(dtype, "kvm") ? DOMXML_VIRT_KVM : DOMXML_VIRT_QEMU;
    s.boot = DOMXML_BOOT_PVH;
    s.memory_mib = 32;
    s.vcpus = 1;
    s.kernel = kernel;
    s.cmdline = "-- 600";
    s.console_log = console;
    s.status_log = status;
    s.instance_id = name;
    if (domxml_render(&s, &xml, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    t0 = now_ms();
    d = virDomainCreateXML(conn, xml, 0);
    free(xml);
    if (!d) {
        fprintf(stderr, "create failed: %s\n", virGetLastErrorMessage());
        return NULL;
    }
    while (!file_has(status, "ready") && now_ms() - t0 < 30000)
        usleep(500);
    *ms = now_ms() - t0;
    return d;
}

#endif
