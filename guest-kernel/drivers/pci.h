/*
 * pci.h - PCI configuration space through I/O ports 0xCF8/0xCFC
 * ("configuration mechanism #1"), and a bus scan. This is where device
 * drivers (virtio-net next) find their hardware; drivers live in drivers/.
 */
#ifndef SHOAL_DRIVERS_PCI_H
#define SHOAL_DRIVERS_PCI_H

#include <stdint.h>

#define PCI_VENDOR_NONE 0xFFFF

/* One function found by pci_scan. */
struct pci_dev {
    uint8_t  bus, dev, fn;   /* address */
    uint16_t vendor;         /* config 0x00 */
    uint16_t device;         /* config 0x02 */
    uint8_t  class_code;     /* config 0x0B */
    uint8_t  subclass;       /* config 0x0A */
};

uint32_t pci_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
void     pci_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint32_t v);

/* Call fn(d, ctx) for every present function on buses 0..255; stop early
 * when fn returns non-zero (that value is returned, else 0). */
int pci_scan(int (*fn)(const struct pci_dev *d, void *ctx), void *ctx);

#endif
