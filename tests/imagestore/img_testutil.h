/*
 * img_testutil.h - deterministic bootable test images for the image store
 * tests and benchmark, generated at any offset so large images can be
 * streamed without ever being held in memory.
 *
 * Layout of a generated ELF64 PVH image of `size` bytes (size >= IMGT_MIN):
 *   0x000  ELF64 header, 2 program headers (PT_LOAD, PT_NOTE)
 *   0x0b0  note: "Xen", type 18 (XEN_ELFNOTE_PHYS32_ENTRY), entry 0x100200
 *   0x200  code: hlt; jmp .-1
 *   0x203  pseudo-random padding from seed up to size
 * The PT_LOAD segment covers the whole file at physical 0x100000.
 */
#ifndef SHOAL_IMG_TESTUTIL_H
#define SHOAL_IMG_TESTUTIL_H

#include <stdint.h>
#include <string.h>

#define IMGT_MIN  0x203u
#define IMGT_BASE 0x100000u

static inline void imgt_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void imgt_put32(uint8_t *p, uint32_t v)
{
    imgt_put16(p, (uint16_t)v);
    imgt_put16(p + 2, (uint16_t)(v >> 16));
}
static inline void imgt_put64(uint8_t *p, uint64_t v)
{
    imgt_put32(p, (uint32_t)v);
    imgt_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t imgt_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The 0x203-byte head of an image of `size` bytes. */
static inline void imgt_head(uint64_t size, uint8_t head[IMGT_MIN])
{
    memset(head, 0, IMGT_MIN);
    uint8_t *e = head;
    memcpy(e, "\177ELF", 4);
    e[4] = 2;
    e[5] = 1;
    e[6] = 1;               /* ELFCLASS64, LSB, EV_CURRENT */
    imgt_put16(e + 16, 2);  /* ET_EXEC */
    imgt_put16(e + 18, 62); /* EM_X86_64 */
    imgt_put32(e + 20, 1);
    imgt_put64(e + 24, IMGT_BASE + 0x200); /* e_entry */
    imgt_put64(e + 32, 64);                /* e_phoff */
    imgt_put16(e + 52, 64);                /* e_ehsize */
    imgt_put16(e + 54, 56);                /* e_phentsize */
    imgt_put16(e + 56, 2);                 /* e_phnum */
    imgt_put16(e + 58, 64);                /* e_shentsize */
    uint8_t *ph = head + 64;               /* PT_LOAD: whole file */
    imgt_put32(ph, 1);
    imgt_put32(ph + 4, 5);
    imgt_put64(ph + 8, 0);
    imgt_put64(ph + 16, IMGT_BASE);
    imgt_put64(ph + 24, IMGT_BASE);
    imgt_put64(ph + 32, size);
    imgt_put64(ph + 40, size);
    imgt_put64(ph + 48, 0x1000);
    ph += 56; /* PT_NOTE */
    imgt_put32(ph, 4);
    imgt_put32(ph + 4, 4);
    imgt_put64(ph + 8, 0xb0);
    imgt_put64(ph + 16, IMGT_BASE + 0xb0);
    imgt_put64(ph + 24, IMGT_BASE + 0xb0);
    imgt_put64(ph + 32, 20);
    imgt_put64(ph + 40, 20);
    imgt_put64(ph + 48, 4);
    uint8_t *n = head + 0xb0;
    imgt_put32(n, 4);
    imgt_put32(n + 4, 4);
    imgt_put32(n + 8, 18);
    memcpy(n + 12, "Xen", 4);
    imgt_put32(n + 16, IMGT_BASE + 0x200);
    head[0x200] = 0xf4; /* hlt */
    head[0x201] = 0xeb; /* jmp .-1 */
    head[0x202] = 0xfd;
}

/* Bytes [off, off + len) of the image (seed, size). */
static inline void imgt_fill(uint64_t seed, uint64_t size, uint64_t off, uint8_t *buf, size_t len)
{
    uint8_t head[IMGT_MIN];
    size_t i = 0;
    if (off < IMGT_MIN) {
        imgt_head(size, head);
        for (; i < len && off + i < IMGT_MIN; i++)
            buf[i] = head[off + i];
    }
    while (i < len) {
        uint64_t o = off + i;
        uint64_t w = imgt_mix(seed ^ (o >> 3) * 0x100000001b3ull);
        if ((o & 7) == 0 && len - i >= 8) {
            memcpy(buf + i, &w, 8);
            i += 8;
        } else {
            buf[i++] = (uint8_t)(w >> ((o & 7) * 8));
        }
    }
}

#endif /* SHOAL_IMG_TESTUTIL_H */
