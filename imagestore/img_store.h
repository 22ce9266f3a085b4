/*
 * img_store.h - shoal's image store: boot images kept in SQLite.
 *
 * An *image* is a blob of bytes identified by its SHA-256 digest
 * ("sha256:<64 lowercase hex>"), stored once however often it is pushed, in
 * chunks, with metadata: size, created time, boot protocol, format, kind and
 * the evidence for it, a boot profile derived from the kind, labels. *Names*
 * ("name:tag", tag "latest" by default) point at images; a tag can be moved.
 *
 * Guarantees
 *   - Nothing is visible before img_upload_commit() returns success, and
 *     commit validates the bytes first (img_validate.h). A crash or kill at any
 *     point leaves no visible image; the partial upload's chunks are removed by
 *     img_gc() once its owner process is gone.
 *   - Upload, read and materialization stream with bounded memory (one chunk
 *     per upload, a capped SQLite page cache per connection).
 *   - Every function may be called from many threads at once on the same
 *     store (an internal pool gives each call its own SQLite connection). One
 *     img_upload must not be used by two threads at the same time.
 *   - Several processes may open the same database (WAL, busy timeout).
 *
 * Errors: functions return 0 on success and -1 on failure, filling *err (which
 * may be NULL) with a code and a one-line message that quotes the bad value,
 * e.g. "image 'foo:1' not found". Free functions accept NULL.
 *
 * Instances: the store knows nothing of instances beyond reference counts.
 * The daemon calls img_ref_acquire() before it starts an instance from an
 * image and img_ref_release() after the instance is gone. An image with
 * references cannot be deleted without force, is never garbage-collected,
 * and its materialized file is never evicted.
 */
#ifndef SHOAL_IMG_STORE_H
#define SHOAL_IMG_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "img_validate.h"

/* ---- constants ---------------------------------------------------------- */

#define IMG_SCHEMA_VERSION     6    /* PRAGMA user_version written by this code */
#define IMG_DIGEST_HEX         64   /* hex characters of a SHA-256 */
#define IMG_DIGEST_LEN         71   /* strlen("sha256:") + 64 */
#define IMG_NAME_MAX           128  /* name: [a-z0-9][a-z0-9._/-]*, at most this long */
#define IMG_TAG_MAX            128  /* tag: [A-Za-z0-9_][A-Za-z0-9._-]*, at most this long */
#define IMG_LABEL_KEY_MAX      128  /* label key: [A-Za-z0-9][A-Za-z0-9._/-]* */
#define IMG_LABEL_VALUE_MAX    1024 /* label value: any bytes but control characters */
#define IMG_LABELS_MAX         64   /* labels per image */
#define IMG_DIGEST_PREFIX_MIN  4    /* shortest bare hex digest prefix resolved */
#define IMG_DEFAULT_TAG        "latest"
#define IMG_ERR_MSG_MAX        320
#define IMG_DEFAULT_CHUNK      (1u << 20)            /* bytes per stored chunk */
#define IMG_DEFAULT_CACHE_MAX  (UINT64_C(4) << 30)   /* materialized-file budget */
#define IMG_TEMPLATE_MAX       1024                  /* command-line template, bytes */
#define IMG_PROBE_MAX          300                   /* probe spec text, bytes */
#define IMG_WARM_POOL_MAX      64                    /* largest warm pool of an image */
#define IMG_DEFAULT_MAX_INITRD (UINT64_C(256) << 20) /* largest initrd */

/* ---- errors ------------------------------------------------------------- */

typedef enum img_errcode {
    IMG_OK = 0,
    IMG_E_NOT_FOUND, /* no image/name/tag matches the reference given */
    IMG_E_INVALID,   /* bad argument: malformed name/tag/label/reference, or an
                          upload that is not a bootable image (message from the
                          validator), or an empty upload */
    IMG_E_CONFLICT,  /* the operation clashes with current state: writing to an
                          upload that already failed, releasing a reference that
                          is not held, a pending upload collected under it */
    IMG_E_AMBIGUOUS, /* a digest prefix matches more than one image */
    IMG_E_IN_USE,    /* the image has references (running instances); use force */
    IMG_E_TOO_LARGE, /* upload over opts.max_image_size or loaded memory over
                          opts.max_load_size */
    IMG_E_IO,        /* file system or SQLite I/O failure, disk full included */
    IMG_E_CORRUPT,   /* stored bytes do not match their digest, or the database
                          fails a consistency check */
    IMG_E_NOMEM,     /* allocation failed */
    IMG_E_BUSY,      /* the database stayed locked past opts.busy_timeout_ms */
} img_errcode;

typedef struct img_err {
    img_errcode code;          /* IMG_OK when no error */
    char msg[IMG_ERR_MSG_MAX]; /* NUL-terminated, one line, no trailing newline */
} img_err;

/* "not found", "invalid", ... (static string). */
const char *img_errcode_name(img_errcode code);

/* ---- types -------------------------------------------------------------- */

typedef struct img_store img_store;   /* opaque; thread-safe */
typedef struct img_upload img_upload; /* opaque; one thread at a time */

/* Options for img_store_open; zero/NULL fields take the default. */
typedef struct img_opts {
    const char *cache_dir;    /* materialized files; default "<db path>.cache" */
    uint64_t cache_max_bytes; /* materialized-file budget; default IMG_DEFAULT_CACHE_MAX */
    uint64_t max_image_size;  /* largest upload in bytes; default IMG_DEFAULT_MAX_FILE */
    uint64_t max_load_size;   /* largest sum of PT_LOAD p_memsz; default IMG_DEFAULT_MAX_LOAD */
    uint64_t max_initrd_size; /* largest initrd upload in bytes; default IMG_DEFAULT_MAX_INITRD */
    uint32_t chunk_size;      /* bytes per chunk for new uploads, 4 KiB..64 MiB;
                                  default IMG_DEFAULT_CHUNK */
    int busy_timeout_ms;      /* SQLite busy timeout; default 10000 */
    int stale_upload_secs;    /* a pending upload of another live process is
                                  collected after this long without a write;
                                  default 3600 */
    const char *vfs;          /* SQLite VFS name (tests inject faults); default NULL */
} img_opts;

/*
 * Boot profile: how the boot side starts an image (docs/imagestore.md, "Boot
 * profiles", says exactly what each value asks of it). Derived from the kind
 * at push (img_profile_default) and stored with the image.
 */
typedef enum img_firmware {
    IMG_FW_NONE = 0,    /* not set (only for rows whose kind is unknown) */
    IMG_FW_QBOOT = 1,   /* qboot: minimal, assigns no PCI BARs; the guest does */
    IMG_FW_SEABIOS = 2, /* SeaBIOS: assigns PCI BARs, boots disks */
} img_firmware;

typedef enum img_cmdline {
    IMG_CMDLINE_NONE = 0,     /* not set (only for rows whose kind is unknown) */
    IMG_CMDLINE_SHOAL = 1,    /* "shoal.ip=... KEY=VALUE -- ARG" (docs/guest-protocol.md) */
    IMG_CMDLINE_UNIKRAFT = 2, /* "netdev.ip=CIDR:GW ... -- ARG" */
    IMG_CMDLINE_SOLO5 = 3,    /* the arguments, verbatim, nothing added */
    IMG_CMDLINE_RAW = 4,      /* what the user gives, verbatim; nothing for disks */
    IMG_CMDLINE_TEMPLATE = 5, /* img_profile.template, placeholders filled in */
} img_cmdline;

/* How the end of a run is read (docs/node.md, "Boot profiles"). */
typedef enum img_exit {
    IMG_EXIT_NONE = 0,       /* not set (only for rows whose kind is unknown) */
    IMG_EXIT_STATUS = 1,     /* shoal's status channel: the exit record on COM2
                                (docs/guest-protocol.md); a power-off without one
                                is a crash */
    IMG_EXIT_DEBUG_EXIT = 2, /* QEMU's isa-debug-exit on port 0x501: the value the
                                guest writes there is its exit code */
    IMG_EXIT_POWEROFF = 3,   /* a clean power-off is an exit, code unknown */
} img_exit;

typedef struct img_profile {
    img_firmware firmware;
    img_cmdline cmdline;                 /* command line preset, or IMG_CMDLINE_TEMPLATE */
    img_exit exit;                       /* how an exit is read */
    char template[IMG_TEMPLATE_MAX + 1]; /* with IMG_CMDLINE_TEMPLATE: the line, with
                                            placeholders (img_template_check); else "" */
    /* Probes of the image's instances (docs/shoald.md "Probes"), as text in
     * the daemon's probe syntax: the store keeps them and never parses
     * them (the daemon checks a change through img_profile_change.check).
     * An instance created without its own takes these. */
    char ready[IMG_PROBE_MAX + 1];  /* readiness probe, "" = the kind's default */
    char health[IMG_PROBE_MAX + 1]; /* health probe, "" = none */
    uint32_t health_interval_s;     /* with a health probe: seconds between checks, */
    uint32_t health_timeout_s;      /* seconds one may take, */
    uint32_t health_retries;        /* failures in a row; each 0 = the default */
    /* Guests of this image kept booted and waiting for an instance's
     * configuration (docs/shoald.md "Warm pools"); 0 = no pool. Only for
     * kind shoal with the shoal command line (the hand-over protocol,
     * docs/guest-protocol.md "Warm pool hand-over"). */
    uint32_t warm_pool;
} img_profile;

/*
 * Checks the probes of a profile about to be stored (the daemon's probe
 * parser: the store knows no probe syntax). Called by img_profile_apply
 * with the whole profile as it would be after the change, when the change
 * touches ready, health or exit; may rewrite p->ready and p->health into
 * their canonical form. Returns 0, or -1 with *field ("ready", "health",
 * "health.interval_s", ... or "exit") and a sentence in msg.
 */
typedef int (*img_probe_check_fn)(void *ctx, img_profile *p, img_kind kind, const char **field,
                                  char *msg, size_t msglen);

/*
 * A change of a stored profile (img_profile_set): each field NULL (or 0)
 * to keep it, else the value as a client wrote it:
 *   firmware  "qboot" | "seabios"
 *   cmdline   a preset name ("shoal", "unikraft", "solo5", "raw") or a
 *             template (img_template_check)
 *   exit      "status" | "debug-exit" | "poweroff"
 *   ready     a readiness probe spec; "" = back to the kind's default
 *   health    a health probe spec, replacing the probe and its numbers
 *             (those not given here become the defaults); "" = none
 *   health_interval_s, health_timeout_s, health_retries
 *             1..; with health NULL they change the stored health probe's
 *             (refused, field "health", when there is none)
 *   warm_pool_set, warm_pool
 *             with warm_pool_set, the warm pool size 0..IMG_WARM_POOL_MAX
 *             (refused, field "warm_pool", for an image that is not of
 *             kind shoal with the shoal command line)
 * Every value is bounded (IMG_PROBE_MAX bytes, no control characters);
 * check (may be NULL: probes are then refused) judges the probes.
 */
typedef struct img_profile_change {
    const char *firmware;
    const char *cmdline;
    const char *exit;
    const char *ready;
    const char *health;
    uint32_t health_interval_s, health_timeout_s, health_retries;
    int warm_pool_set;
    uint32_t warm_pool;
    img_probe_check_fn check;
    void *check_ctx;
} img_profile_change;

/* A label, key=value. In img_info the strings are owned by the img_info. */
typedef struct img_label {
    const char *key;
    const char *value;
} img_label;

/* What the store knows about one image (and, from img_list, one name). */
typedef struct img_info {
    char digest[IMG_DIGEST_LEN + 1]; /* "sha256:<hex>" */
    char name[IMG_NAME_MAX + 1];     /* name this row was listed/resolved under; "" if none */
    char tag[IMG_TAG_MAX + 1];       /* tag of that name; "" if none */
    uint64_t size;                   /* bytes */
    int64_t created;                 /* unix seconds when the content was first stored */
    img_boot boot;                   /* boot protocol found by the validator */
    img_format format;               /* elf, bin (raw Multiboot kernel), raw or qcow2 disk */
    img_kind kind;                   /* kind of guest judged at push */
    uint32_t nevidence;              /* entries in evidence */
    char evidence[IMG_EVIDENCE_MAX][IMG_EVIDENCE_LEN + 1]; /* what the kind was judged from */
    img_profile profile;                                   /* stored boot profile */
    char initrd[IMG_DIGEST_LEN + 1]; /* the image's initrd ("sha256:<hex>"), "" if none */
    uint64_t initrd_size;            /* its bytes */
    uint32_t refs;                   /* current reference count (instances) */
    img_label *labels;               /* nlabels labels sorted by key; owned here */
    size_t nlabels;
} img_info;

/* img_list filters; NULL fields match everything. */
typedef struct img_filter {
    const char *name;        /* exact image name */
    const char *label_key;   /* images having this label... */
    const char *label_value; /* ...with this value (NULL: any value) */
    int include_untagged;    /* also list images no name points at (name "") */
} img_filter;

/* Result of img_gc. */
typedef struct img_gc_stats {
    uint64_t images_removed;      /* untagged, unreferenced images deleted */
    uint64_t uploads_removed;     /* abandoned partial uploads deleted */
    uint64_t bytes_removed;       /* their bytes */
    uint64_t cache_files_removed; /* materialized files evicted or orphaned */
} img_gc_stats;

/* ---- boot profiles ------------------------------------------------------ */

/*
 * The profile an image of this kind gets at push: qboot and the "shoal"
 * preset for shoal's reference kernel; SeaBIOS for every other kind (their
 * drivers expect the firmware to assign PCI BARs, disks need a BIOS to boot),
 * with the "unikraft", "solo5" or "raw" preset. IMG_KIND_UNKNOWN gets
 * { IMG_FW_NONE, IMG_CMDLINE_NONE }.
 */
img_profile img_profile_default(img_kind kind);

/* "qboot", "seabios" or "none"; inverse: IMG_FW_NONE for anything else. */
const char *img_firmware_name(img_firmware fw);
img_firmware img_firmware_parse(const char *name);

/* "shoal", "unikraft", "solo5", "raw", "template" or "none"; inverse
 * (presets only, not "template"): IMG_CMDLINE_NONE for anything else. */
const char *img_cmdline_name(img_cmdline preset);
img_cmdline img_cmdline_parse(const char *name);

/* "status", "debug-exit", "poweroff" or "none"; inverse: IMG_EXIT_NONE. */
const char *img_exit_name(img_exit mode);
img_exit img_exit_parse(const char *name);

/*
 * Command-line templates. A template is the guest's whole command line,
 * 1..IMG_TEMPLATE_MAX bytes of UTF-8 without control characters, in which
 * these placeholders are replaced per run (nothing is quoted or added):
 *   {address}  the guest's IPv4 address, "10.88.0.4"
 *   {prefix}   its prefix length, "16"
 *   {gateway}  the gateway, "10.88.0.1"
 *   {mac}      its MAC, "5a:5c:00:11:22:33"
 *   {env}      the environment, KEY=VALUE pairs joined by single spaces
 *   {args}     the arguments joined by single spaces
 *   {name}     the image's name ("nginx" for "nginx:1.25"; "app" for a digest)
 * "{{" and "}}" stand for "{" and "}". Returns 0, or -1 with a sentence in
 * msg quoting what is wrong ("unknown placeholder '{ip}' (known: ...)",
 * "unmatched '{' at byte 9", ...). Pure.
 */
int img_template_check(const char *tmpl, char *msg, size_t msglen);

/*
 * The one check of a profile change: apply ch to *p for an image of this
 * kind and format, or return -1 with IMG_E_INVALID in err, *field naming the
 * first bad field ("firmware", "cmdline", "exit", "ready", "health", ...) and
 * *p unchanged. Refused besides unknown values: qboot for a disk image (it
 * boots no disks), a command line other than "raw" for a disk image (it
 * takes none), an empty change, and what ch->check refuses. Pure but for
 * ch->check.
 */
int img_profile_apply(img_profile *p, img_kind kind, img_format format,
                      const img_profile_change *ch, const char **field, img_err *err);

/* ---- store -------------------------------------------------------------- */

/*
 * Open (creating if needed) the store at db path, migrating an older schema
 * forward in one transaction (from version 1: every stored image is read
 * again to record its format, kind, evidence and default profile; an image
 * the validator now refuses keeps its boot protocol, gets the kind that
 * protocol implies and the evidence "revalidation failed"; from version 2:
 * a column for how an exit is read, empty, which reads as the kind's
 * default; from version 4: columns for the probes, empty, which read as
 * the kind's default readiness and no health probe).
 * A newer schema than IMG_SCHEMA_VERSION is refused (IMG_E_CORRUPT).
 * opts may be NULL. On success *out owns the store; close with img_store_close.
 * Errors: IMG_E_IO (cannot open/create), IMG_E_CORRUPT, IMG_E_INVALID (opts).
 */
int img_store_open(const char *path, const img_opts *opts, img_store **out, img_err *err);

/* Close. Uploads still open are aborted. Not concurrent with other calls. */
void img_store_close(img_store *s);

/* ---- upload ------------------------------------------------------------- */

/*
 * Start an upload. size_hint is the expected size (e.g. Content-Length) or 0
 * if unknown; a hint over the limit fails at once with IMG_E_TOO_LARGE.
 * *out owns the upload until img_upload_commit or img_upload_abort.
 */
int img_upload_begin(img_store *s, uint64_t size_hint, img_upload **out, img_err *err);

/*
 * Append len bytes. Bytes are hashed as they come and stored a chunk at a
 * time. Fails with IMG_E_TOO_LARGE as soon as the total passes the limit,
 * IMG_E_INVALID when the first bytes can already be judged not bootable,
 * IMG_E_IO on write failure. After any failure the upload can only be aborted.
 */
int img_upload_write(img_upload *u, const void *data, size_t len, img_err *err);

/*
 * Finish: validate the whole blob, then in one transaction make the image
 * visible (or reuse identical stored content) and point name:tag at it
 * (tag NULL or "" means "latest"), moving the tag if it pointed elsewhere.
 * labels (nlabels entries, may be NULL) are merged into the image's labels.
 * name NULL stores the image untagged (only reachable by digest; collected by
 * the next img_gc unless referenced). A digest set with img_upload_expect is
 * checked before validation. info (may be NULL) receives the result;
 * release it with img_info_clear. The upload is freed whether or not commit
 * succeeds. Errors: IMG_E_INVALID (empty, not bootable, bad name/tag/label),
 * IMG_E_TOO_LARGE, IMG_E_IO, IMG_E_BUSY, IMG_E_CONFLICT (already failed).
 */
int img_upload_commit(img_upload *u, const char *name, const char *tag, const img_label *labels,
                      size_t nlabels, img_info *info, img_err *err);

/*
 * Require the upload's SHA-256 to be digest ("sha256:<64 lowercase hex>", e.g.
 * from a client's header). img_upload_commit then fails with IMG_E_INVALID
 * "upload has digest sha256:..., expected sha256:..." before anything becomes
 * visible. Errors: IMG_E_INVALID (malformed digest).
 */
int img_upload_expect(img_upload *u, const char *digest, img_err *err);

/*
 * Give the image being uploaded the initrd digest (a full "sha256:<hex>"
 * stored by img_initrd_commit). img_upload_commit then points the image at
 * it in the same transaction that makes the image visible, replacing an
 * initrd the same image had (the initrd belongs to the image's content, so
 * every name of it sees the change). Commit fails with IMG_E_NOT_FOUND if
 * no such initrd is stored, IMG_E_INVALID for a disk image (it has no
 * kernel to hand an initrd to). Errors here: IMG_E_INVALID (malformed).
 */
int img_upload_initrd(img_upload *u, const char *digest, img_err *err);

/*
 * Initrds: blobs of any bytes (1..opts.max_initrd_size) stored like images
 * (chunks, SHA-256) but never resolved as images: an instance cannot be
 * made of one. Upload with img_initrd_begin, then img_upload_write (no
 * boot checks) and img_initrd_commit, which stores it (or finds the same
 * bytes stored) and gives its digest and size in info (digest, size,
 * created; nothing else). An initrd no image points at is removed with
 * the last image that pointed at it (img_delete, img_gc), or by img_gc
 * once older than opts.stale_upload_secs if none ever did.
 * Errors: as img_upload_begin/commit; IMG_E_CONFLICT when the same bytes
 * are stored as an image.
 */
int img_initrd_begin(img_store *s, uint64_t size_hint, img_upload **out, img_err *err);
int img_initrd_commit(img_upload *u, img_info *info, img_err *err);

/* Materialize the initrd digest like img_materialize (<cache_dir>/<hex>.elf).
 * Errors: IMG_E_NOT_FOUND, IMG_E_IO, IMG_E_CORRUPT. */
int img_materialize_initrd(img_store *s, const char *digest, char **path_out, img_err *err);

/* Drop the upload and what it stored. Accepts NULL. */
void img_upload_abort(img_upload *u);

/* Bytes accepted so far. */
uint64_t img_upload_size(const img_upload *u);

/*
 * Convenience: stream the file at path through begin/write/commit.
 * The file's size is checked against the limit before any byte is read.
 */
int img_import_file(img_store *s, const char *path, const char *name, const char *tag,
                    const img_label *labels, size_t nlabels, img_info *info, img_err *err);

/* ---- lookup ------------------------------------------------------------- */

/*
 * Resolve a reference to a digest: "name" (tag latest), "name:tag",
 * "sha256:<hex>", "sha256:<prefix>" or a bare hex prefix of at least 4
 * characters (a name wins over a prefix). digest_out receives
 * "sha256:<hex>". Errors: IMG_E_NOT_FOUND, IMG_E_AMBIGUOUS, IMG_E_INVALID.
 */
int img_resolve(img_store *s, const char *ref, char digest_out[IMG_DIGEST_LEN + 1], img_err *err);

/* Resolve ref and describe the image. Release *info with img_info_clear. */
int img_get(img_store *s, const char *ref, img_info *info, img_err *err);

/*
 * List names (one row per name:tag, sorted by name then tag) matching filter
 * (may be NULL). *out is an array of *count entries; free with img_list_free.
 */
int img_list(img_store *s, const img_filter *filter, img_info **out, size_t *count, img_err *err);

void img_info_clear(img_info *info);              /* frees labels; accepts NULL */
void img_list_free(img_info *list, size_t count); /* accepts NULL */

/* ---- names -------------------------------------------------------------- */

/* Point dst ("name" or "name:tag") at the image src resolves to (moves it). */
int img_tag(img_store *s, const char *src, const char *dst, img_err *err);

/* Remove one name:tag. The image stays until img_gc if nothing else names it. */
int img_untag(img_store *s, const char *ref, img_err *err);

/*
 * Delete the image ref resolves to: every name pointing at it goes, and its
 * bytes go at once if nothing references it. With references: IMG_E_IN_USE
 * unless force, in which case the names go and the bytes stay until the last
 * reference is released and img_gc runs.
 */
int img_delete(img_store *s, const char *ref, int force, img_err *err);

/*
 * Change the stored boot profile of the image ref resolves to (every name of
 * it: the profile belongs to the image's content), checked by
 * img_profile_apply; nothing is written unless the whole change is valid.
 * info (may be NULL) receives the image as it is now (img_info_clear).
 * Instances see the change at their next start. Errors: IMG_E_NOT_FOUND,
 * IMG_E_AMBIGUOUS, IMG_E_INVALID (with *field set, may be NULL), IMG_E_IO,
 * IMG_E_BUSY.
 */
int img_profile_set(img_store *s, const char *ref, const img_profile_change *ch, img_info *info,
                    const char **field, img_err *err);

/* Add or replace (value != NULL) or remove (value == NULL) one label. */
int img_label_set(img_store *s, const char *ref, const char *key, const char *value, img_err *err);

/*
 * Remove untagged unreferenced images, abandoned uploads (owner process gone,
 * or idle past stale_upload_secs) and cache files of images no longer stored,
 * then give free pages back to the file system. stats may be NULL.
 */
int img_gc(img_store *s, img_gc_stats *stats, img_err *err);

/*
 * Only the abandoned uploads of img_gc (pending blobs of a process that is
 * gone, of another live one idle past stale_upload_secs, or of this one no
 * longer open): cheap enough for a timer (shoald's supervisor runs it every
 * FLEET_UPLOAD_SWEEP_MS), touching no image, name or cache file.
 */
int img_gc_uploads(img_store *s, img_gc_stats *stats, img_err *err);

/* ---- references (the daemon's instances) --------------------------------- */

/* Count one more user of the image digest (full "sha256:<hex>") or ref. */
int img_ref_acquire(img_store *s, const char *ref, img_err *err);

/* Count one user fewer. Releasing at zero is IMG_E_CONFLICT. */
int img_ref_release(img_store *s, const char *digest, img_err *err);

/*
 * The same for an initrd an instance carries of its own (a run's initrd,
 * "sha256:<hex>" as img_initrd_commit gave it): an initrd with references
 * is never collected (img_gc, the last image pointing at it going).
 * Errors: IMG_E_NOT_FOUND (no such initrd stored), IMG_E_INVALID
 * (malformed), IMG_E_CONFLICT (release at zero).
 */
int img_initrd_acquire(img_store *s, const char *digest, img_err *err);
int img_initrd_release(img_store *s, const char *digest, img_err *err);

/* Set every count to zero (daemon start-up, before re-acquiring for live instances). */
int img_refs_reset(img_store *s, img_err *err);

/* ---- reading ------------------------------------------------------------ */

/*
 * Read up to len bytes at offset off of image digest into buf; *got receives
 * the count (0 at or past the end). Stateless: suits an HTTP response
 * callback. Errors: IMG_E_NOT_FOUND (image gone), IMG_E_IO.
 */
int img_read_at(img_store *s, const char *digest, uint64_t off, void *buf, size_t len, size_t *got,
                img_err *err);

/*
 * Stream the whole image to cb, chunk by chunk, from one consistent snapshot.
 * cb returns 0 to go on, non-zero to stop (then img_read fails with IMG_E_IO
 * and message "stopped by callback").
 */
typedef int (*img_read_cb)(void *ctx, const void *data, size_t len);
int img_read(img_store *s, const char *ref, img_read_cb cb, void *ctx, img_err *err);

/*
 * Hand out a file holding the image's bytes, for libvirt's <kernel>.
 * The file is <cache_dir>/<hex>.elf, read-only, written once through a temp
 * file + fsync + rename after its SHA-256 was checked, reused afterwards when
 * its size matches (the digest is in its name). Least recently used files of
 * unreferenced images are evicted to keep the cache under cache_max_bytes.
 * Call img_ref_acquire first so the file cannot be evicted while in use.
 * *path_out is malloc'd; free() it. Errors: IMG_E_NOT_FOUND, IMG_E_IO,
 * IMG_E_CORRUPT (stored bytes do not hash to the digest: nothing is written).
 */
int img_materialize(img_store *s, const char *ref, char **path_out, img_err *err);

/* Evict cache files (LRU, unreferenced only) until under budget_bytes. */
int img_cache_trim(img_store *s, uint64_t budget_bytes, img_err *err);

/*
 * Run PRAGMA integrity_check and check that every image's chunks add up to
 * its size. IMG_E_CORRUPT with the first problem otherwise.
 */
int img_check(img_store *s, img_err *err);

#endif /* SHOAL_IMG_STORE_H */
