/* ui.c - serve the embedded web view (ui.h). */
#include <string.h>

#include <microhttpd.h>

#include "ui.h"

/* No inline script or style, nothing from another origin, no framing: the
 * page's only code is app.js from here, and it talks only to this server. */
#define UI_CSP                                                                                     \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

bool api_ui_owns(const char *url)
{
    return strcmp(url, "/") == 0 || strcmp(url, "/ui") == 0 || strncmp(url, "/ui/", 4) == 0;
}

static const api_ui_file *find(const char *url)
{
    if (strcmp(url, "/ui/") == 0)
        url = "/ui/index.html";
    for (size_t i = 0; i < api_ui_n_files; i++)
        if (strcmp(api_ui_files[i].path, url) == 0)
            return &api_ui_files[i];
    return NULL;
}

static int answer(struct MHD_Connection *c, unsigned status, const char *text, const char *hdr,
                  const char *val, int *out)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    int ret;

    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (hdr != NULL)
        MHD_add_response_header(resp, hdr, val);
    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    *out = (int)status;
    return ret;
}

int api_ui_serve(struct MHD_Connection *c, const char *url, const char *method, int *status)
{
    const api_ui_file *f;
    const char *inm;
    struct MHD_Response *resp;
    bool fresh;
    int ret;

    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", MHD_HTTP_HEADER_ALLOW,
                      "GET, HEAD", status);
    if (strcmp(url, "/") == 0 || strcmp(url, "/ui") == 0)
        return answer(c, MHD_HTTP_FOUND, "see /ui/\n", MHD_HTTP_HEADER_LOCATION, "/ui/", status);
    f = find(url);
    if (f == NULL)
        return answer(c, MHD_HTTP_NOT_FOUND, "not found\n", NULL, NULL, status);
    inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    fresh = inm != NULL && strstr(inm, f->etag) != NULL;
    resp = MHD_create_response_from_buffer(fresh ? 0 : f->len, fresh ? NULL : (void *)f->data,
                                           MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, f->ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, f->etag);
    /* revalidate every load (a 304 is cheap): a new shoald's view shows at once */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "Content-Security-Policy", UI_CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    *status = fresh ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;
    ret = MHD_queue_response(c, (unsigned)*status, resp);
    MHD_destroy_response(resp);
    return ret;
}
