/*
 * make_schema_v1.c - how tests/imagestore/data/schema-v1.db was made: four
 * images pushed through the schema-1 image store (commit 5793af5, before
 * image kinds), for the migration test in test_store.c. Not built by CMake;
 * to remake the file, build it against that commit's imagestore:
 *
 *   gcc -std=c11 -D_GNU_SOURCE -Iimagestore -Itests/imagestore \
 *       tests/imagestore/data/make_schema_v1.c BUILD/imagestore/libshoal_imagestore.a \
 *       BUILD/imagestore/libshoal_imgvalidate.a -lsqlite3 -lcrypto -lpthread -o mk
 *   ./mk v1.db
 *   sqlite3 v1.db "PRAGMA journal_mode=DELETE; PRAGMA page_size=1024; VACUUM;"
 *
 * (the last step only shrinks the file: 64 KiB pages -> 1 KiB pages).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "img_store.h"
#include "img_testutil.h"

static void mb1(uint8_t *p, uint32_t flags)
{
    imgt_put32(p, 0x1BADB002u);
    imgt_put32(p + 4, flags);
    imgt_put32(p + 8, (uint32_t) - (0x1BADB002u + flags));
}

static void push(img_store *s, const uint8_t *b, size_t n, const char *name, const char *tag)
{
    img_upload *u;
    img_err e;
    img_info info;
    img_label l = { "origin", "schema-v1" };
    if (img_upload_begin(s, n, &u, &e) || img_upload_write(u, b, n, &e) ||
        img_upload_commit(u, name, tag, &l, 1, &info, &e)) {
        fprintf(stderr, "%s: %s\n", name, e.msg);
        exit(1);
    }
    printf("%s:%s %s %s\n", name, tag, info.digest, img_boot_name(info.boot));
    img_info_clear(&info);
}

int main(int argc, char **argv)
{
    img_store *s;
    img_err e;
    if (img_store_open(argv[1], NULL, &s, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    static uint8_t b[0x3000];
    /* 1: ELF64 PVH (the generated test image) */
    imgt_fill(1, 4096, 0, b, 4096);
    push(s, b, 4096, "pvh", "v1");
    /* 2: ELF32 i386 Multiboot v1 (flags 0x3), PT_LOAD of the whole file */
    memset(b, 0, 0x1000);
    memcpy(b, "\177ELF", 4);
    b[4] = 1;
    b[5] = 1;
    b[6] = 1;
    imgt_put16(b + 16, 2);
    imgt_put16(b + 18, 3);
    imgt_put32(b + 20, 1);
    imgt_put32(b + 24, IMGT_BASE + 0x200);
    imgt_put32(b + 28, 52);
    imgt_put16(b + 40, 52);
    imgt_put16(b + 42, 32);
    imgt_put16(b + 44, 1);
    uint8_t *ph = b + 52;
    imgt_put32(ph, 1);
    imgt_put32(ph + 8, IMGT_BASE);
    imgt_put32(ph + 12, IMGT_BASE);
    imgt_put32(ph + 16, 0x1000);
    imgt_put32(ph + 20, 0x1000);
    mb1(b + 0x100, 0x3);
    b[0x200] = 0xf4;
    push(s, b, 0x1000, "mb32", "latest");
    /* 3: ELF64 x86_64 with a Multiboot header without address fields (v1
     * accepted it; QEMU refuses to boot it) */
    imgt_fill(3, 4096, 0, b, 4096);
    imgt_put32(b + 120, 6);
    mb1(b + 0x400, 0x3);
    push(s, b, 4096, "mb64", "noaddr");
    /* 4: raw (non-ELF) Multiboot kernel with address fields */
    memset(b, 0x90, 0x3000);
    mb1(b + 0x1000, 0x10003);
    imgt_put32(b + 0x100c, 0x101000);
    imgt_put32(b + 0x1010, 0x100000);
    imgt_put32(b + 0x1014, 0x103000);
    imgt_put32(b + 0x1018, 0x104000);
    imgt_put32(b + 0x101c, 0x101020);
    push(s, b, 0x3000, "rawmb", "latest");
    img_store_close(s);
    return 0;
}
