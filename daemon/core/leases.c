/* leases.c - DHCP on the guest network: which leases dnsmasq gets (one per
 * networked instance row: its MAC, address and name), and when.
 *
 * Rows are made (instance.c create) and removed (delete) on API threads;
 * both only call fleet_dhcp_sync, which bumps a generation under mu and
 * wakes the supervisor. The list is written (every networked row read
 * from SQLite, then dhcp_set: file, rename, SIGHUP, dnsmasq's re-read) by
 *   - the supervisor (fleet_dhcp_tick), at most every
 *     FLEET_DHCP_DEBOUNCE_MS: a burst of creates or deletes costs one write;
 *   - a start job (fleet_dhcp_flush) before a networked guest starts, when
 *     the rows it may need are not written yet: a guest that asks for an
 *     address at boot always finds its lease. Concurrent flushes wait on
 *     dhcp_mu and find their generation written by the first.
 * Rows of every host are listed: instances elsewhere cannot reach this
 * bridge, addresses are unique fleet-wide, and a cold move then needs no
 * write. Cost of one write with 1,000 rows, measured here (Debug build):
 * ~1.5-2 ms to read the rows, ~0.8 ms to write the file, ~2 ms for dnsmasq
 * to re-read it: ~5 ms, off the create path. */
#include "fleet_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dhcp.h"
#include "log.h"

/* Every networked row's lease, in *out (free it). -1 with a message. */
static int list_leases(fleet *f, struct dhcp_lease **out, size_t *n, char *err, size_t errlen)
{
    state_instance *rows = NULL;
    size_t nrows = 0, k = 0;
    struct dhcp_lease *l;

    *out = NULL;
    *n = 0;
    if (state_inst_list(f->db, &rows, &nrows, err, errlen) != 0)
        return -1;
    l = calloc(nrows + 1, sizeof *l);
    if (!l) {
        state_inst_array_free(rows, nrows);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < nrows; i++) {
        if (!rows[i].network || !rows[i].mac[0] || !rows[i].ipv4)
            continue;
        snprintf(l[k].mac, sizeof l[k].mac, "%s", rows[i].mac);
        l[k].ipv4 = rows[i].ipv4;
        snprintf(l[k].hostname, sizeof l[k].hostname, "%s", rows[i].name);
        k++;
    }
    state_inst_array_free(rows, nrows);
    *out = l;
    *n = k;
    return 0;
}

int fleet_dhcp_open(fleet *f, char *err, size_t errlen)
{
    struct dhcp_lease *l = NULL;
    size_t n = 0;
    char dir[FLEET_PATH_MAX + 8];
    struct dhcp_config dc;
    int rc;

    if (strcmp(f->cfg.dhcp, "on")) {
        log_info("dhcp: off (--dhcp off): guests get their address from their command line only");
        return 0;
    }
    if (list_leases(f, &l, &n, err, errlen) != 0)
        return -1;
    snprintf(dir, sizeof dir, "%s/dhcp", f->cfg.state_dir);
    memset(&dc, 0, sizeof dc);
    dc.dir = dir;
    dc.interface = f->cfg.bridge;
    dc.subnet = f->cfg.subnet;
    dc.prefix = f->cfg.prefix;
    dc.gateway = f->gateway;
    dc.verbose = f->cfg.verbose;
    rc = dhcp_start(&dc, l, n, &f->dhcp, err, errlen);
    free(l);
    return rc == DHCP_OK ? 0 : -1;
}

void fleet_dhcp_close(fleet *f)
{
    dhcp_stop(f->dhcp);
    f->dhcp = NULL;
}

void fleet_dhcp_sync(fleet *f)
{
    if (!f->dhcp)
        return;
    pthread_mutex_lock(&f->mu);
    f->dhcp_gen++;
    pthread_mutex_unlock(&f->mu);
    fleet_wake_supervisor(f);
}

/* Write the list unless a write that began after generation `want` was
 * reached has done it. Takes dhcp_mu, then mu briefly. */
static void write_leases(fleet *f, uint64_t want)
{
    struct dhcp_lease *l = NULL;
    size_t n = 0;
    uint64_t gen;
    char err[512];
    int done;

    pthread_mutex_lock(&f->dhcp_mu);
    pthread_mutex_lock(&f->mu);
    gen = f->dhcp_gen;
    done = f->dhcp_done >= want;
    pthread_mutex_unlock(&f->mu);
    if (!done) {
        /* Rows made before gen was read are in this list. */
        if (list_leases(f, &l, &n, err, sizeof err) != 0 ||
            dhcp_set(f->dhcp, l, n, err, sizeof err) != DHCP_OK)
            log_warn("dhcp: lease list not updated: %s", err);
        free(l);
        /* Marked written even after a failure: a start must not wait on a
         * broken dnsmasq; the next change writes the whole list again. */
        pthread_mutex_lock(&f->mu);
        if (f->dhcp_done < gen)
            f->dhcp_done = gen;
        f->dhcp_last_ms = fleet_now_ms();
        pthread_mutex_unlock(&f->mu);
    }
    pthread_mutex_unlock(&f->dhcp_mu);
}

void fleet_dhcp_flush(fleet *f)
{
    uint64_t want;
    int done;

    if (!f->dhcp)
        return;
    pthread_mutex_lock(&f->mu);
    want = f->dhcp_gen;
    done = f->dhcp_done >= want;
    pthread_mutex_unlock(&f->mu);
    if (!done)
        write_leases(f, want);
}

int fleet_dhcp_tick(fleet *f, int64_t now)
{
    uint64_t want;
    int64_t due;
    int dirty;

    if (!f->dhcp)
        return -1;
    pthread_mutex_lock(&f->mu);
    want = f->dhcp_gen;
    dirty = f->dhcp_done < want;
    due = f->dhcp_last_ms + FLEET_DHCP_DEBOUNCE_MS;
    pthread_mutex_unlock(&f->mu);
    if (!dirty)
        return -1;
    if (now < due)
        return (int)(due - now);
    write_leases(f, want);
    return -1;
}
