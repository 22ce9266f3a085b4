/* Unit tests: the guest status channel parser (untrusted input). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gstatus.h"

static int parse(const char *s, gst_record *r)
{
    return gst_parse_line(s, strlen(s), r);
}

static void test_good_records(void **st)
{
    gst_record r;
    (void)st;
    assert_int_equal(parse("shoal-status ready boot_us=412", &r), 0);
    assert_int_equal(r.kind, GST_READY);
    assert_int_equal(r.boot_us, 412);
    assert_int_equal(r.claim_us, -1);
    /* a warm pool guest (docs/guest-protocol.md "Warm pool hand-over") */
    assert_int_equal(parse("shoal-status pool-wait boot_us=900", &r), 0);
    assert_int_equal(r.kind, GST_POOL_WAIT);
    assert_int_equal(r.boot_us, 900);
    assert_int_equal(parse("shoal-status ready boot_us=900 claim_us=35\r", &r), 0);
    assert_int_equal(r.kind, GST_READY);
    assert_int_equal(r.boot_us, 900);
    assert_int_equal(r.claim_us, 35);
    assert_int_equal(parse("shoal-status exit code=255", &r), 0);
    assert_int_equal(r.kind, GST_EXIT);
    assert_int_equal(r.exit_code, 255);
    assert_int_equal(parse("shoal-status exit code=0\r", &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(
        parse("shoal-status crash vector=14 error=0x2 rip=0x100137 cr2=0xdead0000000", &r), 0);
    assert_int_equal(r.kind, GST_CRASH);
    assert_int_equal(r.vector, 14);
    assert_int_equal(r.rip, 0x100137);
    assert_int_equal(r.cr2, 0xdead0000000ull);
    assert_int_equal(parse("shoal-status crash vector=6 error=0 rip=ffffffff cr2=0", &r), 0);
    assert_int_equal(r.rip, 0xffffffffull);
}

static void test_bad_records(void **st)
{
    static const char *const bad[] = {
        "",
        "shoal-status",
        "shoal-status ",
        "shoal-status ready",
        "shoal-status ready boot_us=",
        "shoal-status ready boot_us=-1",
        "shoal-status ready boot_us=12x",
        "shoal-status ready boot_us=99999999999999999999999",
        "shoal-status exit code=256",
        "shoal-status exit code=1 extra",
        "shoal-status ready boot_us=1 claim_us=",
        "shoal-status ready boot_us=1 claim_us=5 extra",
        "shoal-status ready boot_us=1 extra",
        "shoal-status pool-wait",
        "shoal-status pool-wait boot_us=1 claim_us=2",
        "shoal-status exit",
        "shoal-status exit code=0x10",
        "shoal-status exits code=1",
        "shoal-status crash vector=14",
        "shoal-status crash vector=300 error=0 rip=0 cr2=0",
        "shoal-status crash vector=1 error=0 rip=0x1ffffffffffffffff cr2=0",
        "SHOAL-STATUS exit code=0",
        " shoal-status exit code=0",
        "hello world",
    };
    gst_record r;
    (void)st;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i], &r) != -1)
            fail_msg("accepted '%s'", bad[i]);
    }
}

struct seen {
    gst_record recs[16];
    int n;
};

static void cb(void *ctx, const gst_record *r)
{
    struct seen *s = ctx;
    if (s->n < 16)
        s->recs[s->n++] = *r;
}

static void test_tracker_incremental(void **st)
{
    char path[] = "/tmp/shoal-gst-XXXXXX";
    int fd = mkstemp(path);
    gst_tracker t;
    struct seen s = { .n = 0 };
    char longline[600];
    (void)st;
    assert_true(fd >= 0);
    memset(&t, 0, sizeof t);
    assert_int_equal(gst_tracker_poll(&t, "/tmp/does-not-exist-shoal", cb, &s), 0);
    assert_int_equal(write(fd, "shoal-status ready boot", 23), 23);
    assert_int_equal(gst_tracker_poll(&t, path, cb, &s), 0); /* partial line */
    assert_int_equal(write(fd, "_us=7\n", 6), 6);
    assert_int_equal(gst_tracker_poll(&t, path, cb, &s), 1);
    assert_int_equal(s.recs[0].boot_us, 7);
    /* An overlong line is dropped whole, even if it ends like a record. */
    memset(longline, 'x', sizeof longline);
    assert_int_equal(write(fd, longline, sizeof longline), (ssize_t)sizeof longline);
    assert_int_equal(write(fd, "shoal-status exit code=9\njunk\nshoal-status exit code=3\n", 55),
                     55);
    assert_int_equal(gst_tracker_poll(&t, path, cb, &s), 1);
    assert_int_equal(s.recs[1].exit_code, 3);
    assert_int_equal(t.bad, 2);
    /* A new run truncates the file: the tracker starts over. */
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(pwrite(fd, "shoal-status exit code=1\n", 25, 0), 25);
    assert_int_equal(gst_tracker_poll(&t, path, cb, &s), 1);
    assert_int_equal(s.recs[2].exit_code, 1);
    close(fd);
    unlink(path);
}

static void test_crash_text(void **st)
{
    gst_record r = { .kind = GST_CRASH, .vector = 14, .error = 2, .rip = 0x1000, .cr2 = 0xdead };
    char buf[200];
    (void)st;
    gst_crash_text(&r, buf, sizeof buf);
    assert_non_null(strstr(buf, "page fault"));
    assert_non_null(strstr(buf, "0xdead"));
    r.vector = 13;
    gst_crash_text(&r, buf, sizeof buf);
    assert_non_null(strstr(buf, "general protection"));
    r.vector = 200;
    gst_crash_text(&r, buf, sizeof buf);
    assert_non_null(strstr(buf, "vector 200"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_records),
        cmocka_unit_test(test_bad_records),
        cmocka_unit_test(test_tracker_incremental),
        cmocka_unit_test(test_crash_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
