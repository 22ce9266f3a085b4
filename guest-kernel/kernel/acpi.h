/*
 * acpi.h - the ACPI power button, polled: how a graceful stop reaches the
 * guest.
 *
 * libvirt's virDomainShutdown presses the ACPI power button (QMP
 * system_powerdown). QEMU's PIIX4 PM then sets PWRBTN_STS in PM1a_STS, but
 * only when the guest enabled PWRBTN_EN in PM1a_EN. The SCI that would
 * announce it cannot arrive here (no IOAPIC routing is set up, and qboot
 * leaves LVT0 masked), so the kernel checks the status bit whenever it wakes
 * from a sleep; sleeps are cut into ACPI_POLL_NS slices for that.
 */
#ifndef SHOAL_KERNEL_ACPI_H
#define SHOAL_KERNEL_ACPI_H

#include <stdint.h>

#define ACPI_POLL_NS    100000000ull   /* longest hlt between two checks */
#define ACPI_EXIT_STOP  143            /* exit code on a power-button stop
                                          (128 + SIGTERM, as in POSIX shells) */

/* Enable the power-button status bit. Returns 0, or -1 when the machine has
 * no PIIX4 PM block at the expected ports (then polling does nothing). */
int acpi_init(void);

/* Called after every wakeup: if the power button was pressed, clear it,
 * say so on the console and exit with ACPI_EXIT_STOP. */
void acpi_poll(void);

#endif
