/* test_cli_render.c: golden-file tests of the CLI's table renderers.
 *
 * Each case renders a fixed JSON input from golden/ with a fixed "now" and
 * compares the output byte for byte with golden/<case>.txt. Set
 * SHOAL_UPDATE_GOLDEN=1 to rewrite the expected files after a deliberate
 * change (then review the diff).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_table.h"
#include "cli_util.h"
#include "cmd.h"

#ifndef GOLDEN_DIR
#error "GOLDEN_DIR must be defined"
#endif

/* 2026-11-26T23:05:00Z */
static time_t fixed_now(void)
{
    time_t t;
    assert_int_equal(cli_parse_time("2026-11-26T23:05:00Z", &t), 0);
    return t;
}

static json_t *load(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", GOLDEN_DIR, name);
    json_error_t e;
    json_t *j = json_load_file(path, JSON_PRESERVE_ORDER, &e);
    if (!j)
        fail_msg("%s: %s (line %d)", path, e.text, e.line);
    return j;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    char chunk[4096];
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (n + r + 1 > cap) {
            cap = (n + r + 1) * 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        memcpy(buf + n, chunk, r);
        n += r;
    }
    fclose(f);
    if (!buf)
        buf = calloc(1, 1);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Compare rendered text with golden/<name>; rewrite it when asked. */
static void check_golden(const char *name, const char *got, size_t got_len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", GOLDEN_DIR, name);
    const char *upd = getenv("SHOAL_UPDATE_GOLDEN");
    if (upd && !strcmp(upd, "1")) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fwrite(got, 1, got_len, f);
        fclose(f);
        return;
    }
    size_t len = 0;
    char *want = read_all(path, &len);
    if (!want)
        fail_msg("missing golden file %s (run with SHOAL_UPDATE_GOLDEN=1)", path);
    if (len != got_len || memcmp(want, got, len) != 0) {
        fprintf(stderr, "--- expected %s\n%s--- got\n%s---\n", path, want, got);
        free(want);
        fail_msg("output differs from %s", name);
    }
    free(want);
}

typedef int (*render_fn)(FILE *out, const json_t *in, cli_fmt fmt);

/* Instances render from the fast parser's document: parse the jansson
 * fixture's text with it. */
static int r_inst(FILE *o, const json_t *j, cli_fmt f)
{
    /* 15 digits: the fixture's numbers as written (0.41, not 0.40999..). */
    char *txt = json_dumps(j, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    cli_jv_doc doc = { 0 };
    cli_jv v;
    char err[128];
    assert_int_equal(cli_jv_parse(&doc, txt, strlen(txt), &v, err, sizeof err), 0);
    int rc = inst_render_list(o, &v, f, fixed_now());
    cli_jv_free(&doc);
    free(txt);
    return rc;
}
static int r_img(FILE *o, const json_t *j, cli_fmt f)
{
    return image_render_list(o, j, f, fixed_now());
}

static void golden_case(const char *input, render_fn fn, cli_fmt fmt, const char *expect)
{
    json_t *in = load(input);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    assert_non_null(m);
    assert_int_equal(fn(m, in, fmt), 0);
    fclose(m);
    check_golden(expect, buf, len);
    free(buf);
    json_decref(in);
}

static void test_ps_table(void **s)
{
    golden_case("instances.json", r_inst, CLI_FMT_TABLE, "ps_table.txt");
}
static void test_ps_wide(void **s)
{
    golden_case("instances.json", r_inst, CLI_FMT_WIDE, "ps_wide.txt");
}
static void test_ps_json(void **s)
{
    golden_case("instances.json", r_inst, CLI_FMT_JSON, "ps_json.txt");
}
static void test_images_table(void **s)
{
    golden_case("images.json", r_img, CLI_FMT_TABLE, "images_table.txt");
}
static void test_images_wide(void **s)
{
    golden_case("images.json", r_img, CLI_FMT_WIDE, "images_wide.txt");
}
/* inspect -o table of each image of images.json (the last one from a server
 * before kinds: no kind, evidence or profile), a blank line between. */
static int r_img_inspect(FILE *o, const json_t *j, cli_fmt f)
{
    size_t i;
    json_t *img;
    (void)f;
    json_array_foreach ((json_t *)j, i, img) {
        if (i)
            fputc('\n', o);
        if (image_render_inspect(o, img, fixed_now()) < 0)
            return -1;
    }
    return 0;
}
static void test_image_inspect(void **s)
{
    golden_case("images.json", r_img_inspect, CLI_FMT_TABLE, "image_inspect.txt");
}
static void test_hosts_table(void **s)
{
    golden_case("hosts.json", host_render_list, CLI_FMT_TABLE, "hosts_table.txt");
}
static void test_hosts_wide(void **s)
{
    golden_case("hosts.json", host_render_list, CLI_FMT_WIDE, "hosts_wide.txt");
}
static void test_plan(void **s)
{
    json_t *plan = load("plan.json");
    golden_case("plan.json", host_render_plan, CLI_FMT_TABLE, "plan.txt");
    assert_int_equal(host_plan_status(plan), CLI_OK); /* a dry run has no failures */
    json_decref(plan);
}
/* A carried-out plan: each move's result; the exit status is the first
 * failure's (unavailable: shoald could not be reached through that host). */
static void test_plan_done(void **s)
{
    json_t *plan = load("plan_done.json");
    golden_case("plan_done.json", host_render_plan, CLI_FMT_TABLE, "plan_done.txt");
    assert_int_equal(host_plan_status(plan), cli_status_from_http(0, "unavailable"));
    assert_int_not_equal(host_plan_status(plan), CLI_OK);
    json_decref(plan);
}

static void test_events(void **s)
{
    json_t *in = load("events.json");
    char *buf = NULL;
    size_t len = 0, i;
    json_t *ev;
    FILE *m = open_memstream(&buf, &len);
    assert_non_null(m);
    json_array_foreach (in, i, ev) {
        char line[1024];
        events_format(ev, line, sizeof line);
        fprintf(m, "%s\n", line);
    }
    fclose(m);
    check_golden("events.txt", buf, len);
    free(buf);
    json_decref(in);
}

static void test_empty_list(void **s)
{
    cli_jv empty = { .type = CLI_JV_ARR };
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    assert_int_equal(inst_render_list(m, &empty, CLI_FMT_TABLE, fixed_now()), 0);
    fclose(m);
    assert_string_equal(buf, "ID   NAME   IMAGE   STATE   HOST   MEMORY   ADDRESS   CREATED\n");
    free(buf);
}

static void test_table_alignment_and_truncation(void **s)
{
    static const char *const h[] = { "A", "LONGHEADER", "N" };
    cli_table *t = cli_table_new(3, h);
    assert_non_null(t);
    cli_table_set_max(t, 0, 6);
    cli_table_set_right(t, 2, true);
    const char *r1[] = { "abcdefghij", "x", "5" };
    const char *r2[] = { "äöü", NULL, "1234" };
    const char *r3[] = { "\033[31m", "a\nb", "" };
    assert_int_equal(cli_table_add(t, r1), 0);
    assert_int_equal(cli_table_add(t, r2), 0);
    assert_int_equal(cli_table_add(t, r3), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    cli_table_print(t, m);
    fclose(m);
    assert_string_equal(buf, "A        LONGHEADER      N\n"
                             "abc...   x               5\n"
                             "äöü      -            1234\n"
                             "?[31m    a?b             -\n");
    free(buf);
    cli_table_free(t);
}

static void test_bars(void **s)
{
    char b[64];
    cli_bar(48, 100, 10, b, sizeof b);
    assert_string_equal(b, "[#####.....]  48%");
    cli_bar(0, 100, 10, b, sizeof b);
    assert_string_equal(b, "[..........]   0%");
    cli_bar(1, 1000, 10, b, sizeof b);
    assert_string_equal(b, "[#.........]   0%");
    cli_bar(100, 100, 10, b, sizeof b);
    assert_string_equal(b, "[##########] 100%");
    cli_bar(16, 2, 10, b, sizeof b); /* overcommitted vCPUs */
    assert_string_equal(b, "[##########] 800%");
    cli_bar(0, 0, 4, b, sizeof b);
    assert_string_equal(b, "[....]   -");
}

static void test_units(void **s)
{
    char b[64];
    cli_fmt_bytes(512, b, sizeof b);
    assert_string_equal(b, "512B");
    cli_fmt_bytes(81920, b, sizeof b);
    assert_string_equal(b, "80.0KiB");
    cli_fmt_mib(32, b, sizeof b);
    assert_string_equal(b, "32M");
    cli_fmt_mib(2048, b, sizeof b);
    assert_string_equal(b, "2G");
    cli_fmt_mib(1536, b, sizeof b);
    assert_string_equal(b, "1.5G");
    cli_fmt_ago("2026-11-26T23:04:59.250Z", fixed_now(), b, sizeof b);
    assert_string_equal(b, "1 second ago");
    cli_fmt_ago("garbage", fixed_now(), b, sizeof b);
    assert_string_equal(b, "-");
    cli_fmt_ago(NULL, fixed_now(), b, sizeof b);
    assert_string_equal(b, "-");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ps_table),
        cmocka_unit_test(test_ps_wide),
        cmocka_unit_test(test_ps_json),
        cmocka_unit_test(test_images_table),
        cmocka_unit_test(test_images_wide),
        cmocka_unit_test(test_image_inspect), /* image inspect -o table */
        cmocka_unit_test(test_hosts_table),
        cmocka_unit_test(test_hosts_wide),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_plan_done),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_empty_list),
        cmocka_unit_test(test_table_alignment_and_truncation),
        cmocka_unit_test(test_bars),
        cmocka_unit_test(test_units),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
