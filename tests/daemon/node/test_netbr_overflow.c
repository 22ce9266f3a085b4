/*
 * test_netbr_overflow.c - bridge sets beyond one bridge's ports (netbr.h
 * netbr_set_*), inside network namespaces the test creates.
 *
 * Each case that touches links creates its own namespace
 * (`ip netns add shoal-ovf-<pid>-<case>`) and, for pings, two more that act
 * as guests (`...-g1`, `...-g2`); the case's body runs in a forked child
 * that setns(2)'d into the first one, and the parent deletes all three
 * whatever the child did. Every packet stays inside them. A "guest" is a
 * veth pair: one end plugged into the bridge netbr_set_pick chose (what
 * libvirt does with a tap, with the tap's MAC: fe:5c:... for guest MAC
 * 5a:5c:...), the other end moved into a guest namespace for pings.
 *
 * Needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN); otherwise those cases are
 * skipped and the program exits 77 (CTest "Skipped"), never "Passed".
 * The name cases need nothing and always run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "netbr.h"
#include "netns.h"
#include "shoal_skip.h"

static char ns[64]; /* the case's namespace; guests are ns-g1, ns-g2 */

/* The bridge `dev` is a port of ("" if none). */
static const char *master_of(const char *dev)
{
    static char m[64];
    char out[4096];
    m[0] = '\0';
    if (netns_sh_out(out, sizeof out, "ip -o link show dev %s 2>/dev/null", dev) != 0)
        return m;
    const char *p = strstr(out, " master ");
    if (p)
        sscanf(p + 8, "%63s", m);
    return m;
}

/* 1 if `ip -d -o link show dev` contains word. */
static int link_has(const char *dev, const char *word)
{
    char out[8192];
    if (netns_sh_out(out, sizeof out, "ip -d -o link show dev %s 2>/dev/null", dev) != 0)
        return 0;
    return strstr(out, word) != NULL;
}

/* The number after `key` in `ip -d -o link show dev` ("" if none). */
static const char *setting(const char *dev, const char *key, char val[32])
{
    char out[8192], k[64];
    val[0] = '\0';
    snprintf(k, sizeof k, " %s ", key);
    if (netns_sh_out(out, sizeof out, "ip -d -o link show dev %s 2>/dev/null", dev) == 0) {
        const char *p = strstr(out, k);
        if (p)
            sscanf(p + strlen(k), "%31s", val);
    }
    return val;
}

static void link_mac_of(const char *dev, char mac[32])
{
    char out[4096];
    mac[0] = '\0';
    netns_sh_out(out, sizeof out, "ip -o link show dev %s", dev);
    const char *p = strstr(out, "link/ether ");
    if (p)
        sscanf(p + 11, "%31s", mac);
}

static int ports_of(const char *br)
{
    char out[64];
    netns_sh_out(out, sizeof out, "ip -o link show master %s | wc -l", br);
    return atoi(out);
}

/* A guest: veth g<i> (MAC fe:5c:00:00:<i>) in `bridge`, peer h<i>. */
static void guest_mac(int i, char mac[NETBR_MAC_STRLEN])
{
    snprintf(mac, NETBR_MAC_STRLEN, "5a:5c:00:00:%02x:%02x", (i >> 8) & 0xff, i & 0xff);
}

static void plug(int i, const char *bridge)
{
    NETNS_CHECK(netns_sh("ip link add g%d address fe:5c:00:00:%02x:%02x type veth peer name h%d", i,
                         (i >> 8) & 0xff, i & 0xff, i) == 0);
    NETNS_CHECK(netns_sh("ip link set g%d master %s up", i, bridge) == 0);
}

/* Pick for guest i, expect `want` (NULL: expect NETBR_E_FULL). */
static const char *pick(struct netbr_set *s, int i, const char *want)
{
    char mac[NETBR_MAC_STRLEN], err[512];
    const char *br = NULL;
    guest_mac(i, mac);
    int rc = netbr_set_pick(s, mac, &br, err, sizeof err);
    if (!want) {
        if (rc != NETBR_E_FULL)
            fprintf(stderr, "child: pick %d: rc %d (%s), want NETBR_E_FULL\n", i, rc,
                    rc ? err : br);
        NETNS_CHECK(rc == NETBR_E_FULL);
        return NULL;
    }
    if (rc != NETBR_OK || strcmp(br, want))
        fprintf(stderr, "child: pick %d: rc %d, got '%s' (%s), want '%s'\n", i, rc, br ? br : "",
                rc ? err : "", want);
    NETNS_CHECK(rc == NETBR_OK && !strcmp(br, want));
    return br;
}

/* Move h<i> into guest namespace ns-g<g> with address addr/16, up. */
static void to_guest_ns(int i, int g, const char *addr)
{
    NETNS_CHECK(netns_sh("ip link set h%d netns %s-g%d", i, ns, g) == 0);
    NETNS_CHECK(netns_sh("ip -n %s-g%d addr add %s/16 dev h%d", ns, g, addr, i) == 0);
    NETNS_CHECK(netns_sh("ip -n %s-g%d link set h%d up", ns, g, i) == 0);
}

/* Ping from guest namespace g (0: the bridge's namespace). */
static int ping_from(int g, const char *addr)
{
    if (g == 0)
        return netns_sh("ping -c 2 -i 0.2 -W 3 %s", addr);
    return netns_sh("ip netns exec %s-g%d ping -c 2 -i 0.2 -W 3 %s", ns, g, addr);
}

/* ---- cases run inside a namespace ---- */

/* Limit 4 per bridge, 2 overflow bridges: the main bridge takes 2 guests
 * (2 ports kept for links), each overflow bridge 3. */
static void small_limit(void)
{
    struct netbr_set *s = NULL;
    char err[512], mac0[32], mac1[32], out[256], v0[32], v1[32];
    int idx1;

    NETNS_CHECK(netbr_set_open("sb0", "10.77.0.1", 16, 4, 2, &s, err, sizeof err) == NETBR_OK);
    NETNS_CHECK(!strcmp(netbr_set_name(s), "sb0"));
    link_mac_of("sb0", mac0);
    NETNS_CHECK(mac0[0]);
    /* settings the overflow bridges must copy */
    NETNS_CHECK(netns_sh("ip link set dev sb0 type bridge ageing_time 12345 forward_delay 800") ==
                0);
    NETNS_CHECK(netns_sh("ip link set dev lo up") == 0);

    /* picks count before their taps appear: two on the main bridge, the
     * third overflows though nothing is plugged yet */
    pick(s, 1, "sb0");
    pick(s, 2, "sb0");
    pick(s, 3, "sb0.1");
    NETNS_CHECK(netbr_exists("sb0.1"));
    NETNS_CHECK(!netbr_exists("sb0.2"));
    plug(1, "sb0");
    plug(2, "sb0");
    plug(3, "sb0.1");
    NETNS_CHECK(!strcmp(master_of("sb0.1-m"), "sb0"));
    NETNS_CHECK(!strcmp(master_of("sb0.1-o"), "sb0.1"));
    NETNS_CHECK(link_has("sb0.1-m", "veth"));
    /* the kernel rounds timers to its ticks: compare with what it kept */
    NETNS_CHECK(!strcmp(setting("sb0", "ageing_time", v0), "12344") ||
                !strcmp(setting("sb0", "ageing_time", v0), "12345"));
    NETNS_CHECK(!strcmp(setting("sb0.1", "ageing_time", v1), v0));
    NETNS_CHECK(!strcmp(setting("sb0.1", "forward_delay", v1), "800"));
    NETNS_CHECK(!strcmp(setting("sb0.1", "stp_state", v1), "0"));
    NETNS_CHECK(link_has("sb0.1", "state UP") || link_has("sb0.1", ",UP"));
    /* no address at all (IPv6 link-local neither) on the overflow side */
    NETNS_CHECK(netns_sh_out(out, sizeof out, "ip -o addr show dev sb0.1") == 0 && out[0] == '\0');
    NETNS_CHECK(netns_sh_out(out, sizeof out, "ip -o addr show dev sb0.1-m") == 0 &&
                out[0] == '\0');
    NETNS_CHECK(netns_sh_out(out, sizeof out, "ip -o addr show dev sb0.1-o") == 0 &&
                out[0] == '\0');

    /* a pick for a guest whose tap is in is not counted twice */
    pick(s, 4, "sb0.1");
    plug(4, "sb0.1");
    pick(s, 5, "sb0.1");
    plug(5, "sb0.1");
    pick(s, 6, "sb0.2");
    plug(6, "sb0.2");
    pick(s, 7, "sb0.2");
    plug(7, "sb0.2");
    pick(s, 8, "sb0.2");
    plug(8, "sb0.2");
    NETNS_CHECK(ports_of("sb0") == 4);   /* g1, g2, two links */
    NETNS_CHECK(ports_of("sb0.1") == 4); /* link, g3..g5 */
    NETNS_CHECK(ports_of("sb0.2") == 4);
    {
        char m[NETBR_MAC_STRLEN];
        const char *br;
        guest_mac(9, m);
        NETNS_CHECK(netbr_set_pick(s, m, &br, err, sizeof err) == NETBR_E_FULL);
        fprintf(stderr, "full: %s\n", err);
        NETNS_CHECK(strstr(err, "'sb0'") && strstr(err, "4 ports") && strstr(err, "2 overflow"));
    }
    /* the gateway's MAC did not follow the links' */
    link_mac_of("sb0", mac1);
    NETNS_CHECK(!strcmp(mac0, mac1));

    /* frames cross: overflow 1 -> gateway, overflow 2 -> overflow 1,
     * host -> overflow 2 */
    to_guest_ns(3, 1, "10.77.0.3");
    to_guest_ns(6, 2, "10.77.0.6");
    NETNS_CHECK(ping_from(1, "10.77.0.1") == 0);
    NETNS_CHECK(ping_from(2, "10.77.0.3") == 0);
    NETNS_CHECK(ping_from(0, "10.77.0.6") == 0);

    /* a restart: bridges exist; a broken link and a changed setting are
     * repaired, nothing is re-created */
    netbr_set_close(s);
    s = NULL;
    idx1 = (int)if_nametoindex("sb0.1");
    NETNS_CHECK(netns_sh("ip link del sb0.2-m") == 0);
    NETNS_CHECK(!link_has("sb0.2-o", "veth"));
    NETNS_CHECK(netns_sh("ip link set dev sb0.1 type bridge ageing_time 999") == 0);
    NETNS_CHECK(ping_from(2, "10.77.0.1") != 0);
    NETNS_CHECK(netbr_set_open("sb0", "10.77.0.1", 16, 4, 2, &s, err, sizeof err) == NETBR_OK);
    NETNS_CHECK((int)if_nametoindex("sb0.1") == idx1);
    NETNS_CHECK(!strcmp(master_of("sb0.2-m"), "sb0"));
    NETNS_CHECK(!strcmp(master_of("sb0.2-o"), "sb0.2"));
    NETNS_CHECK(!strcmp(setting("sb0.1", "ageing_time", v1), v0));
    link_mac_of("sb0", mac1);
    NETNS_CHECK(!strcmp(mac0, mac1));
    NETNS_CHECK(ping_from(2, "10.77.0.1") == 0);
    /* counts come from the kernel after a restart */
    pick(s, 9, NULL);
    NETNS_CHECK(netns_sh("ip link del g4") == 0);
    pick(s, 9, "sb0.1");
    /* twice for one MAC (a start retried) holds one port, not two */
    pick(s, 9, "sb0.1");
    pick(s, 10, NULL);
    netbr_set_close(s);

    /* delete takes the overflow bridges and links too, not the guests */
    NETNS_CHECK(netbr_delete("sb0", err, sizeof err) == NETBR_OK);
    NETNS_CHECK(!netbr_exists("sb0") && !netbr_exists("sb0.1") && !netbr_exists("sb0.2"));
    NETNS_CHECK(if_nametoindex("sb0.1-m") == 0 && if_nametoindex("sb0.1-o") == 0);
    NETNS_CHECK(if_nametoindex("sb0.2-m") == 0 && if_nametoindex("sb0.2-o") == 0);
    NETNS_CHECK(if_nametoindex("g1") != 0);
    exit(0); /* not _exit: LeakSanitizer checks the child */
}

/* A name of another kind in the way is skipped; a name too long to derive
 * from makes a set of one bridge, and says so when full. */
static void odd_names(void)
{
    struct netbr_set *s = NULL;
    char err[512];

    /* limit 2, 2 overflow bridges: the main bridge keeps both ports for
     * links, so every guest overflows */
    NETNS_CHECK(netns_sh("ip link add sc0.1 type veth peer name sc0x") == 0);
    NETNS_CHECK(netbr_set_open("sc0", "10.78.0.1", 16, 2, 2, &s, err, sizeof err) == NETBR_OK);
    pick(s, 1, "sc0.2");
    plug(1, "sc0.2");
    pick(s, 2, NULL);
    NETNS_CHECK(link_has("sc0.1", "veth"));
    netbr_set_close(s);
    NETNS_CHECK(netbr_delete("sc0", err, sizeof err) == NETBR_OK);
    NETNS_CHECK(!netbr_exists("sc0.2") && if_nametoindex("sc0.2-m") == 0);
    NETNS_CHECK(if_nametoindex("sc0.1") != 0); /* not ours: left alone */

    /* 11 characters: no overflow bridge can be named */
    NETNS_CHECK(netbr_set_open("abcdefghijk", "10.79.0.1", 16, 3, 2, &s, err, sizeof err) ==
                NETBR_OK);
    pick(s, 1, "abcdefghijk");
    pick(s, 2, "abcdefghijk");
    pick(s, 3, "abcdefghijk");
    {
        char m[NETBR_MAC_STRLEN];
        const char *br;
        guest_mac(4, m);
        NETNS_CHECK(netbr_set_pick(s, m, &br, err, sizeof err) == NETBR_E_FULL);
        fprintf(stderr, "full: %s\n", err);
        NETNS_CHECK(strstr(err, "'abcdefghijk'") && strstr(err, "too long") &&
                    strstr(err, "at most 10"));
    }
    /* a bad MAC */
    {
        const char *br;
        NETNS_CHECK(netbr_set_pick(s, "5a:5c:00", &br, err, sizeof err) == NETBR_E_INVAL);
        NETNS_CHECK(strstr(err, "'5a:5c:00'"));
    }
    netbr_set_close(s);
    NETNS_CHECK(netbr_delete("abcdefghijk", err, sizeof err) == NETBR_OK);
    exit(0); /* not _exit: LeakSanitizer checks the child */
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Add veth pairs p<from>..p<to> (peers q<i>), each p<i> a port of br, with
 * one `ip -batch`; returns its status (a port the bridge refuses fails). */
static int fill(const char *br, int from, int to)
{
    char path[] = "/tmp/shoal-ovf-batch-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    FILE *fp = fdopen(fd, "w");
    for (int i = from; i <= to; i++)
        fprintf(fp, "link add p%d type veth peer name q%d\nlink set p%d master %s up\n", i, i, i,
                br);
    fclose(fp);
    int rc = netns_sh("ip -batch %s", path);
    unlink(path);
    return rc;
}

/* Picks between counts (NETBR_RECOUNT_MS, NETBR_RECOUNT_SLACK): limit 100,
 * one overflow bridge, so the main bridge takes 99 guests. */
static void recount(void)
{
    struct netbr_set *s = NULL;
    char err[512];
    unsigned long n0;
    int i;

    NETNS_CHECK(netbr_set_open("sd0", "10.76.0.1", 16, 100, 1, &s, err, sizeof err) == NETBR_OK);
    NETNS_CHECK(fill("sd0", 1, 60) == 0);
    /* the first pick counts: 60 ports + 1 kept for the link + its own */
    pick(s, 1, "sd0");
    NETNS_CHECK(netbr_set_recounts(s) == 1);
    /* then 62 + picks since + 1 + 32 <= 100: 6 picks from that count */
    for (i = 2; i <= 7; i++)
        pick(s, i, "sd0");
    NETNS_CHECK(netbr_set_recounts(s) == 1);
    /* ports someone else adds are not seen between counts (the slack is
     * for them)... */
    NETNS_CHECK(fill("sd0", 61, 90) == 0);
    /* ...the next pick would leave less than the slack, so it counts: 90
     * ports + 1 kept + 7 picks whose taps are not in yet, 98 < 100 */
    pick(s, 8, "sd0");
    NETNS_CHECK(netbr_set_recounts(s) == 2);
    /* so close to full, every pick counts: the 99th guest, then the main
     * bridge is full */
    pick(s, 9, "sd0");
    NETNS_CHECK(netbr_set_recounts(s) == 3);
    pick(s, 10, "sd0.1");
    NETNS_CHECK(netbr_set_recounts(s) == 4);
    /* far from full again (the extra ports go): the first pick counts, the
     * next does not, and a count older than NETBR_RECOUNT_MS is taken again */
    NETNS_CHECK(netns_sh("for i in $(seq 30 90); do ip link del p$i; done") == 0);
    pick(s, 11, "sd0");
    n0 = netbr_set_recounts(s);
    NETNS_CHECK(n0 == 5);
    pick(s, 12, "sd0");
    NETNS_CHECK(netbr_set_recounts(s) == n0);
    usleep((NETBR_RECOUNT_MS + 100) * 1000);
    pick(s, 13, "sd0");
    NETNS_CHECK(netbr_set_recounts(s) == n0 + 1);
    netbr_set_close(s);
    NETNS_CHECK(netbr_delete("sd0", err, sizeof err) == NETBR_OK);
    exit(0); /* not _exit: LeakSanitizer checks the child */
}

/* The real limits: the production constants on a bridge with ~960 ports. */
static void real_limit(void)
{
    struct netbr_set *s = NULL;
    char err[512], out[256];
    const int guests_main = NETBR_PORTS_MAX - NETBR_OVERFLOW_MAX; /* 960 */
    double t0;

    NETNS_CHECK(netbr_set_open("shoal0", "10.88.0.1", 16, NETBR_PORTS_MAX, NETBR_OVERFLOW_MAX, &s,
                               err, sizeof err) == NETBR_OK);
    NETNS_CHECK(netns_sh("ip link set dev lo up") == 0);
    t0 = now_s();
    NETNS_CHECK(fill("shoal0", 1, guests_main - 1) == 0);
    fprintf(stderr, "%d ports added in %.2f s\n", guests_main - 1, now_s() - t0);
    NETNS_CHECK(ports_of("shoal0") == guests_main - 1);
    pick(s, 1, "shoal0");
    plug(1, "shoal0");
    t0 = now_s();
    pick(s, 2, "shoal0.1");
    fprintf(stderr, "pick that made shoal0.1: %.1f ms\n", (now_s() - t0) * 1e3);
    plug(2, "shoal0.1");
    t0 = now_s();
    pick(s, 3, "shoal0.1");
    fprintf(stderr, "pick among %d ports: %.1f ms\n", ports_of("shoal0") + 2, (now_s() - t0) * 1e3);
    NETNS_CHECK(ports_of("shoal0") == guests_main + 1);
    NETNS_CHECK(!strcmp(master_of("shoal0.1-m"), "shoal0"));
    to_guest_ns(2, 1, "10.88.0.2");
    NETNS_CHECK(ping_from(1, "10.88.0.1") == 0);
    NETNS_CHECK(netns_sh_out(out, sizeof out, "ip -o -4 addr show dev shoal0") == 0 &&
                strstr(out, "10.88.0.1/16"));

    /* the kernel's limit is NETBR_PORTS_MAX: fill the main bridge up to it
     * (the ports kept for links too), then one more is refused */
    NETNS_CHECK(fill("shoal0", guests_main, NETBR_PORTS_MAX - 2) == 0);
    NETNS_CHECK(ports_of("shoal0") == NETBR_PORTS_MAX);
    NETNS_CHECK(netns_sh("ip link add p9999 type veth peer name q9999") == 0);
    NETNS_CHECK(netns_sh_out(out, sizeof out, "ip link set p9999 master shoal0 2>&1") != 0);
    fprintf(stderr, "port %d: %s", NETBR_PORTS_MAX + 1, out);
    NETNS_CHECK(strstr(out, "Exchange full"));
    NETNS_CHECK(ports_of("shoal0") == NETBR_PORTS_MAX);
    netbr_set_close(s);
    exit(0); /* not _exit: LeakSanitizer checks the child */
}

/* ---- harness ---- */

/* Run body in a child inside ns (and its two guest namespaces), delete
 * them all, and check that nothing leaked into this namespace. */
static void in_netns(const char *tag, void (*body)(void))
{
    char why[256];
    snprintf(ns, sizeof ns, "shoal-ovf-%d-%s", (int)getpid(), tag);
    if (netns_run(ns, 2, body, NULL, why, sizeof why) != 0)
        SHOAL_SKIP("%s: %s", tag, why);
    /* the names are the test's own */
    assert_false(netbr_exists("sb0") || netbr_exists("sb0.1") || netbr_exists("sc0.2"));
}

static void small_limit_in_netns(void **state)
{
    (void)state;
    in_netns("small", small_limit);
}

static void odd_names_in_netns(void **state)
{
    (void)state;
    in_netns("names", odd_names);
}

static void recount_in_netns(void **state)
{
    (void)state;
    in_netns("recount", recount);
}

static void real_limit_in_netns(void **state)
{
    (void)state;
    in_netns("real", real_limit);
}

/* ---- pure cases ---- */

static void overflow_names(void **state)
{
    (void)state;
    struct netbr_names nm;
    char err[256];

    assert_int_equal(netbr_overflow_names("shoal0", 1, &nm, err, sizeof err), NETBR_OK);
    assert_string_equal(nm.bridge, "shoal0.1");
    assert_string_equal(nm.link_main, "shoal0.1-m");
    assert_string_equal(nm.link_over, "shoal0.1-o");
    /* the longest base and number still fit in 15 */
    assert_int_equal(netbr_overflow_names("abcdefghij", NETBR_OVERFLOW_MAX, &nm, err, sizeof err),
                     NETBR_OK);
    assert_string_equal(nm.link_main, "abcdefghij.63-m");
    assert_int_equal(strlen(nm.link_over), 15);
    /* too long, quoted, with the limit */
    assert_int_equal(netbr_overflow_names("abcdefghijk", 1, &nm, err, sizeof err), NETBR_E_INVAL);
    assert_non_null(strstr(err, "'abcdefghijk'"));
    assert_non_null(strstr(err, "at most 10"));
    assert_int_equal(netbr_overflow_names("shoal0", 0, &nm, err, sizeof err), NETBR_E_INVAL);
    assert_int_equal(netbr_overflow_names("shoal0", NETBR_OVERFLOW_MAX + 1, &nm, err, sizeof err),
                     NETBR_E_INVAL);
    assert_int_equal(netbr_overflow_names("a/b", 1, &nm, err, sizeof err), NETBR_E_INVAL);
    assert_int_equal(netbr_overflow_names(NULL, 1, &nm, err, sizeof err), NETBR_E_INVAL);
}

static void set_limits(void **state)
{
    (void)state;
    struct netbr_set *s = (struct netbr_set *)1;
    char err[256];
    /* checked before any link is touched */
    assert_int_equal(netbr_set_open("sx0", "10.0.0.1", 24, 1, 0, &s, err, sizeof err),
                     NETBR_E_INVAL);
    assert_null(s);
    assert_non_null(strstr(err, "'1'"));
    assert_int_equal(
        netbr_set_open("sx0", "10.0.0.1", 24, NETBR_PORTS_MAX + 1, 0, &s, err, sizeof err),
        NETBR_E_INVAL);
    assert_int_equal(netbr_set_open("sx0", "10.0.0.1", 24, NETBR_PORTS_MAX, NETBR_OVERFLOW_MAX + 1,
                                    &s, err, sizeof err),
                     NETBR_E_INVAL);
    assert_int_equal(netbr_set_open("sx0", "10.0.0.1", 24, 4, 5, &s, err, sizeof err),
                     NETBR_E_INVAL);
    assert_non_null(strstr(err, "'5'"));
    netbr_set_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(overflow_names),       cmocka_unit_test(set_limits),
        cmocka_unit_test(small_limit_in_netns), cmocka_unit_test(odd_names_in_netns),
        cmocka_unit_test(recount_in_netns),     cmocka_unit_test(real_limit_in_netns),
    };
    return shoal_test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
