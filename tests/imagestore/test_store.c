/*
 * test_store.c - the image store in one process: streaming round trips at
 * chunk boundaries and at 100 MiB, dedup, names and tags, labels, references,
 * delete and GC, materialized files, concurrency, schema versions and the
 * migration of a real schema-1 database, kinds/evidence/profiles stored and
 * listed, and hostile uploads (not bootable, truncated, over the size limit,
 * sparse).
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "img_testimg.h"
#include "img_testlib.h"

#define MiB (UINT64_C(1) << 20)

typedef struct fx {
    char *dir;
    char *db;
    img_store *s;
} fx;

static int open_store(fx *f, const img_opts *o)
{
    img_err e;
    if (img_store_open(f->db, o, &f->s, &e) != 0) {
        print_error("open: %s\n", e.msg);
        return -1;
    }
    return 0;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = imgt_mkdtemp();
    if (!f->dir || asprintf(&f->db, "%s/images.db", f->dir) < 0)
        return -1;
    *state = f;
    return open_store(f, NULL);
}

static int teardown(void **state)
{
    fx *f = *state;
    img_store_close(f->s);
    imgt_rmtree(f->dir);
    free(f->db);
    free(f);
    return 0;
}

#define OK(call)                                                                                   \
    do {                                                                                           \
        img_err e_;                                                                                \
        memset(&e_, 0, sizeof e_);                                                                 \
        img_err *err = &e_;                                                                        \
        if ((call) != 0)                                                                           \
            fail_msg("%s failed: %s (%s)", #call, err->msg, img_errcode_name(err->code));          \
    } while (0)

#define FAILS(call, code_, substr)                                                                 \
    do {                                                                                           \
        img_err e_;                                                                                \
        memset(&e_, 0, sizeof e_);                                                                 \
        img_err *err = &e_;                                                                        \
        if ((call) == 0)                                                                           \
            fail_msg("%s succeeded, expected %s", #call, img_errcode_name(code_));                 \
        if (err->code != (code_) || strstr(err->msg, (substr)) == NULL)                            \
            fail_msg("%s: expected %s '%s', got %s '%s'", #call, img_errcode_name(code_), substr,  \
                     img_errcode_name(err->code), err->msg);                                       \
    } while (0)

static long long q(fx *f, const char *sql)
{
    return imgt_sql_int(f->db, sql);
}

static void roundtrip(fx *f, uint64_t seed, uint64_t size, size_t wsize)
{
    char want[IMG_DIGEST_LEN + 1], got[IMG_DIGEST_LEN + 1], ref[64];
    img_info info;
    uint64_t n = 0;
    snprintf(ref, sizeof ref, "rt:%llu", (unsigned long long)size);
    imgt_digest(seed, size, want);
    OK(imgt_upload(f->s, seed, size, wsize, "rt", ref + 3, &info, err));
    assert_string_equal(info.digest, want);
    assert_int_equal(info.size, size);
    assert_int_equal(info.boot, IMG_BOOT_PVH);
    assert_string_equal(info.name, "rt");
    img_info_clear(&info);
    OK(imgt_read_digest(f->s, ref, got, &n, err));
    assert_string_equal(got, want);
    assert_int_equal(n, size);
    /* read_at around chunk boundaries and the end */
    uint64_t offs[] = { 0, 1, MiB - 3, MiB, size > 10 ? size - 10 : 0, size - 1 };
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        uint8_t a[4096], b[4096];
        size_t got_n = 0;
        if (offs[i] >= size)
            continue;
        OK(img_read_at(f->s, want, offs[i], a, sizeof a, &got_n, err));
        size_t exp = size - offs[i] < sizeof a ? (size_t)(size - offs[i]) : sizeof a;
        assert_int_equal(got_n, exp);
        imgt_fill(seed, size, offs[i], b, exp);
        assert_memory_equal(a, b, exp);
    }
    size_t z = 1;
    uint8_t one;
    OK(img_read_at(f->s, want, size, &one, 1, &z, err));
    assert_int_equal(z, 0);
}

static void test_roundtrip_sizes(void **state)
{
    fx *f = *state;
    const uint64_t sizes[] = { IMGT_MIN, 4096, MiB - 1, MiB, MiB + 1, 3 * MiB + 7 };
    const size_t wsizes[] = { 1000, 65536, MiB + 3 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        roundtrip(f, 100 + i, sizes[i], wsizes[i % 3]);
    OK(img_check(f->s, err));
    assert_int_equal(q(f, "SELECT count(*) FROM blobs WHERE state = 1"), 6);
    assert_int_equal(q(f, "SELECT count(*) FROM blobs WHERE state = 0"), 0);
}

static void test_roundtrip_100mib(void **state)
{
    fx *f = *state;
    roundtrip(f, 42, 100 * MiB + 5, MiB + 3);
    /* the materialized file hashes to the digest */
    char *path = NULL, want[IMG_DIGEST_LEN + 1];
    imgt_digest(42, 100 * MiB + 5, want);
    OK(img_materialize(f->s, "rt:104857605", &path, err));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 100 * MiB + 5);
    assert_int_equal(st.st_mode & 0777, 0444);
    assert_non_null(strstr(path, want + 7));
    free(path);
    OK(img_check(f->s, err));
}

static void test_empty_and_not_bootable(void **state)
{
    fx *f = *state;
    img_upload *u = NULL;
    OK(img_upload_begin(f->s, 0, &u, err));
    FAILS(img_upload_commit(u, "x", NULL, NULL, 0, NULL, err), IMG_E_INVALID, "upload is empty");
    OK(img_upload_begin(f->s, 0, &u, err));
    OK(img_upload_write(u, "A", 1, err));
    FAILS(img_upload_commit(u, "x", NULL, NULL, 0, NULL, err), IMG_E_INVALID,
          "image is not bootable: not an ELF file (no 7f 45 4c 46 magic)");
    /* truncated ELF: header says 2 program headers, file ends first */
    uint8_t head[IMGT_MIN];
    imgt_head(4096, head);
    OK(img_upload_begin(f->s, 0, &u, err));
    OK(img_upload_write(u, head, 100, err));
    FAILS(img_upload_commit(u, "x", NULL, NULL, 0, NULL, err), IMG_E_INVALID,
          "program header table at offset 0x40 + 0x70 bytes is past end of file (0x64 bytes)");
    /* the whole head, but the PT_LOAD claims 4096 bytes */
    OK(img_upload_begin(f->s, 0, &u, err));
    OK(img_upload_write(u, head, sizeof head, err));
    FAILS(img_upload_commit(u, "x", NULL, NULL, 0, NULL, err), IMG_E_INVALID,
          "program header 0: segment offset 0x0 + size 0x1000 is past end of file (0x203 bytes)");
    /* an expected digest that does not match: nothing visible */
    char want[IMG_DIGEST_LEN + 1];
    imgt_digest(4, 8192, want);
    uint8_t img[8192];
    imgt_fill(4, sizeof img, 0, img, sizeof img);
    OK(img_upload_begin(f->s, 0, &u, err));
    FAILS(img_upload_expect(u, "sha256:abc", err), IMG_E_INVALID, "is not sha256: and 64");
    OK(img_upload_expect(
        u, "sha256:0000000000000000000000000000000000000000000000000000000000000000", err));
    OK(img_upload_write(u, img, sizeof img, err));
    FAILS(img_upload_commit(u, "x", NULL, NULL, 0, NULL, err), IMG_E_INVALID,
          "upload has digest sha256:");
    OK(img_upload_begin(f->s, 0, &u, err));
    OK(img_upload_expect(u, want, err));
    OK(img_upload_write(u, img, sizeof img, err));
    OK(img_upload_commit(u, "x", NULL, NULL, 0, NULL, err));
    OK(img_delete(f->s, "x", 0, err));
    /* 64 KiB of zeros: judged from the first chunk, before commit */
    img_opts o = { .chunk_size = 65536 };
    img_store_close(f->s);
    assert_int_equal(open_store(f, &o), 0);
    uint8_t *z = calloc(1, 65536);
    OK(img_upload_begin(f->s, 0, &u, err));
    FAILS(img_upload_write(u, z, 65536, err), IMG_E_INVALID, "not an ELF file");
    FAILS(img_upload_write(u, z, 1, err), IMG_E_CONFLICT, "upload already failed");
    img_upload_abort(u);
    free(z);
    /* bad names are refused before anything is stored */
    FAILS(imgt_upload(f->s, 1, 4096, 4096, "Bad Name", NULL, NULL, err), IMG_E_INVALID,
          "image name 'Bad Name' must start with a lowercase letter or digit");
    FAILS(imgt_upload(f->s, 1, 4096, 4096, "ok", "no:colon", NULL, err), IMG_E_INVALID,
          "image tag 'no:colon': character 3 is not one of [A-Za-z0-9._-]");
    assert_int_equal(q(f, "SELECT count(*) FROM blobs"), 0);
    assert_int_equal(q(f, "SELECT count(*) FROM chunks"), 0);
}

static void test_dedup(void **state)
{
    fx *f = *state;
    img_info a, b;
    OK(imgt_upload(f->s, 7, 3 * MiB + 1, 65536, "one", NULL, &a, err));
    OK(imgt_upload(f->s, 7, 3 * MiB + 1, MiB, "two", "v1", &b, err));
    assert_string_equal(a.digest, b.digest);
    assert_string_equal(b.tag, "v1");
    assert_int_equal(q(f, "SELECT count(*) FROM blobs"), 1);
    assert_int_equal(q(f, "SELECT count(*) FROM chunks"), 4);
    assert_int_equal(q(f, "SELECT count(*) FROM tags"), 2);
    img_info_clear(&a);
    img_info_clear(&b);
}

static void test_tags_and_resolve(void **state)
{
    fx *f = *state;
    img_info i1, i2;
    char d[IMG_DIGEST_LEN + 1], ref[80];
    OK(imgt_upload(f->s, 1, 5000, 5000, "app", "1", &i1, err));
    OK(imgt_upload(f->s, 2, 5000, 5000, "app", "2", &i2, err));
    OK(img_tag(f->s, "app:1", "app", err)); /* app:latest -> 1 */
    OK(img_resolve(f->s, "app", d, err));
    assert_string_equal(d, i1.digest);
    OK(img_tag(f->s, "app:2", "app:latest", err)); /* move it */
    OK(img_resolve(f->s, "app:latest", d, err));
    assert_string_equal(d, i2.digest);
    OK(img_resolve(f->s, i1.digest, d, err));
    assert_string_equal(d, i1.digest);
    snprintf(ref, sizeof ref, "%.19s", i1.digest); /* sha256: + 12 hex */
    OK(img_resolve(f->s, ref, d, err));
    assert_string_equal(d, i1.digest);
    snprintf(ref, sizeof ref, "%.12s", i2.digest + 7); /* bare prefix */
    OK(img_resolve(f->s, ref, d, err));
    assert_string_equal(d, i2.digest);
    FAILS(img_resolve(f->s, "app:9", d, err), IMG_E_NOT_FOUND, "image 'app:9' not found");
    FAILS(img_resolve(f->s, "nope", d, err), IMG_E_NOT_FOUND, "image 'nope' not found");
    FAILS(img_resolve(f->s, "sha256:xyz", d, err), IMG_E_INVALID, "is not a lowercase hex digit");
    FAILS(img_resolve(f->s, "", d, err), IMG_E_INVALID, "image reference is empty");
    FAILS(img_tag(f->s, "app:1", "sha256:abcd", err), IMG_E_INVALID, "need name[:tag]");

    /* 17 more images: two of them share a first hex digit */
    int first[16] = { 0 };
    char amb = 0;
    for (int i = 0; i < 17; i++) {
        img_info x;
        OK(imgt_upload(f->s, 1000 + i, 4096, 4096, "many", NULL, &x, err));
        int h = x.digest[7] <= '9' ? x.digest[7] - '0' : x.digest[7] - 'a' + 10;
        if (++first[h] == 2 && !amb)
            amb = x.digest[7];
        img_info_clear(&x);
    }
    snprintf(ref, sizeof ref, "sha256:%c", amb);
    FAILS(img_resolve(f->s, ref, d, err), IMG_E_AMBIGUOUS, "matches more than one image");

    /* untag: the name goes, the image stays until gc */
    OK(img_untag(f->s, "app:1", err));
    FAILS(img_untag(f->s, "app:1", err), IMG_E_NOT_FOUND, "image 'app:1' not found");
    OK(img_resolve(f->s, i1.digest, d, err));
    img_gc_stats gs;
    OK(img_gc(f->s, &gs, err));
    assert_int_equal(gs.images_removed, 17); /* i1 and 16 "many" untagged by moves */
    FAILS(img_resolve(f->s, i1.digest, d, err), IMG_E_NOT_FOUND, "not found");
    OK(img_resolve(f->s, "app", d, err));
    assert_string_equal(d, i2.digest);
    img_info_clear(&i1);
    img_info_clear(&i2);
    OK(img_check(f->s, err));
}

static void test_list_and_labels(void **state)
{
    fx *f = *state;
    img_upload *u;
    img_info info, *list = NULL;
    size_t n = 0;
    uint8_t buf[8192];
    img_label labels[] = { { "team", "core" }, { "git", "abc123" } };
    imgt_fill(5, sizeof buf, 0, buf, sizeof buf);
    OK(img_upload_begin(f->s, sizeof buf, &u, err));
    OK(img_upload_write(u, buf, sizeof buf, err));
    OK(img_upload_commit(u, "web", "v1", labels, 2, &info, err));
    assert_int_equal(info.nlabels, 2);
    assert_string_equal(info.labels[0].key, "git"); /* sorted by key */
    assert_string_equal(info.labels[1].value, "core");
    img_info_clear(&info);
    OK(imgt_upload(f->s, 6, 4096, 4096, "db", NULL, NULL, err));
    OK(imgt_upload(f->s, 7, 4096, 4096, NULL, NULL, &info, err)); /* untagged */

    OK(img_list(f->s, NULL, &list, &n, err));
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "db");
    assert_string_equal(list[0].tag, "latest");
    assert_string_equal(list[1].name, "web");
    img_list_free(list, n);

    img_filter fl = { .label_key = "team", .label_value = "core" };
    OK(img_list(f->s, &fl, &list, &n, err));
    assert_int_equal(n, 1);
    assert_string_equal(list[0].name, "web");
    assert_int_equal(list[0].nlabels, 2);
    img_list_free(list, n);
    fl.label_value = "other";
    OK(img_list(f->s, &fl, &list, &n, err));
    assert_int_equal(n, 0);
    img_list_free(list, n);
    img_filter byname = { .name = "db" };
    OK(img_list(f->s, &byname, &list, &n, err));
    assert_int_equal(n, 1);
    img_list_free(list, n);
    img_filter all = { .include_untagged = 1 };
    OK(img_list(f->s, &all, &list, &n, err));
    assert_int_equal(n, 3);
    assert_string_equal(list[0].name, "");
    assert_string_equal(list[0].digest, info.digest);
    img_list_free(list, n);
    img_info_clear(&info);

    OK(img_label_set(f->s, "db", "tier", "gold", err));
    OK(img_label_set(f->s, "web:v1", "team", NULL, err));
    FAILS(img_label_set(f->s, "db", "bad key", "x", err), IMG_E_INVALID,
          "label key 'bad key': character 4");
    FAILS(img_label_set(f->s, "db", "k", "line\nbreak", err), IMG_E_INVALID,
          "value has a control character at byte 5");
    OK(img_get(f->s, "web:v1", &info, err));
    assert_int_equal(info.nlabels, 1);
    assert_string_equal(info.name, "web");
    assert_string_equal(info.tag, "v1");
    img_info_clear(&info);
    OK(img_get(f->s, "db", &info, err));
    assert_int_equal(info.nlabels, 1);
    assert_string_equal(info.labels[0].value, "gold");
    img_info_clear(&info);
}

static void test_refs_delete_gc(void **state)
{
    fx *f = *state;
    img_info a;
    char d[IMG_DIGEST_LEN + 1];
    OK(imgt_upload(f->s, 9, 2 * MiB, MiB, "svc", NULL, &a, err));
    OK(img_ref_acquire(f->s, "svc", err));
    OK(img_ref_acquire(f->s, a.digest, err));
    FAILS(img_delete(f->s, "svc", 0, err), IMG_E_IN_USE, "image 'svc' (sha256:");
    FAILS(img_delete(f->s, "svc", 0, err), IMG_E_IN_USE, "is in use by 2 instances");
    OK(img_delete(f->s, "svc", 1, err)); /* names go, bytes stay */
    FAILS(img_resolve(f->s, "svc", d, err), IMG_E_NOT_FOUND, "image 'svc' not found");
    img_gc_stats gs;
    OK(img_gc(f->s, &gs, err));
    assert_int_equal(gs.images_removed, 0);
    OK(img_resolve(f->s, a.digest, d, err));
    OK(img_ref_release(f->s, a.digest, err));
    OK(img_ref_release(f->s, a.digest, err));
    FAILS(img_ref_release(f->s, a.digest, err), IMG_E_CONFLICT, "has no references to release");
    OK(img_gc(f->s, &gs, err));
    assert_int_equal(gs.images_removed, 1);
    assert_int_equal(gs.bytes_removed, 2 * MiB);
    FAILS(img_ref_acquire(f->s, a.digest, err), IMG_E_NOT_FOUND, "not found");
    assert_int_equal(q(f, "SELECT count(*) FROM chunks"), 0);
    img_info_clear(&a);

    /* delete without references removes bytes at once; refs_reset */
    OK(imgt_upload(f->s, 10, 4096, 4096, "x", NULL, &a, err));
    OK(img_ref_acquire(f->s, "x", err));
    OK(img_refs_reset(f->s, err));
    OK(img_delete(f->s, "x", 0, err));
    assert_int_equal(q(f, "SELECT count(*) FROM blobs"), 0);
    FAILS(img_delete(f->s, "x", 0, err), IMG_E_NOT_FOUND, "image 'x' not found");
    img_info_clear(&a);
    OK(img_check(f->s, err));
}

static int count_dir(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void test_materialize(void **state)
{
    fx *f = *state;
    char *cache = NULL, *p1 = NULL, *p2 = NULL, *p3 = NULL;
    img_info a, b, c;
    struct stat s1, s2;
    assert_true(asprintf(&cache, "%s/cache", f->dir) > 0);
    img_opts o = { .cache_dir = cache, .cache_max_bytes = 450 * 1024 };
    img_store_close(f->s);
    assert_int_equal(open_store(f, &o), 0);
    OK(imgt_upload(f->s, 21, 200 * 1024, 65536, "a", NULL, &a, err));
    OK(imgt_upload(f->s, 22, 200 * 1024, 65536, "b", NULL, &b, err));
    OK(imgt_upload(f->s, 23, 200 * 1024, 65536, "c", NULL, &c, err));

    OK(img_ref_acquire(f->s, "a", err));
    OK(img_materialize(f->s, "a", &p1, err));
    assert_int_equal(stat(p1, &s1), 0);
    free(p1);
    OK(img_materialize(f->s, a.digest, &p1, err)); /* reused, not rewritten */
    assert_int_equal(stat(p1, &s2), 0);
    assert_int_equal(s1.st_ino, s2.st_ino);
    char want[IMG_DIGEST_LEN + 1];
    imgt_digest(21, 200 * 1024, want);
    assert_non_null(strstr(p1, want + 7));
    OK(img_materialize(f->s, "b", &p2, err));
    OK(img_materialize(f->s, "c", &p3, err)); /* 600 KiB > 450 KiB: b goes (a in use) */
    assert_int_equal(access(p1, F_OK), 0);
    assert_int_equal(access(p2, F_OK), -1);
    assert_int_equal(access(p3, F_OK), 0);
    assert_int_equal(count_dir(cache), 2);
    OK(img_cache_trim(f->s, 0, err)); /* a is referenced: stays */
    assert_int_equal(access(p1, F_OK), 0);
    assert_int_equal(access(p3, F_OK), -1);
    OK(img_ref_release(f->s, "a", err));

    /* delete drops the file; gc drops files of images no longer stored */
    OK(img_delete(f->s, "a", 0, err));
    assert_int_equal(access(p1, F_OK), -1);
    free(p3);
    OK(img_materialize(f->s, "c", &p3, err));
    assert_int_equal(access(p3, F_OK), 0);

    /* stored bytes that no longer hash to the digest: refused, nothing left */
    sqlite3 *h = NULL;
    sqlite3_blob *bl = NULL;
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT k.id FROM chunks k JOIN blobs b ON b.id = k.blob_id "
             "WHERE b.digest = '%s' AND k.seq = 0",
             b.digest);
    long long rowid = q(f, sql);
    assert_true(rowid > 0);
    assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_blob_open(h, "main", "chunks", "data", rowid, 1, &bl), SQLITE_OK);
    assert_int_equal(sqlite3_blob_write(bl, "X", 1, 1000), SQLITE_OK);
    sqlite3_blob_close(bl);
    sqlite3_close(h);
    free(p2);
    p2 = NULL;
    FAILS(img_materialize(f->s, "b", &p2, err), IMG_E_CORRUPT, "stored bytes hash to sha256:");
    assert_null(p2);
    assert_int_equal(count_dir(cache), 1); /* only c; no temp file left */
    img_gc_stats gs;
    OK(img_gc(f->s, &gs, err));
    free(p1);
    free(p3);
    free(cache);
    img_info_clear(&a);
    img_info_clear(&b);
    img_info_clear(&c);
}

typedef struct worker {
    img_store *s;
    int id;
    int failures;
    char digests[3][IMG_DIGEST_LEN + 1];
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 3; i++) {
        img_info info;
        img_err e;
        char name[32], got[IMG_DIGEST_LEN + 1];
        uint64_t size = 300 * 1024 + (uint64_t)w->id * 1000 + (uint64_t)i;
        snprintf(name, sizeof name, "w%d", w->id);
        char tag[8];
        snprintf(tag, sizeof tag, "%d", i);
        if (imgt_upload(w->s, 500 + (uint64_t)w->id * 10 + (uint64_t)i, size, 7000, name, tag,
                        &info, &e) != 0) {
            print_error("worker %d upload: %s\n", w->id, e.msg);
            w->failures++;
            continue;
        }
        memcpy(w->digests[i], info.digest, sizeof info.digest);
        img_info_clear(&info);
        uint64_t n;
        if (imgt_read_digest(w->s, w->digests[i], got, &n, &e) != 0 ||
            strcmp(got, w->digests[i]) != 0 || n != size) {
            print_error("worker %d read back: %s\n", w->id, e.msg);
            w->failures++;
        }
        img_info *list;
        size_t cnt;
        if (img_list(w->s, NULL, &list, &cnt, &e) != 0) {
            print_error("worker %d list: %s\n", w->id, e.msg);
            w->failures++;
        } else {
            img_list_free(list, cnt);
        }
        if (img_ref_acquire(w->s, w->digests[i], &e) != 0 ||
            img_ref_release(w->s, w->digests[i], &e) != 0)
            w->failures++;
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    fx *f = *state;
    enum { N = 4 };
    pthread_t t[N];
    worker w[N];
    img_opts o = { .chunk_size = 65536 };
    img_store_close(f->s);
    assert_int_equal(open_store(f, &o), 0);
    for (int i = 0; i < N; i++) {
        w[i] = (worker){ .s = f->s, .id = i };
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(w[i].failures, 0);
        for (int j = 0; j < 3; j++) {
            char d[IMG_DIGEST_LEN + 1], ref[32];
            snprintf(ref, sizeof ref, "w%d:%d", i, j);
            OK(img_resolve(f->s, ref, d, err));
            assert_string_equal(d, w[i].digests[j]);
        }
    }
    assert_int_equal(q(f, "SELECT count(*) FROM blobs WHERE state = 1"), N * 3);
    assert_int_equal(q(f, "SELECT count(*) FROM blobs WHERE state = 0"), 0);
    OK(img_check(f->s, err));
}

static void test_schema_version(void **state)
{
    fx *f = *state;
    img_store_close(f->s);
    f->s = NULL;
    assert_int_equal(q(f, "PRAGMA user_version"), IMG_SCHEMA_VERSION);
    assert_int_equal(q(f, "PRAGMA page_size"), 65536);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    FAILS(img_store_open(f->db, NULL, &f->s, err), IMG_E_CORRUPT,
          "has schema version 99, newer than this shoal's (6)");
    assert_null(f->s);
    assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "PRAGMA user_version = 6", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    assert_int_equal(open_store(f, NULL), 0);
}

/* Push len bytes from buf as name (tag latest). */
static int push_buf(fx *f, const void *buf, size_t len, const char *name, img_info *info,
                    img_err *err)
{
    img_upload *u = NULL;
    if (img_upload_begin(f->s, len, &u, err) != 0)
        return -1;
    if (img_upload_write(u, buf, len, err) != 0) {
        img_upload_abort(u);
        return -1;
    }
    return img_upload_commit(u, name, NULL, NULL, 0, info, err);
}

static void expect_kind(const img_info *i, img_kind kind, img_format format, img_firmware fw,
                        img_cmdline cmdline, const char *first_evidence)
{
    if (i->kind != kind || i->format != format)
        fail_msg("%s: kind %s format %s, expected %s %s", i->digest, img_kind_name(i->kind),
                 img_format_name(i->format), img_kind_name(kind), img_format_name(format));
    assert_int_equal(i->profile.firmware, fw);
    assert_int_equal(i->profile.cmdline, cmdline);
    assert_true(i->nevidence >= 1);
    assert_string_equal(i->evidence[0], first_evidence);
}

/* Every kind through the store: commit's info, img_get and img_list agree. */
static void test_kinds_stored(void **state)
{
    fx *f = *state;
    static uint8_t b[0x20000];
    img_info info;
    struct {
        const char *name;
        size_t len;
        img_kind kind;
        img_format format;
        img_firmware fw;
        img_cmdline cmdline;
        const char *ev0;
        uint32_t nev;
    } want[] = {
        { "shoal", IMGT_PVH_SIZE, IMG_KIND_SHOAL, IMG_FORMAT_ELF, IMG_FW_QBOOT, IMG_CMDLINE_SHOAL,
          "note shoal.guest", 2 },
        { "solo5", IMGT_SOLO5_SIZE, IMG_KIND_SOLO5, IMG_FORMAT_ELF, IMG_FW_SEABIOS,
          IMG_CMDLINE_SOLO5, "note solo5.abi", 4 },
        { "unikraft", IMGT_PVH_SIZE, IMG_KIND_UNIKRAFT, IMG_FORMAT_ELF, IMG_FW_SEABIOS,
          IMG_CMDLINE_UNIKRAFT, "section .uk_inittab", 3 },
        { "pvh", IMGT_PVH_SIZE, IMG_KIND_PVH, IMG_FORMAT_ELF, IMG_FW_SEABIOS, IMG_CMDLINE_RAW,
          "note Xen.PHYS32_ENTRY (pvh)", 1 },
        { "qcow2", IMGT_QCOW2_SIZE, IMG_KIND_DISK, IMG_FORMAT_QCOW2, IMG_FW_SEABIOS,
          IMG_CMDLINE_RAW, "format qcow2 v3", 2 },
        { "disk", sizeof b, IMG_KIND_DISK, IMG_FORMAT_RAW, IMG_FW_SEABIOS, IMG_CMDLINE_RAW,
          "format raw", 2 },
    };
    /* a chunk smaller than the disk: its first chunk passes the early check */
    img_opts o = { .chunk_size = 65536 };
    img_store_close(f->s);
    assert_int_equal(open_store(f, &o), 0);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        switch (i) {
        case 0: imgt_shoal(b); break;
        case 1: imgt_solo5(b); break;
        case 2: imgt_unikraft(b); break;
        case 3: imgt_fill(9, IMGT_PVH_SIZE, 0, b, IMGT_PVH_SIZE); break;
        case 4: imgt_qcow2(b, 3); break;
        default: imgt_bootsector(b, sizeof b); break;
        }
        OK(push_buf(f, b, want[i].len, want[i].name, &info, err));
        expect_kind(&info, want[i].kind, want[i].format, want[i].fw, want[i].cmdline, want[i].ev0);
        assert_int_equal(info.nevidence, want[i].nev);
        assert_int_equal(info.boot, want[i].kind == IMG_KIND_DISK    ? IMG_BOOT_DISK
                                    : want[i].kind == IMG_KIND_SOLO5 ? IMG_BOOT_MULTIBOOT
                                                                     : IMG_BOOT_PVH);
        img_info_clear(&info);
        OK(img_get(f->s, want[i].name, &info, err));
        expect_kind(&info, want[i].kind, want[i].format, want[i].fw, want[i].cmdline, want[i].ev0);
        assert_int_equal(info.nevidence, want[i].nev);
        img_info_clear(&info);
    }
    OK(img_get(f->s, "solo5", &info, err));
    assert_string_equal(info.evidence[1], "note solo5.manifest");
    assert_string_equal(info.evidence[2], "interp /nonexistent/solo5/");
    assert_string_equal(info.evidence[3], "multiboot header with load addresses");
    img_info_clear(&info);
    img_info *list;
    size_t n;
    OK(img_list(f->s, NULL, &list, &n, err));
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < sizeof want / sizeof want[0]; j++)
            if (!strcmp(list[i].name, want[j].name))
                expect_kind(&list[i], want[j].kind, want[j].format, want[j].fw, want[j].cmdline,
                            want[j].ev0);
    img_list_free(list, n);
    assert_int_equal(q(f, "SELECT count(*) FROM blobs WHERE kind = 'solo5' AND firmware = "
                          "'seabios' AND cmdline = 'solo5' AND format = 'elf'"),
                     1);
    OK(img_check(f->s, err));
}

static void test_profiles(void **state)
{
    static const struct {
        img_kind kind;
        const char *fw, *cmdline;
    } p[] = {
        { IMG_KIND_SHOAL, "qboot", "shoal" },     { IMG_KIND_UNIKRAFT, "seabios", "unikraft" },
        { IMG_KIND_SOLO5, "seabios", "solo5" },   { IMG_KIND_PVH, "seabios", "raw" },
        { IMG_KIND_MULTIBOOT, "seabios", "raw" }, { IMG_KIND_DISK, "seabios", "raw" },
        { IMG_KIND_UNKNOWN, "none", "none" },
    };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        img_profile pr = img_profile_default(p[i].kind);
        assert_string_equal(img_firmware_name(pr.firmware), p[i].fw);
        assert_string_equal(img_cmdline_name(pr.cmdline), p[i].cmdline);
        assert_int_equal(img_firmware_parse(p[i].fw), pr.firmware);
        assert_int_equal(img_cmdline_parse(p[i].cmdline), pr.cmdline);
    }
    assert_int_equal(img_firmware_parse("ovmf"), IMG_FW_NONE);
    assert_int_equal(img_cmdline_parse(NULL), IMG_CMDLINE_NONE);
    /* how an exit is read: the status channel for shoal's guests only */
    assert_int_equal(img_profile_default(IMG_KIND_SHOAL).exit, IMG_EXIT_STATUS);
    assert_int_equal(img_profile_default(IMG_KIND_UNIKRAFT).exit, IMG_EXIT_POWEROFF);
    assert_int_equal(img_profile_default(IMG_KIND_DISK).exit, IMG_EXIT_POWEROFF);
    assert_int_equal(img_profile_default(IMG_KIND_UNKNOWN).exit, IMG_EXIT_NONE);
    assert_int_equal(img_exit_parse("debug-exit"), IMG_EXIT_DEBUG_EXIT);
    assert_string_equal(img_exit_name(IMG_EXIT_POWEROFF), "poweroff");
    assert_int_equal(img_exit_parse("halt"), IMG_EXIT_NONE);
    /* "template" names the form, it is not a preset a client can ask for */
    assert_string_equal(img_cmdline_name(IMG_CMDLINE_TEMPLATE), "template");
    assert_int_equal(img_cmdline_parse("template"), IMG_CMDLINE_NONE);
    /* every name parses back to its value; out of range is "none" */
    for (int v = IMG_FW_QBOOT; v <= IMG_FW_SEABIOS; v++)
        assert_int_equal(img_firmware_parse(img_firmware_name((img_firmware)v)), v);
    for (int v = IMG_CMDLINE_SHOAL; v <= IMG_CMDLINE_RAW; v++)
        assert_int_equal(img_cmdline_parse(img_cmdline_name((img_cmdline)v)), v);
    for (int v = IMG_EXIT_STATUS; v <= IMG_EXIT_POWEROFF; v++)
        assert_int_equal(img_exit_parse(img_exit_name((img_exit)v)), v);
    assert_string_equal(img_firmware_name((img_firmware)7), "none");
    assert_string_equal(img_exit_name((img_exit)-1), "none");
    assert_string_equal(img_cmdline_name(IMG_CMDLINE_NONE), "none");
}

/* Templates: every placeholder, the brace escapes, each refusal. */
static void test_templates(void **state)
{
    char msg[256], big[IMG_TEMPLATE_MAX + 2];
    (void)state;
    assert_int_equal(img_template_check("netdev.ip={address}/{prefix}:{gateway} mac={mac} "
                                        "{env} -- {name} {args}",
                                        msg, sizeof msg),
                     0);
    assert_int_equal(img_template_check("{{literal}} }} {{", msg, sizeof msg), 0);
    assert_int_equal(img_template_check("caf\xc3\xa9 {args}", msg, sizeof msg), 0);
    static const struct {
        const char *t, *msg;
    } no[] = {
        { "", "command line template is empty" },
        { "ip={ip}", "unknown placeholder '{ip}' in the command line template (known: {address} "
                     "{prefix} {gateway} {mac} {env} {args} {name})" },
        { "a {args", "unmatched '{' at byte 2 (write '{{' for a brace)" },
        { "a {x{args}", "unmatched '{' at byte 2 (write '{{' for a brace)" },
        { "a } b", "unmatched '}' at byte 2 (write '}}' for a brace)" },
        { "tab\there", "command line template has a control character (0x09) at byte 3" },
        { "bad \xc3(", "command line template is not UTF-8 at byte 4" },
        { "{}", "unknown placeholder '{}'" },
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        msg[0] = 0;
        if (img_template_check(no[i].t, msg, sizeof msg) != -1 || !strstr(msg, no[i].msg))
            fail_msg("template '%s': got '%s', want '%s'", no[i].t, msg, no[i].msg);
    }
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(img_template_check(big, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "of 1025 bytes is over the limit of 1024"));
    big[IMG_TEMPLATE_MAX] = 0;
    assert_int_equal(img_template_check(big, msg, sizeof msg), 0);
}

#define SET_FAILS(ref, ch, field_, substr)                                                         \
    do {                                                                                           \
        const char *fld_ = "unset";                                                                \
        FAILS(img_profile_set(f->s, (ref), (ch), NULL, &fld_, err), IMG_E_INVALID, (substr));      \
        if ((field_) == NULL)                                                                      \
            assert_null(fld_);                                                                     \
        else                                                                                       \
            assert_string_equal(fld_, (field_));                                                   \
    } while (0)

/* A stored profile changed: each field, the template kept, refusals that
 * change nothing, every name of the image sees it, and it survives a
 * reopen. */
static void test_profile_set(void **state)
{
    fx *f = *state;
    static uint8_t b[0x20000];
    img_info info;
    const char *field = NULL;
    img_opts o = { .chunk_size = 65536 };
    img_store_close(f->s);
    assert_int_equal(open_store(f, &o), 0);
    imgt_unikraft(b);
    OK(push_buf(f, b, IMGT_PVH_SIZE, "uk", &info, err));
    assert_int_equal(info.profile.exit, IMG_EXIT_POWEROFF);
    img_info_clear(&info);
    OK(img_tag(f->s, "uk", "uk:other", err));
    imgt_bootsector(b, sizeof b);
    OK(push_buf(f, b, sizeof b, "disk", NULL, err));

    img_profile_change ch = { .exit = "debug-exit" };
    OK(img_profile_set(f->s, "uk", &ch, &info, &field, err));
    assert_null(field);
    assert_int_equal(info.profile.exit, IMG_EXIT_DEBUG_EXIT);
    assert_int_equal(info.profile.firmware, IMG_FW_SEABIOS); /* the rest kept */
    assert_int_equal(info.profile.cmdline, IMG_CMDLINE_UNIKRAFT);
    img_info_clear(&info);
    ch = (img_profile_change){ .firmware = "qboot",
                               .cmdline =
                                   "{name} netdev.ip={address}/{prefix}:{gateway} -- {args}" };
    OK(img_profile_set(f->s, "uk:other", &ch, NULL, NULL, err));
    OK(img_get(f->s, "uk:latest", &info, err));
    assert_int_equal(info.profile.firmware, IMG_FW_QBOOT);
    assert_int_equal(info.profile.cmdline, IMG_CMDLINE_TEMPLATE);
    assert_string_equal(info.profile.template,
                        "{name} netdev.ip={address}/{prefix}:{gateway} -- {args}");
    assert_int_equal(info.profile.exit, IMG_EXIT_DEBUG_EXIT);
    img_info_clear(&info);

    /* refusals name the field and change nothing, even when another field
       of the same change was fine */
    ch = (img_profile_change){ .firmware = "seabios", .exit = "halt" };
    SET_FAILS("uk", &ch, "exit", "exit 'halt' is not status, debug-exit or poweroff");
    ch = (img_profile_change){ .firmware = "ovmf" };
    SET_FAILS("uk", &ch, "firmware", "firmware 'ovmf' is not qboot or seabios");
    ch = (img_profile_change){ .exit = "status", .cmdline = "ip={ip}" };
    SET_FAILS("uk", &ch, "cmdline",
              "cmdline is neither a preset (shoal, unikraft, solo5, raw) "
              "nor a usable template: unknown placeholder '{ip}'");
    ch = (img_profile_change){ 0 };
    SET_FAILS("uk", &ch, NULL, "no profile field to change");
    ch = (img_profile_change){ .firmware = "qboot" };
    SET_FAILS("disk", &ch, "firmware", "a disk image (format raw) boots only with seabios");
    ch = (img_profile_change){ .cmdline = "{args}" };
    SET_FAILS("disk", &ch, "cmdline", "a disk image (format raw) takes no command line");
    FAILS(img_profile_set(f->s, "nope", &ch, NULL, NULL, err), IMG_E_NOT_FOUND,
          "image 'nope' not found");
    OK(img_get(f->s, "uk", &info, err));
    assert_int_equal(info.profile.firmware, IMG_FW_QBOOT);
    assert_int_equal(info.profile.cmdline, IMG_CMDLINE_TEMPLATE);
    assert_int_equal(info.profile.exit, IMG_EXIT_DEBUG_EXIT);
    img_info_clear(&info);
    ch = (img_profile_change){ .exit = "debug-exit" }; /* a disk may exit that way (Nanos) */
    OK(img_profile_set(f->s, "disk", &ch, NULL, NULL, err));

    /* a preset again drops the template; all of it survives a reopen */
    ch = (img_profile_change){ .cmdline = "raw", .exit = "poweroff" };
    OK(img_profile_set(f->s, "uk", &ch, NULL, NULL, err));
    img_store_close(f->s);
    assert_int_equal(open_store(f, &o), 0);
    OK(img_get(f->s, "uk", &info, err));
    assert_int_equal(info.profile.firmware, IMG_FW_QBOOT);
    assert_int_equal(info.profile.cmdline, IMG_CMDLINE_RAW);
    assert_string_equal(info.profile.template, "");
    assert_int_equal(info.profile.exit, IMG_EXIT_POWEROFF);
    img_info_clear(&info);
    OK(img_get(f->s, "disk", &info, err));
    assert_int_equal(info.profile.exit, IMG_EXIT_DEBUG_EXIT);
    img_info_clear(&info);
    assert_int_equal(q(f, "SELECT count(*) FROM blobs WHERE template IS NOT NULL"), 0);
    OK(img_check(f->s, err));
}

static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[8192];
    size_t n;
    assert_non_null(a);
    assert_non_null(b);
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        assert_int_equal(fwrite(buf, 1, n, b), n);
    fclose(a);
    assert_int_equal(fclose(b), 0);
}

/*
 * A real schema-1 database (tests/imagestore/data/schema-v1.db, written by
 * the schema-1 store; data/make_schema_v1.c says how) upgrades in place:
 * every image read again for its kind, one the current validator refuses
 * kept with the kind its boot protocol implies, bytes and labels intact.
 */
static void test_migrate_v1(void **state)
{
    fx *f = *state;
    char *db = NULL;
    img_store *s = NULL;
    img_info info;
    assert_true(asprintf(&db, "%s/old.db", f->dir) > 0);
    copy_file(IMGT_DATA_DIR "/schema-v1.db", db);
    assert_int_equal(imgt_sql_int(db, "PRAGMA user_version"), 1);
    assert_int_equal(imgt_sql_int(db, "SELECT count(*) FROM blobs"), 4);
    OK(img_store_open(db, NULL, &s, err));
    assert_int_equal(imgt_sql_int(db, "PRAGMA user_version"), IMG_SCHEMA_VERSION);
    assert_int_equal(imgt_sql_int(db, "SELECT count(*) FROM blobs WHERE kind IS NULL"), 0);

    OK(img_get(s, "pvh:v1", &info, err));
    char want[IMG_DIGEST_LEN + 1], got[IMG_DIGEST_LEN + 1];
    imgt_digest(1, 4096, want);
    assert_string_equal(info.digest, want);
    assert_int_equal(info.boot, IMG_BOOT_PVH);
    expect_kind(&info, IMG_KIND_PVH, IMG_FORMAT_ELF, IMG_FW_SEABIOS, IMG_CMDLINE_RAW,
                "note Xen.PHYS32_ENTRY (pvh)");
    assert_int_equal(info.nlabels, 1);
    assert_string_equal(info.labels[0].key, "origin");
    assert_string_equal(info.labels[0].value, "schema-v1");
    img_info_clear(&info);
    OK(imgt_read_digest(s, "pvh:v1", got, NULL, err));
    assert_string_equal(got, want);

    OK(img_get(s, "mb32", &info, err));
    assert_int_equal(info.boot, IMG_BOOT_MULTIBOOT);
    expect_kind(&info, IMG_KIND_MULTIBOOT, IMG_FORMAT_ELF, IMG_FW_SEABIOS, IMG_CMDLINE_RAW,
                "multiboot header");
    img_info_clear(&info);
    OK(img_get(s, "rawmb", &info, err));
    expect_kind(&info, IMG_KIND_MULTIBOOT, IMG_FORMAT_BIN, IMG_FW_SEABIOS, IMG_CMDLINE_RAW,
                "multiboot header with load addresses");
    img_info_clear(&info);
    /* accepted by schema 1's validator, refused now (x86_64 Multiboot ELF
       without load addresses): kept, kind from its boot protocol */
    OK(img_get(s, "mb64:noaddr", &info, err));
    assert_int_equal(info.boot, IMG_BOOT_MULTIBOOT);
    expect_kind(&info, IMG_KIND_MULTIBOOT, IMG_FORMAT_ELF, IMG_FW_SEABIOS, IMG_CMDLINE_RAW,
                "revalidation failed");
    assert_int_equal(info.nevidence, 1);
    img_info_clear(&info);
    OK(img_check(s, err));

    /* the upgraded store takes new images; a second open migrates nothing */
    static uint8_t b[IMGT_SOLO5_SIZE];
    imgt_solo5(b);
    img_upload *u = NULL;
    OK(img_upload_begin(s, sizeof b, &u, err));
    OK(img_upload_write(u, b, sizeof b, err));
    OK(img_upload_commit(u, "solo5", NULL, NULL, 0, NULL, err));
    img_store_close(s);
    s = NULL;
    OK(img_store_open(db, NULL, &s, err));
    img_info *list;
    size_t n;
    OK(img_list(s, NULL, &list, &n, err));
    assert_int_equal(n, 5);
    assert_string_equal(list[0].name, "mb32");
    assert_int_equal(list[0].kind, IMG_KIND_MULTIBOOT);
    assert_string_equal(list[4].name, "solo5");
    assert_int_equal(list[4].kind, IMG_KIND_SOLO5);
    img_list_free(list, n);
    img_store_close(s);
    free(db);
}

/*
 * A real schema-2 database (data/schema-v2.db, written by the schema-2
 * store; data/make_schema_v2.c says how) upgrades in place: no row
 * rewritten, every profile reads as its kind's default (exit poweroff for
 * these kinds), and a profile can then be changed and survives a reopen.
 */
static void test_migrate_v2(void **state)
{
    fx *f = *state;
    char *db = NULL;
    img_store *s = NULL;
    img_info info;
    assert_true(asprintf(&db, "%s/v2.db", f->dir) > 0);
    copy_file(IMGT_DATA_DIR "/schema-v2.db", db);
    assert_int_equal(imgt_sql_int(db, "PRAGMA user_version"), 2);
    OK(img_store_open(db, NULL, &s, err));
    assert_int_equal(imgt_sql_int(db, "PRAGMA user_version"), IMG_SCHEMA_VERSION);
    assert_int_equal(imgt_sql_int(db, "SELECT count(*) FROM blobs WHERE exit IS NULL"), 5);
    assert_int_equal(imgt_sql_int(db, "SELECT count(*) FROM blobs WHERE role IS NULL"), 5);
    OK(img_get(s, "solo5:v2", &info, err));
    expect_kind(&info, IMG_KIND_SOLO5, IMG_FORMAT_ELF, IMG_FW_SEABIOS, IMG_CMDLINE_SOLO5,
                "note solo5.abi");
    assert_int_equal(info.profile.exit, IMG_EXIT_POWEROFF);
    assert_string_equal(info.labels[0].value, "schema-v2");
    img_info_clear(&info);
    OK(img_get(s, "mb64:noaddr", &info, err));
    expect_kind(&info, IMG_KIND_MULTIBOOT, IMG_FORMAT_ELF, IMG_FW_SEABIOS, IMG_CMDLINE_RAW,
                "revalidation failed");
    img_info_clear(&info);
    img_profile_change ch = { .exit = "debug-exit", .cmdline = "{args}" };
    OK(img_profile_set(s, "solo5:v2", &ch, NULL, NULL, err));
    OK(img_check(s, err));
    img_store_close(s);
    OK(img_store_open(db, NULL, &s, err));
    OK(img_get(s, "solo5:v2", &info, err));
    assert_int_equal(info.profile.exit, IMG_EXIT_DEBUG_EXIT);
    assert_int_equal(info.profile.cmdline, IMG_CMDLINE_TEMPLATE);
    assert_string_equal(info.profile.template, "{args}");
    img_info_clear(&info);
    char got[IMG_DIGEST_LEN + 1];
    OK(imgt_read_digest(s, "pvh:v1", got, NULL, err));
    img_store_close(s);
    free(db);
}

/* A stand-in for the daemon's probe checker (probe.h): "none", "status",
 * "tcp:N", "http:N/..." for readiness, tcp and http for health; "status"
 * only with the status channel (exit status); "tcp:0N" rewritten to
 * "tcp:N" (the canonical form goes in). */
static int fake_check(void *ctx, img_profile *p, img_kind kind, const char **field, char *msg,
                      size_t msglen)
{
    int *calls = ctx;
    (*calls)++;
    (void)kind;
    if (p->ready[0] && strcmp(p->ready, "none") && strcmp(p->ready, "status") &&
        strncmp(p->ready, "tcp:", 4) && strncmp(p->ready, "http:", 5)) {
        *field = "ready";
        snprintf(msg, msglen, "ready '%s' is no probe", p->ready);
        return -1;
    }
    if (!strcmp(p->ready, "status") && p->exit != IMG_EXIT_STATUS) {
        *field = "ready";
        snprintf(msg, msglen, "ready 'status' needs the status channel");
        return -1;
    }
    if (p->health[0] && strncmp(p->health, "tcp:", 4) && strncmp(p->health, "http:", 5)) {
        *field = "health";
        snprintf(msg, msglen, "health '%s' is no health probe", p->health);
        return -1;
    }
    if (!strncmp(p->ready, "tcp:0", 5))
        memmove(p->ready + 4, p->ready + 5, strlen(p->ready + 5) + 1);
    return 0;
}

/*
 * Probes in a stored profile (schema 5): ready and health with its numbers
 * set, changed piecewise and removed; their syntax judged by the checker
 * the caller gives, on the profile as it would be (an exit change too);
 * refusals name the field and change nothing; kept across a reopen.
 */
static void test_profile_probes(void **state)
{
    fx *f = *state;
    static uint8_t b[IMGT_PVH_SIZE];
    img_info info;
    const char *field = NULL;
    int calls = 0;

    imgt_unikraft(b);
    OK(push_buf(f, b, sizeof b, "uk", &info, err));
    assert_string_equal(info.profile.ready, ""); /* the kind's default */
    assert_string_equal(info.profile.health, "");
    img_info_clear(&info);
    img_profile_change ch = { .ready = "tcp:08080", .check = fake_check, .check_ctx = &calls };
    OK(img_profile_set(f->s, "uk", &ch, &info, &field, err));
    assert_int_equal(calls, 1);
    assert_string_equal(info.profile.ready, "tcp:8080"); /* as the checker wrote it */
    assert_int_equal(info.profile.exit, IMG_EXIT_POWEROFF);
    img_info_clear(&info);
    ch = (img_profile_change){ .health = "http:8080/healthz",
                               .health_interval_s = 5,
                               .check = fake_check,
                               .check_ctx = &calls };
    OK(img_profile_set(f->s, "uk", &ch, &info, &field, err));
    assert_string_equal(info.profile.health, "http:8080/healthz");
    assert_int_equal(info.profile.health_interval_s, 5);
    assert_int_equal(info.profile.health_timeout_s, 0); /* the default */
    assert_string_equal(info.profile.ready, "tcp:8080");
    img_info_clear(&info);
    ch = (img_profile_change){ .health_retries = 4, .check = fake_check, .check_ctx = &calls };
    OK(img_profile_set(f->s, "uk", &ch, &info, &field, err));
    assert_int_equal(info.profile.health_retries, 4);
    assert_int_equal(info.profile.health_interval_s, 5);
    img_info_clear(&info);
    assert_int_equal(q(f, "SELECT health_timeout_s IS NULL FROM blobs WHERE ready = 'tcp:8080'"),
                     1);

    /* refusals name the field and change nothing */
    ch = (img_profile_change){
        .firmware = "qboot", .ready = "udp:53", .check = fake_check, .check_ctx = &calls
    };
    SET_FAILS("uk", &ch, "ready", "ready 'udp:53' is no probe");
    ch = (img_profile_change){ .health = "console:up", .check = fake_check, .check_ctx = &calls };
    SET_FAILS("uk", &ch, "health", "health 'console:up' is no health probe");
    ch = (img_profile_change){ .ready = "status", .check = fake_check, .check_ctx = &calls };
    SET_FAILS("uk", &ch, "ready", "needs the status channel");
    ch = (img_profile_change){ .ready = "tcp:80" }; /* no checker */
    SET_FAILS("uk", &ch, "ready", "no probe checker");
    ch = (img_profile_change){ .health = "", .health_timeout_s = 3, .check = fake_check };
    SET_FAILS("uk", &ch, "health", "removing the health probe takes no interval");
    ch = (img_profile_change){ .ready = "tcp:80\n", .check = fake_check, .check_ctx = &calls };
    SET_FAILS("uk", &ch, "ready", "control character");
    static char longp[IMG_PROBE_MAX + 2];
    memset(longp, 'x', IMG_PROBE_MAX + 1);
    ch = (img_profile_change){ .health = longp, .check = fake_check, .check_ctx = &calls };
    SET_FAILS("uk", &ch, "health.probe", "over the limit of 300");
    OK(img_get(f->s, "uk", &info, err));
    assert_int_equal(info.profile.firmware, IMG_FW_SEABIOS);
    assert_string_equal(info.profile.ready, "tcp:8080");
    assert_string_equal(info.profile.health, "http:8080/healthz");
    assert_int_equal(info.profile.health_retries, 4);
    img_info_clear(&info);

    /* kept across a reopen; then removed: ready back to the kind's default */
    img_store_close(f->s);
    assert_int_equal(open_store(f, NULL), 0);
    OK(img_get(f->s, "uk", &info, err));
    assert_string_equal(info.profile.ready, "tcp:8080");
    assert_int_equal(info.profile.health_interval_s, 5);
    img_info_clear(&info);
    ch = (img_profile_change){ .ready = "", .health = "", .check = fake_check };
    ch.check_ctx = &calls;
    OK(img_profile_set(f->s, "uk", &ch, &info, &field, err));
    assert_string_equal(info.profile.ready, "");
    assert_string_equal(info.profile.health, "");
    assert_int_equal(info.profile.health_retries, 0);
    img_info_clear(&info);
    assert_int_equal(q(f, "SELECT count(*) FROM blobs WHERE ready IS NULL AND health IS NULL"
                          " AND health_retries IS NULL"),
                     1);
    /* numbers with no health probe to give them to */
    ch = (img_profile_change){ .health_interval_s = 9, .check = fake_check, .check_ctx = &calls };
    SET_FAILS("uk", &ch, "health.probe", "the image has no health probe");
    /* an exit change is checked against the stored probes */
    ch = (img_profile_change){ .exit = "status", .ready = "status", .check = fake_check };
    ch.check_ctx = &calls;
    OK(img_profile_set(f->s, "uk", &ch, NULL, &field, err));
    ch = (img_profile_change){ .exit = "poweroff", .check = fake_check, .check_ctx = &calls };
    SET_FAILS("uk", &ch, "ready", "needs the status channel");
    OK(img_check(f->s, err));
}

/*
 * A real schema-4 database (data/schema-v4.db, written by the schema-4
 * store; data/make_schema_v4.c says how) upgrades in place: the changed
 * profile and the initrd kept, every image without probes (the kind's
 * default), which can then be set and survive a reopen.
 */
static void test_migrate_v4(void **state)
{
    fx *f = *state;
    char *db = NULL;
    img_store *s = NULL;
    img_info info;
    int calls = 0;
    assert_true(asprintf(&db, "%s/v4.db", f->dir) > 0);
    copy_file(IMGT_DATA_DIR "/schema-v4.db", db);
    assert_int_equal(imgt_sql_int(db, "PRAGMA user_version"), 4);
    OK(img_store_open(db, NULL, &s, err));
    assert_int_equal(imgt_sql_int(db, "PRAGMA user_version"), IMG_SCHEMA_VERSION);
    assert_int_equal(imgt_sql_int(db, "SELECT count(*) FROM blobs WHERE ready IS NULL AND health"
                                      " IS NULL AND health_interval_s IS NULL"),
                     8);
    OK(img_get(s, "uk:v4", &info, err));
    assert_int_equal(info.kind, IMG_KIND_UNIKRAFT);
    assert_int_equal(info.profile.exit, IMG_EXIT_DEBUG_EXIT);
    assert_int_equal(info.profile.cmdline, IMG_CMDLINE_TEMPLATE);
    assert_string_equal(info.profile.template, "{name} -- {args}");
    assert_string_equal(info.initrd,
                        "sha256:675f66b9a86159d5e473fde064a194c810bd4d554f4bc1e6aab82b7cb7813d5a");
    assert_string_equal(info.profile.ready, "");
    assert_string_equal(info.profile.health, "");
    assert_string_equal(info.labels[0].value, "schema-v4");
    img_info_clear(&info);
    OK(img_get(s, "solo5:v2", &info, err));
    assert_int_equal(info.profile.exit, IMG_EXIT_POWEROFF);
    assert_string_equal(info.profile.ready, "");
    img_info_clear(&info);
    img_profile_change ch = {
        .ready = "http:80/", .health = "tcp:80", .check = fake_check, .check_ctx = &calls
    };
    OK(img_profile_set(s, "uk:v4", &ch, NULL, NULL, err));
    OK(img_check(s, err));
    img_store_close(s);
    OK(img_store_open(db, NULL, &s, err));
    OK(img_get(s, "uk:v4", &info, err));
    assert_string_equal(info.profile.ready, "http:80/");
    assert_string_equal(info.profile.health, "tcp:80");
    assert_string_equal(info.profile.template, "{name} -- {args}");
    img_info_clear(&info);
    /* the initrd no image points at is still an initrd */
    OK(img_initrd_acquire(
        s, "sha256:7501dc9255c0c3915afa485d260b2a4f83bd2526928478da90a25df55bd13e62", err));
    img_store_close(s);
    free(db);
}

/*
 * A real schema-5 database (data/schema-v5.db, written by the schema-5
 * store; data/make_schema_v5.c says how) upgrades in place: its probes
 * kept, every image without a warm pool. A pool is refused for an image
 * that does not speak the hand-over protocol (uk:v4 is Unikraft), taken
 * by a shoal image, kept across a reopen, and refused again when the
 * image's command line would leave the shoal preset.
 */
static void test_migrate_v5(void **state)
{
    fx *f = *state;
    char *db = NULL;
    img_store *s = NULL;
    img_info info;
    img_upload *u = NULL;
    static uint8_t b[IMGT_PVH_SIZE];
    const char *fld = NULL;
    assert_true(asprintf(&db, "%s/v5.db", f->dir) > 0);
    copy_file(IMGT_DATA_DIR "/schema-v5.db", db);
    assert_int_equal(imgt_sql_int(db, "PRAGMA user_version"), 5);
    OK(img_store_open(db, NULL, &s, err));
    assert_int_equal(imgt_sql_int(db, "PRAGMA user_version"), IMG_SCHEMA_VERSION);
    assert_int_equal(imgt_sql_int(db, "SELECT count(*) FROM blobs WHERE warm_pool IS NOT NULL"), 0);
    OK(img_get(s, "uk:v4", &info, err));
    assert_string_equal(info.profile.ready, "tcp:8080");
    assert_int_equal(info.profile.health_interval_s, 7);
    assert_int_equal(info.profile.warm_pool, 0);
    img_info_clear(&info);
    img_profile_change ch = { .warm_pool_set = 1, .warm_pool = 2 };
    FAILS(img_profile_set(s, "uk:v4", &ch, NULL, &fld, err), IMG_E_INVALID, "kind unikraft");
    assert_string_equal(fld, "warm_pool");
    imgt_shoal(b);
    OK(img_upload_begin(s, sizeof b, &u, err));
    OK(img_upload_write(u, b, sizeof b, err));
    OK(img_upload_commit(u, "sh", "v6", NULL, 0, NULL, err));
    OK(img_profile_set(s, "sh:v6", &ch, NULL, NULL, err));
    ch.warm_pool = IMG_WARM_POOL_MAX + 1;
    FAILS(img_profile_set(s, "sh:v6", &ch, NULL, &fld, err), IMG_E_INVALID, "over the limit");
    img_store_close(s);
    OK(img_store_open(db, NULL, &s, err));
    OK(img_get(s, "sh:v6", &info, err));
    assert_int_equal(info.profile.warm_pool, 2);
    img_info_clear(&info);
    ch = (img_profile_change){ .cmdline = "raw" };
    FAILS(img_profile_set(s, "sh:v6", &ch, NULL, &fld, err), IMG_E_INVALID, "command line raw");
    ch = (img_profile_change){ .warm_pool_set = 1, .warm_pool = 0 };
    OK(img_profile_set(s, "sh:v6", &ch, NULL, NULL, err));
    assert_int_equal(imgt_sql_int(db, "SELECT count(*) FROM blobs WHERE warm_pool IS NOT NULL"), 0);
    OK(img_check(s, err));
    img_store_close(s);
    free(db);
}

static int push_initrd(fx *f, const void *buf, size_t len, img_info *info, img_err *err)
{
    img_upload *u = NULL;
    if (img_initrd_begin(f->s, len, &u, err) != 0)
        return -1;
    if (img_upload_write(u, buf, len, err) != 0) {
        img_upload_abort(u);
        return -1;
    }
    return img_initrd_commit(u, info, err);
}

/* push a kernel with an initrd digest */
static int push_with(fx *f, const void *buf, size_t len, const char *name, const char *initrd,
                     img_info *info, img_err *err)
{
    img_upload *u = NULL;
    if (img_upload_begin(f->s, len, &u, err) != 0)
        return -1;
    if (img_upload_initrd(u, initrd, err) != 0 || img_upload_write(u, buf, len, err) != 0) {
        img_upload_abort(u);
        return -1;
    }
    return img_upload_commit(u, name, NULL, NULL, 0, info, err);
}

/*
 * Initrds: stored as blobs of their own (any bytes, their own size limit),
 * never resolved as images, attached to an image at its push (replacing
 * one it had), materialized like images, gone with the last image that
 * points at them (delete, GC of an untagged image) or, never attached,
 * at GC once stale.
 */
static void test_initrd(void **state)
{
    fx *f = *state;
    static uint8_t k[IMGT_PVH_SIZE], disk[0x20000];
    static const char rd1[] = "hello from the initrd\nsecond\n", rd2[] = "another one\n";
    img_info info, ri;
    char *path = NULL;
    img_opts o = { .max_initrd_size = 4096, .chunk_size = 65536, .stale_upload_secs = 1 };
    img_store_close(f->s);
    assert_int_equal(open_store(f, &o), 0);

    OK(push_initrd(f, rd1, sizeof rd1 - 1, &ri, err));
    assert_int_equal(ri.size, sizeof rd1 - 1);
    assert_true(!strncmp(ri.digest, "sha256:", 7));
    char d1[IMG_DIGEST_LEN + 1];
    memcpy(d1, ri.digest, sizeof d1);
    img_info_clear(&ri);
    /* the same bytes again: one copy */
    OK(push_initrd(f, rd1, sizeof rd1 - 1, &ri, err));
    assert_string_equal(ri.digest, d1);
    img_info_clear(&ri);
    assert_int_equal(q(f, "SELECT count(*) FROM blobs WHERE role = 'initrd'"), 1);
    /* never an image */
    FAILS(img_get(f->s, d1, &info, err), IMG_E_NOT_FOUND, "not found");
    FAILS(img_materialize(f->s, d1, &path, err), IMG_E_NOT_FOUND, "not found");
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%.12s", d1 + 7);
    FAILS(img_get(f->s, prefix, &info, err), IMG_E_NOT_FOUND, "not found");
    img_info *list;
    size_t n;
    img_filter all = { .include_untagged = 1 };
    OK(img_list(f->s, &all, &list, &n, err));
    assert_int_equal(n, 0);
    img_list_free(list, n);

    /* refused: too large, empty, unknown digest, a disk, an image's bytes */
    static uint8_t big[4097];
    FAILS(push_initrd(f, big, sizeof big, NULL, err), IMG_E_TOO_LARGE,
          "initrd of 4097 bytes is over the limit of 4096 bytes");
    FAILS(push_initrd(f, big, 0, NULL, err), IMG_E_INVALID, "initrd is empty");
    imgt_unikraft(k);
    char nope[IMG_DIGEST_LEN + 1];
    snprintf(nope, sizeof nope, "sha256:%064d", 0);
    FAILS(push_with(f, k, sizeof k, "uk", nope, NULL, err), IMG_E_NOT_FOUND,
          "not found (upload it first)");
    FAILS(img_get(f->s, "uk", &info, err), IMG_E_NOT_FOUND, "not found");
    img_upload *u = NULL;
    OK(img_upload_begin(f->s, 0, &u, err));
    FAILS(img_upload_initrd(u, "sha256:12", err), IMG_E_INVALID, "64 lowercase hex digits");
    img_upload_abort(u);
    /* the two kinds of upload end their own way */
    OK(img_initrd_begin(f->s, 0, &u, err));
    OK(img_upload_write(u, rd1, sizeof rd1 - 1, err));
    FAILS(img_upload_commit(u, "x", NULL, NULL, 0, NULL, err), IMG_E_INVALID,
          "an initrd upload ends with img_initrd_commit");
    OK(img_upload_begin(f->s, 0, &u, err));
    OK(img_upload_write(u, k, sizeof k, err));
    FAILS(img_initrd_commit(u, NULL, err), IMG_E_INVALID, "not an initrd upload");
    assert_int_equal(q(f, "SELECT count(*) FROM blobs WHERE state = 0"), 0);
    imgt_bootsector(disk, sizeof disk);
    FAILS(push_with(f, disk, sizeof disk, "disk", d1, NULL, err), IMG_E_INVALID,
          "a disk image (format raw) takes no initrd");
    OK(push_buf(f, k, sizeof k, "plain", NULL, err));
    FAILS(push_initrd(f, k, sizeof k, NULL, err), IMG_E_CONFLICT, "is stored as an image");

    /* attached at push, shown by img_get, materialized */
    OK(push_with(f, k, sizeof k, "uk", d1, &info, err));
    assert_string_equal(info.initrd, d1);
    assert_int_equal(info.initrd_size, sizeof rd1 - 1);
    img_info_clear(&info);
    OK(img_get(f->s, "plain", &info, err)); /* same bytes: the same image, so it has it too */
    assert_string_equal(info.initrd, d1);
    img_info_clear(&info);
    OK(img_materialize_initrd(f->s, d1, &path, err));
    FILE *fp = fopen(path, "rb");
    char got[64] = "";
    assert_non_null(fp);
    assert_int_equal(fread(got, 1, sizeof got, fp), sizeof rd1 - 1);
    fclose(fp);
    assert_memory_equal(got, rd1, sizeof rd1 - 1);
    free(path);
    path = NULL;
    FAILS(img_materialize_initrd(f->s, nope, &path, err), IMG_E_NOT_FOUND, "not found");

    /* another initrd replaces it; the first, now no image's, is gone */
    OK(push_initrd(f, rd2, sizeof rd2 - 1, &ri, err));
    OK(push_with(f, k, sizeof k, "uk", ri.digest, &info, err));
    assert_string_equal(info.initrd, ri.digest);
    img_info_clear(&info);
    assert_int_equal(q(f, "SELECT count(*) FROM blobs WHERE role = 'initrd'"), 1);
    /* a push without one keeps it */
    OK(push_buf(f, k, sizeof k, "uk2", &info, err));
    assert_string_equal(info.initrd, ri.digest);
    img_info_clear(&info);
    img_info_clear(&ri);
    /* deleting the image (uk, plain and uk2 are one image) deletes its initrd */
    OK(img_delete(f->s, "uk", 0, err));
    assert_int_equal(q(f, "SELECT count(*) FROM blobs"), 0);
    assert_int_equal(q(f, "SELECT count(*) FROM blobs WHERE role = 'initrd'"), 0);
    OK(img_check(f->s, err));

    /* an untagged image collected by GC takes its initrd along */
    OK(push_initrd(f, rd1, sizeof rd1 - 1, NULL, err));
    OK(push_with(f, k, sizeof k, NULL, d1, NULL, err));
    img_gc_stats gs;
    OK(img_gc(f->s, &gs, err));
    assert_int_equal(gs.images_removed, 1);
    assert_int_equal(q(f, "SELECT count(*) FROM blobs"), 0); /* image and initrd */
    /* an initrd never attached stays until it is stale */
    OK(push_initrd(f, rd2, sizeof rd2 - 1, NULL, err));
    OK(img_gc(f->s, &gs, err));
    assert_int_equal(q(f, "SELECT count(*) FROM blobs WHERE role = 'initrd'"), 1);
    /* an initrd an instance holds (a run's own) outlives its image and GC */
    OK(push_initrd(f, rd1, sizeof rd1 - 1, &ri, err));
    OK(img_initrd_acquire(f->s, ri.digest, err));
    OK(push_with(f, k, sizeof k, "uk", ri.digest, NULL, err));
    char kd[IMG_DIGEST_LEN + 1];
    OK(img_resolve(f->s, "uk", kd, err));
    OK(img_delete(f->s, "uk", 0, err));
    assert_int_equal(q(f, "SELECT count(*) FROM blobs WHERE role = 'initrd'"), 2);
    FAILS(img_initrd_acquire(f->s, nope, err), IMG_E_NOT_FOUND, "not found (upload it first)");
    FAILS(img_initrd_acquire(f->s, kd, err), IMG_E_NOT_FOUND, "not found"); /* no image */
    FAILS(img_initrd_acquire(f->s, "sha256:12", err), IMG_E_INVALID, "64 lowercase hex");
    sleep(2);
    OK(img_gc(f->s, &gs, err));
    assert_int_equal(q(f, "SELECT count(*) FROM blobs WHERE role = 'initrd'"), 1);
    assert_true(gs.images_removed >= 1);
    OK(img_materialize_initrd(f->s, ri.digest, &path, err));
    free(path);
    path = NULL;
    /* released, it goes at the next GC */
    OK(img_initrd_release(f->s, ri.digest, err));
    FAILS(img_initrd_release(f->s, ri.digest, err), IMG_E_CONFLICT, "no references to release");
    OK(img_gc(f->s, &gs, err));
    assert_int_equal(q(f, "SELECT count(*) FROM blobs WHERE role = 'initrd'"), 0);
    img_info_clear(&ri);
    OK(img_check(f->s, err));
}

/* A multi-GiB sparse file over the limit is refused without being read. */
static void test_too_large_sparse(void **state)
{
    fx *f = *state;
    char *path = NULL;
    const uint64_t limit = 16 * MiB, big = UINT64_C(4) << 30;
    img_opts o = { .max_image_size = limit };
    img_store_close(f->s);
    assert_int_equal(open_store(f, &o), 0);
    assert_true(asprintf(&path, "%s/huge.elf", f->dir) > 0);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    uint8_t head[IMGT_MIN];
    imgt_head(big, head); /* a plausible ELF head, so only the size can reject it */
    assert_int_equal(pwrite(fd, head, sizeof head, 0), (ssize_t)sizeof head);
    assert_int_equal(ftruncate(fd, (off_t)big), 0);

    FAILS(img_import_file(f->s, path, "huge", NULL, NULL, 0, NULL, err), IMG_E_TOO_LARGE,
          "is 4294967296 bytes, over the limit of 16777216 bytes");
    img_upload *u = NULL;
    FAILS(img_upload_begin(f->s, big, &u, err), IMG_E_TOO_LARGE,
          "upload of 4294967296 bytes is over the limit of 16777216 bytes");

    /* streamed with no size known in advance: stops right at the limit */
    OK(img_upload_begin(f->s, 0, &u, err));
    uint8_t *buf = malloc(MiB);
    uint64_t sent = 0;
    img_err e;
    int rc = 0;
    while (sent < big) {
        ssize_t n = pread(fd, buf, MiB, (off_t)sent);
        assert_true(n > 0);
        rc = img_upload_write(u, buf, (size_t)n, &e);
        if (rc != 0)
            break;
        sent += (uint64_t)n;
    }
    assert_int_equal(rc, -1);
    assert_int_equal(e.code, IMG_E_TOO_LARGE);
    assert_string_equal(e.msg, "upload is over the limit of 16777216 bytes");
    assert_true(sent <= limit);
    img_upload_abort(u);
    free(buf);
    close(fd);
    assert_int_equal(q(f, "SELECT count(*) FROM blobs"), 0);
    assert_int_equal(q(f, "SELECT count(*) FROM chunks"), 0);
    /* loaded memory over the limit is TOO_LARGE too */
    img_store_close(f->s);
    img_opts o2 = { .max_load_size = 8192 };
    assert_int_equal(open_store(f, &o2), 0);
    FAILS(imgt_upload(f->s, 3, 65536, 65536, "big", NULL, NULL, err), IMG_E_TOO_LARGE,
          "PT_LOAD segments need more than 0x10000 bytes of memory (limit 0x2000)");
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_100mib, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_not_bootable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags_and_resolve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_and_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refs_delete_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_materialize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large_sparse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinds_stored, setup, teardown),
        cmocka_unit_test(test_profiles),
        cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v2, setup, teardown),
        cmocka_unit_test(test_templates),
        cmocka_unit_test_setup_teardown(test_profile_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initrd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_probes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v5, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
