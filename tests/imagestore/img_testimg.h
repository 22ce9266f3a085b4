/*
 * img_testimg.h - small images in the shapes other toolchains produce, built
 * byte by byte for the validator and store tests (the test kernels in
 * guest-kernel/foreign/ are the same shapes, linked for real; these work in
 * every build, clang ones included, and put each field at a known offset).
 *
 *   imgt_solo5      ELF64 like a Solo5 'virtio' unikernel: PT_INTERP, text and
 *                   data PT_LOADs, Multiboot v1 header with load addresses,
 *                   Solo5 ABI (virtio) and manifest notes
 *   imgt_unikraft   the generated PVH image plus sections .uk_inittab and
 *                   .uk_libparam
 *   imgt_shoal      the generated PVH image plus the "shoal" note
 *   imgt_qcow2      qcow2 v3 (or v2), 512-byte clusters, guest sector 0 a boot
 *                   sector
 *   imgt_bootsector a raw disk: one boot sector, then zeros
 */
#ifndef SHOAL_IMG_TESTIMG_H
#define SHOAL_IMG_TESTIMG_H

#include "img_testutil.h"

/* ---- Solo5-style ELF64 ---------------------------------------------------- */

#define IMGT_SOLO5_SIZE   0x2100u
#define IMGT_SOLO5_MB     0x1000u /* file offset of the Multiboot header */
#define IMGT_SOLO5_INTERP 0x1040u /* file offset of "/nonexistent/solo5/" */
#define IMGT_SOLO5_ABI    0x1080u /* file offset of the ABI1 note */
#define IMGT_SOLO5_PH     64u     /* program headers: INTERP, LOAD, LOAD, NOTE */

static inline void imgt_mb1(uint8_t *p, uint32_t flags)
{
    imgt_put32(p, 0x1BADB002u);
    imgt_put32(p + 4, flags);
    imgt_put32(p + 8, (uint32_t) - (0x1BADB002u + flags));
}

static inline void imgt_ph64(uint8_t *ph, uint32_t type, uint64_t off, uint64_t addr,
                             uint64_t filesz, uint64_t memsz, uint64_t align)
{
    imgt_put32(ph, type);
    imgt_put32(ph + 4, 4);
    imgt_put64(ph + 8, off);
    imgt_put64(ph + 16, addr);
    imgt_put64(ph + 24, addr);
    imgt_put64(ph + 32, filesz);
    imgt_put64(ph + 40, memsz);
    imgt_put64(ph + 48, align);
}

/*
 * IMGT_SOLO5_SIZE bytes: text 0x100000 (file 0x1000, 0x1000 bytes), data
 * 0x101000 (file 0x2000, 0x100 bytes, 0x2000 in memory); Multiboot header at
 * 0x1000: header_addr = load_addr = 0x100000, load_end_addr 0x101100,
 * bss_end_addr 0x103000, entry_addr 0x100020.
 */
static inline void imgt_solo5(uint8_t *b)
{
    memset(b, 0, IMGT_SOLO5_SIZE);
    memcpy(b, "\177ELF", 4);
    b[4] = 2;
    b[5] = 1;
    b[6] = 1;
    imgt_put16(b + 16, 2);
    imgt_put16(b + 18, 62);
    imgt_put32(b + 20, 1);
    imgt_put64(b + 24, 0x100020);
    imgt_put64(b + 32, IMGT_SOLO5_PH);
    imgt_put16(b + 52, 64);
    imgt_put16(b + 54, 56);
    imgt_put16(b + 56, 4);
    imgt_put16(b + 58, 64);
    uint8_t *ph = b + IMGT_SOLO5_PH;
    imgt_ph64(ph, 3, IMGT_SOLO5_INTERP, 0x100040, 20, 20, 1);
    imgt_ph64(ph + 56, 1, 0x1000, 0x100000, 0x1000, 0x1000, 0x1000);
    imgt_ph64(ph + 112, 1, 0x2000, 0x101000, 0x100, 0x2000, 0x1000);
    imgt_ph64(ph + 168, 4, IMGT_SOLO5_ABI, 0x100080, 36 + 28, 36 + 28, 4);
    uint8_t *mb = b + IMGT_SOLO5_MB;
    imgt_mb1(mb, 0x10003);
    imgt_put32(mb + 12, 0x100000); /* header_addr */
    imgt_put32(mb + 16, 0x100000); /* load_addr */
    imgt_put32(mb + 20, 0x101100); /* load_end_addr */
    imgt_put32(mb + 24, 0x103000); /* bss_end_addr */
    imgt_put32(mb + 28, 0x100020); /* entry_addr */
    b[0x1020] = 0xf4;              /* hlt */
    memcpy(b + IMGT_SOLO5_INTERP, "/nonexistent/solo5/", 20);
    uint8_t *n = b + IMGT_SOLO5_ABI; /* ABI1: target virtio (3), version 1 */
    imgt_put32(n, 6);
    imgt_put32(n + 4, 16);
    imgt_put32(n + 8, 0x31494241u);
    memcpy(n + 12, "Solo5", 6);
    imgt_put32(n + 20, 3);
    imgt_put32(n + 24, 1);
    n += 36; /* MFT1: version 1, no entries */
    imgt_put32(n, 6);
    imgt_put32(n + 4, 8);
    imgt_put32(n + 8, 0x3154464du);
    memcpy(n + 12, "Solo5", 6);
    imgt_put32(n + 20, 1);
}

/* ---- PVH images with more ------------------------------------------------ */

#define IMGT_PVH_SIZE 0x1000u

/* The generated PVH image with a section table naming .uk_inittab and
 * .uk_libparam (string table at 0xd00, section headers at 0xe00). */
static inline void imgt_unikraft(uint8_t *b)
{
    static const char strtab[] = "\0.uk_inittab\0.uk_libparam\0.shstrtab";
    imgt_fill(5, IMGT_PVH_SIZE, 0, b, IMGT_PVH_SIZE);
    memset(b + 0xd00, 0, 0x300);
    memcpy(b + 0xd00, strtab, sizeof strtab);
    imgt_put64(b + 40, 0xe00); /* e_shoff */
    imgt_put16(b + 58, 64);    /* e_shentsize */
    imgt_put16(b + 60, 4);     /* e_shnum */
    imgt_put16(b + 62, 3);     /* e_shstrndx */
    const uint32_t names[] = { 1, 13, 26 }, types[] = { 1, 1, 3 };
    const uint64_t offs[] = { 0x300, 0x308, 0xd00 }, sizes[] = { 8, 8, sizeof strtab };
    for (int i = 0; i < 3; i++) {
        uint8_t *sh = b + 0xe00 + 64 * (i + 1);
        imgt_put32(sh, names[i]);
        imgt_put32(sh + 4, types[i]);
        imgt_put64(sh + 24, offs[i]);
        imgt_put64(sh + 32, sizes[i]);
        imgt_put64(sh + 48, 8);
    }
}

/* The generated PVH image with the note the reference kernel carries:
 * name "shoal", type 1, guest protocol version 1, after the Xen note. */
static inline void imgt_shoal(uint8_t *b)
{
    imgt_fill(6, IMGT_PVH_SIZE, 0, b, IMGT_PVH_SIZE);
    uint8_t *n = b + 0xc4;
    imgt_put32(n, 6);
    imgt_put32(n + 4, 4);
    imgt_put32(n + 8, 1);
    memcpy(n + 12, "shoal\0\0", 8);
    imgt_put32(n + 20, 1);
    imgt_put64(b + 120 + 32, 20 + 24); /* PT_NOTE p_filesz */
    imgt_put64(b + 120 + 40, 20 + 24);
}

/* ---- disks ----------------------------------------------------------------- */

#define IMGT_QCOW2_SIZE 0xa00u
#define IMGT_QCOW2_L1   0x200u
#define IMGT_QCOW2_L2   0x600u
#define IMGT_QCOW2_DATA 0x800u

static inline void imgt_put32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void imgt_put64be(uint8_t *p, uint64_t v)
{
    imgt_put32be(p, (uint32_t)(v >> 32));
    imgt_put32be(p + 4, (uint32_t)v);
}

/* A boot sector: "hlt; jmp .-1", signature at 510. */
static inline void imgt_sector(uint8_t *s)
{
    memset(s, 0, 512);
    s[0] = 0xf4;
    s[1] = 0xeb;
    s[2] = 0xfd;
    s[510] = 0x55;
    s[511] = 0xAA;
}

/* A raw disk of size bytes (a multiple of 512): boot sector, then zeros. */
static inline void imgt_bootsector(uint8_t *b, size_t size)
{
    memset(b, 0, size);
    imgt_sector(b);
}

/*
 * qcow2 of IMGT_QCOW2_SIZE bytes, 1 MiB virtual, 512-byte clusters: header,
 * L1 at 0x200, L2 at 0x600, guest cluster 0 at 0x800 holding a boot sector.
 * (Refcounts are not written: enough for the validator, not for QEMU.)
 */
static inline void imgt_qcow2(uint8_t *b, uint32_t version)
{
    memset(b, 0, IMGT_QCOW2_SIZE);
    memcpy(b, "QFI\xfb", 4);
    imgt_put32be(b + 4, version);
    imgt_put32be(b + 20, 9);             /* cluster_bits */
    imgt_put64be(b + 24, 1 << 20);       /* virtual size */
    imgt_put32be(b + 36, 32);            /* l1_size */
    imgt_put64be(b + 40, IMGT_QCOW2_L1); /* l1_table_offset */
    imgt_put64be(b + 48, 0x400);         /* refcount_table_offset */
    imgt_put32be(b + 56, 1);             /* refcount_table_clusters */
    if (version >= 3) {
        imgt_put32be(b + 96, 4);    /* refcount_order */
        imgt_put32be(b + 100, 104); /* header_length */
    }
    imgt_put64be(b + IMGT_QCOW2_L1, IMGT_QCOW2_L2 | (UINT64_C(1) << 63));
    imgt_put64be(b + IMGT_QCOW2_L2, IMGT_QCOW2_DATA | (UINT64_C(1) << 63));
    imgt_sector(b + IMGT_QCOW2_DATA);
}

#endif /* SHOAL_IMG_TESTIMG_H */
