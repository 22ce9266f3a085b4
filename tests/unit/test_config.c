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
    assert_int_equal(c.start_parallel, 0); /* auto */
    /* Capacity (docs/shoald.md "Capacity"): measured, no slot limit, an
     * automatic reserve, 90 % of the CPUs, KSM left alone. */
    assert_string_equal(c.capacity, "measured");
    assert_string_equal(c.privsep, "on"); /* issue 16: the API front runs apart */
    assert_string_equal(c.privsep_user, "shoal-api");
    assert_int_equal(c.max_instances, 0);
    assert_int_equal(c.mem_reserve_mib, 0);
    assert_int_equal(c.cpu_target, 90);
    assert_string_equal(c.ksm, "off");
    assert_string_equal(c.dhcp, "on");
    assert_int_equal(load(&c, err, 3, "--dhcp", "yes"), -1);
    assert_non_null(strstr(err, "'yes'"));
    assert_string_equal(c.qemu_aslr, "on");
    assert_int_equal(load(&c, err, 3, "--qemu-aslr", "no"), -1);
    assert_int_equal(load(&c, err, 3, "--qemu-user", "Bad/User"), -1);
    assert_int_equal(load(&c, err, 3, "--qemu-user", ""), -1);
    assert_int_equal(load(&c, err, 3, "--privsep", "yes"), -1);
    assert_int_equal(load(&c, err, 3, "--privsep-user", "Bad/User"), -1);
    assert_int_equal(load(&c, err, 3, "--capacity", "real"), -1);
    assert_non_null(strstr(err, "'real'"));
    assert_int_equal(load(&c, err, 3, "--ksm", "maybe"), -1);
    assert_int_equal(load(&c, err, 3, "--cpu-target", "0"), -1);
    assert_int_equal(load(&c, err, 3, "--cpu-target", "101"), -1);
    /* --start-parallel: auto or 1..256 */
    assert_int_equal(load(&c, err, 4, "--state-dir=/nonexistent-shoal", "--start-parallel", "7"),
                     0);
    assert_int_equal(c.start_parallel, 7);
    assert_int_equal(load(&c, err, 4, "--state-dir=/nonexistent-shoal", "--start-parallel", "auto"),
                     0);
    assert_int_equal(c.start_parallel, 0);
    assert_int_equal(load(&c, err, 4, "--state-dir=/nonexistent-shoal", "--start-parallel", "0"),
                     -1);
    assert_int_equal(load(&c, err, 4, "--state-dir=/nonexistent-shoal", "--start-parallel", "257"),
                     -1);
    assert_int_equal(load(&c, err, 4, "--state-dir=/nonexistent-shoal", "--start-parallel", "many"),
                     -1);
    assert_non_null(strstr(err, "start-parallel"));
}

static void test_flags(void **st)
{
    cfg_t c;
    char err[256];
    (void)st;
    assert_int_equal(load(&c, err, 8, "--state-dir", "/nonexistent-shoal", "--listen", "[::1]:9000",
                          "--subnet", "192.168.77.9/24", "--no-network"),
                     0);
    assert_string_equal(c.listen_host, "::1");
    assert_int_equal(c.listen_port, 9000);
    assert_int_equal(c.subnet, 0xc0a84d00); /* host bits cleared */
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
    assert_string_equal(c.listen_host, "127.0.0.3"); /* flag wins */
    assert_string_equal(c.bridge, "br-test");        /* from the file */
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

/* ---- the option table ---------------------------------------------------- */

/* What the test expects shoald to have, written out independently of the
 * table: a sample value (NULL for flags), the check that it took effect,
 * and what must come with it. Adding or removing an option means updating
 * this list, docs/shoald.md and the table together. */
static char tls_file[] = "/tmp/shoal-cfg-tls-XXXXXX";

static int got_state_dir(const cfg_t *c)
{
    return !strcmp(c->state_dir, "/tmp/shoal-cfg-sd");
}
static int got_listen(const cfg_t *c)
{
    return !strcmp(c->listen_host, "::1") && c->listen_port == 9001;
}
static int got_domain_type(const cfg_t *c)
{
    return !strcmp(c->domain_type, "kvm");
}
static int got_local_uri(const cfg_t *c)
{
    return !strcmp(c->local_uri, "test:///default");
}
static int got_bridge(const cfg_t *c)
{
    return !strcmp(c->bridge, "br-x");
}
static int got_subnet(const cfg_t *c)
{
    return c->subnet == 0xac100000 && c->prefix == 12;
}
static int got_no_network(const cfg_t *c)
{
    return c->network == 0;
}
static int got_dhcp(const cfg_t *c)
{
    return !strcmp(c->dhcp, "off");
}
static int got_remote_nets(const cfg_t *c)
{
    return !strcmp(c->remote_nets, "192.168.0.0/20");
}
static int got_publish(const cfg_t *c)
{
    return !strcmp(c->publish_addr, "127.0.0.1");
}
static int got_max(const cfg_t *c)
{
    return c->max_instances == 7;
}
static int got_mem(const cfg_t *c)
{
    return c->mem_overcommit == 1.5;
}
static int got_cpu(const cfg_t *c)
{
    return c->cpu_overcommit == 2.5;
}
static int got_capacity(const cfg_t *c)
{
    return !strcmp(c->capacity, "nominal");
}
static int got_reserve(const cfg_t *c)
{
    return c->mem_reserve_mib == 512;
}
static int got_cpu_target(const cfg_t *c)
{
    return c->cpu_target == 75;
}
static int got_ksm(const cfg_t *c)
{
    return !strcmp(c->ksm, "auto");
}
static int got_aslr(const cfg_t *c)
{
    return !strcmp(c->qemu_aslr, "off");
}
static int got_qemu_user(const cfg_t *c)
{
    return !strcmp(c->qemu_user, "qemu-x");
}
static int got_privsep(const cfg_t *c)
{
    return !strcmp(c->privsep, "on");
}
static int got_privsep_user(const cfg_t *c)
{
    return !strcmp(c->privsep_user, "api-x");
}
static int got_host_grace(const cfg_t *c)
{
    return c->host_grace_s == 12;
}

static int got_console(const cfg_t *c)
{
    return c->console_max_kib == 64;
}
static int got_start_parallel(const cfg_t *c)
{
    return c->start_parallel == 12;
}
static int got_uri_allow(const cfg_t *c)
{
    return !strcmp(c->host_uri_allow, "qemu?socket");
}
static int got_api_conns(const cfg_t *c)
{
    return c->api_max_conns == 300;
}
static int got_api_conns_ip(const cfg_t *c)
{
    return c->api_max_conns_per_ip == 9;
}
static int got_api_timeout(const cfg_t *c)
{
    return c->api_timeout_s == 7;
}
static int got_pub_conns(const cfg_t *c)
{
    return c->publish_max_conns == 500;
}
static int got_pub_port_conns(const cfg_t *c)
{
    return c->publish_port_max_conns == 50;
}
static int got_pub_connect(const cfg_t *c)
{
    return c->publish_connect_ms == 2500;
}
static int got_pub_wake(const cfg_t *c)
{
    return c->publish_wake_ms == 4000;
}
static int got_move(const cfg_t *c)
{
    return !strcmp(c->move_mode, "cold");
}
static int got_move_ready(const cfg_t *c)
{
    return c->move_ready_ms == 7000;
}
static int got_tls(const cfg_t *c)
{
    return !strcmp(c->tls_cert, tls_file) && !strcmp(c->tls_key, tls_file);
}
static int got_check(const cfg_t *c)
{
    return c->check_only == 1;
}
static int got_verbose(const cfg_t *c)
{
    return c->verbose == 1;
}

typedef struct {
    const char *name; /* long option */
    char short_name;
    const char *key;   /* config-file key, NULL: command line only */
    const char *value; /* sample value; NULL: a flag (file value file_value) */
    const char *file_value;
    int (*got)(const cfg_t *);
    const char *with; /* option that must come along (no dashes) */
} want_opt;

static const want_opt WANT[] = {
    { "state-dir", 0, "state-dir", "/tmp/shoal-cfg-sd", NULL, got_state_dir, NULL },
    { "listen", 0, "listen", "[::1]:9001", NULL, got_listen, NULL },
    { "config", 0, NULL, "", NULL, NULL, NULL },
    { "domain-type", 0, "domain-type", "kvm", NULL, got_domain_type, NULL },
    { "local-uri", 0, "local-uri", "test:///default", NULL, got_local_uri, NULL },
    { "bridge", 0, "bridge", "br-x", NULL, got_bridge, NULL },
    { "subnet", 0, "subnet", "172.16.0.0/12", NULL, got_subnet, NULL },
    { "remote-subnets", 0, "remote-subnets", "192.168.0.0/20", NULL, got_remote_nets, NULL },
    { "no-network", 0, "network", NULL, "0", got_no_network, NULL },
    { "dhcp", 0, "dhcp", "off", NULL, got_dhcp, NULL },
    { "publish-addr", 0, "publish-addr", "127.0.0.1", NULL, got_publish, NULL },
    { "max-instances", 0, "max-instances", "7", NULL, got_max, NULL },
    { "mem-overcommit", 0, "mem-overcommit", "1.5", NULL, got_mem, NULL },
    { "capacity", 0, "capacity", "nominal", NULL, got_capacity, NULL },
    { "mem-reserve", 0, "mem-reserve", "512", NULL, got_reserve, NULL },
    { "cpu-overcommit", 0, "cpu-overcommit", "2.5", NULL, got_cpu, NULL },
    { "cpu-target", 0, "cpu-target", "75", NULL, got_cpu_target, NULL },
    { "ksm", 0, "ksm", "auto", NULL, got_ksm, NULL },
    { "qemu-aslr", 0, "qemu-aslr", "off", NULL, got_aslr, NULL },
    { "qemu-user", 0, "qemu-user", "qemu-x", NULL, got_qemu_user, NULL },
    { "privsep", 0, "privsep", "on", NULL, got_privsep, NULL },
    { "privsep-user", 0, "privsep-user", "api-x", NULL, got_privsep_user, NULL },
    { "console-max-kib", 0, "console-max-kib", "64", NULL, got_console, NULL },
    { "host-grace", 0, "host-grace", "12", NULL, got_host_grace, NULL },
    { "start-parallel", 0, "start-parallel", "12", NULL, got_start_parallel, NULL },
    { "host-uri-allow", 0, "host-uri-allow", "qemu?socket", NULL, got_uri_allow, NULL },
    { "api-max-conns", 0, "api-max-conns", "300", NULL, got_api_conns, NULL },
    { "api-max-conns-per-ip", 0, "api-max-conns-per-ip", "9", NULL, got_api_conns_ip, NULL },
    { "api-timeout", 0, "api-timeout", "7", NULL, got_api_timeout, NULL },
    { "publish-max-conns", 0, "publish-max-conns", "500", NULL, got_pub_conns, NULL },
    { "publish-port-max-conns", 0, "publish-port-max-conns", "50", NULL, got_pub_port_conns, NULL },
    { "publish-connect-timeout", 0, "publish-connect-timeout", "2500", NULL, got_pub_connect,
      NULL },
    { "publish-wake-timeout", 0, "publish-wake-timeout", "4000", NULL, got_pub_wake, NULL },
    { "move", 0, "move", "cold", NULL, got_move, NULL },
    { "move-ready-timeout", 0, "move-ready-timeout", "7000", NULL, got_move_ready, NULL },
    { "tls-cert", 0, "tls-cert", tls_file, NULL, got_tls, "tls-key" },
    { "tls-key", 0, "tls-key", tls_file, NULL, got_tls, "tls-cert" },
    { "check-config", 0, NULL, NULL, NULL, got_check, NULL },
    { "verbose", 'v', "verbose", NULL, "1", got_verbose, NULL },
    { "help", 'h', NULL, NULL, NULL, NULL, NULL },
    { "version", 0, NULL, NULL, NULL, NULL, NULL },
};
#define N_WANT (sizeof WANT / sizeof WANT[0])

static const want_opt *want(const char *name)
{
    for (size_t i = 0; i < N_WANT; i++)
        if (!strcmp(WANT[i].name, name))
            return &WANT[i];
    return NULL;
}

static int setup_tls(void **st)
{
    int fd;
    (void)st;
    strcpy(tls_file, "/tmp/shoal-cfg-tls-XXXXXX");
    fd = mkstemp(tls_file);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int teardown_tls(void **st)
{
    (void)st;
    unlink(tls_file);
    return 0;
}

/* The table and the list above name the same options the same way. */
static void test_table_is_known(void **st)
{
    size_t n;
    const cfg_option *o = cfg_options(&n);
    (void)st;
    for (size_t i = 0; i < n; i++) {
        const want_opt *w = want(o[i].name);
        if (!w)
            fail_msg("option --%s is not known to the test (add it to WANT)", o[i].name);
        assert_int_equal(o[i].short_name, w->short_name);
        if (!o[i].key != !w->key || (w->key && strcmp(o[i].key, w->key)))
            fail_msg("option --%s: file key '%s', test expects '%s'", o[i].name,
                     o[i].key ? o[i].key : "(none)", w->key ? w->key : "(none)");
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(o[i].name, o[j].name);
            if (o[i].key && o[j].key)
                assert_string_not_equal(o[i].key, o[j].key);
        }
    }
    for (size_t i = 0; i < N_WANT; i++) {
        size_t j;
        for (j = 0; j < n && strcmp(o[j].name, WANT[i].name); j++)
            ;
        if (j == n)
            fail_msg("option --%s is missing from the table", WANT[i].name);
    }
}

/* Every option with something to set is accepted on the command line, as
 * --name=value, --name value and -c, and takes effect. */
static void test_every_option_on_command_line(void **st)
{
    char err[256], eq[1100], ceq[1100];
    cfg_t c;
    (void)st;
    for (size_t i = 0; i < N_WANT; i++) {
        const want_opt *w = &WANT[i];
        const want_opt *cw = w->with ? want(w->with) : NULL;
        int rc;
        if (!w->got)
            continue;
        if (cw)
            snprintf(ceq, sizeof ceq, "--%s=%s", cw->name, cw->value);
        else
            snprintf(ceq, sizeof ceq, "--state-dir=/nonexistent-shoal");
        if (w->value) {
            snprintf(eq, sizeof eq, "--%s=%s", w->name, w->value);
            rc = load(&c, err, 4, "--state-dir=/nonexistent-shoal", ceq, eq);
            if (rc != 0 || !w->got(&c))
                fail_msg("%s: rc %d (%s)", eq, rc, rc ? err : "value not taken");
            snprintf(eq, sizeof eq, "--%s", w->name);
            rc = load(&c, err, 5, "--state-dir=/nonexistent-shoal", ceq, eq, w->value);
            if (rc != 0 || !w->got(&c))
                fail_msg("%s %s: rc %d (%s)", eq, w->value, rc, rc ? err : "value not taken");
        } else {
            snprintf(eq, sizeof eq, "--%s", w->name);
            rc = load(&c, err, 4, "--state-dir=/nonexistent-shoal", ceq, eq);
            if (rc != 0 || !w->got(&c))
                fail_msg("%s: rc %d (%s)", eq, rc, rc ? err : "not taken");
        }
        if (w->short_name) {
            char sh[3] = { '-', w->short_name, 0 };
            rc = load(&c, err, 3, "--state-dir=/nonexistent-shoal", sh);
            if (rc != 0 || !w->got(&c))
                fail_msg("%s: rc %d (%s)", sh, rc, rc ? err : "not taken");
        }
    }
}

/* Every option with a file key is accepted in the config file and takes
 * effect; command-line-only options are unknown settings there. */
static void test_every_option_in_file(void **st)
{
    char dir[] = "/tmp/shoal-cfg-XXXXXX", path[64], cfgarg[80], err[256];
    cfg_t c;
    FILE *f;
    (void)st;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/x.conf", dir);
    snprintf(cfgarg, sizeof cfgarg, "--config=%s", path);
    for (size_t i = 0; i < N_WANT; i++) {
        const want_opt *w = &WANT[i];
        const want_opt *cw = w->with ? want(w->with) : NULL;
        int rc;
        f = fopen(path, "w");
        assert_non_null(f);
        if (w->key)
            fprintf(f, "%s = %s\n", w->key, w->value ? w->value : w->file_value);
        else
            fprintf(f, "%s = 1\n", w->name);
        if (cw)
            fprintf(f, "%s=%s\n", cw->key, cw->value);
        fclose(f);
        rc = load(&c, err, 2, cfgarg);
        if (!w->key) {
            char q[80];
            snprintf(q, sizeof q, "unknown setting '%s'", w->name);
            if (rc != -1 || !strstr(err, q))
                fail_msg("command-line-only %s accepted in the file (rc %d, %s)", w->name, rc, err);
            continue;
        }
        if (rc != 0 || !w->got(&c))
            fail_msg("file key %s: rc %d (%s)", w->key, rc, rc ? err : "value not taken");
        assert_string_equal(c.config_path, path);
    }
    unlink(path);
    rmdir(dir);
}

/* --help prints every option of the table (and returns 1). */
static void test_help_lists_everything(void **st)
{
    char out[] = "/tmp/shoal-cfg-help-XXXXXX", buf[8192], err[256];
    size_t n, len;
    const cfg_option *o = cfg_options(&n);
    cfg_t c;
    int fd = mkstemp(out), saved;
    FILE *f;
    (void)st;
    assert_true(fd >= 0);
    fflush(stdout);
    saved = dup(1);
    dup2(fd, 1);
    assert_int_equal(load(&c, err, 2, "--help"), 1);
    assert_int_equal(load(&c, err, 2, "--version"), 1);
    assert_int_equal(load(&c, err, 2, "-h"), 1);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    close(fd);
    f = fopen(out, "r");
    assert_non_null(f);
    len = fread(buf, 1, sizeof buf - 1, f);
    buf[len] = 0;
    fclose(f);
    unlink(out);
    assert_non_null(strstr(buf, "usage: shoald"));
    assert_non_null(strstr(buf, "\nshoald "));                                  /* --version */
    assert_non_null(strstr(strstr(buf, "usage: shoald") + 1, "usage: shoald")); /* -h */
    for (size_t i = 0; i < n; i++) {
        char opt[80];
        if (o[i].short_name)
            snprintf(opt, sizeof opt, "  -%c, --%s", o[i].short_name, o[i].name);
        else
            snprintf(opt, sizeof opt, "  --%s%s%s", o[i].name, o[i].arg ? " " : "",
                     o[i].arg ? o[i].arg : "");
        if (!strstr(buf, opt))
            fail_msg("--help does not list '%s':\n%s", opt, buf);
    }
    for (size_t i = 0; i < N_WANT; i++) {
        char opt[80];
        snprintf(opt, sizeof opt, "--%s", WANT[i].name);
        assert_non_null(strstr(buf, opt));
    }
}

/* Unknown options and keys are refused with the name quoted. */
static void test_unknown_refused(void **st)
{
    char dir[] = "/tmp/shoal-cfg-XXXXXX", path[64], cfgarg[80], err[256];
    cfg_t c;
    FILE *f;
    (void)st;
    assert_int_equal(load(&c, err, 2, "--frobnicate"), -1);
    assert_non_null(strstr(err, "'--frobnicate'"));
    assert_int_equal(load(&c, err, 2, "--frobnicate=1"), -1);
    assert_non_null(strstr(err, "'--frobnicate=1'"));
    /* abbreviations are not whole names */
    assert_int_equal(load(&c, err, 2, "--list=127.0.0.1:1"), -1);
    assert_non_null(strstr(err, "'--list=127.0.0.1:1'"));
    assert_int_equal(load(&c, err, 3, "--verb", "--state-dir=/nonexistent-shoal"), -1);
    assert_non_null(strstr(err, "'--verb'"));
    /* the file key of a flag is not an option */
    assert_int_equal(load(&c, err, 2, "--network=0"), -1);
    assert_non_null(strstr(err, "'--network=0'"));
    assert_int_equal(load(&c, err, 2, "-x"), -1);
    assert_non_null(strstr(err, "'-x'"));
    assert_int_equal(load(&c, err, 2, "positional"), -1);
    assert_non_null(strstr(err, "'positional'"));
    assert_int_equal(load(&c, err, 2, "--no-network=1"), -1);
    assert_non_null(strstr(err, "'--no-network'"));
    assert_int_equal(load(&c, err, 3, "--max-instances", "0"), -1);
    assert_non_null(strstr(err, "'0'"));
    assert_int_equal(load(&c, err, 3, "--mem-overcommit", "lots"), -1);
    assert_non_null(strstr(err, "'lots'"));

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/x.conf", dir);
    snprintf(cfgarg, sizeof cfgarg, "--config=%s", path);
    f = fopen(path, "w");
    fputs("# ok\n\nbridge = br0\nno-network = 1\n", f);
    fclose(f);
    assert_int_equal(load(&c, err, 2, cfgarg), -1);
    assert_non_null(strstr(err, ":4: unknown setting 'no-network'"));
    f = fopen(path, "w");
    fputs("verbose = 2\n", f);
    fclose(f);
    assert_int_equal(load(&c, err, 2, cfgarg), -1);
    assert_non_null(strstr(err, ":1: invalid value '2' for 'verbose'"));
    f = fopen(path, "w");
    fputs("listen\n", f);
    fclose(f);
    assert_int_equal(load(&c, err, 2, cfgarg), -1);
    assert_non_null(strstr(err, "expected 'key = value', got 'listen'"));
    unlink(path);
    rmdir(dir);
}

/* The next cell separator of a Markdown table row after p: a '|' that is
 * not escaped ("`on\|off`" stays in its cell). NULL if none. */
static const char *next_bar(const char *p)
{
    while ((p = strchr(p, '|')) && p[-1] == '\\')
        p++;
    return p;
}

/* docs/shoald.md's option table lists exactly the table's options, with the
 * same file keys. Rows look like "| `--name ARG` | `key` | ...", with
 * "`-v`, `--verbose`" for a short letter and "—" for no key. */
static void test_docs_match(void **st)
{
    char path[1024], line[1024];
    const char *me = __FILE__, *tail = strstr(me, "tests/unit/test_config.c");
    size_t n, rows = 0;
    const cfg_option *o = cfg_options(&n);
    int in_cfg = 0, *seen = calloc(n, sizeof *seen);
    FILE *f;
    (void)st;
    assert_non_null(tail);
    snprintf(path, sizeof path, "%.*sdocs/shoald.md", (int)(tail - me), me);
    f = fopen(path, "r");
    if (!f)
        fail_msg("cannot read %s", path);
    while (fgets(line, sizeof line, f)) {
        char name[64], key[64] = "";
        const char *p, *cell2;
        size_t i, k;
        if (!strncmp(line, "## ", 3))
            in_cfg = !strncmp(line, "## Configuration", 16);
        if (!in_cfg || strncmp(line, "| `-", 4))
            continue;
        p = strstr(line, "`--");
        cell2 = next_bar(line + 1);
        assert_non_null(p);
        assert_non_null(cell2);
        assert_true(p < cell2);
        p += 3;
        k = strspn(p, "abcdefghijklmnopqrstuvwxyz-");
        snprintf(name, sizeof name, "%.*s", (int)k, p);
        p = strchr(cell2, '`');
        if (p && p < next_bar(cell2 + 1)) {
            k = strspn(p + 1, "abcdefghijklmnopqrstuvwxyz-");
            snprintf(key, sizeof key, "%.*s", (int)k, p + 1);
        }
        for (i = 0; i < n && strcmp(o[i].name, name); i++)
            ;
        if (i == n)
            fail_msg("docs/shoald.md lists --%s, shoald has no such option", name);
        if (strcmp(key, o[i].key ? o[i].key : ""))
            fail_msg("docs/shoald.md: --%s has file key '%s', shoald '%s'", name, key,
                     o[i].key ? o[i].key : "");
        seen[i]++;
        rows++;
    }
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (seen[i] != 1)
            fail_msg("docs/shoald.md lists --%s %d times (want once)", o[i].name, seen[i]);
    assert_int_equal(rows, n);
    free(seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_file_then_flags),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_table_is_known),
        cmocka_unit_test_setup_teardown(test_every_option_on_command_line, setup_tls, teardown_tls),
        cmocka_unit_test_setup_teardown(test_every_option_in_file, setup_tls, teardown_tls),
        cmocka_unit_test(test_help_lists_everything),
        cmocka_unit_test(test_unknown_refused),
        cmocka_unit_test(test_docs_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
