/* cli_util.h: small string and formatting helpers for the CLI.
 *
 * cli_buf is a growable NUL-terminated byte string. Allocation failure is
 * fatal to the command: functions return -1 and leave the buffer valid.
 */
#ifndef SHOAL_CLI_UTIL_H
#define SHOAL_CLI_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct cli_buf {
    char *data; /* NUL-terminated, NULL until the first append */
    size_t len; /* bytes used, excluding the NUL */
    size_t cap; /* bytes allocated */
} cli_buf;

int cli_buf_append(cli_buf *b, const char *s, size_t n);
int cli_buf_puts(cli_buf *b, const char *s);
int cli_buf_printf(cli_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s percent-encoded for a URL path segment or query value:
 * everything but A-Z a-z 0-9 - . _ ~ : @ is escaped (':' and '@' are legal
 * in both and keep image refs like "hello:1.0" readable in logs). */
int cli_buf_escape(cli_buf *b, const char *s);
/* The buffer's string ("" when empty); stays owned by b. */
const char *cli_buf_str(const cli_buf *b);
void cli_buf_free(cli_buf *b);

/* "81920" -> "80.0KiB"; exact units below 1 KiB: "512B". */
void cli_fmt_bytes(uint64_t bytes, char *out, size_t len);
/* Memory in MiB: "32M", "1G", "1.5G". */
void cli_fmt_mib(uint64_t mib, char *out, size_t len);
/* Parse an RFC 3339 UTC time ("2026-11-26T23:01:29Z", fraction allowed).
 * Returns 0 and sets *t, or -1. */
int cli_parse_time(const char *s, time_t *t);
/* "5 seconds ago", "3 minutes ago", "2 hours ago", "4 days ago"; "-" when
 * s is NULL or unparseable. now is passed in so output is reproducible. */
void cli_fmt_ago(const char *rfc3339, time_t now, char *out, size_t len);

#endif
