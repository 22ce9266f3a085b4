/* Fuzz target: the guest status channel parser (daemon/gstatus.c), the
 * daemon's one parser of guest-written bytes. Lines go through
 * gst_parse_line directly and the whole input through the incremental file
 * tracker in two arbitrary-sized writes; records must stay in range. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gstatus.h"

static void check(void *ctx, const gst_record *r)
{
    (void)ctx;
    if ((r->kind == GST_EXIT && (r->exit_code < 0 || r->exit_code > 255)) ||
        (r->kind == GST_CRASH && (r->vector < 0 || r->vector > 255)) ||
        (r->kind == GST_READY && r->boot_us < 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    gst_record rec;
    gst_tracker t;
    FILE *f;
    size_t split = size ? data[0] % (size + 1) : 0;

    /* Every line on its own. */
    for (size_t start = 0, i = 0; i <= size; i++) {
        if (i == size || data[i] == '\n') {
            if (gst_parse_line((const char *)data + start, i - start, &rec) == 0)
                check(NULL, &rec);
            start = i + 1;
        }
    }
    /* The file reader, fed in two parts. */
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/shoal-fuzz-gstatus-%d", (int)getpid());
    memset(&t, 0, sizeof t);
    f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, split, f);
    fflush(f);
    gst_tracker_poll(&t, path, check, NULL);
    fwrite(data + split, 1, size - split, f);
    fclose(f);
    gst_tracker_poll(&t, path, check, NULL);
    unlink(path);
    return 0;
}
