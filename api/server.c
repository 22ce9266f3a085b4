/*
 * server.c - libmicrohttpd glue: listening, TLS, auth, limits, dispatch to
 * the backend, streaming responses (console follow, SSE).
 *
 * Request life cycle (one connection thread, see api.h "Threading model"):
 *   1st access call: route, auth, query, Content-Type/Length checks. An error
 *      here is queued at once, so an over-limit body is never read (MHD
 *      closes the connection after the response).
 *   body calls: JSON bodies accumulate up to max_json_body; uploads go
 *      straight to image_upload_write.
 *   last call: decode, call the backend, encode, queue.
 *   completion callback: metrics, release of anything still open.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "codec.h"
#include "metrics.h"
#include "route.h"
#include "ui.h"

#define MAX_QUERY_PARAMS 64
#define STREAM_POLL_MS   500 /* backend pull timeout for streams */
#define TLS_FILE_MAX     (1 << 20)
#define HEALTHZ_BODY     "{\"status\":\"ok\"}"

/* One open connection, for the header deadline (see conn_notify). */
typedef struct conn_watch {
    int fd;              /* our duplicate of the socket: shutdown() is safe on it */
    int64_t deadline_ms; /* headers must be in by then; 0: a request is being served */
    bool fired;          /* shut down once already */
    struct conn_watch *prev, *next;
} conn_watch;

struct api_server {
    struct MHD_Daemon *mhd;
    pthread_mutex_t watch_mu; /* leaf lock: the list below */
    pthread_cond_t watch_cv;
    conn_watch *watch; /* every open connection */
    pthread_t watchdog;
    bool watchdog_on, watch_stop;
    const api_backend *be;
    void *be_ctx;
    api_config cfg; /* defaults resolved; pointers not kept */
    char **tokens;
    size_t *token_len;
    size_t n_tokens;
    char *tls_cert;
    char *tls_key;
    atomic_bool stopping;
    struct MHD_Response *healthz; /* shared, reused by every /healthz */
    uint16_t port;
    api_metrics metrics;
    /* Per-token request buckets (issue 16): api_principal.rate and burst.
     * rl_mu is a leaf lock: nothing is called with it held. */
    pthread_mutex_t rl_mu;
    struct rl_entry *rl;
    size_t rl_n, rl_cap;
};

/* Per-request state (MHD's con_cls). */
typedef struct req {
    const api_route *route;
    char param[256]; /* the {param} path segment */
    struct timespec t0;
    int status;  /* HTTP status queued */
    bool failed; /* err is set; discard body, answer err */
    api_status err;
    api_kv params[MAX_QUERY_PARAMS];
    size_t n_params;
    bool too_many_params;
    api_query q;
    char *body; /* JSON body */
    size_t body_len;
    size_t body_cap;
    void *upload; /* open backend upload or NULL */
    uint64_t uploaded;
    bool has_body;
    bool authed;       /* who is set: the token was accepted */
    api_principal who; /* the token's principal (api_request_principal) */
    char method[8];    /* for the audit record */
    char path[API_EVENT_STR_MAX];
} req;

/* The principal of the request this connection thread serves (api.h
 * api_request_principal); set while the request's handlers run. */
static _Thread_local const api_principal *cur_who;

const api_principal *api_request_principal(void)
{
    return cur_who;
}

void api_request_principal_set(const api_principal *who)
{
    cur_who = who;
}

typedef enum stream_kind { STREAM_CONSOLE, STREAM_EVENTS } stream_kind;

/* State of a streaming response (MHD content reader). */
typedef struct stream {
    api_server *srv;
    stream_kind kind;
    void *h;       /* backend console stream / subscription */
    int fd;        /* client socket, to notice hang-ups */
    char *pending; /* SSE bytes not yet handed to MHD */
    size_t plen, poff;
    struct timespec last_send;
} stream;

/* ---- small helpers ------------------------------------------------------ */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t elapsed_us(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (uint64_t)(t1.tv_sec - t0->tv_sec) * 1000000u +
           (uint64_t)((t1.tv_nsec - t0->tv_nsec) / 1000);
}

static void set_err(api_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(api_err *err, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

static enum MHD_Result queue(struct MHD_Connection *c, req *r, int status, char *body, size_t len,
                             const char *ctype)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    if (ctype != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (r != NULL)
        r->status = status;
    return ret;
}

static enum MHD_Result queue_error(struct MHD_Connection *c, req *r, const api_status *st,
                                   const char *allow)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    size_t len = 0;
    char *body = api_encode_error(st, &len);
    int status = api_code_http(st->code);

    if (body == NULL)
        return MHD_NO;
    resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (allow != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (st->code == API_E_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (st->retry_after_s > 0) {
        char secs[16];
        snprintf(secs, sizeof secs, "%u", st->retry_after_s);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->status = status;
    return ret;
}

static enum MHD_Result fail_now(struct MHD_Connection *c, req *r, api_code code, const char *field,
                                const char *msg)
{
    api_status_set(&r->err, code, field, "%s", msg);
    return queue_error(c, r, &r->err, NULL);
}

/* Constant-time in the content of the presented token (the configured
 * tokens: the backend's authenticate does its own). */
static bool token_ok(const api_server *srv, const char *given)
{
    size_t glen = strlen(given), i, k;
    bool ok = false;

    for (k = 0; k < srv->n_tokens; k++) {
        const char *t = srv->tokens[k];
        size_t tlen = srv->token_len[k];
        unsigned char diff = (unsigned char)(glen != tlen);

        for (i = 0; i < tlen; i++)
            diff |= (unsigned char)(t[i] ^ (i < glen ? given[i] : 0));
        ok |= (diff == 0);
    }
    return ok;
}

/* ---- per-token request rate (issue 16) ---------------------------------- */

/* A token bucket: holds up to burst requests, refilled at rate a second;
 * a request takes one. A token's bucket starts full. */
typedef struct rl_entry {
    char id[API_TOKEN_ID_LEN + 1];
    double level;
    int64_t at_ms; /* monotonic ms of the last refill */
} rl_entry;

#define RL_MAX_TOKENS 4096 /* buckets kept; past it the stalest is reused */

/* Take one request of who's bucket: 0, or the seconds until one is there
 * (>= 1, for Retry-After). Unlimited tokens (rate 0) always pass. */
static unsigned rl_take(api_server *srv, const api_principal *who)
{
    double burst = who->burst ? who->burst : who->rate, need;
    int64_t now = mono_ms();
    rl_entry *e = NULL;
    unsigned wait = 0;

    if (who->rate == 0 || who->id[0] == '\0')
        return 0;
    pthread_mutex_lock(&srv->rl_mu);
    for (size_t i = 0; i < srv->rl_n && e == NULL; i++)
        e = strcmp(srv->rl[i].id, who->id) == 0 ? &srv->rl[i] : NULL;
    if (e == NULL) {
        if (srv->rl_n == srv->rl_cap && srv->rl_cap < RL_MAX_TOKENS) {
            size_t cap = srv->rl_cap ? 2 * srv->rl_cap : 16;
            rl_entry *n = realloc(srv->rl, cap * sizeof *n);
            if (n != NULL) {
                srv->rl = n;
                srv->rl_cap = cap;
            }
        }
        if (srv->rl_n < srv->rl_cap) {
            e = &srv->rl[srv->rl_n++];
        } else if (srv->rl_n > 0) { /* full: the one idle longest is full anyway */
            e = &srv->rl[0];
            for (size_t i = 1; i < srv->rl_n; i++)
                e = srv->rl[i].at_ms < e->at_ms ? &srv->rl[i] : e;
        }
        if (e == NULL) { /* out of memory: let it through */
            pthread_mutex_unlock(&srv->rl_mu);
            return 0;
        }
        snprintf(e->id, sizeof e->id, "%s", who->id);
        e->level = burst;
        e->at_ms = now;
    }
    e->level += (double)(now - e->at_ms) * who->rate / 1000.0;
    if (e->level > burst)
        e->level = burst;
    e->at_ms = now;
    if (e->level >= 1.0) {
        e->level -= 1.0;
    } else {
        need = (1.0 - e->level) / who->rate; /* seconds */
        wait = (unsigned)need + ((double)(unsigned)need < need ? 1u : 0u);
        wait = wait ? wait : 1;
    }
    pthread_mutex_unlock(&srv->rl_mu);
    return wait;
}

/* Fill who from the Authorization header: a configured token is the
 * principal "admin" (scope admin), else the backend decides. */
static bool authorized(const api_server *srv, struct MHD_Connection *c, api_principal *who)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);

    memset(who, 0, sizeof *who);
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    if (*h == '\0' || strlen(h) > API_TOKEN_SECRET_MAX)
        return false;
    if (srv->n_tokens > 0 && token_ok(srv, h)) {
        snprintf(who->name, sizeof who->name, "admin");
        who->scope = API_SCOPE_ADMIN;
        return true;
    }
    return srv->be->authenticate != NULL && srv->be->authenticate(srv->be_ctx, h, who) == API_OK;
}

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    req *r = cls;

    (void)kind;
    if (r->n_params == MAX_QUERY_PARAMS) {
        r->too_many_params = true;
        return MHD_NO;
    }
    r->params[r->n_params].key = key;
    r->params[r->n_params].value = value;
    r->n_params++;
    return MHD_YES;
}

/* "application/json" or "application/json; charset=..." */
static bool ctype_is(struct MHD_Connection *c, const char *want)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t n = strlen(want);

    if (ct == NULL || strncasecmp(ct, want, n) != 0)
        return false;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

static bool client_gone(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLRDHUP };

    if (fd < 0)
        return false;
    if (poll(&p, 1, 0) <= 0)
        return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/* Check the path parameter's syntax for the route. */
static api_code check_param(const req *r, api_status *st)
{
    switch (r->route->op) {
    case API_OP_IMAGE_GET:
    case API_OP_IMAGE_TAG:
    case API_OP_IMAGE_DELETE:
    case API_OP_IMAGE_PATCH:
        if (!api_valid_image_ref(r->param))
            return api_status_set(st, API_E_NOT_FOUND, "ref",
                                  "image '%.80s' not found (not a valid "
                                  "reference)",
                                  r->param);
        break;
    case API_OP_INSTANCE_GET:
    case API_OP_INSTANCE_DELETE:
    case API_OP_INSTANCE_STOP:
    case API_OP_INSTANCE_START:
    case API_OP_INSTANCE_RESTART:
    case API_OP_CONSOLE:
        if (!api_valid_instance_ref(r->param))
            return api_status_set(st, API_E_NOT_FOUND, "id", "instance '%.80s' not found",
                                  r->param);
        break;
    case API_OP_HOST_GET:
    case API_OP_HOST_DELETE:
    case API_OP_HOST_CORDON:
    case API_OP_HOST_DRAIN:
        if (!api_valid_name(r->param))
            return api_status_set(st, API_E_NOT_FOUND, "name", "host '%.80s' not found", r->param);
        break;
    case API_OP_TOKEN_DELETE:
        if (!api_valid_name(r->param))
            return api_status_set(st, API_E_NOT_FOUND, "id", "token '%.80s' not found", r->param);
        break;
    default: break;
    }
    return API_OK;
}

/* ---- streams ------------------------------------------------------------ */

static void stream_free(void *cls)
{
    stream *s = cls;
    const api_backend *be = s->srv->be;

    if (s->kind == STREAM_CONSOLE)
        be->console_close(s->srv->be_ctx, s->h);
    else
        be->events_close(s->srv->be_ctx, s->h);
    free(s->pending);
    free(s);
}

static ssize_t console_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream *s = cls;
    ssize_t n;

    (void)pos;
    for (;;) {
        if (atomic_load(&s->srv->stopping))
            return MHD_CONTENT_READER_END_OF_STREAM;
        n = s->srv->be->console_read(s->srv->be_ctx, s->h, buf, max, STREAM_POLL_MS);
        if (n > 0)
            return n > (ssize_t)max ? (ssize_t)max : n;
        if (n == API_STREAM_END)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (n < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (client_gone(s->fd))
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static ssize_t events_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream *s = cls;
    api_event ev;
    size_t n;
    int rc;

    (void)pos;
    while (s->poff >= s->plen) {
        free(s->pending);
        s->pending = NULL;
        s->plen = s->poff = 0;
        if (atomic_load(&s->srv->stopping))
            return MHD_CONTENT_READER_END_OF_STREAM;
        memset(&ev, 0, sizeof ev);
        rc = s->srv->be->events_next(s->srv->be_ctx, s->h, &ev, STREAM_POLL_MS);
        if (rc < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (rc > 0) {
            s->pending = api_encode_event(&ev, &s->plen);
            if (s->pending == NULL)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            break;
        }
        if (client_gone(s->fd))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (elapsed_us(&s->last_send) >= (uint64_t)s->srv->cfg.keepalive_s * 1000000u) {
            s->pending = strdup(": keepalive\n\n");
            if (s->pending == NULL)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            s->plen = strlen(s->pending);
        }
    }
    n = s->plen - s->poff;
    if (n > max)
        n = max;
    memcpy(buf, s->pending + s->poff, n);
    s->poff += n;
    clock_gettime(CLOCK_MONOTONIC, &s->last_send);
    return (ssize_t)n;
}

static enum MHD_Result start_stream(api_server *srv, struct MHD_Connection *c, req *r,
                                    stream_kind kind, void *h)
{
    const union MHD_ConnectionInfo *ci;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    stream *s = calloc(1, sizeof *s);

    if (s == NULL) {
        if (kind == STREAM_CONSOLE)
            srv->be->console_close(srv->be_ctx, h);
        else
            srv->be->events_close(srv->be_ctx, h);
        return fail_now(c, r, API_E_INTERNAL, NULL, "out of memory");
    }
    s->srv = srv;
    s->kind = kind;
    s->h = h;
    s->fd = -1;
    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci != NULL)
        s->fd = ci->connect_fd;
    clock_gettime(CLOCK_MONOTONIC, &s->last_send);
    resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 16 * 1024, kind == STREAM_CONSOLE ? console_reader : events_reader, s,
        stream_free);
    if (resp == NULL) {
        stream_free(s);
        return fail_now(c, r, API_E_INTERNAL, NULL, "out of memory");
    }
    if (kind == STREAM_CONSOLE) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    } else {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    }
    /* streams outlive the idle timeout; they notice hang-ups themselves */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    r->status = MHD_HTTP_OK;
    return ret;
}

/* ---- dispatch ----------------------------------------------------------- */

/* Which sink a route's result goes to, and the success status. */
static void route_sink(api_op op, api_sink_kind *kind, api_sink_shape *shape, int *status)
{
    *shape = API_SHAPE_ONE;
    *status = MHD_HTTP_OK;
    switch (op) {
    case API_OP_IMAGE_UPLOAD:
    case API_OP_INITRD_UPLOAD:
        *status = MHD_HTTP_CREATED;
        /* fall through */
    case API_OP_IMAGE_GET:
    case API_OP_IMAGE_TAG:
    case API_OP_IMAGE_PATCH: *kind = API_SINK_IMAGE; break;
    case API_OP_IMAGE_LIST:
        *kind = API_SINK_IMAGE;
        *shape = API_SHAPE_LIST;
        break;
    case API_OP_INSTANCE_CREATE:
        *kind = API_SINK_INSTANCE;
        *shape = API_SHAPE_ITEMS;
        *status = MHD_HTTP_CREATED;
        break;
    case API_OP_INSTANCE_LIST:
        *kind = API_SINK_INSTANCE;
        *shape = API_SHAPE_LIST;
        break;
    case API_OP_HOST_LIST:
        *kind = API_SINK_HOST;
        *shape = API_SHAPE_LIST;
        break;
    case API_OP_HOST_ADD:
        *status = MHD_HTTP_CREATED;
        /* fall through */
    case API_OP_HOST_GET:
    case API_OP_HOST_CORDON: *kind = API_SINK_HOST; break;
    case API_OP_HOST_DRAIN:
    case API_OP_CONSOLIDATE: *kind = API_SINK_PLAN; break;
    case API_OP_METRICS: *kind = API_SINK_TEXT; break;
    case API_OP_TOKEN_CREATE:
        *kind = API_SINK_TOKEN;
        *status = MHD_HTTP_CREATED;
        break;
    case API_OP_TOKEN_LIST:
        *kind = API_SINK_TOKEN;
        *shape = API_SHAPE_LIST;
        break;
    case API_OP_TOKEN_DELETE:
        *kind = API_SINK_TOKEN; /* unused */
        *status = MHD_HTTP_NO_CONTENT;
        break;
    case API_OP_BULK_STOP:
    case API_OP_BULK_START:
    case API_OP_BULK_RESTART:
    case API_OP_BULK_DELETE:
    case API_OP_BULK_DELETE_QUERY:
        *kind = API_SINK_BULK;
        *shape = API_SHAPE_BULK;
        break;
    case API_OP_IMAGE_DELETE:
    case API_OP_INSTANCE_DELETE:
    case API_OP_HOST_DELETE:
    case API_OP_MOVES_STOP:
        *kind = API_SINK_IMAGE; /* unused */
        *status = MHD_HTTP_NO_CONTENT;
        break;
    default: *kind = API_SINK_INSTANCE; break;
    }
}

#define NEED(fn)                                                                                   \
    do {                                                                                           \
        if (be->fn == NULL) {                                                                      \
            rc = api_status_set(&st, API_E_INTERNAL, NULL, "%s is not implemented", #fn);          \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

static enum MHD_Result dispatch(api_server *srv, struct MHD_Connection *c, req *r)
{
    const api_backend *be = srv->be;
    void *ctx = srv->be_ctx;
    const char *body = r->body != NULL ? r->body : "";
    api_status st = { 0 };
    api_sink *sink = NULL;
    api_sink_kind kind;
    api_sink_shape shape;
    api_instance_spec ispec = { 0 };
    api_host_spec hspec = { 0 };
    api_bulk_req breq = { 0 };
    api_page page = { r->q.limit, r->q.after };
    char ref[API_REF_MAX + 1];
    void *h = NULL;
    int status, timeout_s;
    bool flag;
    api_code rc;
    enum MHD_Result ret;
    char *out;
    size_t len;

    route_sink(r->route->op, &kind, &shape, &status);
    sink = api_sink_new(kind, shape);
    if (sink == NULL) {
        rc = api_status_set(&st, API_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    switch (r->route->op) {
    case API_OP_HEALTHZ: rc = API_OK; break;
    case API_OP_METRICS:
        rc = API_OK;
        if (be->metrics_write != NULL)
            rc = be->metrics_write(ctx, sink, &st);
        if (rc == API_OK && api_metrics_write(&srv->metrics, sink) != 0)
            rc = api_status_set(&st, API_E_INTERNAL, NULL, "metrics encoding failed");
        break;
    case API_OP_IMAGE_UPLOAD:
    case API_OP_INITRD_UPLOAD:
        NEED(image_upload_commit);
        h = r->upload;
        r->upload = NULL;
        rc = be->image_upload_commit(ctx, h, sink, &st);
        break;
    case API_OP_IMAGE_LIST: {
        api_image_filter f = { r->q.name, &r->q.selector };
        NEED(image_list);
        rc = be->image_list(ctx, &f, &page, sink, &st);
        break;
    }
    case API_OP_IMAGE_GET:
        NEED(image_get);
        rc = be->image_get(ctx, r->param, sink, &st);
        break;
    case API_OP_IMAGE_TAG:
        NEED(image_tag);
        rc = api_decode_tag_request(body, r->body_len, ref, &st);
        if (rc == API_OK)
            rc = be->image_tag(ctx, r->param, ref, sink, &st);
        break;
    case API_OP_IMAGE_PATCH: {
        api_image_patch ip;
        NEED(image_patch);
        rc = api_decode_image_patch(body, r->body_len, &ip, &st);
        if (rc == API_OK)
            rc = be->image_patch(ctx, r->param, &ip, sink, &st);
        api_image_patch_free(&ip);
        break;
    }
    case API_OP_IMAGE_DELETE:
        NEED(image_delete);
        rc = be->image_delete(ctx, r->param, r->q.force, &st);
        break;
    case API_OP_INSTANCE_CREATE:
        NEED(instance_create);
        rc = api_decode_instance_spec(body, r->body_len, &ispec, &st);
        if (rc == API_OK)
            rc = be->instance_create(ctx, &ispec, sink, &st);
        break;
    case API_OP_INSTANCE_LIST: {
        api_instance_filter f = { &r->q.selector, r->q.has_state, r->q.state, r->q.host };
        NEED(instance_list);
        rc = be->instance_list(ctx, &f, &page, sink, &st);
        break;
    }
    case API_OP_INSTANCE_GET:
        NEED(instance_get);
        rc = be->instance_get(ctx, r->param, sink, &st);
        break;
    case API_OP_INSTANCE_STOP:
    case API_OP_INSTANCE_START:
    case API_OP_INSTANCE_RESTART:
        NEED(instance_action);
        timeout_s = -1;
        if (r->route->op == API_OP_INSTANCE_STOP)
            rc = api_decode_stop_request(body, r->body_len, &timeout_s, &st);
        else
            rc = api_decode_empty_body(body, r->body_len, &st);
        if (rc == API_OK)
            rc = be->instance_action(ctx, r->param,
                                     r->route->op == API_OP_INSTANCE_STOP    ? API_ACTION_STOP
                                     : r->route->op == API_OP_INSTANCE_START ? API_ACTION_START
                                                                             : API_ACTION_RESTART,
                                     timeout_s, sink, &st);
        break;
    case API_OP_INSTANCE_DELETE:
        NEED(instance_delete);
        rc = be->instance_delete(ctx, r->param, r->q.force, &st);
        break;
    case API_OP_BULK_STOP:
    case API_OP_BULK_START:
    case API_OP_BULK_RESTART:
    case API_OP_BULK_DELETE: {
        api_op op = r->route->op;
        api_action act = op == API_OP_BULK_STOP      ? API_ACTION_STOP
                         : op == API_OP_BULK_START   ? API_ACTION_START
                         : op == API_OP_BULK_RESTART ? API_ACTION_RESTART
                                                     : API_ACTION_DELETE;
        NEED(instance_bulk);
        rc = api_decode_bulk_request(body, r->body_len,
                                     op == API_OP_BULK_STOP || op == API_OP_BULK_RESTART,
                                     op == API_OP_BULK_DELETE, &breq, &st);
        if (rc == API_OK)
            rc = be->instance_bulk(ctx, &breq, act, sink, &st);
        break;
    }
    case API_OP_BULK_DELETE_QUERY:
        NEED(instance_bulk);
        if (r->q.selector.n == 0) {
            rc = api_status_set(&st, API_E_INVALID_FIELD, "selector",
                                "selector is required and must have "
                                "at least one term (a bulk delete "
                                "never means every instance)");
            break;
        }
        breq.selector = &r->q.selector;
        breq.timeout_s = -1;
        breq.force = r->q.force;
        rc = be->instance_bulk(ctx, &breq, API_ACTION_DELETE, sink, &st);
        breq.selector = NULL;
        break;
    case API_OP_CONSOLE:
        NEED(console_open);
        NEED(console_read);
        NEED(console_close);
        rc = be->console_open(ctx, r->param, r->q.tail, r->q.follow, &h, &st);
        if (rc == API_OK) {
            api_sink_free(sink);
            return start_stream(srv, c, r, STREAM_CONSOLE, h);
        }
        break;
    case API_OP_HOST_LIST:
        NEED(host_list);
        rc = be->host_list(ctx, &page, sink, &st);
        break;
    case API_OP_HOST_GET:
        NEED(host_get);
        rc = be->host_get(ctx, r->param, sink, &st);
        break;
    case API_OP_HOST_ADD:
        NEED(host_add);
        rc = api_decode_host_spec(body, r->body_len, &hspec, &st);
        if (rc == API_OK)
            rc = be->host_add(ctx, &hspec, sink, &st);
        break;
    case API_OP_HOST_CORDON:
        NEED(host_cordon);
        rc = api_decode_cordon_request(body, r->body_len, &flag, &st);
        if (rc == API_OK)
            rc = be->host_cordon(ctx, r->param, flag, sink, &st);
        break;
    case API_OP_HOST_DRAIN:
        NEED(host_drain);
        rc = api_decode_empty_body(body, r->body_len, &st);
        if (rc == API_OK)
            rc = be->host_drain(ctx, r->param, r->q.dry_run, sink, &st);
        break;
    case API_OP_HOST_DELETE:
        NEED(host_delete);
        rc = be->host_delete(ctx, r->param, &st);
        break;
    case API_OP_MOVES_STOP:
        NEED(moves_stop);
        rc = be->moves_stop(ctx, &st);
        break;
    case API_OP_CONSOLIDATE:
        NEED(consolidate);
        rc = api_decode_empty_body(body, r->body_len, &st);
        if (rc == API_OK)
            rc = be->consolidate(ctx, r->q.dry_run, sink, &st);
        break;
    case API_OP_EVENTS: {
        const char *lei = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
        bool has_since = r->q.has_since;
        uint64_t since = r->q.since;

        NEED(events_open);
        NEED(events_next);
        NEED(events_close);
        if (lei != NULL && !has_since) {
            if (api_parse_u64(lei, UINT64_MAX - 1, &since) != 0) {
                rc = api_status_set(&st, API_E_BAD_REQUEST, "Last-Event-ID",
                                    "Last-Event-ID '%.40s' is not an "
                                    "event id",
                                    lei);
                break;
            }
            has_since = true;
        }
        rc = be->events_open(ctx, has_since, since, &h, &st);
        if (rc == API_OK) {
            api_sink_free(sink);
            return start_stream(srv, c, r, STREAM_EVENTS, h);
        }
        break;
    }
    case API_OP_TOKEN_CREATE: {
        api_token_spec ts;
        NEED(token_create);
        rc = api_decode_token_spec(body, r->body_len, &ts, &st);
        if (rc == API_OK)
            rc = be->token_create(ctx, &ts, sink, &st);
        break;
    }
    case API_OP_TOKEN_LIST:
        NEED(token_list);
        rc = be->token_list(ctx, sink, &st);
        break;
    case API_OP_TOKEN_DELETE:
        NEED(token_delete);
        rc = be->token_delete(ctx, r->param, &st);
        break;
    default: rc = api_status_set(&st, API_E_INTERNAL, NULL, "unrouted op"); break;
    }
out:
    api_instance_spec_clear(&ispec);
    api_host_spec_clear(&hspec);
    api_bulk_req_clear(&breq);
    if (rc != API_OK) {
        if (st.code != rc)
            api_status_set(&st, rc, NULL, "%s", "request failed");
        api_sink_free(sink);
        return queue_error(c, r, &st, NULL);
    }
    if (status == MHD_HTTP_NO_CONTENT) {
        api_sink_free(sink);
        return queue(c, r, status, NULL, 0, NULL);
    }
    out = api_sink_finish(sink, &len);
    api_sink_free(sink);
    if (out == NULL) {
        api_status_set(&st, API_E_INTERNAL, NULL, "backend returned %s result for %s %s",
                       "no or a malformed", r->route->method, r->route->pattern);
        return queue_error(c, r, &st, NULL);
    }
    ret = queue(c, r, status, out, len,
                kind == API_SINK_TEXT ? "text/plain; version=0.0.4" : "application/json");
    return ret;
}

/* ---- access handler ----------------------------------------------------- */

/* First call for a request: everything that can be decided from headers. */
static enum MHD_Result begin(api_server *srv, struct MHD_Connection *c, req *r, const char *url,
                             const char *method)
{
    const char *cl, *te;
    char allow[64];
    bool known;
    uint64_t clen = 0;
    unsigned secs;
    api_code rc;

    if (atomic_load(&srv->stopping))
        return fail_now(c, r, API_E_UNAVAILABLE, NULL, "the daemon is shutting down");
    if (!authorized(srv, c, &r->who)) {
        char when[32];
        if (r->who.expires == 0 || r->who.name[0] == '\0')
            return fail_now(c, r, API_E_UNAUTHORIZED, NULL, "missing or wrong bearer token");
        api_format_time(r->who.expires, when);
        api_status_set(&r->err, API_E_UNAUTHORIZED, NULL,
                       "token '%s' expired at %s: create a new one", r->who.name, when);
        return queue_error(c, r, &r->err, NULL);
    }
    if ((secs = rl_take(srv, &r->who)) > 0) {
        api_status_set(&r->err, API_E_RATE_LIMITED, NULL,
                       "token '%s' is over its rate limit of %u requests/s (burst %u); retry in "
                       "%u s",
                       r->who.name, r->who.rate, r->who.burst ? r->who.burst : r->who.rate, secs);
        r->err.retry_after_s = secs;
        return queue_error(c, r, &r->err, NULL);
    }
    r->authed = true;
    cur_who = &r->who;
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s", url);
    r->route = api_route_match(method, url, r->param, sizeof r->param, &known, allow, sizeof allow);
    if (r->route == NULL) {
        if (known) {
            api_status_set(&r->err, API_E_METHOD_NOT_ALLOWED, NULL,
                           "%.10s is not allowed on %.100s (allowed: %s)", method, url, allow);
            return queue_error(c, r, &r->err, allow);
        }
        api_status_set(&r->err, API_E_NOT_FOUND, NULL, "no route for %.10s %.100s", method, url);
        return queue_error(c, r, &r->err, NULL);
    }
    if (r->who.scope < api_route_scope(r->route)) {
        api_status_set(&r->err, API_E_FORBIDDEN, NULL,
                       "token '%s' (scope %s) may not %s %.100s: that needs scope %s", r->who.name,
                       api_scope_name(r->who.scope), r->route->method, r->route->pattern,
                       api_scope_name(api_route_scope(r->route)));
        return queue_error(c, r, &r->err, NULL);
    }
    rc = check_param(r, &r->err);
    if (rc != API_OK)
        return queue_error(c, r, &r->err, NULL);

    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_param, r);
    if (r->too_many_params)
        return fail_now(c, r, API_E_BAD_REQUEST, NULL, "too many query parameters");
    rc = api_decode_query(r->params, r->n_params, r->route->query, &r->q, &r->err);
    if (rc != API_OK)
        return queue_error(c, r, &r->err, NULL);

    cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (cl != NULL && api_parse_u64(cl, UINT64_MAX, &clen) != 0)
        return fail_now(c, r, API_E_BAD_REQUEST, NULL, "bad Content-Length");
    r->has_body = clen > 0 || te != NULL;

    switch (r->route->body) {
    case API_BODY_NONE:
        if (r->has_body)
            return fail_now(c, r, API_E_BAD_REQUEST, NULL, "this route takes no request body");
        break;
    case API_BODY_JSON:
        if (!r->has_body)
            break;
        if (!ctype_is(c, "application/json"))
            return fail_now(c, r, API_E_UNSUPPORTED_MEDIA_TYPE, NULL,
                            "request body must be application/json");
        if (clen > srv->cfg.max_json_body) {
            api_status_set(&r->err, API_E_TOO_LARGE, NULL,
                           "request body of %llu bytes is over the "
                           "limit of %zu bytes",
                           (unsigned long long)clen, srv->cfg.max_json_body);
            return queue_error(c, r, &r->err, NULL);
        }
        break;
    case API_BODY_UPLOAD:
        if (!ctype_is(c, "application/octet-stream"))
            return fail_now(c, r, API_E_UNSUPPORTED_MEDIA_TYPE, NULL,
                            "image upload must be "
                            "application/octet-stream");
        if (clen > srv->cfg.max_upload) {
            api_status_set(&r->err, API_E_TOO_LARGE, NULL,
                           "image of %llu bytes is over the limit of "
                           "%llu bytes",
                           (unsigned long long)clen, (unsigned long long)srv->cfg.max_upload);
            return queue_error(c, r, &r->err, NULL);
        }
        if (srv->be->image_upload_begin == NULL || srv->be->image_upload_write == NULL ||
            srv->be->image_upload_abort == NULL)
            return fail_now(c, r, API_E_INTERNAL, NULL, "image upload is not implemented");
        {
            api_upload_req ur;
            memset(&ur, 0, sizeof ur);
            memcpy(ur.name, r->q.ref_name, sizeof ur.name);
            memcpy(ur.tag, r->q.ref_tag, sizeof ur.tag);
            ur.labels = r->q.labels;
            ur.n_labels = r->q.n_labels;
            ur.digest = r->q.digest;
            ur.initrd = r->q.initrd;
            ur.initrd_upload = r->route->op == API_OP_INITRD_UPLOAD;
            ur.content_length = te != NULL ? 0 : clen;
            rc = srv->be->image_upload_begin(srv->be_ctx, &ur, &r->upload, &r->err);
            if (rc != API_OK) {
                r->upload = NULL;
                if (r->err.code != rc)
                    api_status_set(&r->err, rc, NULL, "upload refused");
                return queue_error(c, r, &r->err, NULL);
            }
        }
        break;
    }
    return MHD_YES;
}

/* A body chunk. Returns MHD_NO to drop the connection. */
static enum MHD_Result feed(api_server *srv, struct MHD_Connection *c, req *r, const char *data,
                            size_t len)
{
    api_code rc;

    if (r->failed)
        return MHD_YES; /* discarding the rest of a refused body */
    switch (r->route->body) {
    case API_BODY_JSON:
        if (r->body_len + len > srv->cfg.max_json_body) {
            api_status_set(&r->err, API_E_TOO_LARGE, NULL,
                           "request body is over the limit of %zu "
                           "bytes",
                           srv->cfg.max_json_body);
            r->failed = true;
            /* chunked body without a length: answer now if MHD lets
			 * us, else drop the connection rather than read on */
            if (queue_error(c, r, &r->err, NULL) != MHD_YES)
                return MHD_NO;
            return MHD_YES;
        }
        if (r->body_len + len + 1 > r->body_cap) {
            size_t cap = r->body_cap ? r->body_cap : 1024;
            char *b;
            while (cap < r->body_len + len + 1)
                cap *= 2;
            b = realloc(r->body, cap);
            if (b == NULL)
                return MHD_NO;
            r->body = b;
            r->body_cap = cap;
        }
        memcpy(r->body + r->body_len, data, len);
        r->body_len += len;
        r->body[r->body_len] = '\0';
        return MHD_YES;
    case API_BODY_UPLOAD:
        if (r->uploaded + len > srv->cfg.max_upload) {
            srv->be->image_upload_abort(srv->be_ctx, r->upload);
            r->upload = NULL;
            api_status_set(&r->err, API_E_TOO_LARGE, NULL, "image is over the limit of %llu bytes",
                           (unsigned long long)srv->cfg.max_upload);
            r->failed = true;
            if (queue_error(c, r, &r->err, NULL) != MHD_YES)
                return MHD_NO;
            return MHD_YES;
        }
        r->uploaded += len;
        rc = srv->be->image_upload_write(srv->be_ctx, r->upload, data, len, &r->err);
        if (rc != API_OK) {
            if (r->err.code != rc)
                api_status_set(&r->err, rc, NULL, "upload failed");
            srv->be->image_upload_abort(srv->be_ctx, r->upload);
            r->upload = NULL;
            r->failed = true; /* answer once the body is consumed */
        }
        return MHD_YES;
    default: return MHD_NO;
    }
}

/* ---- header deadline ------------------------------------------------------
 *
 * MHD's connection timeout is an idle timeout: a client that sends one
 * byte of its headers every few seconds (slowloris) holds a connection, and
 * with it a thread, for ever. So each connection also has a deadline: the
 * request line and headers must arrive within conn_timeout_s of the
 * connection's start, or of the previous response. The watchdog shuts the
 * socket down when it passes (MHD then sees EOF and closes the connection
 * on its own thread). Bodies are governed by the idle timeout, streams by
 * nothing (they notice hang-ups). The watchdog works on a duplicate of the
 * socket, closed only when MHD says the connection is gone, so a shutdown
 * can never reach a descriptor number that was reused meanwhile. */

static void watch_set(api_server *srv, struct MHD_Connection *c, int64_t deadline_ms)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_watch *w = ci != NULL ? ci->socket_context : NULL;

    if (w == NULL)
        return;
    pthread_mutex_lock(&srv->watch_mu);
    w->deadline_ms = deadline_ms;
    pthread_mutex_unlock(&srv->watch_mu);
}

static void conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode toe)
{
    api_server *srv = cls;
    conn_watch *w = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        w = calloc(1, sizeof *w);
        if (w == NULL)
            return;
        w->fd = ci != NULL ? fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 0) : -1;
        if (w->fd < 0) {
            free(w);
            return; /* out of descriptors: the idle timeout still applies */
        }
        w->deadline_ms = mono_ms() + (int64_t)srv->cfg.conn_timeout_s * 1000;
        pthread_mutex_lock(&srv->watch_mu);
        w->next = srv->watch;
        if (srv->watch != NULL)
            srv->watch->prev = w;
        srv->watch = w;
        pthread_mutex_unlock(&srv->watch_mu);
        *socket_context = w;
        return;
    }
    if (w == NULL)
        return;
    pthread_mutex_lock(&srv->watch_mu);
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        srv->watch = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&srv->watch_mu);
    close(w->fd);
    free(w);
    *socket_context = NULL;
}

static void *watchdog_main(void *arg)
{
    api_server *srv = arg;

    pthread_mutex_lock(&srv->watch_mu);
    while (!srv->watch_stop) {
        struct timespec ts;
        int64_t now = mono_ms();

        for (conn_watch *w = srv->watch; w != NULL; w = w->next) {
            if (w->deadline_ms != 0 && now >= w->deadline_ms && !w->fired) {
                shutdown(w->fd, SHUT_RDWR);
                w->fired = true;
                api_metrics_observe(&srv->metrics, 408, 0);
            }
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&srv->watch_cv, &srv->watch_mu, &ts);
    }
    pthread_mutex_unlock(&srv->watch_mu);
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    api_server *srv = cls;
    req *r = *con_cls;
    enum MHD_Result ret;

    (void)version;
    if (r == NULL) {
        /* the headers are in: no deadline while the request is served */
        watch_set(srv, c, 0);
        /* hot path: no allocation, no backend, shared response */
        if (strcmp(url, "/healthz") == 0 &&
            (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) && *upload_data_size == 0) {
            ret = MHD_queue_response(c, MHD_HTTP_OK, srv->healthz);
            api_metrics_observe(&srv->metrics, MHD_HTTP_OK, 0);
            return ret;
        }
        r = calloc(1, sizeof *r);
        if (r == NULL)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &r->t0);
        *con_cls = r;
        /* the web view's static files: no token, no backend (ui.h) */
        if (api_ui_owns(url))
            return (enum MHD_Result)api_ui_serve(c, url, method, &r->status);
        if (strcmp(url, "/healthz") == 0) {
            char allow[32];
            bool known;
            r->route = api_route_match(method, url, r->param, sizeof r->param, &known, allow,
                                       sizeof allow);
            api_status_set(&r->err, API_E_METHOD_NOT_ALLOWED, NULL,
                           "%.10s is not allowed on /healthz", method);
            return queue_error(c, r, &r->err, "GET");
        }
        return begin(srv, c, r, url, method);
    }
    if (r->status != 0) {
        /* a response is already queued: swallow anything else */
        *upload_data_size = 0;
        return MHD_YES;
    }
    cur_who = r->authed ? &r->who : NULL;
    if (*upload_data_size > 0) {
        ret = feed(srv, c, r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return ret;
    }
    if (r->failed)
        return queue_error(c, r, &r->err, NULL);
    return dispatch(srv, c, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    api_server *srv = cls;
    req *r = *con_cls;

    (void)toe;
    /* the next request's headers have conn_timeout_s from now */
    watch_set(srv, c, mono_ms() + (int64_t)srv->cfg.conn_timeout_s * 1000);
    if (r == NULL)
        return;
    if (r->upload != NULL)
        srv->be->image_upload_abort(srv->be_ctx, r->upload);
    /* every state-changing request a token made, whatever came of it */
    if (r->authed && strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0 &&
        srv->be->audit != NULL)
        srv->be->audit(srv->be_ctx, &r->who, r->method, r->path, r->status != 0 ? r->status : 499);
    cur_who = NULL;
    api_metrics_observe(&srv->metrics, r->status != 0 ? r->status : 499, elapsed_us(&r->t0));
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* ---- start / stop ------------------------------------------------------- */

static char *read_file(const char *path, api_err *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n;

    if (f == NULL) {
        set_err(err, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(TLS_FILE_MAX + 1);
    if (buf == NULL) {
        set_err(err, "out of memory");
        goto out;
    }
    n = fread(buf, 1, TLS_FILE_MAX + 1, f);
    if (ferror(f) || n == 0 || n > TLS_FILE_MAX) {
        set_err(err, "cannot read '%s': %s", path,
                n > TLS_FILE_MAX ? "file too large" : "read error or empty");
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[n] = '\0';
out:
    fclose(f);
    return buf;
}

static void server_free(api_server *srv)
{
    size_t i;

    if (srv == NULL)
        return;
    if (srv->mhd != NULL)
        MHD_stop_daemon(srv->mhd);
    if (srv->watchdog_on) {
        pthread_mutex_lock(&srv->watch_mu);
        srv->watch_stop = true;
        pthread_cond_signal(&srv->watch_cv);
        pthread_mutex_unlock(&srv->watch_mu);
        pthread_join(srv->watchdog, NULL);
    }
    pthread_mutex_destroy(&srv->watch_mu);
    pthread_cond_destroy(&srv->watch_cv);
    pthread_mutex_destroy(&srv->rl_mu);
    free(srv->rl);
    if (srv->healthz != NULL)
        MHD_destroy_response(srv->healthz);
    for (i = 0; i < srv->n_tokens; i++) {
        if (srv->tokens[i] != NULL)
            explicit_bzero(srv->tokens[i], srv->token_len[i]);
        free(srv->tokens[i]);
    }
    free(srv->tokens);
    free(srv->token_len);
    if (srv->tls_key != NULL)
        explicit_bzero(srv->tls_key, strlen(srv->tls_key));
    free(srv->tls_key);
    free(srv->tls_cert);
    free(srv);
}

int api_server_start(const api_config *cfg, const api_backend *be, void *be_ctx, api_server **out,
                     api_err *err)
{
    struct sockaddr_storage ss;
    struct addrinfo hints, *ai = NULL;
    const union MHD_DaemonInfo *info;
    api_server *srv = NULL;
    unsigned flags;
    char port[8];
    size_t i;
    int gai, rc = -1;

    if (out != NULL)
        *out = NULL;
    if (cfg == NULL || be == NULL || out == NULL) {
        set_err(err, "api_server_start: NULL argument");
        goto out;
    }
    if ((cfg->n_tokens == 0 || cfg->tokens == NULL) && be->authenticate == NULL) {
        set_err(err, "at least one bearer token is required");
        goto out;
    }
    if ((cfg->tls_cert_path == NULL) != (cfg->tls_key_path == NULL) ||
        (cfg->tls_cert_pem == NULL) != (cfg->tls_key_pem == NULL)) {
        set_err(err, "TLS needs both a certificate and a key");
        goto out;
    }
    srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        set_err(err, "out of memory");
        goto out;
    }
    pthread_mutex_init(&srv->watch_mu, NULL);
    pthread_mutex_init(&srv->rl_mu, NULL);
    pthread_cond_init(&srv->watch_cv, NULL);
    srv->be = be;
    srv->be_ctx = be_ctx;
    srv->cfg = *cfg;
    srv->cfg.tokens = NULL;
    srv->cfg.tls_cert_path = srv->cfg.tls_key_path = NULL;
    srv->cfg.tls_cert_pem = srv->cfg.tls_key_pem = NULL;
    srv->cfg.listen_addr = NULL;
    if (srv->cfg.max_json_body == 0)
        srv->cfg.max_json_body = API_DEFAULT_MAX_JSON_BODY;
    if (srv->cfg.max_upload == 0)
        srv->cfg.max_upload = API_DEFAULT_MAX_UPLOAD;
    if (srv->cfg.max_header == 0)
        srv->cfg.max_header = API_DEFAULT_MAX_HEADER;
    if (srv->cfg.max_connections == 0)
        srv->cfg.max_connections = API_DEFAULT_MAX_CONNECTIONS;
    if (srv->cfg.conn_timeout_s == 0)
        srv->cfg.conn_timeout_s = API_DEFAULT_CONN_TIMEOUT_S;
    if (srv->cfg.max_conns_per_ip == 0)
        srv->cfg.max_conns_per_ip = API_DEFAULT_MAX_CONNS_PER_IP;
    if (srv->cfg.keepalive_s == 0)
        srv->cfg.keepalive_s = API_DEFAULT_KEEPALIVE_S;

    /* calloc(n + 1): no tokens at all is fine with a backend authenticate */
    srv->tokens = calloc(cfg->n_tokens + 1, sizeof *srv->tokens);
    srv->token_len = calloc(cfg->n_tokens + 1, sizeof *srv->token_len);
    if (srv->tokens == NULL || srv->token_len == NULL) {
        set_err(err, "out of memory");
        goto out;
    }
    srv->n_tokens = cfg->tokens != NULL ? cfg->n_tokens : 0;
    for (i = 0; i < srv->n_tokens; i++) {
        if (cfg->tokens[i] == NULL || cfg->tokens[i][0] == '\0') {
            set_err(err, "empty bearer token in config");
            goto out;
        }
        srv->tokens[i] = strdup(cfg->tokens[i]);
        if (srv->tokens[i] == NULL) {
            set_err(err, "out of memory");
            goto out;
        }
        srv->token_len[i] = strlen(cfg->tokens[i]);
    }

    memset(&hints, 0, sizeof hints);
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof port, "%u", cfg->port);
    gai = getaddrinfo(cfg->listen_addr != NULL ? cfg->listen_addr : API_DEFAULT_ADDR, port, &hints,
                      &ai);
    if (gai != 0 || ai == NULL || ai->ai_addrlen > sizeof ss) {
        set_err(err,
                "listen address '%s' is not a numeric IPv4/IPv6 "
                "address: %s",
                cfg->listen_addr ? cfg->listen_addr : "",
                gai != 0 ? gai_strerror(gai) : "no address");
        goto out;
    }
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);

    flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
        flags |= MHD_USE_IPv6;
        /* "::" also accepts IPv4 (dual stack); other addresses do not */
        if (memcmp(&s6->sin6_addr, &in6addr_any, sizeof in6addr_any) == 0)
            flags |= MHD_USE_DUAL_STACK;
    }
    if (cfg->tls_cert_path != NULL) {
        srv->tls_cert = read_file(cfg->tls_cert_path, err);
        if (srv->tls_cert == NULL)
            goto out;
        srv->tls_key = read_file(cfg->tls_key_path, err);
        if (srv->tls_key == NULL)
            goto out;
        flags |= MHD_USE_TLS;
    } else if (cfg->tls_cert_pem != NULL) {
        srv->tls_cert = strdup(cfg->tls_cert_pem);
        srv->tls_key = strdup(cfg->tls_key_pem);
        if (srv->tls_cert == NULL || srv->tls_key == NULL) {
            set_err(err, "out of memory");
            goto out;
        }
        flags |= MHD_USE_TLS;
    }

    srv->healthz = MHD_create_response_from_buffer(strlen(HEALTHZ_BODY), (void *)HEALTHZ_BODY,
                                                   MHD_RESPMEM_PERSISTENT);
    if (srv->healthz == NULL) {
        set_err(err, "out of memory");
        goto out;
    }
    MHD_add_response_header(srv->healthz, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");

    if (pthread_create(&srv->watchdog, NULL, watchdog_main, srv) != 0) {
        set_err(err, "cannot start the API watchdog thread");
        goto out;
    }
    srv->watchdog_on = true;
    {
        /* Limits (issue 16: 256 idle connections without a token used to
         * block every request): connections in all and per client address
         * (beyond either MHD accepts and closes at once), the idle timeout,
         * the header deadline (conn_notify), memory per connection (request
         * line + headers; more is a 431 or a closed connection), and a
         * listen queue that holds a burst while threads start. */
        struct MHD_OptionItem opts[] = {
            { MHD_OPTION_SOCK_ADDR, 0, &ss },
            { MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)srv->cfg.max_header, NULL },
            { MHD_OPTION_CONNECTION_LIMIT, (intptr_t)srv->cfg.max_connections, NULL },
            { MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)srv->cfg.max_conns_per_ip, NULL },
            { MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)srv->cfg.conn_timeout_s, NULL },
            { MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL },
            { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv },
            { MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)conn_notify, srv },
            { MHD_OPTION_END, 0, NULL },
            { MHD_OPTION_END, 0, NULL },
            { MHD_OPTION_END, 0, NULL },
        };
        size_t n = 8;
        if (cfg->listen_fd > 0) /* bound by the root process (privilege separation) */
            opts[0] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, cfg->listen_fd, NULL };
        if (srv->tls_cert != NULL) {
            opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert };
            opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key };
        }
        srv->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_ARRAY, opts,
                                    MHD_OPTION_END);
    }
    if (srv->mhd == NULL) {
        set_err(err,
                "cannot listen on %s port %s (address in use, bad "
                "TLS material, or no permission)",
                cfg->listen_addr ? cfg->listen_addr : API_DEFAULT_ADDR, port);
        goto out;
    }
    info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info != NULL ? info->port : cfg->port;
    *out = srv;
    srv = NULL;
    rc = 0;
out:
    if (ai != NULL)
        freeaddrinfo(ai);
    server_free(srv);
    return rc;
}

uint16_t api_server_port(const api_server *srv)
{
    return srv != NULL ? srv->port : 0;
}

void api_server_stop(api_server *srv)
{
    if (srv == NULL)
        return;
    atomic_store(&srv->stopping, true);
    server_free(srv);
}
