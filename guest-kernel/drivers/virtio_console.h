/*
 * virtio_console.h - the virtio console (virtio 1.x spec 5.3), port 0
 * only: VIRTIO_CONSOLE_F_MULTIPORT is not negotiated, so the device has
 * just receiveq (queue 0) and transmitq (queue 1) and QEMU counts the
 * port open from DRIVER_OK on. A byte stream to and from the host
 * (QEMU `-device virtio-serial-pci -device virtconsole,chardev=...`), used
 * by a pool guest to read its configuration record (docs/guest-protocol.md,
 * "Warm pool hand-over"); the kernel reaches it through kern_pool_channel
 * (kern.h), which this driver defines.
 *
 * Polled like virtio-net (virtio_net.h, same assumptions: identity map,
 * one CPU, main context only); the receive queue can raise an MSI-X
 * interrupt, used only to wake a halted CPU (vcon_irq_arm). Memory comes
 * from the heap at vcon_init, so images that never open the console pay
 * nothing: no .bss, no boot step.
 */
#ifndef SHOAL_DRIVERS_VIRTIO_CONSOLE_H
#define SHOAL_DRIVERS_VIRTIO_CONSOLE_H

#include <stdint.h>

#define VCON_RX_BUFS   16   /* receive buffers kept posted */
#define VCON_RX_SIZE   1024 /* bytes each: a full 8 KiB record in one go */
#define VCON_TX_BUFS   4    /* writes in flight */
#define VCON_TX_SIZE   256  /* longest single write */
#define VCON_QUEUE_MAX 256  /* largest queue laid out (QEMU offers 128) */

/* Find the first virtio console (1AF4:1003 or 1AF4:1043), start it through
 * either interface (modern when offered), post the receive buffers, and ask
 * for a receive interrupt on `vector` (MSI-X; vector 0: none). Returns 0,
 * or -1 with a message printed on the console. */
int vcon_init(uint8_t vector, uint8_t apic);

/* Hand every received chunk to rx(ctx, data, len) in order and post its
 * buffer again, until rx returns non-zero: then that buffer is kept and
 * the device is not notified (the consumer is done: a VM exit saved).
 * Reclaims finished writes. Returns bytes handed. */
unsigned vcon_poll(int (*rx)(void *ctx, const char *data, unsigned len), void *ctx);

/* Queue len <= VCON_TX_SIZE bytes (copied). 0, or -1 when dropped: too
 * long, not initialised, or every slot still held by the device (a host
 * that does not read). */
int vcon_write(const char *data, unsigned len);

/* 1 while the device has not taken every write yet. */
int vcon_tx_busy(void);

/* Non-zero when received bytes wait for vcon_poll. Reads memory only. */
int vcon_rx_pending(void);

/* 1 if the receive queue now interrupts (the caller halts, then calls
 * vcon_irq_disarm), 0 if it cannot (no MSI-X: the caller polls). */
int vcon_irq_arm(void);
void vcon_irq_disarm(void);

#endif
