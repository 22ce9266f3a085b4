/* capacity.c - what guests really cost, and what placement charges them
 * (issue 13; the model is written up in docs/shoald.md "Capacity").
 *
 * The usage sampler thread measures every running guest through
 * node_usage() every FLEET_USAGE_PERIOD_MS (private memory, CPU time) and
 * each host's available memory every FLEET_AVAIL_PERIOD_MS, and keeps the
 * figures in the runtime table and the host table (under f->mu). Placement
 * (snapshot.c) charges each guest:
 *
 *   --capacity nominal   memory_mib + FLEET_VMM_OVERHEAD_MIB, vcpus
 *   --capacity measured  memory: the most it has held this run, plus
 *                        FLEET_MEM_MARGIN_MIB; before its first measurement
 *                        the most a guest of the same image and size holds
 *                        now, else the first guess FLEET_VMM_OVERHEAD_MIB +
 *                        min(memory_mib, FLEET_TOUCH_GUESS_MIB).
 *                        CPU: its measured use in thousandths of a CPU,
 *                        at least FLEET_CPU_FLOOR_MILLI; before measurement
 *                        the mean of its image's guests, else the floor.
 *
 * Threads: the sampler is its own thread (fleet_int.h THREADS); it calls
 * libvirt with no lock held and takes f->mu only to store the figures. It
 * reads hosts on this machine itself and queues each remote host's reading
 * on the remote I/O workers (remoteio.c), so a hung host costs only its
 * own figures: they grow old (GET /v1/hosts "sampled_ms_ago", "stale")
 * while the other hosts' stay fresh.
 */
#include "fleet_int.h"
#include "snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* ---- the sampler ---------------------------------------------------------- */

/* Store one host's measurements (caller holds f->mu). */
static void store_usage(fleet *f, fleet_host *h, const struct node_usage *u, size_t n, int64_t now)
{
    uint64_t cpu = 0;
    for (size_t i = 0; i < n; i++) {
        fleet_rt *rt = fleet_rt_find(f, u[i].instance_id);
        if (!rt || !rt->active)
            continue;
        if (rt->use_run_ms != rt->run_start_ms || u[i].cpu_ns < rt->use_cpu_ns) {
            /* A new run (a new QEMU): nothing measured yet. */
            rt->use_run_ms = rt->run_start_ms;
            rt->use_mem_kib = rt->use_mem_peak_kib = 0;
            rt->use_cpu_ns = 0;
            rt->use_at_ms = 0;
            rt->use_cpu_milli = 0;
            rt->use_cpu_samples = 0;
        }
        if (u[i].mem_kib) {
            rt->use_mem_kib = u[i].mem_kib;
            rt->use_mem_private = u[i].mem_private;
            if (u[i].mem_kib > rt->use_mem_peak_kib)
                rt->use_mem_peak_kib = u[i].mem_kib;
        }
        /* CPU over the last period, once the boot is over (a TCG boot
         * costs ~0.5 s of CPU that says nothing about the guest idle). */
        if (u[i].cpu_ns && rt->use_at_ms && now > rt->use_at_ms &&
            now - rt->run_start_ms >= FLEET_USAGE_SETTLE_MS) {
            uint64_t milli =
                (u[i].cpu_ns - rt->use_cpu_ns) / (uint64_t)(now - rt->use_at_ms) / 1000;
            /* Smoothed: a guest's burst moves its charge, a single sample
             * does not decide it. */
            rt->use_cpu_milli =
                rt->use_cpu_samples ? (uint32_t)((rt->use_cpu_milli + milli) / 2) : (uint32_t)milli;
            rt->use_cpu_samples++;
        }
        if (u[i].cpu_ns) {
            rt->use_cpu_ns = u[i].cpu_ns;
            rt->use_at_ms = now;
        }
        cpu += rt->use_cpu_milli;
    }
    h->use_cpu_milli = cpu;
    h->use_guests = (uint32_t)n;
    h->use_at_ms = now;
}

void fleet_foreign_sample(fleet *f, fleet_host *h, struct node *node)
{
    struct node_foreign o;
    char err[256];
    int64_t now = fleet_now_ms();
    if (node_foreign(node, &o, err, sizeof err) != NODE_OK) {
        log_debug("host %s: cannot list the domains that are not shoal's: %s", h->name, err);
        return;
    }
    pthread_mutex_lock(&f->mu);
    /* Their CPU over the period, as for shoal's guests (never above the
     * CPUs they have). */
    h->others_cpu_milli = 0;
    if (h->others_at_ms && now > h->others_at_ms && o.domains == h->others.domains &&
        o.cpu_ns >= h->others.cpu_ns) {
        uint64_t milli = (o.cpu_ns - h->others.cpu_ns) / (uint64_t)(now - h->others_at_ms) / 1000;
        h->others_cpu_milli = (uint32_t)(milli < 1000u * o.vcpus ? milli : 1000u * o.vcpus);
    }
    if (o.domains != h->others.domains || o.memory_mib != h->others.memory_mib)
        log_info("host %s: %u domain%s not shoal's, holding %llu MiB and %u vCPUs", h->name,
                 o.domains, o.domains == 1 ? "" : "s", (unsigned long long)o.memory_mib, o.vcpus);
    h->others = o;
    h->others_at_ms = now;
    pthread_mutex_unlock(&f->mu);
}

void fleet_usage_sample(fleet *f, fleet_host *h, int full)
{
    struct node_usage *u = NULL;
    size_t n = 0;
    uint64_t avail = 0;
    char err[256];
    int rc = -1;

    if (!h->node)
        return;
    if (full) {
        rc = node_usage(h->node, &u, &n, &avail, err, sizeof err);
        if (rc != NODE_OK)
            log_debug("host %s: cannot measure guests: %s", h->name, err);
        fleet_foreign_sample(f, h, h->node);
    } else {
        avail = node_mem_available(h->node);
    }
    pthread_mutex_lock(&f->mu);
    if (avail) {
        h->avail_mib = avail;
        h->avail_at_ms = fleet_now_ms();
    }
    /* An answer of the host's for the failover: a guest list, or memory
     * asked of a remote host (on this machine it is read from /proc). */
    if (full ? rc == NODE_OK : avail && node_remote(h->node))
        h->heard_ms = fleet_now_ms();
    if (rc == NODE_OK)
        store_usage(f, h, u, n, fleet_now_ms());
    pthread_mutex_unlock(&f->mu);
    free(u);
}

/* Measure every up host; full: guests too, else only available memory.
 * The reading of a host whose calls may hang (remote, or a libvirtd of
 * this machine: fleet_host_in_process) is an item on the remote I/O
 * workers (stored when it arrives): a hung host delays its own, never the
 * round. */
static void sample(fleet *f, int full)
{
    fleet_host **held;
    size_t nh = 0;

    /* Held here, in one pass (a lookup by name per host would be
     * quadratic in the hosts). */
    pthread_mutex_lock(&f->mu);
    held = calloc(f->nhosts + 1, sizeof *held);
    for (size_t i = 0; held && i < f->nhosts; i++) {
        if (f->hosts[i]->up && f->hosts[i]->node) {
            held[nh++] = f->hosts[i];
            f->hosts[i]->refs++;
        }
    }
    pthread_mutex_unlock(&f->mu);
    for (size_t i = 0; i < nh; i++) {
        fleet_host *h = held[i];
        if (!fleet_host_in_process(h))
            (void)fleet_rio_submit(f, h, FLEET_RIO_USAGE, full ? "full" : "avail");
        else
            fleet_usage_sample(f, h, full);
        fleet_host_release(f, h);
    }
    free(held);
}

int fleet_usage_stale(int64_t at_ms, int64_t now)
{
    return !at_ms || now - at_ms > FLEET_USAGE_STALE_MS;
}

void *fleet_usage_main(void *arg)
{
    fleet *f = arg;
    int64_t next_full = 0;
    pthread_mutex_lock(&f->mu);
    while (!f->stopping) {
        int64_t now = fleet_now_ms();
        int full = now >= next_full;
        struct timespec ts;
        pthread_mutex_unlock(&f->mu);
        sample(f, full);
        if (full)
            next_full = now + FLEET_USAGE_PERIOD_MS;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += FLEET_AVAIL_PERIOD_MS / 1000;
        pthread_mutex_lock(&f->mu);
        while (!f->stopping && pthread_cond_timedwait(&f->usage_cv, &f->mu, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* ---- charges -------------------------------------------------------------- */

int fleet_capacity_measured(const fleet *f)
{
    return strcmp(f->cfg.capacity, "nominal") != 0;
}

uint64_t fleet_mem_reserve(const fleet *f, uint64_t mem_mib)
{
    if (f->cfg.mem_reserve_mib > 0)
        return (uint64_t)f->cfg.mem_reserve_mib;
    /* A tenth of the memory, at most 2 GiB, for the host itself. */
    return mem_mib / 10 > 2048 ? 2048 : mem_mib / 10;
}

uint64_t fleet_mem_free(const fleet *f, uint64_t mem_mib, uint64_t others_mib, uint64_t charged,
                        uint64_t avail)
{
    uint64_t reserve = fleet_mem_reserve(f, mem_mib), own, usable;
    /* Others' domains may touch all they hold: never overcommitted. */
    own = mem_mib > others_mib + reserve ? mem_mib - others_mib - reserve : 0;
    usable = (uint64_t)((double)own * (f->cfg.mem_overcommit > 0 ? f->cfg.mem_overcommit : 1.0));
    if (avail && charged + (avail > reserve ? avail - reserve : 0) < usable)
        usable = charged + (avail > reserve ? avail - reserve : 0);
    return usable > charged ? usable - charged : 0;
}

void fleet_usage_copy(fleet *f, const state_instance *rows, size_t n, fleet_use *out)
{
    pthread_mutex_lock(&f->mu);
    for (size_t r = 0; r < n; r++) {
        const fleet_rt *rt = fleet_rt_find(f, rows[r].id);
        memset(&out[r], 0, sizeof out[r]);
        if (!rt || !rt->active || rt->use_run_ms != rt->run_start_ms)
            continue;
        out[r].mem_kib = rt->use_mem_peak_kib;
        out[r].cpu_milli = rt->use_cpu_milli;
        out[r].cpu_measured = rt->use_cpu_samples > 0;
    }
    pthread_mutex_unlock(&f->mu);
}

static uint64_t kib_to_mib(uint64_t kib)
{
    return (kib + 1023) / 1024;
}

/* Measured memory charge of a guest, MiB. */
static uint64_t mem_measured(const fleet_use *u)
{
    return kib_to_mib(u->mem_kib) + FLEET_MEM_MARGIN_MIB;
}

void fleet_charge_estimate(int measured, const state_instance *rows, const fleet_use *use, size_t n,
                           const char *digest, uint64_t mem_mib, uint32_t vcpus, uint64_t *mem,
                           uint32_t *cpu)
{
    uint64_t m = 0, cpu_sum = 0, cpu_n = 0;
    if (!measured) {
        *mem = mem_mib + FLEET_VMM_OVERHEAD_MIB;
        *cpu = vcpus;
        return;
    }
    for (size_t r = 0; r < n; r++) {
        if ((uint64_t)rows[r].memory_mib != mem_mib || strcmp(rows[r].image_digest, digest) != 0)
            continue;
        if (use[r].mem_kib && mem_measured(&use[r]) > m)
            m = mem_measured(&use[r]);
        if (use[r].cpu_measured) {
            cpu_sum += use[r].cpu_milli;
            cpu_n++;
        }
    }
    if (!m)
        m = FLEET_VMM_OVERHEAD_MIB +
            (mem_mib < FLEET_TOUCH_GUESS_MIB ? mem_mib : FLEET_TOUCH_GUESS_MIB);
    *mem = m;
    *cpu = cpu_n ? (uint32_t)(cpu_sum / cpu_n) : 0;
    if (*cpu < FLEET_CPU_FLOOR_MILLI * vcpus)
        *cpu = FLEET_CPU_FLOOR_MILLI * vcpus;
}

void fleet_charge_resident(int measured, const state_instance *rows, const fleet_use *use, size_t n,
                           size_t r, fleet_charge_memo *memo, uint64_t *mem, uint32_t *cpu)
{
    const state_instance *in = &rows[r];
    if (!measured || !use[r].mem_kib || !use[r].cpu_measured) {
        /* Residents of one batch share their image: one scan for all. */
        if (!memo->valid || memo->mem_mib != (uint64_t)in->memory_mib ||
            memo->vcpus != (uint32_t)in->vcpus || strcmp(memo->digest, in->image_digest) != 0) {
            fleet_charge_estimate(measured, rows, use, n, in->image_digest,
                                  (uint64_t)in->memory_mib, (uint32_t)in->vcpus, &memo->mem,
                                  &memo->cpu);
            snprintf(memo->digest, sizeof memo->digest, "%s", in->image_digest);
            memo->mem_mib = (uint64_t)in->memory_mib;
            memo->vcpus = (uint32_t)in->vcpus;
            memo->valid = 1;
        }
        *mem = memo->mem;
        *cpu = memo->cpu;
    }
    if (!measured)
        return;
    if (use[r].mem_kib)
        *mem = mem_measured(&use[r]);
    if (use[r].cpu_measured) {
        *cpu = use[r].cpu_milli;
        if (*cpu < FLEET_CPU_FLOOR_MILLI * (uint32_t)in->vcpus)
            *cpu = FLEET_CPU_FLOOR_MILLI * (uint32_t)in->vcpus;
    }
}
