/*
 * make_schema_v2.c - how tests/imagestore/data/schema-v2.db was made: the
 * schema-1 file (schema-v1.db) opened once by the schema-2 image store
 * (commit 675a101, before profiles could be changed), which migrated it,
 * plus one Solo5-style image pushed through that store. For the migration
 * test in test_store.c. Not built by CMake; to remake the file, build it
 * against that commit's imagestore:
 *
 *   cp tests/imagestore/data/schema-v1.db v2.db
 *   gcc -std=c11 -D_GNU_SOURCE -Iimagestore -Itests/imagestore \
 *       tests/imagestore/data/make_schema_v2.c BUILD/imagestore/libshoal_imagestore.a \
 *       BUILD/imagestore/libshoal_imgvalidate.a -lsqlite3 -lcrypto -lpthread -o mk
 *   ./mk v2.db
 *   sqlite3 v2.db "PRAGMA journal_mode=DELETE; PRAGMA page_size=1024; VACUUM;"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "img_store.h"
#include "img_testimg.h"
#include "img_testutil.h"

int main(int argc, char **argv)
{
    img_store *s = NULL;
    img_upload *u = NULL;
    img_err e;
    static uint8_t b[IMGT_SOLO5_SIZE];
    img_label l = { "origin", "schema-v2" };
    if (argc != 2 || img_store_open(argv[1], NULL, &s, &e) != 0) {
        fprintf(stderr, "usage: mk DB (%s)\n", argc == 2 ? e.msg : "");
        return 1;
    }
    imgt_solo5(b);
    if (img_upload_begin(s, sizeof b, &u, &e) || img_upload_write(u, b, sizeof b, &e) ||
        img_upload_commit(u, "solo5", "v2", &l, 1, NULL, &e)) {
        fprintf(stderr, "solo5: %s\n", e.msg);
        return 1;
    }
    img_store_close(s);
    return 0;
}
