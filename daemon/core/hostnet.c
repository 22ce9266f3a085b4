/* hostnet.c - guest networks on remote hosts (issue 17; nodenet.h,
 * docs/node.md "Remote hosts"): which subnet each remote host's guests get,
 * the host's libvirt network and guest filter made before a start there,
 * and each networked start's address in the subnet of the host it starts
 * on.
 *
 * Subnets: the local host's is --subnet (its bridge, netbr.h); each remote
 * host gets a /24 of --remote-subnets, gateway .1 on its network's bridge.
 * The host's network is where that choice lives: a host whose network
 * exists keeps its /24 (found again after a restart of shoald), a host
 * without one gets the lowest /24 no other host has and no instance's
 * address is in. The choice is cached in the host (net_gw).
 *
 * Addresses: a create gives a networked instance an address of the local
 * subnet (instance.c), or none when it is placed on a remote host. A start on a host whose subnet does not hold
 * the instance's address (placed on a remote host, moved or failed over to
 * another) first takes the lowest free address of that subnet, written to
 * its row (the unique index on addresses is the arbiter against a create
 * picking the same one in the local subnet: tried again then).
 *
 * Locks: net_mu (fleet_int.h LOCKS) serialises subnet choices and address
 * picks of starts; held across SQLite, never across a libvirt call (the
 * host's network is read before and made after; two starts making it at
 * once are fine: nodenet.h); net_mu > row_mu > mu. */
#include "fleet_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "netbr.h"
#include "nodenet.h"

#define NET_REMOTE_PREFIX 24

/* The netmask of a prefix; 0 for prefix 0 (remote networks off: rprefix
 * is 0 then, and a shift by 32 is undefined). */
static uint32_t mask_of(int prefix)
{
    return prefix > 0 ? 0xffffffffu << (32 - prefix) : 0;
}

int fleet_net_open(fleet *f, char *err, size_t errlen)
{
    uint32_t lmask = mask_of(f->cfg.prefix), rmask;

    if (!f->cfg.remote_nets[0]) /* a cfg_t not made by cfg_load */
        snprintf(f->cfg.remote_nets, sizeof f->cfg.remote_nets, "%s", CFG_DEFAULT_REMOTE_SUBNETS);
    if (cfg_parse_cidr(f->cfg.remote_nets, &f->rnet, &f->rprefix) != 0 ||
        f->rprefix > NET_REMOTE_PREFIX) {
        snprintf(err, errlen, "--remote-subnets '%s': not a CIDR of prefix 8..24",
                 f->cfg.remote_nets);
        return -1;
    }
    rmask = mask_of(f->rprefix);
    /* the shorter prefix's mask decides whether one holds the other */
    if (f->gateway && (f->rnet & (lmask & rmask)) == (f->cfg.subnet & (lmask & rmask))) {
        /* the default, not asked for: a --subnet that was fine before
         * still starts; only remote hosts' networks are off */
        if (!strcmp(f->cfg.remote_nets, CFG_DEFAULT_REMOTE_SUBNETS)) {
            log_warn("--remote-subnets %s (the default) overlaps --subnet: guests on remote "
                     "hosts get no network until --remote-subnets names another range",
                     f->cfg.remote_nets);
            f->rnet = 0;
            f->rprefix = 0;
            return 0;
        }
        snprintf(err, errlen, "--remote-subnets '%s' overlaps the guest subnet (--subnet)",
                 f->cfg.remote_nets);
        return -1;
    }
    return 0;
}

int fleet_net_remote_addr(const fleet *f, uint32_t addr)
{
    return f->rprefix && addr && (addr & mask_of(f->rprefix)) == f->rnet;
}

void fleet_network(const fleet *f, uint32_t addr, uint32_t *gateway, int *prefix)
{
    uint32_t rmask = mask_of(f->rprefix);
    if (f->rprefix && (addr & rmask) == f->rnet) {
        *gateway = (addr & mask_of(NET_REMOTE_PREFIX)) + 1;
        *prefix = NET_REMOTE_PREFIX;
        return;
    }
    *gateway = f->gateway;
    *prefix = f->cfg.prefix;
}

void fleet_net_subnet(const fleet *f, const fleet_host *h, char *buf, size_t len)
{
    char ip[16];
    buf[0] = '\0';
    if (!f->gateway)
        return;
    if (h->net_gw) /* remote, chosen */
        snprintf(buf, len, "%s/%d", cfg_ip4_str(h->net_gw - 1, ip), NET_REMOTE_PREFIX);
    else if (h->node && !node_remote(h->node)) /* this machine's bridge */
        snprintf(buf, len, "%s/%d", cfg_ip4_str(f->cfg.subnet, ip), f->cfg.prefix);
}

int fleet_host_is_remote(fleet *f, const char *name)
{
    fleet_host *h = NULL;
    struct node *node = fleet_host_node(f, name, &h);
    int remote = node && node_remote(node);
    fleet_host_release(f, h);
    return remote;
}

/* 0 when a host network's gateway hgw/prefix is one shoald uses (a /24 of
 * --remote-subnets, gateway .1) and no other host has it; else -1 with a
 * message. Under mu. */
static int net_valid(const fleet *f, const fleet_host *h, uint32_t hgw, int prefix, char *err,
                     size_t errlen)
{
    uint32_t m24 = mask_of(NET_REMOTE_PREFIX), hmask = mask_of(f->rprefix);
    char ip[16];

    if (prefix != NET_REMOTE_PREFIX || (hgw & hmask) != f->rnet || (hgw & ~m24) != 1) {
        snprintf(err, errlen,
                 "host '%s' has a libvirt network '%s' at %s/%d: shoald uses a /24 of "
                 "--remote-subnets '%s' with the gateway at .1 (remove that network on the "
                 "host if no guest uses it)",
                 h->name, NNET_NETWORK, cfg_ip4_str(hgw, ip), prefix, f->cfg.remote_nets);
        return -1;
    }
    /* two hosts, one subnet (a network made by hand): routing cannot tell them apart */
    for (size_t i = 0; i < f->nhosts; i++) {
        if (f->hosts[i] != h && f->hosts[i]->net_gw && (f->hosts[i]->net_gw & m24) == (hgw & m24)) {
            snprintf(err, errlen, "host '%s' has the guest subnet %s/24 of host '%s'", h->name,
                     cfg_ip4_str(hgw & m24, ip), f->hosts[i]->name);
            return -1;
        }
    }
    return 0;
}

void fleet_net_learn(fleet *f, fleet_host *h, struct node *node)
{
    uint32_t hgw = 0;
    int found = 0, prefix = 0;
    char err[NODE_ERR_MAX] = "";

    if (!f->gateway || !f->rprefix || !node_remote(node))
        return;
    if (node_net_get(node, &found, &hgw, &prefix, err, sizeof err) == NODE_OK && found) {
        pthread_mutex_lock(&f->net_mu);
        pthread_mutex_lock(&f->mu);
        if (net_valid(f, h, hgw, prefix, err, sizeof err) == 0)
            h->net_gw = hgw;
        pthread_mutex_unlock(&f->mu);
        pthread_mutex_unlock(&f->net_mu);
    }
    if (err[0]) /* the next networked start there fails with it */
        log_warn("host %s: guest network: %s", h->name, err);
}

/* The /24 of a remote host h: its network's (found: hgw/prefix, as read
 * from the host), else a new one. Under net_mu. */
static int host_subnet(fleet *f, fleet_host *h, int found, uint32_t hgw, int prefix, uint32_t *gw,
                       char *err, size_t errlen)
{
    uint32_t m24 = mask_of(NET_REMOTE_PREFIX);
    uint32_t n24 = 1u << (32 - f->rprefix - (32 - NET_REMOTE_PREFIX)), pick = 0;
    uint32_t lmask = mask_of(f->cfg.prefix);
    int rc = -1;
    state_instance *rows = NULL;
    size_t nrows = 0;
    char ip[16];

    if (state_inst_list(f->db, &rows, &nrows, err, errlen) != 0)
        return -1;
    pthread_mutex_lock(&f->mu);
    if (h->net_gw) { /* chosen meanwhile by another start */
        *gw = h->net_gw;
        pthread_mutex_unlock(&f->mu);
        rc = 0;
        goto out;
    }
    if (found && net_valid(f, h, hgw, prefix, err, errlen) != 0) {
        pthread_mutex_unlock(&f->mu);
        goto out;
    }
    if (found)
        pick = hgw & m24;
    for (uint32_t k = 0; !found && k < n24; k++) {
        uint32_t net = f->rnet + (k << (32 - NET_REMOTE_PREFIX));
        int used = (net & lmask) == (f->cfg.subnet & lmask) && f->gateway;
        for (size_t i = 0; !used && i < f->nhosts; i++)
            used = f->hosts[i] != h && f->hosts[i]->net_gw && (f->hosts[i]->net_gw & m24) == net;
        /* a down host's guests keep their addresses */
        for (size_t r = 0; !used && r < nrows; r++)
            used = rows[r].ipv4 && (rows[r].ipv4 & m24) == net && strcmp(rows[r].host, h->name);
        if (!used) {
            pick = net;
            found = 1;
        }
    }
    if (found)
        h->net_gw = pick + 1;
    pthread_mutex_unlock(&f->mu);
    if (!found) {
        snprintf(err, errlen, "no /24 of --remote-subnets '%s' left for host '%s'",
                 f->cfg.remote_nets, h->name);
        goto out;
    }
    *gw = pick + 1;
    log_info("host %s: guest network %s/24, gateway .1 on its bridge %s (this machine routes "
             "it via the host)",
             h->name, cfg_ip4_str(pick, ip), NNET_BRIDGE);
    rc = 0;
out:
    state_inst_array_free(rows, nrows);
    return rc;
}

static void set_ipv4_fn(state_instance *in, void *ctx)
{
    in->ipv4 = *(const uint32_t *)ctx;
}

static int in_list(const uint32_t *v, size_t n, uint32_t a)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == a)
            return 1;
    return 0;
}

/* The lowest free address of gw's subnet for in, written to its row;
 * addresses of avoid[0..navoid) (a remote host's leases to other MACs)
 * only when no other is free. Under net_mu. */
static int pick_address(fleet *f, state_instance *in, uint32_t gw, int prefix,
                        const uint32_t *avoid, size_t navoid, char *err, size_t errlen)
{
    uint32_t mask = mask_of(prefix), net = gw & mask, bcast = net | ~mask;

    for (int attempt = 0; attempt < 3; attempt++) {
        size_t nused = 0, k = 0;
        uint32_t a = net + 1, *used = NULL;
        /* the subnet's addresses in use, sorted: one pass finds the lowest
         * free (from the index: a start must not read every row) */
        if (state_addrs_in(f->db, net, bcast, &used, &nused, err, errlen) != 0)
            return -1;
        for (int pass = navoid ? 0 : 1; pass < 2; pass++) {
            for (a = net + 1, k = 0; a < bcast; a++) {
                while (k < nused && used[k] < a)
                    k++;
                if (a != gw && (k == nused || used[k] != a) && (pass || !in_list(avoid, navoid, a)))
                    break;
            }
            if (a < bcast)
                break;
        }
        free(used);
        if (a >= bcast) {
            char ip[16];
            snprintf(err, errlen, "guest subnet %s/%d has no free address", cfg_ip4_str(net, ip),
                     prefix);
            return -1;
        }
        /* a create may have taken it since: the unique index refuses */
        if (fleet_mutate(f, in->id, set_ipv4_fn, &a) == 0) {
            char ip[16];
            log_info("instance %s: address %s on host %s", in->id, cfg_ip4_str(a, ip), in->host);
            in->ipv4 = a;
            fleet_dhcp_sync(f);
            return 0;
        }
    }
    snprintf(err, errlen, "cannot give instance %s an address on host '%s'", in->id, in->host);
    return -1;
}

/* in's static DHCP entry on its remote host, marked first (reconcile
 * keeps a marked one). A host that cannot have it (no dnsmasq there) only
 * costs the guests that ask for their address by DHCP: logged, the start
 * goes on. */
static void dhcp_put(fleet *f, fleet_host *h, struct node *node, const state_instance *in)
{
    struct nnet_host e;
    fleet_rt *rt;
    char err[NODE_ERR_MAX];
    int rc, warned;

    if (!in->mac[0])
        return;
    memset(&e, 0, sizeof e);
    snprintf(e.mac, sizeof e.mac, "%s", in->mac);
    e.ip = in->ipv4;
    snprintf(e.name, sizeof e.name, "%s", in->name);
    pthread_mutex_lock(&f->mu);
    if ((rt = fleet_rt_get(f, in->id)))
        rt->dhcp_entry = 1;
    pthread_mutex_unlock(&f->mu);
    rc = node_net_dhcp_put(node, &e, err, sizeof err);
    pthread_mutex_lock(&f->mu);
    warned = h->dhcp_failing;
    h->dhcp_failing = rc != NODE_OK;
    pthread_mutex_unlock(&f->mu);
    if (rc != NODE_OK && !warned)
        log_warn("host %s: instance %s gets no address by DHCP there (needs dnsmasq on the host, "
                 "Debian: dnsmasq-base; not warned again until an entry is written): %s",
                 h->name, in->id, err);
    else if (rc != NODE_OK)
        log_debug("host %s: instance %s: no DHCP entry: %s", h->name, in->id, err);
}

int fleet_net_prepare(fleet *f, fleet_host *h, struct node *node, state_instance *in, uint32_t *gw,
                      int *prefix, char *err, size_t errlen)
{
    int rc = 0;

    err[0] = '\0';
    *gw = f->gateway;
    *prefix = f->cfg.prefix;
    if (!node_remote(node)) {
        uint32_t mask = mask_of(*prefix);
        if (in->ipv4 && (in->ipv4 & mask) == f->cfg.subnet && in->ipv4 != *gw)
            return 0; /* the common case: no lock */
        pthread_mutex_lock(&f->net_mu);
        rc = pick_address(f, in, *gw, *prefix, NULL, 0, err, errlen);
        pthread_mutex_unlock(&f->net_mu);
        return rc;
    }
    if (!f->rprefix) {
        snprintf(err, errlen,
                 "host '%s': no guest network on remote hosts: --remote-subnets overlaps "
                 "--subnet (name another range, or run it with \"network\": false)",
                 h->name);
        return -1;
    }
    /* No libvirt call under net_mu: a hung host must not hold up starts
     * on the others. */
    pthread_mutex_lock(&f->mu);
    *gw = h->net_gw;
    pthread_mutex_unlock(&f->mu);
    *prefix = NET_REMOTE_PREFIX;
    if (!*gw) {
        uint32_t hgw = 0;
        int found = 0, hprefix = 0;
        if (node_net_get(node, &found, &hgw, &hprefix, err, errlen) != NODE_OK)
            rc = -1;
        pthread_mutex_lock(&f->net_mu);
        if (rc == 0 && host_subnet(f, h, found, hgw, hprefix, gw, err, errlen) != 0)
            rc = -1;
        pthread_mutex_unlock(&f->net_mu);
    }
    /* each start: an operator's net-destroy, a host's restart */
    if (rc == 0 && node_net_ensure(node, *gw, *prefix, err, errlen) != NODE_OK)
        rc = -1;
    if (rc != 0) {
        char why[NODE_ERR_MAX];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "host '%s': guest network: %s", h->name, why);
        return -1;
    }
    if (!in->ipv4 || (in->ipv4 & 0xffffff00u) != (*gw & 0xffffff00u) || in->ipv4 == *gw) {
        uint32_t *leased = NULL;
        size_t nleased = 0;
        char lerr[NODE_ERR_MAX];
        /* read before net_mu: a libvirt call */
        if (node_net_dhcp_leased(node, in->mac, &leased, &nleased, lerr, sizeof lerr) != NODE_OK)
            log_warn("host %s: %s", h->name, lerr);
        pthread_mutex_lock(&f->net_mu);
        rc = pick_address(f, in, *gw, *prefix, leased, nleased, err, errlen);
        pthread_mutex_unlock(&f->net_mu);
        free(leased);
    }
    if (rc == 0)
        dhcp_put(f, h, node, in);
    return rc;
}

void fleet_net_dhcp_drop(fleet *f, const state_instance *in)
{
    fleet_host *h = NULL;
    struct node *node;
    fleet_rt *rt;
    char err[NODE_ERR_MAX];

    if (!in->network || !in->mac[0] || !fleet_net_remote_addr(f, in->ipv4))
        return;
    pthread_mutex_lock(&f->mu);
    /* an adopted guest's entry has no mark: deleted all the same */
    if ((rt = fleet_rt_find(f, in->id)))
        rt->dhcp_entry = 0;
    pthread_mutex_unlock(&f->mu);
    node = fleet_host_node(f, in->host, &h);
    if (node && node_remote(node) && node_net_dhcp_del(node, in->mac, err, sizeof err) != NODE_OK)
        log_warn("instance %s: its DHCP entry on host %s stays until the host is reconciled: %s",
                 in->id, in->host, err);
    fleet_host_release(f, h);
}

static int dom_found(const struct node_dom *doms, size_t ndoms, const char *id)
{
    for (size_t d = 0; d < ndoms; d++)
        if (!strcmp(doms[d].instance_id, id))
            return 1;
    return 0;
}

void fleet_net_dhcp_sync(fleet *f, fleet_host *h, struct node *node, const struct node_dom *doms,
                         size_t ndoms)
{
    struct nnet_host *have = NULL, *want = NULL;
    state_instance *rows = NULL;
    size_t nhave = 0, nrows = 0, nwant = 0;
    unsigned added = 0, removed = 0;
    char err[NODE_ERR_MAX], ours[8];

    if (!f->gateway || !f->rprefix || !node_remote(node))
        return;
    /* The entries first, then the marks: an entry a start writes after this
     * read is not seen, and one written before it has its mark set. */
    if (node_net_dhcp_list(node, &have, &nhave, err, sizeof err) != NODE_OK) {
        log_warn("host %s: DHCP entries not reconciled: %s", h->name, err);
        return;
    }
    if (state_inst_list(f->db, &rows, &nrows, err, sizeof err) != 0) {
        log_warn("host %s: DHCP entries not reconciled: %s", h->name, err);
        goto out;
    }
    if (!(want = calloc(nrows + 1, sizeof *want)))
        goto out;
    pthread_mutex_lock(&f->mu);
    for (size_t r = 0; r < nrows; r++) {
        const state_instance *row = &rows[r];
        fleet_rt *rt = fleet_rt_find(f, row->id);
        if (strcmp(row->host, h->name) || !row->network || !row->mac[0] ||
            !fleet_net_remote_addr(f, row->ipv4))
            continue;
        if (!dom_found(doms, ndoms, fleet_run_id(row)) && !(rt && rt->dhcp_entry))
            continue;
        snprintf(want[nwant].mac, sizeof want[nwant].mac, "%s", row->mac);
        want[nwant].ip = row->ipv4;
        snprintf(want[nwant].name, sizeof want[nwant].name, "%s", row->name);
        nwant++;
    }
    pthread_mutex_unlock(&f->mu);
    snprintf(ours, sizeof ours, "%02x:%02x:", NETBR_MAC_PREFIX0, NETBR_MAC_PREFIX1);
    for (size_t i = 0; i < nhave; i++) {
        /* not a shoal MAC: the operator's entry in their own network */
        int keep = strncasecmp(have[i].mac, ours, strlen(ours)) != 0;
        for (size_t w = 0; w < nwant && !keep; w++)
            keep = !strcasecmp(have[i].mac, want[w].mac) && have[i].ip == want[w].ip;
        if (keep)
            continue;
        if (node_net_dhcp_del(node, have[i].mac, err, sizeof err) == NODE_OK)
            removed++;
        else
            log_warn("host %s: %s", h->name, err);
    }
    for (size_t w = 0; w < nwant; w++) {
        int there = 0;
        for (size_t i = 0; i < nhave && !there; i++)
            there = !strcasecmp(have[i].mac, want[w].mac) && have[i].ip == want[w].ip;
        if (there)
            continue;
        if (node_net_dhcp_put(node, &want[w], err, sizeof err) == NODE_OK)
            added++;
        else
            log_warn("host %s: %s", h->name, err);
    }
    if (added || removed)
        log_info("host %s: DHCP entries reconciled: %u added, %u removed, %zu in place", h->name,
                 added, removed, nwant);
out:
    free(want);
    free(have);
    state_inst_array_free(rows, nrows);
}

void fleet_net_host_removed(fleet *f, fleet_host *h)
{
    char err[NODE_ERR_MAX];
    int removed = 0, up;

    pthread_mutex_lock(&f->mu);
    up = h->up && h->node && node_remote(h->node);
    pthread_mutex_unlock(&f->mu);
    if (!up)
        return; /* a host down keeps it: remove it there by hand */
    if (node_net_remove(h->node, &removed, err, sizeof err) != NODE_OK)
        log_warn("host %s: guest network not removed: %s", h->name, err);
    else if (removed)
        log_info("host %s: libvirt network '%s' and filter '%s' removed", h->name, NNET_NETWORK,
                 NNET_FILTER);
}
