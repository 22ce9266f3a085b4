/* metrics.c - counters for /metrics: instances by state, hosts, images,
 * the ready-time histogram kept by status.c, and the host's KSM. (Per-host
 * capacity figures come from fleet_host_list.) */
#include "fleet_int.h"

#include <string.h>

#include "guard.h"
#include "ksm.h"
#include "pool.h"
#include "nodestore.h"

int fleet_metrics_get(fleet *f, fleet_metrics *out, fleet_err *e)
{
    img_info *imgs = NULL;
    size_t nimg = 0;
    char err[256];

    struct ksm_stats ks;

    memset(out, 0, sizeof *out);
    ksm_read(&ks);
    out->ksm_available = ks.available;
    out->ksm_run = ks.run;
    out->ksm_pages_shared = ks.pages_shared;
    out->ksm_pages_sharing = ks.pages_sharing;
    out->ksm_profit = ks.general_profit;
    /* counted in SQLite: /metrics is polled, and rows cost O(fleet) */
    if (state_inst_count(f->db, out->by_state, err, sizeof err) != 0)
        return fleet_err_set(e, FLEET_E_INTERNAL, NULL, "%s", err);
    pthread_mutex_lock(&f->mu);
    out->hosts = f->nhosts;
    for (size_t i = 0; i < f->nhosts; i++)
        out->hosts_up += f->hosts[i]->up != 0;
    memcpy(out->ready_hist, f->ready_hist, sizeof out->ready_hist);
    out->ready_sum = f->ready_sum;
    out->ready_count = f->ready_count;
    pthread_mutex_unlock(&f->mu);
    fleet_probe_stats(f, out->by_health, &out->probe_checks, &out->probe_failures);
    fleet_pool_stats(f, &out->pool_claims, &out->pool_misses, &out->pool_ready, &out->pool_booting);
    guard_stats(f->guard, &out->guard_netlink_adds, &out->guard_nft_fallbacks);
    struct nstore_stats vs;
    nstore_stats_get(&vs);
    out->vol_uploads = vs.uploads;
    out->vol_upload_bytes = vs.upload_bytes;
    out->vol_hits = vs.hits;
    out->vol_removed = vs.removed;
    unsigned long long so, sf, sa;
    node_stream_counts(&so, &sf, &sa);
    out->serial_stream_opens = so;
    out->serial_stream_failures = sf;
    out->serial_stream_aborts = sa;
    if (fleet_image_rows(f, &imgs, &nimg, NULL) == FLEET_OK) {
        /* Rows are per name: count distinct digests. */
        for (size_t i = 0; i < nimg; i++) {
            int seen = 0;
            for (size_t j = 0; j < i && !seen; j++)
                seen = !strcmp(imgs[j].digest, imgs[i].digest);
            out->images += !seen;
        }
        img_list_free(imgs, nimg);
    }
    return FLEET_OK;
}
