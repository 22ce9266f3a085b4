/*
 * chan_server.c - the root end of the privilege-separation channel
 * (chan.h). One reader (the caller of chan_server_run) reads and decodes
 * every frame; each decoded call runs on a call worker (calls block: a
 * create waits on libvirt, a stream read up to 1 s), at most max_inflight
 * at once per channel. Each call authenticates the secret it carries and
 * is checked against the token's scope here, whatever the front decided.
 *
 * Call workers are pooled, shared by every channel: a call goes to an idle
 * worker, or to a new one when none is idle, so a call never waits behind
 * another; a worker idle for POOL_IDLE_MS leaves and at most POOL_IDLE_MAX
 * wait. Workers are thus bounded by the calls in flight plus
 * POOL_IDLE_MAX, and the queue by the idle workers (a call is queued only
 * for a worker that waits for it). A thread per call cost a small call
 * about a third of its time in the root (docs/benchmarks.md "Privilege
 * separation").
 *
 * A call's reply frames are written into one buffer and sent with one
 * write when it holds CHAN_FLUSH bytes and at the end (the front reads
 * them the same way): one wake-up of the front per reply, not one per
 * object of a list.
 *
 * Locks: mu (leaf) guards the in-flight count and the handle table; wmu
 * (leaf) serialises whole buffers of frames onto the socket; pool.mu
 * (leaf) the idle workers and their queue. None is held across a backend
 * call.
 */
#include "chan.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"

#define H_IDX_BITS 12 /* CHAN_HANDLES_MAX == 1 << H_IDX_BITS */
_Static_assert(CHAN_HANDLES_MAX == 1 << H_IDX_BITS, "handle index bits");

typedef enum hkind { H_FREE = 0, H_UPLOAD, H_CONSOLE, H_EVENTS } hkind;

/* An open upload or stream of the front's. */
typedef struct hslot {
    hkind kind;
    uint32_t handle; /* generation << H_IDX_BITS | index */
    void *h;         /* the backend's */
    bool busy;       /* a call on it is running: refuse another (the api never
	                    overlaps calls on one handle; a compromised front might) */
} hslot;

typedef struct srv {
    int fd;
    const api_backend *be;
    void *ctx;
    unsigned max_inflight;
    pthread_mutex_t mu;
    unsigned inflight;
    bool ended; /* the reader has left: the last call out frees */
    uint32_t gen;
    hslot slots[CHAN_HANDLES_MAX];
    pthread_mutex_t wmu;
} srv;

typedef struct job {
    struct job *next; /* in the pool's queue */
    srv *s;
    uint32_t id;
    unsigned char *payload;
    chan_call c;
} job;

#define CHAN_FLUSH    (64u << 10) /* reply bytes buffered before a write */
#define POOL_IDLE_MAX 16          /* call workers kept waiting */
#define POOL_IDLE_MS  10000       /* a worker idle this long leaves */

/* ---- socket ------------------------------------------------------------- */

/* Send the finished frames of w in one write and empty it. */
static void flush(srv *s, chan_w *w)
{
    if (w->done == 0)
        return;
    pthread_mutex_lock(&s->wmu);
    /* Failing (the front is gone, or has not read for CHAN_SEND_TIMEOUT_S):
     * end the channel, so the reader stops and no call waits on a front
     * that does not read. */
    if (chan_send_full(s->fd, w->buf, w->done) != 0)
        shutdown(s->fd, SHUT_RDWR);
    pthread_mutex_unlock(&s->wmu);
    chan_w_reset(w);
}

/* The call's DONE frame behind what w holds, all sent. */
static void send_done(srv *s, chan_w *w, uint32_t id, const api_status *st, const char *cursor,
                      uint32_t handle, int64_t value, const void *blob, size_t blob_len)
{
    chan_w_next(w);
    chan_done_put(w, st, cursor, handle, value, blob, blob_len);
    if (chan_w_finish(w, CHAN_R_DONE, id, CHAN_REP_MAX) != 0) {
        /* too large (metrics text of a huge fleet) or no memory */
        api_status e = { 0 };
        chan_w_next(w);
        api_status_set(&e, API_E_INTERNAL, NULL, "result too large for the channel");
        chan_done_put(w, &e, NULL, 0, 0, NULL, 0);
        chan_w_finish(w, CHAN_R_DONE, id, CHAN_REP_MAX);
    }
    flush(s, w);
}

/* A DONE frame alone (answers of the reader). */
static void send_status(srv *s, uint32_t id, const api_status *st)
{
    chan_w w;

    chan_w_init(&w);
    send_done(s, &w, id, st, NULL, 0, 0, NULL, 0);
    chan_w_free(&w);
}

/* ---- handles ------------------------------------------------------------ */

static uint32_t handle_add(srv *s, hkind kind, void *h)
{
    uint32_t handle = 0;

    pthread_mutex_lock(&s->mu);
    for (uint32_t i = 0; i < CHAN_HANDLES_MAX; i++) {
        if (s->slots[i].kind == H_FREE) {
            s->gen = (s->gen + 1) & ((1u << (32 - H_IDX_BITS)) - 1);
            if (s->gen == 0)
                s->gen = 1;
            handle = s->gen << H_IDX_BITS | i;
            s->slots[i] = (hslot){ kind, handle, h, false };
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return handle; /* 0: table full */
}

/* Mark the handle busy (use) or take it out of the table (!use); NULL when
 * it is not open, of another kind, or busy. */
static void *handle_get(srv *s, uint32_t handle, hkind kind, bool use)
{
    hslot *sl = &s->slots[handle & (CHAN_HANDLES_MAX - 1)];
    void *h = NULL;

    pthread_mutex_lock(&s->mu);
    if (sl->kind == kind && sl->handle == handle && !sl->busy && handle != 0) {
        h = sl->h;
        if (use)
            sl->busy = true;
        else
            memset(sl, 0, sizeof *sl);
    }
    pthread_mutex_unlock(&s->mu);
    return h;
}

static void handle_put(srv *s, uint32_t handle)
{
    pthread_mutex_lock(&s->mu);
    s->slots[handle & (CHAN_HANDLES_MAX - 1)].busy = false;
    pthread_mutex_unlock(&s->mu);
}

static void handle_release(srv *s, hkind kind, void *h)
{
    if (kind == H_UPLOAD)
        s->be->image_upload_abort(s->ctx, h);
    else if (kind == H_CONSOLE)
        s->be->console_close(s->ctx, h);
    else if (kind == H_EVENTS)
        s->be->events_close(s->ctx, h);
}

/* ---- one call ----------------------------------------------------------- */

/* Capture sink target: one CHAN_R_OBJECT frame per object, into out. */
typedef struct capture {
    srv *s;
    uint32_t id;
    chan_w *out;
} capture;

static int on_object(void *cls, const char *json, size_t len, bool ok)
{
    capture *cp = cls;
    chan_w *w = cp->out;

    chan_w_next(w);
    chan_w_u32(w, ok ? 1 : 0);
    chan_w_bytes(w, json, len);
    if (chan_w_finish(w, CHAN_R_OBJECT, cp->id, CHAN_REP_MAX) != 0)
        return -1; /* the next frame drops it */
    if (w->done >= CHAN_FLUSH)
        flush(cp->s, w);
    return 0;
}

/* The sink each call's results go to (the route's, as api/server.c). */
static bool call_sink(chan_type t, api_sink_kind *k, api_sink_shape *sh)
{
    *sh = API_SHAPE_ONE;
    switch (t) {
    case CHAN_T_UPLOAD_COMMIT:
    case CHAN_T_IMAGE_GET:
    case CHAN_T_IMAGE_TAG:
    case CHAN_T_IMAGE_PATCH: *k = API_SINK_IMAGE; return true;
    case CHAN_T_IMAGE_LIST:
        *sh = API_SHAPE_LIST;
        *k = API_SINK_IMAGE;
        return true;
    case CHAN_T_INSTANCE_CREATE:
        *sh = API_SHAPE_ITEMS;
        *k = API_SINK_INSTANCE;
        return true;
    case CHAN_T_INSTANCE_LIST:
        *sh = API_SHAPE_LIST;
        *k = API_SINK_INSTANCE;
        return true;
    case CHAN_T_INSTANCE_GET:
    case CHAN_T_INSTANCE_ACTION: *k = API_SINK_INSTANCE; return true;
    case CHAN_T_INSTANCE_BULK:
        *sh = API_SHAPE_BULK;
        *k = API_SINK_BULK;
        return true;
    case CHAN_T_HOST_LIST:
        *sh = API_SHAPE_LIST;
        *k = API_SINK_HOST;
        return true;
    case CHAN_T_HOST_GET:
    case CHAN_T_HOST_ADD:
    case CHAN_T_HOST_CORDON: *k = API_SINK_HOST; return true;
    case CHAN_T_HOST_DRAIN:
    case CHAN_T_CONSOLIDATE: *k = API_SINK_PLAN; return true;
    case CHAN_T_METRICS: *k = API_SINK_TEXT; return true;
    case CHAN_T_TOKEN_CREATE: *k = API_SINK_TOKEN; return true;
    case CHAN_T_TOKEN_LIST:
        *sh = API_SHAPE_LIST;
        *k = API_SINK_TOKEN;
        return true;
    default: return false;
    }
}

#define NEED(fn)                                                                                   \
    do {                                                                                           \
        if (be->fn == NULL) {                                                                      \
            rc = api_status_set(&st, API_E_INTERNAL, NULL, "%s is not implemented", #fn);          \
            goto reply;                                                                            \
        }                                                                                          \
    } while (0)

/* Calls on a handle: an unknown, busy or foreign handle is a 400. */
#define USE(kind, use)                                                                             \
    do {                                                                                           \
        h = handle_get(s, c->handle, kind, use);                                                   \
        if (h == NULL) {                                                                           \
            rc = api_status_set(&st, API_E_BAD_REQUEST, NULL, "no such open stream or upload");    \
            goto reply;                                                                            \
        }                                                                                          \
    } while (0)

static void run_call(job *j)
{
    srv *s = j->s;
    const api_backend *be = s->be;
    void *ctx = s->ctx;
    chan_call *c = &j->c;
    chan_w out;
    capture cp = { s, j->id, &out };
    api_status st = { 0 };
    api_principal who;
    api_sink *sink = NULL;
    api_sink_kind kind;
    api_sink_shape shape;
    char *text = NULL, *buf = NULL;
    const void *blob = NULL;
    size_t blob_len = 0;
    uint32_t handle = 0;
    int64_t value = 0;
    api_event ev;
    void *h = NULL;
    api_code rc = API_OK;
    bool closing = c->type == CHAN_T_UPLOAD_ABORT || c->type == CHAN_T_CONSOLE_CLOSE ||
                   c->type == CHAN_T_EVENTS_CLOSE;

    memset(&who, 0, sizeof who);
    chan_w_init(&out);
    /* Releasing needs no token (a revoked one must not leak the handle). */
    if (!closing) {
        if (be->authenticate == NULL || be->authenticate(ctx, c->secret, &who) != API_OK) {
            rc = api_status_set(&st, API_E_UNAUTHORIZED, NULL, "missing or invalid bearer token");
            /* an expired token's name and expiry, for the answer (api.h) */
            blob = &who;
            blob_len = c->type == CHAN_T_AUTHENTICATE ? sizeof who : 0;
            goto reply;
        }
        if (who.scope < chan_call_scope(c->type)) {
            rc =
                api_status_set(&st, API_E_FORBIDDEN, NULL,
                               "token '%s' (scope %s) may not do this: it needs scope %s", who.name,
                               api_scope_name(who.scope), api_scope_name(chan_call_scope(c->type)));
            goto reply;
        }
    }
    if (call_sink(c->type, &kind, &shape)) {
        sink = api_sink_new_capture(kind, shape, on_object, &cp);
        if (sink == NULL) {
            rc = api_status_set(&st, API_E_INTERNAL, NULL, "out of memory");
            goto reply;
        }
    }
    api_request_principal_set(&who);
    switch (c->type) {
    case CHAN_T_AUTHENTICATE:
        blob = &who;
        blob_len = sizeof who;
        break;
    case CHAN_T_UPLOAD_BEGIN:
        NEED(image_upload_begin);
        NEED(image_upload_abort);
        rc = be->image_upload_begin(ctx, &c->upload, &h, &st);
        if (rc == API_OK) {
            handle = handle_add(s, H_UPLOAD, h);
            if (handle == 0) {
                be->image_upload_abort(ctx, h);
                rc = api_status_set(&st, API_E_UNAVAILABLE, NULL, "too many open uploads");
            }
        }
        break;
    case CHAN_T_UPLOAD_WRITE:
        NEED(image_upload_write);
        USE(H_UPLOAD, true);
        rc = be->image_upload_write(ctx, h, c->data, c->data_len, &st);
        handle_put(s, c->handle);
        break;
    case CHAN_T_UPLOAD_COMMIT:
        NEED(image_upload_commit);
        USE(H_UPLOAD, false);
        rc = be->image_upload_commit(ctx, h, sink, &st);
        break;
    case CHAN_T_UPLOAD_ABORT:
    case CHAN_T_CONSOLE_CLOSE:
    case CHAN_T_EVENTS_CLOSE: {
        hkind k = c->type == CHAN_T_UPLOAD_ABORT    ? H_UPLOAD
                  : c->type == CHAN_T_CONSOLE_CLOSE ? H_CONSOLE
                                                    : H_EVENTS;
        USE(k, false);
        handle_release(s, k, h);
        break;
    }
    case CHAN_T_IMAGE_LIST:
        NEED(image_list);
        rc = be->image_list(ctx, &c->ifilter, &c->page, sink, &st);
        break;
    case CHAN_T_IMAGE_GET:
        NEED(image_get);
        rc = be->image_get(ctx, c->s1, sink, &st);
        break;
    case CHAN_T_IMAGE_TAG:
        NEED(image_tag);
        rc = be->image_tag(ctx, c->s1, c->s2, sink, &st);
        break;
    case CHAN_T_IMAGE_PATCH:
        NEED(image_patch);
        rc = be->image_patch(ctx, c->s1, &c->patch, sink, &st);
        break;
    case CHAN_T_IMAGE_DELETE:
        NEED(image_delete);
        rc = be->image_delete(ctx, c->s1, c->flag, &st);
        break;
    case CHAN_T_INSTANCE_CREATE:
        NEED(instance_create);
        rc = be->instance_create(ctx, &c->spec, sink, &st);
        break;
    case CHAN_T_INSTANCE_LIST:
        NEED(instance_list);
        rc = be->instance_list(ctx, &c->filter, &c->page, sink, &st);
        break;
    case CHAN_T_INSTANCE_GET:
        NEED(instance_get);
        rc = be->instance_get(ctx, c->s1, sink, &st);
        break;
    case CHAN_T_INSTANCE_ACTION:
        NEED(instance_action);
        rc = be->instance_action(ctx, c->s1, (api_action)c->u32, c->i32, sink, &st);
        break;
    case CHAN_T_INSTANCE_DELETE:
        NEED(instance_delete);
        rc = be->instance_delete(ctx, c->s1, c->flag, &st);
        break;
    case CHAN_T_INSTANCE_BULK:
        NEED(instance_bulk);
        rc = be->instance_bulk(ctx, &c->bulk, (api_action)c->u32, sink, &st);
        break;
    case CHAN_T_CONSOLE_OPEN:
        NEED(console_open);
        NEED(console_close);
        rc = be->console_open(ctx, c->s1, c->u64, c->flag, &h, &st);
        if (rc == API_OK) {
            handle = handle_add(s, H_CONSOLE, h);
            if (handle == 0) {
                be->console_close(ctx, h);
                rc = api_status_set(&st, API_E_UNAVAILABLE, NULL, "too many open streams");
            }
        }
        break;
    case CHAN_T_CONSOLE_READ: {
        ssize_t n;
        NEED(console_read);
        USE(H_CONSOLE, true);
        buf = malloc(c->u32);
        n = buf != NULL ? be->console_read(ctx, h, buf, c->u32, c->i32) : API_STREAM_ERROR;
        handle_put(s, c->handle);
        if (n > (ssize_t)c->u32)
            n = API_STREAM_ERROR;
        value = n;
        if (n > 0) {
            blob = buf;
            blob_len = (size_t)n;
        }
        break;
    }
    case CHAN_T_HOST_LIST:
        NEED(host_list);
        rc = be->host_list(ctx, &c->page, sink, &st);
        break;
    case CHAN_T_HOST_GET:
        NEED(host_get);
        rc = be->host_get(ctx, c->s1, sink, &st);
        break;
    case CHAN_T_HOST_ADD:
        NEED(host_add);
        rc = be->host_add(ctx, &c->host, sink, &st);
        break;
    case CHAN_T_HOST_CORDON:
        NEED(host_cordon);
        rc = be->host_cordon(ctx, c->s1, c->flag, sink, &st);
        break;
    case CHAN_T_HOST_DRAIN:
        NEED(host_drain);
        rc = be->host_drain(ctx, c->s1, c->flag, sink, &st);
        break;
    case CHAN_T_HOST_DELETE:
        NEED(host_delete);
        rc = be->host_delete(ctx, c->s1, &st);
        break;
    case CHAN_T_CONSOLIDATE:
        NEED(consolidate);
        rc = be->consolidate(ctx, c->flag, sink, &st);
        break;
    case CHAN_T_MOVES_STOP:
        NEED(moves_stop);
        rc = be->moves_stop(ctx, &st);
        break;
    case CHAN_T_EVENTS_OPEN:
        NEED(events_open);
        NEED(events_close);
        rc = be->events_open(ctx, c->flag, c->u64, &h, &st);
        if (rc == API_OK) {
            handle = handle_add(s, H_EVENTS, h);
            if (handle == 0) {
                be->events_close(ctx, h);
                rc = api_status_set(&st, API_E_UNAVAILABLE, NULL, "too many open streams");
            }
        }
        break;
    case CHAN_T_EVENTS_NEXT:
        NEED(events_next);
        USE(H_EVENTS, true);
        memset(&ev, 0, sizeof ev);
        value = be->events_next(ctx, h, &ev, c->i32);
        handle_put(s, c->handle);
        if (value == 1) {
            blob = &ev;
            blob_len = sizeof ev;
        }
        break;
    case CHAN_T_METRICS:
        if (be->metrics_write != NULL)
            rc = be->metrics_write(ctx, sink, &st);
        if (rc == API_OK) {
            text = api_sink_finish(sink, &blob_len);
            if (text == NULL)
                rc = api_status_set(&st, API_E_INTERNAL, NULL, "metrics encoding failed");
            blob = text;
        }
        break;
    case CHAN_T_TOKEN_CREATE:
        NEED(token_create);
        rc = be->token_create(ctx, &c->token, sink, &st);
        break;
    case CHAN_T_TOKEN_LIST:
        NEED(token_list);
        rc = be->token_list(ctx, sink, &st);
        break;
    case CHAN_T_TOKEN_DELETE:
        NEED(token_delete);
        rc = be->token_delete(ctx, c->s1, &st);
        break;
    case CHAN_T_AUDIT:
        /* who is the token's principal as the root authenticated it */
        if (be->audit != NULL)
            be->audit(ctx, &who, c->s2, c->s3, (int)c->u32);
        break;
    default: rc = api_status_set(&st, API_E_INTERNAL, NULL, "unknown call"); break;
    }
reply:
    api_request_principal_set(NULL);
    if (rc != API_OK && st.code != rc)
        api_status_set(&st, rc, NULL, "%s", "request failed");
    if (rc != API_OK && c->type != CHAN_T_AUTHENTICATE) {
        blob = NULL;
        blob_len = 0;
    }
    send_done(s, &out, j->id, &st, rc == API_OK ? api_sink_cursor(sink) : NULL, handle, value, blob,
              blob_len);
    chan_w_free(&out);
    explicit_bzero(&who, sizeof who);
    api_sink_free(sink);
    free(text);
    free(buf);
}

/* The channel's end, run by whoever leaves last (the reader or a call):
 * release what the front left open, close the socket, free. */
static void srv_end(srv *s)
{
    for (uint32_t i = 0; i < CHAN_HANDLES_MAX; i++) {
        if (s->slots[i].kind != H_FREE)
            handle_release(s, s->slots[i].kind, s->slots[i].h);
    }
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->wmu);
    free(s);
}

/* Calls running on every channel (chan_server_wait_idle). */
static pthread_mutex_t all_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_idle = PTHREAD_COND_INITIALIZER;
static unsigned all_calls;

void chan_server_wait_idle(void)
{
    pthread_mutex_lock(&all_mu);
    while (all_calls > 0)
        pthread_cond_wait(&all_idle, &all_mu);
    pthread_mutex_unlock(&all_mu);
}

/* Run one call and account for it. */
static void job_run(job *j)
{
    srv *s = j->s;
    bool last;

    run_call(j);
    chan_call_clear(&j->c);
    free(j->payload);
    free(j);
    pthread_mutex_lock(&s->mu);
    last = --s->inflight == 0 && s->ended;
    pthread_mutex_unlock(&s->mu);
    if (last)
        srv_end(s);
    pthread_mutex_lock(&all_mu);
    if (--all_calls == 0)
        pthread_cond_broadcast(&all_idle);
    pthread_mutex_unlock(&all_mu);
}

/* ---- call workers ------------------------------------------------------- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail; /* calls handed to idle workers: never more than idle */
    unsigned idle;    /* workers waiting for a call */
    unsigned queued;
    unsigned long started; /* workers ever started (chan_server_workers) */
    unsigned workers;      /* workers alive */
} pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0, 0, 0 };

static void *worker_main(void *arg)
{
    job *j = arg;

    while (j != NULL) {
        struct timespec ts;

        job_run(j);
        j = NULL;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += POOL_IDLE_MS / 1000;
        pthread_mutex_lock(&pool.mu);
        if (pool.idle < POOL_IDLE_MAX) {
            pool.idle++;
            while (pool.head == NULL) {
                if (pthread_cond_timedwait(&pool.cv, &pool.mu, &ts) == ETIMEDOUT)
                    break;
            }
            /* a call queued for an idle worker is always taken: a worker
             * leaves only when the queue is empty */
            j = pool.head;
            if (j != NULL) {
                pool.head = j->next;
                if (pool.head == NULL)
                    pool.tail = NULL;
                pool.queued--;
            }
            pool.idle--;
        }
        if (j == NULL)
            pool.workers--;
        pthread_mutex_unlock(&pool.mu);
    }
    return NULL;
}

/* Hand j to an idle worker or a new one. 0, or -1 (no thread). */
static int pool_submit(job *j, const pthread_attr_t *attr)
{
    pthread_t t;
    int rc = 0;

    j->next = NULL;
    pthread_mutex_lock(&pool.mu);
    if (pool.queued < pool.idle) {
        if (pool.tail != NULL)
            pool.tail->next = j;
        else
            pool.head = j;
        pool.tail = j;
        pool.queued++;
        pthread_cond_signal(&pool.cv);
    } else if (pthread_create(&t, attr, worker_main, j) == 0) {
        pool.started++;
        pool.workers++;
    } else {
        rc = -1;
    }
    pthread_mutex_unlock(&pool.mu);
    return rc;
}

void chan_server_workers(unsigned long *started, unsigned *alive, unsigned *idle)
{
    pthread_mutex_lock(&pool.mu);
    *started = pool.started;
    *alive = pool.workers;
    *idle = pool.idle;
    pthread_mutex_unlock(&pool.mu);
}

/* ---- the loop ----------------------------------------------------------- */

int chan_server_run(int fd, const api_backend *be, void *be_ctx, const chan_server_opts *o,
                    char *why, size_t whylen)
{
    srv *s = calloc(1, sizeof *s);
    unsigned char hb[CHAN_HDR_LEN];
    pthread_attr_t attr;
    bool last;
    int rc = 0;

    if (whylen > 0)
        why[0] = '\0';
    if (s == NULL) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    s->fd = fd;
    {
        struct timeval tv = { CHAN_SEND_TIMEOUT_S, 0 };
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    s->be = be;
    s->ctx = be_ctx;
    s->max_inflight = o != NULL && o->max_inflight ? o->max_inflight : CHAN_INFLIGHT_DEFAULT;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->wmu, NULL);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);

    for (;;) {
        chan_hdr h;
        job *j;
        bool full;
        int drc;

        if (chan_read_full(fd, hb, sizeof hb) != 0)
            break; /* EOF or closed: the front is gone */
        if (chan_hdr_get(hb, CHAN_REQ_MAX, &h) != 0) {
            snprintf(why, whylen, "bad frame header (length %u, flags %u)", h.len, h.flags);
            rc = -1;
            break;
        }
        j = calloc(1, sizeof *j);
        if (j != NULL)
            j->payload = malloc(h.len ? h.len : 1);
        if (j == NULL || j->payload == NULL) {
            if (j != NULL)
                free(j);
            snprintf(why, whylen, "out of memory");
            rc = -1;
            break;
        }
        if (chan_read_full(fd, j->payload, h.len) != 0) {
            free(j->payload);
            free(j);
            break;
        }
        j->s = s;
        j->id = h.id;
        drc = chan_call_decode(h.type, j->payload, h.len, &j->c, why, whylen);
        if (drc == CHAN_E_VALUE) {
            /* Well framed, a value root refuses: the caller gets a 400 and
             * the channel stays (ending it would let any request that slips
             * past the front's decoders restart the API). */
            api_status st = { 0 };
            const char *q = strchr(why, '\'');
            char field[64] = "";
            if (q != NULL) {
                size_t n = strcspn(q + 1, "'");
                snprintf(field, sizeof field, "%.*s",
                         (int)(n < sizeof field ? n : sizeof field - 1), q + 1);
            }
            api_status_set(&st, API_E_INVALID_FIELD, field[0] ? field : NULL,
                           "%s is not acceptable", field[0] ? field : "a value");
            send_status(s, h.id, &st);
            free(j->payload);
            free(j);
            why[0] = '\0';
            continue;
        }
        if (drc != 0) {
            free(j->payload);
            free(j);
            rc = -1;
            break;
        }
        pthread_mutex_lock(&s->mu);
        full = s->inflight >= s->max_inflight;
        if (!full)
            s->inflight++;
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_lock(&all_mu);
        all_calls++;
        pthread_mutex_unlock(&all_mu);
        if (full || pool_submit(j, &attr) != 0) {
            pthread_mutex_lock(&all_mu);
            if (--all_calls == 0)
                pthread_cond_broadcast(&all_idle);
            pthread_mutex_unlock(&all_mu);
            api_status st = { 0 };
            api_status_set(&st, API_E_UNAVAILABLE, NULL, "too many calls in flight");
            send_status(s, h.id, &st);
            if (!full) {
                pthread_mutex_lock(&s->mu);
                s->inflight--;
                pthread_mutex_unlock(&s->mu);
            }
            chan_call_clear(&j->c);
            free(j->payload);
            free(j);
        }
    }
    /* The front is gone or broke the protocol: no more replies. Calls still
     * running finish on their own (a bulk stop can take minutes; the next
     * front need not wait for them); the last one ends the channel. */
    shutdown(fd, SHUT_RDWR);
    pthread_attr_destroy(&attr);
    pthread_mutex_lock(&s->mu);
    s->ended = true;
    last = s->inflight == 0;
    pthread_mutex_unlock(&s->mu);
    if (last)
        srv_end(s);
    return rc;
}
