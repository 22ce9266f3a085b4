/*
 * test_cmdline.c - the guest kernel's command line parser, run on the host
 * (kernel/cmdline.c is pure: it only touches the buffers it is given).
 * The grammar is docs/guest-protocol.md "Command line".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cmdline.h"

struct parsed {
    struct cmdline cl;
    char *strbuf;
    char **ptrs;
    char err[128];
    int rc;
};

static void parse(struct parsed *p, const char *line)
{
    size_t len = strlen(line);
    memset(p, 0, sizeof *p);
    p->strbuf = malloc(len + 1);
    p->ptrs = malloc((len + 8) * sizeof(char *));
    assert_non_null(p->strbuf);
    assert_non_null(p->ptrs);
    p->rc =
        cmdline_parse(line, p->strbuf, len + 1, p->ptrs, len + 8, &p->cl, p->err, sizeof p->err);
}

static void done(struct parsed *p)
{
    free(p->strbuf);
    free(p->ptrs);
}

static void test_empty(void **state)
{
    struct parsed p;
    (void)state;
    parse(&p, "");
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.cl.argc, 1);
    assert_null(p.cl.argv[0]); /* the caller fills in the app name */
    assert_null(p.cl.argv[1]);
    assert_int_equal(p.cl.envc, 0);
    assert_null(p.cl.envp[0]);
    done(&p);
    parse(&p, "   \t  ");
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.cl.argc, 1);
    done(&p);
}

static void test_env_and_args(void **state)
{
    struct parsed p;
    (void)state;
    parse(&p, "A=1 b.c_d=x=y  --  one\ttwo");
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.cl.envc, 2);
    assert_string_equal(p.cl.envp[0], "A=1");
    assert_string_equal(p.cl.envp[1], "b.c_d=x=y");
    assert_null(p.cl.envp[2]);
    assert_int_equal(p.cl.argc, 3);
    assert_string_equal(p.cl.argv[1], "one");
    assert_string_equal(p.cl.argv[2], "two");
    assert_null(p.cl.argv[3]);
    done(&p);
}

static void test_quoting(void **state)
{
    struct parsed p;
    (void)state;
    /* Inside quotes only \" and \\ are escapes; outside, \ escapes anything. */
    parse(&p, "\"B=two words\" C= D=\"q\\\"i\" E=a\\\\b F=\"x\\ny\" -- \"\" a\\ b \"s \\\"hi\\\"\" "
              "\"\"\"\" -- --");
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.cl.envc, 5);
    assert_string_equal(p.cl.envp[0], "B=two words");
    assert_string_equal(p.cl.envp[1], "C=");
    assert_string_equal(p.cl.envp[2], "D=q\"i");
    assert_string_equal(p.cl.envp[3], "E=a\\b");
    assert_string_equal(p.cl.envp[4], "F=x\\ny");
    assert_int_equal(p.cl.argc, 7);
    assert_string_equal(p.cl.argv[1], "");
    assert_string_equal(p.cl.argv[2], "a b");
    assert_string_equal(p.cl.argv[3], "s \"hi\"");
    assert_string_equal(p.cl.argv[4], "");   /* """" is two empty quotes: one empty token */
    assert_string_equal(p.cl.argv[5], "--"); /* only the first -- separates */
    assert_string_equal(p.cl.argv[6], "--");
    done(&p);
}

static void test_kernel_keys(void **state)
{
    struct parsed p;
    (void)state;
    parse(&p, "shoal.ip=10.0.0.2/24 X=1 shoal.quiet=1 shoal.ipx=no -- shoal.gw=arg");
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.cl.envc, 1);
    assert_string_equal(p.cl.envp[0], "X=1");
    assert_int_equal(p.cl.kparamc, 3);
    assert_string_equal(cmdline_kparam(&p.cl, "ip"), "10.0.0.2/24");
    assert_string_equal(cmdline_kparam(&p.cl, "quiet"), "1");
    assert_string_equal(cmdline_kparam(&p.cl, "ipx"), "no");
    assert_null(cmdline_kparam(&p.cl, "gw")); /* after --: an argument */
    assert_string_equal(p.cl.argv[1], "shoal.gw=arg");
    done(&p);
}

static void expect_bad(const char *line, const char *msg)
{
    struct parsed p;
    parse(&p, line);
    assert_int_equal(p.rc, -1);
    if (!strstr(p.err, msg))
        fail_msg("'%s': error '%s' lacks '%s'", line, p.err, msg);
    done(&p);
}

static void test_bad(void **state)
{
    (void)state;
    expect_bad("A=\"open", "unterminated quote in 'A=\"open'");
    expect_bad("-- \"open", "unterminated quote");
    expect_bad("A=1 oops -- x", "not KEY=VALUE (program arguments go after --): 'oops'");
    expect_bad("1A=x", "'1A=x'");
    expect_bad("=x", "'=x'");
    expect_bad("A-B=x", "'A-B=x'");
    expect_bad(".a=x", "'.a=x'");
    expect_bad("\"--\" x", "not KEY=VALUE"); /* a quoted -- is not the separator */
    expect_bad("A=x\\", "trailing backslash");
    char many[512] = "";
    for (int i = 0; i <= CMDLINE_KPARAMS_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "shoal.k%d=1 ", i);
    expect_bad(many, "shoal.* keys");
}

static void test_long(void **state)
{
    struct parsed p;
    (void)state;
    char *line = malloc(CMDLINE_MAX + 2);
    memcpy(line, "-- ", 3);
    memset(line + 3, 'x', CMDLINE_MAX - 3);
    line[CMDLINE_MAX] = '\0';
    parse(&p, line); /* exactly the limit: fine */
    assert_int_equal(p.rc, 0);
    assert_int_equal(strlen(p.cl.argv[1]), CMDLINE_MAX - 3);
    done(&p);
    line[CMDLINE_MAX] = 'x';
    line[CMDLINE_MAX + 1] = '\0';
    parse(&p, line);
    assert_int_equal(p.rc, -1);
    assert_non_null(strstr(p.err, "longer than"));
    done(&p);
    /* Worst case for the pointer array: one-character tokens. */
    memcpy(line, "-- ", 3);
    int args = 0;
    for (int i = 3; i < CMDLINE_MAX; i++) {
        line[i] = i % 2 ? 'a' : ' ';
        args += i % 2;
    }
    line[CMDLINE_MAX] = '\0';
    parse(&p, line);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.cl.argc, 1 + args);
    done(&p);
    free(line);
}

/* The Unikraft dialect (cmdline_from_unikraft): the lines shoald's
 * "unikraft" preset builds (docs/node.md), rewritten into the shoal form
 * and then parsed. */
static void uk_ok(const char *in, const char *want)
{
    char out[256], err[128] = "";
    if (cmdline_from_unikraft(in, out, sizeof out, err, sizeof err) != 0)
        fail_msg("'%s': %s", in, err);
    if (strcmp(out, want) != 0)
        fail_msg("'%s' -> '%s', want '%s'", in, out, want);
    struct parsed p;
    parse(&p, out);
    assert_int_equal(p.rc, 0);
    done(&p);
}

static void test_unikraft(void **state)
{
    char out[64], err[128];
    (void)state;
    uk_ok("httpd netdev.ip=10.88.0.4/16:10.88.0.1 env.vars=[ MODE=fast B=\"x y\" ] -- 8080 \"two "
          "words\"",
          "shoal.ip=10.88.0.4/16 shoal.gw=10.88.0.1 MODE=fast B=\"x y\" -- 8080 \"two words\"");
    uk_ok("app netdev.ip=10.0.0.2/24:10.0.0.1:8.8.8.8:1.1.1.1:host:dom vfs.fstab=x -- a",
          "shoal.ip=10.0.0.2/24 shoal.gw=10.0.0.1 -- a");
    uk_ok("app netdev.ip=10.0.0.2/24:10.0.0.1 --", "shoal.ip=10.0.0.2/24 shoal.gw=10.0.0.1 --");
    uk_ok("app hello world", "-- hello world"); /* no "--": every word an argument */
    uk_ok("app", "--");
    uk_ok("", "");
    uk_ok("app env.vars=[ ] -- --x", "-- --x");
    static const struct {
        const char *in, *msg;
    } bad[] = {
        { "app netdev.ip=10.0.0.2/24 -- a",
          "netdev.ip 'netdev.ip=10.0.0.2/24' is not CIDR:GATEWAY" },
        { "app netdev.ip=10.0.0.2/24: -- a", "is not CIDR:GATEWAY" },
        { "app env.vars=[ A=1 -- b", "env.vars=[ has no closing ]" },
        { "app -- 0123456789012345678901234567890123456789012345678901234567890123456789",
          "longer than 63 bytes once rewritten" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        if (cmdline_from_unikraft(bad[i].in, out, sizeof out, err, sizeof err) != -1 ||
            !strstr(err, bad[i].msg))
            fail_msg("'%s': got '%s', want '%s'", bad[i].in, err, bad[i].msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),    cmocka_unit_test(test_env_and_args),
        cmocka_unit_test(test_quoting),  cmocka_unit_test(test_kernel_keys),
        cmocka_unit_test(test_bad),      cmocka_unit_test(test_long),
        cmocka_unit_test(test_unikraft),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
