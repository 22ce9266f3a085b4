/* console.c - console streams: an instance's console file read from an
 * offset, following it while the instance may still write to it (the
 * supervisor rotates consoles; a stream that finds its file shorter than
 * its offset starts again at the beginning, one that finds it replaced
 * reads on in the new one). An instance's console file is its
 * identity's (fleet_run_id): a wake on a warm pool guest moves it to the
 * guest's file (idle.c), and a follow goes on there, from its start, once
 * the old one is read to its end. */
#include "fleet_int.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fleet_console {
    char id[STATE_ID_LEN + 1];
    char run[STATE_ID_LEN + 1]; /* the identity whose file path is */
    char path[FLEET_PATH_MAX];
    int fd;
    off_t off;
    bool follow;
};

int fleet_console_open(fleet *f, const char *key, uint64_t tail, bool follow, fleet_console **out,
                       fleet_err *e)
{
    state_instance in;
    fleet_console *c;
    struct stat sb;
    int rc = fleet_lookup(f, key, &in, e);

    if (rc != FLEET_OK)
        return rc;
    c = calloc(1, sizeof *c);
    if (!c) {
        state_inst_free(&in);
        return fleet_err_set(e, FLEET_E_INTERNAL, NULL, "out of memory");
    }
    snprintf(c->id, sizeof c->id, "%s", in.id);
    snprintf(c->run, sizeof c->run, "%s", fleet_run_id(&in));
    fleet_console_path(f, c->run, c->path, sizeof c->path);
    c->follow = follow;
    c->fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (c->fd >= 0 && fstat(c->fd, &sb) == 0 && tail != UINT64_MAX && (uint64_t)sb.st_size > tail)
        c->off = sb.st_size - (off_t)tail;
    state_inst_free(&in);
    *out = c;
    return FLEET_OK;
}

/* Could the instance still write to its console? An idle one does when
 * a connection wakes it. run: the identity of its run in progress (its
 * console file's), unchanged when none is. */
static int may_grow(fleet *f, const char *id, char run[STATE_ID_LEN + 1])
{
    state_instance in;
    char err[256];
    int grow = 0;
    fleet_rt *rt;
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, id);
    grow = rt && (rt->active || rt->busy || rt->backoff_due_ms);
    if (rt && rt->active) /* run.c sets rt->guest as it makes the run active */
        snprintf(run, STATE_ID_LEN + 1, "%s", rt->guest[0] ? rt->guest : id);
    pthread_mutex_unlock(&f->mu);
    if (!grow && state_inst_find(f->db, id, &in, err, sizeof err) == 0) {
        grow = in.state == ST_PENDING || in.state == ST_BACKOFF || in.state == ST_IDLE ||
               fleet_state_live(in.state);
        state_inst_free(&in);
    }
    return grow;
}

long fleet_console_read(fleet *f, fleet_console *c, char *buf, size_t len, int timeout_ms)
{
    int waited = 0;

    for (;;) {
        char run[STATE_ID_LEN + 1];
        struct stat sb;
        if (c->fd < 0)
            c->fd = open(c->path, O_RDONLY | O_CLOEXEC);
        if (c->fd >= 0) {
            ssize_t n = pread(c->fd, buf, len, c->off);
            if (n > 0) {
                c->off += n;
                return (long)n;
            }
            if (n < 0)
                return FLEET_STREAM_ERROR;
            if (fstat(c->fd, &sb) == 0) {
                /* Rotated under us: start again at the new beginning. */
                if (sb.st_size < c->off)
                    c->off = 0;
                /* Replaced under us by a copy of a remote host's log (a
                 * run's end, or its streams opened again after a
                 * reconnect): the copy holds what we read at the same
                 * offsets, so read on there. */
                struct stat now;
                if (stat(c->path, &now) == 0 &&
                    (now.st_ino != sb.st_ino || now.st_dev != sb.st_dev)) {
                    close(c->fd);
                    c->fd = -1;
                    continue;
                }
            }
        }
        if (!c->follow)
            return FLEET_STREAM_END;
        snprintf(run, sizeof run, "%s", c->run);
        if (!may_grow(f, c->id, run)) {
            /* One last read after the end, then stop. */
            if (c->fd >= 0 && pread(c->fd, buf, 1, c->off) == 1)
                continue;
            return FLEET_STREAM_END;
        }
        if (strcmp(run, c->run)) {
            /* Woke on a pool guest: the rest of the old file first (its
             * run ended before the sleep), then the new one from its
             * start. */
            if (c->fd >= 0 && pread(c->fd, buf, 1, c->off) == 1)
                continue;
            snprintf(c->run, sizeof c->run, "%s", run);
            fleet_console_path(f, c->run, c->path, sizeof c->path);
            if (c->fd >= 0)
                close(c->fd);
            c->fd = -1;
            c->off = 0;
            continue;
        }
        if (waited >= timeout_ms)
            return 0;
        poll(NULL, 0, 50);
        waited += 50;
    }
}

void fleet_console_close(fleet_console *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}
