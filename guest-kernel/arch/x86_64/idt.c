/*
 * idt.c - IDT setup and the fatal exception report. See idt.h.
 */
#include "idt.h"
#include "ioapic.h"

#include <stdio.h>

#include "apic.h"
#include "cpu.h"

#define IDT_GATE_INT     0x8E /* present, DPL 0, 64-bit interrupt gate */
#define SEL_CODE64       0x08
#define PVPANIC_PORT     0x505
#define PVPANIC_PANICKED 1
#define TRACE_MAX        32

struct idt_gate {
    uint16_t off_lo;  /* handler bits 0..15 */
    uint16_t sel;     /* code segment selector */
    uint8_t ist;      /* interrupt stack table index, 0 = current stack */
    uint8_t type;     /* gate type and present bit */
    uint16_t off_mid; /* handler bits 16..31 */
    uint32_t off_hi;  /* handler bits 32..63 */
    uint32_t zero;
} __attribute__((packed));

struct idt_ptr {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

/* From traps.S: vectors 0..31, then IDT_VEC_TIMER, IDT_VEC_SPURIOUS,
 * IDT_VEC_DEVICE and IDT_VEC_SCI. */
extern const uint64_t idt_stub_table[36];
/* From boot.S: the only stack (bounds the frame-pointer walk), the page
 * below it, the GDT (TSS slot at IDT_SEL_TSS) and the first 2 MiB's PT. */
extern char boot_stack_guard[], boot_stack_bottom[], boot_stack_top[];
extern uint64_t boot_gdt[], boot_pt0[];

#define IDT_SEL_TSS    0x18
#define IDT_IST_FAULT  1 /* IST slot for faults that may hit a bad stack */
#define IST_STACK_SIZE 8192

/* 64-bit TSS: only the interrupt stack table is used. */
struct idt_tss {
    uint32_t reserved0;
    uint64_t rsp[3]; /* stacks for privilege changes (unused: ring 0 only) */
    uint64_t reserved1;
    uint64_t ist[7]; /* IST1..IST7 */
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap; /* I/O bitmap offset; past the limit = none */
} __attribute__((packed));

/* Text symbols sorted by address, generated into each image by
 * shoal_add_guest_image (cmake/ksyms.cmake). Weak: absent in the first of
 * the two links, and in images built some other way. */
struct idt_ksym {
    uint64_t addr; /* start of the function or label */
    const char *name;
};
extern const struct idt_ksym shoal_ksyms[] __attribute__((weak));
extern const uint64_t shoal_nksyms __attribute__((weak));

static struct idt_tss idt_tss;
/* A stack overflow runs into the guard page; the #PF (and a #DF) must then
 * be delivered on a stack that works, or the CPU triple-faults silently. */
static char idt_ist_stack[IST_STACK_SIZE] __attribute__((aligned(16), section(".noinit")));

/* Only the vectors in use: under nested KVM every instruction before the
 * app runs costs boot time, so no loop over 256 gates. */
static struct idt_gate idt[IDT_ENTRIES];
static int idt_in_fault;
static struct idt_hooks idt_hooks;

static const char *const idt_names[32] = {
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range",
    "#UD invalid opcode",
    "#NM device not available",
    "#DF double fault",
    "coprocessor segment overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack fault",
    "#GP general protection",
    "#PF page fault",
    "reserved",
    "#MF x87 floating point",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD floating point",
    "#VE virtualization",
    "#CP control protection",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "#HV hypervisor injection",
    "#VC VMM communication",
    "#SX security",
    "reserved",
};

static void idt_set(int vec, uint64_t handler, uint8_t ist)
{
    idt[vec].off_lo = handler & 0xFFFF;
    idt[vec].sel = SEL_CODE64;
    idt[vec].ist = ist;
    idt[vec].type = IDT_GATE_INT;
    idt[vec].off_mid = (handler >> 16) & 0xFFFF;
    idt[vec].off_hi = handler >> 32;
    idt[vec].zero = 0;
}

void idt_init(const struct idt_hooks *hooks)
{
    idt_hooks = *hooks;

    /* 1. TSS with IST1, its descriptor in the GDT, ltr. */
    idt_tss.ist[IDT_IST_FAULT - 1] = (uint64_t)(uintptr_t)(idt_ist_stack + IST_STACK_SIZE);
    idt_tss.iomap = sizeof(idt_tss);
    uint64_t base = (uint64_t)(uintptr_t)&idt_tss, limit = sizeof(idt_tss) - 1;
    boot_gdt[IDT_SEL_TSS / 8] = (limit & 0xFFFF) | (base & 0xFFFFFF) << 16 |
                                0x89ull << 40 | /* present, 64-bit TSS (available) */
                                ((base >> 24) & 0xFF) << 56;
    boot_gdt[IDT_SEL_TSS / 8 + 1] = base >> 32;
    __asm__ volatile("ltr %w0" : : "r"(IDT_SEL_TSS));

    /* 2. Gates: faults that a broken stack can cause go to IST1. */
    for (int v = 0; v < 32; v++) {
        int on_ist = v == 8 || v == 12 || v == 14; /* #DF, #SS, #PF */
        idt_set(v, idt_stub_table[v], on_ist ? IDT_IST_FAULT : 0);
    }
    idt_set(IDT_VEC_TIMER, idt_stub_table[32], 0);
    idt_set(IDT_VEC_SPURIOUS, idt_stub_table[33], 0);
    idt_set(IDT_VEC_DEVICE, idt_stub_table[34], 0);
    idt_set(IDT_VEC_SCI, idt_stub_table[35], 0);
    struct idt_ptr p = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
    __asm__ volatile("lidt %0" : : "m"(p));

    /* 3. Unmap the page below the stack. Only the first 2 MiB are mapped
     *    with 4 KiB pages; an image too big for that keeps no guard. */
    uintptr_t guard = (uintptr_t)boot_stack_guard;
    if (guard < 0x200000) {
        boot_pt0[guard >> 12] = 0;
        __asm__ volatile("invlpg (%0)" : : "r"(guard) : "memory");
    }
}

static int idt_on_stack(uint64_t p)
{
    return p >= (uint64_t)(uintptr_t)boot_stack_bottom &&
           p + 16 <= (uint64_t)(uintptr_t)boot_stack_top && (p & 7) == 0;
}

/* Print "    #i 0xADDR name+0xOFF" (the name when the table has one). */
static void idt_print_frame(int i, uint64_t addr)
{
    const struct idt_ksym *best = NULL;
    if (&shoal_nksyms) { /* binary search: last addr <= a */
        uint64_t lo = 0, hi = shoal_nksyms;
        while (lo < hi) {
            uint64_t mid = (lo + hi) / 2;
            if (shoal_ksyms[mid].addr <= addr)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > 0)
            best = &shoal_ksyms[lo - 1];
    }
    if (best)
        printf("    #%d 0x%016lx %s+0x%lx\n", i, (unsigned long)addr, best->name,
               (unsigned long)(addr - best->addr));
    else
        printf("    #%d 0x%016lx\n", i, (unsigned long)addr);
}

void idt_print_trace(uint64_t rip, uint64_t rbp)
{
    printf("  stack trace (addr2line -f -e images/debug/%s.elf ADDR for lines):\n",
           idt_hooks.image ? idt_hooks.image : "<image>");
    idt_print_frame(0, rip);
    for (int i = 1; i < TRACE_MAX && idt_on_stack(rbp); i++) {
        const uint64_t *fp = (const uint64_t *)(uintptr_t)rbp;
        uint64_t ret = fp[1];
        if (ret == 0)
            break;
        idt_print_frame(i, ret);
        if (fp[0] <= rbp) /* frames must move up the stack */
            break;
        rbp = fp[0];
    }
}

/* Page-fault error code bits, spelled out for the report. */
static void idt_pf_detail(uint64_t err)
{
    printf(" [%s, %s, %s%s]", (err & 2) ? "write" : "read",
           (err & 1) ? "protection violation" : "not present", (err & 4) ? "user" : "kernel",
           (err & 16) ? ", instruction fetch" : "");
}

/* The end of every fault: the kernel's record, pvpanic, halt. */
static __attribute__((noreturn)) void idt_crash(uint64_t vector, uint64_t error, uint64_t rip,
                                                uint64_t cr2)
{
    if (idt_hooks.crash_record)
        idt_hooks.crash_record(vector, error, rip, cr2);
    outb(PVPANIC_PORT, PVPANIC_PANICKED);
    cpu_halt_forever();
}

void idt_dispatch(struct trap_frame *f)
{
    if (f->vector >= 32) {            /* timer, device, SCI or spurious: a wakeup */
        if (f->vector == IDT_VEC_SCI) /* level: only acpi_poll can clear it */
            ioapic_mask_vector(IDT_VEC_SCI);
        if (f->vector != IDT_VEC_SPURIOUS)
            apic_eoi();
        return;
    }

    uint64_t cr2 = cpu_read_cr2();
    if (idt_in_fault++) /* faulted while reporting: be terse */
        idt_crash(f->vector, f->error, f->rip, cr2);

    printf("\nshoal: CPU exception %lu (%s) error=0x%lx", (unsigned long)f->vector,
           idt_names[f->vector], (unsigned long)f->error);
    if (f->vector == 14)
        idt_pf_detail(f->error);
    uint64_t guard = (uint64_t)(uintptr_t)boot_stack_guard;
    if (f->vector == 14 && cr2 >= guard && cr2 < guard + 4096)
        printf(" [stack overflow: %u KiB stack exhausted]",
               (unsigned)((boot_stack_top - boot_stack_bottom) >> 10));
    printf("\n  rip=0x%016lx cr2=0x%016lx rflags=0x%lx\n", (unsigned long)f->rip,
           (unsigned long)cr2, (unsigned long)f->rflags);
    printf("  rax=%016lx rbx=%016lx rcx=%016lx rdx=%016lx\n", (unsigned long)f->rax,
           (unsigned long)f->rbx, (unsigned long)f->rcx, (unsigned long)f->rdx);
    printf("  rsi=%016lx rdi=%016lx rbp=%016lx rsp=%016lx\n", (unsigned long)f->rsi,
           (unsigned long)f->rdi, (unsigned long)f->rbp, (unsigned long)f->rsp);
    printf("  r8 =%016lx r9 =%016lx r10=%016lx r11=%016lx\n", (unsigned long)f->r8,
           (unsigned long)f->r9, (unsigned long)f->r10, (unsigned long)f->r11);
    printf("  r12=%016lx r13=%016lx r14=%016lx r15=%016lx\n", (unsigned long)f->r12,
           (unsigned long)f->r13, (unsigned long)f->r14, (unsigned long)f->r15);
    idt_print_trace(f->rip, f->rbp);
    idt_crash(f->vector, f->error, f->rip, cr2);
}
