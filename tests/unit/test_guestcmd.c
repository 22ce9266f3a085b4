/* Unit tests: guest command line quoting (docs/guest-protocol.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "guestcmd.h"

static void test_plain(void **st)
{
    gcmd c;
    char err[128];
    (void)st;
    gcmd_init(&c);
    assert_int_equal(gcmd_env(&c, "shoal.ip", "10.88.0.2/16"), 0);
    assert_int_equal(gcmd_env(&c, "MODE", "fast"), 0);
    assert_int_equal(gcmd_arg(&c, "--port"), 0);
    assert_int_equal(gcmd_arg(&c, "80"), 0);
    assert_int_equal(gcmd_finish(&c, err, sizeof err), 0);
    assert_string_equal(c.buf, "shoal.ip=10.88.0.2/16 MODE=fast -- --port 80");
}

static void test_quoting(void **st)
{
    gcmd c;
    char err[128];
    (void)st;
    gcmd_init(&c);
    assert_int_equal(gcmd_env(&c, "GREETING", "hello there"), 0);
    assert_int_equal(gcmd_arg(&c, ""), 0);
    assert_int_equal(gcmd_arg(&c, "say \"hi\""), 0);
    assert_int_equal(gcmd_arg(&c, "back\\slash"), 0);
    assert_int_equal(gcmd_finish(&c, err, sizeof err), 0);
    assert_string_equal(c.buf,
                        "\"GREETING=hello there\" -- \"\" \"say \\\"hi\\\"\" \"back\\\\slash\"");
}

static void test_args_only(void **st)
{
    gcmd c;
    (void)st;
    gcmd_init(&c);
    assert_int_equal(gcmd_arg(&c, "7"), 0);
    assert_string_equal(c.buf, "-- 7");
}

static void test_refusals(void **st)
{
    gcmd c;
    char err[128], big[5000];
    (void)st;
    gcmd_init(&c);
    assert_int_equal(gcmd_env(&c, "1BAD", "x"), -1);
    assert_int_equal(gcmd_finish(&c, err, sizeof err), -1);

    gcmd_init(&c);
    assert_int_equal(gcmd_arg(&c, "line\nbreak"), -1);
    assert_int_equal(gcmd_finish(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "control"));

    gcmd_init(&c);
    assert_int_equal(gcmd_arg(&c, "x"), 0);
    assert_int_equal(gcmd_env(&c, "LATE", "y"), -1); /* env after -- */

    gcmd_init(&c);
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(gcmd_arg(&c, big), -1);
    assert_int_equal(gcmd_finish(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "exceed"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_args_only),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
