/*
 * apic.c - local APIC timer (see apic.h). Register numbers from the Intel
 * SDM vol. 3, chapter 11 "Advanced Programmable Interrupt Controller".
 */
#include "apic.h"

#include <stddef.h>

#include "cpu.h"
#include "idt.h"

#define APIC_REG_EOI      0x0B0
#define APIC_REG_SVR      0x0F0
#define APIC_REG_LVT_TMR  0x320
#define APIC_REG_TMR_INIT 0x380
#define APIC_REG_TMR_CUR  0x390
#define APIC_REG_TMR_DIV  0x3E0

#define APIC_BASE_ENABLE 0x800u /* IA32_APIC_BASE bit 11 */
#define APIC_BASE_X2     0x400u /* IA32_APIC_BASE bit 10 */
#define APIC_SVR_ENABLE  0x100u
#define LVT_MASKED       0x10000u
#define LVT_TSC_DEADLINE 0x40000u /* timer mode bits 18:17 = 10b */
#define TMR_DIV_1        0x0Bu

/* Divide configuration values for divide-by 1, 2, 4, ... 128 (SDM 11.5.4:
 * bits 3, 1:0). */
static const uint8_t tmr_div[8] = { 0x0B, 0x00, 0x01, 0x02, 0x03, 0x08, 0x09, 0x0A };

#define CPUID1_EDX_APIC        (1u << 9)
#define CPUID1_ECX_X2APIC      (1u << 21)
#define CPUID1_ECX_TSCDEADLINE (1u << 24)

static int apic_ok, apic_x2, apic_deadline;
static volatile uint32_t *apic_mmio;
static uint64_t apic_hz;     /* one-shot mode: timer ticks per second */
static uint64_t apic_tsc_hz; /* from the kernel's clock (apic_init) */

static void apic_write(uint32_t reg, uint32_t v)
{
    if (apic_x2)
        cpu_wrmsr(0x800 + (reg >> 4), v);
    else
        apic_mmio[reg / 4] = v;
}

static uint32_t apic_read(uint32_t reg)
{
    return apic_x2 ? (uint32_t)cpu_rdmsr(0x800 + (reg >> 4)) : apic_mmio[reg / 4];
}

void apic_eoi(void)
{
    apic_write(APIC_REG_EOI, 0);
}

const char *apic_timer_mode(void)
{
    return !apic_ok ? "none" : apic_deadline ? "tsc-deadline" : "one-shot";
}

/* One-shot mode needs the timer's rate: count down for ~1 ms of TSC. */
static void apic_calibrate(void)
{
    apic_write(APIC_REG_TMR_DIV, TMR_DIV_1);
    apic_write(APIC_REG_LVT_TMR, LVT_MASKED | IDT_VEC_TIMER);
    uint64_t t0 = cpu_rdtsc();
    apic_write(APIC_REG_TMR_INIT, 0xFFFFFFFFu);
    uint64_t span = apic_tsc_hz / 1000;
    while (cpu_rdtsc() - t0 < span)
        ;
    uint32_t left = apic_read(APIC_REG_TMR_CUR);
    uint64_t t1 = cpu_rdtsc();
    apic_write(APIC_REG_TMR_INIT, 0);
    uint64_t ticks = 0xFFFFFFFFu - left;
    apic_hz = cpu_muldiv(ticks, apic_tsc_hz, t1 - t0);
    if (apic_hz == 0)
        apic_hz = 1;
}

int apic_init(uint64_t tsc_hz)
{
    uint32_t r[4];
    cpu_cpuid(1, 0, r);
    if (!(r[3] & CPUID1_EDX_APIC))
        return -1;
    apic_x2 = !!(r[2] & CPUID1_ECX_X2APIC);
    apic_deadline = !!(r[2] & CPUID1_ECX_TSCDEADLINE);

    /* 1. Enable the APIC (and x2APIC mode) in IA32_APIC_BASE. */
    uint64_t base = cpu_rdmsr(MSR_APIC_BASE);
    base |= APIC_BASE_ENABLE;
    if (apic_x2)
        base |= APIC_BASE_X2;
    cpu_wrmsr(MSR_APIC_BASE, base);
    apic_mmio = (volatile uint32_t *)(uintptr_t)(base & 0xFFFFF000u);

    /* 2. Software-enable with our spurious vector; timer masked for now. */
    apic_write(APIC_REG_SVR, APIC_SVR_ENABLE | IDT_VEC_SPURIOUS);
    apic_write(APIC_REG_LVT_TMR, LVT_MASKED | IDT_VEC_TIMER);
    apic_ok = 1;
    apic_tsc_hz = tsc_hz;

    /* 3. One-shot mode: the timer's rate, against the kernel's TSC rate. */
    if (!apic_deadline)
        apic_calibrate();
    return 0;
}

void apic_halt_until(uint64_t now, uint64_t wake)
{
    if (apic_deadline) {
        apic_write(APIC_REG_LVT_TMR, LVT_TSC_DEADLINE | IDT_VEC_TIMER);
        cpu_wrmsr(MSR_TSC_DEADLINE, wake);
    } else {
        /* Round up so the wakeup lands at or after the deadline. The count
         * register has 32 bits: at divide-by-1 that is 4.29 s at QEMU's
         * 1 GHz timer, so a longer wait takes the smallest divider that
         * fits it (up to 128: 9 min at 1 GHz) instead of waking an idle
         * guest every 4.29 s (issue 13). Longer still ends early, and the
         * caller sleeps on. */
        uint64_t n = cpu_muldiv(wake - now, apic_hz, apic_tsc_hz) + 1;
        unsigned shift = 0;
        while (shift < 7 && ((n + (1ull << shift) - 1) >> shift) > 0xFFFFFFFFu)
            shift++;
        n = (n + (1ull << shift) - 1) >> shift;
        if (n > 0xFFFFFFFFu)
            n = 0xFFFFFFFFu;
        apic_write(APIC_REG_TMR_DIV, tmr_div[shift]);
        apic_write(APIC_REG_LVT_TMR, IDT_VEC_TIMER);
        apic_write(APIC_REG_TMR_INIT, (uint32_t)n);
    }
    cpu_sti_hlt();
}

void apic_timer_stop(void)
{
    apic_write(APIC_REG_LVT_TMR, LVT_MASKED | IDT_VEC_TIMER);
}

uint8_t apic_id(void)
{
    uint32_t r[4];
    cpu_cpuid(1, 0, r);
    return (uint8_t)(r[1] >> 24);
}
