/*
 * guard.c - the guest bridges' anti-spoofing table, written through `nft -f -`
 * (see guard.h).
 */
#include "guard.h"
#include "child.h"
#include "domxml.h"
#include "errbuf.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- names and values ------------------------------------------------- */

static int is_hex12(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return n == 12;
}

void guard_tap_name(const char *id, char out[GUARD_TAP_SIZE])
{
    if (id && is_hex12(id)) {
        snprintf(out, GUARD_TAP_SIZE, GUARD_TAP_PREFIX "%s", id);
        return;
    }
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
    for (const unsigned char *p = (const unsigned char *)(id ? id : ""); *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    snprintf(out, GUARD_TAP_SIZE, GUARD_TAP_PREFIX "%012llx",
             (unsigned long long)(h & 0xffffffffffffull));
}

/* A tap name as guard_tap_name makes them: the prefix and 12 hex digits. */
static int valid_tap(const char *s)
{
    return s && !strncmp(s, GUARD_TAP_PREFIX, strlen(GUARD_TAP_PREFIX)) &&
           is_hex12(s + strlen(GUARD_TAP_PREFIX));
}

static int valid_ipv4(uint32_t a)
{
    uint32_t top = a >> 24;
    return a == 0 || (top != 0 && top != 127 && top < 224);
}

static const char *ip4_str(uint32_t a, char buf[16])
{
    snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
    return buf;
}

/* Quote a possibly odd value for a message: printable ASCII, else \xNN. */
static const char *quote(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    if (!s)
        return "(null)";
    for (size_t i = 0; s[i] && o + 5 < outlen && i < 64; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
    }
    out[o] = '\0';
    return out;
}

int guard_port_init(struct guard_port *p, const char *id, const char *mac, uint32_t ipv4, char *err,
                    size_t errlen)
{
    char q[300], ip[16];

    memset(p, 0, sizeof *p);
    if (!id || !id[0]) {
        errbuf_set(err, errlen, "guard: no instance id");
        return GUARD_E_INVAL;
    }
    if (!domxml_valid_mac(mac)) {
        errbuf_set(err, errlen, "guard: invalid MAC '%s' (unicast xx:xx:xx:xx:xx:xx)",
                   quote(mac, q, sizeof q));
        return GUARD_E_INVAL;
    }
    if (!valid_ipv4(ipv4)) {
        errbuf_set(err, errlen, "guard: address '%s' cannot be a guest's", ip4_str(ipv4, ip));
        return GUARD_E_INVAL;
    }
    guard_tap_name(id, p->tap);
    for (size_t i = 0; i < GUARD_MAC_STRLEN - 1; i++)
        p->mac[i] = (char)(mac[i] >= 'A' && mac[i] <= 'F' ? mac[i] - 'A' + 'a' : mac[i]);
    p->ipv4 = ipv4;
    return GUARD_OK;
}

static int check_port(const struct guard_port *p, char *err, size_t errlen)
{
    char q[300], ip[16];
    if (!valid_tap(p->tap)) {
        errbuf_set(err, errlen, "guard: invalid tap name '%s' (" GUARD_TAP_PREFIX " + 12 hex)",
                   quote(p->tap, q, sizeof q));
        return GUARD_E_INVAL;
    }
    if (!domxml_valid_mac(p->mac)) {
        errbuf_set(err, errlen, "guard: invalid MAC '%s' for tap '%s'", quote(p->mac, q, sizeof q),
                   p->tap);
        return GUARD_E_INVAL;
    }
    if (!valid_ipv4(p->ipv4)) {
        errbuf_set(err, errlen, "guard: address '%s' cannot be a guest's", ip4_str(p->ipv4, ip));
        return GUARD_E_INVAL;
    }
    return GUARD_OK;
}

/* ---- rendering -------------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

static void buf_fmt(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_fmt(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->oom)
        return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static int buf_done(struct buf *b, char **out, char *err, size_t errlen)
{
    if (b->oom || !b->p) {
        free(b->p);
        errbuf_set(err, errlen, "guard: out of memory");
        return GUARD_E_NOMEM;
    }
    *out = b->p;
    return GUARD_OK;
}

static void elem_port(struct buf *b, const struct guard_port *p)
{
    buf_fmt(b, "\"%s\" . %s", p->tap, p->mac);
}

static void elem_addr(struct buf *b, const struct guard_port *p)
{
    char ip[16];
    buf_fmt(b, "\"%s\" . %s . %s", p->tap, p->mac, ip4_str(p->ipv4, ip));
}

static void elem_dest(struct buf *b, const struct guard_port *p)
{
    char ip[16];
    buf_fmt(b, "\"%s\" . %s", p->tap, ip4_str(p->ipv4, ip));
}

/* "elements = { a, b, ... }" lines of one set (ELEM's); the addrs and
 * dests sets hold only ports with an address. Nothing when empty. */
static void set_elements(struct buf *b, const struct guard_port *ports, size_t n,
                         void (*elem)(struct buf *, const struct guard_port *))
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (elem != elem_port && !ports[i].ipv4)
            continue;
        buf_fmt(b, k ? ",\n\t\t\t" : "\t\telements = {\n\t\t\t");
        elem(b, &ports[i]);
        k++;
    }
    if (k)
        buf_fmt(b, "\n\t\t}\n");
}

static atomic_int host_dhcp = 1;
/* SHOAL_GUARD_NETLINK=off: every change through nft (for comparisons). */
static atomic_int no_netlink = 0;

void guard_set_host_dhcp(int on)
{
    atomic_store(&host_dhcp, on != 0);
}

int guard_render_table(const char *bridge, const struct guard_port *ports, size_t n, char **out,
                       char *err, size_t errlen)
{
    struct buf b = { 0 };
    char q[300];
    int rc;

    *out = NULL;
    if (!domxml_valid_bridge(bridge)) {
        errbuf_set(err, errlen, "guard: invalid bridge name '%s'", quote(bridge, q, sizeof q));
        return GUARD_E_INVAL;
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = check_port(&ports[i], err, errlen)) != GUARD_OK)
            return rc;

    /* ARP for Ethernet and IPv4 only: other sizes would move the fields
     * the rules read (and Linux ignores such ARP on Ethernet anyway). */
    const char *arp = "ether type arp arp htype 1 arp ptype ip arp hlen 6 arp plen 4";
    buf_fmt(&b, "# shoald: guest isolation (daemon/guard.h, docs/node.md \"Guest isolation\")\n"
                "add table " GUARD_FAMILY " " GUARD_TABLE "\n"
                "delete table " GUARD_FAMILY " " GUARD_TABLE "\n"
                "table " GUARD_FAMILY " " GUARD_TABLE " {\n"
                "\tset " GUARD_SET_PORTS " {\n"
                "\t\ttype ifname . ether_addr\n");
    set_elements(&b, ports, n, elem_port);
    buf_fmt(&b, "\t}\n"
                "\tset " GUARD_SET_ADDRS " {\n"
                "\t\ttype ifname . ether_addr . ipv4_addr\n");
    set_elements(&b, ports, n, elem_addr);
    buf_fmt(&b, "\t}\n"
                "\tset " GUARD_SET_DESTS " {\n"
                "\t\ttype ifname . ipv4_addr\n");
    set_elements(&b, ports, n, elem_dest);
    buf_fmt(&b, "\t}\n");
    /* From a guest port: only its own sources, and never a DHCP server's
     * port (a guest answering another's DHCP request from its own address
     * could hand it a gateway of its choosing). The overflow links
     * (BRIDGE.K-m, BRIDGE.K-o) may match the tap prefix; a tap name never
     * holds a '.', so "BRIDGE.*" exempts the links and nothing else. */
    buf_fmt(&b,
            "\tchain ingress {\n"
            "\t\ttype filter hook prerouting priority %d; policy accept;\n"
            "\t\tiifname \"%s.*\" accept\n"
            "\t\tiifname \"" GUARD_TAP_PREFIX "*\" jump guest\n"
            "\t}\n"
            "\tchain guest {\n"
            "\t\tether type ip udp sport 67 counter drop\n"
            "\t\tether type ip iifname . ether saddr . ip saddr @" GUARD_SET_ADDRS " accept\n"
            "\t\tether type ip ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 "
            "iifname . ether saddr @" GUARD_SET_PORTS " accept\n"
            "\t\t%s arp operation { request, reply } iifname . ether saddr . arp saddr ip "
            "@" GUARD_SET_ADDRS " iifname . arp saddr ether @" GUARD_SET_PORTS " accept\n"
            "\t\t%s arp operation request arp saddr ip 0.0.0.0 iifname . ether saddr "
            "@" GUARD_SET_PORTS " iifname . arp saddr ether @" GUARD_SET_PORTS " accept\n"
            "\t\tcounter drop\n"
            "\t}\n",
            GUARD_PRIORITY, bridge, arp, arp);
    /* To a guest port: no unicast for another MAC (flooded unknown
     * unicast), and no ARP about another address. The bridge floods every
     * ARP request to every port: each guest's boot announcement and each
     * first connection of the host to a guest woke all guests on the
     * bridge, 0.44 ms of QEMU's CPU each under TCG, so ~0.4 s per start at
     * 900 guests (docs/benchmarks.md "ARP fan-out"). A guest answers ARP
     * for its own address only; a port without one gets none. */
    buf_fmt(&b,
            "\tchain egress {\n"
            "\t\ttype filter hook postrouting priority %d; policy accept;\n"
            "\t\toifname \"%s.*\" accept\n"
            "\t\toifname \"" GUARD_TAP_PREFIX "*\" ether daddr & 01:00:00:00:00:00 == "
            "00:00:00:00:00:00 oifname . ether daddr != @" GUARD_SET_PORTS " counter drop\n"
            "\t\toifname \"" GUARD_TAP_PREFIX "*\" %s oifname . arp daddr ip != @" GUARD_SET_DESTS
            " counter drop\n"
            "\t}\n"
            "}\n",
            GUARD_PRIORITY, bridge, arp);
    /* What guests reach on the host itself (issue 16): IP that arrives on
     * one of the bridges for a local address. Only replies to what the
     * host opened (published ports connect from the host to the guest),
     * DHCP (when shoald serves it) and ping; everything else, the API and
     * other guests' published ports on the bridge address included, is
     * dropped. Forwarded traffic is not input and is not touched. */
    buf_fmt(&b,
            "add table " GUARD_INPUT_FAMILY " " GUARD_TABLE "\n"
            "delete table " GUARD_INPUT_FAMILY " " GUARD_TABLE "\n"
            "table " GUARD_INPUT_FAMILY " " GUARD_TABLE " {\n"
            "\tchain input {\n"
            "\t\ttype filter hook input priority %d; policy accept;\n"
            "\t\tiifname \"%s\" jump guest_in\n"
            "\t\tiifname \"%s.*\" jump guest_in\n"
            "\t}\n"
            "\tchain guest_in {\n"
            "\t\tct state established,related accept\n"
            "%s"
            "\t\ticmp type echo-request accept\n"
            "\t\tcounter drop\n"
            "\t}\n"
            "}\n",
            GUARD_INPUT_PRIORITY, bridge, bridge,
            atomic_load(&host_dhcp) ? "\t\tudp sport 68 udp dport 67 accept\n" : "");
    return buf_done(&b, out, err, errlen);
}

static void change_one(struct buf *b, int add, const char *set, const struct guard_port *p,
                       void (*elem)(struct buf *, const struct guard_port *))
{
    buf_fmt(b, "add element " GUARD_FAMILY " " GUARD_TABLE " %s { ", set);
    elem(b, p);
    buf_fmt(b, " }\n");
    if (!add) {
        buf_fmt(b, "delete element " GUARD_FAMILY " " GUARD_TABLE " %s { ", set);
        elem(b, p);
        buf_fmt(b, " }\n");
    }
}

int guard_render_change(int add, const struct guard_port *ports, size_t n, char **out, char *err,
                        size_t errlen)
{
    struct buf b = { 0 };
    int rc;

    *out = NULL;
    for (size_t i = 0; i < n; i++)
        if ((rc = check_port(&ports[i], err, errlen)) != GUARD_OK)
            return rc;
    buf_fmt(&b, "%s", "");
    for (size_t i = 0; i < n; i++) {
        change_one(&b, add, GUARD_SET_PORTS, &ports[i], elem_port);
        if (ports[i].ipv4) {
            change_one(&b, add, GUARD_SET_ADDRS, &ports[i], elem_addr);
            change_one(&b, add, GUARD_SET_DESTS, &ports[i], elem_dest);
        }
    }
    return buf_done(&b, out, err, errlen);
}

/* ---- running nft ------------------------------------------------------ */

static const char *nft_path(void)
{
    static const char *cands[] = { "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft" };
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++)
        if (access(cands[i], X_OK) == 0)
            return cands[i];
    return "nft"; /* child_run searches PATH */
}

/*
 * Run `nft ARGS` with `script` (may be NULL) on stdin; its stdout and stderr
 * go to out[outlen] (trailing newlines trimmed). Returns nft's exit status,
 * or -1 if it could not be run (out says why).
 */
static int run_nft(const char *const args[], const char *script, char *out, size_t outlen)
{
    const char *argv[8];
    struct child_opts o = {
        .in = script, .inlen = script ? strlen(script) : 0, .out = out, .outlen = outlen
    };
    struct child_result r;
    char why[256];
    size_t argc = 0;
    int rc;

    argv[argc++] = nft_path();
    for (size_t i = 0; args[i] && argc + 1 < sizeof argv / sizeof argv[0]; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    rc = child_run((char *const *)argv, &o, &r, why, sizeof why);
    if (rc == CHILD_E_START)
        snprintf(out, outlen, "cannot run '%s': %s (install nftables)", argv[0], strerror(r.error));
    else if (rc != CHILD_OK)
        snprintf(out, outlen, "%s", why);
    if (rc != CHILD_OK)
        return -1;
    rc = child_exit_code(r.status);
    if (rc == -1)
        snprintf(out, outlen, "nft killed by signal %d", WTERMSIG(r.status));
    child_chomp(out);
    return rc;
}

/* Run a script with `nft -f -`; GUARD_E_NFT with nft's words on failure. */
static int nft_apply(const char *what, const char *script, char *err, size_t errlen)
{
    static const char *const args[] = { "-f", "-", NULL };
    char out[2048];
    int rc = run_nft(args, script, out, sizeof out);
    if (rc == 0)
        return GUARD_OK;
    /* nft's message spans lines (error, the line, a caret): one line. */
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    errbuf_set(err, errlen, "guard: %s: nft %s%s", what,
               rc < 0 ? "" : "refused the change: ", out[0] ? out : "failed");
    return GUARD_E_NFT;
}

/* ---- the guard -------------------------------------------------------- */

struct guard {
    pthread_mutex_t mu; /* held across each nft run; a leaf lock */
    char bridge[GUARD_TAP_SIZE];
    struct guard_port *port; /* what the sets hold, in no order */
    size_t n, cap;
    uint64_t netlink_adds, nft_fallbacks; /* guard_stats */
};

static int reserve(struct guard *g, size_t want)
{
    if (want <= g->cap)
        return 0;
    size_t cap = g->cap ? g->cap : 64;
    while (cap < want)
        cap *= 2;
    struct guard_port *p = realloc(g->port, cap * sizeof *p);
    if (!p)
        return -1;
    g->port = p;
    g->cap = cap;
    return 0;
}

static struct guard_port *find(struct guard *g, const char *tap)
{
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->port[i].tap, tap))
            return &g->port[i];
    return NULL;
}

/* Write the whole table from g's ports (mu held). */
static int rebuild(struct guard *g, char *err, size_t errlen)
{
    char *script = NULL;
    int rc = guard_render_table(g->bridge, g->port, g->n, &script, err, errlen);
    if (rc == GUARD_OK)
        rc = nft_apply("writing table " GUARD_FAMILY " " GUARD_TABLE, script, err, errlen);
    free(script);
    return rc;
}

/* qsort of indices into sort_base by tap name, then by index (the last of
 * equal names is kept). Per thread: guard_open may run in several. */
static _Thread_local const struct guard_port *sort_base;

static int by_tap_then_index(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = strcmp(sort_base[i].tap, sort_base[j].tap);
    return c ? c : (i > j) - (i < j);
}

int guard_open(const char *bridge, const struct guard_port *ports, size_t n, struct guard **out,
               char *err, size_t errlen)
{
    struct guard *g;
    size_t *order = NULL;
    char q[300];
    int rc;

    *out = NULL;
    const char *nl = getenv("SHOAL_GUARD_NETLINK");
    atomic_store(&no_netlink, nl && !strcmp(nl, "off"));
    if (!domxml_valid_bridge(bridge)) {
        errbuf_set(err, errlen, "guard: invalid bridge name '%s'", quote(bridge, q, sizeof q));
        return GUARD_E_INVAL;
    }
    if (!(g = calloc(1, sizeof *g))) {
        errbuf_set(err, errlen, "guard: out of memory");
        return GUARD_E_NOMEM;
    }
    pthread_mutex_init(&g->mu, NULL);
    snprintf(g->bridge, sizeof g->bridge, "%s", bridge);
    if (reserve(g, n) != 0) {
        errbuf_set(err, errlen, "guard: out of memory");
        rc = GUARD_E_NOMEM;
        goto fail;
    }
    /* One element per tap: a later duplicate replaces an earlier one.
     * Sorted first, so 65,000 ports are not 65,000 linear searches. */
    sort_base = ports;
    if (n > 1 && (order = malloc(n * sizeof *order))) {
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        qsort(order, n, sizeof *order, by_tap_then_index);
        for (size_t i = 0; i < n; i++)
            if (i + 1 == n || strcmp(ports[order[i]].tap, ports[order[i + 1]].tap) != 0)
                g->port[g->n++] = ports[order[i]];
        free(order);
    } else if (n > 1) {
        errbuf_set(err, errlen, "guard: out of memory");
        rc = GUARD_E_NOMEM;
        goto fail;
    } else if (n == 1) {
        g->port[g->n++] = ports[0];
    }
    if ((rc = rebuild(g, err, errlen)) != GUARD_OK)
        goto fail;
    *out = g;
    return GUARD_OK;
fail:
    guard_close(g);
    return rc;
}

/*
 * Whether the table is in the kernel: one NFT_MSG_GETTABLE for it on a
 * netfilter netlink socket, well under a millisecond. (nft 1.0.6 would
 * fetch every set element even for `nft list tables`: ~1 s with 10,000
 * guests, measured here.) 1 present, 0 absent, -1 could not tell (err).
 */
static int table_present_in(int family, char *err, size_t errlen)
{
    struct {
        struct nlmsghdr nh;
        struct nfgenmsg nf;
        char attrs[64];
    } req;
    char buf[8192];
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    int fd, rc = -1, got_table = 0;
    struct nlattr *a;
    static const char name[] = GUARD_TABLE;

    memset(&req, 0, sizeof req);
    req.nh.nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.nh.nlmsg_seq = 1;
    req.nf.nfgen_family = (uint8_t)family;
    req.nf.version = NFNETLINK_V0;
    a = (struct nlattr *)req.attrs;
    a->nla_type = NFTA_TABLE_NAME;
    a->nla_len = (uint16_t)(NLA_HDRLEN + sizeof name);
    memcpy((char *)a + NLA_HDRLEN, name, sizeof name);
    req.nh.nlmsg_len =
        (uint32_t)(NLMSG_LENGTH(sizeof req.nf) + NLA_ALIGN(NLA_HDRLEN + sizeof name));

    if ((fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER)) < 0) {
        errbuf_set(err, errlen, "guard: netfilter netlink socket: %s", strerror(errno));
        return -1;
    }
    if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
        errbuf_set(err, errlen, "guard: asking for the table: %s", strerror(errno));
        goto out;
    }
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            errbuf_set(err, errlen, "guard: reading the table: %s",
                       n < 0 ? strerror(errno) : "no answer");
            goto out;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                if (h->nlmsg_len < NLMSG_LENGTH(sizeof *e)) {
                    errbuf_set(err, errlen, "guard: short netlink error");
                    goto out;
                }
                if (e->error == 0 || e->error == -ENOENT) {
                    rc = e->error == 0 && got_table; /* the ack, or no table */
                    goto out;
                }
                errbuf_set(err, errlen, "guard: reading the table: %s", strerror(-e->error));
                goto out;
            }
            if (h->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE))
                got_table = 1;
        }
    }
out:
    close(fd);
    return rc;
}

/* Both tables (bridge: what guests send; inet: what they reach on the
 * host): 1 when both are there, 0 when either is gone, -1 when the kernel
 * could not be asked. */
static int table_present(char *err, size_t errlen)
{
    int b = table_present_in(NFPROTO_BRIDGE, err, errlen);
    if (b != 1)
        return b;
    return table_present_in(NFPROTO_INET, err, errlen);
}

/* ---- set elements through netlink ------------------------------------- */

/*
 * A start's change of the sets (guard_add) as one nf_tables batch on a
 * netfilter netlink socket, as `nft -f -` would send it: ~0.1 ms against
 * 3-20 ms for running nft (a process, its parser and cache) measured on a
 * loaded 2-core host, which was most of a warm pool claim (issue 15).
 * Keys are nft's concatenations: each field padded to 4 bytes, an ifname
 * 16 bytes (zero-padded), an ether_addr 6 (+2), an ipv4_addr 4 in network
 * order.
 */
#define NLB_SIZE 1024

struct nlb {
    char b[NLB_SIZE];
    size_t len;
    unsigned acks;
    int full;
};

/* A message at the end of m: its header and nfgenmsg; NULL when m is full. */
static struct nlmsghdr *nlb_msg(struct nlb *m, uint16_t type, uint16_t flags, uint8_t family)
{
    struct nlmsghdr *h = (struct nlmsghdr *)(m->b + m->len);
    struct nfgenmsg *nf;
    if (m->full || m->len + NLMSG_LENGTH(sizeof *nf) > sizeof m->b) {
        m->full = 1;
        return NULL;
    }
    memset(h, 0, NLMSG_LENGTH(sizeof *nf));
    h->nlmsg_len = (uint32_t)NLMSG_LENGTH(sizeof *nf);
    h->nlmsg_type = type;
    h->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
    h->nlmsg_seq = (uint32_t)m->len + 1;
    nf = NLMSG_DATA(h);
    nf->nfgen_family = family;
    nf->version = NFNETLINK_V0;
    ((uint8_t *)&nf->res_id)[1] = NFNL_SUBSYS_NFTABLES; /* big-endian */
    if (flags & NLM_F_ACK)
        m->acks++;
    return h;
}

/* An attribute at the end of h (the last message of m); its start. */
static struct nlattr *nlb_attr(struct nlb *m, struct nlmsghdr *h, uint16_t type, const void *data,
                               size_t len)
{
    struct nlattr *a = (struct nlattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
    if (m->full || (char *)a + NLA_ALIGN(NLA_HDRLEN + len) > m->b + sizeof m->b) {
        m->full = 1;
        return NULL;
    }
    memset(a, 0, NLA_ALIGN(NLA_HDRLEN + len));
    a->nla_type = type;
    a->nla_len = (uint16_t)(NLA_HDRLEN + len);
    if (len)
        memcpy((char *)a + NLA_HDRLEN, data, len);
    h->nlmsg_len = (uint32_t)(NLMSG_ALIGN(h->nlmsg_len) + NLA_ALIGN(a->nla_len));
    return a;
}

/* A nested attribute's end: its length covers what followed it in h. */
static void nlb_nest_end(struct nlmsghdr *h, struct nlattr *a)
{
    if (a)
        a->nla_len = (uint16_t)((char *)h + h->nlmsg_len - (char *)a);
}

static void nlb_end(struct nlb *m, struct nlmsghdr *h)
{
    if (h && !m->full)
        m->len += NLMSG_ALIGN(h->nlmsg_len);
}

/* The key of p's element in SET (ports, addrs or dests): the tap name in
 * 16 bytes, then the MAC padded to 8 and the IPv4 address, as nftables
 * lays out a concatenation. Its length, 0 for a MAC that does not parse. */
static size_t elem_key(const struct guard_port *p, const char *set, uint8_t key[28])
{
    unsigned m[6];
    memset(key, 0, 28);
    memcpy(key, p->tap, strnlen(p->tap, 16));
    if (!strcmp(set, GUARD_SET_DESTS)) {
        for (int i = 0; i < 4; i++) /* network order */
            key[16 + i] = (uint8_t)(p->ipv4 >> (24 - 8 * i));
        return 20;
    }
    if (sscanf(p->mac, "%2x:%2x:%2x:%2x:%2x:%2x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
        return 0;
    for (int i = 0; i < 6; i++)
        key[16 + i] = (uint8_t)m[i];
    if (strcmp(set, GUARD_SET_ADDRS))
        return 24;
    for (int i = 0; i < 4; i++) /* network order */
        key[24 + i] = (uint8_t)(p->ipv4 >> (24 - 8 * i));
    return 28;
}

/* One element added to (add 1) or deleted from a set of the bridge table. */
static void nlb_elem(struct nlb *m, int add, const char *set, const struct guard_port *p)
{
    static const char table[] = GUARD_TABLE;
    uint8_t key[28];
    size_t klen = elem_key(p, set, key);
    struct nlmsghdr *h;
    struct nlattr *list, *elem, *k;
    if (!klen) {
        m->full = 1; /* refused as a whole: nft says why */
        return;
    }
    h = nlb_msg(
        m,
        (uint16_t)((NFNL_SUBSYS_NFTABLES << 8) | (add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM)),
        (uint16_t)(NLM_F_ACK | (add ? NLM_F_CREATE : 0)), NFPROTO_BRIDGE);
    if (!h)
        return;
    nlb_attr(m, h, NFTA_SET_ELEM_LIST_TABLE, table, sizeof table);
    nlb_attr(m, h, NFTA_SET_ELEM_LIST_SET, set, strlen(set) + 1);
    list = nlb_attr(m, h, NLA_F_NESTED | NFTA_SET_ELEM_LIST_ELEMENTS, NULL, 0);
    elem = nlb_attr(m, h, NLA_F_NESTED | 1 /* NFTA_LIST_ELEM */, NULL, 0);
    k = nlb_attr(m, h, NLA_F_NESTED | NFTA_SET_ELEM_KEY, NULL, 0);
    nlb_attr(m, h, NFTA_DATA_VALUE, key, klen);
    nlb_nest_end(h, k);
    nlb_nest_end(h, elem);
    nlb_nest_end(h, list);
    nlb_end(m, h);
}

/* Send m's elements as one batch (all or nothing) and read every answer.
 * GUARD_OK, else GUARD_E_NFT with the kernel's reason. */
static int nlb_commit(struct nlb *m, char *err, size_t errlen)
{
    struct nlb all;
    struct nlmsghdr *h;
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    struct timeval tv = { 1, 0 }; /* a kernel answers at once: never hang a start */
    char buf[4096];
    unsigned acked = 0;
    int fd, rc = GUARD_E_NFT;

    if (m->full) {
        errbuf_set(err, errlen, "guard: change too large for one message");
        return GUARD_E_NFT;
    }
    memset(&all, 0, sizeof all);
    nlb_end(&all, nlb_msg(&all, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC));
    memcpy(all.b + all.len, m->b, m->len); /* m is NLB_SIZE - 2 headers at most */
    all.len += m->len;
    nlb_end(&all, nlb_msg(&all, NFNL_MSG_BATCH_END, 0, AF_UNSPEC));
    if (all.full) {
        errbuf_set(err, errlen, "guard: change too large for one message");
        return GUARD_E_NFT;
    }
    if ((fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER)) < 0) {
        errbuf_set(err, errlen, "guard: netfilter netlink socket: %s", strerror(errno));
        return GUARD_E_NFT;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (sendto(fd, all.b, all.len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
        errbuf_set(err, errlen, "guard: sending the change: %s", strerror(errno));
        goto out;
    }
    while (acked < m->acks) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            errbuf_set(err, errlen, "guard: reading the answer: %s",
                       n < 0 ? strerror(errno) : "no answer");
            goto out;
        }
        for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            const struct nlmsgerr *e = NLMSG_DATA(h);
            if (h->nlmsg_type != NLMSG_ERROR)
                continue;
            if (h->nlmsg_len < NLMSG_LENGTH(sizeof *e)) {
                errbuf_set(err, errlen, "guard: short netlink error");
                goto out;
            }
            if (e->error) {
                errbuf_set(err, errlen, "guard: changing the sets: %s", strerror(-e->error));
                goto out;
            }
            acked++;
        }
    }
    rc = GUARD_OK;
out:
    close(fd);
    return rc;
}

/* Put p in g's list: replace the port of the same tap, or append (room was
 * reserved). */
static void remember(struct guard *g, const struct guard_port *p)
{
    struct guard_port *have = find(g, p->tap);
    if (have)
        *have = *p;
    else
        g->port[g->n++] = *p;
}

int guard_add(struct guard *g, const struct guard_port *p, char *err, size_t errlen)
{
    char *script = NULL;
    struct guard_port *have, old;
    struct buf b = { 0 };
    struct nlb m;
    int rc, same_port;

    if ((rc = check_port(p, err, errlen)) != GUARD_OK)
        return rc;
    pthread_mutex_lock(&g->mu);
    have = find(g, p->tap);
    if (have && !strcmp(have->mac, p->mac) && have->ipv4 == p->ipv4) {
        rc = GUARD_OK; /* the sets hold it already */
        goto out;
    }
    if (!have && reserve(g, g->n + 1) != 0) {
        errbuf_set(err, errlen, "guard: out of memory");
        rc = GUARD_E_NOMEM;
        goto out;
    }
    /* One transaction: the old values of this tap out, the new ones in. */
    if (have) {
        change_one(&b, 0, GUARD_SET_PORTS, have, elem_port);
        if (have->ipv4) {
            change_one(&b, 0, GUARD_SET_ADDRS, have, elem_addr);
            change_one(&b, 0, GUARD_SET_DESTS, have, elem_dest);
        }
    }
    change_one(&b, 1, GUARD_SET_PORTS, p, elem_port);
    if (p->ipv4) {
        change_one(&b, 1, GUARD_SET_ADDRS, p, elem_addr);
        change_one(&b, 1, GUARD_SET_DESTS, p, elem_dest);
    }
    if ((rc = buf_done(&b, &script, err, errlen)) != GUARD_OK)
        goto out;
    /* The same change through netlink; nft when that fails (its words, and
     * a table that went is written again below). */
    memset(&m, 0, sizeof m);
    same_port = have && !strcmp(have->mac, p->mac); /* a pool guest claimed: its address only */
    if (have) {
        if (!same_port)
            nlb_elem(&m, 0, GUARD_SET_PORTS, have);
        if (have->ipv4) {
            nlb_elem(&m, 0, GUARD_SET_ADDRS, have);
            nlb_elem(&m, 0, GUARD_SET_DESTS, have);
        }
    }
    if (!same_port)
        nlb_elem(&m, 1, GUARD_SET_PORTS, p);
    if (p->ipv4) {
        nlb_elem(&m, 1, GUARD_SET_ADDRS, p);
        nlb_elem(&m, 1, GUARD_SET_DESTS, p);
    }
    if (!atomic_load(&no_netlink) && nlb_commit(&m, err, errlen) == GUARD_OK) {
        rc = GUARD_OK;
        g->netlink_adds++;
    } else {
        g->nft_fallbacks++; /* counted, not silent: guard_stats */
        rc = nft_apply("adding a guest port", script, err, errlen);
    }
    if (rc == GUARD_OK) {
        remember(g, p);
    } else if (table_present(NULL, 0) == 0) {
        /* The table went (nft flush ruleset): write it all again. */
        old = have ? *have : *p;
        remember(g, p);
        if ((rc = rebuild(g, err, errlen)) != GUARD_OK) {
            if (have)
                *find(g, p->tap) = old;
            else
                g->n--;
        }
    }
out:
    pthread_mutex_unlock(&g->mu);
    free(script);
    return rc;
}

int guard_remove(struct guard *g, const char *tap, char *err, size_t errlen)
{
    char *script = NULL;
    struct guard_port *have;
    int rc = GUARD_OK;

    if (!g || !tap)
        return GUARD_OK;
    pthread_mutex_lock(&g->mu);
    if (!(have = find(g, tap)))
        goto out;
    if ((rc = guard_render_change(0, have, 1, &script, err, errlen)) != GUARD_OK)
        goto out;
    rc = nft_apply("removing a guest port", script, err, errlen);
    if (rc != GUARD_OK && table_present(NULL, 0) == 0)
        rc = GUARD_OK; /* nothing of it is left to remove */
    if (rc == GUARD_OK)
        *have = g->port[--g->n];
out:
    pthread_mutex_unlock(&g->mu);
    free(script);
    return rc;
}

int guard_verify(struct guard *g, int *rebuilt, char *err, size_t errlen)
{
    int rc = GUARD_OK;
    *rebuilt = 0;
    pthread_mutex_lock(&g->mu);
    int present = table_present(err, errlen);
    if (present < 0) {
        rc = GUARD_E_NFT;
    } else if (!present) {
        rc = rebuild(g, err, errlen);
        *rebuilt = rc == GUARD_OK;
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
}

void guard_stats(struct guard *g, uint64_t *netlink_adds, uint64_t *nft_fallbacks)
{
    *netlink_adds = *nft_fallbacks = 0;
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    *netlink_adds = g->netlink_adds;
    *nft_fallbacks = g->nft_fallbacks;
    pthread_mutex_unlock(&g->mu);
}

size_t guard_count(struct guard *g)
{
    pthread_mutex_lock(&g->mu);
    size_t n = g->n;
    pthread_mutex_unlock(&g->mu);
    return n;
}

void guard_close(struct guard *g)
{
    if (!g)
        return;
    pthread_mutex_destroy(&g->mu);
    free(g->port);
    free(g);
}
