/*
 * crash - fault on purpose so the kernel's exception report can be tested.
 * argv[1] picks the fault: "pf" (default: write to an unmapped address),
 * "null" (read through NULL), "ud" (invalid opcode), "de" (divide by zero),
 * "stack" (unbounded recursion: overflows into the guard page).
 * Nested calls give the stack trace a few frames.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define CRASH_UNMAPPED 0xdead0000000ull /* canonical, above the 4 GiB map */

static volatile int crash_forever = 1; /* hides the endless recursion from gcc */

__attribute__((noinline)) static unsigned crash_recurse(unsigned n)
{
    volatile char pad[256];
    pad[0] = (char)n;
    if (!crash_forever)
        return n;
    return crash_recurse(n + 1) + pad[0]; /* not a tail call */
}

__attribute__((noinline)) static void crash_now(const char *how)
{
    if (strcmp(how, "stack") == 0) {
        printf("crash: recursing until the stack runs out\n");
        printf("%u\n", crash_recurse(0));
    } else if (strcmp(how, "null") == 0) {
        volatile int *p = NULL;
        __asm__("" : "+r"(p)); /* hide the constant from gcc */
        printf("crash: read from %p\n", (void *)p);
        (void)*p;
    } else if (strcmp(how, "ud") == 0) {
        printf("crash: ud2\n");
        __asm__ volatile("ud2");
    } else if (strcmp(how, "de") == 0) {
        unsigned zero = 0, q, r;
        printf("crash: divide by zero\n");
        /* In asm: gcc turns "1u / x" into a compare, which never faults. */
        __asm__ volatile("divl %2" : "=a"(q), "=d"(r) : "r"(zero), "a"(1u), "d"(0u));
        printf("%u %u\n", q, r);
    } else {
        volatile uint64_t *p = (volatile uint64_t *)CRASH_UNMAPPED;
        __asm__("" : "+r"(p));
        printf("crash: write to %p\n", (void *)p);
        *p = 1;
    }
}

__attribute__((noinline)) static void crash_level2(const char *how)
{
    crash_now(how);
    __asm__ volatile("");
}
__attribute__((noinline)) static void crash_level1(const char *how)
{
    crash_level2(how);
    __asm__ volatile("");
}

int main(int argc, char **argv)
{
    crash_level1(argc > 1 ? argv[1] : "pf");
    printf("crash: still alive?\n");
    return 1;
}
