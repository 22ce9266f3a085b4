/* failover.h - host failure and fencing (issue 17; docs/shoald.md "Host
 * failure and fencing").
 *
 * A host whose connection is lost (libvirt's close callback: an error or
 * EOF, node.c), whose (re)connect fails, or - one behind a libvirtd,
 * remote or of this machine (qemu:///system), not the embedded driver
 * (fleet_host_in_process) - that has not answered for FO_PING_DEAD_MS
 * while a ping waits is `down`, from the moment this module first sees it
 * so (fleet_host.down_ms). The ping: every FO_PING_MS this thread queues,
 * for each such up host, a round trip (node_ping) on the remote I/O
 * workers (remoteio.c); an answer is the last ping's, or a usage reading
 * the host answered (its guests, every FLEET_USAGE_PERIOD_MS; a remote
 * host's available memory, every FLEET_AVAIL_PERIOD_MS: fleet_host.
 * heard_ms), whichever is newer. No
 * thread per host, and this one never waits on a host. Not libvirt's keepalive: with
 * libvirt 9.0, once it gives up a connection on which calls wait, those
 * calls (and the close callback) wait until the host answers, and a
 * storage stream's download waiting on it was seen never to return even
 * then (the host stayed down for good; docs/shoald.md). When it
 * has been down for the grace period (--host-grace, cfg.host_grace_s):
 *   - each wanted instance of it with restart policy `on-failure` or
 *     `always` is placed elsewhere (the usual placement; a down host counts
 *     as cordoned), its run there ends `lost`, its row is re-homed and
 *     started (event instance.failover, host = the new host, message
 *     "from A to B"); when no host has room it waits on the lost host,
 *     `pending`, last_error saying why, and is tried again every
 *     FO_RETRY_MS;
 *   - each running instance with restart policy `never` becomes `lost`
 *     (still wanted, still on that host): if the host comes back with its
 *     guest, reconcile adopts it again.
 *
 * FENCING RULE: an instance belongs to the host its row names. When a host
 * connects (first open or reconnect), every shoal domain on it whose
 * instance row names another host is destroyed before the host is marked
 * up, i.e. before it can take any placement or reconcile adopts anything
 * (fleet_failover_fence). A domain's end counts only when it comes from
 * the host its instance's current run is on (fleet_rt.run_node, set when
 * a run starts or reconcile adopts one): the end of a fenced copy, or of
 * the old copy of a move that failover finished elsewhere (the stop
 * reaching its host when it answers, minutes later), never ends the run
 * that now runs elsewhere, however late it comes (run.c end_elsewhere). A
 * failover re-homes the row only after the old run's published ports,
 * probes and isolation entries are gone.
 *
 * THREAD AND LOCK: fleet_failover_main is its own thread (a tick every
 * FO_TICK_MS). The tick queues the pings (never waits for one); it takes
 * place_mu only with
 * pthread_mutex_trylock (a drain that holds it for long delays a failover
 * by a round, never blocks the thread); then row_mu and mu as any create
 * does; no libvirt call that waits on a host. fleet_failover_fence runs
 * on the thread that opens the host (main at start, API for an add, a
 * remote I/O worker on reconnects: remoteio.c), with no fleet lock held
 * across libvirt.
 */
#ifndef SHOAL_FAILOVER_H
#define SHOAL_FAILOVER_H

#include <stdint.h>

#include "state.h"

#define FO_GRACE_DEFAULT_S 30   /* --host-grace */
#define FO_TICK_MS         500  /* hosts looked at this often */
#define FO_RETRY_MS        2000 /* instances that found no room are tried again */
#define FO_PING_MS         2000 /* a host behind a libvirtd is pinged this often ... */
#define FO_PING_DEAD_MS                                                                            \
    6000 /* ... and is down when, a ping waiting, it has not answered for this long */
/* In the last_error of an instance lost with its host (restart never). */
#define FO_LOST_MARK "restart policy never: not started elsewhere"
/* In the last_error of one waiting for room elsewhere. */
#define FO_WAIT_MARK "failover waits for room"
/* In the last_error of one pinned to its host ("host" at create). */
#define FO_PIN_MARK "pinned to it (\"host\" at create): failover waits for it"

/* ---- the rule (pure; tests/daemon/core/test_failover.c) ---- */

/* What the tick does with one instance of a down host. */
typedef enum {
    FO_KEEP = 0, /* nothing (yet): grace not over, not wanted, busy, moving */
    FO_MOVE,     /* start it elsewhere */
    FO_LOST,     /* restart policy never: mark it lost, keep it there */
} fo_action;

typedef struct {
    state_restart restart;
    state_inst_state state;
    int want_running;
    int deleting; /* a delete is finishing it */
    int moving;   /* a cold move (plan.c) carries it, or its row is marked */
    int busy;     /* a job of it runs now: decided again next round */
} fo_inst;

/* down_for_ms: how long its host has been down; grace_ms: --host-grace. */
fo_action fo_decide(const fo_inst *in, int64_t down_for_ms, int64_t grace_ms);

/* A host's last answer (monotonic ms): its last ping's, the sampler's
 * last reading it answered, or when it was seen up, whichever is newest. */
int64_t fo_last_answer(int64_t pong_ms, int64_t avail_ms, int64_t up_ms);
/* 1 when a host is hung: a ping waits (ping_ms, queued since) and it has
 * not answered for FO_PING_DEAD_MS (0 last: not known yet). */
int fo_hung(int64_t now, int64_t ping_ms, int64_t last_answer_ms);

/* 1 when a domain of the instance whose row names row_host (NULL: no row)
 * found on host `host` must be destroyed before `host` is up. Domains
 * without a row are left to reconcile (a warm pool guest of this process
 * has none). */
int fo_fence(const char *row_host, const char *host);

/* ---- the core (failover.c) ---- */
struct fleet;
struct fleet_host;
struct node;

/* One tick: note hosts going down / coming back (event host.state "down"
 * with the reason), then act on those down for the grace period. */
void fleet_failover_tick(struct fleet *f, int64_t now);
/* The thread (arg: the fleet): ticks until f->stopping. */
void *fleet_failover_main(void *arg);
/* A remote I/O worker's FLEET_RIO_PING of held host h: one round trip;
 * a hung host is released for its reconnect when it returns. */
void fleet_failover_ping(struct fleet *f, struct fleet_host *h);
/* Destroy the domains on h (connected through node, not yet up) that
 * belong elsewhere (fo_fence); events instance.fenced. */
void fleet_failover_fence(struct fleet *f, struct fleet_host *h, struct node *node);

#endif
