/*
 * debug_exit.S - a test kernel that exits through QEMU's isa-debug-exit,
 * as Nanos and many test harnesses do (no shoal code in it): an ELF64 with
 * a PVH entry note and nothing else the image store would recognise, so it
 * is kind pvh.
 *
 * Booted (PVH), it reads the first decimal number of its command line
 * (0..255; none: 0), prints
 *     foreign-exit: exiting with N through isa-debug-exit
 * on COM1 and writes N (16 bits) to port 0x501. With QEMU's
 * `-device isa-debug-exit,iobase=0x501,iosize=2` QEMU ends there with
 * status (N << 1) | 1. Without the device the write goes nowhere: it then
 * prints "foreign-exit: no isa-debug-exit device" and powers off (0x2000
 * to the ACPI PM1a control port 0x604).
 *
 * 32-bit protected mode throughout (PVH entry): no stack, no paging.
 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define PVH_MAGIC   0x336ec578         /* hvm_start_info.magic */
#define PVH_CMDLINE 24                 /* hvm_start_info.cmdline_paddr (u64) */
#define COM1        0x3F8
#define DEBUG_EXIT  0x501

    .section .note.Xen, "a", @note
    .balign 4
    .long 4, 4, XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .balign 4
    .long pvh_entry
    .balign 4

    .section .rodata
msg_head:   .asciz "foreign-exit: exiting with "
msg_tail:   .asciz " through isa-debug-exit\n"
msg_none:   .asciz "foreign-exit: no isa-debug-exit device\n"

    .section .bss
    .balign 16
stack:      .skip 4096
stack_top:

    .section .text.boot, "ax"
    .code32
    .globl pvh_entry
pvh_entry:
    cld
    movl $stack_top, %esp
    xorl %ecx, %ecx                    /* ecx: the code */
    cmpl $PVH_MAGIC, (%ebx)
    jne have_code
    movl PVH_CMDLINE(%ebx), %esi
    testl %esi, %esi
    jz have_code
1:  movb (%esi), %al                   /* to the first digit */
    testb %al, %al
    jz have_code
    cmpb $'0', %al
    jb 2f
    cmpb $'9', %al
    jbe digits
2:  incl %esi
    jmp 1b
digits:
    movzbl (%esi), %eax
    subl $'0', %eax
    cmpl $9, %eax
    ja have_code
    imull $10, %ecx, %ecx
    addl %eax, %ecx
    cmpl $255, %ecx
    ja clamp
    incl %esi
    jmp digits
clamp:
    movl $255, %ecx
have_code:
    movl $msg_head, %esi
    call puts
    /* the code in decimal, leading zeros dropped */
    movl %ecx, %eax
    xorl %edi, %edi                    /* edi: a digit was printed */
    movl $100, %ebx
    call digit
    movl $10, %ebx
    call digit
    movl $1, %ebx
    movl $1, %edi
    call digit
    movl $msg_tail, %esi
    call puts
    movw $DEBUG_EXIT, %dx
    movl %ecx, %eax
    outw %ax, %dx
    movl $msg_none, %esi               /* still here: no device */
    call puts
    movw $0x604, %dx                   /* ACPI PM1a control: S5 */
    movw $0x2000, %ax
    outw %ax, %dx
3:  cli
    hlt
    jmp 3b

/* Write the NUL-terminated string at esi to COM1. Clobbers eax, edx, esi. */
puts:
    movw $COM1, %dx
1:  lodsb
    testb %al, %al
    jz 2f
    outb %al, %dx
    jmp 1b
2:  ret

/* Print eax / ebx as one digit, unless it is a leading zero (edi == 0);
 * leaves eax % ebx in eax. Clobbers edx, sets edi once a digit is out. */
digit:
    xorl %edx, %edx
    divl %ebx
    pushl %edx
    testl %eax, %eax
    jnz 1f
    testl %edi, %edi
    jz 2f
1:  movl $1, %edi
    addb $'0', %al
    movw $COM1, %dx
    outb %al, %dx
2:  popl %eax
    ret
