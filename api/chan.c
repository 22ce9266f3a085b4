/*
 * chan.c - the channel's wire format (chan.h): frame header, field writer,
 * the strict field reader, and the decoder of every request. This is the
 * one place the root process parses what the front sends; each request is
 * checked against the rules the front's JSON decoders apply (docs/api.md),
 * so a compromised front cannot hand the backend input the HTTP API would
 * have refused.
 *
 * Fields of each request, after the secret (chan_client.c writes them in
 * this order):
 *   AUTHENTICATE      -
 *   UPLOAD_BEGIN      name tag kvs(labels) digest initrd bool(initrd_upload) u64(content_length)
 *   UPLOAD_WRITE      u32(handle) bytes(1..CHAN_CHUNK_MAX)
 *   UPLOAD_COMMIT     u32(handle)
 *   UPLOAD_ABORT      u32(handle)
 *   IMAGE_LIST        name sel page
 *   IMAGE_GET         ref
 *   IMAGE_TAG         ref new_ref
 *   IMAGE_PATCH       ref firmware cmdline exit ready health u32 u32 u32 bool u32(warm_pool)
 *   IMAGE_DELETE      ref bool(force)
 *   INSTANCE_CREATE   spec (see get_spec; idle_s last)
 *   INSTANCE_LIST     sel bool(has_state) u32(state) host page
 *   INSTANCE_GET      id
 *   INSTANCE_ACTION   id u32(action) u32(timeout_s as int32)
 *   INSTANCE_DELETE   id bool(force)
 *   INSTANCE_BULK     u32(action) bool(has_selector) sel strs(ids) u32(timeout_s) bool(force)
 *   CONSOLE_OPEN      id u64(tail) bool(follow)
 *   CONSOLE_READ      u32(handle) u32(len) u32(timeout_ms)
 *   CONSOLE_CLOSE     u32(handle)
 *   HOST_LIST         page
 *   HOST_GET/DELETE   name
 *   HOST_ADD          name uri kvs(labels) u32(domain_type)
 *   HOST_CORDON       name bool(cordoned)
 *   HOST_DRAIN        name bool(dry_run)
 *   CONSOLIDATE       bool(dry_run)
 *   EVENTS_OPEN       bool(has_since) u64(since)
 *   EVENTS_NEXT       u32(handle) u32(timeout_ms)
 *   EVENTS_CLOSE      u32(handle)
 *   METRICS           -
 *   TOKEN_CREATE      name u32(scope) selector u32 u32 u32 (quotas) u64(expires_at)
 *                     u32(expires_in) u32(rate) u32(burst)
 *   TOKEN_LIST        -
 *   TOKEN_DELETE      id
 *   AUDIT             method path u32(http_status)
 *   MOVES_STOP        -
 * sel = u32 n, then n x (u32 op, key, value); page = u32 limit, after.
 */
#include "chan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec.h"

/* ---- socket ------------------------------------------------------------- */

int chan_read_full(int fd, void *buf, size_t n)
{
    unsigned char *p = buf;

    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int chan_send_full(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;

    while (n > 0) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* ---- header ------------------------------------------------------------- */

void chan_hdr_put(unsigned char out[CHAN_HDR_LEN], const chan_hdr *h)
{
    uint32_t zero = 0;

    memcpy(out, &h->len, 4);
    memcpy(out + 4, &h->type, 2);
    memcpy(out + 6, &h->flags, 2);
    memcpy(out + 8, &h->id, 4);
    memcpy(out + 12, &zero, 4);
}

int chan_hdr_get(const unsigned char in[CHAN_HDR_LEN], uint32_t max, chan_hdr *h)
{
    uint32_t zero;

    memcpy(&h->len, in, 4);
    memcpy(&h->type, in + 4, 2);
    memcpy(&h->flags, in + 6, 2);
    memcpy(&h->id, in + 8, 4);
    memcpy(&zero, in + 12, 4);
    return h->flags == 0 && zero == 0 && h->len <= max ? 0 : -1;
}

/* ---- writer ------------------------------------------------------------- */

void chan_w_init(chan_w *w)
{
    memset(w, 0, sizeof *w);
    w->len = CHAN_HDR_LEN;
}

void chan_w_free(chan_w *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}

static void w_raw(chan_w *w, const void *p, size_t n);

void chan_w_next(chan_w *w)
{
    static const unsigned char room[CHAN_HDR_LEN];

    w->oom = false;
    w->len = w->done;
    w->start = w->done;
    w_raw(w, room, sizeof room);
}

void chan_w_reset(chan_w *w)
{
    w->done = 0;
    chan_w_next(w);
}

static void w_raw(chan_w *w, const void *p, size_t n)
{
    if (w->oom)
        return;
    if (w->cap - w->len < n || w->buf == NULL) {
        size_t cap = w->cap ? w->cap : 256;
        unsigned char *nb;
        while (cap - w->len < n) {
            if (cap > (SIZE_MAX >> 2)) {
                w->oom = true;
                return;
            }
            cap *= 2;
        }
        nb = realloc(w->buf, cap);
        if (nb == NULL) {
            w->oom = true;
            return;
        }
        w->buf = nb;
        w->cap = cap;
    }
    if (n > 0)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void w_field(chan_w *w, const void *p, size_t n, const void *tail, size_t tn)
{
    uint32_t l = (uint32_t)(n + tn);

    if (n + tn > UINT32_MAX) {
        w->oom = true;
        return;
    }
    w_raw(w, &l, 4);
    w_raw(w, p, n);
    w_raw(w, tail, tn);
}

void chan_w_u32(chan_w *w, uint32_t v)
{
    w_field(w, &v, 4, NULL, 0);
}

void chan_w_u64(chan_w *w, uint64_t v)
{
    w_field(w, &v, 8, NULL, 0);
}

void chan_w_bool(chan_w *w, bool v)
{
    unsigned char b = v ? 1 : 0;
    w_field(w, &b, 1, NULL, 0);
}

void chan_w_str(chan_w *w, const char *s)
{
    if (s == NULL)
        w_field(w, NULL, 0, NULL, 0);
    else
        w_field(w, s, strlen(s), "", 1);
}

void chan_w_bytes(chan_w *w, const void *p, size_t n)
{
    w_field(w, p, n, NULL, 0);
}

int chan_w_finish(chan_w *w, uint16_t type, uint32_t id, uint32_t max)
{
    chan_hdr h = { 0 };

    if (w->buf == NULL)
        w_raw(w, NULL, 0);
    if (w->oom || w->buf == NULL || w->len - w->start - CHAN_HDR_LEN > max)
        return -1;
    h.len = (uint32_t)(w->len - w->start - CHAN_HDR_LEN);
    h.type = type;
    h.id = id;
    chan_hdr_put(w->buf + w->start, &h);
    w->done = w->len;
    return 0;
}

/* ---- reader ------------------------------------------------------------- */

void chan_r_init(chan_r *r, const void *payload, size_t len)
{
    r->p = payload;
    r->left = payload != NULL ? len : 0;
    r->bad = false;
}

/* The next field's bytes, or NULL (reader marked bad) when it does not fit. */
static const unsigned char *r_field(chan_r *r, uint32_t *n)
{
    const unsigned char *p;

    if (r->bad || r->left < 4) {
        r->bad = true;
        return NULL;
    }
    memcpy(n, r->p, 4);
    if (*n > r->left - 4) {
        r->bad = true;
        return NULL;
    }
    p = r->p + 4;
    r->p += 4 + *n;
    r->left -= 4 + (size_t)*n;
    return p;
}

/* A field of exactly want bytes. */
static const unsigned char *r_fixed(chan_r *r, uint32_t want)
{
    uint32_t n;
    const unsigned char *p = r_field(r, &n);

    if (p == NULL || n != want) {
        r->bad = true;
        return NULL;
    }
    return p;
}

uint32_t chan_r_u32(chan_r *r)
{
    const unsigned char *p = r_fixed(r, 4);
    uint32_t v = 0;

    if (p != NULL)
        memcpy(&v, p, 4);
    return v;
}

uint64_t chan_r_u64(chan_r *r)
{
    const unsigned char *p = r_fixed(r, 8);
    uint64_t v = 0;

    if (p != NULL)
        memcpy(&v, p, 8);
    return v;
}

bool chan_r_bool(chan_r *r)
{
    const unsigned char *p = r_fixed(r, 1);

    if (p == NULL)
        return false;
    if (*p > 1) {
        r->bad = true;
        return false;
    }
    return *p == 1;
}

const char *chan_r_str(chan_r *r, size_t max, bool nullable)
{
    uint32_t n;
    const unsigned char *p = r_field(r, &n);

    if (p == NULL)
        return NULL;
    if (n == 0) {
        if (!nullable)
            r->bad = true;
        return NULL;
    }
    /* the bytes, then exactly one NUL, the last byte */
    if (n - 1 > max || p[n - 1] != '\0' || memchr(p, '\0', n - 1) != NULL) {
        r->bad = true;
        return NULL;
    }
    return (const char *)p;
}

const void *chan_r_bytes(chan_r *r, size_t max, size_t *n)
{
    uint32_t l;
    const unsigned char *p = r_field(r, &l);

    *n = 0;
    if (p == NULL)
        return NULL;
    if (l > max) {
        r->bad = true;
        return NULL;
    }
    *n = l;
    return p;
}

bool chan_r_done(const chan_r *r)
{
    return !r->bad && r->left == 0;
}

/* ---- request decoding ---------------------------------------------------- */

/* Decoding context: the reader, and the first reason a field was refused. */
typedef struct dec {
    chan_r r;
    char *why;
    size_t whylen;
    bool failed;
    bool value; /* the first refusal was of a value, the reader was fine */
} dec;

static bool refuse(dec *d, const char *what)
{
    if (!d->failed) {
        snprintf(d->why, d->whylen, "%s", what);
        d->value = !d->r.bad;
    }
    d->failed = true;
    d->r.bad = true;
    return false;
}

/* Every read goes through these: a reader failure names the field. */
static const char *get_str(dec *d, const char *what, size_t max, bool nullable)
{
    const char *s = chan_r_str(&d->r, max, nullable);
    if (d->r.bad)
        refuse(d, what);
    return s;
}

static uint32_t get_u32(dec *d, const char *what, uint32_t lo, uint32_t hi)
{
    uint32_t v = chan_r_u32(&d->r);
    if (d->r.bad || v < lo || v > hi)
        refuse(d, what);
    return v;
}

static bool get_bool(dec *d, const char *what)
{
    bool v = chan_r_bool(&d->r);
    if (d->r.bad)
        refuse(d, what);
    return v;
}

static uint64_t get_u64(dec *d, const char *what)
{
    uint64_t v = chan_r_u64(&d->r);
    if (d->r.bad)
        refuse(d, what);
    return v;
}

static bool text_ok(const char *s, size_t max)
{
    size_t n;
    if (s == NULL)
        return true;
    n = strlen(s);
    return n <= max && api_valid_text(s, n);
}

/* Optional (NULL) or required text of at most max bytes. */
static const char *get_text(dec *d, const char *what, size_t max, bool nullable)
{
    const char *s = get_str(d, what, max, nullable);
    if (!d->failed && !text_ok(s, max))
        refuse(d, what);
    return s;
}

static const char *get_name(dec *d, const char *what, bool nullable)
{
    const char *s = get_str(d, what, API_NAME_MAX, nullable);
    if (!d->failed && s != NULL && !api_valid_name(s))
        refuse(d, what);
    return s;
}

static const char *get_image_ref(dec *d)
{
    const char *s = get_str(d, "ref", API_REF_MAX, false);
    if (!d->failed && !api_valid_image_ref(s))
        refuse(d, "ref");
    return s;
}

static const char *get_instance_ref(dec *d)
{
    const char *s = get_str(d, "id", API_ID_MAX, false);
    if (!d->failed && !api_valid_instance_ref(s))
        refuse(d, "id");
    return s;
}

static const char *get_digest(dec *d, const char *what)
{
    const char *s = get_str(d, what, API_REF_MAX, true);
    if (!d->failed && s != NULL && !api_valid_digest(s, true))
        refuse(d, what);
    return s;
}

/* kvs: labels (label rules) or env (env rules); keys unique. */
static api_kv *get_kvs(dec *d, const char *what, bool env, size_t *n)
{
    size_t max = env ? API_ENV_MAX : API_LABELS_MAX;
    api_kv *a;
    uint32_t cnt = get_u32(d, what, 0, (uint32_t)max);

    *n = 0;
    if (d->failed)
        return NULL;
    a = calloc(cnt + 1, sizeof *a);
    if (a == NULL) {
        refuse(d, "out of memory");
        return NULL;
    }
    for (uint32_t i = 0; i < cnt && !d->failed; i++) {
        a[i].key = get_str(d, what, env ? API_ENV_KEY_MAX : API_LABEL_KEY_MAX, false);
        a[i].value = get_str(d, what, env ? API_ENV_VALUE_MAX : API_LABEL_VALUE_MAX, false);
        if (d->failed)
            break;
        if (env ? !api_valid_env_key(a[i].key) || !text_ok(a[i].value, API_ENV_VALUE_MAX)
                : !api_valid_label_key(a[i].key) || !api_valid_label_value(a[i].value))
            refuse(d, what);
        for (uint32_t j = 0; j < i && !d->failed; j++) {
            if (strcmp(a[j].key, a[i].key) == 0)
                refuse(d, what);
        }
    }
    *n = cnt;
    return a;
}

static void get_sel(dec *d, api_selector *sel)
{
    uint32_t n = get_u32(d, "selector", 0, API_SELECTOR_TERMS_MAX);

    memset(sel, 0, sizeof *sel);
    for (uint32_t i = 0; i < n && !d->failed; i++) {
        api_sel_term *t = &sel->terms[i];
        const char *k, *v;
        t->op = (api_sel_op)get_u32(d, "selector", API_SEL_EQ, API_SEL_LACKS);
        k = get_str(d, "selector", API_LABEL_KEY_MAX, false);
        v = get_str(d, "selector", API_LABEL_VALUE_MAX, false);
        if (d->failed)
            break;
        if (!api_valid_label_key(k) || !api_valid_label_value(v) ||
            ((t->op == API_SEL_HAS || t->op == API_SEL_LACKS) && v[0] != '\0')) {
            refuse(d, "selector");
            break;
        }
        snprintf(t->key, sizeof t->key, "%s", k);
        snprintf(t->value, sizeof t->value, "%s", v);
    }
    sel->n = d->failed ? 0 : n;
}

static void get_page(dec *d, api_page *p)
{
    p->limit = get_u32(d, "limit", 1, API_LIST_LIMIT_MAX);
    p->after = get_str(d, "after", API_CURSOR_MAX, true);
    if (!d->failed && p->after != NULL && !api_valid_cursor(p->after))
        refuse(d, "after");
}

static void get_spec(dec *d, chan_call *c)
{
    api_instance_spec *s = &c->spec;
    uint32_t n;

    s->image = get_str(d, "image", API_REF_MAX, false);
    if (!d->failed && !api_valid_image_ref(s->image))
        refuse(d, "image");
    s->name = get_name(d, "name", true);
    s->count = get_u32(d, "count", 1, API_COUNT_MAX);
    s->memory_mib = get_u32(d, "memory_mib", API_MEMORY_MIB_MIN, API_MEMORY_MIB_MAX);
    s->vcpus = get_u32(d, "vcpus", 1, API_VCPUS_MAX);
    if (!d->failed && s->name != NULL && api_check_instance_name(s->name, s->count, NULL) != API_OK)
        refuse(d, "name");
    n = get_u32(d, "args", 0, API_ARGS_MAX);
    if (!d->failed) {
        c->strs = calloc(n + 1, sizeof *c->strs);
        if (c->strs == NULL)
            refuse(d, "out of memory");
    }
    for (uint32_t i = 0; i < n && !d->failed; i++)
        c->strs[i] = get_text(d, "args", API_ARG_MAX, false);
    s->args = c->strs;
    s->n_args = n;
    c->kv_a = get_kvs(d, "env", true, &s->n_env);
    s->env = c->kv_a;
    c->kv_b = get_kvs(d, "labels", false, &s->n_labels);
    s->labels = c->kv_b;
    s->restart = (api_restart)get_u32(d, "restart", API_RESTART_NEVER, API_RESTART_ALWAYS);
    s->host = get_name(d, "host", true);
    s->network = get_bool(d, "network");
    n = get_u32(d, "ports", 0, API_PORTS_MAX);
    if (!d->failed && n > 0 && s->count != 1)
        refuse(d, "ports");
    if (!d->failed) {
        c->ports = calloc(n + 1, sizeof *c->ports);
        if (c->ports == NULL)
            refuse(d, "out of memory");
    }
    for (uint32_t i = 0; i < n && !d->failed; i++) {
        c->ports[i].host = (uint16_t)get_u32(d, "ports", 1, 65535);
        c->ports[i].guest = (uint16_t)get_u32(d, "ports", 1, 65535);
        c->ports[i].protocol = (api_proto)get_u32(d, "ports", API_PROTO_TCP, API_PROTO_UDP);
    }
    s->ports = c->ports;
    s->n_ports = n;
    s->spread = get_bool(d, "placement");
    n = get_u32(d, "rules", 0, API_RULES_MAX);
    if (!d->failed) {
        c->rules = calloc(n + 1, sizeof *c->rules);
        if (c->rules == NULL)
            refuse(d, "out of memory");
    }
    for (uint32_t i = 0; i < n && !d->failed; i++) {
        api_rule *r = &c->rules[i];
        r->kind =
            (api_rule_kind)get_u32(d, "rules", API_RULE_HOST_AFFINITY, API_RULE_ANTI_AFFINITY);
        r->key = get_str(d, "rules", API_LABEL_KEY_MAX, false);
        r->value = get_str(d, "rules", API_LABEL_VALUE_MAX, true);
        r->soft = get_bool(d, "rules");
        r->weight = get_u32(d, "rules", 0, 1000);
        if (!d->failed &&
            (!api_valid_label_key(r->key) || (r->value && !api_valid_label_value(r->value))))
            refuse(d, "rules");
    }
    s->rules = c->rules;
    s->n_rules = n;
    s->ready = get_text(d, "ready", API_PROBE_MAX, true);
    s->health_probe = get_text(d, "health.probe", API_PROBE_MAX, true);
    s->health_interval_s = get_u32(d, "health.interval_s", 0, API_HEALTH_INTERVAL_MAX);
    s->health_timeout_s = get_u32(d, "health.timeout_s", 0, API_HEALTH_TIMEOUT_MAX);
    s->health_retries = get_u32(d, "health.retries", 0, API_HEALTH_RETRIES_MAX);
    s->cmdline = get_text(d, "cmdline", API_CMDLINE_MAX, true);
    s->initrd = get_digest(d, "initrd");
    s->idle_s = get_u32(d, "scale_to_zero.idle_s", 0, API_IDLE_S_MAX);
}

static void get_patch(dec *d, api_image_patch *p)
{
    p->firmware = get_text(d, "firmware", API_NAME_MAX, true);
    p->cmdline = get_text(d, "cmdline", API_CMDLINE_MAX, true);
    p->exit = get_text(d, "exit", API_NAME_MAX, true);
    p->ready = get_text(d, "ready", API_PROBE_MAX, true);
    p->health_probe = get_text(d, "health.probe", API_PROBE_MAX, true);
    p->health_interval_s = get_u32(d, "health.interval_s", 0, API_HEALTH_INTERVAL_MAX);
    p->health_timeout_s = get_u32(d, "health.timeout_s", 0, API_HEALTH_TIMEOUT_MAX);
    p->health_retries = get_u32(d, "health.retries", 0, API_HEALTH_RETRIES_MAX);
    p->warm_pool_set = get_bool(d, "warm_pool");
    p->warm_pool = get_u32(d, "warm_pool", 0, UINT32_MAX);
}

/* The request structs travel field by field: a field added to one of them
 * must be written in chan_client.c and read here, then its size below
 * updated (x86_64). */
_Static_assert(sizeof(api_image_patch) == 72, "chan: forward the new api_image_patch field");
_Static_assert(sizeof(api_instance_spec) == 208, "chan: forward the new api_instance_spec field");
_Static_assert(sizeof(api_host_spec) == 48, "chan: forward the new api_host_spec field");
_Static_assert(sizeof(api_upload_req) == 248, "chan: forward the new api_upload_req field");
_Static_assert(sizeof(api_bulk_req) == 40, "chan: forward the new api_bulk_req field");
_Static_assert(sizeof(api_token_spec) == 624, "chan: forward the new api_token_spec field");
_Static_assert(sizeof(api_instance_filter) == 24, "chan: forward the new filter field");

static void get_bulk(dec *d, chan_call *c)
{
    api_bulk_req *b = &c->bulk;
    bool has_sel;
    uint32_t n;

    c->u32 = get_u32(d, "action", API_ACTION_STOP, API_ACTION_DELETE);
    has_sel = get_bool(d, "selector");
    get_sel(d, &c->sel);
    n = get_u32(d, "ids", 0, API_BULK_IDS_MAX);
    if (!d->failed) {
        c->strs = calloc(n + 1, sizeof *c->strs);
        if (c->strs == NULL)
            refuse(d, "out of memory");
    }
    for (uint32_t i = 0; i < n && !d->failed; i++) {
        c->strs[i] = get_text(d, "ids", API_ID_MAX, false);
        if (!d->failed && c->strs[i][0] == '\0')
            refuse(d, "ids");
    }
    b->timeout_s = (int)(int32_t)get_u32(d, "timeout_s", 0, UINT32_MAX);
    b->force = get_bool(d, "force");
    if (d->failed)
        return;
    /* exactly one of a selector of >= 1 term or 1.. ids */
    if (has_sel ? c->sel.n == 0 || n != 0 : n == 0 || c->sel.n != 0)
        refuse(d, "selector");
    if (b->timeout_s < -1 || b->timeout_s > API_STOP_TIMEOUT_MAX)
        refuse(d, "timeout_s");
    b->selector = has_sel ? &c->sel : NULL;
    b->ids = has_sel ? NULL : c->strs;
    b->n_ids = has_sel ? 0 : n;
}

static void get_host(dec *d, chan_call *c)
{
    c->host.name = get_name(d, "name", false);
    c->host.uri = get_text(d, "uri", API_URI_MAX, false);
    if (!d->failed && c->host.uri[0] == '\0')
        refuse(d, "uri");
    c->kv_a = get_kvs(d, "labels", false, &c->host.n_labels);
    c->host.labels = c->kv_a;
    c->host.domain_type =
        (api_domain_type)get_u32(d, "domain_type", API_DOMAIN_AUTO, API_DOMAIN_QEMU);
}

static void get_token(dec *d, chan_call *c)
{
    api_token_spec *t = &c->token;
    const char *name = get_name(d, "name", false);
    const char *sel;
    api_selector tmp;

    t->scope = (api_scope)get_u32(d, "scope", API_SCOPE_READ_ONLY, API_SCOPE_ADMIN);
    sel = get_str(d, "selector", API_SELECTOR_TEXT_MAX, false);
    t->max_instances = get_u32(d, "quotas", 0, UINT32_MAX);
    t->max_memory_mib = get_u32(d, "quotas", 0, UINT32_MAX);
    t->max_vcpus = get_u32(d, "quotas", 0, UINT32_MAX);
    t->expires_at = (int64_t)get_u64(d, "expires_at");
    t->expires_in = get_u32(d, "expires_in", 0, UINT32_MAX);
    t->rate = get_u32(d, "rate", 0, UINT32_MAX);
    t->burst = get_u32(d, "burst", 0, UINT32_MAX);
    if (!d->failed && (t->expires_at < 0 || (t->expires_at != 0 && t->expires_in != 0) ||
                       (t->burst != 0 && t->rate == 0)))
        refuse(d, "expires");
    if (d->failed)
        return;
    if (sel[0] != '\0' && api_selector_parse(sel, &tmp, NULL) != API_OK)
        refuse(d, "selector");
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->selector, sizeof t->selector, "%s", sel);
}

static void get_upload(dec *d, chan_call *c)
{
    api_upload_req *u = &c->upload;
    const char *name = get_str(d, "name", API_NAME_MAX, false);
    const char *tag = get_str(d, "tag", API_TAG_MAX, false);

    c->kv_a = get_kvs(d, "labels", false, &u->n_labels);
    u->labels = c->kv_a;
    u->digest = get_digest(d, "digest");
    u->initrd = get_digest(d, "initrd");
    u->initrd_upload = get_bool(d, "initrd_upload");
    u->content_length = get_u64(d, "content_length");
    if (d->failed)
        return;
    /* an image has a valid name and tag; an initrd neither */
    if (u->initrd_upload ? name[0] != '\0' || tag[0] != '\0'
                         : !api_valid_name(name) || !api_valid_tag(tag))
        refuse(d, "ref");
    snprintf(u->name, sizeof u->name, "%s", name);
    snprintf(u->tag, sizeof u->tag, "%s", tag);
}

static void get_args(dec *d, chan_call *c)
{
    char n[API_NAME_MAX + 1], t[API_TAG_MAX + 1];

    switch (c->type) {
    case CHAN_T_AUTHENTICATE:
    case CHAN_T_METRICS:
    case CHAN_T_MOVES_STOP:
    case CHAN_T_TOKEN_LIST: break;
    case CHAN_T_UPLOAD_BEGIN: get_upload(d, c); break;
    case CHAN_T_UPLOAD_WRITE:
        c->handle = get_u32(d, "handle", 0, UINT32_MAX);
        c->data = chan_r_bytes(&d->r, CHAN_CHUNK_MAX, &c->data_len);
        if (d->r.bad || c->data_len == 0)
            refuse(d, "data");
        break;
    case CHAN_T_UPLOAD_COMMIT:
    case CHAN_T_UPLOAD_ABORT:
    case CHAN_T_CONSOLE_CLOSE:
    case CHAN_T_EVENTS_CLOSE: c->handle = get_u32(d, "handle", 0, UINT32_MAX); break;
    case CHAN_T_IMAGE_LIST:
        c->s1 = get_name(d, "name", true);
        get_sel(d, &c->sel);
        get_page(d, &c->page);
        c->ifilter.name = c->s1;
        c->ifilter.selector = &c->sel;
        break;
    case CHAN_T_IMAGE_GET: c->s1 = get_image_ref(d); break;
    case CHAN_T_IMAGE_TAG:
        c->s1 = get_image_ref(d);
        c->s2 = get_str(d, "ref", API_REF_MAX, false);
        if (!d->failed && api_parse_new_ref(c->s2, "ref", n, t, NULL) != API_OK)
            refuse(d, "new ref");
        break;
    case CHAN_T_IMAGE_PATCH:
        c->s1 = get_image_ref(d);
        get_patch(d, &c->patch);
        break;
    case CHAN_T_IMAGE_DELETE:
        c->s1 = get_image_ref(d);
        c->flag = get_bool(d, "force");
        break;
    case CHAN_T_INSTANCE_CREATE: get_spec(d, c); break;
    case CHAN_T_INSTANCE_LIST:
        get_sel(d, &c->sel);
        c->filter.selector = &c->sel;
        c->filter.has_state = get_bool(d, "state");
        c->filter.state = (api_instance_state)get_u32(d, "state", 0, API_STATE_COUNT_ - 1);
        c->filter.host = get_name(d, "host", true);
        get_page(d, &c->page);
        break;
    case CHAN_T_INSTANCE_GET: c->s1 = get_instance_ref(d); break;
    case CHAN_T_INSTANCE_ACTION:
        c->s1 = get_instance_ref(d);
        c->u32 = get_u32(d, "action", API_ACTION_STOP, API_ACTION_RESTART);
        c->i32 = (int32_t)get_u32(d, "timeout_s", 0, UINT32_MAX);
        if (!d->failed && (c->i32 < -1 || c->i32 > API_STOP_TIMEOUT_MAX))
            refuse(d, "timeout_s");
        break;
    case CHAN_T_INSTANCE_DELETE:
        c->s1 = get_instance_ref(d);
        c->flag = get_bool(d, "force");
        break;
    case CHAN_T_INSTANCE_BULK: get_bulk(d, c); break;
    case CHAN_T_CONSOLE_OPEN:
        c->s1 = get_instance_ref(d);
        c->u64 = get_u64(d, "tail");
        c->flag = get_bool(d, "follow");
        break;
    case CHAN_T_CONSOLE_READ:
        c->handle = get_u32(d, "handle", 0, UINT32_MAX);
        c->u32 = get_u32(d, "len", 1, CHAN_CHUNK_MAX);
        c->i32 = (int32_t)get_u32(d, "timeout_ms", 0, 1000);
        break;
    case CHAN_T_HOST_LIST: get_page(d, &c->page); break;
    case CHAN_T_HOST_GET:
    case CHAN_T_HOST_DELETE: c->s1 = get_name(d, "name", false); break;
    case CHAN_T_HOST_ADD: get_host(d, c); break;
    case CHAN_T_HOST_CORDON:
    case CHAN_T_HOST_DRAIN:
        c->s1 = get_name(d, "name", false);
        c->flag = get_bool(d, "flag");
        break;
    case CHAN_T_CONSOLIDATE: c->flag = get_bool(d, "dry_run"); break;
    case CHAN_T_EVENTS_OPEN:
        c->flag = get_bool(d, "has_since");
        c->u64 = get_u64(d, "since");
        break;
    case CHAN_T_EVENTS_NEXT:
        c->handle = get_u32(d, "handle", 0, UINT32_MAX);
        c->i32 = (int32_t)get_u32(d, "timeout_ms", 0, 1000);
        break;
    case CHAN_T_TOKEN_CREATE: get_token(d, c); break;
    case CHAN_T_TOKEN_DELETE: c->s1 = get_name(d, "id", false); break;
    case CHAN_T_AUDIT:
        c->s2 = get_text(d, "method", 7, false);
        c->s3 = get_text(d, "path", API_EVENT_STR_MAX - 1, false);
        c->u32 = get_u32(d, "http_status", 100, 599);
        break;
    default: refuse(d, "unknown call type"); break;
    }
}

int chan_call_decode(uint16_t type, const void *payload, size_t len, chan_call *c, char *why,
                     size_t whylen)
{
    dec d = { .why = why, .whylen = whylen };

    memset(c, 0, sizeof *c);
    if (whylen > 0)
        why[0] = '\0';
    if (type < CHAN_T_AUTHENTICATE || type >= CHAN_T__COUNT || len > CHAN_REQ_MAX) {
        snprintf(why, whylen, "call type %u or length %zu refused", type, len);
        return -1;
    }
    c->type = (chan_type)type;
    chan_r_init(&d.r, payload, len);
    c->secret = get_str(&d, "secret", API_TOKEN_SECRET_MAX, false);
    if (!d.failed && c->secret[0] == '\0')
        refuse(&d, "secret");
    get_args(&d, c);
    if (!d.failed && !chan_r_done(&d.r)) {
        refuse(&d, "trailing bytes");
        d.value = false; /* framing, though the reader read well */
    }
    if (d.failed) {
        char field[64];
        snprintf(field, sizeof field, "%s", why);
        snprintf(why, whylen, "call %u: field '%s' refused", type, field);
        chan_call_clear(c);
        return d.value ? CHAN_E_VALUE : -1;
    }
    return 0;
}

void chan_call_clear(chan_call *c)
{
    free(c->kv_a);
    free(c->kv_b);
    free(c->strs);
    free(c->ports);
    free(c->rules);
    memset(c, 0, sizeof *c);
}

api_scope chan_call_scope(chan_type t)
{
    switch (t) {
    case CHAN_T_AUTHENTICATE:
    case CHAN_T_AUDIT:
    case CHAN_T_IMAGE_LIST:
    case CHAN_T_IMAGE_GET:
    case CHAN_T_INSTANCE_LIST:
    case CHAN_T_INSTANCE_GET:
    case CHAN_T_CONSOLE_OPEN:
    case CHAN_T_CONSOLE_READ:
    case CHAN_T_CONSOLE_CLOSE:
    case CHAN_T_HOST_LIST:
    case CHAN_T_HOST_GET:
    case CHAN_T_EVENTS_OPEN:
    case CHAN_T_EVENTS_NEXT:
    case CHAN_T_EVENTS_CLOSE:
    case CHAN_T_METRICS: return API_SCOPE_READ_ONLY;
    case CHAN_T_HOST_ADD:
    case CHAN_T_HOST_CORDON:
    case CHAN_T_HOST_DRAIN:
    case CHAN_T_HOST_DELETE:
    case CHAN_T_CONSOLIDATE:
    case CHAN_T_MOVES_STOP:
    case CHAN_T_TOKEN_CREATE:
    case CHAN_T_TOKEN_LIST:
    case CHAN_T_TOKEN_DELETE: return API_SCOPE_ADMIN;
    default: return API_SCOPE_OPERATOR;
    }
}

/* ---- reply -------------------------------------------------------------- */

void chan_done_put(chan_w *w, const api_status *st, const char *cursor, uint32_t handle,
                   int64_t value, const void *blob, size_t blob_len)
{
    chan_w_u32(w, (uint32_t)st->code);
    chan_w_str(w, st->message);
    chan_w_str(w, st->field);
    chan_w_str(w, cursor);
    chan_w_u32(w, handle);
    chan_w_u64(w, (uint64_t)value);
    chan_w_bytes(w, blob, blob_len);
    chan_w_u32(w, st->retry_after_s);
}

int chan_done_get(const void *payload, size_t len, chan_done *d)
{
    chan_r r;

    chan_r_init(&r, payload, len);
    d->code = (api_code)chan_r_u32(&r);
    d->message = chan_r_str(&r, API_MSG_MAX, false);
    d->field = chan_r_str(&r, API_FIELD_MAX, false);
    d->cursor = chan_r_str(&r, API_CURSOR_MAX, true);
    d->handle = chan_r_u32(&r);
    d->value = (int64_t)chan_r_u64(&r);
    d->blob = chan_r_bytes(&r, CHAN_REP_MAX, &d->blob_len);
    d->retry_after_s = chan_r_u32(&r);
    if (!chan_r_done(&r) || (unsigned)d->code >= API_CODE_COUNT_)
        return -1;
    return 0;
}
