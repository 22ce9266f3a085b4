/*
 * domxml.c - libvirt domain XML for a shoal instance (see domxml.h).
 */
#include "domxml.h"
#include "errbuf.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- growable output buffer ------------------------------------------ */

struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

static void buf_put(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

static void buf_fmt(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_fmt(struct buf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->oom = 1; /* only used for short numeric fields */
        return;
    }
    buf_put(b, tmp, (size_t)n);
}

/* Escape for both element text and single- or double-quoted attributes. */
static void buf_esc(struct buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': buf_str(b, "&amp;"); break;
        case '<': buf_str(b, "&lt;"); break;
        case '>': buf_str(b, "&gt;"); break;
        case '\'': buf_str(b, "&apos;"); break;
        case '"': buf_str(b, "&quot;"); break;
        default: buf_put(b, s, 1); break;
        }
    }
}

/* ---- validation ------------------------------------------------------- */

/* Text that XML 1.0 can carry verbatim after escaping: valid UTF-8, no C0
 * controls (tab included: it would survive in element text but not in
 * attributes after normalisation, and no shoal value needs it), no DEL. */
static int valid_text(const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (*p) {
        unsigned c = *p;
        int extra;
        unsigned cp;
        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c < 0x80) {
            extra = 0;
            cp = c;
        } else if ((c & 0xe0) == 0xc0) {
            extra = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        for (int i = 1; i <= extra; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        /* overlong forms, surrogates, out of range, U+FFFE/U+FFFF */
        if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
            (extra == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
            cp == 0xfffe || cp == 0xffff)
            return 0;
        p += extra + 1;
        n += (size_t)extra + 1;
        if (n > max)
            return 0;
    }
    return 1;
}

static int charset_ok(const char *s, size_t max, const char *extra)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(extra, c)))
            return 0;
    }
    return 1;
}

int domxml_valid_name(const char *s)
{
    return s && charset_ok(s, DOMXML_NAME_MAX, "_.-") && s[0] != '.' && s[0] != '-';
}

int domxml_valid_instance_id(const char *s)
{
    return s && charset_ok(s, DOMXML_ID_MAX, "_.:-");
}

int domxml_valid_bridge(const char *s)
{
    return s && charset_ok(s, DOMXML_BRIDGE_MAX, "_.-") && strcmp(s, ".") != 0 &&
           strcmp(s, "..") != 0;
}

int domxml_valid_tap(const char *s)
{
    /* libvirt 9.0 drops a <target dev> starting with these prefixes (names
     * it generates itself) and picks vnetN instead. */
    return domxml_valid_bridge(s) && strncmp(s, "vnet", 4) != 0 && strncmp(s, "macvtap", 7) != 0 &&
           strncmp(s, "macvlan", 7) != 0;
}

static int hexdig(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int domxml_valid_mac(const char *s)
{
    if (!s || strlen(s) != DOMXML_MAC_LEN)
        return 0;
    for (int i = 0; i < DOMXML_MAC_LEN; i++) {
        if (i % 3 == 2) {
            if (s[i] != ':')
                return 0;
        } else if (!hexdig(s[i])) {
            return 0;
        }
    }
    /* multicast bit (bit 0 of the first octet) must be clear */
    unsigned first = (unsigned)strtoul((char[]){ s[0], s[1], 0 }, NULL, 16);
    return (first & 1u) == 0;
}

static int valid_uuid(const char *s)
{
    if (strlen(s) != DOMXML_UUID_LEN)
        return 0;
    for (int i = 0; i < DOMXML_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!hexdig(s[i])) {
            return 0;
        }
    }
    return 1;
}

static int valid_abs_path(const char *s)
{
    return s && s[0] == '/' && valid_text(s, DOMXML_PATH_MAX);
}

/* Quote a possibly hostile value in an error message: printable ASCII kept,
 * everything else as \xNN, at most ~80 input bytes. */
static const char *quote(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    if (!s)
        return "(null)";
    for (size_t i = 0; s[i] && o + 5 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= 80) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[o++] = (char)c;
        } else {
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
        }
    }
    out[o] = '\0';
    return out;
}

static int validate(const struct domxml_spec *s, char *err, size_t errlen)
{
    char q[400], q2[64];
    struct in_addr a4;
    int nic;

    if (!s) {
        errbuf_set(err, errlen, "no domain spec");
        return DOMXML_E_INVAL;
    }
    nic = s->bridge || s->network;
    if (!domxml_valid_name(s->name)) {
        errbuf_set(err, errlen,
                   "invalid domain name '%s' (1-%d of [A-Za-z0-9_.-], "
                   "not starting with '.' or '-')",
                   quote(s->name, q, sizeof q), DOMXML_NAME_MAX);
        return DOMXML_E_INVAL;
    }
    if (s->uuid && !valid_uuid(s->uuid)) {
        errbuf_set(err, errlen, "invalid uuid '%s'", quote(s->uuid, q, sizeof q));
        return DOMXML_E_INVAL;
    }
    if (s->virt != DOMXML_VIRT_KVM && s->virt != DOMXML_VIRT_QEMU) {
        errbuf_set(err, errlen, "invalid domain type %d (want kvm or qemu)", (int)s->virt);
        return DOMXML_E_INVAL;
    }
    if (s->fw != DOMXML_FW_QBOOT && s->fw != DOMXML_FW_SEABIOS) {
        errbuf_set(err, errlen, "invalid firmware %d (want qboot or seabios)", (int)s->fw);
        return DOMXML_E_INVAL;
    }
    if (s->boot != DOMXML_BOOT_PVH && s->boot != DOMXML_BOOT_MULTIBOOT) {
        errbuf_set(err, errlen, "invalid boot protocol %d", (int)s->boot);
        return DOMXML_E_INVAL;
    }
    if (s->memory_mib == 0 || s->memory_mib > DOMXML_MEMORY_MIB_MAX) {
        errbuf_set(err, errlen, "invalid memory size '%u' MiB (1-%u)", s->memory_mib,
                   DOMXML_MEMORY_MIB_MAX);
        return DOMXML_E_INVAL;
    }
    if (s->vcpus == 0 || s->vcpus > DOMXML_VCPUS_MAX) {
        errbuf_set(err, errlen, "invalid vcpu count '%u' (1-%d)", s->vcpus, DOMXML_VCPUS_MAX);
        return DOMXML_E_INVAL;
    }
    if (s->kernel && s->disk) {
        errbuf_set(err, errlen, "kernel '%s' and disk given: boot from one of them",
                   quote(s->kernel, q, sizeof q));
        return DOMXML_E_INVAL;
    }
    if (s->disk && s->cmdline && s->cmdline[0]) {
        errbuf_set(err, errlen,
                   "command line '%s' given with a disk: libvirt passes one only "
                   "with a kernel",
                   quote(s->cmdline, q, sizeof q));
        return DOMXML_E_INVAL;
    }
    if (s->initrd && (s->initrd[0] != '/' || !s->kernel)) {
        errbuf_set(err, errlen, "initrd '%s' needs an absolute path and a kernel",
                   quote(s->initrd, q, sizeof q));
        return DOMXML_E_INVAL;
    }
    if (s->emulator && s->emulator[0] != '/') {
        errbuf_set(err, errlen, "emulator '%s' is not an absolute path",
                   quote(s->emulator, q, sizeof q));
        return DOMXML_E_INVAL;
    }
    if (s->cpu_quota_pct > 100u * (DOMXML_VCPUS_MAX + 1)) {
        errbuf_set(err, errlen, "invalid CPU quota '%u' %% (0-%u)", s->cpu_quota_pct,
                   100u * (DOMXML_VCPUS_MAX + 1));
        return DOMXML_E_INVAL;
    }
    if (s->disk && s->fw != DOMXML_FW_SEABIOS) {
        errbuf_set(err, errlen, "disk '%s' needs the seabios firmware (qboot boots no disks)",
                   quote(s->disk, q, sizeof q));
        return DOMXML_E_INVAL;
    }
    const struct {
        const char *what, *val;
        int required;
    } paths[] = {
        { "kernel", s->kernel, !s->disk },
        { "disk", s->disk, 0 },
        { "console log", s->console_log, 1 },
        { "status log", s->status_log, 1 },
        { "firmware", s->firmware, 0 },
        { "fw_cfg file", s->fwcfg_file, 0 },
        { "initrd", s->initrd, 0 },
        { "emulator", s->emulator, 0 },
        { "console socket", s->console_sock, 0 },
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (!paths[i].val && !paths[i].required)
            continue;
        if (!valid_abs_path(paths[i].val)) {
            errbuf_set(err, errlen,
                       "invalid %s path '%s' (absolute, UTF-8, no "
                       "control characters, at most %d bytes)",
                       paths[i].what, quote(paths[i].val, q, sizeof q), DOMXML_PATH_MAX);
            return DOMXML_E_INVAL;
        }
    }
    if (s->cmdline && !valid_text(s->cmdline, DOMXML_CMDLINE_MAX)) {
        errbuf_set(err, errlen,
                   "invalid command line '%s' (UTF-8, no control "
                   "characters, at most %d bytes)",
                   quote(s->cmdline, q, sizeof q), DOMXML_CMDLINE_MAX);
        return DOMXML_E_INVAL;
    }
    if (s->bridge && !domxml_valid_bridge(s->bridge)) {
        errbuf_set(err, errlen, "invalid bridge name '%s' (1-%d of [A-Za-z0-9_.-])",
                   quote(s->bridge, q, sizeof q), DOMXML_BRIDGE_MAX);
        return DOMXML_E_INVAL;
    }
    if (s->network && (s->bridge || !domxml_valid_name(s->network))) {
        errbuf_set(err, errlen,
                   s->bridge ? "network '%s' given with a bridge (one NIC: one of them)"
                             : "invalid network name '%s' (1-%d of [A-Za-z0-9_.-])",
                   quote(s->network, q, sizeof q), DOMXML_NAME_MAX);
        return DOMXML_E_INVAL;
    }
    if (nic && !domxml_valid_mac(s->mac)) {
        errbuf_set(err, errlen, "invalid MAC address '%s' (unicast xx:xx:xx:xx:xx:xx)",
                   quote(s->mac, q, sizeof q));
        return DOMXML_E_INVAL;
    }
    if (!nic && (s->mac || s->tap || s->filter)) {
        const char *v = s->mac ? s->mac : s->tap ? s->tap : s->filter;
        errbuf_set(err, errlen, "%s '%s' given without a bridge or network",
                   s->mac   ? "MAC address"
                   : s->tap ? "tap name"
                            : "filter",
                   quote(v, q, sizeof q));
        return DOMXML_E_INVAL;
    }
    if (s->filter && (!domxml_valid_name(s->filter) || !s->filter_ip ||
                      inet_pton(AF_INET, s->filter_ip, &a4) != 1)) {
        errbuf_set(
            err, errlen,
            "invalid filter '%s' or its address '%s' (a name of [A-Za-z0-9_.-], a dotted quad)",
            quote(s->filter, q, sizeof q), s->filter_ip ? quote(s->filter_ip, q2, sizeof q2) : "");
        return DOMXML_E_INVAL;
    }
    if (s->tap && !domxml_valid_tap(s->tap)) {
        errbuf_set(err, errlen,
                   "invalid tap name '%s' (1-%d of [A-Za-z0-9_.-], not starting with "
                   "'vnet', 'macvtap' or 'macvlan')",
                   quote(s->tap, q, sizeof q), DOMXML_BRIDGE_MAX);
        return DOMXML_E_INVAL;
    }
    if (s->instance_id && !domxml_valid_instance_id(s->instance_id)) {
        errbuf_set(err, errlen, "invalid instance id '%s' (1-%d of [A-Za-z0-9_.:-])",
                   quote(s->instance_id, q, sizeof q), DOMXML_ID_MAX);
        return DOMXML_E_INVAL;
    }
    return DOMXML_OK;
}

/* ---- rendering -------------------------------------------------------- */

/* <os> element per boot protocol; both go through QEMU -kernel today. No
 * <loader> for SeaBIOS: libvirt then passes no -bios and QEMU loads its
 * default, bios-256k.bin (SeaBIOS), wherever its data directory is. */
static void render_os(struct buf *b, const struct domxml_spec *s)
{
    const char *rom = s->firmware;
    if (!rom && s->fw == DOMXML_FW_QBOOT)
        rom = DOMXML_QBOOT_PATH;
    buf_str(b, "  <os>\n"
               "    <type arch='x86_64' machine='" DOMXML_MACHINE "'>hvm</type>\n");
    if (rom) {
        buf_str(b, "    <loader type='rom'>");
        buf_esc(b, rom);
        buf_str(b, "</loader>\n");
    }
    if (s->disk) {
        buf_str(b, "    <boot dev='hd'/>\n  </os>\n");
        return;
    }
    buf_str(b, "    <kernel>");
    buf_esc(b, s->kernel);
    buf_str(b, "</kernel>\n");
    if (s->initrd) {
        buf_str(b, "    <initrd>");
        buf_esc(b, s->initrd);
        buf_str(b, "</initrd>\n");
    }
    if (s->cmdline && s->cmdline[0]) {
        buf_str(b, "    <cmdline>");
        buf_esc(b, s->cmdline);
        buf_str(b, "</cmdline>\n");
    }
    switch (s->boot) {
    case DOMXML_BOOT_PVH: /* PVH note found by QEMU's ELF loader */
    case DOMXML_BOOT_MULTIBOOT: /* Multiboot header found first by QEMU */ break;
    }
    buf_str(b, "  </os>\n");
}

int domxml_render(const struct domxml_spec *s, char **xml, char *err, size_t errlen)
{
    struct buf b = { 0 };
    int rc;

    if (xml)
        *xml = NULL;
    rc = validate(s, err, errlen);
    if (rc != DOMXML_OK || !xml)
        goto out;

    buf_fmt(&b, "<domain type='%s'%s>\n", s->virt == DOMXML_VIRT_KVM ? "kvm" : "qemu",
            s->debug_exit ? " xmlns:qemu='" DOMXML_QEMU_NS_URI "'" : "");
    buf_str(&b, "  <name>");
    buf_esc(&b, s->name);
    buf_str(&b, "</name>\n");
    if (s->uuid) {
        buf_str(&b, "  <uuid>");
        buf_esc(&b, s->uuid);
        buf_str(&b, "</uuid>\n");
    }
    if (s->instance_id) {
        buf_str(&b, "  <metadata>\n    <" DOMXML_NS_PREFIX ":instance xmlns:" DOMXML_NS_PREFIX
                    "='" DOMXML_NS_URI "' id='");
        buf_esc(&b, s->instance_id);
        buf_str(&b, "'/>\n  </metadata>\n");
    }
    buf_fmt(&b, "  <memory unit='MiB'>%u</memory>\n", s->memory_mib);
    buf_fmt(&b, "  <vcpu>%u</vcpu>\n", s->vcpus);
    if (s->cpu_quota_pct)
        buf_fmt(&b,
                "  <cputune>\n    <global_period>100000</global_period>\n"
                "    <global_quota>%llu</global_quota>\n  </cputune>\n",
                (unsigned long long)s->cpu_quota_pct * 1000ull);
    if (s->fwcfg_file) {
        /* Only the path reaches QEMU's command line (-fw_cfg
         * name=...,file=...); QEMU reads the file once at start. */
        buf_str(&b, "  <sysinfo type='fwcfg'>\n    <entry name='" DOMXML_FWCFG_RECORD "' file='");
        buf_esc(&b, s->fwcfg_file);
        buf_str(&b, "'/>\n  </sysinfo>\n");
    }
    render_os(&b, s);
    /* Issue 13 (memory per guest, tests/bench/daemon/bench_mem.sh): no
     * vmport, SMM or HPET, which no shoal guest uses (the clock is the TSC,
     * calibrated on the PIT; power-off goes through ACPI's PM1a port).
     * Measured -0.1 MiB PSS per idle guest (less QEMU heap). */
    buf_str(&b, "  <features>\n    <acpi/>\n    <vmport state='off'/>\n"
                "    <smm state='off'/>\n  </features>\n"
                "  <clock offset='utc'>\n    <timer name='hpet' present='no'/>\n  </clock>\n"
                "  <on_poweroff>destroy</on_poweroff>\n"
                "  <on_reboot>destroy</on_reboot>\n"
                "  <on_crash>destroy</on_crash>\n"
                "  <devices>\n");
    if (s->emulator) {
        buf_str(&b, "    <emulator>");
        buf_esc(&b, s->emulator);
        buf_str(&b, "</emulator>\n");
    }
    if (s->serial_pty) {
        /* Read through streams (a remote host's guest); the log keeps
         * what nobody read (a pty drops it) and what a stream missed. */
        buf_str(&b, "    <serial type='pty'>\n      <log file='");
        buf_esc(&b, s->console_log);
        buf_str(&b, "' append='on'/>\n");
    } else if (s->console_sock) {
        /* A warm pool guest's configuration record comes in on COM1
         * itself (docs/guest-protocol.md "Warm pool hand-over"): QEMU
         * listens on the socket (server, no wait; shoald connects once the
         * guest waits) and logs what the guest writes to the console file
         * as type='file' would (what it writes while nobody is connected
         * too). No device beyond a running guest's. */
        buf_str(&b, "    <serial type='unix'>\n      <source mode='bind' path='");
        buf_esc(&b, s->console_sock);
        buf_str(&b, "'/>\n      <log file='");
        buf_esc(&b, s->console_log);
        buf_str(&b, "' append='on'/>\n");
    } else {
        buf_str(&b, "    <serial type='file'>\n      <source path='");
        buf_esc(&b, s->console_log);
        /* append: the daemon rotates the console by truncating it under
         * QEMU, which needs O_APPEND; a new run also keeps the previous
         * output. */
        buf_str(&b, "' append='on'/>\n");
    }
    buf_str(&b, "      <target port='0'/>\n    </serial>\n");
    if (s->serial_pty) {
        buf_str(&b, "    <serial type='pty'>\n      <log file='");
        buf_esc(&b, s->status_log);
        buf_str(&b, "' append='on'/>\n");
    } else {
        buf_str(&b, "    <serial type='file'>\n      <source path='");
        buf_esc(&b, s->status_log);
        buf_str(&b, "'/>\n");
    }
    buf_str(&b, "      <target port='1'/>\n    </serial>\n");
    if (s->disk) {
        /* The overlay's qcow2 header names its base and the base's format
         * (qemu-img create -F), which libvirt 9.0 requires of a backing
         * chain: nothing is probed. */
        buf_str(&b, "    <disk type='file' device='disk'>\n"
                    "      <driver name='qemu' type='qcow2'/>\n"
                    "      <source file='");
        buf_esc(&b, s->disk);
        buf_str(&b, "'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n");
    }
    if (s->bridge || s->network) {
        buf_str(&b,
                s->bridge ? "    <interface type='bridge'>\n" : "    <interface type='network'>\n");
        buf_str(&b, "      <mac address='");
        buf_esc(&b, s->mac);
        buf_str(&b, s->bridge ? "'/>\n      <source bridge='" : "'/>\n      <source network='");
        buf_esc(&b, s->bridge ? s->bridge : s->network);
        buf_str(&b, "'/>\n");
        if (s->tap) {
            buf_str(&b, "      <target dev='");
            buf_esc(&b, s->tap);
            buf_str(&b, "'/>\n");
        }
        buf_str(&b, "      <model type='virtio'/>\n");
        if (s->filter) { /* libvirt sets $MAC to the NIC's itself */
            buf_str(&b, "      <filterref filter='");
            buf_esc(&b, s->filter);
            buf_str(&b, "'>\n        <parameter name='IP' value='");
            buf_esc(&b, s->filter_ip);
            buf_str(&b, "'/>\n      </filterref>\n");
        }
        buf_str(&b, "      <rom enabled='no'/>\n    </interface>\n");
    }
    buf_str(&b, "    <controller type='usb' model='none'/>\n"
                "    <memballoon model='none'/>\n"
                "    <panic model='isa'/>\n"
                "  </devices>\n");
    if (s->debug_exit)
        /* libvirt 9.0 has no element for it: QEMU command-line passthrough,
         * which libvirt logs as "tainted: custom-argv" (docs/node.md). */
        buf_str(&b, "  <qemu:commandline>\n"
                    "    <qemu:arg value='-device'/>\n"
                    "    <qemu:arg value='" DOMXML_DEBUG_EXIT_DEVICE "'/>\n"
                    "  </qemu:commandline>\n");
    buf_str(&b, "</domain>\n");
    if (b.oom) {
        errbuf_set(err, errlen, "out of memory rendering domain '%s'", s->name);
        rc = DOMXML_E_NOMEM;
        goto out;
    }
    *xml = b.p;
    b.p = NULL;
out:
    free(b.p);
    return rc;
}

/* ---- metadata parsing --------------------------------------------------- */

int domxml_parse_instance_id(const char *md, char *id, size_t idlen)
{
    const char *p, *end;
    char quotec;
    size_t n;
    int rc = DOMXML_E_INVAL;

    if (!md || !id || idlen == 0)
        goto out;
    id[0] = '\0';
    /* Find an attribute named exactly `id` inside the first tag. */
    end = strchr(md, '>');
    if (!end)
        goto out;
    for (p = md; p < end; p++) {
        if ((p[0] == ' ' || p[0] == '\t' || p[0] == '\n') && p + 3 < end && p[1] == 'i' &&
            p[2] == 'd') {
            const char *q = p + 3;
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\n'))
                q++;
            if (q < end && *q == '=')
                break;
        }
    }
    if (p >= end)
        goto out;
    p += 3;
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    p++; /* '=' */
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    if (p >= end || (*p != '\'' && *p != '"'))
        goto out;
    quotec = *p++;
    /* Valid ids never contain characters that need escaping, so the value
     * is taken verbatim and then checked. */
    const char *close = strchr(p, quotec);
    if (!close || close > end)
        goto out;
    n = (size_t)(close - p);
    if (n == 0 || n >= idlen || n > DOMXML_ID_MAX)
        goto out;
    memcpy(id, p, n);
    id[n] = '\0';
    if (!domxml_valid_instance_id(id)) {
        id[0] = '\0';
        goto out;
    }
    rc = DOMXML_OK;
out:
    return rc;
}
