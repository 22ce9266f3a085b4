/*
 * boot.S - PVH entry and the switch to 64-bit long mode.
 *
 * The PVH boot ABI (Xen's "HVM direct boot", used by QEMU -kernel with an
 * ELF that carries XEN_ELFNOTE_PHYS32_ENTRY) enters here with:
 *   - 32-bit protected mode, paging off, flat 4 GiB CS/DS, interrupts off
 *   - %ebx = physical address of struct hvm_start_info
 *   - no usable stack
 * Under nested KVM (kvm-pvm) every instruction before paging is on is
 * emulated one by one (tens of microseconds each), so the 32-bit part does
 * the minimum: the page tables are prebuilt in .data, not computed.
 * Steps, in order:
 *   1. read the TSC (boot time origin for the ready record)
 *   2. enable PAE, set EFER.LME, load CR3, enable paging -> long mode
 *      (identity map of the low 4 GiB: 2 MiB pages, except 4 KiB pages for
 *      the first 2 MiB so that page 0 stays unmapped and NULL faults)
 *   3. far jump into the 64-bit code segment, load data segments and stack
 *   4. zero .bss (the stack is outside it: it needs no zeroing)
 *   5. call kern_main(start_info)
 * No SSE/x87 state is enabled: the kernel is built -mgeneral-regs-only.
 */

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define PTE_P   0x001       /* present */
#define PTE_W   0x002       /* writable */
#define PTE_PWT 0x008       /* write-through */
#define PTE_PCD 0x010       /* cache disable: PWT|PCD = UC with the reset PAT */
#define PTE_PS  0x080       /* 2 MiB page (in a PD entry) */
#define CR0_PE  0x00000001
#define CR0_WP  0x00010000
#define CR0_PG  0x80000000
#define CR4_PAE 0x00000020
#define MSR_EFER 0xC0000080
#define EFER_LME 0x00000100
#define SEL_CODE64 0x08
#define SEL_DATA   0x10
#define STACK_SIZE 65536

/* The PVH note: name "Xen", type 18, descriptor = 32-bit entry address. */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4                          /* namesz */
    .long 4                          /* descsz */
    .long XEN_ELFNOTE_PHYS32_ENTRY   /* type */
    .asciz "Xen"
    .balign 4
    .long pvh_entry
    .balign 4

/*
 * The shoal note: name "shoal", type 1, descriptor = guest protocol version
 * (docs/guest-protocol.md: command line, console, status channel; 2: also
 * the warm pool hand-over on a virtio console, issue 15; 3: the hand-over
 * on COM1 instead). The image store recognises the
 * reference kernel by it (kind "shoal", boot profile qboot + the shoal
 * command line); see docs/imagestore.md.
 */
    .section .note.shoal, "a", @note
    .balign 4
    .long 6                          /* namesz */
    .long 4                          /* descsz */
    .long 1                          /* type: SHOAL_NOTE_GUEST */
    .asciz "shoal"
    .balign 4
    .long 3                          /* guest protocol version */
    .balign 4

    .section .boot32, "ax"
    .code32
    .globl pvh_entry
pvh_entry:
    /* 1. TSC first: everything after this counts as boot time. */
    rdtsc
    movl %eax, kern_boot_tsc
    movl %edx, kern_boot_tsc + 4

    /* 2. PAE, long mode enable, page tables, paging on. */
    lgdt boot_gdt_ptr
    movl $CR4_PAE, %eax
    movl %eax, %cr4
    movl $MSR_EFER, %ecx
    rdmsr
    orl $EFER_LME, %eax
    wrmsr
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl $(CR0_PG | CR0_WP | CR0_PE), %eax
    movl %eax, %cr0

    /* 3. Reload CS with the 64-bit code segment. */
    ljmp $SEL_CODE64, $long_entry

    .code64
long_entry:
    movw $SEL_DATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movabsq $boot_stack_top, %rsp
    xorl %ebp, %ebp                  /* terminates frame-pointer walks */

    /* 4. Zero .bss (8-byte units; the linker script aligns both ends). */
    movabsq $__bss_start, %rdi
    movabsq $__bss_end, %rcx
    subq %rdi, %rcx
    shrq $3, %rcx
    xorl %eax, %eax
    cld
    rep stosq

    /* 5. kern_main(start_info physical address); it never returns. */
    movl %ebx, %edi
    call kern_main
1:  cli
    hlt
    jmp 1b

/* GDT: null, 64-bit code (L=1), flat data, and a 16-byte TSS descriptor
 * that idt_init fills in (ltr marks it busy, so the GDT is writable). */
    .section .data
    .balign 16
    .globl boot_gdt
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF
    .quad 0x00CF92000000FFFF
    .quad 0, 0                       /* selector 0x18: TSS */
boot_gdt_end:
    .globl boot_gdt_ptr
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .quad boot_gdt                   /* lgdt in 32-bit mode reads 4 bytes */

/* Boot timestamp: in .data, not .bss, because step 4 zeroes .bss. */
    .section .data
    .balign 8
    .globl kern_boot_tsc
kern_boot_tsc:
    .quad 0

/* Page tables, prebuilt (see the header comment for why). */
    .section .data
    .balign 4096
boot_pml4:
    .quad boot_pdpt + (PTE_P | PTE_W)
    .fill 511, 8, 0
boot_pdpt:
    .quad boot_pd + 0 * 4096 + (PTE_P | PTE_W)
    .quad boot_pd + 1 * 4096 + (PTE_P | PTE_W)
    .quad boot_pd + 2 * 4096 + (PTE_P | PTE_W)
    .quad boot_pd + 3 * 4096 + (PTE_P | PTE_W)
    .fill 508, 8, 0
boot_pd:                             /* 2048 x 2 MiB = 4 GiB, entry 0 -> boot_pt0 */
    .quad boot_pt0 + (PTE_P | PTE_W)
    .set pg, 1
    .rept 1791
    .quad (pg << 21) | (PTE_P | PTE_W | PTE_PS)
    .set pg, pg + 1
    .endr
    /* 0xE0000000-0xFFFFFFFF: device memory (PCI BARs placed by pci.c, the
     * IOAPIC, the LAPIC), never RAM on the `pc` machine: uncached. */
    .rept 256
    .quad (pg << 21) | (PTE_P | PTE_W | PTE_PS | PTE_PCD | PTE_PWT)
    .set pg, pg + 1
    .endr
    .globl boot_pt0
boot_pt0:                            /* first 2 MiB in 4 KiB pages, page 0 absent */
    .quad 0
    .set pg, 1
    .rept 511
    .quad (pg << 12) | (PTE_P | PTE_W)
    .set pg, pg + 1
    .endr

/* The stack: not in .bss, so step 4 does not spend time zeroing it. The
 * page below it is unmapped by idt_init, so an overflow faults instead of
 * overwriting .bss. */
    .section .noinit, "aw", @nobits
    .balign 4096
    .globl boot_stack_guard, boot_stack_bottom, boot_stack_top
boot_stack_guard:
    .skip 4096
boot_stack_bottom:
    .skip STACK_SIZE
boot_stack_top:
