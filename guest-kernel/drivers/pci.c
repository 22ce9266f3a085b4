/*
 * pci.c - PCI config mechanism #1 (PCI Local Bus spec 3.0, 3.2.2.3.2), bus
 * scan, BAR sizing/placement (6.2.5.1) and the capability list (6.7).
 */
#include "pci.h"

#include <stddef.h>

#define PCI_CFG_ADDR 0xCF8
#define PCI_CFG_DATA 0xCFC

#define PCI_BAR0        0x10
#define PCI_HEADER_TYPE 0x0E
#define PCI_STATUS_CAPS 0x0010 /* status register: capability list present */
#define PCI_CAP_PTR     0x34
#define PCI_SECONDARY   0x19 /* type 1 header: secondary bus number */

static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static uint32_t pci_addr(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
    return 0x80000000u | (uint32_t)bus << 16 | (uint32_t)(dev & 31) << 11 |
           (uint32_t)(fn & 7) << 8 | (off & 0xFC);
}

uint32_t pci_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
    outl(PCI_CFG_ADDR, pci_addr(bus, dev, fn, off));
    return inl(PCI_CFG_DATA);
}

void pci_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint32_t v)
{
    outl(PCI_CFG_ADDR, pci_addr(bus, dev, fn, off));
    outl(PCI_CFG_DATA, v);
}

uint8_t pci_read8(const struct pci_dev *d, uint8_t off)
{
    return (uint8_t)(pci_read32(d->bus, d->dev, d->fn, off) >> (8 * (off & 3)));
}

uint16_t pci_read16(const struct pci_dev *d, uint8_t off)
{
    return (uint16_t)(pci_read32(d->bus, d->dev, d->fn, off) >> (8 * (off & 2)));
}

static uint32_t rd(const struct pci_dev *d, uint8_t off)
{
    return pci_read32(d->bus, d->dev, d->fn, off);
}
static void wr(const struct pci_dev *d, uint8_t off, uint32_t v)
{
    pci_write32(d->bus, d->dev, d->fn, off, v);
}

/* The command register is the low half of 0x04; writing 0 to the upper
 * (status) half leaves its write-1-to-clear bits alone. */
static void set_command(const struct pci_dev *d, uint16_t cmd)
{
    wr(d, 0x04, cmd);
}

/* Scan one bus, then the buses behind its PCI-to-PCI bridges. `seen` keeps
 * a bus from being scanned twice when a bridge is misprogrammed. */
static int scan_bus(uint8_t bus, uint32_t seen[8], int (*fn)(const struct pci_dev *d, void *ctx),
                    void *ctx)
{
    if (seen[bus / 32] & (1u << (bus % 32)))
        return 0;
    seen[bus / 32] |= 1u << (bus % 32);
    for (uint8_t dev = 0; dev < 32; dev++) {
        uint8_t nfn = 1;
        for (uint8_t f = 0; f < nfn; f++) {
            uint32_t id = pci_read32(bus, dev, f, 0x00);
            if ((id & 0xFFFF) == PCI_VENDOR_NONE)
                continue;
            uint8_t htype = (uint8_t)(pci_read32(bus, dev, f, 0x0C) >> 16);
            if (f == 0 && (htype & 0x80)) /* multi-function device */
                nfn = 8;
            uint32_t cls = pci_read32(bus, dev, f, 0x08);
            struct pci_dev d = { bus,
                                 dev,
                                 f,
                                 (uint16_t)id,
                                 (uint16_t)(id >> 16),
                                 (uint8_t)(cls >> 24),
                                 (uint8_t)(cls >> 16) };
            int r = fn(&d, ctx);
            if (r)
                return r;
            if ((htype & 0x7F) == 1) {
                uint8_t sec = pci_read8(&d, PCI_SECONDARY);
                if (sec != 0 && (r = scan_bus(sec, seen, fn, ctx)) != 0)
                    return r;
            }
        }
    }
    return 0;
}

int pci_scan(int (*fn)(const struct pci_dev *d, void *ctx), void *ctx)
{
    uint32_t seen[8] = { 0 };
    return scan_bus(0, seen, fn, ctx);
}

static unsigned bar_slots(const struct pci_dev *d)
{
    uint8_t htype = pci_read8(d, PCI_HEADER_TYPE) & 0x7F;
    return htype == 0 ? 6 : htype == 1 ? 2 : 0;
}

int pci_bar_probe(const struct pci_dev *d, unsigned idx, struct pci_bar *out)
{
    unsigned slots = bar_slots(d), i = 0;
    while (i < idx && i < slots) { /* skip upper halves */
        uint32_t v = rd(d, (uint8_t)(PCI_BAR0 + 4 * i));
        i += (!(v & 1) && ((v >> 1) & 3) == 2) ? 2 : 1;
    }
    if (i != idx || idx >= slots)
        return -1;

    uint8_t off = (uint8_t)(PCI_BAR0 + 4 * idx);
    uint16_t cmd = pci_read16(d, 0x04);
    set_command(d, cmd & (uint16_t) ~(PCI_CMD_IO | PCI_CMD_MEM));
    uint32_t lo = rd(d, off);
    wr(d, off, 0xFFFFFFFFu);
    uint32_t mlo = rd(d, off);
    wr(d, off, lo);
    struct pci_bar b = { 0 };
    b.io = lo & 1;
    b.is64 = !b.io && ((lo >> 1) & 3) == 2 && idx + 1 < slots;
    uint64_t mask;
    if (b.io) {
        mask = 0xFFFFFFFF00000000ull | 0xFFFF0000u | (mlo & ~3u); /* 16-bit decode */
        b.base = lo & ~3u;
        if ((mlo & ~3u) == 0)
            mask = ~0ull; /* nothing decoded */
    } else {
        mask = 0xFFFFFFFF00000000ull | (mlo & ~0xFu);
        b.base = lo & ~0xFu;
        if (b.is64) {
            uint32_t hi = rd(d, (uint8_t)(off + 4));
            wr(d, (uint8_t)(off + 4), 0xFFFFFFFFu);
            uint32_t mhi = rd(d, (uint8_t)(off + 4));
            wr(d, (uint8_t)(off + 4), hi);
            mask = (uint64_t)mhi << 32 | (mlo & ~0xFu);
            b.base |= (uint64_t)hi << 32;
        }
        if ((mlo & ~0xFu) == 0 && (!b.is64 || (mask >> 32) == 0))
            mask = ~0ull;
    }
    set_command(d, cmd);
    b.size = ~mask + 1;
    if (b.size == 0 || (b.size & (b.size - 1)))
        return -1; /* unimplemented (or broken) */
    *out = b;
    return 0;
}

/* Assigned BARs of one kind on the bus, for placement. */
#define PCI_MAX_RANGES 64
struct pci_ranges {
    int io;
    unsigned n;
    uint64_t lo[PCI_MAX_RANGES], hi[PCI_MAX_RANGES];
};

static int collect(const struct pci_dev *d, void *ctx)
{
    struct pci_ranges *r = ctx;
    unsigned slots = bar_slots(d);
    for (unsigned i = 0; i < slots; i++) {
        struct pci_bar b;
        uint32_t raw = rd(d, (uint8_t)(PCI_BAR0 + 4 * i));
        int is64 = !(raw & 1) && ((raw >> 1) & 3) == 2;
        uint64_t base = (raw & 1) ? (raw & ~3u) : (raw & ~0xFu);
        /* Only assigned BARs occupy space; probe just those (each probe
         * is a few config cycles, VM exits all). */
        if (base != 0 && (int)(raw & 1) == r->io && r->n < PCI_MAX_RANGES &&
            pci_bar_probe(d, i, &b) == 0) {
            r->lo[r->n] = b.base;
            r->hi[r->n] = b.base + b.size;
            r->n++;
        }
        if (is64)
            i++;
    }
    return 0;
}

/* Lowest base in [lo, hi) aligned to size and clear of every range. */
static uint64_t place(const struct pci_ranges *r, uint64_t size, uint64_t lo, uint64_t hi)
{
    uint64_t cand = (lo + size - 1) & ~(size - 1);
    for (unsigned pass = 0; pass <= r->n; pass++) {
        int moved = 0;
        for (unsigned i = 0; i < r->n; i++) {
            if (cand < r->hi[i] && r->lo[i] < cand + size) {
                cand = (r->hi[i] + size - 1) & ~(size - 1);
                moved = 1;
            }
        }
        if (!moved)
            return cand + size <= hi ? cand : 0;
    }
    return 0;
}

int pci_bar_enable(const struct pci_dev *d, unsigned idx, struct pci_bar *out, const char **why)
{
    struct pci_bar b;
    if (pci_bar_probe(d, idx, &b) != 0) {
        *why = "BAR not implemented";
        return -1;
    }
    if (b.base == 0 && &shoal_pci_firmware_only && shoal_pci_firmware_only) {
        *why = "the firmware left the BAR unassigned (this image leaves PCI set-up to the "
               "firmware: boot it with SeaBIOS)";
        return -1;
    }
    if (b.base == 0) {
        static struct pci_ranges r; /* 1 KiB: keep it off the stack */
        r.io = b.io;
        r.n = 0;
        pci_scan(collect, &r);
        uint64_t base =
            b.io ? place(&r, b.size, 0xC000, 0x10000) : place(&r, b.size, 0xE0000000u, 0xFEC00000u);
        if (base == 0) {
            *why = b.io ? "no free I/O range for the BAR" : "no free memory range for the BAR";
            return -1;
        }
        uint8_t off = (uint8_t)(PCI_BAR0 + 4 * idx);
        uint16_t cmd = pci_read16(d, 0x04);
        set_command(d, cmd & (uint16_t) ~(PCI_CMD_IO | PCI_CMD_MEM));
        wr(d, off, (uint32_t)base);
        if (b.is64)
            wr(d, (uint8_t)(off + 4), 0);
        set_command(d, cmd);
        if (pci_bar_probe(d, idx, &b) != 0 || b.base != base) {
            *why = "BAR did not take the address written";
            return -1;
        }
    }
    uint16_t cmd = pci_read16(d, 0x04);
    set_command(d, cmd | (b.io ? PCI_CMD_IO : PCI_CMD_MEM) | PCI_CMD_MASTER);
    *out = b;
    return 0;
}

uint8_t pci_cap_find(const struct pci_dev *d, uint8_t cap_id, uint8_t after)
{
    if (!(pci_read16(d, 0x06) & PCI_STATUS_CAPS))
        return 0;
    uint8_t p = after ? pci_read8(d, (uint8_t)(after + 1)) : pci_read8(d, PCI_CAP_PTR);
    /* At most 48 capabilities fit in 192 bytes: a longer walk is a loop. */
    for (unsigned n = 0; n < 48 && p >= 0x40; n++) {
        p &= 0xFC;
        if (pci_read8(d, p) == cap_id)
            return p;
        p = pci_read8(d, (uint8_t)(p + 1));
    }
    return 0;
}
