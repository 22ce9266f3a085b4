/*
 * img_store.c - the store: SQLite connections, schema, names, tags, labels,
 * references, listing and garbage collection. Uploads are in img_upload.c,
 * reading and materialized files in img_cache.c.
 */
#include "img_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- errors ------------------------------------------------------------- */

const char *img_errcode_name(img_errcode code)
{
    switch (code) {
    case IMG_OK: return "ok";
    case IMG_E_NOT_FOUND: return "not found";
    case IMG_E_INVALID: return "invalid";
    case IMG_E_CONFLICT: return "conflict";
    case IMG_E_AMBIGUOUS: return "ambiguous";
    case IMG_E_IN_USE: return "in use";
    case IMG_E_TOO_LARGE: return "too large";
    case IMG_E_IO: return "I/O error";
    case IMG_E_CORRUPT: return "corrupt";
    case IMG_E_NOMEM: return "out of memory";
    case IMG_E_BUSY: return "busy";
    }
    return "unknown error";
}

void img_err_clear(img_err *err)
{
    if (err) {
        err->code = IMG_OK;
        err->msg[0] = '\0';
    }
}

int img_fail(img_err *err, img_errcode code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return -1;
}

int img_fail_db(img_err *err, sqlite3 *db, int rc, const char *what)
{
    img_errcode code;
    switch (rc & 0xff) {
    case SQLITE_FULL: code = IMG_E_IO; break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: code = IMG_E_BUSY; break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: code = IMG_E_CORRUPT; break;
    case SQLITE_NOMEM: code = IMG_E_NOMEM; break;
    case SQLITE_CONSTRAINT: code = IMG_E_CONFLICT; break;
    default: code = IMG_E_IO; break;
    }
    if ((rc & 0xff) == SQLITE_FULL)
        return img_fail(err, code, "%s: disk full", what);
    return img_fail(err, code, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* ---- names -------------------------------------------------------------- */

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}
static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int img_valid_name(const char *name, img_err *err)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0)
        return img_fail(err, IMG_E_INVALID, "image name is empty");
    if (n > IMG_NAME_MAX)
        return img_fail(err, IMG_E_INVALID, "image name '%.40s...' is longer than %d characters",
                        name, IMG_NAME_MAX);
    if (!is_lower_alnum(name[0]))
        return img_fail(err, IMG_E_INVALID,
                        "image name '%s' must start with a lowercase letter or digit", name);
    for (size_t i = 1; i < n; i++) {
        char c = name[i];
        if (!is_lower_alnum(c) && c != '.' && c != '_' && c != '-' && c != '/')
            return img_fail(err, IMG_E_INVALID,
                            "image name '%s': character %zu is not one of [a-z0-9._/-]", name,
                            i + 1);
    }
    return 0;
}

int img_valid_tag(const char *tag, img_err *err)
{
    size_t n = tag ? strlen(tag) : 0;
    if (n == 0)
        return img_fail(err, IMG_E_INVALID, "image tag is empty");
    if (n > IMG_TAG_MAX)
        return img_fail(err, IMG_E_INVALID, "image tag '%.40s...' is longer than %d characters",
                        tag, IMG_TAG_MAX);
    if (!is_alnum(tag[0]) && tag[0] != '_')
        return img_fail(err, IMG_E_INVALID, "image tag '%s' must start with a letter, digit or _",
                        tag);
    for (size_t i = 1; i < n; i++) {
        char c = tag[i];
        if (!is_alnum(c) && c != '.' && c != '_' && c != '-')
            return img_fail(err, IMG_E_INVALID,
                            "image tag '%s': character %zu is not one of [A-Za-z0-9._-]", tag,
                            i + 1);
    }
    return 0;
}

int img_valid_label(const char *key, const char *value, img_err *err)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0)
        return img_fail(err, IMG_E_INVALID, "label key is empty");
    if (n > IMG_LABEL_KEY_MAX)
        return img_fail(err, IMG_E_INVALID, "label key '%.40s...' is longer than %d characters",
                        key, IMG_LABEL_KEY_MAX);
    if (!is_alnum(key[0]))
        return img_fail(err, IMG_E_INVALID, "label key '%s' must start with a letter or digit",
                        key);
    for (size_t i = 1; i < n; i++) {
        char c = key[i];
        if (!is_alnum(c) && c != '.' && c != '_' && c != '-' && c != '/')
            return img_fail(err, IMG_E_INVALID,
                            "label key '%s': character %zu is not one of [A-Za-z0-9._/-]", key,
                            i + 1);
    }
    if (!value)
        return 0;
    n = strlen(value);
    if (n > IMG_LABEL_VALUE_MAX)
        return img_fail(err, IMG_E_INVALID, "label '%s': value is longer than %d bytes", key,
                        IMG_LABEL_VALUE_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x20 || c == 0x7f)
            return img_fail(err, IMG_E_INVALID,
                            "label '%s': value has a control character at byte %zu", key, i + 1);
    }
    return 0;
}

/* Split "name[:tag]" into the caller's buffers. */
static int split_ref(const char *ref, char name[IMG_NAME_MAX + 1], char tag[IMG_TAG_MAX + 1],
                     img_err *err)
{
    const char *colon = strchr(ref, ':');
    size_t nlen = colon ? (size_t)(colon - ref) : strlen(ref);
    if (nlen > IMG_NAME_MAX)
        return img_fail(err, IMG_E_INVALID, "image name in '%.40s...' is longer than %d characters",
                        ref, IMG_NAME_MAX);
    memcpy(name, ref, nlen);
    name[nlen] = '\0';
    const char *t = colon ? colon + 1 : IMG_DEFAULT_TAG;
    if (strlen(t) > IMG_TAG_MAX)
        return img_fail(err, IMG_E_INVALID, "image tag in '%.40s...' is longer than %d characters",
                        ref, IMG_TAG_MAX);
    strcpy(tag, t);
    img_err e2;
    if (img_valid_name(name, &e2) != 0 || img_valid_tag(tag, &e2) != 0)
        return img_fail(err, IMG_E_INVALID, "invalid image reference '%s': %s", ref, e2.msg);
    return 0;
}

void img_digest_format(const unsigned char md[32], char out[IMG_DIGEST_LEN + 1])
{
    static const char hx[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++) {
        out[7 + 2 * i] = hx[md[i] >> 4];
        out[8 + 2 * i] = hx[md[i] & 15];
    }
    out[IMG_DIGEST_LEN] = '\0';
}

/* ---- schema ------------------------------------------------------------- */

/* migrations[v] takes a database from user_version v to v + 1. */
static const char *const migrations[IMG_SCHEMA_VERSION] = {
    /* 0 -> 1 */
    "CREATE TABLE blobs("
    "  id INTEGER PRIMARY KEY,"
    "  digest TEXT UNIQUE,"                                      /* NULL while pending */
    "  state INTEGER NOT NULL DEFAULT 0 CHECK(state IN (0, 1))," /* 0 pending, 1 ready */
    "  size INTEGER NOT NULL DEFAULT 0,"
    "  chunk_size INTEGER NOT NULL CHECK(chunk_size > 0),"
    "  boot TEXT,"
    "  created INTEGER NOT NULL,"
    "  refs INTEGER NOT NULL DEFAULT 0 CHECK(refs >= 0),"
    "  owner_pid INTEGER,"         /* pending: uploading process */
    "  owner_session TEXT,"        /* pending: its store session */
    "  touched INTEGER NOT NULL);" /* pending: last write */
    "CREATE INDEX blobs_state ON blobs(state);"
    "CREATE TABLE chunks("
    "  id INTEGER PRIMARY KEY,"
    "  blob_id INTEGER NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL,"
    "  data BLOB NOT NULL,"
    "  UNIQUE(blob_id, seq));"
    "CREATE TABLE tags("
    "  name TEXT NOT NULL,"
    "  tag TEXT NOT NULL,"
    "  blob_id INTEGER NOT NULL REFERENCES blobs(id),"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  PRIMARY KEY(name, tag)) WITHOUT ROWID;"
    "CREATE INDEX tags_blob ON tags(blob_id);"
    "CREATE TABLE labels("
    "  blob_id INTEGER NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY(blob_id, key)) WITHOUT ROWID;",
    /* 1 -> 2: what the image is and how to boot it (then backfill_kinds) */
    "ALTER TABLE blobs ADD COLUMN format TEXT;"   /* elf, bin, raw, qcow2 */
    "ALTER TABLE blobs ADD COLUMN kind TEXT;"     /* shoal, unikraft, solo5, pvh, ... */
    "ALTER TABLE blobs ADD COLUMN evidence TEXT;" /* newline-separated */
    "ALTER TABLE blobs ADD COLUMN firmware TEXT;" /* profile: qboot, seabios */
    "ALTER TABLE blobs ADD COLUMN cmdline TEXT;", /* profile: shoal, unikraft, solo5, raw */
    /* 2 -> 3: profiles can be changed (img_profile_set); NULL reads as the
       kind's default, so no row needs rewriting */
    "ALTER TABLE blobs ADD COLUMN exit TEXT;"      /* profile: status, debug-exit, poweroff */
    "ALTER TABLE blobs ADD COLUMN template TEXT;", /* profile: cmdline 'template' */
    /* 3 -> 4: initrds, blobs of their own that images point at */
    "ALTER TABLE blobs ADD COLUMN role TEXT;"         /* NULL: an image; 'initrd' */
    "ALTER TABLE blobs ADD COLUMN initrd_id INTEGER;" /* an image's initrd blob */
    "CREATE INDEX blobs_initrd ON blobs(initrd_id);",
    /* 4 -> 5: probes in the profile (text the daemon checks); NULL reads
       as the kind's default readiness and no health probe */
    "ALTER TABLE blobs ADD COLUMN ready TEXT;"
    "ALTER TABLE blobs ADD COLUMN health TEXT;"
    "ALTER TABLE blobs ADD COLUMN health_interval_s INTEGER;"
    "ALTER TABLE blobs ADD COLUMN health_timeout_s INTEGER;"
    "ALTER TABLE blobs ADD COLUMN health_retries INTEGER;",
    /* 5 -> 6: the warm pool size in the profile; NULL reads as 0, no pool */
    "ALTER TABLE blobs ADD COLUMN warm_pool INTEGER;",
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BLOB_NEW] =
        "INSERT INTO blobs(state, chunk_size, created, owner_pid, owner_session, touched)"
        " VALUES(0, ?1, ?2, ?3, ?4, ?2)",
    [ST_CHUNK_PUT] = "INSERT INTO chunks(blob_id, seq, data) VALUES(?1, ?2, ?3)",
    [ST_BLOB_TOUCH] = "UPDATE blobs SET size = ?2, touched = ?3 WHERE id = ?1 AND state = 0",
    [ST_BLOB_BY_DIGEST] =
        "SELECT " IMG_BLOB_COLS " FROM blobs WHERE digest = ?1 AND state = 1 AND role IS NULL",
    [ST_BLOB_BY_ID] = "SELECT " IMG_BLOB_COLS " FROM blobs WHERE id = ?1",
    [ST_BLOB_PREFIX] = "SELECT " IMG_BLOB_COLS " FROM blobs"
                       " WHERE digest >= ?1 AND digest < ?2 AND state = 1 AND role IS NULL LIMIT 2",
    [ST_BLOB_READY] = "UPDATE blobs SET digest = ?2, state = 1, size = ?3, boot = ?4, created = ?5,"
                      " format = ?6, kind = ?7, evidence = ?8, firmware = ?9, cmdline = ?10,"
                      " owner_pid = NULL, owner_session = NULL WHERE id = ?1 AND state = 0",
    [ST_BLOB_DELETE] = "DELETE FROM blobs WHERE id = ?1",
    [ST_CHUNK_ROWID] = "SELECT id FROM chunks WHERE blob_id = ?1 AND seq = ?2",
    [ST_CHUNKS_ALL] = "SELECT data FROM chunks WHERE blob_id = ?1 ORDER BY seq",
    [ST_TAG_GET] = "SELECT blob_id FROM tags WHERE name = ?1 AND tag = ?2",
    [ST_TAG_SET] =
        "INSERT INTO tags(name, tag, blob_id, created, updated) VALUES(?1, ?2, ?3, ?4, ?4)"
        " ON CONFLICT(name, tag) DO UPDATE SET blob_id = excluded.blob_id,"
        " updated = excluded.updated",
    [ST_TAG_DEL] = "DELETE FROM tags WHERE name = ?1 AND tag = ?2",
    [ST_TAGS_DEL_BLOB] = "DELETE FROM tags WHERE blob_id = ?1",
    [ST_LABEL_SET] = "INSERT INTO labels(blob_id, key, value) VALUES(?1, ?2, ?3)"
                     " ON CONFLICT(blob_id, key) DO UPDATE SET value = excluded.value",
    [ST_LABEL_DEL] = "DELETE FROM labels WHERE blob_id = ?1 AND key = ?2",
    [ST_LABELS_GET] = "SELECT key, value FROM labels WHERE blob_id = ?1 ORDER BY key",
    [ST_REF_ADD] = "UPDATE blobs SET refs = refs + 1 WHERE id = ?1 AND state = 1",
    [ST_REF_SUB] = "UPDATE blobs SET refs = refs - 1 WHERE id = ?1 AND refs > 0",
    [ST_BLOB_ANY_DIGEST] = "SELECT " IMG_BLOB_COLS " FROM blobs WHERE digest = ?1 AND state = 1",
    [ST_INITRD_BY_DIGEST] =
        "SELECT " IMG_BLOB_COLS " FROM blobs WHERE digest = ?1 AND state = 1 AND role = 'initrd'",
    [ST_INITRD_READY] = "UPDATE blobs SET digest = ?2, state = 1, size = ?3, created = ?4,"
                        " role = 'initrd', owner_pid = NULL, owner_session = NULL"
                        " WHERE id = ?1 AND state = 0",
    [ST_INITRD_SET] = "UPDATE blobs SET initrd_id = ?2 WHERE id = ?1",
    [ST_INITRD_ORPHAN] = "DELETE FROM blobs WHERE id = ?1 AND role = 'initrd' AND refs = 0"
                         " AND NOT EXISTS (SELECT 1 FROM blobs i WHERE i.initrd_id = ?1)",
    [ST_PROFILE_SET] = "UPDATE blobs SET firmware = ?2, cmdline = ?3, exit = ?4, template = ?5,"
                       " ready = ?6, health = ?7, health_interval_s = ?8, health_timeout_s = ?9,"
                       " health_retries = ?10, warm_pool = ?11 WHERE id = ?1 AND state = 1",
};

static int exec(sqlite3 *db, const char *sql, img_err *err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return img_fail_db(err, db, rc, sql);
    return 0;
}

/* Switching a new database to WAL takes an exclusive lock, and SQLite
 * answers "database is locked" at once, without its busy handler, when
 * several processes open a fresh file together (seen 6 times in 30 with 4
 * processes): retry until the busy timeout. */
static int set_wal(sqlite3 *db, int timeout_ms, img_err *err)
{
    const char *sql = "PRAGMA journal_mode = WAL";
    int rc;
    for (int waited = 0;; waited += 5) {
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
            break;
        if (waited >= timeout_ms)
            break;
        nanosleep(&(struct timespec){ 0, 5 * 1000000L }, NULL);
    }
    return rc == SQLITE_OK ? 0 : img_fail_db(err, db, rc, sql);
}

static void conn_free(img_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(c->st[i]);
    sqlite3_close_v2(c->db);
    free(c);
}

/*
 * Called by SQLite after each commit with the WAL's size in pages. Past
 * IMG_WAL_SOFT_PAGES the checkpointer thread is woken; past
 * IMG_WAL_HARD_PAGES (it cannot keep up) the committing thread checkpoints
 * itself, which bounds the WAL file.
 */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    img_store *s = arg;
    if (pages >= IMG_WAL_HARD_PAGES) {
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    } else if (pages >= IMG_WAL_SOFT_PAGES) {
        pthread_mutex_lock(&s->ckpt_mu);
        s->ckpt_want = true;
        pthread_cond_signal(&s->ckpt_cv);
        pthread_mutex_unlock(&s->ckpt_mu);
    }
    return SQLITE_OK;
}

static void *checkpointer(void *arg)
{
    img_store *s = arg;
    pthread_mutex_lock(&s->ckpt_mu);
    for (;;) {
        while (!s->ckpt_want && !s->ckpt_stop)
            pthread_cond_wait(&s->ckpt_cv, &s->ckpt_mu);
        if (s->ckpt_stop)
            break;
        s->ckpt_want = false;
        pthread_mutex_unlock(&s->ckpt_mu);
        sqlite3_wal_checkpoint_v2(s->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&s->ckpt_mu);
    }
    pthread_mutex_unlock(&s->ckpt_mu);
    return NULL;
}

/* Open one connection with the per-connection settings. */
static int conn_open(img_store *s, img_conn **out, img_err *err)
{
    int ret = -1;
    img_conn *c = calloc(1, sizeof *c);
    if (!c)
        return img_fail(err, IMG_E_NOMEM, "out of memory");
    int rc = sqlite3_open_v2(
        s->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, s->vfs);
    if (rc != SQLITE_OK) {
        img_fail(err, IMG_E_IO, "cannot open image database '%s': %s", s->path,
                 c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        goto out;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, s->o.busy_timeout_ms);
    /* 64 KiB pages (only takes effect on a new database, before WAL): chunks
       are mostly overflow pages, and big pages mean few of them. */
    if (exec(c->db, "PRAGMA page_size = 65536", err) != 0 ||
        set_wal(c->db, s->o.busy_timeout_ms, err) != 0 ||
        exec(c->db, "PRAGMA synchronous = NORMAL", err) != 0 ||
        exec(c->db, "PRAGMA foreign_keys = ON", err) != 0 ||
        exec(c->db, "PRAGMA cache_size = -2048", err) != 0 ||
        exec(c->db, "PRAGMA mmap_size = 0", err) != 0 ||
        exec(c->db, "PRAGMA temp_store = MEMORY", err) != 0 ||
        exec(c->db, "PRAGMA journal_size_limit = 67108864", err) != 0 ||
        exec(c->db, "PRAGMA wal_autocheckpoint = 0", err) != 0)
        goto out;
    /* Checkpoints (copy WAL into the database, fsync) run on the store's
       checkpointer thread, not in the committing thread: see wal_hook. */
    sqlite3_wal_hook(c->db, wal_hook, s);
    *out = c;
    c = NULL;
    ret = 0;
out:
    conn_free(c);
    return ret;
}

int img_conn_get(img_store *s, img_conn **out, img_err *err)
{
    pthread_mutex_lock(&s->mu);
    img_conn *c = s->idle;
    if (c)
        s->idle = c->next;
    pthread_mutex_unlock(&s->mu);
    if (c) {
        c->next = NULL;
        *out = c;
        return 0;
    }
    return conn_open(s, out, err);
}

void img_conn_put(img_store *s, img_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        if (c->st[i])
            sqlite3_reset(c->st[i]);
    if (!sqlite3_get_autocommit(c->db)) /* a caller forgot: never leak a transaction */
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_lock(&s->mu);
    c->next = s->idle;
    s->idle = c;
    pthread_mutex_unlock(&s->mu);
}

sqlite3_stmt *img_stmt(img_conn *c, img_stmt_id id, img_err *err)
{
    if (!c->st[id]) {
        int rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id],
                                    NULL);
        if (rc != SQLITE_OK) {
            img_fail_db(err, c->db, rc, "prepare");
            return NULL;
        }
    } else {
        sqlite3_reset(c->st[id]);
        sqlite3_clear_bindings(c->st[id]);
    }
    return c->st[id];
}

int img_tx_read(img_conn *c, img_err *err)
{
    return exec(c->db, "BEGIN", err);
}

int img_tx_write(img_store *s, img_conn *c, img_err *err)
{
    pthread_mutex_lock(&s->wmu);
    int rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        pthread_mutex_unlock(&s->wmu);
        return img_fail_db(err, c->db, rc, "begin transaction");
    }
    return 0;
}

int img_tx_commit(img_store *s, img_conn *c, bool write, img_err *err)
{
    int rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        img_fail_db(err, c->db, rc, "commit");
        if (!sqlite3_get_autocommit(c->db))
            sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    }
    if (write)
        pthread_mutex_unlock(&s->wmu);
    return rc == SQLITE_OK ? 0 : -1;
}

void img_tx_rollback(img_store *s, img_conn *c, bool write)
{
    for (int i = 0; i < ST_COUNT; i++)
        if (c->st[i])
            sqlite3_reset(c->st[i]);
    if (!sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    if (write)
        pthread_mutex_unlock(&s->wmu);
}

/* What an image validated by an older shoal that the validator now refuses
 * is taken for: the kind its stored boot protocol implies; an ELF or a raw
 * kernel by its first bytes (magic, 4 bytes read by the caller). */
static void fallback_kind(img_blob *b, const unsigned char magic[4])
{
    bool mb = b->boot == IMG_BOOT_MULTIBOOT || b->boot == IMG_BOOT_MULTIBOOT2;
    b->kind = b->boot == IMG_BOOT_PVH ? IMG_KIND_PVH : mb ? IMG_KIND_MULTIBOOT : IMG_KIND_UNKNOWN;
    b->format = b->kind == IMG_KIND_UNKNOWN        ? IMG_FORMAT_NONE
                : memcmp(magic, "\177ELF", 4) == 0 ? IMG_FORMAT_ELF
                                                   : IMG_FORMAT_BIN;
    snprintf(b->evidence, sizeof b->evidence, "revalidation failed");
}

/*
 * Schema 1 -> 2: read every stored image again (a few KiB each: headers,
 * notes, section names) to record format, kind, evidence and the default
 * profile, and the boot protocol as the current validator sees it. Runs in
 * the migration's write transaction on c.
 */
static int backfill_kinds(img_store *s, img_conn *c, img_err *err)
{
    sqlite3_stmt *sel = NULL, *upd = NULL;
    int ret = -1, rc;
    img_limits lim = { s->o.max_image_size, s->o.max_load_size, 0 };
    rc = sqlite3_prepare_v2(c->db,
                            "SELECT " IMG_BLOB_COLS " FROM blobs WHERE state = 1 AND kind IS NULL",
                            -1, &sel, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c->db,
                                "UPDATE blobs SET boot = ?2, format = ?3, kind = ?4, evidence = ?5,"
                                " firmware = ?6, cmdline = ?7 WHERE id = ?1",
                                -1, &upd, NULL);
    if (rc != SQLITE_OK) {
        img_fail_db(err, c->db, rc, "migrate image kinds");
        goto out;
    }
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        img_blob b;
        img_vresult vr;
        img_blob_row(sel, 0, &b);
        img_chunk_reader r = {
            .c = c, .blob_id = b.id, .size = b.size, .chunk_size = b.chunk_size, .cur_seq = -1
        };
        unsigned char magic[4] = { 0 };
        img_vstatus vs = img_validate_reader(img_chunk_read_cb, &r, b.size, &lim, &vr, NULL, 0);
        if (vs == IMG_VINVALID && b.size >= 4 && img_chunk_read_at(&r, 0, magic, 4) != 0)
            vs = IMG_VIO;
        img_chunk_reader_close(&r);
        if (vs == IMG_VIO) {
            img_fail(err, IMG_E_IO, "migrate image kinds: cannot read image %s", b.digest);
            goto out;
        }
        if (vs == IMG_VALID) {
            b.boot = vr.boot;
            b.format = vr.format;
            b.kind = vr.kind;
            img_evidence_join(&vr, b.evidence);
        } else {
            fallback_kind(&b, magic);
        }
        b.profile = img_profile_default(b.kind);
        sqlite3_bind_int64(upd, 1, b.id);
        sqlite3_bind_text(upd, 2, img_boot_name(b.boot), -1, SQLITE_STATIC);
        sqlite3_bind_text(upd, 3, img_format_name(b.format), -1, SQLITE_STATIC);
        sqlite3_bind_text(upd, 4, img_kind_name(b.kind), -1, SQLITE_STATIC);
        sqlite3_bind_text(upd, 5, b.evidence, -1, SQLITE_STATIC);
        sqlite3_bind_text(upd, 6, img_firmware_name(b.profile.firmware), -1, SQLITE_STATIC);
        sqlite3_bind_text(upd, 7, img_cmdline_name(b.profile.cmdline), -1, SQLITE_STATIC);
        int urc = sqlite3_step(upd);
        sqlite3_reset(upd);
        if (urc != SQLITE_DONE) {
            img_fail_db(err, c->db, urc, "migrate image kinds");
            goto out;
        }
    }
    if (rc != SQLITE_DONE) {
        img_fail_db(err, c->db, rc, "migrate image kinds");
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    return ret;
}

static int migrate(img_store *s, img_conn *c, img_err *err)
{
    int ret = -1;
    sqlite3_stmt *st = NULL;
    if (img_tx_write(s, c, err) != 0)
        return -1;
    int rc = sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        img_fail_db(err, c->db, rc, "read schema version");
        goto out;
    }
    int v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (v > IMG_SCHEMA_VERSION) {
        img_fail(err, IMG_E_CORRUPT,
                 "image database '%s' has schema version %d, newer than this shoal's (%d)", s->path,
                 v, IMG_SCHEMA_VERSION);
        goto out;
    }
    int from = v;
    for (; v < IMG_SCHEMA_VERSION; v++) {
        char sql[64];
        if (exec(c->db, migrations[v], err) != 0)
            goto out;
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
        if (exec(c->db, sql, err) != 0)
            goto out;
    }
    /* 1 -> 2's rows are read with every column of the current schema, so
       after all the tables' changes (same transaction) */
    if (from == 1 && backfill_kinds(s, c, err) != 0)
        goto out;
    ret = img_tx_commit(s, c, true, err);
    return ret;
out:
    sqlite3_finalize(st);
    img_tx_rollback(s, c, true);
    return ret;
}

int img_store_open(const char *path, const img_opts *opts, img_store **out, img_err *err)
{
    int ret = -1;
    img_store *s = NULL;
    img_conn *c = NULL;
    img_err_clear(err);
    *out = NULL;
    if (!path || !*path)
        return img_fail(err, IMG_E_INVALID, "image database path is empty");
    s = calloc(1, sizeof *s);
    if (!s)
        return img_fail(err, IMG_E_NOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->wmu, NULL);
    pthread_mutex_init(&s->ckpt_mu, NULL);
    pthread_cond_init(&s->ckpt_cv, NULL);
    if (opts)
        s->o = *opts;
    if (!s->o.cache_max_bytes)
        s->o.cache_max_bytes = IMG_DEFAULT_CACHE_MAX;
    if (!s->o.max_image_size)
        s->o.max_image_size = IMG_DEFAULT_MAX_FILE;
    if (!s->o.max_load_size)
        s->o.max_load_size = IMG_DEFAULT_MAX_LOAD;
    if (!s->o.max_initrd_size)
        s->o.max_initrd_size = IMG_DEFAULT_MAX_INITRD;
    if (!s->o.chunk_size)
        s->o.chunk_size = IMG_DEFAULT_CHUNK;
    if (s->o.busy_timeout_ms <= 0)
        s->o.busy_timeout_ms = 10000;
    if (s->o.stale_upload_secs <= 0)
        s->o.stale_upload_secs = 3600;
    if (s->o.chunk_size < 4096 || s->o.chunk_size > (64u << 20)) {
        img_fail(err, IMG_E_INVALID, "chunk size %u is outside 4 KiB..64 MiB", s->o.chunk_size);
        goto out;
    }
    s->path = strdup(path);
    if (s->o.cache_dir) {
        s->cache_dir = strdup(s->o.cache_dir);
    } else if (s->path && asprintf(&s->cache_dir, "%s.cache", path) < 0) {
        s->cache_dir = NULL;
    }
    s->vfs = s->o.vfs ? strdup(s->o.vfs) : NULL;
    if (!s->path || !s->cache_dir || (s->o.vfs && !s->vfs)) {
        img_fail(err, IMG_E_NOMEM, "out of memory");
        goto out;
    }
    s->o.cache_dir = s->cache_dir;
    s->o.vfs = s->vfs;
    s->pid = getpid();
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        img_fail(err, IMG_E_IO, "getrandom: %s", strerror(errno));
        goto out;
    }
    for (int i = 0; i < 16; i++)
        snprintf(s->session + 2 * i, 3, "%02x", rnd[i]);
    if (mkdir(s->cache_dir, 0700) != 0 && errno != EEXIST) {
        img_fail(err, IMG_E_IO, "cannot create cache directory '%s': %s", s->cache_dir,
                 strerror(errno));
        goto out;
    }
    if (conn_open(s, &c, err) != 0 || migrate(s, c, err) != 0)
        goto out;
    img_conn_put(s, c);
    c = NULL;
    if (conn_open(s, &s->ckpt, err) != 0)
        goto out;
    s->ckpt_db = s->ckpt->db;
    sqlite3_wal_hook(s->ckpt_db, NULL, NULL);
    if (pthread_create(&s->ckpt_thread, NULL, checkpointer, s) != 0) {
        img_fail(err, IMG_E_NOMEM, "cannot start the checkpointer thread");
        goto out;
    }
    s->ckpt_running = true;
    *out = s;
    s = NULL;
    ret = 0;
out:
    conn_free(c);
    img_store_close(s);
    return ret;
}

void img_store_close(img_store *s)
{
    if (!s)
        return;
    while (s->uploads)
        img_upload_abort(s->uploads);
    if (s->ckpt_running) {
        pthread_mutex_lock(&s->ckpt_mu);
        s->ckpt_stop = true;
        pthread_cond_signal(&s->ckpt_cv);
        pthread_mutex_unlock(&s->ckpt_mu);
        pthread_join(s->ckpt_thread, NULL);
    }
    conn_free(s->ckpt);
    img_conn *c = s->idle;
    while (c) {
        img_conn *n = c->next;
        conn_free(c);
        c = n;
    }
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->wmu);
    pthread_mutex_destroy(&s->ckpt_mu);
    pthread_cond_destroy(&s->ckpt_cv);
    free(s->path);
    free(s->cache_dir);
    free(s->vfs);
    free(s);
}

/* ---- blobs and resolution ----------------------------------------------- */

void img_blob_row(sqlite3_stmt *st, int base, img_blob *b)
{
#define COL_TEXT(i) ((const char *)sqlite3_column_text(st, base + (i)))
    const char *d = COL_TEXT(1), *ev = COL_TEXT(9);
    b->id = sqlite3_column_int64(st, base);
    snprintf(b->digest, sizeof b->digest, "%s", d ? d : "");
    b->size = (uint64_t)sqlite3_column_int64(st, base + 2);
    b->chunk_size = (uint32_t)sqlite3_column_int64(st, base + 3);
    b->created = sqlite3_column_int64(st, base + 4);
    b->boot = img_boot_parse(COL_TEXT(5));
    b->refs = (uint32_t)sqlite3_column_int64(st, base + 6);
    b->format = img_format_parse(COL_TEXT(7));
    b->kind = img_kind_parse(COL_TEXT(8));
    snprintf(b->evidence, sizeof b->evidence, "%s", ev ? ev : "");
    b->profile.firmware = img_firmware_parse(COL_TEXT(10));
    b->profile.cmdline = img_cmdline_parse(COL_TEXT(11));
    b->profile.exit = img_exit_parse(COL_TEXT(12));
    if (b->profile.exit == IMG_EXIT_NONE) /* never set: the kind's default */
        b->profile.exit = img_profile_default(b->kind).exit;
    b->profile.template[0] = '\0';
    b->is_initrd = COL_TEXT(14) && !strcmp(COL_TEXT(14), "initrd");
    b->initrd_id = sqlite3_column_int64(st, base + 15);
    if (COL_TEXT(11) && !strcmp(COL_TEXT(11), "template") && COL_TEXT(13)) {
        b->profile.cmdline = IMG_CMDLINE_TEMPLATE;
        snprintf(b->profile.template, sizeof b->profile.template, "%s", COL_TEXT(13));
    }
    /* probes: NULL (never set) reads as "" and 0, the kind's default */
    snprintf(b->profile.ready, sizeof b->profile.ready, "%s", COL_TEXT(16) ? COL_TEXT(16) : "");
    snprintf(b->profile.health, sizeof b->profile.health, "%s", COL_TEXT(17) ? COL_TEXT(17) : "");
    b->profile.health_interval_s = (uint32_t)sqlite3_column_int64(st, base + 18);
    b->profile.health_timeout_s = (uint32_t)sqlite3_column_int64(st, base + 19);
    b->profile.health_retries = (uint32_t)sqlite3_column_int64(st, base + 20);
    b->profile.warm_pool = (uint32_t)sqlite3_column_int64(st, base + 21); /* NULL: 0 */
#undef COL_TEXT
}

void img_evidence_join(const img_vresult *vr, char out[IMG_EVIDENCE_TEXT_MAX + 1])
{
    size_t n = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < vr->nevidence && i < IMG_EVIDENCE_MAX; i++) {
        int w = snprintf(out + n, IMG_EVIDENCE_TEXT_MAX + 1 - n, "%s%.*s", i ? "\n" : "",
                         IMG_EVIDENCE_LEN, vr->evidence[i]);
        if (w < 0 || (size_t)w >= IMG_EVIDENCE_TEXT_MAX + 1 - n)
            break;
        n += (size_t)w;
    }
}

/* ---- boot profiles ------------------------------------------------------ */

img_profile img_profile_default(img_kind kind)
{
    img_profile p = { .firmware = IMG_FW_SEABIOS,
                      .cmdline = IMG_CMDLINE_RAW,
                      .exit = IMG_EXIT_POWEROFF };
    switch (kind) {
    case IMG_KIND_SHOAL:
        p.firmware = IMG_FW_QBOOT;
        p.cmdline = IMG_CMDLINE_SHOAL;
        p.exit = IMG_EXIT_STATUS;
        break;
    case IMG_KIND_UNIKRAFT: p.cmdline = IMG_CMDLINE_UNIKRAFT; break;
    case IMG_KIND_SOLO5: p.cmdline = IMG_CMDLINE_SOLO5; break;
    case IMG_KIND_PVH:
    case IMG_KIND_MULTIBOOT:
    case IMG_KIND_DISK: break;
    default:
        p.firmware = IMG_FW_NONE;
        p.cmdline = IMG_CMDLINE_NONE;
        p.exit = IMG_EXIT_NONE;
        break;
    }
    return p;
}

/* The profile's enums by name: one table each (index = value, [0] the
 * "none" of value 0), so that a name and its parse cannot disagree. */
static const char *const FW_NAMES[] = { "none", "qboot", "seabios" };
static const char *const CMDLINE_NAMES[] = {
    "none", "shoal", "unikraft", "solo5", "raw", "template"
};
static const char *const EXIT_NAMES[] = { "none", "status", "debug-exit", "poweroff" };
#define NAMES_N(t) (sizeof(t) / sizeof((t)[0]))

static const char *enum_name(const char *const *names, size_t n, int v)
{
    return v > 0 && (size_t)v < n ? names[v] : names[0];
}

/* The value 1..last named name, else 0 (the "none"). */
static int enum_parse(const char *const *names, int last, const char *name)
{
    for (int v = 1; name && v <= last; v++)
        if (strcmp(name, names[v]) == 0)
            return v;
    return 0;
}

const char *img_firmware_name(img_firmware fw)
{
    return enum_name(FW_NAMES, NAMES_N(FW_NAMES), (int)fw);
}

img_firmware img_firmware_parse(const char *name)
{
    return (img_firmware)enum_parse(FW_NAMES, IMG_FW_SEABIOS, name);
}

const char *img_cmdline_name(img_cmdline preset)
{
    return enum_name(CMDLINE_NAMES, NAMES_N(CMDLINE_NAMES), (int)preset);
}

img_cmdline img_cmdline_parse(const char *name)
{
    return (img_cmdline)enum_parse(CMDLINE_NAMES, IMG_CMDLINE_RAW, name); /* presets only */
}

const char *img_exit_name(img_exit mode)
{
    return enum_name(EXIT_NAMES, NAMES_N(EXIT_NAMES), (int)mode);
}

img_exit img_exit_parse(const char *name)
{
    return (img_exit)enum_parse(EXIT_NAMES, IMG_EXIT_POWEROFF, name);
}

int img_blob_by_id(img_conn *c, int64_t id, img_blob *out, img_err *err)
{
    sqlite3_stmt *st = img_stmt(c, ST_BLOB_BY_ID, err);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW)
        img_blob_row(st, 0, out);
    else if (rc == SQLITE_DONE)
        ret = img_fail(err, IMG_E_NOT_FOUND, "image #%lld not found", (long long)id);
    else
        ret = img_fail_db(err, c->db, rc, "look up image");
    sqlite3_reset(st);
    return ret;
}

static int blob_by_digest(img_conn *c, const char *digest, img_blob *out, img_err *err)
{
    sqlite3_stmt *st = img_stmt(c, ST_BLOB_BY_DIGEST, err);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, digest, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW)
        img_blob_row(st, 0, out);
    else if (rc == SQLITE_DONE)
        ret = img_fail(err, IMG_E_NOT_FOUND, "image '%s' not found", digest);
    else
        ret = img_fail_db(err, c->db, rc, "look up image");
    sqlite3_reset(st);
    return ret;
}

/* hex: lowercase hex prefix, 1..64 characters. ref: for messages. */
static int blob_by_prefix(img_conn *c, const char *ref, const char *hex, img_blob *out,
                          img_err *err)
{
    char lo[IMG_DIGEST_LEN + 2], hi[IMG_DIGEST_LEN + 2];
    snprintf(lo, sizeof lo, "sha256:%s", hex);
    if (strlen(hex) == IMG_DIGEST_HEX)
        return blob_by_digest(c, lo, out, err) == 0
                   ? 0
                   : img_fail(err, IMG_E_NOT_FOUND, "image '%s' not found", ref);
    snprintf(hi, sizeof hi, "sha256:%sg", hex); /* 'g' sorts after every hex digit */
    sqlite3_stmt *st = img_stmt(c, ST_BLOB_PREFIX, err);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, lo, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++ == 0)
            img_blob_row(st, 0, out);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return img_fail_db(err, c->db, rc, "look up image");
    if (n == 0)
        return img_fail(err, IMG_E_NOT_FOUND, "image '%s' not found", ref);
    if (n > 1)
        return img_fail(err, IMG_E_AMBIGUOUS, "digest prefix '%s' matches more than one image",
                        ref);
    return 0;
}

/* name:tag -> blob; 1 when the name is not there. */
static int blob_by_tag(img_conn *c, const char *name, const char *tag, img_blob *out, img_err *err)
{
    sqlite3_stmt *st = img_stmt(c, ST_TAG_GET, err);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, tag, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return 1;
    if (rc != SQLITE_ROW)
        return img_fail_db(err, c->db, rc, "look up image name");
    return img_blob_by_id(c, id, out, err);
}

int img_resolve_conn(img_conn *c, const char *ref, img_blob *out, img_err *err)
{
    if (!ref || !*ref)
        return img_fail(err, IMG_E_INVALID, "image reference is empty");
    if (strncmp(ref, "sha256:", 7) == 0) {
        const char *hex = ref + 7;
        size_t n = strlen(hex);
        if (n == 0 || n > IMG_DIGEST_HEX)
            return img_fail(err, IMG_E_INVALID, "digest '%s' must have 1 to 64 hex digits", ref);
        for (size_t i = 0; i < n; i++)
            if (!is_hex(hex[i]))
                return img_fail(err, IMG_E_INVALID,
                                "digest '%s': character %zu is not a lowercase hex digit", ref,
                                7 + i + 1);
        return blob_by_prefix(c, ref, hex, out, err);
    }
    char name[IMG_NAME_MAX + 1], tag[IMG_TAG_MAX + 1];
    img_err e2;
    if (split_ref(ref, name, tag, &e2) != 0) {
        if (err)
            *err = e2;
        return -1;
    }
    int rc = blob_by_tag(c, name, tag, out, err);
    if (rc <= 0)
        return rc;
    /* not a name: maybe a bare digest prefix */
    size_t n = strlen(ref);
    bool hex = n >= IMG_DIGEST_PREFIX_MIN && n <= IMG_DIGEST_HEX;
    for (size_t i = 0; hex && i < n; i++)
        hex = is_hex(ref[i]);
    if (hex)
        return blob_by_prefix(c, ref, ref, out, err);
    return img_fail(err, IMG_E_NOT_FOUND, "image '%s' not found", ref);
}

int img_fill_info(img_conn *c, const img_blob *b, img_info *info, img_err *err)
{
    size_t cap = 0;
    img_label *l = NULL;
    memcpy(info->digest, b->digest, sizeof info->digest);
    info->size = b->size;
    info->created = b->created;
    info->boot = b->boot;
    info->format = b->format;
    info->kind = b->kind;
    info->profile = b->profile;
    info->nevidence = 0;
    for (const char *p = b->evidence; *p && info->nevidence < IMG_EVIDENCE_MAX;) {
        size_t n = strcspn(p, "\n");
        snprintf(info->evidence[info->nevidence++], IMG_EVIDENCE_LEN + 1, "%.*s", (int)n, p);
        p += n + (p[n] == '\n');
    }
    info->refs = b->refs;
    info->labels = NULL;
    info->nlabels = 0;
    info->initrd[0] = '\0';
    info->initrd_size = 0;
    if (b->initrd_id > 0) {
        img_blob r;
        if (img_blob_by_id(c, b->initrd_id, &r, err) != 0)
            return -1;
        memcpy(info->initrd, r.digest, sizeof info->initrd);
        info->initrd_size = r.size;
    }
    sqlite3_stmt *st = img_stmt(c, ST_LABELS_GET, err);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, b->id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (info->nlabels == cap) {
            cap = cap ? cap * 2 : 4;
            l = realloc(info->labels, cap * sizeof *l);
            if (!l)
                goto nomem;
            info->labels = l;
        }
        char *k = strdup((const char *)sqlite3_column_text(st, 0));
        char *v = strdup((const char *)sqlite3_column_text(st, 1));
        if (!k || !v) {
            free(k);
            free(v);
            goto nomem;
        }
        info->labels[info->nlabels++] = (img_label){ k, v };
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        img_info_clear(info);
        return img_fail_db(err, c->db, rc, "read labels");
    }
    return 0;
nomem:
    sqlite3_reset(st);
    img_info_clear(info);
    return img_fail(err, IMG_E_NOMEM, "out of memory");
}

void img_info_clear(img_info *info)
{
    if (!info)
        return;
    for (size_t i = 0; i < info->nlabels; i++) {
        free((char *)info->labels[i].key);
        free((char *)info->labels[i].value);
    }
    free(info->labels);
    info->labels = NULL;
    info->nlabels = 0;
}

void img_list_free(img_info *list, size_t count)
{
    if (!list)
        return;
    for (size_t i = 0; i < count; i++)
        img_info_clear(&list[i]);
    free(list);
}

int img_resolve(img_store *s, const char *ref, char digest_out[IMG_DIGEST_LEN + 1], img_err *err)
{
    img_conn *c = NULL;
    img_blob b;
    img_err_clear(err);
    if (img_conn_get(s, &c, err) != 0)
        return -1;
    int ret = img_resolve_conn(c, ref, &b, err);
    if (ret == 0)
        memcpy(digest_out, b.digest, IMG_DIGEST_LEN + 1);
    img_conn_put(s, c);
    return ret;
}

int img_get(img_store *s, const char *ref, img_info *info, img_err *err)
{
    int ret = -1;
    img_conn *c = NULL;
    img_blob b;
    img_err_clear(err);
    memset(info, 0, sizeof *info);
    if (img_conn_get(s, &c, err) != 0)
        return -1;
    if (img_tx_read(c, err) != 0)
        goto out;
    if (img_resolve_conn(c, ref, &b, err) != 0 || img_fill_info(c, &b, info, err) != 0)
        goto out;
    /* name and tag as given, when the reference was a name */
    if (strncmp(ref, "sha256:", 7) != 0) {
        char name[IMG_NAME_MAX + 1], tag[IMG_TAG_MAX + 1];
        img_blob b2;
        if (split_ref(ref, name, tag, NULL) == 0 && blob_by_tag(c, name, tag, &b2, NULL) == 0 &&
            b2.id == b.id) {
            strcpy(info->name, name);
            strcpy(info->tag, tag);
        }
    }
    ret = 0;
out:
    img_tx_rollback(s, c, false);
    img_conn_put(s, c);
    return ret;
}

/* IMG_BLOB_COLS of blobs b */
#define IMG_BLOB_COLS_B                                                                            \
    "b.id, b.digest, b.size, b.chunk_size, b.created, b.boot, b.refs, b.format, b.kind,"           \
    " b.evidence, b.firmware, b.cmdline, b.exit, b.template, b.role, b.initrd_id, b.ready,"        \
    " b.health, b.health_interval_s, b.health_timeout_s, b.health_retries, b.warm_pool"

int img_list(img_store *s, const img_filter *f, img_info **out, size_t *count, img_err *err)
{
    static const char sql[] =
        "SELECT t.name, t.tag, " IMG_BLOB_COLS_B " FROM tags t JOIN blobs b ON b.id = t.blob_id"
        " WHERE (?1 IS NULL OR t.name = ?1)"
        "   AND (?2 IS NULL OR EXISTS (SELECT 1 FROM labels l WHERE l.blob_id = b.id"
        "        AND l.key = ?2 AND (?3 IS NULL OR l.value = ?3)))"
        " UNION ALL "
        "SELECT '', '', " IMG_BLOB_COLS_B " FROM blobs b WHERE ?4 AND ?1 IS NULL AND b.state = 1"
        "   AND b.role IS NULL"
        "   AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.blob_id = b.id)"
        "   AND (?2 IS NULL OR EXISTS (SELECT 1 FROM labels l WHERE l.blob_id = b.id"
        "        AND l.key = ?2 AND (?3 IS NULL OR l.value = ?3)))"
        " ORDER BY 1, 2, 4";
    int ret = -1, rc;
    img_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    img_info *list = NULL;
    size_t n = 0, cap = 0;
    img_err_clear(err);
    *out = NULL;
    *count = 0;
    if (img_conn_get(s, &c, err) != 0)
        return -1;
    if (img_tx_read(c, err) != 0)
        goto out;
    rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        img_fail_db(err, c->db, rc, "list images");
        goto out;
    }
    if (f && f->name)
        sqlite3_bind_text(st, 1, f->name, -1, SQLITE_STATIC);
    if (f && f->label_key)
        sqlite3_bind_text(st, 2, f->label_key, -1, SQLITE_STATIC);
    if (f && f->label_value)
        sqlite3_bind_text(st, 3, f->label_value, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, f && f->include_untagged);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            img_info *nl = realloc(list, cap * sizeof *nl);
            if (!nl) {
                img_fail(err, IMG_E_NOMEM, "out of memory");
                goto out;
            }
            list = nl;
        }
        img_info *i = &list[n];
        memset(i, 0, sizeof *i);
        snprintf(i->name, sizeof i->name, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(i->tag, sizeof i->tag, "%s", (const char *)sqlite3_column_text(st, 1));
        img_blob b;
        img_blob_row(st, 2, &b);
        if (img_fill_info(c, &b, i, err) != 0)
            goto out;
        n++;
    }
    if (rc != SQLITE_DONE) {
        img_fail_db(err, c->db, rc, "list images");
        goto out;
    }
    *out = list;
    *count = n;
    list = NULL;
    ret = 0;
out:
    sqlite3_finalize(st);
    img_list_free(list, n);
    img_tx_rollback(s, c, false);
    img_conn_put(s, c);
    return ret;
}

/* ---- names, labels, references ------------------------------------------ */

static int step_write(img_conn *c, sqlite3_stmt *st, const char *what, img_err *err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return img_fail_db(err, c->db, rc, what);
    return 0;
}

int img_tag(img_store *s, const char *src, const char *dst, img_err *err)
{
    int ret = -1;
    img_conn *c = NULL;
    img_blob b;
    char name[IMG_NAME_MAX + 1], tag[IMG_TAG_MAX + 1];
    img_err_clear(err);
    if (!dst || strncmp(dst, "sha256:", 7) == 0)
        return img_fail(err, IMG_E_INVALID, "cannot tag as '%s': need name[:tag]", dst ? dst : "");
    if (split_ref(dst, name, tag, err) != 0)
        return -1;
    if (img_conn_get(s, &c, err) != 0)
        return -1;
    if (img_tx_write(s, c, err) != 0)
        goto put;
    if (img_resolve_conn(c, src, &b, err) != 0)
        goto out;
    sqlite3_stmt *st = img_stmt(c, ST_TAG_SET, err);
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, tag, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, b.id);
    sqlite3_bind_int64(st, 4, (int64_t)time(NULL));
    if (step_write(c, st, "tag image", err) != 0)
        goto out;
    ret = img_tx_commit(s, c, true, err);
    goto put;
out:
    img_tx_rollback(s, c, true);
put:
    img_conn_put(s, c);
    return ret;
}

int img_untag(img_store *s, const char *ref, img_err *err)
{
    int ret = -1;
    img_conn *c = NULL;
    char name[IMG_NAME_MAX + 1], tag[IMG_TAG_MAX + 1];
    img_err_clear(err);
    if (!ref || strncmp(ref, "sha256:", 7) == 0)
        return img_fail(err, IMG_E_INVALID, "cannot untag '%s': need name[:tag]", ref ? ref : "");
    if (split_ref(ref, name, tag, err) != 0)
        return -1;
    if (img_conn_get(s, &c, err) != 0)
        return -1;
    if (img_tx_write(s, c, err) != 0)
        goto put;
    sqlite3_stmt *st = img_stmt(c, ST_TAG_DEL, err);
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, tag, -1, SQLITE_STATIC);
    if (step_write(c, st, "untag image", err) != 0)
        goto out;
    if (sqlite3_changes(c->db) == 0) {
        img_fail(err, IMG_E_NOT_FOUND, "image '%s' not found", ref);
        goto out;
    }
    ret = img_tx_commit(s, c, true, err);
    goto put;
out:
    img_tx_rollback(s, c, true);
put:
    img_conn_put(s, c);
    return ret;
}

int img_initrd_drop_orphan(img_conn *c, int64_t initrd_id, img_err *err)
{
    if (initrd_id <= 0)
        return 0;
    sqlite3_stmt *st = img_stmt(c, ST_INITRD_ORPHAN, err);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, initrd_id);
    return step_write(c, st, "delete initrd", err);
}

int img_delete_blob(img_conn *c, int64_t id, img_err *err)
{
    img_blob b;
    int64_t initrd = img_blob_by_id(c, id, &b, NULL) == 0 ? b.initrd_id : 0;
    sqlite3_stmt *st = img_stmt(c, ST_BLOB_DELETE, err);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    if (step_write(c, st, "delete image", err) != 0)
        return -1;
    /* its initrd goes with the last image pointing at it */
    return img_initrd_drop_orphan(c, initrd, err);
}

int img_blob_any_by_digest(img_conn *c, const char *digest, img_blob *out, img_err *err)
{
    sqlite3_stmt *st = img_stmt(c, ST_BLOB_ANY_DIGEST, err);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, digest, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW)
        img_blob_row(st, 0, out);
    else if (rc == SQLITE_DONE)
        ret = img_fail(err, IMG_E_NOT_FOUND, "blob '%s' not found", digest);
    else
        ret = img_fail_db(err, c->db, rc, "look up blob");
    sqlite3_reset(st);
    return ret;
}

int img_delete(img_store *s, const char *ref, int force, img_err *err)
{
    int ret = -1;
    img_conn *c = NULL;
    img_blob b;
    bool gone = false;
    img_err_clear(err);
    if (img_conn_get(s, &c, err) != 0)
        return -1;
    if (img_tx_write(s, c, err) != 0)
        goto put;
    if (img_resolve_conn(c, ref, &b, err) != 0)
        goto out;
    if (b.refs > 0 && !force) {
        img_fail(err, IMG_E_IN_USE, "image '%s' (%.19s) is in use by %u instance%s", ref, b.digest,
                 b.refs, b.refs == 1 ? "" : "s");
        goto out;
    }
    sqlite3_stmt *st = img_stmt(c, ST_TAGS_DEL_BLOB, err);
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, b.id);
    if (step_write(c, st, "untag image", err) != 0)
        goto out;
    if (b.refs == 0) {
        if (img_delete_blob(c, b.id, err) != 0)
            goto out;
        gone = true;
    }
    ret = img_tx_commit(s, c, true, err);
    if (ret == 0 && gone)
        img_cache_drop(s, b.digest);
    goto put;
out:
    img_tx_rollback(s, c, true);
put:
    img_conn_put(s, c);
    return ret;
}

int img_label_set(img_store *s, const char *ref, const char *key, const char *value, img_err *err)
{
    int ret = -1;
    img_conn *c = NULL;
    img_blob b;
    img_err_clear(err);
    if (img_valid_label(key, value, err) != 0)
        return -1;
    if (img_conn_get(s, &c, err) != 0)
        return -1;
    if (img_tx_write(s, c, err) != 0)
        goto put;
    if (img_resolve_conn(c, ref, &b, err) != 0)
        goto out;
    sqlite3_stmt *st = img_stmt(c, value ? ST_LABEL_SET : ST_LABEL_DEL, err);
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, b.id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    if (value)
        sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
    if (step_write(c, st, "set label", err) != 0)
        goto out;
    ret = img_tx_commit(s, c, true, err);
    goto put;
out:
    img_tx_rollback(s, c, true);
put:
    img_conn_put(s, c);
    return ret;
}

/* An initrd by full digest (img_initrd_acquire/release). */
static int initrd_by_digest(img_conn *c, const char *digest, img_blob *b, img_err *err)
{
    if (!digest || strlen(digest) != IMG_DIGEST_LEN || strncmp(digest, "sha256:", 7) != 0 ||
        strspn(digest + 7, "0123456789abcdef") != IMG_DIGEST_HEX)
        return img_fail(err, IMG_E_INVALID, "initrd '%.80s' is not sha256:<64 lowercase hex>",
                        digest ? digest : "");
    sqlite3_stmt *st = img_stmt(c, ST_INITRD_BY_DIGEST, err);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, digest, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        img_blob_row(st, 0, b);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc == SQLITE_DONE)
        return img_fail(err, IMG_E_NOT_FOUND, "initrd %s not found (upload it first)", digest);
    return img_fail_db(err, c->db, rc, "look up initrd");
}

static int ref_change(img_store *s, const char *ref, img_stmt_id id, bool initrd, img_err *err)
{
    int ret = -1;
    img_conn *c = NULL;
    img_blob b;
    img_err_clear(err);
    if (img_conn_get(s, &c, err) != 0)
        return -1;
    if (img_tx_write(s, c, err) != 0)
        goto put;
    if ((initrd ? initrd_by_digest(c, ref, &b, err) : img_resolve_conn(c, ref, &b, err)) != 0)
        goto out;
    sqlite3_stmt *st = img_stmt(c, id, err);
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, b.id);
    if (step_write(c, st, "update reference count", err) != 0)
        goto out;
    if (sqlite3_changes(c->db) == 0) {
        img_fail(err, IMG_E_CONFLICT, "%s '%s' has no references to release",
                 initrd ? "initrd" : "image", ref);
        goto out;
    }
    ret = img_tx_commit(s, c, true, err);
    goto put;
out:
    img_tx_rollback(s, c, true);
put:
    img_conn_put(s, c);
    return ret;
}

int img_ref_acquire(img_store *s, const char *ref, img_err *err)
{
    return ref_change(s, ref, ST_REF_ADD, false, err);
}

int img_ref_release(img_store *s, const char *digest, img_err *err)
{
    return ref_change(s, digest, ST_REF_SUB, false, err);
}

int img_initrd_acquire(img_store *s, const char *digest, img_err *err)
{
    return ref_change(s, digest, ST_REF_ADD, true, err);
}

int img_initrd_release(img_store *s, const char *digest, img_err *err)
{
    return ref_change(s, digest, ST_REF_SUB, true, err);
}

int img_refs_reset(img_store *s, img_err *err)
{
    int ret = -1;
    img_conn *c = NULL;
    img_err_clear(err);
    if (img_conn_get(s, &c, err) != 0)
        return -1;
    if (img_tx_write(s, c, err) != 0)
        goto put;
    if (exec(c->db, "UPDATE blobs SET refs = 0 WHERE refs != 0", err) != 0) {
        img_tx_rollback(s, c, true);
        goto put;
    }
    ret = img_tx_commit(s, c, true, err);
put:
    img_conn_put(s, c);
    return ret;
}

/* ---- garbage collection and checks -------------------------------------- */

bool img_pid_alive(pid_t pid)
{
    if (pid <= 0)
        return false;
    return kill(pid, 0) == 0 || errno != ESRCH;
}

static bool upload_is_mine(img_store *s, int64_t blob_id);

/* Collect the ids of rows that qualify, then delete them one transaction
 * each. only_uploads: abandoned uploads only (img_gc_uploads). */
static int gc_run(img_store *s, img_gc_stats *stats, int only_uploads, img_err *err)
{
    static const char q_images[] =
        "SELECT id, size, initrd_id FROM blobs b WHERE state = 1 AND refs = 0 AND role IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.blob_id = b.id)";
    /* initrds no image points at and no instance holds (one that lost its
       last image and holder went with it, or was never attached) */
    static const char q_initrds[] =
        "SELECT id, size, ?1 FROM blobs b WHERE state = 1 AND role = 'initrd' AND created < ?1"
        " AND refs = 0 AND NOT EXISTS (SELECT 1 FROM blobs i WHERE i.initrd_id = b.id)";
    static const char q_uploads[] =
        "SELECT id, size, owner_pid, owner_session, touched FROM blobs WHERE state = 0";
    static const char q_del_image[] = "DELETE FROM blobs WHERE id = ?1 AND state = 1 AND refs = 0"
                                      " AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.blob_id = ?1)";
    static const char q_del_upload[] = "DELETE FROM blobs WHERE id = ?1 AND state = 0";
    static const char q_del_initrd[] =
        "DELETE FROM blobs WHERE id = ?1 AND role = 'initrd' AND refs = 0"
        " AND NOT EXISTS (SELECT 1 FROM blobs i WHERE i.initrd_id = ?1)";
    int ret = -1, rc;
    img_conn *c = NULL;
    sqlite3_stmt *st = NULL, *del = NULL;
    int64_t *ids = NULL, *initrds = NULL;
    uint64_t *sizes = NULL;
    size_t n = 0, cap = 0;
    img_gc_stats z = { 0 };
    int64_t now = (int64_t)time(NULL);
    img_err_clear(err);
    if (!stats)
        stats = &z;
    memset(stats, 0, sizeof *stats);
    if (img_conn_get(s, &c, err) != 0)
        return -1;

    for (int pass = only_uploads ? 1 : 0; pass < (only_uploads ? 2 : 3); pass++) {
        n = 0;
        rc = sqlite3_prepare_v2(c->db,
                                pass == 0   ? q_images
                                : pass == 1 ? q_uploads
                                            : q_initrds,
                                -1, &st, NULL);
        if (rc != SQLITE_OK) {
            img_fail_db(err, c->db, rc, "gc");
            goto out;
        }
        if (pass == 2)
            sqlite3_bind_int64(st, 1, now - s->o.stale_upload_secs);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(st, 0);
            if (pass == 1) {
                const char *sess = (const char *)sqlite3_column_text(st, 3);
                pid_t pid = (pid_t)sqlite3_column_int64(st, 2);
                int64_t touched = sqlite3_column_int64(st, 4);
                bool mine = sess && strcmp(sess, s->session) == 0;
                bool dead = mine ? !upload_is_mine(s, id)
                                 : (!img_pid_alive(pid) || now - touched > s->o.stale_upload_secs);
                if (!dead)
                    continue;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                int64_t *ni = realloc(ids, cap * sizeof *ni);
                if (ni)
                    ids = ni;
                uint64_t *ns = realloc(sizes, cap * sizeof *ns);
                if (ns)
                    sizes = ns;
                int64_t *nd = realloc(initrds, cap * sizeof *nd);
                if (nd)
                    initrds = nd;
                if (!ni || !ns || !nd) {
                    img_fail(err, IMG_E_NOMEM, "out of memory");
                    goto out;
                }
            }
            ids[n] = id;
            initrds[n] = pass == 0 ? sqlite3_column_int64(st, 2) : 0;
            sizes[n++] = (uint64_t)sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
        st = NULL;
        if (rc != SQLITE_DONE) {
            img_fail_db(err, c->db, rc, "gc");
            goto out;
        }
        rc = sqlite3_prepare_v2(c->db,
                                pass == 0   ? q_del_image
                                : pass == 1 ? q_del_upload
                                            : q_del_initrd,
                                -1, &del, NULL);
        if (rc != SQLITE_OK) {
            img_fail_db(err, c->db, rc, "gc");
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            if (img_tx_write(s, c, err) != 0)
                goto out;
            sqlite3_bind_int64(del, 1, ids[i]);
            rc = sqlite3_step(del);
            sqlite3_reset(del);
            if (rc != SQLITE_DONE) {
                img_fail_db(err, c->db, rc, "gc: delete");
                img_tx_rollback(s, c, true);
                goto out;
            }
            int changed = sqlite3_changes(c->db);
            /* an image's initrd goes with the last image pointing at it */
            if (changed && pass == 0 && img_initrd_drop_orphan(c, initrds[i], err) != 0) {
                img_tx_rollback(s, c, true);
                goto out;
            }
            if (img_tx_commit(s, c, true, err) != 0)
                goto out;
            if (changed) {
                if (pass != 1)
                    stats->images_removed++;
                else
                    stats->uploads_removed++;
                stats->bytes_removed += sizes[i];
            }
        }
        sqlite3_finalize(del);
        del = NULL;
    }
    if (!only_uploads && img_cache_gc(s, &stats->cache_files_removed, err) != 0)
        goto out;
    ret = 0;
out:
    sqlite3_finalize(st);
    sqlite3_finalize(del);
    free(ids);
    free(sizes);
    free(initrds);
    img_conn_put(s, c);
    return ret;
}

int img_gc(img_store *s, img_gc_stats *stats, img_err *err)
{
    return gc_run(s, stats, 0, err);
}

int img_gc_uploads(img_store *s, img_gc_stats *stats, img_err *err)
{
    return gc_run(s, stats, 1, err);
}

int img_check(img_store *s, img_err *err)
{
    static const char q_sizes[] =
        "SELECT b.digest, b.size, (SELECT count(*) FROM chunks k WHERE k.blob_id = b.id),"
        " (SELECT coalesce(sum(length(k.data)), 0) FROM chunks k WHERE k.blob_id = b.id),"
        " (SELECT coalesce(max(k.seq), -1) FROM chunks k WHERE k.blob_id = b.id)"
        " FROM blobs b WHERE b.state = 1";
    int ret = -1, rc;
    img_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    img_err_clear(err);
    if (img_conn_get(s, &c, err) != 0)
        return -1;
    rc = sqlite3_prepare_v2(c->db, "PRAGMA integrity_check", -1, &st, NULL);
    if (rc != SQLITE_OK || (rc = sqlite3_step(st)) != SQLITE_ROW) {
        img_fail_db(err, c->db, rc, "integrity check");
        goto out;
    }
    const char *res = (const char *)sqlite3_column_text(st, 0);
    if (!res || strcmp(res, "ok") != 0) {
        img_fail(err, IMG_E_CORRUPT, "integrity check: %s", res ? res : "(null)");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = sqlite3_prepare_v2(c->db, "PRAGMA foreign_key_check", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        img_fail_db(err, c->db, rc, "foreign key check");
        goto out;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        img_fail(err, IMG_E_CORRUPT, "foreign key check: table %s row %lld breaks a reference",
                 (const char *)sqlite3_column_text(st, 0), (long long)sqlite3_column_int64(st, 1));
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = sqlite3_prepare_v2(c->db, q_sizes, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        img_fail_db(err, c->db, rc, "size check");
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t size = sqlite3_column_int64(st, 1), nchunks = sqlite3_column_int64(st, 2);
        int64_t sum = sqlite3_column_int64(st, 3), maxseq = sqlite3_column_int64(st, 4);
        if (size != sum || maxseq != nchunks - 1) {
            img_fail(err, IMG_E_CORRUPT,
                     "image %s: size %lld but %lld chunks (last seq %lld) hold %lld bytes",
                     (const char *)sqlite3_column_text(st, 0), (long long)size, (long long)nchunks,
                     (long long)maxseq, (long long)sum);
            goto out;
        }
    }
    if (rc != SQLITE_DONE) {
        img_fail_db(err, c->db, rc, "size check");
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    img_conn_put(s, c);
    return ret;
}

/* ---- uploads registry --------------------------------------------------- */

static bool upload_is_mine(img_store *s, int64_t blob_id)
{
    bool found = false;
    pthread_mutex_lock(&s->mu);
    for (img_upload *u = s->uploads; u && !found; u = u->next)
        found = u->blob_id == blob_id;
    pthread_mutex_unlock(&s->mu);
    return found;
}
