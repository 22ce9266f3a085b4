/* bench_restore - libvirt's save/restore of a booted guest against a cold
 * create, in the same run (issue 15: "snapshots where they beat the pool";
 * the pool's own figures come from bench_pool.sh). For each of N guests
 * (the reference kernel's sleep app, 32 MiB, 1 vCPU, no network, qboot,
 * shoal's domain XML): virDomainCreateXML to its ready record (the cold
 * baseline), its QEMU's PSS once idle, virDomainSave to a file (the guest
 * stops; its size is what a saved guest costs on disk), virDomainRestore
 * (a new QEMU that resumes the guest where it was: "ready" again), and the
 * restored QEMU's PSS once idle.
 *
 * usage: bench_restore SLEEP_ELF [N] [qemu|kvm]   (default 10, qemu)
 * Prints p50/p99 of create->ready, save and restore, the file size and
 * both PSS figures. Its own embed root under /tmp, removed at the end. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "bench_boot.h"
#include "domxml.h"

/* PSS in KiB of the QEMU whose command line names guest=NAME, 0 if none. */
static long qemu_pss_kib(const char *name)
{
    char want[128], path[300], buf[8192];
    DIR *d = opendir("/proc");
    struct dirent *e;
    long pss = 0;
    snprintf(want, sizeof want, "guest=%s,", name);
    while (d && (e = readdir(d)) && !pss) {
        int fd;
        ssize_t n;
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        if ((fd = open(path, O_RDONLY)) < 0)
            continue;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        for (ssize_t i = 0; i < n; i++)
            if (!buf[i])
                buf[i] = ' ';
        buf[n] = 0;
        if (!strstr(buf, want))
            continue;
        snprintf(path, sizeof path, "/proc/%s/smaps_rollup", e->d_name);
        FILE *f = fopen(path, "r");
        while (f && fgets(buf, sizeof buf, f))
            if (sscanf(buf, "Pss: %ld", &pss) == 1)
                break;
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return pss;
}

/* The embedded driver needs libvirt's event loop running. */
static void *event_loop(void *arg)
{
    (void)arg;
    for (;;)
        virEventRunDefaultImpl();
    return NULL;
}

int main(int argc, char **argv)
{
    const char *kernel = argc > 1 ? argv[1] : NULL;
    int n = argc > 2 ? atoi(argv[2]) : 10, done = 0;
    const char *dtype = argc > 3 ? argv[3] : "qemu";
    char root[] = "/tmp/shoal-bench-restore.XXXXXX", path[512], save[512], name[64];
    double *create = calloc((size_t)n + 1, sizeof *create),
           *savet = calloc((size_t)n + 1, sizeof *savet),
           *restore = calloc((size_t)n + 1, sizeof *restore);
    long pss_cold = 0, pss_restored = 0;
    long long fsize = 0;
    virConnectPtr conn;
    FILE *f;

    if (!kernel || n < 1 || !create || !savet || !restore) {
        fprintf(stderr, "usage: bench_restore SLEEP_ELF [N] [qemu|kvm]\n");
        return 2;
    }
    /* as shoald's embedded connection does (node.h guest_thp): its QEMUs
     * map no transparent huge pages, so PSS compares with shoald's */
    prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
    if (!mkdtemp(root))
        return 1;
    snprintf(path, sizeof path, "%s/etc", root);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/etc/qemu.conf", root);
    if (!(f = fopen(path, "w")))
        return 1;
    /* The same settings node_open writes for shoald's embedded root. */
    fputs("stdio_handler = \"file\"\nuser = \"+0\"\ngroup = \"+0\"\n", f);
    fclose(f);
    snprintf(path, sizeof path, "qemu:///embed?root=%s", root);
    pthread_t loop;
    if (virEventRegisterDefaultImpl() != 0 || pthread_create(&loop, NULL, event_loop, NULL) != 0)
        return 1;
    pthread_detach(loop);
    if (!(conn = virConnectOpen(path))) {
        fprintf(stderr, "cannot open %s: %s\n", path, virGetLastErrorMessage());
        return 1;
    }
    for (int i = 0; i < n + 1; i++) { /* one warm-up */
        virDomainPtr d;
        double t0, tc;
        struct stat st;
        snprintf(name, sizeof name, "bench-%d", i);
        snprintf(save, sizeof save, "%s/%s.save", root, name);
        if (!(d = bench_boot_sleep(conn, root, kernel, dtype, name, &tc)))
            break;
        usleep(1500 * 1000); /* idle */
        long pc = qemu_pss_kib(name);
        t0 = now_ms();
        if (virDomainSave(d, save) != 0) {
            fprintf(stderr, "save failed: %s\n", virGetLastErrorMessage());
            virDomainDestroy(d);
            virDomainFree(d);
            break;
        }
        double ts = now_ms() - t0;
        virDomainFree(d);
        if (stat(save, &st) == 0)
            fsize = (long long)st.st_size;
        t0 = now_ms();
        if (virDomainRestore(conn, save) != 0) {
            fprintf(stderr, "restore failed: %s\n", virGetLastErrorMessage());
            break;
        }
        double tr = now_ms() - t0;
        usleep(1500 * 1000);
        long pr = qemu_pss_kib(name);
        if ((d = virDomainLookupByName(conn, name))) {
            virDomainDestroy(d);
            virDomainFree(d);
        }
        unlink(save);
        if (i == 0)
            continue;
        create[done] = tc;
        savet[done] = ts;
        restore[done] = tr;
        pss_cold += pc;
        pss_restored += pr;
        done++;
    }
    virConnectClose(conn);
    if (done) {
        printf("save/restore bench: %d guests, sleep image, 32 MiB, domain type %s\n", done, dtype);
        printf("  cold create -> ready: p50 %7.1f ms  p99 %7.1f ms\n", pct(create, done, 0.5),
               pct(create, done, 0.99));
        printf("  virDomainSave:        p50 %7.1f ms  p99 %7.1f ms  (file %.1f MiB)\n",
               pct(savet, done, 0.5), pct(savet, done, 0.99), fsize / 1048576.0);
        printf("  virDomainRestore:     p50 %7.1f ms  p99 %7.1f ms  (%.2fx of cold)\n",
               pct(restore, done, 0.5), pct(restore, done, 0.99),
               pct(restore, done, 0.5) / pct(create, done, 0.5));
        printf("  idle QEMU PSS: cold-booted %.2f MiB, restored %.2f MiB\n",
               pss_cold / 1024.0 / done, pss_restored / 1024.0 / done);
    }
    snprintf(path, sizeof path, "rm -rf '%s'", root);
    if (system(path) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    free(create);
    free(savet);
    free(restore);
    return done ? 0 : 1;
}
