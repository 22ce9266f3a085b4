/* Fuzz target: the HTTP request path of shoald's API (api/server.c,
 * api/route.c, the query and body decoders), driven the way a client
 * drives it: a real api_server (the in-memory fake backend of tests/api)
 * on 127.0.0.1, one TCP connection per input. What the server reads is
 * covered: the method and path (route matching, path parameters, 404 vs
 * 405 and Allow), the query string (as libmicrohttpd splits and decodes
 * it, then api_decode_query), the headers shoald looks at (Authorization,
 * Content-Type, Content-Length, Transfer-Encoding, Last-Event-ID) and the
 * body.
 *
 * Input: a flags byte, then the request head, then "\n\n" and the body.
 * The head's first line is "METHOD TARGET", further lines "Name: value".
 * The harness writes the bytes on the wire: the target with spaces and
 * control bytes percent-encoded (so any byte can reach the decoded path
 * and query), Host and Connection: close added, the body framed by
 * Content-Length or (flag bit 1) chunked; the client never controls
 * framing, so every input gets one complete answer. Flag bit 0 adds the
 * server's bearer token when the head has no Authorization.
 *
 * Checks: the server never answers 500 Internal Server Error (but for the
 * operations the fake backend leaves out) and stays up; ASan, UBSan and
 * LSan judge the rest. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "fake_backend.h"

#define TOKEN "fuzz-token"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint16_t port;
static char resp[4096]; /* the start of the last answer */
static size_t got;

static void start_once(void)
{
    static const char *const tokens[] = { TOKEN };
    static fake *fk; /* lives as long as the process, like the server */
    static api_server *srv;
    api_config cfg;
    api_err err;

    if (srv != NULL)
        return;
    fk = calloc(1, sizeof *fk);
    if (fk == NULL)
        abort();
    fake_init(fk);
    memset(&cfg, 0, sizeof cfg);
    cfg.listen_addr = "127.0.0.1";
    cfg.tokens = tokens;
    cfg.n_tokens = 1;
    cfg.max_upload = 1 << 20;
    cfg.max_connections = 512;
    cfg.max_conns_per_ip = 512;
    cfg.conn_timeout_s = 5;
    cfg.keepalive_s = 1;
    if (api_server_start(&cfg, &fake_backend, fk, &srv, &err) != 0) {
        fprintf(stderr, "fuzz_http: api_server_start: %s\n", err.msg);
        abort();
    }
    port = api_server_port(srv);
}

/* growable request buffer */
typedef struct {
    char *p;
    size_t len, cap;
} wbuf;

static void put(wbuf *b, const void *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        char *p;
        while (cap < b->len + n)
            cap *= 2;
        p = realloc(b->p, cap);
        if (p == NULL)
            abort();
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(wbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

static int header_is(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len > n && strncasecmp(line, name, n) == 0 && line[n] == ':';
}

/* The request on the wire from the input; 0, or -1 when the input has no
 * request line. */
static int build(const uint8_t *data, size_t size, wbuf *w)
{
    const char *text = (const char *)data + 1, *end = (const char *)data + size, *body, *line;
    const char *sep;
    unsigned flags;
    int has_auth = 0;
    char num[32];

    if (size < 2)
        return -1;
    flags = data[0];
    sep = memmem(text, (size_t)(end - text), "\n\n", 2);
    body = sep ? sep + 2 : end;
    if (sep == NULL)
        sep = end;

    /* request line: METHOD TARGET */
    line = text;
    {
        const char *eol = memchr(line, '\n', (size_t)(sep - line));
        const char *sp, *lend = eol ? eol : sep;
        sp = memchr(line, ' ', (size_t)(lend - line));
        if (sp == NULL || sp == line)
            return -1;
        for (const char *c = line; c < sp; c++)
            if ((unsigned char)*c <= ' ' || *c == 0x7f)
                return -1; /* a token; anything else is MHD's own 400 */
        put(w, line, (size_t)(sp - line));
        puts_(w, " ");
        if (sp + 1 == lend || sp[1] != '/')
            puts_(w, "/");
        for (const char *c = sp + 1; c < lend; c++) {
            unsigned char u = (unsigned char)*c;
            if (u <= ' ' || u >= 0x7f) {
                snprintf(num, sizeof num, "%%%02X", u);
                puts_(w, num);
            } else {
                put(w, c, 1);
            }
        }
        puts_(w, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        line = eol ? eol + 1 : sep;
    }
    /* headers */
    while (line < sep) {
        const char *eol = memchr(line, '\n', (size_t)(sep - line));
        size_t len = (size_t)((eol ? eol : sep) - line);
        int ok = memchr(line, ':', len) != NULL && line[0] != ' ' && line[0] != ':';
        for (size_t i = 0; ok && i < len; i++)
            if ((unsigned char)line[i] < ' ' || line[i] == 0x7f)
                ok = 0;
        if (ok &&
            (header_is(line, len, "Content-Length") || header_is(line, len, "Transfer-Encoding") ||
             header_is(line, len, "Host") || header_is(line, len, "Connection")))
            ok = 0; /* framing is the harness's */
        if (ok) {
            has_auth |= header_is(line, len, "Authorization");
            put(w, line, len);
            puts_(w, "\r\n");
        }
        line = eol ? eol + 1 : sep;
    }
    if ((flags & 1) && !has_auth)
        puts_(w, "Authorization: Bearer " TOKEN "\r\n");
    if (body < end && (flags & 2)) {
        size_t n = (size_t)(end - body), half = n / 2;
        puts_(w, "Transfer-Encoding: chunked\r\n\r\n");
        if (half) {
            snprintf(num, sizeof num, "%zx\r\n", half);
            puts_(w, num);
            put(w, body, half);
            puts_(w, "\r\n");
        }
        snprintf(num, sizeof num, "%zx\r\n", n - half);
        puts_(w, num);
        put(w, body + half, n - half);
        puts_(w, "\r\n0\r\n\r\n");
    } else if (body < end) {
        snprintf(num, sizeof num, "Content-Length: %zu\r\n\r\n", (size_t)(end - body));
        puts_(w, num);
        put(w, body, (size_t)(end - body));
    } else {
        puts_(w, "\r\n");
    }
    return 0;
}

/* Send the request, read the answer: everything up to EOF, or up to a
 * pause once some bytes are in (streams never end on their own). Returns
 * the status code, 0 when the server closed without answering. */
static int exchange(const wbuf *w)
{
    struct sockaddr_in a;
    struct linger lg = { 1, 0 }; /* close with RST: no TIME_WAIT per input */
    int fd, status = 0;

    got = 0;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        abort();
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        fprintf(stderr, "fuzz_http: connect: %s\n", strerror(errno));
        abort(); /* the server is gone */
    }
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    for (size_t off = 0; off < w->len;) {
        ssize_t n = send(fd, w->p + off, w->len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* refused early: the answer is already there */
        off += (size_t)n;
    }
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        char sink[4096];
        ssize_t n;
        if (poll(&p, 1, got ? 50 : 5000) <= 0)
            break;
        if (got < sizeof resp)
            n = recv(fd, resp + got, sizeof resp - got, 0);
        else
            n = recv(fd, sink, sizeof sink, 0); /* the rest is not looked at */
        if (n <= 0)
            break;
        if (got < sizeof resp)
            got += (size_t)n;
    }
    close(fd);
    /* "HTTP/1.1 404 ..." */
    if (got >= 12 && memcmp(resp, "HTTP/1.", 7) == 0 && resp[8] == ' ') {
        for (int i = 9; i < 12 && resp[i] >= '0' && resp[i] <= '9'; i++)
            status = status * 10 + (resp[i] - '0');
    }
    return status;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wbuf w = { 0 };
    int status;

    start_once();
    if (build(data, size, &w) != 0) {
        free(w.p);
        return 0;
    }
    status = exchange(&w);
    if (getenv("FUZZ_HTTP_VERBOSE") != NULL) { /* what each input got */
        const char *cr = memchr(w.p, '\r', w.len);
        fprintf(stderr, "fuzz_http: %d %.*s\n", status, (int)(cr ? cr - w.p : 0), w.p);
    }
    /* The fake backend leaves some operations out (the server's answer is
     * then 500 "... is not implemented"); any other 500 is a finding. */
    if (status == 500 && memmem(resp, got, "is not implemented", 18) == NULL) {
        fprintf(stderr, "fuzz_http: 500 for:\n%.*s\n", (int)(w.len > 2000 ? 2000 : w.len), w.p);
        abort();
    }
    free(w.p);
    return 0;
}
