/*
 * pci.c - PCI config mechanism #1 (PCI Local Bus spec 3.0, 3.2.2.3.2).
 */
#include "pci.h"

#include "../arch/x86_64/cpu.h"

#define PCI_CFG_ADDR 0xCF8
#define PCI_CFG_DATA 0xCFC

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

int pci_scan(int (*fn)(const struct pci_dev *d, void *ctx), void *ctx)
{
    for (unsigned bus = 0; bus < 256; bus++) {
        for (uint8_t dev = 0; dev < 32; dev++) {
            uint8_t nfn = 1;
            for (uint8_t f = 0; f < nfn; f++) {
                uint32_t id = pci_read32((uint8_t)bus, dev, f, 0x00);
                if ((id & 0xFFFF) == PCI_VENDOR_NONE)
                    continue;
                uint32_t hdr = pci_read32((uint8_t)bus, dev, f, 0x0C);
                if (f == 0 && (hdr & 0x00800000u))   /* multi-function device */
                    nfn = 8;
                uint32_t cls = pci_read32((uint8_t)bus, dev, f, 0x08);
                struct pci_dev d = { (uint8_t)bus, dev, f, (uint16_t)id, (uint16_t)(id >> 16),
                                     (uint8_t)(cls >> 24), (uint8_t)(cls >> 16) };
                int r = fn(&d, ctx);
                if (r)
                    return r;
            }
        }
    }
    return 0;
}
