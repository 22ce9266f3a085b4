/*
 * ioapic.h - the I/O APIC, used for one thing: routing the ACPI SCI (the
 * power button) to a vector so that a halted guest wakes when it is
 * pressed. Devices use MSI-X instead, which needs no I/O APIC.
 *
 * Assumptions: one I/O APIC at the PC default address 0xFEC00000 (QEMU's
 * `pc` machine), identity-mapped uncached (boot.S); single CPU.
 */
#ifndef SHOAL_ARCH_IOAPIC_H
#define SHOAL_ARCH_IOAPIC_H

#include <stdint.h>

/* Send input `pin` to `vector` of local APIC `apic`, fixed delivery,
 * unmasked. Returns 0, or -1 when there is no I/O APIC or no such pin. */
int ioapic_route(unsigned pin, uint8_t vector, uint8_t apic, int level, int active_low);

/* Mask every pin routed to vector. Safe in an interrupt handler: a level
 * interrupt whose cause only the main context can clear would otherwise
 * be delivered again right after its EOI, forever. */
void ioapic_mask_vector(uint8_t vector);

#endif
