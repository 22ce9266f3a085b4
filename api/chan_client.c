/*
 * chan_client.c - the front end of the privilege-separation channel
 * (chan.h): an api_backend whose every function sends one request frame
 * and waits for its reply. Connection threads call concurrently; each call
 * takes one of max_inflight slots (none free: 503), a reader thread hands
 * each reply to its slot. The bearer secret of the request a connection
 * thread serves is kept per thread (authenticate runs first on every
 * request) and sent with each call: the root checks it every time.
 *
 * Principal cache: what the root answered to an authenticate is kept for
 * PC_TTL_MS (at most PC_N secrets, looked up in constant time), so a
 * request is one round trip, not two. It only feeds the front's own early
 * checks (401, 403, the rate buckets): the root still authenticates every
 * call, so a revoked token is refused at its next call, and a 401 from the
 * root drops the entry. An entry whose token's expiry has come is not used
 * (the root then says the token expired).
 *
 * The reader takes the root's replies in reads of up to READ_BUF bytes (the
 * root sends a call's frames in one write).
 *
 * Locks: mu (leaf) guards the slots; wmu (leaf) serialises whole frames;
 * pmu (leaf) the principal cache.
 */
#include "chan.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"

#define SLOT_WAIT_MS 2000        /* a call waits this long for a free slot */
#define READ_BUF     (64u << 10) /* the reader's buffer */
#define PC_N         64          /* principals kept */
#define PC_TTL_MS    1000        /* how long one is used without asking the root */

typedef struct pc_entry {
    char secret[API_TOKEN_SECRET_MAX + 1]; /* NUL-padded; "" = free */
    int64_t until_ms;                      /* monotonic */
    api_principal who;
} pc_entry;

typedef struct obj {
    struct obj *next;
    bool ok;
    size_t len;
    char json[]; /* the encoded object */
} obj;

typedef struct slot {
    bool used;
    bool done; /* reply complete (or the channel ended: payload NULL) */
    uint32_t id;
    obj *objs, **tail;
    unsigned char *payload; /* the DONE frame's */
    size_t len;
    pthread_cond_t cv;
} slot;

struct chan_client {
    int fd;
    unsigned n;
    slot *slots;
    uint32_t seq; /* where the search for a free slot starts */
    uint32_t gen;
    bool dead;
    pthread_mutex_t mu;
    pthread_cond_t free_cv;
    pthread_mutex_t wmu;
    pthread_t reader;
    void (*on_dead)(void *);
    void *cls;
    pthread_mutex_t pmu;
    pc_entry pc[PC_N];
};

/* The secret of the request this connection thread serves. */
static _Thread_local char tl_secret[API_TOKEN_SECRET_MAX + 1];

/* ---- transport ---------------------------------------------------------- */

static void objs_free(obj *o)
{
    while (o != NULL) {
        obj *n = o->next;
        free(o);
        o = n;
    }
}

/* A call id is a generation << 16 | the slot's index. */
static slot *slot_of(chan_client *c, uint32_t id)
{
    slot *s;

    if ((id & 0xffff) >= c->n)
        return NULL;
    s = &c->slots[id & 0xffff];
    return s->used && s->id == id && !s->done ? s : NULL;
}

/* The reader's buffered input. */
typedef struct rbuf {
    int fd;
    size_t off, len;
    unsigned char b[READ_BUF];
} rbuf;

/* n bytes from the channel: 0, or -1 at EOF or on error. */
static int rb_read(rbuf *r, void *dst, size_t n)
{
    unsigned char *p = dst;

    while (n > 0) {
        size_t have = r->len - r->off;
        if (have == 0) {
            ssize_t k;
            if (n >= sizeof r->b) /* a large payload: straight into place */
                return chan_read_full(r->fd, p, n);
            k = read(r->fd, r->b, sizeof r->b);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                return -1;
            r->off = 0;
            r->len = (size_t)k;
            continue;
        }
        if (have > n)
            have = n;
        memcpy(p, r->b + r->off, have);
        r->off += have;
        p += have;
        n -= have;
    }
    return 0;
}

static void *reader_main(void *arg)
{
    chan_client *c = arg;
    unsigned char hb[CHAN_HDR_LEN];
    unsigned char *p = NULL;
    rbuf *rb = malloc(sizeof *rb);
    obj *o = NULL;

    if (rb != NULL) {
        rb->fd = c->fd;
        rb->off = rb->len = 0;
    }
    for (;;) {
        chan_hdr h;
        slot *s;

        if (rb == NULL || rb_read(rb, hb, sizeof hb) != 0 ||
            chan_hdr_get(hb, CHAN_REP_MAX, &h) != 0 ||
            (h.type != CHAN_R_OBJECT && h.type != CHAN_R_DONE))
            break;
        if (h.type == CHAN_R_OBJECT) {
            /* read into the object itself, its JSON moved to the front */
            chan_r r;
            size_t n = 0;
            const char *json;

            o = malloc(sizeof *o + (h.len ? h.len : 1));
            if (o == NULL || rb_read(rb, o->json, h.len) != 0)
                break;
            chan_r_init(&r, o->json, h.len);
            o->ok = chan_r_u32(&r) == 1;
            json = chan_r_bytes(&r, CHAN_REP_MAX, &n);
            if (!chan_r_done(&r)) {
                free(o);
                o = NULL;
                continue; /* as before: a malformed object is dropped */
            }
            memmove(o->json, json, n);
            o->len = n;
            o->next = NULL;
        } else {
            p = malloc(h.len ? h.len : 1);
            if (p == NULL || rb_read(rb, p, h.len) != 0)
                break;
        }
        pthread_mutex_lock(&c->mu);
        s = slot_of(c, h.id);
        if (s != NULL && o != NULL) {
            *s->tail = o;
            s->tail = &o->next;
            o = NULL;
        } else if (s != NULL && p != NULL) {
            s->payload = p;
            s->len = h.len;
            s->done = true;
            p = NULL;
            pthread_cond_signal(&s->cv);
        }
        pthread_mutex_unlock(&c->mu);
        free(o);
        o = NULL;
        free(p);
        p = NULL;
    }
    free(o);
    free(p);
    free(rb);
    pthread_mutex_lock(&c->mu);
    c->dead = true;
    for (unsigned i = 0; i < c->n; i++)
        pthread_cond_signal(&c->slots[i].cv);
    pthread_cond_broadcast(&c->free_cv);
    pthread_mutex_unlock(&c->mu);
    if (c->on_dead != NULL)
        c->on_dead(c->cls);
    return NULL;
}

/* ---- principal cache ---------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The entry of secret (NUL-padded to the key's size), or NULL; every entry
 * in use compared whole, so the time says nothing of which matched. */
static pc_entry *pc_find(chan_client *c, const char key[API_TOKEN_SECRET_MAX + 1])
{
    pc_entry *hit = NULL;

    for (size_t i = 0; i < PC_N; i++) {
        unsigned char diff = 0;
        if (c->pc[i].secret[0] == '\0')
            continue; /* free: says nothing of the key */
        for (size_t k = 0; k < API_TOKEN_SECRET_MAX + 1; k++)
            diff |= (unsigned char)(c->pc[i].secret[k] ^ key[k]);
        if (diff == 0)
            hit = &c->pc[i];
    }
    return hit;
}

static void pc_key(char key[API_TOKEN_SECRET_MAX + 1], const char *secret)
{
    memset(key, 0, API_TOKEN_SECRET_MAX + 1);
    snprintf(key, API_TOKEN_SECRET_MAX + 1, "%s", secret);
}

/* who from the cache: true when secret's principal is there, fresh, and
 * its token's expiry has not come. */
static bool pc_get(chan_client *c, const char *secret, api_principal *who)
{
    char key[API_TOKEN_SECRET_MAX + 1];
    pc_entry *e;
    bool ok = false;

    pc_key(key, secret);
    pthread_mutex_lock(&c->pmu);
    e = pc_find(c, key);
    if (e != NULL && e->until_ms > mono_ms() &&
        (e->who.expires == 0 || (int64_t)time(NULL) < e->who.expires)) {
        *who = e->who;
        ok = true;
    }
    pthread_mutex_unlock(&c->pmu);
    explicit_bzero(key, sizeof key);
    return ok;
}

static void pc_put(chan_client *c, const char *secret, const api_principal *who)
{
    char key[API_TOKEN_SECRET_MAX + 1];
    pc_entry *e;

    pc_key(key, secret);
    pthread_mutex_lock(&c->pmu);
    e = pc_find(c, key);
    for (size_t i = 0; i < PC_N && e == NULL; i++)
        e = c->pc[i].secret[0] == '\0' ? &c->pc[i] : NULL;
    if (e == NULL) { /* full: the one that goes stale first */
        e = &c->pc[0];
        for (size_t i = 1; i < PC_N; i++)
            e = c->pc[i].until_ms < e->until_ms ? &c->pc[i] : e;
    }
    memcpy(e->secret, key, sizeof e->secret);
    e->who = *who;
    e->until_ms = mono_ms() + PC_TTL_MS;
    pthread_mutex_unlock(&c->pmu);
    explicit_bzero(key, sizeof key);
}

/* The root refused secret: forget it. */
static void pc_drop(chan_client *c, const char *secret)
{
    char key[API_TOKEN_SECRET_MAX + 1];
    pc_entry *e;

    pc_key(key, secret);
    pthread_mutex_lock(&c->pmu);
    e = pc_find(c, key);
    if (e != NULL)
        explicit_bzero(e, sizeof *e);
    pthread_mutex_unlock(&c->pmu);
    explicit_bzero(key, sizeof key);
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* One call's result: its objects and its decoded DONE frame. */
typedef struct reply {
    obj *objs;
    unsigned char *payload;
    chan_done d;
} reply;

static void reply_free(reply *r)
{
    objs_free(r->objs);
    free(r->payload);
}

/* Send w as a call of type t, wait for its reply. API_OK with rep filled
 * (rep->d.code is the call's answer), or API_E_UNAVAILABLE. */
static api_code call(chan_client *c, chan_w *w, chan_type t, reply *rep, api_status *st)
{
    struct timespec ts;
    slot *s = NULL;
    uint32_t id = 0;
    api_code rc = API_OK;

    memset(rep, 0, sizeof *rep);
    deadline_in(&ts, SLOT_WAIT_MS);
    pthread_mutex_lock(&c->mu);
    while (s == NULL && !c->dead) {
        for (unsigned i = 0; i < c->n && s == NULL; i++) {
            unsigned k = (c->seq + i) % c->n;
            if (!c->slots[k].used) {
                s = &c->slots[k];
                c->gen = (c->gen + 1) & 0xffff;
                id = (uint32_t)c->gen << 16 | k;
                c->seq = k + 1;
            }
        }
        if (s == NULL && pthread_cond_timedwait(&c->free_cv, &c->mu, &ts) == ETIMEDOUT)
            break;
    }
    if (s == NULL || c->dead) {
        pthread_mutex_unlock(&c->mu);
        return api_status_set(st, API_E_UNAVAILABLE, NULL,
                              c->dead ? "the daemon's privileged process is gone"
                                      : "too many requests in flight");
    }
    s->used = true;
    s->done = false;
    s->id = id;
    s->objs = NULL;
    s->tail = &s->objs;
    s->payload = NULL;
    pthread_mutex_unlock(&c->mu);

    if (chan_w_finish(w, (uint16_t)t, id, CHAN_REQ_MAX) != 0) {
        rc = api_status_set(st, API_E_TOO_LARGE, NULL, "request too large for the channel");
    } else {
        int sent;
        pthread_mutex_lock(&c->wmu);
        sent = chan_send_full(c->fd, w->buf, w->len);
        pthread_mutex_unlock(&c->wmu);
        if (sent != 0)
            rc = api_status_set(st, API_E_UNAVAILABLE, NULL, "the channel to the daemon failed");
    }

    pthread_mutex_lock(&c->mu);
    while (rc == API_OK && !s->done && !c->dead)
        pthread_cond_wait(&s->cv, &c->mu);
    rep->objs = s->objs;
    rep->payload = s->payload;
    if (rc == API_OK && (!s->done || chan_done_get(s->payload, s->len, &rep->d) != 0))
        rc = api_status_set(st, API_E_UNAVAILABLE, NULL, "no answer from the daemon");
    s->used = false;
    s->objs = NULL;
    s->payload = NULL;
    pthread_cond_signal(&c->free_cv);
    pthread_mutex_unlock(&c->mu);
    if (rc != API_OK) {
        reply_free(rep);
        memset(rep, 0, sizeof *rep);
    } else if (rep->d.code == API_E_UNAUTHORIZED) {
        pc_drop(c, tl_secret); /* revoked or expired since it was cached */
    }
    return rc;
}

/* A call whose results go to out (may be NULL); returns the call's code
 * with st filled from the reply. */
static api_code call_sink(chan_client *c, chan_w *w, chan_type t, api_sink_kind kind, api_sink *out,
                          reply *keep, api_status *st)
{
    reply rep;
    api_code rc = call(c, w, t, &rep, st);

    chan_w_free(w);
    if (rc != API_OK)
        return rc;
    rc = rep.d.code;
    if (rc != API_OK) {
        api_status_set(st, rc, rep.d.field[0] ? rep.d.field : NULL, "%s", rep.d.message);
        st->retry_after_s = rep.d.retry_after_s;
    } else if (out != NULL) {
        for (obj *o = rep.objs; o != NULL; o = o->next) {
            if (api_sink_raw(out, kind, o->json, o->len, o->ok) != 0) {
                rc = api_status_set(st, API_E_INTERNAL, NULL, "result refused by the encoder");
                break;
            }
        }
        if (rc == API_OK && rep.d.cursor != NULL)
            api_sink_next(out, rep.d.cursor);
    }
    if (keep != NULL && rc == API_OK) {
        *keep = rep;
        objs_free(keep->objs);
        keep->objs = NULL;
    } else {
        reply_free(&rep);
    }
    return rc;
}

/* Start a request: the writer with the thread's secret first. */
static void begin(chan_w *w)
{
    chan_w_init(w);
    chan_w_str(w, tl_secret[0] ? tl_secret : "-");
}

/* ---- the backend -------------------------------------------------------- */

static void put_kvs(chan_w *w, const api_kv *kv, size_t n)
{
    chan_w_u32(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        chan_w_str(w, kv[i].key);
        chan_w_str(w, kv[i].value);
    }
}

static void put_sel(chan_w *w, const api_selector *sel)
{
    size_t n = sel != NULL ? sel->n : 0;
    chan_w_u32(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        chan_w_u32(w, (uint32_t)sel->terms[i].op);
        chan_w_str(w, sel->terms[i].key);
        chan_w_str(w, sel->terms[i].value);
    }
}

static void put_page(chan_w *w, const api_page *p)
{
    chan_w_u32(w, p->limit);
    chan_w_str(w, p->after);
}

static api_code cl_authenticate(void *ctx, const char *secret, api_principal *who)
{
    api_status st = { 0 };
    reply rep;
    chan_w w;
    api_code rc;

    snprintf(tl_secret, sizeof tl_secret, "%s", secret);
    if (pc_get(ctx, secret, who))
        return API_OK;
    begin(&w);
    if (call(ctx, &w, CHAN_T_AUTHENTICATE, &rep, &st) != API_OK) {
        chan_w_free(&w);
        return API_E_UNAUTHORIZED;
    }
    chan_w_free(&w);
    rc = rep.d.code == API_OK ? API_OK : API_E_UNAUTHORIZED;
    /* the principal; for an expired token its name and expiry (api.h) */
    if (rep.d.blob_len == sizeof *who) {
        memcpy(who, rep.d.blob, sizeof *who);
        who->id[sizeof who->id - 1] = '\0';
        who->name[sizeof who->name - 1] = '\0';
        who->selector[sizeof who->selector - 1] = '\0';
    } else {
        rc = API_E_UNAUTHORIZED;
    }
    if (rc == API_OK)
        pc_put(ctx, secret, who);
    reply_free(&rep);
    return rc;
}

/* Calls that open a handle: *out = (void *)(uintptr_t)handle. */
static api_code call_open(chan_client *c, chan_w *w, chan_type t, void **out, api_status *st)
{
    reply rep;
    api_code rc = call_sink(c, w, t, API_SINK_TEXT, NULL, &rep, st);

    if (rc != API_OK)
        return rc;
    if (rep.d.handle == 0)
        rc = api_status_set(st, API_E_INTERNAL, NULL, "no handle from the daemon");
    *out = (void *)(uintptr_t)rep.d.handle;
    reply_free(&rep);
    return rc;
}

/* Calls that release a handle: no answer needed. */
static void call_close(chan_client *c, chan_type t, void *h)
{
    api_status st = { 0 };
    chan_w w;

    begin(&w);
    chan_w_u32(&w, (uint32_t)(uintptr_t)h);
    call_sink(c, &w, t, API_SINK_TEXT, NULL, NULL, &st);
}

static api_code cl_upload_begin(void *ctx, const api_upload_req *req, void **upload, api_status *st)
{
    chan_w w;

    begin(&w);
    chan_w_str(&w, req->name);
    chan_w_str(&w, req->tag);
    put_kvs(&w, req->labels, req->n_labels);
    chan_w_str(&w, req->digest);
    chan_w_str(&w, req->initrd);
    chan_w_bool(&w, req->initrd_upload);
    chan_w_u64(&w, req->content_length);
    return call_open(ctx, &w, CHAN_T_UPLOAD_BEGIN, upload, st);
}

static api_code cl_upload_write(void *ctx, void *upload, const void *data, size_t len,
                                api_status *st)
{
    const unsigned char *p = data;
    api_code rc = API_OK;

    while (len > 0 && rc == API_OK) {
        size_t n = len > CHAN_CHUNK_MAX ? CHAN_CHUNK_MAX : len;
        chan_w w;
        begin(&w);
        chan_w_u32(&w, (uint32_t)(uintptr_t)upload);
        chan_w_bytes(&w, p, n);
        rc = call_sink(ctx, &w, CHAN_T_UPLOAD_WRITE, API_SINK_TEXT, NULL, NULL, st);
        p += n;
        len -= n;
    }
    return rc;
}

static api_code cl_upload_commit(void *ctx, void *upload, api_sink *out, api_status *st)
{
    chan_w w;

    begin(&w);
    chan_w_u32(&w, (uint32_t)(uintptr_t)upload);
    return call_sink(ctx, &w, CHAN_T_UPLOAD_COMMIT, API_SINK_IMAGE, out, NULL, st);
}

static void cl_upload_abort(void *ctx, void *upload)
{
    call_close(ctx, CHAN_T_UPLOAD_ABORT, upload);
}

static api_code cl_image_list(void *ctx, const api_image_filter *f, const api_page *page,
                              api_sink *out, api_status *st)
{
    chan_w w;

    begin(&w);
    chan_w_str(&w, f->name);
    put_sel(&w, f->selector);
    put_page(&w, page);
    return call_sink(ctx, &w, CHAN_T_IMAGE_LIST, API_SINK_IMAGE, out, NULL, st);
}

/* Calls of one string argument (and a flag when has_flag). */
static api_code call_str(void *ctx, chan_type t, const char *s, int flag, api_sink_kind kind,
                         api_sink *out, api_status *st)
{
    chan_w w;

    begin(&w);
    chan_w_str(&w, s);
    if (flag >= 0)
        chan_w_bool(&w, flag == 1);
    return call_sink(ctx, &w, t, kind, out, NULL, st);
}

static api_code cl_image_get(void *ctx, const char *ref, api_sink *out, api_status *st)
{
    return call_str(ctx, CHAN_T_IMAGE_GET, ref, -1, API_SINK_IMAGE, out, st);
}

static api_code cl_image_tag(void *ctx, const char *ref, const char *new_ref, api_sink *out,
                             api_status *st)
{
    chan_w w;

    begin(&w);
    chan_w_str(&w, ref);
    chan_w_str(&w, new_ref);
    return call_sink(ctx, &w, CHAN_T_IMAGE_TAG, API_SINK_IMAGE, out, NULL, st);
}

static api_code cl_image_patch(void *ctx, const char *ref, const api_image_patch *p, api_sink *out,
                               api_status *st)
{
    chan_w w;

    begin(&w);
    chan_w_str(&w, ref);
    chan_w_str(&w, p->firmware);
    chan_w_str(&w, p->cmdline);
    chan_w_str(&w, p->exit);
    chan_w_str(&w, p->ready);
    chan_w_str(&w, p->health_probe);
    chan_w_u32(&w, p->health_interval_s);
    chan_w_u32(&w, p->health_timeout_s);
    chan_w_u32(&w, p->health_retries);
    chan_w_bool(&w, p->warm_pool_set);
    chan_w_u32(&w, p->warm_pool);
    return call_sink(ctx, &w, CHAN_T_IMAGE_PATCH, API_SINK_IMAGE, out, NULL, st);
}

static api_code cl_image_delete(void *ctx, const char *ref, bool force, api_status *st)
{
    return call_str(ctx, CHAN_T_IMAGE_DELETE, ref, force, API_SINK_IMAGE, NULL, st);
}

static api_code cl_instance_create(void *ctx, const api_instance_spec *s, api_sink *out,
                                   api_status *st)
{
    chan_w w;

    begin(&w);
    chan_w_str(&w, s->image);
    chan_w_str(&w, s->name);
    chan_w_u32(&w, s->count);
    chan_w_u32(&w, s->memory_mib);
    chan_w_u32(&w, s->vcpus);
    chan_w_u32(&w, (uint32_t)s->n_args);
    for (size_t i = 0; i < s->n_args; i++)
        chan_w_str(&w, s->args[i]);
    put_kvs(&w, s->env, s->n_env);
    put_kvs(&w, s->labels, s->n_labels);
    chan_w_u32(&w, (uint32_t)s->restart);
    chan_w_str(&w, s->host);
    chan_w_bool(&w, s->network);
    chan_w_u32(&w, (uint32_t)s->n_ports);
    for (size_t i = 0; i < s->n_ports; i++) {
        chan_w_u32(&w, s->ports[i].host);
        chan_w_u32(&w, s->ports[i].guest);
        chan_w_u32(&w, (uint32_t)s->ports[i].protocol);
    }
    chan_w_bool(&w, s->spread);
    chan_w_u32(&w, (uint32_t)s->n_rules);
    for (size_t i = 0; i < s->n_rules; i++) {
        chan_w_u32(&w, (uint32_t)s->rules[i].kind);
        chan_w_str(&w, s->rules[i].key);
        chan_w_str(&w, s->rules[i].value);
        chan_w_bool(&w, s->rules[i].soft);
        chan_w_u32(&w, s->rules[i].weight);
    }
    chan_w_str(&w, s->ready);
    chan_w_str(&w, s->health_probe);
    chan_w_u32(&w, s->health_interval_s);
    chan_w_u32(&w, s->health_timeout_s);
    chan_w_u32(&w, s->health_retries);
    chan_w_str(&w, s->cmdline);
    chan_w_str(&w, s->initrd);
    chan_w_u32(&w, s->idle_s);
    return call_sink(ctx, &w, CHAN_T_INSTANCE_CREATE, API_SINK_INSTANCE, out, NULL, st);
}

static api_code cl_instance_list(void *ctx, const api_instance_filter *f, const api_page *page,
                                 api_sink *out, api_status *st)
{
    chan_w w;

    begin(&w);
    put_sel(&w, f->selector);
    chan_w_bool(&w, f->has_state);
    chan_w_u32(&w, (uint32_t)f->state);
    chan_w_str(&w, f->host);
    put_page(&w, page);
    return call_sink(ctx, &w, CHAN_T_INSTANCE_LIST, API_SINK_INSTANCE, out, NULL, st);
}

static api_code cl_instance_get(void *ctx, const char *id, api_sink *out, api_status *st)
{
    return call_str(ctx, CHAN_T_INSTANCE_GET, id, -1, API_SINK_INSTANCE, out, st);
}

static api_code cl_instance_action(void *ctx, const char *id, api_action action, int timeout_s,
                                   api_sink *out, api_status *st)
{
    chan_w w;

    begin(&w);
    chan_w_str(&w, id);
    chan_w_u32(&w, (uint32_t)action);
    chan_w_u32(&w, (uint32_t)(int32_t)timeout_s);
    return call_sink(ctx, &w, CHAN_T_INSTANCE_ACTION, API_SINK_INSTANCE, out, NULL, st);
}

static api_code cl_instance_delete(void *ctx, const char *id, bool force, api_status *st)
{
    return call_str(ctx, CHAN_T_INSTANCE_DELETE, id, force, API_SINK_INSTANCE, NULL, st);
}

static api_code cl_instance_bulk(void *ctx, const api_bulk_req *req, api_action action,
                                 api_sink *out, api_status *st)
{
    chan_w w;

    begin(&w);
    chan_w_u32(&w, (uint32_t)action);
    chan_w_bool(&w, req->selector != NULL);
    put_sel(&w, req->selector);
    chan_w_u32(&w, req->selector != NULL ? 0 : (uint32_t)req->n_ids);
    for (size_t i = 0; req->selector == NULL && i < req->n_ids; i++)
        chan_w_str(&w, req->ids[i]);
    chan_w_u32(&w, (uint32_t)(int32_t)req->timeout_s);
    chan_w_bool(&w, req->force);
    return call_sink(ctx, &w, CHAN_T_INSTANCE_BULK, API_SINK_BULK, out, NULL, st);
}

static api_code cl_console_open(void *ctx, const char *id, uint64_t tail, bool follow,
                                void **stream, api_status *st)
{
    chan_w w;

    begin(&w);
    chan_w_str(&w, id);
    chan_w_u64(&w, tail);
    chan_w_bool(&w, follow);
    return call_open(ctx, &w, CHAN_T_CONSOLE_OPEN, stream, st);
}

static ssize_t cl_console_read(void *ctx, void *stream, char *buf, size_t len, int timeout_ms)
{
    api_status st = { 0 };
    reply rep;
    chan_w w;
    ssize_t n;

    begin(&w);
    chan_w_u32(&w, (uint32_t)(uintptr_t)stream);
    chan_w_u32(&w, (uint32_t)(len > CHAN_CHUNK_MAX ? CHAN_CHUNK_MAX : len));
    chan_w_u32(&w, (uint32_t)(timeout_ms < 0 ? 0 : timeout_ms > 1000 ? 1000 : timeout_ms));
    if (call_sink(ctx, &w, CHAN_T_CONSOLE_READ, API_SINK_TEXT, NULL, &rep, &st) != API_OK)
        return API_STREAM_ERROR;
    n = (ssize_t)rep.d.value;
    if (n > 0) {
        if ((size_t)n != rep.d.blob_len || (size_t)n > len)
            n = API_STREAM_ERROR;
        else
            memcpy(buf, rep.d.blob, (size_t)n);
    } else if (n != 0 && n != API_STREAM_END) {
        n = API_STREAM_ERROR;
    }
    reply_free(&rep);
    return n;
}

static void cl_console_close(void *ctx, void *stream)
{
    call_close(ctx, CHAN_T_CONSOLE_CLOSE, stream);
}

static api_code cl_host_list(void *ctx, const api_page *page, api_sink *out, api_status *st)
{
    chan_w w;

    begin(&w);
    put_page(&w, page);
    return call_sink(ctx, &w, CHAN_T_HOST_LIST, API_SINK_HOST, out, NULL, st);
}

static api_code cl_host_get(void *ctx, const char *name, api_sink *out, api_status *st)
{
    return call_str(ctx, CHAN_T_HOST_GET, name, -1, API_SINK_HOST, out, st);
}

static api_code cl_host_add(void *ctx, const api_host_spec *spec, api_sink *out, api_status *st)
{
    chan_w w;

    begin(&w);
    chan_w_str(&w, spec->name);
    chan_w_str(&w, spec->uri);
    put_kvs(&w, spec->labels, spec->n_labels);
    chan_w_u32(&w, (uint32_t)spec->domain_type);
    return call_sink(ctx, &w, CHAN_T_HOST_ADD, API_SINK_HOST, out, NULL, st);
}

static api_code cl_host_cordon(void *ctx, const char *name, bool cordoned, api_sink *out,
                               api_status *st)
{
    return call_str(ctx, CHAN_T_HOST_CORDON, name, cordoned, API_SINK_HOST, out, st);
}

static api_code cl_host_drain(void *ctx, const char *name, bool dry_run, api_sink *out,
                              api_status *st)
{
    return call_str(ctx, CHAN_T_HOST_DRAIN, name, dry_run, API_SINK_PLAN, out, st);
}

static api_code cl_host_delete(void *ctx, const char *name, api_status *st)
{
    return call_str(ctx, CHAN_T_HOST_DELETE, name, -1, API_SINK_HOST, NULL, st);
}

static api_code cl_moves_stop(void *ctx, api_status *st)
{
    chan_w w;

    begin(&w);
    return call_sink(ctx, &w, CHAN_T_MOVES_STOP, API_SINK_HOST, NULL, NULL, st);
}

static api_code cl_consolidate(void *ctx, bool dry_run, api_sink *out, api_status *st)
{
    chan_w w;

    begin(&w);
    chan_w_bool(&w, dry_run);
    return call_sink(ctx, &w, CHAN_T_CONSOLIDATE, API_SINK_PLAN, out, NULL, st);
}

static api_code cl_events_open(void *ctx, bool has_since, uint64_t since, void **sub,
                               api_status *st)
{
    chan_w w;

    begin(&w);
    chan_w_bool(&w, has_since);
    chan_w_u64(&w, since);
    return call_open(ctx, &w, CHAN_T_EVENTS_OPEN, sub, st);
}

static int cl_events_next(void *ctx, void *sub, api_event *ev, int timeout_ms)
{
    api_status st = { 0 };
    reply rep;
    chan_w w;
    int rc;

    begin(&w);
    chan_w_u32(&w, (uint32_t)(uintptr_t)sub);
    chan_w_u32(&w, (uint32_t)(timeout_ms < 0 ? 0 : timeout_ms > 1000 ? 1000 : timeout_ms));
    if (call_sink(ctx, &w, CHAN_T_EVENTS_NEXT, API_SINK_TEXT, NULL, &rep, &st) != API_OK)
        return -1;
    rc = rep.d.value == 1 ? 1 : rep.d.value == 0 ? 0 : -1;
    if (rc == 1 && rep.d.blob_len == sizeof *ev) {
        /* the root's own struct; terminate every string all the same */
        memcpy(ev, rep.d.blob, sizeof *ev);
        ev->type[sizeof ev->type - 1] = ev->instance[sizeof ev->instance - 1] = '\0';
        ev->name[sizeof ev->name - 1] = ev->state[sizeof ev->state - 1] = '\0';
        ev->host[sizeof ev->host - 1] = ev->image[sizeof ev->image - 1] = '\0';
        ev->digest[sizeof ev->digest - 1] = ev->message[sizeof ev->message - 1] = '\0';
        ev->action[sizeof ev->action - 1] = ev->by[sizeof ev->by - 1] = '\0';
        ev->path[sizeof ev->path - 1] = ev->batch[sizeof ev->batch - 1] = '\0';
        if (ev->n_failures > API_EVENT_FAILURES_MAX)
            ev->n_failures = API_EVENT_FAILURES_MAX;
        for (size_t i = 0; i < ev->n_failures; i++) {
            ev->failures[i].instance[sizeof ev->failures[i].instance - 1] = '\0';
            ev->failures[i].name[sizeof ev->failures[i].name - 1] = '\0';
            ev->failures[i].state[sizeof ev->failures[i].state - 1] = '\0';
            ev->failures[i].message[sizeof ev->failures[i].message - 1] = '\0';
        }
    } else if (rc == 1) {
        rc = -1;
    }
    reply_free(&rep);
    return rc;
}

static void cl_events_close(void *ctx, void *sub)
{
    call_close(ctx, CHAN_T_EVENTS_CLOSE, sub);
}

static api_code cl_metrics_write(void *ctx, api_sink *out, api_status *st)
{
    reply rep;
    chan_w w;
    api_code rc;

    begin(&w);
    rc = call_sink(ctx, &w, CHAN_T_METRICS, API_SINK_TEXT, NULL, &rep, st);
    if (rc != API_OK)
        return rc;
    if (rep.d.blob_len > 0 &&
        api_sink_printf(out, "%.*s", (int)rep.d.blob_len, (const char *)rep.d.blob) != 0)
        rc = api_status_set(st, API_E_INTERNAL, NULL, "metrics encoding failed");
    reply_free(&rep);
    return rc;
}

static api_code cl_token_create(void *ctx, const api_token_spec *spec, api_sink *out,
                                api_status *st)
{
    chan_w w;

    begin(&w);
    chan_w_str(&w, spec->name);
    chan_w_u32(&w, (uint32_t)spec->scope);
    chan_w_str(&w, spec->selector);
    chan_w_u32(&w, spec->max_instances);
    chan_w_u32(&w, spec->max_memory_mib);
    chan_w_u32(&w, spec->max_vcpus);
    chan_w_u64(&w, (uint64_t)spec->expires_at);
    chan_w_u32(&w, spec->expires_in);
    chan_w_u32(&w, spec->rate);
    chan_w_u32(&w, spec->burst);
    return call_sink(ctx, &w, CHAN_T_TOKEN_CREATE, API_SINK_TOKEN, out, NULL, st);
}

static api_code cl_token_list(void *ctx, api_sink *out, api_status *st)
{
    chan_w w;

    begin(&w);
    return call_sink(ctx, &w, CHAN_T_TOKEN_LIST, API_SINK_TOKEN, out, NULL, st);
}

static api_code cl_token_delete(void *ctx, const char *id, api_status *st)
{
    return call_str(ctx, CHAN_T_TOKEN_DELETE, id, -1, API_SINK_TOKEN, NULL, st);
}

static void cl_audit(void *ctx, const api_principal *who, const char *method, const char *path,
                     int http_status)
{
    api_status st = { 0 };
    chan_w w;

    (void)who; /* the root names the token it authenticates itself */
    begin(&w);
    chan_w_str(&w, method);
    chan_w_str(&w, path);
    chan_w_u32(&w, (uint32_t)(http_status >= 100 && http_status <= 599 ? http_status : 599));
    call_sink(ctx, &w, CHAN_T_AUDIT, API_SINK_TEXT, NULL, NULL, &st);
}

static const api_backend CLIENT_BACKEND = {
    .image_upload_begin = cl_upload_begin,
    .image_upload_write = cl_upload_write,
    .image_upload_commit = cl_upload_commit,
    .image_upload_abort = cl_upload_abort,
    .image_list = cl_image_list,
    .image_get = cl_image_get,
    .image_tag = cl_image_tag,
    .image_patch = cl_image_patch,
    .image_delete = cl_image_delete,
    .instance_create = cl_instance_create,
    .instance_list = cl_instance_list,
    .instance_get = cl_instance_get,
    .instance_action = cl_instance_action,
    .instance_delete = cl_instance_delete,
    .instance_bulk = cl_instance_bulk,
    .console_open = cl_console_open,
    .console_read = cl_console_read,
    .console_close = cl_console_close,
    .host_list = cl_host_list,
    .host_get = cl_host_get,
    .host_add = cl_host_add,
    .host_cordon = cl_host_cordon,
    .host_drain = cl_host_drain,
    .host_delete = cl_host_delete,
    .consolidate = cl_consolidate,
    .moves_stop = cl_moves_stop,
    .events_open = cl_events_open,
    .events_next = cl_events_next,
    .events_close = cl_events_close,
    .metrics_write = cl_metrics_write,
    .authenticate = cl_authenticate,
    .token_create = cl_token_create,
    .token_list = cl_token_list,
    .token_delete = cl_token_delete,
    .audit = cl_audit,
};

const api_backend *chan_client_backend(void)
{
    return &CLIENT_BACKEND;
}

int chan_client_open(int fd, unsigned max_inflight, void (*on_dead)(void *), void *cls,
                     chan_client **out)
{
    chan_client *c = calloc(1, sizeof *c);

    *out = NULL;
    if (c == NULL)
        return -1;
    c->fd = fd;
    c->n = max_inflight ? max_inflight : CHAN_INFLIGHT_DEFAULT;
    if (c->n > 0xffff)
        c->n = 0xffff;
    c->slots = calloc(c->n, sizeof *c->slots);
    c->on_dead = on_dead;
    c->cls = cls;
    if (c->slots == NULL) {
        free(c);
        return -1;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->free_cv, NULL);
    pthread_mutex_init(&c->wmu, NULL);
    pthread_mutex_init(&c->pmu, NULL);
    for (unsigned i = 0; i < c->n; i++)
        pthread_cond_init(&c->slots[i].cv, NULL);
    if (pthread_create(&c->reader, NULL, reader_main, c) != 0) {
        free(c->slots);
        free(c);
        return -1;
    }
    *out = c;
    return 0;
}

void chan_client_close(chan_client *c)
{
    if (c == NULL)
        return;
    shutdown(c->fd, SHUT_RDWR);
    pthread_join(c->reader, NULL);
    for (unsigned i = 0; i < c->n; i++) {
        objs_free(c->slots[i].objs);
        free(c->slots[i].payload);
        pthread_cond_destroy(&c->slots[i].cv);
    }
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->free_cv);
    pthread_mutex_destroy(&c->wmu);
    pthread_mutex_destroy(&c->pmu);
    explicit_bzero(c->pc, sizeof c->pc);
    free(c->slots);
    free(c);
}
