/* Fuzz target: the domain XML shoald writes and reads (daemon/domxml.c).
 *
 * Rendering: a spec built from the input (a 12-byte header of numbers and
 * "absent" bits, then the string fields separated by NUL bytes) goes
 * through domxml_render. The strings come from API clients, images and the
 * daemon's own paths, so a rendered document must be well-formed XML
 * (libxml2 parses it) and every value must read back from it exactly as
 * given: no truncation, no markup injected, nothing lost to attribute
 * normalisation. A refusal must say why.
 *
 * Reading: the whole input, as libvirt would hand back shoal's <metadata>
 * element, goes through domxml_parse_instance_id, whose answer must be a
 * valid instance id; and a rendered instance id must parse back from the
 * element libvirt returns for it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "domxml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    F_NAME,
    F_UUID,
    F_KERNEL,
    F_CMDLINE,
    F_DISK,
    F_CONSOLE,
    F_STATUS,
    F_BRIDGE,
    F_MAC,
    F_TAP,
    F_ID,
    F_FIRMWARE,
    F_INITRD,
    F_EMULATOR,
    F_FWCFG,
    N_FIELDS
};

#define HDR 12

/* First element named `name` below (and including) n, depth first; the
 * k-th one when skip = k. */
static xmlNodePtr find(xmlNodePtr n, const char *name, int *skip)
{
    for (; n != NULL; n = n->next) {
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0 &&
            (*skip)-- == 0)
            return n;
        if (n->children != NULL) {
            xmlNodePtr c = find(n->children, name, skip);
            if (c != NULL)
                return c;
        }
    }
    return NULL;
}

/* Element `name` (the k-th) must exist with text, or attribute attr, equal
 * to want. */
static void expect(xmlDocPtr doc, const char *name, int k, const char *attr, const char *want)
{
    xmlNodePtr n = find(xmlDocGetRootElement(doc), name, &k);
    xmlChar *got;

    if (n == NULL)
        abort();
    got = attr ? xmlGetProp(n, (const xmlChar *)attr) : xmlNodeGetContent(n);
    if (got == NULL || strcmp((const char *)got, want) != 0)
        abort();
    xmlFree(got);
}

static void check_rendered(const struct domxml_spec *s, const char *xml)
{
    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNodePtr root;

    if (doc == NULL)
        abort(); /* not well-formed */
    root = xmlDocGetRootElement(doc);
    if (root == NULL || strcmp((const char *)root->name, "domain") != 0)
        abort();
    expect(doc, "name", 0, NULL, s->name);
    if (s->uuid)
        expect(doc, "uuid", 0, NULL, s->uuid);
    if (s->kernel)
        expect(doc, "kernel", 0, NULL, s->kernel);
    if (s->cmdline && s->cmdline[0])
        expect(doc, "cmdline", 0, NULL, s->cmdline);
    if (s->initrd)
        expect(doc, "initrd", 0, NULL, s->initrd);
    if (s->firmware)
        expect(doc, "loader", 0, NULL, s->firmware);
    if (s->emulator)
        expect(doc, "emulator", 0, NULL, s->emulator);
    expect(doc, "source", 0, "path", s->console_log);
    expect(doc, "source", 1, "path", s->status_log);
    if (s->disk)
        expect(doc, "source", 2, "file", s->disk);
    if (s->bridge) {
        expect(doc, "mac", 0, "address", s->mac);
        expect(doc, "source", s->disk ? 3 : 2, "bridge", s->bridge);
    }
    if (s->tap)
        expect(doc, "target", 2 + (s->disk != NULL), "dev", s->tap);
    if (s->fwcfg_file)
        expect(doc, "entry", 0, "file", s->fwcfg_file);
    if (s->instance_id) {
        char md[256], id[DOMXML_ID_MAX + 1];
        expect(doc, "instance", 0, "id", s->instance_id);
        /* as libvirt hands it back */
        snprintf(md, sizeof md, "<instance xmlns=\"%s\" id=\"%s\"/>", DOMXML_NS_URI,
                 s->instance_id);
        if (domxml_parse_instance_id(md, id, sizeof id) != DOMXML_OK ||
            strcmp(id, s->instance_id) != 0)
            abort();
    }
    xmlFreeDoc(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    uint8_t h[HDR] = { 0 };
    const char *f[N_FIELDS] = { 0 };
    struct domxml_spec s;
    char *buf, *p, *end, *xml = NULL;
    char err[160], id[DOMXML_ID_MAX + 1];
    unsigned absent;
    int rc;

    if (!inited) {
        xmlInitParser();
        inited = 1;
    }
    buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';

    /* metadata as read back from libvirt: the raw input */
    rc = domxml_parse_instance_id(buf, id, sizeof id);
    if (rc == DOMXML_OK && (!domxml_valid_instance_id(id) || strstr(buf, id) == NULL))
        abort();

    memcpy(h, data, size < HDR ? size : HDR);
    p = buf + (size < HDR ? size : HDR);
    end = buf + size;
    for (int i = 0; i < N_FIELDS && p <= end; i++) {
        f[i] = p;
        p += strlen(p) + 1;
    }
    absent = (unsigned)h[9] | (unsigned)h[10] << 8;
    for (int i = 0; i < N_FIELDS; i++)
        if (absent & (1u << i))
            f[i] = NULL;

    memset(&s, 0, sizeof s);
    s.virt = (enum domxml_virt)(h[0] % 4);
    s.boot = (enum domxml_boot)(h[1] % 3);
    s.fw = (enum domxml_firmware)(h[2] % 3);
    s.debug_exit = h[3] & 1;
    s.memory_mib = (unsigned)h[4] | (unsigned)h[5] << 8 | (h[3] & 0x80u) << 13;
    s.vcpus = h[6] | (h[3] & 0x40u) << 2;
    s.cpu_quota_pct = (unsigned)h[7] | (unsigned)h[8] << 8;
    s.name = f[F_NAME];
    s.uuid = f[F_UUID];
    s.kernel = f[F_KERNEL];
    s.cmdline = f[F_CMDLINE];
    s.disk = f[F_DISK];
    s.console_log = f[F_CONSOLE];
    s.status_log = f[F_STATUS];
    s.bridge = f[F_BRIDGE];
    s.mac = f[F_MAC];
    s.tap = f[F_TAP];
    s.instance_id = f[F_ID];
    s.firmware = f[F_FIRMWARE];
    s.initrd = f[F_INITRD];
    s.emulator = f[F_EMULATOR];
    s.fwcfg_file = f[F_FWCFG];

    err[0] = '\0';
    rc = domxml_render(&s, &xml, err, sizeof err);
    if (rc == DOMXML_OK) {
        if (xml == NULL)
            abort();
        check_rendered(&s, xml);
    } else if (xml != NULL || err[0] == '\0' || memchr(err, '\0', sizeof err) == NULL) {
        abort();
    }
    free(xml);
    free(buf);
    return 0;
}
