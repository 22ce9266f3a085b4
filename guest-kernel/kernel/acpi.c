/*
 * acpi.c - ACPI power button, SCI-woken and polled. See acpi.h.
 */
#include "acpi.h"

#include <stdio.h>

#include "kern.h"
#include "../arch/x86_64/apic.h"
#include "../arch/x86_64/cpu.h"
#include "../arch/x86_64/idt.h"
#include "../arch/x86_64/ioapic.h"

#define PM1A_STS 0x600 /* PIIX4 PM1a event block, as set up by qboot */
#define PM1A_EN  0x602
#define PWRBTN   0x0100 /* bit 8 in both registers */

static int acpi_ok, acpi_sci;

static inline uint16_t inw(uint16_t port)
{
    uint16_t v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

int acpi_init(void)
{
    uint16_t en = inw(PM1A_EN);
    /* No device answers with all ones; then there is nothing to poll. */
    if (en == 0xFFFF)
        return -1;
    /* Only the power button may raise the SCI: the wake handler masks the
     * SCI for good, so another source (the PM timer's overflow, say) would
     * take the fast path away from the button. */
    outw(PM1A_EN, PWRBTN);
    if (!(inw(PM1A_EN) & PWRBTN))
        return -1;
    outw(PM1A_STS, 0xFFFF); /* status bits clear when written with 1 */
    acpi_ok = 1;
    acpi_sci = ioapic_route(ACPI_SCI_GSI, IDT_VEC_SCI, apic_id(), 1, 0) == 0;
    return 0;
}

uint64_t acpi_slice_ns(void)
{
    return acpi_sci ? ACPI_SAFETY_NS : ACPI_POLL_NS;
}

void acpi_poll(void)
{
    if (!acpi_ok || !(inw(PM1A_STS) & PWRBTN))
        return;
    outw(PM1A_STS, PWRBTN);
    printf("shoal: ACPI power button: stopping\n");
    kern_exit(ACPI_EXIT_STOP);
}
