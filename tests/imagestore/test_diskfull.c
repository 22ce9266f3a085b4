/*
 * test_diskfull.c - "disk full" injected through the real I/O layer: a
 * SQLite VFS shim over the default VFS whose writes fail with SQLITE_FULL
 * once a byte budget is spent. The store must report the error and be left
 * exactly as it was (after the abandoned upload is collected).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "img_testlib.h"

#define MiB (UINT64_C(1) << 20)

/* ---- the VFS shim ------------------------------------------------------- */

static sqlite3_vfs *real_vfs;
static sqlite3_vfs full_vfs;
static atomic_llong budget = -1; /* bytes left; -1: unlimited */
static atomic_llong refused;     /* writes refused */

typedef struct ffile {
    sqlite3_file base;
    sqlite3_file *real; /* follows this struct */
} ffile;

#define REAL(f) (((ffile *)(f))->real)

static int f_close(sqlite3_file *f)
{
    return REAL(f)->pMethods->xClose(REAL(f));
}
static int f_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int f_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
    long long left = atomic_load(&budget);
    while (left >= 0) {
        if (left < n) {
            atomic_fetch_add(&refused, 1);
            return SQLITE_FULL;
        }
        if (atomic_compare_exchange_weak(&budget, &left, left - n))
            break;
    }
    return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int f_truncate(sqlite3_file *f, sqlite3_int64 sz)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), sz);
}
static int f_sync(sqlite3_file *f, int fl)
{
    return REAL(f)->pMethods->xSync(REAL(f), fl);
}
static int f_size(sqlite3_file *f, sqlite3_int64 *sz)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), sz);
}
static int f_lock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int f_unlock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int f_check(sqlite3_file *f, int *r)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r);
}
static int f_fcntl(sqlite3_file *f, int op, void *a)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, a);
}
static int f_sector(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int f_devchar(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int f_shmmap(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}
static int f_shmlock(sqlite3_file *f, int off, int n, int fl)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, fl);
}
static void f_shmbarrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int f_shmunmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int f_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp)
{
    return REAL(f)->pMethods->xFetch(REAL(f), o, n, pp);
}
static int f_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}

static const sqlite3_io_methods f_methods = {
    3,         f_close,      f_read,     f_write, f_truncate, f_sync,    f_size,
    f_lock,    f_unlock,     f_check,    f_fcntl, f_sector,   f_devchar, f_shmmap,
    f_shmlock, f_shmbarrier, f_shmunmap, f_fetch, f_unfetch,
};

static int v_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out)
{
    ffile *p = (ffile *)f;
    p->real = (sqlite3_file *)(p + 1);
    int rc = real_vfs->xOpen(real_vfs, name, p->real, flags, out);
    p->base.pMethods = rc == SQLITE_OK && p->real->pMethods ? &f_methods : NULL;
    return rc;
}

static void register_vfs(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    full_vfs = *real_vfs;
    full_vfs.zName = "shoal-full";
    full_vfs.szOsFile = (int)sizeof(ffile) + real_vfs->szOsFile;
    full_vfs.xOpen = v_open;
    full_vfs.pNext = NULL;
    sqlite3_vfs_register(&full_vfs, 0);
}

/* ---- the test ----------------------------------------------------------- */

static void check_before_state(img_store *s, const char *db, const char *digest)
{
    img_err e;
    img_info *list = NULL;
    size_t n = 0;
    char got[IMG_DIGEST_LEN + 1];
    uint64_t size;
    assert_int_equal(img_list(s, NULL, &list, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].name, "base");
    assert_string_equal(list[0].digest, digest);
    img_list_free(list, n);
    assert_int_equal(imgt_read_digest(s, "base", got, &size, &e), 0);
    assert_string_equal(got, digest);
    (void)db;
}

static void test_disk_full(void **state)
{
    char *dir = imgt_mkdtemp(), *db = NULL;
    img_store *s = NULL;
    img_err e;
    img_info base;
    assert_non_null(dir);
    assert_true(asprintf(&db, "%s/images.db", dir) > 0);
    img_opts o = { .vfs = "shoal-full", .chunk_size = 256 * 1024 };
    assert_int_equal(img_store_open(db, &o, &s, &e), 0);
    assert_int_equal(imgt_upload(s, 1, 2 * MiB, 65536, "base", NULL, &base, &e), 0);
    long long blobs = imgt_sql_int(db, "SELECT count(*) FROM blobs");
    long long chunks = imgt_sql_int(db, "SELECT count(*) FROM chunks");

    /* The disk fills 3 MiB into an 8 MiB upload. Round 0 aborts while the
       disk is still full (the cleanup itself fails; gc must finish it),
       round 1 aborts after space is back. */
    for (int round = 0; round < 2; round++) {
        atomic_store(&refused, 0);
        atomic_store(&budget, (long long)(3 * MiB));
        img_upload *u = NULL;
        assert_int_equal(img_upload_begin(s, 0, &u, &e), 0);
        uint8_t *buf = malloc(MiB);
        int rc = 0;
        uint64_t size = 8 * MiB;
        for (uint64_t off = 0; off < size && rc == 0; off += MiB) {
            imgt_fill(2, size, off, buf, MiB);
            rc = img_upload_write(u, buf, MiB, &e);
        }
        if (rc == 0) { /* not failed yet: then commit must fail (and frees u) */
            rc = img_upload_commit(u, "new", NULL, NULL, 0, NULL, &e);
            u = NULL;
        }
        free(buf);
        assert_int_equal(rc, -1);
        assert_int_equal(e.code, IMG_E_IO);
        assert_non_null(strstr(e.msg, "disk full"));
        assert_true(atomic_load(&refused) > 0);
        check_before_state(s, db, base.digest); /* reads work while the disk is full */
        if (round == 0)
            img_upload_abort(u);
        atomic_store(&budget, -1);
        if (round == 1)
            img_upload_abort(u);
        img_gc_stats gs;
        assert_int_equal(img_gc(s, &gs, &e), 0);
        assert_int_equal(imgt_sql_int(db, "SELECT count(*) FROM blobs"), blobs);
        assert_int_equal(imgt_sql_int(db, "SELECT count(*) FROM chunks"), chunks);
        assert_int_equal(imgt_sql_int(db, "SELECT count(*) FROM blobs WHERE state = 0"), 0);
        assert_int_equal(img_check(s, &e), 0);
        check_before_state(s, db, base.digest);
    }
    /* and the store works normally afterwards */
    assert_int_equal(imgt_upload(s, 2, 8 * MiB, MiB, "new", NULL, NULL, &e), 0);
    img_info_clear(&base);
    img_store_close(s);
    imgt_rmtree(dir);
    free(db);
}

/* Disk full during commit's final transaction (tiny image, one chunk). */
static void test_disk_full_at_commit(void **state)
{
    char *dir = imgt_mkdtemp(), *db = NULL;
    img_store *s = NULL;
    img_err e;
    assert_true(asprintf(&db, "%s/images.db", dir) > 0);
    img_opts o = { .vfs = "shoal-full" };
    assert_int_equal(img_store_open(db, &o, &s, &e), 0);
    img_upload *u = NULL;
    uint8_t buf[8192];
    imgt_fill(3, sizeof buf, 0, buf, sizeof buf);
    assert_int_equal(img_upload_begin(s, 0, &u, &e), 0);
    assert_int_equal(img_upload_write(u, buf, sizeof buf, &e), 0); /* buffered only */
    atomic_store(&budget, 0);
    assert_int_equal(img_upload_commit(u, "c", NULL, NULL, 0, NULL, &e), -1);
    assert_int_equal(e.code, IMG_E_IO);
    assert_non_null(strstr(e.msg, "disk full"));
    atomic_store(&budget, -1);
    char d[IMG_DIGEST_LEN + 1];
    assert_int_equal(img_resolve(s, "c", d, &e), -1);
    assert_int_equal(e.code, IMG_E_NOT_FOUND);
    assert_int_equal(img_gc(s, NULL, &e), 0);
    assert_int_equal(imgt_sql_int(db, "SELECT count(*) FROM blobs"), 0);
    assert_int_equal(img_check(s, &e), 0);
    img_store_close(s);
    imgt_rmtree(dir);
    free(db);
}

int main(void)
{
    register_vfs();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_disk_full_at_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
