/*
 * test_pool.c - the framing of a pool guest's configuration record
 * (guest-kernel/kernel/pool.c, pure), run on the host. The format is
 * docs/guest-protocol.md "Warm pool hand-over".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pool.h"

/* What one pass over an input produced. */
struct run {
    int records, refused;
    char body[POOL_RECORD_MAX + 1];
    size_t len;
    const char *why[8];
};

/* Feed s in chunks of `chunk` bytes (0: all at once), as a driver hands
 * over what each receive buffer held. */
static void feed(struct run *out, const char *s, size_t n, size_t chunk)
{
    static char body[POOL_RECORD_MAX + 1];
    struct pool_reader r;
    memset(out, 0, sizeof *out);
    pool_reader_init(&r, body);
    for (size_t off = 0; off < n;) {
        size_t c = chunk && n - off > chunk ? chunk : n - off;
        const char *p = s + off;
        off += c;
        while (c) {
            size_t used = 0, len = 0;
            const char *why = NULL;
            enum pool_event e = pool_feed(&r, p, c, &used, &len, &why);
            assert_true(used <= c);
            p += used;
            c -= used;
            if (e == POOL_RECORD) {
                out->records++;
                out->len = len;
                memcpy(out->body, body, len + 1);
            } else if (e == POOL_REFUSED) {
                assert_non_null(why);
                if (out->refused < 8)
                    out->why[out->refused] = why;
                out->refused++;
            } else {
                assert_int_equal(c, 0);
            }
        }
    }
}

static void test_record(void **state)
{
    (void)state;
    static const char in[] = "shoal-config 10\nA=1 -- x y";
    struct run r;
    for (size_t chunk = 0; chunk <= sizeof in; chunk++) {
        feed(&r, in, sizeof in - 1, chunk);
        assert_int_equal(r.records, 1);
        assert_int_equal(r.refused, 0);
        assert_int_equal(r.len, 10);
        assert_string_equal(r.body, "A=1 -- x y");
    }
}

static void test_empty_record(void **state)
{
    (void)state;
    struct run r;
    feed(&r, "shoal-config 0\n", 15, 0);
    assert_int_equal(r.records, 1);
    assert_int_equal(r.len, 0);
    assert_string_equal(r.body, "");
}

static void test_noise_ignored(void **state)
{
    (void)state;
    char in[600];
    struct run r;
    /* empty lines, text, a header not at a line start, near misses, and a
     * line far longer than the reader keeps */
    int n = snprintf(in, sizeof in,
                     "\n\nhello\nxshoal-config 3\nshoal-configX 3\n"
                     "shoal-config3\n%0300d shoal-config 3\nshoal-config 3\nabc",
                     0);
    for (size_t chunk = 0; chunk < 8; chunk++) {
        feed(&r, in, (size_t)n, chunk);
        assert_int_equal(r.refused, 0);
        assert_int_equal(r.records, 1);
        assert_string_equal(r.body, "abc");
    }
}

static void test_refused(void **state)
{
    (void)state;
    static const char in[] = "shoal-config abc\nshoal-config 8193\nshoal-config \nshoal-config\n"
                             "shoal-config 1x\nshoal-config 99999999999999999999\n"
                             "shoal-config 000000000000000000000000000000000001\n"
                             "shoal-config 2\nok";
    struct run r;
    feed(&r, in, sizeof in - 1, 0);
    assert_int_equal(r.refused, 7);
    assert_string_equal(r.why[0], "length is not a number");
    assert_string_equal(r.why[1], "record is longer than 8192 bytes");
    assert_string_equal(r.why[2], "length is not a number");
    assert_string_equal(r.why[3], "length is not a number");
    assert_string_equal(r.why[4], "length is not a number");
    assert_string_equal(r.why[5], "record is longer than 8192 bytes");
    assert_string_equal(r.why[6], "record is longer than 8192 bytes"); /* cut by the line limit */
    assert_int_equal(r.records, 1);
    assert_string_equal(r.body, "ok");
}

static void test_largest(void **state)
{
    (void)state;
    size_t n = 20 + POOL_RECORD_MAX;
    char *in = malloc(n);
    assert_non_null(in);
    int h = snprintf(in, n, "shoal-config %d\n", POOL_RECORD_MAX);
    memset(in + h, 'x', POOL_RECORD_MAX);
    struct run r;
    feed(&r, in, (size_t)h + POOL_RECORD_MAX, 1024);
    assert_int_equal(r.records, 1);
    assert_int_equal(r.len, POOL_RECORD_MAX);
    assert_int_equal(strlen(r.body), POOL_RECORD_MAX);
    free(in);
}

/* The body is taken byte for byte: newlines, a NUL (the kernel refuses
 * that one, not the framing), bytes after it are the next line's. */
static void test_body_bytes(void **state)
{
    (void)state;
    static const char in[] = "shoal-config 5\na\nb\0c";
    struct run r;
    feed(&r, in, sizeof in - 1, 0);
    assert_int_equal(r.records, 1);
    assert_int_equal(r.len, 5);
    assert_memory_equal(r.body, "a\nb\0c", 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record),        cmocka_unit_test(test_empty_record),
        cmocka_unit_test(test_noise_ignored), cmocka_unit_test(test_refused),
        cmocka_unit_test(test_largest),       cmocka_unit_test(test_body_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
