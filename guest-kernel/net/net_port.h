/*
 * net_port.h - everything the network stack needs from its environment.
 *
 * The stack (guest-kernel/net/) is plain C11 that compiles freestanding for
 * the guest and hosted for the unit tests. It touches the outside world only
 * through the functions below; the guest kernel implements them on top of
 * its heap, TSC clock and LAPIC sleep, the host test harness on top of
 * malloc and a simulated clock. The stack is single-threaded and never
 * called from interrupt context: the caller serializes all net_* calls.
 */
#ifndef SHOAL_NET_PORT_H
#define SHOAL_NET_PORT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h> /* memcpy, memset, memcmp, memmove: both libcs have them */

/* Memory. net_port_alloc returns NULL when out of memory (the stack then
 * drops the packet or fails the call with ENOMEM/ENOBUFS, never crashes);
 * the result must be aligned for any scalar type. net_port_free(NULL) is a
 * no-op. */
void *net_port_alloc(size_t n);
void net_port_free(void *p);

/* Monotonic milliseconds (any epoch, never goes backwards). All stack
 * timers (RTO, delayed ACK, TIME_WAIT, ARP) are deadlines on this clock. */
uint64_t net_port_now_ms(void);

/* 32 random bits for initial sequence numbers and ephemeral ports. Need not
 * be cryptographic, but should differ between boots (mix in the TSC). */
uint32_t net_port_random(void);

/* Wait until something may have happened (a frame may have arrived) or
 * until deadline_ms (net_port_now_ms clock), whichever is first. Used only
 * by blocking socket calls, between rounds of nif->poll + net_poll. It may
 * return early; returning immediately makes the blocking calls spin. */
void net_port_idle(uint64_t deadline_ms);

/* Diagnostics (rare events: ARP conflicts, resource exhaustion). May do
 * nothing. */
void net_port_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
