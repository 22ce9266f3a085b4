/*
 * net_guest.h - bringing the network up inside the guest kernel.
 *
 * Boot:   after clock_init() and the heap, before the app's main(), the
 *         kernel runs net_guest_init (registered as its boot hook,
 *         KERN_BOOT_HOOK in kernel/kern.h; the kernel does not name it).
 *         It reads shoal.ip / shoal.gw / shoal.mac, finds the virtio-net
 *         device, creates the stack and makes it the one behind socket().
 *         shoal.ip=dhcp: the address, prefix and gateway are asked for by
 *         DHCP first (docs/guest-net.md "DHCP").
 * Idle:   wherever the kernel waits (and between app time slices, if any):
 *             net_guest_poll();
 *         Blocking socket calls poll by themselves (net_port_idle).
 */
#ifndef SHOAL_NET_GUEST_H
#define SHOAL_NET_GUEST_H

#include "net.h"

/* Longest sleep of a blocking socket call before it looks at the RX ring
 * again while polling: bounds the added latency of a frame arriving while
 * asleep. 0 = never halt (spin: lowest latency, burns the host CPU). */
#ifndef NET_GUEST_IDLE_US
#define NET_GUEST_IDLE_US 500u
#endif

/* With receive interrupts (modern virtio), a guest keeps polling as above
 * until no frame has come or gone for this long, then halts until an
 * interrupt. Under load polling is cheaper than an interrupt per wakeup
 * (measured: interrupts alone cost a third of httpd's requests/s); when
 * idle, interrupts cost the host nothing. */
#ifndef NET_GUEST_BUSY_POLL_US
#define NET_GUEST_BUSY_POLL_US 10000u
#endif

/* 0: up; 1: no shoal.ip given, networking off (not an error); -1: failed
 * (bad key or no usable device; a message was printed). */
int net_guest_init(void);

/* Receive pending frames and run the stack's timers. Cheap when idle. */
void net_guest_poll(void);

/* NULL before net_guest_init succeeded. */
struct net_stack *net_guest_stack(void);

#endif
