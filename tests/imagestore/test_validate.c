/*
 * test_validate.c - the boot image validator on good and hostile files.
 * Every rejection is checked for the exact reason, not just "rejected";
 * every accepted shape for its boot protocol, format, kind and evidence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "img_testimg.h"
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

/* Raw Multiboot kernel of 0x3000 bytes: header at 0x1000, loaded whole at
 * 0x100000, bss to 0x104000, entry 0x101020. */
static void raw_mb(uint8_t *b)
{
    memset(b, 0x90, 0x3000);
    put_mb1(b + 0x1000, 0x10003);
    imgt_put32(b + 0x100c, 0x101000); /* header_addr */
    imgt_put32(b + 0x1010, 0x100000); /* load_addr */
    imgt_put32(b + 0x1014, 0x103000); /* load_end_addr */
    imgt_put32(b + 0x1018, 0x104000); /* bss_end_addr */
    imgt_put32(b + 0x101c, 0x101020); /* entry_addr */
}

/* evidence, exactly, in order */
static void expect_evidence(const vout *o, const char *const *want, size_t n)
{
    if (o->r.nevidence != n)
        fail_msg("expected %zu evidence strings, got %u (first '%s')", n, o->r.nevidence,
                 o->r.nevidence ? o->r.evidence[0] : "");
    for (size_t i = 0; i < n; i++)
        assert_string_equal(o->r.evidence[i], want[i]);
}
#define EVIDENCE(o, ...)                                                                           \
    do {                                                                                           \
        const char *const want_[] = { __VA_ARGS__ };                                               \
        expect_evidence(&(o), want_, sizeof want_ / sizeof want_[0]);                              \
    } while (0)

static void test_multiboot(void **state)
{
    uint8_t b[0x3000];
    raw_mb(b); /* raw file: needs the address fields (bit 16) */
    vout o = run(b, sizeof b);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.boot, IMG_BOOT_MULTIBOOT);
    assert_int_equal(o.r.format, IMG_FORMAT_BIN);
    assert_int_equal(o.r.kind, IMG_KIND_MULTIBOOT);
    assert_int_equal(o.r.elf_class, 0);
    assert_int_equal(o.r.entry, 0x101020);
    assert_int_equal(o.r.load_size, 0x4000);
    EVIDENCE(o, "multiboot header with load addresses");

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

    /* An x86_64 ELF without PVH note, with a Multiboot header without load
       addresses: QEMU refuses it, so does the validator. */
    uint8_t *e = elf(SZ);
    imgt_put32(e + 120, 6); /* PT_NOTE -> PT_PHDR: note not seen */
    expect_invalid(e, SZ, "ELF file has no PVH entry note");
    put_mb1(e + 0x400, 0x3);
    expect_invalid(e, SZ,
                   "Multiboot header at 0x400 has no address fields (flags bit 16): QEMU boots "
                   "an x86_64 ELF through Multiboot only with them");
    /* the same with the PVH note back: QEMU would still take the header */
    imgt_put32(e + 120, 4);
    expect_invalid(e, SZ, "Multiboot header at 0x400 has no address fields");
    free(e);

    /* an i386 ELF32 with such a header boots by its program headers */
    uint8_t e32[0x1000];
    memset(e32, 0, sizeof e32);
    memcpy(e32, "\177ELF", 4);
    e32[4] = 1;
    e32[5] = 1;
    e32[6] = 1;
    imgt_put16(e32 + 16, 2);
    imgt_put16(e32 + 18, 3);
    imgt_put32(e32 + 20, 1);
    imgt_put32(e32 + 24, IMGT_BASE + 0x200);
    imgt_put32(e32 + 28, 52);
    imgt_put16(e32 + 40, 52);
    imgt_put16(e32 + 42, 32);
    imgt_put16(e32 + 44, 1);
    imgt_put32(e32 + 52, 1); /* PT_LOAD of the whole file */
    imgt_put32(e32 + 60, IMGT_BASE);
    imgt_put32(e32 + 64, IMGT_BASE);
    imgt_put32(e32 + 68, sizeof e32);
    imgt_put32(e32 + 72, sizeof e32);
    put_mb1(e32 + 0x100, 0x3);
    o = run(e32, sizeof e32);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.boot, IMG_BOOT_MULTIBOOT);
    assert_int_equal(o.r.format, IMG_FORMAT_ELF);
    assert_int_equal(o.r.kind, IMG_KIND_MULTIBOOT);
    assert_int_equal(o.r.elf_class, 32);
    assert_int_equal(o.r.entry, IMGT_BASE + 0x200);
    EVIDENCE(o, "multiboot header");
}

/* Raw Multiboot kernels: each address field checked, named when wrong. */
static void test_multiboot_addresses(void **state)
{
    uint8_t b[0x3000];
    raw_mb(b);
    imgt_put32(b + 0x1010, 0x102000);
    expect_invalid(b, sizeof b,
                   "Multiboot header at 0x1000: load_addr 0x102000 is above header_addr 0x101000");
    imgt_put32(b + 0x1010, 0xf0000);
    expect_invalid(b, sizeof b,
                   "Multiboot header at 0x1000: header_addr 0x101000 is 0x11000 bytes past "
                   "load_addr 0xf0000, but the header is only 0x1000 bytes into the file");
    raw_mb(b);
    imgt_put32(b + 0x1014, 0xff000);
    expect_invalid(b, sizeof b,
                   "Multiboot header at 0x1000: load_end_addr 0xff000 is below load_addr 0x100000");
    imgt_put32(b + 0x1014, 0x104000);
    expect_invalid(b, sizeof b,
                   "Multiboot header at 0x1000: load_end_addr 0x104000: 0x4000 bytes from file "
                   "offset 0x0 run past the end of the file (0x3000 bytes)");
    imgt_put32(b + 0x1014, 0x100000);
    expect_invalid(b, sizeof b,
                   "Multiboot header at 0x1000: header_addr 0x101000 is outside the loaded part "
                   "0x100000-0x100000");
    imgt_put32(b + 0x1014, 0); /* 0: load to the end of the file */
    vout o = run(b, sizeof b);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.load_size, 0x4000);
    imgt_put32(b + 0x1018, 0x102000);
    expect_invalid(b, sizeof b,
                   "Multiboot header at 0x1000: bss_end_addr 0x102000 is below the end of the "
                   "loaded part (0x103000)");
    imgt_put32(b + 0x1018, 0); /* 0: no bss */
    o = run(b, sizeof b);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.load_size, 0x3000);
    imgt_put32(b + 0x1018, 0x50000000);
    o = run(b, sizeof b);
    assert_int_equal(o.st, IMG_VTOO_LARGE);
    assert_string_equal(o.msg, "Multiboot header at 0x1000: load_addr..bss_end_addr needs "
                               "0x4ff00000 bytes of memory (limit 0x40000000)");
    raw_mb(b);
    imgt_put32(b + 0x101c, 0x103000);
    expect_invalid(b, sizeof b,
                   "Multiboot header at 0x1000: entry_addr 0x103000 is outside the loaded part "
                   "0x100000-0x103000");
    imgt_put32(b + 0x101c, 0xfffff);
    expect_invalid(b, sizeof b, "entry_addr 0xfffff is outside the loaded part");
    /* load to the end of the file, beyond 4 GiB */
    raw_mb(b);
    imgt_put32(b + 0x100c, 0xfffff000);
    imgt_put32(b + 0x1010, 0xfffff000);
    imgt_put32(b + 0x1014, 0);
    expect_invalid(b, sizeof b,
                   "Multiboot header at 0x1000: load_end_addr 0 (load to the end of the file): "
                   "0x2000 bytes at load_addr 0xfffff000 do not fit below 4 GiB");
    /* the header's address fields cut off by the end of the file */
    raw_mb(b);
    expect_invalid(b, 0x1010, "Multiboot header at 0x1000 is cut off by the end of the file");
    /* the first header with a good checksum is the one judged (as in QEMU) */
    raw_mb(b);
    put_mb1(b + 0x800, 0x3);
    expect_invalid(b, sizeof b,
                   "Multiboot header at 0x800 has no address fields (flags bit 16) and the file "
                   "is not ELF");
}

/* ELF64 the way Solo5 builds 'virtio' unikernels. */
static void test_solo5(void **state)
{
    uint8_t b[IMGT_SOLO5_SIZE];
    imgt_solo5(b);
    vout o = run(b, sizeof b);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.boot, IMG_BOOT_MULTIBOOT);
    assert_int_equal(o.r.format, IMG_FORMAT_ELF);
    assert_int_equal(o.r.kind, IMG_KIND_SOLO5);
    assert_int_equal(o.r.elf_class, 64);
    assert_int_equal(o.r.entry, 0x100020);
    assert_int_equal(o.r.load_size, 0x3000);
    EVIDENCE(o, "note solo5.abi", "note solo5.manifest", "interp /nonexistent/solo5/",
             "multiboot header with load addresses");

    /* the header's address must be where the program headers load it */
    uint8_t *mb = b + IMGT_SOLO5_MB;
    imgt_put32(mb + 12, 0x100010);
    imgt_put32(mb + 16, 0x100010);
    expect_invalid(b, sizeof b,
                   "Multiboot header at 0x1000: header_addr 0x100010 does not match program "
                   "header 1, which loads the header at 0x100000");
    /* every PT_LOAD's file bytes inside load_addr..load_end_addr */
    imgt_solo5(b);
    imgt_put32(mb + 20, 0x101080);
    expect_invalid(b, sizeof b,
                   "program header 2: file bytes for 0x101000-0x101100 are outside what the "
                   "Multiboot header loads (load_addr..load_end_addr 0x100000-0x101080)");
    /* ... at the file offset the header's addresses imply */
    imgt_solo5(b);
    imgt_put64(b + IMGT_SOLO5_PH + 112 + 8, 0x2010);
    imgt_put64(b + IMGT_SOLO5_PH + 112 + 32, 0xf0);
    expect_invalid(b, sizeof b,
                   "program header 2: segment at 0x101000 comes from file offset 0x2010, but the "
                   "Multiboot load addresses read it from 0x2000");
    /* a header outside every PT_LOAD */
    imgt_solo5(b);
    imgt_put64(b + IMGT_SOLO5_PH + 56 + 8, 0x1100);
    imgt_put64(b + IMGT_SOLO5_PH + 56 + 32, 0xf00);
    expect_invalid(b, sizeof b,
                   "Multiboot header at 0x1000: the header is not inside the file part of any "
                   "PT_LOAD segment");
    /* Solo5 targets other than virtio do not boot under QEMU */
    imgt_solo5(b);
    imgt_put32(b + IMGT_SOLO5_ABI + 20, 1);
    expect_invalid(b, sizeof b,
                   "program header 3: note 0: a Solo5 'hvt' unikernel does not boot under QEMU; "
                   "build it for the 'virtio' target");
    imgt_put32(b + IMGT_SOLO5_ABI + 20, 6);
    expect_invalid(b, sizeof b, "a Solo5 'xen' unikernel does not boot under QEMU");
    imgt_put32(b + IMGT_SOLO5_ABI + 20, 99); /* unknown: judged by the rest */
    assert_int_equal(run(b, sizeof b).r.kind, IMG_KIND_SOLO5);
    /* the interpreter alone says Solo5 */
    imgt_solo5(b);
    imgt_put32(b + IMGT_SOLO5_PH + 168, 6); /* PT_NOTE -> PT_PHDR */
    o = run(b, sizeof b);
    assert_int_equal(o.r.kind, IMG_KIND_SOLO5);
    EVIDENCE(o, "interp /nonexistent/solo5/", "multiboot header with load addresses");
    /* another interpreter: a generic Multiboot kernel that names one */
    memcpy(b + IMGT_SOLO5_INTERP, "/lib/ld-musl.so.1\0\0", 20);
    o = run(b, sizeof b);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.kind, IMG_KIND_MULTIBOOT);
    EVIDENCE(o, "multiboot header with load addresses", "PT_INTERP (not used to boot)");
    /* and without the Multiboot header: a dynamically linked program */
    memset(b + IMGT_SOLO5_MB, 0, 12);
    expect_invalid(b, sizeof b,
                   "program header 0: PT_INTERP '/lib/ld-musl.so.1': a dynamically linked "
                   "program, not a kernel (no PVH note, no Multiboot header)");
    imgt_solo5(b);
    memset(b + IMGT_SOLO5_MB, 0, 12);
    expect_invalid(b, sizeof b, "program header 0: PT_INTERP '/nonexistent/solo5/': a dynamically");

    /* a PVH note as well: QEMU takes the Multiboot header first */
    imgt_solo5(b);
    uint8_t *n = b + IMGT_SOLO5_ABI + 64;
    imgt_put32(n, 4);
    imgt_put32(n + 4, 4);
    imgt_put32(n + 8, 18);
    memcpy(n + 12, "Xen", 4);
    imgt_put32(n + 16, 0x100020);
    imgt_put64(b + IMGT_SOLO5_PH + 168 + 32, 64 + 20);
    o = run(b, sizeof b);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.boot, IMG_BOOT_MULTIBOOT);
    assert_int_equal(o.r.entry, 0x100020);
    EVIDENCE(o, "note solo5.abi", "note solo5.manifest", "interp /nonexistent/solo5/",
             "multiboot header with load addresses", "note Xen.PHYS32_ENTRY (pvh)");
}

/* A PVH kernel with a PT_INTERP (program headers moved to 0x400). */
static void test_pvh_interp(void **state)
{
    uint8_t *b = elf(SZ);
    memcpy(b + 0x400, b + 64, 2 * 56);
    imgt_ph64(b + 0x400 + 112, 3, 0x500, IMGT_BASE + 0x500, 28, 28, 1);
    memcpy(b + 0x500, "/lib64/ld-linux-x86-64.so.2", 28);
    imgt_put64(b + 32, 0x400);
    imgt_put16(b + 56, 3);
    vout o = run(b, SZ);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.boot, IMG_BOOT_PVH);
    assert_int_equal(o.r.kind, IMG_KIND_PVH);
    EVIDENCE(o, "note Xen.PHYS32_ENTRY (pvh)", "PT_INTERP (not used to boot)");
    /* without the note: a Linux program; control bytes are not quoted raw */
    imgt_put32(b + 0x400 + 56, 6);
    b[0x505] = '\n';
    expect_invalid(b, SZ,
                   "program header 2: PT_INTERP '/lib6?/ld-linux-x86-64.so.2': a dynamically "
                   "linked program, not a kernel (no PVH note, no Multiboot header)");
    free(b);
}

static void test_kinds(void **state)
{
    uint8_t b[IMGT_PVH_SIZE];
    imgt_fill(1, sizeof b, 0, b, sizeof b);
    vout o = run(b, sizeof b);
    assert_int_equal(o.r.kind, IMG_KIND_PVH);
    assert_int_equal(o.r.format, IMG_FORMAT_ELF);
    EVIDENCE(o, "note Xen.PHYS32_ENTRY (pvh)");

    imgt_shoal(b);
    o = run(b, sizeof b);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.kind, IMG_KIND_SHOAL);
    EVIDENCE(o, "note shoal.guest", "note Xen.PHYS32_ENTRY (pvh)");
    imgt_put32(b + 0xc4 + 8, 2); /* another type of "shoal" note */
    assert_int_equal(run(b, sizeof b).r.kind, IMG_KIND_PVH);

    imgt_unikraft(b);
    o = run(b, sizeof b);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.boot, IMG_BOOT_PVH);
    assert_int_equal(o.r.kind, IMG_KIND_UNIKRAFT);
    EVIDENCE(o, "section .uk_inittab", "section .uk_libparam", "note Xen.PHYS32_ENTRY (pvh)");
    /* section 1 renamed: more names at 0xd40 and 0xd60, a longer table */
    imgt_put64(b + 0xe00 + 3 * 64 + 32, 0x80);
    memcpy(b + 0xd40, ".uk_lib_arg__netdev", 20);
    memcpy(b + 0xd60, ".uk_inittabX", 13);
    imgt_put32(b + 0xe00 + 64, 0x40);
    o = run(b, sizeof b);
    EVIDENCE(o, "section .uk_libparam", "section .uk_lib_arg__*", "note Xen.PHYS32_ENTRY (pvh)");
    imgt_put32(b + 0xe00 + 64, 0x60); /* not the name itself: just .uk_* */
    o = run(b, sizeof b);
    EVIDENCE(o, "section .uk_libparam", "section .uk_*", "note Xen.PHYS32_ENTRY (pvh)");
    /* names are evidence only: an unusable string table is ignored */
    imgt_unikraft(b);
    imgt_put16(b + 62, 9); /* e_shstrndx past e_shnum */
    o = run(b, sizeof b);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.kind, IMG_KIND_PVH);
    imgt_put16(b + 62, 3);
    imgt_put64(b + 0xe00 + 3 * 64 + 24, 0xfff0); /* string table past the end */
    assert_int_equal(run(b, sizeof b).r.kind, IMG_KIND_PVH);
    imgt_put64(b + 0xe00 + 3 * 64 + 24, 0xd00);
    imgt_put32(b + 0xe00 + 64, 0x7fffffff); /* a name offset past the table */
    o = run(b, sizeof b);
    EVIDENCE(o, "section .uk_libparam", "note Xen.PHYS32_ENTRY (pvh)");
}

/* A PVH image of 0x4000 bytes with .symtab (section 1) whose string table
 * (section 2, 0x2000 bytes at 0x1000) holds name at offset at. */
static void pvh_with_symbols(uint8_t *b, size_t at, const char *name)
{
    imgt_fill(7, 0x4000, 0, b, 0x4000);
    memset(b + 0x1000, 0, 0x3000);
    memcpy(b + 0x1000 + at, name, strlen(name));
    imgt_put64(b + 40, 0x3000); /* e_shoff */
    imgt_put16(b + 58, 64);
    imgt_put16(b + 60, 3);
    uint8_t *sh = b + 0x3000 + 64; /* .symtab: 2 symbols, strings in section 2 */
    imgt_put32(sh + 4, 2);
    imgt_put64(sh + 24, 0x3100);
    imgt_put64(sh + 32, 48);
    imgt_put32(sh + 40, 2);
    imgt_put64(sh + 56, 24);
    sh += 64; /* .strtab */
    imgt_put32(sh + 4, 3);
    imgt_put64(sh + 24, 0x1000);
    imgt_put64(sh + 32, 0x2000);
}

/* Reference kernels built before the shoal note are known by their symbol. */
static void test_shoal_symbol(void **state)
{
    static uint8_t b[0x4000];
    pvh_with_symbols(b, 5, "shoal_app_name");
    vout o = run(b, sizeof b);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.kind, IMG_KIND_SHOAL);
    EVIDENCE(o, "symbol shoal_app_name", "note Xen.PHYS32_ENTRY (pvh)");
    pvh_with_symbols(b, 4090, "shoal_app_name"); /* across a read piece */
    assert_int_equal(run(b, sizeof b).r.kind, IMG_KIND_SHOAL);
    pvh_with_symbols(b, 0x1ff2, "shoal_app_name"); /* its NUL past the table */
    assert_int_equal(run(b, sizeof b).r.kind, IMG_KIND_PVH);
    pvh_with_symbols(b, 5, "shoal_app_name_x"); /* only the whole name */
    assert_int_equal(run(b, sizeof b).r.kind, IMG_KIND_PVH);
    pvh_with_symbols(b, 5, "my_shoal_app_name");
    assert_int_equal(run(b, sizeof b).r.kind, IMG_KIND_PVH);
    pvh_with_symbols(b, 5, "shoal_app_name");
    imgt_put32(b + 0x3000 + 64 + 40, 7); /* sh_link past e_shnum: ignored */
    assert_int_equal(run(b, sizeof b).r.kind, IMG_KIND_PVH);
    imgt_put32(b + 0x3000 + 64 + 40, 2);
    imgt_put64(b + 0x3000 + 128 + 32, 0x4000); /* strings past the end: ignored */
    o = run(b, sizeof b);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.kind, IMG_KIND_PVH);
}

static void test_disks(void **state)
{
    uint8_t b[0x1000];
    imgt_bootsector(b, sizeof b);
    vout o = run(b, 512);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.boot, IMG_BOOT_DISK);
    assert_int_equal(o.r.format, IMG_FORMAT_RAW);
    assert_int_equal(o.r.kind, IMG_KIND_DISK);
    assert_int_equal(o.r.elf_class, 0);
    assert_int_equal(o.r.disk_size, 512);
    EVIDENCE(o, "format raw", "boot sector 55aa");
    assert_int_equal(run(b, sizeof b).r.disk_size, sizeof b);
    expect_invalid(b, 1000,
                   "the file has a boot signature (55 aa at offset 510) but is 1000 bytes, not a "
                   "whole number of 512-byte sectors");
    b[511] = 0;
    expect_invalid(b, 512, "not a disk image (no qcow2 magic, no 55 aa at offset 510)");
    /* a boot signature wins over a Multiboot header (raw disks come first) */
    uint8_t m[0x3000];
    raw_mb(m);
    imgt_put32(m + 0x1014, 0); /* load to the end of the file, whatever its size */
    m[510] = 0x55;
    m[511] = 0xAA;
    assert_int_equal(run(m, sizeof m).r.kind, IMG_KIND_DISK);
    assert_int_equal(run(m, sizeof m - 8).r.kind, IMG_KIND_MULTIBOOT); /* not whole sectors */

    uint8_t q[IMGT_QCOW2_SIZE];
    imgt_qcow2(q, 3);
    o = run(q, sizeof q);
    assert_int_equal(o.st, IMG_VALID);
    assert_int_equal(o.r.boot, IMG_BOOT_DISK);
    assert_int_equal(o.r.format, IMG_FORMAT_QCOW2);
    assert_int_equal(o.r.kind, IMG_KIND_DISK);
    assert_int_equal(o.r.disk_size, 1 << 20);
    EVIDENCE(o, "format qcow2 v3", "boot sector 55aa");
    imgt_qcow2(q, 2);
    o = run(q, sizeof q);
    assert_int_equal(o.st, IMG_VALID);
    EVIDENCE(o, "format qcow2 v2", "boot sector 55aa");
    expect_invalid(q, 50, "qcow2 header is cut off: the file is 50 bytes");

    imgt_qcow2(q, 4);
    expect_invalid(q, sizeof q, "qcow2 version 4 is not 2 or 3");
    imgt_qcow2(q, 3);
    expect_invalid(q, 80, "qcow2 v3 header is cut off: the file is 80 bytes");
    imgt_put32be(q + 100, 50);
    expect_invalid(q, sizeof q, "qcow2 header_length 50 is out of bounds");
    imgt_qcow2(q, 3);
    imgt_put64be(q + 8, 0x900);
    imgt_put32be(q + 16, 10);
    expect_invalid(q, sizeof q,
                   "qcow2 image names a backing file: a base image must be self-contained "
                   "(qemu-img convert -O qcow2 makes one)");
    imgt_qcow2(q, 3);
    imgt_put32be(q + 20, 22);
    expect_invalid(q, sizeof q, "qcow2 cluster_bits 22 is outside 9..21");
    imgt_qcow2(q, 3);
    imgt_put64be(q + 24, 100);
    expect_invalid(q, sizeof q, "qcow2 virtual size 100 is smaller than one sector");
    imgt_put64be(q + 24, UINT64_C(1) << 40);
    o = run(q, sizeof q);
    assert_int_equal(o.st, IMG_VTOO_LARGE);
    assert_string_equal(o.msg, "qcow2 virtual size 1099511627776 bytes is over the limit of "
                               "68719476736 bytes");
    img_limits lim = { 0, 0, UINT64_C(1) << 40 };
    assert_int_equal(img_validate_buffer(q, sizeof q, &lim, NULL, NULL, 0), IMG_VALID);
    imgt_qcow2(q, 3);
    imgt_put32be(q + 32, 2);
    expect_invalid(q, sizeof q, "qcow2 image is encrypted (crypt_method 2)");
    imgt_qcow2(q, 3);
    imgt_put64be(q + 72, 2);
    expect_invalid(q, sizeof q, "qcow2 image is marked corrupt");
    imgt_put64be(q + 72, 4);
    expect_invalid(q, sizeof q,
                   "qcow2 image keeps its data in an external file: a base image must be "
                   "self-contained");
    imgt_put64be(q + 72, 0x21);
    expect_invalid(q, sizeof q, "qcow2 incompatible feature bits 0x20 are unknown");
    imgt_put64be(q + 72, 1 | 8); /* dirty, zstd: fine */
    assert_int_equal(run(q, sizeof q).st, IMG_VALID);

    /* guest sector 0 */
    imgt_qcow2(q, 3);
    q[IMGT_QCOW2_DATA + 510] = 0;
    q[IMGT_QCOW2_DATA + 511] = 0;
    expect_invalid(q, sizeof q,
                   "qcow2 image: guest sector 0 has no boot signature (55 aa at offset 510, "
                   "found 00 00)");
    imgt_qcow2(q, 3);
    imgt_put64be(q + IMGT_QCOW2_L2, 0);
    expect_invalid(q, sizeof q,
                   "qcow2 image: guest sector 0 is not allocated (reads as zeros), so there is "
                   "no boot sector");
    imgt_put64be(q + IMGT_QCOW2_L2, IMGT_QCOW2_DATA | 1); /* zero flag */
    expect_invalid(q, sizeof q, "guest sector 0 is not allocated");
    imgt_put64be(q + IMGT_QCOW2_L2, 0xa00);
    expect_invalid(q, sizeof q,
                   "qcow2 cluster of guest sector 0 at 0xa00 is past end of file (0xa00 bytes)");
    imgt_put64be(q + IMGT_QCOW2_L2, UINT64_C(1) << 62 | 0x123); /* compressed */
    o = run(q, sizeof q);
    assert_int_equal(o.st, IMG_VALID);
    EVIDENCE(o, "format qcow2 v3", "boot sector not checked (compressed)");
    imgt_qcow2(q, 3);
    imgt_put64be(q + IMGT_QCOW2_L1, 0);
    expect_invalid(q, sizeof q, "guest sector 0 is not allocated");
    imgt_put64be(q + IMGT_QCOW2_L1, 0xa00);
    expect_invalid(q, sizeof q, "qcow2 L2 table at 0xa00 is past end of file (0xa00 bytes)");
    imgt_put64be(q + 40, 0xfffffffffffffff8u);
    expect_invalid(q, sizeof q,
                   "qcow2 l1_table_offset 0xfffffffffffffff8 is past end of file (0xa00 bytes)");
    imgt_put32be(q + 36, 0); /* no L1 table: nothing allocated */
    expect_invalid(q, sizeof q, "guest sector 0 is not allocated");
    /* extended L2 entries: 16 bytes, allocation bitmap after the entry */
    imgt_qcow2(q, 3);
    imgt_put64be(q + 72, 16);
    imgt_put64be(q + IMGT_QCOW2_L2 + 8, 1);
    o = run(q, sizeof q);
    assert_int_equal(o.st, IMG_VALID);
    EVIDENCE(o, "format qcow2 v3", "boot sector 55aa");
    imgt_put64be(q + IMGT_QCOW2_L2 + 8, 0);
    expect_invalid(q, sizeof q, "guest sector 0 is not allocated");
    imgt_put64be(q + IMGT_QCOW2_L2 + 8, UINT64_C(1) << 32 | 1);
    expect_invalid(q, sizeof q, "guest sector 0 is not allocated");
}

static void test_names(void **state)
{
    for (int k = IMG_KIND_UNKNOWN; k <= IMG_KIND_DISK; k++)
        assert_int_equal(img_kind_parse(img_kind_name((img_kind)k)), k);
    for (int f = IMG_FORMAT_NONE; f <= IMG_FORMAT_QCOW2; f++)
        assert_int_equal(img_format_parse(img_format_name((img_format)f)), f);
    for (int b = IMG_BOOT_NONE; b <= IMG_BOOT_DISK; b++)
        assert_int_equal(img_boot_parse(img_boot_name((img_boot)b)), b);
    assert_string_equal(img_kind_name(IMG_KIND_SOLO5), "solo5");
    assert_string_equal(img_format_name(IMG_FORMAT_QCOW2), "qcow2");
    assert_string_equal(img_boot_name(IMG_BOOT_DISK), "disk");
    assert_int_equal(img_kind_parse(NULL), IMG_KIND_UNKNOWN);
    assert_int_equal(img_kind_parse("Solo5"), IMG_KIND_UNKNOWN);
    assert_int_equal(img_format_parse(""), IMG_FORMAT_NONE);
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
    img_limits lim = { 1024, 0, 0 };
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
    assert_non_null(strstr(msg, "not a disk image (no qcow2 magic, no 55 aa at offset 510)"));
    imgt_fill(1, sizeof b, 0, b, sizeof b);
    assert_int_equal(img_validate_head(b, sizeof b, msg, sizeof msg), IMG_VALID);
    imgt_bootsector(b, sizeof b);
    assert_int_equal(img_validate_head(b, sizeof b, msg, sizeof msg), IMG_VALID);
    memset(b, 0, sizeof b);
    memcpy(b, "QFI\xfb", 4);
    assert_int_equal(img_validate_head(b, sizeof b, msg, sizeof msg), IMG_VALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_elf64_pvh), cmocka_unit_test(test_valid_elf32_section_note),
        cmocka_unit_test(test_multiboot),       cmocka_unit_test(test_multiboot_addresses),
        cmocka_unit_test(test_solo5),           cmocka_unit_test(test_pvh_interp),
        cmocka_unit_test(test_kinds),           cmocka_unit_test(test_shoal_symbol),
        cmocka_unit_test(test_disks),           cmocka_unit_test(test_names),
        cmocka_unit_test(test_small_and_magic), cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_segments),        cmocka_unit_test(test_notes),
        cmocka_unit_test(test_reader),          cmocka_unit_test(test_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
