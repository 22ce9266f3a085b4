/* boot.c - an image's boot plan (see boot.h). */
#include "boot.h"

#include <stdio.h>
#include <string.h>

int fleet_boot_plan(const img_info *info, fleet_boot *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (info->format == IMG_FORMAT_RAW || info->format == IMG_FORMAT_QCOW2 ||
        info->boot == IMG_BOOT_DISK) {
        snprintf(err, errlen,
                 "is a disk image (kind %s, format %s): shoald boots kernels (format elf or "
                 "bin) only, not disk images yet",
                 img_kind_name(info->kind), img_format_name(info->format));
        return -1;
    }
    switch (info->boot) {
    case IMG_BOOT_PVH: out->boot = DOMXML_BOOT_PVH; break;
    case IMG_BOOT_MULTIBOOT: out->boot = DOMXML_BOOT_MULTIBOOT; break;
    case IMG_BOOT_MULTIBOOT2:
        snprintf(err, errlen,
                 "is a Multiboot2 kernel (kind %s, boot multiboot2): QEMU 7.2 has no "
                 "Multiboot2 loader, so it cannot boot it",
                 img_kind_name(info->kind));
        return -1;
    default:
        snprintf(err, errlen, "has no boot protocol shoald knows (kind %s, boot %s)",
                 img_kind_name(info->kind), img_boot_name(info->boot));
        return -1;
    }
    out->fw = info->profile.firmware == IMG_FW_SEABIOS ? DOMXML_FW_SEABIOS : DOMXML_FW_QBOOT;
    return 0;
}
