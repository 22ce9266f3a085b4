/*
 * net.h - the shoal guest network stack: interface, lifetime, input, timers.
 *
 * One stack instance serves one Ethernet interface (struct net_if). The
 * driver (virtio-net in the guest, a simulated wire in the host tests)
 * fills in the interface and hands received frames to net_input(); the
 * stack sends frames through nif->transmit. Nothing runs on its own:
 * net_poll() drives every timer, so the owner calls it regularly (the
 * guest kernel from its idle loop, tests from their simulation loop).
 * Layers: Ethernet II, ARP, IPv4 (no fragments), ICMP echo, UDP, TCP.
 * Sockets are in net_socket.h (stack-explicit) and include/sys/socket.h
 * (POSIX names, guest only).
 *
 * Addresses in this header are in host byte order.
 */
#ifndef SHOAL_NET_H
#define SHOAL_NET_H

#include <stddef.h>
#include <stdint.h>

#define NET_ETH_ALEN    6
#define NET_ETH_HLEN    14
#define NET_MTU_DEFAULT 1500
#define NET_MTU_MIN     576
#define NET_FRAME_MAX   (NET_ETH_HLEN + NET_MTU_DEFAULT) /* 1514, no FCS */

struct net_stack;

/* The link: owned by the driver, registered with net_create(). */
struct net_if {
    uint8_t mac[NET_ETH_ALEN]; /* our MAC address */
    uint32_t ip;               /* our IPv4 address; 0 = none (only ARP/ICMP off) */
    uint8_t prefix;            /* netmask length, 0..32 */
    uint32_t gw;               /* default gateway; 0 = on-link traffic only */
    uint16_t mtu;              /* IP MTU; 0 means 1500; clamped to 576..1500 */
    /* Send one Ethernet frame (no FCS, len <= 14 + mtu). Must copy the
     * bytes before returning and must not call back into the stack.
     * Returns 0 when queued, -1 when dropped (ring full): the stack counts
     * it and relies on retransmission. */
    int (*transmit)(struct net_if *nif, const void *frame, size_t len);
    /* Optional: hand every received frame to net_input() and return. Called
     * by blocking socket calls between waits. NULL if frames are pushed. */
    void (*poll)(struct net_if *nif);
    void *driver;            /* the driver's own state */
    struct net_stack *stack; /* set by net_create */
};

/* Tunables. net_config_default() fills sensible values for a small guest;
 * zero fields passed to net_create are replaced by the defaults. */
struct net_config {
    unsigned max_sockets;  /* descriptor table size (default 1024) */
    unsigned tcp_sndbuf;   /* per-connection send buffer bytes (16384) */
    unsigned tcp_rcvbuf;   /* per-connection receive buffer, <= 65535 (16384) */
    unsigned udp_rcvbuf;   /* bytes of datagrams queued per socket (16384) */
    unsigned time_wait_ms; /* TIME_WAIT length (2000; RFC 793 says 2*MSL=4 min) */
    unsigned fin_wait2_ms; /* orphaned FIN_WAIT_2 timeout (10000) */
    unsigned delack_ms;    /* delayed ACK timeout (40) */
    unsigned rto_init_ms;  /* initial RTO (1000, RFC 6298) */
    unsigned rto_min_ms;   /* RTO floor (200; RFC 6298 says 1000) */
    unsigned rto_max_ms;   /* RTO and persist ceiling (60000) */
    unsigned syn_retries;  /* SYN / SYN-ACK retransmissions (5) */
    unsigned data_retries; /* data retransmissions before reset (10) */
    unsigned arp_entries;  /* ARP cache slots (32) */
    unsigned arp_ttl_ms;   /* resolved entry lifetime (60000) */
    unsigned arp_retry_ms; /* request interval while resolving (1000) */
    unsigned arp_retries;  /* requests before giving up (3) */
    unsigned arp_queue;    /* packets held per unresolved entry (4) */
};

/* Counters: every dropped frame is counted in exactly one *_drop_* field. */
struct net_stats {
    uint64_t eth_rx, eth_tx, eth_tx_fail;
    uint64_t eth_drop_short, eth_drop_dst, eth_drop_type;
    uint64_t arp_rx, arp_tx, arp_drop_malformed, arp_drop_other;
    uint64_t arp_resolved, arp_expired, arp_failed, arp_queue_drop;
    uint64_t ip_rx, ip_tx, ip_no_route, ip_tx_too_big;
    uint64_t ip_drop_short, ip_drop_version, ip_drop_len, ip_drop_csum;
    uint64_t ip_drop_frag, ip_drop_dst, ip_drop_src, ip_drop_proto;
    uint64_t icmp_rx, icmp_echo_reply_tx, icmp_drop_short, icmp_drop_csum, icmp_drop_type;
    uint64_t udp_rx, udp_tx, udp_drop_short, udp_drop_csum, udp_drop_noport, udp_drop_full;
    uint64_t tcp_rx, tcp_tx, tcp_drop_short, tcp_drop_csum, tcp_drop_flags;
    uint64_t tcp_drop_noport, tcp_drop_outwin, tcp_drop_backlog, tcp_drop_other;
    uint64_t tcp_rst_tx, tcp_rst_rx, tcp_challenge_ack;
    uint64_t tcp_active_open, tcp_passive_open, tcp_established;
    uint64_t tcp_retransmit_segs, tcp_rto_fired, tcp_fast_retransmit;
    uint64_t tcp_dupack_rx, tcp_ooo_rx, tcp_persist_probe, tcp_delack_tx;
    uint64_t tcp_conn_reset, tcp_conn_timeout;
    uint64_t alloc_fail;
};

void net_config_default(struct net_config *cfg);

/* Create a stack on nif (cfg NULL = defaults). Sets nif->stack. NULL when
 * out of memory. Sends a gratuitous ARP if nif->ip is set. */
struct net_stack *net_create(struct net_if *nif, const struct net_config *cfg);

/* Free everything, including sockets still open (no packets are sent).
 * NULL is a no-op. */
void net_destroy(struct net_stack *s);

/* Announce our address again (gratuitous ARP). Call after changing nif->ip. */
void net_announce(struct net_stack *s);

/* One received frame (starting at the Ethernet header, no FCS). The bytes
 * are untrusted: any length and content is safe. The stack does not keep
 * the pointer. Replies may be transmitted before it returns. */
void net_input(struct net_if *nif, const void *frame, size_t len);

/* Run timers due at now_ms (net_port_now_ms clock). Cheap when idle. */
void net_poll(struct net_stack *s, uint64_t now_ms);

/* Earliest pending timer deadline, or UINT64_MAX: how long an idle loop may
 * sleep (it must still poll the driver for received frames). */
uint64_t net_next_deadline(const struct net_stack *s);

const struct net_stats *net_get_stats(const struct net_stack *s);
struct net_if *net_get_if(const struct net_stack *s);

/* Parse "A.B.C.D" (host order out). 0 on success, -1 on a bad string. */
int net_parse_ipv4(const char *str, uint32_t *out);
/* Parse "A.B.C.D/N". 0 on success, -1 on a bad string. */
int net_parse_cidr(const char *str, uint32_t *ip, uint8_t *prefix);
/* Parse "xx:xx:xx:xx:xx:xx". 0 on success, -1 on a bad string. */
int net_parse_mac(const char *str, uint8_t mac[NET_ETH_ALEN]);

#endif
