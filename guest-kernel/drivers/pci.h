/*
 * pci.h - PCI configuration space through I/O ports 0xCF8/0xCFC
 * ("configuration mechanism #1"), a bus scan, BAR sizing and placement, and
 * the capability list. This is where device drivers find their hardware;
 * drivers live in drivers/.
 *
 * Assumptions: single CPU, no concurrent config access (nothing here takes
 * a lock), conventional PCI on QEMU's `pc` machine (bus 0, no bridges that
 * need programming), 32-bit and 64-bit BARs placed below 4 GiB.
 */
#ifndef SHOAL_DRIVERS_PCI_H
#define SHOAL_DRIVERS_PCI_H

#include <stdint.h>

#define PCI_VENDOR_NONE 0xFFFF

#define PCI_CMD_IO     0x0001 /* command register: I/O space decoding */
#define PCI_CMD_MEM    0x0002 /* memory space decoding */
#define PCI_CMD_MASTER 0x0004 /* bus mastering (device DMA) */

#define PCI_CAP_VENDOR 0x09 /* capability ID: vendor specific */

/* One function found by pci_scan. */
struct pci_dev {
    uint8_t bus, dev, fn; /* address */
    uint16_t vendor;      /* config 0x00 */
    uint16_t device;      /* config 0x02 */
    uint8_t class_code;   /* config 0x0B */
    uint8_t subclass;     /* config 0x0A */
};

/* One base address register as decoded by pci_bar_probe. */
struct pci_bar {
    uint64_t base; /* 0: firmware left it unassigned */
    uint64_t size; /* bytes the function decodes, a power of 2 */
    int io;        /* 1 I/O space, 0 memory space */
    int is64;      /* memory BAR taking this and the next slot */
};

uint32_t pci_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
void pci_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint32_t v);
/* Narrow reads at any offset (done as one aligned 32-bit read). */
uint8_t pci_read8(const struct pci_dev *d, uint8_t off);
uint16_t pci_read16(const struct pci_dev *d, uint8_t off);

/* Call fn(d, ctx) for every present function on buses 0..255; stop early
 * when fn returns non-zero (that value is returned, else 0). */
int pci_scan(int (*fn)(const struct pci_dev *d, void *ctx), void *ctx);

/* Decode BAR idx (0..5) of d with the standard all-ones size probe. The
 * function's decoding is switched off during the probe and restored, so
 * nothing else sees the probe address. Returns 0, or -1 when the slot is
 * unimplemented (size 0), out of range for the header type, or the upper
 * half of a 64-bit BAR. */
int pci_bar_probe(const struct pci_dev *d, unsigned idx, struct pci_bar *out);

/* Make BAR idx of d usable: when the firmware left it at 0 (qboot leaves
 * I/O BARs and some memory BARs unassigned), place it aligned to its size
 * clear of every BAR already assigned on the bus - I/O in 0xC000-0xFFFF,
 * memory in 0xE0000000-0xFEBFFFFF (the top of the `pc` PCI hole, below the
 * IOAPIC; identity-mapped uncached by boot.S) - then enable decoding of its
 * space and bus mastering. Returns 0 with *out filled, or -1 with a reason
 * in *why (a static string). */
int pci_bar_enable(const struct pci_dev *d, unsigned idx, struct pci_bar *out, const char **why);

/* Defined (as 1) by an image that leaves PCI set-up to the firmware
 * (kern.h): pci_bar_enable then places nothing, and a BAR left at 0 is an
 * error ("the firmware left the BAR unassigned ..."). Weak: absent, 0. */
extern const int shoal_pci_firmware_only __attribute__((weak));

/* Walk the capability list: returns the config offset of the first
 * capability with ID cap_id after offset `after` (0 to start at the list
 * head), or 0 when there is none. Bounded, so a looping list ends. */
uint8_t pci_cap_find(const struct pci_dev *d, uint8_t cap_id, uint8_t after);

#endif
