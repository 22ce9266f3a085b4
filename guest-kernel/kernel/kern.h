/*
 * kern.h - the kernel's own entry points and state shared between modules.
 *
 * Boot order (kern_main, kernel/main.c): TSC rate measurement started,
 * console + status UARTs, IDT, start info (command line copied, memory map
 * -> heap), TSC rate final, command line parse, banner, ready record, app
 * main, exit. docs/guest-kernel.md has the whole story.
 * Apps do not include this; they use libc and <shoal.h>.
 */
#ifndef SHOAL_KERNEL_KERN_H
#define SHOAL_KERNEL_KERN_H

#include <stdint.h>

#define KERN_VERSION "0.1"

/* TSC at PVH entry, stored by boot.S before anything else runs. */
extern uint64_t kern_boot_tsc;

/* The app's name (argv[0]); defined by the per-image generated source that
 * shoal_add_guest_image() adds. */
extern const char shoal_app_name[];

/* Called by boot.S in long mode with the PVH start info physical address. */
void kern_main(uint32_t start_info_paddr) __attribute__((noreturn));

/* Write the exit record (code & 255) and power the VM off. Never returns. */
void kern_exit(int code) __attribute__((noreturn));

/* Write the crash record, signal pvpanic, halt forever. The console report
 * is the caller's job (idt.c). */
void kern_crash(uint64_t vector, uint64_t error, uint64_t rip, uint64_t cr2)
    __attribute__((noreturn));

/* Print "shoal: <msg>" on the console and exit with code. For unrecoverable
 * conditions that are not CPU exceptions (bad start info, bad cmdline). */
void kern_fatal(int code, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

#endif
