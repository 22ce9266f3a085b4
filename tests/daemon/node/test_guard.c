/*
 * test_guard.c - the pure half of daemon/guard.c: tap names, port checks and
 * the nft scripts it renders (golden files tests/daemon/golden/guard-*.nft;
 * SHOAL_REGEN_GOLDEN=1 rewrites them, then review the diff). The kernel
 * side is test_guard_net (integration, needs root).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"

#ifndef GOLDEN_DIR
#error GOLDEN_DIR must be defined
#endif

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

static void check_golden(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.nft", GOLDEN_DIR, name);
    if (getenv("SHOAL_REGEN_GOLDEN")) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        return;
    }
    char *want = read_file(path);
    if (!want)
        fail_msg("golden file %s missing (SHOAL_REGEN_GOLDEN=1 creates it)", path);
    if (strcmp(want, text) != 0) {
        fprintf(stderr, "---- got ----\n%s---- want (%s) ----\n%s", text, path, want);
        free(want);
        fail_msg("%s differs from golden file", name);
    }
    free(want);
}

static struct guard_port port(const char *id, const char *mac, uint32_t ip)
{
    struct guard_port p;
    char err[256];
    if (guard_port_init(&p, id, mac, ip, err, sizeof err) != GUARD_OK)
        fail_msg("guard_port_init(%s, %s): %s", id, mac, err);
    return p;
}

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

static void tap_names(void **state)
{
    (void)state;
    char t[GUARD_TAP_SIZE], u[GUARD_TAP_SIZE];

    guard_tap_name("0123456789ab", t);
    assert_string_equal(t, "sh0123456789ab");
    /* Not a shoal id (upper case, other length, other characters): hashed,
     * still the prefix and 12 lower-case hex digits, stable. */
    const char *odd[] = { "0123456789AB", "abc", "i-2", "", "0123456789abc", "web 1" };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        guard_tap_name(odd[i], t);
        guard_tap_name(odd[i], u);
        assert_string_equal(t, u);
        assert_int_equal(strlen(t), 14);
        assert_memory_equal(t, "sh", 2);
        assert_int_equal(strspn(t + 2, "0123456789abcdef"), 12);
    }
    guard_tap_name("i-1", t);
    guard_tap_name("i-2", u);
    assert_string_not_equal(t, u);
}

static void port_checks(void **state)
{
    (void)state;
    struct guard_port p;
    char err[256];

    assert_int_equal(
        guard_port_init(&p, "0123456789ab", "5A:5C:01:02:03:0F", IP(10, 88, 0, 2), err, sizeof err),
        GUARD_OK);
    assert_string_equal(p.tap, "sh0123456789ab");
    assert_string_equal(p.mac, "5a:5c:01:02:03:0f"); /* lower case, as nft prints */
    assert_int_equal(p.ipv4, IP(10, 88, 0, 2));
    assert_int_equal(guard_port_init(&p, "0123456789ab", "5a:5c:01:02:03:0f", 0, err, sizeof err),
                     GUARD_OK);

    const char *bad_macs[] = { "01:00:5e:00:00:01" /* multicast */, "5a:5c:01:02:03",
                               "5a:5c:01:02:03:0g", "5a-5c-01-02-03-04", "\"; flush ruleset" };
    for (size_t i = 0; i < sizeof bad_macs / sizeof bad_macs[0]; i++) {
        assert_int_equal(
            guard_port_init(&p, "0123456789ab", bad_macs[i], IP(10, 0, 0, 2), err, sizeof err),
            GUARD_E_INVAL);
        assert_non_null(strstr(err, "invalid MAC"));
    }
    const uint32_t bad_ips[] = { IP(127, 0, 0, 1), IP(0, 1, 2, 3), IP(224, 0, 0, 1),
                                 IP(255, 255, 255, 255) };
    for (size_t i = 0; i < sizeof bad_ips / sizeof bad_ips[0]; i++) {
        assert_int_equal(
            guard_port_init(&p, "0123456789ab", "5a:5c:00:00:00:01", bad_ips[i], err, sizeof err),
            GUARD_E_INVAL);
        assert_non_null(strstr(err, "cannot be a guest's"));
    }
    assert_int_equal(
        guard_port_init(&p, NULL, "5a:5c:00:00:00:01", IP(10, 0, 0, 2), err, sizeof err),
        GUARD_E_INVAL);

    /* A port made by hand with a name that could carry nft syntax, or that
     * is not a shoal tap, is refused by the renderers. */
    char *s = (char *)1;
    p = port("0123456789ab", "5a:5c:00:00:00:01", IP(10, 0, 0, 2));
    snprintf(p.tap, sizeof p.tap, "sh\" accept");
    assert_int_equal(guard_render_change(1, &p, 1, &s, err, sizeof err), GUARD_E_INVAL);
    assert_null(s);
    assert_non_null(strstr(err, "invalid tap name 'sh\" accept'"));
    snprintf(p.tap, sizeof p.tap, "vnet0");
    assert_int_equal(guard_render_table("shoal0", &p, 1, &s, err, sizeof err), GUARD_E_INVAL);
    p = port("0123456789ab", "5a:5c:00:00:00:01", IP(10, 0, 0, 2));
    assert_int_equal(guard_render_table("br\"0", &p, 1, &s, err, sizeof err), GUARD_E_INVAL);
    assert_non_null(strstr(err, "invalid bridge name 'br\"0'"));
    assert_int_equal(guard_render_table("br*", &p, 1, &s, err, sizeof err), GUARD_E_INVAL);
    assert_int_equal(guard_render_table("", &p, 1, &s, err, sizeof err), GUARD_E_INVAL);
}

/* The whole table, as shoald writes it at start with three guests (one
 * without an address). */
static void table_golden(void **state)
{
    (void)state;
    struct guard_port p[3] = {
        port("0123456789ab", "5a:5c:00:00:00:01", IP(10, 88, 0, 2)),
        port("abcdef012345", "5a:5c:00:00:00:02", IP(10, 88, 0, 3)),
        port("00000000000f", "5a:5c:00:00:00:03", 0),
    };
    char *s = NULL, err[256];
    assert_int_equal(guard_render_table("shoal0", p, 3, &s, err, sizeof err), GUARD_OK);
    check_golden("guard-table", s);
    free(s);
}

/* No guest yet: sets without elements (nft refuses "elements = { }"). */
static void table_empty_golden(void **state)
{
    (void)state;
    char *s = NULL, err[256];
    assert_int_equal(guard_render_table("br0", NULL, 0, &s, err, sizeof err), GUARD_OK);
    assert_null(strstr(s, "elements"));
    assert_non_null(strstr(s, "iifname \"br0.*\" accept"));
    check_golden("guard-table-empty", s);
    free(s);
}

static void change_golden(void **state)
{
    (void)state;
    struct guard_port p[2] = {
        port("0123456789ab", "5a:5c:00:00:00:01", IP(10, 88, 0, 2)),
        port("00000000000f", "5a:5c:00:00:00:03", 0),
    };
    char *add = NULL, *del = NULL, err[256];
    assert_int_equal(guard_render_change(1, p, 2, &add, err, sizeof err), GUARD_OK);
    assert_int_equal(guard_render_change(0, p, 2, &del, err, sizeof err), GUARD_OK);
    assert_string_equal(add, "add element bridge shoal ports { \"sh0123456789ab\" . "
                             "5a:5c:00:00:00:01 }\n"
                             "add element bridge shoal addrs { \"sh0123456789ab\" . "
                             "5a:5c:00:00:00:01 . 10.88.0.2 }\n"
                             "add element bridge shoal dests { \"sh0123456789ab\" . "
                             "10.88.0.2 }\n"
                             "add element bridge shoal ports { \"sh00000000000f\" . "
                             "5a:5c:00:00:00:03 }\n");
    /* Removal adds first, so that it cannot fail on a missing element. */
    check_golden("guard-remove", del);
    free(add);
    free(del);
    char *none = NULL;
    assert_int_equal(guard_render_change(1, NULL, 0, &none, err, sizeof err), GUARD_OK);
    assert_string_equal(none, "");
    free(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tap_names),     cmocka_unit_test(port_checks),
        cmocka_unit_test(table_golden),  cmocka_unit_test(table_empty_golden),
        cmocka_unit_test(change_golden),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
