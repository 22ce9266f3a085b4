/*
 * fuzz_validate.c - fuzz target for the boot image validator.
 *
 * With -DSHOAL_LIBFUZZER it is a libFuzzer target (clang
 * -fsanitize=fuzzer,address,undefined). Without it, main() replays every
 * file named on the command line, or every file in the directories named
 * (the seed corpus and every kept finding), so the same cases run as a
 * plain regression test under any compiler and sanitizer.
 *
 * Each input is validated twice, from a buffer and through the read-at
 * callback (which aborts on any out-of-bounds request), and the verdicts
 * must agree; a rejection
 * always has a message (never cut short) and a valid image always has a boot
 * protocol, a format and a kind that agree, and one to IMG_EVIDENCE_MAX
 * evidence strings.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "img_validate.h"

typedef struct src {
    const uint8_t *p;
    size_t len;
} src;

static int read_at(void *ctx, uint64_t off, void *buf, size_t len)
{
    const src *s = ctx;
    if (off > s->len || len > s->len - off || len > 65536)
        abort(); /* the validator must never ask for this */
    memcpy(buf, s->p + off, len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char m1[IMG_VALIDATE_MSG_MAX], m2[IMG_VALIDATE_MSG_MAX];
    img_vresult r1, r2;
    img_limits lim = { UINT64_C(1) << 24, UINT64_C(1) << 30, UINT64_C(1) << 36 };
    src s = { data, size };
    img_vstatus a = img_validate_buffer(data, size, &lim, &r1, m1, sizeof m1);
    img_vstatus b = img_validate_reader(read_at, &s, size, &lim, &r2, m2, sizeof m2);
    if (a != b || strcmp(m1, m2) != 0 || memcmp(&r1, &r2, sizeof r1) != 0)
        abort();
    if (a == IMG_VALID && (r1.boot == IMG_BOOT_NONE || m1[0] != '\0'))
        abort();
    if (a != IMG_VALID && m1[0] == '\0')
        abort();
    if (a == IMG_VALID && r1.elf_class == 0 && r1.boot == IMG_BOOT_PVH)
        abort();
    if (strlen(m1) >= sizeof m1 - 1) /* a message is never cut short */
        abort();
    if (a == IMG_VALID) {
        bool disk = r1.format == IMG_FORMAT_RAW || r1.format == IMG_FORMAT_QCOW2;
        if (r1.kind == IMG_KIND_UNKNOWN || r1.format == IMG_FORMAT_NONE)
            abort();
        if (disk != (r1.boot == IMG_BOOT_DISK) || disk != (r1.kind == IMG_KIND_DISK))
            abort();
        if ((r1.format == IMG_FORMAT_ELF) != (r1.elf_class != 0))
            abort();
        if (r1.nevidence == 0 || r1.nevidence > IMG_EVIDENCE_MAX)
            abort();
        for (uint32_t i = 0; i < r1.nevidence; i++)
            if (!r1.evidence[i] || !r1.evidence[i][0] || strlen(r1.evidence[i]) > IMG_EVIDENCE_LEN)
                abort();
    }
    char m3[IMG_VALIDATE_MSG_MAX];
    (void)img_validate_head(data, size, m3, sizeof m3);
    return 0;
}

#ifndef SHOAL_LIBFUZZER
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz_validate: cannot stat %s\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i]) != 0)
                return 1;
            files++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            char p[4096];
            if (e->d_name[0] == '.' || strcmp(e->d_name, "README") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
            if (run_file(p) != 0) {
                fprintf(stderr, "fuzz_validate: cannot read %s\n", p);
                closedir(d);
                return 1;
            }
            files++;
        }
        if (d)
            closedir(d);
    }
    printf("fuzz_validate: %d inputs replayed, all consistent\n", files);
    return files > 0 ? 0 : 1;
}
#endif
