/* Unit tests: guest command line quoting (docs/guest-protocol.md) and the
 * command-line presets (guestcmd.h, docs/node.md "Boot profiles"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
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

/* ---- presets ------------------------------------------------------------- */

static const gcmd_kv two_env[] = { { "MODE", "fast" }, { "GREETING", "hello there" } };
static const char *const two_args[] = { "--port", "80" };

static gcmd_run net_run(void)
{
    gcmd_run r = { .ip = "10.88.0.2", .prefix = 16, .gw = "10.88.0.1", .mac = "5a:5c:01:02:03:04" };
    return r;
}

static void test_preset_shoal(void **st)
{
    gcmd c;
    char err[256] = "";
    (void)st;
    gcmd_run r = net_run();
    r.env = two_env;
    r.n_env = 2;
    r.args = two_args;
    r.n_args = 2;
    assert_int_equal(gcmd_build(&c, GCMD_PRESET_SHOAL, &r, err, sizeof err), 0);
    assert_string_equal(c.buf,
                        "shoal.ip=10.88.0.2/16 shoal.gw=10.88.0.1 shoal.mac=5a:5c:01:02:03:04 "
                        "MODE=fast \"GREETING=hello there\" -- --port 80");
    /* the same line as token by token (run.c before presets) */
    gcmd t;
    gcmd_init(&t);
    gcmd_env(&t, "shoal.ip", "10.88.0.2/16");
    gcmd_env(&t, "shoal.gw", "10.88.0.1");
    gcmd_env(&t, "shoal.mac", "5a:5c:01:02:03:04");
    gcmd_env(&t, "MODE", "fast");
    gcmd_env(&t, "GREETING", "hello there");
    gcmd_arg(&t, "--port");
    gcmd_arg(&t, "80");
    assert_string_equal(c.buf, t.buf);

    gcmd_run none = { 0 };
    assert_int_equal(gcmd_build(&c, GCMD_PRESET_SHOAL, &none, err, sizeof err), 0);
    assert_string_equal(c.buf, "");
    none.args = two_args;
    none.n_args = 1;
    assert_int_equal(gcmd_build(&c, GCMD_PRESET_SHOAL, &none, err, sizeof err), 0);
    assert_string_equal(c.buf, "-- --port");
}

/* Issue 16: the shoal preset's environment and arguments go to the private
 * record, the kernel's keys stay on the line; other presets are whole. */
static void test_split(void **st)
{
    gcmd line, rec, whole;
    char err[256] = "";
    (void)st;
    gcmd_run r = net_run();
    r.env = two_env;
    r.n_env = 2;
    r.args = two_args;
    r.n_args = 2;
    assert_int_equal(gcmd_build_split(&line, &rec, GCMD_PRESET_SHOAL, &r, err, sizeof err), 0);
    assert_string_equal(line.buf,
                        "shoal.ip=10.88.0.2/16 shoal.gw=10.88.0.1 shoal.mac=5a:5c:01:02:03:04");
    assert_string_equal(rec.buf, "MODE=fast \"GREETING=hello there\" -- --port 80");
    /* a warm pool guest's record: its boot line has shoal.gw and shoal.mac */
    gcmd_run pr = r;
    pr.no_gw = 1;
    pr.mac = NULL;
    assert_int_equal(gcmd_build_split(&line, &rec, GCMD_PRESET_SHOAL, &pr, err, sizeof err), 0);
    assert_string_equal(line.buf, "shoal.ip=10.88.0.2/16");
    assert_string_equal(rec.buf, "MODE=fast \"GREETING=hello there\" -- --port 80");
    assert_int_equal(gcmd_build_split(&line, &rec, GCMD_PRESET_SHOAL, &r, err, sizeof err), 0);
    /* "line record" is the line gcmd_build makes */
    assert_int_equal(gcmd_build(&whole, GCMD_PRESET_SHOAL, &r, err, sizeof err), 0);
    char joined[2 * GCMD_MAX];
    snprintf(joined, sizeof joined, "%s %s", line.buf, rec.buf);
    assert_string_equal(joined, whole.buf);
    /* no network: an empty line */
    gcmd_run nonet = r;
    nonet.ip = NULL;
    assert_int_equal(gcmd_build_split(&line, &rec, GCMD_PRESET_SHOAL, &nonet, err, sizeof err), 0);
    assert_string_equal(line.buf, "");
    assert_string_equal(rec.buf, "MODE=fast \"GREETING=hello there\" -- --port 80");
    /* nothing private: an empty record */
    gcmd_run keys = net_run();
    assert_int_equal(gcmd_build_split(&line, &rec, GCMD_PRESET_SHOAL, &keys, err, sizeof err), 0);
    assert_int_equal(rec.len, 0);
    /* other presets: all on the line */
    r.env = NULL;
    r.n_env = 0;
    assert_int_equal(gcmd_build_split(&line, &rec, GCMD_PRESET_SOLO5, &r, err, sizeof err), 0);
    assert_string_equal(line.buf, "--port 80");
    assert_int_equal(rec.len, 0);
    /* refusals are gcmd_build's */
    static const char *const bad[] = { "a\nb" };
    r.args = bad;
    r.n_args = 1;
    assert_int_equal(gcmd_build_split(&line, &rec, GCMD_PRESET_SHOAL, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "control characters"));
}

static void test_preset_unikraft(void **st)
{
    gcmd c;
    char err[256] = "";
    (void)st;
    gcmd_run r = net_run();
    static const char *const args[] = { "-c", "/nginx/conf/nginx.conf", "two words", "" };

    /* network and arguments, no name (Multiboot: QEMU puts the file name first) */
    r.args = args;
    r.n_args = 2;
    assert_int_equal(gcmd_build(&c, GCMD_PRESET_UNIKRAFT, &r, err, sizeof err), 0);
    assert_string_equal(c.buf, "netdev.ip=10.88.0.2/16:10.88.0.1 -- -c /nginx/conf/nginx.conf");

    /* PVH: the app's name first; environment as Unikraft's list; quoting */
    r.argv0 = "nginx";
    r.env = two_env;
    r.n_env = 2;
    r.n_args = 4;
    assert_int_equal(gcmd_build(&c, GCMD_PRESET_UNIKRAFT, &r, err, sizeof err), 0);
    assert_string_equal(c.buf, "nginx netdev.ip=10.88.0.2/16:10.88.0.1 env.vars=[ MODE=fast "
                               "\"GREETING=hello there\" ] -- -c /nginx/conf/nginx.conf "
                               "\"two words\" \"\"");

    /* no network, no env: no parameter, so no "--" (Unikraft would hand a
     * leading "--" to the app) */
    gcmd_run bare = { .argv0 = "app", .args = args, .n_args = 1 };
    assert_int_equal(gcmd_build(&c, GCMD_PRESET_UNIKRAFT, &bare, err, sizeof err), 0);
    assert_string_equal(c.buf, "app -c");
    bare.argv0 = NULL;
    bare.n_args = 0;
    assert_int_equal(gcmd_build(&c, GCMD_PRESET_UNIKRAFT, &bare, err, sizeof err), 0);
    assert_string_equal(c.buf, "");

    /* network only: parameters, then "--" with nothing after it */
    r = net_run();
    assert_int_equal(gcmd_build(&c, GCMD_PRESET_UNIKRAFT, &r, err, sizeof err), 0);
    assert_string_equal(c.buf, "netdev.ip=10.88.0.2/16:10.88.0.1 --");

    /* env only */
    gcmd_run env_only = { .env = two_env, .n_env = 1 };
    assert_int_equal(gcmd_build(&c, GCMD_PRESET_UNIKRAFT, &env_only, err, sizeof err), 0);
    assert_string_equal(c.buf, "env.vars=[ MODE=fast ] --");

    /* a value ending in ']' would close the list */
    static const gcmd_kv bracket[] = { { "LIST", "[a]" } };
    env_only.env = bracket;
    assert_int_equal(gcmd_build(&c, GCMD_PRESET_UNIKRAFT, &env_only, err, sizeof err), -1);
    assert_non_null(strstr(err, "env 'LIST'"));
    assert_string_equal(c.buf, "");
}

static void test_preset_verbatim(void **st)
{
    gcmd c;
    char err[256] = "";
    (void)st;
    static const char *const hello[] = { "Hello_Solo5" };
    static const char *const mirage[] = { "--ipv4=10.88.0.2/16", "--ipv4-gateway=10.88.0.1",
                                          "a \"b\" c\\" };
    gcmd_run r = net_run(); /* the address is the app's business */

    r.args = hello;
    r.n_args = 1;
    assert_int_equal(gcmd_build(&c, GCMD_PRESET_SOLO5, &r, err, sizeof err), 0);
    assert_string_equal(c.buf, "Hello_Solo5");
    r.args = mirage;
    r.n_args = 3;
    assert_int_equal(gcmd_build(&c, GCMD_PRESET_SOLO5, &r, err, sizeof err), 0);
    assert_string_equal(c.buf, "--ipv4=10.88.0.2/16 --ipv4-gateway=10.88.0.1 a \"b\" c\\");
    assert_int_equal(gcmd_build(&c, GCMD_PRESET_RAW, &r, err, sizeof err), 0);
    assert_string_equal(c.buf, "--ipv4=10.88.0.2/16 --ipv4-gateway=10.88.0.1 a \"b\" c\\");
    r.n_args = 0;
    assert_int_equal(gcmd_build(&c, GCMD_PRESET_RAW, &r, err, sizeof err), 0);
    assert_string_equal(c.buf, "");

    /* environment cannot reach such a guest: refused, not dropped */
    r.env = two_env;
    r.n_env = 2;
    assert_int_equal(gcmd_build(&c, GCMD_PRESET_SOLO5, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "env 'MODE'"));
    assert_non_null(strstr(err, "'solo5'"));
    assert_int_equal(gcmd_build(&c, GCMD_PRESET_RAW, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "'raw'"));
}

static void test_preset_refusals(void **st)
{
    gcmd c;
    char err[256], big[3000];
    (void)st;
    static const char *const ctl[] = { "tab\there" };
    const char *bigs[2];
    gcmd_run r = { .args = ctl, .n_args = 1 };
    for (int p = GCMD_PRESET_SHOAL; p <= GCMD_PRESET_RAW; p++) {
        err[0] = 0;
        assert_int_equal(gcmd_build(&c, (gcmd_preset)p, &r, err, sizeof err), -1);
        assert_non_null(strstr(err, "control"));
    }
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    bigs[0] = bigs[1] = big;
    r.args = bigs;
    r.n_args = 2;
    for (int p = GCMD_PRESET_SHOAL; p <= GCMD_PRESET_RAW; p++) {
        err[0] = 0;
        assert_int_equal(gcmd_build(&c, (gcmd_preset)p, &r, err, sizeof err), -1);
        assert_non_null(strstr(err, "exceed"));
    }
    r.n_args = 1; /* 2999 bytes fit */
    for (int p = GCMD_PRESET_SHOAL; p <= GCMD_PRESET_RAW; p++)
        assert_int_equal(gcmd_build(&c, (gcmd_preset)p, &r, err, sizeof err), 0);
    assert_int_equal(gcmd_build(&c, (gcmd_preset)9, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "preset 9"));
    assert_string_equal(gcmd_preset_name(GCMD_PRESET_UNIKRAFT), "unikraft");
    assert_string_equal(gcmd_preset_name((gcmd_preset)9), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),           cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_args_only),       cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_preset_shoal),    cmocka_unit_test(test_split),
        cmocka_unit_test(test_preset_unikraft), cmocka_unit_test(test_preset_verbatim),
        cmocka_unit_test(test_preset_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
