/* Unit tests: shoald configuration (defaults, file, flags, errors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static int load(cfg_t *c, char *err, int argc, ...)
{
    char *argv[16];
    va_list ap;
    argv[0] = "shoald";
    va_start(ap, argc);
    for (int i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    return cfg_load(c, argc, argv, err, 256);
}

static void test_defaults(void **st)
{
    cfg_t c;
    char err[256];
    (void)st;
    assert_int_equal(load(&c, err, 2, "--state-dir=/nonexistent-shoal"), 0);
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 7878);
    assert_string_equal(c.bridge, "shoal0");
    assert_int_equal(c.subnet, 0x0a580000);
    assert_int_equal(c.prefix, 16);
    assert_int_equal(c.network, 1);
    assert_string_equal(c.domain_type, "auto");
}

static void test_flags(void **st)
{
    cfg_t c;
    char err[256];
    (void)st;
    assert_int_equal(load(&c, err, 8, "--state-dir", "/nonexistent-shoal", "--listen", "[::1]:9000",
                          "--subnet", "192.168.77.9/24", "--no-network"), 0);
    assert_string_equal(c.listen_host, "::1");
    assert_int_equal(c.listen_port, 9000);
    assert_int_equal(c.subnet, 0xc0a84d00);   /* host bits cleared */
    assert_int_equal(c.prefix, 24);
    assert_int_equal(c.network, 0);
}

static void test_file_then_flags(void **st)
{
    char dir[] = "/tmp/shoal-cfg-XXXXXX", path[64], sd[80];
    cfg_t c;
    char err[256];
    FILE *f;
    (void)st;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/shoald.conf", dir);
    f = fopen(path, "w");
    fputs("# comment\nlisten = 127.0.0.2:1234\nbridge = br-test\n\ndomain-type=qemu\n", f);
    fclose(f);
    snprintf(sd, sizeof sd, "--state-dir=%s", dir);
    assert_int_equal(load(&c, err, 3, sd, "--listen=127.0.0.3:5"), 0);
    assert_string_equal(c.listen_host, "127.0.0.3");     /* flag wins */
    assert_string_equal(c.bridge, "br-test");            /* from the file */
    assert_string_equal(c.domain_type, "qemu");
    assert_string_equal(c.config_path, path);
    f = fopen(path, "w");
    fputs("listen = 127.0.0.2:1234\nfrobnicate = yes\n", f);
    fclose(f);
    assert_int_equal(load(&c, err, 2, sd), -1);
    assert_non_null(strstr(err, ":2"));
    assert_non_null(strstr(err, "frobnicate"));
    unlink(path);
    rmdir(dir);
}

static void test_errors(void **st)
{
    cfg_t c;
    char err[256];
    (void)st;
    assert_int_equal(load(&c, err, 3, "--listen", "nowhere"), -1);
    assert_non_null(strstr(err, "nowhere"));
    assert_int_equal(load(&c, err, 3, "--listen", "1.2.3.4:70000"), -1);
    assert_int_equal(load(&c, err, 3, "--subnet", "10.0.0.0/31"), -1);
    assert_int_equal(load(&c, err, 3, "--domain-type", "xen"), -1);
    assert_non_null(strstr(err, "xen"));
    assert_int_equal(load(&c, err, 2, "--bogus"), -1);
    assert_non_null(strstr(err, "--bogus"));
    assert_int_equal(load(&c, err, 2, "--listen"), -1);
    assert_non_null(strstr(err, "needs a value"));
    assert_int_equal(load(&c, err, 3, "--state-dir", "relative/dir"), -1);
    assert_int_equal(load(&c, err, 3, "--tls-cert", "/etc/hostname"), -1);
    assert_non_null(strstr(err, "go together"));
    assert_int_equal(load(&c, err, 3, "--config", "/nonexistent/shoald.conf"), -1);
    assert_non_null(strstr(err, "/nonexistent/shoald.conf"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_file_then_flags),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
