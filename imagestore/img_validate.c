/*
 * img_validate.c - boot image validation (see img_validate.h).
 *
 * Every multi-byte field is decoded from little-endian bytes (qcow2: big-
 * endian); every offset and size from the file is compared with what is left
 * of the file (never added first, so nothing can wrap) before it is used.
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
#define SHT_STRTAB               3
#define SHT_NOTE                 7
#define SHT_NOBITS               8
#define ET_EXEC                  2
#define EM_386                   3
#define EM_X86_64                62
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define SOLO5_NOTE_MANIFEST      0x3154464du /* "MFT1" */
#define SOLO5_NOTE_ABI           0x31494241u /* "ABI1" */
#define SOLO5_ABI_VIRTIO         3
#define SHOAL_NOTE_GUEST         1 /* name "shoal": guest-kernel/arch/x86_64/boot.S */
#define SOLO5_INTERP             "/nonexistent/solo5/"

#define MB1_MAGIC    0x1BADB002u
#define MB1_SCAN     8192u
#define MB1_ADDRS    0x10000u /* flags bit 16: the header carries load addresses */
#define MB2_MAGIC    0xE85250D6u
#define MB2_SCAN     32768u
#define SECTOR       512u
#define QCOW2_MAGIC  "QFI\xfb"
#define QCOW2_OFFSET UINT64_C(0x00fffffffffffe00) /* offset bits of L1/L2 entries */

#define WIN_SIZE   4096u
#define MAX_READ   65536u
#define STRTAB_MAX 4096u      /* bytes of the section name table looked at */
#define SYMSTR_MAX (1u << 20) /* bytes of the symbol string table searched */
#define SHT_SYMTAB 2

/* Evidence, in the order it is reported: what decides the kind first. */
enum {
    EV_SHOAL_NOTE,
    EV_SHOAL_SYMBOL,
    EV_SOLO5_ABI,
    EV_SOLO5_MANIFEST,
    EV_SOLO5_INTERP,
    EV_UK_INITTAB,
    EV_UK_LIBPARAM,
    EV_UK_CTORTAB,
    EV_UK_LIBARG,
    EV_UK_OTHER,
    EV_MB1_ADDR,
    EV_MB1,
    EV_PVH,
    EV_MB2,
    EV_INTERP,
    EV_QCOW2_V2,
    EV_QCOW2_V3,
    EV_RAW,
    EV_BOOT_SECTOR,
    EV_BOOT_COMPRESSED,
    EV_COUNT
};

static const char *const ev_text[EV_COUNT] = {
    [EV_SHOAL_NOTE] = "note shoal.guest",
    [EV_SHOAL_SYMBOL] = "symbol shoal_app_name",
    [EV_SOLO5_ABI] = "note solo5.abi",
    [EV_SOLO5_MANIFEST] = "note solo5.manifest",
    [EV_SOLO5_INTERP] = "interp /nonexistent/solo5/",
    [EV_UK_INITTAB] = "section .uk_inittab",
    [EV_UK_LIBPARAM] = "section .uk_libparam",
    [EV_UK_CTORTAB] = "section .uk_ctortab",
    [EV_UK_LIBARG] = "section .uk_lib_arg__*",
    [EV_UK_OTHER] = "section .uk_*",
    [EV_MB1_ADDR] = "multiboot header with load addresses",
    [EV_MB1] = "multiboot header",
    [EV_PVH] = "note Xen.PHYS32_ENTRY (pvh)",
    [EV_MB2] = "multiboot2 header",
    [EV_INTERP] = "PT_INTERP (not used to boot)",
    [EV_QCOW2_V2] = "format qcow2 v2",
    [EV_QCOW2_V3] = "format qcow2 v3",
    [EV_RAW] = "format raw",
    [EV_BOOT_SECTOR] = "boot sector 55aa",
    [EV_BOOT_COMPRESSED] = "boot sector not checked (compressed)",
};

#define EV(x)    (UINT32_C(1) << (x))
#define EV_SOLO5 (EV(EV_SOLO5_ABI) | EV(EV_SOLO5_MANIFEST) | EV(EV_SOLO5_INTERP))
#define EV_UNIKRAFT                                                                                \
    (EV(EV_UK_INITTAB) | EV(EV_UK_LIBPARAM) | EV(EV_UK_CTORTAB) | EV(EV_UK_LIBARG) |               \
     EV(EV_UK_OTHER))

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
    uint32_t ev;        /* evidence seen, EV() bits */
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
static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}
static uint64_t be64(const uint8_t *p)
{
    return ((uint64_t)be32(p) << 32) | be32(p + 4);
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

/* Copy at most out_len - 1 bytes of a file string, stopping at NUL, with
 * anything but printable ASCII shown as '?': for quoting in messages. */
static void printable(const uint8_t *s, size_t n, char *out, size_t out_len)
{
    size_t i = 0;
    for (; i < n && i + 1 < out_len && s[i]; i++)
        out[i] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
    out[i] = '\0';
}

/* ---- ELF program headers ------------------------------------------------- */

typedef struct seg {
    unsigned idx;         /* program header index */
    uint64_t off, filesz; /* file range */
    uint64_t addr, memsz; /* physical memory range */
    uint64_t vaddr;       /* virtual address */
} seg;

/* ---- Multiboot ---------------------------------------------------------- */

typedef struct mbscan {
    bool mb1;        /* a v1 header with a valid checksum: the one QEMU takes */
    size_t mb1_off;  /* its file offset */
    uint8_t hdr[32]; /* its fields (bytes past the end of the file are 0) */
    size_t hdr_len;  /* bytes of hdr inside the file (12..32) */
    bool mb2;        /* a sane Multiboot2 header */
    char why[160];   /* why a magic that was seen did not count */
} mbscan;

/* Look for Multiboot headers in the first 32 KiB. */
static int scan_multiboot(vctx *v, mbscan *mb)
{
    uint8_t head[MB2_SCAN];
    size_t n = v->size < MB2_SCAN ? (size_t)v->size : MB2_SCAN;
    memset(mb, 0, sizeof *mb);
    if (vread(v, 0, head, n) != 0)
        return -1;

    /* QEMU (hw/i386/multiboot.c) takes the first v1 magic whose checksum
       holds, at a 4-aligned offset below 8 KiB - 12. */
    size_t lim1 = n < MB1_SCAN ? n : MB1_SCAN;
    for (size_t off = 0; off + 12 < MB1_SCAN && off + 12 <= lim1; off += 4) {
        if (le32(head + off) != MB1_MAGIC)
            continue;
        uint32_t flags = le32(head + off + 4), cks = le32(head + off + 8);
        if ((uint32_t)(MB1_MAGIC + flags + cks) != 0) {
            snprintf(mb->why, sizeof mb->why,
                     "Multiboot header at 0x%zx has a bad checksum (0x%08x)", off, cks);
            continue;
        }
        mb->mb1 = true;
        mb->mb1_off = off;
        mb->hdr_len = n - off < sizeof mb->hdr ? n - off : sizeof mb->hdr;
        memcpy(mb->hdr, head + off, mb->hdr_len);
        break;
    }
    for (size_t off = 0; off + 16 <= n; off += 8) {
        if (le32(head + off) != MB2_MAGIC)
            continue;
        uint32_t arch = le32(head + off + 4), hlen = le32(head + off + 8);
        uint32_t cks = le32(head + off + 12);
        if ((uint32_t)(MB2_MAGIC + arch + hlen + cks) != 0) {
            if (!mb->why[0])
                snprintf(mb->why, sizeof mb->why,
                         "Multiboot2 header at 0x%zx has a bad checksum (0x%08x)", off, cks);
            continue;
        }
        if (hlen < 16 || hlen > v->size - off) {
            if (!mb->why[0])
                snprintf(mb->why, sizeof mb->why,
                         "Multiboot2 header at 0x%zx: header length 0x%x is out of bounds", off,
                         hlen);
            continue;
        }
        mb->mb2 = true;
        break;
    }
    return 0;
}

/*
 * A v1 header whose flags carry the load addresses: QEMU copies file bytes
 * [text_off, text_off + load_end_addr - load_addr) to load_addr, where
 * text_off = header offset - (header_addr - load_addr), zeroes up to
 * bss_end_addr and jumps to entry_addr. Check that this makes sense for the
 * file; in an ELF, also that every PT_LOAD's file bytes land where the
 * program headers say. Sets *entry and *mem (bytes from load_addr to the
 * end of bss).
 */
static img_vstatus check_mb1_addrs(vctx *v, const img_limits *lim, const mbscan *mb,
                                   const seg *loads, unsigned nload, bool elf, uint64_t *entry,
                                   uint64_t *mem)
{
    const uint8_t *h = mb->hdr;
    uint64_t off = mb->mb1_off;
    char at[40];
    snprintf(at, sizeof at, "Multiboot header at 0x%llx", (unsigned long long)off);
    if (mb->hdr_len < 32)
        return fail(v, IMG_VINVALID, "%s is cut off by the end of the file", at);
    uint32_t header_addr = le32(h + 12), load_addr = le32(h + 16), load_end = le32(h + 20);
    uint32_t bss_end = le32(h + 24), entry_addr = le32(h + 28);
    if (load_addr > header_addr)
        return fail(v, IMG_VINVALID, "%s: load_addr 0x%x is above header_addr 0x%x", at, load_addr,
                    header_addr);
    uint64_t delta = header_addr - load_addr;
    if (delta > off)
        return fail(v, IMG_VINVALID,
                    "%s: header_addr 0x%x is 0x%llx bytes past load_addr 0x%x, but the header "
                    "is only 0x%llx bytes into the file",
                    at, header_addr, (unsigned long long)delta, load_addr, (unsigned long long)off);
    uint64_t text_off = off - delta, load_size;
    if (load_end != 0) {
        if (load_end < load_addr)
            return fail(v, IMG_VINVALID, "%s: load_end_addr 0x%x is below load_addr 0x%x", at,
                        load_end, load_addr);
        load_size = (uint64_t)load_end - load_addr;
        if (load_size > v->size - text_off)
            return fail(v, IMG_VINVALID,
                        "%s: load_end_addr 0x%x: 0x%llx bytes from file offset 0x%llx run past "
                        "the end of the file (0x%llx bytes)",
                        at, load_end, (unsigned long long)load_size, (unsigned long long)text_off,
                        (unsigned long long)v->size);
    } else {
        load_size = v->size - text_off; /* to the end of the file */
        if (load_size > (uint64_t)UINT32_MAX - load_addr)
            return fail(v, IMG_VINVALID,
                        "%s: load_end_addr 0 (load to the end of the file): 0x%llx bytes at "
                        "load_addr 0x%x do not fit below 4 GiB",
                        at, (unsigned long long)load_size, load_addr);
    }
    uint64_t load_top = (uint64_t)load_addr + load_size;
    if (delta >= load_size)
        return fail(v, IMG_VINVALID, "%s: header_addr 0x%x is outside the loaded part 0x%x-0x%llx",
                    at, header_addr, load_addr, (unsigned long long)load_top);
    uint64_t m = load_size;
    if (bss_end != 0) {
        if (bss_end < load_top)
            return fail(v, IMG_VINVALID,
                        "%s: bss_end_addr 0x%x is below the end of the loaded part (0x%llx)", at,
                        bss_end, (unsigned long long)load_top);
        m = (uint64_t)bss_end - load_addr;
    }
    if (m > lim->max_load_size)
        return fail(v, IMG_VTOO_LARGE,
                    "%s: load_addr..bss_end_addr needs 0x%llx bytes of memory (limit 0x%llx)", at,
                    (unsigned long long)m, (unsigned long long)lim->max_load_size);
    if (entry_addr < load_addr || entry_addr >= load_top)
        return fail(v, IMG_VINVALID, "%s: entry_addr 0x%x is outside the loaded part 0x%x-0x%llx",
                    at, entry_addr, load_addr, (unsigned long long)load_top);
    if (elf) {
        const seg *in = NULL;
        for (unsigned a = 0; a < nload && !in; a++)
            if (off >= loads[a].off && off - loads[a].off < loads[a].filesz)
                in = &loads[a];
        if (!in)
            return fail(v, IMG_VINVALID,
                        "%s: the header is not inside the file part of any PT_LOAD segment", at);
        uint64_t p = in->addr + (off - in->off), vv = in->vaddr + (off - in->off);
        if (header_addr != p && header_addr != vv)
            return fail(v, IMG_VINVALID,
                        "%s: header_addr 0x%x does not match program header %u, which loads the "
                        "header at 0x%llx",
                        at, header_addr, in->idx, (unsigned long long)p);
        for (unsigned a = 0; a < nload; a++) {
            const seg *s = &loads[a];
            if (s->filesz == 0)
                continue;
            if (s->addr < load_addr || s->filesz > load_top - load_addr ||
                s->addr - load_addr > load_top - load_addr - s->filesz)
                return fail(v, IMG_VINVALID,
                            "program header %u: file bytes for 0x%llx-0x%llx are outside what "
                            "the Multiboot header loads (load_addr..load_end_addr 0x%x-0x%llx)",
                            s->idx, (unsigned long long)s->addr,
                            (unsigned long long)(s->addr + s->filesz), load_addr,
                            (unsigned long long)load_top);
            uint64_t want = text_off + (s->addr - load_addr);
            if (s->off != want)
                return fail(v, IMG_VINVALID,
                            "program header %u: segment at 0x%llx comes from file offset 0x%llx, "
                            "but the Multiboot load addresses read it from 0x%llx",
                            s->idx, (unsigned long long)s->addr, (unsigned long long)s->off,
                            (unsigned long long)want);
        }
    }
    *entry = entry_addr;
    *mem = m;
    return IMG_VALID;
}

/* ---- ELF notes ---------------------------------------------------------- */

typedef struct pvh {
    bool found;
    uint64_t entry;
} pvh;

static const char *solo5_target_name(uint32_t t)
{
    static const char *const names[] = { NULL, "hvt", "spt", "virtio", "muen", "genode", "xen" };
    return t < sizeof names / sizeof names[0] ? names[t] : NULL;
}

/*
 * Scan the notes in [start, start + len) (already checked to lie inside the
 * file). where names the container for messages ("program header 3").
 * Records the PVH entry and the evidence of the notes it knows.
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
        } else if (namesz == 6) {
            uint8_t name[6];
            if (vread(v, start + pos + 12, name, 6) != 0)
                return -1;
            if (memcmp(name, "Solo5", 6) == 0 && type == SOLO5_NOTE_MANIFEST) {
                v->ev |= EV(EV_SOLO5_MANIFEST);
            } else if (memcmp(name, "Solo5", 6) == 0 && type == SOLO5_NOTE_ABI) {
                v->ev |= EV(EV_SOLO5_ABI);
                uint8_t t[4];
                if (descsz >= 4) {
                    if (vread(v, start + pos + desc_off, t, 4) != 0)
                        return -1;
                    const char *tn = solo5_target_name(le32(t));
                    if (tn && le32(t) != SOLO5_ABI_VIRTIO)
                        return fail(v, IMG_VINVALID,
                                    "%s: note %u: a Solo5 '%s' unikernel does not boot under "
                                    "QEMU; build it for the 'virtio' target",
                                    where, n, tn),
                               -1;
                }
            } else if (memcmp(name, "shoal", 6) == 0 && type == SHOAL_NOTE_GUEST) {
                v->ev |= EV(EV_SHOAL_NOTE);
            }
        }
        uint64_t next = desc_off + (((uint64_t)descsz + align - 1) & ~(align - 1));
        pos += next < left ? next : left;
        n++;
    }
    return 0;
}

/* ---- ELF sections -------------------------------------------------------- */

/* Evidence from a section name (Unikraft's tables). name: n bytes, maybe
 * without NUL. */
static void section_name_evidence(vctx *v, const uint8_t *name, size_t n)
{
    static const struct {
        const char *s;
        bool prefix;
        int ev;
    } uk[] = {
        { ".uk_inittab", false, EV_UK_INITTAB }, { ".uk_libparam", true, EV_UK_LIBPARAM },
        { ".uk_ctortab", false, EV_UK_CTORTAB }, { ".uk_lib_arg__", true, EV_UK_LIBARG },
        { ".uk_", true, EV_UK_OTHER },
    };
    for (size_t i = 0; i < sizeof uk / sizeof uk[0]; i++) {
        size_t l = strlen(uk[i].s) + (uk[i].prefix ? 0 : 1); /* exact: the NUL too */
        if (l <= n && memcmp(name, uk[i].s, l) == 0) {
            v->ev |= EV(uk[i].ev);
            return;
        }
    }
}

/*
 * Whether the string table at [off, off + size) holds the string name (a
 * whole string: NUL before and after). Reads at most SYMSTR_MAX bytes, in
 * window-sized pieces that overlap by the pattern's length. 1 yes, 0 no,
 * -1 read error.
 */
static int strtab_has(vctx *v, uint64_t off, uint64_t size, const char *name)
{
    uint8_t pat[64], buf[WIN_SIZE];
    size_t pl = strlen(name) + 2;
    pat[0] = 0;
    memcpy(pat + 1, name, pl - 1); /* the name and its NUL */
    if (size > SYMSTR_MAX)
        size = SYMSTR_MAX;
    for (uint64_t pos = 0; size - pos >= pl;) {
        size_t n = size - pos < sizeof buf ? (size_t)(size - pos) : sizeof buf;
        if (vread(v, off + pos, buf, n) != 0)
            return -1;
        for (size_t i = 0; i + pl <= n; i++)
            if (buf[i] == 0 && memcmp(buf + i, pat, pl) == 0)
                return 1;
        if (n < sizeof buf)
            break;
        pos += n - (pl - 1);
    }
    return 0;
}

/* ---- ELF ---------------------------------------------------------------- */

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
    unsigned ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
    if (e64) {
        entry = le64(eh + 24);
        phoff = le64(eh + 32);
        shoff = le64(eh + 40);
        ehsize = le16(eh + 52);
        phentsize = le16(eh + 54);
        phnum = le16(eh + 56);
        shentsize = le16(eh + 58);
        shnum = le16(eh + 60);
        shstrndx = le16(eh + 62);
    } else {
        entry = le32(eh + 24);
        phoff = le32(eh + 28);
        shoff = le32(eh + 32);
        ehsize = le16(eh + 40);
        phentsize = le16(eh + 42);
        phnum = le16(eh + 44);
        shentsize = le16(eh + 46);
        shnum = le16(eh + 48);
        shstrndx = le16(eh + 50);
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
    int interp_idx = -1;
    char interp[48] = "";

    for (unsigned i = 0; i < phnum; i++) {
        uint8_t ph[56];
        if (vread(v, phoff + (uint64_t)i * phsz, ph, phsz) != 0)
            return v->status;
        uint32_t ptype = le32(ph);
        uint64_t off, vaddr, paddr, filesz, memsz, align;
        if (e64) {
            off = le64(ph + 8);
            vaddr = le64(ph + 16);
            paddr = le64(ph + 24);
            filesz = le64(ph + 32);
            memsz = le64(ph + 40);
            align = le64(ph + 48);
        } else {
            off = le32(ph + 4);
            vaddr = le32(ph + 8);
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
        if (ptype == PT_INTERP && interp_idx < 0) {
            /* Allowed in a kernel (Solo5 sets one so that no host runs the
               file); decided once the boot headers are known. */
            uint8_t s[sizeof interp];
            size_t k = filesz < sizeof s ? (size_t)filesz : sizeof s;
            if (vread(v, off, s, k) != 0)
                return v->status;
            interp_idx = (int)i;
            printable(s, k, interp, sizeof interp);
            size_t sl = strlen(SOLO5_INTERP);
            v->ev |= k > sl && memcmp(s, SOLO5_INTERP, sl + 1) == 0 ? EV(EV_SOLO5_INTERP)
                                                                    : EV(EV_INTERP);
        } else if (ptype == PT_LOAD) {
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
            loads[nload++] = (seg){ i, off, filesz, paddr, memsz, vaddr };
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
        /* Section names are only evidence: an unusable string table is
           ignored, not refused, and only its first 4 KiB is looked at. */
        uint8_t strtab[STRTAB_MAX];
        size_t strsize = 0;
        uint32_t symstr = 0; /* section index of the symbol table's strings */
        if (shstrndx != 0 && shstrndx < shnum) {
            uint8_t sh[64];
            if (vread(v, shoff + (uint64_t)shstrndx * shsz, sh, shsz) != 0)
                return v->status;
            uint64_t o = e64 ? le64(sh + 24) : le32(sh + 16);
            uint64_t z = e64 ? le64(sh + 32) : le32(sh + 20);
            if (le32(sh + 4) == SHT_STRTAB && o <= v->size && z <= v->size - o) {
                strsize = z < sizeof strtab ? (size_t)z : sizeof strtab;
                if (vread(v, o, strtab, strsize) != 0)
                    return v->status;
            }
        }
        for (unsigned i = 0; i < shnum; i++) {
            uint8_t sh[64];
            if (vread(v, shoff + (uint64_t)i * shsz, sh, shsz) != 0)
                return v->status;
            uint32_t name = le32(sh), stype = le32(sh + 4);
            if (name < strsize)
                section_name_evidence(v, strtab + name, strsize - name);
            if (stype == SHT_SYMTAB && symstr == 0)
                symstr = le32(sh + (e64 ? 40 : 24)); /* sh_link: its string table */
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
        /* Reference kernels built before the shoal note: every one defines
           shoal_app_name (cmake/ShoalGuestImage.cmake), kept in .symtab. */
        if (note.found && !(v->ev & EV(EV_SHOAL_NOTE)) && symstr != 0 && symstr < shnum) {
            uint8_t sh[64];
            if (vread(v, shoff + (uint64_t)symstr * shsz, sh, shsz) != 0)
                return v->status;
            uint64_t o = e64 ? le64(sh + 24) : le32(sh + 16);
            uint64_t z = e64 ? le64(sh + 32) : le32(sh + 20);
            if (le32(sh + 4) == SHT_STRTAB && o <= v->size && z <= v->size - o) {
                int has = strtab_has(v, o, z, "shoal_app_name");
                if (has < 0)
                    return v->status;
                if (has)
                    v->ev |= EV(EV_SHOAL_SYMBOL);
            }
        }
    }

    /* Boot protocol, in QEMU's order: Multiboot v1 first, then PVH. */
    img_boot boot = IMG_BOOT_NONE;
    uint64_t load_size = load_total;
    mbscan mb;
    if (scan_multiboot(v, &mb) != 0)
        return v->status;
    if (mb.mb1) {
        uint32_t flags = le32(mb.hdr + 4);
        if (flags & MB1_ADDRS) {
            if (check_mb1_addrs(v, lim, &mb, loads, nload, true, &entry, &load_size) != IMG_VALID)
                return v->status;
            v->ev |= EV(EV_MB1_ADDR);
        } else if (mach == EM_X86_64) {
            return fail(v, IMG_VINVALID,
                        "Multiboot header at 0x%zx has no address fields (flags bit 16): QEMU "
                        "boots an x86_64 ELF through Multiboot only with them",
                        mb.mb1_off);
        } else {
            v->ev |= EV(EV_MB1);
        }
        boot = IMG_BOOT_MULTIBOOT;
    }
    if (note.found) {
        bool inside = false;
        for (unsigned a = 0; a < nload && !inside; a++)
            inside = note.entry >= loads[a].addr && note.entry - loads[a].addr < loads[a].filesz;
        if (!inside)
            return fail(v, IMG_VINVALID,
                        "PVH entry 0x%llx is not inside the file part of any PT_LOAD segment",
                        (unsigned long long)note.entry);
        v->ev |= EV(EV_PVH);
        if (boot == IMG_BOOT_NONE) {
            boot = IMG_BOOT_PVH;
            entry = note.entry;
        }
    }
    if (mb.mb2) {
        v->ev |= EV(EV_MB2);
        if (boot == IMG_BOOT_NONE)
            boot = IMG_BOOT_MULTIBOOT2;
    }
    if (boot == IMG_BOOT_NONE) {
        if (interp_idx >= 0)
            return fail(v, IMG_VINVALID,
                        "program header %d: PT_INTERP '%s': a dynamically linked program, not a "
                        "kernel (no PVH note, no Multiboot header)",
                        interp_idx, interp);
        return fail(v, IMG_VINVALID,
                    "ELF file has no PVH entry note (\"Xen\" note type 18) and no "
                    "Multiboot header%s%s",
                    mb.why[0] ? ": " : "", mb.why);
    }
    if (res) {
        res->boot = boot;
        res->format = IMG_FORMAT_ELF;
        res->elf_class = e64 ? 64 : 32;
        res->entry = entry;
        res->load_size = load_size;
        res->nload = nload;
    }
    return IMG_VALID;
}

/* ---- disk images --------------------------------------------------------- */

static img_vstatus validate_qcow2(vctx *v, const img_limits *lim, img_vresult *res)
{
    uint8_t h[104];
    if (v->size < 72)
        return fail(v, IMG_VINVALID, "qcow2 header is cut off: the file is %llu bytes",
                    (unsigned long long)v->size);
    size_t hl = v->size < sizeof h ? (size_t)v->size : sizeof h;
    memset(h, 0, sizeof h);
    if (vread(v, 0, h, hl) != 0)
        return v->status;
    uint32_t version = be32(h + 4);
    if (version != 2 && version != 3)
        return fail(v, IMG_VINVALID, "qcow2 version %u is not 2 or 3", version);
    if (version == 3) {
        if (v->size < 104)
            return fail(v, IMG_VINVALID, "qcow2 v3 header is cut off: the file is %llu bytes",
                        (unsigned long long)v->size);
        uint32_t header_length = be32(h + 100);
        if (header_length < 104 || header_length > v->size)
            return fail(v, IMG_VINVALID, "qcow2 header_length %u is out of bounds", header_length);
    }
    if (be64(h + 8) != 0)
        return fail(v, IMG_VINVALID,
                    "qcow2 image names a backing file: a base image must be self-contained "
                    "(qemu-img convert -O qcow2 makes one)");
    uint32_t cluster_bits = be32(h + 20);
    if (cluster_bits < 9 || cluster_bits > 21)
        return fail(v, IMG_VINVALID, "qcow2 cluster_bits %u is outside 9..21", cluster_bits);
    uint64_t vsize = be64(h + 24);
    if (vsize < SECTOR)
        return fail(v, IMG_VINVALID, "qcow2 virtual size %llu is smaller than one sector",
                    (unsigned long long)vsize);
    if (vsize > lim->max_disk_size)
        return fail(v, IMG_VTOO_LARGE,
                    "qcow2 virtual size %llu bytes is over the limit of %llu bytes",
                    (unsigned long long)vsize, (unsigned long long)lim->max_disk_size);
    uint32_t crypt = be32(h + 32);
    if (crypt != 0)
        return fail(v, IMG_VINVALID, "qcow2 image is encrypted (crypt_method %u)", crypt);
    uint64_t incompat = version == 3 ? be64(h + 72) : 0;
    if (incompat & 2)
        return fail(v, IMG_VINVALID, "qcow2 image is marked corrupt");
    if (incompat & 4)
        return fail(v, IMG_VINVALID,
                    "qcow2 image keeps its data in an external file: a base image must be "
                    "self-contained");
    if (incompat & ~UINT64_C(0x1f))
        return fail(v, IMG_VINVALID, "qcow2 incompatible feature bits 0x%llx are unknown",
                    (unsigned long long)(incompat & ~UINT64_C(0x1f)));
    bool ext_l2 = (incompat & 16) != 0;
    v->ev |= EV(version == 2 ? EV_QCOW2_V2 : EV_QCOW2_V3);

    /* The boot sector: guest cluster 0 through L1[0] and L2[0] (with
       extended L2 entries, 16 bytes: the entry, then a bitmap whose bit 0
       says subcluster 0 is allocated and bit 32 that it reads as zeros). */
    uint32_t l1_size = be32(h + 36);
    uint64_t l1_off = be64(h + 40), l2_off = 0, l2e = 0, bitmap = 1;
    uint8_t e[16];
    if (l1_size >= 1) {
        if (l1_off > v->size || 8 > v->size - l1_off)
            return fail(v, IMG_VINVALID,
                        "qcow2 l1_table_offset 0x%llx is past end of file (0x%llx bytes)",
                        (unsigned long long)l1_off, (unsigned long long)v->size);
        if (vread(v, l1_off, e, 8) != 0)
            return v->status;
        l2_off = be64(e) & QCOW2_OFFSET;
    }
    if (l2_off != 0) {
        size_t el = ext_l2 ? 16 : 8;
        if (l2_off > v->size || el > v->size - l2_off)
            return fail(v, IMG_VINVALID,
                        "qcow2 L2 table at 0x%llx is past end of file (0x%llx bytes)",
                        (unsigned long long)l2_off, (unsigned long long)v->size);
        if (vread(v, l2_off, e, el) != 0)
            return v->status;
        l2e = be64(e);
        if (ext_l2)
            bitmap = be64(e + 8);
    }
    if (l2e & (UINT64_C(1) << 62)) {
        v->ev |= EV(EV_BOOT_COMPRESSED);
    } else {
        uint64_t data_off = l2e & QCOW2_OFFSET;
        bool zero = ext_l2 ? (bitmap & (UINT64_C(1) << 32)) != 0 : (l2e & 1) != 0;
        if (data_off == 0 || zero || !(bitmap & 1))
            return fail(v, IMG_VINVALID,
                        "qcow2 image: guest sector 0 is not allocated (reads as zeros), so there "
                        "is no boot sector");
        uint8_t sig[2];
        if (data_off > v->size || SECTOR > v->size - data_off)
            return fail(v, IMG_VINVALID,
                        "qcow2 cluster of guest sector 0 at 0x%llx is past end of file (0x%llx "
                        "bytes)",
                        (unsigned long long)data_off, (unsigned long long)v->size);
        if (vread(v, data_off + 510, sig, 2) != 0)
            return v->status;
        if (sig[0] != 0x55 || sig[1] != 0xAA)
            return fail(v, IMG_VINVALID,
                        "qcow2 image: guest sector 0 has no boot signature (55 aa at offset "
                        "510, found %02x %02x)",
                        sig[0], sig[1]);
        v->ev |= EV(EV_BOOT_SECTOR);
    }
    if (res) {
        res->boot = IMG_BOOT_DISK;
        res->format = IMG_FORMAT_QCOW2;
        res->disk_size = vsize;
    }
    return IMG_VALID;
}

/* ---- kind and evidence -------------------------------------------------- */

static void classify(vctx *v, img_vresult *res)
{
    uint32_t ev = v->ev;
    if (res->format == IMG_FORMAT_RAW || res->format == IMG_FORMAT_QCOW2)
        res->kind = IMG_KIND_DISK;
    else if ((ev & (EV(EV_SHOAL_NOTE) | EV(EV_SHOAL_SYMBOL))) && res->boot == IMG_BOOT_PVH)
        res->kind = IMG_KIND_SHOAL;
    else if (ev & EV_SOLO5)
        res->kind = IMG_KIND_SOLO5;
    else if (ev & EV_UNIKRAFT)
        res->kind = IMG_KIND_UNIKRAFT;
    else if (res->boot == IMG_BOOT_PVH)
        res->kind = IMG_KIND_PVH;
    else
        res->kind = IMG_KIND_MULTIBOOT;
    res->nevidence = 0;
    for (int i = 0; i < EV_COUNT && res->nevidence < IMG_EVIDENCE_MAX; i++)
        if (ev & EV(i))
            res->evidence[res->nevidence++] = ev_text[i];
}

img_vstatus img_validate_reader(img_read_at_fn read_at, void *ctx, uint64_t size,
                                const img_limits *limits, img_vresult *res, char *msg,
                                size_t msglen)
{
    vctx v;
    img_vresult r;
    img_vstatus st;
    img_limits lim = { IMG_DEFAULT_MAX_FILE, IMG_DEFAULT_MAX_LOAD, IMG_DEFAULT_MAX_DISK };
    if (limits && limits->max_file_size)
        lim.max_file_size = limits->max_file_size;
    if (limits && limits->max_load_size)
        lim.max_load_size = limits->max_load_size;
    if (limits && limits->max_disk_size)
        lim.max_disk_size = limits->max_disk_size;
    v.read_at = read_at;
    v.ctx = ctx;
    v.size = size;
    v.win_off = 0;
    v.win_len = 0;
    v.msg = msg;
    v.msglen = msglen;
    v.status = IMG_VALID;
    v.ev = 0;
    if (msg && msglen)
        msg[0] = '\0';
    memset(&r, 0, sizeof r);
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
    if (size >= 4 && memcmp(magic, ELF_MAGIC, 4) == 0) {
        st = validate_elf(&v, &lim, &r);
    } else if (size >= 4 && memcmp(magic, QCOW2_MAGIC, 4) == 0) {
        st = validate_qcow2(&v, &lim, &r);
    } else {
        /* A raw file: a disk whose first sector carries the boot signature,
           else a kernel loaded by its Multiboot header's addresses. */
        uint8_t sig[2] = { 0, 0 };
        if (size >= SECTOR && vread(&v, 510, sig, 2) != 0)
            return v.status;
        bool bootsig = size >= SECTOR && sig[0] == 0x55 && sig[1] == 0xAA;
        if (bootsig && size % SECTOR == 0) {
            v.ev |= EV(EV_RAW) | EV(EV_BOOT_SECTOR);
            r.boot = IMG_BOOT_DISK;
            r.format = IMG_FORMAT_RAW;
            r.disk_size = size;
            st = IMG_VALID;
        } else {
            mbscan mb;
            if (scan_multiboot(&v, &mb) != 0)
                return v.status;
            if (mb.mb1) {
                if (!(le32(mb.hdr + 4) & MB1_ADDRS))
                    return fail(&v, IMG_VINVALID,
                                "Multiboot header at 0x%zx has no address fields (flags bit 16) "
                                "and the file is not ELF",
                                mb.mb1_off);
                if (check_mb1_addrs(&v, &lim, &mb, NULL, 0, false, &r.entry, &r.load_size) !=
                    IMG_VALID)
                    return v.status;
                v.ev |= EV(EV_MB1_ADDR);
                r.boot = IMG_BOOT_MULTIBOOT;
            } else if (mb.mb2) {
                v.ev |= EV(EV_MB2);
                r.boot = IMG_BOOT_MULTIBOOT2;
            } else if (bootsig) {
                return fail(&v, IMG_VINVALID,
                            "the file has a boot signature (55 aa at offset 510) but is %llu "
                            "bytes, not a whole number of 512-byte sectors",
                            (unsigned long long)size);
            } else {
                return fail(&v, IMG_VINVALID,
                            "not an ELF file (no 7f 45 4c 46 magic) and no Multiboot header in "
                            "the first 32 KiB%s%s; not a disk image (no qcow2 magic, no 55 aa "
                            "at offset 510)",
                            mb.why[0] ? ": " : "", mb.why);
            }
            r.format = IMG_FORMAT_BIN;
            st = IMG_VALID;
        }
    }
    if (st != IMG_VALID)
        return st;
    classify(&v, &r);
    if (res)
        *res = r;
    return IMG_VALID;
}

img_vstatus img_validate_head(const void *buf, size_t len, char *msg, size_t msglen)
{
    const uint8_t *p = buf;
    if (msg && msglen)
        msg[0] = '\0';
    if (len >= 4 && (memcmp(p, ELF_MAGIC, 4) == 0 || memcmp(p, QCOW2_MAGIC, 4) == 0))
        return IMG_VALID;
    if (len >= SECTOR && p[510] == 0x55 && p[511] == 0xAA)
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
                 "in the first 32 KiB; not a disk image (no qcow2 magic, no 55 aa at "
                 "offset 510)");
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
    case IMG_BOOT_DISK: return "disk";
    default: return "none";
    }
}

img_boot img_boot_parse(const char *name)
{
    for (int b = IMG_BOOT_PVH; b <= IMG_BOOT_DISK; b++)
        if (name && strcmp(name, img_boot_name((img_boot)b)) == 0)
            return (img_boot)b;
    return IMG_BOOT_NONE;
}

const char *img_format_name(img_format format)
{
    switch (format) {
    case IMG_FORMAT_ELF: return "elf";
    case IMG_FORMAT_BIN: return "bin";
    case IMG_FORMAT_RAW: return "raw";
    case IMG_FORMAT_QCOW2: return "qcow2";
    default: return "none";
    }
}

img_format img_format_parse(const char *name)
{
    for (int f = IMG_FORMAT_ELF; f <= IMG_FORMAT_QCOW2; f++)
        if (name && strcmp(name, img_format_name((img_format)f)) == 0)
            return (img_format)f;
    return IMG_FORMAT_NONE;
}

const char *img_kind_name(img_kind kind)
{
    switch (kind) {
    case IMG_KIND_SHOAL: return "shoal";
    case IMG_KIND_UNIKRAFT: return "unikraft";
    case IMG_KIND_SOLO5: return "solo5";
    case IMG_KIND_PVH: return "pvh";
    case IMG_KIND_MULTIBOOT: return "multiboot";
    case IMG_KIND_DISK: return "disk";
    default: return "unknown";
    }
}

img_kind img_kind_parse(const char *name)
{
    for (int k = IMG_KIND_SHOAL; k <= IMG_KIND_DISK; k++)
        if (name && strcmp(name, img_kind_name((img_kind)k)) == 0)
            return (img_kind)k;
    return IMG_KIND_UNKNOWN;
}
