/*
 * cpu.h - x86_64 instruction wrappers (port I/O, MSRs, control registers,
 * TSC, CPUID, 128-bit multiply-divide). Header-only; every function is a
 * single instruction or two.
 * Prefix: cpu_ (plus the conventional inb/outb names).
 */
#ifndef SHOAL_ARCH_CPU_H
#define SHOAL_ARCH_CPU_H

#include <stdint.h>

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
    __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint64_t cpu_rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static inline uint64_t cpu_rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}

static inline void cpu_wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

/* CPUID leaf/subleaf; r[0..3] = eax, ebx, ecx, edx. */
static inline void cpu_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ volatile("cpuid"
                     : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                     : "a"(leaf), "c"(sub));
}

static inline uint64_t cpu_read_cr2(void)
{
    uint64_t v;
    __asm__ volatile("mov %%cr2, %0" : "=r"(v));
    return v;
}

static inline uint64_t cpu_read_cr3(void)
{
    uint64_t v;
    __asm__ volatile("mov %%cr3, %0" : "=r"(v));
    return v;
}

static inline uint64_t cpu_read_rbp(void)
{
    uint64_t v;
    __asm__ volatile("mov %%rbp, %0" : "=r"(v));
    return v;
}

static inline void cpu_cli(void)
{
    __asm__ volatile("cli" ::: "memory");
}

/* sti takes effect after the next instruction, so "sti; hlt" cannot lose a
 * wakeup that arrives between the two. */
static inline void cpu_sti_hlt(void)
{
    __asm__ volatile("sti; hlt; cli" ::: "memory");
}

/* a * b / c with a 128-bit intermediate (mulq, divq); c != 0. Saturates at
 * UINT64_MAX when the result does not fit 64 bits. Here, not in the
 * clock, because the APIC timer converts TSC spans with it too. */
static inline uint64_t cpu_muldiv(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t hi, lo, q, r;
    __asm__("mulq %3" : "=a"(lo), "=d"(hi) : "a"(a), "r"(b));
    if (hi >= c) /* quotient would overflow: saturate */
        return UINT64_MAX;
    __asm__("divq %4" : "=a"(q), "=d"(r) : "a"(lo), "d"(hi), "r"(c));
    (void)r;
    return q;
}

static inline __attribute__((noreturn)) void cpu_halt_forever(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* MSR numbers used by the kernel. */
#define MSR_APIC_BASE           0x0000001Bu
#define MSR_TSC_DEADLINE        0x000006E0u
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01u

#endif
