/*
 * make_schema_v5.c - how tests/imagestore/data/schema-v5.db was made: the
 * schema-4 file (schema-v4.db) opened once by the schema-5 image store
 * (commit bd96d49, before profiles held a warm pool size), which migrated
 * it, then through that store: probes set on the image uk:v4 (ready
 * status, a tcp health probe with its numbers). For the migration test in
 * test_store.c. Not built by CMake; to remake the file, build it against
 * that commit's imagestore:
 *
 *   cp tests/imagestore/data/schema-v4.db v5.db
 *   gcc -std=c11 -D_GNU_SOURCE -Iimagestore -Itests/imagestore \
 *       tests/imagestore/data/make_schema_v5.c imagestore/*.c \
 *       -lsqlite3 -lcrypto -lpthread -o mk
 *   ./mk v5.db
 *   sqlite3 v5.db "PRAGMA journal_mode=DELETE; PRAGMA page_size=1024; VACUUM;"
 */
#include <stdio.h>
#include "img_store.h"

/* The store checks probes through the daemon's parser; any text passes
 * here (the file only needs stored probes). */
static int pass(void *ctx, img_profile *p, img_kind kind, const char **field, char *msg,
                size_t msglen)
{
    (void)ctx, (void)p, (void)kind, (void)field, (void)msg, (void)msglen;
    return 0;
}

int main(int argc, char **argv)
{
    img_store *s = NULL;
    img_err e;
    img_profile_change ch = {
        .ready = "tcp:8080", .health = "tcp:8080", .health_interval_s = 7, .check = pass
    };
    if (argc != 2 || img_store_open(argv[1], NULL, &s, &e) != 0) {
        fprintf(stderr, "usage: mk DB (%s)\n", argc == 2 ? e.msg : "");
        return 1;
    }
    if (img_profile_set(s, "uk:v4", &ch, NULL, NULL, &e) != 0) {
        fprintf(stderr, "uk: %s\n", e.msg);
        return 1;
    }
    img_store_close(s);
    return 0;
}
