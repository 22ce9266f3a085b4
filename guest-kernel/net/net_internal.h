/*
 * net_internal.h - shared between the stack's own .c files only.
 *
 * Wire formats are never accessed through structs: every field is read
 * with the byte accessors below after the layer's parser has checked the
 * length, so there are no alignment or aliasing issues and every read of
 * untrusted bytes is in bounds by construction.
 */
#ifndef SHOAL_NET_INTERNAL_H
#define SHOAL_NET_INTERNAL_H

#include <errno.h>

#include "net_port.h"
#include "net.h"
#include "net_socket.h"

#define ETH_TYPE_IPV4 0x0800
#define ETH_TYPE_ARP  0x0806
#define IP_HLEN       20
#define TCP_HLEN      20
#define UDP_HLEN      8
#define ICMP_HLEN     8
#define PROTO_ICMP    1
#define PROTO_TCP     6
#define PROTO_UDP     17

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10
#define TH_URG 0x20

#define SEQ_LT(a, b)  ((int32_t)((uint32_t)(a) - (uint32_t)(b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) <= 0)
#define SEQ_GT(a, b)  SEQ_LT(b, a)
#define SEQ_GEQ(a, b) SEQ_LEQ(b, a)

#define NET_MIN(a, b) ((a) < (b) ? (a) : (b))
#define NET_MAX(a, b) ((a) > (b) ? (a) : (b))

static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- ARP cache ---- */
enum { ARP_FREE, ARP_PENDING, ARP_RESOLVED };

struct arp_pkt { /* an IP packet waiting for resolution */
    struct arp_pkt *next;
    size_t len;      /* IP packet length */
    uint8_t frame[]; /* NET_ETH_HLEN bytes of room, then the packet */
};

struct arp_entry {
    uint8_t state;
    uint8_t tries; /* requests sent while PENDING */
    uint8_t nq;    /* packets queued */
    uint32_t ip;
    uint8_t mac[NET_ETH_ALEN];
    uint64_t deadline; /* RESOLVED: expiry; PENDING: next request */
    struct arp_pkt *q; /* FIFO of waiting packets */
};

/* ---- sockets ---- */
#define NS_NONBLOCK  0x01
#define NS_REUSEADDR 0x02
#define NS_NODELAY   0x04
#define NS_BOUND     0x08
#define NS_SHUT_RD   0x10
#define NS_SHUT_WR   0x20
#define NS_ORPHAN    0x40 /* closed by the app; freed when CLOSED */
#define NS_CONNECTED 0x80 /* UDP: default destination set */

#define TCP_OOO_MAX 4 /* out-of-order ranges held per connection */

struct udp_dgram {
    struct udp_dgram *next;
    uint32_t src;
    uint16_t sport;
    uint16_t len;
    uint8_t data[];
};

struct tcp_cb {
    uint8_t state;
    uint8_t rexmits; /* consecutive RTO expiries */
    uint8_t dupacks;
    uint8_t in_recovery;  /* fast recovery (NewReno) until recover is acked */
    uint8_t fin_pending;  /* app shut down writing: FIN follows the data */
    uint8_t fin_sent;     /* FIN sent at least once */
    uint8_t rx_fin;       /* peer's FIN received (counted in rcv_nxt) */
    uint8_t ack_now;      /* send an ACK at the end of this input */
    uint8_t segs_unacked; /* full segments received since our last ACK */
    uint8_t rtt_active;   /* timing rtt_seq (Karn: never a retransmission) */
    uint8_t nooo;
    uint8_t ooo_fin; /* peer's FIN seen beyond a hole, at ooo_fin_seq */
    uint16_t mss;    /* send MSS (peer's option, our MTU) */
    uint32_t iss, snd_una, snd_nxt, snd_max, snd_wnd, snd_wl1, snd_wl2;
    uint32_t irs, rcv_nxt, rcv_adv; /* rcv_adv: right edge last advertised */
    uint32_t ooo_fin_seq;
    uint32_t cwnd, ssthresh, recover;
    uint32_t srtt8, rttvar4, rto; /* srtt*8, rttvar*4 in ms (RFC 6298 fixed point) */
    uint32_t rtt_seq;
    uint64_t rtt_start;
    uint64_t t_rexmit, t_persist, t_delack, t_2msl; /* deadlines, 0 = off */
    uint32_t persist_backoff;
    uint8_t *sbuf; /* ring: bytes from snd_una on (sent or not) */
    uint32_t sbuf_size, sbuf_head, sbuf_len;
    uint8_t *rbuf; /* ring: in-order unread bytes, then room */
    uint32_t rbuf_size, rbuf_head, rbuf_len;
    struct {
        uint32_t start, end;
    } ooo[TCP_OOO_MAX]; /* seq ranges past rcv_nxt */
};

struct nsock {
    struct nsock *next; /* all sockets of the stack */
    int fd;             /* -1: no descriptor (orphan or embryo) */
    uint8_t type;       /* SOCK_STREAM or SOCK_DGRAM */
    uint8_t flags;      /* NS_* */
    int err;            /* pending error (SO_ERROR), positive errno */
    uint32_t lip, rip;  /* host order; lip 0 = any */
    uint16_t lport, rport;
    uint32_t want_sndbuf, want_rcvbuf;
    /* listening sockets */
    struct nsock *parent;  /* embryo/unaccepted child: its listener */
    struct nsock *aq_next; /* accept queue link */
    struct nsock *aq_head, *aq_tail;
    int backlog, nchild; /* children not yet accepted (any state) */
    /* UDP */
    struct udp_dgram *dq_head, *dq_tail;
    uint32_t dq_bytes;
    struct tcp_cb tcp;
};

struct net_stack {
    struct net_if *nif;
    struct net_config cfg;
    struct net_stats st;
    uint64_t now;
    uint32_t netmask;
    struct arp_entry *arp;
    struct nsock *socks; /* list of every socket */
    struct nsock **fds;  /* descriptor table (cfg.max_sockets) */
    uint16_t next_port;
    uint64_t next_arp_check;
    uint8_t tx[NET_FRAME_MAX]; /* frame being built */
};

/* util */
uint32_t net_csum_add(uint32_t sum, const uint8_t *p, size_t n);
uint16_t net_csum_fold(uint32_t sum);
uint32_t net_pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len);
void *net_zalloc(struct net_stack *s, size_t n);

/* link + ARP (net_eth.c) */
void arp_input(struct net_stack *s, const uint8_t *p, size_t len);
void arp_timers(struct net_stack *s);
void arp_flush(struct net_stack *s);
void arp_announce(struct net_stack *s);
/* Send the IP packet at s->tx + NET_ETH_HLEN (len bytes) to next hop. */
void eth_output_ip(struct net_stack *s, uint32_t nexthop, size_t len);
int eth_send(struct net_stack *s, uint8_t *frame, const uint8_t dst[NET_ETH_ALEN], uint16_t type,
             size_t len);

/* IPv4 (net_ip.c). ip_output sends s->tx's L4 payload (l4len bytes at
 * s->tx + 34) to dst; returns 0 or -errno (EHOSTUNREACH, EMSGSIZE). */
void ip_input(struct net_stack *s, const uint8_t *p, size_t len);
int ip_output(struct net_stack *s, uint32_t src, uint32_t dst, uint8_t proto, size_t l4len);
int ip_is_local(const struct net_stack *s, uint32_t ip);
uint8_t *ip_payload(struct net_stack *s); /* s->tx + 34 */
void udp_input(struct net_stack *s, uint32_t src, uint32_t dst, const uint8_t *p, size_t len);
int udp_output(struct net_stack *s, struct nsock *sk, uint32_t dst, uint16_t dport, const void *buf,
               size_t n);

/* TCP (net_tcp.c) */
void tcp_input(struct net_stack *s, uint32_t src, uint32_t dst, const uint8_t *p, size_t len);
void tcp_timers(struct net_stack *s);
int tcp_connect(struct net_stack *s, struct nsock *sk);
void tcp_output(struct net_stack *s, struct nsock *sk);
void tcp_usr_close(struct net_stack *s, struct nsock *sk);
void tcp_usr_shutdown_wr(struct net_stack *s, struct nsock *sk);
void tcp_usr_read(struct net_stack *s, struct nsock *sk); /* after the app read data */
int tcp_alloc_bufs(struct net_stack *s, struct nsock *sk);
void tcp_abort(struct net_stack *s, struct nsock *sk, int err, int send_rst);
uint64_t tcp_next_deadline(const struct net_stack *s);

/* sockets (net_socket.c) */
struct nsock *sock_new(struct net_stack *s, int type);
void sock_free(struct net_stack *s, struct nsock *sk); /* unlink + free */
void sock_reap(struct net_stack *s);                   /* free dead orphans */
uint16_t sock_ephemeral_port(struct net_stack *s, int type);

#endif
