/*
 * test_dhcp_netns.c - daemon/dhcp.h with the real dnsmasq, inside network
 * namespaces the test creates.
 *
 * Namespace `shoal-dhcp-<pid>` holds a bridge set made by netbr.h with
 * small limits (4 ports per bridge, so the main bridge sd0 takes 2 guests
 * and the next ones land on the overflow bridge sd0.1, joined to sd0 by a
 * veth link). Each "guest" is a veth pair: one end in the bridge netbr
 * picked (MAC fe:5c:..., like libvirt's tap), the other, with the guest's
 * MAC 5a:5c:..., in a namespace of its own (`shoal-dhcp-<pid>-g<i>`),
 * where busybox's udhcpc asks for an address; its script only records
 * what it was offered. Every packet stays in those namespaces; the parent
 * deletes them and kills any dnsmasq the child left, whatever happened.
 *
 * Checks: each guest gets exactly its static address (router, netmask,
 * hostname, infinite lease, no DNS server), also from the overflow bridge;
 * an unknown MAC gets nothing; a new list is served as soon as dhcp_set
 * returns, including an address freed by a removed MAC and still leased
 * to it (dnsmasq restarted over a pruned lease database), while the
 * removed MAC gets nothing; a killed dnsmasq is started again and serves; a
 * dnsmasq left by a "crashed" owner is replaced at the next start; a
 * directory dnsmasq cannot read as nobody is refused with its message;
 * dhcp_stop leaves no process. Prints dhcp_start and dhcp_set timings.
 *
 * Needs root, dnsmasq and busybox (udhcpc); otherwise exits 77 (CTest
 * "Skipped"). scripts/setup-debian.sh installs dnsmasq-base and
 * busybox-static. About 20 s.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dhcp.h"
#include "netbr.h"
#include "netns.h"
#include "shoal_skip.h"

#define NGUESTS        5
#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((b) << 16) | ((c) << 8) | (d))
#define SUBNET         IP(10, 66, 0, 0)
#define GW             IP(10, 66, 0, 1)

static char ns[64];                            /* the bridge's namespace */
static char tmpd[] = "/tmp/shoal-dhcp-XXXXXX"; /* script, outputs, dhcp dirs */
static char ddir[128];                         /* tmpd/dhcp */

static double ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static const char *slurp(const char *path)
{
    static char buf[65536];
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

static void guest_mac(int i, char mac[DHCP_MAC_STRLEN])
{
    snprintf(mac, DHCP_MAC_STRLEN, "5a:5c:00:00:00:%02x", i);
}

static struct dhcp_lease lease(int i, uint32_t ip, const char *name)
{
    struct dhcp_lease l;
    memset(&l, 0, sizeof l);
    guest_mac(i, l.mac);
    l.ipv4 = ip;
    snprintf(l.hostname, sizeof l.hostname, "%s", name ? name : "");
    return l;
}

/* Guest i: picked into a bridge of s (want: the expected one), its veth
 * plugged there, the peer in its own namespace, up. */
static void plug_guest(struct netbr_set *s, int i, const char *want)
{
    char mac[DHCP_MAC_STRLEN], err[256];
    const char *br = NULL;
    guest_mac(i, mac);
    NETNS_CHECK(netbr_set_pick(s, mac, &br, err, sizeof err) == NETBR_OK);
    if (strcmp(br, want))
        fprintf(stderr, "child: guest %d picked '%s', want '%s'\n", i, br, want);
    NETNS_CHECK(!strcmp(br, want));
    NETNS_CHECK(
        netns_sh("ip link add g%d address fe:5c:00:00:00:%02x type veth peer name h%d address %s",
                 i, i, i, mac) == 0);
    NETNS_CHECK(netns_sh("ip link set g%d master %s up", i, br) == 0);
    NETNS_CHECK(netns_sh("ip link set h%d netns %s-g%d", i, ns, i) == 0);
    NETNS_CHECK(netns_sh("ip -n %s-g%d link set h%d up", ns, i, i) == 0);
}

/* What udhcpc in guest i's namespace was given ("" when nothing): the
 * script's "bound ..." line. tries DISCOVERs one second apart. */
static const char *ask(int i, int tries)
{
    static char line[512];
    char out[256];
    const char *p, *e;
    snprintf(out, sizeof out, "%s/out%d", tmpd, i);
    unlink(out);
    netns_sh("OUT=%s ip netns exec %s-g%d busybox udhcpc -i h%d -f -q -n -t %d -T 1 -A 1 -s "
             "%s/udhcpc.sh",
             out, ns, i, i, tries, tmpd);
    line[0] = 0;
    p = strstr(slurp(out), "bound ");
    if (p) {
        e = strchr(p, '\n');
        snprintf(line, sizeof line, "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
    }
    return line;
}

/* Guest i is given exactly addr. */
static void expect_addr(int i, const char *addr)
{
    char want[64];
    const char *got = ask(i, 4);
    snprintf(want, sizeof want, "ip=%s ", addr);
    if (!strstr(got, want))
        fprintf(stderr, "child: guest %d: got '%s', want %s\n", i, got, addr);
    NETNS_CHECK(strstr(got, want) != NULL);
}

static void expect_nothing(int i)
{
    const char *got = ask(i, 2);
    if (got[0])
        fprintf(stderr, "child: guest %d should get nothing, got '%s'\n", i, got);
    NETNS_CHECK(got[0] == 0);
}

static int wait_new_pid(struct dhcp *d, pid_t old, int ms, struct dhcp_info *out)
{
    for (int t = 0; t < ms; t += 20) {
        dhcp_info_get(d, out);
        if (out->pid > 0 && out->pid != old)
            return 1;
        usleep(20000);
    }
    return 0;
}

static int alive(pid_t pid)
{
    char p[64], buf[256];
    FILE *f;
    const char *c;
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
    f = fopen(p, "r");
    if (!f)
        return 0;
    buf[0] = 0;
    if (!fgets(buf, sizeof buf, f))
        buf[0] = 0;
    fclose(f);
    c = strrchr(buf, ')');
    return c && c[2] != 'Z';
}

static void body(void)
{
    struct netbr_set *s = NULL;
    struct dhcp *d = NULL;
    struct dhcp_config cfg = {
        .dir = ddir, .interface = "sd0", .subnet = SUBNET, .prefix = 16, .gateway = GW
    };
    struct dhcp_lease l[4];
    struct dhcp_info info;
    struct timespec t0;
    char err[512];
    pid_t old;
    double ms;
    int rc;

    NETNS_CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0); /* orphaned dnsmasqs come to us */
    NETNS_CHECK(netbr_set_open("sd0", "10.66.0.1", 16, 4, 2, &s, err, sizeof err) == NETBR_OK);
    plug_guest(s, 1, "sd0");
    plug_guest(s, 2, "sd0");
    plug_guest(s, 3, "sd0.1"); /* beyond the main bridge */
    plug_guest(s, 4, "sd0.1");
    plug_guest(s, 5, "sd0.1");

    /* Start: each guest its address, from either bridge. */
    l[0] = lease(1, IP(10, 66, 0, 10), "alpha");
    l[1] = lease(2, IP(10, 66, 0, 11), "beta");
    l[2] = lease(3, IP(10, 66, 0, 12), "gamma");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = dhcp_start(&cfg, l, 3, &d, err, sizeof err);
    ms = ms_since(&t0);
    if (rc != DHCP_OK)
        fprintf(stderr, "child: dhcp_start: %d %s\n", rc, err);
    NETNS_CHECK(rc == DHCP_OK);
    fprintf(stderr, "dhcp_start to serving: %.1f ms\n", ms);
    dhcp_info_get(d, &info);
    NETNS_CHECK(info.pid > 0 && info.starts == 1 && info.leases == 3 && info.reloads == 1);
    {
        const char *got = ask(1, 4);
        if (!strstr(got, "ip=10.66.0.10 ") || !strstr(got, "router=10.66.0.1 ") ||
            !strstr(got, "mask=16 ") || !strstr(got, "hostname=alpha ") || !strstr(got, "dns= ") ||
            !strstr(got, "lease=4294967295"))
            fprintf(stderr, "child: guest 1 got '%s'\n", got);
        NETNS_CHECK(strstr(got, "ip=10.66.0.10 ") && strstr(got, "router=10.66.0.1 ") &&
                    strstr(got, "mask=16 ") && strstr(got, "hostname=alpha ") &&
                    strstr(got, "dns= ") && strstr(got, "lease=4294967295"));
    }
    expect_addr(2, "10.66.0.11");
    expect_addr(3, "10.66.0.12"); /* on sd0.1: one dnsmasq serves the set */
    expect_nothing(4);            /* unknown MAC */

    /* A new list, signalled: guest 5 added. */
    l[3] = lease(5, IP(10, 66, 0, 13), NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = dhcp_set(d, l, 4, err, sizeof err);
    ms = ms_since(&t0);
    if (rc != DHCP_OK)
        fprintf(stderr, "child: dhcp_set: %d %s\n", rc, err);
    NETNS_CHECK(rc == DHCP_OK);
    fprintf(stderr, "dhcp_set of 4 leases (SIGHUP): %.1f ms\n", ms);
    dhcp_info_get(d, &info);
    NETNS_CHECK(info.starts == 1 && info.restarts == 0 && info.reloads == 2 && info.leases == 4);
    expect_addr(5, "10.66.0.13");

    /* Guest 1 gone, guest 4 takes its address, which dnsmasq's database
     * shows leased to guest 1: dnsmasq restarts without that lease. */
    l[0] = lease(4, IP(10, 66, 0, 10), "delta");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = dhcp_set(d, l, 4, err, sizeof err);
    ms = ms_since(&t0);
    if (rc != DHCP_OK)
        fprintf(stderr, "child: dhcp_set: %d %s\n", rc, err);
    NETNS_CHECK(rc == DHCP_OK);
    fprintf(stderr, "dhcp_set of 4 leases (restart, stale lease): %.1f ms\n", ms);
    dhcp_info_get(d, &info);
    NETNS_CHECK(info.starts == 2 && info.restarts == 1);
    {
        char path[300];
        snprintf(path, sizeof path, "%s/leases", ddir);
        NETNS_CHECK(!strstr(slurp(path), "5a:5c:00:00:00:01"));
        snprintf(path, sizeof path, "%s/hosts", ddir);
        NETNS_CHECK(!strcmp(slurp(path), "5a:5c:00:00:00:04,10.66.0.10,delta\n"
                                         "5a:5c:00:00:00:02,10.66.0.11,beta\n"
                                         "5a:5c:00:00:00:03,10.66.0.12,gamma\n"
                                         "5a:5c:00:00:00:05,10.66.0.13\n"));
    }
    expect_addr(4, "10.66.0.10"); /* the freed address, at once */
    expect_nothing(1);            /* removed: nothing, also for its old address */
    expect_addr(4, "10.66.0.10"); /* and guest 4 keeps it */
    expect_addr(2, "10.66.0.11");

    /* Many leases: one dhcp_set, confirmed by dnsmasq. */
    {
        enum { N = 1000 };
        struct dhcp_lease *big = calloc(N + 4, sizeof *big);
        NETNS_CHECK(big != NULL);
        memcpy(big, l, sizeof l);
        for (int i = 0; i < N; i++) {
            snprintf(big[4 + i].mac, DHCP_MAC_STRLEN, "5a:5c:00:01:%02x:%02x", i >> 8, i & 255);
            big[4 + i].ipv4 = IP(10, 66, 4, 0) + (uint32_t)i;
        }
        clock_gettime(CLOCK_MONOTONIC, &t0);
        NETNS_CHECK(dhcp_set(d, big, N + 4, err, sizeof err) == DHCP_OK);
        fprintf(stderr, "dhcp_set of %d leases: %.1f ms\n", N + 4, ms_since(&t0));
        dhcp_info_get(d, &info);
        NETNS_CHECK(info.leases == N + 4);
        free(big);
        expect_addr(5, "10.66.0.13");
    }

    /* dnsmasq killed: started again, serves, takes new lists. */
    dhcp_info_get(d, &info);
    old = info.pid;
    NETNS_CHECK(kill(old, SIGKILL) == 0);
    NETNS_CHECK(wait_new_pid(d, old, 5000, &info));
    NETNS_CHECK(info.starts == 3 && info.restarts == 1);
    fprintf(stderr, "dnsmasq %d killed, %d running\n", (int)old, (int)info.pid);
    expect_addr(2, "10.66.0.11");
    l[1] = lease(2, IP(10, 66, 0, 21), "beta"); /* a changed address */
    NETNS_CHECK(dhcp_set(d, l, 4, err, sizeof err) == DHCP_OK);
    expect_addr(2, "10.66.0.21");

    /* Stop: nothing left running, no pid file. */
    dhcp_info_get(d, &info);
    old = info.pid;
    dhcp_stop(d);
    d = NULL;
    NETNS_CHECK(!alive(old));
    {
        char path[300];
        snprintf(path, sizeof path, "%s/dnsmasq.pid", ddir);
        NETNS_CHECK(access(path, F_OK) != 0);
    }
    expect_nothing(2);

    /* A dnsmasq left running by an owner that died (a crashed shoald) is
     * replaced by the next start. */
    fflush(NULL);
    pid_t owner = fork();
    NETNS_CHECK(owner >= 0);
    if (owner == 0) {
        struct dhcp *o = NULL;
        if (dhcp_start(&cfg, l, 4, &o, err, sizeof err) != DHCP_OK)
            _exit(1);
        _exit(0); /* no dhcp_stop: dnsmasq stays */
    }
    {
        int st;
        char path[300];
        long stale = 0;
        FILE *f;
        NETNS_CHECK(waitpid(owner, &st, 0) == owner && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        snprintf(path, sizeof path, "%s/dnsmasq.pid", ddir);
        f = fopen(path, "r");
        NETNS_CHECK(f && fscanf(f, "%ld", &stale) == 1);
        fclose(f);
        NETNS_CHECK(alive((pid_t)stale));
        expect_addr(2, "10.66.0.21"); /* the orphan still serves */
        rc = dhcp_start(&cfg, l, 4, &d, err, sizeof err);
        if (rc != DHCP_OK)
            fprintf(stderr, "child: dhcp_start after an orphan: %d %s\n", rc, err);
        NETNS_CHECK(rc == DHCP_OK);
        while (waitpid(-1, &st, WNOHANG) > 0) /* the orphan, now our zombie */
            ;
        NETNS_CHECK(!alive((pid_t)stale));
        dhcp_info_get(d, &info);
        NETNS_CHECK(info.pid != (pid_t)stale);
        expect_addr(2, "10.66.0.21");
        dhcp_stop(d);
        d = NULL;
    }

    /* A directory nobody can reach: refused with dnsmasq's words. */
    {
        char priv[160], sub[200];
        struct dhcp_config pc = cfg;
        snprintf(priv, sizeof priv, "%s/private", tmpd);
        NETNS_CHECK(mkdir(priv, 0700) == 0);
        snprintf(sub, sizeof sub, "%s/dhcp", priv);
        pc.dir = sub;
        rc = dhcp_start(&pc, l, 4, &d, err, sizeof err);
        if (rc != DHCP_E_IO || !strstr(err, "cannot read"))
            fprintf(stderr, "child: private dir: %d %s\n", rc, err);
        NETNS_CHECK(rc == DHCP_E_IO && strstr(err, "cannot read") && strstr(err, sub));
        NETNS_CHECK(d == NULL);
    }
    netbr_set_close(s);
    exit(0); /* not _exit: LeakSanitizer checks the child */
}

/* ---- harness ---- */

/* Kill every dnsmasq whose command line names a file under tmpd (a child
 * that failed half way leaves them running). */
static void kill_leftovers(void)
{
    DIR *pd = opendir("/proc");
    struct dirent *de;
    while (pd && (de = readdir(pd))) {
        char p[300], buf[8192];
        int fd;
        ssize_t n;
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        snprintf(p, sizeof p, "/proc/%s/cmdline", de->d_name);
        fd = open(p, O_RDONLY);
        if (fd < 0)
            continue;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = 0;
        for (ssize_t i = 0; i < n; i++)
            if (!buf[i])
                buf[i] = ' ';
        if (strstr(buf, "dnsmasq") && strstr(buf, tmpd)) {
            fprintf(stderr, "killing leftover dnsmasq %s\n", de->d_name);
            kill(atoi(de->d_name), SIGKILL);
        }
    }
    if (pd)
        closedir(pd);
}

static int have(const char *cmd)
{
    return netns_sh("%s", cmd) == 0;
}

/* In the parent, whatever the child did: no dnsmasq left, no files. */
static void after(void)
{
    kill_leftovers();
    netns_sh("rm -rf %s", tmpd);
}

static void dhcp_in_netns(void **state)
{
    char path[128], why[256];
    FILE *f;
    (void)state;

    if (geteuid() != 0)
        SHOAL_SKIP("not root (euid %d): cannot create network namespaces", (int)geteuid());
    if (!have("PATH=$PATH:/usr/sbin:/sbin command -v dnsmasq"))
        SHOAL_SKIP("no dnsmasq (scripts/setup-debian.sh installs dnsmasq-base)");
    if (!have("busybox udhcpc --help"))
        SHOAL_SKIP("no busybox udhcpc (scripts/setup-debian.sh installs busybox-static)");
    assert_non_null(mkdtemp(tmpd));
    chmod(tmpd, 0711); /* dnsmasq reads tmpd/dhcp/hosts as nobody */
    snprintf(ddir, sizeof ddir, "%s/dhcp", tmpd);
    snprintf(path, sizeof path, "%s/udhcpc.sh", tmpd);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\n"
          "# udhcpc hook: record what was offered, configure nothing\n"
          "echo \"$1 ip=$ip mask=$mask router=$router dns=$dns hostname=$hostname "
          "lease=$lease\" >>\"$OUT\"\n",
          f);
    fclose(f);
    chmod(path, 0755);

    snprintf(ns, sizeof ns, "shoal-dhcp-%d", (int)getpid());
    if (netns_run(ns, NGUESTS, body, after, why, sizeof why) != 0) {
        after();
        SHOAL_SKIP("%s", why);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dhcp_in_netns),
    };
    return shoal_test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
