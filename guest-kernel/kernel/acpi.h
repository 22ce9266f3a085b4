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
 * ACPI_SAFETY_NS when it is.
 *
 * With the SCI routed the button needs no slices: the SCI is level-triggered
 * and the sleep loop halts with "sti; hlt", so a press that comes while the
 * guest is busy or between the check and the hlt stays pending and wakes
 * the hlt at once. The slice is kept only as a net under a wakeup lost by
 * a device model or an interrupt route we got wrong (the receive interrupt
 * too, for network waits). It was 1 s, the largest wake-up source of an
 * idle guest after the PIT (issue 13); at 60 s it costs nothing measurable
 * and still bounds such a loss. A graceful stop does not depend on it:
 * the daemon destroys a guest that has not exited after its stop timeout
 * (10 s by default), and tests/guest checks the stop of an idle guest
 * takes well under a slice.
 */
#ifndef SHOAL_KERNEL_ACPI_H
#define SHOAL_KERNEL_ACPI_H

#include <stdint.h>

#define ACPI_POLL_NS   100000000ull   /* longest hlt between two checks, no SCI */
#define ACPI_SAFETY_NS 60000000000ull /* the same with the SCI routed */
#define ACPI_SCI_GSI   9              /* QEMU pc: PIIX4 PM SCI */
/* Exit code on a power-button stop: 128 + SIGTERM, as in POSIX shells. */
#define ACPI_EXIT_STOP 143

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
