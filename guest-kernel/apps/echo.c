/*
 * echo - RFC 862 echo service over TCP and UDP, for shoal guests and for
 * Linux alike (plain POSIX sockets and poll).
 *
 *   echo [PORT]          env: ECHO_PORT; default 7
 *
 * TCP: every byte received is sent back on the same connection; the
 * connection closes when the client closes. UDP: each datagram goes back
 * to its sender.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#define MAX_CONN 128
#define BUF      4096

struct conn {
    int fd;
    size_t len, off; /* bytes received and not yet echoed */
    char buf[BUF];
};

static struct conn *conns[MAX_CONN];

static int open_sock(int type, int port)
{
    int fd = socket(AF_INET, type, 0), one = 1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        (type == SOCK_STREAM && listen(fd, 64) < 0) || fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
        fprintf(stderr, "echo: cannot bind %s port %d: %s\n", type == SOCK_STREAM ? "tcp" : "udp",
                port, strerror(errno));
        exit(1);
    }
    return fd;
}

/* Returns -1 when the connection should be closed. */
static int serve(struct conn *c)
{
    if (c->off < c->len) {
        ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        c->off += (size_t)n;
        if (c->off == c->len)
            c->off = c->len = 0;
        return 0;
    }
    ssize_t n = recv(c->fd, c->buf, BUF, 0);
    if (n == 0)
        return -1;
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    c->len = (size_t)n;
    c->off = 0;
    return serve(c);
}

int main(int argc, char **argv)
{
    const char *ps = argc > 1 ? argv[1] : getenv("ECHO_PORT");
    char *e = NULL;
    long port = ps ? strtol(ps, &e, 10) : 7;
    if (ps && (*e || port < 1 || port > 65535)) {
        fprintf(stderr, "echo: bad port '%s'\n", ps);
        return 2;
    }
    int ts = open_sock(SOCK_STREAM, (int)port), us = open_sock(SOCK_DGRAM, (int)port);
    printf("echo: tcp and udp port %ld\n", port);
    fflush(stdout);

    static struct pollfd pf[MAX_CONN + 2];
    static int idx[MAX_CONN + 2];
    static char dgram[65536];
    for (;;) {
        nfds_t n = 0;
        for (int i = 0; i < MAX_CONN; i++) {
            if (!conns[i])
                continue;
            pf[n].fd = conns[i]->fd;
            pf[n].events = conns[i]->off < conns[i]->len ? POLLOUT : POLLIN;
            idx[n++] = i;
        }
        pf[n].fd = ts;
        pf[n].events = POLLIN;
        idx[n++] = -1;
        pf[n].fd = us;
        pf[n].events = POLLIN;
        idx[n++] = -2;
        if (poll(pf, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "echo: poll: %s\n", strerror(errno));
            return 1;
        }
        for (nfds_t k = 0; k < n; k++) {
            if (!pf[k].revents)
                continue;
            if (idx[k] >= 0) {
                struct conn *c = conns[idx[k]];
                if (serve(c) < 0) {
                    close(c->fd);
                    free(c);
                    conns[idx[k]] = NULL;
                }
            } else if (idx[k] == -1) {
                int fd;
                while ((fd = accept(ts, NULL, NULL)) >= 0) {
                    int slot = -1;
                    for (int j = 0; j < MAX_CONN && slot < 0; j++)
                        if (!conns[j])
                            slot = j;
                    struct conn *c = slot >= 0 ? malloc(sizeof *c) : NULL;
                    if (!c) {
                        close(fd);
                        continue;
                    }
                    fcntl(fd, F_SETFL, O_NONBLOCK);
                    c->fd = fd;
                    c->len = c->off = 0;
                    conns[slot] = c;
                }
            } else {
                struct sockaddr_in from;
                socklen_t fl = sizeof from;
                ssize_t r;
                while ((r = recvfrom(us, dgram, sizeof dgram, 0, (struct sockaddr *)&from, &fl)) >=
                       0) {
                    sendto(us, dgram, (size_t)r, 0, (struct sockaddr *)&from, fl);
                    fl = sizeof from;
                }
            }
        }
    }
}
