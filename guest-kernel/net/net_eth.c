/*
 * net_eth.c - Ethernet output and ARP (RFC 826): a small cache with
 * expiry, requests with retries, a per-entry queue of IP packets waiting
 * for resolution, replies for our address, gratuitous ARP at start.
 */
#include "net_internal.h"

#define ARP_LEN 28
static const uint8_t bcast_mac[NET_ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

int eth_send(struct net_stack *s, uint8_t *frame, const uint8_t dst[NET_ETH_ALEN], uint16_t type,
             size_t len)
{
    memcpy(frame, dst, NET_ETH_ALEN);
    memcpy(frame + 6, s->nif->mac, NET_ETH_ALEN);
    wr16(frame + 12, type);
    s->st.eth_tx++;
    if (s->nif->transmit(s->nif, frame, NET_ETH_HLEN + len) != 0) {
        s->st.eth_tx_fail++;
        return -1;
    }
    return 0;
}

static void arp_send(struct net_stack *s, uint16_t op, const uint8_t dst_mac[NET_ETH_ALEN],
                     const uint8_t tha[NET_ETH_ALEN], uint32_t tpa)
{
    uint8_t f[NET_ETH_HLEN + ARP_LEN];
    uint8_t *a = f + NET_ETH_HLEN;
    wr16(a, 1);                 /* htype Ethernet */
    wr16(a + 2, ETH_TYPE_IPV4); /* ptype */
    a[4] = 6;
    a[5] = 4;
    wr16(a + 6, op);
    memcpy(a + 8, s->nif->mac, 6);
    wr32(a + 14, s->nif->ip);
    memcpy(a + 18, tha, 6);
    wr32(a + 24, tpa);
    s->st.arp_tx++;
    eth_send(s, f, dst_mac, ETH_TYPE_ARP, ARP_LEN);
}

void arp_announce(struct net_stack *s)
{
    static const uint8_t zero[6];
    arp_send(s, 1, bcast_mac, zero, s->nif->ip); /* RFC 5227 announcement */
}

static void arp_request(struct net_stack *s, uint32_t ip)
{
    static const uint8_t zero[6];
    arp_send(s, 1, bcast_mac, zero, ip);
}

static struct arp_entry *arp_find(struct net_stack *s, uint32_t ip)
{
    for (unsigned i = 0; i < s->cfg.arp_entries; i++)
        if (s->arp[i].state != ARP_FREE && s->arp[i].ip == ip)
            return &s->arp[i];
    return NULL;
}

static void arp_drop_queue(struct net_stack *s, struct arp_entry *e, int count)
{
    while (e->q) {
        struct arp_pkt *p = e->q;
        e->q = p->next;
        if (count)
            s->st.arp_queue_drop++;
        net_port_free(p);
    }
    e->nq = 0;
}

/* A free slot, else the resolved entry closest to expiry, else the oldest
 * pending one (its queue is dropped). */
static struct arp_entry *arp_slot(struct net_stack *s)
{
    struct arp_entry *best = NULL;
    for (unsigned i = 0; i < s->cfg.arp_entries; i++) {
        struct arp_entry *e = &s->arp[i];
        if (e->state == ARP_FREE)
            return e;
        if (!best || (e->state == ARP_RESOLVED && best->state != ARP_RESOLVED) ||
            (e->state == best->state && e->deadline < best->deadline))
            best = e;
    }
    arp_drop_queue(s, best, 1);
    best->state = ARP_FREE;
    return best;
}

static void arp_update(struct net_stack *s, struct arp_entry *e, uint32_t ip,
                       const uint8_t mac[NET_ETH_ALEN])
{
    e->ip = ip;
    memcpy(e->mac, mac, 6);
    if (e->state != ARP_RESOLVED)
        s->st.arp_resolved++;
    e->state = ARP_RESOLVED;
    e->deadline = s->now + s->cfg.arp_ttl_ms;
    e->tries = 0;
    while (e->q) { /* send what was waiting */
        struct arp_pkt *p = e->q;
        e->q = p->next;
        eth_send(s, p->frame, mac, ETH_TYPE_IPV4, p->len);
        net_port_free(p);
    }
    e->nq = 0;
}

void arp_input(struct net_stack *s, const uint8_t *a, size_t len)
{
    s->st.arp_rx++;
    if (len < ARP_LEN || rd16(a) != 1 || rd16(a + 2) != ETH_TYPE_IPV4 || a[4] != 6 || a[5] != 4) {
        s->st.arp_drop_malformed++;
        return;
    }
    uint16_t op = rd16(a + 6);
    const uint8_t *sha = a + 8;
    uint32_t spa = rd32(a + 14), tpa = rd32(a + 24);
    if ((op != 1 && op != 2) || (sha[0] & 1)) { /* multicast sender MAC */
        s->st.arp_drop_malformed++;
        return;
    }
    uint32_t me = s->nif->ip;
    if (!me || spa == me) {
        if (spa == me && me)
            net_port_log("net: ARP: another host claims our address");
        s->st.arp_drop_other++;
        return;
    }
    /* RFC 826 merge: update an existing entry; create one only when the
     * packet is for us. */
    struct arp_entry *e = spa ? arp_find(s, spa) : NULL;
    if (e)
        arp_update(s, e, spa, sha);
    if (tpa != me) {
        if (!e)
            s->st.arp_drop_other++;
        return;
    }
    if (!e && spa)
        arp_update(s, arp_slot(s), spa, sha);
    if (op == 1)
        arp_send(s, 2, sha, sha, spa);
}

/* The IP packet at s->tx + 14, len bytes, to nexthop. */
void eth_output_ip(struct net_stack *s, uint32_t nexthop, size_t len)
{
    uint32_t bcast = s->nif->ip | ~s->netmask;
    if (nexthop == 0xffffffffu || (s->netmask != 0xffffffffu && nexthop == bcast)) {
        eth_send(s, s->tx, bcast_mac, ETH_TYPE_IPV4, len);
        return;
    }
    struct arp_entry *e = arp_find(s, nexthop);
    if (e && e->state == ARP_RESOLVED) {
        eth_send(s, s->tx, e->mac, ETH_TYPE_IPV4, len);
        return;
    }
    if (!e) {
        e = arp_slot(s);
        e->state = ARP_PENDING;
        e->ip = nexthop;
        e->tries = 1;
        e->deadline = s->now + s->cfg.arp_retry_ms;
        arp_request(s, nexthop);
    }
    if (e->nq >= s->cfg.arp_queue) { /* drop the oldest */
        struct arp_pkt *old = e->q;
        e->q = old->next;
        net_port_free(old);
        e->nq--;
        s->st.arp_queue_drop++;
    }
    struct arp_pkt *p = net_port_alloc(sizeof *p + NET_ETH_HLEN + len);
    if (!p) {
        s->st.alloc_fail++;
        return;
    }
    p->next = NULL;
    p->len = len;
    memcpy(p->frame + NET_ETH_HLEN, s->tx + NET_ETH_HLEN, len);
    struct arp_pkt **tail = &e->q;
    while (*tail)
        tail = &(*tail)->next;
    *tail = p;
    e->nq++;
}

void arp_timers(struct net_stack *s)
{
    for (unsigned i = 0; i < s->cfg.arp_entries; i++) {
        struct arp_entry *e = &s->arp[i];
        if (e->state == ARP_FREE || s->now < e->deadline)
            continue;
        if (e->state == ARP_RESOLVED) {
            s->st.arp_expired++;
            e->state = ARP_FREE;
        } else if (e->tries >= s->cfg.arp_retries) {
            s->st.arp_failed++;
            arp_drop_queue(s, e, 1);
            e->state = ARP_FREE;
        } else {
            e->tries++;
            e->deadline = s->now + s->cfg.arp_retry_ms;
            arp_request(s, e->ip);
        }
    }
}

void arp_flush(struct net_stack *s)
{
    for (unsigned i = 0; i < s->cfg.arp_entries; i++) {
        arp_drop_queue(s, &s->arp[i], 0);
        s->arp[i].state = ARP_FREE;
    }
}
