/*
 * net_stack.c - stack lifetime, frame input dispatch, timers, checksums and
 * the small text parsers for the kernel's shoal.ip/gw/mac keys.
 */
#include "net_internal.h"

void net_config_default(struct net_config *c)
{
    memset(c, 0, sizeof *c);
    c->max_sockets = 1024;
    c->tcp_sndbuf = 16384;
    c->tcp_rcvbuf = 16384;
    c->udp_rcvbuf = 16384;
    c->time_wait_ms = 2000;
    c->fin_wait2_ms = 10000;
    c->delack_ms = 40;
    c->rto_init_ms = 1000;
    c->rto_min_ms = 200;
    c->rto_max_ms = 60000;
    c->syn_retries = 5;
    c->data_retries = 10;
    c->arp_entries = 32;
    c->arp_ttl_ms = 60000;
    c->arp_retry_ms = 1000;
    c->arp_retries = 3;
    c->arp_queue = 4;
}

#define FILL(f)                                                                                    \
    do {                                                                                           \
        if (!c.f)                                                                                  \
            c.f = d.f;                                                                             \
    } while (0)

struct net_stack *net_create(struct net_if *nif, const struct net_config *cfg)
{
    struct net_config d, c;
    net_config_default(&d);
    if (cfg)
        c = *cfg;
    else
        c = d;
    FILL(max_sockets);
    FILL(tcp_sndbuf);
    FILL(tcp_rcvbuf);
    FILL(udp_rcvbuf);
    FILL(time_wait_ms);
    FILL(fin_wait2_ms);
    FILL(delack_ms);
    FILL(rto_init_ms);
    FILL(rto_min_ms);
    FILL(rto_max_ms);
    FILL(syn_retries);
    FILL(data_retries);
    FILL(arp_entries);
    FILL(arp_ttl_ms);
    FILL(arp_retry_ms);
    FILL(arp_retries);
    FILL(arp_queue);
    if (c.tcp_rcvbuf > 65535)
        c.tcp_rcvbuf = 65535; /* no window scaling */
    if (c.max_sockets > 65536)
        c.max_sockets = 65536;

    struct net_stack *s = net_port_alloc(sizeof *s);
    if (!s)
        return NULL;
    memset(s, 0, sizeof *s);
    s->cfg = c;
    s->nif = nif;
    s->arp = net_port_alloc(c.arp_entries * sizeof *s->arp);
    s->fds = net_port_alloc(c.max_sockets * sizeof *s->fds);
    if (!s->arp || !s->fds) {
        net_port_free(s->arp);
        net_port_free(s->fds);
        net_port_free(s);
        return NULL;
    }
    memset(s->arp, 0, c.arp_entries * sizeof *s->arp);
    memset(s->fds, 0, c.max_sockets * sizeof *s->fds);
    if (!nif->mtu || nif->mtu > NET_MTU_DEFAULT)
        nif->mtu = NET_MTU_DEFAULT;
    if (nif->mtu < NET_MTU_MIN)
        nif->mtu = NET_MTU_MIN;
    nif->stack = s;
    s->now = net_port_now_ms();
    s->next_port = (uint16_t)(49152 + net_port_random() % 16384);
    net_announce(s);
    return s;
}

void net_destroy(struct net_stack *s)
{
    if (!s)
        return;
    while (s->socks)
        sock_free(s, s->socks);
    arp_flush(s);
    if (s->nif)
        s->nif->stack = NULL;
    net_port_free(s->arp);
    net_port_free(s->fds);
    net_port_free(s);
}

void net_announce(struct net_stack *s)
{
    struct net_if *nif = s->nif;
    s->netmask = nif->prefix >= 32  ? 0xffffffffu
                 : nif->prefix == 0 ? 0
                                    : ~(0xffffffffu >> nif->prefix);
    if (nif->ip)
        arp_announce(s);
}

const struct net_stats *net_get_stats(const struct net_stack *s)
{
    return &s->st;
}
struct net_if *net_get_if(const struct net_stack *s)
{
    return s->nif;
}

/* The one place where a frame enters: Ethernet II header checked here,
 * the payload goes to ARP or IPv4, which check their own headers. */
void net_input(struct net_if *nif, const void *frame, size_t len)
{
    struct net_stack *s = nif ? nif->stack : NULL;
    const uint8_t *p = frame;
    if (!s || !p)
        return;
    s->now = net_port_now_ms();
    s->st.eth_rx++;
    if (len < NET_ETH_HLEN) {
        s->st.eth_drop_short++;
        return;
    }
    int bcast = memcmp(p, "\xff\xff\xff\xff\xff\xff", NET_ETH_ALEN) == 0;
    if (!bcast && memcmp(p, nif->mac, NET_ETH_ALEN) != 0) {
        s->st.eth_drop_dst++;
        return;
    }
    uint16_t type = rd16(p + 12);
    if (type == ETH_TYPE_ARP)
        arp_input(s, p + NET_ETH_HLEN, len - NET_ETH_HLEN);
    else if (type == ETH_TYPE_IPV4)
        ip_input(s, p + NET_ETH_HLEN, len - NET_ETH_HLEN);
    else
        s->st.eth_drop_type++;
    sock_reap(s);
}

void net_poll(struct net_stack *s, uint64_t now_ms)
{
    if (now_ms > s->now)
        s->now = now_ms;
    if (s->now >= s->next_arp_check) {
        arp_timers(s);
        s->next_arp_check = s->now + 100;
    }
    tcp_timers(s);
    sock_reap(s);
}

uint64_t net_next_deadline(const struct net_stack *s)
{
    uint64_t d = tcp_next_deadline(s);
    for (unsigned i = 0; i < s->cfg.arp_entries; i++)
        if (s->arp[i].state == ARP_PENDING && s->arp[i].deadline < d)
            d = s->arp[i].deadline;
    return d;
}

/* ---- checksums (RFC 1071) ---- */

uint32_t net_csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
    uint64_t acc = sum;
    while (n >= 2) {
        acc += (uint32_t)(p[0] << 8 | p[1]);
        p += 2;
        n -= 2;
    }
    if (n)
        acc += (uint32_t)p[0] << 8;
    while (acc >> 32)
        acc = (acc & 0xffffffffu) + (acc >> 32);
    return (uint32_t)acc;
}

uint16_t net_csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

uint32_t net_pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len)
{
    uint64_t acc =
        (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + (uint64_t)len;
    return (uint32_t)acc;
}

void *net_zalloc(struct net_stack *s, size_t n)
{
    void *p = net_port_alloc(n);
    if (!p) {
        s->st.alloc_fail++;
        return NULL;
    }
    memset(p, 0, n);
    return p;
}

/* ---- parsers ---- */

static const char *parse_octets(const char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        if (i && *p++ != '.')
            return NULL;
        if (*p < '0' || *p > '9')
            return NULL;
        unsigned n = 0, digits = 0;
        while (*p >= '0' && *p <= '9') {
            n = n * 10 + (unsigned)(*p++ - '0');
            if (++digits > 3 || n > 255)
                return NULL;
        }
        v = v << 8 | n;
    }
    *out = v;
    return p;
}

int net_parse_ipv4(const char *str, uint32_t *out)
{
    uint32_t v;
    const char *e = str ? parse_octets(str, &v) : NULL;
    if (!e || *e)
        return -1;
    *out = v;
    return 0;
}

int net_parse_cidr(const char *str, uint32_t *ip, uint8_t *prefix)
{
    uint32_t v;
    const char *e = str ? parse_octets(str, &v) : NULL;
    if (!e || *e++ != '/' || *e < '0' || *e > '9')
        return -1;
    unsigned n = 0;
    while (*e >= '0' && *e <= '9') {
        n = n * 10 + (unsigned)(*e++ - '0');
        if (n > 32)
            return -1;
    }
    if (*e)
        return -1;
    *ip = v;
    *prefix = (uint8_t)n;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int net_parse_mac(const char *str, uint8_t mac[NET_ETH_ALEN])
{
    uint8_t m[NET_ETH_ALEN];
    if (!str)
        return -1;
    for (int i = 0; i < NET_ETH_ALEN; i++) {
        if (i && *str++ != ':')
            return -1;
        int h = hexval(str[0]), l = h < 0 ? -1 : hexval(str[1]);
        if (h < 0 || l < 0)
            return -1;
        m[i] = (uint8_t)(h << 4 | l);
        str += 2;
    }
    if (*str)
        return -1;
    memcpy(mac, m, sizeof m);
    return 0;
}
