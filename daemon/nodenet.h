/*
 * nodenet.h - a remote host's guest network and guest isolation, through
 * libvirt's network and nwfilter APIs (issue 17; docs/node.md "Remote
 * hosts", docs/security.md).
 *
 * shoald's own bridge (netbr.h) and its nftables table (guard.h) exist on
 * shoald's machine only. On a host elsewhere, reached through libvirt and
 * nothing else, shoald keeps:
 *
 *   NNET_NETWORK  a libvirt network, bridge NNET_BRIDGE, forward mode
 *                 'open' (the host routes the subnet like any directly
 *                 connected one and libvirt adds no firewall rules: no NAT,
 *                 no DNS), its gateway address on the bridge. Persistent
 *                 and autostarted; defined (with shoal's <metadata>,
 *                 NNET_META_URI) and started when missing. DHCP: static
 *                 only, one <host mac= ip=> per running guest (nnet_dhcp_*)
 *                 and no <range>; libvirt then runs the host's dnsmasq with
 *                 `dhcp-range=GATEWAY,static` (an unknown MAC gets no
 *                 answer) while the network has a host entry, none without.
 *   NNET_FILTER   a libvirt nwfilter each guest interface names with its
 *                 address as parameter IP (libvirt fills MAC with the
 *                 NIC's): from the guest only frames from its MAC, and of
 *                 those only IPv4 from IP (but nothing from UDP port 67:
 *                 no DHCP server) or a DHCP request from 0.0.0.0 to the
 *                 broadcast address (UDP 68 -> 67), and ARP whose
 *                 sender is MAC and IP; to the guest only frames for its
 *                 MAC or broadcast.
 *                 Everything else (another source, IPv6, other ethertypes,
 *                 ARP claiming another address) is dropped: the rule
 *                 guard.h enforces on shoald's bridge. libvirt writes it as
 *                 ebtables rules on the host (ebtables-nft on Debian 12).
 *
 * Errors: 0, or a negative nnet_status with a message in err[errlen]
 * quoting libvirt's reason. Blocking (a few RPCs); any thread but
 * libvirt's event loop. No state: callers serialise ensure/remove per host.
 */
#ifndef SHOAL_NODENET_H
#define SHOAL_NODENET_H

#include <stddef.h>
#include <stdint.h>

#include <libvirt/libvirt.h>

#define NNET_NETWORK  "shoal"
#define NNET_BRIDGE   "shoalr0"
#define NNET_FILTER   "shoal-guest"
#define NNET_META_URI "https://shoal.dev/xmlns/network/1"

enum nnet_status {
    NNET_OK = 0,
    NNET_E_INVAL = -1,    /* a bad address or prefix */
    NNET_E_LIBVIRT = -2,  /* libvirt refused; the connection may be lost */
    NNET_E_MISMATCH = -3, /* the host's network has another address (message says
                             which) */
};

/* The network's definition for gateway gw (host order) / prefix (8..30),
 * malloc'd in *out. Pure. */
int nnet_render_network(uint32_t gw, int prefix, char **out, char *err, size_t errlen);

/* The filter's definition (a constant). */
const char *nnet_filter_xml(void);

/* Gateway and prefix of the first <ip> of a network's XML (address= and
 * prefix= or netmask=). 0, or -1 when there is none or it is malformed.
 * Input is untrusted. */
int nnet_parse_ip(const char *xml, uint32_t *gw, int *prefix);

/* The host's NNET_NETWORK: *found 0 when it has none, else 1 with its
 * gateway and prefix (*ours: 1 when shoald defined it). */
int nnet_get(virConnectPtr c, int *found, uint32_t *gw, int *prefix, int *ours, char *err,
             size_t errlen);

/* Make NNET_NETWORK exist with gateway gw / prefix, and be active and
 * autostarted; with filter, also (re)define NNET_FILTER. A network of that
 * name with another address is NNET_E_MISMATCH (never changed: guests may
 * use it). */
int nnet_ensure(virConnectPtr c, uint32_t gw, int prefix, int filter, char *err, size_t errlen);

/* A host leaves the fleet: NNET_NETWORK is stopped and undefined when
 * shoald defined it (its metadata), kept otherwise; NNET_FILTER is
 * undefined unless a domain still uses it (libvirt refuses: kept).
 * *removed: 1 when the network went. */
int nnet_remove(virConnectPtr c, int *removed, char *err, size_t errlen);

/* One static DHCP entry of NNET_NETWORK: a guest's MAC, its address (host
 * order) and, when a valid DNS label, its name (option 12); "" none. */
struct nnet_host {
    char mac[18];
    uint32_t ip;
    char name[64];
};

/* The DHCP host entries in a network's XML (only inside <dhcp>), malloc'd
 * in *out (free it; NULL when none). Entries without a MAC or an IPv4
 * address are left out. Input is untrusted. 0, or -1 out of memory. */
int nnet_parse_dhcp_hosts(const char *xml, struct nnet_host **out, size_t *n);

/* The host's NNET_NETWORK's entries as running (nnet_parse_dhcp_hosts); a
 * host without the network has none. */
int nnet_dhcp_list(virConnectPtr c, struct nnet_host **out, size_t *n, char *err, size_t errlen);

/* Make h's entry exist, live and in the persistent definition: an entry
 * with h's MAC, address or name and something else different (a guest
 * deleted while shoald could not reach the host) is deleted first. The
 * first entry makes libvirt start the host's dnsmasq: a host without it
 * fails here (NNET_E_LIBVIRT, libvirt's message names the program) and
 * the entry, which libvirt keeps, is deleted again (with it the network
 * would not start there again). */
int nnet_dhcp_put(virConnectPtr c, const struct nnet_host *h, char *err, size_t errlen);

/* Delete the entry of mac, if there is one (none, or no network: NNET_OK).
 * The last one gone, libvirt stops the host's dnsmasq. */
int nnet_dhcp_del(virConnectPtr c, const char *mac, char *err, size_t errlen);

/* Addresses (host order) that the host's dnsmasq holds leased to a MAC
 * other than except_mac (NULL: any) and not expired, malloc'd in *out:
 * dnsmasq refuses a static entry's address to a new MAC while an old lease
 * of it lasts (libvirt gives no way to drop a lease), so a new address is
 * picked among the others. A driver without leases: none. */
int nnet_dhcp_leased(virConnectPtr c, const char *except_mac, uint32_t **out, size_t *n, char *err,
                     size_t errlen);

#endif /* SHOAL_NODENET_H */
