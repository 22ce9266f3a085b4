/*
 * bootsector.S - a raw disk image of one sector for the image store and boot
 * tests: the firmware (SeaBIOS) loads it at 0:7C00 and runs it in 16-bit real
 * mode. It prints one line on COM1 (port 0x3F8, no UART set-up needed under
 * QEMU) and powers off: 0x2000 to the ACPI PM1a control port 0x604 (S5), the
 * port the reference kernel uses (SeaBIOS puts the PIIX4 PM block at 0x600,
 * as qboot does; needs <features><acpi/> under libvirt). The boot signature
 * 55 aa closes the sector at offset 510. The build pads the sector with
 * zeros to a 1 MiB disk (foreign/CMakeLists.txt): SeaBIOS does not boot a
 * disk smaller than one cylinder.
 */
#include "bootsector.inc"
    .code16
    .section .text
    .globl _start
_start:
    boot_entry
    movw $msg, %si
    movw $0x3F8, %dx
2:  lodsb
    testb %al, %al
    jz 3f
    outb %al, %dx
    jmp 2b
3:  power_off

msg:
    .asciz "shoal-bootsector: hello from the boot sector\n"

    .org 510                           /* the assembler fails if the code is longer */
    .byte 0x55, 0xAA
