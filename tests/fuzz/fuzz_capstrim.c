/* Fuzz target: the trimmer of libvirt's QEMU capabilities cache
 * (daemon/node.c, node_caps_cache_trim), which rewrites files libvirt
 * wrote under the embed root. Input: one cache file's bytes, written as
 * ROOT/cache/qemu/capabilities/fuzz.xml. Checks: a non-empty file is
 * always read (no -1); the result is the input with whole lines removed,
 * in order, as many as reported; after a trim no kept line starts a
 * dropped element or is an unused machine type; a file left alone is byte
 * for byte the same; no temporary file is left behind. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[64], dir[128], file[160];
#define CMD_MAX 256

static void setup(void)
{
    char p[CMD_MAX];

    snprintf(root, sizeof root, "/tmp/shoal-fuzz-caps-%d", (int)getpid());
    snprintf(dir, sizeof dir, "%s/cache/qemu/capabilities", root);
    snprintf(file, sizeof file, "%s/fuzz.xml", dir);
    snprintf(p, sizeof p, "mkdir -p '%s'", dir);
    if (system(p) != 0)
        abort();
}

static void cleanup(void)
{
    char p[CMD_MAX];

    snprintf(p, sizeof p, "rm -rf '%s'", root);
    if (system(p) != 0)
        fprintf(stderr, "fuzz_capstrim: could not remove %s\n", root);
}

static char *slurp(size_t *len)
{
    FILE *f = fopen(file, "rb");
    char *b = NULL;
    long n;

    if (f == NULL)
        abort();
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = malloc((size_t)n + 1);
    if (b == NULL || fread(b, 1, (size_t)n, f) != (size_t)n)
        abort();
    fclose(f);
    *len = (size_t)n;
    return b;
}

static int has(const char *s, size_t n, const char *needle)
{
    return memmem(s, n, needle, strlen(needle)) != NULL;
}

/* Line at s[0..n): does it (blanks stripped) start a dropped element, or
 * is it a machine type no domain of shoald's names? */
static int drops(const char *s, size_t n)
{
    static const char *const pre[] = { "<cpu type='", "<hostCPU type='", "<blocker name='",
                                       "<flag name='cpu-unavailable-features'/>" };
    static const char machine[] = "<machine type='";
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    for (size_t k = 0; k < sizeof pre / sizeof pre[0]; k++)
        if (n >= strlen(pre[k]) && memcmp(s, pre[k], strlen(pre[k])) == 0)
            return 1;
    return n >= strlen(machine) && memcmp(s, machine, strlen(machine)) == 0 && n >= 2 &&
           s[n - 2] == '/' && s[n - 1] == '>' && !has(s, n, " name='" DOMXML_MACHINE "'") &&
           !has(s, n, " alias='" DOMXML_MACHINE "'") && !has(s, n, " default='yes'");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    const char *in = (const char *)data;
    char *out;
    size_t olen, i = 0, o = 0;
    int rc, dropped = 0;
    FILE *f;
    DIR *d;
    struct dirent *e;

    if (!ready) {
        setup();
        atexit(cleanup);
        ready = 1;
    }
    f = fopen(file, "wb");
    if (f == NULL)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);

    rc = node_caps_cache_trim(root);
    if (size > 0 && rc < 0)
        abort();
    out = slurp(&olen);
    if (rc <= 0) {
        if (olen != size || memcmp(out, data, size) != 0)
            abort();
    } else {
        /* out is in with whole lines removed, in order */
        while (i < size) {
            const char *nl = memchr(in + i, '\n', size - i);
            size_t n = nl ? (size_t)(nl - (in + i)) + 1 : size - i;
            if (o + n <= olen && memcmp(out + o, in + i, n) == 0 &&
                !drops(in + i, nl ? n - 1 : n)) {
                o += n;
            } else {
                dropped++;
            }
            i += n;
        }
        if (o != olen || dropped != rc)
            abort();
    }
    d = opendir(dir);
    while (d && (e = readdir(d)))
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            abort(); /* a temporary file left behind */
    if (d)
        closedir(d);
    unlink(file);
    free(out);
    return 0;
}
