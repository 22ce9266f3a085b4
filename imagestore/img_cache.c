/*
 * img_cache.c - reading stored images: chunk reader, streaming reads, and
 * materialized files for libvirt (write once, verify, reuse, evict LRU).
 */
#include "img_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- chunk reader ------------------------------------------------------- */

int img_chunk_read_at(img_chunk_reader *r, uint64_t off, void *buf, size_t len)
{
    unsigned char *p = buf;
    if (off > r->size || len > r->size - off)
        return -1;
    while (len > 0) {
        int64_t seq = (int64_t)(off / r->chunk_size);
        uint64_t in = off % r->chunk_size;
        if (!r->blob || r->cur_seq != seq) {
            sqlite3_stmt *st = img_stmt(r->c, ST_CHUNK_ROWID, NULL);
            if (!st)
                return -1;
            sqlite3_bind_int64(st, 1, r->blob_id);
            sqlite3_bind_int64(st, 2, seq);
            int rc = sqlite3_step(st);
            int64_t rowid = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
            sqlite3_reset(st);
            if (rc != SQLITE_ROW) {
                r->rc = rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
                return -1;
            }
            if (r->blob)
                rc = sqlite3_blob_reopen(r->blob, rowid);
            else
                rc = sqlite3_blob_open(r->c->db, "main", "chunks", "data", rowid, 0, &r->blob);
            if (rc != SQLITE_OK) {
                r->rc = rc;
                sqlite3_blob_close(r->blob);
                r->blob = NULL;
                return -1;
            }
            r->cur_seq = seq;
        }
        uint64_t have = (uint64_t)sqlite3_blob_bytes(r->blob);
        if (in >= have) {
            r->rc = SQLITE_CORRUPT;
            return -1;
        }
        size_t n = have - in < len ? (size_t)(have - in) : len;
        int rc = sqlite3_blob_read(r->blob, p, (int)n, (int)in);
        if (rc != SQLITE_OK) {
            r->rc = rc;
            return -1;
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

int img_chunk_read_cb(void *ctx, uint64_t off, void *buf, size_t len)
{
    return img_chunk_read_at(ctx, off, buf, len);
}

void img_chunk_reader_close(img_chunk_reader *r)
{
    if (r && r->blob) {
        sqlite3_blob_close(r->blob);
        r->blob = NULL;
    }
}

int img_read_at(img_store *s, const char *digest, uint64_t off, void *buf, size_t len, size_t *got,
                img_err *err)
{
    int ret = -1;
    img_conn *c = NULL;
    img_blob b;
    img_err_clear(err);
    *got = 0;
    if (img_conn_get(s, &c, err) != 0)
        return -1;
    if (img_tx_read(c, err) != 0)
        goto out;
    if (img_resolve_conn(c, digest, &b, err) != 0)
        goto out;
    if (off < b.size) {
        size_t n = b.size - off < len ? (size_t)(b.size - off) : len;
        img_chunk_reader r = {
            .c = c, .blob_id = b.id, .size = b.size, .chunk_size = b.chunk_size, .cur_seq = -1
        };
        int rc = img_chunk_read_at(&r, off, buf, n);
        img_chunk_reader_close(&r);
        if (rc != 0) {
            img_fail_db(err, NULL, r.rc, "read image");
            goto out;
        }
        *got = n;
    }
    ret = 0;
out:
    img_tx_rollback(s, c, false);
    img_conn_put(s, c);
    return ret;
}

/* Stream blob b on connection c (inside a read transaction) to cb. */
static int read_blob(img_conn *c, const img_blob *b, img_read_cb cb, void *ctx, img_err *err)
{
    sqlite3_stmt *st = img_stmt(c, ST_CHUNKS_ALL, err);
    uint64_t total = 0;
    int rc, ret = -1;
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, b->id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *data = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        total += n;
        if (n && cb(ctx, data, n) != 0) {
            img_fail(err, IMG_E_IO, "reading image %s: stopped by callback", b->digest);
            goto out;
        }
    }
    if (rc != SQLITE_DONE) {
        img_fail_db(err, c->db, rc, "read image");
        goto out;
    }
    if (total != b->size) {
        img_fail(err, IMG_E_CORRUPT, "image %s: stored chunks hold %llu bytes, expected %llu",
                 b->digest, (unsigned long long)total, (unsigned long long)b->size);
        goto out;
    }
    ret = 0;
out:
    sqlite3_reset(st);
    return ret;
}

int img_read(img_store *s, const char *ref, img_read_cb cb, void *ctx, img_err *err)
{
    int ret = -1;
    img_conn *c = NULL;
    img_blob b;
    img_err_clear(err);
    if (img_conn_get(s, &c, err) != 0)
        return -1;
    if (img_tx_read(c, err) != 0)
        goto out;
    if (img_resolve_conn(c, ref, &b, err) != 0)
        goto out;
    ret = read_blob(c, &b, cb, ctx, err);
out:
    img_tx_rollback(s, c, false);
    img_conn_put(s, c);
    return ret;
}

/* ---- materialized files ------------------------------------------------- */

static bool is_cache_name(const char *n)
{
    if (strlen(n) != IMG_DIGEST_HEX + 4 || strcmp(n + IMG_DIGEST_HEX, ".elf") != 0)
        return false;
    for (int i = 0; i < IMG_DIGEST_HEX; i++)
        if (!((n[i] >= '0' && n[i] <= '9') || (n[i] >= 'a' && n[i] <= 'f')))
            return false;
    return true;
}

void img_cache_drop(img_store *s, const char *digest)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s.elf", s->cache_dir, digest + 7) < (int)sizeof path)
        unlink(path);
}

typedef struct sink {
    int fd;
    EVP_MD_CTX *md;
    int err; /* errno of a failed write */
} sink;

static int sink_write(void *ctx, const void *data, size_t len)
{
    sink *k = ctx;
    const unsigned char *p = data;
    if (EVP_DigestUpdate(k->md, data, len) != 1) {
        k->err = EIO;
        return -1;
    }
    while (len > 0) {
        ssize_t n = write(k->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            k->err = n < 0 ? errno : ENOSPC;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

typedef struct cfile {
    char name[IMG_DIGEST_HEX + 5];
    uint64_t size;
    struct timespec mtime;
} cfile;

static int cfile_cmp(const void *a, const void *b)
{
    const cfile *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return strcmp(x->name, y->name);
}

/*
 * Evict least recently used files of unreferenced images until the cache
 * holds at most budget bytes; keep_hex (may be NULL) is never evicted.
 */
static int cache_trim(img_store *s, uint64_t budget, const char *keep_hex, uint64_t *removed,
                      img_err *err)
{
    int ret = -1;
    DIR *d = NULL;
    cfile *files = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    img_conn *c = NULL;
    d = opendir(s->cache_dir);
    if (!d)
        return img_fail(err, IMG_E_IO, "cannot open cache directory '%s': %s", s->cache_dir,
                        strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (!is_cache_name(e->d_name) || fstatat(dirfd(d), e->d_name, &st, 0) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            cfile *nf = realloc(files, cap * sizeof *nf);
            if (!nf) {
                img_fail(err, IMG_E_NOMEM, "out of memory");
                goto out;
            }
            files = nf;
        }
        memcpy(files[n].name, e->d_name, sizeof files[n].name);
        files[n].size = (uint64_t)st.st_size;
        files[n].mtime = st.st_mtim;
        total += (uint64_t)st.st_size;
        n++;
    }
    if (total <= budget) {
        ret = 0;
        goto out;
    }
    qsort(files, n, sizeof *files, cfile_cmp);
    if (img_conn_get(s, &c, err) != 0)
        goto out;
    for (size_t i = 0; i < n && total > budget; i++) {
        char digest[IMG_DIGEST_LEN + 1];
        img_blob b;
        img_err e2;
        if (keep_hex && strncmp(files[i].name, keep_hex, IMG_DIGEST_HEX) == 0)
            continue;
        snprintf(digest, sizeof digest, "sha256:%.64s", files[i].name);
        if (img_blob_any_by_digest(c, digest, &b, &e2) == 0 && b.refs > 0)
            continue; /* in use by a running instance */
        if (unlinkat(dirfd(d), files[i].name, 0) == 0) {
            total -= files[i].size;
            if (removed)
                (*removed)++;
        }
    }
    ret = 0;
out:
    img_conn_put(s, c);
    free(files);
    if (d)
        closedir(d);
    return ret;
}

int img_cache_trim(img_store *s, uint64_t budget_bytes, img_err *err)
{
    img_err_clear(err);
    return cache_trim(s, budget_bytes, NULL, NULL, err);
}

/* Remove files of images no longer stored, and temp files of dead writers. */
int img_cache_gc(img_store *s, uint64_t *removed, img_err *err)
{
    int ret = -1;
    img_conn *c = NULL;
    DIR *d = opendir(s->cache_dir);
    if (!d)
        return img_fail(err, IMG_E_IO, "cannot open cache directory '%s': %s", s->cache_dir,
                        strerror(errno));
    if (img_conn_get(s, &c, err) != 0)
        goto out;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        bool drop = false;
        if (is_cache_name(n)) {
            char digest[IMG_DIGEST_LEN + 1];
            img_blob b;
            img_err e2;
            snprintf(digest, sizeof digest, "sha256:%.64s", n);
            drop = img_blob_any_by_digest(c, digest, &b, &e2) != 0 && e2.code == IMG_E_NOT_FOUND;
        } else if (n[0] == '.' && strlen(n) > IMG_DIGEST_HEX + 2 &&
                   strcmp(n + strlen(n) - 4, ".tmp") == 0) {
            /* .<hex>.<pid>.<seq>.tmp */
            long pid = strtol(n + 1 + IMG_DIGEST_HEX + 1, NULL, 10);
            drop = pid != (long)s->pid && !img_pid_alive((pid_t)pid);
        }
        if (drop && unlinkat(dirfd(d), n, 0) == 0 && removed)
            (*removed)++;
    }
    img_conn_put(s, c);
    c = NULL;
    ret = cache_trim(s, s->o.cache_max_bytes, NULL, removed, err);
out:
    img_conn_put(s, c);
    closedir(d);
    return ret;
}

static int materialize(img_store *s, const char *ref, bool initrd, char **path_out, img_err *err);

int img_materialize(img_store *s, const char *ref, char **path_out, img_err *err)
{
    return materialize(s, ref, false, path_out, err);
}

int img_materialize_initrd(img_store *s, const char *digest, char **path_out, img_err *err)
{
    return materialize(s, digest, true, path_out, err);
}

static int materialize(img_store *s, const char *ref, bool initrd, char **path_out, img_err *err)
{
    int ret = -1, fd = -1, dfd = -1;
    img_conn *c = NULL;
    img_blob b;
    char *path = NULL, *tmp = NULL;
    sink k = { -1, NULL, 0 };
    bool in_tx = false;
    img_err_clear(err);
    *path_out = NULL;
    if (img_conn_get(s, &c, err) != 0)
        return -1;
    if (img_tx_read(c, err) != 0)
        goto out;
    in_tx = true;
    if (initrd) {
        img_err e2;
        if (img_blob_any_by_digest(c, ref, &b, &e2) != 0 || !b.is_initrd) {
            img_fail(err,
                     e2.code == IMG_E_NOT_FOUND || e2.code == IMG_OK ? IMG_E_NOT_FOUND : e2.code,
                     "initrd '%s' not found", ref);
            goto out;
        }
    } else if (img_resolve_conn(c, ref, &b, err) != 0) {
        goto out;
    }
    const char *hex = b.digest + 7;
    if (asprintf(&path, "%s/%s.elf", s->cache_dir, hex) < 0) {
        path = NULL;
        img_fail(err, IMG_E_NOMEM, "out of memory");
        goto out;
    }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == b.size) {
        utimensat(AT_FDCWD, path, NULL, 0); /* most recently used */
        goto done;
    }

    pthread_mutex_lock(&s->mu);
    uint64_t seq = ++s->tmp_seq;
    pthread_mutex_unlock(&s->mu);
    if (asprintf(&tmp, "%s/.%s.%ld.%llu.tmp", s->cache_dir, hex, (long)s->pid,
                 (unsigned long long)seq) < 0) {
        tmp = NULL;
        img_fail(err, IMG_E_NOMEM, "out of memory");
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        img_fail(err, IMG_E_IO, "cannot create '%s': %s", tmp, strerror(errno));
        goto out;
    }
    k.fd = fd;
    k.md = EVP_MD_CTX_new();
    if (!k.md || EVP_DigestInit_ex(k.md, EVP_sha256(), NULL) != 1) {
        img_fail(err, IMG_E_NOMEM, "cannot start SHA-256");
        goto out;
    }
    if (read_blob(c, &b, sink_write, &k, err) != 0) {
        if (k.err)
            img_fail(err, IMG_E_IO, "cannot write '%s': %s", tmp, strerror(k.err));
        goto out;
    }
    img_tx_rollback(s, c, false); /* done reading: end the read transaction */
    in_tx = false;
    unsigned char md[32];
    unsigned int mdlen = 0;
    char got[IMG_DIGEST_LEN + 1];
    if (EVP_DigestFinal_ex(k.md, md, &mdlen) != 1 || mdlen != 32) {
        img_fail(err, IMG_E_IO, "SHA-256 final failed");
        goto out;
    }
    img_digest_format(md, got);
    if (strcmp(got, b.digest) != 0) {
        img_fail(err, IMG_E_CORRUPT, "image %s: stored bytes hash to %s", b.digest, got);
        goto out;
    }
    if (fchmod(fd, 0444) != 0 || fsync(fd) != 0) {
        img_fail(err, IMG_E_IO, "cannot sync '%s': %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        img_fail(err, IMG_E_IO, "cannot close '%s': %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        img_fail(err, IMG_E_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL;
    dfd = open(s->cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        img_fail(err, IMG_E_IO, "cannot sync '%s': %s", s->cache_dir, strerror(errno));
        goto out;
    }
    /* over budget now? evict others (never this one) */
    if (cache_trim(s, s->o.cache_max_bytes, hex, NULL, err) != 0)
        goto out;
done:
    *path_out = path;
    path = NULL;
    ret = 0;
out:
    if (in_tx)
        img_tx_rollback(s, c, false);
    img_conn_put(s, c);
    EVP_MD_CTX_free(k.md);
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (tmp)
        unlink(tmp);
    free(tmp);
    free(path);
    return ret;
}
