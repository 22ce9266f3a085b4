/*
 * pool.h - the framing of a pool guest's configuration record
 * (docs/guest-protocol.md, "Warm pool hand-over"):
 *
 *   shoal-config <N>\n<N bytes>
 *
 * N is decimal, 0..POOL_RECORD_MAX. Input is read line by line until a
 * header: a line that is not one is ignored (noise, a host that connected
 * late). A header whose length is not a number, or is over the maximum, is
 * refused (POOL_REFUSED, with the reason for the host) and reading goes
 * on. The body's bytes are taken as they come; what the body says is the
 * command line parser's business (cmdline.h).
 *
 * Pure: touches only the state and buffers given to it, so it is
 * unit-tested on the host (tests/guest/test_pool.c).
 */
#ifndef SHOAL_KERNEL_POOL_H
#define SHOAL_KERNEL_POOL_H

#include <stddef.h>

#define POOL_RECORD_MAX 8192           /* longest record body, bytes */
#define POOL_HEADER     "shoal-config" /* then one space and the length */
#define POOL_LINE_MAX   32             /* bytes of a line kept to match a header */

enum pool_event {
    POOL_MORE,    /* everything consumed, no record yet */
    POOL_RECORD,  /* a whole record is in the body buffer, NUL-terminated */
    POOL_REFUSED, /* a header was refused: *why says why */
};

struct pool_reader {
    int in_body; /* reading a record's body */
    int skip;    /* the current line is too long to be kept */
    size_t linelen;
    char line[POOL_LINE_MAX];
    char *body; /* POOL_RECORD_MAX + 1 bytes, the caller's */
    size_t want, have;
};

/* Start reading; body holds POOL_RECORD_MAX + 1 bytes. */
void pool_reader_init(struct pool_reader *r, char *body);

/* Consume bytes from p (n of them) up to the next event. *used is how many
 * were consumed (all of them for POOL_MORE); feed the rest again after
 * POOL_REFUSED. After POOL_RECORD the body holds *len bytes plus a NUL
 * (a NUL inside is the caller's to refuse) and the reader starts over. */
enum pool_event pool_feed(struct pool_reader *r, const char *p, size_t n, size_t *used, size_t *len,
                          const char **why);

#endif
