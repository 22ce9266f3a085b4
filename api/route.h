/*
 * route.h - api-internal: the route table. One table drives the server's
 * dispatch and the OpenAPI agreement test (tests/api/test_openapi.c).
 */
#ifndef SHOAL_API_ROUTE_H
#define SHOAL_API_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "api.h"

typedef enum api_op {
    API_OP_HEALTHZ = 0,
    API_OP_METRICS,
    API_OP_IMAGE_UPLOAD,
    API_OP_IMAGE_LIST,
    API_OP_IMAGE_GET,
    API_OP_IMAGE_TAG,
    API_OP_IMAGE_DELETE,
    API_OP_IMAGE_PATCH,   /* PATCH /v1/images/{ref} */
    API_OP_INITRD_UPLOAD, /* POST /v1/initrds */
    API_OP_INSTANCE_CREATE,
    API_OP_INSTANCE_LIST,
    API_OP_INSTANCE_GET,
    API_OP_INSTANCE_STOP,
    API_OP_INSTANCE_START,
    API_OP_INSTANCE_RESTART,
    API_OP_INSTANCE_DELETE,
    API_OP_BULK_STOP,         /* POST /v1/instances/stop */
    API_OP_BULK_START,        /* POST /v1/instances/start */
    API_OP_BULK_RESTART,      /* POST /v1/instances/restart */
    API_OP_BULK_DELETE,       /* POST /v1/instances/delete */
    API_OP_BULK_DELETE_QUERY, /* DELETE /v1/instances?selector= */
    API_OP_CONSOLE,
    API_OP_HOST_LIST,
    API_OP_HOST_GET,
    API_OP_HOST_ADD,
    API_OP_HOST_CORDON,
    API_OP_HOST_DRAIN,
    API_OP_HOST_DELETE,
    API_OP_CONSOLIDATE,
    API_OP_EVENTS,
    API_OP_TOKEN_CREATE, /* POST /v1/tokens */
    API_OP_TOKEN_LIST,   /* GET /v1/tokens */
    API_OP_TOKEN_DELETE, /* DELETE /v1/tokens/{id} */
    API_OP_MOVES_STOP    /* POST /v1/moves/stop */
} api_op;

/* What the request body may be. */
typedef enum api_body {
    API_BODY_NONE = 0, /* no body accepted */
    API_BODY_JSON,     /* JSON object (maybe optional), <= max_json_body */
    API_BODY_UPLOAD    /* raw bytes streamed to the backend */
} api_body;

typedef struct api_route {
    const char *method;  /* "GET", "POST", "DELETE" */
    const char *pattern; /* "/v1/images/{ref}": at most one {param} */
    api_op op;
    api_body body;
    unsigned query; /* allowed API_Q_* bits (codec.h) */
    bool open;      /* true: no bearer token needed */
} api_route;

/* The scope a token needs for this route (api.h api_scope): admin for
 * /v1/tokens, hosts (but listing them), drain and consolidate; read-only
 * for any other GET; operator for everything else. */
api_scope api_route_scope(const api_route *r);

/* The whole table (n entries). */
const api_route *api_route_table(size_t *n);

/* Find the route for method + path. param (cap bytes) receives the
 * {param} segment. Returns NULL when nothing matches; then *path_known tells
 * whether some route has this path with another method (405 vs 404), and
 * allow (allow_cap bytes) lists those methods ("GET, DELETE"). */
const api_route *api_route_match(const char *method, const char *path, char *param, size_t cap,
                                 bool *path_known, char *allow, size_t allow_cap);

#endif /* SHOAL_API_ROUTE_H */
