/*
 * nodestream.h - a guest's serial port read through a libvirt stream into a
 * local file (issue 17; docs/node.md "Remote hosts").
 *
 * A domain rendered with domxml_spec.serial_pty has pty serial ports, which
 * virDomainOpenConsole hands out as streams on the domain's own connection
 * (remote or not). nstream_open opens one and appends every byte it carries
 * to a local file (O_APPEND: the supervisor may rotate or truncate it under
 * us; opened for each batch of bytes, so an idle stream holds no local
 * descriptor), so the readers of local files (the status tracker through inotify,
 * console follow) work unchanged. Reading happens in a stream callback on
 * libvirt's event loop (virStreamEventAddCallback): no thread per stream,
 * nothing runs while the guest writes nothing.
 *
 * Threads: the callback runs on libvirt's event-loop thread and never makes
 * a call that waits for the host (no RPC). nstream_close and nstream_abort
 * may be called from any other thread; they finish or abort the stream (an
 * RPC on a remote connection; nstream_close not when told the connection is
 * gone) and free it later on the event loop. A stream's state is guarded
 * by its own mutex; the lock order is that mutex, then libvirt's.
 */
#ifndef SHOAL_NODESTREAM_H
#define SHOAL_NODESTREAM_H

#include <stddef.h>

#include <libvirt/libvirt.h>

enum nstream_state {
    NSTREAM_OPEN = 0,   /* carrying the port's output */
    NSTREAM_EOF = 1,    /* QEMU closed the port: every byte the guest wrote
                           before is in the file */
    NSTREAM_BROKEN = 2, /* ended with an error (or a local write failed):
                           the file may miss bytes */
};

struct nstream;

/* Open port `dev` ("serial0", "serial1") of dom as a stream appending to
 * local_path (created 0600 if missing). force: take the port from a
 * stream that holds it on the host (one of a connection that was lost
 * and that the host has not noticed yet). 0, or -1 with libvirt's or the
 * system's reason in err. */
int nstream_open(virDomainPtr dom, const char *dev, const char *local_path, int force,
                 struct nstream **out, char *err, size_t errlen);

/* The state now. */
enum nstream_state nstream_state(struct nstream *s);

/* Wait up to timeout_ms for the stream to leave NSTREAM_OPEN; the state. */
enum nstream_state nstream_wait_end(struct nstream *s, int timeout_ms);

/* Bytes appended to the file so far. */
unsigned long long nstream_bytes(struct nstream *s);

/* Stop reading and free (NULL is a no-op). A stream that saw its end is
 * finished (an RPC, which frees it on the host) unless conn_gone (the
 * connection is lost or being replaced: a frozen host would block the
 * call), and only NSTREAM_FINISH_DELAY_MS later, by nstream_reap: libvirt
 * 9.0's libvirtd deadlocks when the finish of a console stream (its event
 * loop: the stream's lock, then the domain's chardev table's lock) meets
 * the last release of the stopped domain (any of its threads that held
 * it, e.g. our usage sampler's virConnectGetAllDomainStats: the table's
 * lock, then each stream's); the daemon then answers nobody. Once the
 * domain is freed the stream no longer calls back into the table. Never
 * aborted here: an abort goes the same way. A stream let go before its end
 * stays on the host until the connection closes. Call it once the domain
 * is gone. */
#define NSTREAM_FINISH_DELAY_MS 10000
void nstream_close(struct nstream *s, int conn_gone);

/* Stop reading, abort the stream (an RPC: the host closes its end and frees
 * it before the call returns) and free s (NULL is a no-op). Only while the
 * domain still runs: then no release of the domain can meet the close on
 * the host (the deadlock above needs the domain's last release), and the
 * domain's end later finds no stream of ours open there for the host to
 * close by itself (its event loop aborts a stream whose port fails as
 * QEMU goes: the same path again, and what a remote host's log showed,
 * "stream is not open", at a stop after which that host hung). 0, or -1
 * if the call failed (the stream is freed here all the same; the host
 * frees its end when the connection closes). Any thread but the event
 * loop's. */
int nstream_abort(struct nstream *s);

/* Finish the streams of conn closed after their end at least
 * NSTREAM_FINISH_DELAY_MS ago (RPCs; any thread but the event loop's), or
 * let every one of conn's go without a call (conn_gone: before the
 * connection closes). */
void nstream_reap(virConnectPtr conn, int conn_gone);

/* Wait up to timeout_ms until every closed stream is freed (that happens
 * on libvirt's event loop, after any callback of it under way there): call
 * before the event loop stops. */
void nstream_drain(int timeout_ms);

#endif /* SHOAL_NODESTREAM_H */
