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

/* Remove the instance's overlay (none: fine). */
void fleet_disk_remove(struct fleet *f, const char *id);

#endif
