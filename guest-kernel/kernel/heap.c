/*
 * heap.c - first-fit allocator (see heap.h).
 */
#include "heap.h"

#include "kern.h"

#define HDR_SIZE   16
#define MIN_BLOCK  32
#define MAGIC_USED 0x5348414c55534544ull /* "SHALUSED" in a used header */

struct heap_block {
    size_t size;             /* whole block in bytes, header included */
    struct heap_block *next; /* free: next free block (higher address);
                                  used: MAGIC_USED */
};

static struct heap_block *heap_free_list;
static struct heap_stats heap_st;

static size_t heap_round(size_t n)
{
    return (n + HEAP_ALIGN - 1) & ~(size_t)(HEAP_ALIGN - 1);
}

/* Insert b in address order and merge it with touching neighbours. */
static void heap_insert(struct heap_block *b)
{
    struct heap_block *prev = NULL, *cur = heap_free_list;
    while (cur && cur < b) {
        prev = cur;
        cur = cur->next;
    }
    b->next = cur;
    if (cur && (char *)b + b->size == (char *)cur) {
        b->size += cur->size;
        b->next = cur->next;
    }
    if (prev && (char *)prev + prev->size == (char *)b) {
        prev->size += b->size;
        prev->next = b->next;
    } else if (prev) {
        prev->next = b;
    } else {
        heap_free_list = b;
    }
}

void heap_add_region(uintptr_t base, size_t size)
{
    uintptr_t start = (base + HEAP_ALIGN - 1) & ~(uintptr_t)(HEAP_ALIGN - 1);
    uintptr_t end = (base + size) & ~(uintptr_t)(HEAP_ALIGN - 1);
    if (end <= start || end - start < 4 * MIN_BLOCK)
        return;
    struct heap_block *b = (struct heap_block *)start;
    b->size = end - start;
    heap_st.total += b->size;
    heap_st.free += b->size;
    heap_st.regions++;
    heap_insert(b);
}

void *heap_alloc(size_t n)
{
    if (n > ((size_t)1 << 47))
        return NULL;
    size_t need = heap_round(n) + HDR_SIZE;
    if (need < MIN_BLOCK)
        need = MIN_BLOCK;
    struct heap_block *prev = NULL, *b = heap_free_list;
    for (; b; prev = b, b = b->next) {
        if (b->size < need)
            continue;
        struct heap_block *rest = b->next;
        if (b->size - need >= MIN_BLOCK) { /* split: keep the tail free */
            struct heap_block *t = (struct heap_block *)((char *)b + need);
            t->size = b->size - need;
            t->next = b->next;
            rest = t;
            b->size = need;
        }
        if (prev)
            prev->next = rest;
        else
            heap_free_list = rest;
        b->next = (struct heap_block *)MAGIC_USED;
        heap_st.free -= b->size;
        return (char *)b + HDR_SIZE;
    }
    return NULL;
}

static struct heap_block *heap_header(const void *p)
{
    struct heap_block *b = (struct heap_block *)((uintptr_t)p - HDR_SIZE);
    if (((uintptr_t)p & (HEAP_ALIGN - 1)) || b->next != (struct heap_block *)MAGIC_USED)
        kern_fatal(134, "free/realloc of %p, which is not a live heap block", p);
    return b;
}

void heap_free(void *p)
{
    if (!p)
        return;
    struct heap_block *b = heap_header(p);
    heap_st.free += b->size;
    heap_insert(b);
}

size_t heap_block_size(const void *p)
{
    return heap_header(p)->size - HDR_SIZE;
}

void heap_get_stats(struct heap_stats *st)
{
    *st = heap_st;
}
