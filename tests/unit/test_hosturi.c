/* test_hosturi.c - the host URI allow list (daemon/hosturi.h, issue 16):
 * the URIs of the attack are refused by default with the part named, the
 * operator's list allows exactly what it names, and malformed URIs that
 * libvirt's parser might read differently are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hosturi.h"

static int check(const char *allow, const char *uri, char *err, size_t len)
{
    err[0] = 0;
    return huri_check(allow, uri, err, len);
}

static void test_default_allows(void **state)
{
    char err[512];
    (void)state;
    assert_int_equal(check(NULL, "qemu+ssh://root@node1.example/system", err, sizeof err), 0);
    assert_int_equal(check("", "qemu+tls://node1:16514/system", err, sizeof err), 0);
    assert_int_equal(check(NULL, "qemu://node1/system", err, sizeof err), 0); /* = qemu+tls */
    assert_int_equal(check(NULL, "qemu:///system", err, sizeof err), 0);
    assert_int_equal(check(NULL, "qemu+ssh://u@[fe80::1]:22/system", err, sizeof err), 0);
}

static void test_params_refused(void **state)
{
    char err[512];
    static const char *const uris[] = {
        "qemu+ssh://nobody@127.0.0.1:1/system?command=x",
        "qemu:///system?socket=/run/x.sock",
        "qemu+ssh://h/system?netcat=nc",
        "qemu+ssh://h/system?keyfile=/root/.ssh/id_rsa",
        "qemu+ssh://h/system?no_tty=1",
        "qemu+ssh://h/system?known_hosts=x",
        "qemu+tls://h/system?pkipath=x",
        "qemu+ssh://h/system?name=qemu:///system",
    };
    (void)state;
    for (size_t i = 0; i < sizeof uris / sizeof uris[0]; i++) {
        assert_int_equal(check(NULL, uris[i], err, sizeof err), HURI_E_REFUSED);
        assert_non_null(strstr(err, "parameter '"));
        assert_non_null(strstr(err, "is not allowed"));
    }
    check(NULL, uris[0], err, sizeof err);
    assert_non_null(strstr(err, "parameter 'command' is not allowed for qemu+ssh"));
}

static void test_schemes_refused(void **state)
{
    char err[512];
    static const char *const uris[] = {
        "qemu+ext:///system?command=/bin/sh",
        "qemu+tcp://h/system",
        "qemu+unix:///system",
        "test:///default",
        "lxc:///system",
        "qemu+libssh2://h/system",
    };
    (void)state;
    for (size_t i = 0; i < sizeof uris / sizeof uris[0]; i++) {
        assert_int_equal(check(NULL, uris[i], err, sizeof err), HURI_E_REFUSED);
        assert_non_null(strstr(err, "scheme '"));
    }
    assert_int_equal(check(NULL, "qemu:///session", err, sizeof err), HURI_E_REFUSED);
    assert_non_null(strstr(err, "path '/session'"));
    assert_int_equal(check(NULL, "qemu:///embed", err, sizeof err), HURI_E_REFUSED);
}

static void test_syntax_refused(void **state)
{
    char err[512];
    static const char *const uris[] = {
        "",
        "qemu",
        "QEMU:///system",
        "qemu+ssh://h",
        "qemu+ssh://-oProxyCommand=x/system",
        "qemu+ssh://-l/system",
        "qemu+ssh://u@/system",
        "qemu+ssh://h:0/system",
        "qemu+ssh://h:99999/system",
        "qemu+ssh://h:2x/system",
        "qemu+ssh://h/system#frag",
        "qemu+ssh://h/system?so%63ket=x",
        "qemu+ssh://h/system?a=1;command=x",
        "qemu+ssh://h/system?&",
        "qemu+ssh://h/system?=x",
        "qemu+ssh://h/sys tem",
        "qemu+ssh://h/system?x=a b",
        "qemu+ssh://h%2fx/system",
        "qemu+ssh://h/../etc",
        "qemu+ssh://h/system?x=\"",
        "qemu++ssh://h/system",
        "qemu+ssh+x://h/system",
        ":///system",
        "qemu:///system\n",
        "qemu:///syst\xc3\xa9m",
        "qemu://:22/system",
    };
    (void)state;
    for (size_t i = 0; i < sizeof uris / sizeof uris[0]; i++) {
        int rc = check(NULL, uris[i], err, sizeof err);
        if (rc != HURI_E_SYNTAX)
            fail_msg("'%s' gave %d (%s)", uris[i], rc, err);
    }
}

static void test_operator_allows(void **state)
{
    char err[512];
    (void)state;
    /* the e2e test's private libvirtd */
    assert_int_equal(
        check("qemu?socket", "qemu:///system?socket=/tmp/x/libvirt-sock", err, sizeof err), 0);
    assert_int_equal(check("qemu?socket", "qemu:///system?command=x", err, sizeof err),
                     HURI_E_REFUSED);
    assert_int_equal(check("qemu?socket", "qemu+ssh://h/system", err, sizeof err), HURI_E_REFUSED);
    assert_int_equal(check("qemu+ssh?keyfile&no_verify, qemu+tcp",
                           "qemu+ssh://h/system?keyfile=/k&no_verify=1", err, sizeof err),
                     0);
    assert_int_equal(
        check("qemu+ssh?keyfile&no_verify, qemu+tcp", "qemu+tcp://h:16509/system", err, sizeof err),
        0);
    /* a name that only starts like an allowed one */
    assert_int_equal(check("qemu+ssh?key", "qemu+ssh://h/system?keyfile=x", err, sizeof err),
                     HURI_E_REFUSED);
    assert_int_equal(check("test", "test:///default", err, sizeof err), 0);
}

static void test_allow_list_syntax(void **state)
{
    char err[256];
    (void)state;
    assert_int_equal(huri_allow_check(HURI_DEFAULT_ALLOW, err, sizeof err), 0);
    assert_int_equal(huri_allow_check("qemu?socket", err, sizeof err), 0);
    assert_int_equal(huri_allow_check("qemu+ssh?keyfile&no_tty qemu", err, sizeof err), 0);
    assert_int_equal(huri_allow_check("", err, sizeof err), 0);
    assert_int_equal(huri_allow_check("Qemu", err, sizeof err), -1);
    assert_int_equal(huri_allow_check("qemu?", err, sizeof err), -1);
    assert_int_equal(huri_allow_check("qemu?so%63ket", err, sizeof err), -1);
    assert_int_equal(huri_allow_check("qemu?a&&b", err, sizeof err), -1);
    assert_non_null(strstr(err, "'qemu?a&&b'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_allows),  cmocka_unit_test(test_params_refused),
        cmocka_unit_test(test_schemes_refused), cmocka_unit_test(test_syntax_refused),
        cmocka_unit_test(test_operator_allows), cmocka_unit_test(test_allow_list_syntax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
