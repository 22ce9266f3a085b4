/* Unit tests: the published-port proxy, over real loopback sockets, with a
 * local echo server standing in for the guest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
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
    assert_int_equal(pfwd_add(p, "inst1", hport, LOOP, eport, err, sizeof err), 0);
    assert_int_equal(pfwd_count(p), 1);
    /* The port is taken now. */
    assert_int_equal(pfwd_probe(p, hport, err, sizeof err), -1);
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
    assert_int_equal(pfwd_add(p, "inst2", hport, LOOP, eport, err, sizeof err), 0);
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
    assert_int_equal(pfwd_add(p, "x", hport, LOOP, dead, err, sizeof err), 0);
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
    assert_int_equal(pfwd_add(p, "y", port, LOOP, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "host port"));
    pfwd_remove(p, "nobody");
    pfwd_stop(p);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_echo),
        cmocka_unit_test(test_unreachable_guest),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
