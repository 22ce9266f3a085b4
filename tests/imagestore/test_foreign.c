/*
 * test_foreign.c - the validator on the test kernels built in guest-kernel/
 * (foreign/ and the reference kernel): each argument triple is KIND
 * EVIDENCE FILE, and FILE must validate as that kind with EVIDENCE among its
 * evidence strings. Registered only in builds that build the guest kernel.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img_validate.h"

static int read_at(void *ctx, uint64_t off, void *buf, size_t len)
{
    FILE *f = ctx;
    return fseek(f, (long)off, SEEK_SET) == 0 && fread(buf, 1, len, f) == len ? 0 : -1;
}

int main(int argc, char **argv)
{
    int bad = 0;
    if (argc < 4 || (argc - 1) % 3 != 0) {
        fprintf(stderr, "usage: %s KIND EVIDENCE FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i + 2 < argc; i += 3) {
        const char *kind = argv[i], *ev = argv[i + 1], *path = argv[i + 2];
        FILE *f = fopen(path, "rb");
        if (!f || fseek(f, 0, SEEK_END) != 0) {
            fprintf(stderr, "%s: cannot open\n", path);
            return 2;
        }
        long size = ftell(f);
        img_vresult r;
        char msg[IMG_VALIDATE_MSG_MAX];
        img_vstatus st = img_validate_reader(read_at, f, (uint64_t)size, NULL, &r, msg, sizeof msg);
        fclose(f);
        int seen = 0;
        for (uint32_t j = 0; j < r.nevidence; j++)
            seen |= strcmp(r.evidence[j], ev) == 0;
        printf("%s: %s, boot %s, format %s, kind %s, evidence:", path,
               st == IMG_VALID ? "valid" : msg, img_boot_name(r.boot), img_format_name(r.format),
               img_kind_name(r.kind));
        for (uint32_t j = 0; j < r.nevidence; j++)
            printf("%s '%s'", j ? "," : "", r.evidence[j]);
        printf("\n");
        if (st != IMG_VALID || strcmp(img_kind_name(r.kind), kind) != 0 || !seen) {
            fprintf(stderr, "%s: expected a valid '%s' image with evidence '%s'\n", path, kind, ev);
            bad = 1;
        }
    }
    return bad;
}
