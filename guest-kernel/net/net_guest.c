/*
 * net_guest.c - the guest kernel's side of the network stack: net_port.h on
 * top of the kernel's malloc, TSC clock and LAPIC sleep, the virtio-net
 * driver wrapped in the stack's struct net_if, net_guest_init (a kernel
 * boot hook) and net_guest_poll. Guest only: it includes kernel headers.
 * Everything between the layers below and the stack goes through here:
 * the driver and the kernel never name the stack; what they call back
 * (received frames, the boot hook) is registered from this file.
 *
 * No interrupts: qboot leaves LVT0 masked and every VM exit is expensive
 * under the nested KVM here, so the virtio rings are polled. A blocking
 * socket call therefore sleeps in short quanta (NET_GUEST_IDLE_US) and
 * looks at the RX ring in between; see docs/guest-net.md.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <shoal.h>

#include "net_guest.h"
#include "net_internal.h"
#include "net_socket.h"
#include "../arch/x86_64/apic.h"
#include "../arch/x86_64/idt.h"
#include "../drivers/virtio_net.h"
#include "../kernel/clock.h"
#include "../kernel/kern.h"
#include "../kernel/sbuf.h"

_Static_assert(VNET_MAC_LEN == NET_ETH_ALEN, "the driver fills in nif->mac");

static struct net_if guest_if;
static struct net_stack *guest_stack;
static uint64_t rng_state;

void *net_port_alloc(size_t n)
{
    return malloc(n);
}
void net_port_free(void *p)
{
    free(p);
}
uint64_t net_port_now_ms(void)
{
    return clock_monotonic_ns() / 1000000u;
}

uint32_t net_port_random(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    rng_state ^= ((uint64_t)hi << 32 | lo) + 0x9e3779b97f4a7c15ull;
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* Frames the stack sent, or received and kept: everything but what it
 * dropped as not ours (another host's unicast, multicast such as the
 * host's IPv6 router solicitations, other ethertypes, ARP about other
 * hosts, IPv4 for other addresses). Only these open the busy-poll window:
 * on a shared segment the rest arrives at every guest (each boot's ARP
 * broadcast reaches all of them) and would cost each ~20 wake-ups. */
static uint64_t frames_kept(void)
{
    if (!guest_stack)
        return 0;
    const struct net_stats *st = net_get_stats(guest_stack);
    return st->eth_tx + st->eth_rx - st->eth_drop_short - st->eth_drop_dst - st->eth_drop_type -
           st->arp_drop_other - st->arp_drop_malformed - st->ip_drop_dst;
}

/* Wait for a frame or the stack's next deadline. While frames were kept or
 * sent within NET_GUEST_BUSY_POLL_US, or when the device cannot interrupt
 * (no MSI-X), look at the ring every NET_GUEST_IDLE_US; after that, with
 * the receive interrupt, halt until a frame arrives or the deadline passes.
 * An idle guest thus costs the host next to nothing, instead of a tenth of
 * a CPU when polled (docs/guest-net.md). */
void net_port_idle(uint64_t deadline_ms)
{
    static uint64_t seen_frames, busy_until_ns;
    if (NET_GUEST_IDLE_US == 0 || virtio_net_rx_pending())
        return; /* 0: spin, never halt */
    uint64_t now_ns = clock_monotonic_ns();
    uint64_t until_ns = deadline_ms == UINT64_MAX ? UINT64_MAX : deadline_ms * 1000000u;
    if (until_ns <= now_ns)
        return;
    uint64_t ns = until_ns - now_ns;
    uint64_t frames = frames_kept();
    if (frames != seen_frames) {
        seen_frames = frames;
        busy_until_ns = now_ns + NET_GUEST_BUSY_POLL_US * 1000u;
    }
    if (now_ns >= busy_until_ns && virtio_net_irq_arm()) {
        clock_sleep_ready_ns(ns, virtio_net_rx_pending);
        virtio_net_irq_disarm();
        return;
    }
    if (ns > NET_GUEST_IDLE_US * 1000u)
        ns = NET_GUEST_IDLE_US * 1000u;
    clock_sleep_ns(ns);
}

void net_port_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* The driver as the stack's link. */
static int guest_transmit(struct net_if *nif, const void *frame, size_t len)
{
    (void)nif;
    return virtio_net_transmit(frame, len);
}

static void guest_poll(struct net_if *nif)
{
    (void)nif;
    virtio_net_poll();
}

/* shoal.ip=dhcp: the address asked for by DHCP before the app runs
 * (DISCOVER, OFFER, REQUEST, ACK; broadcast, from 0.0.0.0 as RFC 2131
 * says). No renewal: shoald's DHCP servers keep a guest's address for its
 * MAC while it runs (docs/node.md "DHCP"). */
#define DHCP_TRIES   4
#define DHCP_WAIT_MS 1000
#define DHCP_BOOTP   240 /* fixed BOOTP part, magic cookie included */

struct dhcp_wait {
    uint32_t xid;
    int want; /* the reply type waited for: 2 OFFER, 5 ACK */
    int got;  /* 1 it came, -1 a NAK */
    uint32_t yiaddr, server, mask, router;
};
static struct dhcp_wait *dhcp_w; /* while asking */

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p + 2, v & 0xffff);
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One request of `type` (1 DISCOVER, 3 REQUEST) into f: its length. */
static size_t dhcp_frame(uint8_t *f, const struct dhcp_wait *w, int type)
{
    uint8_t *ip = f + NET_ETH_HLEN, *udp = ip + 20, *b = udp + 8, *o = b + DHCP_BOOTP;
    size_t blen;
    memset(f, 0, NET_FRAME_MAX);
    memset(f, 0xff, NET_ETH_ALEN);
    memcpy(f + NET_ETH_ALEN, guest_if.mac, NET_ETH_ALEN);
    put16(f + 12, 0x0800);
    b[0] = 1; /* BOOTREQUEST, Ethernet, 6-byte address */
    b[1] = 1;
    b[2] = 6;
    put32(b + 4, w->xid);
    put16(b + 10, 0x8000); /* answer by broadcast: we have no address yet */
    memcpy(b + 28, guest_if.mac, NET_ETH_ALEN);
    put32(b + 236, 0x63825363);
    *o++ = 53, *o++ = 1, *o++ = (uint8_t)type;
    if (type == 3) {
        *o++ = 50, *o++ = 4, put32(o, w->yiaddr), o += 4;
        *o++ = 54, *o++ = 4, put32(o, w->server), o += 4;
    }
    *o++ = 55, *o++ = 2, *o++ = 1, *o++ = 3; /* subnet mask, router */
    *o++ = 255;
    blen = (size_t)(o - b) < 300 ? 300 : (size_t)(o - b); /* BOOTP's minimum */
    put16(udp, 68);
    put16(udp + 2, 67);
    put16(udp + 4, (uint32_t)(8 + blen)); /* checksum 0: none */
    ip[0] = 0x45;
    put16(ip + 2, (uint32_t)(20 + 8 + blen));
    ip[8] = 64;
    ip[9] = 17;
    put32(ip + 16, 0xffffffffu);
    put16(ip + 10, net_csum_fold(net_csum_add(0, ip, 20)));
    return NET_ETH_HLEN + 20 + 8 + blen;
}

/* A reply for us (untrusted bytes): 1 when it was one (taken), else 0. */
static int dhcp_input(const uint8_t *f, size_t len)
{
    struct dhcp_wait *w = dhcp_w;
    const uint8_t *ip = f + NET_ETH_HLEN, *udp, *b, *o, *end = f + len;
    int type = 0;
    uint32_t server = 0, mask = 0, router = 0;
    if (len < NET_ETH_HLEN + 20 + 8 + DHCP_BOOTP || f[12] != 8 || f[13] != 0 || (ip[0] >> 4) != 4 ||
        ip[9] != 17)
        return 0;
    udp = ip + (ip[0] & 15) * 4;
    b = udp + 8;
    if (b + DHCP_BOOTP > end || udp[2] != 0 || udp[3] != 68 || b[0] != 2 ||
        get32(b + 4) != w->xid || memcmp(b + 28, guest_if.mac, NET_ETH_ALEN) ||
        get32(b + 236) != 0x63825363)
        return 0;
    for (o = b + DHCP_BOOTP; o < end && *o != 255;) {
        if (*o == 0) {
            o++;
            continue;
        }
        if (o + 2 > end || o + 2 + o[1] > end)
            break;
        if (o[0] == 53 && o[1] == 1)
            type = o[2];
        else if (o[0] == 54 && o[1] == 4)
            server = get32(o + 2);
        else if (o[0] == 1 && o[1] == 4)
            mask = get32(o + 2);
        else if (o[0] == 3 && o[1] >= 4)
            router = get32(o + 2);
        o += 2 + o[1];
    }
    if (type == 6) {
        w->got = -1;
    } else if (type == w->want && get32(b + 16)) {
        w->yiaddr = get32(b + 16);
        w->server = server;
        w->mask = mask;
        w->router = router;
        w->got = 1;
    }
    return 1;
}

/* Send a request of `type` until the reply `want` comes: 0, or -1. */
static int dhcp_exchange(struct dhcp_wait *w, int type, int want)
{
    static uint8_t f[NET_FRAME_MAX];
    for (int t = 0; t < DHCP_TRIES && w->got >= 0; t++) {
        uint64_t until = clock_monotonic_ns() + DHCP_WAIT_MS * 1000000ull;
        w->want = want;
        w->got = 0;
        guest_if.transmit(&guest_if, f, dhcp_frame(f, w, type));
        while (!w->got && clock_monotonic_ns() < until) {
            virtio_net_poll();
            if (!w->got)
                clock_sleep_ns(1000000);
        }
        if (w->got > 0)
            return 0;
    }
    return -1;
}

static void ip_str(char *out, uint32_t a)
{
    struct sbuf sb;
    sb_init(&sb, out, 16);
    for (int i = 3; i >= 0; i--) {
        sb_num(&sb, (a >> (8 * i)) & 255, 10);
        if (i)
            sb_str(&sb, ".");
    }
}

/* Registered with the driver: its received frames go to the stack (a
 * DHCP reply to us, while asking, to the DHCP client). */
static void guest_rx(void *ctx, const void *frame, size_t len)
{
    if (dhcp_w && dhcp_input(frame, len))
        return;
    net_input(ctx, frame, len);
}

/* Find and start the NIC (shoal.virtio picks its interface); once. */
static int guest_device(void)
{
    static int up;
    const char *vio = shoal_param("virtio");
    struct virtio_net_opts o = { VPCI_AUTO, IDT_VEC_DEVICE, apic_id(),
                                 guest_rx,  &guest_if,      net_port_random };
    if (up)
        return 0;
    if (vio && !strcmp(vio, "legacy")) {
        o.mode = VPCI_LEGACY;
    } else if (vio && !strcmp(vio, "modern")) {
        o.mode = VPCI_MODERN;
    } else if (vio && strcmp(vio, "auto")) {
        printf("net: bad shoal.virtio '%s' (want auto, modern or legacy)\n", vio);
        return -1;
    }
    if (virtio_net_init(&o, guest_if.mac) != 0)
        return -1;
    guest_if.transmit = guest_transmit;
    guest_if.poll = guest_poll;
    up = 1;
    return 0;
}

/* The stack on the started NIC, with guest_if's address as it is now
 * (none: nothing announced); once. */
static int guest_stack_up(void)
{
    if (guest_stack)
        return 0;
    guest_stack = net_create(&guest_if, NULL);
    if (!guest_stack) {
        printf("net: out of memory\n");
        return -1;
    }
    net_set_default(guest_stack);
    return 0;
}

/* A pool guest, before it waits for its address: the NIC is started with
 * the MAC QEMU gave it and the stack is made without an address, so a
 * claim only sets the address and announces it. Frames that arrive
 * meanwhile wait in the ring (no interrupt is armed, nobody polls). */
static int net_guest_prepare(void)
{
    return guest_device() == 0 ? guest_stack_up() : -1;
}

/* "net: <ip> mac <mac> gw <gw> virtio <if> rx <wakeup>" on the console,
 * built with sbuf, not printf: under kvm-pvm this guest's instructions are
 * emulated (docs/guest-kernel.md, "Warm pools"), and printf's formatter
 * made this one line cost more than the rest of the network's setup. */
static void guest_say_up(const char *ip, const char *gw)
{
    char b[160], h[4] = "0:";
    struct sbuf sb;
    sb_init(&sb, b, sizeof b);
    sb_str(&sb, "net: ");
    sb_str(&sb, ip);
    sb_str(&sb, " mac ");
    for (int i = 0; i < NET_ETH_ALEN; i++) {
        h[0] = "0123456789abcdef"[guest_if.mac[i] >> 4];
        h[1] = "0123456789abcdef"[guest_if.mac[i] & 15];
        h[2] = i + 1 < NET_ETH_ALEN ? ':' : '\0';
        sb_str(&sb, h);
    }
    sb_str(&sb, " gw ");
    sb_str(&sb, gw ? gw : "none");
    sb_str(&sb, " virtio ");
    sb_str(&sb, virtio_net_interface());
    sb_str(&sb, " rx ");
    sb_str(&sb, virtio_net_rx_wakeup());
    sb_str(&sb, "\n");
    fputs(b, stdout);
}

/* shoal.ip=dhcp */
static int guest_dhcp(const char *mac)
{
    struct dhcp_wait w;
    char ip[24], gw[16];
    uint8_t want_mac[NET_ETH_ALEN];
    struct sbuf sb;
    int prefix = 0;
    if (guest_device() != 0 || guest_stack_up() != 0)
        return -1;
    if (mac && net_parse_mac(mac, want_mac) == 0 && memcmp(want_mac, guest_if.mac, NET_ETH_ALEN))
        printf("net: device MAC differs from shoal.mac '%s'\n", mac);
    memset(&w, 0, sizeof w);
    w.xid = net_port_random();
    dhcp_w = &w;
    if (dhcp_exchange(&w, 1, 2) != 0 || dhcp_exchange(&w, 3, 5) != 0) {
        dhcp_w = NULL;
        printf("net: no address by DHCP (%s)\n", w.got < 0 ? "refused" : "no answer");
        return -1;
    }
    dhcp_w = NULL;
    while (prefix < 32 && (w.mask & (0x80000000u >> prefix)))
        prefix++;
    guest_if.ip = w.yiaddr;
    guest_if.prefix = (uint8_t)(w.mask ? prefix : 24);
    guest_if.gw = w.router;
    net_announce(guest_stack);
    ip_str(ip, w.yiaddr);
    sb_init(&sb, ip + strlen(ip), sizeof ip - strlen(ip));
    sb_str(&sb, "/");
    sb_num(&sb, guest_if.prefix, 10);
    ip_str(gw, w.router);
    guest_say_up(ip, w.router ? gw : NULL);
    printf("net: address by DHCP from server %u.%u.%u.%u\n", w.server >> 24, (w.server >> 16) & 255,
           (w.server >> 8) & 255, w.server & 255);
    return 0;
}

int net_guest_init(void)
{
    const char *ip = shoal_param("ip"), *gw = shoal_param("gw"), *mac = shoal_param("mac");
    uint32_t addr = 0, gwa = 0;
    uint8_t prefix = 0, want_mac[NET_ETH_ALEN];
    if (!ip)
        return 1; /* networking not asked for */
    if (!strcmp(ip, "dhcp"))
        return guest_dhcp(mac);
    if (net_parse_cidr(ip, &addr, &prefix) != 0) {
        printf("net: bad shoal.ip '%s' (want A.B.C.D/N)\n", ip);
        return -1;
    }
    if (gw && net_parse_ipv4(gw, &gwa) != 0) {
        printf("net: bad shoal.gw '%s'\n", gw);
        return -1;
    }
    if (guest_device() != 0)
        return -1;
    if (mac && net_parse_mac(mac, want_mac) == 0 && memcmp(want_mac, guest_if.mac, NET_ETH_ALEN))
        printf("net: device MAC differs from shoal.mac '%s'\n", mac);
    guest_if.ip = addr;
    guest_if.prefix = prefix;
    guest_if.gw = gwa;
    if (guest_stack)
        net_announce(guest_stack); /* prepared: the address is new */
    else if (guest_stack_up() != 0)
        return -1;
    guest_say_up(ip, gw);
    return 0;
}

void net_guest_poll(void)
{
    if (!guest_stack)
        return;
    virtio_net_poll();
    net_poll(guest_stack, net_port_now_ms());
}

/* Up before the app's main, so "running" means "reachable". */
KERN_BOOT_HOOK_POOL("network", net_guest_init, net_guest_prepare);

struct net_stack *net_guest_stack(void)
{
    return guest_stack;
}
