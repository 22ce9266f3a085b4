/*
 * httpd - a small HTTP/1.1 server for shoal guests (and for Linux: it is
 * plain POSIX, `gcc -O2 -o httpd httpd.c` builds it there too).
 *
 *   httpd [PORT [BODY_SIZE]]        env: HTTPD_PORT, HTTPD_BODY_SIZE
 *
 * GET /healthz answers 200 "ok"; any other path answers 200 with a body of
 * BODY_SIZE bytes (default 64). Keep-alive as HTTP/1.1 says (HTTP/1.0 only
 * with "Connection: keep-alive"), "Connection: close" honoured, pipelined
 * requests served in order, request bodies (Content-Length) skipped, HEAD
 * supported. One thread, non-blocking sockets, one poll() loop.
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
#include <netinet/tcp.h>
#include <arpa/inet.h>

#define MAX_CONN 256
#define INBUF    4096
#define MAX_BODY (64L << 20)

struct conn {
    int fd;
    size_t inlen;
    char in[INBUF];
    size_t discard; /* request body bytes still to skip */
    char hdr[256];  /* response being sent: header, then body */
    size_t hdrlen, hdroff;
    const char *body;
    size_t bodylen, bodyoff;
    int sending;
    int close_after;
};

static struct conn *conns[MAX_CONN];
static char *big_body;
static size_t big_len;

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Case-insensitive prefix match of a header line. */
static int hdr_is(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    if (len <= n || line[n] != ':')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)line[i]) != lower((unsigned char)name[i]))
            return 0;
    return 1;
}

static int value_has(const char *v, size_t len, const char *word)
{
    size_t n = strlen(word);
    for (size_t i = 0; i + n <= len; i++) {
        size_t k = 0;
        while (k < n && lower((unsigned char)v[i + k]) == word[k])
            k++;
        if (k == n)
            return 1;
    }
    return 0;
}

static const char *find_end(const char *p, size_t n)
{
    for (size_t i = 3; i < n; i++)
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r')
            return p + i + 1;
    return NULL;
}

static void conn_close(int i)
{
    close(conns[i]->fd);
    free(conns[i]);
    conns[i] = NULL;
}

static void respond(struct conn *c, int code, const char *reason, const char *body, size_t len,
                    int head_only)
{
    c->hdrlen =
        (size_t)snprintf(c->hdr, sizeof c->hdr,
                         "HTTP/1.1 %d %s\r\nServer: shoal-httpd\r\nContent-Type: text/plain\r\n"
                         "Content-Length: %lu\r\nConnection: %s\r\n\r\n",
                         code, reason, (unsigned long)len, c->close_after ? "close" : "keep-alive");
    c->hdroff = 0;
    c->body = body;
    c->bodylen = head_only ? 0 : len;
    c->bodyoff = 0;
    c->sending = 1;
}

/* Parse one complete request from c->in, if there is one, and start its
 * response. Returns 0 when waiting for more input. */
static int parse_request(struct conn *c)
{
    while (c->discard && c->inlen) { /* body of the previous request */
        size_t k = c->discard < c->inlen ? c->discard : c->inlen;
        memmove(c->in, c->in + k, c->inlen - k);
        c->inlen -= k;
        c->discard -= k;
    }
    if (c->discard)
        return 0;
    const char *end = find_end(c->in, c->inlen);
    if (!end) {
        if (c->inlen == INBUF) {
            c->close_after = 1;
            respond(c, 431, "Request Header Fields Too Large", "", 0, 0);
            return 1;
        }
        return 0;
    }
    size_t hlen = (size_t)(end - c->in);
    /* request line: METHOD SP TARGET SP HTTP/1.x CRLF */
    const char *p = c->in, *eol = memchr(p, '\r', hlen);
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    int bad = !sp1 || !sp2 || eol - sp2 != 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0;
    int http10 = !bad && sp2[8] == '0';
    int keep = !http10, clen_bad = 0;
    size_t clen = 0;
    for (const char *l = eol + 2; !bad && l < end - 2;) {
        const char *le = memchr(l, '\r', (size_t)(end - l));
        size_t ll = (size_t)(le - l);
        if (hdr_is(l, ll, "connection")) {
            if (value_has(l, ll, "close"))
                keep = 0;
            else if (value_has(l, ll, "keep-alive"))
                keep = 1;
        } else if (hdr_is(l, ll, "content-length")) {
            char num[24];
            size_t vl = ll - 15 < sizeof num - 1 ? ll - 15 : sizeof num - 1;
            memcpy(num, l + 15, vl);
            num[vl] = '\0';
            char *e;
            long v = strtol(num, &e, 10);
            while (*e == ' ' || *e == '\t')
                e++;
            if (v < 0 || *e)
                clen_bad = 1;
            else
                clen = (size_t)v;
        } else if (hdr_is(l, ll, "transfer-encoding")) {
            clen_bad = 1; /* chunked bodies: not supported */
        }
        l = le + 2;
    }
    c->close_after = !keep;
    if (bad || clen_bad) {
        c->close_after = 1;
        respond(c, 400, "Bad Request", "", 0, 0);
    } else {
        size_t mlen = (size_t)(sp1 - p), tlen = (size_t)(sp2 - sp1 - 1);
        const char *target = sp1 + 1;
        int get = mlen == 3 && !memcmp(p, "GET", 3);
        int head = mlen == 4 && !memcmp(p, "HEAD", 4);
        if (!get && !head)
            respond(c, 405, "Method Not Allowed", "", 0, 0);
        else if (tlen == 8 && !memcmp(target, "/healthz", 8))
            respond(c, 200, "OK", "ok", 2, head);
        else
            respond(c, 200, "OK", big_body, big_len, head);
    }
    memmove(c->in, end, c->inlen - hlen);
    c->inlen -= hlen;
    c->discard = clen;
    return 1;
}

/* Send what we can. Returns -1 when the connection is gone. */
static int flush(struct conn *c)
{
    while (c->sending) {
        const char *p;
        size_t left;
        if (c->hdroff < c->hdrlen) {
            p = c->hdr + c->hdroff;
            left = c->hdrlen - c->hdroff;
        } else if (c->bodyoff < c->bodylen) {
            p = c->body + c->bodyoff;
            left = c->bodylen - c->bodyoff;
        } else {
            c->sending = 0;
            return c->close_after ? -1 : 0;
        }
        ssize_t n = send(c->fd, p, left, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        if (c->hdroff < c->hdrlen)
            c->hdroff += (size_t)n;
        else
            c->bodyoff += (size_t)n;
    }
    return 0;
}

static int serve(struct conn *c, short revents)
{
    if (c->sending) {
        if (flush(c) < 0)
            return -1;
    } else if (revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t n = recv(c->fd, c->in + c->inlen, INBUF - c->inlen, 0);
        if (n == 0)
            return -1;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        c->inlen += (size_t)n;
    }
    while (!c->sending && parse_request(c))
        if (flush(c) < 0)
            return -1;
    return 0;
}

static long arg_num(const char *s, long lo, long hi, const char *what)
{
    char *e;
    long v = s ? strtol(s, &e, 10) : -1;
    if (!s || *e || v < lo || v > hi) {
        fprintf(stderr, "httpd: bad %s '%s' (want %ld..%ld)\n", what, s ? s : "", lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    const char *ps = argc > 1 ? argv[1] : getenv("HTTPD_PORT");
    const char *bs = argc > 2 ? argv[2] : getenv("HTTPD_BODY_SIZE");
    int port = ps ? (int)arg_num(ps, 1, 65535, "port") : 80;
    big_len = bs ? (size_t)arg_num(bs, 0, MAX_BODY, "body size") : 64;
    big_body = malloc(big_len + 1);
    if (!big_body) {
        fprintf(stderr, "httpd: out of memory for a %lu-byte body\n", (unsigned long)big_len);
        return 1;
    }
    for (size_t i = 0; i < big_len; i++)
        big_body[i] = (i % 64 == 63) ? '\n' : (char)('a' + i % 26);

    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 128) < 0 ||
        fcntl(ls, F_SETFL, O_NONBLOCK) < 0) {
        fprintf(stderr, "httpd: cannot listen on port %d: %s\n", port, strerror(errno));
        return 1;
    }
    printf("httpd: listening on port %d, body %lu bytes\n", port, (unsigned long)big_len);
    fflush(stdout);

    static struct pollfd pf[MAX_CONN + 1];
    static int idx[MAX_CONN + 1];
    for (;;) {
        nfds_t n = 0;
        int nconn = 0;
        for (int i = 0; i < MAX_CONN; i++) {
            if (!conns[i])
                continue;
            nconn++;
            pf[n].fd = conns[i]->fd;
            pf[n].events = conns[i]->sending ? POLLOUT : POLLIN;
            pf[n].revents = 0;
            idx[n++] = i;
        }
        pf[n].fd = nconn < MAX_CONN ? ls : -1; /* full: stop accepting for now */
        pf[n].events = POLLIN;
        pf[n].revents = 0;
        idx[n++] = -1;
        if (poll(pf, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "httpd: poll: %s\n", strerror(errno));
            return 1;
        }
        for (nfds_t k = 0; k < n; k++) {
            if (!pf[k].revents)
                continue;
            int i = idx[k];
            if (i >= 0) {
                if (serve(conns[i], pf[k].revents) < 0)
                    conn_close(i);
                continue;
            }
            for (;;) { /* the listener */
                int fd = accept(ls, NULL, NULL);
                if (fd < 0)
                    break;
                int slot = -1;
                for (int j = 0; j < MAX_CONN && slot < 0; j++)
                    if (!conns[j])
                        slot = j;
                struct conn *c = slot >= 0 ? calloc(1, sizeof *c) : NULL;
                if (!c) {
                    close(fd);
                    break;
                }
                fcntl(fd, F_SETFL, O_NONBLOCK);
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                c->fd = fd;
                conns[slot] = c;
            }
        }
    }
}
