/* nodenet.c - a remote host's guest network and filter (nodenet.h). */
#include "nodenet.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>

#include "errbuf.h"

/* The guest filter. Rules of the root chain run by priority; what none
 * accepts is dropped by the last one of each direction ('out' is what the
 * guest sends). */
static const char filter_xml[] =
    "<filter name='" NNET_FILTER "' chain='root'>\n"
    "  <rule action='drop' direction='out' priority='-500'>\n"
    "    <mac match='no' srcmacaddr='$MAC'/>\n"
    "  </rule>\n"
    "  <rule action='accept' direction='out' priority='-400'>\n"
    "    <ip srcmacaddr='$MAC' srcipaddr='$IP'/>\n"
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
