/* supervisor.c - the supervisor thread: reacts to status-file changes
 * (inotify), and every 500 ms re-reads running guests' status channels,
 * rotates their consoles, fires due backoff restarts, has lost hosts
 * reconnected and remote status read (by remote I/O workers: remoteio.c,
 * it never waits on a host itself) and trims the event log; after each wake it emits the due
 * batch.progress events (batch.c) and writes the DHCP lease list when
 * instances came or went (leases.c, at most every FLEET_DHCP_DEBOUNCE_MS).
 *
 * inotify tells of every write to a status file, so the tick's re-reads
 * are a safety net (a rename, a lost event) plus the reader of guests that
 * flood their channel (their file events are ignored for a while). A tick
 * therefore does not read every running guest's file: it reads those that
 * flood, and a slice of the others, round robin, so that each file is read
 * at least every FLEET_SAFETY_POLL_MS; with up to TICK_MIN_SLICE running
 * guests that is all of them, every tick. At 1,000 running guests a tick
 * that read them all was 2,000 stat()s, 1,000 open/read/close and 2,000
 * lock round trips every 500 ms, for files that had not changed. */
#include "fleet_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "failover.h"
#include "killpoint.h"
#include "log.h"

/* Keep each console under the budget: its newest `max` bytes move to .1,
 * the file is emptied. QEMU writes with O_APPEND, so truncating under it
 * is safe. */
void fleet_console_rotate(fleet *f, const char *run)
{
    char path[FLEET_PATH_MAX], old[FLEET_PATH_MAX + 2];
    struct stat sb;
    off_t max = (off_t)f->cfg.console_max_kib * 1024;
    int in = -1, out = -1;
    char buf[65536];
    ssize_t n;

    fleet_console_path(f, run, path, sizeof path);
    if (stat(path, &sb) != 0 || sb.st_size <= max)
        return;
    snprintf(old, sizeof old, "%s.1", path);
    in = open(path, O_RDWR | O_CLOEXEC);
    out = open(old, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (in < 0 || out < 0)
        goto out;
    /* Only the newest `max` bytes are kept in .1: a guest flooding its
     * console costs one bounded copy per tick, and .1 stays under the
     * budget too (issue 16). */
    if (sb.st_size > max && lseek(in, sb.st_size - max, SEEK_SET) < 0)
        goto out;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        if (write(out, buf, (size_t)n) != n)
            goto out;
    }
    if (ftruncate(in, 0) != 0)
        log_warn("instance %s: cannot truncate console: %s", run, strerror(errno));
out:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
}

void fleet_reopen_host(fleet *f, fleet_host *h)
{
    char err[NODE_ERR_MAX];
    struct node *node;

    pthread_mutex_lock(&f->mu);
    node = h->node;
    pthread_mutex_unlock(&f->mu);
    if (!node) {
        fleet_host_open(f, h);
        return;
    }
    if (node_reconnect(node, err, sizeof err) == NODE_OK) {
        fleet_failover_fence(f, h, node); /* before it is up: failover.h */
        pthread_mutex_lock(&f->mu);
        h->up = 1;
        h->opening = 0;
        h->fencing = 0;
        h->retry_level = 0;
        h->last_error[0] = 0;
        pthread_cond_broadcast(&f->state_cv);
        pthread_mutex_unlock(&f->mu);
        log_info("host %s reconnected", h->name);
        fleet_emit(f, "host.state", NULL, h->name, "up", h->name, NULL, NULL, NULL);
        fleet_reconcile_host(f, h);
        /* as at a first open: what an image delete could not collect
         * while the host hung (fleet_remote_gc_bounded) */
        fleet_remote_gc(f, h->name);
    } else {
        pthread_mutex_lock(&f->mu);
        h->opening = 0;
        h->next_retry_ms = fleet_now_ms() + fleet_host_retry_delay(h);
        pthread_cond_broadcast(&f->state_cv);
        pthread_mutex_unlock(&f->mu);
        log_warn("host %s: reconnect failed: %s", h->name, err);
    }
}

#define TICK_MS        500
#define TICK_MIN_SLICE 64 /* instances re-read per tick at least */

static void supervise_tick(fleet *f, int64_t now, int *last_trim)
{
    char(*ids)[STATE_ID_LEN + 1] = NULL, (*runs)[STATE_ID_LEN + 1] = NULL;
    size_t n = 0;
    char(*due)[STATE_ID_LEN + 1] = NULL;
    size_t ndue = 0;
    fleet_host **reopen = NULL;
    size_t nreopen = 0;

    size_t slice, start;
    int all;

    pthread_mutex_lock(&f->mu);
    ids = calloc(f->nrt + 1, sizeof *ids);
    runs = calloc(f->nrt + 1, sizeof *runs);
    due = calloc(f->nrt + 1, sizeof *due);
    reopen = calloc(f->nhosts + 1, sizeof *reopen);
    slice = (f->nrt + FLEET_SAFETY_POLL_MS / TICK_MS - 1) / (FLEET_SAFETY_POLL_MS / TICK_MS);
    if (slice < TICK_MIN_SLICE)
        slice = TICK_MIN_SLICE;
    start = f->nrt ? f->tick_cursor % f->nrt : 0;
    f->tick_cursor = f->nrt ? (start + slice) % f->nrt : 0;
    all = f->poll_all || slice >= f->nrt;
    f->poll_all = 0;
    for (size_t i = 0; ids && runs && due && i < f->nrt; i++) {
        fleet_rt *rt = &f->rt[i];
        /* Entries move when one is dropped: a slice may miss one for a
         * round, never for long. */
        int in_slice = all || (i + f->nrt - start) % f->nrt < slice;
        int flooding = rt->quiet_until_ms && rt->quiet_until_ms + 2 * TICK_MS >= now;
        if (rt->active && (in_slice || flooding)) {
            memcpy(runs[n], rt->guest[0] ? rt->guest : rt->id, sizeof runs[0]);
            memcpy(ids[n++], rt->id, sizeof ids[0]);
        }
        if (rt->backoff_due_ms && rt->backoff_due_ms <= now) {
            rt->backoff_due_ms = 0;
            memcpy(due[ndue++], rt->id, sizeof due[0]);
        }
    }
    /* Hosts to reconnect are held and marked opening, so that host removal
     * waits for us and nobody else reconnects the same node meanwhile. */
    for (size_t i = 0; reopen && i < f->nhosts; i++) {
        fleet_host *h = f->hosts[i];
        if (!h->up && !h->opening && h->next_retry_ms <= now) {
            h->next_retry_ms = now + FLEET_RECONNECT_MS;
            if (h->node)
                h->opening = 1;
            h->refs++;
            reopen[nreopen++] = h;
        }
    }
    pthread_mutex_unlock(&f->mu);

    for (size_t i = 0; i < n; i++) {
        fleet_rio_status(f, ids[i]); /* a remote host's status file: a worker's (remoteio.c) */
        fleet_status_poll(f, ids[i]);
        fleet_console_rotate(f, runs[i]); /* the run's file (fleet_run_id) */
    }
    for (size_t i = 0; i < ndue; i++) {
        fleet_queue(f, JOB_START, due[i], NULL);
        kp_hit("policy.restart");
    }
    /* On a remote I/O worker: a connect to a host that hangs waits until
     * it answers, and this thread never waits on a host. */
    for (size_t i = 0; i < nreopen; i++) {
        fleet_rio_submit(f, reopen[i], FLEET_RIO_RECONNECT, NULL);
        fleet_host_release(f, reopen[i]);
    }
    fleet_guard_tick(f, now);
    /* Uploads a client or a killed shoald abandoned hold their chunks
     * until collected: swept at the first tick and then on a timer, not
     * only when an image delete happens to run the store's GC. */
    if (!f->uploads_swept_ms || now - f->uploads_swept_ms >= FLEET_UPLOAD_SWEEP_MS) {
        img_gc_stats gs;
        img_err ie;
        f->uploads_swept_ms = now;
        if (img_gc_uploads(f->img, &gs, &ie) != 0)
            log_warn("image store: sweeping abandoned uploads: %s", ie.msg);
        else if (gs.uploads_removed)
            log_info("image store: collected %llu abandoned upload%s (%llu bytes)",
                     (unsigned long long)gs.uploads_removed, gs.uploads_removed == 1 ? "" : "s",
                     (unsigned long long)gs.bytes_removed);
    }
    if (++*last_trim >= 120) {
        *last_trim = 0;
        state_event_trim(f->db, FLEET_EVENTS_KEEP);
    }
    free(ids);
    free(runs);
    free(due);
    free(reopen);
}

/* Status files named in a batch of inotify events, each id once. A read
 * of EVBUF bytes holds at most MAX_IDS events (each is a header and a
 * name of STATE_ID_LEN + 7 bytes at least), so no id is dropped; a queue
 * overflow (events lost) has every file re-read at the next tick. */
#define EVBUF 8192
/* Returns 1 when the events named status files and every one of them was
 * ignored (flooding guests), else 0. */
static int on_status_files(fleet *f, const char *buf, ssize_t len)
{
    enum { MAX_IDS = EVBUF / (sizeof(struct inotify_event) + STATE_ID_LEN + 7) + 1 };
    char ids[MAX_IDS][STATE_ID_LEN + 1];
    size_t n = 0;

    for (ssize_t off = 0; len > 0 && off < len;) {
        const struct inotify_event *ev = (const void *)(buf + off);
        size_t nl = ev->len ? strnlen(ev->name, ev->len) : 0;
        if (ev->mask & IN_Q_OVERFLOW) {
            pthread_mutex_lock(&f->mu);
            f->poll_all = 1;
            pthread_mutex_unlock(&f->mu);
        }
        if (nl == STATE_ID_LEN + 7 && !strcmp(ev->name + STATE_ID_LEN, ".status")) {
            size_t k;
            for (k = 0; k < n && strncmp(ids[k], ev->name, STATE_ID_LEN); k++)
                ;
            if (k == n && n < MAX_IDS) {
                memcpy(ids[n], ev->name, STATE_ID_LEN);
                ids[n++][STATE_ID_LEN] = 0;
            }
        }
        off += (ssize_t)(sizeof *ev + ev->len);
    }
    size_t polled = 0;
    for (size_t k = 0; k < n; k++)
        polled += (size_t)fleet_status_event(f, ids[k]);
    return n && !polled;
}

void *fleet_supervisor_main(void *arg)
{
    fleet *f = arg;
    int64_t last_tick = 0;
    int trim = 0, dhcp_in = -1; /* ms until the lease list is due, -1 none */
    char buf[EVBUF] __attribute__((aligned(__alignof__(struct inotify_event))));

    for (;;) {
        struct pollfd p[2] = { { f->inotify_fd, POLLIN, 0 }, { f->wake_fd, POLLIN, 0 } };
        int64_t now;
        int stop;
        pthread_mutex_lock(&f->mu);
        stop = f->stopping;
        pthread_mutex_unlock(&f->mu);
        if (stop)
            break;
        if (poll(p, 2, dhcp_in >= 0 && dhcp_in < TICK_MS ? dhcp_in : TICK_MS) > 0) {
            if ((p[0].revents & POLLIN) &&
                on_status_files(f, buf, read(f->inotify_fd, buf, sizeof buf)))
                usleep(FLEET_STATUS_FLOOD_PAUSE_MS * 1000);
            if (p[1].revents & POLLIN) {
                uint64_t v;
                if (read(f->wake_fd, &v, sizeof v) < 0)
                    log_debug("wake read: %s", strerror(errno));
            }
        }
        now = fleet_now_ms();
        if (now - last_tick >= TICK_MS) {
            last_tick = now;
            supervise_tick(f, now, &trim);
        }
        fleet_batch_flush(f);
        dhcp_in = fleet_dhcp_tick(f, fleet_now_ms());
    }
    return NULL;
}
