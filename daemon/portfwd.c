/* portfwd.c - user-space TCP port forwarding. See portfwd.h. */
#include "portfwd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef enum { EP_WAKE = 0, EP_LISTEN, EP_CONN } ep_kind;

struct fwd;

/* One direction of a proxied connection: bytes read from `from` wait in buf
 * until written to the other side. */
typedef struct {
    char buf[PFWD_BUF];
    size_t len, off;
    int eof;                     /* `from` closed its write side */
} pipe_dir;

/* One end of a proxied connection registered with epoll. */
typedef struct endpoint {
    ep_kind kind;
    int fd;
    struct conn *conn;
    int side;                    /* 0 client, 1 guest */
} endpoint;

typedef struct conn {
    endpoint ep[2];
    pipe_dir dir[2];             /* dir[0]: client->guest, dir[1]: guest->client */
    int connecting;              /* guest connect() in progress */
    int closed;                  /* closed; freed at the end of the batch */
    struct fwd *fwd;
    struct conn *next;
} conn;

typedef struct fwd {
    endpoint ep;                 /* the listener */
    char owner[64];
    int host_port;
    struct sockaddr_in guest;
    int dead;
    struct fwd *next;
} fwd;

struct pfwd {
    int epfd;
    endpoint wake;
    struct in_addr bind;
    pthread_t thread;
    pthread_mutex_t mu;          /* guards fwds list and dead marks */
    fwd *fwds;
    conn *conns;                 /* owned by the thread */
    conn *graveyard;             /* closed this batch; epoll may still name them */
    pthread_cond_t reaped;       /* a dead forward was freed */
    int stop;
};

static int open_listener(const struct in_addr *addr, int port, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr = *addr;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 128) != 0) {
        snprintf(err, errlen, "host port %d: %s", port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int pfwd_probe(pfwd *p, int host_port, char *err, size_t errlen)
{
    int fd = open_listener(&p->bind, host_port, err, errlen);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static void conn_close(pfwd *p, conn *c)
{
    conn **pp;
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
    c->next = p->graveyard;
    p->graveyard = c;
}

static void bury(pfwd *p)
{
    while (p->graveyard) {
        conn *c = p->graveyard;
        p->graveyard = c->next;
        free(c);
    }
}

/* Re-arm interest: read while there is room, write while there is data. */
static void conn_arm(pfwd *p, conn *c)
{
    for (int s = 0; s < 2; s++) {
        struct epoll_event ev = { 0 };
        pipe_dir *in = &c->dir[s];        /* data read from side s */
        pipe_dir *out = &c->dir[1 - s];   /* data to write to side s */
        if (c->ep[s].fd < 0)
            continue;
        if (s == 1 && c->connecting) {
            ev.events = EPOLLOUT;
        } else {
            if (!in->eof && in->len < sizeof in->buf)
                ev.events |= EPOLLIN;
            if (out->len > out->off)
                ev.events |= EPOLLOUT;
        }
        ev.data.ptr = &c->ep[s];
        epoll_ctl(p->epfd, EPOLL_CTL_MOD, c->ep[s].fd, &ev);
    }
}

static void on_accept(pfwd *p, fwd *f)
{
    for (;;) {
        int cfd = accept4(f->ep.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), gfd;
        conn *c;
        struct epoll_event ev = { 0 };
        int one = 1;
        if (cfd < 0)
            return;
        gfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        c = calloc(1, sizeof *c);
        if (gfd < 0 || !c) {
            close(cfd);
            if (gfd >= 0)
                close(gfd);
            free(c);
            continue;
        }
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(gfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fwd = f;
        for (int s = 0; s < 2; s++) {
            c->ep[s].kind = EP_CONN;
            c->ep[s].conn = c;
            c->ep[s].side = s;
        }
        c->ep[0].fd = cfd;
        c->ep[1].fd = gfd;
        c->connecting = 1;
        c->next = p->conns;
        p->conns = c;
        if (connect(gfd, (struct sockaddr *)&f->guest, sizeof f->guest) != 0 &&
            errno != EINPROGRESS) {
            conn_close(p, c);
            continue;
        }
        ev.events = 0;
        ev.data.ptr = &c->ep[0];
        epoll_ctl(p->epfd, EPOLL_CTL_ADD, cfd, &ev);
        ev.data.ptr = &c->ep[1];
        epoll_ctl(p->epfd, EPOLL_CTL_ADD, gfd, &ev);
        conn_arm(p, c);
    }
}

/* Move bytes for connection c after an event on side s. 0, or -1 when the
 * connection is finished and was closed. */
static int on_conn(pfwd *p, conn *c, int s, uint32_t events)
{
    if (s == 1 && c->connecting) {
        int e = 0;
        socklen_t l = sizeof e;
        getsockopt(c->ep[1].fd, SOL_SOCKET, SO_ERROR, &e, &l);
        if (e != 0) {
            conn_close(p, c);
            return -1;
        }
        c->connecting = 0;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        pipe_dir *d = &c->dir[s];
        while (!d->eof && d->len < sizeof d->buf) {
            ssize_t n = read(c->ep[s].fd, d->buf + d->len, sizeof d->buf - d->len);
            if (n > 0) {
                d->len += (size_t)n;
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
            if (d->eof)
                shutdown(c->ep[to].fd, SHUT_WR);
        }
    }
    if (c->dir[0].eof && c->dir[1].eof && !c->dir[0].len && !c->dir[1].len) {
        conn_close(p, c);
        return -1;
    }
    conn_arm(p, c);
    return 0;
}

/* Drop forwards marked dead, with their connections. Thread only. */
static void reap(pfwd *p)
{
    fwd **pp;
    pthread_mutex_lock(&p->mu);
    pp = &p->fwds;
    while (*pp) {
        fwd *f = *pp;
        if (!f->dead) {
            pp = &f->next;
            continue;
        }
        *pp = f->next;
        for (conn *c = p->conns, *next; c; c = next) {
            next = c->next;
            if (c->fwd == f)
                conn_close(p, c);
        }
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, f->ep.fd, NULL);
        close(f->ep.fd);
        free(f);
    }
    bury(p);
    pthread_cond_broadcast(&p->reaped);
    pthread_mutex_unlock(&p->mu);
}

static void *pfwd_main(void *arg)
{
    pfwd *p = arg;
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(p->epfd, evs, 64, 1000);
        int stop;
        for (int i = 0; i < n; i++) {
            endpoint *ep = evs[i].data.ptr;
            if (ep->kind == EP_WAKE) {
                uint64_t v;
                if (read(ep->fd, &v, sizeof v) < 0 && errno != EAGAIN)
                    break;
            } else if (ep->kind == EP_LISTEN) {
                on_accept(p, (fwd *)((char *)ep - offsetof(fwd, ep)));
            } else {
                /* A connection closed earlier in this batch may appear
                 * again: it stays allocated until bury(). */
                if (!ep->conn->closed)
                    on_conn(p, ep->conn, ep->side, evs[i].events);
            }
        }
        bury(p);
        reap(p);
        pthread_mutex_lock(&p->mu);
        stop = p->stop;
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
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->reaped);
    free(p);
}

int pfwd_add(pfwd *p, const char *owner, int host_port, uint32_t guest_ip, int guest_port,
             char *err, size_t errlen)
{
    fwd *f = calloc(1, sizeof *f);
    struct epoll_event ev = { 0 };
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    f->ep.kind = EP_LISTEN;
    f->ep.fd = open_listener(&p->bind, host_port, err, errlen);
    if (f->ep.fd < 0) {
        free(f);
        return -1;
    }
    snprintf(f->owner, sizeof f->owner, "%s", owner);
    f->host_port = host_port;
    f->guest.sin_family = AF_INET;
    f->guest.sin_port = htons((uint16_t)guest_port);
    f->guest.sin_addr.s_addr = htonl(guest_ip);
    pthread_mutex_lock(&p->mu);
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

size_t pfwd_count(pfwd *p)
{
    size_t n = 0;
    pthread_mutex_lock(&p->mu);
    for (fwd *f = p->fwds; f; f = f->next)
        n += !f->dead;
    pthread_mutex_unlock(&p->mu);
    return n;
}
