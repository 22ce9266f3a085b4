/*
 * unikraft_echo.S - a test kernel that looks like a Unikraft image to the
 * image store (no Unikraft code in it): an ELF64 with a PVH entry note and
 * the sections .uk_inittab, .uk_ctortab and .uk_libparam.
 *
 * Booted (PVH), it prints its command line verbatim on COM1 - Unikraft reads
 * library parameters such as `netdev.ip=CIDR:GW` before ` -- ` and the app's
 * arguments after it, so a boot test can check the line shoal built - then
 * powers off: 0x2000 to the ACPI PM1a control port 0x604 (S5).
 *
 * 32-bit protected mode throughout (PVH entry): no stack, no paging.
 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define PVH_MAGIC   0x336ec578         /* hvm_start_info.magic */
#define PVH_CMDLINE 24                 /* hvm_start_info.cmdline_paddr (u64) */
#define COM1        0x3F8

    .section .note.Xen, "a", @note
    .balign 4
    .long 4, 4, XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .balign 4
    .long pvh_entry
    .balign 4

/* Unikraft's init and constructor tables and its library parameters. */
    .section .uk_inittab, "a"
    .balign 8
    .quad 0
    .section .uk_ctortab, "a"
    .balign 8
    .quad 0
    .section .uk_libparam, "aw"
    .balign 8
    .quad 0

    .section .text.boot, "ax"
    .code32
    .globl pvh_entry
pvh_entry:
    cld
    movw $COM1, %dx
    cmpl $PVH_MAGIC, (%ebx)
    jne newline
    movl PVH_CMDLINE(%ebx), %esi
    testl %esi, %esi
    jz newline
1:  lodsb
    testb %al, %al
    jz newline
    outb %al, %dx
    jmp 1b
newline:
    movb $'\n', %al
    outb %al, %dx
    movw $0x604, %dx                   /* ACPI PM1a control: S5 */
    movw $0x2000, %ax
    outw %ax, %dx
2:  cli
    hlt
    jmp 2b
