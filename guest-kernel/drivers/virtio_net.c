/*
 * virtio_net.c - legacy (virtio 0.9.5 / "transitional") virtio-net over PCI
 * port I/O, polled. The steps follow the virtio 1.x specification's
 * "Device Initialization" (3.1) with its legacy variations (no FEATURES_OK,
 * queue address as a page frame number), "Legacy Interfaces: Virtqueue
 * Layout" (2.6.2) and the network device chapter (5.1): a 10-byte
 * struct virtio_net_hdr (no VIRTIO_NET_F_MRG_RXBUF) in its own descriptor in
 * front of every frame, as legacy devices without VIRTIO_F_ANY_LAYOUT
 * require.
 */
#include "virtio_net.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pci.h"
#include "../net/net_port.h"

/* ---- port I/O (own copies: the driver needs nothing else from arch/) ---- */

static inline void vn_outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void vn_outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void vn_outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t vn_inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint16_t vn_inw(uint16_t port)
{
    uint16_t v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint32_t vn_inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
/* x86 keeps stores in order and loads in order (TSO); the device is
 * coherent. Only the compiler must not reorder ring accesses. */
#define barrier() __asm__ volatile("" ::: "memory")

/* ---- the legacy register block in BAR0 (spec 4.1.4.8) ---- */
#define VIRTIO_PCI_HOST_FEATURES  0x00   /* u32, device features bits 0..31 */
#define VIRTIO_PCI_GUEST_FEATURES 0x04   /* u32, features the driver accepts */
#define VIRTIO_PCI_QUEUE_PFN      0x08   /* u32, queue address >> 12 */
#define VIRTIO_PCI_QUEUE_NUM      0x0C   /* u16, queue size (read only) */
#define VIRTIO_PCI_QUEUE_SEL      0x0E   /* u16 */
#define VIRTIO_PCI_QUEUE_NOTIFY   0x10   /* u16, write the queue index */
#define VIRTIO_PCI_STATUS         0x12   /* u8 */
#define VIRTIO_PCI_ISR            0x13   /* u8, read clears */
#define VIRTIO_PCI_CONFIG         0x14   /* device config (MSI-X off) */

#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER      2
#define STATUS_DRIVER_OK   4
#define STATUS_FAILED      128

#define VIRTIO_NET_F_MAC    5
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_S_LINK_UP 1

#define VRING_DESC_F_NEXT  1
#define VRING_DESC_F_WRITE 2
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY     1

#define VQ_ALIGN  4096
#define VQ_MAX    1024                  /* largest queue size we lay out */
#define RXQ 0
#define TXQ 1
#define NET_HDR_LEN 10                  /* struct virtio_net_hdr, legacy */

struct vring_desc {
    uint64_t addr;                      /* guest physical */
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct vring_used_elem {
    uint32_t id;                        /* head descriptor of the chain */
    uint32_t len;                       /* bytes the device wrote */
};

struct vq {
    uint16_t size;                      /* entries, from QUEUE_NUM */
    uint16_t last_used;                 /* next used entry to look at */
    struct vring_desc *desc;
    volatile uint16_t *avail_flags, *avail_idx, *avail_ring;
    volatile uint16_t *used_flags, *used_idx;
    volatile struct vring_used_elem *used_ring;
};

#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((size_t)(a) - 1))
#define VQ_BYTES(n) (ALIGN_UP(16 * (size_t)(n) + 6 + 2 * (size_t)(n), VQ_ALIGN) + \
                     ALIGN_UP(6 + 8 * (size_t)(n), VQ_ALIGN))

static uint8_t vq_mem[2][VQ_BYTES(VQ_MAX)] __attribute__((aligned(VQ_ALIGN)));
static uint8_t rx_buf[VNET_RX_BUFS][VNET_BUF_SIZE] __attribute__((aligned(64)));
static uint8_t rx_hdr[VNET_RX_BUFS][16] __attribute__((aligned(16)));
static uint8_t tx_buf[VNET_TX_BUFS][VNET_BUF_SIZE] __attribute__((aligned(64)));
static uint8_t tx_hdr[16] __attribute__((aligned(16)));   /* all zero: no offloads */

static struct {
    uint16_t iobase;
    int      up;
    int      has_status;
    unsigned nrx, ntx;                  /* buffers actually used (<= queue size / 2) */
    struct vq q[2];
    uint16_t tx_free[VNET_TX_BUFS];     /* stack of free TX slots */
    unsigned ntx_free;
    struct virtio_net_stats st;
} vn;

static uint64_t phys(const void *p) { return (uint64_t)(uintptr_t)p; }   /* identity map */

static int find_dev(const struct pci_dev *d, void *ctx)
{
    struct pci_dev *out = ctx;
    if (d->vendor == 0x1AF4 && d->device == 0x1000) {
        *out = *d;
        return 1;
    }
    return 0;
}

/* Firmware like qboot leaves I/O BARs unassigned (base 0). Then we give
 * BAR0 a range ourselves: above every I/O BAR already assigned on the bus,
 * at least at 0xC000 (where PC firmware puts PCI I/O), aligned to its size. */
struct io_scan {
    uint32_t top;                        /* first free port above assigned BARs */
};

static int scan_io(const struct pci_dev *d, void *ctx)
{
    struct io_scan *sc = ctx;
    uint8_t htype = (uint8_t)(pci_read32(d->bus, d->dev, d->fn, 0x0C) >> 16) & 0x7F;
    if (htype != 0)
        return 0;
    for (uint8_t off = 0x10; off <= 0x24; off += 4) {
        uint32_t bar = pci_read32(d->bus, d->dev, d->fn, off);
        if ((bar & 1) && (bar & 0xFFFC)) {
            uint32_t end = (bar & 0xFFFC) + 0x100;   /* generous: sizes are <= 256 here */
            if (end > sc->top)
                sc->top = end;
        }
    }
    return 0;
}

static uint16_t assign_io_bar0(const struct pci_dev *d)
{
    pci_write32(d->bus, d->dev, d->fn, 0x10, 0xFFFFFFFFu);
    uint32_t mask = pci_read32(d->bus, d->dev, d->fn, 0x10) | 0xFFFF0000u;
    uint32_t size = ~(mask & ~3u) + 1;
    pci_write32(d->bus, d->dev, d->fn, 0x10, 0);
    if (size < 4 || size > 0x1000 || (size & (size - 1)))
        return 0;
    struct io_scan sc = { 0xC000 };
    pci_scan(scan_io, &sc);
    uint32_t base = (sc.top + size - 1) & ~(size - 1);
    if (base + size > 0x10000)
        return 0;
    pci_write32(d->bus, d->dev, d->fn, 0x10, base | 1);
    return (uint16_t)(pci_read32(d->bus, d->dev, d->fn, 0x10) & 0xFFFC);
}

static void notify(unsigned qi)
{
    barrier();
    if (!(*vn.q[qi].used_flags & VRING_USED_F_NO_NOTIFY)) {
        vn_outw((uint16_t)(vn.iobase + VIRTIO_PCI_QUEUE_NOTIFY), (uint16_t)qi);
        vn.st.notifies++;
    }
}

/* Legacy layout of one queue of size n at mem (spec 2.6.2). */
static void vq_layout(struct vq *q, uint8_t *mem, uint16_t n)
{
    q->size = n;
    q->last_used = 0;
    q->desc = (struct vring_desc *)(void *)mem;
    uint8_t *avail = mem + 16 * (size_t)n;
    q->avail_flags = (volatile uint16_t *)(void *)avail;
    q->avail_idx = (volatile uint16_t *)(void *)(avail + 2);
    q->avail_ring = (volatile uint16_t *)(void *)(avail + 4);
    uint8_t *used = mem + ALIGN_UP(16 * (size_t)n + 6 + 2 * (size_t)n, VQ_ALIGN);
    q->used_flags = (volatile uint16_t *)(void *)used;
    q->used_idx = (volatile uint16_t *)(void *)(used + 2);
    q->used_ring = (volatile struct vring_used_elem *)(void *)(used + 4);
}

/* Select queue qi, read its size, lay it out in vq_mem[qi], tell the
 * device where it is. Returns the size, 0 on failure. */
static uint16_t vq_setup(unsigned qi)
{
    uint16_t io = vn.iobase;
    vn_outw((uint16_t)(io + VIRTIO_PCI_QUEUE_SEL), (uint16_t)qi);
    uint16_t n = vn_inw((uint16_t)(io + VIRTIO_PCI_QUEUE_NUM));
    if (n == 0 || n > VQ_MAX || (n & (n - 1)))
        return 0;                        /* absent, too big, or not a power of 2 */
    if (vn_inl((uint16_t)(io + VIRTIO_PCI_QUEUE_PFN)) != 0)
        return 0;                        /* already in use: reset did not happen */
    memset(vq_mem[qi], 0, VQ_BYTES(n));
    vq_layout(&vn.q[qi], vq_mem[qi], n);
    *vn.q[qi].avail_flags = VRING_AVAIL_F_NO_INTERRUPT;   /* we poll */
    uint64_t pa = phys(vq_mem[qi]);
    if (pa >> 44)
        return 0;                        /* PFN must fit 32 bits */
    vn_outl((uint16_t)(io + VIRTIO_PCI_QUEUE_PFN), (uint32_t)(pa >> 12));
    return n;
}

/* Post RX slot i: descriptor 2i is its header, 2i+1 its frame buffer,
 * both written by the device. */
static void rx_post(unsigned i)
{
    struct vq *q = &vn.q[RXQ];
    struct vring_desc *d = &q->desc[2 * i];
    d[0].addr = phys(rx_hdr[i]);
    d[0].len = NET_HDR_LEN;
    d[0].flags = VRING_DESC_F_WRITE | VRING_DESC_F_NEXT;
    d[0].next = (uint16_t)(2 * i + 1);
    d[1].addr = phys(rx_buf[i]);
    d[1].len = VNET_BUF_SIZE;
    d[1].flags = VRING_DESC_F_WRITE;
    d[1].next = 0;
    uint16_t idx = *q->avail_idx;
    q->avail_ring[idx % q->size] = (uint16_t)(2 * i);
    barrier();                           /* ring entry before the index */
    *q->avail_idx = (uint16_t)(idx + 1);
}

static void tx_reclaim(void)
{
    struct vq *q = &vn.q[TXQ];
    while (q->last_used != *q->used_idx) {
        barrier();                       /* index before the entry */
        uint32_t id = q->used_ring[q->last_used % q->size].id;
        q->last_used++;
        unsigned slot = id / 2;
        if (slot < vn.ntx && vn.ntx_free < vn.ntx)
            vn.tx_free[vn.ntx_free++] = (uint16_t)slot;
    }
}

static int vn_transmit(struct net_if *nif, const void *frame, size_t len)
{
    (void)nif;
    tx_reclaim();
    if (!vn.up || len > VNET_BUF_SIZE || vn.ntx_free == 0) {
        vn.st.tx_full++;
        return -1;
    }
    struct vq *q = &vn.q[TXQ];
    unsigned slot = vn.tx_free[--vn.ntx_free];
    memcpy(tx_buf[slot], frame, len);
    struct vring_desc *d = &q->desc[2 * slot];
    d[0].addr = phys(tx_hdr);            /* header: read by the device */
    d[0].len = NET_HDR_LEN;
    d[0].flags = VRING_DESC_F_NEXT;
    d[0].next = (uint16_t)(2 * slot + 1);
    d[1].addr = phys(tx_buf[slot]);
    d[1].len = (uint32_t)len;
    d[1].flags = 0;
    d[1].next = 0;
    uint16_t idx = *q->avail_idx;
    q->avail_ring[idx % q->size] = (uint16_t)(2 * slot);
    barrier();
    *q->avail_idx = (uint16_t)(idx + 1);
    notify(TXQ);
    vn.st.tx_frames++;
    return 0;
}

int virtio_net_poll(struct net_if *nif)
{
    if (!vn.up)
        return 0;
    struct vq *q = &vn.q[RXQ];
    int n = 0;
    while (q->last_used != *q->used_idx) {
        barrier();
        volatile struct vring_used_elem *e = &q->used_ring[q->last_used % q->size];
        uint32_t id = e->id, len = e->len;
        q->last_used++;
        unsigned slot = id / 2;
        if (slot >= vn.nrx || (id & 1)) {
            vn.st.rx_bad++;               /* not a head we posted: ignore it */
            continue;
        }
        if (len > NET_HDR_LEN && len - NET_HDR_LEN <= VNET_BUF_SIZE) {
            vn.st.rx_frames++;
            net_input(nif, rx_buf[slot], len - NET_HDR_LEN);
        } else {
            vn.st.rx_bad++;
        }
        rx_post(slot);                    /* the stack copied what it keeps */
        n++;
    }
    if (n)
        notify(RXQ);
    tx_reclaim();
    return n;
}

static void vn_poll_cb(struct net_if *nif) { virtio_net_poll(nif); }

int virtio_net_rx_pending(void)
{
    return vn.up && vn.q[RXQ].last_used != *vn.q[RXQ].used_idx;
}

int virtio_net_link_up(void)
{
    if (!vn.up)
        return 0;
    if (!vn.has_status)
        return 1;
    return (vn_inw((uint16_t)(vn.iobase + VIRTIO_PCI_CONFIG + 6)) & VIRTIO_NET_S_LINK_UP) != 0;
}

const struct virtio_net_stats *virtio_net_get_stats(void) { return &vn.st; }

static int fail(const char *why, unsigned v)
{
    if (vn.iobase)
        vn_outb((uint16_t)(vn.iobase + VIRTIO_PCI_STATUS), STATUS_FAILED);
    printf("virtio-net: %s (%#x, I/O base %#x)\n", why, v, vn.iobase);
    return -1;
}

int virtio_net_init(struct net_if *nif)
{
    struct pci_dev d;
    memset(&vn, 0, sizeof vn);
    if (!pci_scan(find_dev, &d))
        return fail("no device 1af4:1000", 0);

    /* PCI: BAR0 must be an I/O BAR; enable I/O decoding and bus mastering
     * (the device reads and writes our rings). Writing 0 to the upper half
     * leaves the write-1-to-clear status bits alone. */
    uint32_t bar0 = pci_read32(d.bus, d.dev, d.fn, 0x10);
    if (!(bar0 & 1))
        return fail("BAR0 is not an I/O BAR (modern-only device?)", bar0);
    vn.iobase = (uint16_t)(bar0 & 0xFFFC);
    if (!vn.iobase && !(vn.iobase = assign_io_bar0(&d)))
        return fail("cannot assign an I/O range to BAR0", bar0);
    uint32_t cmd = pci_read32(d.bus, d.dev, d.fn, 0x04) & 0xFFFF;
    pci_write32(d.bus, d.dev, d.fn, 0x04, cmd | 0x1 | 0x4);
    uint16_t io = vn.iobase;

    /* 1. Reset the device. */
    vn_outb((uint16_t)(io + VIRTIO_PCI_STATUS), 0);
    /* 2. ACKNOWLEDGE: we noticed the device. */
    vn_outb((uint16_t)(io + VIRTIO_PCI_STATUS), STATUS_ACKNOWLEDGE);
    /* 3. DRIVER: we know how to drive it. */
    vn_outb((uint16_t)(io + VIRTIO_PCI_STATUS), STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    /* 4. Features: read the device's, accept the subset we understand
     *    (MAC address in config space, link status). No checksum/GSO
     *    offloads, no mergeable buffers, no event index: legacy devices
     *    have no FEATURES_OK step, the write is the agreement. */
    uint32_t host = vn_inl((uint16_t)(io + VIRTIO_PCI_HOST_FEATURES));
    uint32_t want = (1u << VIRTIO_NET_F_MAC) | (1u << VIRTIO_NET_F_STATUS);
    uint32_t guest = host & want;
    vn_outl((uint16_t)(io + VIRTIO_PCI_GUEST_FEATURES), guest);
    vn.has_status = (guest >> VIRTIO_NET_F_STATUS) & 1;
    /* 5. Device configuration: the MAC (config offsets 0..5). */
    if (guest & (1u << VIRTIO_NET_F_MAC)) {
        for (int i = 0; i < NET_ETH_ALEN; i++)
            nif->mac[i] = vn_inb((uint16_t)(io + VIRTIO_PCI_CONFIG + i));
    } else {
        uint32_t r = net_port_random();
        uint8_t mac[NET_ETH_ALEN] = {0x02, 0x53, (uint8_t)(r >> 24), (uint8_t)(r >> 16),
                                     (uint8_t)(r >> 8), (uint8_t)r};
        memcpy(nif->mac, mac, sizeof mac);
    }
    /* 6. Virtqueues: receiveq1 is queue 0, transmitq1 queue 1. */
    uint16_t nrx = vq_setup(RXQ);
    if (!nrx)
        return fail("cannot set up receive queue", vn_inw((uint16_t)(io + VIRTIO_PCI_QUEUE_NUM)));
    uint16_t ntx = vq_setup(TXQ);
    if (!ntx)
        return fail("cannot set up transmit queue", vn_inw((uint16_t)(io + VIRTIO_PCI_QUEUE_NUM)));
    vn.nrx = nrx / 2 < VNET_RX_BUFS ? nrx / 2u : VNET_RX_BUFS;   /* 2 descriptors each */
    vn.ntx = ntx / 2 < VNET_TX_BUFS ? ntx / 2u : VNET_TX_BUFS;
    for (unsigned i = 0; i < vn.ntx; i++)
        vn.tx_free[i] = (uint16_t)(vn.ntx - 1 - i);
    vn.ntx_free = vn.ntx;
    /* 7. Give the device receive buffers before it may use the queue. */
    for (unsigned i = 0; i < vn.nrx; i++)
        rx_post(i);
    /* 8. DRIVER_OK: the device is live. */
    vn_outb((uint16_t)(io + VIRTIO_PCI_STATUS),
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK);
    if (vn_inb((uint16_t)(io + VIRTIO_PCI_STATUS)) & STATUS_FAILED)
        return fail("device set FAILED", vn_inb((uint16_t)(io + VIRTIO_PCI_STATUS)));
    vn.up = 1;
    notify(RXQ);
    (void)vn_inb((uint16_t)(io + VIRTIO_PCI_ISR));   /* clear a stale interrupt */

    nif->transmit = vn_transmit;
    nif->poll = vn_poll_cb;
    nif->driver = &vn;
    return 0;
}
