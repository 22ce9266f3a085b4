/*
 * guard.h - guest isolation on the guest bridges: each guest may send only
 * from its own MAC and IPv4 address (issue 16).
 *
 * Threat closed: a guest that sends gratuitous ARP for another guest's
 * address (or the gateway's) used to take over that traffic, including the
 * victim's published ports, or cut the victim off; a guest could send with
 * any source MAC or IP and poison the bridge's forwarding table. Now every
 * frame a guest sends is checked where it enters the bridge, before the
 * bridge learns from it or forwards it.
 *
 * How: one nftables table of the bridge family owned by shoald,
 * `table bridge shoal` (GUARD_TABLE), in the calling thread's network
 * namespace. Its two sets name what each guest port may send:
 *
 *     set ports { type ifname . ether_addr }               tap . guest MAC
 *     set addrs { type ifname . ether_addr . ipv4_addr }   tap . MAC . IPv4
 *
 * and its chains apply them to every port whose name starts with
 * GUARD_TAP_PREFIX ("sh"), except the links between the main bridge and its
 * overflow bridges ("BRIDGE.K-m", "BRIDGE.K-o", netbr.h), which carry every
 * guest's traffic and are never filtered:
 *
 *     prerouting (priority -300), from a guest port, accept only
 *       - IPv4 (ether type 0x0800) whose (port, source MAC, source IP) is in
 *         addrs;
 *       - DHCP before an address is bound: IPv4 from 0.0.0.0 to
 *         255.255.255.255, UDP 68 -> 67, (port, source MAC) in ports;
 *       - ARP request or reply (Ethernet/IPv4 sizes) whose (port, source
 *         MAC, sender IP) is in addrs and whose sender MAC is the port's;
 *       - ARP probes (RFC 5227: request, sender IP 0.0.0.0) from the port's
 *         MAC;
 *       and drop everything else: other sources, IPv6 (shoal assigns none),
 *       VLAN-tagged frames, every other ethertype and 802.3 frames (STP).
 *       A port named like a guest tap with no element (a tap shoald does
 *       not know, a guest whose element is gone) can send nothing.
 *     postrouting, to a guest port: drop unicast frames whose destination
 *       is not that port's guest MAC (the bridge floods unknown unicast to
 *       every port; a guest must not see other guests' flooded traffic).
 *       Broadcast and multicast (ARP requests, DHCP) pass.
 *
 * Port names: libvirt names a tap vnetN unless the domain XML says
 * <target dev='NAME'/> (domxml_spec.tap). shoald names each guest's tap
 * guard_tap_name(instance id) = "sh" + 12 hex, so an element can be written
 * before the tap exists: the rules hold from the first frame the guest can
 * send. Nothing here depends on which bridge of a set the tap is in.
 *
 * Implementation: every change is one nftables transaction, run as `nft -f
 * -` (found as /usr/sbin/nft, /sbin/nft, else in PATH) through child.h's
 * child_run (posix_spawn, no shell), with the script on stdin from a memfd and nft's output
 * captured for the error message (guard_verify alone asks the kernel
 * directly: one NFT_MSG_GETTABLE on a netlink socket). A transaction is
 * atomic: guard_open replaces the whole table at once (add, delete,
 * define), so running guests are never unfiltered, not even for a moment,
 * across a shoald restart.
 * Why not libnftables in-process: nft's parser, caches and allocations stay
 * out of the long-lived root daemon (and out of its sanitizer runs), a crash
 * in them cannot take shoald down, nothing new is linked, and it is the
 * pattern netbr.c already uses for `ip`. guard_add alone sends its few
 * set elements as one nf_tables batch on a netlink socket (~0.05 ms
 * against 3-22 ms for an nft process on a loaded host: most of a warm pool
 * claim, issue 15), the nft script only when that fails (its words, and a
 * table that went is written again); SHOAL_GUARD_NETLINK=off in the
 * environment makes it run nft every time (for comparisons). Costs
 * measured here (6.18 kernel, nft 1.0.6, 2 shared cores under load):
 * guard_add through nft ~2-3 ms idle (one nft process),
 * guard_remove ~15 ms (its add+delete pairs; the deletions are the slow part),
 * flat from 0 to 10,000 guests; guard_open ~20 ms empty, ~30 ms with 1,000
 * guests, ~350 ms with 10,000; guard_verify ~10 us (netlink, no nft).
 *
 * The table outlives shoald on purpose: guests keep running when shoald
 * stops, and so do their rules. guard_close frees memory only.
 *
 * Needs CAP_NET_ADMIN and nftables (Debian package `nftables`; kernel with
 * nf_tables bridge support: Debian 12's 6.1 and later).
 *
 * THREADS AND LOCKS: struct guard has one mutex, held across each nft run
 * (a leaf lock: nothing else is taken under it), so calls from any thread
 * are serialized and the in-memory list of ports always matches what was
 * last written to the kernel.
 */
#ifndef SHOAL_GUARD_H
#define SHOAL_GUARD_H

#include <stddef.h>
#include <stdint.h>

/* The table: `table bridge shoal`. */
#define GUARD_FAMILY "bridge"
#define GUARD_TABLE  "shoal"
/* Set names, for `nft list set bridge shoal NAME`. */
#define GUARD_SET_PORTS "ports"
#define GUARD_SET_ADDRS "addrs"
/* tap . the guest's IPv4: the only address ARP sent to that port may ask
 * about (docs/node.md "Guest isolation": no ARP fan-out). */
#define GUARD_SET_DESTS "dests"

/* Guest tap names: GUARD_TAP_PREFIX followed by 12 lower-case hex digits
 * (14 bytes; a Linux name holds 15). Ports named GUARD_TAP_PREFIX* are the
 * ones filtered, so nothing else plugged into shoal's bridges may be named
 * so (the overflow links are exempt by name). */
#define GUARD_TAP_PREFIX "sh"
#define GUARD_TAP_SIZE   16 /* IFNAMSIZ: 15 bytes + NUL */
#define GUARD_MAC_STRLEN 18 /* "xx:xx:xx:xx:xx:xx" + NUL */

/* nft's priority of both chains: before any other bridge-family filter of
 * the default priority (-200) sees the frame. */
#define GUARD_PRIORITY (-300)

/* What guests reach on the host (issue 16): a second table, `table inet
 * shoal`, written in the same transaction as the bridge table, with a
 * chain on the input hook. IP that arrives for the host on the main bridge
 * or an overflow bridge ("BRIDGE", "BRIDGE.*": where a guest's traffic to
 * a local address enters the host) is accepted only when it is
 *   - part of a connection the host opened (ct state established,related:
 *     the published-port proxy connects from the host to guests),
 *   - DHCP to port 67 from port 68, when guard_set_host_dhcp(1) (default),
 *   - an ICMP echo request (ping of the gateway),
 * and counted and dropped otherwise: the API, other guests' published ports
 * on the bridge address (or on any other local address: the rule matches
 * the interface, not the destination), sshd, anything listening on
 * 0.0.0.0. ARP is not IP and is unaffected (the gateway answers). IPv6
 * never gets this far (the bridge table drops it). Routed traffic
 * (forward hook) is not touched: shoald sets up no routing or NAT. */
#define GUARD_INPUT_FAMILY   "inet"
#define GUARD_INPUT_PRIORITY (-10)

/* Status codes: 0 on success, one of these (negative) on failure. */
enum guard_status {
    GUARD_OK = 0,
    GUARD_E_INVAL = -1, /* bad id, tap, MAC or bridge name (message quotes it) */
    GUARD_E_NFT = -2,   /* nft could not be run or refused the change; message has
                           nft's own words */
    GUARD_E_NOMEM = -3, /* allocation failed */
};

/* What one guest port may send: one element in each set (none in addrs
 * when ipv4 is 0: such a guest may only use DHCP and ARP probes). */
struct guard_port {
    char tap[GUARD_TAP_SIZE];   /* port name, guard_tap_name() */
    char mac[GUARD_MAC_STRLEN]; /* guest MAC, lower case */
    uint32_t ipv4;              /* guest address (host byte order), 0: none */
};

/*
 * The tap name of instance `id`: "sh" + id when id is 12 hex digits (shoal's
 * instance ids, state.h STATE_ID_LEN), else "sh" + 12 hex digits of the
 * FNV-1a 64 hash of id (so any id gives a valid, stable name). Lower case.
 * Never starts with libvirt's reserved "vnet"/"macvtap"/"macvlan". Pure.
 */
void guard_tap_name(const char *id, char out[GUARD_TAP_SIZE]);

/*
 * Fill *p for instance `id` with guest MAC `mac` (unicast xx:xx:xx:xx:xx:xx,
 * any case) and address `ipv4` (host order, 0 for none). GUARD_E_INVAL with
 * the value quoted for a bad id or MAC, or an address of 0.0.0.0/8,
 * 127/8, multicast or 255.255.255.255. Pure.
 */
int guard_port_init(struct guard_port *p, const char *id, const char *mac, uint32_t ipv4, char *err,
                    size_t errlen);

/*
 * Pure renderers (the exact text given to `nft -f -`), for tests and for
 * operators who want to see it. Each stores a malloc'd NUL-terminated
 * script in *out (free()).
 *
 * guard_render_table: the transaction that replaces the whole table with
 * the rules above for main bridge `bridge` (its overflow links
 * "bridge.*" are exempt) and elements for ports[0..n). Atomic: `add table`
 * (so the delete cannot fail), `delete table`, then the definition.
 * guard_render_change: add (add = 1) or remove (add = 0) the elements of
 * ports[0..n). Removal is written as `add element` then `delete element` of
 * the same element, so that it succeeds whether or not the element was
 * there (nft 1.0.6 has no `destroy`).
 * GUARD_E_INVAL for a bad bridge name or port (message quotes it),
 * GUARD_E_NOMEM.
 */
int guard_render_table(const char *bridge, const struct guard_port *ports, size_t n, char **out,
                       char *err, size_t errlen);

/* Whether tables rendered from now on (in this process) let guests' DHCP
 * reach the host: 1 (default) with shoald's --dhcp on, 0 with it off.
 * Call before guard_open. */
void guard_set_host_dhcp(int on);
int guard_render_change(int add, const struct guard_port *ports, size_t n, char **out, char *err,
                        size_t errlen);

/* The table of one host's guest bridges. Opaque; thread-safe (see top). */
struct guard;

/*
 * Replace the table with one for main bridge `bridge` (1-15 of
 * [A-Za-z0-9_.-]) whose sets hold exactly ports[0..n): on a restart, the
 * guests that run. One transaction: frames are checked against either the
 * old or the new table, never neither. On success *out is the guard (free
 * with guard_close). GUARD_E_NFT when nft is missing or refuses (the
 * message says which, with nft's output), GUARD_E_INVAL, GUARD_E_NOMEM.
 */
int guard_open(const char *bridge, const struct guard_port *ports, size_t n, struct guard **out,
               char *err, size_t errlen);

/*
 * Allow port p: its elements are added (a port already present with other
 * values is replaced in the same transaction). Idempotent. Call before the
 * guest's tap can exist (before the domain is created): until then its
 * traffic is dropped. If nft fails because the table is gone (someone ran
 * `nft flush ruleset`), the whole table is written again from the ports
 * known here, with p. GUARD_E_NFT, GUARD_E_INVAL, GUARD_E_NOMEM; on failure
 * nothing changed.
 */
int guard_add(struct guard *g, const struct guard_port *p, char *err, size_t errlen);

/*
 * Forget the port named p->tap (its elements leave the sets: a tap of that
 * name could send nothing). Call after the guest's domain is gone. OK when
 * it was not there. GUARD_E_NFT if nft failed (the port stays known and is
 * removed again by the next guard_open or a later call).
 */
int guard_remove(struct guard *g, const char *tap, char *err, size_t errlen);

/*
 * Check that the tables are still in the kernel (`table bridge shoal` and
 * `table inet shoal`: one netlink request each, well under a millisecond
 * however many guests) and write both again from the ports known here if
 * either is not. *rebuilt = 1 when it was written. For a
 * periodic check against an operator's `nft flush ruleset`. GUARD_E_NFT if
 * the kernel could not be asked or the rewrite failed.
 */
int guard_verify(struct guard *g, int *rebuilt, char *err, size_t errlen);

/* Ports added by guard_add through the netfilter netlink batch, and those
 * that went through `nft -f -` instead (netlink refused or failed, or
 * SHOAL_GUARD_NETLINK=off), since guard_open. NULL g: both 0. */
void guard_stats(struct guard *g, uint64_t *netlink_adds, uint64_t *nft_fallbacks);

/* Number of ports known (what the sets hold). */
size_t guard_count(struct guard *g);

/* Free the guard's memory. The table stays in the kernel (guests outlive
 * shoald). NULL ok. */
void guard_close(struct guard *g);

#endif /* SHOAL_GUARD_H */
