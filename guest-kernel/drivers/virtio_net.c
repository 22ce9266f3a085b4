/*
 * virtio_net.c - virtio-net over PCI, polled (virtio 1.x spec 5.1), on
 * either interface of the PCI transport (virtio_pci.c): modern when the
 * device offers it, legacy otherwise, or as the kernel command line forces.
 * The steps follow "Device Initialization" (3.1.1) in order. Every frame is
 * a chain of two descriptors: the struct virtio_net_hdr (10 bytes legacy,
 * 12 with VIRTIO_F_VERSION_1; no offloads, no mergeable buffers) and the
 * frame, which legacy devices without VIRTIO_F_ANY_LAYOUT require and
 * modern ones accept. Queues use the legacy layout (2.6.2) on both
 * interfaces: it is valid for modern devices too, and one layout is less
 * code.
 */
#include "virtio_net.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "virtio_pci.h"

/* x86 keeps stores in order and loads in order (TSO); the device is
 * coherent. Only the compiler must not reorder ring accesses. */
#define barrier() __asm__ volatile("" ::: "memory")

#define VIRTIO_NET_F_MAC     5
#define VIRTIO_NET_F_STATUS  16
#define VIRTIO_NET_S_LINK_UP 1

#define VQ_MAX         1024 /* largest queue size we lay out */
#define RXQ            0
#define TXQ            1
#define NET_HDR_LEGACY 10 /* struct virtio_net_hdr */
#define NET_HDR_V1     12 /* ... plus num_buffers, always there in 1.0 */
#define VIRTIO_ID_NET  1

static uint8_t vq_mem[2][VPCI_VQ_BYTES(VQ_MAX)] __attribute__((aligned(VPCI_VQ_ALIGN)));
static uint8_t rx_buf[VNET_RX_BUFS][VNET_BUF_SIZE] __attribute__((aligned(64)));
static uint8_t rx_hdr[VNET_RX_BUFS][16] __attribute__((aligned(16)));
static uint8_t tx_buf[VNET_TX_BUFS][VNET_BUF_SIZE] __attribute__((aligned(64)));
static uint8_t tx_hdr[16] __attribute__((aligned(16))); /* all zero: no offloads */

static struct {
    struct vpci pci;
    uint32_t hdr_len; /* NET_HDR_LEGACY or NET_HDR_V1 */
    int irq;          /* the RX queue has its MSI-X vector */
    int up;
    int has_status;
    unsigned nrx, ntx; /* buffers actually used (<= queue size / 2) */
    struct vpci_vq q[2];
    uint16_t tx_free[VNET_TX_BUFS]; /* stack of free TX slots */
    unsigned ntx_free;
    virtio_net_rx_fn rx; /* received frames go up here */
    void *rx_ctx;
    struct virtio_net_stats st;
} vn;

static uint64_t phys(const void *p)
{
    return (uint64_t)(uintptr_t)p;
} /* identity map */

static void notify(unsigned qi)
{
    vn.st.notifies += (uint64_t)vpci_vq_kick(&vn.pci, qi, &vn.q[qi]);
}

/* Lay queue qi out in vq_mem[qi] at the size the device offers (modern
 * devices may be given a smaller one: capped at VQ_MAX) and hand it to the
 * device. Returns the size, 0 on failure. */
static uint16_t vq_setup(unsigned qi)
{
    uint16_t n = vpci_vq_size(&vn.pci, qi, VQ_MAX);
    if (!n || vpci_vq_start(&vn.pci, qi, &vn.q[qi], vq_mem[qi], n) != 0)
        return 0;
    return n;
}

/* Post RX slot i: descriptor 2i is its header, 2i+1 its frame buffer,
 * both written by the device. */
static void rx_post(unsigned i)
{
    struct vpci_vq *q = &vn.q[RXQ];
    struct vring_desc *d = &q->desc[2 * i];
    d[0].addr = phys(rx_hdr[i]);
    d[0].len = vn.hdr_len;
    d[0].flags = VRING_DESC_F_WRITE | VRING_DESC_F_NEXT;
    d[0].next = (uint16_t)(2 * i + 1);
    d[1].addr = phys(rx_buf[i]);
    d[1].len = VNET_BUF_SIZE;
    d[1].flags = VRING_DESC_F_WRITE;
    d[1].next = 0;
    vpci_vq_post(q, (uint16_t)(2 * i));
}

static void tx_reclaim(void)
{
    struct vpci_vq *q = &vn.q[TXQ];
    while (q->last_used != *q->used_idx) {
        barrier(); /* index before the entry */
        uint32_t id = q->used_ring[q->last_used % q->size].id;
        q->last_used++;
        unsigned slot = id / 2;
        if (slot < vn.ntx && vn.ntx_free < vn.ntx)
            vn.tx_free[vn.ntx_free++] = (uint16_t)slot;
    }
}

int virtio_net_transmit(const void *frame, size_t len)
{
    tx_reclaim();
    if (!vn.up || len > VNET_BUF_SIZE || vn.ntx_free == 0) {
        vn.st.tx_full++;
        return -1;
    }
    struct vpci_vq *q = &vn.q[TXQ];
    unsigned slot = vn.tx_free[--vn.ntx_free];
    memcpy(tx_buf[slot], frame, len);
    struct vring_desc *d = &q->desc[2 * slot];
    d[0].addr = phys(tx_hdr); /* header: read by the device */
    d[0].len = vn.hdr_len;
    d[0].flags = VRING_DESC_F_NEXT;
    d[0].next = (uint16_t)(2 * slot + 1);
    d[1].addr = phys(tx_buf[slot]);
    d[1].len = (uint32_t)len;
    d[1].flags = 0;
    d[1].next = 0;
    vpci_vq_post(q, (uint16_t)(2 * slot));
    notify(TXQ);
    vn.st.tx_frames++;
    return 0;
}

int virtio_net_poll(void)
{
    if (!vn.up)
        return 0;
    struct vpci_vq *q = &vn.q[RXQ];
    int n = 0;
    while (q->last_used != *q->used_idx) {
        barrier();
        volatile struct vring_used_elem *e = &q->used_ring[q->last_used % q->size];
        uint32_t id = e->id, len = e->len;
        q->last_used++;
        unsigned slot = id / 2;
        if (slot >= vn.nrx || (id & 1)) {
            vn.st.rx_bad++; /* not a head we posted: ignore it */
            continue;
        }
        if (len > vn.hdr_len && len - vn.hdr_len <= VNET_BUF_SIZE) {
            vn.st.rx_frames++;
            vn.rx(vn.rx_ctx, rx_buf[slot], len - vn.hdr_len);
        } else {
            vn.st.rx_bad++;
        }
        rx_post(slot); /* the stack copied what it keeps */
        n++;
    }
    if (n)
        notify(RXQ);
    tx_reclaim();
    return n;
}

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
    return (vpci_config16(&vn.pci, 6) & VIRTIO_NET_S_LINK_UP) != 0;
}

const struct virtio_net_stats *virtio_net_get_stats(void)
{
    return &vn.st;
}

const char *virtio_net_interface(void)
{
    return !vn.up ? "none" : vn.pci.modern ? "modern" : "legacy";
}

static int fail(const char *why, unsigned v)
{
    if (vn.pci.modern || vn.pci.io)
        vpci_set_status(&vn.pci, VPCI_STATUS_FAILED);
    printf("virtio-net: %s (%#x)\n", why, v);
    return -1;
}

int virtio_net_irq_arm(void)
{
    if (!vn.up || !vn.irq)
        return 0;
    vpci_vq_irq_arm(&vn.q[RXQ]);
    return 1;
}

void virtio_net_irq_disarm(void)
{
    if (vn.up && vn.irq)
        vpci_vq_irq_disarm(&vn.q[RXQ]);
}

const char *virtio_net_rx_wakeup(void)
{
    return vn.irq ? "irq" : "polled";
}

int virtio_net_init(const struct virtio_net_opts *opts, uint8_t mac[VNET_MAC_LEN])
{
    struct pci_dev d;
    const char *why = NULL;
    memset(&vn, 0, sizeof vn);
    if (vpci_find(VIRTIO_ID_NET, &d) != 0)
        return fail("no virtio network device on the PCI bus", 0);
    /* 1. Reset (vpci_open maps the interface, enables decoding and bus
     *    mastering - the device reads and writes our rings - and resets). */
    if (vpci_open(&vn.pci, &d, opts->mode, &why) != 0) {
        printf("virtio-net: %s (device %04x:%04x at %02x:%02x.%x)\n", why, d.vendor, d.device,
               d.bus, d.dev, d.fn);
        return -1;
    }
    struct vpci *v = &vn.pci;
    /* 2. ACKNOWLEDGE: we noticed the device. 3. DRIVER: we can drive it. */
    vpci_set_status(v, VPCI_STATUS_ACKNOWLEDGE);
    vpci_set_status(v, VPCI_STATUS_ACKNOWLEDGE | VPCI_STATUS_DRIVER);
    /* 4. Features: the subset we understand - MAC address in config
     *    space, link status, and on the modern interface VERSION_1 (which
     *    it requires). No checksum/GSO offloads, no mergeable buffers, no
     *    event index. 5-6. FEATURES_OK, checked (modern only). */
    uint64_t host = vpci_device_features(v);
    uint64_t want = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS);
    if (v->modern) {
        if (!(host & (1ull << VPCI_F_VERSION_1)))
            return fail("modern interface without VIRTIO_F_VERSION_1", (unsigned)(host >> 32));
        want |= 1ull << VPCI_F_VERSION_1;
    }
    uint64_t guest = host & want;
    if (vpci_set_features(v, guest) != 0)
        return fail("device refused our features", (unsigned)guest);
    vn.hdr_len = v->modern ? NET_HDR_V1 : NET_HDR_LEGACY;
    vn.has_status = (guest >> VIRTIO_NET_F_STATUS) & 1;
    /* 7. Device setup: the MAC (config offsets 0..5), then the queues. */
    if (guest & (1ull << VIRTIO_NET_F_MAC)) {
        vpci_config_read(v, 0, mac, VNET_MAC_LEN);
    } else {
        uint32_t r = opts->random ? opts->random() : 0;
        uint8_t made_up[VNET_MAC_LEN] = {
            0x02, 0x53, (uint8_t)(r >> 24), (uint8_t)(r >> 16), (uint8_t)(r >> 8), (uint8_t)r
        };
        memcpy(mac, made_up, sizeof made_up);
    }
    /* receiveq1 is queue 0, transmitq1 queue 1; only the first may
     * interrupt (to wake an idle CPU). */
    int want_irq =
        opts->irq_vector && vpci_irq_enable(v, RXQ, opts->irq_vector, opts->irq_apic) == 0;
    uint16_t nrx = vq_setup(RXQ);
    if (!nrx)
        return fail("cannot set up receive queue", vpci_queue_size(v, RXQ));
    uint16_t ntx = vq_setup(TXQ);
    if (!ntx)
        return fail("cannot set up transmit queue", vpci_queue_size(v, TXQ));
    vn.irq = want_irq && v->irq_ok;
    vn.nrx = nrx / 2 < VNET_RX_BUFS ? nrx / 2u : VNET_RX_BUFS; /* 2 descriptors each */
    vn.ntx = ntx / 2 < VNET_TX_BUFS ? ntx / 2u : VNET_TX_BUFS;
    for (unsigned i = 0; i < vn.ntx; i++)
        vn.tx_free[i] = (uint16_t)(vn.ntx - 1 - i);
    vn.ntx_free = vn.ntx;
    /* Receive buffers before the device may use the queue (5.1.5). */
    for (unsigned i = 0; i < vn.nrx; i++)
        rx_post(i);
    /* 8. DRIVER_OK: the device is live. */
    vpci_set_status(v, (uint8_t)(vpci_status(v) | VPCI_STATUS_DRIVER_OK));
    if (vpci_status(v) & VPCI_STATUS_FAILED)
        return fail("device set FAILED", vpci_status(v));
    vn.rx = opts->rx;
    vn.rx_ctx = opts->rx_ctx;
    vn.up = 1;
    notify(RXQ);
    (void)vpci_isr(v); /* clear a stale interrupt */
    return 0;
}
