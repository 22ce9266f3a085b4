/* isolation.c - the core's side of guest isolation (daemon/guard.h; docs/node.md
 * "Guest isolation"): which instances the bridge table allows, kept in step
 * with the runs.
 *
 * A networked instance is allowed (its tap name, MAC and IPv4 in the table)
 * from just before its domain is created until its run has ended, so its
 * tap is filtered from the first frame and a tap of that name can send
 * nothing once the run is over. Instances of every host are listed: the
 * table lives in this host's kernel only, and the tap name of an instance
 * on another machine never exists here (a libvirt daemon on this machine
 * that plugs its guests into the same bridge is thereby covered too). */
#include "fleet_int.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guard.h"
#include "log.h"

/* The guard port of a networked row; 0 if it has none (no network, no
 * address or MAC yet, or a guest on a remote host's network, isolated
 * there: hostnet.c). */
static int port_of(const fleet *f, const state_instance *in, struct guard_port *p, char *err,
                   size_t errlen)
{
    if (!in->network || !in->ipv4 || !in->mac[0] || fleet_net_remote_addr(f, in->ipv4))
        return 0;
    if (guard_port_init(p, fleet_run_id(in), in->mac, in->ipv4, err, errlen) != GUARD_OK)
        return -1;
    return 1;
}

int fleet_guard_open(fleet *f, char *err, size_t errlen)
{
    state_instance *rows = NULL;
    struct guard_port *ports = NULL;
    size_t nrows = 0, n = 0;
    char perr[256];
    int rc = -1;

    if (state_inst_list(f->db, &rows, &nrows, err, errlen) != 0)
        return -1;
    if (nrows && !(ports = calloc(nrows, sizeof *ports))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* The runs that may have a domain: the guests that kept running while
     * shoald was away. Reconcile adds any other it adopts, and the end of
     * each run that is gone removes its port. */
    for (size_t i = 0; i < nrows; i++) {
        if (!fleet_state_live(rows[i].state))
            continue;
        int k = port_of(f, &rows[i], &ports[n], perr, sizeof perr);
        if (k < 0)
            log_warn("instance %s: %s", rows[i].id, perr);
        n += k > 0;
    }
    /* guests' DHCP reaches the host only when shoald serves it (guard.h) */
    guard_set_host_dhcp(!strcmp(f->cfg.dhcp, "on"));
    if (guard_open(f->cfg.bridge, ports, n, &f->guard, err, errlen) != GUARD_OK)
        goto out;
    log_info("guest isolation: table " GUARD_FAMILY " " GUARD_TABLE " written for %zu running "
             "guest%s",
             n, n == 1 ? "" : "s");
    rc = 0;
out:
    free(ports);
    state_inst_array_free(rows, nrows);
    return rc;
}

int fleet_guard_add(fleet *f, const state_instance *in, char *tap, char *err, size_t errlen)
{
    struct guard_port p;
    int k;

    guard_tap_name(fleet_run_id(in), tap);
    if (!f->guard || (k = port_of(f, in, &p, err, errlen)) == 0)
        return 0;
    if (k < 0 || guard_add(f->guard, &p, err, errlen) != GUARD_OK)
        return -1;
    return 0;
}

void fleet_guard_remove(fleet *f, const char *id)
{
    char tap[GUARD_TAP_SIZE], err[1024];
    if (!f->guard)
        return;
    guard_tap_name(id, tap);
    if (guard_remove(f->guard, tap, err, sizeof err) != GUARD_OK)
        log_warn("instance %s: %s (removed at the next start of shoald)", id, err);
}

void fleet_guard_adopt(fleet *f, const state_instance *in)
{
    char tap[GUARD_TAP_SIZE], err[1024];
    if (!f->guard || !in->network || fleet_net_remote_addr(f, in->ipv4))
        return;
    if (fleet_guard_add(f, in, tap, err, sizeof err) != 0) {
        log_warn("instance %s: guest isolation: %s", in->id, err);
        return;
    }
    /* A guest started before shoald named taps has libvirt's vnetN,
     * which the table does not filter. */
    if (!strcmp(in->host, FLEET_LOCAL_HOST) && if_nametoindex(tap) == 0)
        log_warn("instance %s: its tap is not named '%s' (started by an older shoald?): its "
                 "traffic is not filtered until it restarts",
                 in->id, tap);
}

void fleet_guard_tick(fleet *f, int64_t now)
{
    char err[1024];
    int rebuilt = 0;
    if (!f->guard || now - f->guard_checked_ms < FLEET_GUARD_VERIFY_MS)
        return;
    f->guard_checked_ms = now;
    if (guard_verify(f->guard, &rebuilt, err, sizeof err) != GUARD_OK)
        log_warn("guest isolation: the table " GUARD_FAMILY " " GUARD_TABLE
                 " is gone and cannot be written again: %s",
                 err);
    else if (rebuilt)
        log_warn("guest isolation: the table " GUARD_FAMILY " " GUARD_TABLE
                 " was gone (nft flush ruleset?); written again for %zu guests",
                 guard_count(f->guard));
}

void fleet_tap_no_ipv6(const char *tap)
{
    static int warned;
    char path[80];
    if (!tap || !tap[0] || strchr(tap, '/'))
        return;
    snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", tap);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        /* ENOENT: a host without IPv6, whose taps send nothing of it. */
        if (errno != ENOENT && !warned++)
            log_warn("guest isolation: cannot turn IPv6 off on %s: %s", tap, strerror(errno));
        return;
    }
    if (write(fd, "1", 1) != 1 && !warned++)
        log_warn("guest isolation: cannot turn IPv6 off on %s: %s", tap, strerror(errno));
    close(fd);
}
