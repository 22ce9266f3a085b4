/*
 * virtio_net.h - virtio-net driver for QEMU's `pc` machine: the PCI device
 * (transitional 1AF4:1000 or modern-only 1AF4:1041) through the modern
 * virtio 1.0 interface (capabilities + memory BAR) or the legacy I/O-port
 * one (virtio_pci.h), polled, one RX and one TX queue, no offloads. It
 * plugs into the network stack as a struct net_if (guest-kernel/net/net.h).
 *
 * Assumptions (the kernel guarantees them; nothing else is needed):
 *  - Physical == virtual for the driver's static buffers and the device's
 *    memory BAR (the kernel identity-maps the low 4 GiB), and the kernel
 *    image, hence its .bss, lies below 4 GiB: the legacy interface takes a
 *    32-bit page frame number for each queue, and descriptors carry
 *    physical addresses.
 *  - Single CPU, no interrupt handler touches the device: the driver is
 *    called only from the kernel's main context (idle loop, blocking socket
 *    calls through nif->poll). Work is always done by polling; the receive
 *    queue can also raise an MSI-X interrupt, used only to wake an idle
 *    CPU (virtio_net_irq_arm); otherwise device interrupts are suppressed
 *    with VRING_AVAIL_F_NO_INTERRUPT.
 *  - One device: the driver state is static. The first virtio network
 *    function found by pci_scan() is used.
 * Memory: about 64 KiB of rings (queues up to 1024 entries) plus
 * VNET_RX_BUFS + VNET_TX_BUFS buffers of 1536 bytes, all static .bss.
 */
#ifndef SHOAL_DRIVERS_VIRTIO_NET_H
#define SHOAL_DRIVERS_VIRTIO_NET_H

#include <stdint.h>

#include "../net/net.h"
#include "virtio_pci.h"

#define VNET_RX_BUFS  64          /* receive buffers kept posted */
#define VNET_TX_BUFS  64          /* frames in flight to the device */
#define VNET_BUF_SIZE 1536        /* >= 1514: one Ethernet frame, no FCS */

struct virtio_net_stats {
    uint64_t rx_frames, rx_bad;    /* rx_bad: length the device reported is impossible */
    uint64_t tx_frames, tx_full;   /* tx_full: no free TX slot, frame dropped */
    uint64_t notifies;             /* queue notifications written (each is a VM exit) */
};

/* Find the device, pick its interface per opts->mode, ask for a receive
 * interrupt when opts->irq_vector is set (needs MSI-X), run the virtio
 * initialization sequence and fill in
 * nif->mac (from the device when it offers VIRTIO_NET_F_MAC, else a random
 * locally administered address), nif->transmit, nif->poll and nif->driver.
 * The caller sets nif->ip/prefix/gw, then calls net_create(nif, ...).
 * Returns 0, or -1 when there is no device or it refused us (a message is
 * printed on the console). */
struct virtio_net_opts {
    enum vpci_mode mode;       /* interface; VPCI_AUTO: modern when offered */
    uint8_t irq_vector;        /* receive interrupt vector, 0: none (polled) */
    uint8_t irq_apic;          /* local APIC ID that vector is sent to */
};

int virtio_net_init(struct net_if *nif, const struct virtio_net_opts *opts);

/* Receive interrupts for an idle wait: 1 if the device will now raise
 * irq_vector when a frame arrives (the caller then halts, and must call
 * virtio_net_irq_disarm when it wakes), 0 if it cannot (no MSI-X, or no
 * vector given): the caller keeps polling. */
int virtio_net_irq_arm(void);
void virtio_net_irq_disarm(void);

/* "irq" or "polled": how an idle wait learns of a frame. */
const char *virtio_net_rx_wakeup(void);

/* "modern" or "legacy": the interface in use; "none" before a successful
 * virtio_net_init. */
const char *virtio_net_interface(void);

/* Hand every received frame to net_input() and recycle its buffer; reclaim
 * finished transmissions. Returns the number of frames received. This is
 * also nif->poll. Cheap when nothing arrived (no port I/O). */
int virtio_net_poll(struct net_if *nif);

/* Non-zero when the device has returned receive buffers not yet polled:
 * lets an idle loop decide whether to sleep. Reads memory only. */
int virtio_net_rx_pending(void);

/* Link status from the device (1 up, 0 down); 1 when the device does not
 * report status (VIRTIO_NET_F_STATUS not offered). */
int virtio_net_link_up(void);

const struct virtio_net_stats *virtio_net_get_stats(void);

#endif
