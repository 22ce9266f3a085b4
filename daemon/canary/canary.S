/*
 * canary.S - the smallest guest shoal boots to prove an accelerator works.
 *
 * Built twice from this one file (see daemon/CMakeLists.txt):
 *   canary.elf     PVH entry (XEN_ELFNOTE_PHYS32_ENTRY note), the default;
 *   canary-mb.elf  Multiboot v1 header (-DCANARY_MULTIBOOT), to check that
 *                  QEMU's -kernel/<kernel> path takes multiboot ELFs too.
 *
 * Both enter in 32-bit protected mode with paging off. The canary uses
 * general registers only (no SSE/x87), so it runs under the nested kvm-pvm
 * KVM on these hosts as well as under TCG.
 *
 * Behaviour, chosen by a word on the command line:
 *   (default)    print "ok\n" on COM1 (0x3F8), then power off: write 0x2000
 *                to ACPI PM1a control (0x604; needs <features><acpi/>).
 *   canary=hang  print "hang\n", then halt forever with interrupts off.
 *   canary=panic print "panic\n", signal pvpanic (ISA port 0x505, value 1),
 *                then halt forever.
 *   canary=bench run a fixed loop of ALU work (CANARY_BENCH_LOOPS), then print
 *                "ok cycles=<16 hex digits>\n" (TSC cycles the loop took) and
 *                power off. The node compares this figure between KVM and
 *                TCG: nested kvm-pvm emulates guest code one instruction at
 *                a time and can be far slower than TCG.
 *   canary=sse   print "sse\n", then execute ldmxcsr (an SSE instruction):
 *                under kvm-pvm this stops the VM with "KVM internal error";
 *                under TCG it faults (#UD, no IDT), i.e. the guest resets.
 * Any other command line behaves as the default.
 */

#define COM1        0x3f8
#define PM1A_CNT    0x604
#define PVPANIC     0x505
#define CANARY_BENCH_LOOPS 20000

        .code32
        .section .text.entry, "ax"
        .globl  canary_start
canary_start:
        cli
        cld
        mov     $stack_top, %esp
#ifdef CANARY_MULTIBOOT
        /* Multiboot: eax = 0x2BADB002, ebx = info; flags bit 2 = cmdline. */
        xor     %esi, %esi
        cmp     $0x2badb002, %eax
        jne     1f
        testl   $4, 0(%ebx)
        jz      1f
        mov     16(%ebx), %esi
1:
#else
        /* PVH: ebx = hvm_start_info; cmdline_paddr (u64) at offset 24. */
        mov     24(%ebx), %esi
#endif
        test    %esi, %esi
        jz      do_ok

        /* Scan the command line for "canary=" and dispatch on next char. */
scan:
        mov     $key, %edi
        mov     %esi, %edx
2:      movb    (%edi), %al
        test    %al, %al
        jz      found
        movb    (%edx), %cl
        test    %cl, %cl
        jz      do_ok
        cmp     %al, %cl
        jne     3f
        inc     %edi
        inc     %edx
        jmp     2b
3:      inc     %esi
        cmpb    $0, (%esi)
        jne     scan
        jmp     do_ok

found:  movb    (%edx), %al
        cmp     $'h', %al
        je      do_hang
        cmp     $'p', %al
        je      do_panic
        cmp     $'s', %al
        je      do_sse
        cmp     $'b', %al
        je      do_bench

do_ok:
        mov     $msg_ok, %esi
        call    puts
        mov     $PM1A_CNT, %dx
        mov     $0x2000, %ax
        outw    %ax, %dx
        jmp     halt                    /* poweroff did not happen */

do_bench:
        rdtsc
        mov     %eax, %edi              /* start, low 32 bits in edi */
        mov     %edx, %ebp              /* start, high 32 bits in ebp */
        mov     $CANARY_BENCH_LOOPS, %ecx
        xor     %ebx, %ebx
6:      add     %ecx, %ebx              /* a little dependent ALU work */
        rol     $3, %ebx
        xor     $0x5a5a, %ebx
        dec     %ecx
        jnz     6b
        rdtsc
        sub     %edi, %eax
        sbb     %ebp, %edx              /* edx:eax = cycles */
        mov     %eax, %edi
        mov     %edx, %ebp
        mov     $msg_cycles, %esi
        call    puts
        mov     %ebp, %eax
        call    puthex32
        mov     %edi, %eax
        call    puthex32
        mov     $msg_nl, %esi
        call    puts
        mov     $PM1A_CNT, %dx
        mov     $0x2000, %ax
        outw    %ax, %dx
        jmp     halt

/* puthex32: write eax as 8 hex digits to COM1. Clobbers eax, ecx, edx. */
puthex32:
        mov     $8, %ecx
7:      rol     $4, %eax
        push    %eax
        and     $0xf, %eax
        movb    hexdig(%eax), %al
        mov     $COM1, %dx
        outb    %al, %dx
        pop     %eax
        dec     %ecx
        jnz     7b
        ret

do_hang:
        mov     $msg_hang, %esi
        call    puts
        jmp     halt

do_panic:
        mov     $msg_panic, %esi
        call    puts
        mov     $PVPANIC, %dx
        mov     $1, %al
        outb    %al, %dx
        jmp     halt

do_sse:
        mov     $msg_sse, %esi
        call    puts
        ldmxcsr mxcsr
        jmp     halt

halt:   cli
        hlt
        jmp     halt

/* puts: write the NUL-terminated string at esi to COM1. */
puts:   mov     $COM1, %dx
4:      lodsb
        test    %al, %al
        jz      5f
        outb    %al, %dx
        jmp     4b
5:      ret

        .section .rodata
key:        .asciz "canary="
msg_ok:     .asciz "ok\n"
msg_hang:   .asciz "hang\n"
msg_panic:  .asciz "panic\n"
msg_sse:    .asciz "sse\n"
msg_cycles: .asciz "ok cycles="
msg_nl:     .asciz "\n"
hexdig:     .ascii "0123456789abcdef"
        .balign 4
mxcsr:      .long 0x1f80

#ifdef CANARY_MULTIBOOT
        /* Multiboot v1 header: magic, flags (none needed for ELF), checksum. */
        .section .multiboot, "a"
        .balign 4
        .long   0x1badb002
        .long   0
        .long   -(0x1badb002)
#else
        /* PVH entry note: name "Xen", type 18, 32-bit physical entry. */
        .section .note.Xen, "a", @note
        .balign 4
        .long   4
        .long   4
        .long   18
        .asciz  "Xen"
        .balign 4
        .long   canary_start
#endif

        .section .bss
        .balign 16
        .skip   4096
stack_top:
