/*
 * test_chan.c - the privilege-separation channel (api/chan.h).
 *
 * Unit: the frame header and field reader refuse every malformed input;
 * each request decoder refuses every truncation, extra bytes and each
 * out-of-rule value (names, refs, labels, env, counts, limits, enums); the
 * root's scope per call agrees with the route table.
 * Integration: the root end (chan_server_run over the fake backend) and
 * the front end (chan_client under a real api server) over a socketpair,
 * with real HTTP over loopback: auth at the root, uploads in chunks,
 * console follow, events, audit with the root's principal; raw frames show
 * the root refusing a read-only token's delete whatever the front says,
 * handles it does not hold, and a malformed frame ending the channel and
 * releasing the streams the front left open.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "api.h"
#include "chan.h"
#include "codec.h"
#include "fake_backend.h"
#include "route.h"

/* ---- helpers ------------------------------------------------------------ */

static int decode_w(chan_w *w, uint16_t type, chan_call *c)
{
    char why[128];
    int rc =
        chan_call_decode(type, w->buf + CHAN_HDR_LEN, w->len - CHAN_HDR_LEN, c, why, sizeof why);
    if (rc != 0)
        assert_true(why[0] != '\0'); /* a refusal always says why */
    return rc;
}

/* A valid INSTANCE_CREATE payload (the order of chan_client.c). */
static void put_spec(chan_w *w, const char *name, uint32_t count, uint32_t n_ports)
{
    chan_w_init(w);
    chan_w_str(w, "secret");
    chan_w_str(w, "hello:latest");
    chan_w_str(w, name);
    chan_w_u32(w, count);
    chan_w_u32(w, 32);
    chan_w_u32(w, 1);
    chan_w_u32(w, 1); /* args */
    chan_w_str(w, "--verbose");
    chan_w_u32(w, 1); /* env */
    chan_w_str(w, "DB_PASSWORD");
    chan_w_str(w, "s3cret value");
    chan_w_u32(w, 1); /* labels */
    chan_w_str(w, "app");
    chan_w_str(w, "web");
    chan_w_u32(w, API_RESTART_ON_FAILURE);
    chan_w_str(w, NULL); /* host */
    chan_w_bool(w, true);
    chan_w_u32(w, n_ports);
    for (uint32_t i = 0; i < n_ports; i++) {
        chan_w_u32(w, 8080 + i);
        chan_w_u32(w, 80);
        chan_w_u32(w, API_PROTO_TCP);
    }
    chan_w_bool(w, false);
    chan_w_u32(w, 1); /* rules */
    chan_w_u32(w, API_RULE_ANTI_AFFINITY);
    chan_w_str(w, "app");
    chan_w_str(w, NULL);
    chan_w_bool(w, true);
    chan_w_u32(w, 5);
    chan_w_str(w, NULL);
    chan_w_str(w, NULL);
    chan_w_u32(w, 0);
    chan_w_u32(w, 0);
    chan_w_u32(w, 0);
    chan_w_str(w, NULL);
    chan_w_str(w, NULL);
    chan_w_u32(w, 0); /* idle_s */
}

/* ---- unit --------------------------------------------------------------- */

static void t_header(void **st)
{
    unsigned char b[CHAN_HDR_LEN];
    chan_hdr h = { 100, CHAN_T_IMAGE_GET, 0, 7 }, g;
    uint32_t one = 1;

    (void)st;
    chan_hdr_put(b, &h);
    assert_int_equal(chan_hdr_get(b, CHAN_REQ_MAX, &g), 0);
    assert_int_equal(g.len, 100);
    assert_int_equal(g.type, CHAN_T_IMAGE_GET);
    assert_int_equal(g.id, 7);
    assert_int_equal(chan_hdr_get(b, 99, &g), -1); /* over the bound */
    h.len = CHAN_REQ_MAX + 1;
    chan_hdr_put(b, &h);
    assert_int_equal(chan_hdr_get(b, CHAN_REQ_MAX, &g), -1);
    h.len = 100;
    h.flags = 1;
    chan_hdr_put(b, &h);
    assert_int_equal(chan_hdr_get(b, CHAN_REQ_MAX, &g), -1); /* flags */
    h.flags = 0;
    chan_hdr_put(b, &h);
    memcpy(b + 12, &one, 4);
    assert_int_equal(chan_hdr_get(b, CHAN_REQ_MAX, &g), -1); /* reserved word */
}

static void t_reader(void **st)
{
    /* each case: one field's raw bytes, read as a string/bool/u32 */
    static const struct {
        const char *bytes;
        size_t len;
        char kind; /* s string, b bool, u u32 */
    } bad[] = {
        { "\x03\0\0\0abc", 7, 's' },          /* no NUL */
        { "\x04\0\0\0a\0c\0", 8, 's' },       /* NUL inside */
        { "\x02\0\0\0a", 5, 's' },            /* length beyond the payload */
        { "\x01\0\0", 3, 's' },               /* truncated length */
        { "\x01\0\0\0\x02", 5, 'b' },         /* bool 2 */
        { "\x02\0\0\0\x01\0", 6, 'b' },       /* bool of 2 bytes */
        { "\x03\0\0\0\x01\0\0", 7, 'u' },     /* u32 of 3 bytes */
        { "\x05\0\0\0\x01\0\0\0\0", 9, 'u' }, /* u32 of 5 bytes */
        { "\x00\0\0\0", 4, 'S' },             /* NULL where required */
        { "\x06\0\0\0abcde\0", 10, '4' },     /* over max (4) */
    };
    chan_r r;

    (void)st;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        chan_r_init(&r, bad[i].bytes, bad[i].len);
        switch (bad[i].kind) {
        case 's': chan_r_str(&r, 100, true); break;
        case 'S': chan_r_str(&r, 100, false); break;
        case '4': chan_r_str(&r, 4, true); break;
        case 'b': chan_r_bool(&r); break;
        default: chan_r_u32(&r); break;
        }
        if (!r.bad)
            fail_msg("case %zu read as valid", i);
        assert_false(chan_r_done(&r));
    }
    /* good ones, and trailing bytes */
    chan_r_init(&r, "\x04\0\0\0abc\0\x00\0\0\0", 12);
    assert_string_equal(chan_r_str(&r, 3, false), "abc");
    assert_null(chan_r_str(&r, 3, true));
    assert_true(chan_r_done(&r));
    chan_r_init(&r, "\x01\0\0\0\x01x", 6);
    assert_true(chan_r_bool(&r));
    assert_false(chan_r_done(&r)); /* one byte left over */
}

static void t_decode_spec(void **st)
{
    chan_call c;
    chan_w w;

    (void)st;
    put_spec(&w, "web", 1, 2);
    assert_int_equal(decode_w(&w, CHAN_T_INSTANCE_CREATE, &c), 0);
    assert_string_equal(c.secret, "secret");
    assert_string_equal(c.spec.image, "hello:latest");
    assert_string_equal(c.spec.name, "web");
    assert_int_equal(c.spec.n_env, 1);
    assert_string_equal(c.spec.env[0].value, "s3cret value");
    assert_int_equal(c.spec.n_ports, 2);
    assert_int_equal(c.spec.ports[1].host, 8081);
    assert_int_equal(c.spec.n_rules, 1);
    assert_null(c.spec.rules[0].value);
    assert_int_equal(c.spec.restart, API_RESTART_ON_FAILURE);
    chan_call_clear(&c);

    /* every truncation and one extra byte are refused */
    for (size_t n = CHAN_HDR_LEN; n < w.len; n++) {
        char why[128];
        if (chan_call_decode(CHAN_T_INSTANCE_CREATE, w.buf + CHAN_HDR_LEN, n - CHAN_HDR_LEN, &c,
                             why, sizeof why) == 0)
            fail_msg("a create truncated to %zu bytes decoded", n - CHAN_HDR_LEN);
    }
    chan_w_u32(&w, 0);
    assert_int_equal(decode_w(&w, CHAN_T_INSTANCE_CREATE, &c), -1);
    /* the same payload as another call type */
    w.len -= 8;
    assert_int_equal(decode_w(&w, CHAN_T_HOST_ADD, &c), CHAN_E_VALUE); /* its name */
    assert_int_equal(decode_w(&w, 0, &c), -1);
    assert_int_equal(decode_w(&w, CHAN_T__COUNT, &c), -1);
    assert_int_equal(decode_w(&w, CHAN_R_DONE, &c), -1);
    chan_w_free(&w);

    /* names, ports with a count: values, refused as such (a 400, the
     * channel stays) */
    put_spec(&w, "../etc", 1, 0);
    assert_int_equal(decode_w(&w, CHAN_T_INSTANCE_CREATE, &c), CHAN_E_VALUE);
    chan_w_free(&w);
    put_spec(&w, "abcd12", 1, 0); /* like an id */
    assert_int_equal(decode_w(&w, CHAN_T_INSTANCE_CREATE, &c), CHAN_E_VALUE);
    chan_w_free(&w);
    put_spec(&w, "web", 2, 1); /* ports need count 1 */
    assert_int_equal(decode_w(&w, CHAN_T_INSTANCE_CREATE, &c), CHAN_E_VALUE);
    chan_w_free(&w);
    put_spec(&w, "web", 0, 0);
    assert_int_equal(decode_w(&w, CHAN_T_INSTANCE_CREATE, &c), CHAN_E_VALUE);
    chan_w_free(&w);
    put_spec(&w, "web", API_COUNT_MAX + 1, 0);
    assert_int_equal(decode_w(&w, CHAN_T_INSTANCE_CREATE, &c), CHAN_E_VALUE);
    chan_w_free(&w);
    put_spec(&w, "web", 1, API_PORTS_MAX + 1);
    assert_int_equal(decode_w(&w, CHAN_T_INSTANCE_CREATE, &c), CHAN_E_VALUE);
    chan_w_free(&w);
}

/* One call of a few fields, built by a case function, must be refused. */
typedef void (*build_fn)(chan_w *w);

static void b_secret_empty(chan_w *w)
{
    chan_w_str(w, "");
}
static void b_secret_long(chan_w *w)
{
    char s[API_TOKEN_SECRET_MAX + 2];
    memset(s, 'a', sizeof s - 1);
    s[sizeof s - 1] = '\0';
    chan_w_str(w, s);
}
static void b_secret_null(chan_w *w)
{
    chan_w_str(w, NULL);
}
#define SECRET chan_w_str(w, "x")
static void b_ref_space(chan_w *w)
{
    SECRET;
    chan_w_str(w, "a b");
}
static void b_ref_dots(chan_w *w)
{
    SECRET;
    chan_w_str(w, "../../etc/passwd");
}
static void b_id_slash(chan_w *w)
{
    SECRET;
    chan_w_str(w, "a/b");
}
static void b_host_upper(chan_w *w)
{
    SECRET;
    chan_w_str(w, "Local");
}
static void b_write_empty(chan_w *w)
{
    SECRET;
    chan_w_u32(w, 1);
    chan_w_bytes(w, "", 0);
}
static void b_write_big(chan_w *w)
{
    static char big[CHAN_CHUNK_MAX + 1];
    SECRET;
    chan_w_u32(w, 1);
    chan_w_bytes(w, big, sizeof big);
}
static void b_read_len0(chan_w *w)
{
    SECRET;
    chan_w_u32(w, 1);
    chan_w_u32(w, 0);
    chan_w_u32(w, 5);
}
static void b_read_big(chan_w *w)
{
    SECRET;
    chan_w_u32(w, 1);
    chan_w_u32(w, CHAN_CHUNK_MAX + 1);
    chan_w_u32(w, 5);
}
static void b_read_slow(chan_w *w)
{
    SECRET;
    chan_w_u32(w, 1);
    chan_w_u32(w, 9);
    chan_w_u32(w, 1001);
}
static void b_action_delete(chan_w *w)
{
    SECRET;
    chan_w_str(w, "web");
    chan_w_u32(w, API_ACTION_DELETE);
    chan_w_u32(w, (uint32_t)-1);
}
static void b_action_timeout(chan_w *w)
{
    SECRET;
    chan_w_str(w, "web");
    chan_w_u32(w, API_ACTION_STOP);
    chan_w_u32(w, (uint32_t)-2);
}
static void bulk(chan_w *w, bool has_sel, uint32_t terms, uint32_t ids, const char *id)
{
    SECRET;
    chan_w_u32(w, API_ACTION_STOP);
    chan_w_bool(w, has_sel);
    chan_w_u32(w, terms);
    for (uint32_t i = 0; i < terms; i++) {
        chan_w_u32(w, API_SEL_EQ);
        chan_w_str(w, "app");
        chan_w_str(w, "web");
    }
    chan_w_u32(w, ids);
    for (uint32_t i = 0; i < ids; i++)
        chan_w_str(w, id);
    chan_w_u32(w, (uint32_t)-1);
    chan_w_bool(w, false);
}
static void b_bulk_both(chan_w *w)
{
    bulk(w, true, 1, 1, "web");
}
static void b_bulk_neither(chan_w *w)
{
    bulk(w, false, 0, 0, "web");
}
static void b_bulk_empty_sel(chan_w *w)
{
    bulk(w, true, 0, 0, "web");
}
static void b_bulk_ids(chan_w *w)
{
    bulk(w, false, 0, API_BULK_IDS_MAX + 1, "web");
}
static void b_bulk_terms(chan_w *w)
{
    bulk(w, true, API_SELECTOR_TERMS_MAX + 1, 0, "web");
}
static void b_bulk_ctl(chan_w *w)
{
    bulk(w, false, 0, 1, "we\nb");
}
static void b_sel_has_value(chan_w *w)
{
    SECRET;
    chan_w_u32(w, 1);
    chan_w_u32(w, API_SEL_HAS);
    chan_w_str(w, "app");
    chan_w_str(w, "web"); /* "k" has no value */
    chan_w_bool(w, false);
    chan_w_u32(w, 0);
    chan_w_str(w, NULL);
    chan_w_u32(w, 10);
    chan_w_str(w, NULL);
}
static void b_sel_op(chan_w *w)
{
    SECRET;
    chan_w_u32(w, 1);
    chan_w_u32(w, 9);
    chan_w_str(w, "app");
    chan_w_str(w, "");
    chan_w_bool(w, false);
    chan_w_u32(w, 0);
    chan_w_str(w, NULL);
    chan_w_u32(w, 10);
    chan_w_str(w, NULL);
}
static void b_list_state(chan_w *w)
{
    SECRET;
    chan_w_u32(w, 0);
    chan_w_bool(w, true);
    chan_w_u32(w, API_STATE_COUNT_);
    chan_w_str(w, NULL);
    chan_w_u32(w, 10);
    chan_w_str(w, NULL);
}
static void b_page0(chan_w *w)
{
    SECRET;
    chan_w_u32(w, 0);
    chan_w_str(w, NULL);
}
static void b_page_big(chan_w *w)
{
    SECRET;
    chan_w_u32(w, API_LIST_LIMIT_MAX + 1);
    chan_w_str(w, NULL);
}
static void b_page_cursor(chan_w *w)
{
    SECRET;
    chan_w_u32(w, 5);
    chan_w_str(w, "a\tb");
}
static void upload(chan_w *w, const char *name, uint32_t nl, const char *lk, const char *digest)
{
    SECRET;
    chan_w_str(w, name);
    chan_w_str(w, "latest");
    chan_w_u32(w, nl);
    for (uint32_t i = 0; i < nl; i++) {
        char k[16];
        snprintf(k, sizeof k, "%s%u", lk, i);
        chan_w_str(w, k);
        chan_w_str(w, "v");
    }
    chan_w_str(w, digest);
    chan_w_str(w, NULL);
    chan_w_bool(w, false);
    chan_w_u64(w, 10);
}
static void b_upload_labels(chan_w *w)
{
    upload(w, "img", API_LABELS_MAX + 1, "k", NULL);
}
static void b_upload_key(chan_w *w)
{
    upload(w, "img", 1, "-k", NULL);
}
static void b_upload_name(chan_w *w)
{
    upload(w, "IMG", 0, "k", NULL);
}
static void b_upload_digest(chan_w *w)
{
    upload(w, "img", 0, "k", "sha256:abc");
}
static void b_host_uri(chan_w *w)
{
    SECRET;
    chan_w_str(w, "h1");
    chan_w_str(w, "qemu+ssh://x/\x01");
    chan_w_u32(w, 0);
    chan_w_u32(w, API_DOMAIN_AUTO);
}
static void b_host_dt(chan_w *w)
{
    SECRET;
    chan_w_str(w, "h1");
    chan_w_str(w, "qemu:///system");
    chan_w_u32(w, 0);
    chan_w_u32(w, 3);
}
static void token(chan_w *w, uint32_t scope, const char *sel)
{
    SECRET;
    chan_w_str(w, "ci");
    chan_w_u32(w, scope);
    chan_w_str(w, sel);
    chan_w_u32(w, 0);
    chan_w_u32(w, 0);
    chan_w_u32(w, 0);
    chan_w_u64(w, 0);
    chan_w_u32(w, 0);
    chan_w_u32(w, 0);
    chan_w_u32(w, 0);
}
static void b_token_scope(chan_w *w)
{
    token(w, 3, "");
}
static void b_token_sel(chan_w *w)
{
    token(w, 0, "a==b");
}
static void b_audit_status(chan_w *w)
{
    SECRET;
    chan_w_str(w, "POST");
    chan_w_str(w, "/v1/instances");
    chan_w_u32(w, 99);
}
static void b_patch_ctl(chan_w *w)
{
    SECRET;
    chan_w_str(w, "img");
    chan_w_str(w, "qboot\n");
    for (int i = 0; i < 4; i++)
        chan_w_str(w, NULL);
    for (int i = 0; i < 3; i++)
        chan_w_u32(w, 0);
    chan_w_bool(w, false);
    chan_w_u32(w, 0);
}

static void t_decode_refusals(void **st)
{
    static const struct {
        chan_type type;
        build_fn build;
        const char *what;
        const char *field; /* the field the refusal must name */
    } cases[] = {
        { CHAN_T_AUTHENTICATE, b_secret_empty, "empty secret", "secret" },
        { CHAN_T_AUTHENTICATE, b_secret_long, "secret over the limit", "secret" },
        { CHAN_T_AUTHENTICATE, b_secret_null, "no secret", "secret" },
        { CHAN_T_IMAGE_GET, b_ref_space, "image ref with a space", "ref" },
        { CHAN_T_IMAGE_GET, b_ref_dots, "image ref with a path", "ref" },
        { CHAN_T_INSTANCE_GET, b_id_slash, "instance ref with a slash", "id" },
        { CHAN_T_HOST_GET, b_host_upper, "host name in capitals", "name" },
        { CHAN_T_UPLOAD_WRITE, b_write_empty, "empty upload chunk", "data" },
        { CHAN_T_UPLOAD_WRITE, b_write_big, "upload chunk over the limit", "data" },
        { CHAN_T_CONSOLE_READ, b_read_len0, "console read of 0 bytes", "len" },
        { CHAN_T_CONSOLE_READ, b_read_big, "console read over the chunk", "len" },
        { CHAN_T_CONSOLE_READ, b_read_slow, "stream timeout over 1 s", "timeout_ms" },
        { CHAN_T_INSTANCE_ACTION, b_action_delete, "delete as a single action", "action" },
        { CHAN_T_INSTANCE_ACTION, b_action_timeout, "timeout -2", "timeout_s" },
        { CHAN_T_INSTANCE_BULK, b_bulk_both, "bulk with selector and ids", "selector" },
        { CHAN_T_INSTANCE_BULK, b_bulk_neither, "bulk with neither", "selector" },
        { CHAN_T_INSTANCE_BULK, b_bulk_empty_sel, "bulk with an empty selector", "selector" },
        { CHAN_T_INSTANCE_BULK, b_bulk_ids, "too many ids", "ids" },
        { CHAN_T_INSTANCE_BULK, b_bulk_terms, "too many selector terms", "selector" },
        { CHAN_T_INSTANCE_BULK, b_bulk_ctl, "control character in an id", "ids" },
        { CHAN_T_INSTANCE_LIST, b_sel_has_value, "'has' term with a value", "selector" },
        { CHAN_T_INSTANCE_LIST, b_sel_op, "unknown selector op", "selector" },
        { CHAN_T_INSTANCE_LIST, b_list_state, "unknown state", "state" },
        { CHAN_T_HOST_LIST, b_page0, "limit 0", "limit" },
        { CHAN_T_HOST_LIST, b_page_big, "limit over the maximum", "limit" },
        { CHAN_T_HOST_LIST, b_page_cursor, "cursor with a tab", "after" },
        { CHAN_T_UPLOAD_BEGIN, b_upload_labels, "too many labels", "labels" },
        { CHAN_T_UPLOAD_BEGIN, b_upload_key, "bad label key", "labels" },
        { CHAN_T_UPLOAD_BEGIN, b_upload_name, "bad image name", "ref" },
        { CHAN_T_UPLOAD_BEGIN, b_upload_digest, "short digest", "digest" },
        { CHAN_T_HOST_ADD, b_host_uri, "control character in a URI", "uri" },
        { CHAN_T_HOST_ADD, b_host_dt, "unknown domain type", "domain_type" },
        { CHAN_T_TOKEN_CREATE, b_token_scope, "unknown scope", "scope" },
        { CHAN_T_TOKEN_CREATE, b_token_sel, "bad selector", "selector" },
        { CHAN_T_AUDIT, b_audit_status, "status 99", "http_status" },
        { CHAN_T_IMAGE_PATCH, b_patch_ctl, "control character in firmware", "firmware" },
    };
    chan_call c;

    (void)st;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char why[128], want[80];
        chan_w w;
        chan_w_init(&w);
        cases[i].build(&w);
        assert_false(w.oom);
        if (chan_call_decode((uint16_t)cases[i].type, w.buf + CHAN_HDR_LEN, w.len - CHAN_HDR_LEN,
                             &c, why, sizeof why) == 0)
            fail_msg("%s: decoded", cases[i].what);
        snprintf(want, sizeof want, "field '%s'", cases[i].field);
        if (strstr(why, want) == NULL)
            fail_msg("%s: refused for another reason: %s", cases[i].what, why);
        chan_w_free(&w);
    }
    /* and the well-formed neighbours of a few of them decode */
    {
        chan_w w;
        chan_w_init(&w);
        bulk(&w, false, 0, 2, "web");
        assert_int_equal(decode_w(&w, CHAN_T_INSTANCE_BULK, &c), 0);
        assert_int_equal(c.bulk.n_ids, 2);
        assert_null(c.bulk.selector);
        chan_call_clear(&c);
        chan_w_free(&w);
        chan_w_init(&w);
        upload(&w, "img", 2, "k", NULL);
        assert_int_equal(decode_w(&w, CHAN_T_UPLOAD_BEGIN, &c), 0);
        assert_int_equal(c.upload.n_labels, 2);
        chan_call_clear(&c);
        chan_w_free(&w);
        chan_w_init(&w);
        token(&w, API_SCOPE_OPERATOR, "app=web");
        assert_int_equal(decode_w(&w, CHAN_T_TOKEN_CREATE, &c), 0);
        assert_string_equal(c.token.selector, "app=web");
        chan_call_clear(&c);
        chan_w_free(&w);
    }
}

/* The root's scope per call is the route's (route.c api_route_scope). */
static void t_scopes(void **st)
{
    static const struct {
        api_op op;
        chan_type t;
    } map[] = {
        { API_OP_IMAGE_UPLOAD, CHAN_T_UPLOAD_BEGIN },
        { API_OP_INITRD_UPLOAD, CHAN_T_UPLOAD_COMMIT },
        { API_OP_IMAGE_LIST, CHAN_T_IMAGE_LIST },
        { API_OP_IMAGE_GET, CHAN_T_IMAGE_GET },
        { API_OP_IMAGE_DELETE, CHAN_T_IMAGE_DELETE },
        { API_OP_IMAGE_PATCH, CHAN_T_IMAGE_PATCH },
        { API_OP_IMAGE_TAG, CHAN_T_IMAGE_TAG },
        { API_OP_INSTANCE_CREATE, CHAN_T_INSTANCE_CREATE },
        { API_OP_INSTANCE_LIST, CHAN_T_INSTANCE_LIST },
        { API_OP_BULK_DELETE_QUERY, CHAN_T_INSTANCE_BULK },
        { API_OP_BULK_STOP, CHAN_T_INSTANCE_BULK },
        { API_OP_INSTANCE_GET, CHAN_T_INSTANCE_GET },
        { API_OP_INSTANCE_DELETE, CHAN_T_INSTANCE_DELETE },
        { API_OP_INSTANCE_STOP, CHAN_T_INSTANCE_ACTION },
        { API_OP_CONSOLE, CHAN_T_CONSOLE_OPEN },
        { API_OP_HOST_LIST, CHAN_T_HOST_LIST },
        { API_OP_HOST_ADD, CHAN_T_HOST_ADD },
        { API_OP_HOST_GET, CHAN_T_HOST_GET },
        { API_OP_HOST_DELETE, CHAN_T_HOST_DELETE },
        { API_OP_HOST_CORDON, CHAN_T_HOST_CORDON },
        { API_OP_HOST_DRAIN, CHAN_T_HOST_DRAIN },
        { API_OP_CONSOLIDATE, CHAN_T_CONSOLIDATE },
        { API_OP_EVENTS, CHAN_T_EVENTS_OPEN },
        { API_OP_METRICS, CHAN_T_METRICS },
        { API_OP_TOKEN_CREATE, CHAN_T_TOKEN_CREATE },
        { API_OP_TOKEN_LIST, CHAN_T_TOKEN_LIST },
        { API_OP_TOKEN_DELETE, CHAN_T_TOKEN_DELETE },
    };
    size_t n;
    const api_route *routes = api_route_table(&n);

    (void)st;
    for (size_t i = 0; i < n; i++) {
        if (routes[i].open)
            continue;
        for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
            if (map[k].op == routes[i].op &&
                chan_call_scope(map[k].t) != api_route_scope(&routes[i]))
                fail_msg("%s %s: root scope %d, route scope %d", routes[i].method,
                         routes[i].pattern, chan_call_scope(map[k].t), api_route_scope(&routes[i]));
        }
    }
}

/* Every api_backend function crosses the channel: none of the front's is
 * NULL (a function added to api.h but not to the channel would answer
 * 500 with privilege separation on), one call type each. */
static void t_client_complete(void **st)
{
    typedef void (*fn)(void);
    const api_backend *be = chan_client_backend();
    fn f[sizeof *be / sizeof(fn)];
    size_t n = sizeof *be / sizeof(fn);

    (void)st;
    _Static_assert(sizeof(api_backend) % sizeof(fn) == 0, "api_backend holds only functions");
    memcpy(f, be, sizeof f);
    for (size_t i = 0; i < n; i++) {
        if (f[i] == NULL)
            fail_msg("api_backend function %zu has no channel call (api/chan_client.c)", i);
    }
    assert_int_equal(n, CHAN_T__COUNT - 1);
}

/* ---- integration -------------------------------------------------------- */

static fake *F;
static api_backend ROOT_BE; /* the fake plus tokens and an audit spy */
static char audit_log[2048];
static pthread_mutex_t audit_mu = PTHREAD_MUTEX_INITIALIZER;

static api_code stub_auth(void *ctx, const char *secret, api_principal *who)
{
    (void)ctx;
    memset(who, 0, sizeof *who);
    if (strcmp(secret, "admin-secret") == 0) {
        snprintf(who->name, sizeof who->name, "root-admin");
        who->scope = API_SCOPE_ADMIN;
        return API_OK;
    }
    if (strcmp(secret, "read-secret") == 0) {
        snprintf(who->name, sizeof who->name, "reader");
        who->scope = API_SCOPE_READ_ONLY;
        return API_OK;
    }
    return API_E_UNAUTHORIZED;
}

static void stub_audit(void *ctx, const api_principal *who, const char *method, const char *path,
                       int status)
{
    size_t n;

    (void)ctx;
    pthread_mutex_lock(&audit_mu);
    n = strlen(audit_log);
    snprintf(audit_log + n, sizeof audit_log - n, "%s %s %s %d\n", who->name, method, path, status);
    pthread_mutex_unlock(&audit_mu);
}

/* Within 5 s, the audit log holds line. */
static bool audit_has(const char *line)
{
    for (int i = 0; i < 500; i++) {
        bool found;
        pthread_mutex_lock(&audit_mu);
        found = strstr(audit_log, line) != NULL;
        pthread_mutex_unlock(&audit_mu);
        if (found)
            return true;
        usleep(10000);
    }
    return false;
}

typedef struct root_thread {
    pthread_t t;
    int fd;
    int rc;
    char why[128];
} root_thread;

static void *root_main(void *arg)
{
    root_thread *r = arg;
    chan_server_opts o = { 8 };
    r->rc = chan_server_run(r->fd, &ROOT_BE, F, &o, r->why, sizeof r->why);
    return NULL;
}

static void root_start(root_thread *r, int *front_fd)
{
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    r->fd = sv[0];
    *front_fd = sv[1];
    assert_int_equal(pthread_create(&r->t, NULL, root_main, r), 0);
}

static void fake_up(void)
{
    F = calloc(1, sizeof *F);
    assert_non_null(F);
    fake_init(F);
    ROOT_BE = fake_backend;
    ROOT_BE.authenticate = stub_auth;
    ROOT_BE.audit = stub_audit;
    audit_log[0] = '\0';
}

static void fake_down(void)
{
    fake_destroy(F);
    free(F);
    F = NULL;
}

typedef struct body {
    char *p;
    size_t n;
} body;

static size_t on_body(char *d, size_t sz, size_t nm, void *u)
{
    body *b = u;
    size_t n = sz * nm;
    char *p = realloc(b->p, b->n + n + 1);

    if (p == NULL)
        return 0;
    memcpy(p + b->n, d, n);
    b->n += n;
    p[b->n] = '\0';
    b->p = p;
    return n;
}

static long http(uint16_t port, const char *method, const char *path, const char *secret,
                 const char *ctype, const void *data, size_t dlen, long timeout_ms, body *out)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char url[256], auth[200], ct[100];
    long code = 0;

    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (secret != NULL) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", secret);
        h = curl_slist_append(h, auth);
    }
    if (data != NULL) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)dlen);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_perform(c); /* a stream cut by the timeout still answered */
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}

#define JSON "application/json"

/* Root end, front end and the api server over them; the server's port. */
static uint16_t stack_up(root_thread *root, int *front_fd, chan_client **cc, api_server **srv)
{
    api_config cfg;
    api_err err;

    root_start(root, front_fd);
    assert_int_equal(chan_client_open(*front_fd, 8, NULL, NULL, cc), 0);
    memset(&cfg, 0, sizeof cfg);
    cfg.listen_addr = "127.0.0.1";
    assert_int_equal(api_server_start(&cfg, chan_client_backend(), *cc, srv, &err), 0);
    return api_server_port(*srv);
}

/* The server stops, the root sees EOF and ends. */
static void stack_down(root_thread *root, int front_fd, chan_client *cc, api_server *srv)
{
    api_server_stop(srv);
    chan_client_close(cc);
    close(front_fd);
    pthread_join(root->t, NULL);
    assert_int_equal(root->rc, 0);
    chan_server_wait_idle();
}

static void t_http_over_channel(void **st)
{
    root_thread root = { 0 };
    chan_client *cc = NULL;
    api_server *srv = NULL;
    uint16_t port;
    body b = { 0 };
    char *img;
    const size_t img_len = 200 * 1024; /* four chunks or more */
    int front_fd;
    char path[128];
    char *id;

    (void)st;
    fake_up();
    port = stack_up(&root, &front_fd, &cc, &srv);

    assert_int_equal(http(port, "GET", "/healthz", NULL, NULL, NULL, 0, 5000, &b), 200);
    assert_int_equal(http(port, "GET", "/v1/instances", NULL, NULL, NULL, 0, 5000, &b), 401);
    assert_int_equal(http(port, "GET", "/v1/instances", "wrong", NULL, NULL, 0, 5000, &b), 401);

    /* an upload crosses in chunks */
    img = calloc(1, img_len);
    memcpy(img,
           "\x7f"
           "ELF",
           4);
    free(b.p);
    b = (body){ 0 };
    assert_int_equal(http(port, "POST", "/v1/images?ref=hello:1", "admin-secret",
                          "application/octet-stream", img, img_len, 10000, &b),
                     201);
    assert_non_null(strstr(b.p, "\"hello:1\""));
    assert_true(atomic_load(&F->upload_max_chunk) <= CHAN_CHUNK_MAX);
    assert_true(atomic_load(&F->upload_writes) >= img_len / CHAN_CHUNK_MAX);
    free(img);

    free(b.p);
    b = (body){ 0 };
    assert_int_equal(http(port, "POST", "/v1/instances", "admin-secret", JSON,
                          "{\"image\":\"hello:1\",\"name\":\"web\",\"labels\":{\"app\":\"web\"},"
                          "\"env\":{\"K\":\"v\"}}",
                          strlen("{\"image\":\"hello:1\",\"name\":\"web\",\"labels\":{\"app\":"
                                 "\"web\"},\"env\":{\"K\":\"v\"}}"),
                          10000, &b),
                     201);
    id = strstr(b.p, "\"id\":\"");
    assert_non_null(id);
    id = strndup(id + 6, 12);
    free(b.p);
    b = (body){ 0 };
    assert_int_equal(http(port, "GET", "/v1/instances?selector=app%3Dweb", "read-secret", NULL,
                          NULL, 0, 5000, &b),
                     200);
    assert_non_null(strstr(b.p, "\"name\":\"web\""));
    assert_non_null(strstr(b.p, "\"next\":"));
    /* the front's scope check, then the root's own (raw frames below) */
    assert_int_equal(http(port, "DELETE", "/v1/instances/web?force=true", "read-secret", NULL, NULL,
                          0, 5000, &b),
                     403);
    assert_int_equal(
        http(port, "GET", "/v1/instances/nosuch", "read-secret", NULL, NULL, 0, 5000, &b), 404);

    /* console: retained output, then following until the fake stops */
    free(b.p);
    b = (body){ 0 };
    snprintf(path, sizeof path, "/v1/instances/%s/console", id);
    assert_int_equal(http(port, "GET", path, "read-secret", NULL, NULL, 0, 5000, &b), 200);
    assert_string_equal(b.p, "line 1\nline 2\nline 3\n");
    free(b.p);
    b = (body){ 0 };
    snprintf(path, sizeof path, "/v1/instances/%s/console?follow=true", id);
    assert_int_equal(http(port, "GET", path, "read-secret", NULL, NULL, 0, 10000, &b), 200);
    assert_non_null(strstr(b.p, "follow 5\n"));

    /* events: what the fake emits reaches the SSE stream */
    fake_emit(F, "instance.state", id, "running");
    free(b.p);
    b = (body){ 0 };
    assert_int_equal(
        http(port, "GET", "/v1/events?since=0", "read-secret", NULL, NULL, 0, 1500, &b), 200);
    assert_non_null(strstr(b.p, "event: instance.state"));
    assert_non_null(strstr(b.p, "\"state\":\"running\""));

    free(b.p);
    b = (body){ 0 };
    assert_int_equal(http(port, "GET", "/metrics", "read-secret", NULL, NULL, 0, 5000, &b), 200);
    assert_non_null(strstr(b.p, "shoal_http_requests_total"));

    assert_int_equal(http(port, "DELETE", "/v1/instances/web?force=true", "admin-secret", NULL,
                          NULL, 0, 5000, &b),
                     204);
    /* the audit names the token the root authenticated (it is written
     * once the answer is out: wait for it) */
    assert_true(audit_has("root-admin DELETE /v1/instances/web 204"));
    assert_true(audit_has("root-admin POST /v1/instances 201"));

    stack_down(&root, front_fd, cc, srv);
    assert_int_equal(atomic_load(&F->streams_open), 0);
    free(b.p);
    free(id);
    fake_down();
}

/* Raw frames to the root end: one call, its DONE reply decoded. */
static void raw_call(int fd, uint16_t type, uint32_t id, chan_w *w, chan_done *d,
                     unsigned char **keep)
{
    unsigned char hb[CHAN_HDR_LEN];
    chan_hdr h;

    assert_int_equal(chan_w_finish(w, type, id, CHAN_REQ_MAX), 0);
    assert_int_equal(write(fd, w->buf, w->len), (ssize_t)w->len);
    chan_w_free(w);
    for (;;) {
        assert_int_equal(read(fd, hb, sizeof hb), (ssize_t)sizeof hb);
        assert_int_equal(chan_hdr_get(hb, CHAN_REP_MAX, &h), 0);
        *keep = malloc(h.len + 1);
        assert_int_equal(recv(fd, *keep, h.len, MSG_WAITALL), (ssize_t)h.len);
        if (h.type == CHAN_R_DONE)
            break;
        free(*keep);
    }
    assert_int_equal(h.id, id);
    assert_int_equal(chan_done_get(*keep, h.len, d), 0);
}

static void t_root_enforces(void **st)
{
    root_thread root = { 0 };
    unsigned char *p;
    chan_done d;
    chan_w w;
    int fd;
    uint32_t console_h, events_h;

    (void)st;
    fake_up();
    root_start(&root, &fd);

    /* a read-only token cannot delete, whatever the front decided */
    chan_w_init(&w);
    chan_w_str(&w, "read-secret");
    chan_w_str(&w, "web");
    chan_w_bool(&w, true);
    raw_call(fd, CHAN_T_INSTANCE_DELETE, 1, &w, &d, &p);
    assert_int_equal(d.code, API_E_FORBIDDEN);
    free(p);
    /* a wrong secret gets nothing */
    chan_w_init(&w);
    chan_w_str(&w, "guess");
    chan_w_u32(&w, 10);
    chan_w_str(&w, NULL);
    raw_call(fd, CHAN_T_HOST_LIST, 2, &w, &d, &p);
    assert_int_equal(d.code, API_E_UNAUTHORIZED);
    free(p);
    /* a handle it was never given */
    chan_w_init(&w);
    chan_w_str(&w, "read-secret");
    chan_w_u32(&w, 12345);
    chan_w_u32(&w, 100);
    chan_w_u32(&w, 10);
    raw_call(fd, CHAN_T_CONSOLE_READ, 3, &w, &d, &p);
    assert_int_equal(d.code, API_E_BAD_REQUEST);
    free(p);
    /* open a console (of an instance made first) and an event stream */
    {
        api_instance_spec spec = { .image = "x", .count = 1, .memory_mib = 32, .vcpus = 1 };
        api_sink *s = api_sink_new(API_SINK_INSTANCE, API_SHAPE_ITEMS);
        api_status ignore;
        fake_image *im = &F->images[0];
        snprintf(im->digest, sizeof im->digest, "sha256:%064d", 1);
        snprintf(im->refs[0], sizeof im->refs[0], "x:latest");
        im->n_refs = 1;
        im->used = true;
        assert_int_equal(fake_backend.instance_create(F, &spec, s, &ignore), API_OK);
        api_sink_free(s);
    }
    chan_w_init(&w);
    chan_w_str(&w, "read-secret");
    chan_w_str(&w, F->inst[0].id);
    chan_w_u64(&w, UINT64_MAX);
    chan_w_bool(&w, true);
    raw_call(fd, CHAN_T_CONSOLE_OPEN, 4, &w, &d, &p);
    assert_int_equal(d.code, API_OK);
    console_h = d.handle;
    free(p);
    chan_w_init(&w);
    chan_w_str(&w, "read-secret");
    chan_w_bool(&w, false);
    chan_w_u64(&w, 0);
    raw_call(fd, CHAN_T_EVENTS_OPEN, 5, &w, &d, &p);
    assert_int_equal(d.code, API_OK);
    events_h = d.handle;
    free(p);
    assert_true(console_h != 0 && events_h != 0 && console_h != events_h);
    assert_int_equal(atomic_load(&F->streams_open), 2);
    /* a console handle is not an event handle */
    chan_w_init(&w);
    chan_w_str(&w, "read-secret");
    chan_w_u32(&w, console_h);
    chan_w_u32(&w, 10);
    raw_call(fd, CHAN_T_EVENTS_NEXT, 6, &w, &d, &p);
    assert_int_equal(d.code, API_E_BAD_REQUEST);
    free(p);
    /* a read works */
    chan_w_init(&w);
    chan_w_str(&w, "read-secret");
    chan_w_u32(&w, console_h);
    chan_w_u32(&w, 7);
    chan_w_u32(&w, 10);
    raw_call(fd, CHAN_T_CONSOLE_READ, 7, &w, &d, &p);
    assert_int_equal(d.code, API_OK);
    assert_int_equal(d.value, 7);
    assert_memory_equal(d.blob, "line 1\n", 7);
    free(p);

    /* a well-framed call with a value root refuses is answered 400 naming
     * the field, and the channel stays */
    chan_w_init(&w);
    chan_w_str(&w, "read-secret");
    chan_w_str(&w, "../../etc/passwd");
    raw_call(fd, CHAN_T_IMAGE_GET, 8, &w, &d, &p);
    assert_int_equal(d.code, API_E_INVALID_FIELD);
    free(p);
    chan_w_init(&w);
    chan_w_str(&w, "read-secret");
    chan_w_u32(&w, console_h);
    chan_w_u32(&w, 7);
    chan_w_u32(&w, 10);
    raw_call(fd, CHAN_T_CONSOLE_READ, 9, &w, &d, &p);
    assert_int_equal(d.code, API_OK);
    free(p);

    /* a malformed frame ends the channel; what the front left open is
     * released */
    {
        unsigned char junk[CHAN_HDR_LEN + 4] = { 0 };
        chan_hdr h = { 4, CHAN_T_IMAGE_GET, 0, 9 };
        chan_hdr_put(junk, &h);
        memcpy(junk + CHAN_HDR_LEN, "\x09\0\0\0", 4); /* a field longer than the frame */
        assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    }
    pthread_join(root.t, NULL);
    assert_int_equal(root.rc, -1);
    assert_non_null(strstr(root.why, "secret"));
    chan_server_wait_idle();
    assert_int_equal(atomic_load(&F->streams_open), 0);
    close(fd);
    fake_down();
}

/* An oversized frame header ends the channel before any payload is read. */
static void t_root_oversized(void **st)
{
    root_thread root = { 0 };
    unsigned char hb[CHAN_HDR_LEN];
    chan_hdr h = { CHAN_REQ_MAX + 1, CHAN_T_IMAGE_GET, 0, 1 };
    int fd;

    (void)st;
    fake_up();
    root_start(&root, &fd);
    chan_hdr_put(hb, &h);
    assert_int_equal(write(fd, hb, sizeof hb), (ssize_t)sizeof hb);
    pthread_join(root.t, NULL);
    assert_int_equal(root.rc, -1);
    assert_non_null(strstr(root.why, "header"));
    close(fd);
    chan_server_wait_idle();
    fake_down();
}

/* ---- the front's principal cache and the root's call workers ----------- */

static atomic_uint auth_calls; /* the root's authentications */
static atomic_bool op_revoked; /* "op-secret" was revoked */
static atomic_llong exp_at;    /* "exp-secret" expires (Unix s) */

/* stub_auth's tokens plus: op-secret (revocable), exp-secret (expires at
 * exp_at: refused from then on, named, as the daemon does), rate-secret
 * (1 request/s, burst 1). Counts every call. */
static api_code cache_auth(void *ctx, const char *secret, api_principal *who)
{
    atomic_fetch_add(&auth_calls, 1);
    if (strcmp(secret, "op-secret") == 0 || strcmp(secret, "exp-secret") == 0 ||
        strcmp(secret, "rate-secret") == 0) {
        memset(who, 0, sizeof *who);
        snprintf(who->id, sizeof who->id, "%c00000000000", secret[0]);
        snprintf(who->name, sizeof who->name, "%.4s", secret);
        who->scope = API_SCOPE_OPERATOR;
        if (secret[0] == 'o' && atomic_load(&op_revoked))
            return API_E_UNAUTHORIZED;
        if (secret[0] == 'e') {
            who->expires = atomic_load(&exp_at);
            if ((int64_t)time(NULL) >= who->expires) {
                who->id[0] = '\0';
                return API_E_UNAUTHORIZED;
            }
        }
        if (secret[0] == 'r')
            who->rate = who->burst = 1;
        return API_OK;
    }
    return stub_auth(ctx, secret, who);
}

static void t_principal_cache(void **st)
{
    root_thread root = { 0 };
    chan_client *cc = NULL;
    api_server *srv = NULL;
    uint16_t port;
    body b = { 0 };
    int front_fd;
    unsigned long started0, started1;
    unsigned alive, idle;

    (void)st;
    fake_up();
    ROOT_BE.authenticate = cache_auth;
    atomic_store(&auth_calls, 0);
    atomic_store(&op_revoked, false);
    port = stack_up(&root, &front_fd, &cc, &srv);

    /* one round trip a request: the root authenticates each call (10),
     * the front asked it for the principal once */
    assert_int_equal(http(port, "GET", "/v1/instances", "op-secret", NULL, NULL, 0, 5000, &b), 200);
    chan_server_workers(&started0, &alive, &idle);
    for (int i = 0; i < 9; i++)
        assert_int_equal(http(port, "GET", "/v1/instances", "op-secret", NULL, NULL, 0, 5000, &b),
                         200);
    assert_int_equal(atomic_load(&auth_calls), 11);
    /* and the calls ran on the workers already there, one after another */
    chan_server_workers(&started1, &alive, &idle);
    assert_true(started1 - started0 <= 1);
    assert_true(idle >= 1 && alive >= idle);

    /* revoked: refused at once (the root's check of the call), and the
     * front forgot it (its own 401 next: "wrong") */
    atomic_store(&op_revoked, true);
    free(b.p);
    b = (body){ 0 };
    assert_int_equal(http(port, "GET", "/v1/instances", "op-secret", NULL, NULL, 0, 5000, &b), 401);
    free(b.p);
    b = (body){ 0 };
    assert_int_equal(http(port, "GET", "/v1/instances", "op-secret", NULL, NULL, 0, 5000, &b), 401);
    assert_non_null(strstr(b.p, "wrong bearer token"));

    /* expired: the cached principal is not used past its token's expiry,
     * so the answer names the expired token */
    atomic_store(&exp_at, (long long)time(NULL) + 1);
    assert_int_equal(http(port, "GET", "/v1/instances", "exp-secret", NULL, NULL, 0, 5000, &b),
                     200);
    while ((int64_t)time(NULL) < atomic_load(&exp_at))
        usleep(20000);
    free(b.p);
    b = (body){ 0 };
    assert_int_equal(http(port, "GET", "/v1/instances", "exp-secret", NULL, NULL, 0, 5000, &b),
                     401);
    assert_non_null(strstr(b.p, "expired at"));

    /* the rate limit holds for a cached principal */
    assert_int_equal(http(port, "GET", "/v1/instances", "rate-secret", NULL, NULL, 0, 5000, &b),
                     200);
    assert_int_equal(http(port, "GET", "/v1/instances", "rate-secret", NULL, NULL, 0, 5000, &b),
                     429);

    stack_down(&root, front_fd, cc, srv);
    free(b.p);
    fake_down();
}

/* Calls that block run side by side on workers of their own (a worker is
 * started when none is idle), and the workers stay for the next calls. */
static void t_call_workers(void **st)
{
    enum { N = 6 };
    root_thread root = { 0 };
    unsigned char hb[CHAN_HDR_LEN];
    struct timespec t0, t1;
    unsigned long started;
    unsigned alive, idle, done = 0;
    uint32_t ev_h[N];
    chan_done d;
    chan_w w;
    unsigned char *p;
    int fd;
    double ms;

    (void)st;
    fake_up();
    root_start(&root, &fd);
    for (uint32_t i = 0; i < N; i++) {
        chan_w_init(&w);
        chan_w_str(&w, "read-secret");
        chan_w_bool(&w, false);
        chan_w_u64(&w, 0);
        raw_call(fd, CHAN_T_EVENTS_OPEN, 100 + i, &w, &d, &p);
        assert_int_equal(d.code, API_OK);
        ev_h[i] = d.handle;
        free(p);
    }
    /* N event waits of 300 ms sent at once end together */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint32_t i = 0; i < N; i++) {
        chan_w_init(&w);
        chan_w_str(&w, "read-secret");
        chan_w_u32(&w, ev_h[i]);
        chan_w_u32(&w, 300);
        assert_int_equal(chan_w_finish(&w, CHAN_T_EVENTS_NEXT, 200 + i, CHAN_REQ_MAX), 0);
        assert_int_equal(write(fd, w.buf, w.len), (ssize_t)w.len);
        chan_w_free(&w);
    }
    while (done < N) {
        chan_hdr h;
        assert_int_equal(read(fd, hb, sizeof hb), (ssize_t)sizeof hb);
        assert_int_equal(chan_hdr_get(hb, CHAN_REP_MAX, &h), 0);
        p = malloc(h.len + 1);
        assert_int_equal(recv(fd, p, h.len, MSG_WAITALL), (ssize_t)h.len);
        free(p);
        done += h.type == CHAN_R_DONE;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms < N * 300 / 2); /* not one after another */
    chan_server_workers(&started, &alive, &idle);
    assert_true(alive >= N);
    shutdown(fd, SHUT_WR); /* EOF: the root ends, the streams are released */
    pthread_join(root.t, NULL);
    assert_int_equal(root.rc, 0);
    chan_server_wait_idle();
    assert_int_equal(atomic_load(&F->streams_open), 0);
    close(fd);
    fake_down();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_header),
        cmocka_unit_test(t_reader),
        cmocka_unit_test(t_decode_spec),
        cmocka_unit_test(t_decode_refusals),
        cmocka_unit_test(t_scopes),
        cmocka_unit_test(t_client_complete),
        cmocka_unit_test(t_http_over_channel),
        cmocka_unit_test(t_root_enforces),
        cmocka_unit_test(t_root_oversized),
        cmocka_unit_test(t_principal_cache),
        cmocka_unit_test(t_call_workers),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
