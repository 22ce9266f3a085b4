/* route.c - the route table of docs/api.md and path matching. */
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "route.h"

#define LIST_Q (API_Q_LIMIT | API_Q_AFTER)

static const api_route routes[] = {
    { "GET", "/healthz", API_OP_HEALTHZ, API_BODY_NONE, 0, true },
    { "GET", "/metrics", API_OP_METRICS, API_BODY_NONE, 0, false },
    { "POST", "/v1/images", API_OP_IMAGE_UPLOAD, API_BODY_UPLOAD,
      API_Q_REF | API_Q_LABEL | API_Q_DIGEST | API_Q_INITRD, false },
    { "POST", "/v1/initrds", API_OP_INITRD_UPLOAD, API_BODY_UPLOAD, API_Q_DIGEST, false },
    { "GET", "/v1/images", API_OP_IMAGE_LIST, API_BODY_NONE, API_Q_NAME | API_Q_SELECTOR | LIST_Q,
      false },
    { "GET", "/v1/images/{ref}", API_OP_IMAGE_GET, API_BODY_NONE, 0, false },
    { "DELETE", "/v1/images/{ref}", API_OP_IMAGE_DELETE, API_BODY_NONE, API_Q_FORCE, false },
    { "PATCH", "/v1/images/{ref}", API_OP_IMAGE_PATCH, API_BODY_JSON, 0, false },
    { "POST", "/v1/images/{ref}/tags", API_OP_IMAGE_TAG, API_BODY_JSON, 0, false },
    { "POST", "/v1/instances", API_OP_INSTANCE_CREATE, API_BODY_JSON, 0, false },
    { "GET", "/v1/instances", API_OP_INSTANCE_LIST, API_BODY_NONE,
      API_Q_SELECTOR | API_Q_STATE | API_Q_HOST | LIST_Q, false },
    { "DELETE", "/v1/instances", API_OP_BULK_DELETE_QUERY, API_BODY_NONE,
      API_Q_SELECTOR | API_Q_FORCE, false },
    { "POST", "/v1/instances/stop", API_OP_BULK_STOP, API_BODY_JSON, 0, false },
    { "POST", "/v1/instances/start", API_OP_BULK_START, API_BODY_JSON, 0, false },
    { "POST", "/v1/instances/restart", API_OP_BULK_RESTART, API_BODY_JSON, 0, false },
    { "POST", "/v1/instances/delete", API_OP_BULK_DELETE, API_BODY_JSON, 0, false },
    { "GET", "/v1/instances/{id}", API_OP_INSTANCE_GET, API_BODY_NONE, 0, false },
    { "DELETE", "/v1/instances/{id}", API_OP_INSTANCE_DELETE, API_BODY_NONE, API_Q_FORCE, false },
    { "POST", "/v1/instances/{id}/stop", API_OP_INSTANCE_STOP, API_BODY_JSON, 0, false },
    { "POST", "/v1/instances/{id}/start", API_OP_INSTANCE_START, API_BODY_JSON, 0, false },
    { "POST", "/v1/instances/{id}/restart", API_OP_INSTANCE_RESTART, API_BODY_JSON, 0, false },
    { "GET", "/v1/instances/{id}/console", API_OP_CONSOLE, API_BODY_NONE, API_Q_TAIL | API_Q_FOLLOW,
      false },
    { "GET", "/v1/hosts", API_OP_HOST_LIST, API_BODY_NONE, LIST_Q, false },
    { "POST", "/v1/hosts", API_OP_HOST_ADD, API_BODY_JSON, 0, false },
    { "GET", "/v1/hosts/{name}", API_OP_HOST_GET, API_BODY_NONE, 0, false },
    { "DELETE", "/v1/hosts/{name}", API_OP_HOST_DELETE, API_BODY_NONE, 0, false },
    { "POST", "/v1/hosts/{name}/cordon", API_OP_HOST_CORDON, API_BODY_JSON, 0, false },
    { "POST", "/v1/hosts/{name}/drain", API_OP_HOST_DRAIN, API_BODY_JSON, API_Q_DRY_RUN, false },
    { "POST", "/v1/consolidate", API_OP_CONSOLIDATE, API_BODY_JSON, API_Q_DRY_RUN, false },
    { "GET", "/v1/events", API_OP_EVENTS, API_BODY_NONE, API_Q_SINCE, false },
    { "POST", "/v1/tokens", API_OP_TOKEN_CREATE, API_BODY_JSON, 0, false },
    { "GET", "/v1/tokens", API_OP_TOKEN_LIST, API_BODY_NONE, 0, false },
    { "DELETE", "/v1/tokens/{id}", API_OP_TOKEN_DELETE, API_BODY_NONE, 0, false },
    { "POST", "/v1/moves/stop", API_OP_MOVES_STOP, API_BODY_NONE, 0, false },
};

api_scope api_route_scope(const api_route *r)
{
    switch (r->op) {
    case API_OP_TOKEN_CREATE:
    case API_OP_TOKEN_LIST:
    case API_OP_TOKEN_DELETE:
    case API_OP_HOST_ADD:
    case API_OP_HOST_DELETE:
    case API_OP_HOST_CORDON:
    case API_OP_HOST_DRAIN:
    case API_OP_CONSOLIDATE:
    case API_OP_MOVES_STOP: return API_SCOPE_ADMIN;
    default: break;
    }
    return strcmp(r->method, "GET") == 0 ? API_SCOPE_READ_ONLY : API_SCOPE_OPERATOR;
}

const api_route *api_route_table(size_t *n)
{
    *n = sizeof routes / sizeof routes[0];
    return routes;
}

/* Match path against pattern; copy the {param} segment. */
static bool path_match(const char *pat, const char *path, char *param, size_t cap)
{
    while (*pat != '\0') {
        if (*pat == '{') {
            const char *seg_end = strchr(path, '/');
            size_t n = seg_end ? (size_t)(seg_end - path) : strlen(path);
            if (n == 0 || n >= cap)
                return false;
            memcpy(param, path, n);
            param[n] = '\0';
            path += n;
            pat = strchr(pat, '}');
            if (pat == NULL)
                return false;
            pat++;
            continue;
        }
        if (*pat != *path)
            return false;
        pat++;
        path++;
    }
    return *path == '\0';
}

const api_route *api_route_match(const char *method, const char *path, char *param, size_t cap,
                                 bool *path_known, char *allow, size_t allow_cap)
{
    const api_route *found = NULL;
    size_t i, used = 0;
    char tmp[256];

    *path_known = false;
    if (allow_cap > 0)
        allow[0] = '\0';
    for (i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!path_match(routes[i].pattern, path, tmp, sizeof tmp))
            continue;
        if (strcmp(routes[i].method, method) == 0 && found == NULL) {
            found = &routes[i];
            snprintf(param, cap, "%s", tmp);
            if (strlen(tmp) >= cap)
                found = NULL; /* param too long: treat as no route */
        }
        *path_known = true;
        if (allow_cap > used) {
            int n = snprintf(allow + used, allow_cap - used, "%s%s", used ? ", " : "",
                             routes[i].method);
            if (n > 0)
                used += (size_t)n;
        }
    }
    return found;
}
