/*
 * test_guard_net.c - guest isolation (daemon/guard.h) in the kernel: two
 * "guests" on a bridge set, the table guard_open writes, and every attack of
 * issue 16 tried from one of them.
 *
 * Namespaces, all created and deleted by the test (`shoal-grd-<pid>`, and
 * `-g1`, `-g2` as the guests); every packet stays inside them. The body runs
 * in a forked child that setns(2)'d into the first one; the parent deletes
 * all three whatever the child did.
 *
 *   shoal-grd-PID   bridge set "shg0" (gateway 10.66.0.1/24) with one
 *                   overflow bridge "shg0.1" (limits 2 ports/bridge, 1
 *                   overflow): guest 1's port is on shg0, guest 2's on
 *                   shg0.1, so their traffic crosses the links shg0.1-m /
 *                   shg0.1-o, whose names start like a guest tap's and must
 *                   not be filtered.
 *   ...-g1          guest 1 (the attacker): veth gp1, MAC 5a:5c:00:00:a0:01,
 *                   10.66.0.2; its bridge end is named as shoald names a tap,
 *                   guard_tap_name("00000000a001") = sh00000000a001, with the
 *                   MAC libvirt would give the tap (fe:5c:...).
 *   ...-g2          guest 2 (the victim): gp2, 5a:5c:00:00:a0:02, 10.66.0.3.
 *
 * Forged frames are written with AF_PACKET sockets on gp1. Each carries a
 * marker; sniffers on the bridge (the host) and on gp2 (the other guest)
 * tell whether it got through, and every attack has a control: the same
 * frame with true addresses is seen. ARP attacks are judged by the
 * neighbour tables of the host and of guest 2, and are first tried without
 * the table, to show they work there (so the test can tell).
 *
 * Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and nft: exits 77 (CTest
 * "Skipped") only when not root. nft missing is a failure (CI installs
 * nftables: scripts/setup-debian.sh). ~25 s (the host-input checks wait
 * out 1.5 s connect timeouts).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "guard.h"
#include "netbr.h"
#include "netns.h"
#include "shoal_skip.h"

static char ns[64]; /* the bridge's namespace; guests are ns-g1, ns-g2 */

static const char *const ID1 = "00000000a001", *const ID2 = "00000000a002";
static const unsigned char MAC1[6] = { 0x5a, 0x5c, 0, 0, 0xa0, 0x01 };
static const unsigned char MAC2[6] = { 0x5a, 0x5c, 0, 0, 0xa0, 0x02 };
static const unsigned char BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
#define GW  "10.66.0.1"
#define IP1 "10.66.0.2"
#define IP2 "10.66.0.3"
static unsigned char gw_mac[6];
/* The overflow bridge's MAC. Linux answers ARP for any of its addresses on
 * any interface (arp_ignore 0), so a guest on shg0.1 hears the gateway's
 * address from shg0 and from shg0.1 and keeps either (both reach the
 * host). */
static unsigned char over_mac[6];
static char tap1[GUARD_TAP_SIZE], tap2[GUARD_TAP_SIZE];

static void mac_str(const unsigned char m[6], char out[18])
{
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static int parse_mac(const char *s, unsigned char m[6])
{
    unsigned v[6];
    if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
        return -1;
    for (int i = 0; i < 6; i++)
        m[i] = (unsigned char)v[i];
    return 0;
}

/* The MAC namespace `where` ("" = the bridge's) has for `ip`, "" if none. */
static const char *neigh(const char *where, const char *ip)
{
    static char mac[32];
    char out[512];
    mac[0] = '\0';
    if (where[0])
        netns_sh_out(out, sizeof out, "ip -n %s-%s neigh show %s", ns, where, ip);
    else
        netns_sh_out(out, sizeof out, "ip neigh show %s", ip);
    const char *p = strstr(out, "lladdr ");
    if (p)
        sscanf(p + 7, "%31s", mac);
    return mac;
}

static int is_gw_mac(const char *s)
{
    char a[18], b[18];
    mac_str(gw_mac, a);
    mac_str(over_mac, b);
    return !strcmp(s, a) || !strcmp(s, b);
}

static int ping_from(const char *where, const char *ip)
{
    if (!where[0])
        return netns_sh("ping -c 2 -i 0.2 -W 2 %s", ip);
    return netns_sh("ip netns exec %s-%s ping -c 2 -i 0.2 -W 2 %s", ns, where, ip);
}

/* An AF_PACKET socket on `dev` in namespace `where` ("" = the bridge's),
 * made there and used from here. Non-blocking. */
static int packet_socket(const char *where, const char *dev)
{
    char name[96];
    int here = netns_open(ns), there = -1, fd = -1;
    snprintf(name, sizeof name, "%s%s%s", ns, where[0] ? "-" : "", where);
    there = netns_open(name);
    NETNS_CHECK(here >= 0 && there >= 0);
    NETNS_CHECK(setns(there, CLONE_NEWNET) == 0);
    fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
    struct sockaddr_ll sll = { .sll_family = AF_PACKET,
                               .sll_protocol = htons(ETH_P_ALL),
                               .sll_ifindex = (int)if_nametoindex(dev) };
    int ok = fd >= 0 && sll.sll_ifindex > 0 && bind(fd, (struct sockaddr *)&sll, sizeof sll) == 0;
    NETNS_CHECK(setns(here, CLONE_NEWNET) == 0);
    close(here);
    close(there);
    NETNS_CHECK(ok);
    return fd;
}

static int tx1, rx_host, rx_g2, rx_g1; /* gp1 (attacker), shg0, gp2, gp1 */

static void drain(int fd)
{
    char buf[2048];
    while (recv(fd, buf, sizeof buf, 0) > 0)
        ;
}

/* 1 if a frame holding pat[0..len) arrives on fd within ms. */
static int seen_bytes(int fd, const void *pat, size_t len, int ms)
{
    char buf[2048];
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        int left = ms - (int)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0)
            return 0;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, left) <= 0)
            continue;
        ssize_t n;
        while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
            if (memmem(buf, (size_t)n, pat, len))
                return 1;
    }
}

static int seen(int fd, const char *marker, int ms)
{
    return seen_bytes(fd, marker, strlen(marker), ms);
}

/* ---- frames ---- */

struct frame {
    unsigned char b[1514];
    size_t n;
};

static void put(struct frame *f, const void *p, size_t n)
{
    memcpy(f->b + f->n, p, n);
    f->n += n;
}

static void put16(struct frame *f, unsigned v)
{
    unsigned char x[2] = { (unsigned char)(v >> 8), (unsigned char)v };
    put(f, x, 2);
}

static void eth(struct frame *f, const unsigned char dst[6], const unsigned char src[6],
                unsigned type)
{
    f->n = 0;
    put(f, dst, 6);
    put(f, src, 6);
    put16(f, type);
}

static uint16_t csum(const unsigned char *p, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n & 1)
        s += (uint32_t)p[n - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

/* IPv4 + UDP carrying `marker`, after an Ethernet header already in f. */
static void ipv4_udp(struct frame *f, const char *src, const char *dst, unsigned sport,
                     unsigned dport, const char *marker)
{
    size_t ip0 = f->n, len = strlen(marker);
    struct in_addr s, d;
    inet_pton(AF_INET, src, &s);
    inet_pton(AF_INET, dst, &d);
    unsigned char h[20] = { 0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17 };
    h[2] = (unsigned char)((20 + 8 + len) >> 8);
    h[3] = (unsigned char)(20 + 8 + len);
    memcpy(h + 12, &s, 4);
    memcpy(h + 16, &d, 4);
    put(f, h, 20);
    uint16_t c = csum(f->b + ip0, 20);
    f->b[ip0 + 10] = (unsigned char)(c >> 8);
    f->b[ip0 + 11] = (unsigned char)c;
    put16(f, sport);
    put16(f, dport);
    put16(f, (unsigned)(8 + len));
    put16(f, 0); /* no UDP checksum */
    put(f, marker, len);
}

static void arp(struct frame *f, const unsigned char dst[6], const unsigned char src[6],
                unsigned op, const unsigned char sha[6], const char *spa,
                const unsigned char tha[6], const char *tpa)
{
    struct in_addr s, t;
    inet_pton(AF_INET, spa, &s);
    inet_pton(AF_INET, tpa, &t);
    eth(f, dst, src, ETHERTYPE_ARP);
    put16(f, 1);      /* htype Ethernet */
    put16(f, 0x0800); /* ptype IPv4 */
    put(f, (unsigned char[]){ 6, 4 }, 2);
    put16(f, op);
    put(f, sha, 6);
    put(f, &s, 4);
    put(f, tha, 6);
    put(f, &t, 4);
}

static void send_frame(const struct frame *f)
{
    NETNS_CHECK(send(tx1, f->b, f->n, 0) == (ssize_t)f->n);
}

/* Send f from guest 1; whether the host and guest 2 saw pat[0..len). */
static void sent_seen_bytes(const struct frame *f, const void *pat, size_t len, int *host, int *g2)
{
    drain(rx_host);
    drain(rx_g2);
    send_frame(f);
    *host = seen_bytes(rx_host, pat, len, 200);
    *g2 = seen_bytes(rx_g2, pat, len, 50);
}

static void sent_seen(const struct frame *f, const char *marker, int *host, int *g2)
{
    sent_seen_bytes(f, marker, strlen(marker), host, g2);
}

static int nmark;

/* An IPv4/UDP broadcast from guest 1 with the given Ethernet source and IP
 * source; 1 if the host or guest 2 saw it. */
static int udp_gets_through(const unsigned char src_mac[6], const char *src_ip, const char *what)
{
    struct frame f;
    char marker[64];
    int h, g;
    snprintf(marker, sizeof marker, "shoal-guard-%d", ++nmark);
    eth(&f, BCAST, src_mac, ETHERTYPE_IP);
    ipv4_udp(&f, src_ip, "10.66.0.255", 40000, 9, marker);
    sent_seen(&f, marker, &h, &g);
    fprintf(stderr, "  %-58s host %s, guest 2 %s\n", what, h ? "saw it" : "-", g ? "saw it" : "-");
    return h || g;
}

/* Send an ARP frame from guest 1; 1 if the host or guest 2 saw it (its
 * ARP part: 28 bytes after the Ethernet header). */
static int arp_gets_through(const struct frame *f, const char *what)
{
    int h, g;
    sent_seen_bytes(f, f->b + 14, 28, &h, &g);
    fprintf(stderr, "  %-58s host %s, guest 2 %s\n", what, h ? "saw it" : "-", g ? "saw it" : "-");
    return h || g;
}

/* ARP spoofing from guest 1. Gratuitous ARP (a request whose sender and
 * target address are the same) overrides any neighbour entry in Linux, so
 * the tables show at once whether it got through; replies are also judged
 * by the sniffers (Linux may ignore them within its 1 s locktime). */
static void arp_attacks(int guarded)
{
    char m1[18], m2[18], gw[18];
    struct frame f;
    const unsigned char zero[6] = { 0 }, other[6] = { 0x02, 0xde, 0xad, 0xbe, 0xef, 0x01 };
    int through = 0;
    mac_str(MAC1, m1);
    mac_str(MAC2, m2);
    mac_str(gw_mac, gw);

    arp(&f, BCAST, MAC1, 1, MAC1, IP2, zero, IP2);
    through += arp_gets_through(&f, "gratuitous ARP: guest 2's address at guest 1's MAC");
    arp(&f, BCAST, MAC1, 1, MAC1, GW, zero, GW);
    through += arp_gets_through(&f, "gratuitous ARP: the gateway's address at guest 1's MAC");
    arp(&f, gw_mac, MAC1, 2, MAC1, IP2, gw_mac, GW);
    through += arp_gets_through(&f, "ARP reply to the host: guest 2's address");
    arp(&f, MAC2, MAC1, 2, MAC1, GW, MAC2, IP2);
    through += arp_gets_through(&f, "ARP reply to guest 2: the gateway's address");
    usleep(200 * 1000);
    char host_has[32];
    snprintf(host_has, sizeof host_has, "%s", neigh("", IP2));
    fprintf(stderr, "  %s: host has %s at %s, guest 2 has %s at %s\n",
            guarded ? "guarded" : "unguarded", IP2, host_has, GW, neigh("g2", GW));
    if (!guarded) {
        /* the attack works without the table: the test can tell */
        NETNS_CHECK(through == 4);
        NETNS_CHECK(!strcmp(neigh("", IP2), m1));
        NETNS_CHECK(!strcmp(neigh("g2", GW), m1));
        return;
    }
    NETNS_CHECK(through == 0);
    NETNS_CHECK(!strcmp(neigh("", IP2), m2));
    NETNS_CHECK(is_gw_mac(neigh("g2", GW)));

    /* its own address, but another MAC: inside the ARP only (Ethernet
     * source true), or in both */
    arp(&f, BCAST, MAC1, 1, MAC2, IP1, zero, IP1);
    NETNS_CHECK(!arp_gets_through(&f, "gratuitous ARP: own address, sender MAC guest 2's"));
    arp(&f, BCAST, other, 1, other, IP1, zero, IP1);
    NETNS_CHECK(!arp_gets_through(&f, "gratuitous ARP: own address from a forged MAC"));
    /* not an ARP of Ethernet/IPv4 sizes */
    arp(&f, BCAST, MAC1, 1, MAC1, IP1, zero, IP1);
    f.b[14 + 4] = 8; /* hlen */
    NETNS_CHECK(!arp_gets_through(&f, "ARP with a hardware address length of 8"));
    usleep(200 * 1000);
    NETNS_CHECK(!strcmp(neigh("", IP1), m1));
    NETNS_CHECK(!strcmp(neigh("", IP2), m2));
    NETNS_CHECK(is_gw_mac(neigh("g2", GW)));
    /* guest 1's own gratuitous ARP, a probe (RFC 5227) and a reply pass */
    arp(&f, BCAST, MAC1, 1, MAC1, IP1, zero, IP1);
    NETNS_CHECK(arp_gets_through(&f, "control: gratuitous ARP for its own address"));
    arp(&f, BCAST, MAC1, 1, MAC1, "0.0.0.0", zero, IP1);
    NETNS_CHECK(arp_gets_through(&f, "control: ARP probe from 0.0.0.0"));
    arp(&f, gw_mac, MAC1, 2, MAC1, IP1, gw_mac, GW);
    NETNS_CHECK(arp_gets_through(&f, "control: ARP reply with its own address"));
    arp(&f, gw_mac, MAC1, 2, MAC1, "0.0.0.0", gw_mac, GW);
    NETNS_CHECK(!arp_gets_through(&f, "ARP reply from 0.0.0.0"));
}

/* ARP guest 2 gets (the egress rule and the dests set): only what asks
 * about its own address. Each guest's boot announcement and each first
 * connection of the host to a guest used to wake every guest on the bridge
 * (docs/node.md "Guest isolation"). The host sees all of them either way. */
static void arp_delivery(int guarded)
{
    const unsigned char zero[6] = { 0 };
    struct frame f;
    int h, g, h2, g2, h3, g3;

    arp(&f, BCAST, MAC1, 1, MAC1, IP1, zero, IP1);
    sent_seen_bytes(&f, f.b + 14, 28, &h, &g);
    arp(&f, BCAST, MAC1, 1, MAC1, IP1, zero, GW);
    sent_seen_bytes(&f, f.b + 14, 28, &h2, &g2);
    arp(&f, BCAST, MAC1, 1, MAC1, IP1, zero, IP2);
    sent_seen_bytes(&f, f.b + 14, 28, &h3, &g3);
    fprintf(stderr,
            "  %s ARP from guest 1: announcement host %s, guest 2 %s; for the gateway "
            "host %s, guest 2 %s; for guest 2's address host %s, guest 2 %s\n",
            guarded ? "guarded" : "unguarded", h ? "saw it" : "-", g ? "saw it" : "-",
            h2 ? "saw it" : "-", g2 ? "saw it" : "-", h3 ? "saw it" : "-", g3 ? "saw it" : "-");
    NETNS_CHECK(h && h2 && h3 && g3);
    if (!guarded) {
        NETNS_CHECK(g && g2); /* flooded to every port: the test can tell */
        return;
    }
    NETNS_CHECK(!g && !g2);
}

/* The host sends to a MAC no port has: the bridge floods it to every
 * port. 1 if a guest saw it. */
static int flood_seen(void)
{
    static const unsigned char nobody[6] = { 0x02, 0, 0, 0, 0, 0x99 };
    struct frame f;
    char marker[64];
    int txh = packet_socket("", "shg0"), g1, g2;
    snprintf(marker, sizeof marker, "shoal-guard-flood-%d", ++nmark);
    drain(rx_g1);
    drain(rx_g2);
    eth(&f, nobody, gw_mac, ETHERTYPE_IP);
    ipv4_udp(&f, GW, "10.66.0.99", 40000, 9, marker);
    NETNS_CHECK(send(txh, f.b, f.n, 0) == (ssize_t)f.n);
    g1 = seen(rx_g1, marker, 300);
    g2 = seen(rx_g2, marker, 100);
    close(txh);
    fprintf(stderr, "  %-58s guest 1 %s, guest 2 %s\n", "host to an unknown MAC (flooded)",
            g1 ? "saw it" : "-", g2 ? "saw it" : "-");
    return g1 || g2;
}

/* The host sends to guest 1's MAC: 1 if guest 1 saw it. */
static int unicast_seen(void)
{
    struct frame f;
    char marker[64];
    int txh = packet_socket("", "shg0"), g1;
    snprintf(marker, sizeof marker, "shoal-guard-unicast-%d", ++nmark);
    drain(rx_g1);
    eth(&f, MAC1, gw_mac, ETHERTYPE_IP);
    ipv4_udp(&f, GW, IP1, 40000, 9, marker);
    NETNS_CHECK(send(txh, f.b, f.n, 0) == (ssize_t)f.n);
    g1 = seen(rx_g1, marker, 300);
    close(txh);
    return g1;
}

/* Build the two guests on the set, addresses and MACs as in the header. */
static void make_guests(struct netbr_set *s)
{
    const char *br;
    char err[512], mac[18];

    guard_tap_name(ID1, tap1);
    guard_tap_name(ID2, tap2);
    for (int i = 1; i <= 2; i++) {
        const unsigned char *m = i == 1 ? MAC1 : MAC2;
        mac_str(m, mac);
        NETNS_CHECK(netbr_set_pick(s, mac, &br, err, sizeof err) == NETBR_OK);
        NETNS_CHECK(!strcmp(br, i == 1 ? "shg0" : "shg0.1"));
        NETNS_CHECK(netns_sh("ip link add %s address fe:%s type veth peer name gp%d address %s",
                             i == 1 ? tap1 : tap2, mac + 3, i, mac) == 0);
        NETNS_CHECK(netns_sh("ip link set %s master %s up", i == 1 ? tap1 : tap2, br) == 0);
        NETNS_CHECK(netns_sh("ip link set gp%d netns %s-g%d", i, ns, i) == 0);
        NETNS_CHECK(
            netns_sh("ip -n %s-g%d addr add %s/24 dev gp%d", ns, i, i == 1 ? IP1 : IP2, i) == 0);
        NETNS_CHECK(netns_sh("ip -n %s-g%d link set gp%d up", ns, i, i) == 0);
        /* no IPv6 of their own: the IPv6 case sends its frame itself */
        netns_sh("ip netns exec %s-g%d sysctl -q -w net.ipv6.conf.gp%d.disable_ipv6=1", ns, i, i);
    }
}

static void ports(struct guard_port p[2])
{
    char err[256], m[18];
    mac_str(MAC1, m);
    NETNS_CHECK(guard_port_init(&p[0], ID1, m, ntohl(inet_addr(IP1)), err, sizeof err) == GUARD_OK);
    mac_str(MAC2, m);
    NETNS_CHECK(guard_port_init(&p[1], ID2, m, ntohl(inet_addr(IP2)), err, sizeof err) == GUARD_OK);
}

static void normal_traffic(void)
{
    char m1[18], m2[18], gw[18];
    mac_str(MAC1, m1);
    mac_str(MAC2, m2);
    mac_str(gw_mac, gw);
    NETNS_CHECK(ping_from("g1", GW) == 0);
    NETNS_CHECK(ping_from("g2", GW) == 0);
    NETNS_CHECK(ping_from("g1", IP2) == 0); /* across the links shg0.1-m/-o */
    NETNS_CHECK(ping_from("", IP1) == 0);
    NETNS_CHECK(ping_from("", IP2) == 0);
    NETNS_CHECK(!strcmp(neigh("", IP1), m1));
    NETNS_CHECK(!strcmp(neigh("", IP2), m2));
    NETNS_CHECK(is_gw_mac(neigh("g2", GW)));
    NETNS_CHECK(!strcmp(neigh("g2", IP1), m1));
}

/* ---- what a guest reaches on the host (table inet shoal) ---------------- */

/* A listener of the host on 0.0.0.0:port (TCP, or UDP when udp). */
static int host_listener(int port, int udp)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int one = 1, fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
    NETNS_CHECK(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    NETNS_CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    NETNS_CHECK(udp || listen(fd, 16) == 0);
    return fd;
}

/* Can guest 1 open a TCP connection to the host's address `ip`:port? A
 * dropped SYN shows as the 1.5 s timeout. */
static int guest_reaches_tcp(const char *ip, int port)
{
    return netns_sh("ip netns exec %s-g1 python3 -c \"import socket; "
                    "socket.create_connection(('%s', %d), timeout=1.5)\"",
                    ns, ip, port) == 0;
}

/* Does a datagram from guest 1 (from sport) reach the host's udp listener? */
static int guest_reaches_udp(int lfd, int sport, int dport)
{
    char b[16];
    struct pollfd pf = { lfd, POLLIN, 0 };
    while (recv(lfd, b, sizeof b, MSG_DONTWAIT) > 0)
        ;
    netns_sh("ip netns exec %s-g1 python3 -c \"import socket; s = socket.socket(socket.AF_INET, "
             "socket.SOCK_DGRAM); s.bind(('%s', %d)); s.sendto(b'hi', ('%s', %d))\"",
             ns, IP1, sport, GW, dport);
    return poll(&pf, 1, 1000) == 1 && recv(lfd, b, sizeof b, 0) == 2;
}

/* Can the host open a connection to a listener in guest 1 (what the
 * published-port proxy does)? */
static int host_reaches_guest(int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int fd, ok = 0, e = 0;
    socklen_t l = sizeof e;
    struct pollfd pf;
    netns_sh("ip netns exec %s-g1 python3 -c \"import socket, time; s = socket.socket(); "
             "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', %d)); "
             "s.listen(); time.sleep(3)\" &",
             ns, port);
    inet_pton(AF_INET, IP1, &sa.sin_addr);
    for (int i = 0; i < 40 && !ok; i++) {
        usleep(100000);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        NETNS_CHECK(fd >= 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            ok = 1;
        } else if (errno == EINPROGRESS) {
            pf.fd = fd;
            pf.events = POLLOUT;
            pf.revents = 0;
            ok = poll(&pf, 1, 1000) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) == 0 &&
                 e == 0;
        }
        close(fd);
    }
    return ok;
}

static void host_exposure(int guarded, int tcp_fd, int udp67_fd, int udp_other_fd)
{
    (void)tcp_fd;
    fprintf(stderr, "  host service on the bridge address from a guest: %s\n",
            guarded ? "expect dropped" : "expect reached");
    NETNS_CHECK(guest_reaches_tcp(GW, 17878) == !guarded);
    NETNS_CHECK(guest_reaches_udp(udp_other_fd, 5000, 17879) == !guarded);
    /* DHCP and ping of the gateway stay, and so do connections the host
     * opens to a guest */
    NETNS_CHECK(guest_reaches_udp(udp67_fd, 68, 67));
    NETNS_CHECK(ping_from("g1", GW) == 0);
    NETNS_CHECK(host_reaches_guest(guarded ? 18081 : 18080));
}

static void attacks(void)
{
    struct netbr_set *s = NULL;
    struct guard *g = NULL;
    struct guard_port p[2];
    char err[1024], out[8192];
    struct frame f;
    const unsigned char other[6] = { 0x02, 0xde, 0xad, 0xbe, 0xef, 0x01 };
    const unsigned char v6mc[6] = { 0x33, 0x33, 0, 0, 0, 1 };
    int h, g2;

    NETNS_CHECK(netbr_set_open("shg0", GW, 24, 2, 1, &s, err, sizeof err) == NETBR_OK);
    make_guests(s);
    NETNS_CHECK(netns_sh_out(out, sizeof out, "ip -o link show dev shg0") == 0);
    NETNS_CHECK(strstr(out, "link/ether ") &&
                parse_mac(strstr(out, "link/ether ") + 11, gw_mac) == 0);
    NETNS_CHECK(netns_sh_out(out, sizeof out, "ip -o link show dev shg0.1") == 0);
    NETNS_CHECK(strstr(out, "link/ether ") &&
                parse_mac(strstr(out, "link/ether ") + 11, over_mac) == 0);
    tx1 = packet_socket("g1", "gp1");
    rx_g1 = packet_socket("g1", "gp1");
    rx_g2 = packet_socket("g2", "gp2");
    rx_host = packet_socket("", "shg0");

    int svc_tcp = host_listener(17878, 0), svc_udp67 = host_listener(67, 1),
        svc_udp = host_listener(17879, 1);
    fprintf(stderr, "without the table:\n");
    normal_traffic();
    host_exposure(0, svc_tcp, svc_udp67, svc_udp);
    arp_attacks(0);
    arp_delivery(0);
    NETNS_CHECK(udp_gets_through(MAC2, IP2, "forged source MAC and IP (guest 2's)"));
    NETNS_CHECK(flood_seen());
    netns_sh("ip neigh flush all");
    netns_sh("ip -n %s-g2 neigh flush all", ns);

    ports(p);
    NETNS_CHECK(guard_open("shg0", p, 2, &g, err, sizeof err) == GUARD_OK);
    NETNS_CHECK(guard_count(g) == 2);
    fprintf(stderr, "with the table:\n");
    normal_traffic();
    host_exposure(1, svc_tcp, svc_udp67, svc_udp);
    /* with --dhcp off, DHCP to the host is dropped too */
    guard_set_host_dhcp(0);
    {
        struct guard *g0 = NULL;
        NETNS_CHECK(guard_open("shg0", p, 2, &g0, err, sizeof err) == GUARD_OK);
        NETNS_CHECK(!guest_reaches_udp(svc_udp67, 68, 67));
        guard_close(g0);
    }
    guard_set_host_dhcp(1);
    guard_close(g);
    g = NULL;
    NETNS_CHECK(guard_open("shg0", p, 2, &g, err, sizeof err) == GUARD_OK); /* back */
    NETNS_CHECK(guest_reaches_udp(svc_udp67, 68, 67));
    close(svc_tcp);
    close(svc_udp67);
    close(svc_udp);
    arp_attacks(1);
    arp_delivery(1);

    /* IPv4: only the guest's own MAC and address */
    NETNS_CHECK(udp_gets_through(MAC1, IP1, "control: own MAC and address"));
    NETNS_CHECK(!udp_gets_through(MAC2, IP1, "forged source MAC (guest 2's)"));
    NETNS_CHECK(!udp_gets_through(other, IP1, "forged source MAC (unknown)"));
    NETNS_CHECK(!udp_gets_through(MAC1, IP2, "forged source IP (guest 2's)"));
    NETNS_CHECK(!udp_gets_through(MAC1, GW, "forged source IP (the gateway's)"));
    NETNS_CHECK(!udp_gets_through(MAC1, "10.66.0.99", "forged source IP (unassigned)"));
    NETNS_CHECK(!udp_gets_through(MAC1, "192.0.2.1", "forged source IP (off the subnet)"));
    NETNS_CHECK(!udp_gets_through(MAC2, IP2, "forged source MAC and IP (guest 2's)"));
    /* the bridge did not learn guest 2's MAC on guest 1's port */
    NETNS_CHECK(netns_sh_out(out, sizeof out, "bridge fdb show dev %s", tap1) == 0);
    NETNS_CHECK(!strstr(out, "5a:5c:00:00:a0:02"));

    /* a DHCP server's answer from a guest, even from its own address: a
     * rogue offer to another guest could name any gateway */
    eth(&f, BCAST, MAC1, ETHERTYPE_IP);
    ipv4_udp(&f, IP1, "255.255.255.255", 67, 68, "shoal-guard-dhcp-offer");
    sent_seen(&f, "shoal-guard-dhcp-offer", &h, &g2);
    fprintf(stderr, "  %-58s host %s, guest 2 %s\n", "DHCP answer from a guest (own address)",
            h ? "saw it" : "-", g2 ? "saw it" : "-");
    NETNS_CHECK(!h && !g2);

    /* DHCP before an address: from 0.0.0.0:68 to the broadcast :67 only */
    eth(&f, BCAST, MAC1, ETHERTYPE_IP);
    ipv4_udp(&f, "0.0.0.0", "255.255.255.255", 68, 67, "shoal-guard-dhcp-ok");
    sent_seen(&f, "shoal-guard-dhcp-ok", &h, &g2);
    fprintf(stderr, "  %-58s host %s\n", "DHCP discover from 0.0.0.0", h ? "saw it" : "-");
    NETNS_CHECK(h);
    eth(&f, BCAST, MAC1, ETHERTYPE_IP);
    ipv4_udp(&f, "0.0.0.0", "10.66.0.255", 68, 67, "shoal-guard-dhcp-1");
    sent_seen(&f, "shoal-guard-dhcp-1", &h, &g2);
    NETNS_CHECK(!h && !g2);
    eth(&f, BCAST, MAC1, ETHERTYPE_IP);
    ipv4_udp(&f, "0.0.0.0", "255.255.255.255", 40000, 9, "shoal-guard-dhcp-2");
    sent_seen(&f, "shoal-guard-dhcp-2", &h, &g2);
    NETNS_CHECK(!h && !g2);
    eth(&f, BCAST, other, ETHERTYPE_IP);
    ipv4_udp(&f, "0.0.0.0", "255.255.255.255", 68, 67, "shoal-guard-dhcp-3");
    sent_seen(&f, "shoal-guard-dhcp-3", &h, &g2);
    NETNS_CHECK(!h && !g2);

    /* IPv6 (all-nodes multicast; a minimal header, then the marker) */
    eth(&f, v6mc, MAC1, 0x86dd);
    put(&f, (unsigned char[]){ 0x60, 0, 0, 0, 0, 24, 59, 255 }, 8);
    put(&f, (unsigned char[16]){ 0xfe, 0x80, [8] = 0x58, 0x5c, 0, 0xff, 0xfe, 0, 0xa0, 1 }, 16);
    put(&f, (unsigned char[16]){ 0xff, 0x02, [15] = 1 }, 16);
    put(&f, "shoal-guard-ipv6--------", 24);
    sent_seen(&f, "shoal-guard-ipv6", &h, &g2);
    fprintf(stderr, "  %-58s host %s, guest 2 %s\n", "IPv6 from own MAC", h ? "saw it" : "-",
            g2 ? "saw it" : "-");
    NETNS_CHECK(!h && !g2);
    /* VLAN-tagged IPv4 from own MAC and address */
    eth(&f, BCAST, MAC1, 0x8100);
    put16(&f, 5);
    put16(&f, ETHERTYPE_IP);
    ipv4_udp(&f, IP1, "10.66.0.255", 40000, 9, "shoal-guard-vlan");
    sent_seen(&f, "shoal-guard-vlan", &h, &g2);
    fprintf(stderr, "  %-58s host %s, guest 2 %s\n", "VLAN-tagged IPv4 from own MAC/IP",
            h ? "saw it" : "-", g2 ? "saw it" : "-");
    NETNS_CHECK(!h && !g2);
    /* another ethertype (local experimental), and an 802.3 frame */
    eth(&f, BCAST, MAC1, 0x88b5);
    put(&f, "shoal-guard-88b5", 16);
    sent_seen(&f, "shoal-guard-88b5", &h, &g2);
    NETNS_CHECK(!h && !g2);
    eth(&f, BCAST, MAC1, 46);
    put(&f, (unsigned char[]){ 0xaa, 0xaa, 0x03, 0, 0, 0, 0x88, 0xb5 }, 8);
    put(&f, "shoal-guard-8023------------------------", 38);
    sent_seen(&f, "shoal-guard-8023", &h, &g2);
    NETNS_CHECK(!h && !g2);

    /* To a guest: no flooded unicast for another MAC; its own arrives. */
    NETNS_CHECK(!flood_seen());
    NETNS_CHECK(unicast_seen());

    /* A tap without elements sends nothing; with them again it does. */
    NETNS_CHECK(guard_remove(g, tap1, err, sizeof err) == GUARD_OK);
    NETNS_CHECK(guard_remove(g, tap1, err, sizeof err) == GUARD_OK); /* not there: fine */
    NETNS_CHECK(guard_count(g) == 1);
    NETNS_CHECK(!udp_gets_through(MAC1, IP1, "own MAC and address, port removed"));
    NETNS_CHECK(ping_from("g1", GW) != 0);
    NETNS_CHECK(guard_add(g, &p[0], err, sizeof err) == GUARD_OK);
    NETNS_CHECK(guard_add(g, &p[0], err, sizeof err) == GUARD_OK); /* idempotent */
    NETNS_CHECK(guard_count(g) == 2);
    NETNS_CHECK(udp_gets_through(MAC1, IP1, "own MAC and address, port added again"));
    NETNS_CHECK(ping_from("g1", GW) == 0);

    /* A shoald restart: the table is replaced while traffic flows, in one
     * transaction: no frame of a steady ping is lost. */
    FILE *pp = popen("ip netns exec $NS-g1 ping -q -c 150 -i 0.01 -W 1 " GW " 2>&1", "r");
    NETNS_CHECK(pp);
    for (int i = 0; i < 5; i++) {
        guard_close(g);
        g = NULL;
        NETNS_CHECK(guard_open("shg0", p, 2, &g, err, sizeof err) == GUARD_OK);
        usleep(100 * 1000);
    }
    size_t n = fread(out, 1, sizeof out - 1, pp);
    out[n] = '\0';
    pclose(pp);
    fprintf(stderr, "  ping during 5 re-opens: %s",
            strstr(out, "150 packets") ? strstr(out, "150 packets") : out);
    NETNS_CHECK(strstr(out, " 0% packet loss"));
    NETNS_CHECK(!udp_gets_through(MAC1, IP2, "forged source IP after re-open"));

    /* Someone flushed the ruleset: guard_verify writes the table again, and
     * so does a guard_add that finds it gone. */
    int rebuilt = 0;
    NETNS_CHECK(guard_verify(g, &rebuilt, err, sizeof err) == GUARD_OK && rebuilt == 0);
    NETNS_CHECK(netns_sh("nft flush ruleset") == 0);
    NETNS_CHECK(udp_gets_through(MAC1, IP2, "forged source IP, table flushed (unguarded)"));
    NETNS_CHECK(guard_verify(g, &rebuilt, err, sizeof err) == GUARD_OK && rebuilt == 1);
    NETNS_CHECK(!udp_gets_through(MAC1, IP2, "forged source IP after guard_verify"));
    /* Only the host-input table deleted: guests reach the host again until
     * guard_verify notices and writes both back. */
    {
        int svc = host_listener(17880, 0);
        NETNS_CHECK(netns_sh("nft delete table inet shoal") == 0);
        NETNS_CHECK(guest_reaches_tcp(GW, 17880));
        NETNS_CHECK(guard_verify(g, &rebuilt, err, sizeof err) == GUARD_OK && rebuilt == 1);
        NETNS_CHECK(netns_sh("nft list table inet shoal") == 0);
        NETNS_CHECK(!guest_reaches_tcp(GW, 17880));
        close(svc);
        fprintf(stderr, "  table inet shoal deleted alone: rewritten by guard_verify\n");
    }
    NETNS_CHECK(netns_sh("nft flush ruleset") == 0);
    struct guard_port p3;
    NETNS_CHECK(guard_port_init(&p3, "00000000a003", "5a:5c:00:00:a0:03",
                                ntohl(inet_addr("10.66.0.4")), err, sizeof err) == GUARD_OK);
    NETNS_CHECK(guard_add(g, &p3, err, sizeof err) == GUARD_OK);
    NETNS_CHECK(guard_count(g) == 3);
    {
        uint64_t nl = 0, fb = 0; /* netlink found no table: nft, counted */
        guard_stats(g, &nl, &fb);
        NETNS_CHECK(nl == 0 && fb == 1);
    }
    NETNS_CHECK(!udp_gets_through(MAC1, IP2, "forged source IP after guard_add rebuilt"));
    NETNS_CHECK(udp_gets_through(MAC1, IP1, "own MAC and address after guard_add rebuilt"));
    NETNS_CHECK(netns_sh_out(out, sizeof out, "nft list set bridge shoal addrs") == 0);
    NETNS_CHECK(strstr(out, "\"sh00000000a003\" . 5a:5c:00:00:a0:03 . 10.66.0.4"));
    NETNS_CHECK(strstr(out, "\"sh00000000a001\" . 5a:5c:00:00:a0:01 . 10.66.0.2"));

    /* guard_close leaves the table (guests outlive shoald). */
    guard_close(g);
    NETNS_CHECK(netns_sh("nft list table bridge shoal") == 0);
    NETNS_CHECK(!udp_gets_through(MAC1, IP2, "forged source IP after guard_close"));
    close(tx1);
    close(rx_g1);
    close(rx_g2);
    close(rx_host);
    netbr_set_close(s);
    exit(0); /* not _exit: LeakSanitizer checks the child */
}

/* Errors: nft's words come back; nothing is half-written. */
static void errors(void)
{
    struct guard *g = NULL;
    struct guard_port p;
    char err[1024];
    NETNS_CHECK(guard_port_init(&p, "00000000b001", "5a:5c:00:00:b0:01",
                                ntohl(inet_addr("10.67.0.2")), err, sizeof err) == GUARD_OK);
    NETNS_CHECK(guard_open("bad name", &p, 1, &g, err, sizeof err) == GUARD_E_INVAL);
    NETNS_CHECK(strstr(err, "'bad name'"));
    NETNS_CHECK(!g);
    NETNS_CHECK(guard_open("shg1", &p, 1, &g, err, sizeof err) == GUARD_OK);
    struct guard_port bad = p;
    snprintf(bad.tap, sizeof bad.tap, "eth0");
    NETNS_CHECK(guard_add(g, &bad, err, sizeof err) == GUARD_E_INVAL);
    NETNS_CHECK(guard_count(g) == 1);
    guard_close(g);

    /* The same tap twice: the later one is kept. And guard_add of a known
     * tap with other values replaces its elements. */
    struct guard_port q[3];
    char out[4096];
    NETNS_CHECK(guard_port_init(&q[0], "00000000b001", "5a:5c:00:00:b0:01",
                                ntohl(inet_addr("10.67.0.2")), err, sizeof err) == GUARD_OK);
    NETNS_CHECK(guard_port_init(&q[1], "00000000b002", "5a:5c:00:00:b0:02",
                                ntohl(inet_addr("10.67.0.3")), err, sizeof err) == GUARD_OK);
    NETNS_CHECK(guard_port_init(&q[2], "00000000b001", "5a:5c:00:00:b0:01",
                                ntohl(inet_addr("10.67.0.9")), err, sizeof err) == GUARD_OK);
    NETNS_CHECK(guard_open("shg1", q, 3, &g, err, sizeof err) == GUARD_OK);
    NETNS_CHECK(guard_count(g) == 2);
    NETNS_CHECK(netns_sh_out(out, sizeof out, "nft list set bridge shoal addrs") == 0);
    NETNS_CHECK(strstr(out, "10.67.0.9") && !strstr(out, "10.67.0.2"));
    NETNS_CHECK(guard_port_init(&q[2], "00000000b002", "5a:5c:00:00:b0:0f",
                                ntohl(inet_addr("10.67.0.4")), err, sizeof err) == GUARD_OK);
    NETNS_CHECK(guard_add(g, &q[2], err, sizeof err) == GUARD_OK);
    NETNS_CHECK(guard_count(g) == 2);
    NETNS_CHECK(netns_sh_out(out, sizeof out, "nft list table bridge shoal") == 0);
    NETNS_CHECK(strstr(out, "5a:5c:00:00:b0:0f . 10.67.0.4") && !strstr(out, "10.67.0.3") &&
                !strstr(out, "5a:5c:00:00:b0:02"));
    NETNS_CHECK(strstr(out, "\"sh00000000b002\" . 10.67.0.4")); /* dests too */
    /* That add went as one netlink batch, not through nft (/metrics'
     * shoal_guard_nft_fallbacks_total stays 0) ... */
    uint64_t nl = 0, fb = 0;
    guard_stats(g, &nl, &fb);
    NETNS_CHECK(nl == 1 && fb == 0);
    guard_close(g);
    /* ... and with SHOAL_GUARD_NETLINK=off through nft, counted. */
    setenv("SHOAL_GUARD_NETLINK", "off", 1);
    NETNS_CHECK(guard_open("shg1", q, 2, &g, err, sizeof err) == GUARD_OK);
    NETNS_CHECK(guard_port_init(&q[2], "00000000b002", "5a:5c:00:00:b0:0e",
                                ntohl(inet_addr("10.67.0.5")), err, sizeof err) == GUARD_OK);
    NETNS_CHECK(guard_add(g, &q[2], err, sizeof err) == GUARD_OK);
    NETNS_CHECK(netns_sh_out(out, sizeof out, "nft list table bridge shoal") == 0);
    NETNS_CHECK(strstr(out, "5a:5c:00:00:b0:0e . 10.67.0.5"));
    guard_stats(g, &nl, &fb);
    NETNS_CHECK(nl == 0 && fb == 1);
    unsetenv("SHOAL_GUARD_NETLINK");
    guard_close(g);
    exit(0);
}

/* ---- harness ---- */

static void in_netns(const char *tag, void (*body)(void))
{
    char why[256];
    snprintf(ns, sizeof ns, "shoal-grd-%d", (int)getpid());
    setenv("NS", ns, 1);
    if (netns_run(ns, 2, body, NULL, why, sizeof why) != 0)
        SHOAL_SKIP("%s: %s", tag, why);
}

static void attacks_in_netns(void **state)
{
    (void)state;
    in_netns("attacks", attacks);
}

static void errors_in_netns(void **state)
{
    (void)state;
    in_netns("errors", errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(attacks_in_netns),
        cmocka_unit_test(errors_in_netns),
    };
    return shoal_test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
