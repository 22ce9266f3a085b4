/*
 * sys.h - the kernel services libc is built on.
 *
 * libc is the base every layer may use (docs/guest-kernel.md, "Layers"),
 * so it includes no header above it. It reaches the machine only through
 * the calls below, which libc declares and the kernel defines
 * (kernel/sys.c): the newlib model, where libc calls _write/_sbrk/_exit
 * and the platform provides them. Nothing but libc and kernel/sys.c
 * should use this header.
 */
#ifndef SHOAL_LIBC_SYS_H
#define SHOAL_LIBC_SYS_H

#include <stddef.h>
#include <stdint.h>

/* Write len bytes to the console (COM1), as they are ("\n" stays "\n"). */
void sys_console_write(const char *buf, size_t len);

/* The heap: NULL when out of memory; sys_free(NULL) is a no-op;
 * sys_block_size is the usable size of the block holding p. */
void *sys_alloc(size_t n);
void sys_free(void *p);
size_t sys_block_size(const void *p);

/* Write the exit record (code & 255) and power the VM off. */
void sys_exit(int code) __attribute__((noreturn));

/* Nanoseconds since PVH entry, and since 1970-01-01 UTC. */
uint64_t sys_monotonic_ns(void);
uint64_t sys_realtime_ns(void);

/* Halt the CPU for at least ns nanoseconds. */
void sys_sleep_ns(uint64_t ns);

#endif
