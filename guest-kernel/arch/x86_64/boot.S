/*
 * boot.S - PVH entry and the switch to 64-bit long mode.
 *
 * The PVH boot ABI (Xen's "HVM direct boot", used by QEMU -kernel with an
 * ELF that carries XEN_ELFNOTE_PHYS32_ENTRY) enters here with:
 *   - 32-bit protected mode, paging off, flat 4 GiB CS/DS, interrupts off
 *   - %ebx = physical address of struct hvm_start_info
 *   - no usable stack
 * Steps, in order:
 *   1. read the TSC (boot time origin for the ready record)
 *   2. zero .bss (page tables and the stack live there)
 *   3. build an identity map of the low 4 GiB (2 MiB pages; 4 KiB pages for
 *      the first 2 MiB so that page 0 stays unmapped and NULL faults)
 *   4. enable PAE, set EFER.LME, load CR3, enable paging -> long mode
 *   5. far jump into the 64-bit code segment, load data segments and stack
 *   6. call kern_main(start_info)
 * No SSE/x87 state is enabled: the kernel is built -mgeneral-regs-only.
 */

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define PTE_P   0x001       /* present */
#define PTE_W   0x002       /* writable */
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

    .section .boot32, "ax"
    .code32
    .globl pvh_entry
pvh_entry:
    /* 1. TSC first: everything after this counts as boot time. */
    rdtsc
    movl %eax, kern_boot_tsc
    movl %edx, kern_boot_tsc + 4

    /* 2. Zero .bss (4-byte units; the linker script aligns both ends). */
    cld
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    xorl %eax, %eax
    rep stosl

    /* 3a. PML4[0] -> PDPT; PDPT[0..3] -> four page directories. */
    movl $boot_pdpt + (PTE_P | PTE_W), boot_pml4
    movl $boot_pd + (PTE_P | PTE_W), %eax
    movl $boot_pdpt, %edi
    movl $4, %ecx
1:  movl %eax, (%edi)
    addl $4096, %eax
    addl $8, %edi
    loop 1b

    /* 3b. 2048 x 2 MiB identity pages cover 0..4 GiB (incl. LAPIC MMIO). */
    movl $boot_pd, %edi
    xorl %eax, %eax                  /* physical address, low 32 bits */
    xorl %edx, %edx                  /* entry index */
2:  movl %eax, %esi
    orl $(PTE_P | PTE_W | PTE_PS), %esi
    movl %esi, (%edi, %edx, 8)
    addl $0x200000, %eax
    incl %edx
    cmpl $2048, %edx
    jne 2b

    /* 3c. The first 2 MiB through a page table with page 0 left absent. */
    movl $boot_pt0 + (PTE_P | PTE_W), boot_pd
    movl $1, %edx
3:  movl %edx, %eax
    shll $12, %eax
    orl $(PTE_P | PTE_W), %eax
    movl %eax, boot_pt0(, %edx, 8)
    incl %edx
    cmpl $512, %edx
    jne 3b

    /* 4. PAE, long mode enable, page tables, paging on. */
    lgdt boot_gdt_ptr
    movl %cr4, %eax
    orl $CR4_PAE, %eax
    movl %eax, %cr4
    movl $MSR_EFER, %ecx
    rdmsr
    orl $EFER_LME, %eax
    wrmsr
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl %cr0, %eax
    orl $(CR0_PG | CR0_WP | CR0_PE), %eax
    movl %eax, %cr0

    /* 5. Reload CS with the 64-bit code segment. */
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

    /* 6. kern_main(start_info physical address); it never returns. */
    movl %ebx, %edi
    call kern_main
4:  cli
    hlt
    jmp 4b

/* GDT: null, 64-bit code (L=1), flat data. */
    .section .rodata
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF
    .quad 0x00CF92000000FFFF
boot_gdt_end:
    .globl boot_gdt_ptr
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .quad boot_gdt                   /* lgdt in 32-bit mode reads 4 bytes */

/* Boot timestamp: in .data, not .bss, because step 2 zeroes .bss. */
    .section .data
    .balign 8
    .globl kern_boot_tsc
kern_boot_tsc:
    .quad 0

    .section .bss
    .balign 4096
boot_pml4:  .skip 4096
boot_pdpt:  .skip 4096
boot_pd:    .skip 4 * 4096
boot_pt0:   .skip 4096
    .balign 16
    .globl boot_stack_bottom, boot_stack_top
boot_stack_bottom:
    .skip STACK_SIZE
boot_stack_top:
