/*
 * netbr.c - Linux bridges via iproute2, links read through rtnetlink, and
 * bridge sets with overflow bridges (see netbr.h).
 */
#include "netbr.h"
#include "child.h"
#include "errbuf.h"
#include "domxml.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *ip_path(void)
{
    static const char *cands[] = { "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip" };
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++)
        if (access(cands[i], X_OK) == 0)
            return cands[i];
    return "ip"; /* child_run searches PATH */
}

/* Format the message into err and return rc (a netbr_status). */
static int nb_err(int rc, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int nb_err(int rc, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/*
 * Run `ip ARGV...`, capturing stdout+stderr (up to outlen-1 bytes, trailing
 * newlines trimmed) in out (may be NULL). Returns the exit status (0..255),
 * or -1 if it could not be run or was killed.
 */
static int run_ip(char *const argv[], char *out, size_t outlen)
{
    struct child_opts o = { .out = out, .outlen = out ? outlen : 0 };
    struct child_result r;

    if (child_run(argv, &o, &r, NULL, 0) != CHILD_OK)
        return -1;
    if (o.outlen)
        child_chomp(out);
    return child_exit_code(r.status);
}

/*
 * Run `ip` with the NULL-terminated words that follow; on failure write
 * "ip WORDS: OUTPUT" to err and return NETBR_E_IP.
 */
static int ip_do(char *err, size_t errlen, ...)
{
    char *argv[24], out[1024], cmd[256];
    size_t n = 0, used = 0;
    va_list ap;

    argv[n++] = (char *)ip_path();
    cmd[0] = '\0';
    va_start(ap, errlen);
    for (const char *w; n + 1 < sizeof argv / sizeof argv[0] && (w = va_arg(ap, const char *));) {
        argv[n++] = (char *)w;
        if (used < sizeof cmd) {
            int k = snprintf(cmd + used, sizeof cmd - used, " %s", w);
            used += k > 0 ? (size_t)k : 0;
        }
    }
    va_end(ap);
    argv[n] = NULL;
    if (run_ip(argv, out, sizeof out) != 0)
        return nb_err(NETBR_E_IP, err, errlen, "ip%s: %s", cmd, out[0] ? out : "failed");
    return NETBR_OK;
}

/* 1 if `name` exists, 2 if it exists and is a bridge, 0 if absent. */
static int link_kind(const char *name)
{
    char out[4096];
    if (if_nametoindex(name) == 0)
        return 0;
    char *argv[] = { (char *)ip_path(), "-o", "-d", "link", "show", "dev", (char *)name, NULL };
    if (run_ip(argv, out, sizeof out) != 0)
        return 1;
    /* `ip -d` prints the link kind as "\n    bridge ..." or, with -o,
     * "\\    bridge forward_delay ..." */
    return strstr(out, " bridge forward_delay") || strstr(out, "    bridge ") ? 2 : 1;
}

int netbr_exists(const char *name)
{
    return domxml_valid_bridge(name) && link_kind(name) == 2;
}

/* ---- links, read through one rtnetlink dump ---- */

/* Bridge settings an overflow bridge copies from the main one, in the
 * units `ip link ... type bridge` takes (timers in 1/100 s). */
enum { BRS_STP, BRS_FORWARD_DELAY, BRS_HELLO_TIME, BRS_MAX_AGE, BRS_AGEING_TIME, BRS_N };
/* One network interface as the kernel reported it. */
typedef struct {
    int index;
    int master;     /* IFLA_MASTER: ifindex of its bridge, 0 none */
    int peer;       /* IFLA_LINK: a veth's peer, 0 none */
    unsigned flags; /* IFF_* */
    unsigned mtu;   /* IFLA_MTU */
    unsigned char mac[6];
    int has_mac;
    char name[NETBR_NAME_SIZE];
    char kind[16];       /* IFLA_INFO_KIND: "bridge", "veth", ... or "" */
    int has_brs;         /* brs[] were reported (bridges) */
    uint32_t brs[BRS_N]; /* see BRS_* */
} nb_link;

typedef struct {
    nb_link *v;
    size_t n, cap;
} nb_links;

static void links_free(nb_links *t)
{
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
}

static const nb_link *links_find(const nb_links *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->v[i].name, name))
            return &t->v[i];
    return NULL;
}

static uint32_t rta_u32(const struct rtattr *a)
{
    uint32_t v = 0;
    if (RTA_PAYLOAD(a) >= sizeof v)
        memcpy(&v, RTA_DATA(a), sizeof v);
    return v;
}

static void rta_str(const struct rtattr *a, char *dst, size_t len)
{
    size_t n = RTA_PAYLOAD(a);
    const char *s = RTA_DATA(a);
    size_t k = strnlen(s, n);
    if (k >= len)
        k = len - 1;
    memcpy(dst, s, k);
    dst[k] = '\0';
}

static void parse_brs(nb_link *l, const struct rtattr *data)
{
    int len = (int)RTA_PAYLOAD(data);
    for (const struct rtattr *a = RTA_DATA(data); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        switch (a->rta_type & NLA_TYPE_MASK) {
        case IFLA_BR_STP_STATE: l->brs[BRS_STP] = rta_u32(a); break;
        case IFLA_BR_FORWARD_DELAY: l->brs[BRS_FORWARD_DELAY] = rta_u32(a); break;
        case IFLA_BR_HELLO_TIME: l->brs[BRS_HELLO_TIME] = rta_u32(a); break;
        case IFLA_BR_MAX_AGE: l->brs[BRS_MAX_AGE] = rta_u32(a); break;
        case IFLA_BR_AGEING_TIME: l->brs[BRS_AGEING_TIME] = rta_u32(a); break;
        default: break;
        }
    }
    l->has_brs = 1;
}

static void parse_linkinfo(nb_link *l, const struct rtattr *info)
{
    int len = (int)RTA_PAYLOAD(info);
    const struct rtattr *data = NULL;
    for (const struct rtattr *a = RTA_DATA(info); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if ((a->rta_type & NLA_TYPE_MASK) == IFLA_INFO_KIND)
            rta_str(a, l->kind, sizeof l->kind);
        else if ((a->rta_type & NLA_TYPE_MASK) == IFLA_INFO_DATA)
            data = a;
    }
    if (data && !strcmp(l->kind, "bridge"))
        parse_brs(l, data);
}

/* Parse one RTM_NEWLINK message into t. -1 when out of memory. */
static int parse_link(nb_links *t, const struct nlmsghdr *nh)
{
    const struct ifinfomsg *ifi = NLMSG_DATA(nh);
    int len = (int)nh->nlmsg_len - (int)NLMSG_LENGTH(sizeof *ifi);
    nb_link l;

    if (len < 0)
        return 0;
    memset(&l, 0, sizeof l);
    l.index = ifi->ifi_index;
    l.flags = ifi->ifi_flags;
    for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        switch (a->rta_type & NLA_TYPE_MASK) {
        case IFLA_IFNAME: rta_str(a, l.name, sizeof l.name); break;
        case IFLA_MASTER: l.master = (int)rta_u32(a); break;
        case IFLA_LINK: l.peer = (int)rta_u32(a); break;
        case IFLA_MTU: l.mtu = rta_u32(a); break;
        case IFLA_ADDRESS:
            if (RTA_PAYLOAD(a) == sizeof l.mac) {
                memcpy(l.mac, RTA_DATA(a), sizeof l.mac);
                l.has_mac = 1;
            }
            break;
        case IFLA_LINKINFO: parse_linkinfo(&l, a); break;
        default: break;
        }
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        nb_link *v = realloc(t->v, cap * sizeof *v);
        if (!v)
            return -1;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = l;
    return 0;
}

/*
 * Every link of the calling thread's network namespace, from one
 * RTM_GETLINK dump. A dump the kernel marks interrupted (links changed
 * while it ran, as in a boot storm) is read again, up to 4 times; the
 * last one is kept. NETBR_OK or NETBR_E_IP with a message.
 */
static int links_read(nb_links *t, char *err, size_t errlen)
{
    static unsigned seq_next;
    const size_t buflen = 64 * 1024;
    char *buf = malloc(buflen);
    int rc = NETBR_E_IP;

    t->v = NULL;
    t->n = t->cap = 0;
    if (!buf)
        return nb_err(NETBR_E_IP, err, errlen, "out of memory reading links");
    for (int attempt = 0; attempt < 4; attempt++) {
        struct {
            struct nlmsghdr nh;
            struct ifinfomsg ifi;
            char attrs[RTA_SPACE(sizeof(uint32_t))];
        } req;
        struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
        struct rtattr *a;
        uint32_t mask = RTEXT_FILTER_SKIP_STATS;
        int fd, done = 0, intr = 0;
        unsigned seq = __atomic_add_fetch(&seq_next, 1, __ATOMIC_RELAXED);

        links_free(t);
        fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (fd < 0) {
            errbuf_set(err, errlen, "rtnetlink socket: %s", strerror(errno));
            goto out;
        }
        memset(&req, 0, sizeof req);
        req.nh.nlmsg_len = NLMSG_LENGTH(sizeof req.ifi) + RTA_SPACE(sizeof mask);
        req.nh.nlmsg_type = RTM_GETLINK;
        req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
        req.nh.nlmsg_seq = seq;
        req.ifi.ifi_family = AF_UNSPEC;
        a = (struct rtattr *)((char *)&req + NLMSG_LENGTH(sizeof req.ifi));
        a->rta_type = IFLA_EXT_MASK;
        a->rta_len = RTA_LENGTH(sizeof mask);
        memcpy(RTA_DATA(a), &mask, sizeof mask);
        if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
            errbuf_set(err, errlen, "rtnetlink dump request: %s", strerror(errno));
            close(fd);
            goto out;
        }
        while (!done) {
            ssize_t n = recv(fd, buf, buflen, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                errbuf_set(err, errlen, "rtnetlink dump: %s", n < 0 ? strerror(errno) : "closed");
                close(fd);
                goto out;
            }
            for (size_t off = 0, next; off + sizeof(struct nlmsghdr) <= (size_t)n; off = next) {
                struct nlmsghdr *nh = (struct nlmsghdr *)(buf + off);
                if (nh->nlmsg_len < sizeof *nh || nh->nlmsg_len > (size_t)n - off)
                    break; /* malformed: the rest of this read is dropped */
                next = off + NLMSG_ALIGN(nh->nlmsg_len);
                if (nh->nlmsg_seq != seq)
                    continue;
                if (nh->nlmsg_flags & NLM_F_DUMP_INTR)
                    intr = 1;
                if (nh->nlmsg_type == NLMSG_DONE) {
                    done = 1;
                    break;
                }
                if (nh->nlmsg_type == NLMSG_ERROR) {
                    const struct nlmsgerr *e = NLMSG_DATA(nh);
                    errbuf_set(err, errlen, "rtnetlink dump: %s", strerror(-e->error));
                    close(fd);
                    goto out;
                }
                if (nh->nlmsg_type == RTM_NEWLINK && parse_link(t, nh) != 0) {
                    errbuf_set(err, errlen, "out of memory reading links");
                    close(fd);
                    goto out;
                }
            }
        }
        close(fd);
        if (!intr)
            break;
    }
    rc = NETBR_OK;
out:
    if (rc != NETBR_OK)
        links_free(t);
    free(buf);
    return rc;
}

/* The MAC of interface `name` (SIOCGIFHWADDR), as "xx:xx:..". -1 if none. */
static int link_mac(const char *name, char out[NETBR_MAC_STRLEN])
{
    struct ifreq ifr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = -1;
    if (fd < 0)
        return -1;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) == 0) {
        const unsigned char *m = (const unsigned char *)ifr.ifr_hwaddr.sa_data;
        snprintf(out, NETBR_MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
                 m[4], m[5]);
        rc = 0;
    }
    close(fd);
    return rc;
}

static void no_ipv6(const char *dev);

int netbr_create(const char *name, const char *addr, unsigned prefix, char *err, size_t errlen)
{
    char out[1024], cidr[INET_ADDRSTRLEN + 4], mac[NETBR_MAC_STRLEN];
    struct in_addr a;
    int rc = NETBR_E_INVAL, kind;

    if (!domxml_valid_bridge(name)) {
        errbuf_set(err, errlen, "invalid bridge name '%s' (1-15 of [A-Za-z0-9_.-])",
                   name ? name : "(null)");
        goto out;
    }
    if (!addr || strlen(addr) >= INET_ADDRSTRLEN || inet_pton(AF_INET, addr, &a) != 1) {
        errbuf_set(err, errlen, "invalid IPv4 address '%s' for bridge '%s'", addr ? addr : "(null)",
                   name);
        goto out;
    }
    if (prefix > 32) {
        errbuf_set(err, errlen, "invalid prefix length '%u' for bridge '%s' (0-32)", prefix, name);
        goto out;
    }
    snprintf(cidr, sizeof cidr, "%s/%u", addr, prefix);

    kind = link_kind(name);
    if (kind == 1) {
        errbuf_set(err, errlen, "interface '%s' exists and is not a bridge", name);
        rc = NETBR_E_EXISTS;
        goto out;
    }
    rc = NETBR_E_IP;
    if (kind == 0) {
        char *argv[] = { (char *)ip_path(), "link", "add",    "name",
                         (char *)name,      "type", "bridge", NULL };
        if (run_ip(argv, out, sizeof out) != 0) {
            errbuf_set(err, errlen, "ip link add '%s' type bridge: %s", name, out);
            goto out;
        }
        no_ipv6(name); /* a bridge shoald made; an operator's keeps its own */
    }
    /* Pin the MAC: a Linux bridge whose address was never set takes the
     * lowest MAC among its ports, so the gateway's MAC would change when
     * the guest with the lowest MAC left or a link joined. */
    if (link_mac(name, mac) != 0) {
        errbuf_set(err, errlen, "cannot read the MAC of bridge '%s': %s", name, strerror(errno));
        goto out;
    }
    if (ip_do(err, errlen, "link", "set", "dev", name, "address", mac, (char *)NULL) != NETBR_OK)
        goto out;
    {
        char *argv[] = { (char *)ip_path(), "addr", "replace", cidr, "dev", (char *)name, NULL };
        if (run_ip(argv, out, sizeof out) != 0) {
            errbuf_set(err, errlen, "ip addr replace '%s' dev '%s': %s", cidr, name, out);
            goto out;
        }
    }
    {
        char *argv[] = { (char *)ip_path(), "link", "set", "dev", (char *)name, "up", NULL };
        if (run_ip(argv, out, sizeof out) != 0) {
            errbuf_set(err, errlen, "ip link set '%s' up: %s", name, out);
            goto out;
        }
    }
    rc = NETBR_OK;
out:
    return rc;
}

int netbr_overflow_names(const char *bridge, unsigned k, struct netbr_names *out, char *err,
                         size_t errlen)
{
    if (!domxml_valid_bridge(bridge))
        return nb_err(NETBR_E_INVAL, err, errlen,
                      "invalid bridge name '%s' (1-15 of [A-Za-z0-9_.-])",
                      bridge ? bridge : "(null)");
    if (strlen(bridge) > NETBR_OVERFLOW_BASE_MAX)
        return nb_err(NETBR_E_INVAL, err, errlen,
                      "bridge name '%s' is too long to derive overflow bridge names from "
                      "(at most %d characters, so that '%s.%d-m' fits in 15)",
                      bridge, NETBR_OVERFLOW_BASE_MAX, "NAME", NETBR_OVERFLOW_MAX);
    if (k < 1 || k > NETBR_OVERFLOW_MAX)
        return nb_err(NETBR_E_INVAL, err, errlen, "overflow bridge number '%u' out of range (1-%d)",
                      k, NETBR_OVERFLOW_MAX);
    snprintf(out->bridge, sizeof out->bridge, "%s.%u", bridge, k);
    snprintf(out->link_main, sizeof out->link_main, "%s.%u-m", bridge, k);
    snprintf(out->link_over, sizeof out->link_over, "%s.%u-o", bridge, k);
    return NETBR_OK;
}

int netbr_delete(const char *name, char *err, size_t errlen)
{
    char out[1024];
    int rc = NETBR_E_INVAL, kind;

    if (!domxml_valid_bridge(name)) {
        errbuf_set(err, errlen, "invalid bridge name '%s'", name ? name : "(null)");
        goto out;
    }
    kind = link_kind(name);
    if (kind == 1) {
        errbuf_set(err, errlen, "interface '%s' is not a bridge; not deleting it", name);
        rc = NETBR_E_EXISTS;
        goto out;
    }
    /* Its overflow bridges and their links first (deleting one end of a
     * veth pair deletes both). */
    if (strlen(name) <= NETBR_OVERFLOW_BASE_MAX) {
        nb_links t;
        if (links_read(&t, err, errlen) != NETBR_OK) {
            rc = NETBR_E_IP;
            goto out;
        }
        for (unsigned k = 1; k <= NETBR_OVERFLOW_MAX; k++) {
            struct netbr_names nm;
            const nb_link *l;
            netbr_overflow_names(name, k, &nm, NULL, 0);
            const nb_link *m = links_find(&t, nm.link_main), *o = links_find(&t, nm.link_over);
            const char *del[3] = { NULL, NULL, NULL };
            if (m && !strcmp(m->kind, "veth"))
                del[0] = nm.link_main;
            if (o && !strcmp(o->kind, "veth") && !(del[0] && m->peer == o->index))
                del[1] = nm.link_over;
            if ((l = links_find(&t, nm.bridge)) && !strcmp(l->kind, "bridge"))
                del[2] = nm.bridge;
            for (int i = 0; i < 3; i++)
                if (del[i] && ip_do(err, errlen, "link", "del", "dev", del[i], (char *)NULL) != 0) {
                    links_free(&t);
                    rc = NETBR_E_IP;
                    goto out;
                }
        }
        links_free(&t);
    }
    if (kind == 0) {
        rc = NETBR_OK;
        goto out;
    }
    char *argv[] = { (char *)ip_path(), "link", "del", "dev", (char *)name, NULL };
    if (run_ip(argv, out, sizeof out) != 0) {
        errbuf_set(err, errlen, "ip link del '%s': %s", name, out);
        rc = NETBR_E_IP;
        goto out;
    }
    rc = NETBR_OK;
out:
    return rc;
}

/* ---- bridge sets ---- */

/* A port handed out by netbr_set_pick whose tap has not appeared yet. */
typedef struct {
    unsigned char mac[6]; /* the guest's MAC (the tap's differs in octet 0) */
    unsigned slot;        /* 0: main bridge, k: overflow bridge k */
    int stale_index;      /* a port with this MAC that existed at the pick
                             (a previous run's tap): not the one awaited */
    int64_t deadline_ms;  /* monotonic; dropped after it */
} nb_pending;

struct netbr_set {
    pthread_mutex_t mu;                              /* guards everything below */
    char name[NETBR_NAME_SIZE];                      /* the main bridge */
    unsigned limit;                                  /* ports per bridge */
    unsigned max_over;                               /* overflow bridges allowed (0: none) */
    int too_long;                                    /* name too long to derive from */
    struct netbr_names over[NETBR_OVERFLOW_MAX + 1]; /* [1..max_over] */
    nb_pending *pend;
    size_t npend, pend_cap;
    /* The last full count (netbr.h, NETBR_RECOUNT_MS): when it was taken
     * (0: never), the main bridge's ports in use then (kept ones and that
     * pick's own included), and the picks given to it since without one. */
    int64_t counted_ms;
    unsigned counted_main, fast_picks;
    unsigned long recounts; /* full counts made (netbr_set_recounts) */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_mac(const char *s, unsigned char m[6])
{
    unsigned v[6];
    char end;
    if (!s || strlen(s) != 17 ||
        sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &end) != 6)
        return -1;
    for (int i = 0; i < 6; i++)
        m[i] = (unsigned char)v[i];
    return 0;
}

/* Which bridge of the set has ifindex `index`: 0 main, k overflow, -1 none.
 * idx[] holds the bridges' ifindexes (0: absent). */
static int slot_of(const int *idx, unsigned max_over, int index)
{
    if (index <= 0)
        return -1;
    for (unsigned k = 0; k <= max_over; k++)
        if (idx[k] == index)
            return (int)k;
    return -1;
}

/* A link that is there and of `kind`; NULL if absent. *foreign set when an
 * interface of that name exists with another kind. */
static const nb_link *kind_find(const nb_links *t, const char *name, const char *kind, int *foreign)
{
    const nb_link *l = links_find(t, name);
    if (l && strcmp(l->kind, kind)) {
        *foreign = 1;
        return NULL;
    }
    return l;
}

/* No IPv6 link-local address on a new interface that is still down: the
 * main bridge is the host's only address on the segment. Best effort (a
 * host without IPv6 refuses it, and has nothing to turn off). */
static void no_ipv6(const char *dev)
{
    char *argv[] = { (char *)ip_path(), "link",        "set",  "dev",
                     (char *)dev,       "addrgenmode", "none", NULL };
    run_ip(argv, NULL, 0);
}

/* 1 if overflow bridge k is complete: bridge up with main's settings, the
 * veth pair joined, each end up in its bridge, with main's MTU. */
static int over_healthy(const struct netbr_set *s, const nb_links *t, const nb_link *main_l,
                        unsigned k)
{
    int foreign = 0;
    const nb_link *b = kind_find(t, s->over[k].bridge, "bridge", &foreign);
    const nb_link *m = kind_find(t, s->over[k].link_main, "veth", &foreign);
    const nb_link *o = kind_find(t, s->over[k].link_over, "veth", &foreign);
    if (!b || !m || !o || !(b->flags & IFF_UP) || !(m->flags & IFF_UP) || !(o->flags & IFF_UP))
        return 0;
    if (m->master != main_l->index || o->master != b->index || m->peer != o->index)
        return 0;
    if (m->mtu != main_l->mtu || o->mtu != main_l->mtu)
        return 0;
    if (main_l->has_brs && (!b->has_brs || memcmp(b->brs, main_l->brs, sizeof b->brs)))
        return 0;
    return 1;
}

/*
 * Make overflow bridge k complete (see over_healthy), from the state in t:
 * create or re-set the bridge, create the veth pair if it is not whole,
 * attach both ends and bring everything up. Idempotent.
 */
static int over_ensure(struct netbr_set *s, const nb_links *t, const nb_link *main_l, unsigned k,
                       char *err, size_t errlen)
{
    const struct netbr_names *nm = &s->over[k];
    char v[BRS_N][16], mtu[16];
    int foreign = 0;
    const nb_link *b = kind_find(t, nm->bridge, "bridge", &foreign);
    const nb_link *m = kind_find(t, nm->link_main, "veth", &foreign);
    const nb_link *o = kind_find(t, nm->link_over, "veth", &foreign);

    if (foreign)
        return nb_err(NETBR_E_EXISTS, err, errlen,
                      "overflow bridge %u of '%s': an interface named '%s', '%s' or '%s' "
                      "exists and is not of the expected kind",
                      k, s->name, nm->bridge, nm->link_main, nm->link_over);
    for (int i = 0; i < BRS_N; i++)
        snprintf(v[i], sizeof v[i], "%u", (unsigned)main_l->brs[i]);
    snprintf(mtu, sizeof mtu, "%u", main_l->mtu);

    /* The bridge, with the main bridge's timers; STP is switched in the
     * order that keeps the kernel's range checks happy (forward_delay is
     * checked only while STP runs). */
    if (!b && !main_l->has_brs) {
        if (ip_do(err, errlen, "link", "add", "name", nm->bridge, "type", "bridge", (char *)NULL))
            return NETBR_E_IP;
        no_ipv6(nm->bridge);
    } else if (!b) {
        if (ip_do(err, errlen, "link", "add", "name", nm->bridge, "type", "bridge", "forward_delay",
                  v[BRS_FORWARD_DELAY], "hello_time", v[BRS_HELLO_TIME], "max_age", v[BRS_MAX_AGE],
                  "ageing_time", v[BRS_AGEING_TIME], (char *)NULL) != NETBR_OK)
            return NETBR_E_IP;
        no_ipv6(nm->bridge);
        if (main_l->brs[BRS_STP] &&
            ip_do(err, errlen, "link", "set", "dev", nm->bridge, "type", "bridge", "stp_state",
                  v[BRS_STP], (char *)NULL) != NETBR_OK)
            return NETBR_E_IP;
    } else if (main_l->has_brs && (!b->has_brs || memcmp(b->brs, main_l->brs, sizeof b->brs))) {
        int stp_first = main_l->brs[BRS_STP] == 0;
        if (stp_first && ip_do(err, errlen, "link", "set", "dev", nm->bridge, "type", "bridge",
                               "stp_state", v[BRS_STP], (char *)NULL) != NETBR_OK)
            return NETBR_E_IP;
        if (ip_do(err, errlen, "link", "set", "dev", nm->bridge, "type", "bridge", "forward_delay",
                  v[BRS_FORWARD_DELAY], "hello_time", v[BRS_HELLO_TIME], "max_age", v[BRS_MAX_AGE],
                  "ageing_time", v[BRS_AGEING_TIME], (char *)NULL) != NETBR_OK)
            return NETBR_E_IP;
        if (!stp_first && ip_do(err, errlen, "link", "set", "dev", nm->bridge, "type", "bridge",
                                "stp_state", v[BRS_STP], (char *)NULL) != NETBR_OK)
            return NETBR_E_IP;
    }
    /* The link: a veth pair, re-made if only one end or a stray pair is
     * left (a crash half way, or an operator's `ip link del`). */
    if (!(m && o && m->peer == o->index)) {
        if (m && ip_do(err, errlen, "link", "del", "dev", nm->link_main, (char *)NULL) != 0)
            return NETBR_E_IP;
        if (o && (!m || m->peer != o->index) &&
            ip_do(err, errlen, "link", "del", "dev", nm->link_over, (char *)NULL) != 0)
            return NETBR_E_IP;
        if (ip_do(err, errlen, "link", "add", "name", nm->link_main, "mtu", mtu, "type", "veth",
                  "peer", "name", nm->link_over, "mtu", mtu, (char *)NULL) != NETBR_OK)
            return NETBR_E_IP;
        no_ipv6(nm->link_main);
        no_ipv6(nm->link_over);
    } else if (m->mtu != main_l->mtu || o->mtu != main_l->mtu) {
        if (ip_do(err, errlen, "link", "set", "dev", nm->link_main, "mtu", mtu, (char *)NULL) ||
            ip_do(err, errlen, "link", "set", "dev", nm->link_over, "mtu", mtu, (char *)NULL))
            return NETBR_E_IP;
    }
    if (ip_do(err, errlen, "link", "set", "dev", nm->link_over, "master", nm->bridge, "up",
              (char *)NULL) != NETBR_OK ||
        ip_do(err, errlen, "link", "set", "dev", nm->bridge, "up", (char *)NULL) != NETBR_OK ||
        ip_do(err, errlen, "link", "set", "dev", nm->link_main, "master", s->name, "up",
              (char *)NULL) != NETBR_OK)
        return NETBR_E_IP;
    return NETBR_OK;
}

int netbr_set_open(const char *name, const char *addr, unsigned prefix, unsigned ports_per_bridge,
                   unsigned max_overflow, struct netbr_set **out, char *err, size_t errlen)
{
    struct netbr_set *s = NULL;
    nb_links t = { 0 };
    const nb_link *main_l;
    int rc;

    *out = NULL;
    if (ports_per_bridge < 2 || ports_per_bridge > NETBR_PORTS_MAX)
        return nb_err(NETBR_E_INVAL, err, errlen, "ports per bridge '%u' out of range (2-%d)",
                      ports_per_bridge, NETBR_PORTS_MAX);
    if (max_overflow > NETBR_OVERFLOW_MAX || max_overflow > ports_per_bridge)
        return nb_err(
            NETBR_E_INVAL, err, errlen, "overflow bridges '%u' out of range (0-%u)", max_overflow,
            ports_per_bridge < NETBR_OVERFLOW_MAX ? ports_per_bridge : NETBR_OVERFLOW_MAX);
    if ((rc = netbr_create(name, addr, prefix, err, errlen)) != NETBR_OK)
        return rc;
    if (!(s = calloc(1, sizeof *s)))
        return nb_err(NETBR_E_IP, err, errlen, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->limit = ports_per_bridge;
    s->too_long = strlen(name) > NETBR_OVERFLOW_BASE_MAX;
    s->max_over = s->too_long ? 0 : max_overflow;
    for (unsigned k = 1; k <= s->max_over; k++)
        netbr_overflow_names(name, k, &s->over[k], NULL, 0);

    /* A restart: overflow bridges (or links) that exist are repaired and
     * get the main bridge's settings again. */
    if ((rc = links_read(&t, err, errlen)) != NETBR_OK)
        goto fail;
    if (!(main_l = links_find(&t, name))) {
        rc = nb_err(NETBR_E_IP, err, errlen, "bridge '%s' vanished", name);
        goto fail;
    }
    for (unsigned k = 1; k <= s->max_over; k++) {
        int foreign = 0, any = 0;
        any += kind_find(&t, s->over[k].bridge, "bridge", &foreign) != NULL;
        any += kind_find(&t, s->over[k].link_main, "veth", &foreign) != NULL;
        any += kind_find(&t, s->over[k].link_over, "veth", &foreign) != NULL;
        if (!any || foreign || over_healthy(s, &t, main_l, k))
            continue;
        if ((rc = over_ensure(s, &t, main_l, k, err, errlen)) != NETBR_OK)
            goto fail;
    }
    links_free(&t);
    *out = s;
    return NETBR_OK;
fail:
    links_free(&t);
    netbr_set_close(s);
    return rc;
}

const char *netbr_set_name(const struct netbr_set *s)
{
    return s->name;
}

void netbr_set_close(struct netbr_set *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s->pend);
    free(s);
}

/* Record a pick for `mac` on `slot` (replacing an older one for the MAC). */
static int pending_add(struct netbr_set *s, const unsigned char mac[6], unsigned slot,
                       int stale_index, int64_t now)
{
    size_t i;
    for (i = 0; i < s->npend; i++)
        if (!memcmp(s->pend[i].mac, mac, 6))
            break;
    if (i == s->npend) {
        if (s->npend == s->pend_cap) {
            size_t cap = s->pend_cap ? s->pend_cap * 2 : 16;
            nb_pending *p = realloc(s->pend, cap * sizeof *p);
            if (!p)
                return -1;
            s->pend = p;
            s->pend_cap = cap;
        }
        s->npend++;
    }
    memcpy(s->pend[i].mac, mac, 6);
    s->pend[i].slot = slot;
    s->pend[i].stale_index = stale_index;
    s->pend[i].deadline_ms = now + NETBR_PENDING_MS;
    return 0;
}

/* A port of one of the set's bridges whose MAC is `mac` but for octet 0
 * (libvirt's tap for that guest MAC), other than `not_index`; its ifindex
 * or 0. */
static int tap_of(const nb_links *t, const int *idx, unsigned max_over, const unsigned char mac[6],
                  int not_index)
{
    for (size_t i = 0; i < t->n; i++) {
        const nb_link *l = &t->v[i];
        if (l->has_mac && l->index != not_index && !memcmp(l->mac + 1, mac + 1, 5) &&
            slot_of(idx, max_over, l->master) >= 0)
            return l->index;
    }
    return 0;
}

int netbr_set_pick(struct netbr_set *s, const char *mac, const char **bridge, char *err,
                   size_t errlen)
{
    unsigned char m[6];
    int idx[NETBR_OVERFLOW_MAX + 1] = { 0 }, foreign[NETBR_OVERFLOW_MAX + 1] = { 0 };
    unsigned used[NETBR_OVERFLOW_MAX + 1] = { 0 }, links_on_main = 0, reserve;
    nb_links t = { 0 };
    const nb_link *main_l;
    char first_err[512] = "";
    int rc, slot = -1, first_rc = NETBR_OK;
    int64_t now = mono_ms();

    *bridge = NULL;
    if (parse_mac(mac, m) != 0)
        return nb_err(NETBR_E_INVAL, err, errlen, "invalid MAC '%s'", mac ? mac : "(null)");
    pthread_mutex_lock(&s->mu);
    /* Far from full, a recent count is enough: a dump of every link is
     * O(links), the one cost of a start here that grows with the fleet. */
    if (s->counted_ms && now - s->counted_ms < NETBR_RECOUNT_MS &&
        s->counted_main + s->fast_picks + 1 + NETBR_RECOUNT_SLACK <= s->limit) {
        if (pending_add(s, m, 0, 0, now) != 0) {
            rc = nb_err(NETBR_E_IP, err, errlen, "out of memory");
            goto out;
        }
        s->fast_picks++;
        *bridge = s->name;
        rc = NETBR_OK;
        goto out;
    }
    s->recounts++;
    s->counted_ms = 0;
    if ((rc = links_read(&t, err, errlen)) != NETBR_OK)
        goto out;
    main_l = links_find(&t, s->name);
    if (!main_l || strcmp(main_l->kind, "bridge")) {
        rc = nb_err(NETBR_E_IP, err, errlen, "bridge '%s' is missing (restart shoald to create it)",
                    s->name);
        goto out;
    }
    idx[0] = main_l->index;
    for (unsigned k = 1; k <= s->max_over; k++) {
        const nb_link *b = kind_find(&t, s->over[k].bridge, "bridge", &foreign[k]);
        kind_find(&t, s->over[k].link_main, "veth", &foreign[k]);
        kind_find(&t, s->over[k].link_over, "veth", &foreign[k]);
        idx[k] = b && !foreign[k] ? b->index : 0;
    }
    /* An overflow bridge whose link is not in it yet will get it back. */
    for (unsigned k = 1; k <= s->max_over; k++) {
        const nb_link *o = links_find(&t, s->over[k].link_over);
        if (idx[k] && !(o && o->master == idx[k]))
            used[k]++;
    }
    /* Ports in use: the kernel's, plus picks whose tap is not there yet. */
    for (size_t i = 0; i < t.n; i++) {
        int sl = slot_of(idx, s->max_over, t.v[i].master);
        if (sl < 0)
            continue;
        used[sl]++;
        if (sl == 0)
            for (unsigned k = 1; k <= s->max_over; k++)
                if (!strcmp(t.v[i].name, s->over[k].link_main))
                    links_on_main++;
    }
    for (size_t i = 0; i < s->npend;) {
        nb_pending *p = &s->pend[i];
        if (now >= p->deadline_ms || tap_of(&t, idx, s->max_over, p->mac, p->stale_index)) {
            s->pend[i] = s->pend[--s->npend];
            continue;
        }
        if (!memcmp(p->mac, m, 6)) { /* picked again: the new pick replaces it */
            i++;
            continue;
        }
        if (p->slot <= s->max_over)
            used[p->slot]++;
        i++;
    }
    /* The main bridge keeps a port for each overflow bridge's link. */
    reserve = s->max_over > links_on_main ? s->max_over - links_on_main : 0;
    if (used[0] + reserve < s->limit) {
        slot = 0;
        s->counted_ms = now;
        s->counted_main = used[0] + reserve + 1;
        s->fast_picks = 0;
        goto picked;
    }
    for (unsigned k = 1; k <= s->max_over && slot < 0; k++) {
        if (!idx[k] || used[k] >= s->limit)
            continue;
        if (!over_healthy(s, &t, main_l, k) &&
            (rc = over_ensure(s, &t, main_l, k, err, errlen)) != NETBR_OK) {
            if (first_rc == NETBR_OK) {
                first_rc = rc;
                snprintf(first_err, sizeof first_err, "%s", err ? err : "");
            }
            continue;
        }
        slot = (int)k;
    }
    for (unsigned k = 1; k <= s->max_over && slot < 0; k++) {
        if (idx[k] || foreign[k])
            continue;
        if ((rc = over_ensure(s, &t, main_l, k, err, errlen)) != NETBR_OK) {
            if (first_rc == NETBR_OK) {
                first_rc = rc;
                snprintf(first_err, sizeof first_err, "%s", err ? err : "");
            }
            continue;
        }
        slot = (int)k;
    }
    if (slot < 0) {
        if (first_rc != NETBR_OK) {
            rc = nb_err(first_rc, err, errlen, "%s", first_err);
        } else if (s->too_long) {
            rc = nb_err(NETBR_E_FULL, err, errlen,
                        "bridge '%s' is full (%u ports) and its name is too long to derive "
                        "overflow bridges from (at most %d characters): configure a shorter "
                        "--bridge, or run the guest without network",
                        s->name, s->limit, NETBR_OVERFLOW_BASE_MAX);
        } else {
            rc = nb_err(NETBR_E_FULL, err, errlen,
                        "bridge '%s' and its %u overflow bridges are full (%u ports each): "
                        "run the guest without network or on another host",
                        s->name, s->max_over, s->limit);
        }
        goto out;
    }
picked:
    if (pending_add(s, m, (unsigned)slot, tap_of(&t, idx, s->max_over, m, 0), now) != 0) {
        rc = nb_err(NETBR_E_IP, err, errlen, "out of memory");
        goto out;
    }
    *bridge = slot == 0 ? s->name : s->over[slot].bridge;
    rc = NETBR_OK;
out:
    pthread_mutex_unlock(&s->mu);
    links_free(&t);
    return rc;
}

unsigned long netbr_set_recounts(struct netbr_set *s)
{
    unsigned long n;
    pthread_mutex_lock(&s->mu);
    n = s->recounts;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void netbr_mac(const char *seed, char out[NETBR_MAC_STRLEN])
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
    for (const unsigned char *p = (const unsigned char *)(seed ? seed : ""); *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    uint32_t v = (uint32_t)(h ^ (h >> 32));
    snprintf(out, NETBR_MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", NETBR_MAC_PREFIX0,
             NETBR_MAC_PREFIX1, (v >> 24) & 0xff, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
}
