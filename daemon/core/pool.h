/* pool.h - warm pools (issue 15; docs/shoald.md "Warm pools"): guests of
 * an image created and booted ahead of any request, each waiting for one
 * instance's configuration; a create whose options match takes one instead
 * of starting a domain.
 *
 * A pool guest is given an instance id before it exists (random, like any
 * instance's), and its domain name, tap, MAC, console and status files
 * derive from that id exactly as an instance's do. A create that claims it
 * makes its instance row with that id, so nothing downstream (run.c, stop,
 * delete, reconcile, events) knows a pooled instance from a cold one; only
 * the first start of the row sends the configuration record
 * (fleet_pool_handover) instead of creating the domain. Pool guests have no
 * rows: they are never adopted across restarts (reconcile destroys a
 * leftover one as unknown) and never reused after an instance ends (an
 * instance's later runs are cold starts of its own domain).
 *
 * Protocol (docs/guest-protocol.md "Warm pool hand-over"): the guest boots with
 * `shoal.pool=1`, writes `shoal-status pool-wait boot_us=N` on its status
 * channel, and reads `shoal-config <N>\n` + N bytes from COM1, its
 * console (a Unix socket QEMU listens on and logs the guest's output from
 * to the console file), answers `shoal-config ok\n` (or `shoal-config
 * error <reason>\n`) there and then runs like a cold-started guest.
 *
 * THREADS AND LOCK: a manager thread (pool.c) keeps every image's pool
 * filled on the local host: it reads the wanted sizes from the image
 * store, starts guests (a placement check under place_mu, the domain's
 * creation with no lock held) one at a time, and destroys guests that are
 * surplus, failed, evicted for a create or of a deleted image. A watcher
 * thread notices booting guests' pool-wait record and connects their
 * console socket, every FLEET_POOL_BOOT_TICK_MS while one boots, so that
 * a start in progress never delays a guest that could be claimed. pool.mu guards the table
 * below; it is a leaf (place_mu > row_mu > mu > pool.mu), never held
 * across libvirt, SQLite, file or socket I/O. A guest is handed out by
 * flipping it to POOL_G_CLAIMED under pool.mu (pool_tab_claim), so two
 * concurrent creates can never take the same one; from then on only the
 * start job of its instance touches it (fleet_pool_handover), and the
 * manager leaves it alone.
 */
#ifndef SHOAL_POOL_H
#define SHOAL_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "boot.h"
#include "fleet_int.h"
#include "gstatus.h"
#include "img_store.h"

#define FLEET_POOL_MAX           256   /* pool guests per shoald, all images */
#define FLEET_POOL_TICK_MS       200   /* the manager's period (woken sooner by a claim) */
#define FLEET_POOL_BOOT_TICK_MS  20    /* ... while a guest boots (its status file is read) */
#define FLEET_POOL_ROOM_RETRY_MS 1000  /* a full host is asked again after this */
#define FLEET_POOL_WANT_MS       2000  /* wanted sizes re-read from the store this often */
#define FLEET_POOL_BOOT_MS       30000 /* a guest not waiting after this is destroyed */
#define FLEET_POOL_HANDOVER_MS   3000  /* the guest's answer to its record, at most */
#define FLEET_POOL_RECORD_MAX    8192  /* longest configuration record (the guest's bound) */
#define FLEET_POOL_REFILL_NICE   19 /* a pool guest's QEMU until claimed (SHOAL_POOL_REFILL_NICE) */
#define FLEET_POOL_LINE          "shoal.pool=1" /* a pool guest's whole command line */

/* ---- the table (pool_tab.c): pure, no I/O; the caller holds pool.mu ---- */

typedef enum {
    POOL_G_BOOTING = 0, /* its start was decided (domain being created or booting) */
    POOL_G_READY,       /* it wrote pool-wait and its console is connected */
    POOL_G_CLAIMED,     /* a create took it: its instance's start job owns it */
    POOL_G_DOOMED,      /* to be destroyed by the manager (surplus, failed,
                           evicted, image gone); no longer charged */
} pool_gstate;

typedef struct {
    char id[STATE_ID_LEN + 1];       /* the instance id it will have */
    char digest[IMG_DIGEST_LEN + 1]; /* its image */
    char host[STATE_NAME_MAX];       /* where it runs */
    uint32_t memory_mib, vcpus;      /* what it was started with */
    int network;                     /* it has a NIC on the guest bridge */
    pool_gstate st;
    int created;         /* its domain exists (or may: destroy it) */
    int64_t born_ms;     /* monotonic ms its start was decided */
    int64_t ready_ms;    /* monotonic ms it was seen waiting, 0 */
    int64_t claimed_ms;  /* monotonic ms a create claimed it (pool.c), 0 */
    int64_t boot_us;     /* its pool-wait record's boot time */
    int fd;              /* its console socket once READY, else -1 */
    gst_tracker tracker; /* its status file while BOOTING */
} pool_guest;

typedef struct {
    char digest[IMG_DIGEST_LEN + 1];
    uint32_t want; /* the image's warm_pool */
} pool_want;

typedef struct {
    pool_guest g[FLEET_POOL_MAX];
    size_t n;
    pool_want w[FLEET_POOL_MAX];
    size_t nw;
    /* counters for /metrics and the bench */
    uint64_t claims;  /* creates that took a guest */
    uint64_t misses;  /* creates of a pooled image that found none ready */
    uint64_t started; /* guests whose start was decided */
    uint64_t failed;  /* guests that died or never reached pool-wait */
} pool_tab;

void pool_tab_init(pool_tab *t);
/* The wanted sizes, replaced as a whole (images without a pool left out). */
void pool_tab_set_wants(pool_tab *t, const pool_want *w, size_t n);
uint32_t pool_tab_want(const pool_tab *t, const char *digest);
/* Guests of digest in state st (any digest when digest is NULL). */
size_t pool_tab_count(const pool_tab *t, const char *digest, pool_gstate st);
/* A new BOOTING guest, or NULL when the table is full or id is there. */
pool_guest *pool_tab_add(pool_tab *t, const char *id, const char *digest, const char *host,
                         uint32_t memory_mib, uint32_t vcpus, int network, int64_t now_ms);
pool_guest *pool_tab_find(pool_tab *t, const char *id);
void pool_tab_remove(pool_tab *t, const char *id);
/* Take the oldest READY guest of digest on host with these options: its
 * id into id_out, CLAIMED. 1 when taken, 0 when none fits (counted as a
 * miss when the image has a pool). */
int pool_tab_claim(pool_tab *t, const char *digest, const char *host, uint32_t memory_mib,
                   uint32_t vcpus, int network, char id_out[STATE_ID_LEN + 1]);
/* A claim the create could not use: READY again. */
void pool_tab_unclaim(pool_tab *t, const char *id);
/* Mark DOOMED what is no longer wanted: guests of images without a pool,
 * and beyond each image's size the newest live (BOOTING, READY) ones.
 * Returns how many were marked. */
size_t pool_tab_trim(pool_tab *t);
/* How many more guests digest needs (want - live). */
uint32_t pool_tab_deficit(const pool_tab *t, const char *digest);
/* A create needs host's room: its BOOTING and READY guests DOOMED. */
size_t pool_tab_evict_host(pool_tab *t, const char *host);
/* The guests of digest DOOMED (its pool emptied or the image is gone). */
size_t pool_tab_drop_image(pool_tab *t, const char *digest);

/* ---- the manager (pool.c) ---- */

/* A pool guest as placement charges it (fleet_pool_residents). */
typedef struct fleet_pool_resident {
    char id[STATE_ID_LEN + 1];
    char digest[IMG_DIGEST_LEN + 1];
    char host[STATE_NAME_MAX];
    uint32_t memory_mib, vcpus;
} fleet_pool_resident;

/* Start the manager thread (fleet_open, once the hosts are open and
 * reconciled). -1 with a message. */
int fleet_pool_open(fleet *f, char *err, size_t errlen);
/* Stop it and destroy every pool guest not yet handed to an instance
 * (fleet_close, before the hosts close). The pool's calls stay safe (no
 * guest is found) until fleet_pool_free of f->pool, once nothing can call
 * them: after the fleet is freed (its nodes closed, so no event comes). */
void fleet_pool_close(fleet *f);
struct fleet_pool;
void fleet_pool_free(struct fleet_pool *p);
/* An image's profile changed or it was deleted: the pools are re-read and
 * the guests of digest (NULL: none) replaced, as the profile they booted
 * with may be gone. */
void fleet_pool_image_changed(fleet *f, const char *digest);
/* Can a run booted this way take a pool guest? A kernel in the shoal
 * preset with neither an initrd nor a command line of the run's own (a
 * guest booted with neither). A create's claim and a wake's (idle.c). */
int fleet_pool_fits(const fleet_boot *boot, int own_initrd, int own_cmdline);
/* A READY guest of digest on host with these options, CLAIMED, its id in
 * id_out (1), or 0. A create claims under place_mu, after placement; a
 * wake (idle.c) with no lock: it places nothing, the instance's host is
 * fixed and the guest's room becomes its. */
int fleet_pool_claim(fleet *f, const char *digest, const char *host, uint32_t memory_mib,
                     uint32_t vcpus, int network, char id_out[STATE_ID_LEN + 1]);
void fleet_pool_unclaim(fleet *f, const char *id);
/* Under place_mu: every idle guest on host is doomed, so a create that
 * did not fit beside them gets their room. How many. */
size_t fleet_pool_make_room(fleet *f, const char *host);
/* The guests placement charges (not CLAIMED, not DOOMED): a heap array
 * (free it) of *n. */
fleet_pool_resident *fleet_pool_residents(fleet *f, size_t *n);
/* Is id a pool guest (any state)? Reconcile leaves its domain alone. */
int fleet_pool_owns(fleet *f, const char *id);
/* Is id a CLAIMED guest waiting for its instance's first start? */
int fleet_pool_claimed(fleet *f, const char *id);
/* Its domain stopped or crashed (libvirt event thread: marks only). */
void fleet_pool_gone(fleet *f, const char *id);
/* The start job of a claimed guest's instance: send `record` (the line
 * and private record a cold start would give it, joined) on its console
 * and wait for the guest's answer. The guest leaves the pool whatever the
 * outcome. 0 when it took its configuration; -1 with a message (the caller
 * destroys the domain and starts the instance cold). */
int fleet_pool_handover(fleet *f, const char *id, const char *record, char *err, size_t errlen);
/* A claimed guest its instance's start gives up on (the caller destroys
 * its domain): out of the table, its console closed. */
void fleet_pool_forget(fleet *f, const char *id);
/* A CLAIMED guest that will never be handed over (its wake could not be
 * started, its instance was stopped or deleted first): out of the table
 * and destroyed with its files. A no-op for any other id. */
void fleet_pool_drop(fleet *f, const char *id);
/* Counters (for /metrics): claims, misses, ready guests, booting guests. */
void fleet_pool_stats(fleet *f, uint64_t *claims, uint64_t *misses, size_t *ready, size_t *booting);

#endif
