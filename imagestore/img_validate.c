/*
 * img_validate.c - boot image validation (see img_validate.h).
 *
 * Every multi-byte field is decoded from little-endian bytes; every offset
 * and size from the file is compared with what is left of the file (never
 * added first, so nothing can wrap) before it is used.
 */
#include "img_validate.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define ELF_MAGIC                "\177ELF"
#define PT_LOAD                  1
#define PT_INTERP                3
#define PT_NOTE                  4
#define SHT_NOTE                 7
#define SHT_NOBITS               8
#define ET_EXEC                  2
#define EM_386                   3
#define EM_X86_64                62
#define XEN_ELFNOTE_PHYS32_ENTRY 18

#define MB1_MAGIC 0x1BADB002u
#define MB1_SCAN  8192u
#define MB2_MAGIC 0xE85250D6u
#define MB2_SCAN  32768u

#define WIN_SIZE 4096u
#define MAX_READ 65536u

typedef struct vctx {
    img_read_at_fn read_at;
    void *ctx;
    uint64_t size;         /* file size */
    uint8_t win[WIN_SIZE]; /* read-ahead window */
    uint64_t win_off;      /* file offset of win[0] */
    size_t win_len;        /* valid bytes in win */
    char *msg;
    size_t msglen;
    img_vstatus status; /* set by fail() */
} vctx;

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t le64(const uint8_t *p)
{
    return le32(p) | ((uint64_t)le32(p + 4) << 32);
}

__attribute__((format(printf, 3, 4))) static img_vstatus fail(vctx *v, img_vstatus st,
                                                              const char *fmt, ...)
{
    if (v->msg && v->msglen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->msg, v->msglen, fmt, ap);
        va_end(ap);
    }
    v->status = st;
    return st;
}

/* Read len bytes at off; the caller has checked off + len <= size. */
static int vread(vctx *v, uint64_t off, void *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (off > v->size || len > v->size - off) {
        fail(v, IMG_VINVALID, "internal: read at 0x%llx + 0x%zx past end of file",
             (unsigned long long)off, len);
        return -1;
    }
    if (len <= WIN_SIZE) {
        if (!(off >= v->win_off && off - v->win_off + len <= v->win_len)) {
            uint64_t left = v->size - off;
            size_t n = left < WIN_SIZE ? (size_t)left : WIN_SIZE;
            if (v->read_at(v->ctx, off, v->win, n) != 0) {
                v->win_len = 0;
                fail(v, IMG_VIO, "read error at offset 0x%llx", (unsigned long long)off);
                return -1;
            }
            v->win_off = off;
            v->win_len = n;
        }
        memcpy(buf, v->win + (off - v->win_off), len);
        return 0;
    }
    uint8_t *p = buf;
    while (len > 0) {
        size_t n = len < MAX_READ ? len : MAX_READ;
        if (v->read_at(v->ctx, off, p, n) != 0) {
            fail(v, IMG_VIO, "read error at offset 0x%llx", (unsigned long long)off);
            return -1;
        }
        off += n;
        p += n;
        len -= n;
    }
    return 0;
}

/* ---- Multiboot ---------------------------------------------------------- */

typedef struct mbscan {
    img_boot found; /* IMG_BOOT_MULTIBOOT / _MULTIBOOT2 / NONE */
    char why[160];  /* why a magic that was seen did not count */
} mbscan;

/* Look for Multiboot headers in the first 32 KiB. raw: the file is not ELF. */
static int scan_multiboot(vctx *v, bool raw, mbscan *mb)
{
    uint8_t head[MB2_SCAN];
    size_t n = v->size < MB2_SCAN ? (size_t)v->size : MB2_SCAN;
    mb->found = IMG_BOOT_NONE;
    mb->why[0] = '\0';
    if (vread(v, 0, head, n) != 0)
        return -1;

    size_t lim1 = n < MB1_SCAN ? n : MB1_SCAN;
    for (size_t off = 0; off + 12 <= lim1; off += 4) {
        if (le32(head + off) != MB1_MAGIC)
            continue;
        uint32_t flags = le32(head + off + 4), cks = le32(head + off + 8);
        if ((uint32_t)(MB1_MAGIC + flags + cks) != 0) {
            snprintf(mb->why, sizeof mb->why,
                     "Multiboot header at 0x%zx has a bad checksum (0x%08x)", off, cks);
            continue;
        }
        if (raw && !(flags & 0x10000u)) {
            snprintf(mb->why, sizeof mb->why,
                     "Multiboot header at 0x%zx has no address fields (flags bit 16) "
                     "and the file is not ELF",
                     off);
            continue;
        }
        if (raw && off + 32 > n) {
            snprintf(mb->why, sizeof mb->why,
                     "Multiboot header at 0x%zx is cut off by the end of the file", off);
            continue;
        }
        mb->found = IMG_BOOT_MULTIBOOT;
        return 0;
    }
    for (size_t off = 0; off + 16 <= n; off += 8) {
        if (le32(head + off) != MB2_MAGIC)
            continue;
        uint32_t arch = le32(head + off + 4), hlen = le32(head + off + 8);
        uint32_t cks = le32(head + off + 12);
        if ((uint32_t)(MB2_MAGIC + arch + hlen + cks) != 0) {
            snprintf(mb->why, sizeof mb->why,
                     "Multiboot2 header at 0x%zx has a bad checksum (0x%08x)", off, cks);
            continue;
        }
        if (hlen < 16 || hlen > v->size - off) {
            snprintf(mb->why, sizeof mb->why,
                     "Multiboot2 header at 0x%zx: header length 0x%x is out of bounds", off, hlen);
            continue;
        }
        mb->found = IMG_BOOT_MULTIBOOT2;
        return 0;
    }
    return 0;
}

/* ---- ELF notes ---------------------------------------------------------- */

typedef struct pvh {
    bool found;
    uint64_t entry;
} pvh;

/*
 * Scan the notes in [start, start + len) (already checked to lie inside the
 * file). where names the container for messages ("program header 3").
 */
static int scan_notes(vctx *v, const char *where, uint64_t start, uint64_t len, uint64_t align,
                      pvh *out)
{
    uint64_t pos = 0;
    unsigned n = 0;
    align = align == 8 ? 8 : 4;
    while (len - pos >= 12) {
        uint8_t h[12];
        if (vread(v, start + pos, h, 12) != 0)
            return -1;
        uint32_t namesz = le32(h), descsz = le32(h + 4), type = le32(h + 8);
        uint64_t left = len - pos;
        if (n >= IMG_VALIDATE_MAX_NOTES)
            return fail(v, IMG_VINVALID, "%s: more than %u notes", where, IMG_VALIDATE_MAX_NOTES),
                   -1;
        /* name and descriptor offsets relative to the note, aligned */
        uint64_t name_end = 12 + (uint64_t)namesz;
        if (name_end > left)
            return fail(v, IMG_VINVALID,
                        "%s: note %u: name size 0x%x runs past the end of the notes "
                        "(0x%llx bytes left)",
                        where, n, namesz, (unsigned long long)(left - 12)),
                   -1;
        uint64_t desc_off = (name_end + align - 1) & ~(align - 1);
        if (desc_off > left)
            desc_off = left;
        if (descsz > left - desc_off)
            return fail(v, IMG_VINVALID,
                        "%s: note %u: descriptor size 0x%x runs past the end of the "
                        "notes (0x%llx bytes left)",
                        where, n, descsz, (unsigned long long)(left - desc_off)),
                   -1;
        if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4) {
            uint8_t name[4], desc[8];
            if (vread(v, start + pos + 12, name, 4) != 0)
                return -1;
            if (memcmp(name, "Xen", 4) == 0) {
                if (descsz != 4 && descsz != 8)
                    return fail(v, IMG_VINVALID,
                                "%s: note %u: Xen PHYS32_ENTRY descriptor is %u bytes, "
                                "expected 4 or 8",
                                where, n, descsz),
                           -1;
                if (vread(v, start + pos + desc_off, desc, descsz) != 0)
                    return -1;
                uint64_t e = descsz == 4 ? le32(desc) : le64(desc);
                if (e > UINT32_MAX)
                    return fail(v, IMG_VINVALID, "%s: note %u: PVH entry 0x%llx is above 4 GiB",
                                where, n, (unsigned long long)e),
                           -1;
                if (!out->found) {
                    out->found = true;
                    out->entry = e;
                }
            }
        }
        uint64_t next = desc_off + (((uint64_t)descsz + align - 1) & ~(align - 1));
        pos += next < left ? next : left;
        n++;
    }
    return 0;
}

/* ---- ELF ---------------------------------------------------------------- */

typedef struct seg {
    unsigned idx;         /* program header index */
    uint64_t off, filesz; /* file range */
    uint64_t addr, memsz; /* physical memory range */
} seg;

static img_vstatus validate_elf(vctx *v, const img_limits *lim, img_vresult *res)
{
    uint8_t eh[64];
    if (v->size < 16)
        return fail(v, IMG_VINVALID, "file is %llu bytes, too short for an ELF identification",
                    (unsigned long long)v->size);
    if (vread(v, 0, eh, 16) != 0)
        return v->status;
    unsigned cls = eh[4], data = eh[5], ver = eh[6];
    if (cls != 1 && cls != 2)
        return fail(v, IMG_VINVALID, "EI_CLASS %u is neither ELFCLASS32 (1) nor ELFCLASS64 (2)",
                    cls);
    if (data != 1)
        return fail(v, IMG_VINVALID, "EI_DATA %u is not little-endian (1)", data);
    if (ver != 1)
        return fail(v, IMG_VINVALID, "EI_VERSION %u is not EV_CURRENT (1)", ver);
    bool e64 = cls == 2;
    unsigned ehsz = e64 ? 64 : 52, phsz = e64 ? 56 : 32, shsz = e64 ? 64 : 40;
    if (v->size < ehsz)
        return fail(v, IMG_VINVALID, "file is %llu bytes, too short for an ELF%d header (%u bytes)",
                    (unsigned long long)v->size, e64 ? 64 : 32, ehsz);
    if (vread(v, 0, eh, ehsz) != 0)
        return v->status;

    unsigned type = le16(eh + 16), mach = le16(eh + 18);
    uint32_t eversion = le32(eh + 20);
    uint64_t entry, phoff, shoff;
    unsigned ehsize, phentsize, phnum, shentsize, shnum;
    if (e64) {
        entry = le64(eh + 24);
        phoff = le64(eh + 32);
        shoff = le64(eh + 40);
        ehsize = le16(eh + 52);
        phentsize = le16(eh + 54);
        phnum = le16(eh + 56);
        shentsize = le16(eh + 58);
        shnum = le16(eh + 60);
    } else {
        entry = le32(eh + 24);
        phoff = le32(eh + 28);
        shoff = le32(eh + 32);
        ehsize = le16(eh + 40);
        phentsize = le16(eh + 42);
        phnum = le16(eh + 44);
        shentsize = le16(eh + 46);
        shnum = le16(eh + 48);
    }
    if (type != ET_EXEC)
        return fail(v, IMG_VINVALID, "e_type %u is not ET_EXEC (2)", type);
    if (mach != EM_386 && mach != EM_X86_64)
        return fail(v, IMG_VINVALID, "e_machine %u is not x86 (3) or x86_64 (62)", mach);
    if (eversion != 1)
        return fail(v, IMG_VINVALID, "e_version %u is not EV_CURRENT (1)", eversion);
    if (ehsize < ehsz)
        return fail(v, IMG_VINVALID, "e_ehsize %u is smaller than the ELF%d header (%u bytes)",
                    ehsize, e64 ? 64 : 32, ehsz);
    if (phnum == 0)
        return fail(v, IMG_VINVALID, "no program headers (e_phnum is 0)");
    if (phnum > IMG_VALIDATE_MAX_PHNUM)
        return fail(v, IMG_VINVALID, "e_phnum %u is over the limit of %u program headers", phnum,
                    IMG_VALIDATE_MAX_PHNUM);
    if (phentsize != phsz)
        return fail(v, IMG_VINVALID, "e_phentsize %u is not %u", phentsize, phsz);
    uint64_t phtab = (uint64_t)phnum * phsz;
    if (phoff > v->size || phtab > v->size - phoff)
        return fail(v, IMG_VINVALID,
                    "program header table at offset 0x%llx + 0x%llx bytes is past end of "
                    "file (0x%llx bytes)",
                    (unsigned long long)phoff, (unsigned long long)phtab,
                    (unsigned long long)v->size);

    seg loads[IMG_VALIDATE_MAX_PHNUM];
    unsigned nload = 0;
    uint64_t load_total = 0;
    uint64_t addr_max = e64 ? UINT64_MAX : UINT32_MAX;
    pvh note = { 0 };
    char where[48];

    for (unsigned i = 0; i < phnum; i++) {
        uint8_t ph[56];
        if (vread(v, phoff + (uint64_t)i * phsz, ph, phsz) != 0)
            return v->status;
        uint32_t ptype = le32(ph);
        uint64_t off, paddr, filesz, memsz, align;
        if (e64) {
            off = le64(ph + 8);
            paddr = le64(ph + 24);
            filesz = le64(ph + 32);
            memsz = le64(ph + 40);
            align = le64(ph + 48);
        } else {
            off = le32(ph + 4);
            paddr = le32(ph + 12);
            filesz = le32(ph + 16);
            memsz = le32(ph + 20);
            align = le32(ph + 28);
        }
        if (filesz > 0 && (off > v->size || filesz > v->size - off))
            return fail(v, IMG_VINVALID,
                        "program header %u: segment offset 0x%llx + size 0x%llx is past end "
                        "of file (0x%llx bytes)",
                        i, (unsigned long long)off, (unsigned long long)filesz,
                        (unsigned long long)v->size);
        if (ptype == PT_INTERP)
            return fail(v, IMG_VINVALID,
                        "program header %u: PT_INTERP: dynamically linked programs are not "
                        "bootable",
                        i);
        if (ptype == PT_LOAD) {
            if (filesz > memsz)
                return fail(v, IMG_VINVALID,
                            "program header %u: p_filesz 0x%llx is larger than p_memsz 0x%llx", i,
                            (unsigned long long)filesz, (unsigned long long)memsz);
            if (memsz > addr_max || paddr > addr_max - memsz)
                return fail(v, IMG_VINVALID,
                            "program header %u: memory range 0x%llx + 0x%llx wraps around the "
                            "address space",
                            i, (unsigned long long)paddr, (unsigned long long)memsz);
            if (memsz > lim->max_load_size || load_total > lim->max_load_size - memsz)
                return fail(
                    v, IMG_VTOO_LARGE,
                    "program header %u: PT_LOAD segments need more than 0x%llx bytes "
                    "of memory (limit 0x%llx)",
                    i,
                    (unsigned long long)(memsz > lim->max_load_size ? memsz : load_total + memsz),
                    (unsigned long long)lim->max_load_size);
            load_total += memsz;
            loads[nload++] = (seg){ i, off, filesz, paddr, memsz };
        } else if (ptype == PT_NOTE && filesz > 0) {
            snprintf(where, sizeof where, "program header %u", i);
            if (scan_notes(v, where, off, filesz, align, &note) != 0)
                return v->status;
        }
    }
    if (nload == 0)
        return fail(v, IMG_VINVALID, "no PT_LOAD segment");
    for (unsigned a = 0; a < nload; a++) {
        for (unsigned b = a + 1; b < nload; b++) {
            const seg *x = &loads[a], *y = &loads[b];
            if (x->filesz && y->filesz && x->off < y->off + y->filesz &&
                y->off < x->off + x->filesz)
                return fail(v, IMG_VINVALID,
                            "program headers %u and %u: PT_LOAD segments overlap in the file "
                            "(0x%llx-0x%llx and 0x%llx-0x%llx)",
                            x->idx, y->idx, (unsigned long long)x->off,
                            (unsigned long long)(x->off + x->filesz), (unsigned long long)y->off,
                            (unsigned long long)(y->off + y->filesz));
            if (x->memsz && y->memsz && x->addr < y->addr + y->memsz &&
                y->addr < x->addr + x->memsz)
                return fail(v, IMG_VINVALID,
                            "program headers %u and %u: PT_LOAD segments overlap in memory "
                            "(0x%llx-0x%llx and 0x%llx-0x%llx)",
                            x->idx, y->idx, (unsigned long long)x->addr,
                            (unsigned long long)(x->addr + x->memsz), (unsigned long long)y->addr,
                            (unsigned long long)(y->addr + y->memsz));
        }
    }

    /* Section headers: optional, but when present they must be sane. */
    if (shnum > 0 && shoff != 0) {
        if (shnum > IMG_VALIDATE_MAX_SHNUM)
            return fail(v, IMG_VINVALID, "e_shnum %u is over the limit of %u section headers",
                        shnum, IMG_VALIDATE_MAX_SHNUM);
        if (shentsize != shsz)
            return fail(v, IMG_VINVALID, "e_shentsize %u is not %u", shentsize, shsz);
        uint64_t shtab = (uint64_t)shnum * shsz;
        if (shoff > v->size || shtab > v->size - shoff)
            return fail(v, IMG_VINVALID,
                        "section header table at offset 0x%llx + 0x%llx bytes is past end of "
                        "file (0x%llx bytes)",
                        (unsigned long long)shoff, (unsigned long long)shtab,
                        (unsigned long long)v->size);
        for (unsigned i = 0; i < shnum; i++) {
            uint8_t sh[64];
            if (vread(v, shoff + (uint64_t)i * shsz, sh, shsz) != 0)
                return v->status;
            uint32_t stype = le32(sh + 4);
            if (stype != SHT_NOTE)
                continue;
            uint64_t off = e64 ? le64(sh + 24) : le32(sh + 16);
            uint64_t size = e64 ? le64(sh + 32) : le32(sh + 20);
            uint64_t align = e64 ? le64(sh + 48) : le32(sh + 32);
            if (off > v->size || size > v->size - off)
                return fail(v, IMG_VINVALID,
                            "section %u: note section offset 0x%llx + size 0x%llx is past end "
                            "of file (0x%llx bytes)",
                            i, (unsigned long long)off, (unsigned long long)size,
                            (unsigned long long)v->size);
            snprintf(where, sizeof where, "section %u", i);
            if (scan_notes(v, where, off, size, align, &note) != 0)
                return v->status;
        }
    }

    img_boot boot = IMG_BOOT_NONE;
    if (note.found) {
        bool inside = false;
        for (unsigned a = 0; a < nload && !inside; a++)
            inside = note.entry >= loads[a].addr && note.entry - loads[a].addr < loads[a].filesz;
        if (!inside)
            return fail(v, IMG_VINVALID,
                        "PVH entry 0x%llx is not inside the file part of any PT_LOAD segment",
                        (unsigned long long)note.entry);
        boot = IMG_BOOT_PVH;
        entry = note.entry;
    } else {
        mbscan mb;
        if (scan_multiboot(v, false, &mb) != 0)
            return v->status;
        if (mb.found == IMG_BOOT_NONE)
            return fail(v, IMG_VINVALID,
                        "ELF file has no PVH entry note (\"Xen\" note type 18) and no "
                        "Multiboot header%s%s",
                        mb.why[0] ? ": " : "", mb.why);
        boot = mb.found;
    }
    if (res) {
        res->boot = boot;
        res->elf_class = e64 ? 64 : 32;
        res->entry = entry;
        res->load_size = load_total;
        res->nload = nload;
    }
    return IMG_VALID;
}

img_vstatus img_validate_reader(img_read_at_fn read_at, void *ctx, uint64_t size,
                                const img_limits *limits, img_vresult *res, char *msg,
                                size_t msglen)
{
    vctx v;
    img_limits lim = { IMG_DEFAULT_MAX_FILE, IMG_DEFAULT_MAX_LOAD };
    if (limits && limits->max_file_size)
        lim.max_file_size = limits->max_file_size;
    if (limits && limits->max_load_size)
        lim.max_load_size = limits->max_load_size;
    v.read_at = read_at;
    v.ctx = ctx;
    v.size = size;
    v.win_off = 0;
    v.win_len = 0;
    v.msg = msg;
    v.msglen = msglen;
    v.status = IMG_VALID;
    if (msg && msglen)
        msg[0] = '\0';
    if (res)
        memset(res, 0, sizeof *res);

    if (size == 0)
        return fail(&v, IMG_VINVALID, "file is empty");
    if (size > lim.max_file_size)
        return fail(&v, IMG_VTOO_LARGE, "file is %llu bytes, over the limit of %llu bytes",
                    (unsigned long long)size, (unsigned long long)lim.max_file_size);
    uint8_t magic[4] = { 0 };
    if (size >= 4 && vread(&v, 0, magic, 4) != 0)
        return v.status;
    if (size >= 4 && memcmp(magic, ELF_MAGIC, 4) == 0)
        return validate_elf(&v, &lim, res);

    mbscan mb;
    if (scan_multiboot(&v, true, &mb) != 0)
        return v.status;
    if (mb.found == IMG_BOOT_NONE)
        return fail(&v, IMG_VINVALID,
                    "not an ELF file (no 7f 45 4c 46 magic) and no Multiboot header in the "
                    "first 32 KiB%s%s",
                    mb.why[0] ? ": " : "", mb.why);
    if (res)
        res->boot = mb.found;
    return IMG_VALID;
}

img_vstatus img_validate_head(const void *buf, size_t len, char *msg, size_t msglen)
{
    const uint8_t *p = buf;
    if (msg && msglen)
        msg[0] = '\0';
    if (len >= 4 && memcmp(p, ELF_MAGIC, 4) == 0)
        return IMG_VALID;
    size_t lim1 = len < MB1_SCAN ? len : MB1_SCAN, lim2 = len < MB2_SCAN ? len : MB2_SCAN;
    for (size_t off = 0; off + 4 <= lim1; off += 4)
        if (le32(p + off) == MB1_MAGIC)
            return IMG_VALID;
    for (size_t off = 0; off + 4 <= lim2; off += 8)
        if (le32(p + off) == MB2_MAGIC)
            return IMG_VALID;
    if (msg && msglen)
        snprintf(msg, msglen,
                 "not an ELF file (no 7f 45 4c 46 magic) and no Multiboot header "
                 "in the first 32 KiB");
    return IMG_VINVALID;
}

typedef struct membuf {
    const uint8_t *p;
    size_t len;
} membuf;

static int mem_read_at(void *ctx, uint64_t off, void *buf, size_t len)
{
    const membuf *m = ctx;
    if (off > m->len || len > m->len - off)
        return -1;
    memcpy(buf, m->p + off, len);
    return 0;
}

img_vstatus img_validate_buffer(const void *buf, size_t len, const img_limits *limits,
                                img_vresult *res, char *msg, size_t msglen)
{
    membuf m = { buf, len };
    return img_validate_reader(mem_read_at, &m, len, limits, res, msg, msglen);
}

const char *img_boot_name(img_boot boot)
{
    switch (boot) {
    case IMG_BOOT_PVH: return "pvh";
    case IMG_BOOT_MULTIBOOT: return "multiboot";
    case IMG_BOOT_MULTIBOOT2: return "multiboot2";
    default: return "none";
    }
}

img_boot img_boot_parse(const char *name)
{
    if (!name)
        return IMG_BOOT_NONE;
    if (strcmp(name, "pvh") == 0)
        return IMG_BOOT_PVH;
    if (strcmp(name, "multiboot") == 0)
        return IMG_BOOT_MULTIBOOT;
    if (strcmp(name, "multiboot2") == 0)
        return IMG_BOOT_MULTIBOOT2;
    return IMG_BOOT_NONE;
}
