/* cli.h: shared contract of the `shoal` command-line client.
 *
 * Every command returns one of the exit statuses below; only main() turns
 * that into the process exit status. Errors are printed once, where they are
 * detected, as "shoal: <message>" on stderr; callers only pass the status on.
 */
#ifndef SHOAL_CLI_H
#define SHOAL_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Process exit statuses (documented in docs/cli.md and shoal(1)). */
enum {
    CLI_OK = 0,           /* success */
    CLI_EFAIL = 1,        /* generic failure (server-side error, I/O, ...) */
    CLI_EUSAGE = 2,       /* bad command line or invalid field (HTTP 400) */
    CLI_ENOTFOUND = 3,    /* no such image/instance/host (HTTP 404) */
    CLI_ECONFLICT = 4,    /* name taken, in use, wrong state (HTTP 409) */
    CLI_EUNREACHABLE = 5, /* cannot connect to shoald (or it is unavailable) */
    CLI_EAUTH = 6,        /* missing or wrong token (HTTP 401/403) */
};

#define CLI_DEFAULT_URL       "http://127.0.0.1:7878"
#define CLI_DEFAULT_STATE_DIR "/var/lib/shoal"

/* Output format of listings (-o). */
typedef enum {
    CLI_FMT_TABLE = 0, /* aligned columns, long values truncated */
    CLI_FMT_JSON,      /* the server's objects, pretty-printed JSON */
    CLI_FMT_WIDE,      /* more columns, nothing truncated */
} cli_fmt;

struct cli_http;

/* Per-invocation state shared by all commands. */
typedef struct cli_ctx {
    char *url;             /* base URL, no trailing '/' (owned) */
    char *token;           /* bearer token, NULL when none was found (owned) */
    bool tty_out;          /* stdout is a terminal */
    bool tty_err;          /* stderr is a terminal (progress bars) */
    struct cli_http *http; /* created on first request, one handle reused */
} cli_ctx;

/* ---- errors (cli_error.c) ---- */

/* Print "shoal: <fmt>\n" on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print a usage error naming the command and a hint; returns CLI_EUSAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Report a getopt_long() failure (c is '?' or ':', optstring began with
 * ':') as a usage error of cmd; returns CLI_EUSAGE. */
int cli_opt_error(const char *cmd, char *const *argv, int c);

/* Parsers return this after printing --help: the command is done, exit 0. */
#define CLI_DONE (-1)

/* Map an HTTP status and an API error code ("not_found", may be NULL) to an
 * exit status. */
int cli_status_from_http(long http_status, const char *code);

/* Build the user-facing message for an HTTP error response. body may be NULL
 * or not JSON; the server's "message" is used when present, else a sentence
 * derived from the status (never a bare number). Writes at most len bytes. */
void cli_error_message(long http_status, const char *body, size_t body_len, char *out, size_t len);

/* ---- configuration (cli_config.c) ---- */

/* Fill ctx->url and ctx->token. Precedence: the flags (url_flag, token_flag;
 * NULL when absent), then $SHOAL_URL / $SHOAL_TOKEN, then the config file
 * ($XDG_CONFIG_HOME/shoal/config or ~/.config/shoal/config: lines
 * "url = ..." and "token = ..."; '#' comments), then the default URL and,
 * for a loopback URL only, the local daemon's token file
 * ($SHOAL_STATE_DIR or /var/lib/shoal, file admin.token).
 * Returns CLI_OK, or CLI_EUSAGE for a malformed config file or URL. */
int cli_config_load(cli_ctx *ctx, const char *url_flag, const char *token_flag);

/* Parse one config file's text into *url / *token (malloc'd, replaced only
 * when the file sets them). Returns 0, or -1 and writes a message naming the
 * line to err. */
int cli_config_parse(const char *text, char **url, char **token, char *err, size_t errlen);

/* True when the URL's host is 127.0.0.0/8, ::1 or localhost. */
bool cli_url_is_loopback(const char *url);

/* Release everything ctx owns (safe on a zeroed ctx). */
void cli_ctx_free(cli_ctx *ctx);

#endif
