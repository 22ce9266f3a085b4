/* boot.c - an image's boot plan (see boot.h). */
#include "boot.h"

#include <stdio.h>
#include <string.h>

int fleet_boot_plan(const img_info *info, fleet_boot *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (info->format == IMG_FORMAT_RAW || info->format == IMG_FORMAT_QCOW2 ||
        info->boot == IMG_BOOT_DISK) {
        if (info->format != IMG_FORMAT_RAW && info->format != IMG_FORMAT_QCOW2) {
            snprintf(err, errlen, "is a disk image (kind %s) of unknown format %s",
                     img_kind_name(info->kind), img_format_name(info->format));
            return -1;
        }
        if (info->profile.firmware == IMG_FW_QBOOT) {
            snprintf(err, errlen,
                     "is a disk image (kind %s, format %s) whose profile asks for qboot, "
                     "which boots no disks (firmware seabios does)",
                     img_kind_name(info->kind), img_format_name(info->format));
            return -1;
        }
        out->disk = 1;
        out->fw = DOMXML_FW_SEABIOS;
        out->preset = GCMD_PRESET_RAW; /* not used: no command line */
        out->status_channel = info->kind == IMG_KIND_SHOAL;
        return 0;
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
    switch (info->profile.cmdline) {
    case IMG_CMDLINE_UNIKRAFT:
        out->preset = GCMD_PRESET_UNIKRAFT;
        out->argv0 = out->boot == DOMXML_BOOT_PVH;
        break;
    case IMG_CMDLINE_SOLO5: out->preset = GCMD_PRESET_SOLO5; break;
    case IMG_CMDLINE_RAW: out->preset = GCMD_PRESET_RAW; break;
    default: out->preset = GCMD_PRESET_SHOAL; break;
    }
    out->status_channel = info->kind == IMG_KIND_SHOAL || info->kind == IMG_KIND_UNKNOWN;
    return 0;
}

void fleet_boot_argv0(const char *image_ref, char *out, size_t len)
{
    const char *start = image_ref, *end = strchr(image_ref, ':');

    /* instance.c keeps "name:tag", "sha256:HEX" or a bare hex prefix */
    if (!strncmp(image_ref, "sha256:", 7) ||
        (!end && strspn(image_ref, "0123456789abcdef") == strlen(image_ref))) {
        snprintf(out, len, "app");
        return;
    }
    if (!end)
        end = image_ref + strlen(image_ref);
    for (const char *p = image_ref; p < end; p++) {
        if (*p == '/')
            start = p + 1;
    }
    if (start == end)
        snprintf(out, len, "app");
    else
        snprintf(out, len, "%.*s", (int)(end - start), start);
}
