/* Unit tests: the published-port proxy, over real loopback sockets, with
 * local TCP and UDP echo servers standing in for the guest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "portfwd.h"

#define LOOP 0x7f000001u

static int listen_any(int *port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(LOOP) };
    socklen_t l = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 16), 0);
    getsockname(fd, (struct sockaddr *)&sa, &l);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* A free port: bind to 0, read it back, close. */
static int free_port(void)
{
    int port, fd = listen_any(&port);
    close(fd);
    return port;
}

static void *echo_main(void *arg)
{
    int lfd = *(int *)arg;
    for (;;) {
        int c = accept(lfd, NULL, NULL);
        char buf[8192];
        ssize_t n;
        if (c < 0)
            return NULL;
        while ((n = read(c, buf, sizeof buf)) > 0) {
            if (write(c, buf, (size_t)n) != n)
                break;
        }
        close(c);
    }
}

static int dial(int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(LOOP) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

struct writer {
    int fd;
    const unsigned char *data;
    size_t len;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    size_t off = 0;
    while (off < w->len) {
        ssize_t n = write(w->fd, w->data + off, w->len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(w->fd, SHUT_WR);
    return NULL;
}

static void test_forward_echo(void **st)
{
    int eport, elfd = listen_any(&eport), hport = free_port(), c;
    pthread_t echo, wr;
    pfwd *p;
    char err[256];
    size_t len = 3 << 20, got = 0;
    unsigned char *data = malloc(len), *back = malloc(len);
    struct writer w;
    (void)st;
    for (size_t i = 0; i < len; i++)
        data[i] = (unsigned char)(i * 131 + (i >> 11));
    pthread_create(&echo, NULL, echo_main, &elfd);
    assert_int_equal(pfwd_start("127.0.0.1", &p, err, sizeof err), 0);
    assert_int_equal(pfwd_add(p, "inst1", PFWD_TCP, hport, LOOP, eport, err, sizeof err), 0);
    assert_int_equal(pfwd_count(p), 1);
    /* The port is taken now. */
    assert_int_equal(pfwd_probe(p, PFWD_TCP, hport, err, sizeof err), -1);
    assert_non_null(strstr(err, "in use"));

    c = dial(hport);
    assert_true(c >= 0);
    w.fd = c;
    w.data = data;
    w.len = len;
    pthread_create(&wr, NULL, writer_main, &w);
    for (;;) {
        struct pollfd pf = { c, POLLIN, 0 };
        ssize_t n;
        assert_true(poll(&pf, 1, 10000) == 1);
        n = read(c, back + got, len - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    pthread_join(wr, NULL);
    close(c);
    assert_int_equal(got, len);
    assert_memory_equal(data, back, len);

    /* Removal closes the listener at once; the port can be reused. */
    pfwd_remove(p, "inst1");
    assert_int_equal(pfwd_count(p), 0);
    assert_int_equal(dial(hport), -1);
    assert_int_equal(pfwd_add(p, "inst2", PFWD_TCP, hport, LOOP, eport, err, sizeof err), 0);
    c = dial(hport);
    assert_true(c >= 0);
    assert_int_equal(write(c, "ping", 4), 4);
    {
        char b[4];
        struct pollfd pf = { c, POLLIN, 0 };
        assert_true(poll(&pf, 1, 5000) == 1);
        assert_int_equal(read(c, b, 4), 4);
        assert_memory_equal(b, "ping", 4);
    }
    close(c);
    pfwd_stop(p);
    shutdown(elfd, SHUT_RDWR);
    close(elfd);
    pthread_join(echo, NULL);
    free(data);
    free(back);
}

static void test_unreachable_guest(void **st)
{
    int hport = free_port(), dead = free_port(), c;
    pfwd *p;
    char err[256], b[8];
    (void)st;
    assert_int_equal(pfwd_start("127.0.0.1", &p, err, sizeof err), 0);
    assert_int_equal(pfwd_add(p, "x", PFWD_TCP, hport, LOOP, dead, err, sizeof err), 0);
    c = dial(hport);
    assert_true(c >= 0);
    /* The proxy closes the client when the guest refuses. */
    {
        struct pollfd pf = { c, POLLIN, 0 };
        assert_true(poll(&pf, 1, 5000) == 1);
        assert_true(read(c, b, sizeof b) <= 0);
    }
    close(c);
    pfwd_stop(p);
}

static void test_bad_input(void **st)
{
    pfwd *p;
    char err[256];
    int port, fd = listen_any(&port);
    (void)st;
    assert_int_equal(pfwd_start("not-an-ip", &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "not-an-ip"));
    assert_int_equal(pfwd_start("127.0.0.1", &p, err, sizeof err), 0);
    assert_int_equal(pfwd_add(p, "y", PFWD_TCP, port, LOOP, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "host port"));
    pfwd_remove(p, "nobody");
    pfwd_stop(p);
    close(fd);
}

/* ---- UDP ---------------------------------------------------------------- */

#define LOOP2 0x7f000002u

/* A UDP echo server on 127.0.0.1 standing in for the guest; it notes the
 * source port of the last datagram (one per proxy flow) and counts them. */
typedef struct {
    int fd, port;
    pthread_t th;
    atomic_int stop, last_peer, count;
} uecho;

static void *uecho_main(void *arg)
{
    uecho *u = arg;
    static _Thread_local unsigned char buf[65536];
    while (!atomic_load(&u->stop)) {
        struct pollfd pf = { u->fd, POLLIN, 0 };
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n;
        if (poll(&pf, 1, 50) != 1)
            continue;
        n = recvfrom(u->fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (n < 0)
            continue;
        atomic_store(&u->last_peer, ntohs(from.sin_port));
        atomic_fetch_add(&u->count, 1);
        sendto(u->fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
    }
    return NULL;
}

static void uecho_start(uecho *u)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(LOOP) };
    socklen_t l = sizeof sa;
    int big = 1 << 20;
    memset(u, 0, sizeof *u);
    u->fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(u->fd >= 0);
    setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    assert_int_equal(bind(u->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    getsockname(u->fd, (struct sockaddr *)&sa, &l);
    u->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&u->th, NULL, uecho_main, u), 0);
}

static void uecho_stop(uecho *u)
{
    atomic_store(&u->stop, 1);
    pthread_join(u->th, NULL);
    close(u->fd);
}

/* A port free for both TCP and UDP on 127.0.0.1. */
static int free_port2(void)
{
    for (int tries = 0; tries < 50; tries++) {
        int port = free_port(), fd = socket(AF_INET, SOCK_DGRAM, 0), ok;
        struct sockaddr_in sa = { .sin_family = AF_INET,
                                  .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(LOOP) };
        ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok)
            return port;
    }
    fail_msg("no free port");
    return -1;
}

/* A UDP socket connected to addr:port: it only accepts datagrams from there. */
static int udp_dial(uint32_t addr, int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(addr) };
    int big = 1 << 20, fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* One datagram within timeout_ms, or -1. */
static ssize_t udp_recv(int fd, void *buf, size_t len, int timeout_ms)
{
    struct pollfd pf = { fd, POLLIN, 0 };
    if (poll(&pf, 1, timeout_ms) != 1)
        return -1;
    return recv(fd, buf, len, MSG_DONTWAIT);
}

/* Send msg and expect it back, whole, within 2 s. */
static void udp_ping(int fd, const char *msg)
{
    char b[256];
    size_t n = strlen(msg);
    assert_int_equal(send(fd, msg, n, 0), (ssize_t)n);
    assert_int_equal(udp_recv(fd, b, sizeof b, 2000), (ssize_t)n);
    assert_memory_equal(b, msg, n);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Wait up to limit_ms for the flow count to become want. */
static int flows_become(pfwd *p, size_t want, int limit_ms)
{
    for (int t = 0; t < limit_ms; t += 10) {
        if (pfwd_flow_count(p) == want)
            return 1;
        sleep_ms(10);
    }
    return pfwd_flow_count(p) == want;
}

/* Several clients at once: each gets its own datagrams back and no one
 * else's; one flow per client. */
static void test_udp_clients(void **st)
{
    enum { NC = 8, NM = 5 };
    uecho u;
    int hport = free_port2(), c[NC];
    pfwd *p;
    char err[256];
    (void)st;
    uecho_start(&u);
    assert_int_equal(pfwd_start("127.0.0.1", &p, err, sizeof err), 0);
    assert_int_equal(pfwd_add(p, "u1", PFWD_UDP, hport, LOOP, u.port, err, sizeof err), 0);
    assert_int_equal(pfwd_count(p), 1);
    /* The UDP port is taken now, the TCP port of the same number is not. */
    assert_int_equal(pfwd_probe(p, PFWD_UDP, hport, err, sizeof err), -1);
    assert_non_null(strstr(err, "in use"));
    assert_non_null(strstr(err, "/udp"));
    assert_int_equal(pfwd_probe(p, PFWD_TCP, hport, err, sizeof err), 0);

    for (int i = 0; i < NC; i++)
        c[i] = udp_dial(LOOP, hport);
    /* Every client sends all its messages before anyone reads. */
    for (int m = 0; m < NM; m++)
        for (int i = 0; i < NC; i++) {
            char msg[64];
            int len = snprintf(msg, sizeof msg, "client %d message %d", i, m);
            assert_int_equal(send(c[i], msg, (size_t)len, 0), len);
        }
    for (int i = 0; i < NC; i++) {
        for (int m = 0; m < NM; m++) {
            char msg[64], b[256];
            int len = snprintf(msg, sizeof msg, "client %d message %d", i, m);
            assert_int_equal(udp_recv(c[i], b, sizeof b, 2000), len);
            assert_memory_equal(b, msg, (size_t)len);
        }
    }
    /* Nothing more for anyone. */
    for (int i = 0; i < NC; i++) {
        char b[256];
        assert_int_equal(udp_recv(c[i], b, sizeof b, i == 0 ? 200 : 0), -1);
    }
    assert_int_equal(pfwd_flow_count(p), NC);
    assert_int_equal(atomic_load(&u.count), NC * NM);
    for (int i = 0; i < NC; i++)
        close(c[i]);
    pfwd_stop(p);
    uecho_stop(&u);
}

/* Datagrams go through whole and one by one: the largest IPv4 payload
 * arrives intact, and a burst of datagrams of different sizes (an empty one
 * too) comes back as the same datagrams, never merged or split. */
static void test_udp_whole_datagrams(void **st)
{
    static unsigned char big[PFWD_UDP_MAX_DGRAM], back[65536];
    static const size_t sizes[] = { 1, 1000, 0, 3000, 17 };
    uecho u;
    int hport = free_port2(), c;
    pfwd *p;
    char err[256];
    (void)st;
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 131 + (i >> 9));
    uecho_start(&u);
    assert_int_equal(pfwd_start("127.0.0.1", &p, err, sizeof err), 0);
    assert_int_equal(pfwd_add(p, "u", PFWD_UDP, hport, LOOP, u.port, err, sizeof err), 0);
    c = udp_dial(LOOP, hport);

    assert_int_equal(send(c, big, sizeof big, 0), (ssize_t)sizeof big);
    assert_int_equal(udp_recv(c, back, sizeof back, 3000), (ssize_t)sizeof big);
    assert_memory_equal(back, big, sizeof big);

    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        assert_int_equal(send(c, big + i, sizes[i], 0), (ssize_t)sizes[i]);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        assert_int_equal(udp_recv(c, back, sizeof back, 3000), (ssize_t)sizes[i]);
        assert_memory_equal(back, big + i, sizes[i]);
    }
    assert_int_equal(udp_recv(c, back, sizeof back, 200), -1);
    assert_int_equal(atomic_load(&u.count), 1 + (int)(sizeof sizes / sizeof sizes[0]));
    close(c);
    pfwd_stop(p);
    uecho_stop(&u);
}

/* A flow lives while datagrams pass (the guest keeps seeing the same peer)
 * and is closed after the idle time; the client is served again after. */
static void test_udp_flow_expiry(void **st)
{
    uecho u;
    int hport = free_port2(), c, peer;
    pfwd *p;
    char err[256];
    (void)st;
    uecho_start(&u);
    assert_int_equal(pfwd_start("127.0.0.1", &p, err, sizeof err), 0);
    pfwd_set_udp_limits(p, 300, 0);
    assert_int_equal(pfwd_add(p, "u", PFWD_UDP, hport, LOOP, u.port, err, sizeof err), 0);
    c = udp_dial(LOOP, hport);
    udp_ping(c, "first");
    assert_int_equal(pfwd_flow_count(p), 1);
    peer = atomic_load(&u.last_peer);
    /* Traffic every 100 ms for 3 idle times: one flow throughout. */
    for (int i = 0; i < 9; i++) {
        sleep_ms(100);
        udp_ping(c, "keep");
        assert_int_equal(atomic_load(&u.last_peer), peer);
        assert_int_equal(pfwd_flow_count(p), 1);
    }
    /* Quiet: still there before the idle time, gone soon after it. */
    sleep_ms(150);
    assert_int_equal(pfwd_flow_count(p), 1);
    assert_true(flows_become(p, 0, 1000));
    udp_ping(c, "again");
    assert_int_equal(pfwd_flow_count(p), 1);
    close(c);
    pfwd_stop(p);
    uecho_stop(&u);
}

/* A flood of client addresses: the forward never holds more flows (and
 * descriptors) than its cap; the least recently active flow goes first. */
static void test_udp_flow_cap(void **st)
{
    enum { CAP = 4, NC = 64 };
    uecho u;
    int hport = free_port2(), c[NC], port[NC], fds0, fds1;
    pfwd *p;
    char err[256];
    (void)st;
    uecho_start(&u);
    assert_int_equal(pfwd_start("127.0.0.1", &p, err, sizeof err), 0);
    pfwd_set_udp_limits(p, 0, CAP);
    assert_int_equal(pfwd_add(p, "u", PFWD_UDP, hport, LOOP, u.port, err, sizeof err), 0);
    fds0 = count_fds();
    for (int i = 0; i < NC; i++) {
        char msg[32];
        c[i] = udp_dial(LOOP, hport);
        snprintf(msg, sizeof msg, "flood %d", i);
        udp_ping(c[i], msg);
        port[i] = atomic_load(&u.last_peer);
        assert_true(pfwd_flow_count(p) <= CAP);
    }
    assert_int_equal(pfwd_flow_count(p), CAP);
    fds1 = count_fds();
    assert_true(fds1 - NC - fds0 <= CAP);
    /* The flows of clients 60..63 remain, oldest first; a datagram from 60
     * makes it the most recent. */
    udp_ping(c[NC - 4], "still here");
    assert_int_equal(atomic_load(&u.last_peer), port[NC - 4]);
    /* Client 0 was evicted long ago: a new flow, which ends the least
     * recently active one (61's), not the first made (60's). */
    udp_ping(c[0], "back");
    assert_int_equal(pfwd_flow_count(p), CAP);
    for (int i = NC - 4; i < NC; i++) {
        if (i == NC - 3)
            continue;
        udp_ping(c[i], "kept");
        assert_int_equal(atomic_load(&u.last_peer), port[i]);
    }
    assert_int_equal(pfwd_flow_count(p), CAP);
    for (int i = 0; i < NC; i++)
        close(c[i]);
    pfwd_stop(p);
    uecho_stop(&u);
}

/* Removing the forward closes the host port and every flow at once. */
static void test_udp_remove(void **st)
{
    uecho u;
    int hport = free_port2(), c, fds0;
    pfwd *p;
    char err[256], b[64];
    (void)st;
    uecho_start(&u);
    assert_int_equal(pfwd_start("127.0.0.1", &p, err, sizeof err), 0);
    fds0 = count_fds();
    assert_int_equal(pfwd_add(p, "gone", PFWD_UDP, hport, LOOP, u.port, err, sizeof err), 0);
    c = udp_dial(LOOP, hport);
    udp_ping(c, "before");
    assert_int_equal(pfwd_flow_count(p), 1);
    pfwd_remove(p, "gone");
    assert_int_equal(pfwd_count(p), 0);
    assert_int_equal(pfwd_flow_count(p), 0);
    assert_int_equal(count_fds(), fds0 + 1); /* only the client's socket */
    (void)!send(c, "after", 5, 0);
    assert_true(udp_recv(c, b, sizeof b, 300) <= 0);
    assert_int_equal(atomic_load(&u.count), 1);
    /* The port can be bound again at once. */
    assert_int_equal(pfwd_probe(p, PFWD_UDP, hport, err, sizeof err), 0);
    assert_int_equal(pfwd_add(p, "new", PFWD_UDP, hport, LOOP, u.port, err, sizeof err), 0);
    close(c);
    c = udp_dial(LOOP, hport);
    udp_ping(c, "new owner");
    close(c);
    pfwd_stop(p);
    uecho_stop(&u);
}

/* tcp N and udp N are two ports: two owners hold them side by side, and
 * removing one leaves the other working. */
static void test_tcp_udp_same_port(void **st)
{
    uecho u;
    int eport, elfd = listen_any(&eport), hport = free_port2(), c;
    pthread_t echo;
    pfwd *p;
    char err[256], b[8];
    (void)st;
    uecho_start(&u);
    pthread_create(&echo, NULL, echo_main, &elfd);
    assert_int_equal(pfwd_start("127.0.0.1", &p, err, sizeof err), 0);
    assert_int_equal(pfwd_add(p, "a", PFWD_TCP, hport, LOOP, eport, err, sizeof err), 0);
    assert_int_equal(pfwd_add(p, "b", PFWD_UDP, hport, LOOP, u.port, err, sizeof err), 0);
    assert_int_equal(pfwd_count(p), 2);
    /* Each is held once. */
    assert_int_equal(pfwd_add(p, "c", PFWD_UDP, hport, LOOP, u.port, err, sizeof err), -1);
    assert_non_null(strstr(err, "/udp"));
    assert_int_equal(pfwd_add(p, "c", PFWD_TCP, hport, LOOP, eport, err, sizeof err), -1);
    assert_non_null(strstr(err, "/tcp"));

    c = dial(hport);
    assert_true(c >= 0);
    assert_int_equal(write(c, "tcp!", 4), 4);
    {
        struct pollfd pf = { c, POLLIN, 0 };
        assert_true(poll(&pf, 1, 5000) == 1);
        assert_int_equal(read(c, b, 4), 4);
        assert_memory_equal(b, "tcp!", 4);
    }
    close(c);
    c = udp_dial(LOOP, hport);
    udp_ping(c, "udp!");

    pfwd_remove(p, "a");
    assert_int_equal(dial(hport), -1);
    udp_ping(c, "udp still");
    close(c);
    pfwd_stop(p);
    shutdown(elfd, SHUT_RDWR);
    close(elfd);
    pthread_join(echo, NULL);
    uecho_stop(&u);
}

/* Listening on 0.0.0.0, a reply leaves from the address the client wrote
 * to (127.0.0.2 here, while the route back to the client would pick
 * 127.0.0.1): a connected client only accepts it from there. */
static void test_udp_wildcard_reply_source(void **st)
{
    uecho u;
    int hport = free_port2(), c;
    pfwd *p;
    char err[256];
    (void)st;
    uecho_start(&u);
    assert_int_equal(pfwd_start("0.0.0.0", &p, err, sizeof err), 0);
    assert_int_equal(pfwd_add(p, "w", PFWD_UDP, hport, LOOP, u.port, err, sizeof err), 0);
    c = udp_dial(LOOP2, hport);
    udp_ping(c, "to 127.0.0.2");
    close(c);
    c = udp_dial(LOOP, hport);
    udp_ping(c, "to 127.0.0.1");
    close(c);
    pfwd_stop(p);
    uecho_stop(&u);
}

/* An unknown protocol is refused, naming the port. */
static void test_bad_proto(void **st)
{
    pfwd *p;
    char err[256];
    (void)st;
    assert_int_equal(pfwd_start("127.0.0.1", &p, err, sizeof err), 0);
    assert_int_equal(pfwd_add(p, "z", (pfwd_proto)7, 1234, LOOP, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "1234"));
    assert_int_equal(pfwd_probe(p, (pfwd_proto)7, 1234, err, sizeof err), -1);
    assert_int_equal(pfwd_count(p), 0);
    pfwd_stop(p);
}

/* ---- TCP under abuse (issue 16) ------------------------------------------ */

/* A guest that serves each connection on a thread of its own: echo until
 * EOF, then close (hold = 0), or never close (hold = 1). */
struct mguest {
    int lfd;
    int hold;
    atomic_int accepted;
};

struct mconn {
    int fd, hold;
};

static void *mconn_main(void *arg)
{
    struct mconn *m = arg;
    char buf[4096];
    ssize_t n;
    while ((n = read(m->fd, buf, sizeof buf)) > 0) {
        if (write(m->fd, buf, (size_t)n) != n)
            break;
    }
    if (m->hold) {
        /* answered EOF with nothing: stays open until the proxy gives up */
        struct pollfd pf = { m->fd, POLLRDHUP, 0 };
        poll(&pf, 1, 20000);
    }
    close(m->fd);
    free(m);
    return NULL;
}

static void *mguest_main(void *arg)
{
    struct mguest *g = arg;
    for (;;) {
        int c = accept(g->lfd, NULL, NULL);
        struct mconn *m;
        pthread_t t;
        if (c < 0)
            return NULL;
        m = malloc(sizeof *m);
        m->fd = c;
        m->hold = g->hold;
        atomic_fetch_add(&g->accepted, 1);
        pthread_create(&t, NULL, mconn_main, m);
        pthread_detach(t);
    }
}

/* The same guest in a child process of its own, so that its descriptors
 * are not counted as the proxy's (and the test's descriptor games do not
 * touch it). Fork before any other thread runs. */
static pid_t guest_proc(int hold, int *port)
{
    int lfd = listen_any(port);
    pid_t pid = fork();
    if (pid == 0) {
        struct mguest g = { .lfd = lfd, .hold = hold };
        atomic_init(&g.accepted, 0);
        mguest_main(&g);
        _exit(0);
    }
    close(lfd);
    return pid;
}

static void guest_proc_end(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Sockets of this process's ports in TCP state st (hex, /proc/net/tcp):
 * "08" CLOSE_WAIT, "02" SYN_SENT. */
static int tcp_state_count(int port, const char *st)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512];
    int n = 0;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        unsigned lport, rport;
        char state[4];
        if (sscanf(line, " %*d: %*8s:%x %*8s:%x %3s", &lport, &rport, state) != 3)
            continue;
        if (((int)lport == port || (int)rport == port) && !strcmp(state, st))
            n++;
    }
    fclose(f);
    return n;
}

/* Wait up to ms for pred(arg) to hold. */
static int wait_until(int ms, int (*pred)(void *), void *arg)
{
    for (int i = 0; i < ms / 10; i++) {
        if (pred(arg))
            return 1;
        usleep(10000);
    }
    return pred(arg);
}

struct fdwait {
    pfwd *p;
    int fds;
};

static int back_to_baseline(void *arg)
{
    struct fdwait *w = arg;
    struct pfwd_tcp_stats st;
    pfwd_tcp_stats(w->p, &st);
    return st.conns == 0 && count_fds() <= w->fds;
}

/* Is c closed or reset by the far end within ms? */
static int peer_closed(int c, int ms)
{
    struct pollfd pf = { c, POLLIN, 0 };
    char b[16];
    if (poll(&pf, 1, ms) != 1)
        return 0;
    return read(c, b, sizeof b) <= 0;
}

static void echo_once(int c)
{
    char b[5];
    struct pollfd pf = { c, POLLIN, 0 };
    assert_int_equal(write(c, "hello", 5), 5);
    assert_int_equal(poll(&pf, 1, 5000), 1);
    assert_int_equal(read(c, b, 5), 5);
    assert_memory_equal(b, "hello", 5);
}

/* 300 concurrent idle connections, all closed by their clients: every
 * descriptor comes back within a few seconds and no socket is left in
 * CLOSE-WAIT (the guest closes on EOF), then the same with a guest that
 * never closes: the linger time ends them. */
static void test_tcp_many_then_gone(void **st)
{
    enum { N = 300 };
    int eport[2], hport, c[N], fds0;
    pid_t guest[2];
    pfwd *p;
    char err[256], owner[8];
    struct fdwait w;
    struct pfwd_tcp_stats ts;
    (void)st;
    guest[0] = guest_proc(0, &eport[0]); /* closes on EOF */
    guest[1] = guest_proc(1, &eport[1]); /* never closes */
    assert_int_equal(pfwd_start("127.0.0.1", &p, err, sizeof err), 0);
    pfwd_set_tcp_limits(p, 0, 0, 0, 700);
    for (int round = 0; round < 2; round++) {
        hport = free_port();
        snprintf(owner, sizeof owner, "m%d", round);
        assert_int_equal(pfwd_add(p, owner, PFWD_TCP, hport, LOOP, eport[round], err, sizeof err),
                         0);
        fds0 = count_fds();
        for (int i = 0; i < N; i++) {
            c[i] = dial(hport);
            assert_true(c[i] >= 0);
        }
        for (int i = 0; i < N; i += 37)
            echo_once(c[i]);
        pfwd_tcp_stats(p, &ts);
        assert_int_equal(ts.conns, N);
        /* half of them leave with shutdown (half-close), half with close */
        for (int i = 0; i < N; i++) {
            if (i % 2)
                shutdown(c[i], SHUT_WR);
            else
                close(c[i]);
        }
        for (int i = 1; i < N; i += 2) {
            if (!round) {
                assert_true(peer_closed(c[i], 5000)); /* the guest's EOF came through */
            }
            close(c[i]);
        }
        w.p = p;
        w.fds = fds0;
        if (!wait_until(5000, back_to_baseline, &w))
            fail_msg("round %d: %zu connections, %d descriptors (baseline %d) after 5 s", round,
                     (pfwd_tcp_stats(p, &ts), ts.conns), count_fds(), fds0);
        assert_int_equal(tcp_state_count(hport, "08"), 0);
        pfwd_remove(p, owner);
    }
    pfwd_stop(p);
    guest_proc_end(guest[0]);
    guest_proc_end(guest[1]);
}

/* The per-port limit refuses the next client at once (a reset, not a hang);
 * a freed slot is usable again; the total limit likewise. */
static void test_tcp_limits(void **st)
{
    struct mguest g = { .hold = 0 };
    int eport, hport = free_port(), hport2 = free_port(), c[6], x;
    pthread_t gt;
    pfwd *p;
    char err[256];
    struct pfwd_tcp_stats ts;
    struct timespec t0, t1;
    (void)st;
    g.lfd = listen_any(&eport);
    atomic_init(&g.accepted, 0);
    pthread_create(&gt, NULL, mguest_main, &g);
    assert_int_equal(pfwd_start("127.0.0.1", &p, err, sizeof err), 0);
    pfwd_set_tcp_limits(p, 6, 4, 0, 0);
    assert_int_equal(pfwd_add(p, "a", PFWD_TCP, hport, LOOP, eport, err, sizeof err), 0);
    assert_int_equal(pfwd_add(p, "b", PFWD_TCP, hport2, LOOP, eport, err, sizeof err), 0);
    for (int i = 0; i < 4; i++) {
        c[i] = dial(hport);
        echo_once(c[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    x = dial(hport);
    assert_true(x >= 0);
    assert_true(peer_closed(x, 2000));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 2);
    close(x);
    pfwd_tcp_stats(p, &ts);
    assert_int_equal(ts.conns, 4);
    assert_true(ts.refused >= 1);
    /* the other port still has room until the total (6) is reached */
    c[4] = dial(hport2);
    echo_once(c[4]);
    c[5] = dial(hport2);
    echo_once(c[5]);
    x = dial(hport2);
    assert_true(peer_closed(x, 2000));
    close(x);
    /* a slot freed is a slot usable */
    close(c[0]);
    for (int i = 0; i < 200; i++) {
        pfwd_tcp_stats(p, &ts);
        if (ts.conns == 5)
            break;
        usleep(10000);
    }
    assert_int_equal(ts.conns, 5);
    c[0] = dial(hport);
    echo_once(c[0]);
    for (int i = 0; i < 6; i++)
        close(c[i]);
    pfwd_stop(p);
    shutdown(g.lfd, SHUT_RDWR);
    close(g.lfd);
    pthread_join(gt, NULL);
}

/* A guest that never answers the SYN (its listen queue is full): the
 * client is closed after the connect timeout and nothing stays in
 * SYN-SENT. */
static void test_tcp_connect_timeout(void **st)
{
    int eport, elfd, hport = free_port(), fill[4], c, nfill = 0;
    pfwd *p;
    char err[256];
    struct pfwd_tcp_stats ts;
    struct timespec t0, t1;
    double s;
    (void)st;
    {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(LOOP) };
        socklen_t l = sizeof sa;
        elfd = socket(AF_INET, SOCK_STREAM, 0);
        assert_int_equal(bind(elfd, (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(listen(elfd, 0), 0);
        getsockname(elfd, (struct sockaddr *)&sa, &l);
        eport = ntohs(sa.sin_port);
    }
    /* fill the queue: later SYNs are dropped, the connect never completes */
    for (int i = 0; i < 4; i++) {
        struct sockaddr_in sa = { .sin_family = AF_INET,
                                  .sin_port = htons((uint16_t)eport),
                                  .sin_addr.s_addr = htonl(LOOP) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fd, (struct sockaddr *)&sa, sizeof sa);
        fill[nfill++] = fd;
    }
    usleep(100000);
    assert_int_equal(pfwd_start("127.0.0.1", &p, err, sizeof err), 0);
    pfwd_set_tcp_limits(p, 0, 0, 400, 0);
    assert_int_equal(pfwd_add(p, "t", PFWD_TCP, hport, LOOP, eport, err, sizeof err), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    c = dial(hport);
    assert_true(c >= 0);
    assert_true(peer_closed(c, 5000));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* not before the timeout, and not the kernel's two minutes */
    assert_true(s >= 0.35);
    assert_true(s < 3.0);
    close(c);
    /* the proxy's thread counts the connection gone just after it closes
     * the client's socket: give it a moment (a loaded machine) */
    for (int i = 0; i < 200; i++) {
        pfwd_tcp_stats(p, &ts);
        if (ts.conns == 0)
            break;
        usleep(10000);
    }
    assert_int_equal(ts.conns, 0);
    pfwd_stop(p);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    close(elfd);
}

/* The process out of descriptors (someone else took them): a client is
 * still refused at once (the spare descriptor), a second one too once the
 * spare is gone, and the proxy thread does not spin on the listener. The
 * clients run in a child with its own descriptor limit. */
static void test_tcp_out_of_descriptors(void **st)
{
    int eport, hport = free_port(), nheld = 0, *held;
    pid_t guest = guest_proc(0, &eport);
    pfwd *p;
    char err[256];
    struct rlimit old, low;
    struct rusage r0, r1;
    pid_t child;
    int status;
    (void)st;
    assert_int_equal(pfwd_start("127.0.0.1", &p, err, sizeof err), 0);
    assert_int_equal(pfwd_add(p, "e", PFWD_TCP, hport, LOOP, eport, err, sizeof err), 0);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)count_fds() + 64;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    held = calloc(low.rlim_cur, sizeof *held);
    for (;;) {
        int fd = dup(0);
        if (fd < 0)
            break;
        held[nheld++] = fd;
    }
    assert_int_equal(errno, EMFILE);
    child = fork();
    if (child == 0) {
        /* the clients: a limit of their own, each refused within 2 s */
        setrlimit(RLIMIT_NOFILE, &old);
        for (int i = 0; i < nheld; i++)
            close(held[i]);
        for (int i = 0; i < 5; i++) {
            int c = dial(hport);
            if (c < 0 || !peer_closed(c, 2000))
                _exit(10 + i);
            close(c);
        }
        _exit(0);
    }
    assert_true(child > 0);
    assert_int_equal(waitpid(child, &status, 0), child);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("a client was not refused at once (child status %d)", status);
    /* no spinning: the proxy thread uses little CPU while out of descriptors */
    getrusage(RUSAGE_SELF, &r0);
    usleep(500000);
    getrusage(RUSAGE_SELF, &r1);
    {
        long us = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1000000L +
                  (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) +
                  (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1000000L +
                  (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec);
        print_message("CPU while out of descriptors: %ld us in 500 ms\n", us);
        assert_true(us < 200000);
    }
    for (int i = 0; i < nheld; i++)
        close(held[i]);
    free(held);
    setrlimit(RLIMIT_NOFILE, &old);
    /* descriptors back: served again */
    usleep(300000);
    {
        int c = dial(hport);
        assert_true(c >= 0);
        echo_once(c);
        close(c);
    }
    pfwd_stop(p);
    guest_proc_end(guest);
}

/* A guest at addr:port (host order) that answers each connection with
 * its one-letter name, then echoes on a thread of the connection's own. */
struct named_guest {
    int lfd;
    char name;
};

static void *named_conn_main(void *arg)
{
    int c = (int)(intptr_t)arg;
    char buf[256];
    ssize_t n;
    while ((n = read(c, buf, sizeof buf)) > 0)
        if (write(c, buf, (size_t)n) != n)
            break;
    close(c);
    return NULL;
}

static void *named_main(void *arg)
{
    struct named_guest *g = arg;
    for (;;) {
        int c = accept(g->lfd, NULL, NULL);
        pthread_t t;
        if (c < 0)
            return NULL;
        if (write(c, &g->name, 1) != 1 ||
            pthread_create(&t, NULL, named_conn_main, (void *)(intptr_t)c) != 0) {
            close(c);
            continue;
        }
        pthread_detach(t);
    }
}

static int listen_at(uint32_t addr, int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(addr) };
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 16), 0);
    return fd;
}

static char read_one(int c)
{
    char b = 0;
    struct pollfd pf = { c, POLLIN, 0 };
    assert_true(poll(&pf, 1, 5000) == 1);
    assert_int_equal(read(c, &b, 1), 1);
    return b;
}

/* Live moves (core/move.c): pfwd_retarget sends new connections to the
 * new address and owner at once, the listener never closes, a connection
 * open before goes on with the old guest; the old owner has nothing left. */
static void test_tcp_retarget(void **st)
{
    int gport = free_port(), hport = free_port(), c1, c2;
    struct named_guest a = { listen_at(0x7f000002u, gport), 'A' };
    struct named_guest b = { listen_at(0x7f000003u, gport), 'B' };
    pthread_t ta, tb;
    pfwd *p;
    char err[256];
    (void)st;
    pthread_create(&ta, NULL, named_main, &a);
    pthread_create(&tb, NULL, named_main, &b);
    assert_int_equal(pfwd_start("127.0.0.1", &p, err, sizeof err), 0);
    assert_int_equal(pfwd_add(p, "inst", PFWD_TCP, hport, 0x7f000002u, gport, err, sizeof err), 0);
    c1 = dial(hport);
    assert_true(c1 >= 0);
    assert_int_equal(read_one(c1), 'A');

    assert_int_equal(pfwd_retarget(p, "inst", "standin", 0x7f000003u), 1);
    assert_int_equal(pfwd_retarget(p, "inst", "x", 0x7f000002u), 0); /* not its any more */
    c2 = dial(hport);
    assert_true(c2 >= 0);
    assert_int_equal(read_one(c2), 'B');
    /* the connection of before still goes to A */
    assert_int_equal(write(c1, "x", 1), 1);
    assert_int_equal(read_one(c1), 'x');
    close(c1);
    close(c2);

    /* the old owner's removal leaves it; the new owner's closes it */
    pfwd_remove(p, "inst");
    assert_int_equal(pfwd_count(p), 1);
    assert_int_equal(pfwd_retarget(p, "standin", "inst", 0x7f000002u), 1);
    c1 = dial(hport);
    assert_true(c1 >= 0);
    assert_int_equal(read_one(c1), 'A');
    close(c1);
    pfwd_remove(p, "inst");
    assert_int_equal(pfwd_count(p), 0);
    assert_int_equal(dial(hport), -1);
    pfwd_stop(p);
    shutdown(a.lfd, SHUT_RDWR);
    shutdown(b.lfd, SHUT_RDWR);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    close(a.lfd);
    close(b.lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_echo),
        cmocka_unit_test(test_unreachable_guest),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_udp_clients),
        cmocka_unit_test(test_udp_whole_datagrams),
        cmocka_unit_test(test_udp_flow_expiry),
        cmocka_unit_test(test_udp_flow_cap),
        cmocka_unit_test(test_udp_remove),
        cmocka_unit_test(test_tcp_udp_same_port),
        cmocka_unit_test(test_udp_wildcard_reply_source),
        cmocka_unit_test(test_bad_proto),
        cmocka_unit_test(test_tcp_many_then_gone),
        cmocka_unit_test(test_tcp_limits),
        cmocka_unit_test(test_tcp_connect_timeout),
        cmocka_unit_test(test_tcp_out_of_descriptors),
        cmocka_unit_test(test_tcp_retarget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
