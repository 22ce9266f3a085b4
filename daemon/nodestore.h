/*
 * nodestore.h - a remote host's files, through libvirt's storage API (issue 17).
 *
 * A guest on another machine cannot open shoald's image cache, state dir or
 * guest records: everything QEMU opens there must be on that host. On every
 * host whose URI is remote (nstore_uri_remote), shoald keeps two libvirt
 * 'dir' storage pools it defines itself (persistent, autostarted):
 *
 *   NSTORE_POOL      images, one volume per digest:
 *                      <hex>.img  the image's bytes (raw)
 *                      <hex>.ok   empty marker, created only after <hex>.img
 *                                 was uploaded whole and checked
 *   NSTORE_RUN_POOL  per domain: <domain>.console and <domain>.status (the
 *                    serial files libvirt opens on that host), <domain>.cfg
 *                    (the private guest record, only during the create),
 *                    <domain>.qcow2 (a disk image's writable overlay, whose
 *                    backing store is the base's <hex>.img; made by the
 *                    host's libvirt, which runs qemu-img for it)
 *
 * Delivery (nstore_image): a volume named by the image's digest is used as it
 * is when its marker exists and its size is the local file's. Otherwise it is
 * (re)created and the local file streamed into it (virStorageVolUpload,
 * NSTORE_CHUNK bytes per send) while it is hashed with SHA-256: a hash that is
 * not the digest in the file's name, a short stream or a volume of the wrong
 * size afterwards deletes the volume and fails. The marker makes an upload
 * cut short (shoald or the link dying mid-way) look absent, not cached. Not
 * checked: bytes changed on the host's disk after the upload (no read-back:
 * it would double the transfer; the image store checks its own copy).
 *
 * Locking: a mutex per connection serialises the check-and-upload of image
 * volumes (for a disk, up to its overlay's create) and nstore_gc on that
 * connection, so two starts of one image on a
 * host upload it once and a GC never removes a volume being uploaded; a host
 * whose upload hangs holds up only calls on its own connection (another
 * host's delivery, start and GC go on). A reconnect is a new connection: a
 * call on the old one still hung does not hold up the new one. Any thread
 * but libvirt's event loop.
 *
 * Errors: 0, or a negative nstore_status with a message in err[errlen]
 * quoting the volume or path and libvirt's reason.
 */
#ifndef SHOAL_NODESTORE_H
#define SHOAL_NODESTORE_H

#include <stddef.h>
#include <stdint.h>

#include <libvirt/libvirt.h>

#include "domxml.h"

#define NSTORE_POOL          "shoal"
#define NSTORE_RUN_POOL      "shoal-run"
#define NSTORE_POOL_PATH     "/var/lib/libvirt/shoal/images"
#define NSTORE_RUN_POOL_PATH "/var/lib/libvirt/shoal/run"
#define NSTORE_DISK_SUFFIX   ".qcow2"   /* a domain's overlay in NSTORE_RUN_POOL */
#define NSTORE_CHUNK         (1u << 20) /* bytes per virStreamSend */
#define NSTORE_PATH_MAX      512

enum nstore_status {
    NSTORE_OK = 0,
    NSTORE_E_INVAL = -1,   /* not deliverable (a disk without its base), no such volume */
    NSTORE_E_LIBVIRT = -2, /* libvirt refused; the connection may be lost */
    NSTORE_E_IO = -3,      /* a local file could not be read or written */
    NSTORE_E_VERIFY = -4,  /* the uploaded bytes were not the digest's */
};

/* 1 if uri names a host that does not share this machine's files: a
 * transport other than unix (qemu+tcp, +ssh, +tls, +libssh, +ext) or a host
 * name (qemu://h/system). 0 for qemu:///..., qemu+unix:///..., test:///. */
int nstore_uri_remote(const char *uri);

/* Process-wide counters (all hosts), for /metrics and tests. */
struct nstore_stats {
    uint64_t uploads;      /* image volumes uploaded whole */
    uint64_t upload_bytes; /* bytes sent to image volumes (grows per chunk
                              during an upload: its progress) */
    uint64_t upload_ms;    /* time spent in uploads that completed */
    uint64_t hits;         /* deliveries served by a cached volume */
    uint64_t removed;      /* image volumes removed by nstore_gc */
};
void nstore_stats_get(struct nstore_stats *out);

/* What nstore_stage put on the host for one domain start. */
struct nstore_stage {
    char kernel[NSTORE_PATH_MAX]; /* paths on the host */
    char initrd[NSTORE_PATH_MAX];
    char console[NSTORE_PATH_MAX];
    char status[NSTORE_PATH_MAX];
    char cfg[NSTORE_PATH_MAX];
    char disk[NSTORE_PATH_MAX];        /* the domain's overlay, or "" */
    char cfg_vol[DOMXML_NAME_MAX + 8]; /* run-pool volume of the record, or "" */
};

/*
 * Put what domain spec->name needs on the host of conn and point *spec at it:
 * the kernel and initrd as image volumes (nstore_image), the console and
 * status as run-pool volumes (the status emptied, the console kept: it is
 * appended to), spec->fwcfg_data as volume <name>.cfg (mode 0600), rendered
 * as spec->fwcfg_file. A disk: spec->disk_base as an image volume and the
 * overlay <name>.qcow2 over it (qcow2, mode 0600, backing format
 * spec->disk_format, virtual size spec->disk_bytes or the base's), kept when
 * present unless spec->disk_fresh, rendered as spec->disk; a host whose
 * libvirt cannot make it (no qemu-img there) fails with libvirt's reason
 * and the tool named. spec's strings then point into *st, which must
 * outlive the create; call nstore_unstage after it, whatever the outcome.
 * A spec->disk without spec->disk_base (a local file) is refused:
 * NSTORE_E_INVAL.
 */
int nstore_stage(virConnectPtr conn, struct domxml_spec *spec, struct nstore_stage *st, char *err,
                 size_t errlen);
void nstore_unstage(virConnectPtr conn, struct nstore_stage *st);

/*
 * Deliver the local file local_path as image volume <hex>.img (see the top
 * of this file); host_path[len] receives its path on the host. An image
 * cache file is named <64 hex digits>.<ext> by the digest of its bytes; any
 * other file (the canary) is hashed first. *uploaded (may be NULL) is 1
 * when it was sent, 0 when the cached volume was used.
 */
int nstore_image(virConnectPtr conn, const char *local_path, char *host_path, size_t len,
                 int *uploaded, char *err, size_t errlen);

/* Remove the run-pool volumes of domain (its serial files, record and
 * overlay): its instance is gone. None there: NSTORE_OK. */
int nstore_forget(virConnectPtr conn, const char *domain, char *err, size_t errlen);

/*
 * Copy run-pool volume <domain><suffix> (".console", ".status") to the local
 * file local_path (replaced; at most the last max bytes). NSTORE_E_INVAL when
 * there is no such volume.
 */
int nstore_fetch(virConnectPtr conn, const char *domain, const char *suffix, const char *local_path,
                 uint64_t max, char *err, size_t errlen);

/*
 * Remove image volumes (and markers) whose digest (64 hex, no "sha256:") is
 * not in keep[nkeep], and run-pool volumes of domains not in
 * keep_domains[nkeep_domains]. *removed (may be NULL) counts image volumes
 * removed. A host without the pools has nothing to collect.
 */
int nstore_gc(virConnectPtr conn, const char *const *keep, size_t nkeep,
              const char *const *keep_domains, size_t nkeep_domains, unsigned *removed, char *err,
              size_t errlen);

#endif /* SHOAL_NODESTORE_H */
