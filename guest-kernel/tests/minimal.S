/*
 * minimal.S - the smallest PVH guest: print one line on COM1 and power off.
 * Baseline for the whole-VM wall time benchmark (tests/bench/guest): the
 * difference between this and "hello" is what the shoal kernel costs.
 * Stays in 32-bit protected mode; needs no stack, no paging.
 */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4, 4, 18                   /* namesz, descsz, XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .long pvh_entry
    .balign 4

    .section .boot32, "ax"
    .code32
    .globl pvh_entry
pvh_entry:
    movl $msg, %esi
    movw $0x3F8, %dx
1:  lodsb
    testb %al, %al
    jz 2f
    outb %al, %dx
    jmp 1b
2:  movw $0x604, %dx                 /* ACPI PM1a control: S5 */
    movw $0x2000, %ax
    outw %ax, %dx
3:  cli
    hlt
    jmp 3b

    .section .rodata
msg:
    .asciz "minimal: hello\n"
