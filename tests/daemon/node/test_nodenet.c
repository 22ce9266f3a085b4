/* test_nodenet - a remote host's guest network (daemon/nodenet.h) without a
 * remote host: the definition rendered, the address read back from a
 * network's XML (untrusted), its DHCP host entries read back (untrusted)
 * and written, and ensure/remove over libvirt's mock driver
 * (test:///default keeps networks in memory; it has no nwfilter driver, so
 * the filter is left out here). With a real libvirtd, filter included:
 * e2e_daemon_remote. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>

#include "nodenet.h"

#define IP4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((c) << 8) | (d))

static void quiet(void *user, virErrorPtr e)
{
    (void)user;
    (void)e;
}

static void test_render_and_parse(void **state)
{
    char *xml = NULL, err[256];
    uint32_t gw = 0;
    int prefix = 0;
    (void)state;
    assert_int_equal(nnet_render_network(IP4(10, 89, 3, 1), 24, &xml, err, sizeof err), NNET_OK);
    assert_non_null(strstr(xml, "<forward mode='open'/>"));
    assert_non_null(strstr(xml, "<bridge name='" NNET_BRIDGE "'"));
    assert_non_null(strstr(xml, NNET_META_URI));
    assert_null(strstr(xml, "<dhcp"));
    assert_int_equal(nnet_parse_ip(xml, &gw, &prefix), 0);
    assert_true(gw == IP4(10, 89, 3, 1) && prefix == 24);
    free(xml);
    /* the network's own address or its broadcast cannot be the gateway */
    assert_int_equal(nnet_render_network(IP4(10, 89, 3, 0), 24, &xml, err, sizeof err),
                     NNET_E_INVAL);
    assert_int_equal(nnet_render_network(IP4(10, 89, 3, 255), 24, &xml, err, sizeof err),
                     NNET_E_INVAL);
    assert_int_equal(nnet_render_network(IP4(10, 89, 3, 1), 31, &xml, err, sizeof err),
                     NNET_E_INVAL);
    assert_int_equal(
        nnet_parse_ip("<ip address=\"192.168.5.1\" netmask=\"255.255.254.0\">", &gw, &prefix), 0);
    assert_true(gw == IP4(192, 168, 5, 1) && prefix == 23);
    assert_int_equal(nnet_parse_ip("<ip address='1.2.3.4' netmask='255.0.255.0'/>", &gw, &prefix),
                     -1);
    assert_int_equal(
        nnet_parse_ip("<ip family='ipv6' address='fd00::1' prefix='64'/>", &gw, &prefix), -1);
    assert_int_equal(nnet_parse_ip("<ip address='1.2.3.4'/>", &gw, &prefix), -1);
    assert_int_equal(nnet_parse_ip("<ip address='1.2.3.4", &gw, &prefix), -1);
    assert_int_equal(nnet_parse_ip("<bridge name='x'/>", &gw, &prefix), -1);
    assert_int_equal(nnet_parse_ip(NULL, &gw, &prefix), -1);
    assert_non_null(strstr(nnet_filter_xml(), "$IP"));
}

static void test_ensure_remove(void **state)
{
    virConnectPtr c;
    char err[512];
    uint32_t gw;
    int found, prefix, ours, removed;
    (void)state;
    virSetErrorFunc(NULL, quiet);
    c = virConnectOpen("test:///default");
    assert_non_null(c);
    assert_int_equal(nnet_get(c, &found, &gw, &prefix, &ours, err, sizeof err), NNET_OK);
    assert_int_equal(found, 0);
    if (nnet_ensure(c, IP4(10, 89, 7, 1), 24, 0, err, sizeof err) != NNET_OK)
        fail_msg("%s", err);
    /* twice: idempotent */
    if (nnet_ensure(c, IP4(10, 89, 7, 1), 24, 0, err, sizeof err) != NNET_OK)
        fail_msg("%s", err);
    assert_int_equal(nnet_get(c, &found, &gw, &prefix, &ours, err, sizeof err), NNET_OK);
    assert_true(found && ours && gw == IP4(10, 89, 7, 1) && prefix == 24);
    virNetworkPtr n = virNetworkLookupByName(c, NNET_NETWORK);
    assert_non_null(n);
    assert_int_equal(virNetworkIsActive(n), 1);
    virNetworkFree(n);
    /* another address: refused, the network kept */
    assert_int_equal(nnet_ensure(c, IP4(10, 89, 8, 1), 24, 0, err, sizeof err), NNET_E_MISMATCH);
    assert_non_null(strstr(err, "10.89.7.1/24"));
    assert_int_equal(nnet_remove(c, &removed, err, sizeof err), NNET_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(nnet_get(c, &found, &gw, &prefix, &ours, err, sizeof err), NNET_OK);
    assert_int_equal(found, 0);
    /* the operator's network of that name (no shoal metadata): used, kept */
    virNetworkPtr op = virNetworkDefineXML(c, "<network><name>" NNET_NETWORK "</name>"
                                              "<bridge name='opbr0'/>"
                                              "<ip address='10.89.9.1' prefix='24'/></network>");
    assert_non_null(op);
    virNetworkFree(op);
    if (nnet_ensure(c, IP4(10, 89, 9, 1), 24, 0, err, sizeof err) != NNET_OK)
        fail_msg("%s", err);
    assert_int_equal(nnet_get(c, &found, &gw, &prefix, &ours, err, sizeof err), NNET_OK);
    assert_true(found && !ours);
    assert_int_equal(nnet_remove(c, &removed, err, sizeof err), NNET_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(nnet_get(c, &found, &gw, &prefix, &ours, err, sizeof err), NNET_OK);
    assert_int_equal(found, 1);
    virConnectClose(c);
}

static void test_parse_dhcp_hosts(void **state)
{
    struct nnet_host *h = NULL;
    size_t n = 9;
    (void)state;
    assert_int_equal(
        nnet_parse_dhcp_hosts("<network><dns><host ip='10.0.0.9'><hostname>x"
                              "</hostname></host></dns><ip address='10.89.1.1' "
                              "prefix='24'><dhcp><host mac='5a:5c:00:00:00:01' "
                              "name='web' ip='10.89.1.2'/><host mac='5a:5c:00:00:00:02'"
                              " ip='10.89.1.3'/><host name='noma' ip='10.89.1.4'/>"
                              "<host mac='5a:5c:00:00:00:05' ip='nope'/></dhcp></ip>"
                              "</network>",
                              &h, &n),
        0);
    /* the DNS host, one without a MAC and one without an address left out */
    assert_int_equal(n, 2);
    assert_string_equal(h[0].mac, "5a:5c:00:00:00:01");
    assert_true(h[0].ip == IP4(10, 89, 1, 2));
    assert_string_equal(h[0].name, "web");
    assert_string_equal(h[1].mac, "5a:5c:00:00:00:02");
    assert_string_equal(h[1].name, "");
    free(h);
    assert_int_equal(
        nnet_parse_dhcp_hosts("<dhcp><host mac='5a:5c:00:00:00:01' ip='1.2.3.4'", &h, &n), 0);
    assert_int_equal(n, 0); /* no </dhcp> */
    free(h);
    assert_int_equal(nnet_parse_dhcp_hosts(NULL, &h, &n), 0);
    assert_int_equal(n, 0);
    assert_non_null(strstr(nnet_filter_xml(), "dstportstart='67'"));
}

/* put, list, del over the mock driver: libvirt's own matching rules
 * (an add that matches an entry's MAC, address or name is refused). */
static void test_dhcp_entries(void **state)
{
    virConnectPtr c;
    char err[512];
    struct nnet_host *h = NULL, a = { "5a:5c:00:00:00:01", IP4(10, 89, 7, 2), "web" };
    struct nnet_host b = { "5a:5c:00:00:00:02", IP4(10, 89, 7, 3), "not a label" };
    size_t n = 0;
    int removed;
    (void)state;
    virSetErrorFunc(NULL, quiet);
    c = virConnectOpen("test:///default");
    assert_non_null(c);
    /* no network: nothing listed, nothing to delete, a put refused */
    assert_int_equal(nnet_dhcp_list(c, &h, &n, err, sizeof err), NNET_OK);
    assert_int_equal(n, 0);
    assert_int_equal(nnet_dhcp_del(c, a.mac, err, sizeof err), NNET_OK);
    assert_int_equal(nnet_dhcp_put(c, &a, err, sizeof err), NNET_E_LIBVIRT);
    if (nnet_ensure(c, IP4(10, 89, 7, 1), 24, 0, err, sizeof err) != NNET_OK)
        fail_msg("%s", err);
    if (nnet_dhcp_put(c, &a, err, sizeof err) != NNET_OK)
        fail_msg("%s", err);
    if (nnet_dhcp_put(c, &a, err, sizeof err) != NNET_OK) /* again: nothing to do */
        fail_msg("%s", err);
    if (nnet_dhcp_put(c, &b, err, sizeof err) != NNET_OK)
        fail_msg("%s", err);
    assert_int_equal(nnet_dhcp_list(c, &h, &n, err, sizeof err), NNET_OK);
    assert_int_equal(n, 2);
    assert_string_equal(h[1].name, ""); /* not a DNS label: left out */
    free(h);
    /* a's address to another MAC (a deleted while the host was away) */
    struct nnet_host a2 = { "5a:5c:00:00:00:09", IP4(10, 89, 7, 2), "web2" };
    if (nnet_dhcp_put(c, &a2, err, sizeof err) != NNET_OK)
        fail_msg("%s", err);
    assert_int_equal(nnet_dhcp_list(c, &h, &n, err, sizeof err), NNET_OK);
    assert_int_equal(n, 2);
    assert_true(!strcmp(h[0].mac, b.mac) && !strcmp(h[1].mac, a2.mac));
    free(h);
    assert_int_equal(nnet_dhcp_del(c, b.mac, err, sizeof err), NNET_OK);
    assert_int_equal(nnet_dhcp_del(c, b.mac, err, sizeof err), NNET_OK); /* gone: fine */
    assert_int_equal(nnet_dhcp_list(c, &h, &n, err, sizeof err), NNET_OK);
    assert_true(n == 1 && !strcmp(h[0].mac, a2.mac));
    free(h);
    assert_int_equal(nnet_remove(c, &removed, err, sizeof err), NNET_OK);
    virConnectClose(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_and_parse),
        cmocka_unit_test(test_ensure_remove),
        cmocka_unit_test(test_parse_dhcp_hosts),
        cmocka_unit_test(test_dhcp_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
