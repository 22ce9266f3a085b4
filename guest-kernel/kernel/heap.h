/*
 * heap.h - the kernel's only memory allocator, behind malloc/free.
 *
 * First fit over an address-ordered free list, with neighbours merged on
 * free. Blocks carry a 16-byte header, payloads are 16-byte aligned. RAM
 * comes from the PVH memory map (heap_add_region). Single CPU, no
 * interrupts touch the heap, so there is no locking.
 * Misuse that can be detected (free of a pointer the heap did not hand out,
 * double free) is fatal: the kernel reports it and exits with code 134.
 */
#ifndef SHOAL_KERNEL_HEAP_H
#define SHOAL_KERNEL_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define HEAP_ALIGN 16

/* Give [base, base+size) to the heap. Unaligned edges are trimmed; regions
 * smaller than a few blocks are ignored. */
void heap_add_region(uintptr_t base, size_t size);

/* NULL when no free block is large enough (or n is absurd). */
void *heap_alloc(size_t n);

/* p == NULL is a no-op. */
void heap_free(void *p);

/* Usable bytes of the block holding p (>= the size asked for). */
size_t heap_block_size(const void *p);

struct heap_stats {
    size_t total;   /* bytes given to the heap */
    size_t free;    /* bytes currently on the free list (headers included) */
    size_t regions; /* regions added */
};
void heap_get_stats(struct heap_stats *st);

#endif
