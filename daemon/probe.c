/* probe.c - probe specs and the probe engine (see probe.h). */
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define NEVER INT64_MAX

/* ---- specs ----------------------------------------------------------------- */

static const char *const KIND_NAMES[] = { "none", "status", "tcp", "http", "console" };
static const char *const HEALTH_NAMES[] = { "none", "starting", "healthy", "unhealthy" };

const char *probe_kind_name(probe_kind k)
{
    return (unsigned)k < sizeof KIND_NAMES / sizeof *KIND_NAMES ? KIND_NAMES[k] : "none";
}

const char *probe_health_name(probe_health_state s)
{
    return (unsigned)s < sizeof HEALTH_NAMES / sizeof *HEALTH_NAMES ? HEALTH_NAMES[s] : "none";
}

/* A port of 1..5 digits, 1..65535, ending at *end. */
static int parse_port(const char *p, const char **end, uint16_t *out)
{
    unsigned long v = 0;
    const char *s = p;
    while (*s >= '0' && *s <= '9' && s - p < 6)
        v = v * 10 + (unsigned long)(*s++ - '0');
    if (s == p || s - p > 5 || v < 1 || v > 65535)
        return -1;
    *end = s;
    *out = (uint16_t)v;
    return 0;
}

int probe_spec_parse(const char *text, int health, probe_spec *out, char *err, size_t errlen)
{
    const char *end;
    size_t len;

    memset(out, 0, sizeof *out);
    if (!text || !*text) {
        snprintf(err, errlen,
                 "probe is empty: use status, none, tcp:PORT, http:PORT/PATH or "
                 "console:REGEX");
        return -1;
    }
    len = strnlen(text, PROBE_SPEC_MAX + 1);
    if (len > PROBE_SPEC_MAX) {
        snprintf(err, errlen, "probe '%.40s...' is longer than %d bytes", text, PROBE_SPEC_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf(err, errlen, "probe '%.60s' has a control character", text);
            return -1;
        }
    }
    if (!strcmp(text, "none") || !strcmp(text, "status")) {
        if (health) {
            snprintf(err, errlen,
                     "probe '%s' is for readiness only: a health probe is "
                     "tcp:PORT or http:PORT/PATH",
                     text);
            return -1;
        }
        out->kind = text[0] == 'n' ? PROBE_NONE : PROBE_STATUS;
        return 0;
    }
    if (!strncmp(text, "tcp:", 4)) {
        if (parse_port(text + 4, &end, &out->port) != 0 || *end) {
            snprintf(err, errlen, "probe '%.60s': tcp:PORT needs a port 1..65535", text);
            return -1;
        }
        out->kind = PROBE_TCP;
        return 0;
    }
    if (!strncmp(text, "http:", 5)) {
        if (parse_port(text + 5, &end, &out->port) != 0 || (*end && *end != '/')) {
            snprintf(err, errlen, "probe '%.60s': http:PORT/PATH needs a port 1..65535", text);
            return -1;
        }
        if (!*end) {
            snprintf(out->path, sizeof out->path, "/");
        } else {
            if (strlen(end) >= sizeof out->path) {
                snprintf(err, errlen, "probe '%.60s': path longer than %d bytes", text,
                         PROBE_PATH_MAX - 1);
                return -1;
            }
            for (const char *p = end; *p; p++) {
                if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
                    snprintf(err, errlen,
                             "probe '%.60s': the path may hold no spaces and only "
                             "printable ASCII",
                             text);
                    return -1;
                }
            }
            snprintf(out->path, sizeof out->path, "%s", end);
        }
        out->kind = PROBE_HTTP;
        return 0;
    }
    if (!strncmp(text, "console:", 8)) {
        regex_t re;
        int rc;
        if (health) {
            snprintf(err, errlen,
                     "probe '%.60s' is for readiness only: a health probe is "
                     "tcp:PORT or http:PORT/PATH",
                     text);
            return -1;
        }
        if (!text[8] || strlen(text + 8) >= sizeof out->regex) {
            snprintf(err, errlen, "probe '%.60s': console:REGEX needs a pattern of 1..%d bytes",
                     text, PROBE_REGEX_MAX - 1);
            return -1;
        }
        if ((rc = regcomp(&re, text + 8, REG_EXTENDED | REG_NOSUB)) != 0) {
            char why[128];
            regerror(rc, &re, why, sizeof why);
            snprintf(err, errlen, "probe '%.60s': not a POSIX extended regular expression: %s",
                     text, why);
            return -1;
        }
        regfree(&re);
        snprintf(out->regex, sizeof out->regex, "%s", text + 8);
        out->kind = PROBE_CONSOLE;
        return 0;
    }
    snprintf(err, errlen,
             "probe '%.60s' is not status, none, tcp:PORT, http:PORT/PATH or "
             "console:REGEX",
             text);
    return -1;
}

void probe_spec_format(const probe_spec *s, char *buf, size_t len)
{
    switch (s->kind) {
    case PROBE_TCP: snprintf(buf, len, "tcp:%u", s->port); break;
    case PROBE_HTTP: snprintf(buf, len, "http:%u%s", s->port, s->path); break;
    case PROBE_CONSOLE: snprintf(buf, len, "console:%s", s->regex); break;
    default: snprintf(buf, len, "%s", probe_kind_name(s->kind)); break;
    }
}

/* ---- the engine -------------------------------------------------------------- */

enum { PH_READY = 0, PH_HEALTH, PH_IDLE };

typedef struct target {
    char id[PROBE_ID_MAX];
    uint64_t gen;
    uint32_t serial; /* epoll's handle of it: a freed target is never reached */
    uint32_t addr;
    char *console;
    probe_spec ready, health;
    uint32_t interval_ms, timeout_ms, retries;
    int phase;
    int64_t watch_ms; /* monotonic ms the watch began */
    int64_t due_ms;   /* next check, NEVER: none */
    int warned;
    uint32_t warn_ms; /* PROBE_NOTE_SLOW after this long not ready */
    /* the check in flight */
    int fd;
    int64_t started_ms, deadline_ms;
    int connected;
    size_t hlen;
    char head[PROBE_HTTP_HEAD_MAX + 1];
    /* console probes */
    regex_t re;
    int re_ok;
    off_t con_off;
    size_t line_len;
    char line[PROBE_LINE_MAX + 1];
    probe_health h;
} target;

struct probe_engine {
    pthread_mutex_t mu; /* leaf: the table below and every target */
    target **t;
    size_t n, cap;
    uint32_t next_serial;
    int ep, wake;
    int stop;
    pthread_t th;
    probe_notify_fn notify;
    void *user;
    uint64_t checks, failures;
    uint64_t hver; /* the last probe_health.ver given */
    /* notes made under mu, delivered by the thread with mu released */
    probe_note *notes;
    size_t nnotes, notes_cap;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wake(probe_engine *e)
{
    uint64_t one = 1;
    if (write(e->wake, &one, sizeof one) < 0) {
        /* the counter is full: the thread is awake anyway */
    }
}

static void note(probe_engine *e, target *t, probe_note_kind kind, int64_t now, const char *res)
{
    probe_note *n;
    if (e->nnotes == e->notes_cap) {
        size_t cap = e->notes_cap ? e->notes_cap * 2 : 16;
        probe_note *nn = realloc(e->notes, cap * sizeof *nn);
        if (!nn)
            return; /* dropped; the health state still says it */
        e->notes = nn;
        e->notes_cap = cap;
    }
    n = &e->notes[e->nnotes++];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    snprintf(n->id, sizeof n->id, "%s", t->id);
    n->gen = t->gen;
    n->at_ms = now;
    n->failures = t->h.failures;
    snprintf(n->result, sizeof n->result, "%s", res ? res : "");
}

static void close_check(target *t)
{
    if (t->fd >= 0)
        close(t->fd); /* leaves the epoll set with it (never dup'ed) */
    t->fd = -1;
    t->connected = 0;
    t->hlen = 0;
    t->deadline_ms = NEVER;
}

static void target_free(target *t)
{
    if (!t)
        return;
    close_check(t);
    if (t->re_ok)
        regfree(&t->re);
    free(t->console);
    free(t);
}

/* Period between readiness checks, by how long the watch has waited. */
static int64_t ready_period(int64_t waited)
{
    if (waited < PROBE_READY_FAST_FOR_MS)
        return PROBE_READY_FAST_MS;
    if (waited < PROBE_READY_SLOW_FOR_MS)
        return PROBE_READY_SLOW_MS;
    return PROBE_READY_IDLE_MS;
}

static const probe_spec *current(const target *t)
{
    return t->phase == PH_READY ? &t->ready : &t->health;
}

/* A check finished: record it and decide the next. Caller holds mu. */
static void finish(probe_engine *e, target *t, int ok, const char *result)
{
    int64_t now = mono_ms();
    char res[PROBE_RESULT_MAX], spec[48];
    int64_t start = t->started_ms;

    close_check(t);
    /* the spec, cut (a long path or pattern), then what happened */
    probe_spec_format(current(t), spec, sizeof spec);
    snprintf(res, sizeof res, "%s: %.*s", spec, PROBE_RESULT_MAX - 64, result);
    snprintf(t->h.last_result, sizeof t->h.last_result, "%s", res);
    t->h.last_ok = ok;
    t->h.last_wall_ms = wall_ms();
    t->h.ver = ++e->hver; /* all of h below changes under the same lock */
    e->checks++;
    if (!ok)
        e->failures++;

    if (t->phase == PH_READY) {
        if (ok) {
            t->h.ready = 1;
            note(e, t, PROBE_NOTE_READY, now, res);
            if (t->health.kind == PROBE_TCP || t->health.kind == PROBE_HTTP) {
                t->phase = PH_HEALTH;
                t->h.state = PROBE_H_STARTING;
                t->due_ms = now + t->interval_ms;
            } else {
                t->phase = PH_IDLE;
                t->due_ms = NEVER;
            }
            return;
        }
        if (!t->warned && now - t->watch_ms >= t->warn_ms) {
            t->warned = 1;
            note(e, t, PROBE_NOTE_SLOW, now, res);
        }
        t->due_ms = start + ready_period(now - t->watch_ms);
        if (t->due_ms < now)
            t->due_ms = now;
        return;
    }
    /* health */
    t->h.checks++;
    if (ok) {
        probe_health_state was = t->h.state;
        t->h.failures = 0;
        t->h.state = PROBE_H_HEALTHY;
        if (was != PROBE_H_HEALTHY)
            note(e, t, PROBE_NOTE_HEALTHY, now, res);
    } else {
        t->h.failed++;
        t->h.failures++;
        if (t->h.failures >= t->retries && t->h.state != PROBE_H_UNHEALTHY) {
            t->h.state = PROBE_H_UNHEALTHY;
            note(e, t, PROBE_NOTE_UNHEALTHY, now, res);
        }
    }
    t->due_ms = start + t->interval_ms;
    if (t->due_ms < now)
        t->due_ms = now;
}

/* Scan the console file from where the last check stopped; 1 when a line
 * matches. Bounded: PROBE_CONSOLE_READ_MAX bytes a check, lines cut at
 * PROBE_LINE_MAX. */
static int console_match(target *t, char *why, size_t whylen)
{
    char buf[8192];
    size_t total = 0;
    struct stat sb;
    int fd, hit = 0;

    if (!t->re_ok) {
        snprintf(why, whylen, "pattern does not compile");
        return 0;
    }
    fd = open(t->console ? t->console : "", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "no console yet");
        return 0;
    }
    if (fstat(fd, &sb) == 0 && sb.st_size < t->con_off) {
        t->con_off = 0; /* rotated or emptied: read it again */
        t->line_len = 0;
    }
    while (!hit && total < PROBE_CONSOLE_READ_MAX) {
        ssize_t r = pread(fd, buf, sizeof buf, t->con_off);
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r && !hit; i++) {
            char c = buf[i];
            if (c == '\n') {
                t->line[t->line_len] = 0;
                hit = regexec(&t->re, t->line, 0, NULL, 0) == 0;
                t->line_len = 0;
            } else if (c != '\r' && c != 0 && t->line_len < PROBE_LINE_MAX) {
                t->line[t->line_len++] = c;
            }
        }
        t->con_off += r;
        total += (size_t)r;
    }
    close(fd);
    if (!hit && t->line_len) {
        /* a line the guest has not ended yet (a prompt) counts too */
        t->line[t->line_len] = 0;
        hit = regexec(&t->re, t->line, 0, NULL, 0) == 0;
    }
    snprintf(why, whylen, hit ? "a console line matches" : "no console line matches yet");
    return hit;
}

/* Start a check of t now. Caller holds mu. */
static void start_check(probe_engine *e, target *t, int64_t now)
{
    const probe_spec *s = current(t);
    struct sockaddr_in sa;
    struct epoll_event ev;
    char why[PROBE_RESULT_MAX];

    t->started_ms = now;
    t->due_ms = NEVER;
    if (s->kind == PROBE_CONSOLE) {
        int ok = console_match(t, why, sizeof why);
        finish(e, t, ok, why);
        return;
    }
    if (s->kind != PROBE_TCP && s->kind != PROBE_HTTP) {
        t->phase = PH_IDLE;
        return;
    }
    t->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (t->fd < 0) {
        snprintf(why, sizeof why, "socket: %s", strerror(errno));
        finish(e, t, 0, why);
        return;
    }
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(s->port);
    sa.sin_addr.s_addr = htonl(t->addr);
    t->deadline_ms = now + (t->phase == PH_READY ? PROBE_READY_ATTEMPT_MS : t->timeout_ms);
    if (connect(t->fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        snprintf(why, sizeof why, "connect: %s", strerror(errno));
        finish(e, t, 0, why);
        return;
    }
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = t->serial;
    if (epoll_ctl(e->ep, EPOLL_CTL_ADD, t->fd, &ev) != 0) {
        snprintf(why, sizeof why, "epoll: %s", strerror(errno));
        finish(e, t, 0, why);
    }
}

/* The socket of t's check is ready. Caller holds mu. */
static void progress(probe_engine *e, target *t, uint32_t events)
{
    const probe_spec *s = current(t);
    char why[PROBE_RESULT_MAX];

    if (!t->connected) {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            soerr = errno;
        if (soerr) {
            snprintf(why, sizeof why, "connect: %s", strerror(soerr));
            finish(e, t, 0, why);
            return;
        }
        if (!(events & EPOLLOUT))
            return;
        t->connected = 1;
        if (s->kind == PROBE_TCP) {
            finish(e, t, 1, "connected");
            return;
        }
        char req[PROBE_PATH_MAX + 160], host[INET_ADDRSTRLEN];
        struct in_addr ia = { htonl(t->addr) };
        struct epoll_event ev;
        inet_ntop(AF_INET, &ia, host, sizeof host);
        int n = snprintf(req, sizeof req,
                         "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: shoald-probe\r\n"
                         "Accept: */*\r\nConnection: close\r\n\r\n",
                         s->path, host, s->port);
        /* a few hundred bytes into an empty socket buffer: sent whole */
        if (send(t->fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
            snprintf(why, sizeof why, "send: %s", strerror(errno));
            finish(e, t, 0, why);
            return;
        }
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.u64 = t->serial;
        epoll_ctl(e->ep, EPOLL_CTL_MOD, t->fd, &ev);
        return;
    }
    /* http: read up to the end of the status line */
    for (;;) {
        ssize_t r = recv(t->fd, t->head + t->hlen, PROBE_HTTP_HEAD_MAX - t->hlen, 0);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r < 0) {
            snprintf(why, sizeof why, "recv: %s", strerror(errno));
            finish(e, t, 0, why);
            return;
        }
        t->hlen += (size_t)r;
        t->head[t->hlen] = 0;
        if (r == 0 || memchr(t->head, '\n', t->hlen) || t->hlen == PROBE_HTTP_HEAD_MAX)
            break;
    }
    int major, minor, code;
    char *nl = strchr(t->head, '\n');
    if (!nl || sscanf(t->head, "HTTP/%d.%d %3d", &major, &minor, &code) != 3) {
        snprintf(why, sizeof why,
                 nl || t->hlen ? "no HTTP status line"
                               : "connection closed "
                                 "before a status line");
        finish(e, t, 0, why);
        return;
    }
    snprintf(why, sizeof why, "HTTP %d", code);
    finish(e, t, code >= 200 && code <= 299, why);
}

static target *find_serial(probe_engine *e, uint32_t serial)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->t[i]->serial == serial)
            return e->t[i];
    return NULL;
}

/* The table is kept sorted by id: the position of id, or where it would
 * go (*found 0). A list page asks for 100 instances' health at once. */
static size_t id_slot(probe_engine *e, const char *id, int *found)
{
    size_t lo = 0, hi = e->n;
    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(e->t[mid]->id, id);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static size_t find_id(probe_engine *e, const char *id)
{
    int found;
    size_t i = id_slot(e, id, &found);
    return found ? i : (size_t)-1;
}

static void *engine_main(void *arg)
{
    probe_engine *e = arg;
    struct epoll_event evs[64];
    probe_note *batch = NULL;
    size_t nbatch = 0;

    pthread_mutex_lock(&e->mu);
    while (!e->stop) {
        int64_t now = mono_ms(), next = NEVER;
        for (size_t i = 0; i < e->n; i++) {
            target *t = e->t[i];
            if (t->fd >= 0 && now >= t->deadline_ms) {
                char why[64];
                snprintf(why, sizeof why, "no answer in %lld ms",
                         (long long)(t->deadline_ms - t->started_ms));
                finish(e, t, 0, why);
            }
            if (t->fd < 0 && t->due_ms <= now)
                start_check(e, t, now);
            if (t->fd >= 0 && t->deadline_ms < next)
                next = t->deadline_ms;
            if (t->fd < 0 && t->due_ms < next)
                next = t->due_ms;
        }
        if (e->nnotes) {
            /* deliver with mu released; callbacks may call probe_* */
            batch = e->notes;
            nbatch = e->nnotes;
            e->notes = NULL;
            e->nnotes = e->notes_cap = 0;
            pthread_mutex_unlock(&e->mu);
            for (size_t i = 0; i < nbatch; i++)
                e->notify(e->user, &batch[i]);
            free(batch);
            pthread_mutex_lock(&e->mu);
            continue;
        }
        int timeout = next == NEVER ? -1 : next <= now ? 0 : (int)(next - now);
        if (timeout > 1000)
            timeout = 1000;
        pthread_mutex_unlock(&e->mu);
        int n = epoll_wait(e->ep, evs, 64, timeout);
        pthread_mutex_lock(&e->mu);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == 0) {
                uint64_t v;
                if (read(e->wake, &v, sizeof v) < 0) {
                    /* nothing to drain */
                }
                continue;
            }
            target *t = find_serial(e, (uint32_t)evs[i].data.u64);
            if (t && t->fd >= 0)
                progress(e, t, evs[i].events);
        }
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

int probe_open(probe_notify_fn notify, void *user, probe_engine **out, char *err, size_t errlen)
{
    probe_engine *e = calloc(1, sizeof *e);
    struct epoll_event ev;

    *out = NULL;
    if (!e) {
        snprintf(err, errlen, "probe engine: out of memory");
        return -1;
    }
    pthread_mutex_init(&e->mu, NULL);
    e->notify = notify;
    e->user = user;
    e->next_serial = 1;
    e->ep = epoll_create1(EPOLL_CLOEXEC);
    e->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e->ep < 0 || e->wake < 0) {
        snprintf(err, errlen, "probe engine: %s", strerror(errno));
        goto fail;
    }
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u64 = 0; /* serial 0: the wake-up */
    if (epoll_ctl(e->ep, EPOLL_CTL_ADD, e->wake, &ev) != 0 ||
        pthread_create(&e->th, NULL, engine_main, e) != 0) {
        snprintf(err, errlen, "probe engine: cannot start its thread");
        goto fail;
    }
    *out = e;
    return 0;
fail:
    if (e->ep >= 0)
        close(e->ep);
    if (e->wake >= 0)
        close(e->wake);
    pthread_mutex_destroy(&e->mu);
    free(e);
    return -1;
}

void probe_close(probe_engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stop = 1;
    pthread_mutex_unlock(&e->mu);
    wake(e);
    pthread_join(e->th, NULL);
    for (size_t i = 0; i < e->n; i++)
        target_free(e->t[i]);
    free(e->t);
    free(e->notes);
    close(e->ep);
    close(e->wake);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

static int needs_addr(const probe_spec *s)
{
    return s->kind == PROBE_TCP || s->kind == PROBE_HTTP;
}

int probe_watch(probe_engine *e, const probe_watch_spec *w, char *err, size_t errlen)
{
    target *t;
    size_t i;
    int found;
    int64_t now = mono_ms();

    if (!w->id || strlen(w->id) >= PROBE_ID_MAX) {
        snprintf(err, errlen, "probe watch: bad instance id");
        return -1;
    }
    if ((needs_addr(&w->ready) || needs_addr(&w->health)) && !w->addr) {
        snprintf(err, errlen,
                 "a %s probe needs the guest's network address, and instance '%s' "
                 "has none",
                 needs_addr(&w->ready) ? probe_kind_name(w->ready.kind)
                                       : probe_kind_name(w->health.kind),
                 w->id);
        return -1;
    }
    if (!(t = calloc(1, sizeof *t))) {
        snprintf(err, errlen, "probe watch: out of memory");
        return -1;
    }
    snprintf(t->id, sizeof t->id, "%s", w->id);
    t->gen = w->gen;
    t->addr = w->addr;
    t->console = w->console_path ? strdup(w->console_path) : NULL;
    t->ready = w->ready;
    t->health = w->health;
    t->interval_ms = w->interval_ms ? w->interval_ms : PROBE_INTERVAL_S_DEFAULT * 1000;
    t->timeout_ms = w->timeout_ms ? w->timeout_ms : PROBE_TIMEOUT_S_DEFAULT * 1000;
    t->retries = w->retries ? w->retries : PROBE_RETRIES_DEFAULT;
    t->warn_ms = w->warn_ms ? w->warn_ms : PROBE_READY_WARN_MS;
    t->fd = -1;
    t->deadline_ms = NEVER;
    t->watch_ms = now;
    t->h.state = PROBE_H_NONE;
    if (t->ready.kind == PROBE_CONSOLE)
        t->re_ok = regcomp(&t->re, t->ready.regex, REG_EXTENDED | REG_NOSUB) == 0;
    if (w->ready_now || t->ready.kind == PROBE_NONE) {
        t->h.ready = 1;
        t->phase = PH_IDLE;
        t->due_ms = NEVER;
        if (needs_addr(&t->health)) {
            t->phase = PH_HEALTH;
            t->h.state = PROBE_H_STARTING;
            t->due_ms = now + t->interval_ms;
        }
    } else if (t->ready.kind == PROBE_STATUS) {
        t->phase = PH_IDLE; /* probe_set_ready starts the health checks */
        t->due_ms = NEVER;
        if (needs_addr(&t->health))
            t->h.state = PROBE_H_STARTING;
    } else {
        t->phase = PH_READY;
        t->due_ms = now; /* first check at once */
    }

    pthread_mutex_lock(&e->mu);
    t->serial = e->next_serial++;
    if (!e->next_serial)
        e->next_serial = 1;
    t->h.ver = ++e->hver;
    i = id_slot(e, t->id, &found);
    if (found) {
        target_free(e->t[i]);
        e->t[i] = t;
    } else {
        if (e->n == e->cap) {
            size_t cap = e->cap ? e->cap * 2 : 64;
            target **nt = realloc(e->t, cap * sizeof *nt);
            if (!nt) {
                pthread_mutex_unlock(&e->mu);
                target_free(t);
                snprintf(err, errlen, "probe watch: out of memory");
                return -1;
            }
            e->t = nt;
            e->cap = cap;
        }
        memmove(&e->t[i + 1], &e->t[i], (e->n - i) * sizeof *e->t);
        e->t[i] = t;
        e->n++;
    }
    pthread_mutex_unlock(&e->mu);
    wake(e);
    return 0;
}

void probe_unwatch(probe_engine *e, const char *id)
{
    size_t i;
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    if ((i = find_id(e, id)) != (size_t)-1) {
        target_free(e->t[i]);
        memmove(&e->t[i], &e->t[i + 1], (e->n - i - 1) * sizeof *e->t);
        e->n--;
    }
    /* notes of it not yet delivered are dropped */
    for (size_t k = 0; k < e->nnotes;) {
        if (!strcmp(e->notes[k].id, id))
            e->notes[k] = e->notes[--e->nnotes];
        else
            k++;
    }
    pthread_mutex_unlock(&e->mu);
}

void probe_set_ready(probe_engine *e, const char *id, uint64_t gen)
{
    size_t i;
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    if ((i = find_id(e, id)) != (size_t)-1 && e->t[i]->gen == gen && !e->t[i]->h.ready) {
        target *t = e->t[i];
        close_check(t);
        t->h.ready = 1;
        t->h.ver = ++e->hver;
        if (needs_addr(&t->health)) {
            t->phase = PH_HEALTH;
            t->h.state = PROBE_H_STARTING;
            t->due_ms = mono_ms() + t->interval_ms;
        } else {
            t->phase = PH_IDLE;
            t->due_ms = NEVER;
        }
    }
    pthread_mutex_unlock(&e->mu);
    wake(e);
}

int probe_health_get(probe_engine *e, const char *id, probe_health *out)
{
    size_t i;
    int rc = -1;
    if (!e)
        return -1;
    pthread_mutex_lock(&e->mu);
    if ((i = find_id(e, id)) != (size_t)-1) {
        *out = e->t[i]->h;
        rc = 0;
    }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

void probe_health_versions(probe_engine *e, const char *const *ids, size_t n, uint64_t *out)
{
    size_t i;
    for (i = 0; i < n; i++)
        out[i] = 0;
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    for (i = 0; e->n > 0 && i < n; i++) {
        size_t k = find_id(e, ids[i]);
        out[i] = k != (size_t)-1 ? e->t[k]->h.ver : 0;
    }
    pthread_mutex_unlock(&e->mu);
}

void probe_stats_get(probe_engine *e, probe_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    out->watches = e->n;
    for (size_t i = 0; i < e->n; i++) {
        if ((unsigned)e->t[i]->h.state <= PROBE_H_UNHEALTHY)
            out->by_health[e->t[i]->h.state]++;
    }
    out->checks = e->checks;
    out->failures = e->failures;
    pthread_mutex_unlock(&e->mu);
}
