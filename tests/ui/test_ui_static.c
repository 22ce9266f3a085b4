/*
 * test_ui_static.c - the web view's files over real HTTP on loopback
 * (api/ui/ui.c), against the fake backend.
 *
 * The embedded bytes must equal the files in api/ui/ (an oracle for the
 * cmake generator), each with its content type, ETag, no-cache and the CSP;
 * a matching If-None-Match is a 304 without a body; HEAD has no body; / and
 * /ui redirect to /ui/; an unknown file is 404 and another method 405; none
 * of it needs a token or calls the backend.
 * usage: test_ui_static API_UI_SOURCE_DIR
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "api.h"
#include "fake_backend.h"
#include "ui.h"

static const char *SRC_DIR;
static fake *F;
static api_server *S;
static uint16_t PORT;

/* One response: status, body, the headers we look at. */
typedef struct resp {
    long code;
    char *body;
    size_t len;
    char ctype[128], etag[64], cache[64], csp[512], location[64], allow[64];
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    char *nb = realloc(r->body, r->len + sz * n + 1);

    if (nb == NULL)
        return 0;
    memcpy(nb + r->len, p, sz * n);
    r->body = nb;
    r->len += sz * n;
    r->body[r->len] = '\0';
    return sz * n;
}

static void keep(char *dst, size_t cap, const char *line, size_t n, const char *name)
{
    size_t k = strlen(name);

    if (n > k + 1 && strncasecmp(line, name, k) == 0 && line[k] == ':') {
        line += k + 1;
        n -= k + 1;
        while (n > 0 && *line == ' ')
            line++, n--;
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
            n--;
        snprintf(dst, cap, "%.*s", (int)n, line);
    }
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    size_t len = sz * n;

    keep(r->ctype, sizeof r->ctype, p, len, "Content-Type");
    keep(r->etag, sizeof r->etag, p, len, "ETag");
    keep(r->cache, sizeof r->cache, p, len, "Cache-Control");
    keep(r->csp, sizeof r->csp, p, len, "Content-Security-Policy");
    keep(r->location, sizeof r->location, p, len, "Location");
    keep(r->allow, sizeof r->allow, p, len, "Allow");
    return len;
}

static resp get(const char *method, const char *path, const char *if_none_match)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char url[256], inm[128];
    resp r;

    memset(&r, 0, sizeof r);
    assert_non_null(c);
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", PORT, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L); /* send "/ui/../x" as it is */
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{}");
    if (if_none_match != NULL) {
        snprintf(inm, sizeof inm, "If-None-Match: %s", if_none_match);
        h = curl_slist_append(h, inm);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

static void t_files(void **st)
{
    static const struct {
        const char *path, *file, *ctype;
    } want[] = {
        { "/ui/", "index.html", "text/html; charset=utf-8" },
        { "/ui/index.html", "index.html", "text/html; charset=utf-8" },
        { "/ui/app.js", "app.js", "text/javascript; charset=utf-8" },
        { "/ui/style.css", "style.css", "text/css; charset=utf-8" },
    };
    unsigned long calls = atomic_load(&F->calls);

    (void)st;
    assert_int_equal(api_ui_n_files, 3);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char path[512];
        size_t len = 0;
        char *src;
        resp r = get("GET", want[i].path, NULL), again;

        snprintf(path, sizeof path, "%s/%s", SRC_DIR, want[i].file);
        src = slurp(path, &len);
        assert_non_null(src);
        assert_int_equal(r.code, 200);
        assert_string_equal(r.ctype, want[i].ctype);
        assert_int_equal(r.len, len);
        assert_memory_equal(r.body, src, len);
        assert_string_equal(r.cache, "no-cache");
        assert_true(strlen(r.etag) == 18 && r.etag[0] == '"');
        assert_non_null(strstr(r.csp, "default-src 'none'"));
        assert_non_null(strstr(r.csp, "script-src 'self'"));
        assert_non_null(strstr(r.csp, "frame-ancestors 'none'"));
        assert_null(strstr(r.csp, "unsafe"));
        again = get("GET", want[i].path, r.etag);
        assert_int_equal(again.code, 304);
        assert_int_equal(again.len, 0);
        free(again.body);
        again = get("GET", want[i].path, "\"0000000000000000\"");
        assert_int_equal(again.code, 200);
        free(again.body);
        again = get("HEAD", want[i].path, NULL);
        assert_int_equal(again.code, 200);
        assert_int_equal(again.len, 0);
        free(again.body);
        free(r.body);
        free(src);
    }
    assert_int_equal(atomic_load(&F->calls), calls); /* no backend, no token */
}

static void t_edges(void **st)
{
    unsigned long calls = atomic_load(&F->calls);
    resp r;

    (void)st;
    r = get("GET", "/", NULL);
    assert_int_equal(r.code, 302);
    assert_string_equal(r.location, "/ui/");
    free(r.body);
    r = get("GET", "/ui", NULL);
    assert_int_equal(r.code, 302);
    assert_string_equal(r.location, "/ui/");
    free(r.body);
    r = get("GET", "/ui/nothing.js", NULL);
    assert_int_equal(r.code, 404);
    free(r.body);
    r = get("GET", "/ui/../v1/instances", NULL); /* no file system behind it */
    assert_int_equal(r.code, 404);
    free(r.body);
    r = get("POST", "/ui/", NULL);
    assert_int_equal(r.code, 405);
    assert_string_equal(r.allow, "GET, HEAD");
    free(r.body);
    r = get("DELETE", "/ui/app.js", NULL);
    assert_int_equal(r.code, 405);
    free(r.body);
    assert_int_equal(atomic_load(&F->calls), calls);
    /* the API itself still wants its token */
    r = get("GET", "/v1/instances", NULL);
    assert_int_equal(r.code, 401);
    free(r.body);
    r = get("GET", "/uix", NULL); /* not the view's */
    assert_true(r.code == 401 || r.code == 404);
    free(r.body);
}

static int up(void **st)
{
    static const char *const tokens[] = { "ui-test-secret" };
    api_config cfg;
    api_err err;

    (void)st;
    F = calloc(1, sizeof *F);
    if (F == NULL)
        return -1;
    fake_init(F);
    memset(&cfg, 0, sizeof cfg);
    cfg.listen_addr = "127.0.0.1";
    cfg.tokens = tokens;
    cfg.n_tokens = 1;
    if (api_server_start(&cfg, &fake_backend, F, &S, &err) != 0) {
        fprintf(stderr, "api_server_start: %s\n", err.msg);
        return -1;
    }
    PORT = api_server_port(S);
    return 0;
}

static int down(void **st)
{
    (void)st;
    api_server_stop(S);
    fake_destroy(F);
    free(F);
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_files),
        cmocka_unit_test(t_edges),
    };
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: %s API_UI_SOURCE_DIR\n", argv[0]);
        return 2;
    }
    SRC_DIR = argv[1];
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, up, down);
    curl_global_cleanup();
    return rc;
}
