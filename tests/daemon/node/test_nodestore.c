/* test_nodestore - remote hosts' files (daemon/nodestore.h) without a
 * remote host: which URIs are remote, what cannot be delivered, a failed
 * upload leaving nothing behind, a deleted domain's files, and the GC
 * over libvirt's mock driver's storage (test:///default keeps volumes in
 * memory, and takes no upload). Uploads over a real connection:
 * e2e_daemon_remote. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/virterror.h>

#include "nodestore.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void quiet(void *user, virErrorPtr e)
{
    (void)user;
    (void)e;
}

static void test_uri_remote(void **state)
{
    (void)state;
    assert_int_equal(nstore_uri_remote("qemu+tcp://10.0.0.2/system"), 1);
    assert_int_equal(nstore_uri_remote("qemu+ssh://root@h/system"), 1);
    assert_int_equal(nstore_uri_remote("qemu+tls://h/system"), 1);
    assert_int_equal(nstore_uri_remote("qemu+libssh2://h/system"), 1);
    assert_int_equal(nstore_uri_remote("qemu://h/system"), 1); /* TLS in libvirt */
    assert_int_equal(nstore_uri_remote("qemu+ext:///system?command=x"), 1);
    assert_int_equal(nstore_uri_remote("qemu:///system"), 0);
    assert_int_equal(nstore_uri_remote("qemu:///system?socket=/tmp/s"), 0);
    assert_int_equal(nstore_uri_remote("qemu+unix:///system"), 0);
    assert_int_equal(nstore_uri_remote("qemu:///embed?root=/var/lib/shoal/libvirt"), 0);
    assert_int_equal(nstore_uri_remote("test:///default"), 0);
    assert_int_equal(nstore_uri_remote(""), 0);
    assert_int_equal(nstore_uri_remote(NULL), 0);
    assert_int_equal(nstore_uri_remote("not a uri"), 0);
}

static void test_not_deliverable(void **state)
{
    char err[512], path[NSTORE_PATH_MAX];
    struct nstore_stage st;
    struct domxml_spec s;
    int up = 7;
    virConnectPtr c = *state;

    /* A file that is not there. */
    assert_int_equal(
        nstore_image(c, "/nonexistent/" HEX_A ".elf", path, sizeof path, &up, err, sizeof err),
        NSTORE_E_IO);
    assert_int_equal(up, 0);
    assert_non_null(strstr(err, "cannot read '/nonexistent/"));
    /* A disk file of this machine without its base is refused before
     * anything is sent: only a base can be delivered. */
    memset(&s, 0, sizeof s);
    s.name = "shoal-disk";
    s.disk = "/var/lib/shoal/disks/x.qcow2";
    assert_int_equal(nstore_stage(c, &s, &st, err, sizeof err), NSTORE_E_INVAL);
    assert_non_null(strstr(err, "which a remote host cannot open"));
}

/* Volume names in pool p, sorted, joined by spaces. */
static void names(virConnectPtr c, const char *pool, char *out, size_t len)
{
    virStoragePoolPtr p = virStoragePoolLookupByName(c, pool);
    virStorageVolPtr *vols = NULL;
    char *list[16];
    int n;
    out[0] = '\0';
    assert_non_null(p);
    n = virStoragePoolListAllVolumes(p, &vols, 0);
    assert_true(n >= 0 && n <= 16);
    for (int i = 0; i < n; i++)
        list[i] = strdup(virStorageVolGetName(vols[i]));
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            if (strcmp(list[j], list[i]) < 0) {
                char *t = list[i];
                list[i] = list[j];
                list[j] = t;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? " " : "", list[i]);
        free(list[i]);
        virStorageVolFree(vols[i]);
    }
    free(vols);
    virStoragePoolFree(p);
}

static void pool_with(virConnectPtr c, const char *pool, const char *const *vols, size_t n)
{
    char xml[512];
    virStoragePoolPtr p;
    snprintf(xml, sizeof xml,
             "<pool type='dir'><name>%s</name><target><path>/nonexistent/%s</path></target>"
             "</pool>",
             pool, pool);
    p = virStoragePoolCreateXML(c, xml, 0);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) {
        virStorageVolPtr v;
        snprintf(xml, sizeof xml,
                 "<volume><name>%s</name><capacity unit='bytes'>4096</capacity></volume>", vols[i]);
        v = virStorageVolCreateXML(p, xml, 0);
        assert_non_null(v);
        virStorageVolFree(v);
    }
    virStoragePoolFree(p);
}

static void test_gc(void **state)
{
    virConnectPtr c = *state;
    char err[512], got[2048];
    unsigned removed = 99;
    static const char *const imgs[] = { HEX_A ".img", HEX_A ".ok", HEX_B ".img", HEX_B ".ok",
                                        "notes.txt" };
    static const char *const run[] = { "shoal-keep.console", "shoal-keep.status",
                                       "shoal-gone.console", "shoal-gone.status" };
    const char *keep[] = { HEX_A };
    const char *keep_dom[] = { "shoal-keep" };

    /* No pools yet: nothing to collect, no error. */
    assert_int_equal(nstore_gc(c, keep, 1, keep_dom, 1, &removed, err, sizeof err), NSTORE_OK);
    assert_int_equal(removed, 0);

    pool_with(c, NSTORE_POOL, imgs, 5);
    pool_with(c, NSTORE_RUN_POOL, run, 4);
    assert_int_equal(nstore_gc(c, keep, 1, keep_dom, 1, &removed, err, sizeof err), NSTORE_OK);
    assert_int_equal(removed, 1); /* HEX_B.img (its marker is not counted) */
    names(c, NSTORE_POOL, got, sizeof got);
    /* A name that is not a digest's is not shoal's to remove. */
    assert_string_equal(got, HEX_A ".img " HEX_A ".ok notes.txt");
    names(c, NSTORE_RUN_POOL, got, sizeof got);
    assert_string_equal(got, "shoal-keep.console shoal-keep.status");

    /* Keeping nothing empties both of shoal's volumes. */
    assert_int_equal(nstore_gc(c, NULL, 0, NULL, 0, &removed, err, sizeof err), NSTORE_OK);
    assert_int_equal(removed, 1);
    names(c, NSTORE_POOL, got, sizeof got);
    assert_string_equal(got, "notes.txt");
    names(c, NSTORE_RUN_POOL, got, sizeof got);
    assert_string_equal(got, "");

    struct nstore_stats st;
    nstore_stats_get(&st);
    assert_int_equal(st.removed, 2);
    assert_int_equal(st.uploads, 0);
}

/* A deleted instance's files go: all of its domain's run volumes (its
 * overlay too), no other domain's. */
static void test_forget(void **state)
{
    virConnectPtr c = *state;
    char err[512], got[2048];
    static const char *const run[] = { "shoal-keep.console", "shoal-keep.qcow2",
                                       "shoal-gone.console", "shoal-gone.status",
                                       "shoal-gone.qcow2" };

    /* No pool yet: nothing there, no error. */
    assert_int_equal(nstore_forget(c, "shoal-gone", err, sizeof err), NSTORE_OK);
    pool_with(c, NSTORE_RUN_POOL, run, 5);
    assert_int_equal(nstore_forget(c, "shoal-gone", err, sizeof err), NSTORE_OK);
    names(c, NSTORE_RUN_POOL, got, sizeof got);
    assert_string_equal(got, "shoal-keep.console shoal-keep.qcow2");
    assert_int_equal(nstore_forget(c, "shoal-gone", err, sizeof err), NSTORE_OK);
}

/* The mock driver cannot take an upload: whatever was created for it is
 * gone again (an upload that fails leaves no volume, and no marker). A
 * file not named by a digest (the canary) is hashed first. */
static void test_upload_fails_clean(void **state)
{
    virConnectPtr c = *state;
    char err[512], path[NSTORE_PATH_MAX], got[2048], file[] = "/tmp/test-nodestore-XXXXXX";
    int up = 7, fd = mkstemp(file);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, "abc", 3), 3);
    close(fd);
    assert_int_not_equal(nstore_image(c, file, path, sizeof path, &up, err, sizeof err), NSTORE_OK);
    unlink(file);
    assert_int_equal(up, 0);
    names(c, NSTORE_POOL, got, sizeof got);
    assert_string_equal(got, "");
}

static int setup(void **state)
{
    virSetErrorFunc(NULL, quiet);
    *state = virConnectOpen("test:///default");
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    virConnectClose(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_remote),
        cmocka_unit_test_setup_teardown(test_not_deliverable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_fails_clean, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
