/*
 * acpi.h - the ACPI power button: how a graceful stop reaches the guest.
 *
 * libvirt's virDomainShutdown presses the ACPI power button (QMP
 * system_powerdown). QEMU's PIIX4 PM then sets PWRBTN_STS in PM1a_STS, but
 * only when the guest enabled PWRBTN_EN in PM1a_EN, and raises the SCI.
 * The kernel routes the SCI through the I/O APIC to IDT_VEC_SCI (QEMU's
 * `pc`: GSI 9, level, active high, as its MADT's interrupt source override
 * says), so a halted guest wakes at once; every wakeup checks the status
 * bit (acpi_poll). Sleeps are still cut into slices - ACPI_POLL_NS when the
 * SCI could not be routed (then the slices are how the button is noticed),
 * ACPI_SAFETY_NS when it is (a net under lost wakeups, costing an idle
 * guest one wakeup a second).
 */
#ifndef SHOAL_KERNEL_ACPI_H
#define SHOAL_KERNEL_ACPI_H

#include <stdint.h>

#define ACPI_POLL_NS    100000000ull   /* longest hlt between two checks, no SCI */
#define ACPI_SAFETY_NS 1000000000ull   /* the same with the SCI routed */
#define ACPI_SCI_GSI    9              /* QEMU pc: PIIX4 PM SCI */
#define ACPI_EXIT_STOP  143            /* exit code on a power-button stop
                                          (128 + SIGTERM, as in POSIX shells) */

/* Enable the power-button event (and no other PM1 event) and route the SCI.
 * Needs the local APIC enabled (apic_init); the clock's first sleep calls
 * both. Returns 0, or -1 when the
 * machine has no PIIX4 PM block at the expected ports (then polling does
 * nothing). */
int acpi_init(void);

/* Longest hlt between two acpi_poll calls: ACPI_SAFETY_NS if the SCI is
 * routed, else ACPI_POLL_NS. */
uint64_t acpi_slice_ns(void);

/* Called after every wakeup: if the power button was pressed, clear it,
 * say so on the console and exit with ACPI_EXIT_STOP. */
void acpi_poll(void);

#endif
