/* tstack.h - shoald's thread stacks, so that a fork costs little per thread.
 *
 * Linked into the shoald executable only (and its unit test), never into the
 * daemon library: tstack.c defines pthread_create, pthread_join,
 * pthread_tryjoin_np, pthread_timedjoin_np, pthread_clockjoin_np and
 * pthread_detach, and an executable's definitions come first in the dynamic
 * linker's lookup, so every thread of the process is created through it:
 * libvirt's (one event thread per running guest), GLib's and shoald's own.
 *
 * Why (docs/node.md "Starts at scale"): libvirt's embedded driver forks
 * shoald up to 4 times per guest start, under one lock shared by all starts.
 * In the child of every fork, glibc marks the stack of each other thread
 * free: one write into each thread's descriptor, which sits in that thread's
 * stack, so one copy-on-write page fault per thread of the parent. With 900
 * guests that is ~900 page copies per fork (17.7 ms per fork with 800 idle
 * threads against 4.3 ms, tests/unit/test_tstack.c measures the faults).
 * glibc leaves threads whose stack the application gave it alone, so
 * threads created here get a stack of shoald's: same size (the thread
 * attribute's, else the process default, shoald.c sets 512 KiB), a guard
 * page below it, and the same mapping glibc would make.
 *
 * Lifetime of a stack: it is reused only once glibc and the kernel are done
 * with it: for a joinable thread after a join returned; for a detached
 * thread once the kernel no longer knows its thread id (tgkill answers
 * ESRCH: the kernel wrote the descriptor's tid for the last time before
 * that). A thread joined or detached by a call this file does not see keeps
 * its stack (a leak, never a reuse too early). Released stacks are pooled
 * for reuse and never unmapped; past TSTACK_POOL_WARM of them, a released
 * stack's memory is given back (MADV_DONTNEED) and its addresses kept.
 *
 * Mappings: new stacks are carved from slabs of address space with a guard
 * marker below each (MADV_GUARD_INSTALL, Linux 6.13: no access reaches the
 * page, and it needs no mapping of its own), so a thousand threads add a
 * few mappings, not two each, and a fork copies fewer. A kernel without
 * markers gets glibc's shape: a mapping per stack, its guard mprotected.
 *
 * Threads created with a stack of their own, an explicit scheduling policy,
 * a CPU affinity or a signal mask in their attributes go to glibc
 * unchanged (none of shoald's, libvirt's or GLib's do).
 *
 * Not built with sanitizers (their runtimes intercept pthread_create
 * themselves): there the file defines nothing and tstack_stats reports 0.
 *
 * Locks: tstack_mu guards every record list and counter; it is never held
 * across a call into glibc's thread functions, and a fork child
 * reinitialises it (pthread_atfork). */
#ifndef SHOAL_TSTACK_H
#define SHOAL_TSTACK_H

#include <stddef.h>

#define TSTACK_POOL_WARM 64

typedef struct {
    size_t created;    /* threads created on a stack of ours, ever */
    size_t passed;     /* threads handed to glibc unchanged, ever */
    size_t live;       /* stacks in use: thread running, or not yet joined */
    size_t retiring;   /* detached threads ended, waiting for the kernel */
    size_t pooled;     /* released stacks kept for reuse */
    size_t reused;     /* creates served from the pool, ever */
    size_t trimmed;    /* released stacks whose memory was given back, ever */
    int guard_markers; /* 1: guards are markers in slabs; 0: mprotected */
} tstack_stats_t;

/* A snapshot of the counters (all 0 in sanitizer builds). */
void tstack_stats(tstack_stats_t *out);

/* 1 when this build creates threads on its own stacks, 0 otherwise. */
int tstack_active(void);

#endif
