/*
 * fwcfg.c - QEMU fw_cfg, read only (see fwcfg.h). The steps follow QEMU's
 * docs/specs/fw_cfg.rst: check the signature, read the feature bits, find
 * the file in the directory item, then read the file's item.
 */
#include "fwcfg.h"
#include "cpu.h"

#include <stdint.h>
#include <string.h>

#define FWCFG_PORT_SEL  0x510 /* 16-bit selector */
#define FWCFG_PORT_DATA 0x511 /* 8-bit data */
#define FWCFG_PORT_DMA  0x514 /* DMA address: high half at 0x514, low at 0x518 */

#define FWCFG_SIGNATURE 0x0000 /* "QEMU" */
#define FWCFG_ID        0x0001 /* feature bits, little-endian u32 */
#define FWCFG_FILE_DIR  0x0019 /* the file directory */

#define FWCFG_F_DMA 0x2 /* FWCFG_ID bit 1: the DMA interface exists */

/* DMA control bits. */
#define FWCFG_DMA_ERROR  0x01
#define FWCFG_DMA_READ   0x02
#define FWCFG_DMA_SELECT 0x08

/* At most this many directory entries are looked at (QEMU's pc machine
 * has about 20). */
#define FWCFG_DIR_MAX 128

struct fwcfg_file {  /* one directory entry, as the device sends it */
    uint32_t size;   /* big-endian */
    uint16_t select; /* big-endian */
    uint16_t reserved;
    char name[FWCFG_NAME_MAX];
};

struct fwcfg_dma { /* DMA descriptor, every field big-endian */
    uint32_t control;
    uint32_t length;
    uint64_t address;
};

static int fwcfg_dma_last;

static inline void fw_outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static uint32_t be32(uint32_t v)
{
    return __builtin_bswap32(v);
}

static uint16_t be16(uint16_t v)
{
    return __builtin_bswap16(v);
}

/* Port interface: read n bytes of the selected item. */
static void fw_pio_read(void *dst, size_t n)
{
    uint8_t *p = dst;
    for (size_t i = 0; i < n; i++)
        p[i] = inb(FWCFG_PORT_DATA);
}

/* DMA interface: select item `sel` and read n bytes of it into dst, in one
 * exit. QEMU completes a transfer before the write to 0x518 returns; the
 * loop only guards against a device that does not. 0, or -1 on error. */
static int fw_dma_read(uint16_t sel, void *dst, uint32_t n)
{
    static volatile struct fwcfg_dma d __attribute__((aligned(16)));
    uint64_t a = (uint64_t)(uintptr_t)&d;
    d.control = be32(((uint32_t)sel << 16) | FWCFG_DMA_SELECT | FWCFG_DMA_READ);
    d.length = be32(n);
    d.address = __builtin_bswap64((uint64_t)(uintptr_t)dst);
    __asm__ volatile("" ::: "memory");
    fw_outl(FWCFG_PORT_DMA, be32((uint32_t)(a >> 32)));
    fw_outl(FWCFG_PORT_DMA + 4, be32((uint32_t)a));
    for (unsigned spin = 0; spin < 1000000u; spin++) {
        uint32_t c = be32(d.control);
        if (c & FWCFG_DMA_ERROR)
            return -1;
        if (c == 0)
            return 0;
        __asm__ volatile("pause");
    }
    return -1;
}

/* Read n bytes from the start of item sel. */
static int fw_read(int dma, uint16_t sel, void *dst, uint32_t n)
{
    if (dma)
        return fw_dma_read(sel, dst, n);
    outw(FWCFG_PORT_SEL, sel);
    fw_pio_read(dst, n);
    return 0;
}

int fwcfg_used_dma(void)
{
    return fwcfg_dma_last;
}

long fwcfg_read_file(const char *name, char *buf, size_t cap)
{
    static struct fwcfg_file dir[FWCFG_DIR_MAX];
    char sig[4];
    uint32_t id = 0, count = 0;
    int dma;

    if (cap == 0)
        return -1;
    buf[0] = '\0';
    fwcfg_dma_last = 0;

    /* 1. The signature tells whether a device is there at all (an absent
     *    port reads 0xff). */
    outw(FWCFG_PORT_SEL, FWCFG_SIGNATURE);
    fw_pio_read(sig, sizeof sig);
    if (memcmp(sig, "QEMU", 4) != 0)
        return -1;

    /* 2. Feature bits: DMA when offered (one exit per item instead of one
     *    per byte; under a paravirtual KVM every exit costs microseconds). */
    outw(FWCFG_PORT_SEL, FWCFG_ID);
    fw_pio_read(&id, sizeof id); /* little-endian, like the CPU */
    dma = (id & FWCFG_F_DMA) != 0;
    fwcfg_dma_last = dma;

    /* 3. The directory: a big-endian count, then the entries. */
    outw(FWCFG_PORT_SEL, FWCFG_FILE_DIR);
    fw_pio_read(&count, sizeof count);
    count = be32(count);
    if (count > FWCFG_DIR_MAX)
        count = FWCFG_DIR_MAX;
    if (dma) {
        /* The count is the item's first 4 bytes: read them again with
         * the entries and skip them. */
        static uint8_t raw[4 + sizeof dir] __attribute__((aligned(8)));
        if (fw_dma_read(FWCFG_FILE_DIR, raw, 4 + count * (uint32_t)sizeof dir[0]) != 0)
            return -1;
        memcpy(dir, raw + 4, count * sizeof dir[0]);
    } else {
        fw_pio_read(dir, count * sizeof dir[0]);
    }

    /* 4. The file's own item, cut to the buffer. */
    for (uint32_t i = 0; i < count; i++) {
        dir[i].name[FWCFG_NAME_MAX - 1] = '\0';
        if (strcmp(dir[i].name, name) != 0)
            continue;
        uint32_t size = be32(dir[i].size);
        uint32_t n = size < cap - 1 ? size : (uint32_t)(cap - 1);
        if (fw_read(dma, be16(dir[i].select), buf, n) != 0)
            return -1;
        buf[n] = '\0';
        return (long)size;
    }
    return 0;
}
