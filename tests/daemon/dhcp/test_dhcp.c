/*
 * test_dhcp.c - unit tests of daemon/dhcp.h that need no dnsmasq and no
 * network: the hosts file writer (format, entries left out, stale leases
 * counted from a lease database, atomic replacement), the lease database
 * pruning, and dhcp_start's refusals before anything runs. Files live in a
 * temp dir the test removes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dhcp.h"

static char dir[] = "/tmp/shoal-dhcp-unit-XXXXXX";
static char hosts[256], leasefile[256];

static int setup(void **st)
{
    (void)st;
    if (!mkdtemp(dir))
        return -1;
    snprintf(hosts, sizeof hosts, "%s/hosts", dir);
    snprintf(leasefile, sizeof leasefile, "%s/leases", dir);
    return 0;
}

static int teardown(void **st)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[512];
    (void)st;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
    return 0;
}

/* The whole file in a static buffer. */
static const char *slurp(const char *path)
{
    static char buf[1 << 20];
    FILE *f = fopen(path, "r");
    size_t n = 0;
    buf[0] = 0;
    if (f) {
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
    }
    buf[n] = 0;
    return buf;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static struct dhcp_lease L(const char *mac, uint32_t ip, const char *name) {
    struct dhcp_lease l;
    memset(&l, 0, sizeof l);
    snprintf(l.mac, sizeof l.mac, "%s", mac);
    l.ipv4 = ip;
    snprintf(l.hostname, sizeof l.hostname, "%s", name ? name : "");
    return l;
}

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((b) << 16) | ((c) << 8) | (d))

static struct dhcp_write_result
write_ok(const struct dhcp_lease *l, size_t n, const char *lf, size_t want_skipped)
{
    struct dhcp_write_result r;
    char err[256] = "";
    int rc = dhcp_hosts_write(hosts, l, n, lf, &r, err, sizeof err);
    if (rc != DHCP_OK)
        fail_msg("dhcp_hosts_write: %d %s", rc, err);
    if (r.skipped != want_skipped)
        fail_msg("skipped %zu, want %zu (first: %s)", r.skipped, want_skipped, r.first_skip);
    assert_int_equal(r.written + r.skipped, n);
    return r;
}

/* Lines sorted by address, MACs lower case, a hostname only when dnsmasq
 * would take it as one. */
static void format(void **st)
{
    struct dhcp_lease l[] = {
        L("5A:5C:00:00:00:03", IP(10, 88, 0, 4), "web-1"),
        L("5a:5c:00:00:00:01", IP(10, 88, 0, 2), "alpha"),
        L("5a:5c:00:00:00:02", IP(10, 88, 0, 3), "9lives"),       /* a lease time? */
        L("5a:5c:00:00:00:04", IP(10, 88, 1, 0), "a_b"),          /* not a label */
        L("5a:5c:00:00:00:05", IP(10, 88, 1, 1), "infinite"),     /* a lease time */
        L("5a:5c:00:00:00:06", IP(10, 88, 1, 2), "ends-"),        /* not a label */
        L("5a:5c:00:00:00:07", IP(10, 88, 1, 3), "x.example"),    /* a domain */
        L("5a:5c:00:00:00:08", IP(10, 88, 1, 4), ""),             /* none */
        L("5a:5c:00:00:00:09", IP(10, 88, 2, 1), "Mixed-Case-9"), /* kept as is */
    };
    (void)st;
    write_ok(l, sizeof l / sizeof l[0], NULL, 0);
    assert_string_equal(slurp(hosts), "5a:5c:00:00:00:01,10.88.0.2,alpha\n"
                                      "5a:5c:00:00:00:02,10.88.0.3\n"
                                      "5a:5c:00:00:00:03,10.88.0.4,web-1\n"
                                      "5a:5c:00:00:00:04,10.88.1.0\n"
                                      "5a:5c:00:00:00:05,10.88.1.1\n"
                                      "5a:5c:00:00:00:06,10.88.1.2\n"
                                      "5a:5c:00:00:00:07,10.88.1.3\n"
                                      "5a:5c:00:00:00:08,10.88.1.4\n"
                                      "5a:5c:00:00:00:09,10.88.2.1,Mixed-Case-9\n");
    /* An empty list is an empty file (dnsmasq then answers nobody). */
    write_ok(NULL, 0, NULL, 0);
    assert_string_equal(slurp(hosts), "");
}

/* A malformed MAC, a second lease of one MAC or address, and address 0
 * are left out; the first of the array wins; the first skip is named. */
static void skips(void **st)
{
    struct dhcp_lease l[] = {
        L("5a:5c:00:00:00:01", IP(10, 0, 0, 2), "a"),
        L("5a:5c:00:00:00:0g", IP(10, 0, 0, 3), "bad"), /* not hex */
        L("5a:5c:00:00:00:01", IP(10, 0, 0, 4), "dup"), /* MAC again */
        L("5a:5c:00:00:00:02", IP(10, 0, 0, 2), "dup"), /* address again */
        L("5a:5c:00:00:00:03", 0, "none"),              /* no address */
        L("5a:5c:00:00:0,:04", IP(10, 0, 0, 5), "x"),   /* would inject */
        L("5a-5c-00-00-00-05", IP(10, 0, 0, 6), "x"),   /* wrong separator */
        L("5a:5c:00:00:00:06", IP(10, 0, 0, 7), "b"),
    };
    struct dhcp_write_result r;
    char err[256];
    (void)st;
    r = write_ok(l, sizeof l / sizeof l[0], NULL, 6);
    assert_int_equal(r.written, 2);
    assert_string_equal(r.first_skip, "malformed MAC '5a:5c:00:00:00:0g'");
    assert_string_equal(slurp(hosts), "5a:5c:00:00:00:01,10.0.0.2,a\n"
                                      "5a:5c:00:00:00:06,10.0.0.7,b\n");
    write_ok(l + 2, 2, NULL, 0); /* the duplicates apart: both fine */
    r = write_ok(l + 2, 3, NULL, 1);
    assert_string_equal(r.first_skip, "MAC '5a:5c:00:00:00:03' has no address");
    {
        struct dhcp_lease two[] = { l[0], l[3] }; /* one address, two MACs */
        r = write_ok(two, 2, NULL, 1);
        assert_string_equal(r.first_skip, "address '10.0.0.2' given twice");
        assert_string_equal(slurp(hosts), "5a:5c:00:00:00:01,10.0.0.2,a\n");
        two[1] = l[2]; /* one MAC, two addresses */
        r = write_ok(two, 2, NULL, 1);
        assert_string_equal(r.first_skip, "MAC '5a:5c:00:00:00:01' given twice");
        assert_string_equal(slurp(hosts), "5a:5c:00:00:00:01,10.0.0.2,a\n");
    }
    /* A NULL result is fine. */
    assert_int_equal(dhcp_hosts_write(hosts, l, 2, NULL, NULL, err, sizeof err), DHCP_OK);
}

/* dnsmasq's lease database as it writes it: IPv4 leases, then DHCPv6
 * ones after the duid line; plus lines that are no lease. */
static const char LEASES[] = "0 5a:5c:00:00:00:0a 10.88.0.2 old 01:5a:5c:00:00:00:0a\n"
                             "0 5A:5C:00:00:00:0C 10.88.0.3 same *\n"
                             "0 5a:5c:00:00:00:0b 10.88.0.4 * *\n"
                             "garbage line\n"
                             "0 5a:5c:00:00:00:0f not-an-address * *\n"
                             "0 5a:5c:00:00:00:1f 10.88.9.9 gone *\n"
                             "duid 00:01:00:01:2c:00:00:00:00:00:00:00\n"
                             "0 1234 fd00::5 * 00:02\n";

static const struct dhcp_lease *list4(void)
{
    static struct dhcp_lease l[4];
    l[0] = L("5a:5c:00:00:00:0b", IP(10, 88, 0, 2), "new");  /* a deleted one's address */
    l[1] = L("5a:5c:00:00:00:0c", IP(10, 88, 0, 3), "same"); /* holds its own lease */
    l[2] = L("5a:5c:00:00:00:0d", IP(10, 88, 0, 4), NULL);   /* leased to 0b, of the list */
    l[3] = L("5a:5c:00:00:00:0e", IP(10, 88, 0, 5), NULL);
    return l;
}

/* Stale: an address of the list leased to a MAC in no line (0a holds .2,
 * now 0b's). 0b holding .4 (0d's) is not: 0b has a line, and dnsmasq
 * moves a listed MAC's lease to its configured address. */
static void stale_leases(void **st)
{
    struct dhcp_write_result r;
    (void)st;
    put(leasefile, LEASES);
    r = write_ok(list4(), 4, leasefile, 0);
    assert_int_equal(r.stale, 1);
    assert_string_equal(slurp(hosts), "5a:5c:00:00:00:0b,10.88.0.2,new\n"
                                      "5a:5c:00:00:00:0c,10.88.0.3,same\n"
                                      "5a:5c:00:00:00:0d,10.88.0.4\n"
                                      "5a:5c:00:00:00:0e,10.88.0.5\n");
    r = write_ok(list4() + 1, 3, leasefile, 0); /* now 0b has no line: .4 is stale */
    assert_int_equal(r.stale, 1);
    r = write_ok(list4() + 3, 1, leasefile, 0); /* .5: no lease in the database */
    assert_int_equal(r.stale, 0);
    unlink(leasefile); /* a missing database: no lease */
    r = write_ok(list4(), 4, leasefile, 0);
    assert_int_equal(r.stale, 0);
    r = write_ok(list4(), 4, NULL, 0);
    assert_int_equal(r.stale, 0);
}

/* Pruning drops the IPv4 leases of MACs not in the list and keeps the
 * rest as it is: leases of listed MACs (any case), lines that are no
 * lease, DHCPv6 lines. Nothing to drop: the file is not rewritten. */
static void prune(void **st)
{
    char err[256] = "";
    size_t dropped = 99;
    struct stat a, b;
    (void)st;
    put(leasefile, LEASES);
    assert_int_equal(dhcp_leases_prune(leasefile, list4(), 4, &dropped, err, sizeof err), DHCP_OK);
    assert_int_equal(dropped, 2); /* 0a and 1f */
    assert_string_equal(slurp(leasefile), "0 5A:5C:00:00:00:0C 10.88.0.3 same *\n"
                                          "0 5a:5c:00:00:00:0b 10.88.0.4 * *\n"
                                          "garbage line\n"
                                          "0 5a:5c:00:00:00:0f not-an-address * *\n"
                                          "duid 00:01:00:01:2c:00:00:00:00:00:00:00\n"
                                          "0 1234 fd00::5 * 00:02\n");
    assert_int_equal(stat(leasefile, &a), 0);
    assert_int_equal(dhcp_leases_prune(leasefile, list4(), 4, &dropped, err, sizeof err), DHCP_OK);
    assert_int_equal(dropped, 0);
    assert_int_equal(stat(leasefile, &b), 0);
    assert_true(a.st_ino == b.st_ino);
    /* An empty list drops every IPv4 lease. */
    assert_int_equal(dhcp_leases_prune(leasefile, NULL, 0, &dropped, err, sizeof err), DHCP_OK);
    assert_int_equal(dropped, 2);
    /* No database yet: nothing to do. */
    unlink(leasefile);
    assert_int_equal(dhcp_leases_prune(leasefile, list4(), 4, NULL, err, sizeof err), DHCP_OK);
    assert_int_equal(access(leasefile, F_OK), -1);
}

/* Replaced by rename: a reader that opened the old file keeps reading it
 * whole, the path shows the new one whole, no PATH.tmp stays, mode 0644
 * whatever the umask. */
static void atomic_replace(void **st)
{
    struct dhcp_lease a = L("5a:5c:00:00:00:01", IP(10, 0, 0, 2), "old");
    struct dhcp_lease b = L("5a:5c:00:00:00:02", IP(10, 0, 0, 3), "new");
    char tmp[300], buf[256];
    struct stat sb, sb2;
    mode_t um;
    FILE *old;
    size_t n;
    (void)st;

    write_ok(&a, 1, NULL, 0);
    assert_int_equal(stat(hosts, &sb), 0);
    old = fopen(hosts, "r");
    assert_non_null(old);
    um = umask(077);
    write_ok(&b, 1, NULL, 0);
    umask(um);
    n = fread(buf, 1, sizeof buf - 1, old);
    buf[n] = 0;
    fclose(old);
    assert_string_equal(buf, "5a:5c:00:00:00:01,10.0.0.2,old\n");
    assert_string_equal(slurp(hosts), "5a:5c:00:00:00:02,10.0.0.3,new\n");
    assert_int_equal(stat(hosts, &sb2), 0);
    assert_true(sb.st_ino != sb2.st_ino);
    assert_int_equal(sb2.st_mode & 0777, 0644);
    snprintf(tmp, sizeof tmp, "%s.tmp", hosts);
    assert_int_equal(access(tmp, F_OK), -1);
}

/* Readers racing a writer that switches between two lists of 2,000 lines
 * only ever see one list or the other, whole. */
static atomic_int stop_reader;
static atomic_int torn;
static size_t len_a, len_b;

static void *reader(void *arg)
{
    static char buf[1 << 18];
    (void)arg;
    while (!atomic_load(&stop_reader)) {
        FILE *f = fopen(hosts, "r");
        size_t n;
        if (!f)
            continue; /* never: rename replaces, nothing unlinks */
        n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        if (n != len_a && n != len_b)
            atomic_fetch_add(&torn, 1);
    }
    return NULL;
}

static void no_torn_reads(void **st)
{
    enum { N = 2000 };
    struct dhcp_lease *a = calloc(N, sizeof *a), *b = calloc(N, sizeof *b);
    pthread_t th;
    (void)st;
    assert_non_null(a);
    assert_non_null(b);
    for (int i = 0; i < N; i++) {
        char mac[DHCP_MAC_STRLEN];
        snprintf(mac, sizeof mac, "5a:5c:00:00:%02x:%02x", i >> 8, i & 255);
        a[i] = L(mac, IP(10, 1, 0, 0) + (uint32_t)i + 2, "a");
        b[i] = L(mac, IP(10, 1, 0, 0) + (uint32_t)i + 2, "bb-longer");
    }
    write_ok(a, N, NULL, 0);
    len_a = strlen(slurp(hosts));
    write_ok(b, N, NULL, 0);
    len_b = strlen(slurp(hosts));
    assert_true(len_a != len_b);
    atomic_store(&stop_reader, 0);
    atomic_store(&torn, 0);
    assert_int_equal(pthread_create(&th, NULL, reader, NULL), 0);
    for (int i = 0; i < 200; i++)
        write_ok(i % 2 ? a : b, N, NULL, 0);
    atomic_store(&stop_reader, 1);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&torn), 0);
    free(a);
    free(b);
}

/* A directory that does not exist: DHCP_E_IO naming the file, nothing
 * left behind. */
static void write_error(void **st)
{
    struct dhcp_lease a = L("5a:5c:00:00:00:01", IP(10, 0, 0, 2), NULL);
    char path[300], err[256] = "";
    (void)st;
    snprintf(path, sizeof path, "%s/missing/hosts", dir);
    assert_int_equal(dhcp_hosts_write(path, &a, 1, NULL, NULL, err, sizeof err), DHCP_E_IO);
    assert_non_null(strstr(err, "missing/hosts.tmp"));
}

/* dhcp_start refuses a bad configuration before running anything. */
static void start_refusals(void **st)
{
    struct dhcp_config c = { .dir = dir,
                             .interface = "sd0",
                             .subnet = IP(10, 88, 0, 0),
                             .prefix = 16,
                             .gateway = IP(10, 88, 0, 1) };
    struct dhcp *d = (struct dhcp *)1;
    char err[256];
    struct dhcp_config b;
    (void)st;

    b = c;
    b.dir = "relative/dir";
    assert_int_equal(dhcp_start(&b, NULL, 0, &d, err, sizeof err), DHCP_E_INVAL);
    assert_null(d);
    assert_non_null(strstr(err, "'relative/dir'"));
    b = c;
    b.dir = "/tmp/a,b";
    assert_int_equal(dhcp_start(&b, NULL, 0, &d, err, sizeof err), DHCP_E_INVAL);
    b = c;
    b.interface = "much-too-long-name";
    assert_int_equal(dhcp_start(&b, NULL, 0, &d, err, sizeof err), DHCP_E_INVAL);
    assert_non_null(strstr(err, "'much-too-long-name'"));
    b = c;
    b.interface = "a b";
    assert_int_equal(dhcp_start(&b, NULL, 0, &d, err, sizeof err), DHCP_E_INVAL);
    b = c;
    b.prefix = 31;
    assert_int_equal(dhcp_start(&b, NULL, 0, &d, err, sizeof err), DHCP_E_INVAL);
    assert_non_null(strstr(err, "'31'"));
    b = c;
    b.gateway = IP(10, 89, 0, 1);
    assert_int_equal(dhcp_start(&b, NULL, 0, &d, err, sizeof err), DHCP_E_INVAL);
    assert_non_null(strstr(err, "'10.89.0.1'"));
    b = c;
    b.gateway = IP(10, 88, 255, 255); /* broadcast */
    assert_int_equal(dhcp_start(&b, NULL, 0, &d, err, sizeof err), DHCP_E_INVAL);
    b = c;
    b.dnsmasq = "/nonexistent/dnsmasq";
    assert_int_equal(dhcp_start(&b, NULL, 0, &d, err, sizeof err), DHCP_E_NOTFOUND);
    assert_non_null(strstr(err, "'/nonexistent/dnsmasq'"));
    assert_null(d);
    dhcp_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(format),         cmocka_unit_test(skips),
        cmocka_unit_test(stale_leases),   cmocka_unit_test(prune),
        cmocka_unit_test(atomic_replace), cmocka_unit_test(no_torn_reads),
        cmocka_unit_test(write_error),    cmocka_unit_test(start_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
