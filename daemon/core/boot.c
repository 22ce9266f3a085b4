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
        out->status_channel = info->profile.exit == IMG_EXIT_STATUS;
        out->debug_exit = info->profile.exit == IMG_EXIT_DEBUG_EXIT;
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
    case IMG_CMDLINE_TEMPLATE:
        out->preset = GCMD_PRESET_RAW;
        out->template = 1;
        snprintf(out->tmpl, sizeof out->tmpl, "%s", info->profile.template);
        break;
    default: out->preset = GCMD_PRESET_SHOAL; break;
    }
    out->status_channel =
        info->profile.exit == IMG_EXIT_STATUS || info->profile.exit == IMG_EXIT_NONE;
    out->debug_exit = info->profile.exit == IMG_EXIT_DEBUG_EXIT;
    return 0;
}

static void put(gcmd *c, const char *s, size_t n)
{
    if (c->len + n >= sizeof c->buf) {
        c->overflow = 1;
        return;
    }
    memcpy(c->buf + c->len, s, n);
    c->len += n;
    c->buf[c->len] = 0;
}

static void put_checked(gcmd *c, const char *s)
{
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            c->bad = 1;
    put(c, s, strlen(s));
}

int fleet_boot_cmdline(const fleet_boot *b, const char *image_ref, const gcmd_run *run, gcmd *c,
                       char *err, size_t errlen)
{
    static const char *const net[] = { "{address}", "{prefix}", "{gateway}", "{mac}" };
    const char *t = b->tmpl;
    char num[16], name[IMG_NAME_MAX + 1];

    if (!b->template)
        return gcmd_build(c, b->preset, run, err, errlen);
    gcmd_init(c);
    if (run->n_env && !strstr(t, "{env}")) {
        snprintf(err, errlen,
                 "env cannot reach the guest: the image's command line template has "
                 "no {env}");
        return -1;
    }
    if (run->n_args && !strstr(t, "{args}")) {
        snprintf(err, errlen,
                 "args cannot reach the guest: the image's command line template "
                 "has no {args}");
        return -1;
    }
    for (size_t i = 0; i < sizeof net / sizeof net[0]; i++) {
        if (!run->ip && strstr(t, net[i])) {
            snprintf(err, errlen,
                     "the image's command line template uses %s, and the instance has no "
                     "network",
                     net[i]);
            return -1;
        }
    }
    while (*t) {
        if ((t[0] == '{' && t[1] == '{') || (t[0] == '}' && t[1] == '}')) {
            put(c, t, 1);
            t += 2;
            continue;
        }
        if (*t != '{') {
            put(c, t++, 1);
            continue;
        }
        const char *end = strchr(t, '}');
        size_t n = end ? (size_t)(end - t + 1) : strlen(t);
        if (!strncmp(t, "{address}", n)) {
            put_checked(c, run->ip);
        } else if (!strncmp(t, "{prefix}", n)) {
            snprintf(num, sizeof num, "%d", run->prefix);
            put(c, num, strlen(num));
        } else if (!strncmp(t, "{gateway}", n)) {
            put_checked(c, run->gw ? run->gw : "");
        } else if (!strncmp(t, "{mac}", n)) {
            put_checked(c, run->mac ? run->mac : "");
        } else if (!strncmp(t, "{name}", n)) {
            fleet_boot_argv0(image_ref, name, sizeof name);
            put_checked(c, name);
        } else if (!strncmp(t, "{env}", n)) {
            for (size_t i = 0; i < run->n_env; i++) {
                if (i)
                    put(c, " ", 1);
                put_checked(c, run->env[i].key);
                put(c, "=", 1);
                put_checked(c, run->env[i].value);
            }
        } else if (!strncmp(t, "{args}", n)) {
            for (size_t i = 0; i < run->n_args; i++) {
                if (i)
                    put(c, " ", 1);
                put_checked(c, run->args[i]);
            }
        } else { /* img_template_check keeps these out of the store */
            snprintf(err, errlen,
                     "the image's command line template has an unknown "
                     "placeholder");
            return -1;
        }
        t += n;
    }
    if (c->bad) {
        snprintf(err, errlen, "%s has a control character, which a command line cannot carry",
                 run->n_args ? "args" : "env");
        return -1;
    }
    if (c->overflow) {
        snprintf(err, errlen, "args make the command line longer than %d bytes", GCMD_MAX - 1);
        return -1;
    }
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
