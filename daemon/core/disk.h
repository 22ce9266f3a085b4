/* disk.h - per-instance copy-on-write overlays of disk images (issue 14).
 *
 * An instance of a disk image (format raw or qcow2, boot.h) boots from its
 * own qcow2 overlay, STATE_DIR/disks/<id>.qcow2, whose base is the image's
 * materialized file (img_materialize: read-only, 0444, never evicted while
 * the instance holds its image reference). The guest writes only to the
 * overlay; it lives as long as the instance (kept across runs, so a guest
 * finds what it wrote last run) and is removed with it.
 *
 * The overlay is made by `qemu-img create -f qcow2 -F FORMAT -b BASE`
 * (posix_spawnp, no shell; qemu-img from PATH), always naming the base's
 * format so that nothing is ever probed (a raw image could look like a
 * qcow2 with a backing file of the host's). A base under 1 MiB gets a
 * 1 MiB overlay: SeaBIOS boots no disk smaller than one cylinder (1008
 * sectors). Written under a temporary name and renamed, so a half-made
 * overlay is never booted. Called from start workers; one instance is
 * started by one worker at a time (jobs.c), so no lock.
 *
 * On a remote host (node_remote) the overlay is that host's volume
 * <domain>.qcow2, made there by its libvirt over the delivered base
 * (nodestore.h); the core only decides whether it is kept. The current
 * overlay is in one place: this machine (the file above, shared by every
 * host on it) or one remote host, whose name STATE_DIR/disks/<id>.host
 * holds. A start in another place starts from a fresh overlay over the
 * base: what the guest wrote is not carried to another machine (a cold
 * move or a failover there), and an overlay left in the old place is
 * never booted again (removed here for this machine's, by the host's
 * volume GC or the instance's delete for a remote one).
 */
#ifndef SHOAL_CORE_DISK_H
#define SHOAL_CORE_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "img_store.h"

struct fleet;

/* STATE_DIR/disks/<id>.qcow2 into buf (len >= FLEET_PATH_MAX). */
void fleet_disk_path(const struct fleet *f, const char *id, char *buf, size_t len);

/*
 * The instance's overlay of `base` (format IMG_FORMAT_RAW or
 * IMG_FORMAT_QCOW2, base_size bytes), made if it is not there yet; its path
 * in path[pathlen]. Returns 0, or -1 with a message in err (the directory,
 * qemu-img's own words and exit status).
 */
int fleet_disk_prepare(struct fleet *f, const char *id, const char *base, img_format format,
                       uint64_t base_size, char *path, size_t pathlen, char *err, size_t errlen);

/* The virtual size to give an overlay of a base of `format` and
 * base_size bytes: 1 MiB for a raw base under it (SeaBIOS), else 0 (the
 * base's own). */
uint64_t fleet_disk_bytes(img_format format, uint64_t base_size);

/* Before a start on remote host `host`: 1 when its overlay there must be
 * made afresh (the current one is elsewhere, or there is none), 0 when
 * it is kept. The overlay of this machine, if any, is removed. */
int fleet_disk_remote_fresh(struct fleet *f, const char *id, const char *host);

/* After a start on remote host `host` succeeded: its overlay there is the
 * current one. Returns 0, or -1 with err set. */
int fleet_disk_remote_done(struct fleet *f, const char *id, const char *host, char *err,
                           size_t errlen);

/* Remove the instance's overlay on this machine and its place record
 * (none: fine); a remote host's goes with its domain's files
 * (node_store_forget). */
void fleet_disk_remove(struct fleet *f, const char *id);

#endif
