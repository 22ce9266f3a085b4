/*
 * serial.h - 16550 UART, polled transmit only.
 *
 * The PC's legacy COM ports at fixed I/O ports, as much a part of the
 * platform as the PIT: below the kernel, which needs them from its first
 * boot step on (console and status channel).
 *
 * COM1 is the console (app stdout/stderr and kernel messages), COM2 the
 * status channel (docs/guest-protocol.md). Nothing is received. The driver
 * keeps no state beyond the port numbers the caller passes in.
 */
#ifndef SHOAL_ARCH_SERIAL_H
#define SHOAL_ARCH_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#define SERIAL_COM1 0x3F8 /* console */
#define SERIAL_COM2 0x2F8 /* status channel */

/* 8N1, FIFOs on, UART interrupts off (baud rate left as is). */
void serial_init(uint16_t port);

/* Write len bytes; "\n" goes out as "\r\n" only if crlf is set. Blocks
 * (polling the line status register) until the UART has room: waits for
 * an empty FIFO, then writes up to 16 bytes at once. */
void serial_write(uint16_t port, const char *buf, size_t len, int crlf);

#endif
