/*
 * img_validate.h - the one place uploaded image files are parsed.
 *
 * Decides whether a file is a bootable shoal image (see
 * docs/guest-protocol.md) and which boot protocol it uses:
 *
 *   - ELF32 or ELF64 (little-endian, x86 or x86_64, ET_EXEC) with a PVH entry
 *     note: name "Xen", type 18 (XEN_ELFNOTE_PHYS32_ENTRY), found in a PT_NOTE
 *     segment or an SHT_NOTE section. Program headers must be sane: the table
 *     and every segment inside the file, filesz <= memsz, no two PT_LOAD
 *     segments overlapping in the file or in (physical) memory, total loaded
 *     memory under a limit, PVH entry inside a PT_LOAD segment.
 *   - A Multiboot header: v1 magic 0x1BADB002 in the first 8 KiB, 4-byte
 *     aligned, magic + flags + checksum == 0; or Multiboot2 magic 0xE85250D6 in
 *     the first 32 KiB, 8-byte aligned, magic + arch + length + checksum == 0.
 *     An ELF file that boots through Multiboot must still have sane program
 *     headers; a file that starts with the ELF magic is always judged as ELF.
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

/* Boot protocol found in an image. */
typedef enum img_boot {
    IMG_BOOT_NONE = 0,       /* not bootable (only in rejected results) */
    IMG_BOOT_PVH = 1,        /* ELF with XEN_ELFNOTE_PHYS32_ENTRY */
    IMG_BOOT_MULTIBOOT = 2,  /* Multiboot v1 header */
    IMG_BOOT_MULTIBOOT2 = 3, /* Multiboot2 header */
} img_boot;

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
    uint64_t max_load_size; /* sum of PT_LOAD p_memsz; default 1 GiB */
} img_limits;

#define IMG_DEFAULT_MAX_FILE (UINT64_C(1) << 30)
#define IMG_DEFAULT_MAX_LOAD (UINT64_C(1) << 30)

/* What the validator found in a valid image. */
typedef struct img_vresult {
    img_boot boot;      /* boot protocol (PVH preferred over Multiboot) */
    int elf_class;      /* 32 or 64 for ELF files, 0 for raw Multiboot */
    uint64_t entry;     /* PVH entry (physical) or ELF e_entry; 0 if raw */
    uint64_t load_size; /* sum of PT_LOAD p_memsz (0 if raw) */
    uint32_t nload;     /* number of PT_LOAD segments */
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
 * (no ELF magic and no Multiboot magic where one would have to be); IMG_VALID
 * means "maybe": only the full validation decides.
 */
img_vstatus img_validate_head(const void *buf, size_t len, char *msg, size_t msglen);

/* "pvh", "multiboot", "multiboot2" or "none". */
const char *img_boot_name(img_boot boot);

/* Inverse of img_boot_name; IMG_BOOT_NONE for anything else. */
img_boot img_boot_parse(const char *name);

#endif /* SHOAL_IMG_VALIDATE_H */
