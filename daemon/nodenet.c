/* nodenet.c - a remote host's guest network and filter (nodenet.h). */
#include "nodenet.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libvirt/virterror.h>

#include "errbuf.h"

/* The guest filter. Rules of the root chain run by priority; what none
 * accepts is dropped by the last one of each direction ('out' is what the
 * guest sends). A guest with no address yet asks for one from 0.0.0.0
 * (DHCP DISCOVER, REQUEST); renewals come from $IP. Nothing from a DHCP
 * server's port 67: a guest cannot answer another's request. */
static const char filter_xml[] =
    "<filter name='" NNET_FILTER "' chain='root'>\n"
    "  <rule action='drop' direction='out' priority='-500'>\n"
    "    <mac match='no' srcmacaddr='$MAC'/>\n"
    "  </rule>\n"
    "  <rule action='drop' direction='out' priority='-450'>\n"
    "    <ip protocol='udp' srcportstart='67'/>\n"
    "  </rule>\n"
    "  <rule action='accept' direction='out' priority='-400'>\n"
    "    <ip srcmacaddr='$MAC' srcipaddr='$IP'/>\n"
    "  </rule>\n"
    "  <rule action='accept' direction='out' priority='-350'>\n"
    "    <ip srcmacaddr='$MAC' srcipaddr='0.0.0.0' dstipaddr='255.255.255.255' protocol='udp'"
    " srcportstart='68' dstportstart='67'/>\n"
    "  </rule>\n"
    "  <rule action='accept' direction='out' priority='-300'>\n"
    "    <arp srcmacaddr='$MAC' arpsrcmacaddr='$MAC' arpsrcipaddr='$IP'/>\n"
    "  </rule>\n"
    "  <rule action='drop' direction='out' priority='500'>\n"
    "    <mac/>\n"
    "  </rule>\n"
    "  <rule action='accept' direction='in' priority='-200'>\n"
    "    <mac dstmacaddr='$MAC'/>\n"
    "  </rule>\n"
    "  <rule action='accept' direction='in' priority='-190'>\n"
    "    <mac dstmacaddr='ff:ff:ff:ff:ff:ff'/>\n"
    "  </rule>\n"
    "  <rule action='drop' direction='in' priority='500'>\n"
    "    <mac/>\n"
    "  </rule>\n"
    "</filter>\n";

const char *nnet_filter_xml(void)
{
    return filter_xml;
}

/* Write the message, return code. */
static int fail(int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    char msg[1024];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    errbuf_set(err, errlen, "%s", msg);
    return code;
}

static const char *lv_msg(void)
{
    const char *m = virGetLastErrorMessage();
    return m && *m ? m : "unknown libvirt error";
}

static const char *ip_str(uint32_t a, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255u, (a >> 8) & 255u, a & 255u);
    return out;
}

int nnet_render_network(uint32_t gw, int prefix, char **out, char *err, size_t errlen)
{
    char ip[16];
    uint32_t mask = prefix > 0 ? 0xffffffffu << (32 - prefix) : 0;

    *out = NULL;
    /* the gateway is neither the subnet's network nor its broadcast address */
    if (prefix < 8 || prefix > 30 || (gw & ~mask) == 0 || (gw | mask) == 0xffffffffu)
        return fail(NNET_E_INVAL, err, errlen, "no guest network for gateway %s/%d", ip_str(gw, ip),
                    prefix);
    if (asprintf(out,
                 "<network>\n"
                 "  <name>" NNET_NETWORK "</name>\n"
                 "  <metadata><shoal:network xmlns:shoal='" NNET_META_URI "'/></metadata>\n"
                 "  <forward mode='open'/>\n"
                 "  <bridge name='" NNET_BRIDGE "' stp='off' delay='0'/>\n"
                 "  <dns enable='no'/>\n"
                 "  <ip address='%s' prefix='%d'/>\n"
                 "</network>\n",
                 ip_str(gw, ip), prefix) < 0) {
        *out = NULL;
        return fail(NNET_E_INVAL, err, errlen, "out of memory");
    }
    return NNET_OK;
}

/* Value of attribute `name` inside the tag that starts at tag (up to its
 * '>'), quoted with ' or "; 0, or -1 if absent or longer than outlen - 1. */
static int attr(const char *tag, const char *name, char *out, size_t outlen)
{
    const char *end = strchr(tag, '>'), *p = tag;
    size_t n = strlen(name);

    while (end && (p = strstr(p, name)) && p < end) {
        const char *v = p + n;
        if (p[-1] == ' ' && v[0] == '=' && (v[1] == '\'' || v[1] == '"')) {
            const char *q = strchr(v + 2, v[1]);
            if (!q || q > end || (size_t)(q - v - 2) >= outlen)
                return -1;
            memcpy(out, v + 2, (size_t)(q - v - 2));
            out[q - v - 2] = '\0';
            return 0;
        }
        p = v;
    }
    return -1;
}

int nnet_parse_ip(const char *xml, uint32_t *gw, int *prefix)
{
    const char *tag = xml ? strstr(xml, "<ip ") : NULL;
    char a[64], m[64];
    struct in_addr ia, im;
    char *end;
    long p;

    if (!tag || attr(tag, "address", a, sizeof a) != 0 || inet_pton(AF_INET, a, &ia) != 1)
        return -1;
    if (attr(tag, "prefix", m, sizeof m) == 0) {
        p = strtol(m, &end, 10);
        if (end == m || *end || p < 0 || p > 32)
            return -1;
    } else if (attr(tag, "netmask", m, sizeof m) == 0 && inet_pton(AF_INET, m, &im) == 1) {
        uint32_t mask = ntohl(im.s_addr);
        for (p = 0; p < 32 && (mask & (0x80000000u >> p)); p++)
            ;
        if (p < 32 && (mask << p))
            return -1; /* not contiguous */
    } else {
        return -1;
    }
    *gw = ntohl(ia.s_addr);
    *prefix = (int)p;
    return 0;
}

int nnet_get(virConnectPtr c, int *found, uint32_t *gw, int *prefix, int *ours, char *err,
             size_t errlen)
{
    virNetworkPtr net = virNetworkLookupByName(c, NNET_NETWORK);
    char *xml = NULL;
    int rc = NNET_OK;

    *found = 0;
    *ours = 0;
    if (!net) {
        virErrorPtr e = virGetLastError();
        if (e && e->code == VIR_ERR_NO_NETWORK)
            return NNET_OK;
        return fail(NNET_E_LIBVIRT, err, errlen, "cannot look up network '%s': %s", NNET_NETWORK,
                    lv_msg());
    }
    /* the persistent definition: what a restart of the host brings up */
    xml = virNetworkGetXMLDesc(net, VIR_NETWORK_XML_INACTIVE);
    if (!xml) /* a driver without that flag (the test driver): the live one */
        xml = virNetworkGetXMLDesc(net, 0);
    if (!xml)
        rc = fail(NNET_E_LIBVIRT, err, errlen, "network '%s': %s", NNET_NETWORK, lv_msg());
    else if (nnet_parse_ip(xml, gw, prefix) != 0)
        rc = fail(NNET_E_MISMATCH, err, errlen,
                  "network '%s' on the host has no IPv4 address shoald can route to "
                  "(remove it, or give it <ip address= prefix=>)",
                  NNET_NETWORK);
    else {
        *found = 1;
        *ours = strstr(xml, NNET_META_URI) != NULL;
    }
    free(xml);
    virNetworkFree(net);
    return rc;
}

int nnet_ensure(virConnectPtr c, uint32_t gw, int prefix, int filter, char *err, size_t errlen)
{
    virNetworkPtr net = NULL;
    virNWFilterPtr nf = NULL;
    char *xml = NULL, ip[16];
    uint32_t hgw = 0;
    int found, hprefix = 0, ours, rc, autostart = 0;

    rc = nnet_get(c, &found, &hgw, &hprefix, &ours, err, errlen);
    if (rc != NNET_OK)
        goto out;
    if (found && (hgw != gw || hprefix != prefix)) {
        char want[16];
        rc = fail(NNET_E_MISMATCH, err, errlen,
                  "network '%s' on the host has address %s/%d, not %s/%d as shoald "
                  "expects (remove it there if no guest uses it)",
                  NNET_NETWORK, ip_str(hgw, ip), hprefix, ip_str(gw, want), prefix);
        goto out;
    }
    if (!found) {
        if ((rc = nnet_render_network(gw, prefix, &xml, err, errlen)) != NNET_OK)
            goto out;
        /* Another start may define it at the same moment: that one is used. */
        net = virNetworkDefineXML(c, xml);
        if (!net) {
            char why[512];
            snprintf(why, sizeof why, "%s", lv_msg());
            if (!(nnet_get(c, &found, &hgw, &hprefix, &ours, err, errlen) == NNET_OK && found &&
                  hgw == gw && hprefix == prefix &&
                  (net = virNetworkLookupByName(c, NNET_NETWORK)))) {
                rc = fail(NNET_E_LIBVIRT, err, errlen, "cannot define network '%s': %s",
                          NNET_NETWORK, why);
                goto out;
            }
        }
    } else if (!(net = virNetworkLookupByName(c, NNET_NETWORK))) {
        rc = fail(NNET_E_LIBVIRT, err, errlen, "network '%s': %s", NNET_NETWORK, lv_msg());
        goto out;
    }
    if (virNetworkGetAutostart(net, &autostart) == 0 && !autostart)
        (void)virNetworkSetAutostart(net, 1);
    if (virNetworkIsActive(net) != 1 && virNetworkCreate(net) != 0 &&
        virNetworkIsActive(net) != 1) { /* not started by another start meanwhile */
        rc = fail(NNET_E_LIBVIRT, err, errlen, "cannot start network '%s' (bridge %s): %s",
                  NNET_NETWORK, NNET_BRIDGE, lv_msg());
        goto out;
    }
    /* Defined again as it is here: a filter of an older shoald is replaced
     * (libvirt re-applies it to the interfaces that use it). */
    if (filter && !(nf = virNWFilterDefineXML(c, filter_xml))) {
        rc = fail(NNET_E_LIBVIRT, err, errlen, "cannot define network filter '%s': %s", NNET_FILTER,
                  lv_msg());
        goto out;
    }
    rc = NNET_OK;
out:
    if (nf)
        virNWFilterFree(nf);
    if (net)
        virNetworkFree(net);
    free(xml);
    return rc;
}

int nnet_remove(virConnectPtr c, int *removed, char *err, size_t errlen)
{
    virNetworkPtr net = NULL;
    virNWFilterPtr nf;
    uint32_t gw;
    int found, prefix, ours, rc;

    *removed = 0;
    rc = nnet_get(c, &found, &gw, &prefix, &ours, err, errlen);
    if (rc == NNET_OK && found && ours && (net = virNetworkLookupByName(c, NNET_NETWORK))) {
        if (virNetworkIsActive(net) == 1 && virNetworkDestroy(net) != 0)
            rc = fail(NNET_E_LIBVIRT, err, errlen, "cannot stop network '%s': %s", NNET_NETWORK,
                      lv_msg());
        else if (virNetworkUndefine(net) != 0)
            rc = fail(NNET_E_LIBVIRT, err, errlen, "cannot undefine network '%s': %s", NNET_NETWORK,
                      lv_msg());
        else
            *removed = 1;
        virNetworkFree(net);
    }
    /* libvirt refuses while a domain's interface names it: kept then */
    if ((nf = virNWFilterLookupByName(c, NNET_FILTER))) {
        (void)virNWFilterUndefine(nf);
        virNWFilterFree(nf);
    }
    return rc;
}

static int valid_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')) ||
        s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

int nnet_parse_dhcp_hosts(const char *xml, struct nnet_host **out, size_t *n)
{
    const char *p = xml ? strstr(xml, "<dhcp>") : NULL;
    const char *end = p ? strstr(p, "</dhcp>") : NULL;
    struct nnet_host *v = NULL;
    size_t k = 0, cap = 0;

    *out = NULL;
    *n = 0;
    while (p && end && (p = strstr(p, "<host ")) && p < end) {
        struct nnet_host h;
        char ip[64];
        struct in_addr ia;
        memset(&h, 0, sizeof h);
        if (attr(p, "mac", h.mac, sizeof h.mac) == 0 && attr(p, "ip", ip, sizeof ip) == 0 &&
            inet_pton(AF_INET, ip, &ia) == 1) {
            h.ip = ntohl(ia.s_addr);
            if (attr(p, "name", h.name, sizeof h.name) != 0)
                h.name[0] = '\0';
            if (k == cap) {
                struct nnet_host *nv = realloc(v, (cap = cap ? 2 * cap : 8) * sizeof *v);
                if (!nv) {
                    free(v);
                    return -1;
                }
                v = nv;
            }
            v[k++] = h;
        }
        p += 6;
    }
    *out = v;
    *n = k;
    return 0;
}

/* The network, or NULL: *none 1 when the host has none (not an error). */
static virNetworkPtr net_lookup(virConnectPtr c, int *none, char *err, size_t errlen)
{
    virNetworkPtr net = virNetworkLookupByName(c, NNET_NETWORK);
    virErrorPtr e;
    *none = 0;
    if (net)
        return net;
    e = virGetLastError();
    if (e && e->code == VIR_ERR_NO_NETWORK)
        *none = 1;
    else
        fail(NNET_E_LIBVIRT, err, errlen, "cannot look up network '%s': %s", NNET_NETWORK,
             lv_msg());
    return NULL;
}

static int hosts_of(virNetworkPtr net, struct nnet_host **out, size_t *n, char *err, size_t errlen)
{
    char *xml = virNetworkGetXMLDesc(net, 0);
    int rc = NNET_OK;
    if (!xml)
        return fail(NNET_E_LIBVIRT, err, errlen, "network '%s': %s", NNET_NETWORK, lv_msg());
    if (nnet_parse_dhcp_hosts(xml, out, n) != 0)
        rc = fail(NNET_E_INVAL, err, errlen, "out of memory");
    free(xml);
    return rc;
}

int nnet_dhcp_list(virConnectPtr c, struct nnet_host **out, size_t *n, char *err, size_t errlen)
{
    int none, rc;
    virNetworkPtr net = net_lookup(c, &none, err, errlen);
    *out = NULL;
    *n = 0;
    if (!net)
        return none ? NNET_OK : NNET_E_LIBVIRT;
    rc = hosts_of(net, out, n, err, errlen);
    virNetworkFree(net);
    return rc;
}

/* Live and persistent when the network runs, else persistent only. */
static int host_update(virNetworkPtr net, unsigned cmd, const struct nnet_host *h, char *err,
                       size_t errlen)
{
    char xml[256], ip[16], name[80] = "";
    unsigned flags = VIR_NETWORK_UPDATE_AFFECT_CONFIG;

    if (virNetworkIsActive(net) == 1)
        flags |= VIR_NETWORK_UPDATE_AFFECT_LIVE;
    if (h->name[0] && valid_label(h->name))
        snprintf(name, sizeof name, " name='%s'", h->name);
    /* a delete matches every attribute given: the MAC alone */
    if (cmd == VIR_NETWORK_UPDATE_COMMAND_DELETE)
        snprintf(xml, sizeof xml, "<host mac='%s'/>", h->mac);
    else
        snprintf(xml, sizeof xml, "<host mac='%s'%s ip='%s'/>", h->mac, name, ip_str(h->ip, ip));
    if (virNetworkUpdate(net, cmd, VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, xml, flags) != 0)
        return fail(NNET_E_LIBVIRT, err, errlen, "network '%s': cannot %s DHCP entry %s: %s",
                    NNET_NETWORK, cmd == VIR_NETWORK_UPDATE_COMMAND_DELETE ? "delete" : "add", xml,
                    lv_msg());
    return NNET_OK;
}

int nnet_dhcp_put(virConnectPtr c, const struct nnet_host *h, char *err, size_t errlen)
{
    struct nnet_host *have = NULL, want = *h;
    size_t n = 0;
    int none, rc, same = 0;
    virNetworkPtr net = net_lookup(c, &none, err, errlen);

    if (!net)
        return none ? fail(NNET_E_LIBVIRT, err, errlen, "no network '%s'", NNET_NETWORK)
                    : NNET_E_LIBVIRT;
    if (!valid_label(want.name))
        want.name[0] = '\0';
    if ((rc = hosts_of(net, &have, &n, err, errlen)) != NNET_OK)
        goto out;
    for (size_t i = 0; i < n && rc == NNET_OK; i++) {
        int mac = !strcasecmp(have[i].mac, want.mac), ip = have[i].ip == want.ip;
        int name = want.name[0] && !strcmp(have[i].name, want.name);
        if (mac && ip && !strcmp(have[i].name, want.name))
            same = 1;
        else if (mac || ip || name) /* libvirt refuses an add that matches any */
            rc = host_update(net, VIR_NETWORK_UPDATE_COMMAND_DELETE, &have[i], err, errlen);
    }
    if (rc == NNET_OK && !same &&
        (rc = host_update(net, VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, &want, err, errlen)) !=
            NNET_OK) {
        /* libvirt keeps an entry it could not serve (no dnsmasq on the
         * host), and a network with one no longer starts there: undone */
        char ignored[256];
        (void)host_update(net, VIR_NETWORK_UPDATE_COMMAND_DELETE, &want, ignored, sizeof ignored);
    }
out:
    free(have);
    virNetworkFree(net);
    return rc;
}

int nnet_dhcp_del(virConnectPtr c, const char *mac, char *err, size_t errlen)
{
    struct nnet_host *have = NULL;
    size_t n = 0;
    int none, rc;
    virNetworkPtr net = net_lookup(c, &none, err, errlen);

    if (!net)
        return none ? NNET_OK : NNET_E_LIBVIRT;
    /* read first: libvirt's "no such entry" is an error like any other */
    rc = hosts_of(net, &have, &n, err, errlen);
    for (size_t i = 0; i < n && rc == NNET_OK; i++)
        if (!strcasecmp(have[i].mac, mac))
            rc = host_update(net, VIR_NETWORK_UPDATE_COMMAND_DELETE, &have[i], err, errlen);
    free(have);
    virNetworkFree(net);
    return rc;
}

int nnet_dhcp_leased(virConnectPtr c, const char *except_mac, uint32_t **out, size_t *n, char *err,
                     size_t errlen)
{
    virNetworkDHCPLeasePtr *leases = NULL;
    int none, nl, rc = NNET_OK;
    uint32_t *v = NULL;
    size_t k = 0;
    virNetworkPtr net = net_lookup(c, &none, err, errlen);
    time_t now = time(NULL);

    *out = NULL;
    *n = 0;
    if (!net)
        return none ? NNET_OK : NNET_E_LIBVIRT;
    nl = virNetworkGetDHCPLeases(net, NULL, &leases, 0);
    if (nl < 0) {
        virErrorPtr e = virGetLastError();
        if (!(e && e->code == VIR_ERR_NO_SUPPORT))
            rc = fail(NNET_E_LIBVIRT, err, errlen, "network '%s': cannot read its leases: %s",
                      NNET_NETWORK, lv_msg());
        nl = 0;
    }
    if (nl > 0 && !(v = calloc((size_t)nl, sizeof *v)))
        rc = fail(NNET_E_INVAL, err, errlen, "out of memory");
    for (int i = 0; i < nl; i++) {
        struct in_addr ia;
        virNetworkDHCPLeasePtr l = leases[i];
        if (v && l->type == VIR_IP_ADDR_TYPE_IPV4 && l->ipaddr &&
            inet_pton(AF_INET, l->ipaddr, &ia) == 1 &&
            (l->expirytime == 0 || l->expirytime > (long long)now) &&
            !(except_mac && l->mac && !strcasecmp(l->mac, except_mac)))
            v[k++] = ntohl(ia.s_addr);
        virNetworkDHCPLeaseFree(l);
    }
    free(leases);
    virNetworkFree(net);
    if (rc != NNET_OK) {
        free(v);
        return rc;
    }
    *out = v;
    *n = k;
    return NNET_OK;
}
