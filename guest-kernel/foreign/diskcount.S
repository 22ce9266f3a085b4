/*
 * diskcount.S - a raw disk image whose boot sector counts its boots on its
 * own disk, for tests of a disk's persistence (its overlay kept or made
 * afresh). SeaBIOS loads it at 0:7C00 (16-bit real mode, boot drive in DL).
 * It reads sector 2 (CHS 0/0/2, LBA 1) through the BIOS disk service (int
 * 13h), adds one to its first byte, writes it back and prints
 * "shoal-diskcount: boot N" on COM1 (N the new count, 1-99: a fresh disk
 * prints 1), or "shoal-diskcount: disk error" when the BIOS refused, then
 * powers off as bootsector.S does (bootsector.inc). Padded with zeros to
 * 1 MiB by the build (foreign/CMakeLists.txt).
 */
#include "bootsector.inc"
    .code16
    .section .text
    .globl _start
_start:
    boot_entry
    movw %ax, %ss                      /* a stack below the sector */
    movw $0x7C00, %sp
    movb %dl, drive
    movw $0x0201, %ax                  /* read one sector */
    call disk
    jc fail
    incb buf
    movw $0x0301, %ax                  /* write it back */
    call disk
    jc fail
    movw $msg, %si
    call puts
    movb buf, %al
    aam                                /* AH = tens, AL = ones */
    addw $0x3030, %ax
    cmpb $0x30, %ah
    je 2f
    xchgb %al, %ah
    call putc
    xchgb %al, %ah
2:  call putc
    movb $'\n', %al
    call putc
    jmp off
fail:
    movw $err, %si
    call puts
off:
    power_off

/* int 13h function AX on sector 2 of the boot drive, buffer `buf` */
disk:
    movw $0x0002, %cx                  /* cylinder 0, sector 2 */
    xorb %dh, %dh                      /* head 0 */
    movb drive, %dl
    movw $buf, %bx
    int $0x13
    ret

puts:
    lodsb
    testb %al, %al
    jz 4f
    call putc
    jmp puts
4:  ret

putc:                                  /* AL to COM1 */
    movw $0x3F8, %dx
    outb %al, %dx
    ret

msg:
    .asciz "shoal-diskcount: boot "
err:
    .asciz "shoal-diskcount: disk error\n"
drive:
    .byte 0

    .org 510                           /* the assembler fails if the code is longer */
    .byte 0x55, 0xAA
buf:                                   /* sector 2, read here (0:7E00) */
