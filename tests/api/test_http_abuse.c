/*
 * test_http_abuse.c - the API server's connection limits and header
 * deadline (issue 16: 256 idle or slowloris connections without a token
 * blocked every request), with the fake backend and raw sockets on
 * loopback. Attackers bind 127.0.0.2 and 127.0.0.3; the well-behaved client
 * is 127.0.0.1. Each case starts its own server with small limits.
 * tests/e2e/daemon_abuse.sh does the same at scale against shoald.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "api.h"
#include "fake_backend.h"

#define TOKEN "secret-token"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static api_server *start(fake *f, unsigned per_ip, unsigned total, unsigned timeout_s,
                         uint16_t *port)
{
    static const char *const tokens[] = { TOKEN };
    api_config cfg;
    api_server *s = NULL;
    api_err err;

    if (!f)
        fail_msg("out of memory for the fake backend");
    memset(&cfg, 0, sizeof cfg);
    fake_init(f);
    cfg.listen_addr = "127.0.0.1";
    cfg.tokens = tokens;
    cfg.n_tokens = 1;
    cfg.max_conns_per_ip = per_ip;
    cfg.max_connections = total;
    cfg.conn_timeout_s = timeout_s;
    if (api_server_start(&cfg, &fake_backend, f, &s, &err) != 0)
        fail_msg("api_server_start: %s", err.msg);
    *port = api_server_port(s);
    return s;
}

/* A connection from src to the server. */
static int dial(const char *src, uint16_t port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    inet_pton(AF_INET, src, &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    sa.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Did the server close fd (EOF or reset) within ms? */
static int closed_within(int fd, int ms)
{
    struct pollfd p = { fd, POLLIN, 0 };
    char b[256];

    for (;;) {
        double t0 = now_s();
        if (poll(&p, 1, ms) != 1)
            return 0;
        ssize_t n = recv(fd, b, sizeof b, 0);
        if (n <= 0)
            return 1;
        ms -= (int)((now_s() - t0) * 1000); /* an answer: keep reading */
        if (ms <= 0)
            return 0;
    }
}

/* GET path on fd (keep-alive), with the token; the status, 0 when none
 * came in 2 s. (/healthz is answered before its request is read through,
 * so libmicrohttpd closes its connection after it: no keep-alive there.) */
static int get_on(int fd, const char *path)
{
    char req[256];
    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN "\r\n\r\n", path);
    struct pollfd p = { fd, POLLIN, 0 };
    char b[1024];
    ssize_t n;
    int st = 0;

    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
        return 0;
    if (poll(&p, 1, 2000) != 1 || (n = recv(fd, b, sizeof b - 1, 0)) <= 0)
        return 0;
    b[n] = 0;
    sscanf(b, "HTTP/1.1 %d", &st);
    return st;
}

/* GET /healthz from src on a new connection: the status and the time. */
static int healthz_from(const char *src, uint16_t port, double *secs)
{
    double t0 = now_s();
    int fd = dial(src, port), st = get_on(fd, "/healthz");
    close(fd);
    if (secs)
        *secs = now_s() - t0;
    return st;
}

/* One address may hold max_conns_per_ip connections; the next is closed at
 * once, and the others' requests are not held up. */
static void per_ip_limit(void **state)
{
    fake *f = calloc(1, sizeof *f); /* zeroed, on the heap (fake_backend.h) */
    uint16_t port;
    api_server *s = start(f, 4, 64, 30, &port);
    int idle[4], x;
    double t;

    (void)state;
    for (int i = 0; i < 4; i++)
        idle[i] = dial("127.0.0.2", port);
    usleep(200000);
    x = dial("127.0.0.2", port);
    assert_true(closed_within(x, 1000));
    close(x);
    assert_int_equal(healthz_from("127.0.0.1", port, &t), 200);
    assert_true(t < 1.0);
    /* a slot freed is a slot for that address again */
    close(idle[0]);
    usleep(300000);
    assert_int_equal(healthz_from("127.0.0.2", port, NULL), 200);
    for (int i = 1; i < 4; i++)
        close(idle[i]);
    api_server_stop(s);
    fake_destroy(f);
    free(f);
}

/* Over the total, a connection from any address is closed at once; the
 * header deadline frees the slots of idle ones. */
static void total_limit(void **state)
{
    fake *f = calloc(1, sizeof *f); /* zeroed, on the heap (fake_backend.h) */
    uint16_t port;
    api_server *s = start(f, 64, 6, 1, &port);
    int idle[6], x;
    double t0;

    (void)state;
    for (int i = 0; i < 6; i++)
        idle[i] = dial("127.0.0.3", port);
    usleep(200000);
    x = dial("127.0.0.1", port);
    assert_true(closed_within(x, 1000));
    close(x);
    /* the idle ones go at their deadline (1 s, checked every 250 ms) */
    t0 = now_s();
    for (int i = 0; i < 6; i++)
        assert_true(closed_within(idle[i], 3000));
    assert_true(now_s() - t0 < 2.5);
    for (int i = 0; i < 6; i++)
        close(idle[i]);
    usleep(100000);
    assert_int_equal(healthz_from("127.0.0.1", port, NULL), 200);
    api_server_stop(s);
    fake_destroy(f);
    free(f);
}

/* Slowloris: a client sending a header line every 300 ms is never idle for
 * the 1 s timeout, but is cut at the header deadline; a keep-alive client
 * with a request every 400 ms stays (the deadline starts again after each
 * response) and one that stops asking is closed. */
static void header_deadline(void **state)
{
    fake *f = calloc(1, sizeof *f); /* zeroed, on the heap (fake_backend.h) */
    uint16_t port;
    api_server *s = start(f, 64, 64, 1, &port);
    int slow = dial("127.0.0.2", port), keep = dial("127.0.0.1", port), cut = 0;
    double t0 = now_s(), t_cut = 0;

    (void)state;
    assert_int_equal(send(slow, "GET /healthz HTTP/1.1\r\n", 23, MSG_NOSIGNAL), 23);
    while (now_s() - t0 < 3.0) {
        struct pollfd p = { slow, POLLIN, 0 };
        if (!cut) {
            if (poll(&p, 1, 0) == 1) {
                char b[64];
                if (recv(slow, b, sizeof b, 0) <= 0) {
                    cut = 1;
                    t_cut = now_s() - t0;
                }
            } else {
                (void)send(slow, "X-Slow: 1\r\n", 11, MSG_NOSIGNAL);
            }
        }
        assert_int_equal(get_on(keep, "/v1/hosts"), 200);
        usleep(300000);
    }
    print_message("slowloris cut after %.2f s (deadline 1 s)\n", t_cut);
    assert_true(cut);
    assert_true(t_cut >= 0.9 && t_cut < 2.5);
    /* the keep-alive client was served for 3 s; now it stops asking */
    assert_true(closed_within(keep, 3000));
    close(slow);
    close(keep);
    api_server_stop(s);
    fake_destroy(f);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(per_ip_limit),
        cmocka_unit_test(total_limit),
        cmocka_unit_test(header_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
