/*
 * solo5_echo.S - a test kernel that follows the conventions of a Solo5
 * 'virtio' unikernel (no Solo5 code in it), for the image store and boot
 * tests: ELF64 with PT_INTERP "/nonexistent/solo5/", a Multiboot v1 header
 * whose flags carry the load addresses (QEMU loads an x86_64 ELF through
 * Multiboot only that way), a Solo5 ABI note (target virtio) and an empty
 * manifest note.
 *
 * Booted, it prints its command line verbatim on COM1 and powers off. QEMU
 * puts the kernel's file name and a space in front of a Multiboot command
 * line; like Solo5, the kernel drops that first word, so `Hello_Solo5` given
 * to QEMU prints `Hello_Solo5`. Power off: 0x2000 to the ACPI PM1a control
 * port 0x604 (S5), as the reference kernel does (needs <features><acpi/>).
 *
 * 32-bit protected mode throughout (Multiboot entry): no stack, no paging.
 */
#define MB_MAGIC    0x1BADB002
#define MB_FLAGS    0x00010003         /* page align, memory info, address fields */
#define MB_BOOTED   0x2BADB002         /* EAX at entry */
#define MBI_CMDLINE 4                  /* info flags bit 2: cmdline valid */
#define COM1        0x3F8

/* Solo5's loaders refuse to be a host program: they name no real interpreter. */
    .section .interp, "a"
    .asciz "/nonexistent/solo5/"
    .balign 8, 0

/* ABI1 note: name "Solo5", type "ABI1", target 3 (virtio), ABI version 1. */
    .section .note.solo5.abi, "a", @note
    .balign 4
    .long 6, 16, 0x31494241
    .asciz "Solo5"
    .balign 4
    .long 3, 1, 0, 0

/* MFT1 note: manifest version 1, no devices. */
    .section .note.solo5.manifest, "a", @note
    .balign 4
    .long 6, 8, 0x3154464d
    .asciz "Solo5"
    .balign 4
    .long 1, 0

    .section .text.boot, "ax"
    .code32
    .balign 4
mb_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .long mb_header                    /* header_addr */
    .long _stext                       /* load_addr */
    .long _edata                       /* load_end_addr: file bytes up to here */
    .long _end                         /* bss_end_addr: zeroed up to here */
    .long _start                       /* entry_addr */

    .globl _start
_start:
    cld
    movw $COM1, %dx
    cmpl $MB_BOOTED, %eax
    jne newline
    testl $MBI_CMDLINE, (%ebx)
    jz newline
    movl 16(%ebx), %esi                /* the command line */
1:  lodsb                              /* drop the first word and its space */
    testb %al, %al
    jz newline
    cmpb $' ', %al
    jne 1b
2:  lodsb                              /* the rest, verbatim */
    testb %al, %al
    jz newline
    outb %al, %dx
    jmp 2b
newline:
    movb $'\n', %al
    outb %al, %dx
    incl boots                         /* touch .data and .bss: both loaded */
    movl %eax, scratch
    movw $0x604, %dx                   /* ACPI PM1a control: S5 */
    movw $0x2000, %ax
    outw %ax, %dx
3:  cli
    hlt
    jmp 3b

    .section .data
boots:
    .long 0

    .section .bss
scratch:
    .space 4096
