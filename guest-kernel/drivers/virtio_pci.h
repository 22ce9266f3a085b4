/*
 * virtio_pci.h - the virtio PCI transport (virtio 1.x spec, 4.1) for one
 * device, through either of its two register interfaces:
 *
 *  - modern (virtio 1.0): vendor capabilities point at the common, notify,
 *    ISR and device-specific configuration structures inside memory BARs;
 *    64-bit features with VIRTIO_F_VERSION_1, FEATURES_OK, 64-bit queue
 *    addresses. Device 1AF4:1040+type, and transitional devices that also
 *    carry the capabilities.
 *  - legacy (virtio 0.9.5): one I/O-port register block in BAR0, 32-bit
 *    features, queue given as a page frame number of the legacy layout.
 *    Transitional devices 1AF4:1000-103F.
 *
 * A device driver (virtio_net.c) calls vpci_find, then vpci_open, then
 * follows the initialization sequence (3.1.1) with the calls below. It lays
 * its queues out in the legacy layout (2.6.2, used ring aligned to
 * VPCI_VQ_ALIGN), which is valid for both interfaces.
 *
 * Interrupts: one queue may be given an MSI-X vector (vpci_irq_enable, on
 * either interface); everything else is polled (INTx is not wired up by
 * the kernel: qboot leaves LVT0 masked and there is no IOAPIC code).
 *
 * Assumptions: identity-mapped memory below 4 GiB (queue and BAR addresses
 * are used as pointers and physical addresses alike), single CPU.
 */
#ifndef SHOAL_DRIVERS_VIRTIO_PCI_H
#define SHOAL_DRIVERS_VIRTIO_PCI_H

#include <stddef.h>
#include <stdint.h>

#include "pci.h"

#define VPCI_STATUS_ACKNOWLEDGE 1
#define VPCI_STATUS_DRIVER      2
#define VPCI_STATUS_DRIVER_OK   4
#define VPCI_STATUS_FEATURES_OK 8
#define VPCI_STATUS_FAILED      128

#define VPCI_F_VERSION_1 32 /* feature bit: modern device/driver */

#define VPCI_VQ_ALIGN 4096 /* legacy layout: used ring alignment */

enum vpci_mode {
    VPCI_AUTO = 0, /* modern when the device offers it, else legacy */
    VPCI_LEGACY,   /* legacy interface only */
    VPCI_MODERN,   /* modern interface only */
};

struct vpci {
    struct pci_dev pci;
    int modern;               /* interface in use */
    uint16_t io;              /* legacy: BAR0 I/O base */
    uint16_t leg_cfg;         /* legacy: device config offset (moves with MSI-X) */
    volatile uint8_t *common; /* modern: struct virtio_pci_common_cfg */
    volatile uint8_t *isr;
    volatile uint8_t *devcfg; /* device-specific configuration */
    volatile uint8_t *notify; /* modern: notification area */
    uint32_t notify_mult;     /* notify_off_multiplier */
    uint32_t notify_len;      /* bytes of the notification area */
    uint32_t devcfg_len;
    volatile uint16_t *qnotify[2]; /* modern: per-queue notify address */
    int irq_queue;                 /* queue with an MSI-X vector, or -1 */
    int irq_ok;                    /* MSI-X on and the device took the vector */
};

/* ---- split virtqueues (2.6), laid out in the legacy layout (2.6.2) ---- */
#define VRING_DESC_F_NEXT          1
#define VRING_DESC_F_WRITE         2
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY     1

struct vring_desc {
    uint64_t addr; /* guest physical */
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct vring_used_elem {
    uint32_t id;  /* head descriptor of the chain */
    uint32_t len; /* bytes the device wrote */
};

/* One queue as a driver sees it. */
struct vpci_vq {
    uint16_t size;      /* entries */
    uint16_t last_used; /* next used entry to look at */
    struct vring_desc *desc;
    volatile uint16_t *avail_flags, *avail_idx, *avail_ring;
    volatile uint16_t *used_flags, *used_idx;
    volatile struct vring_used_elem *used_ring;
};

#define VPCI_ALIGN_UP(x, a) (((x) + (a)-1) & ~((size_t)(a)-1))
/* Bytes of a queue of n entries in the legacy layout. */
#define VPCI_VQ_BYTES(n)                                                                           \
    (VPCI_ALIGN_UP(16 * (size_t)(n) + 6 + 2 * (size_t)(n), VPCI_VQ_ALIGN) +                        \
     VPCI_ALIGN_UP(6 + 8 * (size_t)(n), VPCI_VQ_ALIGN))

/* Size to use for queue qi: the device's, capped at max on the modern
 * interface (which lets the driver choose a smaller one); 0 when the queue
 * is absent, larger than max on the legacy interface (fixed size there),
 * or not a power of 2. Selects qi. */
uint16_t vpci_vq_size(struct vpci *v, unsigned qi, uint16_t max);

/* Lay queue qi out at mem (VPCI_VQ_BYTES(n) bytes, aligned to
 * VPCI_VQ_ALIGN, zeroed here) with n = vpci_vq_size(...) entries, device
 * interrupts suppressed (VRING_AVAIL_F_NO_INTERRUPT), and hand it to the
 * device (vpci_queue_enable). Returns 0 or -1. */
int vpci_vq_start(struct vpci *v, unsigned qi, struct vpci_vq *q, uint8_t *mem, uint16_t n);

/* Post descriptor chain head `head` on q's available ring. */
void vpci_vq_post(struct vpci_vq *q, uint16_t head);

/* Notify queue qi unless the device asked not to be (VRING_USED_F_NO_NOTIFY).
 * Returns 1 if a notification (a VM exit) was written. */
int vpci_vq_kick(const struct vpci *v, unsigned qi, const struct vpci_vq *q);

/* Let q interrupt (clear VRING_AVAIL_F_NO_INTERRUPT), fenced so the
 * caller's last look at the used index comes after the store; and back. */
void vpci_vq_irq_arm(struct vpci_vq *q);
void vpci_vq_irq_disarm(struct vpci_vq *q);

/* Find the first virtio function of the given device type (1 = network)
 * on the bus: transitional 1AF4:1000-103F with that subsystem ID, or
 * modern 1AF4:(0x1040 + type). Returns 0 with *d filled, -1 if none. */
int vpci_find(unsigned type, struct pci_dev *d);

/* Pick the interface per `mode`, map its registers (assigning BARs the
 * firmware left empty, enabling decoding and bus mastering) and reset the
 * device, waiting for the reset to complete. Returns 0, or -1 with *why
 * set to a static message. */
int vpci_open(struct vpci *v, const struct pci_dev *d, enum vpci_mode mode, const char **why);

uint8_t vpci_status(const struct vpci *v);
void vpci_set_status(struct vpci *v, uint8_t status);

/* Device features (bits 32+ only exist on the modern interface). */
uint64_t vpci_device_features(const struct vpci *v);

/* Write the driver's features. Modern: also sets FEATURES_OK and checks
 * the device kept it (returns -1 if not: the device refused the subset).
 * Legacy: the write is the agreement. */
int vpci_set_features(struct vpci *v, uint64_t features);

/* Size of queue qi as the device offers it: 0 if absent. Selects qi. */
uint16_t vpci_queue_size(struct vpci *v, unsigned qi);

/* Give queue qi (n entries, laid out in the legacy layout at mem, aligned
 * to VPCI_VQ_ALIGN; desc/avail/used are the parts' addresses inside it)
 * to the device and enable it. qi must be 0 or 1. Returns 0 or -1. */
int vpci_queue_enable(struct vpci *v, unsigned qi, uint16_t n, void *mem, const void *desc,
                      const void *avail, const void *used);

/* Ask for an interrupt on queue qi (0 or 1): MSI-X table entry 0 sends
 * `vector` to the local APIC `apic`, MSI-X is enabled, configuration
 * changes get no vector. Call after vpci_open and before that queue's
 * vpci_queue_enable, which assigns the vector and checks the device took
 * it (then irq_ok is 1). On the legacy interface this moves the device
 * configuration (read it through vpci_config*, which follow). Needs an
 * MSI-X capability: returns -1 (and the device stays polled) otherwise. */
int vpci_irq_enable(struct vpci *v, unsigned qi, uint8_t vector, uint8_t apic);

/* Tell the device queue qi has new buffers (one register write). */
void vpci_notify(const struct vpci *v, unsigned qi);

/* Device-specific configuration: 8/16-bit reads at off. Modern reads of
 * more than one byte go through vpci_config_read, which retries until
 * config_generation is stable. */
uint8_t vpci_config8(const struct vpci *v, unsigned off);
uint16_t vpci_config16(const struct vpci *v, unsigned off);
void vpci_config_read(const struct vpci *v, unsigned off, void *buf, size_t len);

/* Read (and clear) the ISR status. */
uint8_t vpci_isr(const struct vpci *v);

#endif
