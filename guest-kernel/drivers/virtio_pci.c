/*
 * virtio_pci.c - virtio over PCI, modern and legacy interfaces (virtio 1.x
 * spec 4.1.3-4.1.5). See virtio_pci.h for the contract.
 */
#include "virtio_pci.h"

#include <string.h>

/* ---- legacy register block in BAR0 (4.1.4.8), MSI-X off ---- */
#define LEG_HOST_FEATURES  0x00 /* u32 */
#define LEG_GUEST_FEATURES 0x04 /* u32 */
#define LEG_QUEUE_PFN      0x08 /* u32, queue address >> 12 */
#define LEG_QUEUE_NUM      0x0C /* u16, read only */
#define LEG_QUEUE_SEL      0x0E /* u16 */
#define LEG_QUEUE_NOTIFY   0x10 /* u16 */
#define LEG_STATUS         0x12 /* u8 */
#define LEG_ISR            0x13 /* u8, read clears */
#define LEG_CONFIG         0x14 /* device configuration, MSI-X off */
#define LEG_MSIX_CONFIG    0x14 /* u16, MSI-X on: vector for config changes */
#define LEG_MSIX_QUEUE     0x16 /* u16, MSI-X on: vector of the selected queue */
#define LEG_CONFIG_MSIX    0x18 /* device configuration, MSI-X on */

/* ---- modern: struct virtio_pci_cap (4.1.4) ---- */
#define CAP_CFG_TYPE    3  /* u8 */
#define CAP_BAR         4  /* u8 */
#define CAP_OFFSET      8  /* u32 */
#define CAP_LENGTH      12 /* u32 */
#define CAP_NOTIFY_MULT 16 /* u32, notify capability only */
#define CFG_COMMON      1
#define CFG_NOTIFY      2
#define CFG_ISR         3
#define CFG_DEVICE      4

/* ---- modern: struct virtio_pci_common_cfg (4.1.4.3) ---- */
#define CC_DFSELECT  0x00 /* u32 device_feature_select */
#define CC_DF        0x04 /* u32 device_feature */
#define CC_GFSELECT  0x08 /* u32 driver_feature_select */
#define CC_GF        0x0C /* u32 driver_feature */
#define CC_MSIX_CFG  0x10 /* u16 msix_config (vector for config changes) */
#define CC_STATUS    0x14 /* u8  device_status */
#define CC_CFGGEN    0x15 /* u8  config_generation */
#define CC_Q_SELECT  0x16 /* u16 */
#define CC_Q_SIZE    0x18 /* u16 */
#define CC_Q_MSIX    0x1A /* u16 queue_msix_vector */
#define CC_Q_ENABLE  0x1C /* u16 */
#define CC_Q_NOFF    0x1E /* u16 queue_notify_off */
#define CC_Q_DESCLO  0x20 /* u32 x 2 each: 64-bit fields are written */
#define CC_Q_DESCHI  0x24 /*   as two 32-bit halves, low first */
#define CC_Q_AVAILLO 0x28
#define CC_Q_AVAILHI 0x2C
#define CC_Q_USEDLO  0x30
#define CC_Q_USEDHI  0x34
#define CC_LEN       0x38

#define RESET_SPINS 1000000u /* reads of device_status before giving up */

/* ---- MSI-X (PCI Local Bus 3.0, 6.8.2) ---- */
#define PCI_CAP_MSIX     0x11
#define MSIX_CTRL_ENABLE 0x8000u     /* message control bit 15 */
#define MSIX_CTRL_MASK   0x4000u     /* function mask, bit 14 */
#define MSI_ADDR_BASE    0xFEE00000u /* x86 MSI address: LAPIC, dest ID in 19:12 */
#define VIRTIO_NO_VECTOR 0xFFFF

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t v)
{
    __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint16_t inw(uint16_t port)
{
    uint16_t v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

/* MMIO: one volatile access of the register's width (the spec requires
 * accesses of exactly the field's size). */
static inline uint8_t r8(volatile uint8_t *b, unsigned o)
{
    return b[o];
}
static inline uint16_t r16(volatile uint8_t *b, unsigned o)
{
    return *(volatile uint16_t *)(volatile void *)(b + o);
}
static inline uint32_t r32(volatile uint8_t *b, unsigned o)
{
    return *(volatile uint32_t *)(volatile void *)(b + o);
}
static inline void w8(volatile uint8_t *b, unsigned o, uint8_t v)
{
    b[o] = v;
}
static inline void w16(volatile uint8_t *b, unsigned o, uint16_t v)
{
    *(volatile uint16_t *)(volatile void *)(b + o) = v;
}
static inline void w32(volatile uint8_t *b, unsigned o, uint32_t v)
{
    *(volatile uint32_t *)(volatile void *)(b + o) = v;
}

#define barrier() __asm__ volatile("" ::: "memory")

struct find_ctx {
    unsigned type;
    struct pci_dev *out;
};

static int match(const struct pci_dev *d, void *ctx)
{
    struct find_ctx *f = ctx;
    if (d->vendor != 0x1AF4)
        return 0;
    int ok = d->device == 0x1040 + f->type ||
             (d->device >= 0x1000 && d->device <= 0x103F && pci_read16(d, 0x2E) == f->type);
    if (ok)
        *f->out = *d;
    return ok;
}

int vpci_find(unsigned type, struct pci_dev *d)
{
    struct find_ctx f = { type, d };
    return pci_scan(match, &f) ? 0 : -1;
}

/* Modern capabilities: the first of each type whose BAR can be mapped
 * (4.1.4: "the driver SHOULD use the first instance it can"). */
static int map_modern(struct vpci *v, const char **why)
{
    const struct pci_dev *d = &v->pci;
    struct pci_bar bars[6];
    unsigned have = 0; /* bit i: bars[i] is enabled */
    uint32_t isr_len = 0;
    for (uint8_t c = pci_cap_find(d, PCI_CAP_VENDOR, 0); c;
         c = pci_cap_find(d, PCI_CAP_VENDOR, c)) {
        uint8_t type = pci_read8(d, (uint8_t)(c + CAP_CFG_TYPE));
        uint8_t bar = pci_read8(d, (uint8_t)(c + CAP_BAR));
        uint32_t off = pci_read32(d->bus, d->dev, d->fn, (uint8_t)(c + CAP_OFFSET));
        uint32_t len = pci_read32(d->bus, d->dev, d->fn, (uint8_t)(c + CAP_LENGTH));
        volatile uint8_t **slot = type == CFG_COMMON   ? &v->common
                                  : type == CFG_NOTIFY ? &v->notify
                                  : type == CFG_ISR    ? &v->isr
                                  : type == CFG_DEVICE ? &v->devcfg
                                                       : NULL;
        if (!slot || *slot || bar > 5)
            continue; /* other type, already have one, or reserved BAR */
        if (!(have & (1u << bar))) {
            const char *e;
            if (pci_bar_enable(d, bar, &bars[bar], &e) != 0 || bars[bar].io)
                continue; /* I/O-space structures: not supported, try the next */
            have |= 1u << bar;
        }
        if ((uint64_t)off + len > bars[bar].size ||
            bars[bar].base + bars[bar].size > 0x100000000ull)
            continue; /* outside its BAR, or above the identity map */
        if (type == CFG_COMMON && len < CC_LEN)
            continue;
        *slot = (volatile uint8_t *)(uintptr_t)(bars[bar].base + off);
        if (type == CFG_NOTIFY) {
            v->notify_mult = pci_read32(d->bus, d->dev, d->fn, (uint8_t)(c + CAP_NOTIFY_MULT));
            v->notify_len = len;
        } else if (type == CFG_ISR) {
            isr_len = len;
        } else if (type == CFG_DEVICE) {
            v->devcfg_len = len;
        }
    }
    if (!v->common || !v->notify || !v->isr || isr_len < 1) {
        v->common = v->notify = v->isr = v->devcfg = NULL;
        *why = "no usable modern virtio capabilities";
        return -1;
    }
    v->modern = 1;
    return 0;
}

static int map_legacy(struct vpci *v, const char **why)
{
    struct pci_bar b;
    if (v->pci.device >= 0x1040) {
        *why = "modern-only device has no legacy interface";
        return -1;
    }
    if (pci_bar_enable(&v->pci, 0, &b, why) != 0)
        return -1;
    if (!b.io || b.size < LEG_CONFIG) {
        *why = "BAR0 is not a legacy I/O register block";
        return -1;
    }
    v->io = (uint16_t)b.base;
    v->leg_cfg = LEG_CONFIG;
    v->modern = 0;
    return 0;
}

int vpci_open(struct vpci *v, const struct pci_dev *d, enum vpci_mode mode, const char **why)
{
    memset(v, 0, sizeof *v);
    v->pci = *d;
    v->irq_queue = -1;
    int r;
    if (mode == VPCI_LEGACY)
        r = map_legacy(v, why);
    else if (mode == VPCI_MODERN || d->device >= 0x1040)
        r = map_modern(v, why);
    else if ((r = map_modern(v, why)) != 0) /* auto: modern first (4.1.2.1) */
        r = map_legacy(v, why);
    if (r != 0)
        return -1;
    /* Reset (3.1.1 step 1); a modern driver must see 0 read back before
     * going on (4.1.4.3.2). */
    vpci_set_status(v, 0);
    for (unsigned i = 0; vpci_status(v) != 0; i++) {
        if (i == RESET_SPINS) {
            *why = "device did not complete reset";
            return -1;
        }
    }
    return 0;
}

uint8_t vpci_status(const struct vpci *v)
{
    return v->modern ? r8(v->common, CC_STATUS) : inb((uint16_t)(v->io + LEG_STATUS));
}

void vpci_set_status(struct vpci *v, uint8_t status)
{
    if (v->modern)
        w8(v->common, CC_STATUS, status);
    else
        outb((uint16_t)(v->io + LEG_STATUS), status);
}

uint64_t vpci_device_features(const struct vpci *v)
{
    if (!v->modern)
        return inl((uint16_t)(v->io + LEG_HOST_FEATURES));
    w32(v->common, CC_DFSELECT, 0);
    uint32_t lo = r32(v->common, CC_DF);
    w32(v->common, CC_DFSELECT, 1);
    uint32_t hi = r32(v->common, CC_DF);
    return (uint64_t)hi << 32 | lo;
}

int vpci_set_features(struct vpci *v, uint64_t features)
{
    if (!v->modern) {
        outl((uint16_t)(v->io + LEG_GUEST_FEATURES), (uint32_t)features);
        return 0;
    }
    w32(v->common, CC_GFSELECT, 0);
    w32(v->common, CC_GF, (uint32_t)features);
    w32(v->common, CC_GFSELECT, 1);
    w32(v->common, CC_GF, (uint32_t)(features >> 32));
    /* 3.1.1 steps 5-6: FEATURES_OK, then read it back: a device that
     * cannot work with this subset leaves it clear. */
    vpci_set_status(v, (uint8_t)(vpci_status(v) | VPCI_STATUS_FEATURES_OK));
    return (vpci_status(v) & VPCI_STATUS_FEATURES_OK) ? 0 : -1;
}

uint16_t vpci_queue_size(struct vpci *v, unsigned qi)
{
    if (!v->modern) {
        outw((uint16_t)(v->io + LEG_QUEUE_SEL), (uint16_t)qi);
        return inw((uint16_t)(v->io + LEG_QUEUE_NUM));
    }
    w16(v->common, CC_Q_SELECT, (uint16_t)qi);
    return r16(v->common, CC_Q_SIZE);
}

static void w64(volatile uint8_t *b, unsigned lo, uint64_t v)
{
    w32(b, lo, (uint32_t)v);
    w32(b, lo + 4, (uint32_t)(v >> 32));
}

int vpci_queue_enable(struct vpci *v, unsigned qi, uint16_t n, void *mem, const void *desc,
                      const void *avail, const void *used)
{
    uint64_t pa = (uint64_t)(uintptr_t)mem;
    if (qi > 1)
        return -1;
    barrier(); /* ring contents before the device sees them */
    if (!v->modern) {
        outw((uint16_t)(v->io + LEG_QUEUE_SEL), (uint16_t)qi);
        if (inw((uint16_t)(v->io + LEG_QUEUE_NUM)) != n ||
            inl((uint16_t)(v->io + LEG_QUEUE_PFN)) != 0 || (pa & (VPCI_VQ_ALIGN - 1)) ||
            (pa >> 44) || desc != mem)
            return -1; /* legacy: fixed size, unused, PFN fits 32 bits */
        if (v->irq_queue == (int)qi) {
            outw((uint16_t)(v->io + LEG_MSIX_QUEUE), 0);
            v->irq_ok = inw((uint16_t)(v->io + LEG_MSIX_QUEUE)) == 0;
        } else if (v->irq_queue >= 0) {
            outw((uint16_t)(v->io + LEG_MSIX_QUEUE), VIRTIO_NO_VECTOR);
        }
        outl((uint16_t)(v->io + LEG_QUEUE_PFN), (uint32_t)(pa >> 12));
        return 0;
    }
    w16(v->common, CC_Q_SELECT, (uint16_t)qi);
    if (r16(v->common, CC_Q_ENABLE) != 0)
        return -1;                /* live already: reset did not happen */
    w16(v->common, CC_Q_SIZE, n); /* may be smaller than offered */
    w64(v->common, CC_Q_DESCLO, (uint64_t)(uintptr_t)desc);
    w64(v->common, CC_Q_AVAILLO, (uint64_t)(uintptr_t)avail);
    w64(v->common, CC_Q_USEDLO, (uint64_t)(uintptr_t)used);
    /* Vector before enable (4.1.5.1.3); the device answers NO_VECTOR when
     * it cannot map it, and then this queue stays polled. */
    if (v->irq_queue == (int)qi) {
        w16(v->common, CC_Q_MSIX, 0);
        v->irq_ok = r16(v->common, CC_Q_MSIX) == 0;
    } else if (v->irq_queue >= 0) {
        w16(v->common, CC_Q_MSIX, VIRTIO_NO_VECTOR);
    }
    uint64_t noff = (uint64_t)r16(v->common, CC_Q_NOFF) * v->notify_mult;
    if (noff + 2 > v->notify_len)
        return -1; /* notify address outside the capability */
    v->qnotify[qi] = (volatile uint16_t *)(volatile void *)(v->notify + noff);
    w16(v->common, CC_Q_ENABLE, 1);
    return r16(v->common, CC_Q_ENABLE) == 1 ? 0 : -1;
}

int vpci_irq_enable(struct vpci *v, unsigned qi, uint8_t vector, uint8_t apic)
{
    const struct pci_dev *d = &v->pci;
    struct pci_bar bar;
    const char *why;
    uint8_t cap = pci_cap_find(d, PCI_CAP_MSIX, 0);
    if ((!v->modern && !v->io) || qi > 1 || !cap)
        return -1;
    uint32_t ctrl = pci_read32(d->bus, d->dev, d->fn, cap); /* ID, next, control */
    uint32_t tbl = pci_read32(d->bus, d->dev, d->fn, (uint8_t)(cap + 4));
    if (pci_bar_enable(d, tbl & 7, &bar, &why) != 0 || bar.io ||
        (uint64_t)(tbl & ~7u) + 16 > bar.size || bar.base + bar.size > 0x100000000ull)
        return -1;
    /* Entry 0: fixed delivery, edge, to `apic`; unmasked. */
    volatile uint8_t *e = (volatile uint8_t *)(uintptr_t)(bar.base + (tbl & ~7u));
    w32(e, 0, MSI_ADDR_BASE | (uint32_t)apic << 12);
    w32(e, 4, 0);
    w32(e, 8, vector);
    w32(e, 12, 0);
    pci_write32(d->bus, d->dev, d->fn, cap,
                (ctrl | MSIX_CTRL_ENABLE << 16) & ~((uint32_t)MSIX_CTRL_MASK << 16));
    if (v->modern) {
        w16(v->common, CC_MSIX_CFG, VIRTIO_NO_VECTOR);
    } else {
        /* Legacy with MSI-X on: two vector registers appear at 0x14 and
         * the device configuration moves to 0x18 (4.1.4.8). */
        outw((uint16_t)(v->io + LEG_MSIX_CONFIG), VIRTIO_NO_VECTOR);
        v->leg_cfg = LEG_CONFIG_MSIX;
    }
    v->irq_queue = (int)qi;
    return 0;
}

void vpci_notify(const struct vpci *v, unsigned qi)
{
    if (v->modern)
        *v->qnotify[qi & 1] = (uint16_t)qi;
    else
        outw((uint16_t)(v->io + LEG_QUEUE_NOTIFY), (uint16_t)qi);
}

uint8_t vpci_config8(const struct vpci *v, unsigned off)
{
    uint8_t b = 0;
    vpci_config_read(v, off, &b, 1);
    return b;
}

uint16_t vpci_config16(const struct vpci *v, unsigned off)
{
    if (!v->modern)
        return inw((uint16_t)(v->io + v->leg_cfg + off));
    if (!v->devcfg || off + 2 > v->devcfg_len)
        return 0;
    uint8_t g;
    uint16_t x;
    do {
        g = r8(v->common, CC_CFGGEN);
        x = r16(v->devcfg, off);
    } while (g != r8(v->common, CC_CFGGEN));
    return x;
}

void vpci_config_read(const struct vpci *v, unsigned off, void *buf, size_t len)
{
    uint8_t *out = buf;
    if (!v->modern) {
        for (size_t i = 0; i < len; i++)
            out[i] = inb((uint16_t)(v->io + v->leg_cfg + off + i));
        return;
    }
    if (!v->devcfg || off + len > v->devcfg_len) {
        memset(buf, 0, len);
        return;
    }
    /* 4.1.4.3: a multi-byte read is consistent only if config_generation
     * did not change around it. */
    uint8_t g;
    do {
        g = r8(v->common, CC_CFGGEN);
        for (size_t i = 0; i < len; i++)
            out[i] = r8(v->devcfg, (unsigned)(off + i));
    } while (g != r8(v->common, CC_CFGGEN));
}

uint8_t vpci_isr(const struct vpci *v)
{
    return v->modern ? r8(v->isr, 0) : inb((uint16_t)(v->io + LEG_ISR));
}

/* ---- split virtqueues in the legacy layout (2.6.2) ---- */

uint16_t vpci_vq_size(struct vpci *v, unsigned qi, uint16_t max)
{
    uint16_t n = vpci_queue_size(v, qi);
    if (v->modern && n > max)
        n = max;
    if (n == 0 || n > max || (n & (n - 1)))
        return 0;
    return n;
}

int vpci_vq_start(struct vpci *v, unsigned qi, struct vpci_vq *q, uint8_t *mem, uint16_t n)
{
    memset(mem, 0, VPCI_VQ_BYTES(n));
    q->size = n;
    q->last_used = 0;
    q->desc = (struct vring_desc *)(void *)mem;
    uint8_t *avail = mem + 16 * (size_t)n;
    q->avail_flags = (volatile uint16_t *)(void *)avail;
    q->avail_idx = (volatile uint16_t *)(void *)(avail + 2);
    q->avail_ring = (volatile uint16_t *)(void *)(avail + 4);
    uint8_t *used = mem + VPCI_ALIGN_UP(16 * (size_t)n + 6 + 2 * (size_t)n, VPCI_VQ_ALIGN);
    q->used_flags = (volatile uint16_t *)(void *)used;
    q->used_idx = (volatile uint16_t *)(void *)(used + 2);
    q->used_ring = (volatile struct vring_used_elem *)(void *)(used + 4);
    *q->avail_flags = VRING_AVAIL_F_NO_INTERRUPT; /* drivers poll; they arm to sleep */
    return vpci_queue_enable(v, qi, n, mem, q->desc, (const void *)q->avail_flags,
                             (const void *)q->used_flags);
}

void vpci_vq_post(struct vpci_vq *q, uint16_t head)
{
    uint16_t idx = *q->avail_idx;
    q->avail_ring[idx % q->size] = head;
    barrier(); /* ring entry before the index */
    *q->avail_idx = (uint16_t)(idx + 1);
}

int vpci_vq_kick(const struct vpci *v, unsigned qi, const struct vpci_vq *q)
{
    barrier();
    if (*q->used_flags & VRING_USED_F_NO_NOTIFY)
        return 0;
    vpci_notify(v, qi);
    return 1;
}

void vpci_vq_irq_arm(struct vpci_vq *q)
{
    *q->avail_flags = 0;
    /* The flag store must be visible before the caller looks at the used
     * index one last time (store->load: x86 may reorder those). */
    __asm__ volatile("mfence" ::: "memory");
}

void vpci_vq_irq_disarm(struct vpci_vq *q)
{
    *q->avail_flags = VRING_AVAIL_F_NO_INTERRUPT;
}
