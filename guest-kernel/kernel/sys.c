/*
 * sys.c - libc's system calls (libc/sys.h) on top of the kernel: libc is
 * below the kernel and names none of it, so the kernel fills in the
 * contract libc declares.
 */
#include "../libc/sys.h"

#include "clock.h"
#include "heap.h"
#include "kern.h"
#include "../arch/x86_64/serial.h"

void sys_console_write(const char *buf, size_t len)
{
    serial_write(SERIAL_COM1, buf, len, 0);
}

void *sys_alloc(size_t n)
{
    return heap_alloc(n);
}
void sys_free(void *p)
{
    heap_free(p);
}
size_t sys_block_size(const void *p)
{
    return heap_block_size(p);
}

void sys_exit(int code)
{
    kern_exit(code);
}

uint64_t sys_monotonic_ns(void)
{
    return clock_monotonic_ns();
}
uint64_t sys_realtime_ns(void)
{
    return clock_realtime_ns();
}
void sys_sleep_ns(uint64_t ns)
{
    clock_sleep_ns(ns);
}
