/*
 * nodestore.c - a remote host's files through libvirt's storage API (see
 * nodestore.h).
 */
#include "nodestore.h"
#include "errbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/virterror.h>
#include <openssl/evp.h>

#define HEX_LEN 64

/* One lock per libvirt connection in use (nodestore.h "Locking"): a host
 * whose upload hangs holds its own, never another host's delivery. Kept
 * while some thread holds or waits for it, so the list is as long as the
 * connections with a delivery or GC under way. */
struct conn_lock {
    struct conn_lock *next;
    virConnectPtr conn;
    unsigned users; /* holding or waiting, under tab_mu */
    pthread_mutex_t mu;
};
static struct conn_lock *locks;                            /* under tab_mu */
static pthread_mutex_t tab_mu = PTHREAD_MUTEX_INITIALIZER; /* a leaf */
static struct nstore_stats stats;                          /* under stats_mu */
static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint fetch_seq; /* temporary file names of nstore_fetch */

static const char *lv_msg(void)
{
    const char *m = virGetLastErrorMessage();
    return m ? m : "unknown libvirt error";
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* c's lock, taken; NULL when out of memory (nothing taken). */
static struct conn_lock *conn_lock(virConnectPtr c)
{
    struct conn_lock *l;
    pthread_mutex_lock(&tab_mu);
    for (l = locks; l && l->conn != c; l = l->next)
        ;
    if (!l && (l = calloc(1, sizeof *l))) {
        l->conn = c;
        pthread_mutex_init(&l->mu, NULL);
        l->next = locks;
        locks = l;
    }
    if (l)
        l->users++;
    pthread_mutex_unlock(&tab_mu);
    if (l)
        pthread_mutex_lock(&l->mu);
    return l;
}

static void conn_unlock(struct conn_lock *l)
{
    pthread_mutex_unlock(&l->mu);
    pthread_mutex_lock(&tab_mu);
    if (--l->users == 0) {
        struct conn_lock **pp = &locks;
        while (*pp != l)
            pp = &(*pp)->next;
        *pp = l->next;
        pthread_mutex_destroy(&l->mu);
        free(l);
    }
    pthread_mutex_unlock(&tab_mu);
}

static void stats_add(uint64_t *field, uint64_t v)
{
    pthread_mutex_lock(&stats_mu);
    *field += v;
    pthread_mutex_unlock(&stats_mu);
}

void nstore_stats_get(struct nstore_stats *out)
{
    pthread_mutex_lock(&stats_mu);
    *out = stats;
    pthread_mutex_unlock(&stats_mu);
}

int nstore_uri_remote(const char *uri)
{
    const char *colon, *plus, *host;
    if (!uri || !(colon = strstr(uri, "://")))
        return 0;
    plus = memchr(uri, '+', (size_t)(colon - uri));
    if (plus && !(colon - plus == 5 && strncmp(plus, "+unix", 5) == 0))
        return 1;
    host = colon + 3;
    return *host != '/' && *host != '\0';
}

/* The pool `name` at `path`, defined, built and started when missing. */
static virStoragePoolPtr pool_get(virConnectPtr c, const char *name, const char *path, char *err,
                                  size_t errlen)
{
    char xml[1024];
    virStoragePoolPtr p = NULL;
    int active;

    for (int attempt = 0; attempt < 2 && !p; attempt++) {
        p = virStoragePoolLookupByName(c, name);
        if (p)
            break;
        snprintf(xml, sizeof xml,
                 "<pool type='dir'><name>%s</name><target><path>%s</path>"
                 "<permissions><mode>0711</mode></permissions></target></pool>",
                 name, path);
        /* Another shoald thread (or process) may define it at the same
         * time: the second lookup finds theirs. */
        p = virStoragePoolDefineXML(c, xml, 0);
    }
    if (!p) {
        errbuf_set(err, errlen, "cannot define storage pool '%s' at '%s': %s", name, path,
                   lv_msg());
        return NULL;
    }
    active = virStoragePoolIsActive(p);
    if (active == 0 && (virStoragePoolBuild(p, 0) < 0 || virStoragePoolCreate(p, 0) < 0) &&
        virStoragePoolIsActive(p) != 1) {
        errbuf_set(err, errlen, "cannot start storage pool '%s' at '%s': %s", name, path, lv_msg());
        virStoragePoolFree(p);
        return NULL;
    }
    if (active < 0) {
        errbuf_set(err, errlen, "storage pool '%s': %s", name, lv_msg());
        virStoragePoolFree(p);
        return NULL;
    }
    (void)virStoragePoolSetAutostart(p, 1);
    return p;
}

/* Volume `name` of pool p from its XML, replacing one of that name; on
 * failure `hint` (may be "") follows libvirt's reason. */
static virStorageVolPtr vol_create(virStoragePoolPtr p, const char *name, const char *xml,
                                   const char *hint, char *err, size_t errlen)
{
    /* Names are read before any call that can fail: every libvirt call
     * resets the thread's error, which lv_msg() points into. */
    const char *pool_name = virStoragePoolGetName(p);
    virStorageVolPtr v = virStorageVolLookupByName(p, name);
    if (v) {
        (void)virStorageVolDelete(v, 0);
        virStorageVolFree(v);
    }
    v = virStorageVolCreateXML(p, xml, 0);
    if (!v && virStoragePoolRefresh(p, 0) == 0) {
        /* Its file went behind libvirt's back (the pool's list is only
         * refreshed on demand): the delete failed, the create clashed. */
        virStorageVolPtr old = virStorageVolLookupByName(p, name);
        if (old) {
            (void)virStorageVolDelete(old, 0);
            virStorageVolFree(old);
        }
        v = virStorageVolCreateXML(p, xml, 0);
    }
    if (!v)
        errbuf_set(err, errlen, "cannot create volume '%s' in pool '%s': %s%s", name, pool_name,
                   lv_msg(), hint);
    return v;
}

/* A raw volume of `bytes` bytes, mode `mode`, replacing one of that name. */
static virStorageVolPtr vol_make(virStoragePoolPtr p, const char *name, uint64_t bytes,
                                 const char *mode, char *err, size_t errlen)
{
    char xml[768];
    snprintf(xml, sizeof xml,
             "<volume><name>%s</name><capacity unit='bytes'>%llu</capacity>"
             "<allocation unit='bytes'>0</allocation><target><format type='raw'/>"
             "<permissions><mode>%s</mode></permissions></target></volume>",
             name, (unsigned long long)bytes, mode);
    return vol_create(p, name, xml, "", err, errlen);
}

static int vol_path(virStorageVolPtr v, char *out, size_t len, char *err, size_t errlen)
{
    const char *name = virStorageVolGetName(v);
    char *path = virStorageVolGetPath(v);
    int rc = NSTORE_OK;
    if (!path || snprintf(out, len, "%s", path) >= (int)len) {
        errbuf_set(err, errlen, "volume '%s': no usable path: %s", name,
                   path ? "too long" : lv_msg());
        rc = NSTORE_E_LIBVIRT;
    }
    free(path);
    return rc;
}

static void vol_drop(virStoragePoolPtr p, const char *name)
{
    virStorageVolPtr v = virStorageVolLookupByName(p, name);
    if (v) {
        (void)virStorageVolDelete(v, 0);
        virStorageVolFree(v);
    }
}

/* Release a stream; one still transferring is aborted first. */
static void stream_drop(virStreamPtr st, int streaming)
{
    if (st && streaming)
        (void)virStreamAbort(st);
    if (st)
        virStreamFree(st);
}

/* The digest in a cache file's name: <64 lowercase hex>.<ext>. */
static int name_digest(const char *path, char hex[HEX_LEN + 1])
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    for (int i = 0; i < HEX_LEN; i++) {
        if (!((b[i] >= '0' && b[i] <= '9') || (b[i] >= 'a' && b[i] <= 'f')))
            return -1;
    }
    if (b[HEX_LEN] != '.' && b[HEX_LEN] != '\0')
        return -1;
    memcpy(hex, b, HEX_LEN);
    hex[HEX_LEN] = '\0';
    return 0;
}

static void hex_encode(const unsigned char md[32], char out[HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[HEX_LEN] = '\0';
}

/* SHA-256 of what fd holds from its start (left at its start again). */
static int file_digest(int fd, char hex[HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE], *buf = malloc(NSTORE_CHUNK);
    unsigned mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    ssize_t n = -1;
    int rc = -1;

    if (buf && ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1) {
        while ((n = read(fd, buf, NSTORE_CHUNK)) > 0)
            EVP_DigestUpdate(ctx, buf, (size_t)n);
    }
    if (n == 0 && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32 &&
        lseek(fd, 0, SEEK_SET) == 0) {
        hex_encode(md, hex);
        rc = 0;
    }
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

/* Stream fd (size bytes) into v, hashing as it goes; 0 when all was sent
 * and the SHA-256 is hex. */
static int upload(virConnectPtr c, virStorageVolPtr v, int fd, uint64_t size, const char *hex,
                  char *err, size_t errlen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char got[HEX_LEN + 1];
    uint64_t sent = 0;
    int rc = NSTORE_E_LIBVIRT, streaming = 0;
    char *buf = malloc(NSTORE_CHUNK);
    EVP_MD_CTX *md_ctx = EVP_MD_CTX_new();
    const char *vn = virStorageVolGetName(v);
    virStreamPtr st = virStreamNew(c, 0);

    if (!buf || !md_ctx || !st || EVP_DigestInit_ex(md_ctx, EVP_sha256(), NULL) != 1) {
        errbuf_set(err, errlen, "cannot begin upload of '%s': %s", vn,
                   st ? "out of memory" : lv_msg());
        goto out;
    }
    if (virStorageVolUpload(v, st, 0, size, 0) < 0) {
        errbuf_set(err, errlen, "cannot upload to '%s': %s", vn, lv_msg());
        goto out;
    }
    streaming = 1;
    while (sent < size) {
        size_t want = size - sent < NSTORE_CHUNK ? (size_t)(size - sent) : NSTORE_CHUNK;
        ssize_t n = read(fd, buf, want);
        if (n <= 0) {
            errbuf_set(err, errlen, "image file ended or failed after %llu of %llu bytes: %s",
                       (unsigned long long)sent, (unsigned long long)size,
                       n < 0 ? strerror(errno) : "short file");
            rc = NSTORE_E_IO;
            goto out;
        }
        EVP_DigestUpdate(md_ctx, buf, (size_t)n);
        for (ssize_t off = 0; off < n;) {
            int w = virStreamSend(st, buf + off, (size_t)(n - off));
            if (w <= 0) {
                errbuf_set(err, errlen, "upload to '%s' failed after %llu bytes: %s", vn,
                           (unsigned long long)sent, lv_msg());
                goto out;
            }
            off += w;
        }
        sent += (uint64_t)n;
        stats_add(&stats.upload_bytes, (uint64_t)n);
    }
    streaming = 0;
    if (virStreamFinish(st) < 0) {
        errbuf_set(err, errlen, "upload to '%s' did not finish: %s", vn, lv_msg());
        goto out;
    }
    EVP_DigestFinal_ex(md_ctx, md, &mdlen);
    if (mdlen == 32)
        hex_encode(md, got);
    if (mdlen != 32 || strcmp(got, hex) != 0) {
        errbuf_set(err, errlen, "uploaded bytes hash to sha256:%s, not the image's sha256:%s", got,
                   hex);
        rc = NSTORE_E_VERIFY;
        goto out;
    }
    rc = NSTORE_OK;
out:
    stream_drop(st, streaming);
    EVP_MD_CTX_free(md_ctx);
    free(buf);
    return rc;
}

/* Caller holds c's conn_lock. */
static int image_locked(virConnectPtr c, virStoragePoolPtr p, const char *local_path, char *out,
                        size_t len, int *uploaded, char *err, size_t errlen)
{
    char hex[HEX_LEN + 1], vname[HEX_LEN + 8], mname[HEX_LEN + 8];
    struct stat sb;
    virStorageVolInfo vi;
    virStorageVolPtr v = NULL, mark = NULL;
    uint64_t t0;
    int fd = -1, rc;

    fd = open(local_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        errbuf_set(err, errlen, "cannot read '%s': %s", local_path, strerror(errno));
        rc = NSTORE_E_IO;
        goto out;
    }
    /* A file not named by its digest (the canary) is hashed first. */
    if (name_digest(local_path, hex) != 0 && file_digest(fd, hex) != 0) {
        errbuf_set(err, errlen, "cannot hash '%s': %s", local_path, strerror(errno));
        rc = NSTORE_E_IO;
        goto out;
    }
    snprintf(vname, sizeof vname, "%s.img", hex);
    snprintf(mname, sizeof mname, "%s.ok", hex);
    v = virStorageVolLookupByName(p, vname);
    mark = virStorageVolLookupByName(p, mname);
    /* GetInfo stats the files again (dir pools refresh a volume on every
     * query): one removed behind libvirt's back is not taken as cached. */
    if (v && mark && virStorageVolGetInfo(mark, &vi) == 0 && virStorageVolGetInfo(v, &vi) == 0 &&
        vi.capacity == (unsigned long long)sb.st_size) {
        stats_add(&stats.hits, 1);
        rc = vol_path(v, out, len, err, errlen);
        goto out;
    }
    /* Absent, cut short or the wrong size: upload it again, the marker
     * last (a volume without it is never used). */
    if (mark) {
        (void)virStorageVolDelete(mark, 0);
        virStorageVolFree(mark);
        mark = NULL;
    }
    if (v)
        virStorageVolFree(v);
    t0 = now_ms();
    if (!(v = vol_make(p, vname, (uint64_t)sb.st_size, "0644", err, errlen))) {
        rc = NSTORE_E_LIBVIRT;
        goto out;
    }
    rc = upload(c, v, fd, (uint64_t)sb.st_size, hex, err, errlen);
    if (rc == NSTORE_OK &&
        (virStorageVolGetInfo(v, &vi) != 0 || vi.capacity != (unsigned long long)sb.st_size)) {
        errbuf_set(err, errlen, "volume '%s' holds %llu bytes after the upload, not %lld", vname,
                   (unsigned long long)vi.capacity, (long long)sb.st_size);
        rc = NSTORE_E_VERIFY;
    }
    if (rc == NSTORE_OK && !(mark = vol_make(p, mname, 0, "0644", err, errlen)))
        rc = NSTORE_E_LIBVIRT;
    if (rc == NSTORE_OK)
        rc = vol_path(v, out, len, err, errlen);
    if (rc != NSTORE_OK) {
        (void)virStorageVolDelete(v, 0);
        goto out;
    }
    stats_add(&stats.uploads, 1);
    stats_add(&stats.upload_ms, now_ms() - t0);
    if (uploaded)
        *uploaded = 1;
out:
    if (v)
        virStorageVolFree(v);
    if (mark)
        virStorageVolFree(mark);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* nstore_image; with `held`, c's lock stays taken for the caller (*held,
 * to conn_unlock; NULL when it was not taken). */
static int image_deliver(virConnectPtr c, const char *local_path, char *host_path, size_t len,
                         int *uploaded, struct conn_lock **held, char *err, size_t errlen)
{
    virStoragePoolPtr p;
    struct conn_lock *l;
    int rc;

    if (uploaded)
        *uploaded = 0;
    if (held)
        *held = NULL;
    if (!(l = conn_lock(c))) {
        errbuf_set(err, errlen, "out of memory");
        return NSTORE_E_IO;
    }
    p = pool_get(c, NSTORE_POOL, NSTORE_POOL_PATH, err, errlen);
    rc = p ? image_locked(c, p, local_path, host_path, len, uploaded, err, errlen)
           : NSTORE_E_LIBVIRT;
    if (held)
        *held = l;
    else
        conn_unlock(l);
    if (p)
        virStoragePoolFree(p);
    return rc;
}

int nstore_image(virConnectPtr c, const char *local_path, char *host_path, size_t len,
                 int *uploaded, char *err, size_t errlen)
{
    return image_deliver(c, local_path, host_path, len, uploaded, NULL, err, errlen);
}

/* The domain's overlay <domain>.qcow2 over the base volume at base (its
 * path on the host), in the run pool: kept when present and !fresh, else
 * made by the host's libvirt (qemu-img there, the base's format named so
 * that nothing is probed). Its path to out. */
static int overlay_vol(virStoragePoolPtr run, const struct domxml_spec *s, const char *base,
                       char *out, size_t len, char *err, size_t errlen)
{
    char name[DOMXML_NAME_MAX + 16], cap[80] = "", xml[2048];
    virStorageVolInfo vi;
    virStorageVolPtr v;
    int rc;

    if (!s->disk_format ||
        (strcmp(s->disk_format, "raw") != 0 && strcmp(s->disk_format, "qcow2") != 0)) {
        errbuf_set(err, errlen, "domain '%s': disk base format '%s' is not raw or qcow2", s->name,
                   s->disk_format ? s->disk_format : "(none)");
        return NSTORE_E_INVAL;
    }
    snprintf(name, sizeof name, "%s%s", s->name, NSTORE_DISK_SUFFIX);
    v = s->disk_fresh ? NULL : virStorageVolLookupByName(run, name);
    /* GetInfo stats the file again: one removed behind libvirt's back is
     * made anew. */
    if (v && virStorageVolGetInfo(v, &vi) != 0) {
        virStorageVolFree(v);
        v = NULL;
    }
    if (!v) {
        if (s->disk_bytes)
            snprintf(cap, sizeof cap, "<capacity unit='bytes'>%llu</capacity>",
                     (unsigned long long)s->disk_bytes);
        /* Paths under NSTORE_POOL_PATH and names of [A-Za-z0-9_.-]: no
         * character needs escaping. */
        if (snprintf(xml, sizeof xml,
                     "<volume><name>%s</name>%s<target><format type='qcow2'/>"
                     "<permissions><mode>0600</mode></permissions></target>"
                     "<backingStore><path>%s</path><format type='%s'/></backingStore></volume>",
                     name, cap, base, s->disk_format) >= (int)sizeof xml) {
            errbuf_set(err, errlen, "volume '%s': base path too long", name);
            return NSTORE_E_INVAL;
        }
        v = vol_create(run, name, xml,
                       " (the host's libvirt makes qcow2 volumes with qemu-img, which it needs)",
                       err, errlen);
        if (!v)
            return NSTORE_E_LIBVIRT;
    }
    rc = vol_path(v, out, len, err, errlen);
    virStorageVolFree(v);
    return rc;
}

/* The disk of s: its base delivered and its overlay made, under c's lock
 * from the base's check to the overlay's create (a GC of the host never
 * takes the base away in between). */
static int stage_disk(virConnectPtr c, const struct domxml_spec *s, struct nstore_stage *st,
                      char *err, size_t errlen)
{
    char base[NSTORE_PATH_MAX];
    struct conn_lock *l = NULL;
    virStoragePoolPtr run = NULL;
    int rc = image_deliver(c, s->disk_base, base, sizeof base, NULL, &l, err, errlen);

    if (rc == NSTORE_OK && !(run = pool_get(c, NSTORE_RUN_POOL, NSTORE_RUN_POOL_PATH, err, errlen)))
        rc = NSTORE_E_LIBVIRT;
    if (rc == NSTORE_OK)
        rc = overlay_vol(run, s, base, st->disk, sizeof st->disk, err, errlen);
    if (l)
        conn_unlock(l);
    if (run)
        virStoragePoolFree(run);
    return rc;
}

/* Run-pool volume <domain><suffix>: its path to out; emptied when `fresh`,
 * else created only when missing. data (may be NULL) is uploaded into it. */
static int run_vol(virConnectPtr c, virStoragePoolPtr p, const char *domain, const char *suffix,
                   int fresh, const char *data, char *out, size_t len, char *err, size_t errlen)
{
    char name[DOMXML_NAME_MAX + 16];
    virStorageVolPtr v;
    int rc = NSTORE_OK;

    snprintf(name, sizeof name, "%s%s", domain, suffix);
    v = fresh ? NULL : virStorageVolLookupByName(p, name);
    if (!v &&
        !(v = vol_make(p, name, data ? strlen(data) : 0, data ? "0600" : "0644", err, errlen)))
        return NSTORE_E_LIBVIRT;
    if (data) {
        virStreamPtr st = virStreamNew(c, 0);
        size_t dl = strlen(data);
        if (!st || virStorageVolUpload(v, st, 0, dl, 0) < 0 ||
            virStreamSend(st, data, dl) != (int)dl || virStreamFinish(st) < 0) {
            errbuf_set(err, errlen, "cannot write volume '%s': %s", name, lv_msg());
            rc = NSTORE_E_LIBVIRT;
        }
        stream_drop(st, rc != NSTORE_OK);
    }
    if (rc == NSTORE_OK)
        rc = vol_path(v, out, len, err, errlen);
    virStorageVolFree(v);
    return rc;
}

int nstore_stage(virConnectPtr c, struct domxml_spec *s, struct nstore_stage *st, char *err,
                 size_t errlen)
{
    virStoragePoolPtr run = NULL;
    int rc;

    memset(st, 0, sizeof *st);
    if (s->disk && !s->disk_base) {
        errbuf_set(err, errlen,
                   "domain '%s' boots the local disk file '%s', which a remote host cannot "
                   "open (no base to deliver)",
                   s->name, s->disk);
        return NSTORE_E_INVAL;
    }
    if (s->disk_base)
        rc = stage_disk(c, s, st, err, errlen);
    else
        rc = s->kernel
                 ? nstore_image(c, s->kernel, st->kernel, sizeof st->kernel, NULL, err, errlen)
                 : NSTORE_OK;
    if (rc == NSTORE_OK && s->initrd)
        rc = nstore_image(c, s->initrd, st->initrd, sizeof st->initrd, NULL, err, errlen);
    if (rc != NSTORE_OK)
        return rc;
    if (!(run = pool_get(c, NSTORE_RUN_POOL, NSTORE_RUN_POOL_PATH, err, errlen)))
        return NSTORE_E_LIBVIRT;
    rc =
        run_vol(c, run, s->name, ".console", 0, NULL, st->console, sizeof st->console, err, errlen);
    if (rc == NSTORE_OK)
        rc = run_vol(c, run, s->name, ".status", 1, NULL, st->status, sizeof st->status, err,
                     errlen);
    if (rc == NSTORE_OK && s->fwcfg_data) {
        rc = run_vol(c, run, s->name, ".cfg", 1, s->fwcfg_data, st->cfg, sizeof st->cfg, err,
                     errlen);
        if (rc == NSTORE_OK)
            snprintf(st->cfg_vol, sizeof st->cfg_vol, "%s.cfg", s->name);
    }
    virStoragePoolFree(run);
    if (rc != NSTORE_OK)
        return rc;
    if (s->disk_base)
        s->disk = st->disk;
    else if (s->kernel)
        s->kernel = st->kernel;
    if (s->initrd)
        s->initrd = st->initrd;
    s->console_log = st->console;
    s->status_log = st->status;
    if (st->cfg_vol[0])
        s->fwcfg_file = st->cfg;
    return NSTORE_OK;
}

void nstore_unstage(virConnectPtr c, struct nstore_stage *st)
{
    virStoragePoolPtr run;
    if (!st->cfg_vol[0] || !(run = virStoragePoolLookupByName(c, NSTORE_RUN_POOL)))
        return;
    vol_drop(run, st->cfg_vol);
    st->cfg_vol[0] = '\0';
    virStoragePoolFree(run);
}

int nstore_forget(virConnectPtr c, const char *domain, char *err, size_t errlen)
{
    static const char *const suffixes[] = { ".console", ".status", ".cfg", NSTORE_DISK_SUFFIX };
    char name[DOMXML_NAME_MAX + 16];
    virStoragePoolPtr run = virStoragePoolLookupByName(c, NSTORE_RUN_POOL);
    int rc = NSTORE_OK;

    if (!run)
        return NSTORE_OK; /* never made: nothing of the domain's there */
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        virStorageVolPtr v;
        snprintf(name, sizeof name, "%s%s", domain, suffixes[i]);
        if (!(v = virStorageVolLookupByName(run, name)))
            continue;
        if (virStorageVolDelete(v, 0) != 0 && rc == NSTORE_OK) {
            errbuf_set(err, errlen, "cannot remove volume '%s': %s", name, lv_msg());
            rc = NSTORE_E_LIBVIRT;
        }
        virStorageVolFree(v);
    }
    virStoragePoolFree(run);
    return rc;
}

int nstore_fetch(virConnectPtr c, const char *domain, const char *suffix, const char *local_path,
                 uint64_t max, char *err, size_t errlen)
{
    char name[DOMXML_NAME_MAX + 16], tmp[4200];
    virStoragePoolPtr run = NULL;
    virStorageVolPtr v = NULL;
    virStreamPtr st = NULL;
    virStorageVolInfo vi;
    uint64_t off = 0;
    char *buf = NULL;
    int fd = -1, rc = NSTORE_E_LIBVIRT, streaming = 0;

    snprintf(name, sizeof name, "%s%s", domain, suffix);
    /* Its own temporary name: the supervisor's poll and a run's end may
     * fetch the same file at once. */
    snprintf(tmp, sizeof tmp, "%s.fetch%u", local_path, atomic_fetch_add(&fetch_seq, 1u));
    if (!(run = virStoragePoolLookupByName(c, NSTORE_RUN_POOL)) ||
        !(v = virStorageVolLookupByName(run, name))) {
        errbuf_set(err, errlen, "no volume '%s' on the host: %s", name, lv_msg());
        rc = NSTORE_E_INVAL;
        goto out;
    }
    /* libvirt's idea of the size is the one it had at the last refresh;
     * the stream reads the file to its end, so the info only places the
     * window of the last max bytes. */
    if (virStorageVolGetInfoFlags(v, &vi, VIR_STORAGE_VOL_GET_PHYSICAL) == 0 && max &&
        vi.capacity > max)
        off = vi.capacity - max;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || !(buf = malloc(NSTORE_CHUNK))) {
        errbuf_set(err, errlen, "cannot write '%s': %s", tmp, strerror(errno));
        rc = NSTORE_E_IO;
        goto out;
    }
    if (!(st = virStreamNew(c, 0)) || virStorageVolDownload(v, st, off, 0, 0) < 0) {
        errbuf_set(err, errlen, "cannot download volume '%s': %s", name, lv_msg());
        goto out;
    }
    streaming = 1;
    for (;;) {
        int n = virStreamRecv(st, buf, NSTORE_CHUNK);
        if (n < 0) {
            errbuf_set(err, errlen, "download of volume '%s' failed: %s", name, lv_msg());
            goto out;
        }
        if (n == 0)
            break;
        if (write(fd, buf, (size_t)n) != n) {
            errbuf_set(err, errlen, "cannot write '%s': %s", tmp, strerror(errno));
            rc = NSTORE_E_IO;
            goto out;
        }
    }
    streaming = 0;
    if (virStreamFinish(st) < 0) {
        errbuf_set(err, errlen, "download of volume '%s' did not finish: %s", name, lv_msg());
        goto out;
    }
    if (close(fd) != 0 || rename(tmp, local_path) != 0) {
        fd = -1;
        errbuf_set(err, errlen, "cannot write '%s': %s", local_path, strerror(errno));
        rc = NSTORE_E_IO;
        goto out;
    }
    fd = -1;
    rc = NSTORE_OK;
out:
    stream_drop(st, streaming);
    if (fd >= 0)
        close(fd);
    if (rc != NSTORE_OK)
        (void)unlink(tmp);
    free(buf);
    if (v)
        virStorageVolFree(v);
    if (run)
        virStoragePoolFree(run);
    return rc;
}

static int listed(const char *name, size_t n, const char *const *list, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (list[i] && strlen(list[i]) == n && strncmp(list[i], name, n) == 0)
            return 1;
    }
    return 0;
}

/* Remove volumes of pool `pool` whose name, up to its last '.', is not in
 * keep; `digests`: only names of a 64-hex stem count (others are left). */
static int gc_pool(virConnectPtr c, const char *pool, const char *const *keep, size_t nkeep,
                   int digests, unsigned *removed, char *err, size_t errlen)
{
    virStoragePoolPtr p = virStoragePoolLookupByName(c, pool);
    virStorageVolPtr *vols = NULL;
    int n, rc = NSTORE_OK;

    if (!p)
        return NSTORE_OK; /* never made: nothing to collect */
    (void)virStoragePoolRefresh(p, 0);
    n = virStoragePoolListAllVolumes(p, &vols, 0);
    if (n < 0) {
        errbuf_set(err, errlen, "cannot list pool '%s': %s", pool, lv_msg());
        rc = NSTORE_E_LIBVIRT;
    }
    for (int i = 0; i < n; i++) {
        const char *name = virStorageVolGetName(vols[i]);
        const char *dot = name ? strrchr(name, '.') : NULL;
        char hex[HEX_LEN + 1];
        if (dot && (!digests || (dot - name == HEX_LEN && name_digest(name, hex) == 0)) &&
            !listed(name, (size_t)(dot - name), keep, nkeep)) {
            if (virStorageVolDelete(vols[i], 0) == 0 && removed && strcmp(dot, ".img") == 0)
                (*removed)++;
        }
        virStorageVolFree(vols[i]);
    }
    free(vols);
    virStoragePoolFree(p);
    return rc;
}

int nstore_gc(virConnectPtr c, const char *const *keep, size_t nkeep,
              const char *const *keep_domains, size_t nkeep_domains, unsigned *removed, char *err,
              size_t errlen)
{
    struct conn_lock *l;
    unsigned gone = 0;
    int rc;

    if (removed)
        *removed = 0;
    if (!(l = conn_lock(c))) {
        errbuf_set(err, errlen, "out of memory");
        return NSTORE_E_IO;
    }
    rc = gc_pool(c, NSTORE_POOL, keep, nkeep, 1, &gone, err, errlen);
    if (rc == NSTORE_OK)
        rc = gc_pool(c, NSTORE_RUN_POOL, keep_domains, nkeep_domains, 0, NULL, err, errlen);
    conn_unlock(l);
    stats_add(&stats.removed, gone);
    if (removed)
        *removed = gone;
    return rc;
}
