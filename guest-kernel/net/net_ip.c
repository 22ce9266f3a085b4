/*
 * net_ip.c - IPv4 (RFC 791) input and output, ICMP echo (RFC 792), UDP
 * (RFC 768). No forwarding, no options generated, no fragmentation:
 * received fragments are counted and dropped, and output never exceeds the
 * interface MTU.
 */
#include "net_internal.h"

uint8_t *ip_payload(struct net_stack *s)
{
    return s->tx + NET_ETH_HLEN + IP_HLEN;
}

int ip_is_local(const struct net_stack *s, uint32_t ip)
{
    return ip && ip == s->nif->ip;
}

static int ip_is_bcast(const struct net_stack *s, uint32_t ip)
{
    return ip == 0xffffffffu ||
           (s->netmask != 0xffffffffu && s->nif->ip && ip == (s->nif->ip | ~s->netmask));
}

static void icmp_input(struct net_stack *s, uint32_t src, const uint8_t *p, size_t len);

/* The IPv4 parser: everything after this sees a header whose lengths and
 * checksum are valid, and a payload of exactly total_len - ihl bytes. */
void ip_input(struct net_stack *s, const uint8_t *p, size_t len)
{
    s->st.ip_rx++;
    if (len < IP_HLEN) {
        s->st.ip_drop_short++;
        return;
    }
    if (p[0] >> 4 != 4) {
        s->st.ip_drop_version++;
        return;
    }
    size_t ihl = (size_t)(p[0] & 15) * 4;
    size_t tot = rd16(p + 2);
    if (ihl < IP_HLEN || ihl > len || tot < ihl || tot > len) {
        s->st.ip_drop_len++;
        return;
    }
    if (net_csum_fold(net_csum_add(0, p, ihl)) != 0) {
        s->st.ip_drop_csum++;
        return;
    }
    uint16_t frag = rd16(p + 6);
    if (frag & 0x3fff) { /* MF set or offset != 0 */
        s->st.ip_drop_frag++;
        return;
    }
    uint32_t src = rd32(p + 12), dst = rd32(p + 16);
    if (!ip_is_local(s, dst) && !ip_is_bcast(s, dst)) {
        s->st.ip_drop_dst++;
        return;
    }
    if (src == 0 || ip_is_bcast(s, src) || (src >> 28) == 0xe || (src >> 24) == 127 ||
        ip_is_local(s, src)) {
        s->st.ip_drop_src++;
        return;
    }
    const uint8_t *pl = p + ihl;
    size_t plen = tot - ihl;
    switch (p[9]) {
    case PROTO_ICMP: icmp_input(s, src, pl, plen); break;
    case PROTO_UDP: udp_input(s, src, dst, pl, plen); break;
    case PROTO_TCP:
        if (ip_is_local(s, dst))
            tcp_input(s, src, dst, pl, plen);
        else
            s->st.ip_drop_dst++;
        break;
    default: s->st.ip_drop_proto++; break;
    }
}

int ip_output(struct net_stack *s, uint32_t src, uint32_t dst, uint8_t proto, size_t l4len)
{
    struct net_if *nif = s->nif;
    if (l4len + IP_HLEN > nif->mtu) {
        s->st.ip_tx_too_big++;
        return -EMSGSIZE;
    }
    uint32_t nexthop;
    if (ip_is_bcast(s, dst) || ((dst ^ nif->ip) & s->netmask) == 0)
        nexthop = dst;
    else if (nif->gw)
        nexthop = nif->gw;
    else {
        s->st.ip_no_route++;
        return -ENETUNREACH;
    }
    static uint16_t ip_id;
    uint8_t *h = s->tx + NET_ETH_HLEN;
    h[0] = 0x45;
    h[1] = 0;
    wr16(h + 2, (uint16_t)(IP_HLEN + l4len));
    wr16(h + 4, ip_id++);
    wr16(h + 6, 0x4000); /* DF: we never fragment */
    h[8] = 64;
    h[9] = proto;
    wr16(h + 10, 0);
    wr32(h + 12, src ? src : nif->ip);
    wr32(h + 16, dst);
    wr16(h + 10, net_csum_fold(net_csum_add(0, h, IP_HLEN)));
    s->st.ip_tx++;
    eth_output_ip(s, nexthop, IP_HLEN + l4len);
    return 0;
}

/* ---- ICMP: echo request -> echo reply; everything else counted ---- */

static void icmp_input(struct net_stack *s, uint32_t src, const uint8_t *p, size_t len)
{
    s->st.icmp_rx++;
    if (len < ICMP_HLEN) {
        s->st.icmp_drop_short++;
        return;
    }
    if (net_csum_fold(net_csum_add(0, p, len)) != 0) {
        s->st.icmp_drop_csum++;
        return;
    }
    if (p[0] != 8 || p[1] != 0) { /* only echo request */
        s->st.icmp_drop_type++;
        return;
    }
    if (len + IP_HLEN > s->nif->mtu) {
        s->st.icmp_drop_short++;
        return;
    }
    uint8_t *r = ip_payload(s);
    memcpy(r, p, len);
    r[0] = 0; /* echo reply, same id/seq/data */
    wr16(r + 2, 0);
    wr16(r + 2, net_csum_fold(net_csum_add(0, r, len)));
    s->st.icmp_echo_reply_tx++;
    ip_output(s, 0, src, PROTO_ICMP, len);
}

/* ---- UDP ---- */

static struct nsock *udp_lookup(struct net_stack *s, uint32_t src, uint16_t sport, uint32_t dst,
                                uint16_t dport)
{
    struct nsock *best = NULL;
    for (struct nsock *sk = s->socks; sk; sk = sk->next) {
        if (sk->type != SOCK_DGRAM || sk->lport != dport || !(sk->flags & NS_BOUND))
            continue;
        if (sk->lip && sk->lip != dst)
            continue;
        if (sk->flags & NS_CONNECTED) {
            if (sk->rip == src && sk->rport == sport)
                return sk;
            continue;
        }
        best = sk;
    }
    return best;
}

void udp_input(struct net_stack *s, uint32_t src, uint32_t dst, const uint8_t *p, size_t len)
{
    s->st.udp_rx++;
    if (len < UDP_HLEN) {
        s->st.udp_drop_short++;
        return;
    }
    size_t ulen = rd16(p + 4);
    if (ulen < UDP_HLEN || ulen > len) {
        s->st.udp_drop_short++;
        return;
    }
    if (rd16(p + 6) != 0 && /* 0: sender computed none */
        net_csum_fold(net_csum_add(net_pseudo_sum(src, dst, PROTO_UDP, (uint16_t)ulen), p, ulen)) !=
            0) {
        s->st.udp_drop_csum++;
        return;
    }
    uint16_t sport = rd16(p), dport = rd16(p + 2);
    struct nsock *sk = udp_lookup(s, src, sport, dst, dport);
    if (!sk) {
        s->st.udp_drop_noport++;
        return;
    }
    size_t n = ulen - UDP_HLEN;
    if (sk->dq_bytes + n > s->cfg.udp_rcvbuf || (sk->flags & NS_SHUT_RD)) {
        s->st.udp_drop_full++;
        return;
    }
    struct udp_dgram *d = net_port_alloc(sizeof *d + n);
    if (!d) {
        s->st.alloc_fail++;
        return;
    }
    d->next = NULL;
    d->src = src;
    d->sport = sport;
    d->len = (uint16_t)n;
    memcpy(d->data, p + UDP_HLEN, n);
    if (sk->dq_tail)
        sk->dq_tail->next = d;
    else
        sk->dq_head = d;
    sk->dq_tail = d;
    sk->dq_bytes += (uint32_t)n;
}

int udp_output(struct net_stack *s, struct nsock *sk, uint32_t dst, uint16_t dport, const void *buf,
               size_t n)
{
    if (n + UDP_HLEN + IP_HLEN > s->nif->mtu)
        return -EMSGSIZE;
    uint8_t *u = ip_payload(s);
    uint16_t ulen = (uint16_t)(n + UDP_HLEN);
    uint32_t src = sk->lip ? sk->lip : s->nif->ip;
    wr16(u, sk->lport);
    wr16(u + 2, dport);
    wr16(u + 4, ulen);
    wr16(u + 6, 0);
    if (n)
        memcpy(u + UDP_HLEN, buf, n);
    uint16_t c = net_csum_fold(net_csum_add(net_pseudo_sum(src, dst, PROTO_UDP, ulen), u, ulen));
    wr16(u + 6, c ? c : 0xffff);
    s->st.udp_tx++;
    return ip_output(s, src, dst, PROTO_UDP, ulen);
}
