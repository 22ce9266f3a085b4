/*
 * img_upload.c - streaming uploads: hash as bytes arrive, store a chunk at a
 * time in a pending blob (invisible), validate the stored bytes at commit,
 * then make the image visible and name it in one transaction.
 */
#include "img_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void upload_free(img_upload *u)
{
    if (!u)
        return;
    EVP_MD_CTX_free(u->md);
    free(u->buf);
    free(u);
}

static void upload_unlink(img_upload *u)
{
    img_store *s = u->s;
    pthread_mutex_lock(&s->mu);
    if (u->prev)
        u->prev->next = u->next;
    else if (s->uploads == u)
        s->uploads = u->next;
    if (u->next)
        u->next->prev = u->prev;
    u->prev = u->next = NULL;
    pthread_mutex_unlock(&s->mu);
}

static int begin(img_store *s, uint64_t size_hint, bool initrd, img_upload **out, img_err *err)
{
    img_upload *u = NULL;
    uint64_t limit = initrd ? s->o.max_initrd_size : s->o.max_image_size;
    img_err_clear(err);
    *out = NULL;
    if (size_hint > limit)
        return img_fail(err, IMG_E_TOO_LARGE, "%s of %llu bytes is over the limit of %llu bytes",
                        initrd ? "initrd" : "upload", (unsigned long long)size_hint,
                        (unsigned long long)limit);
    u = calloc(1, sizeof *u);
    if (!u)
        return img_fail(err, IMG_E_NOMEM, "out of memory");
    u->s = s;
    u->initrd = initrd;
    u->limit = limit;
    u->head_checked = initrd; /* any bytes make an initrd */
    u->chunk_size = s->o.chunk_size;
    u->size_hint = size_hint;
    u->md = EVP_MD_CTX_new();
    u->buf = malloc(u->chunk_size);
    if (!u->md || !u->buf || EVP_DigestInit_ex(u->md, EVP_sha256(), NULL) != 1) {
        upload_free(u);
        return img_fail(err, IMG_E_NOMEM, "cannot start SHA-256");
    }
    pthread_mutex_lock(&s->mu);
    u->next = s->uploads;
    if (s->uploads)
        s->uploads->prev = u;
    s->uploads = u;
    pthread_mutex_unlock(&s->mu);
    *out = u;
    return 0;
}

int img_upload_begin(img_store *s, uint64_t size_hint, img_upload **out, img_err *err)
{
    return begin(s, size_hint, false, out, err);
}

int img_initrd_begin(img_store *s, uint64_t size_hint, img_upload **out, img_err *err)
{
    return begin(s, size_hint, true, out, err);
}

static bool full_digest(const char *digest)
{
    size_t n = digest ? strlen(digest) : 0;
    bool ok = n == IMG_DIGEST_LEN && strncmp(digest, "sha256:", 7) == 0;
    for (size_t i = 7; ok && i < n; i++)
        ok = (digest[i] >= '0' && digest[i] <= '9') || (digest[i] >= 'a' && digest[i] <= 'f');
    return ok;
}

int img_upload_initrd(img_upload *u, const char *digest, img_err *err)
{
    img_err_clear(err);
    if (u->initrd || !full_digest(digest))
        return img_fail(err, IMG_E_INVALID,
                        "initrd '%.80s' is not sha256: and 64 lowercase hex digits",
                        digest ? digest : "");
    memcpy(u->initrd_digest, digest, sizeof u->initrd_digest);
    return 0;
}

int img_upload_expect(img_upload *u, const char *digest, img_err *err)
{
    img_err_clear(err);
    size_t n = digest ? strlen(digest) : 0;
    bool ok = n == IMG_DIGEST_LEN && strncmp(digest, "sha256:", 7) == 0;
    for (size_t i = 7; ok && i < n; i++)
        ok = (digest[i] >= '0' && digest[i] <= '9') || (digest[i] >= 'a' && digest[i] <= 'f');
    if (!ok)
        return img_fail(err, IMG_E_INVALID,
                        "expected digest '%s' is not sha256: and 64 lowercase hex digits",
                        digest ? digest : "");
    memcpy(u->expect, digest, sizeof u->expect);
    return 0;
}

uint64_t img_upload_size(const img_upload *u)
{
    return u ? u->size : 0;
}

/* Store one chunk (len bytes at data) in its own transaction. */
static int store_chunk(img_upload *u, const void *data, size_t len, img_err *err)
{
    img_store *s = u->s;
    img_conn *c = NULL;
    int ret = -1;
    bool created = false;
    int64_t now = (int64_t)time(NULL);
    if (img_conn_get(s, &c, err) != 0)
        return -1;
    if (img_tx_write(s, c, err) != 0)
        goto put;
    if (u->blob_id == 0) {
        sqlite3_stmt *st = img_stmt(c, ST_BLOB_NEW, err);
        if (!st)
            goto out;
        sqlite3_bind_int64(st, 1, u->chunk_size);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_int64(st, 3, (int64_t)s->pid);
        sqlite3_bind_text(st, 4, s->session, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            img_fail_db(err, c->db, rc, "store upload");
            goto out;
        }
        pthread_mutex_lock(&s->mu);
        u->blob_id = sqlite3_last_insert_rowid(c->db);
        pthread_mutex_unlock(&s->mu);
        created = true;
    }
    sqlite3_stmt *st = img_stmt(c, ST_CHUNK_PUT, err);
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, u->blob_id);
    sqlite3_bind_int64(st, 2, (int64_t)u->seq);
    sqlite3_bind_blob64(st, 3, data, len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        img_fail_db(err, c->db, rc, "store upload chunk");
        goto out;
    }
    st = img_stmt(c, ST_BLOB_TOUCH, err);
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, u->blob_id);
    sqlite3_bind_int64(st, 2, (int64_t)(u->seq * u->chunk_size + len));
    sqlite3_bind_int64(st, 3, now);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        img_fail_db(err, c->db, rc, "store upload");
        goto out;
    }
    if (img_tx_commit(s, c, true, err) != 0)
        goto undo;
    u->seq++;
    ret = 0;
    goto put;
out:
    img_tx_rollback(s, c, true);
undo:
    if (created) { /* the row was rolled back with the transaction */
        pthread_mutex_lock(&s->mu);
        u->blob_id = 0;
        pthread_mutex_unlock(&s->mu);
    }
put:
    img_conn_put(s, c);
    return ret;
}

static int check_head(img_upload *u, const void *data, size_t len, img_err *err)
{
    char msg[IMG_VALIDATE_MSG_MAX];
    u->head_checked = true;
    if (len < 32768)
        return 0; /* too little to judge; commit validates everything */
    if (img_validate_head(data, len, msg, sizeof msg) != IMG_VALID)
        return img_fail(err, IMG_E_INVALID, "image is not bootable: %s", msg);
    return 0;
}

int img_upload_write(img_upload *u, const void *data, size_t len, img_err *err)
{
    const unsigned char *p = data;
    img_err_clear(err);
    if (u->failed)
        return img_fail(err, IMG_E_CONFLICT, "upload already failed; abort it");
    if (len > u->limit - u->size) {
        u->failed = true;
        return img_fail(err, IMG_E_TOO_LARGE, "%s is over the limit of %llu bytes",
                        u->initrd ? "initrd" : "upload", (unsigned long long)u->limit);
    }
    if (len && EVP_DigestUpdate(u->md, data, len) != 1) {
        u->failed = true;
        return img_fail(err, IMG_E_IO, "SHA-256 update failed");
    }
    u->size += len;
    while (len > 0) {
        if (u->buf_len == 0 && len >= u->chunk_size) {
            /* a whole chunk in the caller's buffer: store it from there */
            if ((!u->head_checked && check_head(u, p, u->chunk_size, err) != 0) ||
                store_chunk(u, p, u->chunk_size, err) != 0)
                goto fail;
            p += u->chunk_size;
            len -= u->chunk_size;
            continue;
        }
        size_t n = u->chunk_size - u->buf_len;
        if (n > len)
            n = len;
        memcpy(u->buf + u->buf_len, p, n);
        u->buf_len += n;
        p += n;
        len -= n;
        if (u->buf_len == u->chunk_size) {
            if ((!u->head_checked && check_head(u, u->buf, u->buf_len, err) != 0) ||
                store_chunk(u, u->buf, u->buf_len, err) != 0)
                goto fail;
            u->buf_len = 0;
        }
    }
    return 0;
fail:
    u->failed = true;
    return -1;
}

/* Validate the stored bytes of the pending blob. */
static int validate_stored(img_upload *u, img_vresult *vr, img_err *err)
{
    img_store *s = u->s;
    img_conn *c = NULL;
    int ret = -1;
    char msg[IMG_VALIDATE_MSG_MAX];
    img_limits lim = { s->o.max_image_size, s->o.max_load_size, 0 };
    if (img_conn_get(s, &c, err) != 0)
        return -1;
    if (img_tx_read(c, err) != 0)
        goto out;
    img_chunk_reader r = {
        .c = c, .blob_id = u->blob_id, .size = u->size, .chunk_size = u->chunk_size, .cur_seq = -1
    };
    img_vstatus vs = img_validate_reader(img_chunk_read_cb, &r, u->size, &lim, vr, msg, sizeof msg);
    int rc = r.rc;
    img_chunk_reader_close(&r);
    switch (vs) {
    case IMG_VALID: ret = 0; break;
    case IMG_VINVALID: img_fail(err, IMG_E_INVALID, "image is not bootable: %s", msg); break;
    case IMG_VTOO_LARGE: img_fail(err, IMG_E_TOO_LARGE, "image is too large: %s", msg); break;
    case IMG_VIO:
        img_fail(err, IMG_E_IO, "reading the upload back: %s (%s)", msg, sqlite3_errstr(rc));
        break;
    }
out:
    img_tx_rollback(s, c, false);
    img_conn_put(s, c);
    return ret;
}

/* The end of the bytes, for both commits: refuse an empty upload (empty
 * is the message), store the last buffered chunk, finish the SHA-256 into
 * digest and check it against the digest the client announced. */
static int finish_bytes(img_upload *u, const char *empty, char digest[IMG_DIGEST_LEN + 1],
                        img_err *err)
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    if (u->size == 0)
        return img_fail(err, IMG_E_INVALID, "%s", empty);
    if (u->buf_len > 0) {
        if (store_chunk(u, u->buf, u->buf_len, err) != 0)
            return -1;
        u->buf_len = 0;
    }
    if (EVP_DigestFinal_ex(u->md, md, &mdlen) != 1 || mdlen != 32)
        return img_fail(err, IMG_E_IO, "SHA-256 final failed");
    img_digest_format(md, digest);
    if (u->expect[0] && strcmp(u->expect, digest) != 0)
        return img_fail(err, IMG_E_INVALID, "upload has digest %s, expected %s", digest, u->expect);
    return 0;
}

int img_upload_commit(img_upload *u, const char *name, const char *tag, const img_label *labels,
                      size_t nlabels, img_info *info, img_err *err)
{
    img_store *s = u->s;
    img_conn *c = NULL;
    int ret = -1;
    char digest[IMG_DIGEST_LEN + 1];
    img_vresult vr;
    img_blob b;
    int64_t target = 0;
    char evidence[IMG_EVIDENCE_TEXT_MAX + 1] = "";
    img_profile profile = { .firmware = IMG_FW_NONE,
                            .cmdline = IMG_CMDLINE_NONE,
                            .exit = IMG_EXIT_NONE };
    img_err_clear(err);
    if (info)
        memset(info, 0, sizeof *info);
    if (!tag || !*tag)
        tag = IMG_DEFAULT_TAG;
    if (u->failed) {
        img_fail(err, IMG_E_CONFLICT, "upload already failed; abort it");
        goto done;
    }
    if (u->initrd) {
        img_fail(err, IMG_E_INVALID, "an initrd upload ends with img_initrd_commit");
        goto done;
    }
    if (name && (img_valid_name(name, err) != 0 || img_valid_tag(tag, err) != 0))
        goto done;
    if (nlabels > IMG_LABELS_MAX) {
        img_fail(err, IMG_E_INVALID, "%zu labels is over the limit of %d", nlabels, IMG_LABELS_MAX);
        goto done;
    }
    for (size_t i = 0; i < nlabels; i++) {
        if (!labels[i].value) {
            img_fail(err, IMG_E_INVALID, "label '%s' has no value",
                     labels[i].key ? labels[i].key : "");
            goto done;
        }
        if (img_valid_label(labels[i].key, labels[i].value, err) != 0)
            goto done;
    }
    if (finish_bytes(u, "upload is empty", digest, err) != 0)
        goto done;
    if (validate_stored(u, &vr, err) != 0)
        goto done;
    img_evidence_join(&vr, evidence);
    profile = img_profile_default(vr.kind);

    if (img_conn_get(s, &c, err) != 0)
        goto done;
    if (img_tx_write(s, c, err) != 0)
        goto put;
    img_err e2;
    if (img_resolve_conn(c, digest, &b, &e2) == 0) {
        target = b.id; /* same content already stored: keep one copy */
        if (img_delete_blob(c, u->blob_id, err) != 0)
            goto rollback;
    } else if (e2.code == IMG_E_NOT_FOUND) {
        sqlite3_stmt *st = img_stmt(c, ST_BLOB_READY, err);
        if (!st)
            goto rollback;
        sqlite3_bind_int64(st, 1, u->blob_id);
        sqlite3_bind_text(st, 2, digest, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (int64_t)u->size);
        sqlite3_bind_text(st, 4, img_boot_name(vr.boot), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, (int64_t)time(NULL));
        sqlite3_bind_text(st, 6, img_format_name(vr.format), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, img_kind_name(vr.kind), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, evidence, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, img_firmware_name(profile.firmware), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 10, img_cmdline_name(profile.cmdline), -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            img_fail_db(err, c->db, rc, "commit upload");
            goto rollback;
        }
        if (sqlite3_changes(c->db) != 1) {
            img_fail(err, IMG_E_CONFLICT, "upload %s vanished before commit (collected?)", digest);
            goto rollback;
        }
        target = u->blob_id;
    } else {
        if (err)
            *err = e2;
        goto rollback;
    }
    if (u->initrd_digest[0]) {
        img_blob rd, tb;
        sqlite3_stmt *st;
        int64_t old = 0;
        if (vr.format == IMG_FORMAT_RAW || vr.format == IMG_FORMAT_QCOW2) {
            img_fail(err, IMG_E_INVALID,
                     "a disk image (format %s) takes no initrd: it has no kernel to hand it to",
                     img_format_name(vr.format));
            goto rollback;
        }
        st = img_stmt(c, ST_INITRD_BY_DIGEST, err);
        if (!st)
            goto rollback;
        sqlite3_bind_text(st, 1, u->initrd_digest, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            img_blob_row(st, 0, &rd);
        sqlite3_reset(st);
        if (rc != SQLITE_ROW) {
            if (rc == SQLITE_DONE)
                img_fail(err, IMG_E_NOT_FOUND, "initrd %s not found (upload it first)",
                         u->initrd_digest);
            else
                img_fail_db(err, c->db, rc, "look up initrd");
            goto rollback;
        }
        if (img_blob_by_id(c, target, &tb, err) != 0)
            goto rollback;
        old = tb.initrd_id;
        st = img_stmt(c, ST_INITRD_SET, err);
        if (!st)
            goto rollback;
        sqlite3_bind_int64(st, 1, target);
        sqlite3_bind_int64(st, 2, rd.id);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            img_fail_db(err, c->db, rc, "set initrd");
            goto rollback;
        }
        if (old && old != rd.id && img_initrd_drop_orphan(c, old, err) != 0)
            goto rollback;
    }
    for (size_t i = 0; i < nlabels; i++) {
        sqlite3_stmt *st = img_stmt(c, ST_LABEL_SET, err);
        if (!st)
            goto rollback;
        sqlite3_bind_int64(st, 1, target);
        sqlite3_bind_text(st, 2, labels[i].key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, labels[i].value, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            img_fail_db(err, c->db, rc, "set label");
            goto rollback;
        }
    }
    if (name) {
        sqlite3_stmt *st = img_stmt(c, ST_TAG_SET, err);
        if (!st)
            goto rollback;
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, tag, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, target);
        sqlite3_bind_int64(st, 4, (int64_t)time(NULL));
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            img_fail_db(err, c->db, rc, "name image");
            goto rollback;
        }
    }
    if (img_tx_commit(s, c, true, err) != 0)
        goto put;
    /* visible now; the pending row is either the image or gone */
    pthread_mutex_lock(&s->mu);
    u->blob_id = 0;
    pthread_mutex_unlock(&s->mu);
    ret = 0;
    if (info) {
        img_err e3;
        if (img_blob_by_id(c, target, &b, &e3) == 0 && img_fill_info(c, &b, info, &e3) == 0 &&
            name) {
            snprintf(info->name, sizeof info->name, "%s", name);
            snprintf(info->tag, sizeof info->tag, "%s", tag);
        } else if (!info->digest[0]) {
            memcpy(info->digest, digest, sizeof digest);
            info->size = u->size;
            info->boot = vr.boot;
            info->format = vr.format;
            info->kind = vr.kind;
            info->profile = profile;
            for (uint32_t i = 0; i < vr.nevidence && i < IMG_EVIDENCE_MAX; i++)
                snprintf(info->evidence[i], sizeof info->evidence[i], "%s", vr.evidence[i]);
            info->nevidence = vr.nevidence;
        }
    }
    goto put;
rollback:
    img_tx_rollback(s, c, true);
put:
    img_conn_put(s, c);
done:
    img_upload_abort(u);
    return ret;
}

int img_initrd_commit(img_upload *u, img_info *info, img_err *err)
{
    img_store *s = u->s;
    img_conn *c = NULL;
    int ret = -1;
    char digest[IMG_DIGEST_LEN + 1];
    img_blob b;
    int64_t target = 0;
    img_err e2;
    img_err_clear(err);
    if (info)
        memset(info, 0, sizeof *info);
    if (u->failed) {
        img_fail(err, IMG_E_CONFLICT, "upload already failed; abort it");
        goto done;
    }
    if (!u->initrd) {
        img_fail(err, IMG_E_INVALID, "not an initrd upload (img_initrd_begin)");
        goto done;
    }
    if (finish_bytes(u, "initrd is empty", digest, err) != 0)
        goto done;
    if (img_conn_get(s, &c, err) != 0)
        goto done;
    if (img_tx_write(s, c, err) != 0)
        goto put;
    if (img_blob_any_by_digest(c, digest, &b, &e2) == 0) {
        if (!b.is_initrd) {
            img_fail(err, IMG_E_CONFLICT, "%s is stored as an image; an initrd cannot be one",
                     digest);
            goto rollback;
        }
        target = b.id; /* the same initrd stored before: keep one copy */
        if (img_delete_blob(c, u->blob_id, err) != 0)
            goto rollback;
    } else if (e2.code == IMG_E_NOT_FOUND) {
        sqlite3_stmt *st = img_stmt(c, ST_INITRD_READY, err);
        if (!st)
            goto rollback;
        sqlite3_bind_int64(st, 1, u->blob_id);
        sqlite3_bind_text(st, 2, digest, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (int64_t)u->size);
        sqlite3_bind_int64(st, 4, (int64_t)time(NULL));
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            img_fail_db(err, c->db, rc, "commit initrd");
            goto rollback;
        }
        if (sqlite3_changes(c->db) != 1) {
            img_fail(err, IMG_E_CONFLICT, "upload %s vanished before commit (collected?)", digest);
            goto rollback;
        }
        target = u->blob_id;
    } else {
        if (err)
            *err = e2;
        goto rollback;
    }
    if (img_tx_commit(s, c, true, err) != 0)
        goto put;
    pthread_mutex_lock(&s->mu);
    u->blob_id = 0;
    pthread_mutex_unlock(&s->mu);
    ret = 0;
    if (info && img_blob_by_id(c, target, &b, &e2) == 0) {
        memcpy(info->digest, b.digest, sizeof info->digest);
        info->size = b.size;
        info->created = b.created;
    }
    goto put;
rollback:
    img_tx_rollback(s, c, true);
put:
    img_conn_put(s, c);
done:
    img_upload_abort(u);
    return ret;
}

void img_upload_abort(img_upload *u)
{
    if (!u)
        return;
    img_store *s = u->s;
    if (u->blob_id != 0) {
        /* best effort: if this fails (disk full...), img_gc collects the row
           later, since no open upload of this session claims it any more */
        img_conn *c = NULL;
        if (img_conn_get(s, &c, NULL) == 0) {
            if (img_tx_write(s, c, NULL) == 0) {
                if (img_delete_blob(c, u->blob_id, NULL) == 0)
                    img_tx_commit(s, c, true, NULL);
                else
                    img_tx_rollback(s, c, true);
            }
            img_conn_put(s, c);
        }
    }
    upload_unlink(u);
    upload_free(u);
}

int img_import_file(img_store *s, const char *path, const char *name, const char *tag,
                    const img_label *labels, size_t nlabels, img_info *info, img_err *err)
{
    int ret = -1, fd = -1;
    img_upload *u = NULL;
    unsigned char *buf = NULL;
    struct stat st;
    const size_t bufsz = 1u << 20;
    img_err_clear(err);
    if (info)
        memset(info, 0, sizeof *info);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        img_fail(err, errno == ENOENT ? IMG_E_NOT_FOUND : IMG_E_IO, "cannot open '%s': %s", path,
                 strerror(errno));
        goto out;
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > s->o.max_image_size) {
        img_fail(err, IMG_E_TOO_LARGE, "'%s' is %llu bytes, over the limit of %llu bytes", path,
                 (unsigned long long)st.st_size, (unsigned long long)s->o.max_image_size);
        goto out;
    }
    buf = malloc(bufsz);
    if (!buf) {
        img_fail(err, IMG_E_NOMEM, "out of memory");
        goto out;
    }
    if (img_upload_begin(s, S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0, &u, err) != 0)
        goto out;
    for (;;) {
        ssize_t n = read(fd, buf, bufsz);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            img_fail(err, IMG_E_IO, "cannot read '%s': %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if (img_upload_write(u, buf, (size_t)n, err) != 0)
            goto out;
    }
    ret = img_upload_commit(u, name, tag, labels, nlabels, info, err);
    u = NULL;
out:
    img_upload_abort(u);
    free(buf);
    if (fd >= 0)
        close(fd);
    return ret;
}
