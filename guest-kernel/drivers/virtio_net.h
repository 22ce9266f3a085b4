/*
 * virtio_net.h - virtio-net driver for QEMU's `pc` machine: the PCI device
 * (transitional 1AF4:1000 or modern-only 1AF4:1041) through the modern
 * virtio 1.0 interface (capabilities + memory BAR) or the legacy I/O-port
 * one (virtio_pci.h), polled, one RX and one TX queue, no offloads. It
 * knows nothing of the network stack above it: the stack registers where
 * received frames go (virtio_net_opts.rx) and wraps the driver in its
 * struct net_if (net/net_guest.c).
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

#include <stddef.h>
#include <stdint.h>

#include "virtio_pci.h"

#define VNET_RX_BUFS  64   /* receive buffers kept posted */
#define VNET_TX_BUFS  64   /* frames in flight to the device */
#define VNET_BUF_SIZE 1536 /* >= 1514: one Ethernet frame, no FCS */
#define VNET_MAC_LEN  6

struct virtio_net_stats {
    uint64_t rx_frames, rx_bad;  /* rx_bad: length the device reported is impossible */
    uint64_t tx_frames, tx_full; /* tx_full: no free TX slot, frame dropped */
    uint64_t notifies;           /* queue notifications written (each is a VM exit) */
};

/* One received frame (from the Ethernet header, no FCS), handed up by
 * virtio_net_poll. The bytes are the driver's: the buffer is posted to the
 * device again once this returns. */
typedef void (*virtio_net_rx_fn)(void *ctx, const void *frame, size_t len);

/* Find the device, pick its interface per opts->mode, ask for a receive
 * interrupt when opts->irq_vector is set (needs MSI-X), run the virtio
 * initialization sequence and fill in mac (from the device when it offers
 * VIRTIO_NET_F_MAC, else a random locally administered address).
 * Returns 0, or -1 when there is no device or it refused us (a message is
 * printed on the console). */
struct virtio_net_opts {
    enum vpci_mode mode; /* interface; VPCI_AUTO: modern when offered */
    uint8_t irq_vector;  /* receive interrupt vector, 0: none (polled) */
    uint8_t irq_apic;    /* local APIC ID that vector is sent to */
    /* Where received frames go: registered by the layer above (the network
     * stack's input), called as rx(rx_ctx, frame, len). Required. */
    virtio_net_rx_fn rx;
    void *rx_ctx;
    /* 32 random bits for the made-up MAC, called only when the device has
     * none (the stack's net_port_random); NULL: the bits are zero. */
    uint32_t (*random)(void);
};

int virtio_net_init(const struct virtio_net_opts *opts, uint8_t mac[VNET_MAC_LEN]);

/* Queue one Ethernet frame (no FCS, len <= VNET_BUF_SIZE); the bytes are
 * copied before it returns. Returns 0, or -1 when dropped (no free TX slot:
 * counted in tx_full). */
int virtio_net_transmit(const void *frame, size_t len);

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

/* Hand every received frame to opts.rx and recycle its buffer; reclaim
 * finished transmissions. Returns the number of frames received. Cheap when
 * nothing arrived (no port I/O). */
int virtio_net_poll(void);

/* Non-zero when the device has returned receive buffers not yet polled:
 * lets an idle loop decide whether to sleep. Reads memory only. */
int virtio_net_rx_pending(void);

/* Link status from the device (1 up, 0 down); 1 when the device does not
 * report status (VIRTIO_NET_F_STATUS not offered). */
int virtio_net_link_up(void);

const struct virtio_net_stats *virtio_net_get_stats(void);

#endif
