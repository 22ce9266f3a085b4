/* test_codec.c - unit tests: request decoders, query strings, selectors,
 * validators and response encoders (golden JSON). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "codec.h"

/* Decode body as an instance spec; expect code and field. */
static void expect_spec_err(const char *body, api_code code, const char *field)
{
    api_instance_spec spec;
    api_status st = { 0 };
    api_code rc = api_decode_instance_spec(body, strlen(body), &spec, &st);

    if (rc != code || (field != NULL && strcmp(st.field, field) != 0))
        print_error("body %s: got %s field '%s' (%s)\n", body, api_code_str(rc), st.field,
                    st.message);
    assert_int_equal(rc, code);
    if (field != NULL)
        assert_string_equal(st.field, field);
    assert_null(spec.priv_);
}

static void t_spec_full(void **state)
{
    const char *body = "{\"image\": \"hello:latest\", \"name\": \"web\", \"count\": 3,"
                       " \"memory_mib\": 64, \"vcpus\": 2, \"args\": [\"--port\", \"80\"],"
                       " \"env\": {\"MODE\": \"fast\"}, \"labels\": {\"app\": \"web\"},"
                       " \"restart\": \"on-failure\", \"host\": \"local\", \"network\": false}";
    api_instance_spec s;
    api_status st = { 0 };

    (void)state;
    assert_int_equal(api_decode_instance_spec(body, strlen(body), &s, &st), API_OK);
    assert_string_equal(s.image, "hello:latest");
    assert_string_equal(s.name, "web");
    assert_int_equal(s.count, 3);
    assert_int_equal(s.memory_mib, 64);
    assert_int_equal(s.vcpus, 2);
    assert_int_equal(s.n_args, 2);
    assert_string_equal(s.args[1], "80");
    assert_int_equal(s.n_env, 1);
    assert_string_equal(s.env[0].key, "MODE");
    assert_string_equal(s.env[0].value, "fast");
    assert_int_equal(s.n_labels, 1);
    assert_string_equal(s.labels[0].value, "web");
    assert_int_equal(s.restart, API_RESTART_ON_FAILURE);
    assert_string_equal(s.host, "local");
    assert_false(s.network);
    api_instance_spec_clear(&s);
    api_instance_spec_clear(&s); /* idempotent */
    api_instance_spec_clear(NULL);
}

static void t_spec_defaults(void **state)
{
    const char *body = "{\"image\":\"sha256:9f86d0\", \"host\": null}";
    api_instance_spec s;
    api_status st = { 0 };

    (void)state;
    assert_int_equal(api_decode_instance_spec(body, strlen(body), &s, &st), API_OK);
    assert_null(s.name);
    assert_null(s.host);
    assert_int_equal(s.count, 1);
    assert_int_equal(s.memory_mib, 32);
    assert_int_equal(s.vcpus, 1);
    assert_int_equal(s.restart, API_RESTART_NEVER);
    assert_true(s.network);
    assert_int_equal(s.n_args + s.n_env + s.n_labels + s.n_ports, 0);
    api_instance_spec_clear(&s);
}

static void t_spec_ports(void **state)
{
    const char *body = "{\"image\":\"a\",\"ports\":[{\"host\":8080,\"guest\":80},"
                       "{\"host\":53,\"guest\":53,\"protocol\":\"udp\"}]}";
    api_instance_spec s;
    api_status st = { 0 };

    (void)state;
    assert_int_equal(api_decode_instance_spec(body, strlen(body), &s, &st), API_OK);
    assert_int_equal(s.n_ports, 2);
    assert_int_equal(s.ports[0].host, 8080);
    assert_int_equal(s.ports[0].guest, 80);
    assert_int_equal(s.ports[0].protocol, API_PROTO_TCP);
    assert_int_equal(s.ports[1].protocol, API_PROTO_UDP);
    api_instance_spec_clear(&s);
}

/* "scale_to_zero": {"idle_s": N}, only with a published tcp port. */
static void t_spec_scale_to_zero(void **state)
{
    const char *body = "{\"image\":\"web\",\"ports\":[{\"host\":8080,\"guest\":80}],"
                       "\"scale_to_zero\":{\"idle_s\":30}}";
    api_instance_spec s;
    api_status st = { 0 };
    (void)state;
    assert_int_equal(api_decode_instance_spec(body, strlen(body), &s, &st), API_OK);
    assert_int_equal(s.idle_s, 30);
    api_instance_spec_clear(&s);
    body = "{\"image\":\"web\"}";
    assert_int_equal(api_decode_instance_spec(body, strlen(body), &s, &st), API_OK);
    assert_int_equal(s.idle_s, 0);
    api_instance_spec_clear(&s);
    /* no port, a udp port only, no number, out of range, wrong shapes */
    expect_spec_err("{\"image\":\"a\",\"scale_to_zero\":{\"idle_s\":30}}", API_E_INVALID_FIELD,
                    "scale_to_zero");
    expect_spec_err("{\"image\":\"a\",\"ports\":[{\"host\":53,\"guest\":53,\"protocol\":"
                    "\"udp\"}],\"scale_to_zero\":{\"idle_s\":30}}",
                    API_E_INVALID_FIELD, "scale_to_zero");
    expect_spec_err("{\"image\":\"a\",\"ports\":[{\"host\":80,\"guest\":80}],"
                    "\"scale_to_zero\":{}}",
                    API_E_INVALID_FIELD, "scale_to_zero.idle_s");
    expect_spec_err("{\"image\":\"a\",\"ports\":[{\"host\":80,\"guest\":80}],"
                    "\"scale_to_zero\":{\"idle_s\":0}}",
                    API_E_INVALID_FIELD, "scale_to_zero.idle_s");
    expect_spec_err("{\"image\":\"a\",\"ports\":[{\"host\":80,\"guest\":80}],"
                    "\"scale_to_zero\":{\"idle_s\":86401}}",
                    API_E_INVALID_FIELD, "scale_to_zero.idle_s");
    expect_spec_err("{\"image\":\"a\",\"ports\":[{\"host\":80,\"guest\":80}],"
                    "\"scale_to_zero\":{\"idle_s\":\"30\"}}",
                    API_E_INVALID_FIELD, "scale_to_zero.idle_s");
    expect_spec_err("{\"image\":\"a\",\"ports\":[{\"host\":80,\"guest\":80}],"
                    "\"scale_to_zero\":30}",
                    API_E_INVALID_FIELD, "scale_to_zero");
    expect_spec_err("{\"image\":\"a\",\"ports\":[{\"host\":80,\"guest\":80}],"
                    "\"scale_to_zero\":{\"idle_s\":5,\"x\":1}}",
                    API_E_INVALID_FIELD, "scale_to_zero.x");
}

static void t_spec_placement(void **state)
{
    const char *body =
        "{\"image\":\"web\",\"placement\":{\"policy\":\"spread\","
        "\"rules\":[{\"kind\":\"anti-affinity\",\"key\":\"app\",\"value\":\"web\"},"
        "{\"kind\":\"host-affinity\",\"key\":\"zone\",\"soft\":true,\"weight\":5}]}}";
    api_instance_spec s;
    api_status st = { 0 };
    (void)state;
    assert_int_equal(api_decode_instance_spec(body, strlen(body), &s, &st), API_OK);
    assert_true(s.spread);
    assert_int_equal(s.n_rules, 2);
    assert_int_equal(s.rules[0].kind, API_RULE_ANTI_AFFINITY);
    assert_string_equal(s.rules[0].key, "app");
    assert_string_equal(s.rules[0].value, "web");
    assert_false(s.rules[0].soft);
    assert_int_equal(s.rules[0].weight, 1);
    assert_int_equal(s.rules[1].kind, API_RULE_HOST_AFFINITY);
    assert_null(s.rules[1].value);
    assert_true(s.rules[1].soft);
    assert_int_equal(s.rules[1].weight, 5);
    api_instance_spec_clear(&s);

    expect_spec_err("{\"image\":\"a\",\"name\":\"72f609\"}", API_E_INVALID_FIELD, "name");
    expect_spec_err("{\"image\":\"a\",\"placement\":[]}", API_E_INVALID_FIELD, "placement");
    expect_spec_err("{\"image\":\"a\",\"placement\":{\"policy\":\"random\"}}", API_E_INVALID_FIELD,
                    "placement.policy");
    expect_spec_err("{\"image\":\"a\",\"placement\":{\"x\":1}}", API_E_INVALID_FIELD,
                    "placement.x");
    expect_spec_err(
        "{\"image\":\"a\",\"placement\":{\"rules\":[{\"kind\":\"near\",\"key\":\"a\"}]}}",
        API_E_INVALID_FIELD, "placement.rules[0].kind");
    expect_spec_err("{\"image\":\"a\",\"placement\":{\"rules\":[{\"kind\":\"affinity\"}]}}",
                    API_E_INVALID_FIELD, "placement.rules[0].key");
    expect_spec_err("{\"image\":\"a\",\"placement\":{\"rules\":[{\"kind\":\"affinity\",\"key\":"
                    "\"a\",\"weight\":0}]}}",
                    API_E_INVALID_FIELD, "placement.rules[0].weight");
    expect_spec_err("{\"image\":\"a\",\"placement\":{\"rules\":[{\"kind\":\"affinity\",\"key\":"
                    "\"a\",\"value\":\"b c\"}]}}",
                    API_E_INVALID_FIELD, "placement.rules[0].value");
}

static void t_spec_errors(void **state)
{
    char big[8192];
    (void)state;
    /* syntax */
    expect_spec_err("", API_E_BAD_REQUEST, NULL);
    expect_spec_err("{", API_E_BAD_REQUEST, NULL);
    expect_spec_err("[]", API_E_BAD_REQUEST, NULL);
    expect_spec_err("\"x\"", API_E_BAD_REQUEST, NULL);
    expect_spec_err("{\"image\":\"a\"} x", API_E_BAD_REQUEST, NULL);
    expect_spec_err("{\"image\":\"a\",\"image\":\"b\"}", API_E_BAD_REQUEST, NULL);
    /* huge numbers and invalid UTF-8 are rejected by jansson */
    expect_spec_err("{\"image\":\"a\",\"count\":1e400}", API_E_INVALID_FIELD, "count");
    expect_spec_err("{\"image\":\"a\",\"count\": 18446744073709551616}", API_E_INVALID_FIELD,
                    "count");
    expect_spec_err("{\"image\":\"a\",\"vcpus\":-99999999999999999999}", API_E_INVALID_FIELD,
                    "vcpus");
    expect_spec_err("{\"image\":\"a\",\"ports\":[{\"host\":1e999}]}", API_E_INVALID_FIELD, "host");
    expect_spec_err("{\"image\":\"a\",\"args\":[1e999]}", API_E_INVALID_FIELD, "args");
    expect_spec_err("{\"image\":\"a\",\"name\":\"\xff\xfe\"}", API_E_BAD_REQUEST, NULL);
    expect_spec_err("{\"image\":\"a\",\"name\":\"\xc0\xaf\"}", API_E_BAD_REQUEST, NULL);
    expect_spec_err("{\"image\":\"a\",\"name\":\"\xed\xa0\x80\"}", API_E_BAD_REQUEST, NULL);
    expect_spec_err("{\"image\":\"a\",\"name\":\"a\\u0000b\"}", API_E_BAD_REQUEST, NULL);
    /* fields */
    expect_spec_err("{}", API_E_INVALID_FIELD, "image");
    expect_spec_err("{\"image\":\"a\",\"bogus\":1}", API_E_INVALID_FIELD, "bogus");
    /* a run's own initrd: a full digest */
    expect_spec_err("{\"image\":\"a\",\"initrd\":\"sha256:abc\"}", API_E_INVALID_FIELD, "initrd");
    expect_spec_err("{\"image\":\"a\",\"initrd\":7}", API_E_INVALID_FIELD, "initrd");
    expect_spec_err("{\"image\":5}", API_E_INVALID_FIELD, "image");
    expect_spec_err("{\"image\":\"Bad Ref\"}", API_E_INVALID_FIELD, "image");
    expect_spec_err("{\"image\":\"sha256:abc\"}", API_E_INVALID_FIELD, "image");
    expect_spec_err("{\"image\":\"a\",\"count\":0}", API_E_INVALID_FIELD, "count");
    expect_spec_err("{\"image\":\"a\",\"count\":1001}", API_E_INVALID_FIELD, "count");
    expect_spec_err("{\"image\":\"a\",\"count\":-1}", API_E_INVALID_FIELD, "count");
    expect_spec_err("{\"image\":\"a\",\"count\":2.5}", API_E_INVALID_FIELD, "count");
    expect_spec_err("{\"image\":\"a\",\"count\":\"3\"}", API_E_INVALID_FIELD, "count");
    expect_spec_err("{\"image\":\"a\",\"count\":9223372036854775807}", API_E_INVALID_FIELD,
                    "count");
    expect_spec_err("{\"image\":\"a\",\"count\":-9223372036854775808}", API_E_INVALID_FIELD,
                    "count");
    expect_spec_err("{\"image\":\"a\",\"memory_mib\":15}", API_E_INVALID_FIELD, "memory_mib");
    expect_spec_err("{\"image\":\"a\",\"memory_mib\":65537}", API_E_INVALID_FIELD, "memory_mib");
    expect_spec_err("{\"image\":\"a\",\"vcpus\":65}", API_E_INVALID_FIELD, "vcpus");
    expect_spec_err("{\"image\":\"a\",\"name\":\"Web\"}", API_E_INVALID_FIELD, "name");
    expect_spec_err("{\"image\":\"a\",\"name\":\"-web\"}", API_E_INVALID_FIELD, "name");
    expect_spec_err(
        "{\"image\":\"a\",\"name\":"
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"count\":10}",
        API_E_INVALID_FIELD, "name");
    expect_spec_err("{\"image\":\"a\",\"args\":\"x\"}", API_E_INVALID_FIELD, "args");
    expect_spec_err("{\"image\":\"a\",\"args\":[1]}", API_E_INVALID_FIELD, "args[0]");
    expect_spec_err("{\"image\":\"a\",\"args\":[\"ok\",\"a\\nb\"]}", API_E_INVALID_FIELD,
                    "args[1]");
    expect_spec_err("{\"image\":\"a\",\"args\":[\"ok\",\"a\\tb\"]}", API_E_INVALID_FIELD,
                    "args[1]");
    expect_spec_err("{\"image\":\"a\",\"env\":{\"X\":\"a\\tb\"}}", API_E_INVALID_FIELD, "env.X");
    expect_spec_err("{\"image\":\"a\",\"env\":[]}", API_E_INVALID_FIELD, "env");
    expect_spec_err("{\"image\":\"a\",\"env\":{\"1X\":\"v\"}}", API_E_INVALID_FIELD, "env.1X");
    expect_spec_err("{\"image\":\"a\",\"env\":{\"X\":1}}", API_E_INVALID_FIELD, "env.X");
    expect_spec_err("{\"image\":\"a\",\"labels\":{\"app\":\"a b\"}}", API_E_INVALID_FIELD,
                    "labels.app");
    expect_spec_err("{\"image\":\"a\",\"labels\":{\"-x\":\"v\"}}", API_E_INVALID_FIELD,
                    "labels.-x");
    expect_spec_err("{\"image\":\"a\",\"restart\":\"sometimes\"}", API_E_INVALID_FIELD, "restart");
    expect_spec_err("{\"image\":\"a\",\"network\":1}", API_E_INVALID_FIELD, "network");
    expect_spec_err("{\"image\":\"a\",\"host\":\"H!\"}", API_E_INVALID_FIELD, "host");
    expect_spec_err("{\"image\":\"a\",\"ports\":{}}", API_E_INVALID_FIELD, "ports");
    expect_spec_err("{\"image\":\"a\",\"ports\":[1]}", API_E_INVALID_FIELD, "ports[0]");
    expect_spec_err("{\"image\":\"a\",\"ports\":[{\"guest\":80}]}", API_E_INVALID_FIELD,
                    "ports[0].host");
    expect_spec_err("{\"image\":\"a\",\"ports\":[{\"host\":0,\"guest\":80}]}", API_E_INVALID_FIELD,
                    "ports[0].host");
    expect_spec_err("{\"image\":\"a\",\"ports\":[{\"host\":1,\"guest\":65536}]}",
                    API_E_INVALID_FIELD, "ports[0].guest");
    expect_spec_err("{\"image\":\"a\",\"ports\":[{\"host\":1,\"guest\":1,\"x\":1}]}",
                    API_E_INVALID_FIELD, "ports[0].x");
    expect_spec_err("{\"image\":\"a\",\"ports\":[{\"host\":1,\"guest\":1,\"protocol\":\"sctp\"}]}",
                    API_E_INVALID_FIELD, "ports[0].protocol");
    expect_spec_err(
        "{\"image\":\"a\",\"ports\":[{\"host\":1,\"guest\":1},{\"host\":1,\"guest\":2}]}",
        API_E_INVALID_FIELD, "ports[1].host");
    expect_spec_err("{\"image\":\"a\",\"count\":2,\"ports\":[{\"host\":1,\"guest\":1}]}",
                    API_E_INVALID_FIELD, "ports");
    expect_spec_err("{\"image\":\"a\",\"network\":false,\"ports\":[{\"host\":1,\"guest\":1}]}",
                    API_E_INVALID_FIELD, "ports");
    /* too many args */
    strcpy(big, "{\"image\":\"a\",\"args\":[");
    for (int i = 0; i < API_ARGS_MAX + 1; i++)
        strcat(big, i ? ",\"x\"" : "\"x\"");
    strcat(big, "]}");
    expect_spec_err(big, API_E_INVALID_FIELD, "args");
}

static void t_host_spec(void **state)
{
    const char *ok = "{\"name\":\"h2\",\"uri\":\"qemu+ssh://h2/system\","
                     "\"labels\":{\"zone\":\"a\"},\"domain_type\":\"qemu\"}";
    api_host_spec h;
    api_status st = { 0 };

    (void)state;
    assert_int_equal(api_decode_host_spec(ok, strlen(ok), &h, &st), API_OK);
    assert_string_equal(h.name, "h2");
    assert_string_equal(h.uri, "qemu+ssh://h2/system");
    assert_int_equal(h.n_labels, 1);
    assert_int_equal(h.domain_type, API_DOMAIN_QEMU);
    api_host_spec_clear(&h);

    const char *bad[][2] = {
        { "{\"uri\":\"x\"}", "name" },
        { "{\"name\":\"h\"}", "uri" },
        { "{\"name\":\"h\",\"uri\":\"a b\"}", "uri" },
        { "{\"name\":\"h\",\"uri\":\"x\",\"domain_type\":\"xen\"}", "domain_type" },
        { "{\"name\":\"h\",\"uri\":\"x\",\"cpu\":1}", "cpu" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&st, 0, sizeof st);
        assert_int_equal(api_decode_host_spec(bad[i][0], strlen(bad[i][0]), &h, &st),
                         API_E_INVALID_FIELD);
        assert_string_equal(st.field, bad[i][1]);
    }
}

static void t_small_bodies(void **state)
{
    char ref[API_REF_MAX + 1];
    api_status st = { 0 };
    int t;
    bool b;

    (void)state;
    assert_int_equal(api_decode_tag_request("{\"ref\":\"hello\"}", 15, ref, &st), API_OK);
    assert_string_equal(ref, "hello:latest");
    assert_int_equal(api_decode_tag_request("{\"ref\":\"hello:1.0\"}", 19, ref, &st), API_OK);
    assert_string_equal(ref, "hello:1.0");
    assert_int_equal(api_decode_tag_request("{\"ref\":\"sha256:abcdef\"}", 23, ref, &st),
                     API_E_INVALID_FIELD);
    assert_int_equal(api_decode_tag_request("{}", 2, ref, &st), API_E_INVALID_FIELD);

    assert_int_equal(api_decode_stop_request("", 0, &t, &st), API_OK);
    assert_int_equal(t, -1);
    assert_int_equal(api_decode_stop_request("{}", 2, &t, &st), API_OK);
    assert_int_equal(t, -1);
    assert_int_equal(api_decode_stop_request("{\"timeout_s\":10}", 16, &t, &st), API_OK);
    assert_int_equal(t, 10);
    assert_int_equal(api_decode_stop_request("{\"timeout_s\":3601}", 18, &t, &st),
                     API_E_INVALID_FIELD);
    assert_int_equal(api_decode_stop_request("{\"timeout\":1}", 13, &t, &st), API_E_INVALID_FIELD);

    assert_int_equal(api_decode_cordon_request("{\"cordoned\":true}", 17, &b, &st), API_OK);
    assert_true(b);
    assert_int_equal(api_decode_cordon_request("{}", 2, &b, &st), API_E_INVALID_FIELD);
    assert_int_equal(api_decode_cordon_request("{\"cordoned\":\"yes\"}", 18, &b, &st),
                     API_E_INVALID_FIELD);
    assert_int_equal(api_decode_empty_body("", 0, &st), API_OK);
    assert_int_equal(api_decode_empty_body("{}", 2, &st), API_OK);
    assert_int_equal(api_decode_empty_body("{\"a\":1}", 7, &st), API_E_INVALID_FIELD);
}

static void t_query(void **state)
{
    api_kv p[] = {
        { "selector", "app=web,tier!=db,canary,!old" },
        { "state", "running" },
        { "limit", "5" },
        { "after", "3f9a1c2b7d4e" },
    };
    api_kv up[] = {
        { "ref", "hello" },
        { "label", "team=web" },
        { "label", "x=" },
        { "digest", "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" },
    };
    api_query q;
    api_status st = { 0 };

    (void)state;
    assert_int_equal(
        api_decode_query(p, 4, API_Q_SELECTOR | API_Q_STATE | API_Q_LIMIT | API_Q_AFTER, &q, &st),
        API_OK);
    assert_int_equal(q.selector.n, 4);
    assert_true(q.has_state);
    assert_int_equal(q.state, API_STATE_RUNNING);
    assert_int_equal(q.limit, 5);
    assert_string_equal(q.after, "3f9a1c2b7d4e");
    /* state not allowed on this route */
    assert_int_equal(api_decode_query(p, 4, API_Q_SELECTOR, &q, &st), API_E_INVALID_FIELD);
    assert_string_equal(st.field, "state");

    assert_int_equal(api_decode_query(up, 4, API_Q_REF | API_Q_LABEL | API_Q_DIGEST, &q, &st),
                     API_OK);
    assert_string_equal(q.ref_name, "hello");
    assert_string_equal(q.ref_tag, "latest");
    assert_int_equal(q.n_labels, 2);
    assert_string_equal(q.labels[0].key, "team");
    assert_string_equal(q.labels[0].value, "web");
    assert_string_equal(q.labels[1].value, "");
    /* ref is required on upload */
    assert_int_equal(api_decode_query(up + 1, 1, API_Q_REF | API_Q_LABEL, &q, &st),
                     API_E_INVALID_FIELD);
    assert_string_equal(st.field, "ref");

    struct {
        api_kv kv;
        unsigned allow;
    } bad[] = {
        { { "limit", "0" }, API_Q_LIMIT },
        { { "limit", "1001" }, API_Q_LIMIT },
        { { "limit", "-1" }, API_Q_LIMIT },
        { { "limit", "99999999999999999999999" }, API_Q_LIMIT },
        { { "limit", NULL }, API_Q_LIMIT },
        { { "force", "yes" }, API_Q_FORCE },
        { { "tail", "1k" }, API_Q_TAIL },
        { { "since", "18446744073709551616" }, API_Q_SINCE },
        { { "state", "zombie" }, API_Q_STATE },
        { { "selector", "a==b" }, API_Q_SELECTOR },
        { { "selector", "a,,b" }, API_Q_SELECTOR },
        { { "digest", "sha256:abc" }, API_Q_DIGEST },
        { { "after", "a b" }, API_Q_AFTER },
        { { "label", "novalue" }, API_Q_LABEL },
        { { "nope", "1" }, ~0u },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        api_code rc = api_decode_query(&bad[i].kv, 1, bad[i].allow, &q, &st);
        if (rc != API_E_INVALID_FIELD)
            print_error("query %s=%s accepted\n", bad[i].kv.key,
                        bad[i].kv.value ? bad[i].kv.value : "(null)");
        assert_int_equal(rc, API_E_INVALID_FIELD);
    }
    /* bare flags */
    api_kv flags[] = { { "force", NULL }, { "dry_run", "false" } };
    assert_int_equal(api_decode_query(flags, 2, API_Q_FORCE | API_Q_DRY_RUN, &q, &st), API_OK);
    assert_true(q.force);
    assert_false(q.dry_run);
    /* repeated */
    api_kv rep[] = { { "limit", "1" }, { "limit", "2" } };
    assert_int_equal(api_decode_query(rep, 2, API_Q_LIMIT, &q, &st), API_E_INVALID_FIELD);
}

static void t_selector(void **state)
{
    api_selector sel;
    api_status st = { 0 };
    api_kv labels[] = { { "app", "web" }, { "tier", "front" }, { "empty", "" } };

    (void)state;
    assert_int_equal(api_selector_parse("app=web,tier!=db,empty,!old", &sel, &st), API_OK);
    assert_int_equal(sel.n, 4);
    assert_int_equal(sel.terms[0].op, API_SEL_EQ);
    assert_int_equal(sel.terms[1].op, API_SEL_NE);
    assert_int_equal(sel.terms[2].op, API_SEL_HAS);
    assert_int_equal(sel.terms[3].op, API_SEL_LACKS);
    assert_string_equal(sel.terms[3].key, "old");
    assert_true(api_selector_match(&sel, labels, 3));
    assert_false(api_selector_match(&sel, labels, 1)); /* lacks "empty" */

    assert_int_equal(api_selector_parse("app=db", &sel, &st), API_OK);
    assert_false(api_selector_match(&sel, labels, 3));
    assert_int_equal(api_selector_parse("tier!=front", &sel, &st), API_OK);
    assert_false(api_selector_match(&sel, labels, 3));
    assert_int_equal(api_selector_parse("missing!=x", &sel, &st), API_OK);
    assert_true(api_selector_match(&sel, labels, 3));
    assert_int_equal(api_selector_parse("!app", &sel, &st), API_OK);
    assert_false(api_selector_match(&sel, labels, 3));
    assert_int_equal(api_selector_parse("empty=", &sel, &st), API_OK);
    assert_true(api_selector_match(&sel, labels, 3));
    assert_int_equal(api_selector_parse("", &sel, &st), API_OK);
    assert_int_equal(sel.n, 0);
    assert_true(api_selector_match(&sel, NULL, 0));
    assert_true(api_selector_match(NULL, NULL, 0));

    const char *bad[] = { ",",
                          "a,",
                          "=v",
                          "!=v",
                          "!",
                          "a=b=c",
                          "a b",
                          ("a=b,c=d,e=f,g=h,i=j,k=l,m=n,o=p,q=r,s=t,u=v,w=x,"
                           "y=z,A=B,C=D,E=F,G=H"),
                          "!a=b",
                          "é=1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (api_selector_parse(bad[i], &sel, &st) != API_E_INVALID_FIELD)
            print_error("selector '%s' accepted\n", bad[i]);
        assert_int_equal(api_selector_parse(bad[i], &sel, &st), API_E_INVALID_FIELD);
        assert_string_equal(st.field, "selector");
    }
}

static void t_validators(void **state)
{
    (void)state;
    assert_true(api_valid_name("web-1"));
    assert_true(api_valid_name("a"));
    assert_true(api_valid_name("0.a_b-c"));
    assert_false(api_valid_name(""));
    assert_false(api_valid_name("_a"));
    assert_false(api_valid_name("A"));
    assert_false(api_valid_name("a/b"));
    assert_true(api_valid_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_false(
        api_valid_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_true(api_valid_image_ref("hello"));
    assert_true(api_valid_image_ref("hello:1.0"));
    assert_true(api_valid_image_ref("sha256:9f86d0"));
    assert_false(api_valid_image_ref("sha256:9f86d"));
    assert_false(api_valid_image_ref("sha256:9F86D0"));
    assert_false(api_valid_image_ref("hello:"));
    assert_false(api_valid_image_ref(":1"));
    assert_false(api_valid_image_ref("hello:1:2"));
    assert_true(api_valid_text("héllo x", 8));
    /* a tab cannot reach the guest: its command line has no way to
	 * carry one (docs/guest-protocol.md) */
    assert_false(api_valid_text("héllo\tx", 8));
    assert_false(api_valid_text("a\nb", 3));
    assert_false(api_valid_text("\xc3", 1));
    assert_false(api_valid_text("\xe0\x80\x80", 3));
    assert_true(api_valid_env_key("_X1"));
    assert_false(api_valid_env_key("1X"));
}

/* Instance names of 4 to 12 hex digits could be taken for an instance id
 * (or id prefix) and are refused, saying so and quoting the name. */
static void t_instance_name(void **state)
{
    static const char *const hex[] = {
        "72f609", "3f9a1c2b7d4e", "cafe", "deadbeef", "0123",
    };
    static const char *const ok[] = {
        "web",
        "72f609-a",
        "72f60g",
        "3f9a1c2b7d4e.old",
        "a_b",
        "g",
        "0x1",
        "cafe-1",
        "db",
        "c1",
        "abc",
        "0",
        "3f9a1c2b7d4e0",
        "0123456789abcdef",
    };
    api_status st;

    (void)state;
    for (size_t i = 0; i < sizeof hex / sizeof hex[0]; i++) {
        char quoted[API_NAME_MAX + 3];

        assert_true(api_name_like_id(hex[i]));
        memset(&st, 0, sizeof st);
        assert_int_equal(api_check_instance_name(hex[i], 1, &st), API_E_INVALID_FIELD);
        assert_string_equal(st.field, "name");
        snprintf(quoted, sizeof quoted, "'%s'", hex[i]);
        if (strstr(st.message, quoted) == NULL || strstr(st.message, "instance id") == NULL)
            fail_msg("name %s: message '%s' does not quote it and say why", hex[i], st.message);
    }
    /* the NAME of NAME-1..NAME-N too: one rule whatever the count */
    memset(&st, 0, sizeof st);
    assert_int_equal(api_check_instance_name("cafe", 3, &st), API_E_INVALID_FIELD);
    assert_non_null(strstr(st.message, "instance id"));
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_false(api_name_like_id(ok[i]));
        memset(&st, 0, sizeof st);
        if (api_check_instance_name(ok[i], 1, &st) != API_OK)
            fail_msg("name %s refused: %s", ok[i], st.message);
        assert_int_equal(api_check_instance_name(ok[i], 10, &st), API_OK);
    }
    assert_false(api_name_like_id(""));
    assert_false(api_name_like_id(NULL));
    assert_false(api_name_like_id("ABCD")); /* ids are lowercase */
    /* the plain name rule and the -N suffix still apply */
    assert_int_equal(api_check_instance_name("Web", 1, &st), API_E_INVALID_FIELD);
    assert_non_null(strstr(st.message, "'Web'"));
    assert_null(strstr(st.message, "instance id"));
    assert_int_equal(api_check_instance_name(NULL, 1, &st), API_E_INVALID_FIELD);
    assert_int_equal(api_check_instance_name(
                         "web-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1, &st),
                     API_OK);
    assert_int_equal(api_check_instance_name(
                         "web-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 10, &st),
                     API_E_INVALID_FIELD);
    assert_non_null(strstr(st.message, "-N suffix"));
}

/* ---- encoders ----------------------------------------------------------- */

static char *finish(api_sink *s)
{
    size_t len;
    char *out = api_sink_finish(s, &len);

    assert_non_null(out);
    assert_int_equal(strlen(out), len);
    return out;
}

static void t_encode_instance(void **state)
{
    static const char *const args[] = { "--port", "80" };
    static const api_kv env[] = { { "MODE", "fast" } };
    static const api_kv labels[] = { { "app", "web" } };
    static const api_port ports[] = { { 8080, 80, API_PROTO_TCP } };
    api_instance in = {
        .id = "3f9a1c2b7d4e",
        .name = "web-1",
        .image = "hello:latest",
        .image_digest = "sha256:9f86",
        .host = "local",
        .state = API_STATE_RUNNING,
        .memory_mib = 32,
        .vcpus = 1,
        .args = args,
        .n_args = 2,
        .env = env,
        .n_env = 1,
        .labels = labels,
        .n_labels = 1,
        .restart = API_RESTART_ON_FAILURE,
        .network = { true, "10.88.0.5/16", "10.88.0.1", "5a:5c:22:2e:f7:91", ports, 1 },
        .created = 1795734089,
        .started = API_TIME_NONE,
        .boot_ms = 0.41,
        .ready_ms = -1,
        .last_error = NULL,
    };
    api_sink *s = api_sink_new(API_SINK_INSTANCE, API_SHAPE_ONE);
    char *out;

    (void)state;
    assert_int_equal(api_sink_instance(s, &in), 0);
    /* a second object on a single-object sink is refused */
    assert_int_equal(api_sink_instance(s, &in), -1);
    assert_null(api_sink_finish(s, &(size_t){ 0 }));
    api_sink_free(s);

    s = api_sink_new(API_SINK_INSTANCE, API_SHAPE_ONE);
    assert_int_equal(api_sink_instance(s, &in), 0);
    out = finish(s);
    assert_string_equal(out,
                        "{\"id\":\"3f9a1c2b7d4e\",\"name\":\"web-1\",\"image\":\"hello:latest\","
                        "\"image_digest\":\"sha256:9f86\",\"host\":\"local\",\"state\":\"running\","
                        "\"memory_mib\":32,\"vcpus\":1,\"args\":[\"--port\",\"80\"],"
                        "\"env\":{\"MODE\":\"fast\"},\"labels\":{\"app\":\"web\"},"
                        "\"restart\":\"on-failure\",\"restarts\":0,"
                        "\"network\":{\"enabled\":true,\"address\":\"10.88.0.5/16\","
                        "\"gateway\":\"10.88.0.1\",\"mac\":\"5a:5c:22:2e:f7:91\","
                        "\"ports\":[{\"host\":8080,\"guest\":80,\"protocol\":\"tcp\"}]},"
                        "\"placement\":{\"policy\":\"binpack\",\"rules\":[]},"
                        "\"created\":\"2026-11-26T23:01:29Z\",\"started\":null,\"boot_ms\":0.41,"
                        "\"ready_ms\":null,\"exit_code\":null,\"last_error\":null,"
                        "\"ready\":null,\"cmdline\":null,\"initrd\":null,"
                        "\"scale_to_zero\":null,\"health\":null}");
    free(out);
    api_sink_free(s);

    /* scale to zero, idle */
    in.idle_s = 30;
    in.state = API_STATE_IDLE;
    s = api_sink_new(API_SINK_INSTANCE, API_SHAPE_ONE);
    assert_int_equal(api_sink_instance(s, &in), 0);
    out = finish(s);
    assert_non_null(strstr(out, "\"state\":\"idle\","));
    assert_non_null(strstr(out, "\"scale_to_zero\":{\"idle_s\":30},"));
    free(out);
    api_sink_free(s);
    in.idle_s = 0;
    in.state = API_STATE_RUNNING;

    /* wrong type for the sink */
    s = api_sink_new(API_SINK_IMAGE, API_SHAPE_LIST);
    assert_int_equal(api_sink_instance(s, &in), -1);
    api_sink_free(s);
}

/* boot_ms / ready_ms of one instance, as written. */
static void encode_ms(double boot, double ready, char *out, size_t len)
{
    api_instance in = { .id = "3f9a1c2b7d4e",
                        .name = "web-1",
                        .created = API_TIME_NONE,
                        .started = API_TIME_NONE,
                        .boot_ms = boot,
                        .ready_ms = ready };
    api_sink *s = api_sink_new(API_SINK_INSTANCE, API_SHAPE_ONE);
    char *json, *b, *e;

    assert_int_equal(api_sink_instance(s, &in), 0);
    json = finish(s);
    b = strstr(json, "\"boot_ms\":");
    e = strstr(json, ",\"exit_code\"");
    assert_non_null(b);
    assert_non_null(e);
    snprintf(out, len, "%.*s", (int)(e - b), b);
    free(json);
    api_sink_free(s);
}

/* Durations are written with the precision they carry (microseconds), in
 * their shortest form: never 1.6970000000000001. */
static void t_encode_ms(void **state)
{
    static const struct {
        double boot, ready;
        const char *want;
    } c[] = {
        { 1.6970000000000001, 12, "\"boot_ms\":1.697,\"ready_ms\":12" },
        { 1697 / 1000.0, 0.5, "\"boot_ms\":1.697,\"ready_ms\":0.5" },
        { 0.41, 520.3, "\"boot_ms\":0.41,\"ready_ms\":520.3" },
        { 1.0 / 3, 2.0 / 3, "\"boot_ms\":0.333,\"ready_ms\":0.667" },
        { 0.0004, 0.0006, "\"boot_ms\":0,\"ready_ms\":0.001" },
        { 0, -1, "\"boot_ms\":0,\"ready_ms\":null" },
        { NAN, 1e12 + 0.5, "\"boot_ms\":null,\"ready_ms\":1000000000001" },
        { 1e20, 12.25, "\"boot_ms\":1e20,\"ready_ms\":12.25" },
    };
    char got[128];

    (void)state;
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        encode_ms(c[i].boot, c[i].ready, got, sizeof got);
        assert_string_equal(got, c[i].want);
    }
}

static void t_encode_lists(void **state)
{
    static const char *const refs[] = { "hello:latest", "hello:1.0" };
    static const api_kv labels[] = { { "team", "web" } };
    static const char *const evidence[] = { "note solo5.abi", "interp /nonexistent/solo5/" };
    api_image img = { .digest = "sha256:9f86d0",
                      .size = 81920,
                      .boot = "multiboot",
                      .refs = refs,
                      .n_refs = 2,
                      .labels = labels,
                      .n_labels = 1,
                      .created = 1795734089,
                      .instances = 3,
                      .format = "elf",
                      .kind = "solo5",
                      .evidence = evidence,
                      .n_evidence = 2,
                      .firmware = "seabios",
                      .cmdline = "solo5",
                      .exit = "debug-exit" };
    api_sink *s = api_sink_new(API_SINK_IMAGE, API_SHAPE_LIST);
    char *out;

    (void)state;
    assert_int_equal(api_sink_image(s, &img), 0);
    assert_int_equal(api_sink_next(s, "c1"), 0);
    out = finish(s);
    assert_string_equal(out,
                        "{\"items\":[{\"digest\":\"sha256:9f86d0\",\"size\":81920,"
                        "\"boot\":\"multiboot\",\"format\":\"elf\",\"kind\":\"solo5\","
                        "\"evidence\":[\"note solo5.abi\",\"interp /nonexistent/solo5/\"],"
                        "\"profile\":{\"firmware\":\"seabios\",\"cmdline\":\"solo5\","
                        "\"exit\":\"debug-exit\",\"ready\":null,\"health\":null,\"warm_pool\":0},"
                        "\"initrd\":null,"
                        "\"refs\":[\"hello:latest\",\"hello:1.0\"],\"labels\":{\"team\":\"web\"},"
                        "\"created\":\"2026-11-26T23:01:29Z\",\"instances\":3}],\"next\":\"c1\"}");
    free(out);
    api_sink_free(s);

    s = api_sink_new(API_SINK_HOST, API_SHAPE_LIST);
    out = finish(s);
    assert_string_equal(out, "{\"items\":[],\"next\":null}");
    free(out);
    api_sink_free(s);

    s = api_sink_new(API_SINK_INSTANCE, API_SHAPE_ITEMS);
    out = finish(s);
    assert_string_equal(out, "{\"items\":[]}");
    free(out);
    api_sink_free(s);
}

static void t_encode_host_plan(void **state)
{
    api_host h = { .name = "local",
                   .uri = "qemu:///embed?root=/var/lib/shoal/libvirt",
                   .state = "up",
                   .cordoned = false,
                   .domain_type = "kvm",
                   .kvm = 1,
                   .domain_type_reason = "forced by operator",
                   .capacity = { 24000, 2, 1000 },
                   .used = { 512, 16, 16 },
                   .instances = 16,
                   .capacity_model = "measured",
                   .reserved_memory_mib = 2048,
                   .available_memory_mib = 0,
                   .charged_cpu_milli = 16,
                   .busy_cpu_milli = 3,
                   .sampled_ms_ago = 1200,
                   .others_domains = 2,
                   .others_vcpus = 3,
                   .others_memory_mib = 6144,
                   .others_cpu_milli = 250,
                   .free_memory_mib = 15296 };
    api_move mv[] = { { .instance = "3f9a1c2b7d4e", .from = "h1", .to = "h2" },
                      { .instance = "72f6097ae40b",
                        .from = "h1",
                        .to = "h3",
                        .code = API_E_UNAVAILABLE,
                        .message = "host 'h1' did not stop it" } };
    const char *freed[] = { "h1" };
    api_plan p = { mv, 1, freed, 1, 3, 2, false };
    api_sink *s = api_sink_new(API_SINK_HOST, API_SHAPE_ONE);
    char *out;

    (void)state;
    assert_int_equal(api_sink_host(s, &h), 0);
    out = finish(s);
    assert_string_equal(
        out, "{\"name\":\"local\",\"uri\":\"qemu:///embed?root=/var/lib/shoal/libvirt\","
             "\"state\":\"up\",\"cordoned\":false,\"domain_type\":\"kvm\",\"kvm\":true,"
             "\"domain_type_reason\":\"forced by operator\",\"labels\":{},"
             "\"capacity\":{\"memory_mib\":24000,\"vcpus\":2,\"slots\":1000},"
             "\"used\":{\"memory_mib\":512,\"vcpus\":16,\"slots\":16},\"instances\":16,"
             "\"usage\":{\"model\":\"measured\",\"reserved_memory_mib\":2048,"
             "\"available_memory_mib\":null,\"charged_cpu_milli\":16,\"busy_cpu_milli\":3,"
             "\"sampled_ms_ago\":1200,\"stale\":false},"
             "\"others\":{\"domains\":2,\"memory_mib\":6144,\"vcpus\":3,\"busy_cpu_milli\":250},"
             "\"free_memory_mib\":15296,\"last_error\":null,\"down_since\":null,"
             "\"guest_subnet\":null}");
    free(out);
    api_sink_free(s);

    s = api_sink_new(API_SINK_PLAN, API_SHAPE_ONE);
    assert_int_equal(api_sink_plan(s, &p), 0);
    out = finish(s);
    assert_string_equal(
        out, "{\"moves\":[{\"instance\":\"3f9a1c2b7d4e\",\"from\":\"h1\",\"to\":\"h2\"}],"
             "\"hosts_freed\":[\"h1\"],\"hosts_before\":3,\"hosts_after\":2,"
             "\"executed\":false}");
    free(out);
    api_sink_free(s);

    /* Carried out: each move has its outcome, the plan the counts. */
    mv[0].ok = true;
    p.n_moves = 2;
    p.n_hosts_freed = 0;
    p.hosts_after = 3;
    p.executed = true;
    s = api_sink_new(API_SINK_PLAN, API_SHAPE_ONE);
    assert_int_equal(api_sink_plan(s, &p), 0);
    out = finish(s);
    assert_string_equal(out,
                        "{\"moves\":[{\"instance\":\"3f9a1c2b7d4e\",\"from\":\"h1\",\"to\":\"h2\","
                        "\"ok\":true},{\"instance\":\"72f6097ae40b\",\"from\":\"h1\",\"to\":\"h3\","
                        "\"ok\":false,\"error\":{\"code\":\"unavailable\",\"message\":\"host 'h1' "
                        "did not stop it\"}}],\"succeeded\":1,\"failed\":1,\"hosts_freed\":[],"
                        "\"hosts_before\":3,\"hosts_after\":3,\"executed\":true}");
    free(out);
    api_sink_free(s);
}

/* ---- the writer against jansson ------------------------------------------ */

/* Deterministic PRNG (xorshift64*), so a failure reproduces. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 33) % n;
}

/* Random text into buf (< cap bytes): ASCII including every control
 * character, quotes and backslashes, valid 2-4 byte UTF-8, and - when
 * `broken` - invalid bytes (lone continuation, truncated and overlong
 * sequences, surrogates). Never NUL. */
static const char *rnd_text(char *buf, size_t cap, bool broken)
{
    static const char *const pieces[] = {
        "\"",           "\\", "/",  "\x01", "\x1f",     "\x7f",         "\b",
        "\f",           "\n", "\r", "\t",   "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x90\x9f",
        "\xe2\x80\xa8", "a",  "Z",  " ",    "0",        "{}[],:"
    };
    static const char *const bad[] = { "\x80",     "\xc3",         "\xe2\x82",
                                       "\xc0\xaf", "\xed\xa0\x80", "\xf5\x80\x80\x80",
                                       "\xff" };
    size_t len = 0, n = rnd(12), i;

    for (i = 0; i < n; i++) {
        const char *p = broken && rnd(4) == 0 ? bad[rnd(sizeof bad / sizeof bad[0])]
                                              : pieces[rnd(sizeof pieces / sizeof pieces[0])];
        size_t k = strlen(p);
        if (len + k >= cap)
            break;
        memcpy(buf + len, p, k);
        len += k;
    }
    buf[len] = '\0';
    return buf;
}

static double rnd_real(void)
{
    static const double fixed[] = { 0,
                                    0.41,
                                    1,
                                    1e20,
                                    1e-7,
                                    123456789.125,
                                    1.0 / 3,
                                    1e300,
                                    5e-324,
                                    2.5e15,
                                    -1,
                                    1.697,
                                    1.6970000000000001,
                                    12,
                                    0.5,
                                    0.0004,
                                    0.0005,
                                    2.0005,
                                    520.3,
                                    -0.0,
                                    999999999999.9996,
                                    1e12,
                                    1e12 + 0.5,
                                    9007199254740993.0,
                                    NAN,
                                    INFINITY };
    if (rnd(2))
        return fixed[rnd(sizeof fixed / sizeof fixed[0])];
    return (double)rnd(1000000) / (double)(1 + rnd(1000));
}

/* The decoded string must be the input with each invalid byte replaced by
 * one '?': same length, and equal where the input was valid UTF-8. */
static void check_text(json_t *v, const char *want, bool broken)
{
    assert_true(json_is_string(v));
    assert_int_equal(json_string_length(v), strlen(want));
    if (!broken)
        assert_string_equal(json_string_value(v), want);
}

/* What a duration in ms should look like, built with jansson: rounded to
 * microseconds (3 decimals) with round(), integral values as JSON integers,
 * the rest as reals at jansson's precision 15 (no trailing zeros); whole
 * milliseconds from 1e12, jansson's own real from 2^53; null when unknown. */
static json_t *ms_oracle(double v)
{
    double r;

    if (v < 0 || !isfinite(v))
        return json_null();
    if (v >= 9007199254740992.0)
        return json_real(v);
    r = v < 1e12 ? round(v * 1000.0) / 1000.0 : round(v);
    if (r == floor(r))
        return json_integer((json_int_t)r);
    return json_real(r);
}

/* The member `key` of o, as jansson writes it, must be what the oracle
 * writes for v. */
static void check_ms(json_t *o, const char *key, double v)
{
    const size_t flags = JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15);
    json_t *want_v = ms_oracle(v);
    char *got = json_dumps(json_object_get(o, key), flags);
    char *want = json_dumps(want_v, flags);

    assert_non_null(got);
    assert_non_null(want);
    if (strcmp(got, want) != 0)
        fail_msg("%s %.17g: wrote %s, want %s", key, v, got, want);
    free(got);
    free(want);
    json_decref(want_v);
}

/* Random instances through a LIST sink; the result must parse with jansson,
 * hold the values put in, and re-serialize through jansson (compact, in
 * order, precision 15) to exactly the same bytes: the writer formats
 * numbers, escapes and punctuation as jansson does. Durations (boot_ms,
 * ready_ms) must be what ms_oracle makes of the value put in. */
static void t_encode_matches_jansson(void **state)
{
    enum { N = 300, STR = 48 };
    static char text[N][5][STR], keys[N][4][16], vals[N][4][STR];
    static const char *argv[N][3];
    static api_kv env[N][2], labels[N][2];
    static api_rule rules[N][2];
    static api_port ports[N][2];
    static api_run runs[N][2];
    static api_instance in[N];
    static bool broken[N];
    api_sink *s = api_sink_new(API_SINK_INSTANCE, API_SHAPE_LIST);
    json_error_t jerr;
    char *out, *again;
    size_t i, k;
    json_t *doc, *items;

    (void)state;
    for (i = 0; i < N; i++) {
        broken[i] = rnd(3) == 0;
        for (k = 0; k < 3; k++)
            argv[i][k] = rnd_text(text[i][k], STR, broken[i]);
        for (k = 0; k < 4; k++) {
            snprintf(keys[i][k], sizeof keys[i][k], "K%zu_%zu", i, k);
            rnd_text(vals[i][k], STR, broken[i]);
        }
        env[i][0] = (api_kv){ keys[i][0], vals[i][0] };
        env[i][1] = (api_kv){ keys[i][1], vals[i][1] };
        labels[i][0] = (api_kv){ keys[i][2], vals[i][2] };
        labels[i][1] = (api_kv){ keys[i][3], rnd(4) ? vals[i][3] : NULL };
        rules[i][0] = (api_rule){ .kind = (api_rule_kind)rnd(2),
                                  .key = "app",
                                  .value = text[i][3],
                                  .soft = rnd(2),
                                  .weight = rnd(101) };
        rules[i][1] = rules[i][0];
        ports[i][0] = (api_port){ (uint16_t)rnd(65536), (uint16_t)rnd(65536), API_PROTO_TCP };
        ports[i][1] = ports[i][0];
        runs[i][0] = (api_run){ .started = rnd(2000000000),
                                .ended = rnd(2) ? API_TIME_NONE : rnd(2000000000),
                                .has_exit_code = rnd(2),
                                .exit_code = (int)rnd(512) - 256,
                                .outcome = "exited",
                                .reason = text[i][4] };
        runs[i][1] = runs[i][0];
        in[i] = (api_instance){
            .id = keys[i][0],
            .name = text[i][4],
            .image = "hello:latest",
            .image_digest = NULL,
            .host = rnd(2) ? "local" : NULL,
            .state = (api_instance_state)rnd(4),
            .memory_mib = rnd(1u << 20),
            .vcpus = rnd(64),
            .args = argv[i],
            .n_args = rnd(4),
            .env = env[i],
            .n_env = rnd(3),
            .labels = labels[i],
            .n_labels = rnd(3),
            .restart = (api_restart)rnd(3),
            .restarts = rnd(100),
            .spread = rnd(2),
            .rules = rules[i],
            .n_rules = rnd(3),
            .network = { rnd(2), "10.88.0.5/16", NULL, "5a:5c:22:2e:f7:91", ports[i], rnd(3) },
            .created = rnd(2000000000),
            .started = API_TIME_NONE,
            .boot_ms = rnd_real(),
            .ready_ms = rnd_real(),
            .has_exit_code = rnd(2),
            .exit_code = (int)rnd(256),
            .last_error = rnd(2) ? text[i][2] : NULL,
            .has_runs = rnd(2),
            .runs = runs[i],
            .n_runs = rnd(3),
        };
        assert_int_equal(api_sink_instance(s, &in[i]), 0);
    }
    assert_int_equal(api_sink_next(s, "c42"), 0);
    out = finish(s);
    doc = json_loads(out, 0, &jerr);
    if (doc == NULL)
        fail_msg("output does not parse: %s at %d", jerr.text, jerr.position);
    again = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    assert_non_null(again);
    assert_string_equal(out, again);
    items = json_object_get(doc, "items");
    assert_int_equal(json_array_size(items), N);
    for (i = 0; i < N; i++) {
        json_t *o = json_array_get(items, i);
        json_t *a = json_object_get(o, "args");
        assert_int_equal(json_array_size(a), in[i].n_args);
        for (k = 0; k < in[i].n_args; k++)
            check_text(json_array_get(a, k), argv[i][k], broken[i]);
        assert_int_equal(json_object_size(json_object_get(o, "env")), in[i].n_env);
        for (k = 0; k < in[i].n_env; k++)
            check_text(json_object_get(json_object_get(o, "env"), env[i][k].key), env[i][k].value,
                       broken[i]);
        check_text(json_object_get(o, "name"), in[i].name, broken[i]);
        assert_int_equal(json_integer_value(json_object_get(o, "memory_mib")), in[i].memory_mib);
        check_ms(o, "boot_ms", in[i].boot_ms);
        check_ms(o, "ready_ms", in[i].ready_ms);
        if (in[i].boot_ms >= 0 && in[i].boot_ms < 1e12 && isfinite(in[i].boot_ms))
            /* within half a microsecond of the value put in */
            assert_true(fabs(json_number_value(json_object_get(o, "boot_ms")) - in[i].boot_ms) <=
                        0.0005 + 1e-9);
        assert_int_equal(json_array_size(json_object_get(o, "runs")),
                         in[i].has_runs ? in[i].n_runs : 0);
    }
    assert_string_equal(json_string_value(json_object_get(doc, "next")), "c42");
    free(again);
    free(out);
    json_decref(doc);
    api_sink_free(s);
}

static void t_encode_error_event(void **state)
{
    api_status st = { 0 };
    api_event ev;
    size_t len;
    char *out;

    (void)state;
    api_status_set(&st, API_E_NOT_FOUND, "image", "image '%s' not found", "foo:1");
    out = api_encode_error(&st, &len);
    assert_string_equal(out, "{\"error\":{\"code\":\"not_found\","
                             "\"message\":\"image 'foo:1' not found\","
                             "\"field\":\"image\"}}");
    free(out);
    /* no field, invalid UTF-8 in the message is replaced */
    api_status_set(&st, API_E_INTERNAL, NULL, "bad \xff byte");
    out = api_encode_error(&st, &len);
    assert_string_equal(out, "{\"error\":{\"code\":\"internal\","
                             "\"message\":\"bad ? byte\"}}");
    free(out);

    memset(&ev, 0, sizeof ev);
    ev.id = 42;
    ev.time = 1795734089;
    strcpy(ev.type, "instance.state");
    strcpy(ev.instance, "3f9a1c2b7d4e");
    strcpy(ev.state, "running");
    strcpy(ev.host, "local");
    out = api_encode_event(&ev, &len);
    assert_string_equal(
        out, "id: 42\nevent: instance.state\n"
             "data: {\"id\":42,\"time\":\"2026-11-26T23:01:29Z\",\"type\":\"instance.state\","
             "\"instance\":\"3f9a1c2b7d4e\",\"state\":\"running\",\"host\":\"local\"}\n\n");
    free(out);
    /* a newline in the type cannot break the SSE framing */
    strcpy(ev.type, "x\ndata: y");
    strcpy(ev.message, "line1\nline2");
    out = api_encode_event(&ev, &len);
    assert_non_null(strstr(out, "event: x_data__y\n"));
    assert_null(strstr(out, "line1\nline2"));
    free(out);

    /* batch.progress: the counts, final, and the failures named */
    memset(&ev, 0, sizeof ev);
    ev.id = 43;
    ev.time = 1795734089;
    strcpy(ev.type, "batch.progress");
    ev.has_progress = true;
    ev.done = 3;
    ev.total = 3;
    ev.failed = 1;
    ev.has_batch = true;
    strcpy(ev.batch, "3f9a1c2b7d4e");
    ev.started = 3;
    ev.ready = 2;
    ev.final = true;
    ev.n_failures = 1;
    strcpy(ev.failures[0].instance, "72f6097ae40b");
    strcpy(ev.failures[0].name, "web-3");
    strcpy(ev.failures[0].state, "failed");
    strcpy(ev.failures[0].message, "cannot start domain");
    out = api_encode_event(&ev, &len);
    assert_string_equal(
        out, "id: 43\nevent: batch.progress\n"
             "data: {\"id\":43,\"time\":\"2026-11-26T23:01:29Z\",\"type\":\"batch.progress\","
             "\"done\":3,\"total\":3,\"failed\":1,\"batch\":\"3f9a1c2b7d4e\",\"started\":3,"
             "\"ready\":2,\"final\":true,\"failures\":[{\"instance\":\"72f6097ae40b\","
             "\"name\":\"web-3\",\"state\":\"failed\",\"message\":\"cannot start domain\"}]}\n\n");
    free(out);
}

static void t_codes(void **state)
{
    (void)state;
    assert_int_equal(api_code_http(API_E_INSUFFICIENT_CAPACITY), 507);
    assert_string_equal(api_code_str(API_E_UNSUPPORTED_MEDIA_TYPE), "unsupported_media_type");
    assert_int_equal(api_code_http((api_code)999), 500);
    assert_int_equal(api_status_set(NULL, API_E_CONFLICT, NULL, "x"), API_E_CONFLICT);
}

/* PATCH /v1/images/{ref}: strings or null per field, at least one, no other
 * field; the values themselves are the image store's to judge. */
static void t_decode_image_patch(void **state)
{
    api_image_patch p;
    api_status st;
    static const struct {
        const char *body, *field;
    } bad[] = {
        { "{}", "" },
        { "{\"firmware\":null,\"exit\":null}", "" },
        { "{\"exit\":3}", "exit" },
        { "{\"cmdline\":[\"a\"]}", "cmdline" },
        { "{\"firmware\":true}", "firmware" },
        { "{\"kind\":\"pvh\"}", "kind" },
        { "[]", "" },
        { "", "" },
        { "{\"ready\":\"\"}", "ready" },
        { "{\"ready\":80}", "ready" },
        { "{\"health\":\"tcp:80\"}", "health" },
        { "{\"health\":{}}", "health" },
        { "{\"health\":{\"probe\":\"tcp:80\",\"interval_s\":0}}", "health.interval_s" },
        { "{\"health\":{\"probe\":\"tcp:80\",\"every\":3}}", "health.every" },
    };

    (void)state;
    /* ready and health: null removes the image's own ("" here) */
    const char *probes = "{\"ready\":null,\"health\":{\"probe\":\"tcp:80\",\"retries\":4}}";
    assert_int_equal(api_decode_image_patch(probes, strlen(probes), &p, &st), API_OK);
    assert_string_equal(p.ready, "");
    assert_string_equal(p.health_probe, "tcp:80");
    assert_int_equal(p.health_retries, 4);
    assert_int_equal(p.health_interval_s, 0);
    api_image_patch_free(&p);
    probes = "{\"ready\":\"http:80/\",\"health\":null}";
    assert_int_equal(api_decode_image_patch(probes, strlen(probes), &p, &st), API_OK);
    assert_string_equal(p.ready, "http:80/");
    assert_string_equal(p.health_probe, "");
    api_image_patch_free(&p);
    probes = "{\"health\":{\"timeout_s\":7}}"; /* the stored probe's numbers */
    assert_int_equal(api_decode_image_patch(probes, strlen(probes), &p, &st), API_OK);
    assert_null(p.health_probe);
    assert_int_equal(p.health_timeout_s, 7);
    api_image_patch_free(&p);
    const char *ok = "{\"exit\":\"debug-exit\",\"firmware\":null,\"cmdline\":\"{name} -- {args}\"}";
    assert_int_equal(api_decode_image_patch(ok, strlen(ok), &p, &st), API_OK);
    assert_string_equal(p.exit, "debug-exit");
    assert_null(p.firmware);
    assert_string_equal(p.cmdline, "{name} -- {args}");
    api_image_patch_free(&p);
    assert_null(p.exit);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&st, 0, sizeof st);
        assert_int_not_equal(api_decode_image_patch(bad[i].body, strlen(bad[i].body), &p, &st),
                             API_OK);
        if (strcmp(st.field, bad[i].field) != 0)
            fail_msg("'%s': field '%s', want '%s'", bad[i].body, st.field, bad[i].field);
        assert_null(p.priv_);
    }
    api_image_patch_free(NULL);
}

/* api_format_time's own date arithmetic says what gmtime_r + strftime say:
 * the edges, leap days and centuries, and a walk over 1970..9999. */
static void t_format_time(void **st)
{
    static const int64_t edge[] = { 0,          59,         86399,        86400,
                                    951782400,  951868799,  4107542399,   4107542400,
                                    1764547200, 1772323199, 253402300799, 253402300800,
                                    -1,         -86401 };
    char got[32], want[32];
    struct tm tm;

    (void)st;
    for (size_t i = 0; i < sizeof edge / sizeof edge[0] + 200000; i++) {
        int64_t t =
            i < sizeof edge / sizeof edge[0]
                ? edge[i]
                : (int64_t)(i - sizeof edge / sizeof edge[0]) * 1267711 + (int64_t)i % 86400;
        time_t tt = (time_t)t;
        if (t > 253402300799 + 86400)
            break;
        assert_non_null(gmtime_r(&tt, &tm));
        strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%SZ", &tm);
        api_format_time(t, got);
        assert_string_equal(got, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_spec_full),
        cmocka_unit_test(t_spec_defaults),
        cmocka_unit_test(t_spec_ports),
        cmocka_unit_test(t_spec_errors),
        cmocka_unit_test(t_spec_scale_to_zero),
        cmocka_unit_test(t_spec_placement),
        cmocka_unit_test(t_host_spec),
        cmocka_unit_test(t_small_bodies),
        cmocka_unit_test(t_query),
        cmocka_unit_test(t_selector),
        cmocka_unit_test(t_validators),
        cmocka_unit_test(t_instance_name),
        cmocka_unit_test(t_encode_instance),
        cmocka_unit_test(t_encode_ms),
        cmocka_unit_test(t_encode_lists),
        cmocka_unit_test(t_decode_image_patch),
        cmocka_unit_test(t_encode_host_plan),
        cmocka_unit_test(t_encode_matches_jansson),
        cmocka_unit_test(t_encode_error_event),
        cmocka_unit_test(t_codes),
        cmocka_unit_test(t_format_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
