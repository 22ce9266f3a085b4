/*
 * ksm.h - host-side Kernel Samepage Merging for guest memory (issue 13,
 * "Memory per guest"; figures in docs/node.md and docs/benchmarks.md).
 *
 * KSM merges identical anonymous pages of processes that opted in. QEMU opts
 * in its guest RAM and ROMs (-machine mem-merge=on, the default); with
 * ksm_apply(KSM_ON) shoald also sets PR_SET_MEMORY_MERGE on itself, which
 * every QEMU forked by the embedded driver inherits (kernel >= 6.4 for the
 * prctl; inherited across execve on the 6.18 host measured), so QEMU's heap,
 * TCG buffer and relocated read-only data can be merged too.
 *
 * Host-wide: /sys/kernel/mm/ksm is one setting per kernel. No I/O other than
 * those sysfs files and one prctl; no libvirt.
 */
#ifndef SHOAL_KSM_H
#define SHOAL_KSM_H

#include <stddef.h>

#define KSM_SYSFS "/sys/kernel/mm/ksm"

/* Settings ksm_apply(KSM_ON) writes: 50,000 pages (~200 MiB) scanned per
 * second; with 96 idle guests ksmd took 9.4 % of one core while merging
 * (60 s) and 6.6 % after; 500 pages / 50 ms (0.8 %) had merged nothing
 * after 90 s with 220 guests (docs/node.md, "Memory per guest"). Zero
 * pages become the kernel's zero page (use_zero_pages=1). */
#define KSM_PAGES_TO_SCAN 1000
#define KSM_SLEEP_MS      20

enum ksm_mode {
    KSM_MODE_OFF = 0,  /* leave the host's KSM as it is; nothing extra mergeable */
    KSM_MODE_AUTO = 1, /* ON when KSM_SYSFS is writable (root, CONFIG_KSM), else OFF */
    KSM_MODE_ON = 2,   /* turn KSM on; failing to is an error */
};

/* The host's KSM state (/sys/kernel/mm/ksm/<name>); -1 where a file is
 * missing (older kernels lack ksm_zero_pages, general_profit). */
struct ksm_stats {
    int available; /* KSM_SYSFS exists */
    long run;      /* 0 stopped, 1 running, 2 unmerging */
    long pages_to_scan, sleep_millisecs, use_zero_pages;
    long pages_shared;  /* distinct merged pages in use */
    long pages_sharing; /* further pages mapping them: the pages saved */
    long pages_unshared, pages_volatile, full_scans;
    long ksm_zero_pages;      /* pages replaced by the zero page (use_zero_pages) */
    long long general_profit; /* bytes saved minus KSM's own metadata */
    int merge_any;            /* this process has PR_SET_MEMORY_MERGE (1/0, -1 unknown) */
};

/* "off", "auto" or "on" -> mode; returns 0, or -1 for anything else. */
int ksm_parse_mode(const char *s, enum ksm_mode *mode);
const char *ksm_mode_name(enum ksm_mode mode);

/* Read the host's KSM state. Returns 0, or -1 if KSM_SYSFS is missing
 * (st->available = 0, other fields -1). */
int ksm_read(struct ksm_stats *st);

/* Apply the mode, before the first guest is started (the prctl is
 * inherited by QEMUs forked afterwards only):
 * - OFF: nothing.
 * - ON/AUTO: PR_SET_MEMORY_MERGE on this process; if run is 0, write
 *   use_zero_pages=1, pages_to_scan=KSM_PAGES_TO_SCAN, sleep_millisecs=
 *   KSM_SLEEP_MS, then run=1. If the host already runs KSM (run=1) its
 *   tuning is the operator's and is left alone.
 * Returns 0 when the mode is in effect (*active = 1 if KSM now runs). For
 * AUTO, a host without writable KSM is not an error: *active = 0 and err
 * says why. For ON it is (-1, err). Never turns KSM off. */
int ksm_apply(enum ksm_mode mode, int *active, char *err, size_t errlen);

#endif /* SHOAL_KSM_H */
