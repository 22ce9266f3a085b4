/*
 * ksm.c - host-side Kernel Samepage Merging (see ksm.h).
 */
#include "ksm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#define PR_GET_MEMORY_MERGE 68
#endif

static long long read_ll(const char *name)
{
    char path[128];
    long long v = -1;
    snprintf(path, sizeof path, KSM_SYSFS "/%s", name);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    if (fscanf(f, "%lld", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

static int write_knob(const char *name, long v, char *err, size_t errlen)
{
    char path[128];
    snprintf(path, sizeof path, KSM_SYSFS "/%s", name);
    FILE *f = fopen(path, "w");
    int ok = f && fprintf(f, "%ld\n", v) > 0;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok && err && errlen)
        snprintf(err, errlen, "cannot write %ld to %s: %s", v, path, strerror(errno));
    return ok ? 0 : -1;
}

int ksm_parse_mode(const char *s, enum ksm_mode *mode)
{
    static const char *names[] = { "off", "auto", "on" };
    for (int i = 0; s && i < 3; i++) {
        if (!strcmp(s, names[i])) {
            *mode = (enum ksm_mode)i;
            return 0;
        }
    }
    return -1;
}

const char *ksm_mode_name(enum ksm_mode mode)
{
    return mode == KSM_MODE_ON ? "on" : mode == KSM_MODE_AUTO ? "auto" : "off";
}

int ksm_read(struct ksm_stats *st)
{
    memset(st, 0, sizeof *st);
    st->available = access(KSM_SYSFS "/run", R_OK) == 0;
    st->run = (long)read_ll("run");
    st->pages_to_scan = (long)read_ll("pages_to_scan");
    st->sleep_millisecs = (long)read_ll("sleep_millisecs");
    st->use_zero_pages = (long)read_ll("use_zero_pages");
    st->pages_shared = (long)read_ll("pages_shared");
    st->pages_sharing = (long)read_ll("pages_sharing");
    st->pages_unshared = (long)read_ll("pages_unshared");
    st->pages_volatile = (long)read_ll("pages_volatile");
    st->full_scans = (long)read_ll("full_scans");
    st->ksm_zero_pages = (long)read_ll("ksm_zero_pages");
    st->general_profit = read_ll("general_profit");
    int m = prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0);
    st->merge_any = m < 0 ? -1 : m > 0;
    return st->available ? 0 : -1;
}

int ksm_apply(enum ksm_mode mode, int *active, char *err, size_t errlen)
{
    int on = 0;
    if (err && errlen)
        err[0] = '\0';
    if (mode == KSM_MODE_OFF)
        goto out;
    if (access(KSM_SYSFS "/run", W_OK) != 0) {
        if (err && errlen)
            snprintf(err, errlen, "KSM not available: %s/run: %s", KSM_SYSFS, strerror(errno));
        goto fail;
    }
    if (prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) != 0) {
        /* kernel < 6.4: guest RAM stays mergeable through QEMU's madvise */
        if (err && errlen)
            snprintf(err, errlen, "PR_SET_MEMORY_MERGE: %s (only guest RAM is merged)",
                     strerror(errno));
    }
    if (read_ll("run") != 1) {
        char e2[256];
        (void)write_knob("use_zero_pages", 1, NULL, 0); /* absent before 4.14 */
        if (write_knob("pages_to_scan", KSM_PAGES_TO_SCAN, e2, sizeof e2) != 0 ||
            write_knob("sleep_millisecs", KSM_SLEEP_MS, e2, sizeof e2) != 0 ||
            write_knob("run", 1, e2, sizeof e2) != 0) {
            if (err && errlen)
                snprintf(err, errlen, "%s", e2);
            goto fail;
        }
    }
    on = 1;
out:
    if (active)
        *active = on;
    return 0;
fail:
    if (active)
        *active = 0;
    return mode == KSM_MODE_AUTO ? 0 : -1;
}
