/* test_cli_args.c: option parsing, selectors, config files and the mapping
 * of server errors to messages and exit statuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_args.h"
#include "cli_util.h"
#include "cmd.h"

static void test_memory(void **s)
{
    static const struct {
        const char *in;
        uint32_t mib;
    } ok[] = {
        { "32", 32 },    { "32M", 32 },    { "32m", 32 },     { "32MB", 32 },
        { "32MiB", 32 }, { "32mib", 32 },  { "1G", 1024 },    { "1GiB", 1024 },
        { "2g", 2048 },  { "65536K", 64 }, { "1T", 1048576 },
    };
    static const char *const bad[] = { "",  "M",  "-1",    "32X",  "32MiBs",        "1.5G",
                                       "0", "0G", "1000K", "32 M", "99999999999999" };
    char err[256];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint32_t v = 0;
        if (cli_parse_memory(ok[i].in, &v, err, sizeof err) != 0)
            fail_msg("'%s' rejected: %s", ok[i].in, err);
        assert_int_equal(v, ok[i].mib);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t v = 0;
        err[0] = '\0';
        if (cli_parse_memory(bad[i], &v, err, sizeof err) == 0)
            fail_msg("'%s' accepted as %u", bad[i], v);
        /* The message quotes the bad value. */
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        assert_non_null(strstr(err, quoted));
    }
}

static void test_ports(void **s)
{
    uint16_t h, g;
    const char *proto = NULL;
    char err[256];
    assert_int_equal(cli_parse_port("8080:80", &h, &g, &proto, err, sizeof err), 0);
    assert_int_equal(h, 8080);
    assert_int_equal(g, 80);
    assert_null(proto);
    assert_int_equal(cli_parse_port("1:65535/tcp", &h, &g, &proto, err, sizeof err), 0);
    assert_int_equal(h, 1);
    assert_int_equal(g, 65535);
    assert_string_equal(proto, "tcp");
    assert_int_equal(cli_parse_port("5353:53/udp", &h, &g, &proto, err, sizeof err), 0);
    assert_int_equal(h, 5353);
    assert_int_equal(g, 53);
    assert_string_equal(proto, "udp");
    static const char *const bad[] = { "80",         ":80",      "80:",          "0:80",
                                       "80:65536",   "a:b",      "8080:80/sctp", "8080:80/",
                                       "8080:80:90", "123456:1", "-1:80",        "80/udp:90" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (cli_parse_port(bad[i], &h, &g, &proto, err, sizeof err) == 0)
            fail_msg("'%s' accepted", bad[i]);
        assert_non_null(strstr(err, bad[i]));
    }
}

static void test_kv(void **s)
{
    size_t kl;
    const char *v;
    char err[256];
    assert_int_equal(cli_parse_kv("MODE=fast", &kl, &v, err, sizeof err), 0);
    assert_int_equal(kl, 4);
    assert_string_equal(v, "fast");
    assert_int_equal(cli_parse_kv("A=b=c", &kl, &v, err, sizeof err), 0);
    assert_int_equal(kl, 1);
    assert_string_equal(v, "b=c");
    assert_int_equal(cli_parse_kv("EMPTY=", &kl, &v, err, sizeof err), 0);
    assert_string_equal(v, "");
    assert_int_equal(cli_parse_kv("=x", &kl, &v, err, sizeof err), -1);
    assert_int_equal(cli_parse_kv("noequals", &kl, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "'noequals'"));
    assert_int_equal(cli_parse_kv("a b=c", &kl, &v, err, sizeof err), -1);
}

static void test_selectors(void **s)
{
    char err[256];
    static const char *const ok[] = {
        "app=web",       "app!=web", "app", "!app", "app=web,tier!=db,canary,!legacy",
        "k8s.io/name=x", "a="
    };
    static const char *const bad[] = { "",     ",",   "app=web,", "=web",       "!app=web",
                                       "a==b", "a b", "!",        "app=w,x=y=z" };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (cli_parse_selector(ok[i], err, sizeof err) != 0)
            fail_msg("'%s' rejected: %s", ok[i], err);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cli_parse_selector(bad[i], err, sizeof err) == 0)
            fail_msg("'%s' accepted", bad[i]);
}

static void test_uint_and_format(void **s)
{
    unsigned long v;
    cli_fmt f;
    char err[256];
    assert_int_equal(cli_parse_uint("1000", 1, 1000, &v, err, sizeof err), 0);
    assert_int_equal(v, 1000);
    assert_int_equal(cli_parse_uint("1001", 1, 1000, &v, err, sizeof err), -1);
    assert_int_equal(cli_parse_uint("0", 1, 1000, &v, err, sizeof err), -1);
    assert_int_equal(cli_parse_uint("-1", 0, 10, &v, err, sizeof err), -1);
    assert_int_equal(cli_parse_uint("3x", 0, 10, &v, err, sizeof err), -1);
    assert_int_equal(cli_parse_format("wide", &f, err, sizeof err), 0);
    assert_int_equal(f, CLI_FMT_WIDE);
    assert_int_equal(cli_parse_format("json", &f, err, sizeof err), 0);
    assert_int_equal(f, CLI_FMT_JSON);
    assert_int_equal(cli_parse_format("yaml", &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "'yaml'"));
}

/* Build a NULL-terminated argv from a literal list. */
#define ARGV(...) ((char *[]){ __VA_ARGS__, NULL })
static int argc_of(char **argv)
{
    int n = 0;
    while (argv[n])
        n++;
    return n;
}

/* token create --expires and --rate (issue 16) */
static void test_duration_and_rate(void **s)
{
    unsigned long v;
    char err[160];
    (void)s;
    assert_int_equal(cli_parse_duration("90", &v, err, sizeof err), 0);
    assert_int_equal(v, 90);
    assert_int_equal(cli_parse_duration("30m", &v, err, sizeof err), 0);
    assert_int_equal(v, 1800);
    assert_int_equal(cli_parse_duration("24h", &v, err, sizeof err), 0);
    assert_int_equal(v, 86400);
    assert_int_equal(cli_parse_duration("7d", &v, err, sizeof err), 0);
    assert_int_equal(v, 604800);
    static const char *const bad_d[] = { "", "0", "h", "24x", "1h30m", "-5m", "3651d" };
    for (size_t i = 0; i < sizeof bad_d / sizeof bad_d[0]; i++) {
        if (cli_parse_duration(bad_d[i], &v, err, sizeof err) != -1)
            fail_msg("duration '%s' accepted", bad_d[i]);
    }
    assert_non_null(strstr(err, "'3651d'"));
    assert_int_equal(cli_parse_rate("50/s", &v, err, sizeof err), 0);
    assert_int_equal(v, 50);
    assert_int_equal(cli_parse_rate("7", &v, err, sizeof err), 0);
    assert_int_equal(v, 7);
    static const char *const bad_r[] = { "", "0/s", "50/m", "/s", "5/s/s", "x/s" };
    for (size_t i = 0; i < sizeof bad_r / sizeof bad_r[0]; i++) {
        if (cli_parse_rate(bad_r[i], &v, err, sizeof err) != -1)
            fail_msg("rate '%s' accepted", bad_r[i]);
    }
    assert_non_null(strstr(err, "'x/s'"));
}

static void test_run_parse(void **s)
{
    struct inst_run_opts o;
    char **a = ARGV("run", "--name", "web", "-c", "3", "--memory", "64MiB", "--vcpus", "2", "-e",
                    "A=1", "--env", "B=x=y", "-l", "app=web", "--restart", "on-failure", "--host",
                    "h2", "hello:1.0", "--", "--port", "80");
    assert_int_equal(inst_run_parse(argc_of(a), a, &o), CLI_OK);
    assert_string_equal(o.image, "hello:1.0");
    assert_int_equal(o.count, 3);
    assert_int_equal(o.memory_mib, 64);
    assert_int_equal(o.nargs, 2);
    assert_string_equal(o.args[0], "--port");
    json_t *b = inst_run_body(&o);
    char *txt = json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(
        txt, "{\"args\":[\"--port\",\"80\"],\"count\":3,\"env\":{\"A\":\"1\",\"B\":\"x=y\"},"
             "\"host\":\"h2\",\"image\":\"hello:1.0\",\"labels\":{\"app\":\"web\"},"
             "\"memory_mib\":64,\"name\":\"web\",\"restart\":\"on-failure\",\"vcpus\":2}");
    free(txt);
    json_decref(b);
    inst_run_opts_free(&o);

    /* Only what was given is sent. */
    char **m = ARGV("run", "-p", "8080:80", "--no-network", "x");
    assert_int_equal(inst_run_parse(argc_of(m), m, &o), CLI_EUSAGE); /* -p with --no-network */
    inst_run_opts_free(&o);
    char **p = ARGV("run", "-p", "8080:80", "hello");
    assert_int_equal(inst_run_parse(argc_of(p), p, &o), CLI_OK);
    b = inst_run_body(&o);
    txt = json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(txt, "{\"image\":\"hello\",\"ports\":[{\"guest\":80,\"host\":8080}]}");
    free(txt);
    json_decref(b);
    inst_run_opts_free(&o);
    /* --scale-to-zero N: a whole number of seconds, 1..86400 */
    char **z = ARGV("run", "-p", "8080:80", "--scale-to-zero", "30", "hello");
    assert_int_equal(inst_run_parse(argc_of(z), z, &o), CLI_OK);
    b = inst_run_body(&o);
    txt = json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(txt, "{\"image\":\"hello\",\"ports\":[{\"guest\":80,\"host\":8080}],"
                             "\"scale_to_zero\":{\"idle_s\":30}}");
    free(txt);
    json_decref(b);
    inst_run_opts_free(&o);
    char **z0 = ARGV("run", "-p", "8080:80", "--scale-to-zero", "0", "hello");
    assert_int_equal(inst_run_parse(argc_of(z0), z0, &o), CLI_EUSAGE);
    inst_run_opts_free(&o);
    char **zx = ARGV("run", "-p", "8080:80", "--scale-to-zero", "5m", "hello");
    assert_int_equal(inst_run_parse(argc_of(zx), zx, &o), CLI_EUSAGE);
    inst_run_opts_free(&o);
    char **u = ARGV("run", "-p", "5353:53/udp", "-p", "8080:80/tcp", "hello");
    assert_int_equal(inst_run_parse(argc_of(u), u, &o), CLI_OK);
    b = inst_run_body(&o);
    txt = json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(txt, "{\"image\":\"hello\",\"ports\":[{\"guest\":53,\"host\":5353,"
                             "\"protocol\":\"udp\"},{\"guest\":80,\"host\":8080,"
                             "\"protocol\":\"tcp\"}]}");
    free(txt);
    json_decref(b);
    inst_run_opts_free(&o);

    /* Placement flags become one placement object. */
    char **q =
        ARGV("run", "--spread", "--anti-affinity", "app=web", "--host-affinity", "~zone", "web");
    assert_int_equal(inst_run_parse(argc_of(q), q, &o), CLI_OK);
    b = inst_run_body(&o);
    txt = json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(txt, "{\"image\":\"web\",\"placement\":{\"policy\":\"spread\","
                             "\"rules\":[{\"key\":\"app\",\"kind\":\"anti-affinity\","
                             "\"value\":\"web\"},{\"key\":\"zone\",\"kind\":\"host-affinity\","
                             "\"soft\":true}]}}");
    free(txt);
    json_decref(b);
    inst_run_opts_free(&o);

    char **bad[] = {
        ARGV("run", "--affinity", "", "x"),        /* empty rule */
        ARGV("run", "--anti-affinity", "=v", "x"), /* no key */
        ARGV("run"),                               /* no image */
        ARGV("run", "--count", "0", "x"),          /* out of range */
        ARGV("run", "--count", "1001", "x"),
        ARGV("run", "--memory", "lots", "x"),
        ARGV("run", "--restart", "sometimes", "x"),
        ARGV("run", "--attach", "-c", "2", "x"), /* attach needs one */
        ARGV("run", "-p", "80", "x"),
        ARGV("run", "-c", "2", "-p", "80:80", "x"), /* ports need count 1 */
        ARGV("run", "--env", "novalue", "x"),
        ARGV("run", "--bogus", "x"),
        ARGV("run", "x", "extra"), /* args without -- */
        ARGV("run", "--name"),     /* missing value */
        ARGV("run", "-o", "yaml", "x"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(inst_run_parse(argc_of(bad[i]), bad[i], &o), CLI_EUSAGE);
        inst_run_opts_free(&o);
    }
    char **h = ARGV("run", "--help");
    assert_int_equal(inst_run_parse(argc_of(h), h, &o), CLI_DONE);
    inst_run_opts_free(&o);
}

static void test_target_parse(void **s)
{
    struct inst_target_opts o;
    char **a = ARGV("rm", "-f", "web-1", "3f9a");
    assert_int_equal(inst_target_parse("rm", argc_of(a), a, &o), CLI_OK);
    assert_true(o.force);
    assert_int_equal(o.ntargets, 2);
    assert_string_equal(o.targets[1], "3f9a");
    char **b = ARGV("stop", "-t", "5", "-l", "app=web");
    assert_int_equal(inst_target_parse("stop", argc_of(b), b, &o), CLI_OK);
    assert_int_equal(o.timeout_s, 5);
    assert_string_equal(o.selector, "app=web");
    assert_int_equal(o.ntargets, 0);
    char **c = ARGV("stop", "-l", "app=web", "web-1"); /* both */
    assert_int_equal(inst_target_parse("stop", argc_of(c), c, &o), CLI_EUSAGE);
    char **d = ARGV("start");
    assert_int_equal(inst_target_parse("start", argc_of(d), d, &o), CLI_EUSAGE);
    char **e = ARGV("start", "-f", "x"); /* -f only for rm */
    assert_int_equal(inst_target_parse("start", argc_of(e), e, &o), CLI_EUSAGE);
    char **f = ARGV("rm", "-l", "bad selector", "x");
    assert_int_equal(inst_target_parse("rm", argc_of(f), f, &o), CLI_EUSAGE);
}

static void test_ps_parse(void **s)
{
    struct inst_ps_opts o;
    char **a = ARGV("ps", "-a", "-l", "app=web", "-o", "wide");
    assert_int_equal(inst_ps_parse(argc_of(a), a, &o), CLI_OK);
    assert_true(o.all);
    assert_int_equal(o.fmt, CLI_FMT_WIDE);
    char **b = ARGV("ps", "--watch", "-o", "json");
    assert_int_equal(inst_ps_parse(argc_of(b), b, &o), CLI_EUSAGE);
    char **c = ARGV("ps", "extra");
    assert_int_equal(inst_ps_parse(argc_of(c), c, &o), CLI_EUSAGE);
    assert_true(inst_state_active("running"));
    assert_true(inst_state_active("backoff"));
    assert_true(inst_state_active("lost"));
    assert_false(inst_state_active("exited"));
    assert_false(inst_state_active("stopped"));
}

static void test_error_mapping(void **s)
{
    assert_int_equal(cli_status_from_http(404, "not_found"), CLI_ENOTFOUND);
    assert_int_equal(cli_status_from_http(409, "conflict"), CLI_ECONFLICT);
    assert_int_equal(cli_status_from_http(401, "unauthorized"), CLI_EAUTH);
    assert_int_equal(cli_status_from_http(400, "invalid_field"), CLI_EUSAGE);
    assert_int_equal(cli_status_from_http(400, "bad_request"), CLI_EUSAGE);
    assert_int_equal(cli_status_from_http(422, "invalid_image"), CLI_EFAIL);
    assert_int_equal(cli_status_from_http(507, "insufficient_capacity"), CLI_EFAIL);
    assert_int_equal(cli_status_from_http(503, "unavailable"), CLI_EUNREACHABLE);
    assert_int_equal(cli_status_from_http(500, NULL), CLI_EFAIL);
    assert_int_equal(cli_status_from_http(404, NULL), CLI_ENOTFOUND);
    assert_int_equal(cli_status_from_http(403, NULL), CLI_EAUTH);
    assert_int_equal(cli_status_from_http(418, "some_new_code"), CLI_EFAIL);
    assert_int_equal(cli_status_from_http(429, "rate_limited"), CLI_EAUTH);
    assert_int_equal(cli_status_from_http(429, NULL), CLI_EAUTH);

    char msg[256];
    const char *body = "{\"error\":{\"code\":\"not_found\",\"message\":\"image 'foo:1' not "
                       "found\",\"field\":\"image\"}}";
    cli_error_message(404, body, strlen(body), msg, sizeof msg);
    assert_string_equal(msg, "image 'foo:1' not found");
    /* No error shape: a sentence, never a bare number. */
    cli_error_message(502, "<html>bad gateway</html>", 24, msg, sizeof msg);
    assert_string_equal(msg, "a proxy between here and shoald failed");
    cli_error_message(401, NULL, 0, msg, sizeof msg);
    assert_non_null(strstr(msg, "token"));
    cli_error_message(599, "", 0, msg, sizeof msg);
    assert_string_equal(msg, "unexpected response from the server (status 599)");
    const char *nomsg = "{\"error\":{\"code\":\"conflict\"}}";
    cli_error_message(409, nomsg, strlen(nomsg), msg, sizeof msg);
    assert_string_equal(msg, "conflict with the current state");
}

static void test_config(void **s)
{
    char *url = NULL, *tok = NULL, err[256];
    assert_int_equal(
        cli_config_parse("# comment\n\nurl = http://h:1\ntoken = \"abc def\"  # trailing\n", &url,
                         &tok, err, sizeof err),
        0);
    assert_string_equal(url, "http://h:1");
    assert_string_equal(tok, "abc def");
    assert_int_equal(cli_config_parse("url=http://other\n", &url, &tok, err, sizeof err), 0);
    assert_string_equal(url, "http://other");
    assert_string_equal(tok, "abc def");
    assert_int_equal(cli_config_parse("\nbogus = 1\n", &url, &tok, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 2"));
    assert_non_null(strstr(err, "'bogus'"));
    assert_int_equal(cli_config_parse("just words\n", &url, &tok, err, sizeof err), -1);
    free(url);
    free(tok);

    assert_true(cli_url_is_loopback("http://127.0.0.1:7878"));
    assert_true(cli_url_is_loopback("http://localhost:7878/x"));
    assert_true(cli_url_is_loopback("http://[::1]:7878"));
    assert_false(cli_url_is_loopback("http://localhost.example.com"));
    assert_false(cli_url_is_loopback("https://10.0.0.1"));
    assert_false(cli_url_is_loopback("http://127.0.0.1@evil.example/"));
}

static void test_config_precedence(void **s)
{
    char dir[] = "/tmp/shoal-cli-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof path, "%s/shoal", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/shoal/config", dir);
    FILE *f = fopen(path, "w");
    fputs("url = cfg.example:9\ntoken = cfgtok\n", f);
    fclose(f);
    char tpath[512];
    snprintf(tpath, sizeof tpath, "%s/admin.token", dir);
    f = fopen(tpath, "w");
    fputs("localtok\n", f);
    fclose(f);

    setenv("XDG_CONFIG_HOME", dir, 1);
    setenv("SHOAL_STATE_DIR", dir, 1);
    unsetenv("SHOAL_URL");
    unsetenv("SHOAL_TOKEN");
    cli_ctx c = { 0 };
    /* Config file beats defaults; a bare host:port gets http://. */
    assert_int_equal(cli_config_load(&c, NULL, NULL), CLI_OK);
    assert_string_equal(c.url, "http://cfg.example:9");
    assert_string_equal(c.token, "cfgtok");
    cli_ctx_free(&c);
    /* Environment beats the config file. */
    setenv("SHOAL_URL", "http://127.0.0.1:1234/", 1);
    setenv("SHOAL_TOKEN", "envtok", 1);
    assert_int_equal(cli_config_load(&c, NULL, NULL), CLI_OK);
    assert_string_equal(c.url, "http://127.0.0.1:1234");
    assert_string_equal(c.token, "envtok");
    cli_ctx_free(&c);
    /* Flags beat everything. */
    assert_int_equal(cli_config_load(&c, "http://127.0.0.1:5", "flagtok"), CLI_OK);
    assert_string_equal(c.url, "http://127.0.0.1:5");
    assert_string_equal(c.token, "flagtok");
    cli_ctx_free(&c);
    /* No token anywhere, loopback URL: the local daemon's token file. */
    unsetenv("SHOAL_TOKEN");
    remove(path);
    assert_int_equal(cli_config_load(&c, NULL, NULL), CLI_OK);
    assert_string_equal(c.token, "localtok");
    cli_ctx_free(&c);
    /* ... but never sent to a remote server. */
    assert_int_equal(cli_config_load(&c, "http://shoal.example:7878", NULL), CLI_OK);
    assert_null(c.token);
    cli_ctx_free(&c);
    assert_int_equal(cli_config_load(&c, "ftp://x", NULL), CLI_EUSAGE);
    cli_ctx_free(&c);
    remove(tpath);
    snprintf(path, sizeof path, "%s/shoal", dir);
    rmdir(path);
    rmdir(dir);
    unsetenv("SHOAL_URL");
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("SHOAL_STATE_DIR");
}

static void test_escape(void **s)
{
    cli_buf b = { 0 };
    cli_buf_escape(&b, "hello:1.0 a/b&c=d@e~");
    assert_string_equal(cli_buf_str(&b), "hello:1.0%20a%2Fb%26c%3Dd@e~");
    cli_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_ports),
        cmocka_unit_test(test_kv),
        cmocka_unit_test(test_selectors),
        cmocka_unit_test(test_uint_and_format),
        cmocka_unit_test(test_duration_and_rate),
        cmocka_unit_test(test_run_parse),
        cmocka_unit_test(test_target_parse),
        cmocka_unit_test(test_ps_parse),
        cmocka_unit_test(test_error_mapping),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_config_precedence),
        cmocka_unit_test(test_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
