/* cli_http.h: the CLI's HTTP client (libcurl, one easy handle reused so
 * consecutive requests share one keep-alive connection).
 *
 * All functions take a path relative to ctx->url ("/v1/instances?limit=10"),
 * add "Authorization: Bearer <ctx->token>" when a token is set, and return an
 * exit status (cli.h). On failure they print exactly one message:
 *   - transport failure: "cannot reach shoald at <url>: <reason>" (CLI_EUNREACHABLE)
 *   - HTTP error: the server's error.message (status from cli_status_from_http)
 */
#ifndef SHOAL_CLI_HTTP_H
#define SHOAL_CLI_HTTP_H

#include "cli.h"
#include "cli_jv.h"
#include "cli_util.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

typedef struct cli_http cli_http;

/* Free the client (NULL is fine). */
void cli_http_free(cli_http *h);

/* Send a request with an optional JSON body; on 2xx store the parsed response
 * in *out (NULL for an empty body; caller json_decref()s). out may be NULL.
 * When errbuf is non-NULL, the error message is written there instead of
 * printed. */
int cli_http_json(cli_ctx *ctx, const char *method, const char *path, json_t *body, json_t **out);
int cli_http_json_quiet(cli_ctx *ctx, const char *method, const char *path, json_t *body,
                        json_t **out, char *errbuf, size_t errlen);

/* GET a list endpoint and follow "next" cursors until done; path must not
 * contain "after=". *items receives one array with every item. */
int cli_http_list(cli_ctx *ctx, const char *path, json_t **items);

/* A list command "CMD [-o table|json|wide]" taking no argument (shoal
 * hosts, shoal token ls): parse argv (-h prints help), GET every page of
 * path and print the items with render. An exit status. */
int cli_list_cmd(cli_ctx *ctx, int argc, char **argv, const char *cmd, const char *help,
                 const char *path, int (*render)(FILE *out, const json_t *items, cli_fmt fmt));

/* Like cli_http_json but keeps the raw 2xx body (appended to *resp). */
int cli_http_raw(cli_ctx *ctx, const char *method, const char *path, json_t *body, cli_buf *resp);

/* cli_http_list with the fast parser (cli_jv.h): every page is parsed into
 * doc, and *items becomes one array of all items (also in doc). */
int cli_http_list_jv(cli_ctx *ctx, const char *path, cli_jv_doc *doc, cli_jv *items);

/* Stream a GET response: fn is called with each chunk as it arrives; it
 * returns 0 to continue or 1 to stop (a normal end). timeout_ms > 0 ends the
 * request after that long, also normally. CLI_OK when the server closed the
 * stream, fn stopped it or the timeout elapsed. */
typedef int (*cli_stream_fn)(void *arg, const char *data, size_t len);
int cli_http_stream(cli_ctx *ctx, const char *path, long timeout_ms, cli_stream_fn fn, void *arg);

/* Upload size bytes from f as application/octet-stream with POST. While
 * streaming, the SHA-256 of the bytes actually sent is computed into
 * sha256_out. With progress, a bar with bytes and rate is drawn on stderr
 * (label names the file). *out gets the JSON response on 2xx. */
int cli_http_upload(cli_ctx *ctx, const char *path, FILE *f, uint64_t size, bool progress,
                    const char *label, unsigned char sha256_out[32], json_t **out);

/* Event watcher on its own connection, for redraw-on-change loops. */
typedef struct cli_http_watch cli_http_watch;
/* Open GET path (an event stream). Returns NULL and prints when the
 * connection cannot even be set up; a refused stream shows up in wait(). */
cli_http_watch *cli_http_watch_open(cli_ctx *ctx, const char *path);
/* Wait up to timeout_ms. Returns 1 when new event data arrived since the
 * last call, 0 on timeout, -1 when the stream ended or failed (the caller
 * may keep polling on a timer). */
int cli_http_watch_wait(cli_http_watch *w, long timeout_ms);
/* Wait (up to timeout_ms) until the server has answered the request with
 * its headers: for /v1/events, from then on every new event reaches this
 * stream. 0 when it answered 200, -1 otherwise. */
int cli_http_watch_connect(cli_http_watch *w, long timeout_ms);
/* Also hand every received byte of the stream to fn (called from
 * cli_http_watch_wait, in pieces that may split lines). */
typedef void (*cli_http_watch_fn)(void *arg, const char *data, size_t len);
void cli_http_watch_on_data(cli_http_watch *w, cli_http_watch_fn fn, void *arg);
void cli_http_watch_free(cli_http_watch *w);

#endif
