/* cli_error.c: error printing and the HTTP -> exit status mapping. */
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

void cli_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("shoal: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("shoal: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fprintf(stderr, "Try 'shoal %s%s--help' for more information.\n", cmd ? cmd : "",
            cmd && *cmd ? " " : "");
    return CLI_EUSAGE;
}

int cli_opt_error(const char *cmd, char *const *argv, int c)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        return cli_usage(cmd, "option '%s' needs a value", arg);
    if (optopt)
        return cli_usage(cmd, "unknown option '-%c'", optopt);
    return cli_usage(cmd, "unknown option '%s'", arg);
}

/* API error codes (docs/api.md) and the exit status each maps to. */
static const struct {
    const char *code;
    int status;
} code_map[] = {
    { "bad_request", CLI_EUSAGE },
    { "invalid_field", CLI_EUSAGE },
    { "unauthorized", CLI_EAUTH },
    { "rate_limited", CLI_EAUTH }, /* the token's own limit, like its quotas */
    { "not_found", CLI_ENOTFOUND },
    { "conflict", CLI_ECONFLICT },
    { "unavailable", CLI_EUNREACHABLE },
    { "invalid_image", CLI_EFAIL },
    { "method_not_allowed", CLI_EFAIL },
    { "too_large", CLI_EFAIL },
    { "unsupported_media_type", CLI_EFAIL },
    { "insufficient_capacity", CLI_EFAIL },
    { "internal", CLI_EFAIL },
};

int cli_status_from_http(long http_status, const char *code)
{
    if (code) {
        for (size_t i = 0; i < sizeof code_map / sizeof code_map[0]; i++)
            if (strcmp(code_map[i].code, code) == 0)
                return code_map[i].status;
    }
    switch (http_status) {
    case 400: return CLI_EUSAGE;
    case 401:
    case 403:
    case 429: return CLI_EAUTH;
    case 404: return CLI_ENOTFOUND;
    case 409: return CLI_ECONFLICT;
    case 503: return CLI_EUNREACHABLE;
    default: return http_status >= 200 && http_status < 300 ? CLI_OK : CLI_EFAIL;
    }
}

static const char *fallback_message(long st)
{
    switch (st) {
    case 400: return "the server rejected the request as malformed";
    case 401: return "unauthorized: missing or wrong token (set --token or SHOAL_TOKEN)";
    case 403: return "forbidden: the token is not allowed to do this";
    case 404: return "not found";
    case 405: return "the server does not support this operation";
    case 409: return "conflict with the current state";
    case 413: return "request too large for the server";
    case 415: return "the server refused the content type";
    case 422: return "the server refused the upload";
    case 500: return "the server failed with an internal error";
    case 502:
    case 504: return "a proxy between here and shoald failed";
    case 503: return "the server is unavailable";
    case 507: return "the fleet does not have enough capacity";
    default: return NULL;
    }
}

void cli_error_message(long st, const char *body, size_t body_len, char *out, size_t len)
{
    json_t *root = NULL;
    if (body && body_len)
        root = json_loadb(body, body_len, 0, NULL);
    json_t *err = json_object_get(root, "error");
    const char *msg = json_string_value(json_object_get(err, "message"));
    if (msg && *msg) {
        snprintf(out, len, "%s", msg);
    } else if (fallback_message(st)) {
        snprintf(out, len, "%s", fallback_message(st));
    } else {
        snprintf(out, len, "unexpected response from the server (status %ld)", st);
    }
    json_decref(root);
}
