/*
 * img_testlib.h - helpers for the image store tests and benchmark:
 * scratch directories, streaming generated images into a store, digests.
 * Header-only (static functions) so each test binary stays one file.
 */
#ifndef SHOAL_IMG_TESTLIB_H
#define SHOAL_IMG_TESTLIB_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "img_store.h"
#include "img_testutil.h"

/* A fresh directory under $TMPDIR or /tmp; caller frees the string. */
static inline char *imgt_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    char *p = NULL;
    if (asprintf(&p, "%s/shoal-img-XXXXXX", base && *base ? base : "/tmp") < 0)
        return NULL;
    if (!mkdtemp(p)) {
        free(p);
        return NULL;
    }
    return p;
}

static inline int imgt_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(path);
}

/* rm -rf dir, then free it. */
static inline void imgt_rmtree(char *dir)
{
    if (!dir)
        return;
    nftw(dir, imgt_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* "sha256:<hex>" of the generated image (seed, size). */
static inline void imgt_digest(uint64_t seed, uint64_t size, char out[IMG_DIGEST_LEN + 1])
{
    static const char hx[] = "0123456789abcdef";
    size_t bs = 1u << 20;
    uint8_t *buf = malloc(bs);
    unsigned char md[32];
    unsigned int mdlen;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    for (uint64_t off = 0; off < size; off += bs) {
        size_t n = size - off < bs ? (size_t)(size - off) : bs;
        imgt_fill(seed, size, off, buf, n);
        EVP_DigestUpdate(c, buf, n);
    }
    EVP_DigestFinal_ex(c, md, &mdlen);
    EVP_MD_CTX_free(c);
    free(buf);
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++) {
        out[7 + 2 * i] = hx[md[i] >> 4];
        out[8 + 2 * i] = hx[md[i] & 15];
    }
    out[IMG_DIGEST_LEN] = '\0';
}

/*
 * Stream the generated image (seed, size) into s, wsize bytes per write,
 * and commit it as name:tag. Returns img_upload_commit's result.
 */
static inline int imgt_upload(img_store *s, uint64_t seed, uint64_t size, size_t wsize,
                              const char *name, const char *tag, img_info *info, img_err *err)
{
    img_upload *u = NULL;
    uint8_t *buf = malloc(wsize ? wsize : 1);
    int rc = -1;
    if (!buf || img_upload_begin(s, 0, &u, err) != 0)
        goto out;
    for (uint64_t off = 0; off < size; off += wsize) {
        size_t n = size - off < wsize ? (size_t)(size - off) : wsize;
        imgt_fill(seed, size, off, buf, n);
        if (img_upload_write(u, buf, n, err) != 0)
            goto out;
    }
    rc = img_upload_commit(u, name, tag, NULL, 0, info, err);
    u = NULL;
out:
    img_upload_abort(u);
    free(buf);
    return rc;
}

typedef struct imgt_hash {
    EVP_MD_CTX *c;
    uint64_t n;
} imgt_hash;

static inline int imgt_hash_cb(void *ctx, const void *data, size_t len)
{
    imgt_hash *h = ctx;
    h->n += len;
    return EVP_DigestUpdate(h->c, data, len) == 1 ? 0 : -1;
}

/* Digest of what img_read streams for ref; *size gets the byte count. */
static inline int imgt_read_digest(img_store *s, const char *ref, char out[IMG_DIGEST_LEN + 1],
                                   uint64_t *size, img_err *err)
{
    static const char hx[] = "0123456789abcdef";
    imgt_hash h = { EVP_MD_CTX_new(), 0 };
    unsigned char md[32];
    unsigned int mdlen;
    EVP_DigestInit_ex(h.c, EVP_sha256(), NULL);
    int rc = img_read(s, ref, imgt_hash_cb, &h, err);
    EVP_DigestFinal_ex(h.c, md, &mdlen);
    EVP_MD_CTX_free(h.c);
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++) {
        out[7 + 2 * i] = hx[md[i] >> 4];
        out[8 + 2 * i] = hx[md[i] & 15];
    }
    out[IMG_DIGEST_LEN] = '\0';
    if (size)
        *size = h.n;
    return rc;
}

/* One integer from a SQL query on the database file (a separate connection). */
static inline long long imgt_sql_int(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

#endif /* SHOAL_IMG_TESTLIB_H */
