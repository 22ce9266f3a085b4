/*
 * img_validate.h - the one place uploaded image files are parsed.
 *
 * Decides whether a file is a bootable image (see docs/guest-protocol.md and
 * docs/imagestore.md), which boot protocol QEMU will use for it, and what
 * kind of guest it is, with the evidence for that judgement:
 *
 *   - ELF32 or ELF64 (little-endian, x86 or x86_64, ET_EXEC) with a PVH entry
 *     note: name "Xen", type 18 (XEN_ELFNOTE_PHYS32_ENTRY), found in a PT_NOTE
 *     segment or an SHT_NOTE section. Program headers must be sane: the table
 *     and every segment inside the file, filesz <= memsz, no two PT_LOAD
 *     segments overlapping in the file or in (physical) memory, total loaded
 *     memory under a limit, PVH entry inside a PT_LOAD segment.
 *   - A Multiboot header: v1 magic 0x1BADB002 in the first 8 KiB, 4-byte
 *     aligned, magic + flags + checksum == 0 (the first such header counts,
 *     as in QEMU); or Multiboot2 magic 0xE85250D6 in the first 32 KiB, 8-byte
 *     aligned, magic + arch + length + checksum == 0. When a v1 header's flags
 *     carry the load addresses (bit 16: header_addr, load_addr, load_end_addr,
 *     bss_end_addr, entry_addr), QEMU loads the file by them, so they are
 *     checked against the file (and, in an ELF, against the program headers).
 *     An x86_64 ELF needs them (QEMU refuses x86_64 Multiboot ELFs without).
 *     QEMU takes a v1 header before a PVH note: such a file boots as
 *     Multiboot.
 *   - Non-loadable segments (PT_INTERP, PT_DYNAMIC, PT_TLS, ...) are allowed in
 *     a kernel with a PVH note or a Multiboot header; an ELF with PT_INTERP and
 *     neither is a dynamically linked program and is refused as such.
 *   - A disk image: raw, 512-byte sectors, boot signature 55 aa at offset 510;
 *     or qcow2 (magic "QFI\xfb", version 2 or 3) with no backing file, no
 *     external data file, no encryption, whose guest sector 0 carries the
 *     boot signature (not checked when that cluster is compressed).
 *
 * Kinds (img_kind), from what the file carries: shoal (PVH note + note
 * "shoal", or the symbol shoal_app_name of reference images built before the
 * note), solo5 (Solo5 notes or PT_INTERP "/nonexistent/solo5/"), unikraft
 * (sections .uk_*), pvh, multiboot, disk. Evidence strings are fixed text
 * chosen by the validator ("note solo5.abi", "section .uk_inittab"), never
 * bytes copied from the file.
 *
 * Nothing read from the file is trusted: every offset and size is checked
 * against the file size (overflow-safe) before it is used, and every count is
 * capped. The validator is pure: no globals, no allocation beyond a bounded
 * scratch buffer, no I/O except through the caller's read-at callback.
 * It is safe to call from many threads at once.
 *
 * On rejection, msg receives one line that says exactly what is wrong, e.g.
 *   "program header 2: segment offset 0x9000 + size 0x2000 is past end of
 *    file (0xa000 bytes)"
 */
#ifndef SHOAL_IMG_VALIDATE_H
#define SHOAL_IMG_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

/* Caps that hold whatever the limits say. */
#define IMG_VALIDATE_MAX_PHNUM 256  /* program headers accepted */
#define IMG_VALIDATE_MAX_SHNUM 4096 /* section headers accepted */
#define IMG_VALIDATE_MAX_NOTES 4096 /* notes scanned per note segment/section */
#define IMG_VALIDATE_MSG_MAX   256  /* a message buffer of this size is never truncated */
#define IMG_EVIDENCE_MAX       8    /* evidence strings reported per image */
#define IMG_EVIDENCE_LEN       40   /* longest evidence string (without NUL) */

/* Boot protocol found in an image: how QEMU will start it. */
typedef enum img_boot {
    IMG_BOOT_NONE = 0,       /* not bootable (only in rejected results) */
    IMG_BOOT_PVH = 1,        /* ELF with XEN_ELFNOTE_PHYS32_ENTRY, no Multiboot v1 header */
    IMG_BOOT_MULTIBOOT = 2,  /* Multiboot v1 header (QEMU takes it before a PVH note) */
    IMG_BOOT_MULTIBOOT2 = 3, /* Multiboot2 header only */
    IMG_BOOT_DISK = 4,       /* disk image: the firmware runs its boot sector */
} img_boot;

/* How the bytes are laid out: what the boot side hands to libvirt. */
typedef enum img_format {
    IMG_FORMAT_NONE = 0,  /* only in rejected results */
    IMG_FORMAT_ELF = 1,   /* ELF kernel (<kernel>) */
    IMG_FORMAT_BIN = 2,   /* non-ELF Multiboot kernel loaded by its header's addresses */
    IMG_FORMAT_RAW = 3,   /* raw disk image */
    IMG_FORMAT_QCOW2 = 4, /* qcow2 disk image, self-contained (no backing file) */
} img_format;

/* What kind of guest an image is, judged from what it carries. */
typedef enum img_kind {
    IMG_KIND_UNKNOWN = 0,   /* rejected results; old rows that could not be re-read */
    IMG_KIND_SHOAL = 1,     /* shoal's reference kernel: PVH note + note "shoal" (or symbol) */
    IMG_KIND_UNIKRAFT = 2,  /* Unikraft: sections .uk_* */
    IMG_KIND_SOLO5 = 3,     /* Solo5 (MirageOS, ...): Solo5 notes or its PT_INTERP */
    IMG_KIND_PVH = 4,       /* any other PVH kernel */
    IMG_KIND_MULTIBOOT = 5, /* any other Multiboot (v1 or v2) kernel */
    IMG_KIND_DISK = 6,      /* raw or qcow2 disk image with a boot sector */
} img_kind;

/* Verdict of the validator. */
typedef enum img_vstatus {
    IMG_VALID = 0,      /* bootable; result filled in */
    IMG_VINVALID = 1,   /* not a bootable image; msg says why */
    IMG_VTOO_LARGE = 2, /* file or loaded memory over a limit; msg says which */
    IMG_VIO = 3,        /* the read callback failed; msg says where */
} img_vstatus;

/* Limits; a zero field means "use the default". */
typedef struct img_limits {
    uint64_t max_file_size; /* bytes; default IMG_DEFAULT_MAX_FILE (1 GiB) */
    uint64_t max_load_size; /* sum of PT_LOAD p_memsz, or a Multiboot kernel's
                               memory (load_addr..bss_end_addr); default 1 GiB */
    uint64_t max_disk_size; /* virtual size of a qcow2 disk; default 64 GiB */
} img_limits;

#define IMG_DEFAULT_MAX_FILE (UINT64_C(1) << 30)
#define IMG_DEFAULT_MAX_LOAD (UINT64_C(1) << 30)
#define IMG_DEFAULT_MAX_DISK (UINT64_C(64) << 30)

/* What the validator found in a valid image. */
typedef struct img_vresult {
    img_boot boot;      /* boot protocol, as QEMU will use it */
    img_format format;  /* container format */
    img_kind kind;      /* kind of guest */
    int elf_class;      /* 32 or 64 for ELF files, 0 otherwise */
    uint64_t entry;     /* PVH entry, Multiboot entry_addr or ELF e_entry; 0 for disks */
    uint64_t load_size; /* memory the kernel occupies: sum of PT_LOAD p_memsz, or
                           load_addr..bss_end_addr when the Multiboot header's
                           addresses load it; 0 for disks */
    uint32_t nload;     /* number of PT_LOAD segments */
    uint64_t disk_size; /* disks: virtual size in bytes (raw: the file size) */
    uint32_t nevidence; /* entries in evidence */
    const char *evidence[IMG_EVIDENCE_MAX]; /* static strings, most telling first:
                                               what the kind was judged from, then
                                               the boot header, then the rest */
} img_vresult;

/*
 * Read exactly len bytes at offset off into buf. Return 0 on success, -1 on
 * failure. The validator never asks for bytes at or beyond the size it was
 * given, and never for more than 64 KiB at once.
 */
typedef int (*img_read_at_fn)(void *ctx, uint64_t off, void *buf, size_t len);

/*
 * Validate size bytes read through read_at(ctx, ...). limits may be NULL
 * (defaults). res may be NULL; it is zeroed then filled when the image is
 * valid. msg (may be NULL when msglen is 0) receives a NUL-terminated reason
 * when the result is not IMG_VALID, "" otherwise.
 */
img_vstatus img_validate_reader(img_read_at_fn read_at, void *ctx, uint64_t size,
                                const img_limits *limits, img_vresult *res, char *msg,
                                size_t msglen);

/* Same, over an in-memory buffer (the fuzz entry point). */
img_vstatus img_validate_buffer(const void *buf, size_t len, const img_limits *limits,
                                img_vresult *res, char *msg, size_t msglen);

/*
 * Early look at the first len bytes of a file whose total size is not known
 * yet (an upload in progress); len must be at least 32 KiB or the whole file.
 * IMG_VINVALID when these bytes already show the file cannot be bootable
 * (no ELF or qcow2 magic, no Multiboot magic where one would have to be, no
 * boot signature at 510); IMG_VALID means "maybe": only the full validation
 * decides.
 */
img_vstatus img_validate_head(const void *buf, size_t len, char *msg, size_t msglen);

/* "pvh", "multiboot", "multiboot2", "disk" or "none". */
const char *img_boot_name(img_boot boot);

/* Inverse of img_boot_name; IMG_BOOT_NONE for anything else. */
img_boot img_boot_parse(const char *name);

/* "elf", "bin", "raw", "qcow2" or "none"; inverse: IMG_FORMAT_NONE for anything else. */
const char *img_format_name(img_format format);
img_format img_format_parse(const char *name);

/* "shoal", "unikraft", "solo5", "pvh", "multiboot", "disk" or "unknown";
 * inverse: IMG_KIND_UNKNOWN for anything else. */
const char *img_kind_name(img_kind kind);
img_kind img_kind_parse(const char *name);

#endif /* SHOAL_IMG_VALIDATE_H */
