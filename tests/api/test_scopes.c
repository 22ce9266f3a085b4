/*
 * test_scopes.c - token scopes: the scope table per route (every route of
 * the table, written out here independently), and the real server on
 * 127.0.0.1 with the fake backend plus an authenticate that knows three
 * tokens: what each scope may do (403 forbidden naming the scope needed),
 * 401 for an unknown token, the principal seen by the backend, and the
 * audit callback for state-changing requests only. Loopback only.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include <jansson.h>

#include "api.h"
#include "codec.h"
#include "fake_backend.h"
#include "route.h"

/* ---- the table, independently ------------------------------------------- */

static const struct {
    const char *method, *pattern;
    api_scope scope;
} WANT[] = {
    { "GET", "/healthz", API_SCOPE_READ_ONLY },
    { "GET", "/metrics", API_SCOPE_READ_ONLY },
    { "POST", "/v1/images", API_SCOPE_OPERATOR },
    { "POST", "/v1/initrds", API_SCOPE_OPERATOR },
    { "GET", "/v1/images", API_SCOPE_READ_ONLY },
    { "GET", "/v1/images/{ref}", API_SCOPE_READ_ONLY },
    { "DELETE", "/v1/images/{ref}", API_SCOPE_OPERATOR },
    { "PATCH", "/v1/images/{ref}", API_SCOPE_OPERATOR },
    { "POST", "/v1/images/{ref}/tags", API_SCOPE_OPERATOR },
    { "POST", "/v1/instances", API_SCOPE_OPERATOR },
    { "GET", "/v1/instances", API_SCOPE_READ_ONLY },
    { "DELETE", "/v1/instances", API_SCOPE_OPERATOR },
    { "POST", "/v1/instances/stop", API_SCOPE_OPERATOR },
    { "POST", "/v1/instances/start", API_SCOPE_OPERATOR },
    { "POST", "/v1/instances/restart", API_SCOPE_OPERATOR },
    { "POST", "/v1/instances/delete", API_SCOPE_OPERATOR },
    { "GET", "/v1/instances/{id}", API_SCOPE_READ_ONLY },
    { "DELETE", "/v1/instances/{id}", API_SCOPE_OPERATOR },
    { "POST", "/v1/instances/{id}/stop", API_SCOPE_OPERATOR },
    { "POST", "/v1/instances/{id}/start", API_SCOPE_OPERATOR },
    { "POST", "/v1/instances/{id}/restart", API_SCOPE_OPERATOR },
    { "GET", "/v1/instances/{id}/console", API_SCOPE_READ_ONLY },
    { "GET", "/v1/hosts", API_SCOPE_READ_ONLY },
    { "POST", "/v1/hosts", API_SCOPE_ADMIN },
    { "GET", "/v1/hosts/{name}", API_SCOPE_READ_ONLY },
    { "DELETE", "/v1/hosts/{name}", API_SCOPE_ADMIN },
    { "POST", "/v1/hosts/{name}/cordon", API_SCOPE_ADMIN },
    { "POST", "/v1/hosts/{name}/drain", API_SCOPE_ADMIN },
    { "POST", "/v1/consolidate", API_SCOPE_ADMIN },
    { "GET", "/v1/events", API_SCOPE_READ_ONLY },
    { "POST", "/v1/tokens", API_SCOPE_ADMIN },
    { "GET", "/v1/tokens", API_SCOPE_ADMIN },
    { "DELETE", "/v1/tokens/{id}", API_SCOPE_ADMIN },
    { "POST", "/v1/moves/stop", API_SCOPE_ADMIN },
};

static void t_scope_table(void **st)
{
    size_t n, i, k;
    const api_route *r = api_route_table(&n);

    (void)st;
    assert_int_equal(n, sizeof WANT / sizeof WANT[0]);
    for (i = 0; i < n; i++) {
        for (k = 0; k < n; k++) {
            if (strcmp(WANT[k].method, r[i].method) == 0 &&
                strcmp(WANT[k].pattern, r[i].pattern) == 0)
                break;
        }
        if (k == n)
            fail_msg("route %s %s is not in the test's table", r[i].method, r[i].pattern);
        if (api_route_scope(&r[i]) != WANT[k].scope)
            fail_msg("%s %s needs %s, want %s", r[i].method, r[i].pattern,
                     api_scope_name(api_route_scope(&r[i])), api_scope_name(WANT[k].scope));
    }
}

static void t_scope_names(void **st)
{
    api_scope s;

    (void)st;
    assert_int_equal(api_scope_parse("read-only", &s), 0);
    assert_int_equal(s, API_SCOPE_READ_ONLY);
    assert_int_equal(api_scope_parse("operator", &s), 0);
    assert_int_equal(s, API_SCOPE_OPERATOR);
    assert_int_equal(api_scope_parse("admin", &s), 0);
    assert_int_equal(s, API_SCOPE_ADMIN);
    assert_int_equal(api_scope_parse("Admin", &s), -1);
    assert_int_equal(api_scope_parse("", &s), -1);
    assert_string_equal(api_scope_name(API_SCOPE_OPERATOR), "operator");
    assert_int_equal(api_code_http(API_E_FORBIDDEN), 403);
    assert_string_equal(api_code_str(API_E_FORBIDDEN), "forbidden");
    assert_int_equal(api_code_http(API_E_QUOTA_EXCEEDED), 403);
    assert_string_equal(api_code_str(API_E_QUOTA_EXCEEDED), "quota_exceeded");
}

/* ---- POST /v1/tokens body and the token object --------------------------- */

static api_code dec(const char *body, api_token_spec *ts, api_status *st)
{
    memset(st, 0, sizeof *st);
    return api_decode_token_spec(body, strlen(body), ts, st);
}

static void t_decode_token_spec(void **unused)
{
    api_token_spec ts;
    api_status st;

    (void)unused;
    assert_int_equal(dec("{\"name\":\"ci\",\"scope\":\"operator\",\"selector\":\"team=a,!x\","
                         "\"quotas\":{\"instances\":3,\"memory_mib\":512,\"vcpus\":4}}",
                         &ts, &st),
                     API_OK);
    assert_string_equal(ts.name, "ci");
    assert_int_equal(ts.scope, API_SCOPE_OPERATOR);
    assert_string_equal(ts.selector, "team=a,!x");
    assert_int_equal(ts.max_instances, 3);
    assert_int_equal(ts.max_memory_mib, 512);
    assert_int_equal(ts.max_vcpus, 4);
    assert_int_equal(dec("{\"name\":\"ro\",\"scope\":\"read-only\"}", &ts, &st), API_OK);
    assert_int_equal(ts.scope, API_SCOPE_READ_ONLY);
    assert_string_equal(ts.selector, "");
    assert_int_equal(ts.max_instances, 0);
    assert_int_equal(ts.expires_in, 0);
    assert_int_equal(ts.expires_at, 0);
    assert_int_equal(ts.rate, 0);
    /* expiry and rate (issue 16) */
    assert_int_equal(dec("{\"name\":\"ci\",\"scope\":\"operator\",\"expires_in\":86400,"
                         "\"rate\":50,\"burst\":100}",
                         &ts, &st),
                     API_OK);
    assert_int_equal(ts.expires_in, 86400);
    assert_int_equal(ts.rate, 50);
    assert_int_equal(ts.burst, 100);
    assert_int_equal(
        dec("{\"name\":\"ci\",\"scope\":\"operator\",\"expires_at\":\"2026-12-31T23:59:59Z\"}", &ts,
            &st),
        API_OK);
    assert_int_equal(ts.expires_at, 1798761599);

    static const struct {
        const char *body, *field;
    } bad[] = {
        { "{\"scope\":\"admin\"}", "name" },
        { "{\"name\":\"ci\"}", "scope" },
        { "{\"name\":\"CI\",\"scope\":\"admin\"}", "name" },
        { "{\"name\":\"../x\",\"scope\":\"admin\"}", "name" },
        { "{\"name\":\"ci\",\"scope\":\"root\"}", "scope" },
        { "{\"name\":\"ci\",\"scope\":\"admin\",\"secret\":\"x\"}", "secret" },
        { "{\"name\":\"ci\",\"scope\":\"admin\",\"selector\":\"a==b\"}", "selector" },
        { "{\"name\":\"ci\",\"scope\":\"admin\",\"selector\":7}", "selector" },
        { "{\"name\":\"ci\",\"scope\":\"admin\",\"quotas\":[]}", "quotas" },
        { "{\"name\":\"ci\",\"scope\":\"admin\",\"quotas\":{\"disk\":1}}", "quotas.disk" },
        { "{\"name\":\"ci\",\"scope\":\"admin\",\"quotas\":{\"vcpus\":-1}}", "quotas.vcpus" },
        { "{\"name\":\"ci\",\"scope\":\"admin\",\"quotas\":{\"instances\":\"2\"}}",
          "quotas.instances" },
        { "{\"name\":\"ci\",\"scope\":\"admin\",\"expires_in\":0}", "expires_in" },
        { "{\"name\":\"ci\",\"scope\":\"admin\",\"expires_in\":\"24h\"}", "expires_in" },
        { "{\"name\":\"ci\",\"scope\":\"admin\",\"expires_at\":\"tomorrow\"}", "expires_at" },
        { "{\"name\":\"ci\",\"scope\":\"admin\",\"expires_at\":\"2026-12-31T23:59:59+01:00\"}",
          "expires_at" },
        { "{\"name\":\"ci\",\"scope\":\"admin\",\"expires_at\":1798761599}", "expires_at" },
        { "{\"name\":\"ci\",\"scope\":\"admin\",\"expires_in\":60,"
          "\"expires_at\":\"2026-12-31T23:59:59Z\"}",
          "expires_at" },
        { "{\"name\":\"ci\",\"scope\":\"admin\",\"rate\":0}", "rate" },
        { "{\"name\":\"ci\",\"scope\":\"admin\",\"burst\":5}", "burst" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (dec(bad[i].body, &ts, &st) != API_E_INVALID_FIELD || strcmp(st.field, bad[i].field))
            fail_msg("%s: got code %d field '%s' (%s), want invalid_field '%s'", bad[i].body,
                     (int)st.code, st.field, st.message, bad[i].field);
    }
    assert_int_equal(dec("not json", &ts, &st), API_E_BAD_REQUEST);
}

/* The token encoder against jansson's reading of its output. */
static void t_encode_token(void **unused)
{
    api_sink *s = api_sink_new(API_SINK_TOKEN, API_SHAPE_ONE);
    api_token t = { .id = "8c1f0e2a9b47",
                    .name = "ci",
                    .scope = API_SCOPE_OPERATOR,
                    .selector = "team=\"a\"",
                    .max_instances = 20,
                    .created = 1764000000,
                    .secret = "shoal_00",
                    .used_instances = 2,
                    .used_memory_mib = 64 };
    json_t *o, *want;
    char *txt;
    size_t len;

    (void)unused;
    assert_non_null(s);
    assert_int_equal(api_sink_token(s, &t), 0);
    txt = api_sink_finish(s, &len);
    api_sink_free(s);
    assert_non_null(txt);
    o = json_loadb(txt, len, 0, NULL);
    assert_non_null(o);
    want = json_pack("{s:s,s:s,s:s,s:s,s:{s:{s:i,s:i},s:{s:n,s:i},s:{s:n,s:i}},s:s,s:n,s:b,s:n,"
                     "s:n,s:s}",
                     "id", "8c1f0e2a9b47", "name", "ci", "scope", "operator", "selector",
                     "team=\"a\"", "quotas", "instances", "max", 20, "used", 2, "memory_mib", "max",
                     "used", 64, "vcpus", "max", "used", 0, "created", "2025-11-24T16:00:00Z",
                     "expires", "expired", 0, "rate", "burst", "secret", "shoal_00");
    if (!json_equal(o, want))
        fail_msg("encoded %s", txt);
    json_decref(o);
    json_decref(want);
    free(txt);
    /* no secret, no selector */
    s = api_sink_new(API_SINK_TOKEN, API_SHAPE_LIST);
    t.secret = NULL;
    t.selector = "";
    assert_int_equal(api_sink_token(s, &t), 0);
    txt = api_sink_finish(s, &len);
    api_sink_free(s);
    o = json_loadb(txt, len, 0, NULL);
    assert_non_null(o);
    assert_true(
        json_is_null(json_object_get(json_array_get(json_object_get(o, "items"), 0), "selector")));
    assert_null(json_object_get(json_array_get(json_object_get(o, "items"), 0), "secret"));
    json_decref(o);
    free(txt);
    /* an expiry and a rate; burst shown as the rate when not set */
    s = api_sink_new(API_SINK_TOKEN, API_SHAPE_ONE);
    t.expires = 1764086400;
    t.expired = true;
    t.rate = 50;
    assert_int_equal(api_sink_token(s, &t), 0);
    txt = api_sink_finish(s, &len);
    api_sink_free(s);
    o = json_loadb(txt, len, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "expires")), "2025-11-25T16:00:00Z");
    assert_true(json_is_true(json_object_get(o, "expired")));
    assert_int_equal(json_integer_value(json_object_get(o, "rate")), 50);
    assert_int_equal(json_integer_value(json_object_get(o, "burst")), 50);
    json_decref(o);
    free(txt);
}

/* ---- over HTTP ---------------------------------------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char last_who[API_NAME_MAX + 1]; /* principal seen by instance_list */
static char audit_log[4096];            /* "name METHOD PATH STATUS\n"... */
static int n_auth;

static api_code stub_auth(void *ctx, const char *secret, api_principal *who)
{
    static const struct {
        const char *secret, *name;
        api_scope scope;
    } known[] = {
        { "ro-secret", "viewer", API_SCOPE_READ_ONLY },
        { "op-secret", "deployer", API_SCOPE_OPERATOR },
        { "ad-secret", "root2", API_SCOPE_ADMIN },
    };

    (void)ctx;
    pthread_mutex_lock(&mu);
    n_auth++;
    pthread_mutex_unlock(&mu);
    memset(who, 0, sizeof *who);
    /* rate 1/s, burst 2 (issue 16) */
    if (strcmp(secret, "rl-secret") == 0) {
        snprintf(who->id, sizeof who->id, "rl0000000001");
        snprintf(who->name, sizeof who->name, "limited");
        who->rate = 1;
        who->burst = 2;
        return API_OK;
    }
    /* expired: refused, named with its expiry (api.h authenticate) */
    if (strcmp(secret, "ex-secret") == 0) {
        snprintf(who->name, sizeof who->name, "old");
        who->expires = 1764000000;
        return API_E_UNAUTHORIZED;
    }
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(secret, known[i].secret) == 0) {
            memset(who, 0, sizeof *who);
            snprintf(who->name, sizeof who->name, "%s", known[i].name);
            who->scope = known[i].scope;
            return API_OK;
        }
    }
    return API_E_UNAUTHORIZED;
}

static api_code spy_list(void *ctx, const api_instance_filter *f, const api_page *page,
                         api_sink *out, api_status *st)
{
    const api_principal *p = api_request_principal();

    pthread_mutex_lock(&mu);
    snprintf(last_who, sizeof last_who, "%s", p != NULL ? p->name : "(none)");
    pthread_mutex_unlock(&mu);
    return fake_backend.instance_list(ctx, f, page, out, st);
}

static void stub_audit(void *ctx, const api_principal *who, const char *method, const char *path,
                       int status)
{
    size_t n;

    (void)ctx;
    pthread_mutex_lock(&mu);
    n = strlen(audit_log);
    snprintf(audit_log + n, sizeof audit_log - n, "%s %s %s %d\n", who->name, method, path, status);
    pthread_mutex_unlock(&mu);
}

static fake F;
static api_backend BE;
static api_server *S;
static uint16_t PORT;

static char retry_after[32]; /* Retry-After of the last answer, "" if none */

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    size_t len = sz * n;

    (void)ud;
    if (len > 13 && strncasecmp(p, "Retry-After: ", 13) == 0)
        snprintf(retry_after, sizeof retry_after, "%.*s", (int)strcspn(p + 13, "\r\n"), p + 13);
    return len;
}

/* 503 with a retry hint from the backend (the state database busy). */
static api_code busy_host_get(void *ctx, const char *name, api_sink *out, api_status *st)
{
    (void)ctx;
    (void)name;
    (void)out;
    api_status_set(st, API_E_UNAVAILABLE, NULL, "state db: database is locked");
    st->retry_after_s = 5;
    return API_E_UNAVAILABLE;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    char *b = ud;
    size_t have = strlen(b), add = sz * n;

    if (have + add >= 4096)
        add = 4095 - have;
    memcpy(b + have, p, add);
    b[have + add] = '\0';
    return sz * n;
}

/* Status of METHOD PATH with bearer secret (NULL: none); body in out. */
static long req(const char *method, const char *path, const char *secret, const char *json,
                char out[4096])
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char url[256], auth[128];
    long code = 0;

    out[0] = '\0';
    retry_after[0] = '\0';
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", PORT, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (secret != NULL) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", secret);
        h = curl_slist_append(h, auth);
    }
    if (json != NULL) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}

static int server_up(void **st)
{
    static const char *const tokens[] = { "cfg-admin-secret" };
    api_config cfg;
    api_err err;

    (void)st;
    fake_init(&F);
    BE = fake_backend;
    BE.authenticate = stub_auth;
    BE.audit = stub_audit;
    BE.instance_list = spy_list;
    BE.host_get = busy_host_get;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen_addr = "127.0.0.1";
    cfg.tokens = tokens;
    cfg.n_tokens = 1;
    if (api_server_start(&cfg, &BE, &F, &S, &err) != 0) {
        fprintf(stderr, "api_server_start: %s\n", err.msg);
        return -1;
    }
    PORT = api_server_port(S);
    return 0;
}

static int server_down(void **st)
{
    (void)st;
    api_server_stop(S);
    return 0;
}

static void t_http_scopes(void **st)
{
    char body[4096];
    const char *host = "{\"name\":\"h2\",\"uri\":\"qemu:///embed?root=/tmp/x\"}";

    (void)st;
    /* unknown and missing tokens */
    assert_int_equal(req("GET", "/v1/instances", "nope", NULL, body), 401);
    assert_int_equal(req("GET", "/v1/instances", NULL, NULL, body), 401);

    /* read-only: every GET but /v1/tokens, nothing else */
    assert_int_equal(req("GET", "/v1/instances", "ro-secret", NULL, body), 200);
    assert_int_equal(req("GET", "/v1/hosts", "ro-secret", NULL, body), 200);
    assert_int_equal(req("POST", "/v1/instances", "ro-secret", "{\"image\":\"hello\"}", body), 403);
    assert_non_null(strstr(body, "\"forbidden\""));
    assert_non_null(strstr(body, "token 'viewer' (scope read-only) may not POST /v1/instances"));
    assert_non_null(strstr(body, "needs scope operator"));
    assert_int_equal(req("DELETE", "/v1/instances/abcd", "ro-secret", NULL, body), 403);
    assert_int_equal(req("GET", "/v1/tokens", "ro-secret", NULL, body), 403);

    /* operator: instances and images, not hosts, drain or tokens */
    assert_int_equal(req("POST", "/v1/hosts", "op-secret", host, body), 403);
    assert_non_null(strstr(body, "needs scope admin"));
    assert_int_equal(req("POST", "/v1/hosts/local/drain", "op-secret", NULL, body), 403);
    assert_int_equal(req("POST", "/v1/consolidate", "op-secret", NULL, body), 403);
    assert_int_equal(
        req("POST", "/v1/tokens", "op-secret", "{\"name\":\"x\",\"scope\":\"admin\"}", body), 403);
    assert_int_equal(req("DELETE", "/v1/tokens/x", "op-secret", NULL, body), 403);
    assert_int_not_equal(req("DELETE", "/v1/instances/abcd", "op-secret", NULL, body), 403);
    assert_int_not_equal(
        req("POST", "/v1/instances/stop", "op-secret", "{\"ids\":[\"abcd\"]}", body), 403);

    /* admin, from the backend and from the configuration */
    assert_int_not_equal(req("POST", "/v1/hosts", "ad-secret", host, body), 403);
    assert_int_not_equal(req("POST", "/v1/consolidate", "cfg-admin-secret", NULL, body), 403);
    /* the fake backend has no token routes: past the scope check, 500 */
    assert_int_equal(req("GET", "/v1/tokens", "ad-secret", NULL, body), 500);

    /* the backend sees who asked */
    assert_int_equal(req("GET", "/v1/instances", "op-secret", NULL, body), 200);
    pthread_mutex_lock(&mu);
    assert_string_equal(last_who, "deployer");
    pthread_mutex_unlock(&mu);
    assert_int_equal(req("GET", "/v1/instances", "cfg-admin-secret", NULL, body), 200);
    pthread_mutex_lock(&mu);
    assert_string_equal(last_who, "admin");
    pthread_mutex_unlock(&mu);
}

/* A token's request rate: its bucket lets burst requests through, then
 * 429 rate_limited with Retry-After until it refills; other tokens are
 * not affected. An expired token: 401 saying so. A backend's retry hint:
 * Retry-After on its 503. (issue 16) */
static void t_http_rate_and_expiry(void **st)
{
    char body[4096];

    (void)st;
    assert_int_equal(req("GET", "/v1/instances", "rl-secret", NULL, body), 200);
    assert_int_equal(req("GET", "/v1/instances", "rl-secret", NULL, body), 200);
    assert_int_equal(req("GET", "/v1/instances", "rl-secret", NULL, body), 429);
    assert_string_equal(retry_after, "1");
    assert_non_null(strstr(body, "\"rate_limited\""));
    assert_non_null(
        strstr(body, "token 'limited' is over its rate limit of 1 requests/s (burst 2)"));
    assert_int_equal(req("GET", "/v1/instances", "ro-secret", NULL, body), 200);
    assert_string_equal(retry_after, "");
    usleep(1100 * 1000); /* one refilled */
    assert_int_equal(req("GET", "/v1/instances", "rl-secret", NULL, body), 200);
    assert_int_equal(req("GET", "/v1/instances", "rl-secret", NULL, body), 429);

    assert_int_equal(req("GET", "/v1/instances", "ex-secret", NULL, body), 401);
    assert_non_null(strstr(body, "token 'old' expired at 2025-11-24T16:00:00Z"));
    assert_int_equal(req("GET", "/v1/instances", "nope", NULL, body), 401);
    assert_non_null(strstr(body, "missing or wrong bearer token"));

    assert_int_equal(req("GET", "/v1/hosts/local", "ro-secret", NULL, body), 503);
    assert_string_equal(retry_after, "5");
}

static void t_http_audit(void **st)
{
    char body[4096];

    (void)st;
    pthread_mutex_lock(&mu);
    audit_log[0] = '\0';
    pthread_mutex_unlock(&mu);
    assert_int_equal(req("GET", "/v1/instances", "op-secret", NULL, body), 200);
    assert_int_equal(req("POST", "/v1/instances", "ro-secret", "{\"image\":\"hello\"}", body), 403);
    req("DELETE", "/v1/instances/abcd", "op-secret", NULL, body);
    assert_int_equal(req("POST", "/v1/instances", "nope", "{}", body), 401);
    pthread_mutex_lock(&mu);
    /* GETs and unauthenticated requests leave no record; refusals do */
    assert_string_equal(audit_log, "viewer POST /v1/instances 403\n"
                                   "deployer DELETE /v1/instances/abcd 404\n");
    pthread_mutex_unlock(&mu);
}

int main(void)
{
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(t_scope_table),
        cmocka_unit_test(t_scope_names),
        cmocka_unit_test(t_decode_token_spec),
        cmocka_unit_test(t_encode_token),
    };
    const struct CMUnitTest http[] = {
        cmocka_unit_test(t_http_scopes),
        cmocka_unit_test(t_http_audit),
        cmocka_unit_test(t_http_rate_and_expiry),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests_name("scopes", unit, NULL, NULL);
    rc |= cmocka_run_group_tests_name("http", http, server_up, server_down);
    curl_global_cleanup();
    return rc;
}
