/*
 * traps.S - interrupt entry stubs. Every vector pushes (error, vector) so the
 * C side sees one frame layout (struct trap_frame in idt.h), then all
 * general-purpose registers. The CPU pushes the error code itself only for
 * vectors 8, 10-14, 17, 21, 29, 30; the others push a zero.
 */
    .code64
    .text

.macro STUB_NOERR n
    .balign 16
trap_stub_\n:
    pushq $0
    pushq $\n
    jmp trap_common
.endm

.macro STUB_ERR n
    .balign 16
trap_stub_\n:
    pushq $\n
    jmp trap_common
.endm

STUB_NOERR 0
STUB_NOERR 1
STUB_NOERR 2
STUB_NOERR 3
STUB_NOERR 4
STUB_NOERR 5
STUB_NOERR 6
STUB_NOERR 7
STUB_ERR   8
STUB_NOERR 9
STUB_ERR   10
STUB_ERR   11
STUB_ERR   12
STUB_ERR   13
STUB_ERR   14
STUB_NOERR 15
STUB_NOERR 16
STUB_ERR   17
STUB_NOERR 18
STUB_NOERR 19
STUB_NOERR 20
STUB_ERR   21
STUB_NOERR 22
STUB_NOERR 23
STUB_NOERR 24
STUB_NOERR 25
STUB_NOERR 26
STUB_NOERR 27
STUB_NOERR 28
STUB_ERR   29
STUB_ERR   30
STUB_NOERR 31
STUB_NOERR 32    /* local APIC timer (IDT_VEC_TIMER) */
STUB_NOERR 33    /* device interrupts (IDT_VEC_DEVICE) */
STUB_NOERR 34    /* ACPI SCI (IDT_VEC_SCI) */
STUB_NOERR 47    /* local APIC spurious (IDT_VEC_SPURIOUS) */

trap_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rdi          /* struct trap_frame * (16-byte aligned here) */
    cld
    call idt_dispatch
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp           /* vector, error */
    iretq

/* Stub addresses for idt_init: 32 exceptions, timer, spurious. */
    .section .rodata
    .balign 8
    .globl idt_stub_table
idt_stub_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,47,33,34
    .quad trap_stub_\n
    .endr
