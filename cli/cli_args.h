/* cli_args.h: parsers for option values shared by several commands.
 *
 * Each returns 0 on success, or -1 after writing a message that quotes the bad
 * value into err (at most errlen bytes); nothing is printed.
 */
#ifndef SHOAL_CLI_ARGS_H
#define SHOAL_CLI_ARGS_H

#include "cli.h"

#include <stddef.h>
#include <stdint.h>

/* Memory size in MiB: "32" (MiB), "32M", "32MB", "32MiB", "1G", "1GiB",
 * "2048K" (must be whole MiB), "1T"; units are case-insensitive; > 0. */
int cli_parse_memory(const char *s, uint32_t *mib, char *err, size_t errlen);

/* Port mapping "HOSTPORT:PORT[/tcp|/udp]", ports 1..65535; *proto points
 * at "tcp" or "udp" in s, or is NULL when none was given (tcp). */
int cli_parse_port(const char *s, uint16_t *host, uint16_t *guest, const char **proto, char *err,
                   size_t errlen);

/* "K=V" with a non-empty key without spaces; V may be empty and may contain
 * '='. Sets *keylen and *val (pointing into s). */
int cli_parse_kv(const char *s, size_t *keylen, const char **val, char *err, size_t errlen);

/* Label selector: comma-separated terms k=v, k!=v, k, !k (docs/api.md);
 * keys [A-Za-z0-9_./-]+, values anything but ',' and '='. */
int cli_parse_selector(const char *s, char *err, size_t errlen);

/* Unsigned decimal in [min, max]. */
int cli_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out,
                   char *err, size_t errlen);

/* A duration: seconds, or a number with s, m, h or d ("24h"); 1 s to 10
 * years. */
int cli_parse_duration(const char *s, unsigned long *secs, char *err, size_t errlen);

/* A request rate "N/s" or "N" (requests per second, 1 to 1000000). */
int cli_parse_rate(const char *s, unsigned long *per_s, char *err, size_t errlen);

/* -o value: table, json, wide. */
int cli_parse_format(const char *s, cli_fmt *fmt, char *err, size_t errlen);

#endif
