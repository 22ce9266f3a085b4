/* test_cli_jv.c: the fast JSON parser used for long lists (cli_jv.h):
 * grammar, escapes, limits, printing, and agreement with jansson. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_jv.h"

static int parse(const char *s, cli_jv_doc *doc, cli_jv *v)
{
    char err[128];
    return cli_jv_parse(doc, s, strlen(s), v, err, sizeof err);
}

static void test_values(void **st)
{
    cli_jv_doc doc = { 0 };
    cli_jv v;
    assert_int_equal(parse(" {\"a\": [1, -2.5e3, true, false, null, \"x\"], \"b\": {}} ", &doc, &v),
                     0);
    assert_int_equal(v.type, CLI_JV_OBJ);
    const cli_jv *a = cli_jv_get(&v, "a");
    assert_int_equal(cli_jv_size(a), 6);
    assert_true(cli_jv_at(a, 0)->num == 1);
    assert_true(cli_jv_at(a, 1)->num == -2500);
    assert_string_equal(cli_jv_at(a, 1)->u.str, "-2.5e3");
    assert_int_equal(cli_jv_at(a, 2)->type, CLI_JV_TRUE);
    assert_int_equal(cli_jv_at(a, 4)->type, CLI_JV_NULL);
    assert_string_equal(cli_jv_at(a, 5)->u.str, "x");
    assert_null(cli_jv_at(a, 6));
    assert_int_equal(cli_jv_get(&v, "b")->type, CLI_JV_OBJ);
    assert_null(cli_jv_get(&v, "c"));
    assert_null(cli_jv_str(&v, "a"));
    assert_true(cli_jv_num(&v, "a", 7) == 7);
    cli_jv_free(&doc);
}

static void test_escapes(void **st)
{
    cli_jv_doc doc = { 0 };
    cli_jv v;
    assert_int_equal(parse("\"q\\\" b\\\\ s\\/ \\n\\t \\u00e4 \\u20ac \\ud83d\\ude00\"", &doc, &v),
                     0);
    assert_string_equal(v.u.str, "q\" b\\ s/ \n\t \xc3\xa4 \xe2\x82\xac \xf0\x9f\x98\x80");
    assert_int_equal(v.len, strlen(v.u.str));
    cli_jv_free(&doc);
}

static void test_rejects(void **st)
{
    static const char *const bad[] = {
        "",
        " ",
        "{",
        "[",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "[01]",
        "[1.]",
        "[.5]",
        "[-]",
        "[1e]",
        "tru",
        "nul",
        "\"abc",
        "\"a\\x\"",
        "\"\\u12\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"tab\there\"",
        "[1] 2",
        "{\"a\":1}}",
        "[\"a\"\"b\"]",
        "+1",
        "NaN",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cli_jv_doc doc = { 0 };
        cli_jv v;
        char err[128] = "";
        if (cli_jv_parse(&doc, bad[i], strlen(bad[i]), &v, err, sizeof err) == 0)
            fail_msg("accepted '%s'", bad[i]);
        assert_non_null(strstr(err, "offset "));
        cli_jv_free(&doc);
    }
}

static void test_depth_limit(void **st)
{
    char deep[2 * (CLI_JV_MAX_DEPTH + 1) + 1];
    for (int i = 0; i <= CLI_JV_MAX_DEPTH; i++) {
        deep[i] = '[';
        deep[CLI_JV_MAX_DEPTH + 1 + i] = ']';
    }
    deep[2 * (CLI_JV_MAX_DEPTH + 1)] = '\0';
    cli_jv_doc doc = { 0 };
    cli_jv v;
    assert_int_equal(parse(deep, &doc, &v), -1);
    cli_jv_free(&doc);
    /* One level less is fine. */
    deep[2 * (CLI_JV_MAX_DEPTH + 1) - 1] = '\0';
    assert_int_equal(parse(deep + 1, &doc, &v), 0);
    cli_jv_free(&doc);
}

static void test_not_nul_terminated(void **st)
{
    /* Only len bytes are read. */
    const char buf[] = { '[', '1', ',', '2', ']', 'x' };
    cli_jv_doc doc = { 0 };
    cli_jv v;
    char err[64];
    assert_int_equal(cli_jv_parse(&doc, buf, 5, &v, err, sizeof err), 0);
    assert_int_equal(cli_jv_size(&v), 2);
    assert_int_equal(cli_jv_parse(&doc, buf, 4, &v, err, sizeof err), -1);
    cli_jv_free(&doc);
}

/* Printing matches jansson's JSON_INDENT(2) layout for the same input. */
static void test_print_like_jansson(void **st)
{
    const char *in = "{\"id\":\"a\\\"b\",\"n\":[1,2,{\"x\":[]}],\"e\":{},\"t\":true,"
                     "\"u\":\"\\u00e4\\u0001\",\"z\":null,\"big\":12345678901234}";
    json_t *j = json_loads(in, 0, NULL);
    char *want = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    cli_jv_doc doc = { 0 };
    cli_jv v;
    assert_int_equal(parse(in, &doc, &v), 0);
    char *got = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&got, &len);
    assert_int_equal(cli_jv_print(m, &v), 0);
    fclose(m);
    size_t wl = strlen(want);
    assert_int_equal(len, wl + 1);
    assert_memory_equal(got, want, wl);
    free(got);
    free(want);
    json_decref(j);
    cli_jv_free(&doc);
}

static void test_labels(void **st)
{
    cli_jv_doc doc = { 0 };
    cli_jv v;
    char out[64];
    assert_int_equal(parse("{\"b\":\"2\",\"a\":\"1\",\"c\":3}", &doc, &v), 0);
    cli_jv_labels(&v, out, sizeof out);
    assert_string_equal(out, "a=1,b=2,c=");
    cli_jv_labels(NULL, out, sizeof out);
    assert_string_equal(out, "");
    cli_jv_free(&doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_not_nul_terminated),
        cmocka_unit_test(test_print_like_jansson),
        cmocka_unit_test(test_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
