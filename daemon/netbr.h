/*
 * netbr.h - Linux bridges for guest networks, and guest MAC addresses.
 *
 * A shoal guest network is a Linux bridge with an IPv4 address on the host
 * side. libvirt creates one tap per guest and plugs it into the bridge
 * (<interface type='bridge'>, rendered by domxml.h), so this module only
 * manages the bridge itself.
 *
 * Implementation: runs iproute2's `ip` (found in PATH, falling back to
 * /sbin/ip and /usr/sbin/ip) through posix_spawn with an argv array - no
 * shell. Everything happens in the calling thread's network namespace, so a
 * caller (or a test) that setns(2)'d into a namespace manages bridges there.
 * Needs CAP_NET_ADMIN. Functions are blocking (a few ms each).
 */
#ifndef SHOAL_NETBR_H
#define SHOAL_NETBR_H

#include <stddef.h>
#include <stdint.h>

/* Status codes: 0 on success, one of these (negative) on failure. */
enum netbr_status {
    NETBR_OK = 0,
    NETBR_E_INVAL = -1,  /* bad name, address or prefix (message quotes it) */
    NETBR_E_EXISTS = -2, /* an interface of that name exists and is not a bridge */
    NETBR_E_IP = -3,     /* running `ip` failed; message has its stderr */
};

/* Locally administered, unicast MAC prefix for shoal guests: 5a:5c
 * (0x5a: locally-administered bit set, multicast bit clear; distinct from
 * libvirt's 52:54:00). The remaining 4 octets come from the seed. */
#define NETBR_MAC_PREFIX0 0x5a
#define NETBR_MAC_PREFIX1 0x5c
#define NETBR_MAC_STRLEN  18 /* "xx:xx:xx:xx:xx:xx" + NUL */

/*
 * Ensure bridge `name` exists, has IPv4 address `addr`/`prefix` and is up.
 * Idempotent: an existing bridge is kept (the address is added/replaced,
 * other addresses are left alone). name: 1-15 of [A-Za-z0-9_.-]; addr:
 * dotted quad; prefix 0-32.
 * Returns NETBR_OK or a negative netbr_status with a message in err.
 */
int netbr_create(const char *name, const char *addr, unsigned prefix, char *err, size_t errlen);

/*
 * Delete bridge `name`. Returns NETBR_OK also when it does not exist;
 * NETBR_E_EXISTS if `name` is an interface that is not a bridge (left alone).
 */
int netbr_delete(const char *name, char *err, size_t errlen);

/* 1 if a bridge called `name` exists in this network namespace, else 0. */
int netbr_exists(const char *name);

/*
 * Deterministic guest MAC from `seed` (e.g. the instance id): NETBR_MAC_PREFIX
 * followed by 32 bits of the FNV-1a hash of seed. Writes "5a:5c:xx:xx:xx:xx"
 * to out[NETBR_MAC_STRLEN]. Same seed, same MAC, on every host and run.
 * Collisions are possible (birthday bound ~77k guests for 50%); callers that
 * need uniqueness on one bridge check and re-seed (e.g. "id#1").
 */
void netbr_mac(const char *seed, char out[NETBR_MAC_STRLEN]);

#endif /* SHOAL_NETBR_H */
