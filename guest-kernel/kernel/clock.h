/*
 * clock.h - time from the TSC.
 *
 * The TSC rate is taken, in order of preference, from: the hypervisor
 * timing leaf (CPUID 0x40000010), KVM's pvclock (mul/shift published by the
 * host), CPUID 0x15 (crystal ratio), or measured against PIT channel 2 by
 * polling (no interrupts needed; works under TCG). The PIT measurement runs
 * from clock_start to clock_init, overlapping the boot steps in between. Monotonic time counts
 * from PVH entry (kern_boot_tsc). Wall time is the CMOS RTC, read once on
 * first use and advanced by the TSC.
 */
#ifndef SHOAL_KERNEL_CLOCK_H
#define SHOAL_KERNEL_CLOCK_H

#include <stdint.h>

/* Shortest window of the PIT calibration, in PIT ticks (1.193182 MHz). */
#define CLOCK_PIT_TICKS 600 /* ~503 us; measured 0.02-0.1% error under TCG */

/* Begin determining the TSC rate (first thing at boot). */
void clock_start(void);

/* Finish it: afterwards clock_tsc_hz() is valid. Call before any other
 * clock_ function; waits only if less than CLOCK_PIT_TICKS have passed
 * since clock_start. */
void clock_init(void);

uint64_t clock_tsc_hz(void);

/* Where the rate came from: "cpuid-40000010", "kvmclock", "cpuid-15",
 * "pit". */
const char *clock_source(void);

/* Nanoseconds since PVH entry. */
uint64_t clock_monotonic_ns(void);

/* Nanoseconds between two TSC readings. */
uint64_t clock_tsc_to_ns(uint64_t ticks);

/* Nanoseconds since 1970-01-01 UTC. */
uint64_t clock_realtime_ns(void);

/* Halt the CPU for at least ns nanoseconds (local APIC timer; the first
 * sleep enables the APIC and the ACPI power button and stops PIT channel
 * 0, so that nothing periodic wakes an idle guest; see clock.c). */
void clock_sleep_ns(uint64_t ns);

/* Halt for up to ns nanoseconds, returning early once ready() is non-zero.
 * ready() is called before the first hlt and after every wakeup: a device
 * interrupt (IDT_VEC_DEVICE), or at the latest the next power-button slice
 * (acpi_slice_ns: 60 s, or 100 ms without the SCI), so even a wakeup lost
 * by the device costs at most one slice. Returns 1 if ready, 0 if the time
 * ran out. Every sleep also acts on the power button (acpi_poll). */
int clock_sleep_ready_ns(uint64_t ns, int (*ready)(void));

#endif
