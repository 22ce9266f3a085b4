/*
 * netbr.h - Linux bridges for guest networks, and guest MAC addresses.
 *
 * A shoal guest network is a Linux bridge with an IPv4 address on the host
 * side. libvirt creates one tap per guest and plugs it into the bridge
 * (<interface type='bridge'>, rendered by domxml.h), so this module only
 * manages bridges, never taps.
 *
 * One bridge holds at most NETBR_PORTS_MAX ports (measured on this kernel,
 * 6.18: the 1,024th `ip link set ... master` fails with EXFULL, "Exchange
 * full"). Beyond that a *bridge set* (netbr_set_*) adds overflow bridges:
 *
 *     shoal0       the main bridge: the gateway address, guests, and one
 *                  port per overflow bridge (its link)
 *     shoal0.1     overflow bridge 1: no address; guests and its link
 *     shoal0.1-m   veth, port of shoal0   } the link: a veth pair joining
 *     shoal0.1-o   veth, port of shoal0.1 } shoal0.1 to shoal0
 *     shoal0.2 ... up to NETBR_OVERFLOW_MAX, each linked to the main bridge
 *
 * A star of bridges is one L2 segment: the subnet, the gateway, static
 * guest addresses and published ports do not depend on which bridge a
 * guest's tap is in, so a guest may land on another bridge at every start.
 * Overflow bridges copy the main bridge's forwarding settings (stp_state,
 * forward_delay, hello_time, max_age, ageing_time) and its links its MTU.
 * Only the main bridge has an address: overflow bridges and links are
 * created with `addrgenmode none` (no IPv6 link-local address either).
 *
 * Implementation: runs iproute2's `ip` (found in PATH, falling back to
 * /sbin/ip and /usr/sbin/ip) through child.h's child_run (posix_spawn, an
 * argv array, no shell) to change links, and reads them with one rtnetlink dump
 * (RTM_GETLINK), never through /sys (whose view is the namespace sysfs was
 * mounted in). Everything happens in the calling thread's network
 * namespace, so a caller (or a test) that setns(2)'d into a namespace
 * manages bridges there. Needs CAP_NET_ADMIN. Functions are blocking: an
 * `ip` command takes a few ms, a link dump ~20 ms with 2,000 links, a pick
 * that creates an overflow bridge (~8 commands) ~150 ms (measured here).
 */
#ifndef SHOAL_NETBR_H
#define SHOAL_NETBR_H

#include <stddef.h>
#include <stdint.h>

/* Status codes: 0 on success, one of these (negative) on failure. */
enum netbr_status {
    NETBR_OK = 0,
    NETBR_E_INVAL = -1,  /* bad name, address, prefix, MAC or limit (message quotes it) */
    NETBR_E_EXISTS = -2, /* an interface of that name exists and is not a bridge */
    NETBR_E_IP = -3,     /* running `ip` or reading links failed; message says why */
    NETBR_E_FULL = -4,   /* every bridge of the set is full; message names the limit
                            and the way round it */
};

/* Locally administered, unicast MAC prefix for shoal guests: 5a:5c
 * (0x5a: locally-administered bit set, multicast bit clear; distinct from
 * libvirt's 52:54:00). The remaining 4 octets come from the seed. */
#define NETBR_MAC_PREFIX0 0x5a
#define NETBR_MAC_PREFIX1 0x5c
#define NETBR_MAC_STRLEN  18 /* "xx:xx:xx:xx:xx:xx" + NUL */

/* Interface names: at most 15 bytes (IFNAMSIZ - 1) + NUL. */
#define NETBR_NAME_SIZE 16

/* Ports one Linux bridge takes: BR_MAX_PORTS is 1,024 and port number 0 is
 * not used, so ports 1..1023. */
#define NETBR_PORTS_MAX 1023
/* Overflow bridges per main bridge (two digits in the names). The main
 * bridge keeps a port free for each one's link, so a set takes at most
 * (NETBR_PORTS_MAX - NETBR_OVERFLOW_MAX) + NETBR_OVERFLOW_MAX *
 * (NETBR_PORTS_MAX - 1) = 960 + 63 * 1022 = 65,346 guests, about a /16. */
#define NETBR_OVERFLOW_MAX 63
/* Longest main bridge name overflow names derive from: 15 bytes minus the
 * longest suffix, ".63-m". A longer name works as a single bridge. */
#define NETBR_OVERFLOW_BASE_MAX 10
/* A picked port counts as taken until a port with the guest's MAC appears
 * on one of the set's bridges, or for this long (the start failed). */
#define NETBR_PENDING_MS 120000
/* A pick counts the kernel's ports again (one dump of every link in the
 * namespace) when its last count is this old, or when the ports counted
 * then plus the picks made since would leave fewer than
 * NETBR_RECOUNT_SLACK free on the main bridge. Between counts a pick adds
 * one to the last count: ports can only come from picks (which it counts)
 * or from someone else (whom the slack covers) and leave (which only makes
 * the estimate high). At 900 guests a count took ~5 ms of shoald's CPU
 * (docs/node.md "Starts at scale"). */
#define NETBR_RECOUNT_MS    2000
#define NETBR_RECOUNT_SLACK 32

/*
 * Ensure bridge `name` exists, has IPv4 address `addr`/`prefix` and is up.
 * Idempotent: an existing bridge is kept (the address is added/replaced,
 * other addresses are left alone). The bridge's MAC is pinned to its current
 * value (`ip link set address`), so it no longer follows the lowest MAC of
 * its ports as a Linux bridge's does by default: the gateway's MAC, which
 * guests cache, stays the same while taps and links come and go.
 * name: 1-15 of [A-Za-z0-9_.-]; addr: dotted quad; prefix 0-32.
 * Returns NETBR_OK or a negative netbr_status with a message in err.
 */
int netbr_create(const char *name, const char *addr, unsigned prefix, char *err, size_t errlen);

/*
 * Delete bridge `name`, and the overflow bridges and links of a set whose
 * main bridge it is (names from netbr_overflow_names, k = 1 ..
 * NETBR_OVERFLOW_MAX; an interface of such a name that is not of the right
 * kind is left alone). Returns NETBR_OK also when it does not exist;
 * NETBR_E_EXISTS if `name` is an interface that is not a bridge (left alone).
 */
int netbr_delete(const char *name, char *err, size_t errlen);

/* 1 if a bridge called `name` exists in this network namespace, else 0. */
int netbr_exists(const char *name);

/* The three interfaces of overflow bridge k of main bridge `bridge`. */
struct netbr_names {
    char bridge[NETBR_NAME_SIZE];    /* "B.k": the overflow bridge */
    char link_main[NETBR_NAME_SIZE]; /* "B.k-m": veth end, port of B */
    char link_over[NETBR_NAME_SIZE]; /* "B.k-o": veth end, port of B.k */
};

/*
 * Names of overflow bridge k (1..NETBR_OVERFLOW_MAX) of `bridge`. Pure.
 * NETBR_E_INVAL if bridge is not a valid name, is longer than
 * NETBR_OVERFLOW_BASE_MAX (message quotes it and says so) or k is out of
 * range.
 */
int netbr_overflow_names(const char *bridge, unsigned k, struct netbr_names *out, char *err,
                         size_t errlen);

/* A main bridge and its overflow bridges. Opaque; thread-safe (one mutex
 * inside, held across the `ip` commands of a pick; a leaf lock). */
struct netbr_set;

/*
 * Open the set of main bridge `name`: netbr_create(name, addr, prefix),
 * then repair every overflow bridge that exists already (a restart): its
 * settings copied again from the main bridge, its link re-created or
 * re-attached if missing. Bridges are never deleted here.
 *   ports_per_bridge  ports each bridge may take, 2..NETBR_PORTS_MAX
 *                     (NETBR_PORTS_MAX in production, small in tests)
 *   max_overflow      overflow bridges allowed, 0..NETBR_OVERFLOW_MAX and
 *                     at most ports_per_bridge. The main bridge keeps that
 *                     many ports for links, so it takes at most
 *                     ports_per_bridge - max_overflow guests. If `name` is
 *                     longer than NETBR_OVERFLOW_BASE_MAX it is treated as 0
 *                     (the set is one bridge; netbr_set_pick says why when
 *                     it is full).
 * On success *out is the set (free with netbr_set_close). Errors as
 * netbr_create, or NETBR_E_INVAL for a bad limit, NETBR_E_IP when a repair
 * failed.
 */
int netbr_set_open(const char *name, const char *addr, unsigned prefix, unsigned ports_per_bridge,
                   unsigned max_overflow, struct netbr_set **out, char *err, size_t errlen);

/*
 * Choose the bridge for the tap of a guest with MAC `mac` about to start:
 * the main bridge if it has a free guest port, else the lowest-numbered
 * overflow bridge with a free port (repaired first if its link is broken),
 * else a new overflow bridge with the lowest free number, created with its
 * link. Ports are counted from the kernel's links, plus picks whose tap has
 * not appeared yet (matched by MAC: libvirt gives the tap the guest's MAC
 * with the first octet changed; NETBR_PENDING_MS at most), so concurrent
 * picks never hand out the same last port. The count is taken again only
 * as NETBR_RECOUNT_MS and NETBR_RECOUNT_SLACK say: between counts the main
 * bridge is picked from the last count and the picks since. A number whose names
 * are taken by interfaces of another kind is skipped.
 * On NETBR_OK, *bridge points to the chosen name, valid until
 * netbr_set_close. NETBR_E_FULL when every bridge is full (the message
 * names the limit, and says when the name is too long to derive overflow
 * bridges from), NETBR_E_INVAL for a bad MAC, NETBR_E_IP if the main bridge
 * is gone or an `ip` command failed.
 */
int netbr_set_pick(struct netbr_set *s, const char *mac, const char **bridge, char *err,
                   size_t errlen);

/* Full counts of the kernel's ports the set's picks have made. */
unsigned long netbr_set_recounts(struct netbr_set *s);

/* Main bridge name of the set. */
const char *netbr_set_name(const struct netbr_set *s);

/* Free the set's memory. The bridges stay (guests outlive shoald); NULL ok. */
void netbr_set_close(struct netbr_set *s);

/*
 * Deterministic guest MAC from `seed` (e.g. the instance id): NETBR_MAC_PREFIX
 * followed by 32 bits of the FNV-1a hash of seed. Writes "5a:5c:xx:xx:xx:xx"
 * to out[NETBR_MAC_STRLEN]. Same seed, same MAC, on every host and run.
 * Collisions are possible (birthday bound ~77k guests for 50%); callers that
 * need uniqueness on one bridge check and re-seed (e.g. "id#1").
 */
void netbr_mac(const char *seed, char out[NETBR_MAC_STRLEN]);

#endif /* SHOAL_NETBR_H */
