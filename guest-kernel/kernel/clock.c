/*
 * clock.c - TSC clock (see clock.h).
 */
#include "clock.h"

#include <string.h>
#include <shoal.h>

#include "acpi.h"
#include "kern.h"
#include "../arch/x86_64/apic.h"
#include "../arch/x86_64/cpu.h"

#define PIT_HZ                1193182u
#define PIT_CH0               0x40
#define PIT_CH2               0x42
#define PIT_CMD               0x43
#define PIT_GATE              0x61          /* bit 0: ch2 gate, bit 1: speaker, bit 5: ch2 out */
#define PIT_CH2_MODE0         0xB0          /* channel 2, lo/hi byte, mode 0, binary */
#define PIT_CH0_MODE0         0x30          /* channel 0, lo/hi byte, mode 0, binary */
#define CLOCK_LEGACY_SLICE_NS 1000000000ull /* shoal.tickless=0: the old slice */

#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)
#define CPUID1_ECX_HYPERVISOR    (1u << 31)

static uint64_t clock_hz;
static const char *clock_src = "none";
static uint64_t rtc_epoch_ns, rtc_tsc; /* wall time at rtc_tsc; 0 = unread */

/* KVM pvclock shared page (Documentation/virt/kvm/x86/msr.rst). */
struct pvclock_time_info {
    uint32_t version; /* odd while the host updates */
    uint32_t pad0;
    uint64_t tsc_timestamp;
    uint64_t system_time;
    uint32_t tsc_to_system_mul; /* ns = ((tsc << shift) * mul) >> 32 */
    int8_t tsc_shift;
    uint8_t flags;
    uint8_t pad[2];
} __attribute__((aligned(64)));
static struct pvclock_time_info clock_pv;

static uint64_t clock_from_hypervisor_leaf(void)
{
    uint32_t r[4];
    cpu_cpuid(1, 0, r);
    if (!(r[2] & CPUID1_ECX_HYPERVISOR))
        return 0;
    cpu_cpuid(0x40000000, 0, r);
    uint32_t max = r[0];
    char sig[13];
    memcpy(sig, &r[1], 4);
    memcpy(sig + 4, &r[2], 4);
    memcpy(sig + 8, &r[3], 4);
    sig[12] = '\0';
    if (max >= 0x40000010 && max < 0x40000100) {
        cpu_cpuid(0x40000010, 0, r);
        if (r[0]) {
            clock_src = "cpuid-40000010";
            return (uint64_t)r[0] * 1000;
        }
    }
    if (strcmp(sig, "KVMKVMKVM") == 0 && max >= 0x40000001) {
        cpu_cpuid(0x40000001, 0, r);
        if (r[0] & KVM_FEATURE_CLOCKSOURCE2) {
            /* The host fills clock_pv on the MSR write; we need only the
             * rate, so the page is released again right after. */
            cpu_wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)(uintptr_t)&clock_pv | 1);
            uint32_t mul = clock_pv.tsc_to_system_mul;
            int shift = clock_pv.tsc_shift;
            cpu_wrmsr(MSR_KVM_SYSTEM_TIME_NEW, 0);
            if (mul) {
                /* ns/tick = 2^shift * mul / 2^32  =>  hz = 1e9 * 2^32 / mul / 2^shift */
                uint64_t hz = cpu_muldiv(1000000000ull, 1ull << 32, mul);
                hz = shift >= 0 ? hz >> shift : hz << -shift;
                clock_src = "kvmclock";
                return hz;
            }
        }
    }
    return 0;
}

static uint64_t clock_from_cpuid15(void)
{
    uint32_t r[4];
    cpu_cpuid(0, 0, r);
    if (r[0] < 0x15)
        return 0;
    cpu_cpuid(0x15, 0, r); /* eax: denominator, ebx: numerator, ecx: crystal Hz */
    if (!r[0] || !r[1] || !r[2])
        return 0;
    clock_src = "cpuid-15";
    return (uint64_t)r[2] * r[1] / r[0];
}

/*
 * PIT fallback, split in two so the measurement overlaps the rest of the
 * boot instead of adding a busy wait to it:
 *   start:  program channel 2 in mode 0 with 0xFFFF (counts down at
 *           1.193182 MHz; OUT, port 0x61 bit 5, goes high at zero) and
 *           stamp the TSC right after the count write.
 *   finish: latch and read the count in a loop, stamping the TSC before
 *           each latch, until the count changes (a tick edge) with at least
 *           CLOCK_PIT_TICKS elapsed. Elapsed ticks at that edge are exact.
 * The first loop iteration is never used: under TCG, code that runs for the
 * first time is translated first, which would skew the stamp.
 */
#define PIT_LATCH_CH2 0x80
#define PIT_FULL      0xFFFFu

static uint64_t pit_t0;

static void pit_start(void)
{
    uint8_t gate = inb(PIT_GATE);
    outb(PIT_GATE, (gate & ~0x02) | 0x01); /* gate on, speaker off */
    outb(PIT_CMD, PIT_CH2_MODE0);
    outb(PIT_CH2, PIT_FULL & 0xFF);
    outb(PIT_CH2, PIT_FULL >> 8);
    pit_t0 = cpu_rdtsc();
}

static uint16_t pit_count(void)
{
    outb(PIT_CMD, PIT_LATCH_CH2);
    uint8_t lo = inb(PIT_CH2);
    uint8_t hi = inb(PIT_CH2);
    return (uint16_t)(hi << 8 | lo);
}

static uint64_t pit_finish(void)
{
    if (inb(PIT_GATE) & 0x20) { /* counted past zero: too late, redo */
        pit_start();
    }
    uint16_t prev = pit_count();
    uint64_t t;
    uint16_t c;
    for (int iter = 0;; iter++) {
        t = cpu_rdtsc();
        c = pit_count();
        if (c != prev && iter > 0 && PIT_FULL - c >= CLOCK_PIT_TICKS)
            break;
        prev = c;
    }
    clock_src = "pit";
    return cpu_muldiv(t - pit_t0, PIT_HZ, PIT_FULL - c);
}

void clock_start(void)
{
    clock_hz = clock_from_hypervisor_leaf();
    if (!clock_hz)
        clock_hz = clock_from_cpuid15();
    if (!clock_hz)
        pit_start();
}

void clock_init(void)
{
    if (!clock_hz)
        clock_hz = pit_finish();
    if (!clock_hz) { /* cannot happen with a working PIT */
        clock_hz = 1000000000;
        clock_src = "guess";
    }
}

uint64_t clock_tsc_hz(void)
{
    return clock_hz;
}
const char *clock_source(void)
{
    return clock_src;
}

uint64_t clock_tsc_to_ns(uint64_t ticks)
{
    return cpu_muldiv(ticks, 1000000000ull, clock_hz);
}

uint64_t clock_monotonic_ns(void)
{
    return clock_tsc_to_ns(cpu_rdtsc() - kern_boot_tsc);
}

/*
 * Stop PIT channel 0 (issue 13, "idle guests cost nearly nothing").
 * The firmware leaves it as QEMU resets it: mode 3, count 65536, a square
 * wave at 18.2 Hz. Its interrupt never reaches us (qboot leaves LVT0
 * masked and we route no I/O APIC pin for IRQ0), but QEMU emulates the
 * counter with a host timer that fires at every edge of the output: the
 * main loop of an idle guest woke ~37 times a second for nothing, 0.2% of
 * a CPU per idle guest under TCG (KVM's in-kernel PIT does the same with a
 * host hrtimer). Mode 0 (interrupt on terminal count) is one-shot: after
 * the count runs out once the counter stays quiet until the next count
 * write, which never comes. The count (1: it runs out at once, before the
 * guest halts) is needed as well: QEMU and KVM reprogram their timer on a
 * count write, not on the control word alone. Nothing here uses channel
 * 0; the TSC measurement uses channel 2, which has no timer behind it.
 */
static void pit_ch0_stop(void)
{
    outb(PIT_CMD, PIT_CH0_MODE0);
    outb(PIT_CH0, 1);
    outb(PIT_CH0, 0);
}

/* shoal.tickless=0: behave as before issue 13 (PIT channel 0 left running,
 * sleeps sliced at 1 s). Only the idle benchmark's baseline and the
 * regression test's self-check use it (tests/bench/guest/bench_idle.sh). */
static int clock_legacy;

/* Halt until the TSC reaches deadline or ready() (may be NULL) says so,
 * one armed local APIC halt at a time. The first sleep (the first time the
 * guest goes idle) brings up the APIC and the power button and stops the
 * PIT: done here, not in clock_init, to keep the exits off the boot path.
 * Every wakeup checks the button and ready(). Nothing wakes an idle guest
 * but the deadline, a device or the SCI: sleeps are cut only into long
 * slices (acpi_slice_ns: 60 s with the SCI, 100 ms without), a net under
 * wakeups lost by a device model. Without an APIC: a busy wait. Returns 1
 * if ready, 0 at the deadline. */
static int clock_sleep_until(uint64_t deadline, int (*ready)(void))
{
    static int tried, have_apic;
    int r = 0;
    if (!tried) { /* first sleep: bring the APIC up */
        tried = 1;
        const char *t = shoal_param("tickless");
        clock_legacy = t && strcmp(t, "0") == 0;
        if (!clock_legacy)
            pit_ch0_stop();
        have_apic = apic_init(clock_hz) == 0;
        acpi_init(); /* only sleepers can notice the button */
    }
    if (!have_apic) {
        while (cpu_rdtsc() < deadline)
            if (ready && ready())
                return 1;
        return 0;
    }
    for (;;) {
        uint64_t now = cpu_rdtsc(), wake = deadline;
        /* Sleep in slices so the power button is noticed (acpi.h). */
        uint64_t slice_ns = acpi_slice_ns();
        if (clock_legacy && slice_ns > CLOCK_LEGACY_SLICE_NS)
            slice_ns = CLOCK_LEGACY_SLICE_NS;
        uint64_t slice = cpu_muldiv(slice_ns, clock_hz, 1000000000ull);
        acpi_poll();
        if (ready && (r = ready()) != 0)
            break;
        if (now >= deadline)
            break;
        if (slice && deadline - now > slice)
            wake = now + slice;
        apic_halt_until(now, wake);
    }
    apic_timer_stop();
    return r != 0;
}

void clock_sleep_ns(uint64_t ns)
{
    uint64_t start = cpu_rdtsc();
    uint64_t ticks = cpu_muldiv(ns, clock_hz, 1000000000ull);
    clock_sleep_until(start + ticks + 1, NULL);
}

int clock_sleep_ready_ns(uint64_t ns, int (*ready)(void))
{
    /* "Forever" arrives as ~UINT64_MAX: a day keeps the TSC arithmetic in
     * range (cpu_muldiv's result must fit 64 bits) and ends no real wait. */
    const uint64_t day_ns = 86400ull * 1000000000ull;
    uint64_t start = cpu_rdtsc();
    uint64_t ticks = cpu_muldiv(ns < day_ns ? ns : day_ns, clock_hz, 1000000000ull);
    return clock_sleep_until(start + ticks + 1, ready);
}

/* --- CMOS RTC ---------------------------------------------------------- */

#define CMOS_ADDR 0x70
#define CMOS_DATA 0x71

static uint8_t cmos_read(uint8_t reg)
{
    outb(CMOS_ADDR, reg);
    return inb(CMOS_DATA);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void clock_read_rtc(void)
{
    uint8_t t[6], again[6];
    static const uint8_t regs[6] = { 0x00, 0x02, 0x04, 0x07, 0x08, 0x09 };
    /* Read until two consecutive reads agree and no update is in progress. */
    for (int tries = 0; tries < 100; tries++) {
        while (cmos_read(0x0A) & 0x80)
            ;
        for (int i = 0; i < 6; i++)
            t[i] = cmos_read(regs[i]);
        for (int i = 0; i < 6; i++)
            again[i] = cmos_read(regs[i]);
        if (memcmp(t, again, sizeof t) == 0)
            break;
    }
    uint8_t b = cmos_read(0x0B);
    int pm = t[2] & 0x80;
    t[2] &= 0x7F;
    if (!(b & 0x04)) /* BCD -> binary */
        for (int i = 0; i < 6; i++)
            t[i] = (uint8_t)((t[i] & 0x0F) + (t[i] >> 4) * 10);
    if (!(b & 0x02) && pm) /* 12-hour clock */
        t[2] = (uint8_t)((t[2] % 12) + 12);
    int64_t days = days_from_civil(2000 + t[5], t[4], t[3]);
    int64_t secs = days * 86400 + t[2] * 3600 + t[1] * 60 + t[0];
    rtc_tsc = cpu_rdtsc();
    rtc_epoch_ns = (uint64_t)secs * 1000000000ull;
}

uint64_t clock_realtime_ns(void)
{
    if (!rtc_epoch_ns)
        clock_read_rtc();
    return rtc_epoch_ns + clock_tsc_to_ns(cpu_rdtsc() - rtc_tsc);
}
