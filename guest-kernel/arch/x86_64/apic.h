/*
 * apic.h - local APIC, used only as a one-shot wakeup timer.
 *
 * qboot leaves LVT0 masked, so PIT interrupts never arrive; sleeping is
 * "arm the local APIC timer, hlt, check the TSC". x2APIC (MSR access) is used
 * when the CPU has it, else xAPIC MMIO at the APIC base. The timer runs in
 * TSC-deadline mode when CPUID advertises it, else in one-shot mode with its
 * rate measured against the TSC on first use.
 * This is the mechanism only: one armed halt at a time. The sleep loop
 * around it - deadline, early wakeup, power-button slices - is the
 * kernel's (kernel/clock.c), which also hands in the TSC rate.
 */
#ifndef SHOAL_ARCH_APIC_H
#define SHOAL_ARCH_APIC_H

#include <stdint.h>

/* Enable the local APIC with the timer masked. tsc_hz is the TSC rate (in
 * one-shot mode the timer's own rate is measured against it here, ~1 ms).
 * Returns 0, or -1 if the CPU has no APIC (then the caller busy-waits).
 * The kernel calls it on the first sleep, which keeps its MSR/CPUID exits
 * off the boot path. */
int apic_init(uint64_t tsc_hz);

/* Acknowledge the interrupt being serviced. */
void apic_eoi(void);

/* Arm the timer for the TSC value wake (now: the TSC the caller read,
 * now < wake) and halt until it fires or any other interrupt arrives (a
 * device's IDT_VEC_DEVICE, the SCI). Returns after that one wakeup, with
 * the timer possibly still armed: the caller decides whether to sleep on,
 * and masks the timer with apic_timer_stop when done. Interrupts are
 * enabled only inside the hlt window. Needs apic_init() == 0. */
void apic_halt_until(uint64_t now, uint64_t wake);

/* Mask the timer (the end of a sleep). */
void apic_timer_stop(void);

/* The local APIC ID of this CPU (for MSI messages), from CPUID. */
uint8_t apic_id(void);

/* "tsc-deadline", "one-shot", or "none" (also before apic_init). */
const char *apic_timer_mode(void);

#endif
