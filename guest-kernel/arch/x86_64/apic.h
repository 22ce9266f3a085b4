/*
 * apic.h - local APIC, used only as a one-shot wakeup timer.
 *
 * qboot leaves LVT0 masked, so PIT interrupts never arrive; sleeping is
 * "arm the local APIC timer, hlt, check the TSC". x2APIC (MSR access) is used
 * when the CPU has it, else xAPIC MMIO at the APIC base. The timer runs in
 * TSC-deadline mode when CPUID advertises it, else in one-shot mode with its
 * rate measured against the TSC on first use.
 */
#ifndef SHOAL_ARCH_APIC_H
#define SHOAL_ARCH_APIC_H

#include <stdint.h>

/* Enable the local APIC with the timer masked. Returns 0, or -1 if the CPU
 * has no APIC (then apic_sleep_until busy-waits). apic_sleep_until calls
 * it on first use, which keeps its MSR/CPUID exits off the boot path. */
int apic_init(void);

/* Acknowledge the interrupt being serviced. */
void apic_eoi(void);

/* Return once the TSC has reached deadline, halting the CPU in between.
 * Needs clock_init() done (for the TSC rate). Interrupts are enabled only
 * inside the hlt window. */
void apic_sleep_until(uint64_t tsc_deadline);

/* The same, but also return as soon as ready() is non-zero. ready() is
 * called before the first hlt and after every wakeup: a device interrupt
 * (IDT_VEC_DEVICE), or at the latest the next power-button slice
 * (acpi_slice_ns: 1 s, or 100 ms without the SCI), so even a wakeup lost
 * by the device costs at most one slice. Returns 1 if ready() said so, 0
 * at the deadline. */
int apic_sleep_until_ready(uint64_t tsc_deadline, int (*ready)(void));

/* The local APIC ID of this CPU (for MSI messages), from CPUID. */
uint8_t apic_id(void);

/* "tsc-deadline", "one-shot", or "none" (also before apic_init). */
const char *apic_timer_mode(void);

#endif
