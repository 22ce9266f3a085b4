/*
 * uart_rx.h - receiving on COM1, the console's 16550 UART: the byte
 * stream a pool guest reads its configuration record from, and writes its
 * reply to (docs/guest-protocol.md, "Warm pool hand-over"). The host's end
 * of a pool guest's COM1 is a unix socket that also logs what the guest
 * writes, so the console stays the console and the hand-over needs no
 * device besides the two serial ports every guest has. The kernel reaches
 * it through kern_pool_channel (kern.h), which this driver defines.
 *
 * QEMU's 16550A takes bytes from its socket only while its receive FIFO
 * is below the trigger level (set to 14 here), so a record arrives in
 * batches of 14: the interrupt identification register says "data
 * available" only with at least that many in the FIFO, and then all 14
 * are read with one `rep insb` (one VM exit); the rest byte by byte. The
 * receive interrupt goes through the I/O APIC (ISA IRQ 4) to the caller's
 * vector and only wakes a halted CPU. One CPU, main context only.
 */
#ifndef SHOAL_DRIVERS_UART_RX_H
#define SHOAL_DRIVERS_UART_RX_H

#include <stdint.h>

#define URX_GSI   4  /* COM1's ISA IRQ, the same I/O APIC input on QEMU's pc */
#define URX_BATCH 14 /* the receive FIFO's trigger level */

/* Set COM1 up for receiving (FIFO kept on with trigger level 14, bytes
 * already in it kept; divisor 1, so that the FIFO's character timeout is
 * 4 x 87 us) and enable its receive interrupt, routed to `vector` on
 * local APIC `apic` (vector 0 or no I/O APIC: polled). 0, or -1 with a
 * message when there is no UART. */
int urx_init(uint8_t vector, uint8_t apic);

/* Hand every byte the FIFO holds to rx(ctx, data, len), in order, until
 * the FIFO is empty or rx returns non-zero (then the receive interrupt is
 * turned off for good and nothing is read again). Returns bytes handed. */
unsigned urx_poll(int (*rx)(void *ctx, const char *data, unsigned len), void *ctx);

/* Write len bytes on COM1 (polled, as the console does). 0. */
int urx_write(const char *data, unsigned len);

/* 0: writes are done when urx_write returns. */
int urx_tx_busy(void);

/* 1 once the FIFO holds a byte (one port read). */
int urx_rx_pending(void);

/* 1 if the receive interrupt is on (it stays on from urx_init until the
 * record is read: the line rises on each refill, and a halt wakes at once
 * if one came meanwhile), 0 when polled. */
int urx_irq_arm(void);
void urx_irq_disarm(void);

/* Done with the port: its receive interrupt off, never read again. */
void urx_close(void);

#endif
