/* nodestream.c - a serial port read through a libvirt stream into a local
 * file (nodestream.h). */
#include "nodestream.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/virterror.h>

#include "errbuf.h"

#define NSTREAM_BUF      16384u /* bytes per virStreamRecv */
#define NSTREAM_RECV_MAX 64     /* receives per callback: the loop serves others too */

struct nstream {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* state left NSTREAM_OPEN */
    virStreamPtr st;
    char *path; /* the local file, opened per batch: no descriptor held */
    enum nstream_state state;
    int watching; /* the callback is registered */
    int eof;      /* virStreamRecv returned 0: the host ended it */
    unsigned long long bytes;
    virConnectPtr conn;   /* the stream's (not held), for nstream_reap */
    int64_t finish_after; /* closed after its end: finished from then (ms) */
    struct nstream *next; /* in `ended` */
};

/* Streams closed after their end, waiting for their finish (nodestream.h
 * NSTREAM_FINISH_DELAY_MS). */
static pthread_mutex_t ended_mu = PTHREAD_MUTEX_INITIALIZER;
static struct nstream *ended;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Streams closed but not yet freed (free_later): nstream_drain waits. */
static pthread_mutex_t pending_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pending_cv = PTHREAD_COND_INITIALIZER;
static int pending;

static void destroy(struct nstream *s)
{
    if (s->st)
        virStreamFree(s->st);
    free(s->path);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* On the event loop, after any dispatch of the removed callback that was
 * under way there (libvirt's own free callback of the registration was
 * not called for streams removed from inside their callback: 14 leaked in
 * e2e_daemon_remote under LeakSanitizer). */
static void free_later(int timer, void *opaque)
{
    virEventRemoveTimeout(timer);
    destroy(opaque);
    pthread_mutex_lock(&pending_mu);
    pending--;
    pthread_cond_broadcast(&pending_cv);
    pthread_mutex_unlock(&pending_mu);
}

void nstream_drain(int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000 + 1;
    pthread_mutex_lock(&pending_mu);
    while (pending > 0 && pthread_cond_timedwait(&pending_cv, &pending_mu, &until) == 0)
        ;
    pthread_mutex_unlock(&pending_mu);
}

/* Under s->mu: stop reading and record how it ended. No RPC: the removal
 * is local to the client (its free callback may run later). */
static void end_locked(struct nstream *s, enum nstream_state how)
{
    if (s->watching) {
        s->watching = 0;
        virStreamEventRemoveCallback(s->st);
    }
    if (s->state == NSTREAM_OPEN)
        s->state = how;
    pthread_cond_broadcast(&s->cv);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* On libvirt's event loop: drain what arrived into the file. */
static void on_data(virStreamPtr st, int events, void *opaque)
{
    struct nstream *s = opaque;
    char buf[NSTREAM_BUF];
    int n = -2, fd = -1;

    pthread_mutex_lock(&s->mu);
    for (int i = 0; s->watching && i < NSTREAM_RECV_MAX; i++) {
        n = virStreamRecv(st, buf, sizeof buf);
        if (n == -2)
            break;
        if (n > 0 && fd < 0)
            fd = open(s->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (n == 0) {
            s->eof = 1;
            end_locked(s, NSTREAM_EOF);
        } else if (n < 0 || fd < 0 || write_all(fd, buf, (size_t)n) != 0) {
            end_locked(s, NSTREAM_BROKEN);
        } else {
            s->bytes += (unsigned long long)n;
        }
    }
    if (fd >= 0)
        close(fd);
    /* A hang-up with nothing left to read would fire again and again. */
    if (s->watching && n == -2 && (events & (VIR_STREAM_EVENT_ERROR | VIR_STREAM_EVENT_HANGUP)))
        end_locked(s, (events & VIR_STREAM_EVENT_ERROR) ? NSTREAM_BROKEN : NSTREAM_EOF);
    pthread_mutex_unlock(&s->mu);
}

int nstream_open(virDomainPtr dom, const char *dev, const char *local_path, int force,
                 struct nstream **out, char *err, size_t errlen)
{
    struct nstream *s = calloc(1, sizeof *s);
    pthread_condattr_t ca;
    int rc = -1, opened = 0, fd;

    *out = NULL;
    if (!s) {
        errbuf_set(err, errlen, "%s: out of memory", dev);
        return -1;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    /* The file exists from here on, empty or as it was. */
    fd = open(local_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || !(s->path = strdup(local_path))) {
        errbuf_set(err, errlen, "%s: cannot open '%s': %s", dev, local_path,
                   fd < 0 ? strerror(errno) : "out of memory");
        if (fd >= 0)
            close(fd);
        goto out;
    }
    close(fd);
    s->conn = virDomainGetConnect(dom);
    s->st = virStreamNew(s->conn, VIR_STREAM_NONBLOCK);
    if (!s->st || virDomainOpenConsole(dom, dev, s->st, force ? VIR_DOMAIN_CONSOLE_FORCE : 0) < 0) {
        errbuf_set(err, errlen, "cannot open %s as a stream: %s", dev, virGetLastErrorMessage());
        goto out;
    }
    opened = 1;
    /* Locked across the registration: a callback that comes at once waits
     * until `watching` says it may read. */
    pthread_mutex_lock(&s->mu);
    if (virStreamEventAddCallback(
            s->st, VIR_STREAM_EVENT_READABLE | VIR_STREAM_EVENT_ERROR | VIR_STREAM_EVENT_HANGUP,
            on_data, s, NULL) < 0) {
        pthread_mutex_unlock(&s->mu);
        errbuf_set(err, errlen, "cannot watch %s: %s", dev, virGetLastErrorMessage());
        goto out;
    }
    s->watching = 1;
    pthread_mutex_unlock(&s->mu);
    *out = s;
    rc = 0;
out:
    if (rc != 0) {
        if (opened)
            virStreamAbort(s->st); /* frees it on the host */
        destroy(s);                /* no callback was registered */
    }
    return rc;
}

enum nstream_state nstream_state(struct nstream *s)
{
    enum nstream_state st;
    pthread_mutex_lock(&s->mu);
    st = s->state;
    pthread_mutex_unlock(&s->mu);
    return st;
}

enum nstream_state nstream_wait_end(struct nstream *s, int timeout_ms)
{
    struct timespec until;
    enum nstream_state st;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (s->state == NSTREAM_OPEN) {
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
            break;
    }
    st = s->state;
    pthread_mutex_unlock(&s->mu);
    return st;
}

unsigned long long nstream_bytes(struct nstream *s)
{
    unsigned long long n;
    pthread_mutex_lock(&s->mu);
    n = s->bytes;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Free s on the event loop (free_later). */
static void let_go(struct nstream *s)
{
    pthread_mutex_lock(&pending_mu);
    pending++;
    pthread_mutex_unlock(&pending_mu);
    if (virEventAddTimeout(0, free_later, s, NULL) < 0) {
        pthread_mutex_lock(&pending_mu);
        pending--;
        pthread_mutex_unlock(&pending_mu);
        destroy(s); /* no event loop: nothing can dispatch either */
    }
}

void nstream_close(struct nstream *s, int conn_gone)
{
    int eof;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    end_locked(s, NSTREAM_BROKEN);
    eof = s->eof;
    pthread_mutex_unlock(&s->mu);
    /* Only a stream whose end arrived is finished, and not now: the
     * guest just went, and a finish that meets the host freeing the
     * domain deadlocks the host's libvirtd (nodestream.h). No abort
     * either (the same deadlock). A stream let go without a call stays
     * on the host until the connection closes. */
    if (!conn_gone && eof) {
        s->finish_after = now_ms() + NSTREAM_FINISH_DELAY_MS;
        pthread_mutex_lock(&ended_mu);
        s->next = ended;
        ended = s;
        pthread_mutex_unlock(&ended_mu);
        return;
    }
    let_go(s);
}

int nstream_abort(struct nstream *s)
{
    int rc;
    if (!s)
        return 0;
    pthread_mutex_lock(&s->mu);
    end_locked(s, NSTREAM_BROKEN);
    pthread_mutex_unlock(&s->mu);
    rc = virStreamAbort(s->st); /* an RPC: the host closes its end now */
    let_go(s);
    return rc < 0 ? -1 : 0;
}

void nstream_reap(virConnectPtr conn, int conn_gone)
{
    struct nstream *due = NULL;
    int64_t now = now_ms();

    pthread_mutex_lock(&ended_mu);
    for (struct nstream **pp = &ended; *pp;) {
        struct nstream *s = *pp;
        if (s->conn == conn && (conn_gone || now >= s->finish_after)) {
            *pp = s->next;
            s->next = due;
            due = s;
        } else {
            pp = &s->next;
        }
    }
    pthread_mutex_unlock(&ended_mu);
    while (due) {
        struct nstream *s = due;
        due = s->next;
        /* Outside every lock: on a remote connection this is an RPC. */
        if (!conn_gone)
            virStreamFinish(s->st);
        let_go(s);
    }
}
