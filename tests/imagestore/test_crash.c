/*
 * test_crash.c - crash safety across processes: a child uploading an image
 * is killed with SIGKILL (at a known point, then at random points including
 * commit). Afterwards no half image is visible, a finished image reads back
 * whole, img_gc leaves no leaked chunk, and PRAGMA integrity_check is ok.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <cmocka.h>

#include "img_testlib.h"

#define MiB (UINT64_C(1) << 20)

/* Child: upload (seed, size) as name, writing 256 KiB at a time. After
   signal_after bytes, write one byte to fd and go on slowly. Never returns. */
static void child_upload(const char *db, uint64_t seed, uint64_t size, const char *name,
                         uint64_t signal_after, int fd)
{
    img_store *s = NULL;
    img_upload *u = NULL;
    img_err e;
    img_opts o = { .chunk_size = 256 * 1024 };
    const size_t w = 256 * 1024;
    uint8_t *buf = malloc(w);
    if (img_store_open(db, &o, &s, &e) != 0 || img_upload_begin(s, 0, &u, &e) != 0)
        _exit(2);
    for (uint64_t off = 0; off < size; off += w) {
        size_t n = size - off < w ? (size_t)(size - off) : w;
        imgt_fill(seed, size, off, buf, n);
        if (img_upload_write(u, buf, n, &e) != 0)
            _exit(3);
        if (fd >= 0 && off + n >= signal_after) {
            if (write(fd, "x", 1) != 1)
                _exit(4);
            fd = -1;
        }
        if (signal_after && fd < 0)
            usleep(20000); /* slow down: the parent kills us here */
    }
    if (img_upload_commit(u, name, NULL, NULL, 0, NULL, &e) != 0)
        _exit(5);
    _exit(0);
}

static void check_store(const char *db, long long expect_images)
{
    img_store *s = NULL;
    img_err e;
    img_gc_stats gs;
    assert_int_equal(img_store_open(db, NULL, &s, &e), 0);
    assert_int_equal(img_gc(s, &gs, &e), 0);
    assert_int_equal(imgt_sql_int(db, "SELECT count(*) FROM blobs WHERE state = 0"), 0);
    assert_int_equal(imgt_sql_int(db, "SELECT count(*) FROM blobs"), expect_images);
    assert_int_equal(imgt_sql_int(db, "SELECT count(*) FROM chunks WHERE blob_id NOT IN "
                                      "(SELECT id FROM blobs)"),
                     0);
    if (img_check(s, &e) != 0)
        fail_msg("check: %s", e.msg);
    img_store_close(s);
}

static void test_kill_mid_upload(void **state)
{
    char *dir = imgt_mkdtemp(), *db = NULL;
    int p[2];
    assert_true(asprintf(&db, "%s/images.db", dir) > 0);
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        child_upload(db, 1, 32 * MiB, "victim", 8 * MiB, p[1]);
    }
    close(p[1]);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    kill(pid, SIGKILL);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    close(p[0]);

    /* the partial upload is there, invisible */
    assert_int_equal(imgt_sql_int(db, "SELECT count(*) FROM blobs WHERE state = 0"), 1);
    assert_true(imgt_sql_int(db, "SELECT count(*) FROM chunks") >= 32);
    img_store *s = NULL;
    img_err e;
    char d[IMG_DIGEST_LEN + 1];
    img_info *list;
    size_t n;
    assert_int_equal(img_store_open(db, NULL, &s, &e), 0);
    assert_int_equal(img_resolve(s, "victim", d, &e), -1);
    assert_int_equal(e.code, IMG_E_NOT_FOUND);
    img_filter all = { .include_untagged = 1 };
    assert_int_equal(img_list(s, &all, &list, &n, &e), 0);
    assert_int_equal(n, 0);
    img_list_free(list, n);
    img_gc_stats gs;
    assert_int_equal(img_gc(s, &gs, &e), 0);
    assert_int_equal(gs.uploads_removed, 1);
    assert_true(gs.bytes_removed >= 8 * MiB);
    img_store_close(s);
    check_store(db, 0);
    imgt_rmtree(dir);
    free(db);
}

static void test_kill_at_random_points(void **state)
{
    char *dir = imgt_mkdtemp(), *db = NULL;
    long long visible = 0;
    unsigned seed = (unsigned)time(NULL);
    assert_true(asprintf(&db, "%s/images.db", dir) > 0);
    print_message("random kill seed %u\n", seed);
    srand(seed);
    { /* create the database first, so children race only on uploads */
        img_store *s = NULL;
        img_err e;
        assert_int_equal(img_store_open(db, NULL, &s, &e), 0);
        img_store_close(s);
    }
    for (int i = 0; i < 8; i++) {
        char name[16];
        const uint64_t size = 6 * MiB + (uint64_t)i;
        snprintf(name, sizeof name, "r%d", i);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            child_upload(db, 100 + (uint64_t)i, size, name, 0, -1);
        usleep((useconds_t)(rand() % 120000)); /* 0..120 ms: before, during, after commit */
        kill(pid, SIGKILL);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 0));

        img_store *s = NULL;
        img_err e;
        char d[IMG_DIGEST_LEN + 1], want[IMG_DIGEST_LEN + 1], got[IMG_DIGEST_LEN + 1];
        assert_int_equal(img_store_open(db, NULL, &s, &e), 0);
        if (img_resolve(s, name, d, &e) == 0) {
            uint64_t n;
            imgt_digest(100 + (uint64_t)i, size, want);
            assert_string_equal(d, want);
            assert_int_equal(imgt_read_digest(s, name, got, &n, &e), 0);
            assert_string_equal(got, want);
            assert_int_equal(n, size);
            visible++;
        } else {
            assert_int_equal(e.code, IMG_E_NOT_FOUND);
        }
        img_store_close(s);
        check_store(db, visible);
    }
    print_message("%lld of 8 uploads finished before the kill\n", visible);
    imgt_rmtree(dir);
    free(db);
}

/* Several processes upload at once into one database, two of them the
   same bytes: every upload lands, identical content is stored once. */
static void test_processes_at_once(void **state)
{
    char *dir = imgt_mkdtemp(), *db = NULL;
    enum { N = 4 };
    static const char *names[N] = { "same:a", "other", "same:b", "third" };
    static const uint64_t seeds[N] = { 7, 8, 7, 9 };
    int go[2];
    pid_t pids[N];
    assert_true(asprintf(&db, "%s/images.db", dir) > 0);
    assert_int_equal(pipe(go), 0);
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            char c;
            img_store *s = NULL;
            img_err e;
            img_info info;
            img_opts o = { .chunk_size = 128 * 1024 };
            close(go[1]);
            if (read(go[0], &c, 1) != 1)
                _exit(2);
            if (img_store_open(db, &o, &s, &e) != 0) {
                fprintf(stderr, "child %d: open: %s\n", i, e.msg);
                _exit(3);
            }
            const char *colon = strchr(names[i], ':');
            char name[32];
            snprintf(name, sizeof name, "%.*s", colon ? (int)(colon - names[i]) : 16, names[i]);
            if (imgt_upload(s, seeds[i], 3 * MiB + 17, 100000, name, colon ? colon + 1 : NULL,
                            &info, &e) != 0) {
                fprintf(stderr, "child %d: %s\n", i, e.msg);
                _exit(4);
            }
            img_info_clear(&info);
            img_gc(s, NULL, &e); /* must not touch the others' pending uploads */
            img_store_close(s);
            _exit(0);
        }
    }
    close(go[0]);
    assert_int_equal(write(go[1], "gggg", N), N);
    close(go[1]);
    for (int i = 0; i < N; i++) {
        int st;
        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    img_store *s = NULL;
    img_err e;
    assert_int_equal(img_store_open(db, NULL, &s, &e), 0);
    for (int i = 0; i < N; i++) {
        char want[IMG_DIGEST_LEN + 1], got[IMG_DIGEST_LEN + 1];
        uint64_t n;
        imgt_digest(seeds[i], 3 * MiB + 17, want);
        assert_int_equal(imgt_read_digest(s, names[i], got, &n, &e), 0);
        assert_string_equal(got, want);
    }
    img_store_close(s);
    check_store(db, 3);
    assert_int_equal(imgt_sql_int(db, "SELECT count(*) FROM tags"), N);
    imgt_rmtree(dir);
    free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_processes_at_once),
        cmocka_unit_test(test_kill_mid_upload),
        cmocka_unit_test(test_kill_at_random_points),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
