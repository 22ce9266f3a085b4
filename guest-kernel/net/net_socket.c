/*
 * net_socket.c - the socket layer: descriptors, bind/listen/accept/connect,
 * send/recv for TCP and UDP, options, poll, and the blocking loop.
 */
#include "net_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>

/* ---- socket objects ---- */

struct nsock *sock_new(struct net_stack *s, int type)
{
    struct nsock *sk = net_zalloc(s, sizeof *sk);
    if (!sk)
        return NULL;
    sk->fd = -1;
    sk->type = (uint8_t)type;
    sk->next = s->socks;
    s->socks = sk;
    return sk;
}

void sock_free(struct net_stack *s, struct nsock *sk)
{
    for (struct nsock **p = &s->socks; *p; p = &(*p)->next) {
        if (*p == sk) {
            *p = sk->next;
            break;
        }
    }
    if (sk->fd >= 0 && (unsigned)(sk->fd - NET_FD_BASE) < s->cfg.max_sockets)
        s->fds[sk->fd - NET_FD_BASE] = NULL;
    /* Children still waiting for accept() lose their listener. */
    for (struct nsock *c = s->socks; c; c = c->next)
        if (c->parent == sk)
            c->parent = NULL;
    while (sk->dq_head) {
        struct udp_dgram *d = sk->dq_head;
        sk->dq_head = d->next;
        net_port_free(d);
    }
    net_port_free(sk->tcp.sbuf);
    net_port_free(sk->tcp.rbuf);
    net_port_free(sk);
}

void sock_reap(struct net_stack *s)
{
    struct nsock **p = &s->socks;
    while (*p) {
        struct nsock *sk = *p;
        int dead = sk->fd < 0 && !sk->parent &&
                   (sk->type == SOCK_STREAM ? sk->tcp.state == NET_TCP_CLOSED
                                            : (sk->flags & NS_ORPHAN) != 0);
        if (dead) {
            *p = sk->next;
            sk->next = NULL;
            net_port_free(sk->tcp.sbuf);
            net_port_free(sk->tcp.rbuf);
            while (sk->dq_head) {
                struct udp_dgram *d = sk->dq_head;
                sk->dq_head = d->next;
                net_port_free(d);
            }
            net_port_free(sk);
            continue;
        }
        p = &sk->next;
    }
}

static int port_in_use(struct net_stack *s, int type, uint16_t port)
{
    for (struct nsock *sk = s->socks; sk; sk = sk->next)
        if (sk->type == type && sk->lport == port && (sk->flags & NS_BOUND))
            return 1;
    return 0;
}

uint16_t sock_ephemeral_port(struct net_stack *s, int type)
{
    for (unsigned i = 0; i < 16384; i++) {
        uint16_t p = s->next_port;
        s->next_port = p == 65535 ? 49152 : (uint16_t)(p + 1);
        if (!port_in_use(s, type, p))
            return p;
    }
    return 0;
}

static struct nsock *fd_get(struct net_stack *s, int fd)
{
    unsigned i = (unsigned)(fd - NET_FD_BASE);
    if (fd < NET_FD_BASE || i >= s->cfg.max_sockets)
        return NULL;
    return s->fds[i];
}

static int fd_alloc(struct net_stack *s, struct nsock *sk)
{
    for (unsigned i = 0; i < s->cfg.max_sockets; i++) {
        if (!s->fds[i]) {
            s->fds[i] = sk;
            sk->fd = (int)i + NET_FD_BASE;
            return sk->fd;
        }
    }
    return -EMFILE;
}

/* ---- blocking ---- */

typedef int (*ready_fn)(struct net_stack *s, void *arg);

/* Loop until ready() or timeout_ms (< 0: forever). Returns 1 if ready. */
static int wait_for(struct net_stack *s, ready_fn ready, void *arg, int timeout_ms)
{
    uint64_t start = net_port_now_ms();
    for (;;) {
        if (ready(s, arg))
            return 1;
        uint64_t now = net_port_now_ms();
        if (timeout_ms >= 0 && now - start >= (uint64_t)timeout_ms)
            return 0;
        if (s->nif->poll)
            s->nif->poll(s->nif);
        net_poll(s, now);
        if (ready(s, arg))
            return 1;
        uint64_t dl = net_next_deadline(s);
        if (timeout_ms >= 0 && start + (uint64_t)timeout_ms < dl)
            dl = start + (uint64_t)timeout_ms;
        net_port_idle(dl);
    }
}

static int connecting(const struct nsock *sk)
{
    return sk->tcp.state == NET_TCP_SYN_SENT || sk->tcp.state == NET_TCP_SYN_RCVD;
}

static int ready_connected(struct net_stack *s, void *arg)
{
    (void)s;
    return !connecting(arg);
}
static int ready_accept(struct net_stack *s, void *arg)
{
    struct nsock *sk = arg;
    (void)s;
    return sk->aq_head != NULL || sk->tcp.state != NET_TCP_LISTEN;
}
static int ready_send(struct net_stack *s, void *arg)
{
    struct nsock *sk = arg;
    (void)s;
    return connecting(sk) ? 0
           : sk->tcp.state != NET_TCP_ESTABLISHED && sk->tcp.state != NET_TCP_CLOSE_WAIT
               ? 1
               : sk->err || sk->tcp.sbuf_len < sk->tcp.sbuf_size;
}
static int ready_recv(struct net_stack *s, void *arg)
{
    struct nsock *sk = arg;
    (void)s;
    if (sk->type == SOCK_DGRAM)
        return sk->dq_head != NULL;
    return sk->tcp.rbuf_len > 0 || sk->tcp.rx_fin || sk->err || (sk->flags & NS_SHUT_RD) ||
           (!connecting(sk) && sk->tcp.state != NET_TCP_ESTABLISHED &&
            sk->tcp.state != NET_TCP_FIN_WAIT_1 && sk->tcp.state != NET_TCP_FIN_WAIT_2);
}

static int take_err(struct nsock *sk)
{
    int e = sk->err;
    sk->err = 0;
    return -e;
}

/* ---- calls ---- */

int nsock_socket(struct net_stack *s, int domain, int type, int protocol)
{
    if (domain != AF_INET)
        return -EAFNOSUPPORT;
    int nb = type & SOCK_NONBLOCK;
    type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (type != SOCK_STREAM && type != SOCK_DGRAM)
        return -EPROTONOSUPPORT;
    if (protocol && !(type == SOCK_STREAM && protocol == IPPROTO_TCP) &&
        !(type == SOCK_DGRAM && protocol == IPPROTO_UDP))
        return -EPROTONOSUPPORT;
    struct nsock *sk = sock_new(s, type);
    if (!sk)
        return -ENOMEM;
    int fd = fd_alloc(s, sk);
    if (fd < 0) {
        sock_free(s, sk);
        return fd;
    }
    if (nb)
        sk->flags |= NS_NONBLOCK;
    return fd;
}

static int get_sin(const struct sockaddr *sa, socklen_t len, uint32_t *ip, uint16_t *port)
{
    const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
    if (!sa || len < (socklen_t)sizeof *in)
        return -EINVAL;
    if (in->sin_family != AF_INET)
        return -EAFNOSUPPORT;
    *ip = ntohl(in->sin_addr.s_addr);
    *port = ntohs(in->sin_port);
    return 0;
}

static void put_sin(struct sockaddr *sa, socklen_t *len, uint32_t ip, uint16_t port)
{
    struct sockaddr_in in;
    if (!sa || !len)
        return;
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    in.sin_addr.s_addr = htonl(ip);
    socklen_t n = *len < (socklen_t)sizeof in ? *len : (socklen_t)sizeof in;
    memcpy(sa, &in, n);
    *len = sizeof in;
}

int nsock_bind(struct net_stack *s, int fd, const struct sockaddr *sa, socklen_t len)
{
    struct nsock *sk = fd_get(s, fd);
    uint32_t ip;
    uint16_t port;
    if (!sk)
        return -EBADF;
    int rc = get_sin(sa, len, &ip, &port);
    if (rc)
        return rc;
    if (sk->flags & NS_BOUND)
        return -EINVAL;
    if (ip && ip != s->nif->ip)
        return -EADDRNOTAVAIL;
    if (port == 0) {
        port = sock_ephemeral_port(s, sk->type);
        if (!port)
            return -EADDRINUSE;
    } else {
        for (struct nsock *o = s->socks; o; o = o->next) {
            if (o == sk || o->type != sk->type || o->lport != port || !(o->flags & NS_BOUND))
                continue;
            if (o->lip && ip && o->lip != ip)
                continue;
            if (sk->type == SOCK_STREAM && (sk->flags & NS_REUSEADDR) &&
                o->tcp.state != NET_TCP_LISTEN)
                continue;
            if (sk->type == SOCK_STREAM && o->fd < 0 && o->tcp.state == NET_TCP_CLOSED)
                continue;
            return -EADDRINUSE;
        }
    }
    sk->lip = ip;
    sk->lport = port;
    sk->flags |= NS_BOUND;
    return 0;
}

static int autobind(struct net_stack *s, struct nsock *sk)
{
    if (sk->flags & NS_BOUND)
        return 0;
    uint16_t p = sock_ephemeral_port(s, sk->type);
    if (!p)
        return -EAGAIN;
    sk->lport = p;
    sk->flags |= NS_BOUND;
    return 0;
}

int nsock_listen(struct net_stack *s, int fd, int backlog)
{
    struct nsock *sk = fd_get(s, fd);
    if (!sk)
        return -EBADF;
    if (sk->type != SOCK_STREAM)
        return -EOPNOTSUPP;
    if (sk->tcp.state != NET_TCP_CLOSED && sk->tcp.state != NET_TCP_LISTEN)
        return -EINVAL;
    int rc = autobind(s, sk);
    if (rc)
        return rc;
    if (backlog < 1)
        backlog = 1;
    if ((unsigned)backlog > s->cfg.max_sockets)
        backlog = (int)s->cfg.max_sockets;
    sk->backlog = backlog;
    sk->tcp.state = NET_TCP_LISTEN;
    return 0;
}

int nsock_accept(struct net_stack *s, int fd, struct sockaddr *sa, socklen_t *len)
{
    struct nsock *sk = fd_get(s, fd);
    if (!sk)
        return -EBADF;
    if (sk->type != SOCK_STREAM || sk->tcp.state != NET_TCP_LISTEN)
        return -EINVAL;
    if (!sk->aq_head) {
        if (sk->flags & NS_NONBLOCK)
            return -EAGAIN;
        wait_for(s, ready_accept, sk, -1);
        if (sk->tcp.state != NET_TCP_LISTEN)
            return -EINVAL;
    }
    struct nsock *c = sk->aq_head;
    int nfd = fd_alloc(s, c);
    if (nfd < 0)
        return nfd;
    sk->aq_head = c->aq_next;
    if (!sk->aq_head)
        sk->aq_tail = NULL;
    c->aq_next = NULL;
    c->parent = NULL;
    sk->nchild--;
    put_sin(sa, len, c->rip, c->rport);
    return nfd;
}

int nsock_connect(struct net_stack *s, int fd, const struct sockaddr *sa, socklen_t len)
{
    struct nsock *sk = fd_get(s, fd);
    uint32_t ip;
    uint16_t port;
    if (!sk)
        return -EBADF;
    int rc = get_sin(sa, len, &ip, &port);
    if (rc)
        return rc;
    if (!ip || !port)
        return -EINVAL;
    struct net_if *nif = s->nif;
    if (!ip_is_local(s, ip) && ((ip ^ nif->ip) & s->netmask) && !nif->gw && ip != 0xffffffffu)
        return -ENETUNREACH;
    if (sk->type == SOCK_DGRAM) {
        if ((rc = autobind(s, sk)))
            return rc;
        sk->rip = ip;
        sk->rport = port;
        sk->flags |= NS_CONNECTED;
        return 0;
    }
    switch (sk->tcp.state) {
    case NET_TCP_CLOSED:
        if (sk->tcp.snd_max)
            return -EISCONN; /* used before: POSIX wants a new socket */
        break;
    case NET_TCP_SYN_SENT:
    case NET_TCP_SYN_RCVD: return -EALREADY;
    case NET_TCP_LISTEN: return -EINVAL;
    default: return -EISCONN;
    }
    if (ip_is_local(s, ip))
        return -ECONNREFUSED; /* no loopback path in this stack */
    if ((rc = autobind(s, sk)))
        return rc;
    sk->lip = nif->ip;
    sk->rip = ip;
    sk->rport = port;
    if ((rc = tcp_connect(s, sk)))
        return rc;
    if (sk->flags & NS_NONBLOCK)
        return -EINPROGRESS;
    wait_for(s, ready_connected, sk, -1);
    if (sk->tcp.state == NET_TCP_CLOSED)
        return sk->err ? take_err(sk) : -ECONNREFUSED;
    return 0;
}

static ssize_t tcp_send_bytes(struct net_stack *s, struct nsock *sk, const uint8_t *buf, size_t n,
                              int flags)
{
    int nb = (sk->flags & NS_NONBLOCK) || (flags & MSG_DONTWAIT);
    size_t done = 0;
    struct tcp_cb *t = &sk->tcp;
    for (;;) {
        if (sk->err)
            return done ? (ssize_t)done : take_err(sk);
        if ((sk->flags & NS_SHUT_WR) || t->fin_pending)
            return done ? (ssize_t)done : -EPIPE;
        if (connecting(sk)) {
            if (nb)
                return -EAGAIN;
            wait_for(s, ready_send, sk, -1);
            continue;
        }
        if (t->state != NET_TCP_ESTABLISHED && t->state != NET_TCP_CLOSE_WAIT)
            return done ? (ssize_t)done : t->snd_max ? -EPIPE : -ENOTCONN;
        uint32_t room = t->sbuf_size - t->sbuf_len;
        if (room) {
            uint32_t k = (uint32_t)NET_MIN((size_t)room, n - done);
            uint32_t pos = (t->sbuf_head + t->sbuf_len) % t->sbuf_size;
            uint32_t first = NET_MIN(k, t->sbuf_size - pos);
            memcpy(t->sbuf + pos, buf + done, first);
            memcpy(t->sbuf, buf + done + first, k - first);
            t->sbuf_len += k;
            done += k;
            tcp_output(s, sk);
        }
        if (done == n)
            return (ssize_t)done;
        if (nb)
            return done ? (ssize_t)done : -EAGAIN;
        wait_for(s, ready_send, sk, -1);
    }
}

ssize_t nsock_sendto(struct net_stack *s, int fd, const void *buf, size_t n, int flags,
                     const struct sockaddr *sa, socklen_t len)
{
    struct nsock *sk = fd_get(s, fd);
    if (!sk)
        return -EBADF;
    if (!buf && n)
        return -EFAULT;
    if (sk->type == SOCK_STREAM) {
        if (sa)
            return sk->tcp.state == NET_TCP_CLOSED ? -ENOTCONN : -EISCONN;
        return tcp_send_bytes(s, sk, buf, n, flags);
    }
    uint32_t ip = sk->rip;
    uint16_t port = sk->rport;
    if (sa) {
        int rc = get_sin(sa, len, &ip, &port);
        if (rc)
            return rc;
    } else if (!(sk->flags & NS_CONNECTED)) {
        return -EDESTADDRREQ;
    }
    if (!ip || !port)
        return -EINVAL;
    if (sk->flags & NS_SHUT_WR)
        return -EPIPE;
    int rc = autobind(s, sk);
    if (rc)
        return rc;
    rc = udp_output(s, sk, ip, port, buf, n);
    return rc ? rc : (ssize_t)n;
}

ssize_t nsock_send(struct net_stack *s, int fd, const void *buf, size_t n, int flags)
{
    return nsock_sendto(s, fd, buf, n, flags, NULL, 0);
}

ssize_t nsock_recvfrom(struct net_stack *s, int fd, void *buf, size_t n, int flags,
                       struct sockaddr *sa, socklen_t *len)
{
    struct nsock *sk = fd_get(s, fd);
    if (!sk)
        return -EBADF;
    if (!buf && n)
        return -EFAULT;
    int nb = (sk->flags & NS_NONBLOCK) || (flags & MSG_DONTWAIT);
    if (sk->type == SOCK_DGRAM) {
        if (!sk->dq_head) {
            if (sk->flags & NS_SHUT_RD)
                return 0;
            if (nb)
                return -EAGAIN;
            wait_for(s, ready_recv, sk, -1);
        }
        struct udp_dgram *d = sk->dq_head;
        size_t k = NET_MIN(n, (size_t)d->len);
        memcpy(buf, d->data, k);
        put_sin(sa, len, d->src, d->sport);
        if (!(flags & MSG_PEEK)) {
            sk->dq_head = d->next;
            if (!sk->dq_head)
                sk->dq_tail = NULL;
            sk->dq_bytes -= d->len;
            net_port_free(d);
        }
        return (ssize_t)k;
    }
    struct tcp_cb *t = &sk->tcp;
    if (t->state == NET_TCP_LISTEN)
        return -ENOTCONN;
    if (t->state == NET_TCP_CLOSED && !t->snd_max)
        return -ENOTCONN;
    if (!ready_recv(s, sk)) {
        if (nb)
            return -EAGAIN;
        wait_for(s, ready_recv, sk, -1);
    }
    if (t->rbuf_len == 0) {
        if (sk->err)
            return take_err(sk);
        return 0; /* FIN, shutdown or closed */
    }
    if (sk->flags & NS_SHUT_RD)
        return 0;
    size_t k = NET_MIN(n, (size_t)t->rbuf_len);
    uint32_t first = (uint32_t)NET_MIN(k, (size_t)(t->rbuf_size - t->rbuf_head));
    memcpy(buf, t->rbuf + t->rbuf_head, first);
    memcpy((uint8_t *)buf + first, t->rbuf, k - first);
    if (!(flags & MSG_PEEK)) {
        t->rbuf_head = (uint32_t)((t->rbuf_head + k) % t->rbuf_size);
        t->rbuf_len -= (uint32_t)k;
        tcp_usr_read(s, sk);
    }
    put_sin(sa, len, sk->rip, sk->rport);
    return (ssize_t)k;
}

ssize_t nsock_recv(struct net_stack *s, int fd, void *buf, size_t n, int flags)
{
    return nsock_recvfrom(s, fd, buf, n, flags, NULL, NULL);
}

int nsock_shutdown(struct net_stack *s, int fd, int how)
{
    struct nsock *sk = fd_get(s, fd);
    if (!sk)
        return -EBADF;
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
        return -EINVAL;
    if (sk->type == SOCK_STREAM &&
        (sk->tcp.state == NET_TCP_CLOSED || sk->tcp.state == NET_TCP_LISTEN || connecting(sk)))
        return -ENOTCONN;
    if (how != SHUT_WR)
        sk->flags |= NS_SHUT_RD;
    if (how != SHUT_RD) {
        sk->flags |= NS_SHUT_WR;
        if (sk->type == SOCK_STREAM)
            tcp_usr_shutdown_wr(s, sk);
    }
    return 0;
}

int nsock_close(struct net_stack *s, int fd)
{
    struct nsock *sk = fd_get(s, fd);
    if (!sk)
        return -EBADF;
    s->fds[fd - NET_FD_BASE] = NULL;
    sk->fd = -1;
    if (sk->type == SOCK_STREAM)
        tcp_usr_close(s, sk);
    else
        sk->flags |= NS_ORPHAN;
    sock_reap(s);
    return 0;
}

int nsock_setsockopt(struct net_stack *s, int fd, int level, int name, const void *val,
                     socklen_t len)
{
    struct nsock *sk = fd_get(s, fd);
    if (!sk)
        return -EBADF;
    if (!val || len < (socklen_t)sizeof(int))
        return -EINVAL;
    int v;
    memcpy(&v, val, sizeof v);
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_REUSEADDR:
            sk->flags = (uint8_t)(v ? sk->flags | NS_REUSEADDR : sk->flags & ~NS_REUSEADDR);
            return 0;
        case SO_KEEPALIVE: return 0; /* accepted, not implemented */
        case SO_RCVBUF:
        case SO_SNDBUF:
            if (sk->tcp.sbuf || sk->tcp.rbuf)
                return -EISCONN;
            if (v < 1024)
                v = 1024;
            if (v > (1 << 22))
                v = 1 << 22;
            if (name == SO_RCVBUF) {
                sk->want_rcvbuf = (uint32_t)NET_MIN(v, 65535);
            } else {
                sk->want_sndbuf = (uint32_t)v;
            }
            return 0;
        default: return -ENOPROTOOPT;
        }
    }
    if (level == IPPROTO_TCP && name == TCP_NODELAY) {
        sk->flags = (uint8_t)(v ? sk->flags | NS_NODELAY : sk->flags & ~NS_NODELAY);
        if (v && sk->type == SOCK_STREAM)
            tcp_output(s, sk);
        return 0;
    }
    return -ENOPROTOOPT;
}

int nsock_getsockopt(struct net_stack *s, int fd, int level, int name, void *val, socklen_t *len)
{
    struct nsock *sk = fd_get(s, fd);
    if (!sk)
        return -EBADF;
    if (!val || !len || *len < (socklen_t)sizeof(int))
        return -EINVAL;
    int v;
    if (level == SOL_SOCKET && name == SO_ERROR) {
        v = sk->err;
        sk->err = 0;
    } else if (level == SOL_SOCKET && name == SO_TYPE) {
        v = sk->type;
    } else if (level == SOL_SOCKET && name == SO_REUSEADDR) {
        v = !!(sk->flags & NS_REUSEADDR);
    } else if (level == SOL_SOCKET && name == SO_RCVBUF) {
        v = (int)(sk->want_rcvbuf ? sk->want_rcvbuf : s->cfg.tcp_rcvbuf);
    } else if (level == SOL_SOCKET && name == SO_SNDBUF) {
        v = (int)(sk->want_sndbuf ? sk->want_sndbuf : s->cfg.tcp_sndbuf);
    } else if (level == IPPROTO_TCP && name == TCP_NODELAY) {
        v = !!(sk->flags & NS_NODELAY);
    } else {
        return -ENOPROTOOPT;
    }
    memcpy(val, &v, sizeof v);
    *len = sizeof v;
    return 0;
}

int nsock_getsockname(struct net_stack *s, int fd, struct sockaddr *sa, socklen_t *len)
{
    struct nsock *sk = fd_get(s, fd);
    if (!sk)
        return -EBADF;
    if (!sa || !len)
        return -EFAULT;
    put_sin(sa, len, sk->lip, sk->lport);
    return 0;
}

int nsock_getpeername(struct net_stack *s, int fd, struct sockaddr *sa, socklen_t *len)
{
    struct nsock *sk = fd_get(s, fd);
    if (!sk)
        return -EBADF;
    if (!sa || !len)
        return -EFAULT;
    int conn = sk->type == SOCK_DGRAM ? (sk->flags & NS_CONNECTED) != 0
                                      : sk->tcp.state >= NET_TCP_ESTABLISHED;
    if (!conn)
        return -ENOTCONN;
    put_sin(sa, len, sk->rip, sk->rport);
    return 0;
}

int nsock_set_nonblock(struct net_stack *s, int fd, int on)
{
    struct nsock *sk = fd_get(s, fd);
    if (!sk)
        return -EBADF;
    sk->flags = (uint8_t)(on ? sk->flags | NS_NONBLOCK : sk->flags & ~NS_NONBLOCK);
    return 0;
}

int nsock_get_nonblock(struct net_stack *s, int fd)
{
    struct nsock *sk = fd_get(s, fd);
    if (!sk)
        return -EBADF;
    return !!(sk->flags & NS_NONBLOCK);
}

static short sock_events(const struct nsock *sk)
{
    short ev = 0;
    if (sk->type == SOCK_DGRAM)
        return (short)((sk->dq_head ? POLLIN : 0) | POLLOUT);
    const struct tcp_cb *t = &sk->tcp;
    switch (t->state) {
    case NET_TCP_LISTEN: return sk->aq_head ? POLLIN : 0;
    case NET_TCP_SYN_SENT:
    case NET_TCP_SYN_RCVD: return 0;
    case NET_TCP_CLOSED: ev = POLLHUP | POLLOUT | POLLIN; break;
    default: break;
    }
    if (t->rbuf_len > 0 || t->rx_fin || (sk->flags & NS_SHUT_RD))
        ev |= POLLIN;
    if (sk->err)
        ev |= POLLERR;
    if ((t->state == NET_TCP_ESTABLISHED || t->state == NET_TCP_CLOSE_WAIT) &&
        !(sk->flags & NS_SHUT_WR) && t->sbuf_len < t->sbuf_size)
        ev |= POLLOUT;
    if (t->rx_fin && (t->fin_pending || (sk->flags & NS_SHUT_WR)))
        ev |= POLLHUP;
    return ev;
}

struct poll_args {
    struct pollfd *fds;
    size_t n;
    int ready;
};

static int poll_scan(struct net_stack *s, void *arg)
{
    struct poll_args *a = arg;
    a->ready = 0;
    for (size_t i = 0; i < a->n; i++) {
        struct pollfd *p = &a->fds[i];
        p->revents = 0;
        if (p->fd < 0)
            continue;
        struct nsock *sk = fd_get(s, p->fd);
        if (!sk)
            p->revents = POLLNVAL;
        else
            p->revents = (short)(sock_events(sk) & (p->events | POLLERR | POLLHUP));
        if (p->revents)
            a->ready++;
    }
    return a->ready > 0;
}

int nsock_poll(struct net_stack *s, struct pollfd *fds, size_t nfds, int timeout_ms)
{
    struct poll_args a = { fds, nfds, 0 };
    if (!fds && nfds)
        return -EFAULT;
    if (timeout_ms == 0) {
        poll_scan(s, &a);
        return a.ready;
    }
    wait_for(s, poll_scan, &a, timeout_ms);
    return a.ready;
}

int nsock_tcp_state(struct net_stack *s, int fd)
{
    struct nsock *sk = fd_get(s, fd);
    if (!sk)
        return -EBADF;
    if (sk->type != SOCK_STREAM)
        return -ENOTSOCK;
    return sk->tcp.state;
}

unsigned net_tcp_count(const struct net_stack *s, int state)
{
    unsigned n = 0;
    for (const struct nsock *sk = s->socks; sk; sk = sk->next)
        if (sk->type == SOCK_STREAM && sk->tcp.state == state)
            n++;
    return n;
}

unsigned net_sock_count(const struct net_stack *s)
{
    unsigned n = 0;
    for (const struct nsock *sk = s->socks; sk; sk = sk->next)
        n++;
    return n;
}
