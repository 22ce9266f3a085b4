/*
 * initrd_echo.S - a test kernel that reads its initrd the way PVH kernels
 * built elsewhere do (Unikraft takes its root filesystem this way): an
 * ELF64 with a PVH entry note only (kind pvh), no shoal code in it.
 *
 * PVH hands a ramdisk over as module 0 of the start info's module list
 * (hvm_start_info.nr_modules at offset 12, modlist_paddr at 16; each
 * hvm_modlist_entry is paddr, size, cmdline_paddr, reserved, 8 bytes
 * each). Booted, it prints
 *     foreign-initrd: <the module's first line, at most 200 bytes>
 * or "foreign-initrd: no initrd" on COM1, then powers off (0x2000 to the
 * ACPI PM1a control port 0x604).
 *
 * 32-bit protected mode throughout (PVH entry): no stack, no paging; the
 * module sits below 4 GiB (QEMU puts it under the top of low RAM).
 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define PVH_MAGIC      0x336ec578      /* hvm_start_info.magic */
#define PVH_NR_MODULES 12              /* hvm_start_info.nr_modules (u32) */
#define PVH_MODLIST    16              /* hvm_start_info.modlist_paddr (u64) */
#define MOD_PADDR      0               /* hvm_modlist_entry.paddr (u64) */
#define MOD_SIZE       8               /* hvm_modlist_entry.size (u64) */
#define LINE_MAX       200
#define COM1           0x3F8

    .section .note.Xen, "a", @note
    .balign 4
    .long 4, 4, XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .balign 4
    .long pvh_entry
    .balign 4

    .section .rodata
msg_head:   .asciz "foreign-initrd: "
msg_none:   .asciz "no initrd"

    .section .text.boot, "ax"
    .code32
    .globl pvh_entry
pvh_entry:
    cld
    movw $COM1, %dx
    movl $msg_head, %esi
1:  lodsb                              /* the prefix */
    testb %al, %al
    jz 2f
    outb %al, %dx
    jmp 1b
2:  cmpl $PVH_MAGIC, (%ebx)
    jne none
    cmpl $0, PVH_NR_MODULES(%ebx)
    je none
    movl PVH_MODLIST(%ebx), %edi       /* module 0 */
    testl %edi, %edi
    jz none
    movl MOD_PADDR(%edi), %esi
    movl MOD_SIZE(%edi), %ecx
    cmpl $0, MOD_SIZE+4(%edi)          /* a size over 4 GiB: take 200 bytes */
    jne 3f
    cmpl $LINE_MAX, %ecx
    jbe 4f
3:  movl $LINE_MAX, %ecx
4:  jecxz newline
5:  lodsb                              /* the first line */
    cmpb $'\n', %al
    je newline
    outb %al, %dx
    loop 5b
    jmp newline
none:
    movl $msg_none, %esi
6:  lodsb
    testb %al, %al
    jz newline
    outb %al, %dx
    jmp 6b
newline:
    movb $'\n', %al
    outb %al, %dx
    movw $0x604, %dx                   /* ACPI PM1a control: S5 */
    movw $0x2000, %ax
    outw %ax, %dx
7:  cli
    hlt
    jmp 7b
