/* bench_mem - host memory per idle guest (issue 13, "Memory per guest").
 *
 * usage: bench_mem KERNEL N [SETTLE_S [KSM_S]]
 *
 * Starts N idle guests (KERNEL, normally sleep.elf, "-- 3600", 32 MiB, one
 * vCPU, TCG) for every variant below, through libvirt's embedded QEMU
 * driver, with the domain XML domxml_render() produces (what shoald runs)
 * plus, per variant, a few edits of that XML and process settings the
 * QEMU inherits from the driver (no THP, PR_SET_MEMORY_MERGE, no address
 * space randomization: what node.c sets or could set). A variant whose
 * first guest writes no ready record within 60 s does not boot and is
 * dropped (said on stdout). Guests of all variants are
 * started round-robin and measured at the same time, so that file pages
 * shared by all QEMU processes are split the same way for every variant.
 * After SETTLE_S seconds (default 10) it reads every QEMU's /proc/PID/smaps
 * and prints, per variant, the average PSS per guest with a breakdown, and
 * the ratio to the first variant.
 *
 * With KSM_S > 0 (default 0) it then turns KSM on (run=1) for KSM_S
 * seconds, measures again, reports ksmd's CPU time over that window (and
 * per page scanned) and KSM's kernel metadata per guest (ksm_rmap_items x
 * 64 bytes, not part of PSS), and puts every KSM setting it touched back.
 *
 * BENCH_MEM_VARIANTS=name,name,... picks variants, in that order (default:
 * DEFAULT_VARIANTS; "all" for every one); the ratio column is against the
 * first.
 *
 * Variants with a NIC (V_NET) get one virtio NIC on a bridge that exists
 * only in a network namespace of this process (unshare(CLONE_NEWNET) before
 * anything else starts), and the guest command line a shoal.ip in it, as
 * shoald renders networked guests. No packet leaves that namespace.
 *
 * Cleans up its VMs and its temp root. Not run in CI (label bench). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "domxml.h"
#include "ksm.h"

#define MEM_MIB 32
#define MAXV    32 /* >= NVAR */

/* ---- variants ------------------------------------------------------------ */

/* An edit of the rendered XML: insert `text` before the first `at`, or with
 * text == NULL remove the first `at` (which must be present). */
struct edit {
    const char *at, *text;
};

struct variant {
    const char *name, *desc;
    struct edit edits[6];
    int proc; /* P_ flags: process settings QEMU inherits from us (fork+exec); V_NET */
};
#define P_NO_THP    1 /* prctl(PR_SET_THP_DISABLE): no transparent huge pages */
#define P_MERGE_ANY 2 /* prctl(PR_SET_MEMORY_MERGE): every anonymous page is KSM-able */
#define P_NO_ASLR   4 /* personality(ADDR_NO_RANDOMIZE): the same layout in every QEMU */
#define V_NET       8 /* render with a virtio NIC on the bench's namespaced bridge */
#define NET_BRIDGE  "shoalmem0"
#define NET_PREFIX  "10.213" /* guests 10.213.X.Y/16, the bridge .0.1, in our netns */
#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#endif

/* The pre-issue-13 shape is the rendered one minus what issue 13 added. */
#define UNDO_TB                                                                                    \
    {                                                                                              \
        "    <tcg>\n      <tb-cache unit='MiB'>", NULL                                             \
    }
#define ADD_TB(n)                                                                                  \
    {                                                                                              \
        "  </features>\n", "    <tcg>\n      <tb-cache unit='MiB'>" #n "</tb-cache>\n    </tcg>\n" \
    }

/* QEMU environment through libvirt's passthrough namespace (libvirt passes
 * QEMU only PATH, HOME, USER, LOGNAME, TMPDIR, LD_PRELOAD and
 * LD_LIBRARY_PATH of its own environment, plus LC_ALL=C). ENV is the
 * <qemu:env .../> lines. */
#define QEMU_ENV(env)                                                                              \
    { "<domain type='qemu'>", "<domain type='qemu' xmlns:qemu="                                    \
                              "'http://libvirt.org/schemas/domain/qemu/1.0'>\n" },                 \
        { "<domain type='qemu'>\n", NULL },                                                        \
    {                                                                                              \
        "</domain>", "  <qemu:commandline>\n" env "  </qemu:commandline>\n"                        \
    }
#define ENV1(n, v) "    <qemu:env name='" n "' value='" v "'/>\n"

#define MEMFD                                                                                      \
    {                                                                                              \
        "  <vcpu>", "  <memoryBacking>\n    <source type='memfd'/>\n"                              \
                    "    <access mode='shared'/>\n  </memoryBacking>\n"                            \
    }

static const struct variant variants[] = {
    { "before",
      "the shape before issue 13 (rendered minus vmport/smm off and no hpet)",
      { { "    <vmport state='off'/>\n", NULL },
        { "    <smm state='off'/>\n", NULL },
        { "  <clock offset='utc'>\n    <timer name='hpet' present='no'/>\n  </clock>\n", NULL } },
      0 },
    { "rendered",
      "domxml_render() output (QEMU forked by a process with THP allowed)",
      { { 0 } },
      0 },
    { "shoald",
      "rendered, QEMU forked by node.c with PR_SET_THP_DISABLE (what shoald runs)",
      { { 0 } },
      P_NO_THP },
    { "tb-1", "rendered + <tcg><tb-cache unit='MiB'>1</tb-cache></tcg>", { ADD_TB(1) }, 0 },
    { "tb-8", "rendered + <tcg><tb-cache unit='MiB'>8</tb-cache></tcg>", { ADD_TB(8) }, 0 },
    { "memfd",
      "rendered + <memoryBacking><source type='memfd'/><access mode='shared'/>",
      { MEMFD },
      0 },
    { "tb-1+memfd", "tb-1 and memfd (the XML-only way to no huge pages)", { ADD_TB(1), MEMFD }, 0 },
    { "nosharepages",
      "rendered + <memoryBacking><nosharepages/> (mem-merge=off)",
      { { "  <vcpu>", "  <memoryBacking>\n    <nosharepages/>\n  </memoryBacking>\n" } },
      0 },
    { "arena-1",
      "rendered + <qemu:env MALLOC_ARENA_MAX=1> (passthrough)",
      { { "<domain type='qemu'>", "<domain type='qemu' xmlns:qemu="
                                  "'http://libvirt.org/schemas/domain/qemu/1.0'>\n" },
        { "<domain type='qemu'>\n", NULL },
        { "</domain>", "  <qemu:commandline>\n    <qemu:env name='MALLOC_ARENA_MAX' "
                       "value='1'/>\n  </qemu:commandline>\n" } },
      0 },
    { "merge-any",
      "rendered, QEMU forked with PR_SET_MEMORY_MERGE (all anon memory KSM-able)",
      { { 0 } },
      P_MERGE_ANY },
    { "shoald+m-any",
      "shoald and merge-any (daemon/ksm.c, --ksm on)",
      { { 0 } },
      P_NO_THP | P_MERGE_ANY },
    /* Second round (all on top of shoald, i.e. without THP). */
    { "net",
      "shoald with a virtio NIC as rendered (<rom enabled='no'/>, guest has shoal.ip)",
      { { 0 } },
      P_NO_THP | V_NET },
    { "net-rom",
      "net with QEMU's default NIC option ROM (no <rom> element)",
      { { "      <rom enabled='no'/>\n", NULL } },
      P_NO_THP | V_NET },
    { "net-rombar",
      "net with <rom bar='off'/> instead of <rom enabled='no'/>",
      { { "      <rom enabled='no'/>\n", "      <rom bar='off'/>\n" },
        { "      <rom enabled='no'/>\n", NULL } },
      P_NO_THP | V_NET },
    { "no-acpi",
      "shoald without <acpi/> (-machine acpi=off; the guest can no longer power off)",
      { { "    <acpi/>\n", NULL } },
      P_NO_THP },
    { "i440fx-1.6",
      "shoald on machine pc-i440fx-1.6 (deprecated; no QEMU-built ACPI tables)",
      { { "machine='pc'", "machine='pc-i440fx-1.6'" }, { "machine='pc'", NULL } },
      P_NO_THP },
    { "q35",
      "shoald on machine q35",
      { { "machine='pc'", "machine='q35'" }, { "machine='pc'", NULL } },
      P_NO_THP },
    { "no-panic",
      "shoald without <panic model='isa'/>",
      { { "    <panic model='isa'/>\n", NULL } },
      P_NO_THP },
    { "discard",
      "shoald + <memoryBacking><discard/> (discard-data=on)",
      { { "  <vcpu>", "  <memoryBacking>\n    <discard/>\n  </memoryBacking>\n" } },
      P_NO_THP },
    { "env-arena1",
      "shoald + MALLOC_ARENA_MAX=1 (passthrough)",
      { QEMU_ENV(ENV1("MALLOC_ARENA_MAX", "1")) },
      P_NO_THP },
    { "env-trim",
      "shoald + MALLOC_ARENA_MAX=1 MALLOC_TRIM_THRESHOLD_=0 MALLOC_TOP_PAD_=0 "
      "MALLOC_MMAP_THRESHOLD_=65536 (passthrough)",
      { QEMU_ENV(ENV1("MALLOC_ARENA_MAX", "1") ENV1("MALLOC_TRIM_THRESHOLD_", "0")
                     ENV1("MALLOC_TOP_PAD_", "0") ENV1("MALLOC_MMAP_THRESHOLD_", "65536")) },
      P_NO_THP },
    { "env-tunables",
      "shoald + GLIBC_TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.tcache_count=0:"
      "glibc.malloc.trim_threshold=0 (passthrough)",
      { QEMU_ENV(ENV1("GLIBC_TUNABLES", "glibc.malloc.arena_max=1:glibc.malloc.tcache_count=0:"
                                        "glibc.malloc.trim_threshold=0")) },
      P_NO_THP },
    { "env-tcache0",
      "shoald + GLIBC_TUNABLES=glibc.malloc.tcache_count=0 (passthrough)",
      { QEMU_ENV(ENV1("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0")) },
      P_NO_THP },
    { "net+env",
      "net + env-tunables",
      { QEMU_ENV(ENV1("GLIBC_TUNABLES", "glibc.malloc.arena_max=1:glibc.malloc.tcache_count=0:"
                                        "glibc.malloc.trim_threshold=0")) },
      P_NO_THP | V_NET },
    { "no-aslr",
      "shoald, QEMU forked with personality(ADDR_NO_RANDOMIZE)",
      { { 0 } },
      P_NO_THP | P_NO_ASLR },
    { "no-aslr+m-any",
      "shoald+m-any and no-aslr (identical layouts: relocations and pointers merge)",
      { { 0 } },
      P_NO_THP | P_MERGE_ANY | P_NO_ASLR },
    { "net+na+m-any",
      "net and no-aslr+m-any",
      { { 0 } },
      P_NO_THP | P_MERGE_ANY | P_NO_ASLR | V_NET },
    { "na+m-any+env",
      "no-aslr+m-any + env-tunables",
      { QEMU_ENV(ENV1("GLIBC_TUNABLES", "glibc.malloc.arena_max=1:glibc.malloc.tcache_count=0:"
                                        "glibc.malloc.trim_threshold=0")) },
      P_NO_THP | P_MERGE_ANY | P_NO_ASLR },
};
#define NVAR (sizeof variants / sizeof variants[0])

/* What runs without BENCH_MEM_VARIANTS (the second round's question);
 * BENCH_MEM_VARIANTS=all runs every variant. */
#define DEFAULT_VARIANTS                                                                           \
    "shoald,net,net-rom,net-rombar,no-acpi,q35,no-panic,discard,env-arena1,env-tcache0,"           \
    "env-tunables,net+env,no-aslr,shoald+m-any,no-aslr+m-any,net+na+m-any,na+m-any+env"

static char *apply_edits(const char *xml, const struct variant *v)
{
    char *cur = strdup(xml);
    for (int i = 0; cur && i < 6 && v->edits[i].at; i++) {
        const struct edit *e = &v->edits[i];
        char *p = strstr(cur, e->at), *n;
        if (!p) {
            fprintf(stderr, "variant %s: '%s' not in the rendered XML\n", v->name, e->at);
            free(cur);
            return NULL;
        }
        size_t pre = (size_t)(p - cur), tl = e->text ? strlen(e->text) : 0;
        size_t skip = e->text ? 0 : strlen(e->at);
        n = malloc(strlen(cur) + tl + 1);
        memcpy(n, cur, pre);
        if (tl)
            memcpy(n + pre, e->text, tl);
        strcpy(n + pre + tl, p + skip);
        free(cur);
        cur = n;
    }
    return cur;
}

/* ---- helpers ------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int file_has(const char *path, const char *needle)
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

static long read_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static int write_str(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int rc = fputs(s, f) < 0;
    return (fclose(f) != 0 || rc) ? -1 : 0;
}

static volatile int loop_run = 1;
static void *event_loop(void *arg)
{
    (void)arg;
    while (loop_run)
        virEventRunDefaultImpl();
    return NULL;
}
static void loop_tick(int t, void *o)
{
    (void)t;
    (void)o;
}

/* ---- smaps --------------------------------------------------------------- */

/* B_HEAP and B_ROM2M are parts of B_ANON: QEMU's main malloc heap, and
 * anonymous 2 MiB mappings (QEMU 7.2's ACPI tables ROM block, reserved at
 * 2 MiB and zeroed whole at every reset). */
enum { B_RAM, B_TCG, B_ANON, B_HEAP, B_ROM2M, B_FILE, B_FILE_PD, B_QEMU_PD, B_CAP_PD, B_NB };
static const char *bucket_name[B_NB] = {
    "guest RAM",
    "TCG buffer",
    "heap+anon",
    "[heap]",
    "2M ROM",
    "file-backed",
    "file priv.dirty",
    "qemu-bin priv.dirty",
    "capstone priv.dirty",
};

struct mem {
    double pss, pd, ahp; /* rollup, KiB */
    double ksm;          /* KiB: /proc/PID/ksm_merging_pages */
    double rmap;         /* KiB of kernel memory: ksm_rmap_items (/proc/PID/ksm_stat) x 64 B,
                            KSM's per-page metadata, not in PSS */
    double b[B_NB];      /* KiB */
};

static int is_header(const char *l)
{
    const char *sp = strchr(l, ' ');
    return sp && sp - l > 2 && memchr(l, '-', (size_t)(sp - l)) && strlen(sp) > 5 &&
           (sp[1] == 'r' || sp[1] == '-') && (sp[4] == 'p' || sp[4] == 's');
}

static int measure(int pid, struct mem *m)
{
    char path[64], line[1024], perms[8] = "", name[512] = "";
    unsigned long lo = 0, hi = 0;
    FILE *f;
    memset(m, 0, sizeof *m);
    snprintf(path, sizeof path, "/proc/%d/smaps", pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (is_header(line)) {
            name[0] = 0;
            sscanf(line, "%lx-%lx %7s %*s %*s %*s %511[^\n]", &lo, &hi, perms, name);
            continue;
        }
        double kb;
        char key[64];
        if (sscanf(line, "%63[^:]: %lf kB", key, &kb) != 2)
            continue;
        int anon = name[0] == 0 || !strcmp(name, "[heap]") || !strncmp(name, "[stack", 6) ||
                   !strncmp(name, "[anon", 5);
        int memfd = !strncmp(name, "/memfd:", 7);
        int ram =
            (memfd || anon) && (hi - lo) == (unsigned long)MEM_MIB << 20 && !strchr(perms, 'x');
        if (!strcmp(key, "Pss")) {
            m->pss += kb;
            if (ram)
                m->b[B_RAM] += kb;
            else if (anon && strchr(perms, 'x'))
                m->b[B_TCG] += kb;
            else if (anon || memfd) {
                m->b[B_ANON] += kb;
                if (!strcmp(name, "[heap]"))
                    m->b[B_HEAP] += kb;
                else if (anon && hi - lo == 2ul << 20)
                    m->b[B_ROM2M] += kb;
            } else if (name[0] == '/')
                m->b[B_FILE] += kb;
            else
                m->b[B_ANON] += kb; /* [vdso], [vvar] */
        } else if (!strcmp(key, "Private_Dirty")) {
            m->pd += kb;
            if (name[0] == '/' && !memfd) {
                m->b[B_FILE_PD] += kb;
                if (strstr(name, "qemu-system"))
                    m->b[B_QEMU_PD] += kb;
                else if (strstr(name, "libcapstone"))
                    m->b[B_CAP_PD] += kb;
            }
        } else if (!strcmp(key, "AnonHugePages")) {
            m->ahp += kb;
        }
    }
    fclose(f);
    snprintf(path, sizeof path, "/proc/%d/ksm_merging_pages", pid);
    long kp = read_long(path);
    m->ksm = kp > 0 ? (double)kp * 4 : 0;
    snprintf(path, sizeof path, "/proc/%d/ksm_stat", pid);
    if ((f = fopen(path, "r"))) {
        long items;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "ksm_rmap_items %ld", &items) == 1)
                m->rmap = (double)items * 64 / 1024; /* sizeof(struct ksm_rmap_item) */
        fclose(f);
    }
    return 0;
}

/* ---- guests -------------------------------------------------------------- */

struct guest {
    int var;
    char name[64], status[512];
    virDomainPtr dom;
    int pid;
    struct mem m;
};

static int qemu_pid(const char *root, const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/run/qemu/%s.pid", root, name);
    return (int)read_long(path);
}

static void report(const char *title, struct guest *g, int ng, const int *sel, int nsel)
{
    struct mem avg[MAXV];
    int cnt[MAXV] = { 0 };
    memset(avg, 0, sizeof avg);
    for (int i = 0; i < ng; i++) {
        struct mem *a = &avg[g[i].var];
        if (g[i].pid <= 0)
            continue; /* did not boot (said when it was dropped) */
        if (measure(g[i].pid, &g[i].m) != 0) {
            printf("%s: QEMU pid %d is gone, not counted\n", g[i].name, g[i].pid);
            continue;
        }
        cnt[g[i].var]++;
        a->pss += g[i].m.pss;
        a->pd += g[i].m.pd;
        a->ahp += g[i].m.ahp;
        a->ksm += g[i].m.ksm;
        a->rmap += g[i].m.rmap;
        for (int b = 0; b < B_NB; b++)
            a->b[b] += g[i].m.b[b];
    }
    printf("\n%s (MiB per guest, average)\n", title);
    printf("%-13s %3s %6s %6s %6s |", "variant", "n", "PSS", "ratio", "AnonHP");
    for (int b = 0; b < B_NB; b++)
        printf(" %s |", bucket_name[b]);
    printf(" Priv.Dirty | KSM-merged | KSM rmap\n");
    double base = 0;
    for (int k = 0; k < nsel; k++) {
        int v = sel[k];
        double c = cnt[v] ? cnt[v] : 1;
        double pss = avg[v].pss / c / 1024;
        if (k == 0)
            base = pss;
        printf("%-13s %3d %6.2f %5.2fx %6.2f |", variants[v].name, cnt[v], pss,
               base > 0 ? pss / base : 0, avg[v].ahp / c / 1024);
        for (int b = 0; b < B_NB; b++)
            printf(" %*.2f |", (int)strlen(bucket_name[b]), avg[v].b[b] / c / 1024);
        printf(" %10.2f | %10.2f | %8.2f\n", avg[v].pd / c / 1024, avg[v].ksm / c / 1024,
               avg[v].rmap / c / 1024);
    }
    fflush(stdout);
}

static long ksmd_ticks(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    long t = -1;
    while (d && (e = readdir(d))) {
        char path[300], buf[512];
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        int is = fgets(buf, sizeof buf, f) && !strcmp(buf, "ksmd\n");
        fclose(f);
        if (!is)
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        if ((f = fopen(path, "r"))) {
            if (fgets(buf, sizeof buf, f)) {
                char *p = strrchr(buf, ')');
                unsigned long ut, st;
                if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                                &st) == 2)
                    t = (long)(ut + st);
            }
            fclose(f);
        }
        break;
    }
    if (d)
        closedir(d);
    return t;
}

#define KSM "/sys/kernel/mm/ksm/"
static const char *ksm_knobs[] = { "run", "pages_to_scan", "sleep_millisecs", "use_zero_pages" };
#define NKNOB 4
static char ksm_saved[NKNOB][32];

static void ksm_restore(void)
{
    if (!ksm_saved[0][0])
        return;
    for (int i = NKNOB - 1; i >= 0; i--) {
        char p[128];
        snprintf(p, sizeof p, KSM "%s", ksm_knobs[i]);
        write_str(p, ksm_saved[i]);
    }
    ksm_saved[0][0] = 0;
}

static volatile sig_atomic_t stop;
static void on_sig(int s)
{
    (void)s;
    stop = 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_mem KERNEL N [SETTLE_S [KSM_S]]\n");
        return 2;
    }
    const char *kernel = argv[1];
    int n = atoi(argv[2]);
    int settle = argc > 3 ? atoi(argv[3]) : 10;
    int ksm_s = argc > 4 ? atoi(argv[4]) : 0;
    const char *want = getenv("BENCH_MEM_VARIANTS");
    int sel[MAXV], nsel = 0;
    char root[] = "/tmp/shoal-benchmem-XXXXXX", path[600], err[512];
    int rc = 1;

    if (!want)
        want = DEFAULT_VARIANTS;
    if (!strcmp(want, "all")) {
        for (size_t v = 0; v < NVAR && nsel < MAXV; v++)
            sel[nsel++] = (int)v;
    } else {
        /* In the order given: the first is the ratio's baseline. */
        for (const char *p = want; *p && nsel < MAXV;) {
            size_t len = strcspn(p, ",");
            size_t v = 0;
            while (v < NVAR &&
                   !(strlen(variants[v].name) == len && !strncmp(variants[v].name, p, len)))
                v++;
            if (v == NVAR) {
                fprintf(stderr, "bench_mem: unknown variant '%.*s'\n", (int)len, p);
                return 2;
            }
            sel[nsel++] = (int)v;
            p += len + (p[len] == ',');
        }
    }
    if (n <= 0 || nsel == 0 || access(kernel, R_OK) != 0) {
        fprintf(stderr, "bench_mem: need a readable KERNEL, N > 0 and a known variant\n");
        return 2;
    }
    int want_net = 0;
    for (int k = 0; k < nsel; k++)
        want_net |= (variants[sel[k]].proc & V_NET) != 0;
    /* Before any thread exists: libvirt creates the taps in the netns of
     * the thread that starts the domain, and threads inherit it. */
    if (want_net) {
        if (unshare(CLONE_NEWNET) != 0) {
            fprintf(stderr, "bench_mem: unshare(CLONE_NEWNET): %s\n", strerror(errno));
            return 1;
        }
        if (system("ip link set lo up && ip link add " NET_BRIDGE " type bridge && "
                   "ip addr add " NET_PREFIX ".0.1/16 dev " NET_BRIDGE " && ip link set " NET_BRIDGE
                   " up") != 0) {
            fprintf(stderr, "bench_mem: cannot create bridge " NET_BRIDGE " in our netns\n");
            return 1;
        }
    }
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/etc", root);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/etc/qemu.conf", root);
    /* The same settings node_open writes for shoald's embedded root. */
    char conf[128];
    snprintf(conf, sizeof conf, "stdio_handler = \"file\"\nuser = \"+%u\"\ngroup = \"+%u\"\n",
             (unsigned)geteuid(), (unsigned)getegid());
    write_str(path, conf);

    virEventRegisterDefaultImpl();
    virEventAddTimeout(100, loop_tick, NULL, NULL);
    pthread_t loop;
    pthread_create(&loop, NULL, event_loop, NULL);
    snprintf(path, sizeof path, "qemu:///embed?root=%s", root);
    virConnectPtr conn = virConnectOpen(path);
    if (!conn) {
        fprintf(stderr, "cannot open %s: %s\n", path, virGetLastErrorMessage());
        return 1;
    }

    struct guest *g = calloc((size_t)(n * nsel), sizeof *g);
    int ng = 0, failed[MAXV] = { 0 };
    printf("bench_mem: %d idle guests per variant (%s, %d MiB, 1 vCPU, TCG), %d variants, "
           "%ld cores\n",
           n, kernel, MEM_MIB, nsel, sysconf(_SC_NPROCESSORS_ONLN));
    for (int k = 0; k < nsel; k++)
        printf("  %-13s %s\n", variants[sel[k]].name, variants[sel[k]].desc);
    fflush(stdout);
    double t0 = now_s();
    for (int i = 0; i < n && !stop; i++) {
        for (int k = 0; k < nsel && !stop; k++) {
            const struct variant *v = &variants[sel[k]];
            struct guest *x = &g[ng];
            if (failed[sel[k]])
                continue;
            struct domxml_spec s;
            char console[512], *xml = NULL, *vx, mac[18], cmdline[128];
            x->var = sel[k];
            snprintf(x->name, sizeof x->name, "mem-%s-%d", v->name, i);
            for (char *p = x->name; *p; p++)
                if (*p == '+')
                    *p = '_';
            snprintf(console, sizeof console, "%s/%s.log", root, x->name);
            snprintf(x->status, sizeof x->status, "%s/%s.status", root, x->name);
            memset(&s, 0, sizeof s);
            s.name = x->name;
            s.virt = DOMXML_VIRT_QEMU;
            s.boot = DOMXML_BOOT_PVH;
            s.memory_mib = MEM_MIB;
            s.vcpus = 1;
            s.kernel = kernel;
            s.cmdline = "-- 3600";
            s.console_log = console;
            s.status_log = x->status;
            s.instance_id = x->name;
            if (v->proc & V_NET) {
                int host = ng + 2; /* .0.1 is the bridge */
                snprintf(mac, sizeof mac, "5a:5c:00:00:%02x:%02x", (host >> 8) & 0xff, host & 0xff);
                snprintf(cmdline, sizeof cmdline,
                         "shoal.ip=" NET_PREFIX ".%d.%d/16 shoal.gw=" NET_PREFIX
                         ".0.1 shoal.mac=%s -- 3600",
                         (host >> 8) & 0xff, host & 0xff, mac);
                s.bridge = NET_BRIDGE;
                s.mac = mac;
                s.cmdline = cmdline;
            }
            if (domxml_render(&s, &xml, err, sizeof err) != 0) {
                fprintf(stderr, "render: %s\n", err);
                goto out;
            }
            vx = apply_edits(xml, v);
            free(xml);
            if (!vx)
                goto out;
            int pers = personality(0xffffffff);
            if (v->proc & P_NO_ASLR)
                personality((unsigned long)(pers | ADDR_NO_RANDOMIZE));
            if (v->proc & P_NO_THP)
                prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
            if ((v->proc & P_MERGE_ANY) && prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) != 0)
                fprintf(stderr, "PR_SET_MEMORY_MERGE: %s\n", strerror(errno));
            x->dom = virDomainCreateXML(conn, vx, 0);
            if (v->proc & P_NO_THP)
                prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
            if (v->proc & P_MERGE_ANY)
                prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0);
            if (v->proc & P_NO_ASLR)
                personality((unsigned long)pers);
            if (!x->dom) {
                fprintf(stderr, "create %s failed: %s\nXML:\n%s", x->name, virGetLastErrorMessage(),
                        vx);
                free(vx);
                goto out;
            }
            free(vx);
            ng++;
            double tw = now_s();
            while (!file_has(x->status, "ready") && now_s() - tw < 60 && !stop)
                usleep(2000);
            if (!file_has(x->status, "ready")) {
                /* A shape the guest does not boot in: say so, destroy the
                 * guest, and start no more of that variant. */
                printf("variant %s: %s wrote no ready record within 60 s: does not boot, "
                       "dropped\n",
                       v->name, x->name);
                fflush(stdout);
                failed[x->var] = 1;
                x->pid = -1;
                virDomainDestroy(x->dom);
                virDomainFree(x->dom);
                x->dom = NULL;
                continue;
            }
            x->pid = qemu_pid(root, x->name);
            if (x->pid <= 0)
                printf("%s: no QEMU pid file, not counted\n", x->name);
        }
    }
    printf("started %d guests in %.1f s; idle %d s\n", ng, now_s() - t0, settle);
    fflush(stdout);
    for (int i = 0; i < settle * 10 && !stop; i++)
        usleep(100000);
    if (stop)
        goto out;
    printf("KSM: run=%ld pages_shared=%ld pages_sharing=%ld\n", read_long(KSM "run"),
           read_long(KSM "pages_shared"), read_long(KSM "pages_sharing"));
    report("KSM as found (off here)", g, ng, sel, nsel);

    if (ksm_s > 0 && access(KSM "run", W_OK) == 0) {
        for (int i = 0; i < NKNOB; i++) {
            snprintf(path, sizeof path, KSM "%s", ksm_knobs[i]);
            FILE *f = fopen(path, "r");
            if (!f || !fgets(ksm_saved[i], sizeof ksm_saved[i], f))
                ksm_saved[i][0] = 0;
            if (f)
                fclose(f);
        }
        /* daemon/ksm.c's settings (what `--ksm on` does), unless overridden */
        const char *pts = getenv("BENCH_MEM_KSM_PAGES"), *slp = getenv("BENCH_MEM_KSM_SLEEP");
        struct ksm_stats st;
        long full0 = read_long(KSM "full_scans"), scanned0 = read_long(KSM "pages_scanned");
        long tk0 = ksmd_ticks();
        double w0 = now_s();
        if (pts || slp) {
            write_str(KSM "use_zero_pages", "1");
            write_str(KSM "pages_to_scan", pts ? pts : "1000");
            write_str(KSM "sleep_millisecs", slp ? slp : "20");
            write_str(KSM "run", "1");
        } else {
            int active = 0;
            if (ksm_apply(KSM_MODE_ON, &active, err, sizeof err) != 0 || !active) {
                fprintf(stderr, "ksm_apply: %s\n", err);
                goto out;
            }
        }
        ksm_read(&st);
        for (int i = 0; i < ksm_s * 10 && !stop; i++)
            usleep(100000);
        long tk1 = ksmd_ticks();
        double w = now_s() - w0;
        double cpu = (double)(tk1 - tk0) / (double)sysconf(_SC_CLK_TCK);
        long scanned = read_long(KSM "pages_scanned") - scanned0; /* Linux >= 6.7 */
        ksm_read(&st);
        printf("\nKSM on (pages_to_scan=%ld sleep_millisecs=%ld use_zero_pages=%ld) for %.0f s: "
               "ksmd CPU %.2f s (%.1f%% of one core), full_scans +%ld, pages_shared=%ld "
               "pages_sharing=%ld ksm_zero_pages=%ld general_profit=%.1f MiB\n",
               st.pages_to_scan, st.sleep_millisecs, st.use_zero_pages, w, cpu, 100 * cpu / w,
               st.full_scans - full0, st.pages_shared, st.pages_sharing, st.ksm_zero_pages,
               (double)st.general_profit / 1048576);
        if (scanned0 >= 0 && scanned > 0)
            printf("ksmd scanned %ld pages (%.0f/s), %.2f us of CPU per page\n", scanned,
                   (double)scanned / w, cpu * 1e6 / (double)scanned);
        report("KSM on", g, ng, sel, nsel);
        /* Steady-state cost: another window with the merging done. */
        tk0 = ksmd_ticks();
        w0 = now_s();
        for (int i = 0; i < 100 && !stop; i++)
            usleep(100000);
        tk1 = ksmd_ticks();
        w = now_s() - w0;
        cpu = (double)(tk1 - tk0) / (double)sysconf(_SC_CLK_TCK);
        printf("KSM steady state: ksmd CPU %.2f s over %.0f s (%.1f%% of one core)\n", cpu, w,
               100 * cpu / w);
        ksm_restore();
    }
    rc = 0;
out:
    ksm_restore();
    for (int i = 0; i < ng; i++) {
        if (g[i].dom) {
            virDomainDestroy(g[i].dom);
            virDomainFree(g[i].dom);
        }
    }
    virConnectClose(conn);
    loop_run = 0;
    snprintf(path, sizeof path, "rm -rf '%s'", root);
    if (system(path) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    free(g);
    return rc;
}
