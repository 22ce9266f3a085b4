/*
 * virtio_console.c - the virtio console, port 0 only (see
 * virtio_console.h), on the PCI transport of virtio_pci.c. The steps
 * follow "Device Initialization" (3.1.1) like virtio_net.c. Every buffer
 * is one descriptor: receive buffer i is descriptor i of the receive
 * queue, transmit slot i descriptor i of the transmit queue.
 */
#include "virtio_console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio_pci.h"
#include "../kernel/kern.h"

#define VIRTIO_ID_CONSOLE 3
#define RXQ               0 /* port 0 receiveq */
#define TXQ               1 /* port 0 transmitq */

static struct {
    struct vpci pci;
    int up, irq;
    unsigned nrx, ntx;
    struct vpci_vq q[2];
    char *rx_buf; /* nrx * VCON_RX_SIZE */
    char *tx_buf; /* ntx * VCON_TX_SIZE */
    uint16_t tx_free[VCON_TX_BUFS];
    unsigned ntx_free;
} vc;

static int vcon_fail(const char *why)
{
    if (vc.pci.modern || vc.pci.io)
        vpci_set_status(&vc.pci, VPCI_STATUS_FAILED);
    printf("virtio-console: %s\n", why);
    return -1;
}

/* Heap memory for a queue of n entries, aligned as the layout needs; never
 * freed (the device owns it until the VM ends). */
static uint8_t *vcon_ring_mem(uint16_t n)
{
    uint8_t *p = malloc(VPCI_VQ_BYTES(n) + VPCI_VQ_ALIGN);
    if (!p)
        return NULL;
    return (uint8_t *)VPCI_ALIGN_UP((uintptr_t)p, VPCI_VQ_ALIGN);
}

static int vcon_queue(unsigned qi)
{
    uint16_t n = vpci_vq_size(&vc.pci, qi, VCON_QUEUE_MAX);
    uint8_t *mem = n ? vcon_ring_mem(n) : NULL;
    return mem ? vpci_vq_start(&vc.pci, qi, &vc.q[qi], mem, n) : -1;
}

static void vcon_rx_post(unsigned i)
{
    struct vring_desc *d = &vc.q[RXQ].desc[i];
    d->addr = (uint64_t)(uintptr_t)(vc.rx_buf + (size_t)i * VCON_RX_SIZE); /* identity map */
    d->len = VCON_RX_SIZE;
    d->flags = VRING_DESC_F_WRITE;
    d->next = 0;
    vpci_vq_post(&vc.q[RXQ], (uint16_t)i);
}

int vcon_init(uint8_t vector, uint8_t apic)
{
    struct pci_dev d;
    const char *why = NULL;
    memset(&vc, 0, sizeof vc);
    if (vpci_find(VIRTIO_ID_CONSOLE, &d) != 0)
        return vcon_fail("no virtio console on the PCI bus");
    if (vpci_open(&vc.pci, &d, VPCI_AUTO, &why) != 0)
        return vcon_fail(why);
    struct vpci *v = &vc.pci;
    vpci_set_status(v, VPCI_STATUS_ACKNOWLEDGE);
    vpci_set_status(v, VPCI_STATUS_ACKNOWLEDGE | VPCI_STATUS_DRIVER);
    /* No console features (size, multiport, emergency write): port 0 is
     * all we use. The modern interface requires VERSION_1. */
    uint64_t host = vpci_device_features(v), want = 0;
    if (v->modern) {
        if (!(host & (1ull << VPCI_F_VERSION_1)))
            return vcon_fail("modern interface without VIRTIO_F_VERSION_1");
        want = 1ull << VPCI_F_VERSION_1;
    }
    if (vpci_set_features(v, want) != 0)
        return vcon_fail("device refused our features");
    int want_irq = vector && vpci_irq_enable(v, RXQ, vector, apic) == 0;
    if (vcon_queue(RXQ) != 0 || vcon_queue(TXQ) != 0)
        return vcon_fail("cannot set up its queues");
    vc.irq = want_irq && v->irq_ok;
    vc.nrx = vc.q[RXQ].size < VCON_RX_BUFS ? vc.q[RXQ].size : VCON_RX_BUFS;
    vc.ntx = vc.q[TXQ].size < VCON_TX_BUFS ? vc.q[TXQ].size : VCON_TX_BUFS;
    vc.rx_buf = malloc((size_t)vc.nrx * VCON_RX_SIZE);
    vc.tx_buf = malloc((size_t)vc.ntx * VCON_TX_SIZE);
    if (!vc.rx_buf || !vc.tx_buf)
        return vcon_fail("out of memory");
    for (unsigned i = 0; i < vc.ntx; i++)
        vc.tx_free[i] = (uint16_t)i;
    vc.ntx_free = vc.ntx;
    for (unsigned i = 0; i < vc.nrx; i++)
        vcon_rx_post(i);
    vpci_set_status(v, (uint8_t)(vpci_status(v) | VPCI_STATUS_DRIVER_OK));
    if (vpci_status(v) & VPCI_STATUS_FAILED)
        return vcon_fail("device set FAILED");
    vc.up = 1;
    vpci_vq_kick(v, RXQ, &vc.q[RXQ]);
    (void)vpci_isr(v); /* clear a stale interrupt */
    return 0;
}

static void vcon_tx_reclaim(void)
{
    struct vpci_vq *q = &vc.q[TXQ];
    while (q->last_used != *q->used_idx) {
        __asm__ volatile("" ::: "memory"); /* index before the entry */
        uint32_t id = q->used_ring[q->last_used % q->size].id;
        q->last_used++;
        if (id < vc.ntx && vc.ntx_free < vc.ntx)
            vc.tx_free[vc.ntx_free++] = (uint16_t)id;
    }
}

unsigned vcon_poll(int (*rx)(void *ctx, const char *data, unsigned len), void *ctx)
{
    unsigned total = 0, posted = 0;
    if (!vc.up)
        return 0;
    struct vpci_vq *q = &vc.q[RXQ];
    while (q->last_used != *q->used_idx) {
        __asm__ volatile("" ::: "memory");
        volatile struct vring_used_elem *e = &q->used_ring[q->last_used % q->size];
        uint32_t id = e->id, len = e->len;
        q->last_used++;
        if (id >= vc.nrx)
            continue; /* not a buffer we posted */
        if (len > VCON_RX_SIZE)
            len = VCON_RX_SIZE;
        total += len;
        if (len && rx(ctx, vc.rx_buf + (size_t)id * VCON_RX_SIZE, len))
            return total; /* done: nothing more is read, no notify */
        vcon_rx_post(id); /* the consumer copied what it keeps */
        posted++;
    }
    if (posted)
        vpci_vq_kick(&vc.pci, RXQ, q);
    vcon_tx_reclaim();
    return total;
}

int vcon_write(const char *data, unsigned len)
{
    if (!vc.up || len > VCON_TX_SIZE)
        return -1;
    vcon_tx_reclaim();
    if (vc.ntx_free == 0)
        return -1;
    unsigned slot = vc.tx_free[--vc.ntx_free];
    char *buf = vc.tx_buf + (size_t)slot * VCON_TX_SIZE;
    memcpy(buf, data, len);
    struct vring_desc *d = &vc.q[TXQ].desc[slot];
    d->addr = (uint64_t)(uintptr_t)buf;
    d->len = len;
    d->flags = 0; /* read by the device */
    d->next = 0;
    vpci_vq_post(&vc.q[TXQ], (uint16_t)slot);
    vpci_vq_kick(&vc.pci, TXQ, &vc.q[TXQ]);
    return 0;
}

int vcon_tx_busy(void)
{
    vcon_tx_reclaim();
    return vc.ntx_free < vc.ntx;
}

int vcon_rx_pending(void)
{
    return vc.up && vc.q[RXQ].last_used != *vc.q[RXQ].used_idx;
}

int vcon_irq_arm(void)
{
    if (!vc.up || !vc.irq)
        return 0;
    vpci_vq_irq_arm(&vc.q[RXQ]);
    return 1;
}

void vcon_irq_disarm(void)
{
    if (vc.up && vc.irq)
        vpci_vq_irq_disarm(&vc.q[RXQ]);
}

/* The pool hand-over channel (kern.h). */
const struct kern_pool_channel kern_pool_channel = {
    vcon_init, vcon_poll, vcon_write, vcon_tx_busy, vcon_rx_pending, vcon_irq_arm, vcon_irq_disarm,
};
