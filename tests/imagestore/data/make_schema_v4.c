/*
 * make_schema_v4.c - how tests/imagestore/data/schema-v4.db was made: the
 * schema-2 file (schema-v2.db) opened once by the schema-4 image store
 * (commit 7baf763, before profiles held probes), which migrated it, then
 * through that store: a Unikraft-style image pushed with an initrd, its
 * profile changed (exit debug-exit, a command-line template), and an
 * initrd no image points at. For the migration test in test_store.c. Not
 * built by CMake; to remake the file, build it against that commit's
 * imagestore:
 *
 *   cp tests/imagestore/data/schema-v2.db v4.db
 *   gcc -std=c11 -D_GNU_SOURCE -Iimagestore -Itests/imagestore \
 *       tests/imagestore/data/make_schema_v4.c BUILD/imagestore/libshoal_imagestore.a \
 *       BUILD/imagestore/libshoal_imgvalidate.a -lsqlite3 -lcrypto -lpthread -o mk
 *   ./mk v4.db
 *   sqlite3 v4.db "PRAGMA journal_mode=DELETE; PRAGMA page_size=1024; VACUUM;"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "img_store.h"
#include "img_testimg.h"
#include "img_testutil.h"

static int initrd(img_store *s, const char *text, img_info *info, img_err *e)
{
    img_upload *u = NULL;
    if (img_initrd_begin(s, strlen(text), &u, e) != 0)
        return -1;
    if (img_upload_write(u, text, strlen(text), e) != 0) {
        img_upload_abort(u);
        return -1;
    }
    return img_initrd_commit(u, info, e);
}

int main(int argc, char **argv)
{
    img_store *s = NULL;
    img_upload *u = NULL;
    img_err e;
    img_info rd, spare;
    static uint8_t b[IMGT_PVH_SIZE];
    img_label l = { "origin", "schema-v4" };
    img_profile_change ch = { .exit = "debug-exit", .cmdline = "{name} -- {args}" };
    if (argc != 2 || img_store_open(argv[1], NULL, &s, &e) != 0) {
        fprintf(stderr, "usage: mk DB (%s)\n", argc == 2 ? e.msg : "");
        return 1;
    }
    imgt_unikraft(b);
    if (initrd(s, "schema-v4 initrd\n", &rd, &e) || initrd(s, "schema-v4 spare\n", &spare, &e) ||
        img_upload_begin(s, sizeof b, &u, &e) || img_upload_initrd(u, rd.digest, &e) ||
        img_upload_write(u, b, sizeof b, &e) || img_upload_commit(u, "uk", "v4", &l, 1, NULL, &e) ||
        img_profile_set(s, "uk:v4", &ch, NULL, NULL, &e)) {
        fprintf(stderr, "uk: %s\n", e.msg);
        return 1;
    }
    printf("initrd %s\nspare %s\n", rd.digest, spare.digest);
    img_store_close(s);
    return 0;
}
