/*
 * idt.h - interrupt descriptor table and CPU exception reporting.
 *
 * Every CPU exception (vectors 0-31) is fatal: idt_dispatch prints a report
 * on the console (vector, name, error code, RIP, CR2, registers, a
 * frame-pointer stack trace), has the kernel write the status channel's
 * crash record (the crash hook it registered with idt_init), signals
 * pvpanic and halts the CPU for good. Vector IDT_VEC_TIMER is the
 * local APIC timer (see apic.h) and IDT_VEC_DEVICE the one vector device
 * interrupts (MSI-X, e.g. virtio-net's receive queue) are sent to; both
 * only acknowledge the interrupt, since their purpose is to wake a hlt
 * (the woken code looks at the device itself).
 * #DF, #SS and #PF run on a separate interrupt stack (IST1 of a TSS), and
 * the page below the kernel stack is unmapped, so a stack overflow is
 * reported like any other page fault.
 */
#ifndef SHOAL_ARCH_IDT_H
#define SHOAL_ARCH_IDT_H

#include <stdint.h>

/* IDT_VEC_SCI: the ACPI SCI via the I/O APIC (power button), a wakeup; the
 * handler masks it (ioapic.h). */
#define IDT_VEC_TIMER    32 /* local APIC timer */
#define IDT_VEC_DEVICE   33 /* device interrupts (MSI-X): a wakeup */
#define IDT_VEC_SCI      34 /* ACPI SCI (power button) */
#define IDT_VEC_SPURIOUS 47 /* local APIC spurious interrupt (low nibble 0xF) */
#define IDT_ENTRIES      48 /* the IDT ends here: a vector past it raises #GP */

/* The frame traps.S builds on the stack; lowest address first. */
struct trap_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax; /* saved by trap_common */
    uint64_t vector;                            /* pushed by the stub */
    uint64_t error;                             /* CPU error code, or 0 if the vector has none */
    uint64_t rip;                               /* the rest is pushed by the CPU */
    uint64_t cs;
    uint64_t rflags;
    uint64_t rsp;
    uint64_t ss;
};

/* What the fatal path needs from the kernel above, which arch must not
 * name: registered once by idt_init. */
struct idt_hooks {
    /* The image's name, for the trace's addr2line hint
     * (images/debug/<image>.elf). */
    const char *image;
    /* Write the crash record (the kernel's status channel). Called after
     * the console report, or alone for a fault while reporting; idt then
     * signals pvpanic and halts, also when it is NULL. */
    void (*crash_record)(uint64_t vector, uint64_t error, uint64_t rip, uint64_t cr2);
};

/* Load the TSS and the IDT, unmap the stack guard page, keep *hooks. Call
 * once, early in kern_main, so that a fault anywhere later is reported
 * instead of triple-faulting. */
void idt_init(const struct idt_hooks *hooks);

/* Called from traps.S for every vector. Returns only for interrupts. */
void idt_dispatch(struct trap_frame *f);

/* Print "  #i 0x..." lines for the return addresses found by following the
 * saved-rbp chain from rbp. Stops at a zero/misaligned/out-of-stack frame. */
void idt_print_trace(uint64_t rip, uint64_t rbp);

#endif
