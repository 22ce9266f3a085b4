/*
 * test_validate.c - the boot image validator on good and hostile files.
 * Every rejection is checked for the exact reason, not just "rejected".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "img_testutil.h"
#include "img_validate.h"

#define SZ 0x1000u

typedef struct vout {
    img_vstatus st;
    img_vresult r;
    char msg[IMG_VALIDATE_MSG_MAX];
} vout;

static vout run(const uint8_t *buf, size_t len)
{
    vout o;
    o.st = img_validate_buffer(buf, len, NULL, &o.r, o.msg, sizeof o.msg);
    return o;
}

static void expect_invalid(const uint8_t *buf, size_t len, const char *msg)
{
    vout o = run(buf, len);
    if (o.st != IMG_VINVALID || strstr(o.msg, msg) == NULL)
        fail_msg("expected INVALID with '%s', got status %d '%s'", msg, o.st, o.msg);
}

static uint8_t *elf(size_t size)
{
    uint8_t *b = malloc(size);
    assert_non_null(b);
    imgt_fill(1, size, 0, b, size);
    return b;
}

static void test_valid_elf64_pvh(void **state)
{
    uint8_t *b = elf(SZ);
    vout o = run(b, SZ);
    assert_int_equal(o.st, IMG_VALID);
    assert_string_equal(o.msg, "");
    assert_int_equal(o.r.boot, IMG_BOOT_PVH);
    assert_int_equal(o.r.elf_class, 64);
    assert_int_equal(o.r.entry, IMGT_BASE + 0x200);
    assert_int_equal(o.r.load_size, SZ);
    assert_int_equal(o.r.nload, 1);
    assert_string_equal(img_boot_name(o.r.boot), "pvh");
    assert_int_equal(img_boot_parse("pvh"), IMG_BOOT_PVH);
    free(b);
}

/* ELF32 with the note found through an SHT_NOTE section only. */
static void test_valid_elf32_section_note(void **state)
{
    uint8_t b[0x400];
    memset(b, 0, sizeof b);
    memcpy(b, "\177ELF", 4);
    b[4] = 1;
    b[5] = 1;
    b[6] = 1;
    imgt_put16(b + 16, 2);
    imgt_put16(b + 18, 3);
    imgt_put32(b + 20, 1);
    imgt_put32(b + 24, IMGT_BASE + 0x200);
    imgt_put32(b + 28, 52);    /* phoff */
    imgt_put32(b + 32, 0x300); /* shoff */
    imgt_put16(b + 40, 52);
    imgt_put16(b + 42, 32);
    imgt_put16(b + 44, 1);
    imgt_put16(b + 46, 40);
    imgt_put16(b + 48, 2);
    uint8_t *ph = b + 52; /* PT_LOAD of the whole file */
    imgt_put32(ph, 1);
    imgt_put32(ph + 4, 0);
    imgt_put32(ph + 8, IMGT_BASE);
    imgt_put32(ph + 12, IMGT_BASE);
    imgt_put32(ph + 16, sizeof b);
    imgt_put32(ph + 20, sizeof b);
    uint8_t *n = b + 0x100; /* the note */
    imgt_put32(n, 4);
    imgt_put32(n + 4, 4);
    imgt_put32(n + 8, 18);
    memcpy(n + 12, "Xen", 4);
    imgt_put32(n + 16, IMGT_BASE + 0x200);
    uint8_t *sh = b + 0x300 + 40; /* section 1: SHT_NOTE */
    imgt_put32(sh + 4, 7);
    imgt_put32(sh + 16, 0x100);
    imgt_put32(sh + 20, 20);
    imgt_put32(sh + 32, 4);
    vout o = run(b, sizeof b);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.boot, IMG_BOOT_PVH);
    assert_int_equal(o.r.elf_class, 32);

    /* the same note section pointing past the end */
    imgt_put32(sh + 16, 0x3f0);
    expect_invalid(b, sizeof b,
                   "section 1: note section offset 0x3f0 + size 0x14 is past end of file "
                   "(0x400 bytes)");
}

static void put_mb1(uint8_t *p, uint32_t flags)
{
    imgt_put32(p, 0x1BADB002u);
    imgt_put32(p + 4, flags);
    imgt_put32(p + 8, (uint32_t) - (0x1BADB002u + flags));
}

static void test_multiboot(void **state)
{
    uint8_t b[0x3000];
    memset(b, 0x90, sizeof b);
    put_mb1(b + 0x1000, 0x10003); /* raw file: needs the address fields (bit 16) */
    vout o = run(b, sizeof b);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.boot, IMG_BOOT_MULTIBOOT);
    assert_int_equal(o.r.elf_class, 0);

    put_mb1(b + 0x1000, 0x3);
    expect_invalid(b, sizeof b, "has no address fields (flags bit 16)");

    imgt_put32(b + 0x1008, 0x1234); /* bad checksum */
    expect_invalid(b, sizeof b, "Multiboot header at 0x1000 has a bad checksum (0x00001234)");

    memset(b, 0x90, sizeof b); /* beyond 8 KiB: not found */
    put_mb1(b + 0x2004, 0x10003);
    expect_invalid(b, sizeof b, "no Multiboot header in the first 32 KiB");

    memset(b, 0x90, sizeof b); /* misaligned: not found */
    put_mb1(b + 0x102, 0x10003);
    expect_invalid(b, sizeof b, "not an ELF file");

    /* Multiboot2 at 0x2008 (8-aligned, inside 32 KiB) */
    memset(b, 0, sizeof b);
    uint32_t len = 24;
    imgt_put32(b + 0x2008, 0xE85250D6u);
    imgt_put32(b + 0x200c, 0);
    imgt_put32(b + 0x2010, len);
    imgt_put32(b + 0x2014, (uint32_t) - (0xE85250D6u + len));
    o = run(b, sizeof b);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.boot, IMG_BOOT_MULTIBOOT2);
    imgt_put32(b + 0x2010, 0xffff0);
    imgt_put32(b + 0x2014, (uint32_t) - (0xE85250D6u + 0xffff0u));
    expect_invalid(b, sizeof b, "header length 0xffff0 is out of bounds");

    /* ELF without PVH note but with a Multiboot header is a multiboot ELF */
    uint8_t *e = elf(SZ);
    imgt_put32(e + 120, 6); /* PT_NOTE -> PT_PHDR: note not seen */
    expect_invalid(e, SZ, "ELF file has no PVH entry note");
    put_mb1(e + 0x400, 0x3);
    o = run(e, SZ);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.boot, IMG_BOOT_MULTIBOOT);
    assert_int_equal(o.r.elf_class, 64);
    free(e);
}

static void test_small_and_magic(void **state)
{
    uint8_t b[64] = { 0 };
    vout o = run(b, 0);
    assert_int_equal(o.st, IMG_VINVALID);
    assert_string_equal(o.msg, "file is empty");
    b[0] = 0x7f;
    expect_invalid(b, 1, "not an ELF file (no 7f 45 4c 46 magic)");
    memcpy(b, "\177ELF", 4);
    expect_invalid(b, 10, "file is 10 bytes, too short for an ELF identification");
    b[4] = 2;
    b[5] = 1;
    b[6] = 1;
    expect_invalid(b, 40, "file is 40 bytes, too short for an ELF64 header (64 bytes)");
    b[4] = 3;
    expect_invalid(b, 64, "EI_CLASS 3 is neither ELFCLASS32 (1) nor ELFCLASS64 (2)");
    b[4] = 2;
    b[5] = 2;
    expect_invalid(b, 64, "EI_DATA 2 is not little-endian (1)");
    memcpy(b, "MZ\x90\x00", 4);
    expect_invalid(b, 64, "not an ELF file");
}

static void test_header_fields(void **state)
{
    uint8_t *b = elf(SZ);
    imgt_put16(b + 16, 3);
    expect_invalid(b, SZ, "e_type 3 is not ET_EXEC (2)");
    imgt_put16(b + 16, 2);
    imgt_put16(b + 18, 40);
    expect_invalid(b, SZ, "e_machine 40 is not x86 (3) or x86_64 (62)");
    imgt_put16(b + 18, 62);
    imgt_put16(b + 56, 0);
    expect_invalid(b, SZ, "no program headers (e_phnum is 0)");
    imgt_put16(b + 56, 65535);
    expect_invalid(b, SZ, "e_phnum 65535 is over the limit of 256 program headers");
    imgt_put16(b + 56, 200);
    expect_invalid(b, SZ,
                   "program header table at offset 0x40 + 0x2bc0 bytes is past end of file "
                   "(0x1000 bytes)");
    imgt_put16(b + 56, 2);
    imgt_put16(b + 54, 32);
    expect_invalid(b, SZ, "e_phentsize 32 is not 56");
    imgt_put16(b + 54, 56);
    imgt_put64(b + 32, UINT64_MAX - 8); /* e_phoff that would wrap */
    expect_invalid(b, SZ, "program header table at offset 0xfffffffffffffff7");
    free(b);
}

static void test_segments(void **state)
{
    uint8_t *b = elf(SZ);
    uint8_t *ph0 = b + 64, *ph1 = b + 120;
    /* offset + size past the end */
    imgt_put64(ph0 + 8, 0x900);
    imgt_put64(ph0 + 32, 0x800);
    expect_invalid(b, SZ,
                   "program header 0: segment offset 0x900 + size 0x800 is past end of file "
                   "(0x1000 bytes)");
    imgt_put64(ph0 + 8, UINT64_MAX);
    imgt_put64(ph0 + 32, 2);
    expect_invalid(b, SZ, "program header 0: segment offset 0xffffffffffffffff + size 0x2");
    free(b);

    /* two PT_LOADs overlapping in the file, then in memory */
    b = elf(SZ);
    ph0 = b + 64;
    ph1 = b + 120;
    imgt_put64(ph0 + 32, 0x800);
    imgt_put64(ph0 + 40, 0x800);
    imgt_put32(ph1, 1); /* second PT_LOAD */
    imgt_put64(ph1 + 8, 0x700);
    imgt_put64(ph1 + 24, 0x200000);
    imgt_put64(ph1 + 32, 0x200);
    imgt_put64(ph1 + 40, 0x200);
    expect_invalid(b, SZ,
                   "program headers 0 and 1: PT_LOAD segments overlap in the file "
                   "(0x0-0x800 and 0x700-0x900)");
    imgt_put64(ph1 + 8, 0x800);
    imgt_put64(ph1 + 24, IMGT_BASE + 0x7ff);
    expect_invalid(b, SZ, "program headers 0 and 1: PT_LOAD segments overlap in memory");
    imgt_put64(ph1 + 24, IMGT_BASE + 0x800);
    /* note is gone (ph1 became PT_LOAD): no PVH, no multiboot */
    expect_invalid(b, SZ, "ELF file has no PVH entry note");
    imgt_put64(ph1 + 40, 0x100); /* filesz > memsz */
    expect_invalid(b, SZ, "program header 1: p_filesz 0x200 is larger than p_memsz 0x100");
    imgt_put64(ph1 + 40, UINT64_MAX);
    expect_invalid(b, SZ, "program header 1: memory range");
    imgt_put32(ph1, 3);
    expect_invalid(b, SZ, "program header 1: PT_INTERP");
    free(b);

    /* loaded memory over the limit */
    b = elf(SZ);
    imgt_put64(b + 64 + 40, UINT64_C(1) << 40);
    vout o = run(b, SZ);
    assert_int_equal(o.st, IMG_VTOO_LARGE);
    assert_non_null(strstr(o.msg, "PT_LOAD segments need more than"));
    /* entry outside the file part of the PT_LOAD */
    imgt_put64(b + 64 + 40, SZ);
    imgt_put32(b + 0xb0 + 16, IMGT_BASE + SZ + 4);
    expect_invalid(b, SZ, "PVH entry 0x101004 is not inside the file part of any PT_LOAD");
    free(b);
}

static void test_notes(void **state)
{
    uint8_t *b = elf(SZ);
    uint8_t *n = b + 0xb0;
    imgt_put32(n, 0xffffffffu);
    expect_invalid(b, SZ,
                   "program header 1: note 0: name size 0xffffffff runs past the end of the "
                   "notes (0x8 bytes left)");
    imgt_put32(n, 4);
    imgt_put32(n + 4, 0x7fffffff);
    expect_invalid(b, SZ, "program header 1: note 0: descriptor size 0x7fffffff runs past");
    imgt_put32(n + 4, 2);
    imgt_put64(b + 120 + 32, 20);
    expect_invalid(b, SZ, "note 0: Xen PHYS32_ENTRY descriptor is 2 bytes, expected 4 or 8");
    imgt_put32(n + 4, 4);
    /* note segment past the end of the file */
    imgt_put64(b + 120 + 8, SZ - 8);
    expect_invalid(b, SZ, "program header 1: segment offset 0xff8 + size 0x14 is past end");
    free(b);

    /* many tiny notes: capped */
    size_t big = 0x20000;
    b = elf(big);
    imgt_put64(b + 120 + 8, 0x1000);
    imgt_put64(b + 120 + 32, 0x10000);
    memset(b + 0x1000, 0, 0x10000); /* 12-byte empty notes */
    expect_invalid(b, big, "program header 1: more than 4096 notes");
    free(b);
}

/* The reader path: a failing callback is an I/O error, not a verdict. */
static int failing_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    int *calls = ctx;
    return ++*calls > 1 ? -1 : (memset(buf, 0, len), 0);
}

static int buf_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    const uint8_t *b = ctx;
    memcpy(buf, b + off, len);
    return 0;
}

static void test_reader(void **state)
{
    uint8_t *b = elf(SZ);
    char msg[IMG_VALIDATE_MSG_MAX];
    img_vresult r;
    assert_int_equal(img_validate_reader(buf_read, b, SZ, NULL, &r, msg, sizeof msg), IMG_VALID);
    int calls = 0;
    img_vstatus st = img_validate_reader(failing_read, &calls, SZ * 64, NULL, &r, msg, sizeof msg);
    /* zeroed bytes are "not ELF"; the Multiboot scan's read (call 2) fails */
    assert_int_equal(st, IMG_VIO);
    assert_string_equal(msg, "read error at offset 0x0");
    /* size over the limit: rejected without reading anything */
    img_limits lim = { 1024, 0 };
    calls = 100;
    st = img_validate_reader(failing_read, &calls, UINT64_C(5) << 30, &lim, &r, msg, sizeof msg);
    assert_int_equal(st, IMG_VTOO_LARGE);
    assert_string_equal(msg, "file is 5368709120 bytes, over the limit of 1024 bytes");
    free(b);
}

static void test_head(void **state)
{
    uint8_t b[40000];
    char msg[IMG_VALIDATE_MSG_MAX];
    memset(b, 0, sizeof b);
    assert_int_equal(img_validate_head(b, sizeof b, msg, sizeof msg), IMG_VINVALID);
    imgt_fill(1, sizeof b, 0, b, sizeof b);
    assert_int_equal(img_validate_head(b, sizeof b, msg, sizeof msg), IMG_VALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_elf64_pvh),
        cmocka_unit_test(test_valid_elf32_section_note),
        cmocka_unit_test(test_multiboot),
        cmocka_unit_test(test_small_and_magic),
        cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_segments),
        cmocka_unit_test(test_notes),
        cmocka_unit_test(test_reader),
        cmocka_unit_test(test_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
