/*
 * main.c - boot sequence, exit and crash paths (see kern.h).
 */
#include "kern.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <shoal.h>

#include "clock.h"
#include "cmdline.h"
#include "heap.h"
#include "pool.h"
#include "pvh.h"
#include "sbuf.h"
#include "status.h"
#include "../arch/x86_64/apic.h"
#include "../arch/x86_64/cpu.h"
#include "../arch/x86_64/fwcfg.h"
#include "../arch/x86_64/idt.h"
#include "../arch/x86_64/serial.h"

#define ACPI_PM1A_CNT   0x604  /* PIIX4 PM1a control as set up by qboot/SeaBIOS */
#define ACPI_SLP_S5     0x2000 /* SLP_EN | SLP_TYP=S5 for QEMU's DSDT */
#define MEMMAP_MAX      64
#define MAPPED_LIMIT    0x100000000ull /* boot.S identity-maps the low 4 GiB */
#define EXIT_BOOT_ERROR 2              /* bad command line or start info (protocol: 2) */

extern int main(int argc, char **argv, char **envp);

extern char **environ;
extern char __image_end[];
/* The KERN_BOOT_HOOK table, collected by the linker (link.ld). */
extern const struct kern_boot_hook __kern_boot_hooks_start[], __kern_boot_hooks_end[];

/* The fw_cfg file that carries the private configuration record. */
#define KERN_FWCFG_RECORD "opt/org.shoal/cmdline"

/* A pool guest without a receive interrupt looks for its record this often. */
#define KERN_POOL_POLL_NS 10000000ull
/* Heap a pool guest touches before it waits (the parser's buffers of a
 * ~1 KiB record; see kern_pool_claim). */
#define KERN_POOL_WARM 12288
/* Longest reply line to the host (the reason quotes up to 40 bytes). */
#define KERN_POOL_REPLY_MAX 192
/* How long a pool guest's last reply may take to reach the device. */
#define KERN_POOL_FLUSH_NS 100000000ull
/* How long a claimed guest waits for the host's go-ahead after its `ok`
 * (a host that sends none costs its app this much). */
#define KERN_POOL_GO_NS 20000000ull

/* Written before read, so left out of the .bss zeroing. */
static char kern_cmdline[CMDLINE_MAX + 1] __attribute__((section(".noinit")));

/* TSC at the end of each boot step, printed with shoal.bootlog=1. */
enum { ST_CONSOLE, ST_MEMORY, ST_FWCFG, ST_CLOCK, ST_CMDLINE, ST_N };
static const char *const kern_stage_names[ST_N] = { "console+idt", "memory", "fw_cfg", "clock",
                                                    "cmdline" };
static uint64_t kern_stage_tsc[ST_N];
static struct cmdline kern_cl;
static uint64_t kern_boot_us;

__attribute__((noreturn)) void kern_exit(int code)
{
    status_exit(code);
    outw(ACPI_PM1A_CNT, ACPI_SLP_S5);
    /* QEMU acts on the request asynchronously; give it 100 ms before
     * concluding the VM has no ACPI (libvirt without <acpi/>). Wait halted,
     * not spinning: a busy vCPU delays QEMU's own shutdown work. */
    if (clock_tsc_hz()) {
        clock_sleep_ns(100000000ull);
    } else {
        uint64_t t0 = cpu_rdtsc();
        while (cpu_rdtsc() - t0 < 100000000ull)
            __asm__ volatile("pause");
    }
    printf("shoal: power-off via ACPI port %#x did not happen; halting\n", ACPI_PM1A_CNT);
    cpu_halt_forever();
}

__attribute__((noreturn)) void kern_fatal(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("shoal: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
    kern_exit(code);
}

const char *shoal_param(const char *name)
{
    return cmdline_kparam(&kern_cl, name);
}

uint64_t shoal_boot_us(void)
{
    return kern_boot_us;
}

static uint8_t kern_cmos(uint8_t reg)
{
    outb(0x70, reg);
    return inb(0x71);
}

/* Give the heap all RAM above the image and below the identity-mapped
 * limit. The memory map is copied first because the heap writes block
 * headers into the very RAM the table may live in. */
static void kern_memory(const struct hvm_start_info *si)
{
    struct hvm_memmap_table_entry map[MEMMAP_MAX];
    uint32_t n = 0;
    if (si->version >= 1 && si->memmap_paddr && si->memmap_entries) {
        n = si->memmap_entries < MEMMAP_MAX ? si->memmap_entries : MEMMAP_MAX;
        memcpy(map, (const void *)(uintptr_t)si->memmap_paddr, n * sizeof(map[0]));
    } else {
        /* No map: CMOS says how much RAM lies above 16 MiB (64 KiB units),
         * as QEMU and every PC BIOS fill it in. */
        uint64_t above16 = ((uint64_t)kern_cmos(0x35) << 8 | kern_cmos(0x34)) * 65536;
        uint64_t above1 = ((uint64_t)kern_cmos(0x31) << 8 | kern_cmos(0x30)) * 1024;
        map[n++] = (struct hvm_memmap_table_entry){ 0x100000, above1, PVH_MEMMAP_RAM, 0 };
        if (above16)
            map[n++] = (struct hvm_memmap_table_entry){ 0x1000000, above16, PVH_MEMMAP_RAM, 0 };
    }
    uint64_t floor = (uint64_t)(uintptr_t)__image_end;
    for (uint32_t i = 0; i < n; i++) {
        if (map[i].type != PVH_MEMMAP_RAM)
            continue;
        uint64_t lo = map[i].addr, hi = map[i].addr + map[i].size;
        if (lo < floor)
            lo = floor;
        if (hi > MAPPED_LIMIT)
            hi = MAPPED_LIMIT;
        if (hi > lo)
            heap_add_region((uintptr_t)lo, (size_t)(hi - lo));
    }
}

/* The host's private configuration record (docs/guest-protocol.md): more
 * of the command line, passed through fw_cfg so that it never appears on
 * QEMU's command line on the host. Appended to the command line after one
 * space, then parsed with it. 0, or -1 when the two together are too long. */
static int kern_append_record(void)
{
    size_t n = strlen(kern_cmdline);
    long size;
    if (n + 1 >= sizeof kern_cmdline)
        return 0;
    size = fwcfg_read_file(KERN_FWCFG_RECORD, kern_cmdline + n + 1, sizeof kern_cmdline - n - 1);
    if (size <= 0)
        return 0; /* no device or no record: the command line is all */
    if ((size_t)size > sizeof kern_cmdline - n - 2)
        return -1;
    if (strlen(kern_cmdline + n + 1) != (size_t)size)
        return -2; /* a NUL inside the record */
    kern_cmdline[n] = ' ';
    return 0;
}

/* Copy the command line out of loader memory; the heap may reuse it. */
static int kern_copy_cmdline(const struct hvm_start_info *si)
{
    kern_cmdline[0] = '\0';
    if (!si->cmdline_paddr)
        return 0;
    const char *src = (const char *)(uintptr_t)si->cmdline_paddr;
    size_t n = strnlen(src, CMDLINE_MAX + 1);
    if (n > CMDLINE_MAX)
        return -1;
    memcpy(kern_cmdline, src, n + 1);
    return 0;
}

/* Page 0 is left unmapped so that NULL faults (boot.S, boot_pt0[0]). Under
 * SeaBIOS, QEMU's PVH option ROM leaves the start info's memory map there:
 * map it just for the copies of loader data, then unmap it again. */
extern uint64_t boot_pt0[];
static void kern_page0(int mapped)
{
    boot_pt0[0] = mapped ? 0x003 /* present, writable */ : 0;
    __asm__ volatile("invlpg (%0)" ::"r"(0UL) : "memory");
}

/* Parse kern_cmdline into kern_cl and the app's environment. 0, or -1
 * with the reason in err. */
static int kern_parse_cmdline(char *err, size_t errlen)
{
    size_t len = strlen(kern_cmdline);
    char *strbuf = malloc(len + 1);
    char **ptrs = malloc((len + 8) * sizeof(char *));
    if (!strbuf || !ptrs)
        kern_fatal(EXIT_BOOT_ERROR, "out of memory parsing the command line");
    if (cmdline_parse(kern_cmdline, strbuf, len + 1, ptrs, len + 8, &kern_cl, err, errlen))
        return -1;
    kern_cl.argv[0] = (char *)shoal_app_name;
    environ = kern_cl.envp;
    return 0;
}

/* ---- Warm pool hand-over (docs/guest-protocol.md) ---- */

struct kern_pool {
    struct pool_reader r;
    int done;
    size_t len;   /* the record's length */
    uint64_t tsc; /* when its last byte was seen */
};

/* "shoal-config <what><detail>\n" to the host. */
static void kern_pool_reply(const char *what, const char *detail)
{
    char b[KERN_POOL_REPLY_MAX];
    struct sbuf sb;
    sb_init(&sb, b, sizeof b - 1);
    sb_str(&sb, POOL_HEADER " ");
    sb_str(&sb, what);
    sb_str(&sb, detail);
    for (size_t i = 0; i < sb.len; i++)
        if ((unsigned char)b[i] < 0x20 || b[i] == 0x7f)
            b[i] = '?'; /* a quoted bad token must not end the line */
    b[sb.len++] = '\n';
    (void)kern_pool_channel.write(b, (unsigned)sb.len);
}

/* Refuse the record for good: tell the host, let the reply leave, exit 2. */
static __attribute__((noreturn)) void kern_pool_bad(const char *reason)
{
    uint64_t t0 = clock_monotonic_ns();
    kern_pool_reply("error bad command line: ", reason);
    while (kern_pool_channel.tx_busy() && clock_monotonic_ns() - t0 < KERN_POOL_FLUSH_NS)
        clock_sleep_ns(1000000);
    kern_fatal(EXIT_BOOT_ERROR, "bad command line: %s", reason);
}

static int kern_pool_rx(void *ctx, const char *data, unsigned n)
{
    struct kern_pool *k = ctx;
    while (n && !k->done) {
        size_t used = 0, len = 0;
        const char *why = "";
        enum pool_event e = pool_feed(&k->r, data, n, &used, &len, &why);
        data += used;
        n -= (unsigned)used;
        if (e == POOL_RECORD) {
            k->done = 1;
            k->len = len;
            k->tsc = cpu_rdtsc();
        } else if (e == POOL_REFUSED) {
            kern_pool_reply("error ", why); /* and keep waiting */
        }
    }
    return 0; /* COM1 stays open for the go-ahead (kern_pool_go) */
}

static int kern_pool_go_rx(void *ctx, const char *data, unsigned n)
{
    (void)data;
    *(int *)ctx = n > 0;
    return n > 0;
}

/* After `ok`: wait for the host's go-ahead (any byte; shoald sends it once
 * it has read the reply, and hangs up right behind it), at most
 * KERN_POOL_GO_NS, before anything more is written on COM1. While the
 * host is connected QEMU also sends COM1's output to the socket, and a
 * host that has not hung up yet lets that socket fill, which makes QEMU
 * log bytes twice into the console file (docs/guest-protocol.md
 * "Robustness"). */
static void kern_pool_go(void)
{
    const struct kern_pool_channel *ch = &kern_pool_channel;
    uint64_t t0 = clock_monotonic_ns(), spent;
    int go = 0;
    while (!go && (spent = clock_monotonic_ns() - t0) < KERN_POOL_GO_NS) {
        if (ch->poll(kern_pool_go_rx, &go) || go)
            break;
        if (ch->irq_arm()) {
            clock_sleep_ready_ns(KERN_POOL_GO_NS - spent, ch->pending);
            ch->irq_disarm();
        } else {
            clock_sleep_ns(KERN_POOL_GO_NS / 20);
        }
    }
    ch->close();
}

/* shoal.pool=1: start what needs no configuration (the boot hooks'
 * prepare: the NIC), say pool-wait, halt until the configuration record
 * arrives on COM1, then make it the rest of the command line, as
 * the fw_cfg record is for a cold start, and parse the whole again.
 * Returns the TSC at the record's last byte. */
static uint64_t kern_pool_claim(void)
{
    const struct kern_pool_channel *ch = &kern_pool_channel;
    char err[128];
    if (!ch)
        kern_fatal(EXIT_BOOT_ERROR, "shoal.pool=1, but this image has no pool channel");
    for (const struct kern_boot_hook *h = __kern_boot_hooks_start; h < __kern_boot_hooks_end; h++)
        if (h->prepare)
            (void)h->prepare();
    if (ch->open(IDT_VEC_DEVICE, apic_id()) != 0)
        kern_fatal(EXIT_BOOT_ERROR, "shoal.pool=1, but no serial port to read the record from");

    /* Touch now what the claim will write: the record's buffer, the rest
     * of the line, and (freed again, so first fit hands it out) room for
     * the parser's buffers. A first touch of a page costs a VM exit under
     * nested paging; this way those come before the wait, not in the
     * claim. ~28 KiB: the host backs them for every waiting guest. */
    struct kern_pool k = { 0 };
    size_t n = strlen(kern_cmdline);
    char *body = malloc(POOL_RECORD_MAX + 1), *warm = malloc(KERN_POOL_WARM);
    if (!body || !warm)
        kern_fatal(EXIT_BOOT_ERROR, "out of memory for the configuration record");
    memset(body, 0, POOL_RECORD_MAX + 1);
    memset(warm, 0, KERN_POOL_WARM);
    free(warm);
    memset(kern_cmdline + n + 1, 0, sizeof kern_cmdline - n - 1);
    pool_reader_init(&k.r, body);
    status_pool_wait(clock_tsc_to_ns(cpu_rdtsc() - kern_boot_tsc) / 1000);
    while (!k.done) {
        if (ch->poll(kern_pool_rx, &k) || k.done)
            continue;
        if (ch->irq_arm()) { /* halted until the UART interrupts */
            clock_sleep_ready_ns(UINT64_MAX, ch->pending);
            ch->irq_disarm();
        } else {
            clock_sleep_ns(KERN_POOL_POLL_NS);
        }
    }

    if (strlen(body) != k.len)
        kern_pool_bad("the record holds a NUL byte");
    if (n + 1 + k.len > CMDLINE_MAX) {
        snprintf(err, sizeof err, "with the record longer than %d bytes", CMDLINE_MAX);
        kern_pool_bad(err);
    }
    kern_cmdline[n] = ' ';
    memcpy(kern_cmdline + n + 1, body, k.len + 1);
    free(body);
    if (kern_parse_cmdline(err, sizeof err) != 0)
        kern_pool_bad(err);
    kern_pool_reply("ok", "");
    kern_pool_go();
    return k.tsc;
}

void kern_main(uint32_t start_info_paddr)
{
    /* 1. Start measuring the TSC rate (may take ~0.5 ms; runs alongside),
     *    console and status channel, then the IDT: from here on every
     *    fault is reported (by arch, which ends the report with our
     *    status channel's crash record: it cannot name status.c). */
    static const struct idt_hooks idt_hooks = { shoal_app_name, status_crash };
    /* SeaBIOS hands over with the legacy 8259 PICs unmasked at vectors
     * 0x08-0x0F, the CPU's exceptions: the PIT's IRQ 0 would arrive as a
     * double fault once interrupts are on. Mask both (qboot leaves LVT0
     * masked, so under it they never arrived anyway). */
    outb(0x21, 0xFF);
    outb(0xA1, 0xFF);
    clock_start();
    serial_init(SERIAL_COM1);
    serial_init(SERIAL_COM2);
    idt_init(&idt_hooks);
    kern_stage_tsc[ST_CONSOLE] = cpu_rdtsc();

    /* 2. Start info: command line copied, memory map into the heap. */
    const struct hvm_start_info *si = (const void *)(uintptr_t)start_info_paddr;
    if (!si || si->magic != PVH_START_MAGIC)
        kern_fatal(EXIT_BOOT_ERROR, "no PVH start info at %#x (boot this image through PVH)",
                   start_info_paddr);
    kern_page0(1);
    int too_long = kern_copy_cmdline(si);
    kern_memory(si);
    kern_page0(0);
    kern_stage_tsc[ST_MEMORY] = cpu_rdtsc();
    int bad_record = too_long ? 0 : kern_append_record();
    kern_stage_tsc[ST_FWCFG] = cpu_rdtsc();

    /* 3. TSC rate known from here. The local APIC waits for the first sleep. */
    clock_init();
    kern_stage_tsc[ST_CLOCK] = cpu_rdtsc();

    /* 4. Command line -> argv, environment, kernel keys. */
    if (too_long)
        kern_fatal(EXIT_BOOT_ERROR, "bad command line: longer than %d bytes", CMDLINE_MAX);
    if (bad_record == -1)
        kern_fatal(EXIT_BOOT_ERROR,
                   "bad command line: with the fw_cfg record '%s' longer than %d bytes",
                   KERN_FWCFG_RECORD, CMDLINE_MAX);
    if (bad_record)
        kern_fatal(EXIT_BOOT_ERROR, "bad command line: the fw_cfg record '%s' holds a NUL byte",
                   KERN_FWCFG_RECORD);
    if (&shoal_cmdline_dialect && shoal_cmdline_dialect &&
        !strcmp(shoal_cmdline_dialect, "unikraft")) {
        char *conv = malloc(CMDLINE_MAX + 1), uerr[128];
        if (!conv)
            kern_fatal(EXIT_BOOT_ERROR, "out of memory converting the command line");
        if (cmdline_from_unikraft(kern_cmdline, conv, CMDLINE_MAX + 1, uerr, sizeof uerr) != 0)
            kern_fatal(EXIT_BOOT_ERROR, "bad Unikraft command line: %s", uerr);
        memcpy(kern_cmdline, conv, strlen(conv) + 1);
        free(conv);
    }
    char err[128];
    if (kern_parse_cmdline(err, sizeof err) != 0)
        kern_fatal(EXIT_BOOT_ERROR, "bad command line: %s", err);
    kern_stage_tsc[ST_CMDLINE] = cpu_rdtsc();

    /* 5. Banner, unless shoal.quiet=1. */
    const char *quiet = shoal_param("quiet");
    if (!quiet || strcmp(quiet, "1") != 0) {
        struct heap_stats hs;
        heap_get_stats(&hs);
        char b[160];
        struct sbuf sb;
        sb_init(&sb, b, sizeof b);
        sb_str(&sb, "shoal " KERN_VERSION ": ");
        sb_str(&sb, shoal_app_name);
        sb_str(&sb, ", ");
        sb_num(&sb, hs.total >> 20, 10);
        sb_str(&sb, " MiB, tsc ");
        sb_num(&sb, clock_tsc_hz() / 1000000, 10);
        sb_str(&sb, " MHz (");
        sb_str(&sb, clock_source());
        sb_str(&sb, ")\n");
        serial_write(SERIAL_COM1, sb.buf, sb.len, 0);
    }
    const char *bootlog = shoal_param("bootlog");
    if (bootlog && strcmp(bootlog, "1") == 0) {
        uint64_t prev = kern_boot_tsc;
        for (int i = 0; i < ST_N; i++) {
            printf("shoal: boot step %-12s %6lu us\n", kern_stage_names[i],
                   (unsigned long)(clock_tsc_to_ns(kern_stage_tsc[i] - prev) / 1000));
            prev = kern_stage_tsc[i];
        }
    }

    /* 6. A pool guest waits here for the rest of its command line. */
    uint64_t claim_tsc = 0;
    const char *pool = shoal_param("pool");
    if (pool && strcmp(pool, "1") == 0)
        claim_tsc = kern_pool_claim();

    /* 7. The layers above that registered a boot hook: the network, in
     *    images that have one (it checks for an address itself). */
    for (const struct kern_boot_hook *h = __kern_boot_hooks_start; h < __kern_boot_hooks_end; h++)
        if (h->fn() < 0)
            kern_fatal(EXIT_BOOT_ERROR, "%s setup failed (see above)", h->what);

    /* 8. Ready record, then the app. Its return value is the exit code. */
    uint64_t now = cpu_rdtsc();
    kern_boot_us = clock_tsc_to_ns(now - kern_boot_tsc) / 1000;
    status_ready(kern_boot_us,
                 claim_tsc ? clock_tsc_to_ns(now - claim_tsc) / 1000 : STATUS_NO_CLAIM);
    exit(main(kern_cl.argc, kern_cl.argv, environ));
}
