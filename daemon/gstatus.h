/* gstatus.h - the guest status channel (COM2), parsed in one place.
 *
 * The guest kernel writes one record per line to its second serial port,
 * which libvirt sends to a file (docs/guest-protocol.md):
 *
 *   shoal-status ready boot_us=<n> [claim_us=<n>]
 *   shoal-status pool-wait boot_us=<n>
 *   shoal-status exit code=<0..255>
 *   shoal-status crash vector=<n> error=<hex> rip=<hex> cr2=<hex>
 *
 * The file is written by the guest and so is untrusted: lines are bounded,
 * numbers range-checked, anything else is ignored (counted, never fatal).
 */
#ifndef SHOAL_GSTATUS_H
#define SHOAL_GSTATUS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GST_LINE_MAX 256 /* longer lines are dropped whole */

/* GST_POOL_WAIT: a warm pool guest booted and waits for its configuration
 * (docs/guest-protocol.md "Warm pool hand-over"); claim_us on a ready record is the
 * guest's time from that record to ready. */
typedef enum { GST_NONE = 0, GST_READY, GST_EXIT, GST_CRASH, GST_POOL_WAIT } gst_kind;

typedef struct {
    gst_kind kind;
    int64_t boot_us;  /* READY, POOL_WAIT: guest microseconds from entry to main
                         (to the wait) */
    int64_t claim_us; /* READY of a pool guest: microseconds from its
                         configuration's arrival to main; -1: not given */
    int exit_code;    /* EXIT: 0..255 */
    int vector;       /* CRASH: CPU exception vector 0..255 */
    uint64_t error;   /* CRASH: error code */
    uint64_t rip;     /* CRASH: faulting instruction */
    uint64_t cr2;     /* CRASH: faulting address (page faults) */
} gst_record;

/* Parse one line (without its newline). 0 and *out filled when it is a
 * well-formed record, -1 otherwise. */
int gst_parse_line(const char *line, size_t len, gst_record *out);

/* Incremental reader of one status file. Zero-initialise, then call
 * gst_tracker_poll whenever the file may have grown. */
typedef struct {
    off_t off;               /* bytes consumed so far */
    char line[GST_LINE_MAX]; /* partial line carried between polls */
    size_t len;
    int overlong; /* dropping the rest of an overlong line */
    unsigned bad; /* malformed lines seen */
} gst_tracker;

/* Read what was appended since the last poll and call cb for each record.
 * A missing file is not an error (the guest has not written yet). Returns
 * the number of records delivered, or -1 on a read error. */
typedef void (*gst_record_cb)(void *ctx, const gst_record *rec);
int gst_tracker_poll(gst_tracker *t, const char *path, gst_record_cb cb, void *ctx);
/* The same, reading at most max bytes (a guest that writes without end
 * must not hold the reader); what is left is read by the next poll. When
 * size_out is not NULL it gets the file's size as seen (0 when missing). */
int gst_tracker_poll_max(gst_tracker *t, const char *path, size_t max, gst_record_cb cb, void *ctx,
                         off_t *size_out);

/* Human text for a crash record ("page fault at rip=0x... cr2=0x..."). */
void gst_crash_text(const gst_record *r, char *buf, size_t len);

#endif
