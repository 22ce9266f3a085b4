/*
 * ui.h - the web view (docs/ui.md): static files under /ui/, embedded in
 * the binary at build time (embed.cmake) and served without a token.
 *
 * The files hold no secret and no fleet data: the page asks for a token and
 * then calls the REST API like the CLI. So this handler needs neither the
 * backend nor auth; it answers from constant memory, on the connection
 * thread, and allocates nothing but libmicrohttpd's response object.
 */
#ifndef SHOAL_API_UI_H
#define SHOAL_API_UI_H

#include <stdbool.h>
#include <stddef.h>

struct MHD_Connection;

/* One embedded file (generated table, api_ui_files). */
typedef struct api_ui_file {
    const char *path;  /* "/ui/app.js" */
    const char *ctype; /* Content-Type */
    const char *etag;  /* quoted, from the content's SHA-256 */
    const unsigned char *data;
    size_t len;
} api_ui_file;

extern const api_ui_file api_ui_files[];
extern const size_t api_ui_n_files;

/* True when url is the view's: "/", "/ui" or under "/ui/". */
bool api_ui_owns(const char *url);

/* Answer a request for a url api_ui_owns: the file (200, or 304 when
 * If-None-Match names its ETag), a redirect of "/" and "/ui" to "/ui/",
 * 404 for an unknown file, 405 for a method but GET and HEAD. *status is
 * the HTTP status queued. Returns libmicrohttpd's verdict (MHD_YES/MHD_NO). */
int api_ui_serve(struct MHD_Connection *c, const char *url, const char *method, int *status);

#endif
