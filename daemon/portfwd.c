/* portfwd.c - user-space TCP and UDP port forwarding. See portfwd.h. */
#include "portfwd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

typedef enum { EP_WAKE = 0, EP_LISTEN, EP_CONN, EP_FLOW } ep_kind;

#define UDP_BUCKETS   64   /* hash chains per UDP forward */
#define UDP_BATCH     64   /* datagrams relayed per readiness event, for fairness */
#define TICK_MS       1000 /* housekeeping period (expiry) at the longest */
#define EXPIRY_MS     100  /* TCP timeouts are checked this often at most */
#define SLEEP_TICK_MS 50   /* idle timers checked this often while an owner sleeps or idles */

struct fwd;

/* Scale to zero: the sleep state of one owner (pfwd_set_idle). mode,
 * idle_ms, the requests and held_pub are under mu; the t_ fields and the
 * counts belong to the thread. */
enum { SL_AWAKE = 0, SL_ASLEEP, SL_WAKING };
typedef struct sleeper {
    char owner[64];
    int idle_ms;        /* sleep after this long without a TCP connection; 0 never */
    int mode;           /* SL_*: awake passes connections through, else they are held */
    int reset_quiet;    /* set by pfwd_set_idle/pfwd_resume: quiet time starts again */
    int nfwds;          /* live forwards pointing here; freed at 0 (reap) */
    int held_pub;       /* copy of nwaking for pfwd_sleep_info */
    int t_awake;        /* thread: mode == SL_AWAKE as of the last tick */
    int t_poke;         /* thread: a datagram came while asleep */
    int nconns;         /* thread: open TCP connections of its forwards */
    int nwaking;        /* thread: held connections not yet through to the guest */
    int64_t t_quiet_ms; /* thread: since when it has had no connection */
    int t_timeouts;     /* thread: held connections timed out since the last note */
    int t_port;         /* thread: host port of the last held connection */
    int recount;        /* under mu: forwards newly attached, conns to count */
    int dead;           /* under mu: its forwards were removed */
    struct sleeper *next;
} sleeper;

/* One direction of a proxied connection: bytes read from `from` wait in buf
 * until written to the other side. */
typedef struct {
    char *buf; /* PFWD_BUF bytes while data waits, else NULL: an idle
                  connection costs ~200 bytes, not 128 KiB */
    size_t len, off;
    int eof; /* `from` closed its write side */
} pipe_dir;

/* One end of a proxied connection registered with epoll. */
typedef struct endpoint {
    ep_kind kind;
    int fd;
    struct conn *conn;
    int side; /* 0 client, 1 guest */
} endpoint;

typedef struct conn {
    endpoint ep[2];
    pipe_dir dir[2];                  /* dir[0]: client->guest, dir[1]: guest->client */
    int connecting;                   /* guest connect() in progress (or not begun: held) */
    int waking;                       /* accepted while its owner slept: the guest connect is
                         retried until deadline_ms (ep[1].fd -1 between tries) */
    int64_t deadline_ms, retry_at_ms; /* waking: give up at; next try at (0 now) */
    struct sleeper *sl;               /* its forward's owner's, as when accepted (thread) */
    int closed;                       /* closed; freed at the end of the batch */
    int64_t since_ms;                 /* connect started, or the last byte moved */
    struct fwd *fwd;
    struct conn *next;
} conn;

/* UDP: one client address of a forward and its socket to the guest. */
typedef struct flow {
    endpoint ep; /* EP_FLOW: socket connected to the guest */
    struct sockaddr_in client;
    struct in_addr local; /* host address the client wrote to */
    int64_t last_ms;      /* last datagram either way (monotonic) */
    struct fwd *fwd;
    struct flow *hnext;         /* hash chain; the graveyard once closed */
    struct flow *newer, *older; /* the forward's flows by last activity */
    int closed;                 /* closed; freed at the end of the batch */
} flow;

typedef struct fwd {
    endpoint ep; /* TCP: the listener; UDP: the host port socket */
    pfwd_proto proto;
    char owner[64];
    int host_port;
    struct sockaddr_in guest;
    int dead;
    sleeper *sl;             /* scale to zero (pfwd_set_idle), NULL: none; under mu */
    sleeper *t_sl;           /* the thread's copy of sl (taken at its next tick) */
    int nconns;              /* TCP: open connections (thread only) */
    int64_t paused_until_ms; /* TCP: not accepting until then (out of descriptors) */
    /* UDP only; the flows are owned by the thread. */
    int pktinfo; /* bound to 0.0.0.0: learn each datagram's local address */
    int idle_ms, max_flows, nflows;
    flow *bucket[UDP_BUCKETS];
    flow *newest, *oldest;
    struct fwd *next;
} fwd;

struct pfwd {
    int epfd;
    endpoint wake;
    struct in_addr bind;
    pthread_t thread;
    pthread_mutex_t mu; /* guards fwds list and dead marks */
    fwd *fwds;
    conn *conns;           /* owned by the thread */
    conn *graveyard;       /* closed this batch; epoll may still name them */
    pthread_cond_t reaped; /* a dead forward was freed */
    int stop;
    int udp_idle_ms, udp_max_flows; /* for new UDP forwards; under mu */
    int tick_ms;                    /* epoll timeout: expiry precision; under mu */
    flow *flow_grave;               /* flows closed this batch */
    atomic_size_t nflows;           /* open flows, all forwards */
    atomic_size_t nconns;           /* open TCP connections, all forwards */
    atomic_size_t refused;          /* TCP connections refused at a limit */
    int max_conns, port_max_conns;  /* TCP limits; under mu */
    int connect_ms, linger_ms;      /* TCP timeouts; under mu */
    int fd_ceiling;                 /* refuse a connection whose descriptor is >= this */
    int spare_fd;                   /* /dev/null, given up to accept-and-close at EMFILE */
    sleeper *sleepers;              /* owners that scale to zero; under mu */
    int wake_ms;                    /* held connections wait this long; under mu */
    int nwaking;                    /* thread: held connections, all owners */
    pfwd_note_fn note_fn;           /* under mu */
    void *note_user;
    unsigned char dgram[65536]; /* the thread's datagram buffer */
};

const char *pfwd_proto_name(pfwd_proto proto)
{
    return proto == PFWD_UDP ? "udp" : "tcp";
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A TCP listener or a bound UDP socket on the host port. *pktinfo: the UDP
 * socket reports each datagram's local address (bound to 0.0.0.0). */
static int open_listener(const struct in_addr *addr, pfwd_proto proto, int port, int *pktinfo,
                         char *err, size_t errlen)
{
    struct sockaddr_in sa;
    int udp = proto == PFWD_UDP, one = 1, fd;
    *pktinfo = 0;
    if (proto != PFWD_TCP && proto != PFWD_UDP) {
        snprintf(err, errlen, "host port %d: unknown protocol %d", port, (int)proto);
        return -1;
    }
    fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    /* TCP: rebind over TIME_WAIT. Never for UDP: there it lets two sockets
     * share the port. */
    if (!udp)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (udp && addr->s_addr == htonl(INADDR_ANY) &&
        setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) == 0)
        *pktinfo = 1;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr = *addr;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || (!udp && listen(fd, 128) != 0)) {
        snprintf(err, errlen, "host port %d/%s: %s", port, pfwd_proto_name(proto), strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int pfwd_probe(pfwd *p, pfwd_proto proto, int host_port, char *err, size_t errlen)
{
    int pktinfo, fd = open_listener(&p->bind, proto, host_port, &pktinfo, err, errlen);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* A client whose bytes never reached the guest: read what it sent (bounded)
 * before the close, so that the close is a clean FIN, not the reset Linux
 * sends for unread data (a held connection whose wake failed). */
static void drain_client(int fd)
{
    char junk[4096];
    for (int i = 0; i < 64; i++) {
        ssize_t n = read(fd, junk, sizeof junk);
        if (n <= 0 && !(n < 0 && errno == EINTR))
            break;
    }
}

static void conn_close(pfwd *p, conn *c)
{
    conn **pp;
    sleeper *sl = c->sl;
    if (c->connecting && c->ep[0].fd >= 0)
        drain_client(c->ep[0].fd);
    if (sl) {
        if (--sl->nconns == 0)
            sl->t_quiet_ms = now_ms();
        if (c->waking)
            sl->nwaking--;
    }
    if (c->waking)
        p->nwaking--;
    for (int s = 0; s < 2; s++) {
        if (c->ep[s].fd >= 0) {
            epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->ep[s].fd, NULL);
            close(c->ep[s].fd);
        }
    }
    for (pp = &p->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    c->closed = 1;
    c->fwd->nconns--;
    atomic_fetch_sub(&p->nconns, 1);
    c->next = p->graveyard;
    p->graveyard = c;
}

static void bury(pfwd *p)
{
    while (p->graveyard) {
        conn *c = p->graveyard;
        p->graveyard = c->next;
        free(c->dir[0].buf);
        free(c->dir[1].buf);
        free(c);
    }
    while (p->flow_grave) {
        flow *fl = p->flow_grave;
        p->flow_grave = fl->hnext;
        free(fl);
    }
}

/* ---- UDP ---------------------------------------------------------------- */

static unsigned flow_hash(const struct sockaddr_in *a)
{
    uint32_t h = (uint32_t)a->sin_addr.s_addr * 2654435761u ^ (uint32_t)a->sin_port * 40503u;
    return (h ^ (h >> 16)) % UDP_BUCKETS;
}

static void lru_unlink(fwd *f, flow *fl)
{
    if (fl->newer)
        fl->newer->older = fl->older;
    else
        f->newest = fl->older;
    if (fl->older)
        fl->older->newer = fl->newer;
    else
        f->oldest = fl->newer;
    fl->newer = fl->older = NULL;
}

static void lru_push(fwd *f, flow *fl)
{
    fl->newer = NULL;
    fl->older = f->newest;
    if (f->newest)
        f->newest->newer = fl;
    else
        f->oldest = fl;
    f->newest = fl;
}

static void flow_touch(fwd *f, flow *fl, int64_t now)
{
    fl->last_ms = now;
    if (f->newest != fl) {
        lru_unlink(f, fl);
        lru_push(f, fl);
    }
}

/* Close a flow; it is freed by bury() as epoll may still name it. */
static void flow_close(pfwd *p, flow *fl)
{
    fwd *f = fl->fwd;
    flow **pp = &f->bucket[flow_hash(&fl->client)];
    while (*pp != fl)
        pp = &(*pp)->hnext;
    *pp = fl->hnext;
    lru_unlink(f, fl);
    epoll_ctl(p->epfd, EPOLL_CTL_DEL, fl->ep.fd, NULL);
    close(fl->ep.fd);
    f->nflows--;
    atomic_fetch_sub(&p->nflows, 1);
    fl->closed = 1;
    fl->hnext = p->flow_grave;
    p->flow_grave = fl;
}

static flow *flow_find(fwd *f, const struct sockaddr_in *client)
{
    for (flow *fl = f->bucket[flow_hash(client)]; fl; fl = fl->hnext)
        if (fl->client.sin_addr.s_addr == client->sin_addr.s_addr &&
            fl->client.sin_port == client->sin_port)
            return fl;
    return NULL;
}

/* A new flow for client, ending the least recently active one when the
 * forward is full. NULL when no socket can be had (the datagram is dropped). */
static flow *flow_open(pfwd *p, fwd *f, const struct sockaddr_in *client, int64_t now)
{
    struct epoll_event ev = { 0 };
    unsigned h = flow_hash(client);
    flow *fl;
    struct sockaddr_in guest; /* pfwd_retarget may change it */
    int fd;
    while (f->nflows >= f->max_flows && f->oldest)
        flow_close(p, f->oldest);
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    pthread_mutex_lock(&p->mu);
    guest = f->guest;
    pthread_mutex_unlock(&p->mu);
    fl = calloc(1, sizeof *fl);
    if (!fl || connect(fd, (struct sockaddr *)&guest, sizeof guest) != 0) {
        close(fd);
        free(fl);
        return NULL;
    }
    fl->ep.kind = EP_FLOW;
    fl->ep.fd = fd;
    fl->client = *client;
    fl->fwd = f;
    ev.events = EPOLLIN;
    ev.data.ptr = &fl->ep;
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        free(fl);
        return NULL;
    }
    fl->hnext = f->bucket[h];
    f->bucket[h] = fl;
    fl->last_ms = now;
    lru_push(f, fl);
    f->nflows++;
    atomic_fetch_add(&p->nflows, 1);
    return fl;
}

/* Datagrams from clients on the host port: each goes to its flow's guest
 * socket, whole. */
static void on_udp_listen(pfwd *p, fwd *f)
{
    int64_t now = now_ms();
    if (f->t_sl && !f->t_sl->t_awake) {
        /* Asleep: nothing to relay to. The datagrams are dropped (as a
         * network may) and wake the owner. */
        while (recv(f->ep.fd, p->dgram, sizeof p->dgram, 0) >= 0 || errno == EINTR)
            ;
        f->t_sl->t_poke = 1;
        return;
    }
    for (int i = 0; i < UDP_BATCH; i++) {
        struct sockaddr_in from;
        union {
            char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = { p->dgram, sizeof p->dgram };
        struct msghdr m = { 0 };
        struct cmsghdr *cm;
        flow *fl;
        ssize_t n;
        m.msg_name = &from;
        m.msg_namelen = sizeof from;
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctl.buf;
        m.msg_controllen = sizeof ctl.buf;
        n = recvmsg(f->ep.fd, &m, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* EAGAIN: drained */
        }
        if (from.sin_family != AF_INET || (m.msg_flags & MSG_TRUNC))
            continue;
        fl = flow_find(f, &from);
        if (!fl && !(fl = flow_open(p, f, &from, now)))
            continue;
        for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
            if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
                struct in_pktinfo pi;
                memcpy(&pi, CMSG_DATA(cm), sizeof pi);
                fl->local = pi.ipi_spec_dst;
            }
        flow_touch(f, fl, now);
        /* A pending ICMP error from the guest fails one send: try again. */
        if (send(fl->ep.fd, p->dgram, (size_t)n, 0) < 0 && errno == ECONNREFUSED)
            (void)!send(fl->ep.fd, p->dgram, (size_t)n, 0);
    }
}

/* Datagrams from the guest on a flow: back to that flow's client from the
 * host port (and from the address the client wrote to). */
static void on_flow(pfwd *p, flow *fl)
{
    fwd *f = fl->fwd;
    int64_t now = now_ms();
    for (int i = 0; i < UDP_BATCH; i++) {
        ssize_t n = recv(fl->ep.fd, p->dgram, sizeof p->dgram, 0);
        if (n < 0) {
            if (errno == EINTR || errno == ECONNREFUSED)
                continue; /* ICMP from the guest: not relayed */
            return;
        }
        flow_touch(f, fl, now);
        if (f->pktinfo && fl->local.s_addr) {
            union {
                char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
                struct cmsghdr align;
            } ctl;
            struct iovec iov = { p->dgram, (size_t)n };
            struct msghdr m = { 0 };
            struct cmsghdr *cm;
            struct in_pktinfo pi = { 0 };
            memset(&ctl, 0, sizeof ctl);
            m.msg_name = &fl->client;
            m.msg_namelen = sizeof fl->client;
            m.msg_iov = &iov;
            m.msg_iovlen = 1;
            m.msg_control = ctl.buf;
            m.msg_controllen = sizeof ctl.buf;
            cm = CMSG_FIRSTHDR(&m);
            cm->cmsg_level = IPPROTO_IP;
            cm->cmsg_type = IP_PKTINFO;
            cm->cmsg_len = CMSG_LEN(sizeof pi);
            pi.ipi_spec_dst = fl->local;
            memcpy(CMSG_DATA(cm), &pi, sizeof pi);
            (void)!sendmsg(f->ep.fd, &m, 0);
        } else {
            (void)!sendto(f->ep.fd, p->dgram, (size_t)n, 0, (struct sockaddr *)&fl->client,
                          sizeof fl->client);
        }
    }
}

/* ---- TCP ---------------------------------------------------------------- */

/* Re-arm interest: read while there is room, write while there is data. */
static void conn_arm(pfwd *p, conn *c)
{
    for (int s = 0; s < 2; s++) {
        struct epoll_event ev = { 0 };
        pipe_dir *in = &c->dir[s];      /* data read from side s */
        pipe_dir *out = &c->dir[1 - s]; /* data to write to side s */
        if (c->ep[s].fd < 0)
            continue;
        if (s == 1 && c->connecting) {
            ev.events = EPOLLOUT;
        } else {
            if (!in->eof && in->len < PFWD_BUF)
                ev.events |= EPOLLIN;
            if (out->len > out->off)
                ev.events |= EPOLLOUT;
        }
        ev.data.ptr = &c->ep[s];
        epoll_ctl(p->epfd, EPOLL_CTL_MOD, c->ep[s].fd, &ev);
    }
}

/* Refuse an accepted client: a reset, not a connection that never answers. */
static void refuse(pfwd *p, int fd)
{
    struct linger lg = { 1, 0 };
    /* counted before the reset: a client that saw it finds it counted */
    atomic_fetch_add(&p->refused, 1);
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* ---- scale to zero: held connections ------------------------------------ */

/* A waking connection's try failed (refused, no answer in PFWD_WAKE_TRY_MS):
 * drop the socket, try again in PFWD_WAKE_RETRY_MS. */
static void guest_retry(pfwd *p, conn *c, int64_t now)
{
    if (c->ep[1].fd >= 0) {
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->ep[1].fd, NULL);
        close(c->ep[1].fd);
        c->ep[1].fd = -1;
    }
    c->retry_at_ms = now + PFWD_WAKE_RETRY_MS;
}

/* One try of a waking connection to reach its guest. */
static void guest_try(pfwd *p, conn *c, int64_t now)
{
    struct epoll_event ev = { 0 };
    int one = 1, gfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (gfd < 0 || gfd >= p->fd_ceiling) {
        if (gfd >= 0)
            close(gfd);
        guest_retry(p, c, now);
        return;
    }
    setsockopt(gfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->ep[1].fd = gfd;
    c->retry_at_ms = now + PFWD_WAKE_TRY_MS;
    if (connect(gfd, (struct sockaddr *)&c->fwd->guest, sizeof c->fwd->guest) != 0 &&
        errno != EINPROGRESS) {
        close(gfd);
        c->ep[1].fd = -1;
        guest_retry(p, c, now);
        return;
    }
    ev.data.ptr = &c->ep[1];
    epoll_ctl(p->epfd, EPOLL_CTL_ADD, gfd, &ev);
    conn_arm(p, c);
}

/* Held connections: while their owner sleeps they wait; once it is awake
 * each tries the guest until it accepts; past its deadline it is closed
 * cleanly (conn_close reads what the client sent first). */
static void waking_tick(pfwd *p, int64_t now)
{
    for (conn *c = p->conns, *next; c; c = next) {
        next = c->next;
        if (!c->waking)
            continue;
        if (now >= c->deadline_ms) {
            c->sl->t_timeouts++;
            conn_close(p, c);
        } else if (c->sl->t_awake && now >= c->retry_at_ms) {
            if (c->ep[1].fd < 0)
                guest_try(p, c, now);
            else
                guest_retry(p, c, now);
        }
    }
}

struct sleep_note {
    char owner[64];
    pfwd_note_kind kind;
    char detail[160];
};

/* The sleepers' timers and requests, then their notes (without the lock).
 * Thread only. */
static void sleepers_tick(pfwd *p, int64_t now)
{
    struct sleep_note notes[16];
    size_t nn = 0;
    int recount = 0;
    pfwd_note_fn fn;
    void *user;

    pthread_mutex_lock(&p->mu);
    for (sleeper *s = p->sleepers; s; s = s->next)
        recount |= s->recount;
    if (recount) { /* forwards newly given a sleeper: the thread's copies, counts */
        for (fwd *f = p->fwds; f; f = f->next)
            f->t_sl = f->dead ? NULL : f->sl;
        for (conn *c = p->conns; c; c = c->next) {
            if (!c->sl && c->fwd->t_sl) {
                c->sl = c->fwd->t_sl;
                c->sl->nconns++;
            }
        }
    }
    for (sleeper *s = p->sleepers; s; s = s->next) {
        struct sleep_note *n = nn < sizeof notes / sizeof notes[0] ? &notes[nn] : NULL;
        s->recount = 0;
        if (s->reset_quiet) {
            s->reset_quiet = 0;
            s->t_quiet_ms = now;
        }
        if (n && !s->dead && s->mode == SL_AWAKE && s->idle_ms > 0 && s->nconns == 0 &&
            now - s->t_quiet_ms >= s->idle_ms) {
            s->mode = SL_ASLEEP;
            n->kind = PFWD_NOTE_IDLE;
            snprintf(n->detail, sizeof n->detail, "no connection for %d s", s->idle_ms / 1000);
        } else if (n && !s->dead && s->mode == SL_ASLEEP && (s->nwaking > 0 || s->t_poke)) {
            s->mode = SL_WAKING;
            n->kind = PFWD_NOTE_WAKE;
            if (s->nwaking > 0)
                snprintf(n->detail, sizeof n->detail, "connection to port %d/tcp", s->t_port);
            else
                snprintf(n->detail, sizeof n->detail, "datagram");
        } else if (n && s->t_timeouts) {
            n->kind = PFWD_NOTE_WAKE_TIMEOUT;
            snprintf(n->detail, sizeof n->detail,
                     "%d held connection%s to port %d/tcp closed: the guest did not accept "
                     "within %d ms",
                     s->t_timeouts, s->t_timeouts == 1 ? "" : "s", s->t_port, p->wake_ms);
            s->t_timeouts = 0;
        } else {
            n = NULL;
        }
        if (n) {
            snprintf(n->owner, sizeof n->owner, "%s", s->owner);
            nn++;
        }
        if (s->mode != SL_ASLEEP)
            s->t_poke = 0;
        s->t_awake = s->mode == SL_AWAKE;
        s->held_pub = s->nwaking;
    }
    fn = p->note_fn;
    user = p->note_user;
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < nn; i++)
        if (fn)
            fn(user, notes[i].owner, notes[i].kind, notes[i].detail);
}

static void on_accept(pfwd *p, fwd *f)
{
    int max_conns, port_max, wake_ms;
    sleeper *sl = f->t_sl;
    int held = sl && !sl->t_awake; /* asleep: hold it until the owner wakes */
    struct sockaddr_in guest;      /* pfwd_retarget may change it */
    pthread_mutex_lock(&p->mu);
    max_conns = p->max_conns;
    port_max = p->port_max_conns;
    wake_ms = p->wake_ms;
    guest = f->guest;
    pthread_mutex_unlock(&p->mu);
    for (int batch = 0; batch < 256; batch++) {
        int cfd = accept4(f->ep.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), gfd;
        conn *c;
        struct epoll_event ev = { 0 };
        int one = 1;
        if (cfd < 0) {
            if ((errno == EMFILE || errno == ENFILE) && p->spare_fd >= 0) {
                /* Out of descriptors (someone else used them up): give
                 * the spare back, refuse this client, keep the spare. */
                close(p->spare_fd);
                cfd = accept4(f->ep.fd, NULL, NULL, SOCK_CLOEXEC);
                if (cfd >= 0)
                    refuse(p, cfd);
                p->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                continue;
            }
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* No spare either: stop watching this listener for a
                 * moment rather than spin on it (expire_conns re-arms). */
                struct epoll_event off = { 0 };
                off.data.ptr = &f->ep;
                epoll_ctl(p->epfd, EPOLL_CTL_MOD, f->ep.fd, &off);
                f->paused_until_ms = now_ms() + 100;
            }
            return;
        }
        /* Limits: per port, in all, and the descriptors kept for the rest
         * of shoald (API, libvirt, QEMU starts): descriptors are handed out
         * lowest first, so a number at the ceiling means the table below it
         * is full. */
        if (f->nconns >= port_max || (int)atomic_load(&p->nconns) >= max_conns ||
            cfd >= p->fd_ceiling) {
            refuse(p, cfd);
            continue;
        }
        gfd = held ? -1 : socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        c = held || (gfd >= 0 && gfd < p->fd_ceiling) ? calloc(1, sizeof *c) : NULL;
        if (!c) {
            refuse(p, cfd);
            if (gfd >= 0)
                close(gfd);
            continue;
        }
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (gfd >= 0)
            setsockopt(gfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fwd = f;
        c->sl = sl;
        if (sl)
            sl->nconns++;
        if (held) {
            c->waking = 1;
            c->deadline_ms = now_ms() + wake_ms;
            sl->nwaking++;
            sl->t_port = f->host_port;
            p->nwaking++;
        }
        for (int s = 0; s < 2; s++) {
            c->ep[s].kind = EP_CONN;
            c->ep[s].conn = c;
            c->ep[s].side = s;
        }
        c->ep[0].fd = cfd;
        c->ep[1].fd = gfd;
        c->connecting = 1;
        c->since_ms = now_ms();
        c->next = p->conns;
        p->conns = c;
        f->nconns++;
        atomic_fetch_add(&p->nconns, 1);
        if (!held && connect(gfd, (struct sockaddr *)&guest, sizeof guest) != 0 &&
            errno != EINPROGRESS) {
            conn_close(p, c);
            continue;
        }
        ev.events = 0;
        ev.data.ptr = &c->ep[0];
        epoll_ctl(p->epfd, EPOLL_CTL_ADD, cfd, &ev);
        ev.data.ptr = &c->ep[1];
        if (gfd >= 0)
            epoll_ctl(p->epfd, EPOLL_CTL_ADD, gfd, &ev);
        conn_arm(p, c);
    }
}

/* Move bytes for connection c after an event on side s. 0, or -1 when the
 * connection is finished and was closed. */
static int on_conn(pfwd *p, conn *c, int s, uint32_t events)
{
    if (c->ep[s].fd < 0)
        return 0; /* a waking connection's try, given up earlier in this batch */
    if (s == 1 && c->connecting) {
        int e = 0;
        socklen_t l = sizeof e;
        getsockopt(c->ep[1].fd, SOL_SOCKET, SO_ERROR, &e, &l);
        if (c->waking && (e != 0 || (events & (EPOLLERR | EPOLLHUP)))) {
            guest_retry(p, c, now_ms()); /* not listening yet: again soon */
            return 0;
        }
        if (e != 0) {
            conn_close(p, c);
            return -1;
        }
        c->connecting = 0;
        if (c->waking) { /* through: the bytes it sent meanwhile follow below */
            c->waking = 0;
            c->sl->nwaking--;
            p->nwaking--;
        }
        c->since_ms = now_ms();
    }
    /* An error on either socket (a reset, an unreachable guest) ends both:
     * nothing more can be delivered, and a half-finished side would wait
     * forever (it used to stay in CLOSE-WAIT). */
    if (events & EPOLLERR) {
        conn_close(p, c);
        return -1;
    }
    if (events & (EPOLLIN | EPOLLHUP)) {
        pipe_dir *d = &c->dir[s];
        while (!d->eof && d->len < PFWD_BUF) {
            ssize_t n;
            if (!d->buf && !(d->buf = malloc(PFWD_BUF))) {
                conn_close(p, c);
                return -1;
            }
            n = read(c->ep[s].fd, d->buf + d->len, PFWD_BUF - d->len);
            if (n > 0) {
                d->len += (size_t)n;
                c->since_ms = now_ms();
            } else if (n == 0) {
                d->eof = 1;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            } else if (errno != EINTR) {
                conn_close(p, c);
                return -1;
            }
        }
    }
    /* Flush both directions where possible. */
    for (int dirn = 0; dirn < 2; dirn++) {
        pipe_dir *d = &c->dir[dirn];
        int to = 1 - dirn;
        if (to == 1 && c->connecting)
            continue;
        while (d->off < d->len) {
            ssize_t n = write(c->ep[to].fd, d->buf + d->off, d->len - d->off);
            if (n > 0) {
                d->off += (size_t)n;
                c->since_ms = now_ms();
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                break;
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else {
                conn_close(p, c);
                return -1;
            }
        }
        if (d->off == d->len) {
            d->off = d->len = 0;
            free(d->buf); /* given back while nothing waits */
            d->buf = NULL;
            if (d->eof)
                shutdown(c->ep[to].fd, SHUT_WR);
        }
    }
    if (c->dir[0].eof && c->dir[1].eof && !c->dir[0].len && !c->dir[1].len) {
        conn_close(p, c);
        return -1;
    }
    /* A side that hung up while the other has nothing for it: with its
     * read side at EOF and ours shut, there is nothing left to do on it. */
    if ((events & EPOLLHUP) && c->dir[s].eof && c->dir[s].len == 0 && c->dir[1 - s].len == 0) {
        conn_close(p, c);
        return -1;
    }
    conn_arm(p, c);
    return 0;
}

/* Connections past their time: a guest that has not accepted within
 * connect_ms (it used to leave the socket in SYN-SENT for two minutes), and
 * connections of which one side has left and nothing moved for linger_ms
 * (the other side is told by shutdown(); one that never finishes used to
 * hold both descriptors for ever, the client's in CLOSE-WAIT). */
static void expire_conns(pfwd *p, int64_t now)
{
    int connect_ms, linger_ms;
    pthread_mutex_lock(&p->mu);
    connect_ms = p->connect_ms;
    linger_ms = p->linger_ms;
    for (fwd *f = p->fwds; f; f = f->next) {
        if (f->paused_until_ms && now >= f->paused_until_ms && !f->dead) {
            struct epoll_event on = { 0 };
            on.events = EPOLLIN;
            on.data.ptr = &f->ep;
            epoll_ctl(p->epfd, EPOLL_CTL_MOD, f->ep.fd, &on);
            f->paused_until_ms = 0;
            if (p->spare_fd < 0)
                p->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        }
    }
    pthread_mutex_unlock(&p->mu);
    for (conn *c = p->conns, *next; c; c = next) {
        next = c->next;
        if (c->waking)
            continue; /* waking_tick's */
        if (c->connecting ? now - c->since_ms >= connect_ms
                          : (c->dir[0].eof || c->dir[1].eof) && now - c->since_ms >= linger_ms)
            conn_close(p, c);
    }
}

/* Drop forwards marked dead, with their connections and flows; close UDP
 * flows idle for their forward's limit. Thread only (or after it ended). */
static void reap(pfwd *p)
{
    fwd **pp;
    int64_t now = now_ms();
    pthread_mutex_lock(&p->mu);
    pp = &p->fwds;
    while (*pp) {
        fwd *f = *pp;
        if (!f->dead) {
            while (f->oldest && now - f->oldest->last_ms >= f->idle_ms)
                flow_close(p, f->oldest);
            pp = &f->next;
            continue;
        }
        *pp = f->next;
        for (conn *c = p->conns, *next; c; c = next) {
            next = c->next;
            if (c->fwd == f)
                conn_close(p, c);
        }
        while (f->oldest)
            flow_close(p, f->oldest);
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, f->ep.fd, NULL);
        close(f->ep.fd);
        if (f->sl)
            f->sl->nfwds--;
        free(f);
    }
    for (sleeper **sp = &p->sleepers; *sp;) {
        sleeper *s = *sp;
        if (s->nfwds > 0) {
            sp = &s->next;
            continue;
        }
        *sp = s->next; /* its forwards and their connections are gone */
        free(s);
    }
    bury(p);
    pthread_cond_broadcast(&p->reaped);
    pthread_mutex_unlock(&p->mu);
}

static void *pfwd_main(void *arg)
{
    pfwd *p = arg;
    struct epoll_event evs[64];
    int tick = TICK_MS;
    int64_t last_expiry = now_ms();
    for (;;) {
        int n = epoll_wait(p->epfd, evs, 64, tick);
        int stop;
        for (int i = 0; i < n; i++) {
            endpoint *ep = evs[i].data.ptr;
            if (ep->kind == EP_WAKE) {
                uint64_t v;
                if (read(ep->fd, &v, sizeof v) < 0 && errno != EAGAIN)
                    break;
            } else if (ep->kind == EP_LISTEN) {
                fwd *f = (fwd *)((char *)ep - offsetof(fwd, ep));
                if (f->proto == PFWD_UDP)
                    on_udp_listen(p, f);
                else
                    on_accept(p, f);
            } else if (ep->kind == EP_FLOW) {
                flow *fl = (flow *)((char *)ep - offsetof(flow, ep));
                if (!fl->closed)
                    on_flow(p, fl);
            } else {
                /* A connection closed earlier in this batch may appear
                 * again: it stays allocated until bury(). */
                if (!ep->conn->closed)
                    on_conn(p, ep->conn, ep->side, evs[i].events);
            }
        }
        bury(p);
        if (p->nwaking) {
            waking_tick(p, now_ms());
            bury(p);
        }
        sleepers_tick(p, now_ms());
        if (now_ms() - last_expiry >= EXPIRY_MS) {
            last_expiry = now_ms();
            expire_conns(p, last_expiry);
            bury(p);
        }
        reap(p);
        pthread_mutex_lock(&p->mu);
        stop = p->stop;
        tick = p->tick_ms;
        if (p->sleepers && tick > SLEEP_TICK_MS)
            tick = SLEEP_TICK_MS;
        if (p->nwaking && tick > PFWD_WAKE_RETRY_MS)
            tick = PFWD_WAKE_RETRY_MS;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            break;
    }
    while (p->conns)
        conn_close(p, p->conns);
    bury(p);
    return NULL;
}

static void wake(pfwd *p)
{
    uint64_t one = 1;
    if (write(p->wake.fd, &one, sizeof one) < 0 && errno != EAGAIN)
        perror("pfwd wake");
}

int pfwd_start(const char *bind_addr, pfwd **out, char *err, size_t errlen)
{
    pfwd *p = calloc(1, sizeof *p);
    struct epoll_event ev = { 0 };
    *out = NULL;
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (inet_pton(AF_INET, bind_addr, &p->bind) != 1) {
        snprintf(err, errlen, "bad bind address '%s'", bind_addr);
        free(p);
        return -1;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->reaped, NULL);
    p->udp_idle_ms = PFWD_UDP_IDLE_MS;
    p->udp_max_flows = PFWD_UDP_MAX_FLOWS;
    p->tick_ms = TICK_MS;
    atomic_init(&p->nflows, 0);
    atomic_init(&p->nconns, 0);
    atomic_init(&p->refused, 0);
    p->port_max_conns = PFWD_PORT_MAX_CONNS;
    p->connect_ms = PFWD_CONNECT_MS;
    p->linger_ms = PFWD_LINGER_MS;
    p->wake_ms = PFWD_WAKE_MS;
    {
        struct rlimit rl;
        long lim = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                       ? (long)rl.rlim_cur
                       : 1024;
        long reserve = lim / 4 > PFWD_FD_RESERVE_MIN ? lim / 4 : PFWD_FD_RESERVE_MIN;
        p->fd_ceiling = lim - reserve > 16 ? (int)(lim - reserve) : 16;
        p->max_conns = (int)(lim / 3 / 2 > 1 ? lim / 3 / 2 : 1);
    }
    p->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    p->wake.kind = EP_WAKE;
    p->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ev.events = EPOLLIN;
    ev.data.ptr = &p->wake;
    if (p->epfd < 0 || p->wake.fd < 0 || epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wake.fd, &ev) ||
        pthread_create(&p->thread, NULL, pfwd_main, p) != 0) {
        snprintf(err, errlen, "port forwarder: %s", strerror(errno));
        if (p->epfd >= 0)
            close(p->epfd);
        if (p->wake.fd >= 0)
            close(p->wake.fd);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->reaped);
        free(p);
        return -1;
    }
    *out = p;
    return 0;
}

void pfwd_stop(pfwd *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    for (fwd *f = p->fwds; f; f = f->next)
        f->dead = 1;
    pthread_mutex_unlock(&p->mu);
    wake(p);
    pthread_join(p->thread, NULL);
    reap(p);
    close(p->wake.fd);
    close(p->epfd);
    if (p->spare_fd >= 0)
        close(p->spare_fd);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->reaped);
    free(p);
}

void pfwd_set_udp_limits(pfwd *p, int idle_ms, int max_flows)
{
    pthread_mutex_lock(&p->mu);
    if (idle_ms > 0)
        p->udp_idle_ms = idle_ms;
    if (max_flows > 0)
        p->udp_max_flows = max_flows;
    pthread_mutex_unlock(&p->mu);
}

int pfwd_add(pfwd *p, const char *owner, pfwd_proto proto, int host_port, uint32_t guest_ip,
             int guest_port, char *err, size_t errlen)
{
    fwd *f = calloc(1, sizeof *f);
    struct epoll_event ev = { 0 };
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    f->ep.kind = EP_LISTEN;
    f->ep.fd = open_listener(&p->bind, proto, host_port, &f->pktinfo, err, errlen);
    if (f->ep.fd < 0) {
        free(f);
        return -1;
    }
    f->proto = proto;
    snprintf(f->owner, sizeof f->owner, "%s", owner);
    f->host_port = host_port;
    f->guest.sin_family = AF_INET;
    f->guest.sin_port = htons((uint16_t)guest_port);
    f->guest.sin_addr.s_addr = htonl(guest_ip);
    pthread_mutex_lock(&p->mu);
    f->idle_ms = p->udp_idle_ms;
    f->max_flows = p->udp_max_flows;
    if (proto == PFWD_UDP) {
        /* Expire within a quarter of the idle time (10 ms .. TICK_MS). */
        int t = f->idle_ms / 4;
        t = t < 10 ? 10 : t;
        if (t < p->tick_ms)
            p->tick_ms = t;
    }
    f->next = p->fwds;
    p->fwds = f;
    ev.events = EPOLLIN;
    ev.data.ptr = &f->ep;
    epoll_ctl(p->epfd, EPOLL_CTL_ADD, f->ep.fd, &ev);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void pfwd_remove(pfwd *p, const char *owner)
{
    int any = 0;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    for (sleeper *s = p->sleepers; s; s = s->next)
        if (!strcmp(s->owner, owner))
            s->dead = 1;
    for (fwd *f = p->fwds; f; f = f->next) {
        if (!strcmp(f->owner, owner) && !f->dead) {
            f->dead = 1;
            /* Stop accepting at once; the thread closes it. */
            epoll_ctl(p->epfd, EPOLL_CTL_DEL, f->ep.fd, NULL);
            any = 1;
        }
    }
    if (any) {
        /* Wait (bounded) for the thread to close the listeners, so the
         * ports can be bound again as soon as this returns. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 2;
        wake(p);
        for (;;) {
            int left = 0;
            for (fwd *f = p->fwds; f; f = f->next)
                left |= !strcmp(f->owner, owner);
            if (!left || pthread_cond_timedwait(&p->reaped, &p->mu, &ts) != 0)
                break;
        }
    }
    pthread_mutex_unlock(&p->mu);
}

int pfwd_retarget(pfwd *p, const char *owner, const char *new_owner, uint32_t guest_ip)
{
    int n = 0;
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    for (fwd *f = p->fwds; f; f = f->next) {
        if (!f->dead && !f->sl && !strcmp(f->owner, owner)) {
            snprintf(f->owner, sizeof f->owner, "%s", new_owner);
            f->guest.sin_addr.s_addr = htonl(guest_ip);
            n++;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}

size_t pfwd_count(pfwd *p)
{
    size_t n = 0;
    pthread_mutex_lock(&p->mu);
    for (fwd *f = p->fwds; f; f = f->next)
        n += !f->dead;
    pthread_mutex_unlock(&p->mu);
    return n;
}

size_t pfwd_flow_count(pfwd *p)
{
    return atomic_load(&p->nflows);
}

void pfwd_set_tcp_limits(pfwd *p, int max_conns, int port_max_conns, int connect_ms, int linger_ms)
{
    pthread_mutex_lock(&p->mu);
    if (max_conns > 0)
        p->max_conns = max_conns;
    if (port_max_conns > 0)
        p->port_max_conns = port_max_conns;
    if (connect_ms > 0)
        p->connect_ms = connect_ms;
    if (linger_ms > 0)
        p->linger_ms = linger_ms;
    pthread_mutex_unlock(&p->mu);
}

void pfwd_tcp_stats(pfwd *p, struct pfwd_tcp_stats *st)
{
    memset(st, 0, sizeof *st);
    st->conns = atomic_load(&p->nconns);
    st->refused = atomic_load(&p->refused);
    pthread_mutex_lock(&p->mu);
    st->max_conns = p->max_conns;
    st->port_max_conns = p->port_max_conns;
    st->fd_ceiling = p->fd_ceiling;
    pthread_mutex_unlock(&p->mu);
}

/* ---- scale to zero ------------------------------------------------------ */

void pfwd_set_notify(pfwd *p, pfwd_note_fn fn, void *user)
{
    pthread_mutex_lock(&p->mu);
    p->note_fn = fn;
    p->note_user = user;
    pthread_mutex_unlock(&p->mu);
}

void pfwd_set_wake_ms(pfwd *p, int wake_ms)
{
    pthread_mutex_lock(&p->mu);
    if (wake_ms > 0)
        p->wake_ms = wake_ms;
    pthread_mutex_unlock(&p->mu);
}

/* The live sleeper of owner, or NULL. Caller holds mu. */
static sleeper *sleeper_find(pfwd *p, const char *owner)
{
    for (sleeper *s = p->sleepers; s; s = s->next)
        if (!s->dead && !strcmp(s->owner, owner))
            return s;
    return NULL;
}

int pfwd_owned(pfwd *p, const char *owner)
{
    int n = 0;
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    for (fwd *f = p->fwds; f; f = f->next)
        n += !f->dead && !strcmp(f->owner, owner);
    pthread_mutex_unlock(&p->mu);
    return n;
}

int pfwd_set_idle(pfwd *p, const char *owner, int idle_ms)
{
    sleeper *s;
    int rc = -1;
    pthread_mutex_lock(&p->mu);
    if (!(s = sleeper_find(p, owner))) {
        int n = 0;
        for (fwd *f = p->fwds; f; f = f->next)
            n += !f->dead && !strcmp(f->owner, owner);
        if (!n || !(s = calloc(1, sizeof *s)))
            goto out;
        snprintf(s->owner, sizeof s->owner, "%s", owner);
        s->mode = SL_AWAKE;
        s->t_awake = 1;
        s->next = p->sleepers;
        p->sleepers = s;
    }
    s->idle_ms = idle_ms > 0 ? idle_ms : 0;
    s->reset_quiet = 1;
    for (fwd *f = p->fwds; f; f = f->next) {
        if (!f->dead && !strcmp(f->owner, owner) && f->sl != s) {
            f->sl = s;
            s->nfwds++;
            s->recount = 1;
        }
    }
    rc = 0;
out:
    pthread_mutex_unlock(&p->mu);
    wake(p);
    return rc;
}

/* Set the mode of owner's sleeper; -1 when it has none. */
static int sleeper_mode(pfwd *p, const char *owner, int mode)
{
    sleeper *s;
    if (!p)
        return -1;
    pthread_mutex_lock(&p->mu);
    if ((s = sleeper_find(p, owner))) {
        s->mode = mode;
        s->reset_quiet = 1;
    }
    pthread_mutex_unlock(&p->mu);
    wake(p);
    return s ? 0 : -1;
}

int pfwd_sleep(pfwd *p, const char *owner)
{
    return sleeper_mode(p, owner, SL_ASLEEP);
}

int pfwd_resume(pfwd *p, const char *owner)
{
    return sleeper_mode(p, owner, SL_AWAKE);
}

int pfwd_sleep_info(pfwd *p, const char *owner, int *asleep, int *held)
{
    sleeper *s;
    pthread_mutex_lock(&p->mu);
    if ((s = sleeper_find(p, owner))) {
        *asleep = s->mode != SL_AWAKE;
        *held = s->held_pub;
    }
    pthread_mutex_unlock(&p->mu);
    return s ? 0 : -1;
}
