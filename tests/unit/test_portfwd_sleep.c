/* Unit tests: scale to zero in the published-port proxy (portfwd.h), over
 * real loopback sockets. A local echo server stands in for the guest; it
 * is started only when the test "wakes the instance", so held connections
 * really find nothing listening before that. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "portfwd.h"

#define LOOP 0x7f000001u

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int listen_on(int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(LOOP) };
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 64), 0);
    return fd;
}

static int free_port(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(LOOP) };
    socklen_t l = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    getsockname(fd, (struct sockaddr *)&sa, &l);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* The "guest": echoes each connection until EOF, one thread per client. */
static void *echo_conn(void *arg)
{
    int c = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;
    while ((n = read(c, buf, sizeof buf)) > 0)
        if (write(c, buf, (size_t)n) != n)
            break;
    close(c);
    return NULL;
}

static void *echo_main(void *arg)
{
    int lfd = *(int *)arg;
    for (;;) {
        pthread_t t;
        int c = accept(lfd, NULL, NULL);
        if (c < 0)
            return NULL;
        pthread_create(&t, NULL, echo_conn, (void *)(intptr_t)c);
        pthread_detach(t);
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

/* Read until n bytes, EOF or timeout; bytes read, or -errno. */
static ssize_t read_all(int fd, char *buf, size_t n, int timeout_ms)
{
    size_t got = 0;
    int64_t end = mono_ms() + timeout_ms;
    while (got < n) {
        struct pollfd pf = { fd, POLLIN, 0 };
        int left = (int)(end - mono_ms());
        ssize_t r;
        if (left <= 0 || poll(&pf, 1, left) <= 0)
            break;
        r = read(fd, buf + got, n - got);
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Notes the proxy gave, in order. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n[3];
    char last[3][160];
} notes = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, { 0 }, { "" } };

static void on_note(void *user, const char *owner, pfwd_note_kind kind, const char *detail)
{
    (void)user;
    assert_string_equal(owner, "inst");
    pthread_mutex_lock(&notes.mu);
    notes.n[kind]++;
    snprintf(notes.last[kind], sizeof notes.last[kind], "%s", detail);
    pthread_cond_broadcast(&notes.cv);
    pthread_mutex_unlock(&notes.mu);
}

static int wait_note(pfwd_note_kind kind, int count, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    int ok;
    pthread_mutex_lock(&notes.mu);
    while (notes.n[kind] < count && mono_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&notes.cv, &notes.mu, &ts);
    }
    ok = notes.n[kind] >= count;
    pthread_mutex_unlock(&notes.mu);
    return ok;
}

static int note_count(pfwd_note_kind kind)
{
    int n;
    pthread_mutex_lock(&notes.mu);
    n = notes.n[kind];
    pthread_mutex_unlock(&notes.mu);
    return n;
}

static pfwd *open_proxy(int *hport, int *gport, int idle_ms)
{
    pfwd *p;
    char err[256];
    pthread_mutex_lock(&notes.mu);
    memset(notes.n, 0, sizeof notes.n);
    pthread_mutex_unlock(&notes.mu);
    *hport = free_port();
    *gport = free_port();
    assert_int_equal(pfwd_start("127.0.0.1", &p, err, sizeof err), 0);
    pfwd_set_notify(p, on_note, NULL);
    assert_int_equal(pfwd_add(p, "inst", PFWD_TCP, *hport, LOOP, *gport, err, sizeof err), 0);
    assert_int_equal(pfwd_set_idle(p, "inst", idle_ms), 0);
    return p;
}

/* Idle for idle_ms with no connection: asleep and told once; an open
 * connection keeps it awake however long it lasts. */
static void test_sleep_after_idle(void **st)
{
    int hport, gport, asleep = -1, held = -1, c, lfd;
    pthread_t echo;
    pfwd *p;
    char buf[8];
    int64_t t0;
    (void)st;
    p = open_proxy(&hport, &gport, 300);
    assert_int_equal(pfwd_set_idle(p, "nobody", 300), -1); /* no forwards */
    lfd = listen_on(gport);
    pthread_create(&echo, NULL, echo_main, &lfd);
    t0 = mono_ms();
    c = dial(hport);
    assert_true(c >= 0);
    assert_int_equal(write(c, "hi", 2), 2);
    assert_int_equal(read_all(c, buf, 2, 2000), 2);
    usleep(600 * 1000); /* twice the idle time, the connection open */
    assert_int_equal(note_count(PFWD_NOTE_IDLE), 0);
    assert_int_equal(pfwd_sleep_info(p, "inst", &asleep, &held), 0);
    assert_int_equal(asleep, 0);
    close(c);
    t0 = mono_ms();
    assert_true(wait_note(PFWD_NOTE_IDLE, 1, 3000));
    assert_true(mono_ms() - t0 >= 250);
    assert_non_null(strstr(notes.last[PFWD_NOTE_IDLE], "no connection"));
    usleep(100 * 1000);
    assert_int_equal(pfwd_sleep_info(p, "inst", &asleep, &held), 0);
    assert_int_equal(asleep, 1);
    assert_int_equal(held, 0);
    usleep(400 * 1000);
    assert_int_equal(note_count(PFWD_NOTE_IDLE), 1); /* told once */
    assert_int_equal(note_count(PFWD_NOTE_WAKE), 0);
    /* The caller declines (the instance was busy): awake again, connections
     * pass through, and it sleeps again after another idle time. */
    assert_int_equal(pfwd_resume(p, "inst"), 0);
    c = dial(hport);
    assert_int_equal(write(c, "yo", 2), 2);
    assert_int_equal(read_all(c, buf, 2, 2000), 2);
    assert_memory_equal(buf, "yo", 2);
    close(c);
    assert_true(wait_note(PFWD_NOTE_IDLE, 2, 3000));
    assert_int_equal(note_count(PFWD_NOTE_WAKE), 0);
    pfwd_stop(p);
    shutdown(lfd, SHUT_RDWR);
    close(lfd);
    pthread_join(echo, NULL);
}

struct client {
    int port, id;
    ssize_t got;
    char reply[32];
    int64_t ms;
};

static void *client_main(void *arg)
{
    struct client *cl = arg;
    char msg[32];
    int64_t t0 = mono_ms();
    int fd = dial(cl->port), n = snprintf(msg, sizeof msg, "hello %02d", cl->id);
    cl->got = -1;
    if (fd < 0)
        return NULL;
    if (write(fd, msg, (size_t)n) == n)
        cl->got = read_all(fd, cl->reply, (size_t)n, 10000);
    cl->ms = mono_ms() - t0;
    close(fd);
    return NULL;
}

/* Eight first connections to an asleep owner: accepted and held, one wake
 * note, nothing listening on the guest port yet (their tries are refused
 * and made again); the "guest" comes up, the caller resumes: every one is
 * passed through with the bytes it sent while held. */
static void test_parallel_wake(void **st)
{
    enum { N = 8 };
    int hport, gport, asleep, held = 0, lfd;
    struct client cl[N];
    pthread_t th[N], echo;
    pfwd *p;
    (void)st;
    p = open_proxy(&hport, &gport, 60000);
    assert_int_equal(pfwd_sleep(p, "inst"), 0);
    usleep(100 * 1000);
    for (int i = 0; i < N; i++) {
        cl[i] = (struct client){ .port = hport, .id = i };
        pthread_create(&th[i], NULL, client_main, &cl[i]);
    }
    assert_true(wait_note(PFWD_NOTE_WAKE, 1, 3000));
    assert_non_null(strstr(notes.last[PFWD_NOTE_WAKE], "connection to port"));
    for (int i = 0; i < 100 && held < N; i++) {
        usleep(20 * 1000);
        assert_int_equal(pfwd_sleep_info(p, "inst", &asleep, &held), 0);
    }
    assert_int_equal(held, N);
    assert_int_equal(asleep, 1);
    /* resumed before the guest listens: the tries are refused for a while */
    assert_int_equal(pfwd_resume(p, "inst"), 0);
    usleep(150 * 1000);
    lfd = listen_on(gport);
    pthread_create(&echo, NULL, echo_main, &lfd);
    for (int i = 0; i < N; i++) {
        char want[32];
        int n = snprintf(want, sizeof want, "hello %02d", i);
        pthread_join(th[i], NULL);
        assert_int_equal(cl[i].got, n);
        assert_memory_equal(cl[i].reply, want, (size_t)n);
    }
    assert_int_equal(note_count(PFWD_NOTE_WAKE), 1); /* one wake for all */
    assert_int_equal(note_count(PFWD_NOTE_WAKE_TIMEOUT), 0);
    assert_int_equal(pfwd_sleep_info(p, "inst", &asleep, &held), 0);
    assert_int_equal(asleep, 0);
    pfwd_stop(p);
    shutdown(lfd, SHUT_RDWR);
    close(lfd);
    pthread_join(echo, NULL);
}

/* A guest that never accepts: each held connection is closed cleanly (EOF,
 * not a reset, although the client's bytes were never relayed) after
 * wake_ms, and the caller is told. */
static void test_wake_timeout(void **st)
{
    int hport, gport, c;
    char buf[16];
    int64_t t0;
    pfwd *p;
    (void)st;
    p = open_proxy(&hport, &gport, 60000);
    pfwd_set_wake_ms(p, 400);
    assert_int_equal(pfwd_sleep(p, "inst"), 0);
    usleep(100 * 1000);
    t0 = mono_ms();
    c = dial(hport);
    assert_true(c >= 0);
    assert_int_equal(write(c, "GET / HTTP/1.0\r\n\r\n", 18), 18);
    assert_true(wait_note(PFWD_NOTE_WAKE, 1, 2000));
    assert_int_equal(pfwd_resume(p, "inst"), 0);             /* "started", yet nothing listens */
    assert_int_equal(read_all(c, buf, sizeof buf, 3000), 0); /* EOF, not -ECONNRESET */
    assert_true(mono_ms() - t0 >= 350);
    assert_true(wait_note(PFWD_NOTE_WAKE_TIMEOUT, 1, 2000));
    assert_non_null(strstr(notes.last[PFWD_NOTE_WAKE_TIMEOUT], "did not accept"));
    close(c);
    pfwd_stop(p);
}

/* The wake failed (the caller removes the owner's forwards): the held
 * connections are closed cleanly at once, the port is free again. */
static void test_remove_held(void **st)
{
    int hport, gport, c[3];
    char buf[16], err[256];
    pfwd *p;
    (void)st;
    p = open_proxy(&hport, &gport, 60000);
    assert_int_equal(pfwd_sleep(p, "inst"), 0);
    usleep(100 * 1000);
    for (int i = 0; i < 3; i++) {
        c[i] = dial(hport);
        assert_true(c[i] >= 0);
        assert_int_equal(write(c[i], "data", 4), 4);
    }
    assert_true(wait_note(PFWD_NOTE_WAKE, 1, 2000));
    usleep(50 * 1000);
    pfwd_remove(p, "inst");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(read_all(c[i], buf, sizeof buf, 2000), 0);
        close(c[i]);
    }
    assert_int_equal(pfwd_count(p), 0);
    assert_int_equal(pfwd_sleep_info(p, "inst", &c[0], &c[1]), -1);
    assert_int_equal(pfwd_probe(p, PFWD_TCP, hport, err, sizeof err), 0);
    pfwd_stop(p);
}

/* A datagram to an asleep owner's UDP port is dropped and wakes it. */
static void test_udp_wakes(void **st)
{
    int hport, gport, u, asleep, held;
    char err[256];
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(LOOP) };
    pfwd *p;
    (void)st;
    hport = free_port();
    gport = free_port();
    pthread_mutex_lock(&notes.mu);
    memset(notes.n, 0, sizeof notes.n);
    pthread_mutex_unlock(&notes.mu);
    assert_int_equal(pfwd_start("127.0.0.1", &p, err, sizeof err), 0);
    pfwd_set_notify(p, on_note, NULL);
    assert_int_equal(pfwd_add(p, "inst", PFWD_TCP, hport, LOOP, gport, err, sizeof err), 0);
    assert_int_equal(pfwd_add(p, "inst", PFWD_UDP, hport, LOOP, gport, err, sizeof err), 0);
    assert_int_equal(pfwd_set_idle(p, "inst", 60000), 0);
    assert_int_equal(pfwd_sleep(p, "inst"), 0);
    usleep(100 * 1000);
    u = socket(AF_INET, SOCK_DGRAM, 0);
    sa.sin_port = htons((uint16_t)hport);
    assert_int_equal(sendto(u, "x", 1, 0, (struct sockaddr *)&sa, sizeof sa), 1);
    assert_true(wait_note(PFWD_NOTE_WAKE, 1, 2000));
    assert_string_equal(notes.last[PFWD_NOTE_WAKE], "datagram");
    assert_int_equal(pfwd_sleep_info(p, "inst", &asleep, &held), 0);
    assert_int_equal(asleep, 1);
    assert_int_equal(pfwd_flow_count(p), 0);
    close(u);
    pfwd_stop(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sleep_after_idle), cmocka_unit_test(test_parallel_wake),
        cmocka_unit_test(test_wake_timeout),     cmocka_unit_test(test_remove_held),
        cmocka_unit_test(test_udp_wakes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
