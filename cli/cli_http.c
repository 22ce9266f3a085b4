/* cli_http.c: libcurl-backed HTTP client for the CLI. */
#include "cli_http.h"
#include "cli_args.h"
#include "cli_util.h"

#include <curl/curl.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLI_USER_AGENT         "shoal-cli/0.1"
#define CLI_CONNECT_TIMEOUT_MS 5000L

struct cli_http {
    CURL *easy;      /* reused for every request: keeps the connection */
    char auth[4200]; /* "Authorization: Bearer ..." or "" */
};

void cli_http_free(cli_http *h)
{
    if (!h)
        return;
    if (h->easy)
        curl_easy_cleanup(h->easy);
    free(h);
    curl_global_cleanup();
}

static cli_http *http_get(cli_ctx *ctx)
{
    if (ctx->http)
        return ctx->http;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        cli_err("cannot initialise libcurl");
        return NULL;
    }
    cli_http *h = calloc(1, sizeof *h);
    if (!h) {
        curl_global_cleanup();
        return NULL;
    }
    h->easy = curl_easy_init();
    if (!h->easy) {
        cli_err("cannot initialise libcurl");
        free(h);
        curl_global_cleanup();
        return NULL;
    }
    if (ctx->token && *ctx->token)
        snprintf(h->auth, sizeof h->auth, "Authorization: Bearer %s", ctx->token);
    ctx->http = h;
    return h;
}

/* Common options for one request on a (reset) easy handle. */
static struct curl_slist *setup(cli_ctx *ctx, const char *auth, CURL *e, const char *method,
                                const char *path, const char *content_type, cli_buf *url)
{
    struct curl_slist *hdrs = NULL, *tmp;
    cli_buf_puts(url, ctx->url);
    cli_buf_puts(url, path);
    curl_easy_setopt(e, CURLOPT_URL, cli_buf_str(url));
    curl_easy_setopt(e, CURLOPT_USERAGENT, CLI_USER_AGENT);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, CLI_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (auth[0] && (tmp = curl_slist_append(hdrs, auth)))
        hdrs = tmp;
    if (content_type && (tmp = curl_slist_append(hdrs, content_type)))
        hdrs = tmp;
    if ((tmp = curl_slist_append(hdrs, "Expect:")))
        hdrs = tmp;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    return hdrs;
}

static size_t collect_cb(char *p, size_t sz, size_t n, void *arg)
{
    cli_buf *b = arg;
    return cli_buf_append(b, p, sz * n) < 0 ? 0 : sz * n;
}

static int transport_error(cli_ctx *ctx, CURLcode cc, const char *errbuf, char *out, size_t outlen)
{
    char msg[1024];
    int st = CLI_EUNREACHABLE;
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_URL_MALFORMAT: break;
    default: st = CLI_EFAIL;
    }
    snprintf(msg, sizeof msg, "cannot reach shoald at %s: %s", ctx->url,
             errbuf && *errbuf ? errbuf : curl_easy_strerror(cc));
    if (out)
        snprintf(out, outlen, "%s", msg);
    else
        cli_err("%s", msg);
    return st;
}

static int http_error(long status, const cli_buf *body, char *out, size_t outlen)
{
    char msg[1024];
    const char *code = NULL;
    json_t *root = body->len ? json_loadb(body->data, body->len, 0, NULL) : NULL;
    code = json_string_value(json_object_get(json_object_get(root, "error"), "code"));
    int st = cli_status_from_http(status, code);
    json_decref(root);
    cli_error_message(status, body->data, body->len, msg, sizeof msg);
    if (out)
        snprintf(out, outlen, "%s", msg);
    else
        cli_err("%s", msg);
    return st == CLI_OK ? CLI_EFAIL : st;
}

/* One request; on 2xx the body is left in *resp. */
static int http_request(cli_ctx *ctx, const char *method, const char *path, json_t *body,
                        cli_buf *resp, char *errbuf, size_t errlen)
{
    int rc = CLI_EFAIL;
    cli_buf url = { 0 };
    char *req = NULL;
    struct curl_slist *hdrs = NULL;
    char cerr[CURL_ERROR_SIZE] = "";
    cli_http *h = http_get(ctx);
    if (!h)
        goto out;
    CURL *e = h->easy;
    curl_easy_reset(e);
    hdrs =
        setup(ctx, h->auth, e, method, path, body ? "Content-Type: application/json" : NULL, &url);
    if (body) {
        req = json_dumps(body, JSON_COMPACT);
        if (!req)
            goto out;
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(req));
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, cerr);
    CURLcode cc = curl_easy_perform(e);
    if (cc != CURLE_OK) {
        rc = transport_error(ctx, cc, cerr, errbuf, errlen);
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300) {
        rc = http_error(status, resp, errbuf, errlen);
        goto out;
    }
    rc = CLI_OK;
out:
    curl_slist_free_all(hdrs);
    free(req);
    cli_buf_free(&url);
    return rc;
}

int cli_http_raw(cli_ctx *ctx, const char *method, const char *path, json_t *body, cli_buf *resp)
{
    return http_request(ctx, method, path, body, resp, NULL, 0);
}

int cli_http_json_quiet(cli_ctx *ctx, const char *method, const char *path, json_t *body,
                        json_t **out, char *errbuf, size_t errlen)
{
    cli_buf resp = { 0 };
    if (out)
        *out = NULL;
    int rc = http_request(ctx, method, path, body, &resp, errbuf, errlen);
    if (rc == CLI_OK && out && resp.len) {
        json_error_t jerr;
        *out = json_loadb(resp.data, resp.len, 0, &jerr);
        if (!*out) {
            char m[512];
            snprintf(m, sizeof m, "the server sent invalid JSON: %s", jerr.text);
            if (errbuf)
                snprintf(errbuf, errlen, "%s", m);
            else
                cli_err("%s", m);
            rc = CLI_EFAIL;
        }
    }
    cli_buf_free(&resp);
    return rc;
}

int cli_http_json(cli_ctx *ctx, const char *method, const char *path, json_t *body, json_t **out)
{
    return cli_http_json_quiet(ctx, method, path, body, out, NULL, 0);
}

int cli_http_list(cli_ctx *ctx, const char *path, json_t **items)
{
    int rc = CLI_EFAIL;
    json_t *all = json_array(), *page = NULL;
    char *cursor = NULL;
    cli_buf p = { 0 };
    *items = NULL;
    if (!all)
        goto out;
    for (;;) {
        p.len = 0;
        cli_buf_puts(&p, path);
        if (cursor) {
            cli_buf_puts(&p, strchr(path, '?') ? "&after=" : "?after=");
            cli_buf_escape(&p, cursor);
        }
        rc = cli_http_json(ctx, "GET", cli_buf_str(&p), NULL, &page);
        if (rc != CLI_OK)
            goto out;
        json_t *arr = json_object_get(page, "items");
        if (!json_is_array(arr)) {
            cli_err("the server sent a list without 'items'");
            rc = CLI_EFAIL;
            goto out;
        }
        json_array_extend(all, arr);
        const char *next = json_string_value(json_object_get(page, "next"));
        free(cursor);
        cursor = next && *next && json_array_size(arr) ? strdup(next) : NULL;
        json_decref(page);
        page = NULL;
        if (!cursor)
            break;
    }
    *items = all;
    all = NULL;
    rc = CLI_OK;
out:
    json_decref(page);
    json_decref(all);
    free(cursor);
    cli_buf_free(&p);
    return rc;
}

int cli_http_list_jv(cli_ctx *ctx, const char *path, cli_jv_doc *doc, cli_jv *items)
{
    int rc = CLI_EFAIL;
    cli_buf p = { 0 }, body = { 0 };
    const cli_jv **all = NULL;
    size_t n = 0, cap = 0;
    const char *cursor = NULL;
    memset(items, 0, sizeof *items);
    for (;;) {
        p.len = 0;
        body.len = 0;
        cli_buf_puts(&p, path);
        if (cursor) {
            cli_buf_puts(&p, strchr(path, '?') ? "&after=" : "?after=");
            cli_buf_escape(&p, cursor);
        }
        rc = http_request(ctx, "GET", cli_buf_str(&p), NULL, &body, NULL, 0);
        if (rc != CLI_OK)
            goto out;
        rc = CLI_EFAIL;
        cli_jv page;
        char err[256];
        if (cli_jv_parse(doc, cli_buf_str(&body), body.len, &page, err, sizeof err) < 0) {
            cli_err("the server sent invalid JSON: %s", err);
            goto out;
        }
        const cli_jv *arr = cli_jv_get(&page, "items");
        if (!arr || arr->type != CLI_JV_ARR) {
            cli_err("the server sent a list without 'items'");
            goto out;
        }
        size_t m = cli_jv_size(arr);
        if (n + m > cap) {
            size_t ncap = (n + m) * 2;
            const cli_jv **t = realloc(all, ncap * sizeof *t);
            if (!t)
                goto out;
            all = t;
            cap = ncap;
        }
        for (size_t i = 0; i < m; i++)
            all[n++] = cli_jv_at(arr, i);
        cursor = cli_jv_str(&page, "next"); /* lives in doc's arena */
        if (!cursor || !*cursor || m == 0)
            break;
    }
    items->type = CLI_JV_ARR;
    items->len = (uint32_t)n;
    items->u.elems = n ? cli_jv_alloc(doc, n * sizeof(cli_jv)) : NULL;
    if (n && !items->u.elems)
        goto out;
    for (size_t i = 0; i < n; i++)
        items->u.elems[i] = *all[i];
    rc = CLI_OK;
out:
    free(all);
    cli_buf_free(&p);
    cli_buf_free(&body);
    return rc;
}

/* ---- streaming GET ---- */

struct stream_state {
    CURL *e;
    cli_stream_fn fn;
    void *arg;
    int checked;  /* status looked at */
    int is_error; /* non-2xx: collect into err */
    int stopped;  /* fn asked to stop */
    cli_buf err;
};

static size_t stream_cb(char *p, size_t sz, size_t n, void *arg)
{
    struct stream_state *s = arg;
    size_t len = sz * n;
    if (!s->checked) {
        long status = 0;
        curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &status);
        s->is_error = status < 200 || status >= 300;
        s->checked = 1;
    }
    if (s->is_error)
        return cli_buf_append(&s->err, p, len) < 0 ? 0 : len;
    if (s->fn(s->arg, p, len)) {
        s->stopped = 1;
        return 0;
    }
    return len;
}

int cli_http_stream(cli_ctx *ctx, const char *path, long timeout_ms, cli_stream_fn fn, void *arg)
{
    int rc = CLI_EFAIL;
    cli_buf url = { 0 };
    struct curl_slist *hdrs = NULL;
    char cerr[CURL_ERROR_SIZE] = "";
    struct stream_state s = { .fn = fn, .arg = arg };
    cli_http *h = http_get(ctx);
    if (!h)
        goto out;
    CURL *e = h->easy;
    s.e = e;
    curl_easy_reset(e);
    hdrs = setup(ctx, h->auth, e, "GET", path, NULL, &url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, stream_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, cerr);
    if (timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    CURLcode cc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (s.is_error || (cc == CURLE_OK && (status < 200 || status >= 300))) {
        rc = http_error(status, &s.err, NULL, 0);
        goto out;
    }
    if (cc == CURLE_WRITE_ERROR && s.stopped) {
        rc = CLI_OK;
    } else if (cc == CURLE_OPERATION_TIMEDOUT && timeout_ms > 0 && status) {
        rc = CLI_OK;
    } else if (cc == CURLE_PARTIAL_FILE && status) {
        rc = CLI_OK; /* server ended a follow without a clean chunk end */
    } else if (cc != CURLE_OK) {
        rc = transport_error(ctx, cc, cerr, NULL, 0);
    } else {
        rc = CLI_OK;
    }
out:
    /* A stopped transfer leaves the connection unusable: forget it. */
    if (s.stopped && h) {
        curl_easy_cleanup(h->easy);
        h->easy = curl_easy_init();
        if (!h->easy && rc == CLI_OK) {
            cli_err("cannot initialise libcurl");
            rc = CLI_EFAIL;
        }
    }
    curl_slist_free_all(hdrs);
    cli_buf_free(&url);
    cli_buf_free(&s.err);
    return rc;
}

/* ---- upload with SHA-256 and progress ---- */

struct upload_state {
    FILE *f;
    EVP_MD_CTX *md;
    int read_error;
    bool progress;
    const char *label;
    struct timespec start, last;
    int drawn;
};

static size_t upload_read_cb(char *buf, size_t sz, size_t n, void *arg)
{
    struct upload_state *u = arg;
    size_t got = fread(buf, 1, sz * n, u->f);
    if (got == 0 && ferror(u->f)) {
        u->read_error = 1;
        return CURL_READFUNC_ABORT;
    }
    if (got && EVP_DigestUpdate(u->md, buf, got) != 1) {
        u->read_error = 1;
        return CURL_READFUNC_ABORT;
    }
    return got;
}

static double secs_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void draw_progress(struct upload_state *u, curl_off_t now_b, curl_off_t total, bool final)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (!final && u->drawn && secs_between(&u->last, &t) < 0.1)
        return;
    u->last = t;
    u->drawn = 1;
    double el = secs_between(&u->start, &t);
    double rate = el > 0 ? (double)now_b / el : 0;
    char done[32], tot[32], r[32], bar[32];
    cli_fmt_bytes((uint64_t)now_b, done, sizeof done);
    cli_fmt_bytes((uint64_t)total, tot, sizeof tot);
    cli_fmt_bytes((uint64_t)rate, r, sizeof r);
    int width = 24, fill = total > 0 ? (int)((now_b * width) / total) : 0;
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    int pct = total > 0 ? (int)((now_b * 100) / total) : 0;
    fprintf(stderr, "\r%s [%s] %3d%% %s/%s %s/s\033[K", u->label, bar, pct, done, tot, r);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

static int upload_progress_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                              curl_off_t ulnow)
{
    struct upload_state *u = arg;
    if (ultotal > 0)
        draw_progress(u, ulnow, ultotal, false);
    return 0;
}

int cli_http_upload(cli_ctx *ctx, const char *path, FILE *f, uint64_t size, bool progress,
                    const char *label, unsigned char sha256_out[32], json_t **out)
{
    int rc = CLI_EFAIL;
    cli_buf url = { 0 }, resp = { 0 };
    struct curl_slist *hdrs = NULL;
    char cerr[CURL_ERROR_SIZE] = "";
    struct upload_state u = { .f = f, .progress = progress, .label = label };
    *out = NULL;
    u.md = EVP_MD_CTX_new();
    if (!u.md || EVP_DigestInit_ex(u.md, EVP_sha256(), NULL) != 1) {
        cli_err("cannot initialise SHA-256");
        goto out;
    }
    cli_http *h = http_get(ctx);
    if (!h)
        goto out;
    CURL *e = h->easy;
    curl_easy_reset(e);
    hdrs = setup(ctx, h->auth, e, "POST", path, "Content-Type: application/octet-stream", &url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, upload_read_cb);
    curl_easy_setopt(e, CURLOPT_READDATA, &u);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, cerr);
    if (progress) {
        clock_gettime(CLOCK_MONOTONIC, &u.start);
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, upload_progress_cb);
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, &u);
    }
    CURLcode cc = curl_easy_perform(e);
    if (progress && cc == CURLE_OK)
        draw_progress(&u, (curl_off_t)size, (curl_off_t)size, true);
    else if (progress && u.drawn)
        fputc('\n', stderr);
    if (u.read_error) {
        cli_err("reading %s failed while uploading", label);
        goto out;
    }
    if (cc != CURLE_OK) {
        rc = transport_error(ctx, cc, cerr, NULL, 0);
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300) {
        rc = http_error(status, &resp, NULL, 0);
        goto out;
    }
    unsigned int mdlen = 0;
    if (EVP_DigestFinal_ex(u.md, sha256_out, &mdlen) != 1 || mdlen != 32) {
        cli_err("cannot finish SHA-256");
        goto out;
    }
    *out = resp.len ? json_loadb(resp.data, resp.len, 0, NULL) : NULL;
    if (!*out) {
        cli_err("the server sent no valid JSON for the upload");
        goto out;
    }
    rc = CLI_OK;
out:
    EVP_MD_CTX_free(u.md);
    curl_slist_free_all(hdrs);
    cli_buf_free(&url);
    cli_buf_free(&resp);
    return rc;
}

/* ---- event watcher (multi interface, separate connection) ---- */

struct cli_http_watch {
    CURLM *multi;
    CURL *easy;
    struct curl_slist *hdrs;
    cli_buf url;
    int got_data;              /* event data seen since the last wait() */
    int done;                  /* transfer finished */
    cli_http_watch_fn on_data; /* optional: every byte received */
    void *arg;
};

static size_t watch_cb(char *p, size_t sz, size_t n, void *arg)
{
    struct cli_http_watch *w = arg;
    size_t len = sz * n;
    /* Anything but a keepalive comment carries "data:" lines. */
    if (memmem(p, len, "data:", 5))
        w->got_data = 1;
    if (w->on_data)
        w->on_data(w->arg, p, len);
    return len;
}

cli_http_watch *cli_http_watch_open(cli_ctx *ctx, const char *path)
{
    cli_http *h = http_get(ctx);
    if (!h)
        return NULL;
    cli_http_watch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->multi = curl_multi_init();
    w->easy = curl_easy_init();
    if (!w->multi || !w->easy) {
        cli_http_watch_free(w);
        return NULL;
    }
    w->hdrs = setup(ctx, h->auth, w->easy, "GET", path, NULL, &w->url);
    curl_easy_setopt(w->easy, CURLOPT_WRITEFUNCTION, watch_cb);
    curl_easy_setopt(w->easy, CURLOPT_WRITEDATA, w);
    curl_multi_add_handle(w->multi, w->easy);
    return w;
}

void cli_http_watch_on_data(cli_http_watch *w, cli_http_watch_fn fn, void *arg)
{
    if (w) {
        w->on_data = fn;
        w->arg = arg;
    }
}

int cli_http_watch_wait(cli_http_watch *w, long timeout_ms)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int running = 0;
        if (!w->done) {
            curl_multi_perform(w->multi, &running);
            if (!running)
                w->done = 1;
        }
        if (w->got_data) {
            w->got_data = 0;
            return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = timeout_ms - (long)(secs_between(&start, &now) * 1000.0);
        if (left <= 0)
            return 0;
        if (w->done) {
            usleep((useconds_t)(left > 250 ? 250 : left) * 1000);
            clock_gettime(CLOCK_MONOTONIC, &now);
            if ((long)(secs_between(&start, &now) * 1000.0) >= timeout_ms)
                return -1;
            continue;
        }
        curl_multi_poll(w->multi, NULL, 0, (int)(left > 250 ? 250 : left), NULL);
    }
}

int cli_http_watch_connect(cli_http_watch *w, long timeout_ms)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        long code = 0;
        int running = 0;
        if (!w->done) {
            curl_multi_perform(w->multi, &running);
            if (!running)
                w->done = 1;
        }
        curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code)
            return code == 200 && !w->done ? 0 : -1;
        if (w->done)
            return -1;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = timeout_ms - (long)(secs_between(&start, &now) * 1000.0);
        if (left <= 0)
            return -1;
        curl_multi_poll(w->multi, NULL, 0, (int)(left > 100 ? 100 : left), NULL);
    }
}

void cli_http_watch_free(cli_http_watch *w)
{
    if (!w)
        return;
    if (w->multi && w->easy)
        curl_multi_remove_handle(w->multi, w->easy);
    if (w->easy)
        curl_easy_cleanup(w->easy);
    if (w->multi)
        curl_multi_cleanup(w->multi);
    curl_slist_free_all(w->hdrs);
    cli_buf_free(&w->url);
    free(w);
}

int cli_list_cmd(cli_ctx *ctx, int argc, char **argv, const char *cmd, const char *help,
                 const char *path, int (*render)(FILE *out, const json_t *items, cli_fmt fmt))
{
    static const struct option longopts[] = {
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    cli_fmt fmt = CLI_FMT_TABLE;
    json_t *items = NULL;
    char err[256];
    int rc = CLI_OK, c;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (cli_parse_format(optarg, &fmt, err, sizeof err) < 0) {
                rc = cli_usage(cmd, "%s", err);
                goto out;
            }
            break;
        case 'h': fputs(help, stdout); goto out;
        default: rc = cli_opt_error(cmd, argv, c); goto out;
        }
    }
    if (optind < argc) {
        rc = cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    rc = cli_http_list(ctx, path, &items);
    if (rc == CLI_OK && render(stdout, items, fmt) < 0)
        rc = CLI_EFAIL;
out:
    json_decref(items);
    return rc;
}
