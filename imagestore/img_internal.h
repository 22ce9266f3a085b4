/*
 * img_internal.h - shared between the image store's .c files. Not installed.
 */
#ifndef SHOAL_IMG_INTERNAL_H
#define SHOAL_IMG_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>

#include "img_store.h"

/* WAL size (64 KiB pages) that wakes the checkpointer / makes writers checkpoint. */
#define IMG_WAL_SOFT_PAGES 256  /* 16 MiB */
#define IMG_WAL_HARD_PAGES 4096 /* 256 MiB */

/* Prepared statements, one set per connection, prepared on first use. */
typedef enum img_stmt_id {
    ST_BLOB_NEW,         /* insert a pending blob */
    ST_CHUNK_PUT,        /* insert one chunk */
    ST_BLOB_TOUCH,       /* pending blob: size and last-write time */
    ST_BLOB_BY_DIGEST,   /* ready blob by full digest */
    ST_BLOB_BY_ID,       /* any blob by id */
    ST_BLOB_PREFIX,      /* ready blobs whose digest starts with a prefix */
    ST_BLOB_READY,       /* pending -> ready */
    ST_BLOB_DELETE,      /* delete a blob row (chunks and labels cascade) */
    ST_CHUNK_ROWID,      /* rowid of (blob, seq) */
    ST_CHUNKS_ALL,       /* every chunk of a blob in order */
    ST_TAG_GET,          /* name:tag -> blob */
    ST_TAG_SET,          /* upsert name:tag */
    ST_TAG_DEL,          /* delete name:tag */
    ST_TAGS_DEL_BLOB,    /* delete every tag of a blob */
    ST_LABEL_SET,        /* upsert a label */
    ST_LABEL_DEL,        /* delete a label */
    ST_LABELS_GET,       /* labels of a blob */
    ST_REF_ADD,          /* refs += 1 */
    ST_REF_SUB,          /* refs -= 1 when > 0 */
    ST_PROFILE_SET,      /* the profile columns of a ready blob */
    ST_BLOB_ANY_DIGEST,  /* ready blob by full digest, image or initrd */
    ST_INITRD_BY_DIGEST, /* ready initrd by full digest */
    ST_INITRD_READY,     /* pending -> ready initrd */
    ST_INITRD_SET,       /* an image's initrd_id */
    ST_INITRD_ORPHAN,    /* delete an initrd no image points at */
    ST_COUNT
} img_stmt_id;

typedef struct img_conn {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    struct img_conn *next; /* idle list */
} img_conn;

struct img_store {
    char *path;                 /* database file */
    char *cache_dir;            /* materialized files */
    img_opts o;                 /* options with defaults applied (strings below) */
    char *vfs;                  /* copy of opts->vfs or NULL */
    pthread_mutex_t mu;         /* guards idle, uploads, tmp_seq */
    pthread_mutex_t wmu;        /* one writer at a time within this process */
    img_conn *idle;             /* connections not in use */
    struct img_upload *uploads; /* open uploads (their pending blobs are alive) */
    uint64_t tmp_seq;           /* temp file counter */
    img_conn *ckpt;             /* the checkpointer's own connection */
    sqlite3 *ckpt_db;           /* ckpt->db */
    pthread_t ckpt_thread;      /* runs WAL checkpoints off the commit path */
    bool ckpt_running;          /* ckpt_thread was started */
    pthread_mutex_t ckpt_mu;    /* guards ckpt_want, ckpt_stop */
    pthread_cond_t ckpt_cv;     /* signalled by wal_hook and close */
    bool ckpt_want;             /* the WAL passed IMG_WAL_SOFT_PAGES */
    bool ckpt_stop;             /* close: thread exits */
    char session[33];           /* random id of this open, marks pending blobs */
    pid_t pid;                  /* process that opened the store */
};

/* error helpers (img_store.c) */
int img_fail(img_err *err, img_errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int img_fail_db(img_err *err, sqlite3 *db, int rc, const char *what);
void img_err_clear(img_err *err);

/* connections (img_store.c) */
int img_conn_get(img_store *s, img_conn **out, img_err *err);
void img_conn_put(img_store *s, img_conn *c);
sqlite3_stmt *img_stmt(img_conn *c, img_stmt_id id, img_err *err);

/* transactions: write ones take s->wmu (img_store.c) */
int img_tx_read(img_conn *c, img_err *err);
int img_tx_write(img_store *s, img_conn *c, img_err *err);
int img_tx_commit(img_store *s, img_conn *c, bool write, img_err *err);
void img_tx_rollback(img_store *s, img_conn *c, bool write);

/* An upload in progress (img_upload.c). */
struct img_upload {
    img_store *s;
    void *md;                        /* EVP_MD_CTX * running SHA-256 */
    unsigned char *buf;              /* one chunk being filled */
    size_t buf_len;                  /* bytes in buf */
    uint32_t chunk_size;             /* capacity of buf */
    int64_t blob_id;                 /* pending blob row, 0 until the first chunk is stored */
    uint64_t seq;                    /* next chunk number */
    uint64_t size;                   /* bytes accepted */
    uint64_t size_hint;              /* from img_upload_begin, 0 if unknown */
    char expect[IMG_DIGEST_LEN + 1]; /* required digest, "" if none */
    bool head_checked;               /* first bytes judged bootable-looking */
    bool initrd;                     /* an initrd: no boot checks, its own limit */
    uint64_t limit;                  /* largest size accepted */
    char initrd_digest[IMG_DIGEST_LEN + 1]; /* the image's initrd, "" if none */
    bool failed;                            /* a write failed: only abort is allowed */
    struct img_upload *prev, *next;         /* s->uploads, under s->mu */
};

/* Evidence as stored: the strings joined by newlines. */
#define IMG_EVIDENCE_TEXT_MAX (IMG_EVIDENCE_MAX * (IMG_EVIDENCE_LEN + 1))

/* A stored blob's row. */
typedef struct img_blob {
    int64_t id;
    char digest[IMG_DIGEST_LEN + 1];
    uint64_t size;
    uint32_t chunk_size;
    int64_t created;
    img_boot boot;
    uint32_t refs;
    img_format format;
    img_kind kind;
    char evidence[IMG_EVIDENCE_TEXT_MAX + 1]; /* newline-separated */
    img_profile profile;
    bool is_initrd;    /* role 'initrd' */
    int64_t initrd_id; /* an image's initrd blob, 0 if none */
} img_blob;

/* Columns of a blob row as read by img_blob_row, in this order. */
#define IMG_BLOB_COLS                                                                              \
    "id, digest, size, chunk_size, created, boot, refs, format, kind, evidence, firmware, "        \
    "cmdline, exit, template, role, initrd_id, ready, health, health_interval_s, "                 \
    "health_timeout_s, health_retries, warm_pool"

/* Fill b from the IMG_BLOB_COLS columns of st starting at column base (img_store.c). */
void img_blob_row(sqlite3_stmt *st, int base, img_blob *b);

/* Evidence strings joined by newlines into out (img_store.c). */
void img_evidence_join(const img_vresult *vr, char out[IMG_EVIDENCE_TEXT_MAX + 1]);

/* Resolve a reference to a ready blob on connection c (img_store.c). */
int img_resolve_conn(img_conn *c, const char *ref, img_blob *out, img_err *err);
int img_blob_by_id(img_conn *c, int64_t id, img_blob *out, img_err *err);
int img_fill_info(img_conn *c, const img_blob *b, img_info *info, img_err *err);
int img_delete_blob(img_conn *c, int64_t id, img_err *err);
int img_blob_any_by_digest(img_conn *c, const char *digest, img_blob *out, img_err *err);
int img_initrd_drop_orphan(img_conn *c, int64_t initrd_id, img_err *err);
bool img_pid_alive(pid_t pid);

/* Chunk reader over one blob on one connection (img_cache.c). */
typedef struct img_chunk_reader {
    img_conn *c;
    int64_t blob_id;
    uint64_t size;
    uint32_t chunk_size;
    sqlite3_blob *blob; /* open handle on chunk cur_seq, or NULL */
    int64_t cur_seq;
    int rc; /* last SQLite error */
} img_chunk_reader;

int img_chunk_read_at(img_chunk_reader *r, uint64_t off, void *buf, size_t len);
void img_chunk_reader_close(img_chunk_reader *r);
int img_chunk_read_cb(void *ctx, uint64_t off, void *buf, size_t len); /* img_read_at_fn */

/* Cache helpers (img_cache.c). */
int img_cache_gc(img_store *s, uint64_t *removed, img_err *err);
void img_cache_drop(img_store *s, const char *digest);

/* "sha256:<hex>" from 32 bytes */
void img_digest_format(const unsigned char md[32], char out[IMG_DIGEST_LEN + 1]);

int img_valid_name(const char *name, img_err *err);
int img_valid_tag(const char *tag, img_err *err);
int img_valid_label(const char *key, const char *value, img_err *err);

#endif /* SHOAL_IMG_INTERNAL_H */
